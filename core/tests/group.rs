//! Deterministic tests of the consumer-group state machine: a scripted
//! coordinator (see `support/`) speaking the real protocol, a fake clock,
//! and assertions on the decoded requests the consumer sends.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use odradek_core::group::Assignors;
use odradek_core::group::assignor::{
    AssignError, MemberAssignment, MemberSubscription, PartitionAssignor,
};
use odradek_core::protocol::messages::{
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse,
    offset_commit::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
};
use odradek_core::protocol::{ApiKey, ErrorCode, RequestBody, RequestHeader};
use odradek_core::{
    CommitFailure, CommitId, ConsumerConfig, Error, Event, Misuse, OffsetAndMetadata, OffsetReset,
    Operation, QueryId, RebalanceEvent, TopicPartition,
};
use support::*;

const SESSION: Duration = Duration::from_secs(10);
const HEARTBEAT: Duration = Duration::from_secs(1);
const MAX_POLL: Duration = Duration::from_secs(60);

/// A group member's config: group `g`, eager `range`, no auto-commit,
/// earliest reset, short session and heartbeat.
fn group_config() -> ConsumerConfig {
    let mut c = config();
    c.group_id = Some("g".into());
    c.auto_offset_reset = OffsetReset::Earliest;
    c.session_timeout = SESSION;
    c.heartbeat_interval = HEARTBEAT;
    c.max_poll_interval = MAX_POLL;
    c.enable_auto_commit = false;
    c.partition_assignment_strategy = Assignors::from_names("range").unwrap();
    c
}

fn with(f: impl FnOnce(&mut ConsumerConfig)) -> ConsumerConfig {
    let mut c = group_config();
    f(&mut c);
    c
}

/// A cluster of `brokers` brokers answering each connection in order, with
/// topic `t` (2 partitions, 10 records each, led by broker 1). Another
/// member (`leader-0`) leads the group and hands this one `t-0` and `t-1`.
fn cluster(config: ConsumerConfig, brokers: i32) -> Cluster {
    let mut cluster = Cluster::new(config, brokers);
    cluster.in_order = true;
    cluster.topic("t", 2);
    cluster.log("t", 0).append_values(10);
    cluster.log("t", 1).append_values(10);
    cluster.group.leader = Some("leader-0".into());
    cluster.group.assignment = vec![tp("t", 0), tp("t", 1)];
    cluster
}

/// Subscribes to `t` and polls until the member is in the group and its
/// `Assigned` event was handled (and acknowledged).
fn join(cluster: &mut Cluster) -> Vec<TopicPartition> {
    cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    poll_until_assigned(cluster)
}

/// Polls (as an application does) until an `Assigned` event arrives; takes
/// and acknowledges it. Any other rebalance event fails the test.
fn poll_until_assigned(cluster: &mut Cluster) -> Vec<TopicPartition> {
    let mut assigned = None;
    cluster.run_until(Duration::from_secs(10), |c| {
        let records = c.poll().expect("poll");
        assert!(records.is_empty(), "records before the assignment was seen");
        for event in c.rebalance_events() {
            match event {
                RebalanceEvent::Assigned(p) => assigned = Some(p),
                other => panic!("unexpected rebalance event {other:?}"),
            }
        }
        assigned.is_some()
    });
    cluster.consumer.ack_rebalance(cluster.now);
    cluster.drive();
    assigned.unwrap()
}

/// Polls once and returns what the listener would see.
fn poll_events(cluster: &mut Cluster) -> Vec<RebalanceEvent> {
    let records = cluster.poll().expect("poll");
    assert!(records.is_empty(), "records returned with rebalance events");
    cluster.rebalance_events()
}

/// A group script answering the first request of `api` with `reply` (and
/// letting later ones through to the model).
fn once(api: ApiKey, reply: impl FnOnce() -> RequestBodyReply + 'static) -> GroupScript {
    let mut reply = Some(reply);
    Box::new(
        move |_, h: &RequestHeader, _: &RequestBody, _: &mut GroupModel| {
            if h.api_key != api.code() {
                return None;
            }
            reply.take().map(|r| Action::Respond(r()))
        },
    )
}

fn heartbeat_error(code: ErrorCode) -> GroupScript {
    once(ApiKey::Heartbeat, move || {
        RequestBodyReply::Heartbeat(HeartbeatResponse {
            error_code: code.0,
            ..Default::default()
        })
    })
}

/// An OffsetCommit answer with `code` for every partition of `request`.
fn commit_error(request: &OffsetCommitRequest, code: ErrorCode) -> OffsetCommitResponse {
    OffsetCommitResponse {
        topics: request
            .topics
            .iter()
            .map(|t| OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.0,
                    })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}

/// Answers the first OffsetCommit with `code` on every partition.
fn commit_error_once(code: ErrorCode) -> GroupScript {
    let mut armed = true;
    Box::new(move |_, _, body, _| match body {
        RequestBody::OffsetCommit(r) if armed => {
            armed = false;
            Some(Action::Respond(RequestBodyReply::OffsetCommit(
                commit_error(r, code),
            )))
        }
        _ => None,
    })
}

/// Delays the `n`th (0-based) request of `api` from now on by `delay`.
fn delay_nth(api: ApiKey, n: usize, delay: Duration) -> GroupScript {
    let mut seen = 0;
    Box::new(move |_, h, _, _| {
        if h.api_key != api.code() {
            return None;
        }
        seen += 1;
        (seen == n + 1).then_some(Action::Delay(delay))
    })
}

/// Offsets per partition of an OffsetCommit request.
fn committed_offsets(request: &OffsetCommitRequest) -> BTreeMap<TopicPartition, i64> {
    request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (tp(&t.name, p.partition_index), p.committed_offset))
        })
        .collect()
}

/// The partitions a JoinGroup says the member owns (its first protocol).
fn owned_in(join: &JoinGroupRequest) -> Vec<TopicPartition> {
    flatten(&decode_subscription(&join.protocols[0].metadata).owned_partitions)
}

/// Waits for the outcome of commit `id`.
fn commit_result(cluster: &mut Cluster, id: CommitId) -> Result<(), Error> {
    let mut found = None;
    cluster.run_until(Duration::from_secs(10), |c| {
        for e in c.take_events() {
            if let Event::CommitDone { id: done, result } = e {
                if done == id {
                    found = Some(result);
                }
            }
        }
        found.is_some()
    });
    found.unwrap()
}

/// Polls until `n` records arrived, acknowledging nothing: any rebalance
/// event fails the test.
fn records(cluster: &mut Cluster, n: usize) -> Vec<odradek_core::ConsumerRecord> {
    let records = cluster.poll_n(n, Duration::from_secs(10));
    assert!(
        cluster.rebalance_events().is_empty(),
        "unexpected rebalance events"
    );
    records
}

fn at_index(cluster: &Cluster, api: ApiKey, n: usize) -> usize {
    cluster
        .log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.header.api_key == api.code())
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no {api} request #{n}"))
}

// ---- 1. the happy path -------------------------------------------------

#[test]
fn happy_path_find_join_with_member_id_required_sync_positions_and_fetch() {
    let mut cluster = cluster(group_config(), 1);
    {
        let log = cluster.log("t", 1);
        log.log_start = 5;
    }
    cluster.log("t", 0).append_values(40);
    cluster.group.committed.insert(
        tp("t", 0),
        Committed {
            offset: 42,
            leader_epoch: -1,
            metadata: String::new(),
        },
    );

    cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    // Nothing joins before the application polls.
    cluster.advance(Duration::from_millis(500));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 0);
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);

    let find = &cluster.find_coordinators()[0];
    assert_eq!(find.coordinator_keys, vec!["g".to_string()]);
    assert_eq!(find.key_type, 0);

    // KIP-394: the first join has no member id, the coordinator hands one
    // out with MEMBER_ID_REQUIRED, the second join carries it.
    let joins = cluster.joins();
    assert_eq!(joins.len(), 2, "{joins:?}");
    assert_eq!(joins[0].member_id, "");
    assert_eq!(joins[1].member_id, "member-1");
    for join in &joins {
        assert_eq!(join.group_id, "g");
        assert_eq!(join.protocol_type, "consumer");
        assert_eq!(join.session_timeout_ms, 10_000);
        assert_eq!(join.rebalance_timeout_ms, 60_000);
        assert_eq!(join.group_instance_id, None);
        assert_eq!(join.protocols.len(), 1);
        assert_eq!(join.protocols[0].name, "range");
        let sub = decode_subscription(&join.protocols[0].metadata);
        assert_eq!(sub.topics, vec!["t".to_string()]);
        assert!(sub.owned_partitions.is_empty());
    }
    let syncs = cluster.syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0].member_id, "member-1");
    assert_eq!(syncs[0].generation_id, 1);
    assert!(
        syncs[0].assignments.is_empty(),
        "a follower assigns nothing"
    );
    assert_eq!(
        cluster.consumer.group_membership(),
        Some((1, "member-1".into()))
    );
    let meta = cluster.consumer.group_metadata().unwrap();
    assert_eq!(
        (
            meta.group_id.as_str(),
            meta.generation_id,
            meta.member_id.as_str()
        ),
        ("g", 1, "member-1")
    );
    assert!(!meta.leader, "leader-0 leads");

    // The request order: find, join, join, sync.
    let order: Vec<i16> = cluster
        .log
        .iter()
        .map(|r| r.header.api_key)
        .filter(|&k| {
            [
                ApiKey::FindCoordinator,
                ApiKey::JoinGroup,
                ApiKey::SyncGroup,
            ]
            .iter()
            .any(|a| a.code() == k)
        })
        .collect();
    assert_eq!(
        order,
        vec![
            ApiKey::FindCoordinator.code(),
            ApiKey::JoinGroup.code(),
            ApiKey::JoinGroup.code(),
            ApiKey::SyncGroup.code()
        ]
    );

    // p0 starts at its committed 42; p1 has no commit: earliest (5).
    let records = records(&mut cluster, 8 + 5);
    let of = |p: i32| -> Vec<i64> {
        records
            .iter()
            .filter(|r| r.partition() == p)
            .map(|r| r.offset())
            .collect()
    };
    assert_eq!(of(0), (42..50).collect::<Vec<_>>());
    assert_eq!(of(1), (5..10).collect::<Vec<_>>());

    let fetches = cluster.offset_fetches();
    assert_eq!(fetches.len(), 1);
    let group = &fetches[0].groups[0];
    assert_eq!(group.group_id, "g");
    let topics = group.topics.as_ref().unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name, "t");
    assert_eq!(topics[0].partition_indexes, vec![0, 1]);
    // Only the partition without a commit was reset, to the earliest offset.
    let resets: Vec<(String, i32, i64)> = cluster
        .log
        .iter()
        .filter_map(|r| match &r.body {
            RequestBody::ListOffsets(l) => Some(l),
            _ => None,
        })
        .flat_map(|l| {
            l.topics.iter().flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.clone(), p.partition_index, p.timestamp))
            })
        })
        .collect();
    assert_eq!(resets, vec![("t".to_string(), 1, -2)]);
    assert!(
        at_index(&cluster, ApiKey::OffsetFetch, 0) < at_index(&cluster, ApiKey::ListOffsets, 0)
    );

    // The coordinator has a connection of its own: group requests never
    // share one with fetches.
    let group_conns: Vec<_> = cluster
        .log
        .iter()
        .filter(|r| {
            [ApiKey::JoinGroup, ApiKey::SyncGroup, ApiKey::OffsetFetch]
                .iter()
                .any(|a| a.code() == r.header.api_key)
        })
        .map(|r| r.conn)
        .collect();
    let fetch_conns: Vec<_> = cluster
        .requests(ApiKey::Fetch)
        .iter()
        .map(|r| r.conn)
        .collect();
    assert!(group_conns.iter().all(|c| *c == group_conns[0]));
    assert!(!fetch_conns.contains(&group_conns[0]));

    // Settled: no further rebalance, only heartbeats.
    cluster.advance(Duration::from_secs(3));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2);
    assert!(cluster.count(ApiKey::Heartbeat) >= 2);
    assert!(cluster.rebalance_events().is_empty());
}

