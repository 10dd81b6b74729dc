//! The API users bring from Java, kafka-python, librdkafka and krafka, on
//! every adapter and both brokers: the offset store with auto-commit, a
//! rebalance listener and assignment strategy given to the builder, a close
//! without the final commit or with a caller's timeout, per-call record
//! limits, lag from the last fetch, seeks of every assigned partition,
//! end-of-partition markers, payload sizes, typed payloads (text and JSON)
//! and TCP keepalive.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use odradek_core::payload::{Json, PayloadPart};
use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_core::{
    CloseOptions, ConsumerInterceptor, ConsumerRecord, ConsumerRecords, OffsetAndMetadata,
    PartitionAssignmentStrategy, RebalanceEvent, TopicPartition,
};
use odradek_tests::driver::Connection;
use odradek_tests::interop::describe_group;
use odradek_tests::suite::{
    HangGuard, RebalanceLog, RecordingListener, TestConsumer, build, config, group_config,
    produce_numbered, wait_for,
};
use odradek_tests::{Broker, BrokerKind, for_each_runtime};

const LIMIT: Duration = Duration::from_secs(30);

/// Polls until `n` records arrived (or `LIMIT`), each poll asking for at
/// most `max`; returns them and every partition a poll said it reached
/// the end of.
fn read<C: TestConsumer>(
    consumer: &C,
    n: usize,
    max: usize,
) -> (Vec<ConsumerRecord>, Vec<TopicPartition>) {
    let rt = C::RUNTIME;
    let deadline = Instant::now() + LIMIT;
    let (mut records, mut ends) = (Vec::new(), Vec::new());
    while records.len() < n {
        assert!(Instant::now() < deadline, "[{rt}] {} of {n}", records.len());
        let polled = consumer
            .poll_max(Duration::from_millis(200), max)
            .unwrap_or_else(|e| panic!("[{rt}] poll: {e}"));
        assert!(polled.len() <= max, "[{rt}] {} > {max}", polled.len());
        assert_eq!(polled.by_topic(polled_topic(&polled)).count(), polled.len());
        ends.extend(polled.reached_end().iter().cloned());
        records.extend(polled);
    }
    (records, ends)
}

/// The topic of a poll's records (they all share one in these tests).
fn polled_topic(polled: &odradek_core::ConsumerRecords) -> &str {
    polled.iter().next().map_or("", ConsumerRecord::topic)
}

