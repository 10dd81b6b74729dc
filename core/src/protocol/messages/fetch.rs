//! Fetch (key 1): read record batches from partition leaders (or followers
//! the broker points the consumer at).

use bytes::Bytes;

use crate::protocol::Uuid;

wire_struct! {
    /// Asks a broker for records from a set of partitions, optionally within
    /// an incremental fetch session.
    pub struct FetchRequest {
        /// The follower's broker id, or -1 for a consumer (v0–14; v15+ moved
        /// it into the tagged `replica_state`).
        pub replica_id: i32 [0-14] = -1,
        /// How long the broker may wait for `min_bytes` to accumulate, in
        /// milliseconds.
        pub max_wait_ms: i32 [0+],
        /// The broker answers as soon as this many bytes are available (or
        /// `max_wait_ms` passes).
        pub min_bytes: i32 [0+],
        /// Soft cap on the size of the whole response; the first batch is
        /// always returned even if it is larger (KIP-74).
        pub max_bytes: i32 [3+] = 0x7fff_ffff,
        /// 0 = read uncommitted, 1 = read committed (only records below the
        /// last stable offset, with the aborted transactions listed).
        pub isolation_level: i8 [4+],
        /// Fetch session id; 0 to open a new session or not use one.
        pub session_id: i32 [7+],
        /// Position in the fetch session; -1 for a full fetch without a session,
        /// 0 to open a session.
        pub session_epoch: i32 [7+] = -1,
        /// Topics (and partitions) to fetch; in a session, only the changes.
        pub topics: Vec<FetchTopic> [0+],
        /// In an incremental fetch, partitions to drop from the session.
        pub forgotten_topics_data: Vec<ForgottenTopic> [7+],
        /// The consumer's rack, so the broker can pick a nearby replica.
        pub rack_id: String [11+],
        /// Cluster id the sender expects, if known (tagged, v12+; for
        /// KRaft replicas, consumers leave it null).
        pub cluster_id: Option<String> [12+] tag 0,
        /// The follower's identity (tagged, v15+); default for consumers.
        pub replica_state: FetchReplicaState [15+] tag 1,
    }
}
message! { FetchRequest, versions [4-18], flexible [12+] }

wire_struct! {
    /// Who a follower replica is; consumers leave both fields at -1.
    pub struct FetchReplicaState {
        /// The follower's broker id, -1 for a consumer.
        pub replica_id: i32 [15+] = -1,
        /// The follower's broker epoch, -1 when unknown.
        pub replica_epoch: i64 [15+] = -1,
    }
}

wire_struct! {
    /// One topic to fetch from.
    pub struct FetchTopic {
        /// Topic name (v0–12).
        pub topic: String [0-12],
        /// Topic id (v13+), replacing the name.
        pub topic_id: Uuid [13+],
        /// Partitions of the topic to fetch.
        pub partitions: Vec<FetchPartition> [0+],
    }
}

wire_struct! {
    /// Where to read one partition from.
    pub struct FetchPartition {
        /// Partition number.
        pub partition: i32 [0+],
        /// The leader epoch the consumer believes current, -1 to skip the
        /// check; a mismatch yields `FENCED_LEADER_EPOCH` or
        /// `UNKNOWN_LEADER_EPOCH`.
        pub current_leader_epoch: i32 [9+] = -1,
        /// Offset to start reading at.
        pub fetch_offset: i64 [0+],
        /// Epoch of the last record the sender has, so the leader can detect
        /// log divergence; -1 if none.
        pub last_fetched_epoch: i32 [12+] = -1,
        /// The follower's log start offset; -1 from consumers.
        pub log_start_offset: i64 [5+] = -1,
        /// Soft cap on bytes returned for this partition.
        pub partition_max_bytes: i32 [0+],
        /// The follower's log directory id (tagged, v17+); nil for consumers.
        pub replica_directory_id: Uuid [17+] tag 0,
        /// The follower's high watermark (tagged, v18+); `i64::MAX` when
        /// not sent.
        pub high_watermark: i64 [18+] tag 1 = i64::MAX,
    }
}

wire_struct! {
    /// Partitions of one topic to remove from the fetch session.
    pub struct ForgottenTopic {
        /// Topic name (v7–12).
        pub topic: String [7-12],
        /// Topic id (v13+).
        pub topic_id: Uuid [13+],
        /// Partition numbers to forget.
        pub partitions: Vec<i32> [7+],
    }
}

