//! Codec conformance against both real brokers: for every API Odradek
//! implements that the broker advertises, requests go out at every version both
//! sides support, and the replies decode without error (and say what they
//! should).
//!
//! Record-carrying APIs (Produce, Fetch) are exercised in `records.rs`.

use bytes::Bytes;
use odradek_core::protocol::messages::{
    create_topics::CreatableTopic,
    delete_topics::DeleteTopicState,
    find_coordinator::FindCoordinatorRequest,
    heartbeat::HeartbeatRequest,
    join_group::JoinGroupRequestProtocol,
    leave_group::LeaveGroupRequestMember,
    list_offsets::{ListOffsetsPartition, ListOffsetsTopic},
    offset_commit::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics},
    sync_group::SyncGroupRequestAssignment,
    *,
};
use odradek_core::protocol::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, EmbeddedProtocol, Request,
    SecretBytes, TopicPartitions, VersionRange,
};
use odradek_tests::driver::Connection;
use odradek_tests::{Broker, BrokerKind};

/// Kafka's MEMBER_ID_REQUIRED: a JoinGroup v4+ without a member id gets one
/// assigned and must rejoin with it.
const MEMBER_ID_REQUIRED: i16 = 79;

fn start(kind: BrokerKind) -> (Broker, Connection) {
    let broker = Broker::start(kind).expect("start broker");
    let conn = Connection::connect(broker.addr()).expect("connect to the broker");
    (broker, conn)
}

fn common<R: Request>(conn: &Connection) -> VersionRange {
    conn.common_versions(R::API_KEY)
        .unwrap_or_else(|| panic!("the broker does not offer {}", R::API_KEY))
}

/// The version of `range` nearest to `i`.
fn clamp(range: VersionRange, i: i16) -> i16 {
    i.clamp(range.min, range.max)
}

#[test]
fn tansu_offers_every_api_but_offset_for_leader_epoch() {
    let (_broker, conn) = start(BrokerKind::Tansu);
    let missing: Vec<ApiKey> = ApiKey::ALL
        .iter()
        .copied()
        .filter(|&api| conn.common_versions(api).is_none())
        .collect();
    // brokers.md: tansu does not advertise OffsetForLeaderEpoch. If that
    // changes, this test says so and the API joins the sweep below.
    assert_eq!(
        missing,
        vec![ApiKey::OffsetForLeaderEpoch],
        "advertised: {:?}",
        conn.broker_versions()
    );
}

#[test]
fn crabka_offers_every_api() {
    let (_broker, conn) = start(BrokerKind::Crabka);
    let missing: Vec<ApiKey> = ApiKey::ALL
        .iter()
        .copied()
        .filter(|&api| conn.common_versions(api).is_none())
        .collect();
    assert_eq!(missing, vec![], "advertised: {:?}", conn.broker_versions());
}

/// crabka only (tansu does not offer it): OffsetForLeaderEpoch at every
/// common version, as a consumer asks (replica id -1 from v3): the current
/// epoch ends at the log end; the broker counts the requests.
#[test]
fn crabka_offset_for_leader_epoch_at_every_common_version() {
    let broker = Broker::start_logging_requests().expect("start crabka");
    let mut conn = Connection::connect(broker.addr()).expect("connect");
    broker
        .create_topic("conformance-epochs", 1)
        .expect("create topic");
    let batch = odradek_core::records::RecordBatchBuilder::new(0)
        .records(vec![
            odradek_core::records::NewRecord::new().with_value("v");
            5
        ])
        .encode()
        .expect("encode");
    conn.produce("conformance-epochs", 0, batch)
        .expect("produce");
    let versions = common::<OffsetForLeaderEpochRequest>(&conn);
    for version in versions.iter() {
        let request = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![offset_for_leader_epoch::OffsetForLeaderTopic {
                topic: "conformance-epochs".into(),
                partitions: vec![offset_for_leader_epoch::OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: 0,
                    leader_epoch: 0,
                }],
            }],
        };
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.leader_epoch, p.end_offset),
            (0, 0, 5),
            "v{version}: {response:?}"
        );
    }
    // The broker logs a request just after answering it: wait for the line.
    let want = versions.iter().count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let logged = broker
            .requests_answered(ApiKey::OffsetForLeaderEpoch)
            .expect("request log");
        if logged == want {
            break;
        }
        assert!(
            logged < want && std::time::Instant::now() < deadline,
            "{logged} OffsetForLeaderEpoch requests in the broker's log, want {want}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn api_versions_at_every_common_version(kind: BrokerKind) {
    let (_broker, mut conn) = start(kind);
    for version in common::<ApiVersionsRequest>(&conn).iter() {
        let request = ApiVersionsRequest {
            client_software_name: "odradek-tests".into(),
            client_software_version: "0.1.0".into(),
        };
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(response.error_code, 0, "v{version}");
        assert!(
            response
                .api_keys
                .iter()
                .any(|k| k.api_key == ApiKey::Fetch.code()),
            "v{version}: {response:?}"
        );
    }
}