// ---- 2. heartbeats and their errors ------------------------------------

#[test]
fn heartbeats_go_out_every_heartbeat_interval_between_polls() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    let synced = cluster.requests(ApiKey::SyncGroup)[0].at;
    let coordinator_conn = cluster.requests(ApiKey::SyncGroup)[0].conn;
    assert_eq!(cluster.count(ApiKey::Heartbeat), 0);
    cluster.advance(Duration::from_millis(5_500));
    let beats = cluster.requests(ApiKey::Heartbeat);
    let times: Vec<Duration> = beats.iter().map(|r| r.at - synced).collect();
    assert_eq!(
        times,
        (1..=5).map(Duration::from_secs).collect::<Vec<_>>(),
        "one heartbeat per heartbeat.interval after the sync"
    );
    assert!(beats.iter().all(|r| r.conn == coordinator_conn));
    for hb in cluster.heartbeats() {
        assert_eq!(hb.group_id, "g");
        assert_eq!(hb.generation_id, 1);
        assert_eq!(hb.member_id, "member-1");
        assert_eq!(hb.group_instance_id, None);
    }
    // Polling does not disturb the cadence.
    cluster.poll().unwrap();
    cluster.advance(Duration::from_secs(1));
    assert_eq!(cluster.count(ApiKey::Heartbeat), 6);
}

#[test]
fn heartbeat_rebalance_in_progress_revokes_everything_at_the_next_poll_then_rejoins_after_ack() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::REBALANCE_IN_PROGRESS));
    cluster.advance(Duration::from_millis(1_500));
    assert_eq!(cluster.count(ApiKey::Heartbeat), 1);
    // The rejoin waits for the application's poll.
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2);
    assert_eq!(cluster.consumer.assignment(), vec![tp("t", 0), tp("t", 1)]);

    // Eager: the poll revokes everything, and the join waits for the ack.
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Revoked(vec![tp("t", 0), tp("t", 1)])]
    );
    assert!(cluster.consumer.assignment().is_empty());
    cluster.advance(Duration::from_secs(2));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2, "joined before the ack");
    cluster.consumer.ack_rebalance(cluster.now);
    cluster.drive();
    assert_eq!(cluster.count(ApiKey::JoinGroup), 3);
    let rejoin = &cluster.joins()[2];
    assert_eq!(rejoin.member_id, "member-1");
    assert!(
        owned_in(rejoin).is_empty(),
        "eager owns nothing when rejoining"
    );

    // The new generation hands the partitions back.
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);
    assert_eq!(
        cluster.consumer.group_membership(),
        Some((2, "member-1".into()))
    );
}

/// A heartbeat error that ends the membership: the partitions are lost (not
/// revoked, nothing committed for them) and the member rejoins.
fn heartbeat_error_loses_the_partitions(code: ErrorCode, rejoin_member_id: &str) {
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = Duration::from_secs(3);
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.group_scripts.push(heartbeat_error(code));
    // Past the heartbeat error and an auto-commit tick, without a poll.
    cluster.advance(Duration::from_secs(4));
    assert!(
        cluster.offset_commits().is_empty(),
        "lost partitions are never committed: {:?}",
        cluster.offset_commits()
    );
    assert_eq!(cluster.consumer.group_membership(), None);
    assert!(cluster.consumer.assignment().is_empty());
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Lost(vec![tp("t", 0), tp("t", 1)])]
    );
    assert_eq!(
        cluster.count(ApiKey::JoinGroup),
        2,
        "rejoin waits for the ack"
    );
    cluster.consumer.ack_rebalance(cluster.now);
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);
    let joins = cluster.joins();
    assert_eq!(joins[2].member_id, rejoin_member_id);
    assert!(owned_in(&joins[2]).is_empty());
    // No commit of the old positions (20 delivered records) ever went out.
    assert!(
        cluster
            .offset_commits()
            .iter()
            .all(|c| committed_offsets(c).values().all(|&o| o < 10)),
        "{:?}",
        cluster.offset_commits()
    );
}

#[test]
fn heartbeat_illegal_generation_loses_the_partitions_and_rejoins_with_the_same_member_id() {
    heartbeat_error_loses_the_partitions(ErrorCode::ILLEGAL_GENERATION, "member-1");
}

#[test]
fn heartbeat_unknown_member_id_loses_the_partitions_and_rejoins_with_no_member_id() {
    heartbeat_error_loses_the_partitions(ErrorCode::UNKNOWN_MEMBER_ID, "");
}

#[test]
fn heartbeat_not_coordinator_finds_the_coordinator_again_and_keeps_the_membership() {
    let mut cluster = cluster(group_config(), 2);
    join(&mut cluster);
    records(&mut cluster, 20);
    let links_to_1 = cluster.open_links(1);
    // The coordinator moves to broker 2; broker 1 answers NOT_COORDINATOR.
    cluster.group_scripts.push(Box::new(|broker, h, _, group| {
        if broker == 1 && h.api_key == ApiKey::Heartbeat.code() {
            group.coordinator = 2;
        }
        None
    }));
    cluster.advance(Duration::from_millis(1_500));
    assert_eq!(cluster.count(ApiKey::FindCoordinator), 2);
    cluster.advance(Duration::from_secs(3));
    let on_2: Vec<Received> = cluster
        .requests(ApiKey::Heartbeat)
        .into_iter()
        .filter(|r| r.broker == 2)
        .collect();
    assert!(on_2.len() >= 2, "heartbeats go to the new coordinator");
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2, "no rejoin");
    assert_eq!(
        cluster.consumer.group_membership(),
        Some((1, "member-1".into()))
    );
    assert!(cluster.rebalance_events().is_empty());
    assert_eq!(cluster.consumer.assignment(), vec![tp("t", 0), tp("t", 1)]);
    // The connection to the old coordinator closed; broker 1 still leads
    // the partitions, so their fetch connection stays.
    assert_eq!(cluster.open_links(1), links_to_1 - 1);
    assert!(cluster.open_links(1) >= 1);
}

#[test]
fn heartbeat_fenced_instance_id_is_a_typed_fatal_error_for_a_static_member() {
    let mut cluster = cluster(with(|c| c.group_instance_id = Some("i-1".into())), 1);
    join(&mut cluster);
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::FENCED_INSTANCE_ID));
    cluster.advance(Duration::from_millis(1_500));
    let fenced = Error::FencedInstanceId {
        instance_id: "i-1".into(),
    };
    let err = cluster.poll().unwrap_err();
    assert_eq!(err, fenced);
    assert!(err.is_fatal());
    // It stays: every later call fails the same way, and nothing rejoins.
    assert_eq!(cluster.poll().unwrap_err(), fenced);
    assert_eq!(
        cluster
            .consumer
            .commit(None, Duration::from_secs(1), cluster.now),
        Err(fenced)
    );
    cluster.advance(Duration::from_secs(3));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 1);
    assert_eq!(cluster.count(ApiKey::Heartbeat), 1);
}

// ---- 3. session timeout ------------------------------------------------

#[test]
fn unanswered_heartbeats_for_a_session_timeout_rediscover_the_coordinator() {
    let mut cluster = cluster(group_config(), 3);
    cluster.group.coordinator = 2;
    join(&mut cluster);
    cluster.advance(Duration::from_millis(2_500));
    let last_ok = cluster.requests(ApiKey::Heartbeat).last().unwrap().at;
    // Broker 2 stops answering heartbeats; the group moves to broker 3.
    cluster.broker(2).script.push(Box::new(|h, _| {
        (h.api_key == ApiKey::Heartbeat.code()).then_some(Action::Ignore)
    }));
    cluster.group.coordinator = 3;
    let wait = last_ok + SESSION - cluster.now - Duration::from_millis(100);
    cluster.advance(wait);
    assert_eq!(
        cluster.count(ApiKey::FindCoordinator),
        1,
        "not before the session timeout"
    );
    cluster.advance(Duration::from_millis(200));
    let finds = cluster.requests(ApiKey::FindCoordinator);
    assert_eq!(finds.len(), 2);
    assert_eq!(finds[1].at, last_ok + SESSION);
    cluster.advance(Duration::from_secs(2));
    let on_3 = cluster
        .requests(ApiKey::Heartbeat)
        .iter()
        .filter(|r| r.broker == 3)
        .count();
    assert!(on_3 >= 1, "heartbeats go to the new coordinator");
    assert_eq!(
        cluster.consumer.group_membership(),
        Some((1, "member-1".into()))
    );
}

