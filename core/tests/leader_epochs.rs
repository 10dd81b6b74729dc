//! Leader epochs and truncation detection (KIP-320), against scripted
//! brokers and a fake clock (see `support/`): epoch fences on Fetch and
//! ListOffsets, position validation with OffsetForLeaderEpoch after a leader
//! change and for committed offsets, unclean leader elections, and Fetch's
//! diverging epoch. The answers that matter are written out literally; the
//! model brokers answer the rest as Kafka does.

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use odradek_core::group::Assignors;
use odradek_core::protocol::messages::{
    FetchResponse, ListOffsetsResponse, OffsetForLeaderEpochResponse,
    fetch::{FetchEpochEndOffset, FetchPartitionData, FetchableTopicResponse},
    list_offsets::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    offset_for_leader_epoch::{
        OffsetForLeaderEpochEndOffset, OffsetForLeaderPartition, OffsetForLeaderTopicResult,
    },
};
use odradek_core::protocol::{ApiKey, ErrorCode, RequestBody};
use odradek_core::records::{NewRecord, RecordBatchBuilder};
use odradek_core::{ConsumerConfig, ConsumerRecord, Error, Event, OffsetReset, RebalanceEvent};
use support::*;

/// A cluster whose brokers answer each connection's requests in order, as
/// Kafka does (a held fetch holds back what follows it).
fn cluster(config: ConsumerConfig, brokers: i32) -> Cluster {
    let mut cluster = Cluster::new(config, brokers);
    cluster.in_order = true;
    cluster
}

/// No connection broke or sent garbage.
fn assert_no_connection_errors(cluster: &Cluster) {
    let errors: Vec<&Event> = cluster
        .events
        .iter()
        .filter(|e| matches!(e, Event::ConnectionError { .. }))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

fn with_reset(reset: OffsetReset) -> ConsumerConfig {
    let mut c = config();
    c.auto_offset_reset = reset;
    c
}

/// Appends `count` records with values `"{prefix}{offset}"` in one batch
/// stamped with the log's current leader epoch.
fn append_named(log: &mut PartitionLog, count: usize, prefix: &str) {
    let base = log.high_watermark.max(log.log_start);
    let records =
        (0..count as i64).map(|i| NewRecord::new().with_value(format!("{prefix}{}", base + i)));
    let bytes = RecordBatchBuilder::new(base)
        .partition_leader_epoch(log.leader_epoch)
        .records(records)
        .encode()
        .unwrap();
    log.append_batch(base, base + count as i64, bytes);
}

/// Topic `t` on broker 1: `t-0` holds offsets 0..5 written in leader epoch
/// 0 and 5..10 in epoch 1; `t-1` holds 3 records.
fn two_epochs(cluster: &mut Cluster) {
    cluster.topic("t", 2);
    let log = cluster.log("t", 0);
    log.append_values(5);
    log.leader_epoch = 1;
    log.append_values(5);
    cluster.log("t", 1).append_values(3);
}

/// An unclean leader election for `t-0`: broker 2, which had replicated
/// only up to `kept`, becomes leader in epoch 2 and takes `fresh` new
/// records (values `"new{offset}"`).
fn unclean_election(cluster: &mut Cluster, kept: i64, fresh: usize) {
    let log = cluster.log("t", 0);
    log.truncate_to(kept);
    log.leader = 2;
    log.leader_epoch = 2;
    append_named(log, fresh, "new");
}

/// Scripts broker `id` to answer the first request that `matches` (once
/// `armed` is set) with `reply`; later ones go to the model. The returned
/// flag says whether the answer went out.
fn answer_once(
    cluster: &mut Cluster,
    id: i32,
    armed: Rc<Cell<bool>>,
    matches: impl Fn(&RequestBody) -> bool + 'static,
    reply: impl FnOnce(&RequestBody) -> RequestBodyReply + 'static,
) -> Rc<Cell<bool>> {
    let answered = Rc::new(Cell::new(false));
    let done = answered.clone();
    let mut reply = Some(reply);
    cluster.broker(id).script.push(Box::new(move |_, body| {
        if !armed.get() || done.get() || !matches(body) {
            return None;
        }
        done.set(true);
        reply.take().map(|r| Action::Respond(r(body)))
    }));
    answered
}

fn armed() -> Rc<Cell<bool>> {
    Rc::new(Cell::new(true))
}

fn is_ofle(body: &RequestBody) -> bool {
    matches!(body, RequestBody::OffsetForLeaderEpoch(_))
}

/// A Fetch of `t-0` at `offset`.
fn fetch_at(offset: i64) -> impl Fn(&RequestBody) -> bool {
    move |body| {
        matches!(body, RequestBody::Fetch(f)
            if f.topics.iter().flat_map(|t| &t.partitions)
                .any(|p| p.partition == 0 && p.fetch_offset == offset))
    }
}

/// A literal OffsetForLeaderEpoch answer for `t-0`.
fn epoch_end(error_code: i16, leader_epoch: i32, end_offset: i64) -> RequestBodyReply {
    RequestBodyReply::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse {
        throttle_time_ms: 0,
        topics: vec![OffsetForLeaderTopicResult {
            topic: "t".into(),
            partitions: vec![OffsetForLeaderEpochEndOffset {
                error_code,
                partition: 0,
                leader_epoch,
                end_offset,
            }],
        }],
    })
}

