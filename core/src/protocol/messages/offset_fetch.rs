//! OffsetFetch (key 9): read a consumer group's committed positions.
//!
//! Versions 1–9 are implemented: Kafka 4.x brokers reject v0, and v10 (topic
//! ids instead of names) is still unstable in Kafka 4.1. Up to v7 a request
//! names a single group; from v8 it carries a list of groups, and the
//! response changes shape the same way.

wire_struct! {
    /// Asks a group coordinator for committed offsets.
    pub struct OffsetFetchRequest {
        /// The group (v1–7; v8+ uses `groups`).
        pub group_id: String [0-7],
        /// Partitions to look up (v1–7). Null asks for every partition with a
        /// committed offset, but only from v2: v1 cannot encode null.
        pub topics: Option<Vec<OffsetFetchRequestTopic>> [0-7] nullable [2-7] = Some(Vec::new()),
        /// The groups to look up (v8+).
        pub groups: Vec<OffsetFetchRequestGroup> [8+],
        /// Wait for pending transactional commits instead of returning
        /// offsets that may still change (errors with `UNSTABLE_OFFSET_COMMIT`
        /// meanwhile) (v7+).
        pub require_stable: bool [7+],
    }
}
message! { OffsetFetchRequest, versions [1-9], flexible [6+] }

wire_struct! {
    /// Partitions of one topic to look up (v1–7).
    pub struct OffsetFetchRequestTopic {
        /// Topic name.
        pub name: String [0-7],
        /// Partition numbers.
        pub partition_indexes: Vec<i32> [0-7],
    }
}

wire_struct! {
    /// One group to look up (v8+).
    pub struct OffsetFetchRequestGroup {
        /// The group id.
        pub group_id: String [8+],
        /// The member id, for members of a consumer-protocol group (KIP-848);
        /// null otherwise (v9+).
        pub member_id: Option<String> [9+],
        /// The member epoch, -1 when not a consumer-protocol member (v9+).
        pub member_epoch: i32 [9+] = -1,
        /// Partitions to look up; null for every committed partition.
        pub topics: Option<Vec<OffsetFetchRequestTopics>> [8+] = Some(Vec::new()),
    }
}

wire_struct! {
    /// Partitions of one topic to look up within a group (v8+).
    pub struct OffsetFetchRequestTopics {
        /// Topic name.
        pub name: String [8+],
        /// Partition numbers.
        pub partition_indexes: Vec<i32> [8+],
    }
}

wire_struct! {
    /// Committed offsets, for one group (v1–7) or several (v8+).
    pub struct OffsetFetchResponse {
        /// Time the request was throttled for, in milliseconds (v3+).
        pub throttle_time_ms: i32 [3+],
        /// Per-topic results (v1–7).
        pub topics: Vec<OffsetFetchResponseTopic> [0-7],
        /// Group-level error, 0 if none (v2–7).
        pub error_code: i16 [2-7],
        /// Per-group results (v8+).
        pub groups: Vec<OffsetFetchResponseGroup> [8+],
    }
}
message! { OffsetFetchResponse, versions [1-9], flexible [6+] }

wire_struct! {
    /// Committed offsets of one topic (v1–7).
    pub struct OffsetFetchResponseTopic {
        /// Topic name.
        pub name: String [0-7],
        /// Per-partition results.
        pub partitions: Vec<OffsetFetchResponsePartition> [0-7],
    }
}

wire_struct! {
    /// The committed offset of one partition (v1–7).
    pub struct OffsetFetchResponsePartition {
        /// Partition number.
        pub partition_index: i32 [0-7],
        /// The committed offset, -1 if nothing is committed.
        pub committed_offset: i64 [0-7],
        /// Leader epoch stored with the offset, -1 if unknown (v5–7).
        pub committed_leader_epoch: i32 [5-7] = -1,
        /// Metadata stored with the offset; may be null.
        pub metadata: Option<String> [0-7] = Some(String::new()),
        /// Partition-level error, 0 if none.
        pub error_code: i16 [0-7],
    }
}

wire_struct! {
    /// Committed offsets of one group (v8+).
    pub struct OffsetFetchResponseGroup {
        /// The group id.
        pub group_id: String [8+],
        /// Per-topic results.
        pub topics: Vec<OffsetFetchResponseTopics> [8+],
        /// Group-level error, 0 if none.
        pub error_code: i16 [8+],
    }
}

wire_struct! {
    /// Committed offsets of one topic within a group (v8+).
    pub struct OffsetFetchResponseTopics {
        /// Topic name.
        pub name: String [8+],
        /// Per-partition results.
        pub partitions: Vec<OffsetFetchResponsePartitions> [8+],
    }
}