// ---- 4. coordinator failover -------------------------------------------

#[test]
fn not_coordinator_in_join_group_finds_the_new_coordinator_and_joins_there() {
    let mut cluster = cluster(group_config(), 2);
    cluster
        .group_scripts
        .push(Box::new(|broker, _, body, group| {
            if let RequestBody::JoinGroup(j) = body {
                if broker == 1 && !j.member_id.is_empty() {
                    group.coordinator = 2;
                }
            }
            None
        }));
    let assigned = join(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);
    let joins: Vec<(i32, String)> = cluster
        .requests(ApiKey::JoinGroup)
        .iter()
        .map(|r| match &r.body {
            RequestBody::JoinGroup(j) => (r.broker, j.member_id.clone()),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        joins,
        vec![
            (1, String::new()),
            (1, "member-1".to_string()),
            (2, "member-1".to_string())
        ]
    );
    assert_eq!(cluster.count(ApiKey::FindCoordinator), 2);
    assert!(
        at_index(&cluster, ApiKey::FindCoordinator, 1) < at_index(&cluster, ApiKey::JoinGroup, 2)
    );
    let syncs = cluster.requests(ApiKey::SyncGroup);
    assert_eq!(syncs.len(), 1);
    assert_eq!(syncs[0].broker, 2);
    records(&mut cluster, 20);
}

#[test]
fn not_coordinator_in_offset_commit_retries_on_the_new_coordinator() {
    let mut cluster = cluster(group_config(), 2);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.group_scripts.push(Box::new(|broker, h, _, group| {
        if broker == 1 && h.api_key == ApiKey::OffsetCommit.code() {
            group.coordinator = 2;
        }
        None
    }));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(10), cluster.now)
        .unwrap();
    assert_eq!(commit_result(&mut cluster, id), Ok(()));
    let commits = cluster.requests(ApiKey::OffsetCommit);
    let brokers: Vec<i32> = commits.iter().map(|r| r.broker).collect();
    assert_eq!(brokers, vec![1, 2]);
    assert_eq!(cluster.count(ApiKey::FindCoordinator), 2);
    let want: BTreeMap<TopicPartition, i64> = [(tp("t", 0), 10), (tp("t", 1), 10)].into();
    for c in cluster.offset_commits() {
        assert_eq!(committed_offsets(&c), want);
        assert_eq!(c.generation_id_or_member_epoch, 1);
        assert_eq!(c.member_id, "member-1");
    }
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 10);
    assert_eq!(cluster.group.committed[&tp("t", 1)].offset, 10);
}

#[test]
fn a_late_failure_from_a_coordinator_the_group_found_again_does_not_unseat_it() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    // The first commit is answered NOT_COORDINATOR, 12 s late; answers
    // come in order, so the heartbeats behind it get no answer either.
    // After a session (10 s) the member looks for its coordinator and
    // finds it on the same broker: a new term. The late answer belongs to
    // the old term and must not send the member looking a third time.
    let mut stage = 0;
    cluster.group_scripts.push(Box::new(move |_, h, _, group| {
        if stage == 1 {
            group.coordinator = 1;
            stage = 2;
        }
        if stage == 0 && h.api_key == ApiKey::OffsetCommit.code() {
            // The answer is made now, by a model that says "not me".
            group.coordinator = 99;
            stage = 1;
            return Some(Action::Delay(Duration::from_secs(12)));
        }
        None
    }));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(20), cluster.now)
        .unwrap();
    cluster.advance(Duration::from_secs(11));
    assert_eq!(
        cluster.count(ApiKey::FindCoordinator),
        2,
        "the session expired"
    );
    assert_eq!(commit_result(&mut cluster, id), Ok(()));
    cluster.advance(Duration::from_secs(3));
    assert_eq!(
        cluster.count(ApiKey::FindCoordinator),
        2,
        "the old term's answer does not count"
    );
    assert_eq!(
        cluster.count(ApiKey::OffsetCommit),
        2,
        "the commit is retried"
    );
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 10);
    assert_eq!(
        cluster.consumer.group_membership(),
        Some((1, "member-1".into()))
    );
}

#[test]
fn a_static_member_on_a_broker_without_join_group_v5_is_an_unsupported_broker_error() {
    let mut cluster = cluster(with(|c| c.group_instance_id = Some("i-1".into())), 1);
    for v in &mut cluster.broker(1).api_versions {
        if v.api_key == ApiKey::JoinGroup.code() {
            v.max_version = 4;
        }
    }
    cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    let mut error = None;
    cluster.run_until(Duration::from_secs(10), |c| {
        // The poll starts the join; the refusal is there for the next one.
        error = c.poll().err().or_else(|| c.poll().err());
        error.is_some()
    });
    let error = error.unwrap();
    assert!(
        matches!(&error, Error::UnsupportedBroker { source, .. }
            if source.api == "JoinGroup" && source.ours.min == 5),
        "{error}"
    );
    assert!(error.is_fatal());
    assert_eq!(cluster.count(ApiKey::JoinGroup), 0);
    assert!(error.to_string().contains("JoinGroup"), "{error}");
}

#[test]
fn a_join_refused_for_good_is_sticky_and_a_heartbeat_refusal_is_reported_once() {
    // A JoinGroup refusal ends the membership: fatal, so every call says it.
    let mut cluster = cluster(group_config(), 1);
    cluster.group_scripts.push(once(ApiKey::JoinGroup, || {
        RequestBodyReply::JoinGroup(JoinGroupResponse {
            error_code: ErrorCode::GROUP_AUTHORIZATION_FAILED.0,
            ..Default::default()
        })
    }));
    cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    let mut error = None;
    cluster.run_until(Duration::from_secs(10), |c| {
        error = c.poll().err().or_else(|| c.poll().err());
        error.is_some()
    });
    let error = error.unwrap();
    assert!(error.is_fatal(), "{error}");
    assert!(matches!(
        &error,
        Error::Group {
            api: ApiKey::JoinGroup,
            code: ErrorCode::GROUP_AUTHORIZATION_FAILED,
            ..
        }
    ));
    assert_eq!(cluster.poll().unwrap_err(), error, "sticky");
    assert_eq!(
        cluster
            .consumer
            .commit(None, Duration::from_secs(1), cluster.now)
            .unwrap_err(),
        error
    );
    assert_eq!(cluster.consumer.poll_timeout(), None);

    // A heartbeat refusal is the application's to see once; the member
    // goes on.
    let mut cluster = self::cluster(group_config(), 1);
    join(&mut cluster);
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::GROUP_AUTHORIZATION_FAILED));
    cluster.advance(HEARTBEAT + Duration::from_millis(100));
    let error = cluster.poll().unwrap_err();
    assert!(!error.is_fatal(), "{error}");
    assert!(matches!(
        &error,
        Error::Group {
            api: ApiKey::Heartbeat,
            ..
        }
    ));
    assert!(cluster.poll().is_ok(), "reported once");
    assert!(cluster.consumer.poll_timeout().is_some());
}

#[test]
fn a_listener_commit_of_lost_partitions_fails_with_partitions_lost() {
    struct CommitsOnLoss(Vec<Result<CommitId, Error>>);
    impl odradek_core::RebalanceListener for CommitsOnLoss {
        fn on_partitions_assigned(
            &mut self,
            _: &mut odradek_core::RebalanceContext<'_>,
            _: &[TopicPartition],
        ) {
        }
        fn on_partitions_revoked(
            &mut self,
            context: &mut odradek_core::RebalanceContext<'_>,
            _: &[TopicPartition],
        ) {
            self.0.push(context.commit());
        }
    }
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::UNKNOWN_MEMBER_ID));
    cluster.advance(Duration::from_millis(1_500));
    let mut listener = CommitsOnLoss(Vec::new());
    let now = cluster.now;
    odradek_core::group::dispatch_rebalance(&mut cluster.consumer, &mut listener, now);
    assert_eq!(
        listener.0,
        vec![Err(Error::CommitFailed {
            reason: CommitFailure::PartitionsLost
        })]
    );
}

#[test]
fn group_misuse_and_timeouts_are_typed() {
    let mut cluster = cluster(group_config(), 1);
    let now = cluster.now;
    let c = &mut cluster.consumer;
    assert_eq!(
        c.subscribe(["t", " "], now),
        Err(Error::InvalidArgument(Misuse::InvalidTopic(" ".into())))
    );
    c.assign([tp("t", 0)], now).unwrap();
    assert_eq!(
        c.subscribe(["t"], now),
        Err(Error::InvalidArgument(Misuse::SubscribeAfterAssign))
    );
    let negative = BTreeMap::from([(tp("t", 0), OffsetAndMetadata::new(-1))]);
    assert_eq!(
        c.commit(Some(negative), Duration::from_secs(1), now),
        Err(Error::InvalidArgument(Misuse::InvalidCommitOffset(tp(
            "t", 0
        ))))
    );
    c.assign([], now).unwrap();
    c.subscribe(["t"], now).unwrap();
    assert_eq!(
        c.assign([tp("t", 0)], now),
        Err(Error::InvalidArgument(Misuse::AssignWhileSubscribed))
    );

    // A coordinator that never answers: the commit and the lookup run out
    // of time, each saying what it was.
    let mut cluster = self::cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.group_scripts.push(Box::new(|_, h, _, _| {
        let silent = [ApiKey::OffsetCommit.code(), ApiKey::OffsetFetch.code()];
        silent.contains(&h.api_key).then_some(Action::Ignore)
    }));
    let commit = cluster
        .consumer
        .commit(None, Duration::from_secs(2), cluster.now)
        .unwrap();
    let lookup = cluster
        .consumer
        .committed(&[tp("t", 0)], Duration::from_secs(2), cluster.now)
        .unwrap();
    cluster.advance(Duration::from_secs(3));
    let mut outcomes = Vec::new();
    for event in cluster.take_events() {
        match event {
            Event::CommitDone { id, result } if id == commit => outcomes.push(result),
            Event::CommittedDone { id, result } if id == lookup => {
                outcomes.push(result.map(|_| ()));
            }
            _ => {}
        }
    }
    assert_eq!(
        outcomes,
        vec![
            Err(Error::CommitFailed {
                reason: CommitFailure::TimedOut
            }),
            Err(Error::Timeout(Operation::CommittedOffsets)),
        ]
    );
}

