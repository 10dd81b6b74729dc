//! Produce (key 0): append record batches to partitions.

use bytes::Bytes;

use crate::protocol::Uuid;

wire_struct! {
    /// Sends record batches to partition leaders for appending.
    pub struct ProduceRequest {
        /// The producer's transactional id; `None` for a producer outside
        /// any transaction.
        pub transactional_id: Option<String> [3+],
        /// How many replicas must have the data before the broker answers:
        /// 0 (no answer at all), 1 (the leader) or -1 (every in-sync replica).
        pub acks: i16 [0+],
        /// How long the broker may wait for the required acknowledgements,
        /// in milliseconds.
        pub timeout_ms: i32 [0+],
        /// The data to append, grouped by topic.
        pub topic_data: Vec<TopicProduceData> [0+],
    }
}
message! { ProduceRequest, versions [3-13], flexible [9+] }

wire_struct! {
    /// The data for one topic.
    pub struct TopicProduceData {
        /// Topic name (up to v12).
        pub name: String [0-12],
        /// Topic id (v13+), which replaces the name.
        pub topic_id: Uuid [13+],
        /// The data for each partition of the topic.
        pub partition_data: Vec<PartitionProduceData> [0+],
    }
}

wire_struct! {
    /// The record batches for one partition.
    pub struct PartitionProduceData {
        /// Partition number.
        pub index: i32 [0+],
        /// The encoded record batches, passed through unparsed; may be null
        /// on the wire.
        pub records: Option<Bytes> [0+] = Some(Bytes::new()),
    }
}

wire_struct! {
    /// The outcome of a produce request, per partition.
    pub struct ProduceResponse {
        /// One entry per topic in the request.
        pub responses: Vec<TopicProduceResponse> [0+],
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [1+],
        /// Addresses of the new leaders named in partitions that failed with
        /// `NOT_LEADER_OR_FOLLOWER` (v10+, tagged).
        pub node_endpoints: Vec<ProduceNodeEndpoint> [10+] tag 0,
    }
}
message! { ProduceResponse, versions [3-13], flexible [9+] }

wire_struct! {
    /// The outcome for one topic.
    pub struct TopicProduceResponse {
        /// Topic name (up to v12).
        pub name: String [0-12],
        /// Topic id (v13+), which replaces the name.
        pub topic_id: Uuid [13+],
        /// One entry per partition written to.
        pub partition_responses: Vec<PartitionProduceResponse> [0+],
    }
}

wire_struct! {
    /// The outcome for one partition.
    pub struct PartitionProduceResponse {
        /// Partition number.
        pub index: i32 [0+],
        /// Partition-level error, 0 if the append succeeded.
        pub error_code: i16 [0+],
        /// Offset given to the first appended record.
        pub base_offset: i64 [0+],
        /// The broker's append time when the topic uses `LogAppendTime`,
        /// -1 when it uses `CreateTime`.
        pub log_append_time_ms: i64 [2+] = -1,
        /// The partition's log start offset (v5+), -1 if unknown.
        pub log_start_offset: i64 [5+] = -1,
        /// Which batches were rejected and why (v8+).
        pub record_errors: Vec<BatchIndexAndErrorMessage> [8+],
        /// A message summarising why batches were rejected (v8+), or `None`.
        pub error_message: Option<String> [8+],
        /// The partition's current leader when this broker is not it
        /// (v10+, tagged).
        pub current_leader: ProduceLeaderIdAndEpoch [10+] tag 0,
    }
}

wire_struct! {
    /// One rejected batch and the reason.
    pub struct BatchIndexAndErrorMessage {
        /// Position of the rejected batch in the partition's record data.
        pub batch_index: i32 [8+],
        /// Why it was rejected, or `None`.
        pub batch_index_error_message: Option<String> [8+],
    }
}

wire_struct! {
    /// The leader a partition moved to.
    pub struct ProduceLeaderIdAndEpoch {
        /// Id of the new leader, -1 if unknown.
        pub leader_id: i32 [10+] = -1,
        /// Epoch of the new leader, -1 if unknown.
        pub leader_epoch: i32 [10+] = -1,
    }
}

