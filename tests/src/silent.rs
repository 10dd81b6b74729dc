//! Stand-ins for a broker that is not there, for the adapters' own
//! behaviour where no broker answers (bounded `close`, non-blocking `Drop`,
//! timeouts): an address that refuses connections, and a [`BlackHole`] that
//! accepts them and never answers. Nothing here speaks Kafka; the tests
//! that check Kafka behaviour run against a real [`Broker`](crate::Broker).

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A loopback address where nothing listens: connections are refused.
pub fn refused_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let address = listener.local_addr().expect("the bound address");
    drop(listener);
    address.to_string()
}

/// A loopback listener that accepts connections and reads what arrives,
/// but never answers. Counts connections accepted, and connections the
/// peer closed (end of stream or an error). Stops when dropped, and after
/// 60 s in any case.
#[derive(Debug)]
pub struct BlackHole {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BlackHole {
    /// Starts listening on a free loopback port.
    pub fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = listener.local_addr().expect("the bound address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let (accepted, closed, stop) = (accepted.clone(), closed.clone(), stop.clone());
            move || {
                let mut streams: Vec<TcpStream> = Vec::new();
                let mut buf = [0u8; 4096];
                // Bounded even if a test forgets to drop it.
                let give_up = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::SeqCst) && Instant::now() < give_up {
                    if let Ok((stream, _)) = listener.accept() {
                        if stream.set_nonblocking(true).is_ok() {
                            streams.push(stream);
                        }
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
                    thread::sleep(Duration::from_millis(5));
                }
            }
        });
        BlackHole {
            address,
            accepted,
            closed,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens, as `host:port`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Accepted connections the peer has closed so far.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Waits (sleeping this thread) up to `timeout` for `check` to hold.
    /// An async test on a runtime that drives the consumer on the same
    /// thread must wait with its runtime's timer instead.
    pub fn wait_for(&self, timeout: Duration, check: impl Fn(&BlackHole) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if check(self) {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        check(self)
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