// ---- 5. commits during a rebalance -------------------------------------

#[test]
fn commit_answered_rebalance_in_progress_fails_with_rebalance_in_progress_and_rejoins() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(commit_error_once(ErrorCode::REBALANCE_IN_PROGRESS));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(10), cluster.now)
        .unwrap();
    assert_eq!(
        commit_result(&mut cluster, id),
        Err(Error::RebalanceInProgress)
    );
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 1, "not retried");
    // The group is rebalancing: the next poll starts the rejoin.
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Revoked(vec![tp("t", 0), tp("t", 1)])]
    );
    cluster.consumer.ack_rebalance(cluster.now);
    cluster.drive();
    assert_eq!(cluster.count(ApiKey::JoinGroup), 3);
}

#[test]
fn commit_answered_illegal_generation_fails_with_commit_failed() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(commit_error_once(ErrorCode::ILLEGAL_GENERATION));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(10), cluster.now)
        .unwrap();
    let result = commit_result(&mut cluster, id);
    assert_eq!(
        result,
        Err(Error::CommitFailed {
            reason: CommitFailure::GenerationMoved(ErrorCode::ILLEGAL_GENERATION)
        })
    );
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 1, "not retried");
    // The generation moved on: the partitions are lost, the member rejoins.
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Lost(vec![tp("t", 0), tp("t", 1)])]
    );
    cluster.consumer.ack_rebalance(cluster.now);
    poll_until_assigned(&mut cluster);
    assert_eq!(cluster.joins()[2].member_id, "member-1");
}

// ---- 6. max.poll.interval ----------------------------------------------

#[test]
fn no_poll_for_max_poll_interval_leaves_the_group_loses_the_partitions_and_rejoins_at_the_next_poll()
 {
    let max_poll = Duration::from_secs(5);
    let mut cluster = cluster(with(|c| c.max_poll_interval = max_poll), 1);
    join(&mut cluster);
    let last_poll = cluster.now;
    cluster.advance(max_poll - Duration::from_millis(100));
    assert_eq!(cluster.count(ApiKey::LeaveGroup), 0);
    cluster.advance(Duration::from_millis(200));
    let leaves = cluster.requests(ApiKey::LeaveGroup);
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].at, last_poll + max_poll);
    let leave = &cluster.leaves()[0];
    assert_eq!(leave.group_id, "g");
    assert_eq!(leave.members.len(), 1);
    assert_eq!(leave.members[0].member_id, "member-1");
    assert_eq!(leave.members[0].group_instance_id, None);
    assert_eq!(cluster.consumer.group_membership(), None);
    // Out of the group: no more heartbeats, no rejoin without a poll.
    let beats = cluster.count(ApiKey::Heartbeat);
    cluster.advance(Duration::from_secs(3));
    assert_eq!(cluster.count(ApiKey::Heartbeat), beats);
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2);

    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Lost(vec![tp("t", 0), tp("t", 1)])]
    );
    cluster.consumer.ack_rebalance(cluster.now);
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);
    let joins = cluster.joins();
    assert_eq!(joins.len(), 4);
    assert_eq!(
        joins[2].member_id, "",
        "a dynamic member that left starts over"
    );
    assert_eq!(joins[3].member_id, "member-2");
    assert!(cluster.requests(ApiKey::JoinGroup)[2].at > leaves[0].at);
}

// ---- 7. static membership and graceful close ---------------------------

#[test]
fn a_static_member_sends_its_instance_id_everywhere_and_does_not_leave_on_close() {
    let mut cluster = cluster(with(|c| c.group_instance_id = Some("i-1".into())), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.advance(Duration::from_millis(1_500));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(5), cluster.now)
        .unwrap();
    assert_eq!(commit_result(&mut cluster, id), Ok(()));

    let instance = Some("i-1".to_string());
    // A static member gets its member id on the first join (no KIP-394 round).
    let joins = cluster.requests(ApiKey::JoinGroup);
    assert_eq!(joins.len(), 1);
    assert!(joins[0].header.api_version >= 5);
    assert_eq!(cluster.joins()[0].group_instance_id, instance);
    assert_eq!(cluster.syncs()[0].group_instance_id, instance);
    assert!(cluster.requests(ApiKey::SyncGroup)[0].header.api_version >= 3);
    assert!(!cluster.heartbeats().is_empty());
    for hb in cluster.heartbeats() {
        assert_eq!(hb.group_instance_id, instance);
    }
    assert!(cluster.requests(ApiKey::Heartbeat)[0].header.api_version >= 3);
    let commit = &cluster.offset_commits()[0];
    assert!(cluster.requests(ApiKey::OffsetCommit)[0].header.api_version >= 7);
    assert_eq!(commit.group_instance_id, instance);
    assert_eq!(commit.member_id, "i-1-1");
    assert_eq!(commit.generation_id_or_member_epoch, 1);

    cluster
        .consumer
        .close_gracefully(Duration::from_secs(5), cluster.now);
    cluster.drive();
    assert!(cluster.events.contains(&Event::Closed));
    assert!(cluster.consumer.is_closed());
    assert_eq!(cluster.count(ApiKey::LeaveGroup), 0, "static members stay");
}

#[test]
fn a_dynamic_member_leaves_the_group_on_graceful_close() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    // The coordinator takes a while to answer the leave: close waits.
    cluster
        .group_scripts
        .push(delay_nth(ApiKey::LeaveGroup, 0, Duration::from_millis(300)));
    cluster.take_events();
    cluster
        .consumer
        .close_gracefully(Duration::from_secs(5), cluster.now);
    cluster.drive();
    let leaves = cluster.leaves();
    assert_eq!(leaves.len(), 1);
    assert_eq!(leaves[0].members[0].member_id, "member-1");
    assert_eq!(leaves[0].members[0].group_instance_id, None);
    assert!(!cluster.events.contains(&Event::Closed));
    cluster.advance(Duration::from_millis(300));
    assert!(cluster.events.contains(&Event::Closed));
    assert!(cluster.consumer.is_closed());
}

// ---- 8. the leader -----------------------------------------------------

/// A test assignor: deals each topic's partitions over its subscribers in
/// member-id order (reversed if `reverse`), counting its runs.
#[derive(Debug)]
struct Dealer {
    name: &'static str,
    reverse: bool,
    runs: Arc<AtomicUsize>,
}

impl PartitionAssignor for Dealer {
    fn name(&self) -> &str {
        self.name
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>, AssignError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let mut ids: Vec<&str> = members.iter().map(|m| m.member_id.as_str()).collect();
        ids.sort();
        if self.reverse {
            ids.reverse();
        }
        let mut out: BTreeMap<String, MemberAssignment> = ids
            .iter()
            .map(|id| (id.to_string(), MemberAssignment::default()))
            .collect();
        for (topic, &n) in partitions_per_topic {
            let subscribers: Vec<&str> = ids
                .iter()
                .copied()
                .filter(|id| {
                    members
                        .iter()
                        .any(|m| m.member_id == *id && m.topics.contains(topic))
                })
                .collect();
            for p in 0..n {
                let owner = subscribers[p as usize % subscribers.len()];
                out.get_mut(owner).unwrap().partitions.push(tp(topic, p));
            }
        }
        Ok(out)
    }
}

#[test]
fn the_leader_assigns_with_the_protocol_the_coordinator_chose() {
    let greedy_runs = Arc::new(AtomicUsize::new(0));
    let dealer_runs = Arc::new(AtomicUsize::new(0));
    let assignors = Assignors::new(vec![
        Arc::new(Dealer {
            name: "greedy",
            reverse: false,
            runs: greedy_runs.clone(),
        }),
        Arc::new(Dealer {
            name: "reverse-dealer",
            reverse: true,
            runs: dealer_runs.clone(),
        }),
    ]);
    let mut cluster = cluster(with(|c| c.partition_assignment_strategy = assignors), 1);
    cluster.topics.remove("t");
    cluster.topic("t", 4);
    cluster.topic("u", 2);
    for p in 0..4 {
        cluster.log("t", p).append_values(3);
    }
    // This member leads; the other supports only `reverse-dealer` and also
    // subscribes to `u`, a topic this member knows nothing of.
    cluster.group.leader = None;
    cluster.group.others = vec![OtherMember {
        member_id: "other-1".into(),
        instance_id: None,
        protocols: vec![(
            "reverse-dealer".into(),
            subscription_bytes(&["t", "u"], &[]),
        )],
    }];
    let assigned = join(&mut cluster);

    let join_request = &cluster.joins()[1];
    let names: Vec<&str> = join_request
        .protocols
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, vec!["greedy", "reverse-dealer"]);
    let sync = &cluster.syncs()[0];
    assert_eq!(sync.protocol_name.as_deref(), Some("reverse-dealer"));
    assert_eq!(greedy_runs.load(Ordering::SeqCst), 0);
    assert_eq!(dealer_runs.load(Ordering::SeqCst), 1);

    let given: BTreeMap<String, Vec<TopicPartition>> = sync
        .assignments
        .iter()
        .map(|a| (a.member_id.clone(), decode_assignment(&a.assignment)))
        .collect();
    assert_eq!(
        given,
        BTreeMap::from([
            ("member-1".to_string(), vec![tp("t", 1), tp("t", 3)]),
            (
                "other-1".to_string(),
                vec![tp("t", 0), tp("t", 2), tp("u", 0), tp("u", 1)]
            ),
        ])
    );
    // Every partition of every subscribed topic exactly once.
    let mut all: Vec<TopicPartition> = given.values().flatten().cloned().collect();
    all.sort();
    let want: Vec<TopicPartition> = (0..4)
        .map(|p| tp("t", p))
        .chain((0..2).map(|p| tp("u", p)))
        .collect();
    assert_eq!(all, want);
    assert_eq!(assigned, vec![tp("t", 1), tp("t", 3)]);
    let records = records(&mut cluster, 6);
    assert!(records.iter().all(|r| r.partition() % 2 == 1));
}

// ---- 9. cooperative rebalancing ----------------------------------------

