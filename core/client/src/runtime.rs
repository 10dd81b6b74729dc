//! What a runtime provides, and nothing more: the clock, somewhere to run
//! the driver, and connections that pump bytes. Everything else (the
//! session, waiting, the driver's decisions) is written once in this crate.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use odradek_core::{BrokerAddress, ConnId, Error};

use crate::driver::Driver;
use crate::shared::{Inbox, Report};

/// A runtime a consumer can run on: implemented once per runtime crate
/// (`odradek-tokio`, `odradek-async-std`, `odradek-blocking`).
///
/// It supplies what the sans-IO core cannot: the time, a place for the
/// background driver to run, and broker connections. It makes no decision;
/// the [`Driver`] it runs does.
pub trait Runtime: Clone + Send + Sync + Sized + 'static {
    /// A connection opened by [`connect`](Self::connect). Dropping it
    /// closes the connection (cancels its task, shuts its socket).
    type Conn: Connection;

    /// The runtime for one new consumer, or why there is none (for tokio:
    /// not called inside a tokio runtime).
    fn start() -> Result<Self, Error>;

    /// The time now: the only clock the client layer reads.
    fn now(&self) -> Instant;

    /// Runs `driver` in the background (a task, or a thread) until it
    /// returns: [`Driver::run`] on async runtimes,
    /// [`Driver::run_blocking`] on threads.
    fn spawn_driver(&self, driver: Driver<Self>) -> Result<(), Error>;

    /// Opens a connection to [`Link::address`] in the background and pumps
    /// its bytes: reports the outcome of connecting, every chunk read and
    /// the end of the stream to `link`, and writes what
    /// [`Connection::send`] hands it.
    fn connect(&self, link: Link) -> Self::Conn;
}

/// A runtime whose consumers' waiting calls are `async`: it also provides
/// timers.
pub trait AsyncRuntime: Runtime {
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send;
}

/// One broker connection, as the driver holds it.
pub trait Connection: Send + 'static {
    /// Writes `data` (whole request frames) to the connection, in order. A
    /// connection that cannot write reports itself closed through its
    /// [`Link`].
    fn send(&mut self, data: Bytes);
}

/// One connection as its runtime sees it: where to connect, and how to
/// report back to the driver.
#[derive(Clone)]
pub struct Link {
    conn: ConnId,
    address: BrokerAddress,
    setup_timeout: Duration,
    keepalive: bool,
    inbox: Arc<Inbox>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("conn", &self.conn)
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub(crate) fn new(
        conn: ConnId,
        address: BrokerAddress,
        setup_timeout: Duration,
        keepalive: bool,
        inbox: Arc<Inbox>,
    ) -> Self {
        Self {
            conn,
            address,
            setup_timeout,
            keepalive,
            inbox,
        }
    }

    /// Which connection this is.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Where to connect.
    pub fn address(&self) -> &BrokerAddress {
        &self.address
    }

    /// How long connecting may take (`socket.connection.setup.timeout.ms`).
    /// The core also times the setup out and closes the connection; a
    /// runtime whose connect cannot be cancelled bounds it with this.
    pub fn setup_timeout(&self) -> Duration {
        self.setup_timeout
    }

    /// Whether to turn TCP keepalive on (`socket.keepalive.enable`).
    pub fn keepalive(&self) -> bool {
        self.keepalive
    }

    /// The connection is open. False if the driver has stopped: give up.
    pub fn connected(&self) -> bool {
        self.inbox.push(self.conn, Report::Connected)
    }

    /// The connection could not be opened, and why.
    pub fn failed(&self, reason: String) {
        self.inbox.push(self.conn, Report::Failed(reason));
    }

    /// Bytes read from the connection. False if the driver has stopped:
    /// give up.
    pub fn received(&self, data: Bytes) -> bool {
        self.inbox.push(self.conn, Report::Data(data))
    }

    /// The connection ended (the peer closed it, or a read or write failed).
    pub fn closed(&self) {
        self.inbox.push(self.conn, Report::Closed);
    }
}