wire_struct! {
    /// The committed offset of one partition within a group (v8+).
    pub struct OffsetFetchResponsePartitions {
        /// Partition number.
        pub partition_index: i32 [8+],
        /// The committed offset, -1 if nothing is committed.
        pub committed_offset: i64 [8+],
        /// Leader epoch stored with the offset, -1 if unknown.
        pub committed_leader_epoch: i32 [8+] = -1,
        /// Metadata stored with the offset; may be null.
        pub metadata: Option<String> [8+] = Some(String::new()),
        /// Partition-level error, 0 if none.
        pub error_code: i16 [8+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::{assert_literal, hex};
    use crate::protocol::{DecodeErrorKind, EncodeErrorKind, Message};
    use bytes::BytesMut;

    #[test]
    fn request_v1_classic() {
        let request = OffsetFetchRequest {
            group_id: "g".into(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: "t".into(),
                partition_indexes: vec![0, 1],
            }]),
            ..Default::default()
        };
        assert_literal(
            1,
            "0001 67 | 00000001 | 0001 74 | 00000002 00000000 00000001",
            &request,
        );
    }

    #[test]
    fn request_null_topics_only_from_v2() {
        let all = OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
            ..Default::default()
        };
        assert_literal(2, "0001 67 | ffffffff", &all);

        let err = all.encode(&mut BytesMut::new(), 1).unwrap_err();
        assert_eq!(err.kind, EncodeErrorKind::NullNotAllowed);
        let err = OffsetFetchRequest::decode_exact(hex("0001 67 | ffffffff"), 1).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnexpectedNull);
        assert_eq!(err.field, "OffsetFetchRequest.topics");
    }

    #[test]
    fn request_v7_flexible_single_group() {
        let request = OffsetFetchRequest {
            group_id: "g".into(),
            topics: None,
            require_stable: true,
            ..Default::default()
        };
        assert_literal(7, "02 67 | 00 | 01 | 00", &request);
    }

    #[test]
    fn request_v8_flexible_multi_group() {
        let request = OffsetFetchRequest {
            groups: vec![
                OffsetFetchRequestGroup {
                    group_id: "g1".into(),
                    topics: None,
                    ..Default::default()
                },
                OffsetFetchRequestGroup {
                    group_id: "g2".into(),
                    topics: Some(vec![OffsetFetchRequestTopics {
                        name: "t".into(),
                        partition_indexes: vec![0],
                    }]),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_literal(
            8,
            "03 | 03 6731 | 00 | 00 \
             | 03 6732 | 02 | 02 74 | 02 00000000 | 00 | 00 \
             | 00 | 00",
            &request,
        );
    }

    #[test]
    fn request_v9_flexible_with_member() {
        let request = OffsetFetchRequest {
            groups: vec![OffsetFetchRequestGroup {
                group_id: "g".into(),
                member_id: Some("m".into()),
                member_epoch: 5,
                topics: None,
            }],
            require_stable: true,
            ..Default::default()
        };
        assert_literal(
            9,
            "02 | 02 67 | 02 6d | 00000005 | 00 | 00 | 01 | 00",
            &request,
        );
    }

    #[test]
    fn response_v1_classic_with_null_metadata() {
        let response = OffsetFetchResponse {
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![
                    OffsetFetchResponsePartition {
                        partition_index: 0,
                        committed_offset: 10,
                        ..Default::default()
                    },
                    OffsetFetchResponsePartition {
                        partition_index: 1,
                        committed_offset: -1,
                        metadata: None,
                        ..Default::default()
                    },
                ],
            }],
            ..Default::default()
        };
        assert_literal(
            1,
            "00000001 | 0001 74 | 00000002 \
             | 00000000 000000000000000a 0000 0000 \
             | 00000001 ffffffffffffffff ffff 0000",
            &response,
        );
    }

    #[test]
    fn response_v5_classic_with_error_and_leader_epoch() {
        let response = OffsetFetchResponse {
            throttle_time_ms: 1,
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 10,
                    committed_leader_epoch: 3,
                    metadata: Some("md".into()),
                    error_code: 0,
                }],
            }],
            error_code: 16,
            ..Default::default()
        };
        assert_literal(
            5,
            "00000001 | 00000001 | 0001 74 | 00000001 \
             | 00000000 000000000000000a 00000003 0002 6d64 0000 \
             | 0010",
            &response,
        );
    }

    #[test]
    fn response_v7_flexible_single_group() {
        let response = OffsetFetchResponse {
            topics: vec![OffsetFetchResponseTopic {
                name: "t".into(),
                partitions: vec![OffsetFetchResponsePartition {
                    partition_index: 0,
                    committed_offset: 10,
                    committed_leader_epoch: 3,
                    metadata: Some("md".into()),
                    error_code: 0,
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            7,
            "00000000 | 02 | 02 74 | 02 | 00000000 000000000000000a 00000003 03 6d64 0000 00 \
             | 00 | 0000 | 00",
            &response,
        );
    }

    #[test]
    fn response_v8_flexible_multi_group() {
        let response = OffsetFetchResponse {
            groups: vec![OffsetFetchResponseGroup {
                group_id: "g".into(),
                topics: vec![OffsetFetchResponseTopics {
                    name: "t".into(),
                    partitions: vec![OffsetFetchResponsePartitions {
                        partition_index: 0,
                        committed_offset: 10,
                        metadata: None,
                        ..Default::default()
                    }],
                }],
                error_code: 0,
            }],
            ..Default::default()
        };
        assert_literal(
            8,
            "00000000 | 02 | 02 67 | 02 | 02 74 \
             | 02 | 00000000 000000000000000a ffffffff 00 0000 00 \
             | 00 | 0000 00 | 00",
            &response,
        );
    }
}