/// With `enable.auto.offset.store=false` only stored offsets are
/// committed (by auto-commit at the poll); the builder's listener hears
/// the rebalances of a plain `subscribe`; a close without the final commit
/// leaves the committed offsets as they were, so the next member starts
/// from what was stored.
fn offset_store_builder_listener_and_close_without_commit<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(format!("offset store [{rt}]"), Duration::from_secs(150));
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    broker.create_topic("jobs", 2).expect("create topic");
    for p in 0..2 {
        produce_numbered(&mut conn, "jobs", p, 0, &[10], Compression::None);
    }
    let (p0, p1) = (
        TopicPartition::new("jobs", 0),
        TopicPartition::new("jobs", 1),
    );

    let mut settings = group_config(&broker, "workers", true);
    settings.enable_auto_offset_store = false;
    settings.partition_assignment_strategy = PartitionAssignmentStrategy::CooperativeSticky.into();
    let log = RebalanceLog::default();
    let member = C::build_with_listener(settings.clone(), RecordingListener(log.clone()))
        .unwrap_or_else(|e| panic!("[{rt}] build: {e}"));
    member.subscribe_plain(&["jobs"]).expect("subscribe");
    let (records, _) = read(&member, 20, 500);
    let assigned: Vec<TopicPartition> = log
        .lock()
        .unwrap()
        .iter()
        .flat_map(|e| match e {
            RebalanceEvent::Assigned(p) => p.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert!(
        assigned.contains(&p0) && assigned.contains(&p1),
        "[{rt}] the builder's listener: {log:?}"
    );
    let protocol = describe_group(&mut conn, "workers").protocol;
    assert!(
        protocol.is_empty() || protocol == "cooperative-sticky",
        "[{rt}] the builder's strategy: {protocol}"
    );

    // Done with p0's record 5 only (out of order, as a worker pool does).
    let fifth = records
        .iter()
        .find(|r| r.partition() == 0 && r.offset() == 5)
        .expect("record 5");
    member.store_offset(fifth).expect("store_offset");
    // Auto-commit (500 ms) goes out at a poll.
    wait_for(
        &format!("[{rt}] the stored offset committed"),
        LIMIT,
        || {
            member.poll(Duration::from_millis(100)).expect("poll");
            let committed = member
                .committed(std::slice::from_ref(&p0))
                .expect("committed");
            match committed[&p0].as_ref().map(|o| o.offset) {
                Some(6) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    );
    let committed = member
        .committed(std::slice::from_ref(&p1))
        .expect("committed");
    assert_eq!(committed[&p1], None, "[{rt}] nothing stored for p1");
    let group = member.metrics().group.expect("group metrics");
    assert!(group.rebalance_total >= 1, "[{rt}] {group:?}");
    assert!(group.commit_total >= 1, "[{rt}] {group:?}");
    assert_eq!(group.failed_commit_total, 0, "[{rt}] {group:?}");

    // Stored but never committed: the close commits nothing.
    member
        .store_offsets(&[(p1.clone(), OffsetAndMetadata::new(3))].into())
        .expect("store_offsets");
    member
        .close_with(CloseOptions::new().without_commit())
        .expect("close");

    let next: C = build(group_config(&broker, "workers", false));
    next.subscribe(&["jobs"], &RebalanceLog::default())
        .expect("subscribe");
    let (again, _) = read(&next, 14, 500);
    let first = |p: i32| {
        again
            .iter()
            .filter(|r| r.partition() == p)
            .map(|r| r.offset())
            .min()
    };
    assert_eq!(first(0), Some(6), "[{rt}] p0 from the stored offset");
    assert_eq!(
        first(1),
        Some(0),
        "[{rt}] p1 from the start: 3 was not committed"
    );
    next.close().expect("close");
}

/// Is there an established TCP connection to `port` with its keepalive
/// timer running (`/proc/net/tcp`, timer 2)? `None` if it cannot tell.
fn keepalive_to(port: u16) -> Option<Vec<bool>> {
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state), Some(timer)) =
                (fields.get(2), fields.get(3), fields.get(5))
            else {
                continue;
            };
            let remote_port = remote
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port == Some(port) && *state == "01" {
                found.push(timer.starts_with("02:"));
            }
        }
    }
    (!found.is_empty()).then_some(found)
}