/// A literal Fetch answer with `partition` for `t-0`, naming the topic as
/// the request did (by name or by id).
fn fetch_answer(request: &RequestBody, partition: FetchPartitionData) -> RequestBodyReply {
    let RequestBody::Fetch(request) = request else {
        panic!("not a fetch: {request:?}");
    };
    let topic = &request.topics[0];
    RequestBodyReply::Fetch(FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: topic.topic.clone(),
            topic_id: topic.topic_id,
            partitions: vec![partition],
        }],
        ..Default::default()
    })
}

fn fetch_error(code: ErrorCode) -> FetchPartitionData {
    FetchPartitionData {
        partition_index: 0,
        error_code: code.0,
        high_watermark: -1,
        records: None,
        ..Default::default()
    }
}

fn diverging(epoch: i32, end_offset: i64, high_watermark: i64) -> FetchPartitionData {
    FetchPartitionData {
        partition_index: 0,
        high_watermark,
        diverging_epoch: FetchEpochEndOffset { epoch, end_offset },
        ..Default::default()
    }
}

/// Polls every 50 ms for `d`, collecting records and errors.
fn poll_for(cluster: &mut Cluster, d: Duration) -> (Vec<ConsumerRecord>, Vec<Error>) {
    let end = cluster.now + d;
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    while cluster.now < end {
        match cluster.poll() {
            Ok(r) => records.extend(r),
            Err(e) => errors.push(e),
        }
        cluster.advance(Duration::from_millis(50));
    }
    (records, errors)
}

/// Polls until an error comes, collecting the records before it.
fn poll_until_error(cluster: &mut Cluster, limit: Duration) -> (Vec<ConsumerRecord>, Error) {
    let mut records = Vec::new();
    let mut error = None;
    cluster.run_until(limit, |c| {
        match c.poll() {
            Ok(r) => records.extend(r),
            Err(e) => error = Some(e),
        }
        error.is_some()
    });
    (records, error.unwrap())
}

fn of_partition(records: &[ConsumerRecord], partition: i32) -> Vec<i64> {
    records
        .iter()
        .filter(|r| r.partition() == partition)
        .map(ConsumerRecord::offset)
        .collect()
}

/// Where in the request log the first request of `api` to `broker` is.
fn first_index(cluster: &Cluster, broker: i32, api: ApiKey) -> Option<usize> {
    cluster
        .log
        .iter()
        .position(|r| r.broker == broker && r.header.api_key == api.code())
}

/// Whether a Metadata request went out after the first request of `api`
/// (its own backoff decides whether before or after the retry).
fn refreshed_after_first(cluster: &Cluster, api: ApiKey) -> bool {
    let first = cluster
        .log
        .iter()
        .position(|r| r.header.api_key == api.code())
        .unwrap();
    cluster.log[first..]
        .iter()
        .any(|r| r.header.api_key == ApiKey::Metadata.code())
}

/// The fetches of `t-0` a broker received: (fetch offset, current leader
/// epoch, last fetched epoch).
fn fetches_of_p0(cluster: &mut Cluster, broker: i32) -> Vec<(i64, i32, i32)> {
    cluster
        .broker(broker)
        .fetches()
        .iter()
        .flat_map(|f| f.topics.iter().flat_map(|t| &t.partitions))
        .filter(|p| p.partition == 0)
        .map(|p| (p.fetch_offset, p.current_leader_epoch, p.last_fetched_epoch))
        .collect()
}

fn truncation(position: i64, divergent_offset: Option<i64>) -> Error {
    Error::LogTruncation {
        partition: tp("t", 0),
        position,
        divergent_offset,
    }
}

// ---- 1. an unclean leader election, found by validation --------------------

