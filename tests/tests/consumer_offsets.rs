//! Offset queries on every adapter and both brokers: `beginning_offsets`,
//! `end_offsets` and `offsets_for_times`. On crabka, which answers like
//! Apache Kafka, exactly; on tansu only where it agrees with Kafka.
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
use odradek_core::{Error, IsolationLevel, Misuse, OffsetReset, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::produced::{ProduceSpec, produce};
use odradek_tests::suite::{
    HangGuard, OffsetTracker, Offsets, TestConsumer, build, check_numbered, config, consume_to,
    partitions, produce_numbered, wait_connections_closed, wait_for,
};
use odradek_tests::{Broker, BrokerKind};

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

fn offset_queries<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(format!("consumer_offsets [{rt}]"), Duration::from_secs(300));
    let broker = Broker::start(kind).expect("start broker");
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
    if kind == BrokerKind::Tansu {
        assert!(
            0 < end && end <= hw,
            "[{rt}] end offset {end} of {batched}, high watermark {hw}"
        );
    } else {
        assert_eq!(end, hw, "[{rt}] end offset of {batched}");
    }

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
    // Before everything: the first record. (Apache Kafka answers offset 0
    // for timestamp 0 too; crabka answers none there, so the query uses a
    // time just before the first record.)
    let before = a_ts - 1000;
    let found = consumer
        .offsets_for_times(&[(times.clone(), before)])
        .expect("offsets_for_times");
    let hit = found[&times].unwrap_or_else(|| panic!("[{rt}] nothing found for {before}"));
    assert_eq!(
        hit.offset, 0,
        "[{rt}] first record at or after {before}: {hit:?}"
    );
    assert!(
        (a_ts..between).contains(&hit.timestamp),
        "[{rt}] timestamp of the record found for {before}: {hit:?}, written at {a_ts}"
    );
    if kind == BrokerKind::Crabka {
        // After the last record: no match (tansu answers offset 0).
        let later = now_ms() + 60_000;
        let found = consumer
            .offsets_for_times(&[(times.clone(), later)])
            .expect("offsets_for_times");
        assert_eq!(found[&times], None, "[{rt}] a time after every record");
        // By record timestamp, not write time: batch B's own timestamp
        // finds its first record exactly.
        let found = consumer
            .offsets_for_times(&[(times.clone(), b_ts)])
            .expect("offsets_for_times");
        let hit = found[&times].expect("batch B");
        assert_eq!((hit.offset, hit.timestamp), (3, b_ts), "[{rt}] {hit:?}");
    }
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
fn several_topics_in_one_query<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_offsets several topics [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
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
fn concurrent_queries<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_offsets concurrent [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
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

/// crabka only (tansu never answers OFFSET_OUT_OF_RANGE and drops the
/// connection on DeleteRecords): records deleted below offset 50, a
/// consumer positioned at 20 gets OFFSET_OUT_OF_RANGE and applies
/// `auto.offset.reset`: `earliest` resumes at the new log start, `latest`
/// at the end (and reads what comes next), `none` returns the typed error
/// naming the partition and the position, and stays there until a seek.
fn crabka_out_of_range_below_log_start<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_offsets out of range [{kind} {rt}]"),
        Duration::from_secs(120),
    );
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    broker.create_topic("trimmed", 1).expect("create topic");
    let tp = TopicPartition::new("trimmed", 0);
    let all = std::slice::from_ref(&tp);
    produce_numbered(&mut conn, "trimmed", 0, 0, &[10; 10], Compression::None);
    assert_eq!(
        broker
            .delete_records("trimmed", 0, 50)
            .expect("delete records"),
        50
    );

    let build_with = |reset: OffsetReset| -> C {
        let mut cfg = config(&broker);
        cfg.auto_offset_reset = reset;
        build(cfg)
    };

    // The log start moved: beginning_offsets says so.
    let earliest = build_with(OffsetReset::Earliest);
    assert_eq!(
        earliest.beginning_offsets(all).expect("beginning_offsets")[&tp],
        50,
        "[{rt}] log start after DeleteRecords"
    );
    earliest.assign(all).expect("assign");
    earliest.seek(&tp, 20).expect("seek");
    let mut tracker = OffsetTracker::starting_at(all, 50);
    let got = consume_to(
        &earliest,
        "earliest after out of range",
        Duration::from_secs(30),
        &mut tracker,
        &[(tp.clone(), 100)].into(),
        check_numbered,
    );
    assert_eq!(got.first().map(|r| r.offset()), Some(50), "[{rt}] earliest");
    earliest.close().expect("close");

    let latest = build_with(OffsetReset::Latest);
    latest.assign(all).expect("assign");
    latest.seek(&tp, 20).expect("seek");
    wait_for("latest resets to the end", Duration::from_secs(30), || {
        let _ = latest
            .poll(Duration::from_millis(100))
            .map_err(|e| e.to_string())?;
        match latest.position(&tp) {
            Ok(100) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    produce_numbered(&mut conn, "trimmed", 0, 100, &[5], Compression::None);
    let mut tracker = OffsetTracker::starting_at(all, 100);
    let got = consume_to(
        &latest,
        "latest after out of range",
        Duration::from_secs(30),
        &mut tracker,
        &[(tp.clone(), 105)].into(),
        check_numbered,
    );
    assert_eq!(got.first().map(|r| r.offset()), Some(100), "[{rt}] latest");
    latest.close().expect("close");

    let none = build_with(OffsetReset::None);
    none.assign(all).expect("assign");
    none.seek(&tp, 20).expect("seek");
    let error = wait_for(
        "the out-of-range error",
        Duration::from_secs(30),
        || match none.poll(Duration::from_millis(100)) {
            Err(e) => Ok(e),
            Ok(records) => Err(format!("{} records", records.len())),
        },
    );
    match &error {
        Error::OffsetOutOfRange { partitions } => {
            assert_eq!(partitions, &vec![(tp.clone(), 20)], "[{rt}] {error}")
        }
        other => panic!("[{rt}] want OffsetOutOfRange, got {other:?}"),
    }
    // Nothing is skipped behind the application's back: the partition
    // stays at 20, and asking for its position repeats the error.
    assert_eq!(
        none.position(&tp),
        Err(error),
        "[{rt}] position after the error"
    );
    none.seek(&tp, 60).expect("seek past the gap");
    let mut tracker = OffsetTracker::starting_at(all, 60);
    consume_to(
        &none,
        "after seeking past the gap",
        Duration::from_secs(30),
        &mut tracker,
        &[(tp.clone(), 105)].into(),
        check_numbered,
    );
    none.close().expect("close");
}

odradek_tests::for_each_runtime!(crabka: crabka_out_of_range_below_log_start);

odradek_tests::for_each_runtime!(
    offset_queries,
    several_topics_in_one_query,
    concurrent_queries
);