#[test]
fn cooperative_rebalance_keeps_partitions_revokes_only_what_moves_and_rejoins() {
    let mut cluster = cluster(
        with(|c| {
            c.partition_assignment_strategy = Assignors::from_names("cooperative-sticky").unwrap()
        }),
        1,
    );
    join(&mut cluster);
    let first = records(&mut cluster, 20);
    assert_eq!(first.len(), 20);
    // The next generation gives t-1 to someone else; the join that gets
    // there takes a second.
    cluster.group.assignment = vec![tp("t", 0)];
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::REBALANCE_IN_PROGRESS));
    cluster
        .group_scripts
        .push(delay_nth(ApiKey::JoinGroup, 0, Duration::from_secs(1)));
    cluster.advance(Duration::from_millis(1_500));

    // Cooperative: nothing is revoked before the join, which goes out at
    // the poll with the owned partitions.
    cluster.log("t", 0).append_values(5);
    cluster.log("t", 1).append_values(5);
    let during = records(&mut cluster, 10);
    assert_eq!(cluster.count(ApiKey::JoinGroup), 3);
    let rejoin = &cluster.joins()[2];
    assert_eq!(rejoin.member_id, "member-1");
    assert_eq!(owned_in(rejoin), vec![tp("t", 0), tp("t", 1)]);
    assert_eq!(
        decode_subscription(&rejoin.protocols[0].metadata).generation_id,
        1
    );
    assert_eq!(rejoin.protocols[0].name, "cooperative-sticky");
    assert_eq!(offsets(&during).len(), 10);
    assert!(
        during.iter().any(|r| r.partition() == 1),
        "t-1 still flows while the join is pending"
    );

    // The sync keeps t-0 only: t-1 is revoked, then a second join follows.
    cluster.advance(Duration::from_secs(1));
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![
            RebalanceEvent::Revoked(vec![tp("t", 1)]),
            RebalanceEvent::Assigned(vec![])
        ]
    );
    assert_eq!(cluster.consumer.assignment(), vec![tp("t", 0)]);
    assert_eq!(cluster.count(ApiKey::JoinGroup), 3, "not before the ack");
    cluster.consumer.ack_rebalance(cluster.now);
    cluster.log("t", 0).append_values(5);
    let after = cluster.poll().unwrap();
    assert_eq!(cluster.count(ApiKey::JoinGroup), 4);
    let second = &cluster.joins()[3];
    assert_eq!(owned_in(second), vec![tp("t", 0)]);
    let assigned = poll_until_assigned(&mut cluster);
    assert!(assigned.is_empty());
    // t-0 went on from where it was: no reset, no duplicate.
    let mut rest = after;
    rest.extend(records(&mut cluster, 5 - rest.len()));
    assert_eq!(offsets(&rest), (15..20).collect::<Vec<_>>());
    assert!(rest.iter().all(|r| r.partition() == 0));
    assert_eq!(cluster.count(ApiKey::OffsetFetch), 1);
}

// ---- 10. commits in the revocation callback ----------------------------

#[test]
fn a_commit_made_while_handling_a_revocation_goes_out_before_the_join() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::REBALANCE_IN_PROGRESS));
    cluster.group_scripts.push(delay_nth(
        ApiKey::OffsetCommit,
        0,
        Duration::from_millis(500),
    ));
    cluster.advance(Duration::from_millis(1_500));
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Revoked(vec![tp("t", 0), tp("t", 1)])]
    );
    // The listener commits the revoked partitions' positions, then acks.
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(5), cluster.now)
        .unwrap();
    cluster.consumer.ack_rebalance(cluster.now);
    cluster.drive();
    let commits = cluster.offset_commits();
    assert_eq!(commits.len(), 1);
    assert_eq!(
        committed_offsets(&commits[0]),
        BTreeMap::from([(tp("t", 0), 10), (tp("t", 1), 10)])
    );
    let sent = cluster.requests(ApiKey::OffsetCommit)[0].at;
    cluster.advance(Duration::from_millis(400));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2, "the join waits");
    assert!(
        !cluster
            .events
            .iter()
            .any(|e| matches!(e, Event::CommitDone { .. }))
    );
    cluster.advance(Duration::from_millis(200));
    assert_eq!(commit_result(&mut cluster, id), Ok(()));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 3);
    assert_eq!(
        cluster.requests(ApiKey::JoinGroup)[2].at,
        sent + Duration::from_millis(500)
    );
    assert!(at_index(&cluster, ApiKey::OffsetCommit, 0) < at_index(&cluster, ApiKey::JoinGroup, 2));
}

// ---- 11. auto-commit ---------------------------------------------------

#[test]
fn auto_commit_commits_only_delivered_records_and_commits_before_an_eager_revocation() {
    let interval = Duration::from_secs(2);
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = interval;
        }),
        1,
    );
    cluster.group.assignment = vec![tp("t", 0)];
    join(&mut cluster);
    // Ten records arrive in one fetch; the application takes three.
    cluster.run_until(Duration::from_secs(5), |c| c.consumer.buffered_bytes() > 0);
    let taken = cluster.consumer.take_records_up_to(3, cluster.now).unwrap();
    assert_eq!(
        offsets(&taken.into_iter().collect::<Vec<_>>()),
        vec![0, 1, 2]
    );
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 0);
    cluster.advance(interval);
    assert_eq!(
        cluster.count(ApiKey::OffsetCommit),
        0,
        "the interval alone commits nothing: 0-2 may still be in processing"
    );
    // The next poll commits what earlier polls returned, not its own records.
    let taken = cluster.consumer.take_records_up_to(2, cluster.now).unwrap();
    assert_eq!(offsets(&taken.into_iter().collect::<Vec<_>>()), vec![3, 4]);
    cluster.drive();
    let commits = cluster.offset_commits();
    assert_eq!(commits.len(), 1, "one auto-commit per interval");
    assert_eq!(
        committed_offsets(&commits[0]),
        BTreeMap::from([(tp("t", 0), 3)]),
        "the position before this poll's records, not the fetched one"
    );
    assert_eq!(commits[0].generation_id_or_member_epoch, 1);
    assert_eq!(commits[0].member_id, "member-1");
    cluster.advance(interval * 3);
    assert_eq!(cluster.offset_commits().len(), 1, "no poll, no auto-commit");

    // A rebalance: the revocation auto-commits 5 (all delivered) first.
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::REBALANCE_IN_PROGRESS));
    cluster.group_scripts.push(delay_nth(
        ApiKey::OffsetCommit,
        0,
        Duration::from_millis(300),
    ));
    cluster.advance(Duration::from_millis(1_100));
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 1);
    let events = poll_events(&mut cluster);
    assert_eq!(events, vec![RebalanceEvent::Revoked(vec![tp("t", 0)])]);
    let commits = cluster.offset_commits();
    assert_eq!(commits.len(), 2, "committed before the listener heard");
    assert_eq!(
        committed_offsets(&commits[1]),
        BTreeMap::from([(tp("t", 0), 5)])
    );
    cluster.consumer.ack_rebalance(cluster.now);
    cluster.drive();
    assert_eq!(cluster.count(ApiKey::JoinGroup), 2, "the join waits");
    cluster.advance(Duration::from_millis(300));
    assert_eq!(cluster.count(ApiKey::JoinGroup), 3);
    assert!(at_index(&cluster, ApiKey::OffsetCommit, 1) < at_index(&cluster, ApiKey::JoinGroup, 2));
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 5);
}

// ---- 12. committed offsets lookup --------------------------------------

fn committed_result(
    cluster: &mut Cluster,
    id: QueryId,
) -> Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, Error> {
    let mut found = None;
    cluster.run_until(Duration::from_secs(10), |c| {
        for e in c.take_events() {
            if let Event::CommittedDone { id: done, result } = e {
                if done == id {
                    found = Some(result);
                }
            }
        }
        found.is_some()
    });
    found.unwrap()
}

#[test]
fn committed_returns_offsets_with_metadata_and_none_without_a_commit() {
    // A group used only to store offsets: no members.
    let mut cluster = cluster(group_config(), 1);
    cluster.group.leader = None;
    cluster.topics.remove("t");
    cluster.topic("t", 3);
    cluster.group.committed.insert(
        tp("t", 0),
        Committed {
            offset: 17,
            leader_epoch: 3,
            metadata: "from-before".into(),
        },
    );
    let id = cluster
        .consumer
        .committed(
            &[tp("t", 0), tp("t", 1)],
            Duration::from_secs(5),
            cluster.now,
        )
        .unwrap();
    let result = committed_result(&mut cluster, id).unwrap();
    assert_eq!(
        result,
        BTreeMap::from([
            (
                tp("t", 0),
                Some(OffsetAndMetadata {
                    offset: 17,
                    leader_epoch: Some(3),
                    metadata: "from-before".into(),
                })
            ),
            (tp("t", 1), None),
        ])
    );
    let fetch = &cluster.offset_fetches()[0];
    let topics = fetch.groups[0].topics.as_ref().unwrap();
    assert_eq!(topics[0].partition_indexes, vec![0, 1]);

    // A commit with metadata (no membership: generation -1) reads back.
    let offsets = BTreeMap::from([(tp("t", 2), OffsetAndMetadata::new(99).with_metadata("m"))]);
    let commit = cluster
        .consumer
        .commit(Some(offsets), Duration::from_secs(5), cluster.now)
        .unwrap();
    assert_eq!(commit_result(&mut cluster, commit), Ok(()));
    let request = &cluster.offset_commits()[0];
    assert_eq!(request.generation_id_or_member_epoch, -1);
    assert_eq!(request.member_id, "");
    let id = cluster
        .consumer
        .committed(&[tp("t", 2)], Duration::from_secs(5), cluster.now)
        .unwrap();
    let result = committed_result(&mut cluster, id).unwrap();
    assert_eq!(
        result[&tp("t", 2)],
        Some(OffsetAndMetadata::new(99).with_metadata("m"))
    );
}

// ---- commits and lost membership ----------------------------------------

#[test]
fn a_commit_retried_after_the_membership_was_lost_fails_instead_of_going_out() {
    let mut cluster = cluster(
        with(|c| {
            // The commit's retry comes after the next heartbeat.
            c.retry_backoff = Duration::from_secs(2);
            c.retry_backoff_max = Duration::from_secs(2);
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(commit_error_once(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::UNKNOWN_MEMBER_ID));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(10), cluster.now)
        .unwrap();
    let result = commit_result(&mut cluster, id);
    assert_eq!(
        result,
        Err(Error::CommitFailed {
            reason: CommitFailure::NotAMember
        })
    );
    assert_eq!(
        cluster.count(ApiKey::OffsetCommit),
        1,
        "no commit without a generation: {:?}",
        cluster.offset_commits()
    );
    assert!(cluster.group.committed.is_empty());
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Lost(vec![tp("t", 0), tp("t", 1)])]
    );
}