#[test]
fn unclean_election_with_a_reset_policy_moves_to_the_first_divergent_offset() {
    let mut cluster = cluster(with_reset(OffsetReset::Earliest), 2);
    two_epochs(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let first = cluster.poll_n(10, Duration::from_secs(5));
    assert_eq!(offsets(&first), (0..10).collect::<Vec<_>>());

    unclean_election(&mut cluster, 5, 3);
    // Broker 2 never had epoch 1: the largest epoch it has below it, 0,
    // ends at 5, below the position 10.
    answer_once(&mut cluster, 2, armed(), is_ofle, |_| epoch_end(0, 0, 5));
    let records = cluster.poll_n(3, Duration::from_secs(10));
    assert_eq!(offsets(&records), vec![5, 6, 7]);
    assert_eq!(values(&records), vec!["new5", "new6", "new7"]);
    assert!(records.iter().all(|r| r.leader_epoch() == Some(2)));
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(8)
    );

    // One validation, v3+ with the consumer's replica id, naming the new
    // leader's epoch and the position's.
    let asked = cluster.requests(ApiKey::OffsetForLeaderEpoch);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].broker, 2);
    assert!(asked[0].header.api_version >= 3);
    let request = &cluster.offset_for_leader_epochs()[0];
    assert_eq!(request.replica_id, -1);
    assert_eq!(request.topics.len(), 1);
    assert_eq!(request.topics[0].topic, "t");
    assert_eq!(
        request.topics[0].partitions,
        vec![OffsetForLeaderPartition {
            partition: 0,
            current_leader_epoch: 2,
            leader_epoch: 1,
        }]
    );
    // Nothing was fetched from the new leader before it answered; the
    // first fetch starts at the divergent offset with its epoch.
    let validated = first_index(&cluster, 2, ApiKey::OffsetForLeaderEpoch).unwrap();
    assert!(first_index(&cluster, 2, ApiKey::Fetch).unwrap() > validated);
    assert_eq!(fetches_of_p0(&mut cluster, 2)[0], (5, 2, 0));
    assert_no_connection_errors(&cluster);
}

#[test]
fn unclean_election_with_reset_none_is_reported_once_and_stops_the_partition() {
    let mut cluster = cluster(with_reset(OffsetReset::None), 2);
    two_epochs(&mut cluster);
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1)], cluster.now)
        .unwrap();
    for p in 0..2 {
        cluster.consumer.seek(&tp("t", p), 0, cluster.now).unwrap();
    }
    let first = cluster.poll_n(13, Duration::from_secs(5));
    assert_eq!(of_partition(&first, 0), (0..10).collect::<Vec<_>>());

    unclean_election(&mut cluster, 5, 3);
    cluster.log("t", 1).append_values(2);
    answer_once(&mut cluster, 2, armed(), is_ofle, |_| epoch_end(0, 0, 5));
    let (before, error) = poll_until_error(&mut cluster, Duration::from_secs(10));
    assert_eq!(error, truncation(10, Some(5)));
    assert!(
        error.to_string().contains("first divergent offset 5"),
        "{error}"
    );
    assert!(
        of_partition(&before, 0).is_empty(),
        "nothing past the truncation"
    );

    // Reported once; the other partition goes on, this one stays stopped.
    let (after, errors) = poll_for(&mut cluster, Duration::from_secs(3));
    assert!(errors.is_empty(), "{errors:?}");
    let mut rest = of_partition(&before, 1);
    rest.extend(of_partition(&after, 1));
    assert_eq!(rest, vec![3, 4]);
    assert!(of_partition(&after, 0).is_empty());
    assert!(fetches_of_p0(&mut cluster, 2).is_empty(), "no fetch of t-0");
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now),
        Err(truncation(10, Some(5)))
    );

    // The application seeks to the divergent offset: consumption resumes.
    cluster.consumer.seek(&tp("t", 0), 5, cluster.now).unwrap();
    let resumed = cluster.poll_n(3, Duration::from_secs(5));
    assert_eq!(offsets(&resumed), vec![5, 6, 7]);
    assert_eq!(values(&resumed), vec!["new5", "new6", "new7"]);
    assert_no_connection_errors(&cluster);
}

#[test]
fn a_leader_that_no_longer_knows_the_epoch_resets_by_policy_or_reports_an_unknown_offset() {
    for reset in [OffsetReset::Earliest, OffsetReset::None] {
        let mut cluster = cluster(with_reset(reset), 2);
        two_epochs(&mut cluster);
        cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
        cluster.consumer.seek(&tp("t", 0), 0, cluster.now).unwrap();
        assert_eq!(cluster.poll_n(10, Duration::from_secs(5)).len(), 10);
        unclean_election(&mut cluster, 5, 3);
        answer_once(&mut cluster, 2, armed(), is_ofle, |_| epoch_end(0, -1, -1));
        if reset == OffsetReset::None {
            let (_, error) = poll_until_error(&mut cluster, Duration::from_secs(10));
            assert_eq!(error, truncation(10, None));
            assert!(error.to_string().contains("unknown"), "{error}");
        } else {
            // The policy decides: earliest is the log start.
            let records = cluster.poll_n(8, Duration::from_secs(10));
            assert_eq!(offsets(&records), (0..8).collect::<Vec<_>>());
            assert!(cluster.count(ApiKey::ListOffsets) >= 1);
        }
        assert_no_connection_errors(&cluster);
    }
}