wire_struct! {
    /// A broker's address, for redirecting to a new leader.
    pub struct ProduceNodeEndpoint {
        /// Broker id.
        pub node_id: i32 [10+],
        /// Host name to connect to.
        pub host: String [10+],
        /// Port to connect to.
        pub port: i32 [10+],
        /// Rack of the broker, if assigned.
        pub rack: Option<String> [10+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    fn two_partitions() -> Vec<PartitionProduceData> {
        vec![
            PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(&[1, 2, 3])),
            },
            PartitionProduceData {
                index: 1,
                records: None,
            },
        ]
    }

    #[test]
    fn request_v3_classic_with_null_records() {
        let request = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: two_partitions(),
                ..Default::default()
            }],
        };
        assert_literal(
            3,
            "ffff | ffff | 00007530 \
             | 00000001 | 0001 74 \
             | 00000002 | 00000000 00000003 010203 | 00000001 ffffffff",
            &request,
        );
    }

    #[test]
    fn request_v9_flexible() {
        let request = ProduceRequest {
            transactional_id: Some("tx".into()),
            acks: 1,
            timeout_ms: 5000,
            topic_data: vec![TopicProduceData {
                name: "t".into(),
                partition_data: two_partitions(),
                ..Default::default()
            }],
        };
        assert_literal(
            9,
            "03 7478 | 0001 | 00001388 \
             | 02 | 02 74 \
             | 03 | 00000000 04 010203 00 | 00000001 00 00 \
             | 00 \
             | 00",
            &request,
        );
    }

    #[test]
    fn request_v13_names_topics_by_id() {
        let request = ProduceRequest {
            acks: -1,
            timeout_ms: 0,
            topic_data: vec![TopicProduceData {
                // Not on the wire at v13.
                name: String::new(),
                topic_id: Uuid([0xab; 16]),
                partition_data: vec![PartitionProduceData {
                    index: 2,
                    records: Some(Bytes::new()),
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            13,
            "00 | ffff | 00000000 \
             | 02 | abababababababababababababababab \
             | 02 | 00000002 01 00 \
             | 00 \
             | 00",
            &request,
        );
    }

    #[test]
    fn response_v8_classic_with_record_errors() {
        let response = ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "t".into(),
                partition_responses: vec![PartitionProduceResponse {
                    index: 2,
                    error_code: 87,
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: 5,
                    record_errors: vec![
                        BatchIndexAndErrorMessage {
                            batch_index: 0,
                            batch_index_error_message: Some("bad".into()),
                        },
                        BatchIndexAndErrorMessage {
                            batch_index: 3,
                            batch_index_error_message: None,
                        },
                    ],
                    error_message: Some("x".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            throttle_time_ms: 10,
            ..Default::default()
        };
        assert_literal(
            8,
            "00000001 | 0001 74 \
             | 00000001 | 00000002 0057 ffffffffffffffff ffffffffffffffff 0000000000000005 \
             | 00000002 | 00000000 0003 626164 | 00000003 ffff \
             | 0001 78 \
             | 0000000a",
            &response,
        );
    }

    #[test]
    fn response_v10_flexible_with_tagged_leader_and_endpoints() {
        let response = ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "t".into(),
                partition_responses: vec![PartitionProduceResponse {
                    index: 0,
                    error_code: 6,
                    base_offset: -1,
                    current_leader: ProduceLeaderIdAndEpoch {
                        leader_id: 2,
                        leader_epoch: 7,
                    },
                    ..Default::default()
                }],
                ..Default::default()
            }],
            throttle_time_ms: 0,
            node_endpoints: vec![ProduceNodeEndpoint {
                node_id: 2,
                host: "h".into(),
                port: 9092,
                rack: None,
            }],
        };
        // A tagged struct's value carries the struct's own (empty) tagged
        // fields, so CurrentLeader is 4 + 4 + 1 = 9 bytes.
        assert_literal(
            10,
            "02 | 02 74 \
             | 02 | 00000000 0006 ffffffffffffffff ffffffffffffffff ffffffffffffffff \
             | 01 | 00 \
             | 01 | 00 09 00000002 00000007 00 \
             | 00 \
             | 00000000 \
             | 01 | 00 0d 02 00000002 02 68 00002384 00 00",
            &response,
        );
    }

    #[test]
    fn response_v13_by_topic_id_omits_default_tags() {
        let response = ProduceResponse {
            responses: vec![TopicProduceResponse {
                topic_id: Uuid([0x11; 16]),
                partition_responses: vec![PartitionProduceResponse {
                    index: 1,
                    base_offset: 42,
                    log_append_time_ms: 1000,
                    log_start_offset: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            throttle_time_ms: 1,
            ..Default::default()
        };
        assert_literal(
            13,
            "02 | 11111111111111111111111111111111 \
             | 02 | 00000001 0000 000000000000002a 00000000000003e8 0000000000000000 \
             | 01 | 00 | 00 \
             | 00 \
             | 00000001 \
             | 00",
            &response,
        );
    }
}
