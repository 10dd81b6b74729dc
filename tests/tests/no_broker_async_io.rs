//! odradek-async-std where no broker answers: bounded `close`, non-blocking
//! `Drop`, poll timeouts, a driver that panics, configuration errors. Every
//! test runs under both `async_std::task::block_on` and `smol::block_on`.
//! The stand-in brokers are in [`odradek_tests::silent`]; the real broker
//! tests for every adapter are the other suites here.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_lite::{StreamExt, future};
use odradek_async_std::{
    ConfigErrorKind, Consumer, Error, OffsetAndMetadata, OffsetReset, RuntimeFailure,
    TopicPartition,
};
use odradek_tests::silent::{BlackHole, refused_address};

/// Runs the same test under both executors.
fn on_both<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    async_std::task::block_on(test());
    smol::block_on(test());
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

async fn sleep(duration: Duration) {
    smol::Timer::after(duration).await;
}

#[test]
fn close_is_bounded_when_the_broker_is_unreachable() {
    on_both(|| async {
        let consumer = consumer(&refused_address());
        // Let it try (and fail) to connect a few times first.
        let records = consumer.poll(Duration::from_millis(200)).await.unwrap();
        assert!(records.is_empty());
        let started = Instant::now();
        consumer.close().await.expect("close");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(matches!(
            consumer.poll(Duration::ZERO).await,
            Err(Error::Closed)
        ));
    });
}

#[test]
fn close_is_bounded_when_the_broker_never_answers() {
    on_both(|| async {
        let hole = BlackHole::start();
        let consumer = consumer(&hole.address());
        assert!(hole.wait_for(Duration::from_secs(5), |h| h.accepted() >= 1));
        let started = Instant::now();
        consumer.close().await.expect("close");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        // The driver really closed its socket.
        assert!(hole.wait_for(Duration::from_secs(5), |h| h.closed() == h.accepted()));
    });
}

#[test]
fn drop_returns_at_once_and_closes_connections_in_the_background() {
    on_both(|| async {
        let hole = BlackHole::start();
        let consumer = consumer(&hole.address());
        assert!(hole.wait_for(Duration::from_secs(5), |h| h.accepted() >= 1));
        let started = Instant::now();
        drop(consumer);
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert!(hole.wait_for(Duration::from_secs(5), |h| h.closed() == h.accepted()));
    });
}

#[test]
fn poll_against_a_silent_broker_returns_empty_after_its_timeout() {
    on_both(|| async {
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
        consumer.close().await.unwrap();
    });
}

#[test]
fn close_wakes_pending_calls_and_ends_the_stream() {
    on_both(|| async {
        let hole = BlackHole::start();
        let consumer = consumer(&hole.address());
        let closer = async {
            sleep(Duration::from_millis(100)).await;
            consumer.close().await.unwrap();
        };
        let (received, ()) = future::zip(consumer.recv(), closer).await;
        assert!(matches!(received, Err(Error::Closed)), "{received:?}");
        let mut stream = consumer.stream();
        assert!(matches!(stream.next().await, Some(Err(Error::Closed))));
        assert!(stream.next().await.is_none());
    });
}

#[test]
fn offsets_query_times_out_against_a_silent_broker() {
    on_both(|| async {
        let hole = BlackHole::start();
        let consumer = Consumer::from_properties([
            ("bootstrap.servers", hole.address().as_str()),
            ("default.api.timeout.ms", "300"),
        ])
        .expect("consumer");
        let started = Instant::now();
        let result = consumer.end_offsets(&[TopicPartition::new("t", 0)]).await;
        assert!(result.is_err(), "{result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        consumer.close().await.unwrap();
    });
}

#[test]
fn from_properties_errors_name_the_key() {
    on_both(|| async {
        let unknown = Consumer::from_properties([
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
        let bad = Consumer::from_properties([
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
        match Consumer::from_properties([("client.id", "c")]) {
            Err(Error::Config(e)) => assert_eq!(e.key, "bootstrap.servers"),
            other => panic!("expected a config error, got {other:?}"),
        }
    });
}

/// Fails the test if `future` takes `bound` or longer.
async fn within<T>(bound: Duration, future: impl Future<Output = T>) -> T {
    let timeout = async {
        sleep(bound).await;
        panic!("took longer than {bound:?}")
    };
    future::or(future, timeout).await
}

/// A commit callback runs on the driver thread; when it panics, the driver
/// is gone, and every waiting call must say so instead of hanging.
#[test]
fn a_panicking_driver_fails_waiting_calls_instead_of_hanging() {
    on_both(|| async {
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
    });
}