// ---- 2. epoch fences on Fetch and ListOffsets --------------------------------

#[test]
fn a_fetch_fenced_by_epoch_or_leadership_refreshes_metadata_and_retries_at_the_same_position() {
    for code in [
        ErrorCode::FENCED_LEADER_EPOCH,
        ErrorCode::UNKNOWN_LEADER_EPOCH,
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ] {
        let mut cluster = cluster(with_reset(OffsetReset::Earliest), 1);
        cluster.topic("t", 1);
        cluster.log("t", 0).append_values(10);
        cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
        let first = cluster.poll_n(10, Duration::from_secs(5));
        assert_eq!(offsets(&first), (0..10).collect::<Vec<_>>());

        let arm = Rc::new(Cell::new(false));
        let answered = answer_once(&mut cluster, 1, arm.clone(), fetch_at(10), move |r| {
            fetch_answer(r, fetch_error(code))
        });
        arm.set(true);
        cluster.log("t", 0).append_values(5);
        cluster.run_until(Duration::from_secs(5), |_| answered.get());
        let metadata = cluster.count(ApiKey::Metadata);
        assert_eq!(
            cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
            Some(10),
            "{code}"
        );
        let rest = cluster.poll_n(5, Duration::from_secs(5));
        assert_eq!(offsets(&rest), (10..15).collect::<Vec<_>>(), "{code}");
        assert!(
            cluster.count(ApiKey::Metadata) > metadata,
            "{code}: metadata refreshed"
        );
        let retried = fetches_of_p0(&mut cluster, 1);
        assert!(
            retried.iter().filter(|f| f.0 == 10).count() >= 2,
            "{code}: the fetch at 10 went again: {retried:?}"
        );
        cluster.advance(Duration::from_secs(1));
        assert!(cluster.poll().unwrap().is_empty(), "{code}: no duplicates");
        assert_no_connection_errors(&cluster);
    }
}

#[test]
fn a_fetch_fenced_by_a_newer_leader_epoch_retries_with_that_epoch() {
    let mut cluster = cluster(with_reset(OffsetReset::Earliest), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(10);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(10, Duration::from_secs(5)).len(), 10);
    // The leader is re-elected in epoch 1; the consumer still names 0, and
    // the model broker answers FENCED_LEADER_EPOCH until it learns.
    let log = cluster.log("t", 0);
    log.leader_epoch = 1;
    log.append_values(5);
    let rest = cluster.poll_n(5, Duration::from_secs(5));
    assert_eq!(offsets(&rest), (10..15).collect::<Vec<_>>());
    let fetches = fetches_of_p0(&mut cluster, 1);
    let fenced = fetches.iter().position(|f| *f == (10, 0, 0)).unwrap();
    assert!(
        fetches[fenced..].iter().any(|f| f.0 == 10 && f.1 == 1),
        "retried at 10 naming epoch 1: {fetches:?}"
    );
    cluster.advance(Duration::from_secs(1));
    assert!(cluster.poll().unwrap().is_empty(), "no duplicates");
    assert_no_connection_errors(&cluster);
}

#[test]
fn list_offsets_fenced_by_epoch_or_leadership_refreshes_metadata_and_retries() {
    for code in [
        ErrorCode::FENCED_LEADER_EPOCH,
        ErrorCode::UNKNOWN_LEADER_EPOCH,
        ErrorCode::NOT_LEADER_OR_FOLLOWER,
    ] {
        let mut cluster = cluster(with_reset(OffsetReset::Earliest), 1);
        cluster.topic("t", 1);
        cluster.log("t", 0).leader_epoch = 4;
        cluster.log("t", 0).append_values(10);
        cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
        assert_eq!(cluster.poll_n(10, Duration::from_secs(5)).len(), 10);
        cluster.advance(Duration::from_secs(1));
        let metadata = cluster.count(ApiKey::Metadata);
        let listed = cluster.count(ApiKey::ListOffsets);

        answer_once(
            &mut cluster,
            1,
            armed(),
            |b| matches!(b, RequestBody::ListOffsets(_)),
            move |_| {
                RequestBodyReply::ListOffsets(ListOffsetsResponse {
                    topics: vec![ListOffsetsTopicResponse {
                        name: "t".into(),
                        partitions: vec![ListOffsetsPartitionResponse {
                            partition_index: 0,
                            error_code: code.0,
                            ..Default::default()
                        }],
                    }],
                    ..Default::default()
                })
            },
        );
        cluster.log("t", 0).append_values(2);
        cluster
            .consumer
            .seek_to_end(&[tp("t", 0)], cluster.now)
            .unwrap();
        cluster.run_until(Duration::from_secs(5), |c| {
            c.consumer.position(&tp("t", 0), c.now).unwrap().is_some()
        });
        assert_eq!(
            cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
            Some(12),
            "{code}"
        );
        let list = cluster.requests(ApiKey::ListOffsets);
        assert_eq!(list.len(), listed + 2, "{code}: retried once");
        assert!(
            list[listed + 1].at > list[listed].at,
            "{code}: after a backoff"
        );
        for request in &cluster.list_offsets_requests()[listed..] {
            let p = &request.topics[0].partitions[0];
            assert_eq!(p.current_leader_epoch, 4, "{code}: names the leader epoch");
        }
        cluster.advance(Duration::from_secs(1));
        assert!(
            cluster.count(ApiKey::Metadata) > metadata,
            "{code}: metadata refreshed"
        );
        cluster.log("t", 0).append_values(3);
        let records = cluster.poll_n(3, Duration::from_secs(5));
        assert_eq!(offsets(&records), vec![12, 13, 14], "{code}");
        assert_no_connection_errors(&cluster);
    }
}

