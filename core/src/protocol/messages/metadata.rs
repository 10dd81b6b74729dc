//! Metadata (key 3): brokers, topics, partitions, leaders and epochs.

use crate::protocol::Uuid;

wire_struct! {
    /// Asks for the cluster's brokers and the metadata of some or all topics.
    pub struct MetadataRequest {
        /// Topics to describe. `None` (v1+) means every topic; in v0 an
        /// empty list means every topic.
        pub topics: Option<Vec<MetadataRequestTopic>> [0+] nullable [1+] = Some(Vec::new()),
        /// Let the broker auto-create requested topics that do not exist (v4+).
        pub allow_auto_topic_creation: bool [4+] = true,
        /// Ask for the cluster's authorized operations (v8–10).
        pub include_cluster_authorized_operations: bool [8-10],
        /// Ask for each topic's authorized operations (v8+).
        pub include_topic_authorized_operations: bool [8+],
    }
}
message! { MetadataRequest, versions [0-13], flexible [9+] }

wire_struct! {
    /// A topic to describe, by name or (v10+) id.
    pub struct MetadataRequestTopic {
        /// Topic id, or nil when asking by name.
        pub topic_id: Uuid [10+],
        /// Topic name; null (v10+) when asking by id.
        pub name: Option<String> [0+] nullable [10+] = Some(String::new()),
    }
}

wire_struct! {
    /// The cluster's brokers and the requested topics' partitions.
    pub struct MetadataResponse {
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [3+],
        /// Every broker in the cluster.
        pub brokers: Vec<MetadataResponseBroker> [0+],
        /// The cluster id.
        pub cluster_id: Option<String> [2+],
        /// The controller broker's id, -1 if unknown.
        pub controller_id: i32 [1+] = -1,
        /// One entry per requested topic.
        pub topics: Vec<MetadataResponseTopic> [0+],
        /// Bit field of the cluster operations the client may perform (v8–10).
        pub cluster_authorized_operations: i32 [8-10] = i32::MIN,
        /// Top-level error (v13+).
        pub error_code: i16 [13+],
    }
}
message! { MetadataResponse, versions [0-13], flexible [9+] }

wire_struct! {
    /// One broker's address.
    pub struct MetadataResponseBroker {
        /// Broker id.
        pub node_id: i32 [0+],
        /// Host name to connect to.
        pub host: String [0+],
        /// Port to connect to.
        pub port: i32 [0+],
        /// Rack of the broker, if assigned.
        pub rack: Option<String> [1+],
    }
}

wire_struct! {
    /// One topic's metadata.
    pub struct MetadataResponseTopic {
        /// Topic-level error, 0 if none.
        pub error_code: i16 [0+],
        /// Topic name; null (v12+) for unknown topics asked for by id.
        pub name: Option<String> [0+] nullable [12+] = Some(String::new()),
        /// Topic id (v10+), nil when unknown.
        pub topic_id: Uuid [10+],
        /// True for internal topics such as `__consumer_offsets`.
        pub is_internal: bool [1+],
        /// Each partition of the topic.
        pub partitions: Vec<MetadataResponsePartition> [0+],
        /// Bit field of the operations the client may perform on the topic (v8+).
        pub topic_authorized_operations: i32 [8+] = i32::MIN,
    }
}

wire_struct! {
    /// One partition's leader and replicas.
    pub struct MetadataResponsePartition {
        /// Partition-level error, 0 if none (e.g. `LEADER_NOT_AVAILABLE`).
        pub error_code: i16 [0+],
        /// Partition number.
        pub partition_index: i32 [0+],
        /// Leader broker id, -1 if none.
        pub leader_id: i32 [0+],
        /// Leader epoch (v7+), -1 if unknown.
        pub leader_epoch: i32 [7+] = -1,
        /// All replicas.
        pub replica_nodes: Vec<i32> [0+],
        /// In-sync replicas.
        pub isr_nodes: Vec<i32> [0+],
        /// Offline replicas (v5+).
        pub offline_replicas: Vec<i32> [5+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_lists_topics_and_v1_null_means_all() {
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("t".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_literal(0, "00000001 | 0001 74", &request);
        let all = MetadataRequest {
            topics: None,
            ..Default::default()
        };
        assert_literal(1, "ffffffff", &all);
    }

    #[test]
    fn request_v9_flexible() {
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some("t".into()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        assert_literal(9, "02 | 02 74 00 | 00 | 00 | 00 | 00", &request);
    }

    fn partition() -> MetadataResponsePartition {
        MetadataResponsePartition {
            partition_index: 2,
            leader_id: 1,
            leader_epoch: 7,
            replica_nodes: vec![1],
            isr_nodes: vec![1],
            ..Default::default()
        }
    }

    #[test]
    fn response_v1_classic() {
        let response = MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                rack: None,
            }],
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: vec![MetadataResponsePartition {
                    leader_epoch: -1,
                    ..partition()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_literal(
            1,
            "00000001 | 00000001 0001 68 00002384 ffff \
             | 00000001 \
             | 00000001 | 0000 0001 74 00 \
             | 00000001 | 0000 00000002 00000001 | 00000001 00000001 | 00000001 00000001",
            &response,
        );
    }

    #[test]
    fn response_v12_flexible_with_topic_id() {
        let response = MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "h".into(),
                port: 9092,
                rack: Some("r".into()),
            }],
            cluster_id: Some("c".into()),
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                topic_id: Uuid([0x11; 16]),
                partitions: vec![partition()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_literal(
            12,
            "00000000 \
             | 02 | 00000001 02 68 00002384 02 72 00 \
             | 02 63 | 00000001 \
             | 02 | 0000 02 74 11111111111111111111111111111111 00 \
             | 02 | 0000 00000002 00000001 00000007 02 00000001 02 00000001 01 00 \
             | 80000000 00 \
             | 00",
            &response,
        );
    }
}
