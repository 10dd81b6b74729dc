//! OffsetCommit (key 8): store a consumer group's positions with its
//! coordinator.
//!
//! Versions 2–9 are implemented: Kafka 4.x brokers reject 0–1, and v10
//! (topic ids instead of names) is still unstable in Kafka 4.1.

wire_struct! {
    /// Commits offsets for a consumer group.
    pub struct OffsetCommitRequest {
        /// The consumer group.
        pub group_id: String [0+],
        /// The group generation (classic protocol) or member epoch (consumer
        /// protocol, KIP-848); -1 to commit without group membership.
        pub generation_id_or_member_epoch: i32 [1+] = -1,
        /// The member id the coordinator assigned; empty without membership.
        pub member_id: String [1+],
        /// The static member id, or null for dynamic members (v7+).
        pub group_instance_id: Option<String> [7+],
        /// How long to keep the offsets, in milliseconds; -1 for the
        /// broker's setting (v2–4 only).
        pub retention_time_ms: i64 [2-4] = -1,
        /// Offsets to commit, per topic.
        pub topics: Vec<OffsetCommitRequestTopic> [0+],
    }
}
message! { OffsetCommitRequest, versions [2-9], flexible [8+] }

wire_struct! {
    /// Offsets to commit for one topic.
    pub struct OffsetCommitRequestTopic {
        /// Topic name.
        pub name: String [0+],
        /// Offsets to commit, per partition.
        pub partitions: Vec<OffsetCommitRequestPartition> [0+],
    }
}

wire_struct! {
    /// The offset to commit for one partition.
    pub struct OffsetCommitRequestPartition {
        /// Partition number.
        pub partition_index: i32 [0+],
        /// The next offset to consume (one past the last processed record).
        pub committed_offset: i64 [0+],
        /// Leader epoch of the last consumed record, -1 if unknown (v6+).
        pub committed_leader_epoch: i32 [6+] = -1,
        /// Free-form metadata stored with the offset; may be null.
        pub committed_metadata: Option<String> [0+] = Some(String::new()),
    }
}

wire_struct! {
    /// The outcome of an offset commit, per partition.
    pub struct OffsetCommitResponse {
        /// Time the request was throttled for, in milliseconds (v3+).
        pub throttle_time_ms: i32 [3+],
        /// Per-topic results.
        pub topics: Vec<OffsetCommitResponseTopic> [0+],
    }
}
message! { OffsetCommitResponse, versions [2-9], flexible [8+] }

wire_struct! {
    /// Commit results for one topic.
    pub struct OffsetCommitResponseTopic {
        /// Topic name.
        pub name: String [0+],
        /// Per-partition results.
        pub partitions: Vec<OffsetCommitResponsePartition> [0+],
    }
}

wire_struct! {
    /// Commit result for one partition.
    pub struct OffsetCommitResponsePartition {
        /// Partition number.
        pub partition_index: i32 [0+],
        /// Error for this partition, 0 if the commit succeeded.
        pub error_code: i16 [0+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v2_classic_with_retention_and_null_metadata() {
        let request = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: 3,
            member_id: "m".into(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 10,
                    committed_metadata: None,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            2,
            "0001 67 | 00000003 | 0001 6d | ffffffffffffffff \
             | 00000001 | 0001 74 | 00000001 | 00000000 000000000000000a ffff",
            &request,
        );
    }

    #[test]
    fn request_v7_classic_with_instance_id_and_leader_epoch() {
        let request = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: 3,
            member_id: "m".into(),
            group_instance_id: Some("i".into()),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 1,
                    committed_offset: 10,
                    committed_leader_epoch: 5,
                    committed_metadata: Some(String::new()),
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            7,
            "0001 67 | 00000003 | 0001 6d | 0001 69 \
             | 00000001 | 0001 74 | 00000001 | 00000001 000000000000000a 00000005 0000",
            &request,
        );
    }

    #[test]
    fn request_v8_flexible_with_null_instance_id() {
        let request = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id_or_member_epoch: 3,
            member_id: "m".into(),
            group_instance_id: None,
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 10,
                    committed_leader_epoch: 5,
                    committed_metadata: Some("md".into()),
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            8,
            "02 67 | 00000003 | 02 6d | 00 \
             | 02 | 02 74 | 02 | 00000000 000000000000000a 00000005 03 6d64 00 | 00 | 00",
            &request,
        );
    }

    fn response() -> OffsetCommitResponse {
        OffsetCommitResponse {
            throttle_time_ms: 0,
            topics: vec![OffsetCommitResponseTopic {
                name: "t".into(),
                partitions: vec![
                    OffsetCommitResponsePartition {
                        partition_index: 0,
                        error_code: 0,
                    },
                    OffsetCommitResponsePartition {
                        partition_index: 1,
                        error_code: 22,
                    },
                ],
            }],
        }
    }

    #[test]
    fn response_v2_classic_has_no_throttle_time() {
        assert_literal(
            2,
            "00000001 | 0001 74 | 00000002 | 00000000 0000 | 00000001 0016",
            &response(),
        );
    }

    #[test]
    fn response_v3_classic() {
        assert_literal(
            3,
            "00000000 | 00000001 | 0001 74 | 00000002 | 00000000 0000 | 00000001 0016",
            &response(),
        );
    }

    #[test]
    fn response_v8_flexible() {
        assert_literal(
            8,
            "00000000 | 02 | 02 74 | 03 | 00000000 0000 00 | 00000001 0016 00 | 00 | 00",
            &response(),
        );
    }
}