// ---- 3. committed offsets with an epoch --------------------------------------

/// A group member's config with `reset`.
fn group_config(reset: OffsetReset) -> ConsumerConfig {
    let mut c = config();
    c.group_id = Some("g".into());
    c.auto_offset_reset = reset;
    c.enable_auto_commit = false;
    c.partition_assignment_strategy = Assignors::from_names("range").unwrap();
    c
}

/// Subscribes to `t`; another member leads and assigns `t-0`, whose
/// committed offset is 10 from leader epoch 1. Polls until assigned.
fn join_with_committed(cluster: &mut Cluster) {
    cluster.in_order = true;
    cluster.group.leader = Some("leader-0".into());
    cluster.group.assignment = vec![tp("t", 0)];
    cluster.group.committed.insert(
        tp("t", 0),
        Committed {
            offset: 10,
            leader_epoch: 1,
            metadata: String::new(),
        },
    );
    cluster.consumer.subscribe(["t"], cluster.now).unwrap();
    let mut assigned = false;
    cluster.run_until(Duration::from_secs(10), |c| {
        assert!(c.poll().expect("poll").is_empty());
        assigned |= c
            .rebalance_events()
            .iter()
            .any(|e| matches!(e, RebalanceEvent::Assigned(_)));
        assigned
    });
    cluster.consumer.ack_rebalance(cluster.now);
}

#[test]
fn a_committed_offset_from_an_old_epoch_is_validated_before_fetching() {
    let mut cluster = cluster(group_config(OffsetReset::Earliest), 1);
    cluster.topic("t", 1);
    // Epoch 0 wrote 0..5, epoch 1 wrote 5..12; the leader is in epoch 3 now.
    let log = cluster.log("t", 0);
    log.append_values(5);
    log.leader_epoch = 1;
    log.append_values(7);
    log.leader_epoch = 3;
    log.append_values(3);
    join_with_committed(&mut cluster);
    answer_once(&mut cluster, 1, armed(), is_ofle, |_| epoch_end(0, 1, 12));
    let records = cluster.poll_n(5, Duration::from_secs(10));
    assert_eq!(offsets(&records), (10..15).collect::<Vec<_>>());

    let request = &cluster.offset_for_leader_epochs()[0];
    assert_eq!(
        request.topics[0].partitions[0],
        OffsetForLeaderPartition {
            partition: 0,
            current_leader_epoch: 3,
            leader_epoch: 1,
        }
    );
    let validated = first_index(&cluster, 1, ApiKey::OffsetForLeaderEpoch).unwrap();
    assert!(first_index(&cluster, 1, ApiKey::Fetch).unwrap() > validated);
    assert_eq!(fetches_of_p0(&mut cluster, 1)[0].0, 10);
    assert_no_connection_errors(&cluster);
}

#[test]
fn a_committed_offset_past_a_truncation_moves_to_the_divergent_offset_or_is_reported() {
    for reset in [OffsetReset::Earliest, OffsetReset::None] {
        let mut cluster = cluster(group_config(reset), 1);
        cluster.topic("t", 1);
        // Epoch 1, which the commit came from, was lost: epoch 0 wrote
        // 0..5, then a leader in epoch 2 wrote 5..12 anew.
        let log = cluster.log("t", 0);
        log.append_values(5);
        log.leader_epoch = 2;
        append_named(log, 7, "new");
        join_with_committed(&mut cluster);
        answer_once(&mut cluster, 1, armed(), is_ofle, |_| epoch_end(0, 0, 5));
        if reset == OffsetReset::None {
            let (records, error) = poll_until_error(&mut cluster, Duration::from_secs(10));
            assert!(records.is_empty());
            assert_eq!(error, truncation(10, Some(5)));
            assert!(fetches_of_p0(&mut cluster, 1).is_empty());
        } else {
            let records = cluster.poll_n(7, Duration::from_secs(10));
            assert_eq!(offsets(&records), (5..12).collect::<Vec<_>>());
            assert_eq!(values(&records)[0], "new5");
        }
        let request = &cluster.offset_for_leader_epochs()[0];
        assert_eq!(request.topics[0].partitions[0].leader_epoch, 1);
        assert_no_connection_errors(&cluster);
    }
}