fn metadata_at_every_common_version(kind: BrokerKind) {
    let (broker, mut conn) = start(kind);
    broker
        .create_topic("conformance-metadata", 3)
        .expect("create topic");
    for version in common::<MetadataRequest>(&conn).iter() {
        let request = MetadataRequest {
            topics: Some(vec![metadata::MetadataRequestTopic {
                name: Some("conformance-metadata".into()),
                ..Default::default()
            }]),
            // True is the only value v0-3 can express.
            allow_auto_topic_creation: version < 4,
            ..Default::default()
        };
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(response.brokers.len(), 1, "v{version}: {response:?}");
        assert_eq!(
            response.brokers[0].port,
            i32::from(broker.addr().port()),
            "v{version}"
        );
        let topic = &response.topics[0];
        assert_eq!(topic.error_code, 0, "v{version}: {topic:?}");
        assert_eq!(topic.partitions.len(), 3, "v{version}: {topic:?}");
    }
}

/// A request deleting topic `name`, in the form `version` has: a list of
/// names before v6, name-or-id entries from v6.
fn delete_request(name: &str, version: i16) -> DeleteTopicsRequest {
    if version >= 6 {
        DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some(name.into()),
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        }
    } else {
        DeleteTopicsRequest {
            topic_names: vec![name.into()],
            timeout_ms: 10_000,
            ..Default::default()
        }
    }
}

fn create_and_delete_topics_at_every_common_version(kind: BrokerKind) {
    let (_broker, mut conn) = start(kind);
    let create = common::<CreateTopicsRequest>(&conn);
    let delete = common::<DeleteTopicsRequest>(&conn);
    for version in create.iter() {
        let name = format!("conformance-create-v{version}");
        let request = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.clone(),
                num_partitions: 2,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        };
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(response.topics.len(), 1, "v{version}: {response:?}");
        assert_eq!(response.topics[0].name, name, "v{version}");
        assert_eq!(response.topics[0].error_code, 0, "v{version}: {response:?}");

        // Delete it again at a version from DeleteTopics' range.
        let delete_version = clamp(delete, version - create.min + delete.min);
        let request = delete_request(&name, delete_version);
        let response = conn
            .send(&request, delete_version)
            .unwrap_or_else(|e| panic!("DeleteTopics v{delete_version}: {e}"));
        assert_eq!(
            response.responses.len(),
            1,
            "v{delete_version}: {response:?}"
        );
        assert_eq!(
            response.responses[0].error_code, 0,
            "v{delete_version}: {response:?}"
        );
    }
    // The versions not reached above.
    for version in delete.iter() {
        let name = format!("conformance-delete-v{version}");
        conn.send(
            &CreateTopicsRequest {
                topics: vec![CreatableTopic {
                    name: name.clone(),
                    num_partitions: 1,
                    replication_factor: 1,
                    ..Default::default()
                }],
                ..Default::default()
            },
            create.max,
        )
        .expect("create");
        let request = delete_request(&name, version);
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(
            response.responses[0].error_code, 0,
            "v{version}: {response:?}"
        );
    }
}

