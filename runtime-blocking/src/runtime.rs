//! The thread binding: the driver is a thread, each connection a thread
//! that connects and then reads; writes happen inline on the driver. No
//! async runtime anywhere.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use odradek_client::{Connection, Driver, Link, Runtime};
use odradek_core::{Error, RuntimeFailure};

/// How long a write may make no progress before its connection counts as
/// broken: the driver writes inline, so a peer that stops reading must not
/// hold it (and `close`) for longer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Threads and `std::net` sockets: one driver thread per consumer, plus one
/// reader thread per broker connection. They all end after `close` or a
/// drop: the driver closes every socket, which ends its reader.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRuntime;

impl Runtime for ThreadRuntime {
    type Conn = ThreadConn;

    fn start() -> Result<Self, Error> {
        Ok(ThreadRuntime)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn spawn_driver(&self, driver: Driver<Self>) -> Result<(), Error> {
        thread::Builder::new()
            .name("odradek-driver".into())
            .spawn(move || driver.run_blocking())
            .map(drop)
            .map_err(|e| Error::Runtime(RuntimeFailure::DriverNotStarted(e.to_string())))
    }

    fn connect(&self, link: Link) -> ThreadConn {
        let slot = Arc::new(Mutex::new(Slot::Connecting));
        let reader = (slot.clone(), link.clone());
        let spawned = thread::Builder::new()
            .name(format!("odradek-conn-{}", link.conn().0))
            .spawn(move || connection(&reader.1, &reader.0));
        if let Err(e) = spawned {
            link.failed(format!("cannot start a connection thread: {e}"));
        }
        ThreadConn { slot }
    }
}

/// A connection's socket, shared with its reader thread; dropping it shuts
/// the socket down, which ends the reader.
#[derive(Debug)]
pub struct ThreadConn {
    slot: Arc<Mutex<Slot>>,
}

impl Connection for ThreadConn {
    fn send(&mut self, data: Bytes) {
        if let Slot::Open(stream) = &*lock(&self.slot) {
            let mut writer: &TcpStream = stream;
            if let Err(e) = writer.write_all(&data) {
                tracing::debug!(error = %e, "write to broker failed");
                // Its reader sees the shutdown and reports the connection closed.
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for ThreadConn {
    fn drop(&mut self) {
        let mut slot = lock(&self.slot);
        if let Slot::Open(stream) = &*slot {
            // Ends the blocking read in the connection's thread.
            let _ = stream.shutdown(Shutdown::Both);
        }
        *slot = Slot::Closed;
    }
}

/// A connection as both the driver and its thread see it. The lock makes
/// "the driver closed it" and "the thread connected" exclusive, so a socket
/// that opens after its close is shut at once and no reader outlives it.
#[derive(Debug)]
enum Slot {
    Connecting,
    Open(TcpStream),
    Closed,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One broker connection's thread: connect, then read until the socket
/// ends (the peer closed it, or the driver shut it down), reporting
/// everything to the driver.
fn connection(link: &Link, slot: &Mutex<Slot>) {
    let address = link.address();
    let opened = connect(&address.host, address.port, link.setup_timeout()).and_then(|stream| {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
        if link.keepalive() {
            socket2::SockRef::from(&stream).set_keepalive(true)?;
        }
        let writer = stream.try_clone()?;
        Ok((stream, writer))
    });
    let stream = match opened {
        Ok((stream, writer)) => {
            let mut slot = lock(slot);
            if matches!(*slot, Slot::Closed) {
                return;
            }
            *slot = Slot::Open(writer);
            stream
        }
        Err(e) => return link.failed(e.to_string()),
    };
    // A refused report means the driver has exited, after shutting every
    // socket down.
    if !link.connected() {
        return;
    }
    let mut buf = vec![0; 64 * 1024];
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if !link.received(Bytes::copy_from_slice(&buf[..n])) {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    link.closed();
}

/// Tries each address `host` resolves to, within `timeout` in all. The
/// core also times the setup out and closes the connection on its own.
fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now().checked_add(timeout);
    let mut last = io::Error::new(ErrorKind::NotFound, format!("{host} has no address"));
    for addr in (host, port).to_socket_addrs()? {
        let left = deadline.map_or(timeout, |at| at.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                "connection setup timed out",
            ));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(last)
}