// ---- 4. a clean leader change ------------------------------------------------

/// `t-0` with 10 records in epoch 0 on broker 1; the consumer delivers 5
/// (the rest is buffered), then leadership moves cleanly to broker 2 in
/// epoch 1, which takes 3 more records. Returns the first 5 records.
fn clean_leader_change(cluster: &mut Cluster) -> Vec<ConsumerRecord> {
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(10);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let first = cluster.poll_n(5, Duration::from_secs(5));
    assert!(cluster.consumer.buffered_bytes() > 0);
    let log = cluster.log("t", 0);
    log.leader = 2;
    log.leader_epoch = 1;
    log.append_values(3);
    first
}

#[test]
fn a_validation_without_truncation_resumes_fetching_at_the_same_position() {
    let mut config = with_reset(OffsetReset::Earliest);
    config.max_poll_records = 5;
    let mut cluster = cluster(config, 2);
    let first = clean_leader_change(&mut cluster);
    answer_once(&mut cluster, 2, armed(), is_ofle, |_| epoch_end(0, 0, 10));
    cluster.run_until(Duration::from_secs(5), |c| {
        c.count(ApiKey::OffsetForLeaderEpoch) == 1
    });
    // The position stands; the old leader's buffered records were dropped
    // (the new leader is fetched from 5, below).
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(5)
    );
    let mut all = first;
    all.extend(cluster.poll_n(8, Duration::from_secs(5)));
    assert_eq!(offsets(&all), (0..13).collect::<Vec<_>>());
    cluster.advance(Duration::from_secs(1));
    assert!(cluster.poll().unwrap().is_empty(), "no duplicates");
    assert_eq!(
        cluster.offset_for_leader_epochs()[0].topics[0].partitions[0],
        OffsetForLeaderPartition {
            partition: 0,
            current_leader_epoch: 1,
            leader_epoch: 0,
        }
    );
    assert_eq!(fetches_of_p0(&mut cluster, 2)[0], (5, 1, 0));
    assert_no_connection_errors(&cluster);
}

#[test]
fn a_leader_that_matches_an_older_epoch_is_named_by_the_next_fetch() {
    let mut cluster = cluster(with_reset(OffsetReset::Earliest), 2);
    two_epochs(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(10, Duration::from_secs(5)).len(), 10);
    // Broker 2 never had epoch 1 but its epoch 0 reaches offset 12, past
    // the position: by the Java client's rule that is no truncation.
    let log = cluster.log("t", 0);
    log.truncate_to(5);
    log.leader_epoch = 0;
    append_named(log, 7, "other");
    log.leader = 2;
    log.leader_epoch = 2;
    answer_once(&mut cluster, 2, armed(), is_ofle, |_| epoch_end(0, 0, 12));
    let records = cluster.poll_n(2, Duration::from_secs(10));
    assert_eq!(values(&records), vec!["other10", "other11"]);
    // Naming epoch 1, the fetch would only get the same answer back as a
    // diverging epoch; it names the epoch the leader matched.
    assert_eq!(fetches_of_p0(&mut cluster, 2)[0], (10, 2, 0));
    assert_no_connection_errors(&cluster);
}

#[test]
fn a_leader_change_drops_records_buffered_from_the_old_leader_even_without_an_epoch() {
    let mut cluster = cluster(with_reset(OffsetReset::Earliest), 2);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(5).append_values(5);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    // A seek gives a position without an epoch: nothing to validate.
    cluster.consumer.seek(&tp("t", 0), 0, cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| c.consumer.buffered_bytes() > 0);
    unclean_election(&mut cluster, 5, 3);
    cluster.run_until(Duration::from_secs(5), |c| {
        c.broker(2).count(ApiKey::Fetch) > 0
    });
    let records = cluster.poll_n(8, Duration::from_secs(5));
    assert_eq!(offsets(&records), (0..8).collect::<Vec<_>>());
    assert_eq!(
        values(&records[5..]),
        vec!["new5", "new6", "new7"],
        "nothing buffered from the old leader was delivered"
    );
    assert_eq!(cluster.count(ApiKey::OffsetForLeaderEpoch), 0);
    assert_no_connection_errors(&cluster);
}

// ---- 5. a broker without OffsetForLeaderEpoch ---------------------------------

