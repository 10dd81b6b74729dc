//! odradek-tokio where no broker answers: bounded `close`, non-blocking
//! `Drop`, poll timeouts, a driver that panics, and creation outside a
//! runtime. The stand-in brokers are in [`odradek_tests::silent`]; the
//! real broker tests for every adapter are the other suites here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use odradek_tests::silent::{BlackHole, refused_address};
use odradek_tokio::{
    Consumer, Error, Misuse, OffsetAndMetadata, OffsetReset, Operation, RuntimeFailure,
    TopicPartition,
};

/// Waits up to `timeout` for `check` to hold, on the runtime's timer (the
/// consumer's driver runs on this runtime too).
async fn eventually(timeout: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    check()
}

fn consumer(bootstrap: &str) -> Consumer {
    let consumer = Consumer::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .expect("consumer");
    consumer
        .assign([TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        .expect("assign");
    consumer
}

/// Fails the test if `future` takes `bound` or longer.
async fn within<T>(bound: Duration, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(bound, future)
        .await
        .unwrap_or_else(|_| panic!("took longer than {bound:?}"))
}

#[test]
fn creating_a_consumer_outside_a_runtime_says_why_it_cannot() {
    let result = Consumer::builder()
        .bootstrap_servers("127.0.0.1:9092")
        .build();
    match result {
        Err(Error::InvalidArgument(misuse)) => {
            assert_eq!(misuse, Misuse::OutsideRuntime("tokio"));
            assert!(
                misuse.to_string().contains("inside a tokio runtime"),
                "{misuse}"
            );
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_bounded_when_the_broker_is_unreachable() {
    let consumer = consumer(&refused_address());
    // Let it try (and fail) to connect a few times first.
    let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
    assert!(records.is_empty());
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close");
    assert!(matches!(
        consumer.poll(Duration::from_secs(10)).await,
        Err(Error::Closed)
    ));
    // Closing again is fine, and fast.
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_bounded_when_the_broker_never_answers() {
    let hole = BlackHole::start();
    let consumer = consumer(&hole.address());
    assert!(eventually(Duration::from_secs(5), || hole.accepted() >= 1).await);
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close");
    // The driver really closed its socket.
    assert!(eventually(Duration::from_secs(5), || hole.closed() == hole.accepted()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_returns_at_once_and_closes_connections_in_the_background() {
    let hole = BlackHole::start();
    let consumer = consumer(&hole.address());
    assert!(eventually(Duration::from_secs(5), || hole.accepted() >= 1).await);
    let started = Instant::now();
    drop(consumer);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(eventually(Duration::from_secs(5), || hole.closed() == hole.accepted()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_against_a_silent_broker_returns_empty_after_its_timeout() {
    let hole = BlackHole::start();
    let consumer = consumer(&hole.address());
    for timeout in [Duration::ZERO, Duration::from_millis(300)] {
        let started = Instant::now();
        let records = consumer.poll(timeout).await.expect("poll");
        let elapsed = started.elapsed();
        assert!(records.is_empty());
        assert!(elapsed >= timeout, "{elapsed:?} < {timeout:?}");
        assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
    }
    // A timeout too large to add to a clock means "no timeout", not a panic.
    let consumer = Arc::new(consumer);
    let waiter = tokio::spawn({
        let consumer = consumer.clone();
        async move { consumer.poll(Duration::MAX).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    within(Duration::from_secs(1), consumer.close())
        .await
        .unwrap();
    let result = within(Duration::from_secs(1), waiter).await.unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_pending_calls_and_ends_the_stream() {
    let hole = BlackHole::start();
    let consumer = consumer(&hole.address());
    let closer = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        consumer.close().await.unwrap();
    };
    let (received, ()) = within(Duration::from_secs(2), async {
        tokio::join!(consumer.recv(), closer)
    })
    .await;
    assert!(matches!(received, Err(Error::Closed)), "{received:?}");
    let mut stream = consumer.stream();
    assert!(matches!(stream.next().await, Some(Err(Error::Closed))));
    assert!(stream.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_query_times_out_against_a_silent_broker() {
    let hole = BlackHole::start();
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", hole.address().as_str()),
        ("default.api.timeout.ms", "300"),
    ])
    .expect("consumer");
    let tp = TopicPartition::new("t", 0);
    let result = within(
        Duration::from_secs(2),
        consumer.end_offsets(std::slice::from_ref(&tp)),
    )
    .await;
    assert!(
        matches!(&result, Err(Error::Timeout(Operation::OffsetsLookup(p))) if p == std::slice::from_ref(&tp)),
        "{result:?}"
    );
    consumer.assign([tp.clone()]).unwrap();
    let result = within(Duration::from_secs(2), consumer.position(&tp)).await;
    assert!(
        matches!(&result, Err(Error::Timeout(Operation::Position(p))) if p == &tp),
        "{result:?}"
    );
    consumer.close().await.unwrap();
}

/// A commit callback runs on the driver task; when it panics, the driver
/// is gone, and every waiting call must say so instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_driver_fails_waiting_calls_instead_of_hanging() {
    let consumer = Consumer::from_properties([
        ("bootstrap.servers", refused_address().as_str()),
        ("group.id", "g"),
        ("default.api.timeout.ms", "200"),
    ])
    .expect("consumer");
    let tp = TopicPartition::new("t", 0);
    consumer.assign([tp.clone()]).unwrap();
    // No coordinator: the commit times out, and its callback runs.
    let offsets = BTreeMap::from([(tp, OffsetAndMetadata::new(1))]);
    consumer
        .commit_offsets_async(offsets, |_| panic!("a callback that panics"))
        .unwrap();
    let bound = Duration::from_secs(5);
    let received = within(bound, consumer.recv()).await;
    assert!(
        matches!(&received, Err(Error::Runtime(RuntimeFailure::DriverPanicked(m))) if m.contains("a callback that panics")),
        "{received:?}"
    );
    let polled = within(bound, consumer.poll(Duration::from_secs(60))).await;
    assert!(
        matches!(
            polled,
            Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))
        ),
        "{polled:?}"
    );
    let committed = within(bound, consumer.commit()).await;
    assert!(
        matches!(
            committed,
            Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))
        ),
        "{committed:?}"
    );
    let mut stream = consumer.stream();
    assert!(matches!(
        stream.next().await,
        Some(Err(Error::Runtime(RuntimeFailure::DriverPanicked(_))))
    ));
    assert!(stream.next().await.is_none());
    let closed = within(bound, consumer.close()).await;
    assert!(
        matches!(
            closed,
            Err(Error::Runtime(RuntimeFailure::DriverPanicked(_)))
        ),
        "{closed:?}"
    );
}

/// A runtime that shuts down drops the driver task with it: waiting calls
/// then end with `Closed` instead of waiting for a driver that is gone.
#[test]
fn a_runtime_shut_down_under_the_consumer_ends_waiting_calls() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let consumer = {
        let _inside = runtime.enter();
        consumer(&refused_address())
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    // `recv` needs no timer, so any executor can poll it now; on a thread,
    // so that a hang fails the test instead of hanging it.
    let (sender, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(futures_lite::future::block_on(consumer.recv()));
    });
    let received = received
        .recv_timeout(Duration::from_secs(2))
        .expect("recv ended");
    assert!(matches!(received, Err(Error::Closed)), "{received:?}");
}
