//! What differs between the adapters, checked on each: cancel safety
//! (async waits dropped mid-way lose nothing; the blocking counterpart is a
//! poll timing out while it waits), the record `Stream` (tokio, async-std,
//! smol) and `Iterator` (blocking), and `Drop` / `close` with a fetch
//! parked at the broker.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use odradek_core::records::Compression;
use odradek_core::{Error, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::suite::{
    HangGuard, OffsetTracker, TestConsumer, build, check_numbered, config, consume_to,
    expect_no_records, partitions, produce_numbered, timed, wait_connections_closed,
};
use odradek_tests::{Broker, BrokerKind};

const TOPIC: &str = "adapter";

fn ends(all: &[TopicPartition], end: i64) -> BTreeMap<TopicPartition, i64> {
    all.iter().map(|tp| (tp.clone(), end)).collect()
}

/// Every record exactly once while most waits are cancelled: records are
/// produced (10 per batch, as fast as the broker takes them) while the
/// consumer races each `recv`/`poll` against a 0–2 ms timer, so records
/// arrive at every point of a wait's life.
fn cancel_safety<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_adapter cancel [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic(TOPIC, 2).expect("create topic");
    let all = partitions(TOPIC, 2);
    const PER_PARTITION: i64 = 1500;
    let consumer: C = build(config(&broker));
    consumer.assign(&all).expect("assign");

    let addr = broker.addr();
    let producer = thread::spawn(move || {
        let mut conn = Connection::connect(addr).expect("driver");
        let mut next = [0i64; 2];
        while next.iter().any(|&n| n < PER_PARTITION) {
            for (p, next) in next.iter_mut().enumerate() {
                *next =
                    produce_numbered(&mut conn, TOPIC, p as i32, *next, &[10], Compression::None);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let got = consumer
        .take_cancelling(2 * PER_PARTITION as usize, deadline)
        .unwrap_or_else(|e| panic!("[{rt}] receiving: {e}"));
    producer.join().expect("producer thread");
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    for record in &got.records {
        tracker.accept(record);
        check_numbered(record);
    }
    assert!(
        tracker.all_reached(&ends(&all, PER_PARTITION)),
        "[{rt}] only {} records before the deadline: {tracker:?}",
        got.records.len()
    );
    assert_eq!(
        got.records.len(),
        2 * PER_PARTITION as usize,
        "[{rt}] records"
    );
    // The race went both ways, or the test proved nothing.
    assert!(got.cancelled > 0, "[{rt}] no wait was ever cancelled");
    eprintln!(
        "[{rt}] {} records exactly once with {} cancelled waits",
        got.records.len(),
        got.cancelled
    );
    expect_no_records(
        &consumer,
        "after the last record",
        Duration::from_millis(300),
    );
    consumer.close().expect("close");
}

/// The `Stream` / `Iterator` yields every record once, in order, and ends
/// with `Closed` after `close`.
fn stream_yields_everything<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_adapter stream [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic(TOPIC, 2).expect("create topic");
    let all = partitions(TOPIC, 2);
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    for p in 0..2 {
        produce_numbered(&mut conn, TOPIC, p, 0, &[100, 250, 150], Compression::Zstd);
    }
    drop(conn);
    let consumer: C = build(config(&broker));
    consumer.assign(&all).expect("assign");
    let records = consumer
        .take_from_stream(1000, Instant::now() + Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("[{rt}] stream: {e}"));
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    for record in &records {
        tracker.accept(record);
        check_numbered(record);
    }
    assert_eq!(
        records.len(),
        1000,
        "[{rt}] records from the stream: {tracker:?}"
    );
    expect_no_records(&consumer, "after the stream", Duration::from_millis(300));
    consumer.close().expect("close");
    let after = consumer.take_from_stream(1, Instant::now() + Duration::from_secs(5));
    assert!(
        matches!(after, Err(Error::Closed)),
        "[{rt}] the stream after close: {after:?}"
    );
    wait_connections_closed(&broker, "connections after close", Duration::from_secs(5));
}

/// `Drop` in the middle of consuming, and `close`, return promptly and
/// close the connections although a fetch is parked at the broker
/// (`fetch.max.wait.ms` 5 s at the end of the log).
fn drop_and_close_are_prompt<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_adapter drop [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic(TOPIC, 2).expect("create topic");
    let all = partitions(TOPIC, 2);
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    for p in 0..2 {
        produce_numbered(&mut conn, TOPIC, p, 0, &[500; 4], Compression::Snappy);
    }
    drop(conn);
    let mut cfg = config(&broker);
    cfg.fetch_max_wait = Duration::from_secs(5);
    cfg.max_poll_records = 100;

    // Drop in the middle: records still buffered and being fetched.
    let consumer: C = build(cfg.clone());
    consumer.assign(&all).expect("assign");
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    consume_to(
        &consumer,
        "the first records",
        Duration::from_secs(30),
        &mut tracker,
        &ends(&all[..1], 100),
        check_numbered,
    );
    let ((), took) = timed(|| drop(consumer));
    assert!(took < Duration::from_secs(2), "[{rt}] drop took {took:?}");
    wait_connections_closed(&broker, "connections after drop", Duration::from_secs(3));

    // At the end of the log, with a fetch parked for 5 s: drop and close
    // must not wait for its response.
    for how in ["drop", "close"] {
        let consumer: C = build(cfg.clone());
        consumer.assign(&all).expect("assign");
        let mut tracker = OffsetTracker::starting_at(&all, 0);
        consume_to(
            &consumer,
            "everything",
            Duration::from_secs(30),
            &mut tracker,
            &ends(&all, 2000),
            check_numbered,
        );
        // The fetch for new records is now parked at the broker.
        expect_no_records(
            &consumer,
            "at the end of the log",
            Duration::from_millis(200),
        );
        if how == "close" {
            let (closed, took) = timed(|| consumer.close());
            closed.expect("close");
            assert!(took < Duration::from_secs(2), "[{rt}] close took {took:?}");
        }
        let ((), took) = timed(|| drop(consumer));
        assert!(
            took < Duration::from_secs(2),
            "[{rt}] drop after {how} took {took:?}"
        );
        // Well before the parked fetch would be answered.
        wait_connections_closed(
            &broker,
            &format!("[{rt}] connections after {how}"),
            Duration::from_secs(1),
        );
    }
}

odradek_tests::for_each_runtime!(
    cancel_safety,
    stream_yields_everything,
    drop_and_close_are_prompt
);