#[test]
fn a_leader_without_offset_for_leader_epoch_v3_is_not_asked() {
    for max_version in [None, Some(2)] {
        let mut config = with_reset(OffsetReset::Earliest);
        config.max_poll_records = 5;
        let mut cluster = cluster(config, 2);
        let versions = &mut cluster.broker(2).api_versions;
        let ofle = ApiKey::OffsetForLeaderEpoch.code();
        match max_version {
            None => versions.retain(|v| v.api_key != ofle),
            Some(max) => versions
                .iter_mut()
                .filter(|v| v.api_key == ofle)
                .for_each(|v| v.max_version = max),
        }
        let mut all = clean_leader_change(&mut cluster);
        cluster.run_until(Duration::from_secs(5), |c| {
            c.broker(2).count(ApiKey::Fetch) > 0
        });
        // Without a validation the new leader is trusted, but what was
        // buffered from the old one is still fetched again from it.
        assert_eq!(
            fetches_of_p0(&mut cluster, 2)[0],
            (5, 1, 0),
            "{max_version:?}"
        );
        all.extend(cluster.poll_n(8, Duration::from_secs(5)));
        assert_eq!(
            offsets(&all),
            (0..13).collect::<Vec<_>>(),
            "{max_version:?}"
        );
        assert_eq!(
            cluster.count(ApiKey::OffsetForLeaderEpoch),
            0,
            "{max_version:?}"
        );
        assert_no_connection_errors(&cluster);
    }
}

// ---- 6. a diverging epoch in a Fetch response ---------------------------------

#[test]
fn a_diverging_epoch_below_the_position_is_a_truncation() {
    for reset in [OffsetReset::Earliest, OffsetReset::None] {
        let mut cluster = cluster(with_reset(reset), 1);
        two_epochs(&mut cluster);
        cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
        cluster.consumer.seek(&tp("t", 0), 0, cluster.now).unwrap();
        assert_eq!(cluster.poll_n(10, Duration::from_secs(5)).len(), 10);
        // The leader answers the next fetch (at 10, naming epoch 1): its
        // log has epoch 0 up to 5 and nothing of epoch 1.
        let arm = Rc::new(Cell::new(false));
        answer_once(&mut cluster, 1, arm.clone(), fetch_at(10), |r| {
            fetch_answer(r, diverging(0, 5, 8))
        });
        arm.set(true);
        let log = cluster.log("t", 0);
        log.truncate_to(5);
        append_named(log, 3, "new");
        if reset == OffsetReset::None {
            let (records, error) = poll_until_error(&mut cluster, Duration::from_secs(5));
            assert!(records.is_empty());
            assert_eq!(error, truncation(10, Some(5)));
            let fetches = cluster.broker(1).count(ApiKey::Fetch);
            let (_, errors) = poll_for(&mut cluster, Duration::from_secs(2));
            assert!(errors.is_empty(), "reported once: {errors:?}");
            assert_eq!(cluster.broker(1).count(ApiKey::Fetch), fetches);
        } else {
            let records = cluster.poll_n(3, Duration::from_secs(5));
            assert_eq!(offsets(&records), vec![5, 6, 7]);
            assert_eq!(values(&records), vec!["new5", "new6", "new7"]);
            let fetches = fetches_of_p0(&mut cluster, 1);
            let diverged = fetches.iter().rposition(|f| *f == (10, 1, 1)).unwrap();
            assert_eq!(fetches[diverged + 1], (5, 1, 0));
        }
        assert_eq!(cluster.count(ApiKey::OffsetForLeaderEpoch), 0);
        assert_no_connection_errors(&cluster);
    }
}

#[test]
fn a_diverging_epoch_past_the_position_drops_what_was_fetched_beyond_it() {
    let mut config = with_reset(OffsetReset::Earliest);
    config.max_poll_records = 5;
    let mut cluster = cluster(config, 1);
    cluster.topic("t", 1);
    let log = cluster.log("t", 0);
    log.append_values(5);
    log.leader_epoch = 1;
    log.append_values(3);
    log.append_values(2);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.consumer.seek(&tp("t", 0), 0, cluster.now).unwrap();
    let first = cluster.poll_n(5, Duration::from_secs(5));
    assert!(cluster.consumer.buffered_bytes() > 0, "5..10 buffered");
    // Epoch 1 ends at 8 on the leader: the buffered 8 and 9 diverge, what
    // was delivered (up to 5, epoch 0) does not.
    let arm = Rc::new(Cell::new(false));
    answer_once(&mut cluster, 1, arm.clone(), fetch_at(10), |r| {
        fetch_answer(r, diverging(1, 8, 10))
    });
    arm.set(true);
    let log = cluster.log("t", 0);
    log.truncate_to(8);
    append_named(log, 2, "new");
    cluster.run_until(Duration::from_secs(5), |c| {
        c.count(ApiKey::OffsetForLeaderEpoch) == 1
    });
    let mut all = first;
    all.extend(cluster.poll_n(5, Duration::from_secs(5)));
    assert_eq!(offsets(&all), (0..10).collect::<Vec<_>>());
    assert_eq!(
        values(&all[8..]),
        vec!["new8", "new9"],
        "the diverged buffered records were never delivered"
    );
    // The answer was about epoch 1, not the position's: the position's own
    // epoch (0) was validated before fetching again.
    assert_eq!(
        cluster.offset_for_leader_epochs()[0].topics[0].partitions[0].leader_epoch,
        0
    );
    assert_no_connection_errors(&cluster);
}