fn list_offsets_at_every_common_version(kind: BrokerKind) {
    let (broker, mut conn) = start(kind);
    broker
        .create_topic("conformance-list-offsets", 2)
        .expect("create topic");
    for version in common::<ListOffsetsRequest>(&conn).iter() {
        for timestamp in [-2, -1] {
            let request = ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: "conformance-list-offsets".into(),
                    partitions: (0..2)
                        .map(|p| ListOffsetsPartition {
                            partition_index: p,
                            timestamp,
                            ..Default::default()
                        })
                        .collect(),
                }],
                timeout_ms: 5_000,
                ..Default::default()
            };
            let response = conn
                .send(&request, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            let partitions = &response.topics[0].partitions;
            assert_eq!(partitions.len(), 2, "v{version}: {response:?}");
            for p in partitions {
                assert_eq!(p.error_code, 0, "v{version}: {response:?}");
                // An empty topic: both ends are offset 0.
                assert_eq!(
                    p.offset, 0,
                    "v{version} timestamp {timestamp}: {response:?}"
                );
            }
        }
    }
}

fn sasl_handshake_and_authenticate_at_every_common_version(kind: BrokerKind) {
    let (broker, conn) = start(kind);
    let handshake = common::<SaslHandshakeRequest>(&conn);
    let authenticate = common::<SaslAuthenticateRequest>(&conn);
    drop(conn);
    for version in handshake.iter() {
        // A fresh connection each time: a handshake commits it to SASL.
        let mut conn = Connection::connect(broker.addr()).expect("connect");
        let request = SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-256".into(),
        };
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        match kind {
            // Without authentication configured, tansu refuses every
            // mechanism (UNSUPPORTED_SASL_MECHANISM, 33) while listing
            // SCRAM-SHA-256.
            BrokerKind::Tansu => {
                assert!(
                    matches!(response.error_code, 0 | 33),
                    "v{version}: {response:?}"
                );
                assert!(
                    response.mechanisms.iter().any(|m| m == "SCRAM-SHA-256"),
                    "v{version}: {response:?}"
                );
            }
            // A PLAINTEXT listener: ILLEGAL_SASL_STATE (34), as Apache Kafka
            // answers. (SASL listeners are the TLS/SASL suite's subject.)
            BrokerKind::Crabka => assert_eq!(
                (response.error_code, response.mechanisms.len()),
                (34, 0),
                "v{version}: {response:?}"
            ),
        }
    }
    for version in authenticate.iter() {
        let mut conn = Connection::connect(broker.addr()).expect("connect");
        conn.send(
            &SaslHandshakeRequest {
                mechanism: "SCRAM-SHA-256".into(),
            },
            handshake.max,
        )
        .expect("handshake");
        // A SCRAM client-first message. After the refused handshake tansu
        // answers ILLEGAL_SASL_STATE (34) with a message; with SASL enabled it
        // would answer inside the SCRAM exchange. Either must decode.
        let request = SaslAuthenticateRequest {
            auth_bytes: SecretBytes(Bytes::from_static(
                b"n,,n=odradek,r=fyko+d2lbbFgONRv9qkxdawL",
            )),
        };
        let response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        let server_message = String::from_utf8_lossy(&response.auth_bytes.0).into_owned();
        assert!(
            response.error_code != 0
                || server_message.starts_with("e=")
                || server_message.starts_with("r="),
            "v{version}: unexpected reply {response:?} ({server_message})"
        );
    }
}

/// Joins `group` as a consumer subscribed to `topic`, following the
/// member-id-required round trip where the version has it.
fn join(
    kind: BrokerKind,
    conn: &mut Connection,
    group: &str,
    topic: &str,
    version: i16,
) -> JoinGroupResponse {
    // tansu holds a join for max(1 s, session timeout / 2); crabka holds the
    // first join for min(rebalance timeout, 3 s) and expires a session
    // shorter than that wait during it (brokers.md).
    let (session_timeout_ms, rebalance_timeout_ms) = match kind {
        BrokerKind::Tansu => (2_000, 2_000),
        BrokerKind::Crabka => (6_000, 500),
    };
    let subscription = ConsumerProtocolSubscription {
        topics: vec![topic.into()],
        ..Default::default()
    }
    .to_versioned_bytes(0)
    .expect("encode subscription");
    let mut request = JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: subscription,
        }],
        ..Default::default()
    };
    let mut response = conn
        .send(&request, version)
        .unwrap_or_else(|e| panic!("JoinGroup v{version}: {e}"));
    // Apache Kafka asks for the member-id round trip from v4 only; tansu asks
    // at every version, so the driver follows it wherever it comes.
    if response.error_code == MEMBER_ID_REQUIRED {
        assert!(!response.member_id.is_empty(), "v{version}: {response:?}");
        request.member_id = response.member_id.clone();
        response = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("JoinGroup v{version}: {e}"));
    }
    assert_eq!(response.error_code, 0, "JoinGroup v{version}: {response:?}");
    assert!(
        !response.member_id.is_empty(),
        "JoinGroup v{version}: {response:?}"
    );
    response
}

