//! The adapter's own behaviour where no broker answers: bounded `close`,
//! non-blocking `Drop`, poll timeouts, a driver that panics, and creation
//! outside a runtime. The real broker tests for every adapter live in the
//! `tests/` crate.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use odradek_tokio::{
    Consumer, Error, Misuse, OffsetAndMetadata, OffsetReset, Operation, RuntimeFailure,
    TopicPartition,
};

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

    /// Waits up to `timeout` for `check` to hold, without blocking the runtime.
    async fn wait_for(&self, timeout: Duration, check: impl Fn(&BlackHole) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(self) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
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
    let consumer = consumer(&format!("127.0.0.1:{}", unreachable_port()));
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
    let consumer = consumer(&hole.addr.to_string());
    assert!(
        hole.wait_for(Duration::from_secs(5), |h| h.accepted() >= 1)
            .await
    );
    within(Duration::from_secs(1), consumer.close())
        .await
        .expect("close");
    // The driver really closed its socket.
    assert!(
        hole.wait_for(Duration::from_secs(5), |h| h.closed() == h.accepted())
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_returns_at_once_and_closes_connections_in_the_background() {
    let hole = BlackHole::start();
    let consumer = consumer(&hole.addr.to_string());
    assert!(
        hole.wait_for(Duration::from_secs(5), |h| h.accepted() >= 1)
            .await
    );
    let started = Instant::now();
    drop(consumer);
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(
        hole.wait_for(Duration::from_secs(5), |h| h.closed() == h.accepted())
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_against_a_silent_broker_returns_empty_after_its_timeout() {
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
    let consumer = consumer(&hole.addr.to_string());
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
        ("bootstrap.servers", hole.addr.to_string().as_str()),
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
        consumer(&format!("127.0.0.1:{}", unreachable_port()))
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
