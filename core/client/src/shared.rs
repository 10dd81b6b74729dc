//! What a consumer's handle and its driver share: the session under a lock,
//! one notification for waiting calls, and the driver's inbox. The waiting
//! logic is written once here, in an async and a blocking form that share
//! every decision.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use event_listener::{Event, Listener};
use futures_lite::future;
use odradek_core::{CommitId, ConnId, Error};

use crate::runtime::{AsyncRuntime, Runtime};
use crate::session::{ListenerOwner, Session, Stopped};

/// State shared by a consumer's handle and its driver.
pub(crate) struct Shared {
    state: Mutex<Session>,
    /// Something changed that a waiting call may care about.
    changed: Event,
    /// What reaches the driver: commands' wake-ups and connection reports.
    pub(crate) inbox: Arc<Inbox>,
    listener_owner: ListenerOwner,
}

impl Shared {
    pub(crate) fn new(core: odradek_core::Consumer, parts: odradek_core::BuilderParts) -> Self {
        let listener_owner = ListenerOwner::default();
        Self {
            state: Mutex::new(Session::new(core, parts, listener_owner.clone())),
            changed: Event::new(),
            inbox: Arc::new(Inbox::default()),
            listener_owner,
        }
    }

    /// The session. Panics with directions if called from the rebalance
    /// listener, which runs under this lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Session> {
        self.listener_owner.check();
        self.lock_unchecked()
    }

    /// The session, for the driver (which never runs the listener).
    pub(crate) fn lock_unchecked(&self) -> MutexGuard<'_, Session> {
        // The core never panics on input; a poisoned lock only means a panic
        // elsewhere (a listener, say) while it was held: the state is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A command changed the core: the driver must drain its outputs.
    pub(crate) fn wake_driver(&self) {
        self.inbox.wake();
    }

    /// Wakes every waiting call so it checks again.
    pub(crate) fn notify_waiters(&self) {
        self.changed.notify(usize::MAX);
    }

    /// The driver is gone: waiting calls return `stopped`'s error from now
    /// on, and connections' reports are refused.
    pub(crate) fn stop(&self, stopped: Stopped) {
        self.inbox.close();
        self.lock_unchecked().set_stopped(stopped);
        self.notify_waiters();
    }

    /// One check of a waiting call, under the lock: its outcome, or the
    /// driver's end if there is none and the driver stopped.
    fn check<T>(&self, check: &mut impl Check<T>, now: Instant) -> Option<Result<T, Error>> {
        let outcome = {
            let mut session = self.lock();
            match check(&mut session, now) {
                None => session.stopped().map(|stopped| Err(stopped.error())),
                outcome => outcome,
            }
        };
        // `check` may have changed the core (taking records lets it fetch
        // more): the driver must drain it.
        self.wake_driver();
        outcome
    }

    /// Waits asynchronously until `wait`'s check returns an outcome, or its
    /// limit passes. Cancel safe as long as the check finishes its job in
    /// the one step that returns `Some`.
    pub(crate) async fn wait_async<R: AsyncRuntime, T, C>(
        &self,
        runtime: &R,
        wait: Wait<T, C>,
    ) -> Result<T, Error>
    where
        C: Check<T>,
    {
        let Wait {
            limit,
            mut check,
            on_timeout,
        } = wait;
        // A limit too large to add to a clock is no limit.
        let deadline = limit.and_then(|limit| runtime.now().checked_add(limit));
        // Created once, and never polled again once it fired.
        let mut timer = pin!(deadline.map(|at| runtime.sleep_until(at)));
        loop {
            // Listen before checking, so a change in between is not missed.
            let listener = self.changed.listen();
            if let Some(outcome) = self.check(&mut check, runtime.now()) {
                return outcome;
            }
            match timer.as_mut().as_pin_mut() {
                Some(timer) => {
                    let notified = async {
                        listener.await;
                        true
                    };
                    let expired = async {
                        timer.await;
                        false
                    };
                    if !future::or(notified, expired).await {
                        return on_timeout;
                    }
                }
                None => listener.await,
            }
        }
    }

    /// Blocks the calling thread until `wait`'s check returns an outcome,
    /// or its limit passes: the same steps as [`wait_async`](Self::wait_async).
    pub(crate) fn wait_blocking<R: Runtime, T, C>(
        &self,
        runtime: &R,
        wait: Wait<T, C>,
    ) -> Result<T, Error>
    where
        C: Check<T>,
    {
        let Wait {
            limit,
            mut check,
            on_timeout,
        } = wait;
        let deadline = limit.and_then(|limit| runtime.now().checked_add(limit));
        loop {
            let listener = self.changed.listen();
            if let Some(outcome) = self.check(&mut check, runtime.now()) {
                return outcome;
            }
            match deadline {
                Some(at) => {
                    if listener.wait_deadline(at).is_none() {
                        return on_timeout;
                    }
                }
                None => listener.wait(),
            }
        }
    }
}