wire_struct! {
    /// Records and offsets for the requested partitions.
    pub struct FetchResponse {
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [1+],
        /// Top-level error, e.g. a fetch session error (v7+).
        pub error_code: i16 [7+],
        /// The fetch session id, 0 when no session is in use (v7+).
        pub session_id: i32 [7+],
        /// Per-topic results.
        pub responses: Vec<FetchableTopicResponse> [0+],
        /// Addresses of the new leaders named in partitions that failed with
        /// `NOT_LEADER_OR_FOLLOWER` or `FENCED_LEADER_EPOCH` (tagged, v16+).
        pub node_endpoints: Vec<FetchNodeEndpoint> [16+] tag 0,
    }
}
message! { FetchResponse, versions [4-18], flexible [12+] }

wire_struct! {
    /// Results for one topic.
    pub struct FetchableTopicResponse {
        /// Topic name (v0–12).
        pub topic: String [0-12],
        /// Topic id (v13+).
        pub topic_id: Uuid [13+],
        /// Per-partition results.
        pub partitions: Vec<FetchPartitionData> [0+],
    }
}

wire_struct! {
    /// Offsets, transaction markers and records for one partition.
    pub struct FetchPartitionData {
        /// Partition number.
        pub partition_index: i32 [0+],
        /// Partition-level error, 0 if none.
        pub error_code: i16 [0+],
        /// The partition's high watermark: the end of committed data.
        pub high_watermark: i64 [0+],
        /// The last stable offset: everything below it is decided (no open
        /// transactions); -1 if unknown.
        pub last_stable_offset: i64 [4+] = -1,
        /// The partition's log start offset, -1 if unknown (v5+).
        pub log_start_offset: i64 [5+] = -1,
        /// Aborted transactions overlapping the returned records, for read
        /// committed consumers; null when there are none to report.
        pub aborted_transactions: Option<Vec<FetchAbortedTransaction>> [4+] = Some(Vec::new()),
        /// Replica the consumer should fetch from next, -1 for the leader
        /// (v11+).
        pub preferred_read_replica: i32 [11+] = -1,
        /// Raw record batches, a zero-copy slice of the response; may end with
        /// a partial batch. Null when there is nothing to return.
        pub records: Option<Bytes> [0+] = Some(Bytes::new()),
        /// The point where the sender's log diverges from the leader's,
        /// sent when `last_fetched_epoch` does not match (tagged, v12+).
        pub diverging_epoch: FetchEpochEndOffset [12+] tag 0,
        /// The current leader, sent with leadership errors (tagged, v12+).
        pub current_leader: FetchLeaderIdAndEpoch [12+] tag 1,
        /// Snapshot to fetch instead when the offset is below the log start
        /// (tagged, v12+; used by KRaft replicas).
        pub snapshot_id: FetchSnapshotId [12+] tag 2,
    }
}

wire_struct! {
    /// An epoch and the offset where it ends.
    pub struct FetchEpochEndOffset {
        /// Leader epoch, -1 if unknown.
        pub epoch: i32 [12+] = -1,
        /// End offset of the epoch, -1 if unknown.
        pub end_offset: i64 [12+] = -1,
    }
}

wire_struct! {
    /// A partition's current leader.
    pub struct FetchLeaderIdAndEpoch {
        /// Leader broker id, -1 if unknown.
        pub leader_id: i32 [12+] = -1,
        /// Leader epoch, -1 if unknown.
        pub leader_epoch: i32 [12+] = -1,
    }
}

wire_struct! {
    /// Identifies a snapshot by its end offset and epoch.
    pub struct FetchSnapshotId {
        /// End offset of the snapshot.
        pub end_offset: i64 [0+] = -1,
        /// Epoch of the snapshot.
        pub epoch: i32 [0+] = -1,
    }
}

wire_struct! {
    /// A transaction that was aborted, so its records must be skipped.
    pub struct FetchAbortedTransaction {
        /// Producer id of the aborted transaction.
        pub producer_id: i64 [4+],
        /// Offset of the transaction's first record.
        pub first_offset: i64 [4+],
    }
}

