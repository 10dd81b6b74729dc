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
message!(
    ConsumerProtocolSubscription,
    versions[0 - 3],
    flexible[none]
);

wire_struct! {
    /// The partitions the leader assigned to one member, sent in SyncGroup.
    pub struct ConsumerProtocolAssignment {
        /// The assigned partitions.
        pub assigned_partitions: Vec<TopicPartitions> [0+],
        /// Opaque data from the assignor.
        pub user_data: Option<Bytes> [0+],
    }
}
message!(ConsumerProtocolAssignment, versions[0 - 3], flexible[none]);

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
