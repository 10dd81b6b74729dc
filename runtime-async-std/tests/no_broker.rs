//! The adapter's own behaviour where no broker answers: bounded `close`,
//! non-blocking `Drop`, poll timeouts, a driver that panics, configuration
//! errors. Every test runs
//! under both `async_std::task::block_on` and `smol::block_on`; the real
//! broker tests for every adapter live in the `tests/` crate.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_lite::{StreamExt, future};
use odradek_async_std::{
    ConfigErrorKind, Consumer, Error, OffsetAndMetadata, OffsetReset, RuntimeFailure,
    TopicPartition,
};

/// Runs the same test under both executors.
fn on_both<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    async_std::task::block_on(test());
    smol::block_on(test());
}

/// A port nothing listens on: bound, then released.
fn unreachable_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A listener that accepts connections and reads what arrives, but never
/// answers. Counts connections accepted and connections the peer closed.
struct BlackHole {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (accepted, closed, stop) = (accepted.clone(), closed.clone(), stop.clone());
            move || {
                let mut streams: Vec<TcpStream> = Vec::new();
                let mut buf = [0u8; 4096];
                // Bounded even if a test forgets to stop it.
                let give_up = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < give_up {
                    if let Ok((stream, _)) = listener.accept() {
                        stream.set_nonblocking(true).unwrap();
                        streams.push(stream);
                        accepted.fetch_add(1, Ordering::SeqCst);
                    }
                    streams.retain_mut(|s| match s.read(&mut buf) {
                        Ok(0) => {
                            closed.fetch_add(1, Ordering::SeqCst);
                            false
                        }
                        Ok(_) => true,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                        Err(_) => {
                            closed.fetch_add(1, Ordering::SeqCst);
                            false
                        }
                    });
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        BlackHole {
            addr,
            accepted,
            closed,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits up to `timeout` for `check` to hold.
    fn wait_for(&self, timeout: Duration, check: impl Fn(&BlackHole) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        check(self)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
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
    async_io::Timer::after(duration).await;
}

#[test]
fn close_is_bounded_when_the_broker_is_unreachable() {
    on_both(|| async {
        let consumer = consumer(&format!("127.0.0.1:{}", unreachable_port()));
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
        let consumer = consumer(&hole.addr.to_string());
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
        let consumer = consumer(&hole.addr.to_string());
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
        let consumer = consumer(&hole.addr.to_string());
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
        let consumer = consumer(&hole.addr.to_string());
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
            ("bootstrap.servers", hole.addr.to_string().as_str()),
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
            (
                "bootstrap.servers",
                format!("127.0.0.1:{}", unreachable_port()).as_str(),
            ),
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