#[test]
fn a_diverging_epoch_that_still_holds_the_position_is_named_by_the_next_fetch() {
    let mut cluster = cluster(with_reset(OffsetReset::Earliest), 1);
    two_epochs(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(10, Duration::from_secs(5)).len(), 10);
    // The leader answers the fetch at 10, which names the position's epoch
    // 1: the largest epoch it has below that, 0, runs to 12, past the
    // position, so nothing delivered was lost (the Java client's rule).
    let arm = Rc::new(Cell::new(false));
    answer_once(&mut cluster, 1, arm.clone(), fetch_at(10), |r| {
        fetch_answer(r, diverging(0, 12, 12))
    });
    arm.set(true);
    let log = cluster.log("t", 0);
    log.truncate_to(5);
    log.leader_epoch = 0;
    append_named(log, 7, "other");
    log.leader_epoch = 1;
    let records = cluster.poll_n(2, Duration::from_secs(5));
    assert_eq!(values(&records), vec!["other10", "other11"]);
    // Naming epoch 1 again would only get the same answer back.
    let fetches = fetches_of_p0(&mut cluster, 1);
    let diverged = fetches.iter().rposition(|f| *f == (10, 1, 1)).unwrap();
    assert_eq!(fetches[diverged + 1], (10, 1, 0), "{fetches:?}");
    assert_eq!(cluster.count(ApiKey::OffsetForLeaderEpoch), 0);
    assert_no_connection_errors(&cluster);
}

// ---- errors in the validation itself ------------------------------------------

#[test]
fn a_failed_validation_is_retried_after_a_backoff_with_fresh_metadata() {
    for code in [
        Some(ErrorCode::FENCED_LEADER_EPOCH),
        Some(ErrorCode::UNKNOWN_LEADER_EPOCH),
        Some(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        None, // the connection drops instead of answering
    ] {
        let mut config = with_reset(OffsetReset::Earliest);
        config.max_poll_records = 5;
        let mut cluster = cluster(config, 2);
        let first = clean_leader_change(&mut cluster);
        let mut failed = false;
        cluster.broker(2).script.push(Box::new(move |_, body| {
            if !is_ofle(body) || failed {
                return None;
            }
            failed = true;
            Some(match code {
                Some(code) => Action::Respond(epoch_end(code.0, -1, -1)),
                None => Action::Disconnect,
            })
        }));
        let mut all = first;
        all.extend(cluster.poll_n(8, Duration::from_secs(10)));
        assert_eq!(offsets(&all), (0..13).collect::<Vec<_>>(), "{code:?}");
        let asked = cluster.requests(ApiKey::OffsetForLeaderEpoch);
        assert_eq!(asked.len(), 2, "{code:?}");
        assert!(
            asked[1].at - asked[0].at >= Duration::from_millis(80),
            "{code:?}: backed off"
        );
        assert!(
            refreshed_after_first(&cluster, ApiKey::OffsetForLeaderEpoch),
            "{code:?}: metadata refreshed"
        );
        if code.is_some() {
            assert_no_connection_errors(&cluster);
        }
    }
}

#[test]
fn a_validation_refused_for_good_is_reported_once_and_retried() {
    let mut config = with_reset(OffsetReset::Earliest);
    config.max_poll_records = 5;
    let mut cluster = cluster(config, 2);
    let first = clean_leader_change(&mut cluster);
    answer_once(&mut cluster, 2, armed(), is_ofle, |_| {
        epoch_end(ErrorCode::TOPIC_AUTHORIZATION_FAILED.0, -1, -1)
    });
    let (before, error) = poll_until_error(&mut cluster, Duration::from_secs(5));
    assert_eq!(
        error,
        Error::Partition {
            api: ApiKey::OffsetForLeaderEpoch,
            partition: tp("t", 0),
            code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        }
    );
    let mut all = first;
    all.extend(before);
    let more = 13 - all.len();
    all.extend(cluster.poll_n(more, Duration::from_secs(10)));
    assert_eq!(offsets(&all), (0..13).collect::<Vec<_>>());
    assert_eq!(cluster.count(ApiKey::OffsetForLeaderEpoch), 2);
    assert_no_connection_errors(&cluster);
}
