//! Broker failures on every adapter: the broker killed and restarted on the
//! same port in the middle of consumption, and a broker that is gone. No
//! panic, no hang: the consumer reconnects and continues, or reports an
//! error through `poll`; `poll` and `close` return within their bounds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use odradek_core::TopicPartition;
use odradek_core::records::Compression;
use odradek_tests::driver::Connection;
use odradek_tests::suite::{
    HangGuard, OffsetTracker, TestConsumer, build, check_numbered, config, consume_to, partitions,
    produce_numbered, timed, wait_connections_closed,
};
use odradek_tests::{Broker, BrokerKind};

const TOPIC: &str = "faults";

/// How much longer than asked a `poll` may take (scheduling on a loaded
/// 2-core machine), and the bound on `close`.
const POLL_SLACK: Duration = Duration::from_secs(2);
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// Creates the topic (unless it exists) and writes numbered records
/// (batches of 100) to each partition from offset `from` up to `to`.
fn fill(broker: &Broker, create: bool, from: usize, to: usize) {
    if create {
        broker.create_topic(TOPIC, 2).unwrap_or_else(|e| {
            panic!("create {TOPIC}: {e}\n{}", broker.log_tail());
        });
    }
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    for p in 0..2 {
        produce_numbered(
            &mut conn,
            TOPIC,
            p,
            from as i64,
            &vec![100; (to - from) / 100],
            Compression::Lz4,
        );
    }
}

/// Polls until every partition reaches `end`, tolerating (and returning)
/// poll errors: during a broker restart an adapter may report one.
fn consume_through_errors<C: TestConsumer>(
    consumer: &C,
    tracker: &mut OffsetTracker,
    end: &BTreeMap<TopicPartition, i64>,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut errors = Vec::new();
    while !tracker.all_reached(end) {
        assert!(
            Instant::now() < deadline,
            "[{}] not caught up {limit:?} after the restart: at {:?}, want {end:?}; poll errors: {errors:?}",
            C::RUNTIME,
            tracker
        );
        let (result, took) = timed(|| consumer.poll(Duration::from_millis(500)));
        assert!(
            took < Duration::from_millis(500) + POLL_SLACK,
            "[{}] poll(500 ms) took {took:?}",
            C::RUNTIME
        );
        match result {
            Ok(records) => {
                for record in &records {
                    tracker.accept(record);
                    check_numbered(record);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

fn broker_restart_mid_consumption<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_faults restart [{rt}]"),
        Duration::from_secs(300),
    );
    let mut broker = Broker::start(kind).expect("start broker");
    fill(&broker, true, 0, 1000);
    let all = partitions(TOPIC, 2);
    let mut cfg = config(&broker);
    cfg.max_poll_records = 100;
    let consumer: C = build(cfg);
    consumer.assign(&all).expect("assign");

    // Part of the log, then the broker dies with everything it stored.
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let halfway: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 500)).collect();
    consume_to(
        &consumer,
        "before the restart",
        Duration::from_secs(30),
        &mut tracker,
        &halfway,
        check_numbered,
    );
    broker
        .restart()
        .expect("restart the broker on the same port");
    if kind.persists() {
        // crabka kept its log: append the rest.
        fill(&broker, false, 1000, 2000);
    } else {
        // Memory storage starts empty: recreate the topic with the same
        // numbered records, and more of them, so the consumer's positions
        // are inside the new log. Its records are identical at each offset,
        // so the whole run must read as one stream without a gap or a repeat.
        fill(&broker, true, 0, 2000);
    }
    let end: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 2000)).collect();
    let (errors, took) =
        timed(|| consume_through_errors(&consumer, &mut tracker, &end, Duration::from_secs(60)));
    eprintln!("[{rt}] caught up {took:?} after the restart; poll errors: {errors:?}");
    for tp in &all {
        assert_eq!(consumer.position(tp), Ok(2000), "[{rt}] position of {tp}");
    }
    let (closed, took) = timed(|| consumer.close());
    closed.expect("close after a restart");
    assert!(took < CLOSE_BOUND, "[{rt}] close took {took:?}");
    wait_connections_closed(&broker, "connections after close", Duration::from_secs(5));
}

fn broker_gone<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_faults gone [{rt}]"),
        Duration::from_secs(300),
    );
    let mut broker = Broker::start(kind).expect("start broker");
    fill(&broker, true, 0, 100);
    let all = partitions(TOPIC, 2);
    let mut cfg = config(&broker);
    cfg.default_api_timeout = Duration::from_secs(3);
    let consumer: C = build(cfg.clone());
    consumer.assign(&all).expect("assign");
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let end: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 100)).collect();
    consume_to(
        &consumer,
        "everything",
        Duration::from_secs(30),
        &mut tracker,
        &end,
        check_numbered,
    );

    broker.stop();
    // poll returns at its timeout (empty) or with an error, never later.
    for _ in 0..3 {
        let (result, took) = timed(|| consumer.poll(Duration::from_millis(700)));
        assert!(
            took < Duration::from_millis(700) + POLL_SLACK,
            "[{rt}] poll(700 ms) with the broker gone took {took:?}"
        );
        if let Ok(records) = result {
            assert!(records.is_empty(), "[{rt}] records from a dead broker");
        }
    }
    // A known position needs no broker.
    let (position, took) = timed(|| consumer.position(&all[0]));
    assert_eq!(position, Ok(100), "[{rt}] position with the broker gone");
    assert!(took < POLL_SLACK, "[{rt}] position took {took:?}");
    // A query cannot be answered: an error within default.api.timeout.ms.
    let (answer, took) = timed(|| consumer.end_offsets(&all));
    assert!(
        answer.is_err(),
        "[{rt}] end_offsets with the broker gone: {answer:?}"
    );
    assert!(
        took < cfg.default_api_timeout + POLL_SLACK,
        "[{rt}] end_offsets took {took:?}"
    );
    let (closed, took) = timed(|| consumer.close());
    assert!(
        took < CLOSE_BOUND,
        "[{rt}] close with the broker gone took {took:?}: {closed:?}"
    );
    closed.expect("close with the broker gone");

    // A consumer that never reaches a broker behaves the same way.
    let stranded: C = build(cfg);
    stranded.assign(&all).expect("assign");
    let (result, took) = timed(|| stranded.poll(Duration::from_millis(700)));
    assert!(
        took < Duration::from_millis(700) + POLL_SLACK,
        "[{rt}] poll(700 ms) without a broker took {took:?}"
    );
    if let Ok(records) = result {
        assert!(records.is_empty(), "[{rt}] records without a broker");
    }
    let (closed, took) = timed(|| stranded.close());
    assert!(
        took < CLOSE_BOUND,
        "[{rt}] close without a broker took {took:?}: {closed:?}"
    );
    closed.expect("close without a broker");
}

odradek_tests::for_each_runtime!(broker_restart_mid_consumption, broker_gone);
