//! The async adapters where no broker answers, each scenario written once
//! over the runtime (`odradek_client::Consumer<R>`) and run on tokio (a
//! 2-worker runtime), async-std and smol (odradek-async-std under both
//! executors): bounded `close`, non-blocking `Drop`, poll and query
//! timeouts, `close` waking pending calls, configuration errors, and a
//! driver that panics. Tokio's own cases (creation outside a runtime, the
//! runtime shutting down) are in `no_broker_tokio.rs`. The stand-in brokers
//! are in [`odradek_tests::silent`].

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_lite::{StreamExt, future};
use odradek_async_std::AsyncIoRuntime;
use odradek_client::{AsyncRuntime, Consumer};
use odradek_core::{
    ConfigErrorKind, Error, OffsetAndMetadata, OffsetReset, Operation, RuntimeFailure,
    TopicPartition,
};
use odradek_tests::silent::{BlackHole, refused_address};
use odradek_tokio::TokioRuntime;

/// Runs `scenario` on tokio, then on odradek-async-std under async-std and
/// under smol.
fn on_every_runtime<T, A>(tokio_scenario: fn() -> T, async_io_scenario: fn() -> A)
where
    T: Future<Output = ()>,
    A: Future<Output = ()>,
{
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(tokio_scenario());
    async_std::task::block_on(async_io_scenario());
    smol::block_on(async_io_scenario());
}

/// A timer any executor can wait on (async-io runs its own reactor).
async fn sleep(duration: Duration) {
    smol::Timer::after(duration).await;
}

/// Waits up to `timeout` for `check` to hold, without blocking the
/// executor (tokio's driver may run on this thread).
async fn eventually(timeout: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        sleep(Duration::from_millis(5)).await;
    }
    check()
}

/// Fails the test if `future` takes `bound` or longer.
async fn within<T>(bound: Duration, future: impl Future<Output = T>) -> T {
    let timeout = async {
        sleep(bound).await;
        panic!("took longer than {bound:?}")
    };
    future::or(future, timeout).await
}