/// The manual-assignment API on a real broker: per-call limits, end
/// markers, payload sizes and types, lag, seeks of every assigned
/// partition, a close with a caller's timeout, and TCP keepalive.
fn api_on_a_real_broker<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(format!("api [{rt}]"), Duration::from_secs(120));
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    broker.create_topic("api", 2).expect("create topic");
    produce_numbered(&mut conn, "api", 0, 0, &[10], Compression::Lz4);
    let odd = RecordBatchBuilder::new(0)
        .record(NewRecord::new().with_value(&br#"{"n": 1}"#[..]))
        .record(NewRecord::new().with_value(&br#"{"n": 2}"#[..]))
        .record(NewRecord::new().with_key("k"))
        .record(NewRecord::new().with_value(&[0xff, 0xfe, b'x'][..]))
        .encode()
        .expect("encode");
    conn.produce("api", 1, odd).expect("produce");
    let (p0, p1) = (TopicPartition::new("api", 0), TopicPartition::new("api", 1));

    // The harness's own connection has no keepalive: the check tells.
    if let Some(before) = keepalive_to(broker.addr().port()) {
        assert!(before.iter().all(|on| !on), "[{rt}] {before:?}");
    }
    let mut settings = config(&broker);
    settings.enable_partition_eof = true;
    settings.socket_keepalive = true;
    let consumer: C = build(settings);
    assert_eq!(consumer.lag(&p0), None, "[{rt}] nothing fetched yet");
    consumer.assign(&[p0.clone(), p1.clone()]).expect("assign");
    let (records, ends) = read(&consumer, 14, 3);
    let mut ends = ends;
    wait_for(&format!("[{rt}] both ends reported"), LIMIT, || {
        let polled = consumer
            .poll_max(Duration::from_millis(100), 3)
            .expect("poll");
        assert!(polled.is_empty(), "[{rt}] nothing more to read");
        ends.extend(polled.reached_end().iter().cloned());
        if ends.contains(&p0) && ends.contains(&p1) {
            Ok(())
        } else {
            Err(format!("{ends:?}"))
        }
    });
    if let Some(after) = keepalive_to(broker.addr().port()) {
        assert!(after.iter().any(|&on| on), "[{rt}] keepalive: {after:?}");
    }

    // Payloads: sizes as Java, text and JSON, a bad one failing alone.
    let at = |p: i32, o: i64| {
        records
            .iter()
            .find(|r| r.partition() == p && r.offset() == o)
            .unwrap_or_else(|| panic!("[{rt}] {p}@{o}"))
    };
    assert_eq!(at(0, 7).serialized_key_size(), 2, "[{rt}] k7");
    assert_eq!(at(0, 7).value_str().unwrap(), Some("api/0/7"));
    let Json(first): Json<BTreeMap<String, i64>> = at(1, 0).value_as().unwrap().unwrap();
    assert_eq!(first["n"], 1, "[{rt}]");
    assert_eq!(at(1, 2).serialized_value_size(), -1, "[{rt}] null value");
    assert_eq!(at(1, 2).value_str().unwrap(), None);
    let bad = at(1, 3).value_str().unwrap_err();
    assert_eq!((bad.offset, bad.part), (3, PayloadPart::Value), "[{rt}]");
    assert!(at(1, 3).value_as::<Json<BTreeMap<String, i64>>>().is_err());

    // The metrics snapshot during real consumption.
    let metrics = consumer.metrics();
    assert_eq!(metrics.consumer.records_consumed_total, 14, "[{rt}]");
    assert!(metrics.consumer.bytes_consumed_total > 0, "[{rt}]");
    assert!(metrics.consumer.fetch_total > 0, "[{rt}]");
    assert!(metrics.consumer.fetch_latency_max.is_some(), "[{rt}]");
    assert!(metrics.consumer.connection_count >= 1, "[{rt}]");
    assert_eq!(metrics.consumer.records_lag_max, Some(0), "[{rt}]");
    assert_eq!(metrics.partitions[&p0].high_watermark, Some(10), "[{rt}]");
    assert_eq!(metrics.partitions[&p0].position, Some(10), "[{rt}]");
    assert!(metrics.group.is_none(), "[{rt}]");

    // Lag from the last fetch, no request of its own.
    assert_eq!(consumer.high_watermark(&p0), Some(10), "[{rt}]");
    assert_eq!(consumer.lag(&p0), Some(0), "[{rt}]");
    assert_eq!(consumer.lag(&p1), Some(0), "[{rt}]");

    // No partitions: every assigned partition goes back to the start.
    consumer.seek_to_beginning(&[]).expect("seek_to_beginning");
    let (again, _) = read(&consumer, 14, 500);
    assert_eq!(again.len(), 14, "[{rt}]");
    consumer.seek_to_end(&[]).expect("seek_to_end");
    // tansu's LATEST is the last batch's start + 1 (brokers.md): compare
    // with what the broker calls the end, and exactly on crabka.
    let ends = consumer
        .end_offsets(&[p0.clone(), p1.clone()])
        .expect("ends");
    for tp in [&p0, &p1] {
        assert_eq!(consumer.position(tp), Ok(ends[tp]), "[{rt}] {tp}");
    }
    if kind == BrokerKind::Crabka {
        assert_eq!((ends[&p0], ends[&p1]), (10, 4), "[{rt}]");
    }

    let started = Instant::now();
    consumer
        .close_with(CloseOptions::new().timeout(Duration::from_secs(1)))
        .expect("close");
    assert!(started.elapsed() < Duration::from_secs(3), "[{rt}]");
}

/// What a recording interceptor saw: records per poll, and commits.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Consumed(usize),
    Committed(BTreeMap<TopicPartition, i64>, bool),
}

/// Records what it sees under `name` in a trace shared with the others.
struct Recording {
    name: &'static str,
    trace: Arc<Mutex<Vec<(&'static str, Seen)>>>,
}

impl ConsumerInterceptor for Recording {
    fn on_consume(&self, records: &ConsumerRecords) {
        let seen = Seen::Consumed(records.len());
        self.trace.lock().unwrap().push((self.name, seen));
    }
    fn on_commit(
        &self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        result: &Result<(), odradek_core::Error>,
    ) {
        let offsets = offsets
            .iter()
            .map(|(tp, o)| (tp.clone(), o.offset))
            .collect();
        let seen = Seen::Committed(offsets, result.is_ok());
        self.trace.lock().unwrap().push((self.name, seen));
    }
}

/// Panics in both hooks.
struct Panicking;

impl ConsumerInterceptor for Panicking {
    fn on_consume(&self, _: &ConsumerRecords) {
        panic!("on_consume always fails");
    }
    fn on_commit(
        &self,
        _: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        _: &Result<(), odradek_core::Error>,
    ) {
        panic!("on_commit always fails");
    }
}

/// Interceptors set on the builder see every poll's records and every
/// commit (auto and asynchronous), in the order added; one that panics
/// every time loses nothing and breaks nothing, and its panics are counted.
fn interceptors_see_records_and_commits<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(format!("interceptors [{rt}]"), Duration::from_secs(120));
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    broker.create_topic("seen", 2).expect("create topic");
    for p in 0..2 {
        produce_numbered(&mut conn, "seen", p, 0, &[10], Compression::None);
    }
    let (p0, p1) = (
        TopicPartition::new("seen", 0),
        TopicPartition::new("seen", 1),
    );
    let trace = Arc::new(Mutex::new(Vec::new()));
    let first: Arc<dyn ConsumerInterceptor> = Arc::new(Recording {
        name: "first",
        trace: trace.clone(),
    });
    let last: Arc<dyn ConsumerInterceptor> = Arc::new(Recording {
        name: "last",
        trace: trace.clone(),
    });
    let panicking: Arc<dyn ConsumerInterceptor> = Arc::new(Panicking);
    let member = C::build_with_interceptors(
        group_config(&broker, "observers", true),
        &[first, panicking, last],
    )
    .unwrap_or_else(|e| panic!("[{rt}] build: {e}"));
    member
        .subscribe(&["seen"], &RebalanceLog::default())
        .expect("subscribe");
    let (records, _) = read(&member, 20, 500);
    assert_eq!(records.len(), 20, "[{rt}] nothing lost to the panics");

    // Auto-commit (500 ms) at a poll, then an asynchronous commit.
    // Auto-commits send only what changed: fold them.
    let everything: BTreeMap<TopicPartition, i64> = [(p0.clone(), 10), (p1.clone(), 10)].into();
    wait_for(&format!("[{rt}] the auto-commits seen"), LIMIT, || {
        member.poll(Duration::from_millis(100)).expect("poll");
        let seen = trace.lock().unwrap();
        let mut committed = BTreeMap::new();
        for (_, s) in seen.iter() {
            if let Seen::Committed(offsets, true) = s {
                committed.extend(offsets.clone());
            }
        }
        if committed == everything {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    });
    member
        .commit_async(Some([(p0.clone(), OffsetAndMetadata::new(4))].into()))
        .expect("commit_async");
    let seen = trace.lock().unwrap().clone();
    let consumed: usize = seen
        .iter()
        .filter(|(name, _)| *name == "first")
        .map(|(_, s)| match s {
            Seen::Consumed(n) => *n,
            Seen::Committed(..) => 0,
        })
        .sum();
    assert_eq!(consumed, 20, "[{rt}] {seen:?}");
    // In the order added: each call of the first is followed by the last's.
    for pair in seen.chunks(2) {
        assert_eq!(pair[0].0, "first", "[{rt}] {seen:?}");
        assert_eq!(
            (pair[1].0, &pair[1].1),
            ("last", &pair[0].1),
            "[{rt}] {seen:?}"
        );
    }
    let rewind = Seen::Committed([(p0.clone(), 4)].into(), true);
    assert_eq!(
        seen.last().map(|(_, s)| s),
        Some(&rewind),
        "[{rt}] {seen:?}"
    );
    let panics = member.metrics().consumer.interceptor_panics_total;
    assert_eq!(panics as usize, seen.len() / 2, "[{rt}] one panic per call");
    member.close().expect("close");
}

for_each_runtime!(
    offset_store_builder_listener_and_close_without_commit,
    api_on_a_real_broker,
    interceptors_see_records_and_commits
);