#[test]
fn an_explicit_commit_after_the_membership_was_lost_fails_without_a_request() {
    for code in [ErrorCode::ILLEGAL_GENERATION, ErrorCode::UNKNOWN_MEMBER_ID] {
        let mut cluster = cluster(group_config(), 1);
        join(&mut cluster);
        records(&mut cluster, 20);
        cluster.group_scripts.push(heartbeat_error(code));
        cluster.advance(Duration::from_millis(1_500));
        let events = poll_events(&mut cluster);
        assert_eq!(
            events,
            vec![RebalanceEvent::Lost(vec![tp("t", 0), tp("t", 1)])]
        );
        // The listener of the loss tries to commit the lost partitions: as
        // Java's commitSync, it fails at once (no generation to commit with).
        let offsets = BTreeMap::from([(tp("t", 0), OffsetAndMetadata::new(10))]);
        let result = cluster
            .consumer
            .commit(Some(offsets), Duration::from_secs(5), cluster.now);
        assert_eq!(
            result,
            Err(Error::CommitFailed {
                reason: CommitFailure::NotAMember
            }),
            "{code}"
        );
        cluster.advance(Duration::from_secs(1));
        assert_eq!(cluster.count(ApiKey::OffsetCommit), 0, "{code}");
    }
}

#[test]
fn unsubscribe_commits_the_delivered_positions_before_leaving() {
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = Duration::from_secs(30);
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.consumer.unsubscribe(cluster.now).unwrap();
    cluster.drive();
    let commits = cluster.offset_commits();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].generation_id_or_member_epoch, 1);
    assert_eq!(commits[0].member_id, "member-1");
    assert_eq!(
        committed_offsets(&commits[0]),
        BTreeMap::from([(tp("t", 0), 10), (tp("t", 1), 10)])
    );
    assert_eq!(cluster.count(ApiKey::LeaveGroup), 1);
    assert!(
        at_index(&cluster, ApiKey::OffsetCommit, 0) < at_index(&cluster, ApiKey::LeaveGroup, 0)
    );
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 10);
}

#[test]
fn graceful_close_auto_commits_then_leaves() {
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = Duration::from_secs(30);
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.group_scripts.push(delay_nth(
        ApiKey::OffsetCommit,
        0,
        Duration::from_millis(200),
    ));
    cluster
        .consumer
        .close_gracefully(Duration::from_secs(5), cluster.now);
    cluster.drive();
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 1);
    assert_eq!(
        cluster.count(ApiKey::LeaveGroup),
        0,
        "the leave waits for the commit"
    );
    cluster.advance(Duration::from_millis(200));
    let commit = &cluster.offset_commits()[0];
    assert_eq!(commit.generation_id_or_member_epoch, 1);
    assert_eq!(
        committed_offsets(commit),
        BTreeMap::from([(tp("t", 0), 10), (tp("t", 1), 10)])
    );
    assert_eq!(cluster.count(ApiKey::LeaveGroup), 1);
    assert!(cluster.events.contains(&Event::Closed));
}

/// A cooperative member whose rejoin is refused in a way that resets its
/// generation loses what it still owns (as Java's `onJoinPrepare` does),
/// then rejoins owning nothing.
fn cooperative_rejoin_refused_loses_the_partitions(refusal: GroupScript, rejoin_member_id: &str) {
    let mut cluster = cluster(
        with(|c| {
            c.partition_assignment_strategy = Assignors::from_names("cooperative-sticky").unwrap()
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::REBALANCE_IN_PROGRESS));
    cluster.group_scripts.push(refusal);
    cluster.advance(Duration::from_millis(1_500));
    // The poll starts the cooperative rejoin (owning both), which is refused.
    assert!(cluster.poll().unwrap().is_empty());
    assert_eq!(owned_in(&cluster.joins()[2]), vec![tp("t", 0), tp("t", 1)]);
    let events = poll_events(&mut cluster);
    assert_eq!(
        events,
        vec![RebalanceEvent::Lost(vec![tp("t", 0), tp("t", 1)])]
    );
    assert!(cluster.consumer.assignment().is_empty());
    let joins = cluster.count(ApiKey::JoinGroup);
    cluster.advance(Duration::from_secs(1));
    assert_eq!(
        cluster.count(ApiKey::JoinGroup),
        joins,
        "rejoin waits for the ack"
    );
    cluster.consumer.ack_rebalance(cluster.now);
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);
    let rejoin = &cluster.joins()[joins];
    assert_eq!(rejoin.member_id, rejoin_member_id);
    assert!(owned_in(rejoin).is_empty());
    // Lost partitions start again from the committed offsets.
    assert_eq!(cluster.count(ApiKey::OffsetFetch), 2);
    assert!(cluster.offset_commits().is_empty());
}

#[test]
fn cooperative_join_group_unknown_member_id_loses_the_owned_partitions() {
    let refusal = once(ApiKey::JoinGroup, || {
        RequestBodyReply::JoinGroup(odradek_core::protocol::messages::JoinGroupResponse {
            error_code: ErrorCode::UNKNOWN_MEMBER_ID.0,
            ..Default::default()
        })
    });
    cooperative_rejoin_refused_loses_the_partitions(refusal, "");
}

#[test]
fn cooperative_sync_group_illegal_generation_loses_the_owned_partitions() {
    let refusal = once(ApiKey::SyncGroup, || {
        RequestBodyReply::SyncGroup(odradek_core::protocol::messages::SyncGroupResponse {
            error_code: ErrorCode::ILLEGAL_GENERATION.0,
            ..Default::default()
        })
    });
    cooperative_rejoin_refused_loses_the_partitions(refusal, "member-1");
}

// ---- pattern subscription ----------------------------------------------