/// One member's whole life in a group, with every group API at the version
/// of its range nearest to `i`; `i` sweeps far enough to reach every
/// version of every group API.
fn group_apis_at_every_common_version(kind: BrokerKind) {
    let (broker, mut conn) = start(kind);
    let topic = "conformance-group";
    broker.create_topic(topic, 2).expect("create topic");
    let join_versions = common::<JoinGroupRequest>(&conn);
    let sync_versions = common::<SyncGroupRequest>(&conn);
    let heartbeat_versions = common::<HeartbeatRequest>(&conn);
    let leave_versions = common::<LeaveGroupRequest>(&conn);
    let find_versions = common::<FindCoordinatorRequest>(&conn);
    let commit_versions = common::<OffsetCommitRequest>(&conn);
    let fetch_versions = common::<OffsetFetchRequest>(&conn);
    let describe_versions = common::<DescribeGroupsRequest>(&conn);
    let list_versions = common::<ListGroupsRequest>(&conn);
    let top = [
        join_versions,
        sync_versions,
        heartbeat_versions,
        leave_versions,
        find_versions,
        commit_versions,
        fetch_versions,
        describe_versions,
        list_versions,
    ]
    .iter()
    .map(|r| r.max)
    .max()
    .unwrap_or(0);

    for i in 0..=top {
        let group = format!("conformance-group-{i}");

        let version = clamp(find_versions, i);
        let request = if version >= 4 {
            FindCoordinatorRequest {
                coordinator_keys: vec![group.clone()],
                ..Default::default()
            }
        } else {
            FindCoordinatorRequest {
                key: group.clone(),
                ..Default::default()
            }
        };
        let found = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("FindCoordinator v{version}: {e}"));
        let port = if version >= 4 {
            assert_eq!(found.coordinators.len(), 1, "v{version}: {found:?}");
            assert_eq!(found.coordinators[0].error_code, 0, "v{version}: {found:?}");
            found.coordinators[0].port
        } else {
            assert_eq!(found.error_code, 0, "v{version}: {found:?}");
            found.port
        };
        assert_eq!(
            port,
            i32::from(broker.addr().port()),
            "FindCoordinator v{version}"
        );

        let joined = join(kind, &mut conn, &group, topic, clamp(join_versions, i));
        assert_eq!(joined.leader, joined.member_id, "a lone member leads");
        assert_eq!(joined.members.len(), 1, "{joined:?}");

        let version = clamp(sync_versions, i);
        let assignment = ConsumerProtocolAssignment {
            assigned_partitions: vec![TopicPartitions {
                topic: topic.into(),
                partitions: vec![0, 1],
            }],
            user_data: None,
        }
        .to_versioned_bytes(0)
        .expect("encode assignment");
        let synced = conn
            .send(
                &SyncGroupRequest {
                    group_id: group.clone(),
                    generation_id: joined.generation_id,
                    member_id: joined.member_id.clone(),
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some("range".into()),
                    assignments: vec![SyncGroupRequestAssignment {
                        member_id: joined.member_id.clone(),
                        assignment: assignment.clone(),
                    }],
                    ..Default::default()
                },
                version,
            )
            .unwrap_or_else(|e| panic!("SyncGroup v{version}: {e}"));
        assert_eq!(synced.error_code, 0, "SyncGroup v{version}: {synced:?}");
        let (_, received) =
            ConsumerProtocolAssignment::from_versioned_bytes(synced.assignment.clone())
                .expect("the broker relays the leader's assignment bytes");
        assert_eq!(
            received.assigned_partitions[0].partitions,
            vec![0, 1],
            "SyncGroup v{version}"
        );

        let version = clamp(heartbeat_versions, i);
        let beat = conn
            .send(
                &HeartbeatRequest {
                    group_id: group.clone(),
                    generation_id: joined.generation_id,
                    member_id: joined.member_id.clone(),
                    ..Default::default()
                },
                version,
            )
            .unwrap_or_else(|e| panic!("Heartbeat v{version}: {e}"));
        assert_eq!(beat.error_code, 0, "Heartbeat v{version}: {beat:?}");

        let version = clamp(commit_versions, i);
        let committed = conn
            .send(
                &OffsetCommitRequest {
                    group_id: group.clone(),
                    generation_id_or_member_epoch: joined.generation_id,
                    member_id: joined.member_id.clone(),
                    topics: vec![OffsetCommitRequestTopic {
                        name: topic.into(),
                        partitions: vec![OffsetCommitRequestPartition {
                            partition_index: 1,
                            committed_offset: 40 + i64::from(i),
                            committed_metadata: Some("conformance".into()),
                            ..Default::default()
                        }],
                    }],
                    ..Default::default()
                },
                version,
            )
            .unwrap_or_else(|e| panic!("OffsetCommit v{version}: {e}"));
        assert_eq!(
            committed.topics[0].partitions[0].error_code, 0,
            "OffsetCommit v{version}: {committed:?}"
        );

        let version = clamp(fetch_versions, i);
        let offset = if version >= 8 {
            let fetched = conn
                .send(
                    &OffsetFetchRequest {
                        groups: vec![OffsetFetchRequestGroup {
                            group_id: group.clone(),
                            topics: Some(vec![OffsetFetchRequestTopics {
                                name: topic.into(),
                                partition_indexes: vec![1],
                            }]),
                            ..Default::default()
                        }],
                        ..Default::default()
                    },
                    version,
                )
                .unwrap_or_else(|e| panic!("OffsetFetch v{version}: {e}"));
            assert_eq!(
                fetched.groups[0].error_code, 0,
                "OffsetFetch v{version}: {fetched:?}"
            );
            fetched.groups[0].topics[0].partitions[0].committed_offset
        } else {
            let fetched = conn
                .send(
                    &OffsetFetchRequest {
                        group_id: group.clone(),
                        topics: Some(vec![OffsetFetchRequestTopic {
                            name: topic.into(),
                            partition_indexes: vec![1],
                        }]),
                        ..Default::default()
                    },
                    version,
                )
                .unwrap_or_else(|e| panic!("OffsetFetch v{version}: {e}"));
            fetched.topics[0].partitions[0].committed_offset
        };
        assert_eq!(
            offset,
            40 + i64::from(i),
            "OffsetFetch v{version} reads back the commit"
        );

        let version = clamp(describe_versions, i);
        let described = conn
            .send(
                &DescribeGroupsRequest {
                    groups: vec![group.clone()],
                    ..Default::default()
                },
                version,
            )
            .unwrap_or_else(|e| panic!("DescribeGroups v{version}: {e}"));
        assert_eq!(
            described.groups[0].error_code, 0,
            "DescribeGroups v{version}: {described:?}"
        );
        assert_eq!(
            described.groups[0].members.len(),
            1,
            "DescribeGroups v{version}: {described:?}"
        );

        let version = clamp(list_versions, i);
        let listed = conn
            .send(&ListGroupsRequest::default(), version)
            .unwrap_or_else(|e| panic!("ListGroups v{version}: {e}"));
        assert_eq!(listed.error_code, 0, "ListGroups v{version}: {listed:?}");
        assert!(
            listed.groups.iter().any(|g| g.group_id == group),
            "ListGroups v{version}: {listed:?}"
        );

        let version = clamp(leave_versions, i);
        let request = if version >= 3 {
            LeaveGroupRequest {
                group_id: group.clone(),
                members: vec![LeaveGroupRequestMember {
                    member_id: joined.member_id.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: group.clone(),
                member_id: joined.member_id.clone(),
                ..Default::default()
            }
        };
        let left = conn
            .send(&request, version)
            .unwrap_or_else(|e| panic!("LeaveGroup v{version}: {e}"));
        assert_eq!(left.error_code, 0, "LeaveGroup v{version}: {left:?}");
    }
}

odradek_tests::for_each_broker!(
    api_versions_at_every_common_version,
    metadata_at_every_common_version,
    create_and_delete_topics_at_every_common_version,
    list_offsets_at_every_common_version,
    sasl_handshake_and_authenticate_at_every_common_version,
    group_apis_at_every_common_version,
);
