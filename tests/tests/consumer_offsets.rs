//! Offset queries on every adapter: `beginning_offsets`, `end_offsets` and
//! `offsets_for_times`, checked only where tansu answers like Apache Kafka.
//!
//! tansu deviates in two ways that matter here (brokers.md):
//! * ListOffsets LATEST answers "start of the last batch + 1" instead of
//!   "last offset + 1". So `end_offsets` is compared with the high
//!   watermark from a Fetch (the test driver's, independent of the
//!   consumer) on partitions whose last batch holds one record, where the
//!   two definitions agree; on a partition written in multi-record batches
//!   only the bounds that hold under both definitions are asserted.
//! * ListOffsets by timestamp compares the broker's write time, not the
//!   record timestamp (and may return that write time as the timestamp),
//!   and answers 0 instead of -1 when no record is late enough. The test
//!   writes records whose timestamps are the wall-clock time at which they
//!   are sent, with a clear gap between two batches, and queries a time
//!   inside the gap and a time before everything: there both definitions
//!   give the same offset. A time after the last record (Kafka: none;
//!   tansu: 0) is not asserted.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_core::{Error, IsolationLevel, Misuse, TopicPartition};
use odradek_tests::Broker;
use odradek_tests::driver::Connection;
use odradek_tests::produced::{ProduceSpec, produce};
use odradek_tests::suite::{
    HangGuard, OffsetTracker, Offsets, TestConsumer, build, check_numbered, config, consume_to,
    partitions, produce_numbered, wait_connections_closed,
};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// Returns once the wall clock has passed `ms` (a bounded wait on the clock
/// itself, not a guess at how long something takes).
fn wait_past(ms: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while now_ms() <= ms {
        assert!(Instant::now() < deadline, "the wall clock does not advance");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Three records stamped with the current wall-clock time, in one batch.
fn timed_batch(label: &str) -> (bytes::Bytes, i64) {
    let ts = now_ms();
    let records = (0..3)
        .map(|i| {
            NewRecord::new()
                .with_value(format!("{label}-{i}"))
                .with_timestamp(ts)
        })
        .collect::<Vec<_>>();
    let batch = RecordBatchBuilder::new(0)
        .compression(Compression::None)
        .records(records)
        .encode()
        .expect("encode");
    (batch, ts)
}

fn high_watermark(conn: &mut Connection, tp: &TopicPartition) -> i64 {
    conn.fetch_partition(
        tp.topic(),
        tp.partition(),
        0,
        IsolationLevel::ReadUncommitted,
    )
    .unwrap_or_else(|e| panic!("driver fetch of {tp}: {e}"))
    .high_watermark
}

fn offset_queries<C: TestConsumer>() {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(format!("consumer_offsets [{rt}]"), Duration::from_secs(300));
    let broker = Broker::start().expect("start tansu");
    let mut conn = Connection::connect(broker.addr()).expect("driver");

    // "single": every batch holds one record. p0 stays empty.
    broker.create_topic("single", 3).expect("create topic");
    let single = partitions("single", 3);
    produce_numbered(&mut conn, "single", 1, 0, &[1], Compression::None);
    produce_numbered(&mut conn, "single", 2, 0, &[1; 7], Compression::Gzip);
    // "batched": confluent-kafka's multi-record batches.
    broker.create_topic("batched", 1).expect("create topic");
    let batched = TopicPartition::new("batched", 0);
    let summary = produce(&broker, &ProduceSpec::new("batched", 5, 2000)).expect("produce");
    assert_eq!(summary.delivered, 2000, "{}", summary.json);
    // "times": batch A, a gap of at least 20 ms, then batch B.
    broker.create_topic("times", 1).expect("create topic");
    let times = TopicPartition::new("times", 0);
    let (a, a_ts) = timed_batch("a");
    assert_eq!(conn.produce("times", 0, a).expect("produce a"), 0);
    wait_past(a_ts + 20);
    let between = now_ms();
    wait_past(between + 20);
    let (b, b_ts) = timed_batch("b");
    assert_eq!(conn.produce("times", 0, b).expect("produce b"), 3);

    let consumer: C = build(config(&broker));

    // Fresh topics start at 0 (no assignment needed for queries). One
    // topic per query: several topics in one query is its own test below.
    for tps in [
        &single[..],
        std::slice::from_ref(&batched),
        std::slice::from_ref(&times),
    ] {
        let beginning = consumer.beginning_offsets(tps).expect("beginning_offsets");
        assert_eq!(beginning.len(), tps.len(), "[{rt}] {beginning:?}");
        for (tp, offset) in &beginning {
            assert_eq!(*offset, 0, "[{rt}] beginning offset of {tp}");
        }
    }

    // Single-record batches: end_offsets is the high watermark, which is
    // the number of records.
    let end = consumer.end_offsets(&single).expect("end_offsets");
    for (tp, want) in single.iter().zip([0, 1, 7]) {
        let hw = high_watermark(&mut conn, tp);
        assert_eq!(hw, want, "driver high watermark of {tp}");
        assert_eq!(end.get(tp), Some(&hw), "[{rt}] end offset of {tp}");
    }
    // Multi-record batches: tansu's LATEST is the last batch's start + 1,
    // Kafka's is the high watermark; both lie in (0, high watermark].
    let hw = high_watermark(&mut conn, &batched);
    assert_eq!(hw, 2000, "driver high watermark of {batched}");
    let end = consumer
        .end_offsets(std::slice::from_ref(&batched))
        .expect("end_offsets");
    let end = end[&batched];
    assert!(
        0 < end && end <= hw,
        "[{rt}] end offset {end} of {batched}, high watermark {hw}"
    );

    // After consuming a partition to its end, the position is its end offset.
    let p2 = single[2].clone();
    consumer.assign(std::slice::from_ref(&p2)).expect("assign");
    let mut tracker = OffsetTracker::starting_at(std::slice::from_ref(&p2), 0);
    consume_to(
        &consumer,
        "single-2 to its end",
        Duration::from_secs(30),
        &mut tracker,
        &[(p2.clone(), 7)].into(),
        check_numbered,
    );
    let end = consumer
        .end_offsets(std::slice::from_ref(&p2))
        .expect("end_offsets");
    assert_eq!(
        consumer.position(&p2),
        Ok(end[&p2]),
        "[{rt}] position at the end"
    );

    // offsets_for_times where tansu and Kafka agree.
    let found = consumer
        .offsets_for_times(&[(times.clone(), between)])
        .expect("offsets_for_times");
    let hit = found[&times].unwrap_or_else(|| panic!("[{rt}] nothing found for {between}"));
    // The timestamp returned is the record's (Kafka) or its write time
    // (tansu): either way at or after the record's own, before the query.
    let asked = now_ms();
    assert_eq!(
        hit.offset, 3,
        "[{rt}] first record at or after {between}: {hit:?}"
    );
    assert!(
        (b_ts..=asked).contains(&hit.timestamp),
        "[{rt}] timestamp of the record found for {between}: {hit:?}, written at {b_ts}"
    );
    let found = consumer
        .offsets_for_times(&[(times.clone(), 0)])
        .expect("offsets_for_times");
    let hit = found[&times].unwrap_or_else(|| panic!("[{rt}] nothing found for 0"));
    assert_eq!(hit.offset, 0, "[{rt}] first record at or after 0: {hit:?}");
    assert!(
        (a_ts..between).contains(&hit.timestamp),
        "[{rt}] timestamp of the record found for 0: {hit:?}, written at {a_ts}"
    );
    // A negative timestamp is the caller's mistake.
    assert!(
        matches!(
            consumer.offsets_for_times(&[(times.clone(), -5)]),
            Err(Error::InvalidArgument(Misuse::NegativeTimestamp {
                timestamp: -5,
                ..
            }))
        ),
        "[{rt}] negative timestamp"
    );

    drop(conn);
    consumer.close().expect("close");
    wait_connections_closed(&broker, "connections after close", Duration::from_secs(5));
}

/// One query over partitions of several topics, none of which the consumer
/// has asked about before: every partition gets its answer.
fn several_topics_in_one_query<C: TestConsumer>() {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_offsets several topics [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start().expect("start tansu");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    let topics = ["alpha", "beta", "gamma"];
    let mut all = Vec::new();
    let mut want_end = Offsets::new();
    for (n, topic) in topics.into_iter().enumerate() {
        broker.create_topic(topic, 2).expect("create topic");
        for p in 0..2 {
            // Single-record batches, so tansu's LATEST is the log end.
            let end = produce_numbered(
                &mut conn,
                topic,
                p,
                0,
                &vec![1; n * 2 + p as usize],
                Compression::None,
            );
            let tp = TopicPartition::new(topic, p);
            assert_eq!(
                high_watermark(&mut conn, &tp),
                end,
                "driver high watermark of {tp}"
            );
            want_end.insert(tp.clone(), end);
            all.push(tp);
        }
    }
    drop(conn);
    // tansu answers in milliseconds; a lost answer should fail fast.
    let mut cfg = config(&broker);
    cfg.default_api_timeout = Duration::from_secs(5);
    let consumer: C = build(cfg);
    let beginning = consumer
        .beginning_offsets(&all)
        .unwrap_or_else(|e| panic!("[{rt}] beginning_offsets of {all:?} in one query: {e}"));
    let zeros: Offsets = all.iter().map(|tp| (tp.clone(), 0)).collect();
    assert_eq!(beginning, zeros, "[{rt}] beginning offsets");
    let end = consumer
        .end_offsets(&all)
        .unwrap_or_else(|e| panic!("[{rt}] end_offsets of {all:?} in one query: {e}"));
    assert_eq!(end, want_end, "[{rt}] end offsets");
    consumer.close().expect("close");
}

/// Two queries in flight at once, on different topics the consumer has not
/// asked about before: each gets its answer.
fn concurrent_queries<C: TestConsumer>() {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_offsets concurrent [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start().expect("start tansu");
    broker.create_topic("left", 1).expect("create topic");
    broker.create_topic("right", 1).expect("create topic");
    let (left, right) = (
        TopicPartition::new("left", 0),
        TopicPartition::new("right", 0),
    );
    let mut cfg = config(&broker);
    cfg.default_api_timeout = Duration::from_secs(5);
    let consumer: C = build(cfg);
    for round in 0..3 {
        let (a, b) = consumer.beginning_offsets_concurrently(
            std::slice::from_ref(&left),
            std::slice::from_ref(&right),
        );
        assert_eq!(
            a,
            Ok([(left.clone(), 0)].into()),
            "[{rt}] round {round}: query of {left}"
        );
        assert_eq!(
            b,
            Ok([(right.clone(), 0)].into()),
            "[{rt}] round {round}: query of {right}"
        );
    }
    consumer.close().expect("close");
}

odradek_tests::for_each_runtime!(
    offset_queries,
    several_topics_in_one_query,
    concurrent_queries
);