/// The topics a Metadata request asked for: `None` for every topic.
fn metadata_topics(cluster: &Cluster) -> Vec<Option<Vec<String>>> {
    cluster
        .requests(ApiKey::Metadata)
        .iter()
        .filter_map(|r| match &r.body {
            RequestBody::Metadata(m) => Some(
                m.topics
                    .as_ref()
                    .map(|ts| ts.iter().filter_map(|t| t.name.clone()).collect()),
            ),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pattern_subscription_joins_with_the_matching_topics_and_follows_new_ones() {
    let mut cluster = cluster(with(|c| c.metadata_max_age = Duration::from_secs(30)), 1);
    cluster.topic("orders-eu", 1);
    cluster.topic("orders-us", 2);
    cluster.topic("orders", 1);
    cluster.group.leader = None;

    assert!(matches!(
        cluster.consumer.subscribe_pattern("orders-(", cluster.now),
        Err(Error::InvalidArgument(Misuse::InvalidPattern { .. }))
    ));
    cluster
        .consumer
        .subscribe_pattern("orders-.*", cluster.now)
        .unwrap();
    // The member leads, so its own range assignment comes back to it. The
    // pattern matches whole names: `orders` and `t` are not subscribed.
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(
        assigned,
        vec![tp("orders-eu", 0), tp("orders-us", 0), tp("orders-us", 1)]
    );
    assert_eq!(
        cluster.consumer.subscription(),
        vec!["orders-eu", "orders-us"]
    );
    let meta = cluster.consumer.group_metadata().expect("a group member");
    assert!(meta.leader, "{meta:?}");
    assert_eq!(meta.generation_id, 1);
    // Every metadata refresh lists all topics, and the member joined only
    // once it knew what matches: one JoinGroup (plus the member-id retry).
    assert!(metadata_topics(&cluster).iter().all(Option::is_none));
    let joins = cluster.joins();
    assert_eq!(joins.len(), 2, "{joins:?}");
    let sub = decode_subscription(&joins[1].protocols[0].metadata);
    assert_eq!(
        sub.topics,
        vec!["orders-eu".to_string(), "orders-us".into()]
    );

    // A matching topic created later joins the subscription at the next
    // refresh (metadata.max.age.ms): an eager rebalance takes it in.
    cluster.topic("orders-asia", 1);
    let mut events = Vec::new();
    cluster.run_until(Duration::from_secs(60), |c| {
        events.extend(poll_events(c));
        c.consumer.ack_rebalance(c.now);
        events.len() >= 2
    });
    assert_eq!(
        events,
        vec![
            RebalanceEvent::Revoked(assigned.clone()),
            RebalanceEvent::Assigned(vec![
                tp("orders-asia", 0),
                tp("orders-eu", 0),
                tp("orders-us", 0),
                tp("orders-us", 1),
            ]),
        ]
    );
    let rejoin = cluster.joins().pop().unwrap();
    let sub = decode_subscription(&rejoin.protocols[0].metadata);
    assert_eq!(
        sub.topics,
        vec![
            "orders-asia".to_string(),
            "orders-eu".into(),
            "orders-us".into()
        ]
    );

    // Back to a plain list: metadata asks for named topics again.
    cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    let before = metadata_topics(&cluster).len();
    let mut events = Vec::new();
    cluster.run_until(Duration::from_secs(60), |c| {
        events.extend(poll_events(c));
        c.consumer.ack_rebalance(c.now);
        events.len() >= 2
    });
    assert_eq!(
        events[1],
        RebalanceEvent::Assigned(vec![tp("t", 0), tp("t", 1)]),
        "{events:?}"
    );
    // The next refresh (t is already known, so it waits for the max age).
    cluster.run_until(Duration::from_secs(60), |c| {
        let _ = c.poll().expect("poll");
        metadata_topics(c).len() > before
    });
    let later = &metadata_topics(&cluster)[before..];
    assert!(
        !later.is_empty() && later.iter().all(Option::is_some),
        "{later:?}"
    );
}

#[test]
fn coordinator_load_in_progress_retries_on_the_same_coordinator_after_a_backoff() {
    let mut cluster = cluster(group_config(), 2);
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster
        .group_scripts
        .push(commit_error_once(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS));
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(10), cluster.now)
        .unwrap();
    assert_eq!(commit_result(&mut cluster, id), Ok(()));
    let commits = cluster.requests(ApiKey::OffsetCommit);
    assert_eq!(commits.len(), 2);
    assert!(commits.iter().all(|r| r.broker == 1), "same coordinator");
    assert!(commits[1].at > commits[0].at, "after a backoff");
    assert_eq!(
        cluster.count(ApiKey::FindCoordinator),
        1,
        "the coordinator is still the coordinator"
    );
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 10);
}

#[test]
fn a_pattern_subscription_asks_a_metadata_v0_broker_for_every_topic_with_an_empty_list() {
    let mut cluster = cluster(group_config(), 1);
    for v in &mut cluster.broker(1).api_versions {
        if v.api_key == ApiKey::Metadata.code() {
            v.max_version = 0;
        }
    }
    cluster.topic("orders-eu", 1);
    cluster.group.leader = None;
    cluster
        .consumer
        .subscribe_pattern("orders-.*", cluster.now)
        .unwrap();
    let assigned = poll_until_assigned(&mut cluster);
    assert_eq!(assigned, vec![tp("orders-eu", 0)]);
    let asked = metadata_topics(&cluster);
    assert!(!asked.is_empty());
    assert!(
        asked.iter().all(|t| t.as_deref() == Some(&[][..])),
        "{asked:?}"
    );
}

#[test]
fn join_group_coordinator_load_in_progress_rejoins_the_same_coordinator() {
    let mut cluster = cluster(group_config(), 2);
    cluster.group_scripts.push(once(ApiKey::JoinGroup, || {
        RequestBodyReply::JoinGroup(odradek_core::protocol::messages::JoinGroupResponse {
            error_code: ErrorCode::COORDINATOR_LOAD_IN_PROGRESS.0,
            ..Default::default()
        })
    }));
    let assigned = join(&mut cluster);
    assert_eq!(assigned, vec![tp("t", 0), tp("t", 1)]);
    assert_eq!(cluster.count(ApiKey::FindCoordinator), 1);
    let joins = cluster.requests(ApiKey::JoinGroup);
    assert!(joins.len() >= 2, "{}", joins.len());
    assert!(joins.iter().all(|r| r.broker == 1));
}

// ---- commits never go backwards ---------------------------------------

/// Answers the OffsetCommits numbered in `which` (0-based, counted from
/// now) with `code` on every partition; the model does not store them.
fn commit_errors(which: &'static [usize], code: ErrorCode) -> GroupScript {
    let mut seen = 0;
    Box::new(move |_, _, body, _| match body {
        RequestBody::OffsetCommit(r) => {
            seen += 1;
            which
                .contains(&(seen - 1))
                .then(|| Action::Respond(RequestBodyReply::OffsetCommit(commit_error(r, code))))
        }
        _ => None,
    })
}

/// `t-0` at `offset`, as a commit of exactly that.
fn at(offset: i64) -> Option<BTreeMap<TopicPartition, OffsetAndMetadata>> {
    Some([(tp("t", 0), OffsetAndMetadata::new(offset))].into())
}

/// The `t-0` offsets of every OffsetCommit sent, in order.
fn sent_offsets(cluster: &Cluster) -> Vec<i64> {
    cluster
        .offset_commits()
        .iter()
        .filter_map(|c| committed_offsets(c).get(&tp("t", 0)).copied())
        .collect()
}

/// Runs until every commit of `ids` is reported; their outcomes in the
/// order they were reported.
fn reported(cluster: &mut Cluster, ids: &[CommitId]) -> Vec<(CommitId, Result<(), Error>)> {
    let mut out = Vec::new();
    cluster.run_until(Duration::from_secs(20), |c| {
        for e in c.take_events() {
            if let Event::CommitDone { id, result } = e {
                out.push((id, result));
            }
        }
        ids.iter().all(|id| out.iter().any(|(done, _)| done == id))
    });
    out
}

const LOAD: ErrorCode = ErrorCode::COORDINATOR_LOAD_IN_PROGRESS;

#[test]
fn a_newer_commit_waits_behind_an_older_one_being_retried() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    cluster.group_scripts.push(commit_errors(&[0], LOAD));
    let timeout = Duration::from_secs(10);
    let older = cluster
        .consumer
        .commit(at(5), timeout, cluster.now)
        .unwrap();
    cluster.drive();
    // The older commit failed and backs off; the newer one is made now.
    assert_eq!(sent_offsets(&cluster), vec![5]);
    let newer = cluster
        .consumer
        .commit(at(8), timeout, cluster.now)
        .unwrap();
    cluster.drive();
    assert_eq!(sent_offsets(&cluster), vec![5], "the newer one waits");
    let outcomes = reported(&mut cluster, &[older, newer]);
    assert_eq!(outcomes, vec![(older, Ok(())), (newer, Ok(()))]);
    assert_eq!(sent_offsets(&cluster), vec![5, 5, 8]);
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 8);
}

#[test]
fn an_older_commit_is_never_retried_with_a_partition_a_newer_one_went_out_with() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    cluster.group_scripts.push(commit_errors(&[0], LOAD));
    let timeout = Duration::from_secs(10);
    // Both go out at once; the older fails retriably, the newer succeeds.
    let older = cluster
        .consumer
        .commit(at(5), timeout, cluster.now)
        .unwrap();
    let newer = cluster
        .consumer
        .commit(at(8), timeout, cluster.now)
        .unwrap();
    let outcomes = reported(&mut cluster, &[older, newer]);
    cluster.advance(Duration::from_secs(2));
    assert_eq!(sent_offsets(&cluster), vec![5, 8], "5 never goes again");
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 8);
    // The older one's partition is the newer one's now: its outcome is
    // the newer one's, and it is reported first.
    assert_eq!(outcomes, vec![(older, Ok(())), (newer, Ok(()))]);
}

#[test]
fn an_older_commit_taken_over_by_a_newer_one_that_fails_reports_that_failure() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    // The older fails retriably, the newer fails for good (a script sees
    // only what the scripts before it let through).
    cluster.group_scripts.push(commit_errors(&[0], LOAD));
    cluster
        .group_scripts
        .push(commit_errors(&[0], ErrorCode::INVALID_COMMIT_OFFSET_SIZE));
    let timeout = Duration::from_secs(10);
    let older = cluster
        .consumer
        .commit(at(5), timeout, cluster.now)
        .unwrap();
    let newer = cluster
        .consumer
        .commit(at(8), timeout, cluster.now)
        .unwrap();
    let outcomes = reported(&mut cluster, &[older, newer]);
    let failed = Err(Error::Partition {
        api: ApiKey::OffsetCommit,
        partition: tp("t", 0),
        code: ErrorCode::INVALID_COMMIT_OFFSET_SIZE,
    });
    assert_eq!(outcomes, vec![(older, failed.clone()), (newer, failed)]);
    assert_eq!(sent_offsets(&cluster), vec![5, 8]);
    assert!(!cluster.group.committed.contains_key(&tp("t", 0)));
}

#[test]
fn an_async_commit_is_retried_alone_but_not_behind_a_newer_commit() {
    let timeout = Duration::from_secs(10);
    // Alone: retried like any commit.
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    cluster.group_scripts.push(commit_errors(&[0], LOAD));
    let alone = cluster
        .consumer
        .commit_async(at(5), timeout, cluster.now)
        .unwrap();
    assert_eq!(reported(&mut cluster, &[alone]), vec![(alone, Ok(()))]);
    assert_eq!(sent_offsets(&cluster), vec![5, 5]);

    // A newer commit made while it backs off: it gives up at once (as
    // Java's commitAsync), and the newer commit goes.
    let mut cluster = self::cluster(group_config(), 1);
    join(&mut cluster);
    cluster.group_scripts.push(commit_errors(&[0], LOAD));
    let older = cluster
        .consumer
        .commit_async(at(5), timeout, cluster.now)
        .unwrap();
    cluster.drive();
    let newer = cluster
        .consumer
        .commit(at(8), timeout, cluster.now)
        .unwrap();
    let outcomes = reported(&mut cluster, &[older, newer]);
    let replaced = Err(Error::CommitFailed {
        reason: CommitFailure::Retriable(LOAD),
    });
    assert_eq!(outcomes, vec![(older, replaced), (newer, Ok(()))]);
    assert_eq!(sent_offsets(&cluster), vec![5, 8]);
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 8);
}

#[test]
fn async_then_sync_in_flight_together_complete_in_order_and_never_rewind() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    // The async commit gets no answer (its connection closes); the sync
    // one, sent behind it, goes again on the new connection.
    let mut armed = true;
    cluster.group_scripts.push(Box::new(move |_, h, _, _| {
        if armed && h.api_key == ApiKey::OffsetCommit.code() {
            armed = false;
            return Some(Action::Disconnect);
        }
        None
    }));
    let timeout = Duration::from_secs(10);
    let first = cluster
        .consumer
        .commit_async(at(5), timeout, cluster.now)
        .unwrap();
    let second = cluster
        .consumer
        .commit(at(8), timeout, cluster.now)
        .unwrap();
    let outcomes = reported(&mut cluster, &[first, second]);
    assert_eq!(
        outcomes,
        vec![
            (
                first,
                Err(Error::CommitFailed {
                    reason: CommitFailure::NoAnswer
                })
            ),
            (second, Ok(()))
        ]
    );
    let sent = sent_offsets(&cluster);
    assert_eq!(sent.last(), Some(&8), "{sent:?}");
    assert_eq!(sent.iter().filter(|&&o| o == 5).count(), 1, "{sent:?}");
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 8);
}

#[test]
fn commits_made_during_a_coordinator_move_reach_the_new_coordinator_in_order() {
    let mut cluster = cluster(group_config(), 2);
    join(&mut cluster);
    // Broker 1 stops coordinating at the first commit; everything it gets
    // from then on is NOT_COORDINATOR.
    cluster.group_scripts.push(Box::new(|broker, h, _, group| {
        if broker == 1 && h.api_key == ApiKey::OffsetCommit.code() {
            group.coordinator = 2;
        }
        None
    }));
    let timeout = Duration::from_secs(10);
    let first = cluster
        .consumer
        .commit(at(5), timeout, cluster.now)
        .unwrap();
    let second = cluster
        .consumer
        .commit_async(at(7), timeout, cluster.now)
        .unwrap();
    cluster.drive();
    // Made while the coordinator is looked for.
    let third = cluster
        .consumer
        .commit(at(8), timeout, cluster.now)
        .unwrap();
    let outcomes = reported(&mut cluster, &[first, second, third]);
    let ids: Vec<CommitId> = outcomes.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![first, second, third], "reported in order");
    assert_eq!(outcomes[2].1, Ok(()));
    let on_new: Vec<i64> = cluster
        .requests(ApiKey::OffsetCommit)
        .iter()
        .filter(|r| r.broker == 2)
        .filter_map(|r| match &r.body {
            RequestBody::OffsetCommit(c) => committed_offsets(c).get(&tp("t", 0)).copied(),
            _ => None,
        })
        .collect();
    assert!(on_new.is_sorted(), "{on_new:?}");
    assert_eq!(on_new.last(), Some(&8));
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 8);
}