wire_struct! {
    /// A broker's address, for redirecting after a leader change.
    pub struct FetchNodeEndpoint {
        /// Broker id.
        pub node_id: i32 [16+],
        /// Host name to connect to.
        pub host: String [16+],
        /// Port to connect to.
        pub port: i32 [16+],
        /// The broker's rack, if assigned.
        pub rack: Option<String> [16+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Message;
    use crate::protocol::tests::testing::{assert_literal, hex};

    #[test]
    fn request_v4_classic() {
        let request = FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            isolation_level: 1,
            topics: vec![FetchTopic {
                topic: "t".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 5,
                    partition_max_bytes: 0x0010_0000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_literal(
            4,
            "ffffffff | 000001f4 | 00000001 | 7fffffff | 01 \
             | 00000001 | 0001 74 \
             | 00000001 | 00000000 0000000000000005 00100000",
            &request,
        );
    }

    #[test]
    fn request_v11_classic_with_session_and_forgotten_topics() {
        let request = FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1024,
            session_id: 9,
            session_epoch: 3,
            topics: vec![FetchTopic {
                topic: "t".into(),
                partitions: vec![FetchPartition {
                    partition: 1,
                    current_leader_epoch: 4,
                    fetch_offset: 100,
                    partition_max_bytes: 0x0001_0000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            forgotten_topics_data: vec![ForgottenTopic {
                topic: "u".into(),
                partitions: vec![2],
                ..Default::default()
            }],
            rack_id: "r".into(),
            ..Default::default()
        };
        assert_literal(
            11,
            "ffffffff | 000001f4 | 00000001 | 00000400 | 00 | 00000009 | 00000003 \
             | 00000001 | 0001 74 \
             | 00000001 | 00000001 00000004 0000000000000064 ffffffffffffffff 00010000 \
             | 00000001 | 0001 75 | 00000001 00000002 \
             | 0001 72",
            &request,
        );
    }

    #[test]
    fn request_v12_flexible_with_names_and_cluster_id() {
        let request = FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            topics: vec![FetchTopic {
                topic: "t".into(),
                partitions: vec![FetchPartition {
                    fetch_offset: 5,
                    last_fetched_epoch: 2,
                    partition_max_bytes: 0x0010_0000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            cluster_id: Some("c".into()),
            ..Default::default()
        };
        assert_literal(
            12,
            "ffffffff | 000001f4 | 00000001 | 7fffffff | 00 | 00000000 | ffffffff \
             | 02 | 02 74 \
             | 02 | 00000000 ffffffff 0000000000000005 00000002 ffffffffffffffff 00100000 00 \
             | 00 \
             | 01 | 01 \
             | 01 | 00 02 02 63",
            &request,
        );
    }

    #[test]
    fn request_v18_every_tagged_field() {
        // v15+ has no replica_id field; the identity moves to tag 1.
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1024,
            isolation_level: 0,
            session_id: 9,
            session_epoch: 3,
            topics: vec![FetchTopic {
                topic_id: Uuid([0x11; 16]),
                partitions: vec![FetchPartition {
                    partition: 1,
                    current_leader_epoch: 4,
                    fetch_offset: 100,
                    last_fetched_epoch: 3,
                    log_start_offset: -1,
                    partition_max_bytes: 0x0001_0000,
                    replica_directory_id: Uuid([0x22; 16]),
                    high_watermark: 200,
                }],
                ..Default::default()
            }],
            forgotten_topics_data: vec![ForgottenTopic {
                topic_id: Uuid([0x33; 16]),
                partitions: vec![2],
                ..Default::default()
            }],
            rack_id: "r".into(),
            cluster_id: Some("c".into()),
            replica_state: FetchReplicaState {
                replica_id: 2,
                replica_epoch: 7,
            },
        };
        assert_literal(
            18,
            "000001f4 | 00000001 | 00000400 | 00 | 00000009 | 00000003 \
             | 02 | 11111111111111111111111111111111 \
             | 02 | 00000001 00000004 0000000000000064 00000003 ffffffffffffffff 00010000 \
             | 02 | 00 10 22222222222222222222222222222222 | 01 08 00000000000000c8 \
             | 00 \
             | 02 | 33333333333333333333333333333333 | 02 00000002 | 00 \
             | 02 72 \
             | 02 | 00 02 02 63 | 01 0d 00000002 0000000000000007 00",
            &request,
        );
    }

    #[test]
    fn tagged_fields_at_their_schema_defaults_are_not_written() {
        // Spelled out rather than taken from `Default`, so a wrong default
        // would write a tag and fail here (the differential test cannot see
        // it: its random values almost never hit a sentinel like i64::MAX).
        let request = FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            topics: vec![FetchTopic {
                topic_id: Uuid([0x11; 16]),
                partitions: vec![FetchPartition {
                    partition_max_bytes: 0x0010_0000,
                    replica_directory_id: Uuid::NIL,
                    high_watermark: i64::MAX,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            cluster_id: None,
            replica_state: FetchReplicaState {
                replica_id: -1,
                replica_epoch: -1,
            },
            ..Default::default()
        };
        assert_literal(
            18,
            "000001f4 | 00000001 | 7fffffff | 00 | 00000000 | ffffffff \
             | 02 | 11111111111111111111111111111111 \
             | 02 | 00000000 ffffffff 0000000000000000 ffffffff ffffffffffffffff 00100000 00 \
             | 00 | 01 | 01 | 00",
            &request,
        );

        let response = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic_id: Uuid([0x11; 16]),
                partitions: vec![FetchPartitionData {
                    diverging_epoch: FetchEpochEndOffset {
                        epoch: -1,
                        end_offset: -1,
                    },
                    current_leader: FetchLeaderIdAndEpoch {
                        leader_id: -1,
                        leader_epoch: -1,
                    },
                    snapshot_id: FetchSnapshotId {
                        end_offset: -1,
                        epoch: -1,
                    },
                    ..Default::default()
                }],
                ..Default::default()
            }],
            node_endpoints: Vec::new(),
            ..Default::default()
        };
        assert_literal(
            16,
            "00000000 | 0000 | 00000000 \
             | 02 | 11111111111111111111111111111111 \
             | 02 | 00000000 0000 0000000000000000 ffffffffffffffff ffffffffffffffff \
             | 01 | ffffffff | 01 | 00 \
             | 00 | 00",
            &response,
        );
    }

    #[test]
    fn response_v4_classic_with_nulls() {
        let response = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![FetchPartitionData {
                    high_watermark: 10,
                    last_stable_offset: 10,
                    aborted_transactions: None,
                    records: None,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_literal(
            4,
            "00000000 | 00000001 | 0001 74 \
             | 00000001 | 00000000 0000 000000000000000a 000000000000000a \
             | ffffffff | ffffffff",
            &response,
        );
    }

    #[test]
    fn response_v11_classic_with_records_and_aborted_transactions() {
        let response = FetchResponse {
            session_id: 9,
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![FetchPartitionData {
                    partition_index: 1,
                    high_watermark: 10,
                    last_stable_offset: 8,
                    log_start_offset: 0,
                    aborted_transactions: Some(vec![FetchAbortedTransaction {
                        producer_id: 5,
                        first_offset: 3,
                    }]),
                    preferred_read_replica: 2,
                    records: Some(Bytes::from_static(b"abc")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_literal(
            11,
            "00000000 | 0000 | 00000009 \
             | 00000001 | 0001 74 \
             | 00000001 | 00000001 0000 000000000000000a 0000000000000008 0000000000000000 \
             | 00000001 0000000000000005 0000000000000003 \
             | 00000002 \
             | 00000003 616263",
            &response,
        );
    }

    #[test]
    fn response_v16_flexible_with_every_tagged_field() {
        let response = FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic_id: Uuid([0x11; 16]),
                partitions: vec![FetchPartitionData {
                    error_code: 74,
                    high_watermark: 10,
                    last_stable_offset: 10,
                    log_start_offset: 0,
                    aborted_transactions: None,
                    records: Some(Bytes::new()),
                    diverging_epoch: FetchEpochEndOffset {
                        epoch: 3,
                        end_offset: 7,
                    },
                    current_leader: FetchLeaderIdAndEpoch {
                        leader_id: 2,
                        leader_epoch: 5,
                    },
                    snapshot_id: FetchSnapshotId {
                        end_offset: 6,
                        epoch: 1,
                    },
                    ..Default::default()
                }],
                ..Default::default()
            }],
            node_endpoints: vec![FetchNodeEndpoint {
                node_id: 2,
                host: "h".into(),
                port: 9092,
                rack: None,
            }],
            ..Default::default()
        };
        assert_literal(
            16,
            "00000000 | 0000 | 00000000 \
             | 02 | 11111111111111111111111111111111 \
             | 02 | 00000000 004a 000000000000000a 000000000000000a 0000000000000000 \
             | 00 | ffffffff | 01 \
             | 03 | 00 0d 00000003 0000000000000007 00 \
             | 01 09 00000002 00000005 00 \
             | 02 0d 0000000000000006 00000001 00 \
             | 00 \
             | 01 | 00 0d 02 00000002 02 68 00002384 00 00",
            &response,
        );
    }

    #[test]
    fn response_records_are_a_slice_of_the_input() {
        let input = hex("00000000 | 0000 | 00000000 | 02 | 02 74 \
             | 02 | 00000000 0000 0000000000000003 0000000000000003 0000000000000000 \
             | 01 | ffffffff | 04 616263 | 00 | 00 | 00");
        let response = FetchResponse::decode_exact(input.clone(), 12).unwrap();
        let records = response.responses[0].partitions[0]
            .records
            .as_ref()
            .unwrap();
        assert_eq!(&records[..], b"abc");
        let range = input.as_ptr_range();
        assert!(range.contains(&records.as_ptr()), "records were copied");
    }
}
