//! ListOffsets (key 2): look up offsets by timestamp, or the earliest and
//! latest offsets of partitions.

wire_struct! {
    /// Asks partition leaders for the offset matching a timestamp (or one of
    /// the special timestamps such as -1 for latest, -2 for earliest).
    pub struct ListOffsetsRequest {
        /// The requesting broker's id; consumers send -1.
        pub replica_id: i32 [0+],
        /// 0 = read uncommitted (latest is the high watermark), 1 = read
        /// committed (latest is the last stable offset) (v2+).
        pub isolation_level: i8 [2+],
        /// Topics to look up.
        pub topics: Vec<ListOffsetsTopic> [0+],
        /// How long the broker may wait on tiered storage, in milliseconds
        /// (v10+).
        pub timeout_ms: i32 [10+],
    }
}
message! { ListOffsetsRequest, versions [1-10], flexible [6+] }

wire_struct! {
    /// Partitions of one topic to look up.
    pub struct ListOffsetsTopic {
        /// Topic name.
        pub name: String [0+],
        /// Partitions to look up.
        pub partitions: Vec<ListOffsetsPartition> [0+],
    }
}

wire_struct! {
    /// One partition and the timestamp to resolve.
    pub struct ListOffsetsPartition {
        /// Partition number.
        pub partition_index: i32 [0+],
        /// The leader epoch the client believes current, -1 to skip the
        /// check (v4+).
        pub current_leader_epoch: i32 [4+] = -1,
        /// Target timestamp in milliseconds, or a special value: -1 latest,
        /// -2 earliest, -3 largest timestamp, -4 earliest local, -5 latest
        /// tiered.
        pub timestamp: i64 [0+],
    }
}

wire_struct! {
    /// The offsets found for each requested partition.
    pub struct ListOffsetsResponse {
        /// Time the request was throttled for, in milliseconds (v2+).
        pub throttle_time_ms: i32 [2+],
        /// Per-topic results.
        pub topics: Vec<ListOffsetsTopicResponse> [0+],
    }
}
message! { ListOffsetsResponse, versions [1-10], flexible [6+] }

wire_struct! {
    /// Results for one topic.
    pub struct ListOffsetsTopicResponse {
        /// Topic name.
        pub name: String [0+],
        /// Per-partition results.
        pub partitions: Vec<ListOffsetsPartitionResponse> [0+],
    }
}

wire_struct! {
    /// The offset found for one partition.
    pub struct ListOffsetsPartitionResponse {
        /// Partition number.
        pub partition_index: i32 [0+],
        /// Partition-level error, 0 if none.
        pub error_code: i16 [0+],
        /// Timestamp of the record at `offset`, -1 when not applicable.
        pub timestamp: i64 [1+] = -1,
        /// The offset found, -1 if none.
        pub offset: i64 [1+] = -1,
        /// Leader epoch of the record at `offset`, -1 if unknown (v4+).
        pub leader_epoch: i32 [4+] = -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v1_classic() {
        let request = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: -1,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            1,
            "ffffffff | 00000001 | 0001 74 | 00000001 | 00000000 ffffffffffffffff",
            &request,
        );
    }

    #[test]
    fn request_v4_classic_with_leader_epoch() {
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 1,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 2,
                    current_leader_epoch: 5,
                    timestamp: 0x0000_0190_0000_0000,
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            4,
            "ffffffff | 01 | 00000001 | 0001 74 | 00000001 | 00000002 00000005 0000019000000000",
            &request,
        );
    }

    #[test]
    fn request_v10_flexible_with_timeout() {
        let request = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 1,
            topics: vec![ListOffsetsTopic {
                name: "t".into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: 0,
                    current_leader_epoch: 5,
                    timestamp: -2,
                }],
            }],
            timeout_ms: 30_000,
        };
        assert_literal(
            10,
            "ffffffff | 01 | 02 | 02 74 | 02 | 00000000 00000005 fffffffffffffffe 00 | 00 \
             | 00007530 | 00",
            &request,
        );
    }

    #[test]
    fn response_v1_classic() {
        let response = ListOffsetsResponse {
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: vec![ListOffsetsPartitionResponse {
                    partition_index: 0,
                    offset: 42,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            1,
            "00000001 | 0001 74 | 00000001 | 00000000 0000 ffffffffffffffff 000000000000002a",
            &response,
        );
    }

    #[test]
    fn response_v10_flexible() {
        let response = ListOffsetsResponse {
            throttle_time_ms: 0,
            topics: vec![ListOffsetsTopicResponse {
                name: "t".into(),
                partitions: vec![
                    ListOffsetsPartitionResponse {
                        partition_index: 1,
                        error_code: 0,
                        timestamp: -1,
                        offset: 42,
                        leader_epoch: 3,
                    },
                    ListOffsetsPartitionResponse {
                        partition_index: 2,
                        error_code: 6,
                        ..Default::default()
                    },
                ],
            }],
        };
        assert_literal(
            10,
            "00000000 | 02 | 02 74 | 03 \
             | 00000001 0000 ffffffffffffffff 000000000000002a 00000003 00 \
             | 00000002 0006 ffffffffffffffff ffffffffffffffff ffffffff 00 \
             | 00 | 00",
            &response,
        );
    }
}
