//! CreateTopics (key 19): create topics, optionally with explicit replica
//! placement and configuration.

use crate::protocol::Uuid;

wire_struct! {
    /// Asks the controller to create topics.
    pub struct CreateTopicsRequest {
        /// The topics to create.
        pub topics: Vec<CreatableTopic> [0+],
        /// How long to wait for the topics to be created, in milliseconds.
        pub timeout_ms: i32 [0+] = 60000,
        /// Only check that the topics could be created, without creating
        /// them (v1+).
        pub validate_only: bool [1+],
    }
}
message! { CreateTopicsRequest, versions [2-7], flexible [5+] }

wire_struct! {
    /// One topic to create.
    pub struct CreatableTopic {
        /// Topic name.
        pub name: String [0+],
        /// Number of partitions, or -1 to use the broker default or the
        /// explicit assignments.
        pub num_partitions: i32 [0+],
        /// Number of replicas per partition, or -1 to use the broker default
        /// or the explicit assignments.
        pub replication_factor: i16 [0+],
        /// Explicit replica placement per partition; empty to let the
        /// controller place them.
        pub assignments: Vec<CreatableReplicaAssignment> [0+],
        /// Topic configuration overrides.
        pub configs: Vec<CreatableTopicConfig> [0+],
    }
}

wire_struct! {
    /// The replicas of one partition of a topic to create.
    pub struct CreatableReplicaAssignment {
        /// Partition number.
        pub partition_index: i32 [0+],
        /// Brokers that will hold the replicas, preferred leader first.
        pub broker_ids: Vec<i32> [0+],
    }
}

wire_struct! {
    /// One configuration override for a topic to create.
    pub struct CreatableTopicConfig {
        /// Configuration key.
        pub name: String [0+],
        /// Configuration value; may be null on the wire.
        pub value: Option<String> [0+] = Some(String::new()),
    }
}

wire_struct! {
    /// The outcome of a CreateTopics request, per topic.
    pub struct CreateTopicsResponse {
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [2+],
        /// One entry per requested topic.
        pub topics: Vec<CreatableTopicResult> [0+],
    }
}
message! { CreateTopicsResponse, versions [2-7], flexible [5+] }

wire_struct! {
    /// The outcome for one topic.
    pub struct CreatableTopicResult {
        /// Topic name.
        pub name: String [0+],
        /// Id of the new topic (v7+).
        pub topic_id: Uuid [7+],
        /// Topic-level error, 0 if the topic was (or could be) created.
        pub error_code: i16 [0+],
        /// Details of the error, or `None`.
        pub error_message: Option<String> [1+] nullable [0+] = Some(String::new()),
        /// The topic's partition count (v5+), -1 if not returned.
        pub num_partitions: i32 [5+] = -1,
        /// The topic's replication factor (v5+), -1 if not returned.
        pub replication_factor: i16 [5+] = -1,
        /// The topic's effective configuration (v5+), or `None` when the
        /// broker does not return it.
        pub configs: Option<Vec<CreatableTopicConfigs>> [5+] = Some(Vec::new()),
        /// Why the configuration was left out of the response, 0 if it was
        /// not (v5+, tagged; placed after `error_message` in Kafka's schema).
        pub topic_config_error_code: i16 [5+] tag 0,
    }
}

wire_struct! {
    /// One configuration entry of a created topic.
    pub struct CreatableTopicConfigs {
        /// Configuration key.
        pub name: String [5+],
        /// Configuration value, `None` if unset or sensitive.
        pub value: Option<String> [5+] = Some(String::new()),
        /// Whether the value cannot be changed.
        pub read_only: bool [5+],
        /// Where the value comes from (topic, broker, default, ...), -1 if
        /// unknown.
        pub config_source: i8 [5+] = -1,
        /// Whether the value is sensitive (and so hidden).
        pub is_sensitive: bool [5+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v4_classic_with_assignments_and_null_config() {
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: vec![
                    CreatableReplicaAssignment {
                        partition_index: 0,
                        broker_ids: vec![1, 2],
                    },
                    CreatableReplicaAssignment {
                        partition_index: 1,
                        broker_ids: vec![2, 3],
                    },
                ],
                configs: vec![
                    CreatableTopicConfig {
                        name: "a".into(),
                        value: Some("b".into()),
                    },
                    CreatableTopicConfig {
                        name: "c".into(),
                        value: None,
                    },
                ],
            }],
            timeout_ms: 60000,
            validate_only: true,
        };
        assert_literal(
            4,
            "00000001 | 0001 74 | ffffffff | ffff \
             | 00000002 | 00000000 00000002 00000001 00000002 | 00000001 00000002 00000002 00000003 \
             | 00000002 | 0001 61 0001 62 | 0001 63 ffff \
             | 0000ea60 | 01",
            &request,
        );
    }

    #[test]
    fn request_v5_flexible() {
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "t".into(),
                num_partitions: 3,
                replication_factor: 1,
                assignments: Vec::new(),
                configs: vec![CreatableTopicConfig {
                    name: "a".into(),
                    value: None,
                }],
            }],
            ..Default::default()
        };
        assert_literal(
            5,
            "02 | 02 74 | 00000003 | 0001 | 01 | 02 | 02 61 00 00 | 00 \
             | 0000ea60 | 00 | 00",
            &request,
        );
    }

    #[test]
    fn response_v4_classic_with_and_without_error_message() {
        let response = CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![
                CreatableTopicResult {
                    name: "t".into(),
                    error_code: 36,
                    error_message: Some("e".into()),
                    ..Default::default()
                },
                CreatableTopicResult {
                    name: "u".into(),
                    error_code: 0,
                    error_message: None,
                    ..Default::default()
                },
            ],
        };
        assert_literal(
            4,
            "00000000 | 00000002 | 0001 74 0024 0001 65 | 0001 75 0000 ffff",
            &response,
        );
    }

    #[test]
    fn response_v5_flexible_with_configs_and_tagged_error() {
        let response = CreateTopicsResponse {
            throttle_time_ms: 0,
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                error_code: 0,
                error_message: None,
                num_partitions: 1,
                replication_factor: 1,
                configs: Some(vec![CreatableTopicConfigs {
                    name: "a".into(),
                    value: None,
                    read_only: true,
                    config_source: 5,
                    is_sensitive: false,
                }]),
                topic_config_error_code: 29,
                ..Default::default()
            }],
        };
        assert_literal(
            5,
            "00000000 | 02 \
             | 02 74 | 0000 | 00 | 00000001 | 0001 \
             | 02 | 02 61 00 01 05 00 00 \
             | 01 | 00 02 001d \
             | 00",
            &response,
        );
    }

    #[test]
    fn response_v7_with_topic_id_and_null_configs() {
        let response = CreateTopicsResponse {
            throttle_time_ms: 3,
            topics: vec![CreatableTopicResult {
                name: "t".into(),
                topic_id: Uuid([0x22; 16]),
                error_code: 0,
                error_message: None,
                configs: None,
                ..Default::default()
            }],
        };
        assert_literal(
            7,
            "00000003 | 02 \
             | 02 74 | 22222222222222222222222222222222 | 0000 | 00 | ffffffff | ffff | 00 | 00 \
             | 00",
            &response,
        );
    }
}
