//! odradek-blocking where no broker answers: whatever the network does,
//! `close`, `Drop`, `poll` and the queries return within bounds, and sockets
//! close. The stand-in brokers are in [`odradek_tests::silent`]; nothing
//! here checks Kafka behaviour (the other suites do, against a real broker).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use odradek_blocking::{
    Consumer, Error, OffsetAndMetadata, OffsetReset, Operation, RuntimeFailure, TopicPartition,
};
use odradek_tests::silent::{BlackHole, refused_address};

fn consumer(bootstrap: &str) -> Consumer {
    let consumer = Consumer::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .unwrap();
    consumer
        .assign([TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        .unwrap();
    consumer
}

fn assert_within<T>(bound: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < bound, "took {took:?}, expected under {bound:?}");
    out
}

#[test]
fn consumer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Consumer>();
}

#[test]
fn close_is_bounded_when_the_broker_refuses_connections() {
    let consumer = consumer(&refused_address());
    thread::sleep(Duration::from_millis(200));
    assert_within(Duration::from_secs(2), || consumer.close()).unwrap();
    // Closing again, and calls after closing, fail fast and cleanly.
    assert_within(Duration::from_secs(1), || consumer.close()).unwrap();
    let after = assert_within(Duration::from_secs(1), || {
        consumer.poll(Duration::from_secs(10))
    });
    assert!(matches!(after, Err(Error::Closed)), "{after:?}");
}

#[test]
fn close_is_bounded_when_the_broker_never_answers() {
    let broker = BlackHole::start();
    let consumer = consumer(&broker.address());
    assert!(
        broker.wait_for(Duration::from_secs(5), |b| b.accepted() >= 1),
        "the consumer never connected"
    );
    assert_within(Duration::from_secs(2), || consumer.close()).unwrap();
    assert!(
        broker.wait_for(Duration::from_secs(2), |b| b.closed() == b.accepted()),
        "a consumer socket stayed open"
    );
}

#[test]
fn drop_with_work_in_flight_returns_at_once_and_closes_in_the_background() {
    let broker = BlackHole::start();
    let consumer = consumer(&broker.address());
    assert!(
        broker.wait_for(Duration::from_secs(5), |b| b.accepted() >= 1),
        "the consumer never connected"
    );
    assert_within(Duration::from_secs(2), || drop(consumer));
    assert!(
        broker.wait_for(Duration::from_secs(5), |b| b.closed() == b.accepted()),
        "a consumer socket stayed open"
    );
}

#[test]
fn drop_while_connecting_returns_at_once() {
    let consumer = consumer(&refused_address());
    assert_within(Duration::from_secs(2), || drop(consumer));
}

#[test]
fn poll_returns_empty_after_its_timeout() {
    let broker = BlackHole::start();
    let consumer = consumer(&broker.address());
    let start = Instant::now();
    let records = consumer.poll(Duration::from_millis(300)).unwrap();
    let took = start.elapsed();
    assert!(records.is_empty());
    assert!(
        took >= Duration::from_millis(300),
        "returned early: {took:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_within(Duration::from_secs(1), || consumer.poll(Duration::ZERO)).unwrap();
    // A timeout too large to add to a clock means "no timeout", not a panic.
    let consumer = Arc::new(consumer);
    let waiter = consumer.clone();
    let handle = thread::spawn(move || waiter.poll(Duration::MAX));
    thread::sleep(Duration::from_millis(100));
    consumer.close().unwrap();
    let result = handle.join().unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
}

#[test]
fn offsets_query_times_out_with_the_api_timeout() {
    let broker = BlackHole::start();
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", broker.address().as_str()),
        ("default.api.timeout.ms", "300"),
    ])
    .unwrap();
    let tp = TopicPartition::new("t", 0);
    let result = assert_within(Duration::from_secs(2), || {
        consumer.end_offsets(std::slice::from_ref(&tp))
    });
    assert!(
        matches!(&result, Err(Error::Timeout(Operation::OffsetsLookup(p))) if p == std::slice::from_ref(&tp)),
        "{result:?}"
    );
    consumer.assign([tp.clone()]).unwrap();
    let result = assert_within(Duration::from_secs(2), || consumer.position(&tp));
    assert!(
        matches!(&result, Err(Error::Timeout(Operation::Position(p))) if p == &tp),
        "{result:?}"
    );
}

#[test]
fn close_from_another_thread_ends_recv_and_the_iterator() {
    let broker = BlackHole::start();
    let consumer = Arc::new(consumer(&broker.address()));
    let reader = consumer.clone();
    let iterating = thread::spawn(move || reader.iter().collect::<Vec<_>>());
    let receiver = consumer.clone();
    let receiving = thread::spawn(move || receiver.recv());
    thread::sleep(Duration::from_millis(200));
    assert_within(Duration::from_secs(2), || consumer.close()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !(iterating.is_finished() && receiving.is_finished()) {
        assert!(Instant::now() < deadline, "a waiting call did not end");
        thread::sleep(Duration::from_millis(10));
    }
    let items = iterating.join().unwrap();
    assert!(matches!(items[..], [Err(Error::Closed)]), "{items:?}");
    let result = receiving.join().unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
}

#[test]
fn property_errors_name_the_key() {
    let unknown = Consumer::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("no.such.property", "1"),
    ])
    .unwrap_err();
    let Error::Config(e) = unknown else {
        panic!("{unknown:?}")
    };
    assert_eq!(e.key, "no.such.property");

    let bad = Consumer::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("max.poll.records", "many"),
    ])
    .unwrap_err();
    let Error::Config(e) = bad else {
        panic!("{bad:?}")
    };
    assert_eq!(e.key, "max.poll.records");
    assert!(Error::Config(e).to_string().contains("max.poll.records"));
}

/// A commit callback runs on the driver thread; when it panics, the driver
/// is gone, and every waiting call must say so instead of hanging.
#[test]
fn a_panicking_driver_fails_waiting_calls_instead_of_hanging() {
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", refused_address().as_str()),
        ("group.id", "g"),
        ("default.api.timeout.ms", "200"),
    ])
    .unwrap();
    let tp = TopicPartition::new("t", 0);
    consumer.assign([tp.clone()]).unwrap();
    // No coordinator: the commit times out, and its callback runs.
    let offsets = BTreeMap::from([(tp, OffsetAndMetadata::new(1))]);
    consumer
        .commit_offsets_async(offsets, |_| panic!("a callback that panics"))
        .unwrap();
    let bound = Duration::from_secs(5);
    let received = assert_within(bound, || consumer.recv());
    assert!(
        matches!(&received, Err(Error::Runtime(RuntimeFailure::DriverPanicked(m))) if m.contains("a callback that panics")),
        "{received:?}"
    );
    let polled = assert_within(bound, || consumer.poll(Duration::from_secs(60)));
    assert!(
        matches!(
            polled,
            Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))
        ),
        "{polled:?}"
    );
    let committed = assert_within(bound, || consumer.commit());
    assert!(
        matches!(
            committed,
            Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))
        ),
        "{committed:?}"
    );
    let items: Vec<_> = assert_within(bound, || consumer.iter().collect());
    assert!(
        matches!(
            items[..],
            [Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))]
        ),
        "{items:?}"
    );
    let closed = assert_within(bound, || consumer.close());
    assert!(
        matches!(
            closed,
            Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))
        ),
        "{closed:?}"
    );
}
