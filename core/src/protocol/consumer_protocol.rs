//! The consumer embedded protocol: the subscription a member sends in
//! JoinGroup and the assignment the leader hands out in SyncGroup. Both are
//! opaque bytes to the broker, so every consumer client in a group must
//! agree on this format — Java, librdkafka and Python clients all use it.

use bytes::{BufMut, Bytes, BytesMut};

use super::api::Message;
use super::error::{DecodeError, DecodeErrorKind, EncodeError};

wire_struct! {
    /// What a member subscribes to, sent as its protocol metadata in JoinGroup.
    pub struct ConsumerProtocolSubscription {
        /// Topics the member wants to consume.
        pub topics: Vec<String> [0+],
        /// Opaque data for the assignor (the sticky assignors' v0 state lives here).
        pub user_data: Option<Bytes> [0+],
        /// Partitions the member owns now (v1+), for sticky and cooperative assignment.
        pub owned_partitions: Vec<TopicPartitions> [1+],
        /// The generation the owned partitions belong to (v2+), -1 if none.
        pub generation_id: i32 [2+] = -1,
        /// The member's rack (v3+), for rack-aware assignment.
        pub rack_id: Option<String> [3+],
    }
}
message! { ConsumerProtocolSubscription, versions [0-3], flexible [none] }

wire_struct! {
    /// The partitions the leader assigned to one member, sent in SyncGroup.
    pub struct ConsumerProtocolAssignment {
        /// The assigned partitions.
        pub assigned_partitions: Vec<TopicPartitions> [0+],
        /// Opaque data from the assignor.
        pub user_data: Option<Bytes> [0+],
    }
}
message! { ConsumerProtocolAssignment, versions [0-3], flexible [none] }

wire_struct! {
    /// Some partitions of one topic.
    pub struct TopicPartitions {
        /// Topic name.
        pub topic: String [0+],
        /// Partition numbers.
        pub partitions: Vec<i32> [0+],
    }
}

/// A payload that travels inside group messages with its own version prefix.
pub trait EmbeddedProtocol: Message {
    /// Encodes `self` prefixed with the `int16` version.
    fn to_versioned_bytes(&self, version: i16) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        out.put_i16(version);
        self.encode(&mut out, version)?;
        Ok(out.freeze())
    }

    /// Decodes a version-prefixed payload, returning the version it carried.
    ///
    /// A version newer than Odradek knows is read as the newest known one:
    /// later versions only append fields, which are ignored. This is what
    /// lets members of different client versions share a group.
    fn from_versioned_bytes(mut bytes: Bytes) -> Result<(i16, Self), DecodeError> {
        let Some(prefix) = bytes.get(..2) else {
            return Err(DecodeError::new(
                DecodeErrorKind::UnexpectedEnd {
                    needed: 2,
                    remaining: bytes.len(),
                },
                0,
            )
            .in_field("version")
            .in_message(Self::NAME, -1));
        };
        let version = i16::from_be_bytes([prefix[0], prefix[1]]);
        let read_as = version.min(Self::VERSIONS.max);
        let _ = bytes.split_to(2);
        Self::decode(&mut bytes, read_as)
            .map(|message| (version, message))
            .map_err(|mut e| {
                e.offset += 2;
                e
            })
    }
}

impl EmbeddedProtocol for ConsumerProtocolSubscription {}
impl EmbeddedProtocol for ConsumerProtocolAssignment {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::{assert_literal, hex};

    fn topic(name: &str, partitions: Vec<i32>) -> TopicPartitions {
        TopicPartitions {
            topic: name.into(),
            partitions,
        }
    }

    #[test]
    fn subscription_v0_and_v3_literal_bytes() {
        let v0 = ConsumerProtocolSubscription {
            topics: vec!["t".into()],
            ..Default::default()
        };
        assert_literal(0, "00000001 0001 74 | ffffffff", &v0);
        let v3 = ConsumerProtocolSubscription {
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(&[0xaa, 0xbb])),
            owned_partitions: vec![topic("a", vec![0, 1])],
            generation_id: 5,
            rack_id: Some("r1".into()),
        };
        assert_literal(
            3,
            "00000002 0001 61 0001 62 | 00000002 aabb \
             | 00000001 0001 61 00000002 00000000 00000001 \
             | 00000005 | 0002 7231",
            &v3,
        );
    }

    #[test]
    fn assignment_v0_and_v1_literal_bytes() {
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![topic("t", vec![0, 2])],
            user_data: None,
        };
        assert_literal(
            0,
            "00000001 0001 74 00000002 00000000 00000002 | ffffffff",
            &assignment,
        );
        assert_literal(
            1,
            "00000001 0001 74 00000002 00000000 00000002 | ffffffff",
            &assignment,
        );
    }

    #[test]
    fn versioned_bytes_carry_the_version_prefix() {
        let subscription = ConsumerProtocolSubscription {
            topics: vec!["t".into()],
            ..Default::default()
        };
        let bytes = subscription.to_versioned_bytes(1).unwrap();
        assert_eq!(bytes, hex("0001 | 00000001 0001 74 | ffffffff | 00000000"));
        let (version, back) = ConsumerProtocolSubscription::from_versioned_bytes(bytes).unwrap();
        assert_eq!((version, back), (1, subscription));
    }

    #[test]
    fn a_newer_version_reads_as_the_newest_known() {
        // Version 9 from a future client: a v3 body followed by fields we do
        // not know, which are ignored.
        let bytes =
            hex("0009 | 00000001 0001 74 | ffffffff | 00000000 | ffffffff | ffff | 0102030405");
        let (version, subscription) =
            ConsumerProtocolSubscription::from_versioned_bytes(bytes).unwrap();
        assert_eq!(version, 9);
        assert_eq!(subscription.topics, vec!["t".to_string()]);
        assert_eq!(subscription.generation_id, -1);
        assert_eq!(subscription.rack_id, None);
    }

    #[test]
    fn short_or_broken_payloads_are_typed_errors() {
        let err = ConsumerProtocolAssignment::from_versioned_bytes(hex("00")).unwrap_err();
        assert_eq!(err.api, "ConsumerProtocolAssignment");
        assert!(matches!(err.kind, DecodeErrorKind::UnexpectedEnd { .. }));
        let err =
            ConsumerProtocolAssignment::from_versioned_bytes(hex("0000 7fffffff")).unwrap_err();
        assert_eq!(err.offset, 6);
        assert_eq!(err.field, "ConsumerProtocolAssignment.assigned_partitions");
    }
}