/// What a waiting call checks under the lock each time something changed:
/// its outcome once there is one, taken in that one step.
pub(crate) trait Check<T>: FnMut(&mut Session, Instant) -> Option<Result<T, Error>> {}

impl<T, F: FnMut(&mut Session, Instant) -> Option<Result<T, Error>>> Check<T> for F {}

/// A waiting call, written once for the async and the blocking consumer:
/// how long it may wait, what it checks under the lock each time something
/// changed, and what it returns when the limit passes.
pub(crate) struct Wait<T, C> {
    /// `None`: as long as it takes.
    pub(crate) limit: Option<Duration>,
    /// Returns the outcome once there is one, taking it in that one step.
    pub(crate) check: C,
    /// The outcome when the limit passes first.
    pub(crate) on_timeout: Result<T, Error>,
}

impl<T, C> Wait<T, C> {
    /// A wait with nothing to clean up.
    pub(crate) fn new(limit: Option<Duration>, check: C, on_timeout: Result<T, Error>) -> Self {
        Self {
            limit,
            check,
            on_timeout,
        }
    }
}

/// Forgets a commit's outcome if nobody took it (the waiting future was
/// dropped, or the wait timed out), so it is dropped on arrival.
pub(crate) struct ForgetCommit {
    shared: Arc<Shared>,
    id: CommitId,
    taken: bool,
}

impl ForgetCommit {
    pub(crate) fn new(shared: Arc<Shared>, id: CommitId) -> Self {
        Self {
            shared,
            id,
            taken: false,
        }
    }

    /// Takes the commit's outcome, once it arrived.
    pub(crate) fn take(&mut self, session: &mut Session) -> Option<Result<(), Error>> {
        let outcome = session.take_commit_result(self.id);
        self.taken |= outcome.is_some();
        outcome
    }
}

impl Drop for ForgetCommit {
    fn drop(&mut self) {
        if !self.taken {
            self.shared.lock().forget_commit(self.id);
        }
    }
}

/// What a connection reports to the driver.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Connected,
    Failed(String),
    Data(Bytes),
    Closed,
}

/// What wakes the driver, one at a time.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Input {
    /// A command changed the core.
    Wake,
    /// A connection reported something.
    Conn(ConnId, Report),
}

/// The driver's inbox: connection reports in order, plus one flag for
/// commands (many wake-ups cost one drain). Waited on asynchronously or
/// with a deadline, so every runtime's driver reads it the same way.
#[derive(Default)]
pub(crate) struct Inbox {
    queue: Mutex<Queue>,
    event: Event,
}

#[derive(Default)]
struct Queue {
    reports: VecDeque<(ConnId, Report)>,
    wake: bool,
    closed: bool,
}

impl Inbox {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a connection's report; false once the driver has stopped.
    pub(crate) fn push(&self, conn: ConnId, report: Report) -> bool {
        {
            let mut queue = self.queue();
            if queue.closed {
                return false;
            }
            queue.reports.push_back((conn, report));
        }
        self.event.notify(1);
        true
    }

    /// Asks the driver to drain the core. Never blocks.
    pub(crate) fn wake(&self) {
        let mut queue = self.queue();
        if !queue.wake && !queue.closed {
            queue.wake = true;
            drop(queue);
            self.event.notify(1);
        }
    }

    /// The driver stopped: refuse further reports.
    pub(crate) fn close(&self) {
        let mut queue = self.queue();
        queue.closed = true;
        queue.reports.clear();
    }

    /// The next input, if any: reports first, in order. Taking anything
    /// clears the wake flag, since the driver drains after every input.
    pub(crate) fn take(&self) -> Option<Input> {
        let mut queue = self.queue();
        let wake = std::mem::take(&mut queue.wake);
        match queue.reports.pop_front() {
            Some((conn, report)) => Some(Input::Conn(conn, report)),
            None => wake.then_some(Input::Wake),
        }
    }

    /// Waits for the next input.
    pub(crate) async fn next(&self) -> Input {
        loop {
            let listener = self.event.listen();
            if let Some(input) = self.take() {
                return input;
            }
            listener.await;
        }
    }

    /// Blocks until the next input, or `deadline` (`None`).
    pub(crate) fn next_until(&self, deadline: Option<Instant>) -> Option<Input> {
        loop {
            let listener = self.event.listen();
            if let Some(input) = self.take() {
                return Some(input);
            }
            match deadline {
                Some(at) => listener.wait_deadline(at)?,
                None => listener.wait(),
            }
        }
    }
}