fn consumer<R: AsyncRuntime>(bootstrap: &str) -> Consumer<R> {
    let consumer = Consumer::<R>::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .expect("consumer");
    consumer
        .assign([TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        .expect("assign");
    consumer
}

async fn close_when_unreachable<R: AsyncRuntime>() {
    let consumer = consumer::<R>(&refused_address());
    // Let it try (and fail) to connect a few times first.
    let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
    assert!(records.is_empty());
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close");
    assert!(matches!(
        within(
            Duration::from_secs(1),
            consumer.poll(Duration::from_secs(10))
        )
        .await,
        Err(Error::Closed)
    ));
    // Closing again is fine, and fast.
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close again");
}

#[test]
fn close_is_bounded_when_the_broker_is_unreachable() {
    on_every_runtime(
        close_when_unreachable::<TokioRuntime>,
        close_when_unreachable::<AsyncIoRuntime>,
    );
}

async fn close_when_silent<R: AsyncRuntime>() {
    let hole = BlackHole::start();
    let consumer = consumer::<R>(&hole.address());
    assert!(eventually(Duration::from_secs(5), || hole.accepted() >= 1).await);
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close");
    // The driver really closed its socket.
    assert!(eventually(Duration::from_secs(5), || hole.closed() == hole.accepted()).await);
}

#[test]
fn close_is_bounded_when_the_broker_never_answers() {
    on_every_runtime(
        close_when_silent::<TokioRuntime>,
        close_when_silent::<AsyncIoRuntime>,
    );
}

async fn drop_when_silent<R: AsyncRuntime>() {
    let hole = BlackHole::start();
    let consumer = consumer::<R>(&hole.address());
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

#[test]
fn drop_returns_at_once_and_closes_connections_in_the_background() {
    on_every_runtime(
        drop_when_silent::<TokioRuntime>,
        drop_when_silent::<AsyncIoRuntime>,
    );
}

async fn poll_when_silent<R: AsyncRuntime>() {
    let hole = BlackHole::start();
    let consumer = consumer::<R>(&hole.address());
    for timeout in [Duration::ZERO, Duration::from_millis(300)] {
        let started = Instant::now();
        let records = consumer.poll(timeout).await.expect("poll");
        let elapsed = started.elapsed();
        assert!(records.is_empty());
        assert!(elapsed >= timeout, "{elapsed:?} < {timeout:?}");
        assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
    }
    // A timeout too large to add to a clock means "no timeout", not a
    // panic: the poll waits until the consumer closes.
    let closer = async {
        sleep(Duration::from_millis(100)).await;
        consumer.close().await.unwrap();
    };
    let (result, ()) = within(
        Duration::from_secs(2),
        future::zip(consumer.poll(Duration::MAX), closer),
    )
    .await;
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
}

#[test]
fn poll_against_a_silent_broker_returns_empty_after_its_timeout() {
    on_every_runtime(
        poll_when_silent::<TokioRuntime>,
        poll_when_silent::<AsyncIoRuntime>,
    );
}

async fn close_wakes_waiters<R: AsyncRuntime>() {
    let hole = BlackHole::start();
    let consumer = consumer::<R>(&hole.address());
    let closer = async {
        sleep(Duration::from_millis(100)).await;
        consumer.close().await.unwrap();
    };
    let (received, ()) = within(Duration::from_secs(2), future::zip(consumer.recv(), closer)).await;
    assert!(matches!(received, Err(Error::Closed)), "{received:?}");
    let mut stream = consumer.stream();
    assert!(matches!(stream.next().await, Some(Err(Error::Closed))));
    assert!(stream.next().await.is_none());
}

#[test]
fn close_wakes_pending_calls_and_ends_the_stream() {
    on_every_runtime(
        close_wakes_waiters::<TokioRuntime>,
        close_wakes_waiters::<AsyncIoRuntime>,
    );
}

async fn queries_when_silent<R: AsyncRuntime>() {
    let hole = BlackHole::start();
    let consumer = Consumer::<R>::from_properties([
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

#[test]
fn offsets_query_times_out_against_a_silent_broker() {
    on_every_runtime(
        queries_when_silent::<TokioRuntime>,
        queries_when_silent::<AsyncIoRuntime>,
    );
}

async fn config_errors<R: AsyncRuntime>() {
    let unknown = Consumer::<R>::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("no.such.property", "1"),
    ]);
    match unknown {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "no.such.property");
            assert_eq!(e.kind, ConfigErrorKind::UnknownKey);
            assert!(e.to_string().contains("no.such.property"), "{e}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let bad = Consumer::<R>::from_properties([
        ("bootstrap.servers", "localhost:9092"),
        ("fetch.max.wait.ms", "soon"),
    ]);
    match bad {
        Err(Error::Config(e)) => {
            assert_eq!(e.key, "fetch.max.wait.ms");
            assert!(e.to_string().contains("soon"), "{e}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    match Consumer::<R>::from_properties([("client.id", "c")]) {
        Err(Error::Config(e)) => assert_eq!(e.key, "bootstrap.servers"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn from_properties_errors_name_the_key() {
    on_every_runtime(
        config_errors::<TokioRuntime>,
        config_errors::<AsyncIoRuntime>,
    );
}

/// A commit callback runs on the driver; when it panics, the driver is
/// gone, and every waiting call must say so instead of hanging.
async fn panicking_driver<R: AsyncRuntime>() {
    let consumer = Consumer::<R>::from_properties([
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
    let panicked =
        |r: &Result<(), Error>| matches!(r, Err(Error::Runtime(RuntimeFailure::DriverPanicked(_))));
    let polled = within(bound, consumer.poll(Duration::from_secs(60))).await;
    let polled = polled.map(drop);
    assert!(panicked(&polled), "{polled:?}");
    let committed = within(bound, consumer.commit()).await;
    assert!(panicked(&committed), "{committed:?}");
    let mut stream = consumer.stream();
    let next = within(bound, stream.next()).await.map(|r| r.map(drop));
    assert!(next.as_ref().is_some_and(panicked), "{next:?}");
    assert!(stream.next().await.is_none());
    let closed = within(bound, consumer.close()).await;
    assert!(panicked(&closed), "{closed:?}");
}

#[test]
fn a_panicking_driver_fails_waiting_calls_instead_of_hanging() {
    on_every_runtime(
        panicking_driver::<TokioRuntime>,
        panicking_driver::<AsyncIoRuntime>,
    );
}
