//! OffsetForLeaderEpoch (key 23): find where a leader epoch ends, to detect
//! log truncation after a leader change.

wire_struct! {
    /// Asks partition leaders for the end offset of given leader epochs.
    pub struct OffsetForLeaderEpochRequest {
        /// The requesting follower's broker id, -1 for a consumer; -2 (the
        /// default) means "debugging client" to the broker (v3+).
        pub replica_id: i32 [3+] = -2,
        /// Topics to look up.
        pub topics: Vec<OffsetForLeaderTopic> [0+],
    }
}
message! { OffsetForLeaderEpochRequest, versions [2-4], flexible [4+] }

wire_struct! {
    /// Partitions of one topic to look up.
    pub struct OffsetForLeaderTopic {
        /// Topic name.
        pub topic: String [0+],
        /// Partitions to look up.
        pub partitions: Vec<OffsetForLeaderPartition> [0+],
    }
}

wire_struct! {
    /// One partition and the epoch whose end offset is wanted.
    pub struct OffsetForLeaderPartition {
        /// Partition number.
        pub partition: i32 [0+],
        /// The leader epoch the client believes current, -1 to skip the
        /// check; a mismatch yields `FENCED_LEADER_EPOCH` or
        /// `UNKNOWN_LEADER_EPOCH`.
        pub current_leader_epoch: i32 [2+] = -1,
        /// The epoch to look up (typically that of the last consumed record).
        pub leader_epoch: i32 [0+],
    }
}

wire_struct! {
    /// End offsets of the requested epochs.
    pub struct OffsetForLeaderEpochResponse {
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [2+],
        /// Per-topic results.
        pub topics: Vec<OffsetForLeaderTopicResult> [0+],
    }
}
message! { OffsetForLeaderEpochResponse, versions [2-4], flexible [4+] }

wire_struct! {
    /// Results for one topic.
    pub struct OffsetForLeaderTopicResult {
        /// Topic name.
        pub topic: String [0+],
        /// Per-partition results.
        pub partitions: Vec<OffsetForLeaderEpochEndOffset> [0+],
    }
}

wire_struct! {
    /// The end of an epoch for one partition: the largest epoch not above
    /// the requested one, and the offset where it ends. A consumer whose
    /// position is past `end_offset` has seen truncated data.
    pub struct OffsetForLeaderEpochEndOffset {
        /// Partition-level error, 0 if none.
        pub error_code: i16 [0+],
        /// Partition number.
        pub partition: i32 [0+],
        /// The largest known epoch not greater than the requested one, -1
        /// if unknown.
        pub leader_epoch: i32 [1+] = -1,
        /// The end offset of that epoch, -1 if unknown.
        pub end_offset: i64 [0+] = -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    fn topics() -> Vec<OffsetForLeaderTopic> {
        vec![OffsetForLeaderTopic {
            topic: "t".into(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                current_leader_epoch: 5,
                leader_epoch: 4,
            }],
        }]
    }

    #[test]
    fn request_v2_classic_has_no_replica_id() {
        let request = OffsetForLeaderEpochRequest {
            topics: topics(),
            ..Default::default()
        };
        assert_literal(
            2,
            "00000001 | 0001 74 | 00000001 | 00000000 00000005 00000004",
            &request,
        );
    }

    #[test]
    fn request_v3_classic_with_default_replica_id() {
        let request = OffsetForLeaderEpochRequest {
            topics: topics(),
            ..Default::default()
        };
        assert_literal(
            3,
            "fffffffe | 00000001 | 0001 74 | 00000001 | 00000000 00000005 00000004",
            &request,
        );
    }

    #[test]
    fn request_v4_flexible() {
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: topics(),
        };
        assert_literal(
            4,
            "ffffffff | 02 | 02 74 | 02 | 00000000 00000005 00000004 00 | 00 | 00",
            &request,
        );
    }

    #[test]
    fn response_v2_classic() {
        let response = OffsetForLeaderEpochResponse {
            throttle_time_ms: 0,
            topics: vec![OffsetForLeaderTopicResult {
                topic: "t".into(),
                partitions: vec![
                    OffsetForLeaderEpochEndOffset {
                        error_code: 0,
                        partition: 0,
                        leader_epoch: 4,
                        end_offset: 100,
                    },
                    OffsetForLeaderEpochEndOffset {
                        error_code: 74,
                        partition: 1,
                        ..Default::default()
                    },
                ],
            }],
        };
        assert_literal(
            2,
            "00000000 | 00000001 | 0001 74 | 00000002 \
             | 0000 00000000 00000004 0000000000000064 \
             | 004a 00000001 ffffffff ffffffffffffffff",
            &response,
        );
    }

    #[test]
    fn response_v4_flexible() {
        let response = OffsetForLeaderEpochResponse {
            throttle_time_ms: 7,
            topics: vec![OffsetForLeaderTopicResult {
                topic: "t".into(),
                partitions: vec![OffsetForLeaderEpochEndOffset {
                    error_code: 0,
                    partition: 0,
                    leader_epoch: 4,
                    end_offset: 100,
                }],
            }],
        };
        assert_literal(
            4,
            "00000007 | 02 | 02 74 | 02 | 0000 00000000 00000004 0000000000000064 00 | 00 | 00",
            &response,
        );
    }
}