// ---- the offset store ---------------------------------------------------

#[test]
fn with_auto_offset_store_off_commits_send_only_stored_offsets() {
    let interval = Duration::from_secs(2);
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = interval;
            c.enable_auto_offset_store = false;
        }),
        1,
    );
    join(&mut cluster);
    let got = records(&mut cluster, 20);
    // The application finished t-0's record 3 only (out of poll order).
    let third = got
        .iter()
        .find(|r| r.partition() == 0 && r.offset() == 3)
        .unwrap();
    cluster.consumer.store_offset(third).unwrap();
    assert_eq!(
        cluster
            .consumer
            .store_offsets([(tp("u", 0), OffsetAndMetadata::new(1))].into()),
        Err(Error::InvalidArgument(Misuse::NotAssigned(tp("u", 0))))
    );
    cluster.advance(interval);
    cluster.poll().unwrap();
    cluster.drive();
    let commits = cluster.offset_commits();
    assert_eq!(commits.len(), 1);
    assert_eq!(
        committed_offsets(&commits[0]),
        BTreeMap::from([(tp("t", 0), 4)]),
        "the stored offset, not the delivered positions (10, 10)"
    );

    // commit() without offsets sends what is stored, too.
    cluster
        .consumer
        .store_offsets([(tp("t", 1), OffsetAndMetadata::new(7))].into())
        .unwrap();
    let id = cluster
        .consumer
        .commit(None, Duration::from_secs(5), cluster.now)
        .unwrap();
    assert_eq!(commit_result(&mut cluster, id), Ok(()));
    assert_eq!(cluster.group.committed[&tp("t", 0)].offset, 4);
    assert_eq!(cluster.group.committed[&tp("t", 1)].offset, 7);
}

#[test]
fn storing_offsets_with_auto_offset_store_on_is_a_typed_misuse() {
    let mut cluster = cluster(group_config(), 1);
    join(&mut cluster);
    let got = records(&mut cluster, 20);
    assert_eq!(
        cluster.consumer.store_offset(&got[0]),
        Err(Error::InvalidArgument(Misuse::AutoOffsetStore))
    );
}

// ---- close options ------------------------------------------------------

#[test]
fn close_without_commit_revokes_and_leaves_but_commits_nothing() {
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = Duration::from_secs(30);
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.consumer.close_with(
        odradek_core::CloseOptions::new().without_commit(),
        cluster.now,
    );
    cluster.advance(Duration::from_millis(200));
    assert_eq!(cluster.count(ApiKey::OffsetCommit), 0);
    assert_eq!(cluster.count(ApiKey::LeaveGroup), 1);
    assert!(cluster.events.contains(&Event::Closed));
}

#[test]
fn close_gives_up_on_an_unanswered_commit_at_the_callers_timeout() {
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = Duration::from_secs(30);
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.group_scripts.push(Box::new(|_, h, _, _| {
        (h.api_key == ApiKey::OffsetCommit.code()).then_some(Action::Ignore)
    }));
    let timeout = Duration::from_millis(1_500);
    cluster.consumer.close_with(
        odradek_core::CloseOptions::new().timeout(timeout),
        cluster.now,
    );
    cluster.advance(Duration::from_millis(1_400));
    assert!(cluster.count(ApiKey::OffsetCommit) >= 1);
    assert!(!cluster.events.contains(&Event::Closed), "still waiting");
    cluster.advance(Duration::from_millis(200));
    assert!(
        cluster.events.contains(&Event::Closed),
        "closed at the timeout"
    );
    assert!(cluster.consumer.is_closed());
}

// ---- properties users bring ---------------------------------------------

#[test]
fn patterns_skip_internal_topics_unless_exclude_internal_topics_is_false() {
    for exclude in [true, false] {
        let mut cluster = cluster(with(|c| c.exclude_internal_topics = exclude), 1);
        // Topic ids come from the name's length: these differ from `t`'s.
        cluster.topic("__consumer_offsets", 1);
        cluster.topic("t-new", 1);
        cluster.group.leader = None;
        cluster
            .consumer
            .subscribe_pattern(".*", cluster.now)
            .unwrap();
        poll_until_assigned(&mut cluster);
        let mut want = vec!["t", "t-new"];
        if !exclude {
            want.insert(0, "__consumer_offsets");
        }
        assert_eq!(cluster.consumer.subscription(), want, "exclude={exclude}");
    }
}

#[test]
fn metadata_requests_allow_topic_creation_only_when_configured() {
    for allow in [false, true] {
        let mut cluster = cluster(with(|c| c.allow_auto_create_topics = allow), 1);
        join(&mut cluster);
        let asked: Vec<bool> = cluster
            .requests(ApiKey::Metadata)
            .iter()
            .map(|r| match &r.body {
                RequestBody::Metadata(m) => m.allow_auto_topic_creation,
                _ => unreachable!(),
            })
            .collect();
        assert!(!asked.is_empty());
        assert!(asked.iter().all(|&a| a == allow), "{allow}: {asked:?}");
    }
}

// ---- metrics --------------------------------------------------------------

#[test]
fn group_metrics_count_rebalances_heartbeats_and_commits() {
    use odradek_core::metrics::GroupState;
    let mut cluster = cluster(group_config(), 1);
    let unjoined = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert_eq!(unjoined.state, GroupState::Unjoined);
    assert_eq!((unjoined.rebalance_total, unjoined.generation), (0, -1));
    join(&mut cluster);
    let joined = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert_eq!(joined.state, GroupState::Stable);
    assert_eq!(
        (joined.generation, joined.member_id.as_str()),
        (1, "member-1")
    );
    assert_eq!(joined.rebalance_total, 1);
    assert!(joined.last_rebalance_duration.is_some());
    records(&mut cluster, 20);

    // Heartbeats every second, answered at once.
    cluster.advance(Duration::from_millis(1_500));
    let beating = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert!(beating.last_heartbeat_ago.unwrap() < Duration::from_secs(1));
    assert_eq!(beating.heartbeat_latency_max, Some(Duration::ZERO));

    // A commit answered 250 ms late, then one refused.
    let delay = Duration::from_millis(250);
    cluster
        .group_scripts
        .push(delay_nth(ApiKey::OffsetCommit, 0, delay));
    let id = cluster
        .consumer
        .commit(at(5), Duration::from_secs(5), cluster.now)
        .unwrap();
    assert_eq!(commit_result(&mut cluster, id), Ok(()));
    cluster
        .group_scripts
        .push(commit_errors(&[0], ErrorCode::INVALID_COMMIT_OFFSET_SIZE));
    let id = cluster
        .consumer
        .commit(at(6), Duration::from_secs(5), cluster.now)
        .unwrap();
    assert!(commit_result(&mut cluster, id).is_err());
    let committing = cluster.consumer.metrics(cluster.now);
    let group = committing.group.as_ref().unwrap();
    assert_eq!(group.commit_latency_max, Some(delay));
    assert_eq!((group.commit_total, group.failed_commit_total), (2, 1));
    assert_eq!(committing.partitions[&tp("t", 0)].committed, Some(5));
    // Windowed figures forget what is older than 30 s; totals do not.
    cluster.advance(Duration::from_secs(20));
    let half = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert_eq!(half.commit_latency_max, Some(delay), "still in the window");
    cluster.advance(Duration::from_secs(11));
    let forgotten = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert_eq!(forgotten.commit_latency_max, None);
    assert_eq!(forgotten.commit_latency_avg, None);
    assert_eq!(forgotten.commit_total, 2);

    // A second rebalance.
    cluster
        .group_scripts
        .push(heartbeat_error(ErrorCode::REBALANCE_IN_PROGRESS));
    cluster.advance(Duration::from_millis(1_500));
    poll_events(&mut cluster);
    cluster.consumer.ack_rebalance(cluster.now);
    let rejoining = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert_ne!(rejoining.state, GroupState::Stable);
    poll_until_assigned(&mut cluster);
    let rejoined_at = cluster.now;
    cluster.advance(Duration::from_millis(700));
    let again = cluster.consumer.metrics(cluster.now).group.unwrap();
    assert_eq!((again.rebalance_total, again.generation), (2, 2));
    assert_eq!(again.last_rebalance_ago, Some(cluster.now - rejoined_at));
}

#[test]
fn every_commit_is_reported_with_its_offsets_for_interceptors_in_order() {
    let interval = Duration::from_secs(2);
    let mut cluster = cluster(
        with(|c| {
            c.enable_auto_commit = true;
            c.auto_commit_interval = interval;
        }),
        1,
    );
    join(&mut cluster);
    records(&mut cluster, 20);
    cluster.take_events();
    cluster.advance(interval);
    cluster.poll().unwrap();
    cluster.drive();
    let user = cluster
        .consumer
        .commit(at(3), Duration::from_secs(5), cluster.now)
        .unwrap();
    cluster.drive();
    let reported: Vec<Event> = cluster
        .take_events()
        .into_iter()
        .filter(|e| matches!(e, Event::Committed { .. } | Event::CommitDone { .. }))
        .collect();
    // Auto-commits carry the leader epoch of the last record (0 here).
    let delivered = OffsetAndMetadata {
        leader_epoch: Some(0),
        ..OffsetAndMetadata::new(10)
    };
    let all = BTreeMap::from([(tp("t", 0), delivered.clone()), (tp("t", 1), delivered)]);
    assert_eq!(
        reported,
        vec![
            Event::Committed {
                offsets: all,
                result: Ok(())
            },
            Event::CommitDone {
                id: user,
                result: Ok(())
            },
            Event::Committed {
                offsets: at(3).unwrap(),
                result: Ok(())
            },
        ]
    );
}
