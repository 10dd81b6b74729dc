//! The driver policy, written once for every runtime: what the background
//! driver does on each input, when the core's timers fire, what happens to
//! reports from connections it already closed, and how waiting calls learn
//! that it stopped (closed or panicked). Runtimes only decide where it runs
//! and how bytes move.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::future;
use odradek_core::{ConnId, Io};

use crate::runtime::{AsyncRuntime, Link, Runtime};
use crate::session::Stopped;
use crate::shared::{Input, Report, Shared};

/// A consumer's background driver: it moves bytes between the runtime's
/// connections and the core, fires the core's timers and wakes waiting
/// calls. It makes no decision about Kafka; the core does.
///
/// A runtime gets one from [`Runtime::spawn_driver`] and runs it with
/// [`run`](Self::run) (async) or [`run_blocking`](Self::run_blocking) (a
/// thread). However it ends (the consumer closed, a panic in a commit
/// callback, the runtime dropping it), waiting calls stop waiting: they
/// return [`Error::Closed`](odradek_core::Error::Closed), or
/// [`Error::Runtime`](odradek_core::Error::Runtime) after a panic.
pub struct Driver<R: Runtime> {
    runtime: R,
    shared: Arc<Shared>,
    conns: HashMap<ConnId, R::Conn>,
    setup_timeout: Duration,
    /// `socket.keepalive.enable`.
    keepalive: bool,
    /// When the core wants `handle_timeout`, as of the last drain.
    deadline: Option<Instant>,
}

impl<R: Runtime> std::fmt::Debug for Driver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("conns", &self.conns.len())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// What the driver does after a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Wait for an input, or until the deadline.
    Wait(Option<Instant>),
    /// The consumer is closed and its last outputs are done.
    Stop,
}

/// What the driver did with one input (for tracing and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Handled {
    /// The input came from a connection the driver already closed, and was
    /// dropped.
    pub(crate) stale: bool,
    /// The deadline had passed, so the core's timers ran.
    pub(crate) timers_ran: bool,
}

impl<R: Runtime> Driver<R> {
    pub(crate) fn new(runtime: R, shared: Arc<Shared>) -> Self {
        let (setup_timeout, keepalive) = {
            let session = shared.lock_unchecked();
            let config = session.core.config();
            (config.connection_setup_timeout, config.socket_keepalive)
        };
        Self {
            runtime,
            shared,
            conns: HashMap::new(),
            setup_timeout,
            keepalive,
            deadline: None,
        }
    }

    /// Runs the driver on an async runtime until the consumer is closed.
    pub async fn run(mut self)
    where
        R: AsyncRuntime,
    {
        // The panic is reported before the driver drops (which reports a
        // plain stop): the first report is the one waiting calls see.
        let ended = CatchUnwind(Box::pin(self.drive())).await;
        if let Err(payload) = ended {
            self.shared.stop(panicked(&*payload));
        }
    }

    /// Runs the driver on the calling thread until the consumer is closed.
    pub fn run_blocking(mut self) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.drive_blocking())) {
            self.shared.stop(panicked(&*payload));
        }
    }

    async fn drive(&mut self)
    where
        R: AsyncRuntime,
    {
        loop {
            let Next::Wait(deadline) = self.drain() else {
                return;
            };
            let inbox = &self.shared.inbox;
            let input = match deadline {
                Some(at) => {
                    let input = async { Some(inbox.next().await) };
                    let timer = async {
                        self.runtime.sleep_until(at).await;
                        None
                    };
                    future::or(input, timer).await
                }
                None => Some(inbox.next().await),
            };
            let now = self.runtime.now();
            self.handle(input, now);
        }
    }

    fn drive_blocking(&mut self) {
        loop {
            let Next::Wait(deadline) = self.drain() else {
                return;
            };
            let input = self.shared.inbox.next_until(deadline);
            let now = self.runtime.now();
            self.handle(input, now);
        }
    }

    /// Drains every output the core has (the sans-IO rule) and acts on
    /// them: commit callbacks run (outside the lock), connections open,
    /// bytes go out, connections close, waiting calls wake.
    pub(crate) fn drain(&mut self) -> Next {
        let drained = self.shared.lock_unchecked().drain();
        self.deadline = drained.timeout;
        for callback in drained.callbacks {
            callback.run();
        }
        for io in drained.io {
            match io {
                Io::Connect { conn, address } => {
                    let link = Link::new(
                        conn,
                        address,
                        self.setup_timeout,
                        self.keepalive,
                        self.shared.inbox.clone(),
                    );
                    let opened = self.runtime.connect(link);
                    self.conns.insert(conn, opened);
                }
                Io::Send { conn, data } => {
                    if let Some(opened) = self.conns.get_mut(&conn) {
                        crate::runtime::Connection::send(opened, data);
                    }
                }
                Io::Close { conn } => {
                    self.conns.remove(&conn);
                }
            }
        }
        if drained.wake_waiters {
            self.shared.notify_waiters();
        }
        if drained.closed {
            Next::Stop
        } else {
            Next::Wait(drained.timeout)
        }
    }

    /// Acts on one input at `now` (`None`: the wait ended at the deadline).
    /// Reports from connections the driver already closed are dropped: the
    /// core considers them gone. After any input, the core's timers run if
    /// their deadline passed, so a steady flow of inputs cannot starve them.
    pub(crate) fn handle(&mut self, input: Option<Input>, now: Instant) -> Handled {
        let mut handled = Handled::default();
        let mut session = self.shared.lock_unchecked();
        match input {
            None | Some(Input::Wake) => {}
            Some(Input::Conn(conn, _)) if !self.conns.contains_key(&conn) => {
                tracing::trace!(%conn, "dropped a report from a closed connection");
                handled.stale = true;
            }
            Some(Input::Conn(conn, report)) => match report {
                Report::Connected => session.core.handle_connected(conn, now),
                Report::Failed(reason) => {
                    self.conns.remove(&conn);
                    session.core.handle_connect_failed(conn, &reason, now);
                }
                Report::Data(data) => session.core.handle_received(conn, &data, now),
                Report::Closed => {
                    self.conns.remove(&conn);
                    session.core.handle_disconnected(conn, now);
                }
            },
        }
        if self.deadline.is_some_and(|at| at <= now) {
            session.core.handle_timeout(now);
            handled.timers_ran = true;
        }
        handled
    }
}

impl<R: Runtime> Drop for Driver<R> {
    /// However the driver ends, its connections close and waiting calls
    /// learn it is gone (a panic unwinding through a thread is reported as
    /// one; [`run`](Self::run) catches panics on async runtimes first).
    fn drop(&mut self) {
        self.conns.clear();
        let stopped = if std::thread::panicking() {
            Stopped::Panicked("the driver was dropped by a panic".into())
        } else {
            Stopped::Closed
        };
        self.shared.stop(stopped);
    }
}

/// How a panic is reported to waiting calls.
fn panicked(payload: &(dyn Any + Send)) -> Stopped {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    tracing::error!(%message, "the consumer's driver panicked");
    Stopped::Panicked(message)
}

/// Catches a panic while polling the future, so the driver can report it
/// before the runtime drops the future.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}
