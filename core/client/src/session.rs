//! What the driver and the waiting calls share: the consumer, the answers
//! to finished queries and commits, the rebalance listener, and whether the
//! driver stopped (and how). Keeping the dispatch of events here means every
//! runtime treats them the same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use odradek_core::group::dispatch_rebalance;
use odradek_core::metrics::Metrics;
use odradek_core::{
    BuilderParts, CloseOptions, CommitId, CommittedResult, Consumer, ConsumerInterceptor,
    ConsumerRecords, Error, Event, Io, NoopListener, OffsetAndMetadata, OffsetAndTimestamp,
    OffsetsResult, QueryId, RebalanceListener, RuntimeFailure, TopicPartition,
};

/// How much longer than the group's part of a close (its
/// [`CloseOptions`] timeout) `close` waits for the driver to finish:
/// closing connections needs no broker.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How much longer than the request's own timeout a caller waits for a
/// commit, committed-offsets or offsets answer (the core gives up first;
/// the margin only guards against a driver that stopped answering).
pub(crate) const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// What `commit_async` calls with the commit's outcome.
pub(crate) type CommitCallback = Box<dyn FnOnce(Result<(), Error>) + Send>;

/// A commit callback whose commit finished: run it outside the lock.
pub(crate) struct ReadyCallback {
    callback: CommitCallback,
    result: Result<(), Error>,
}

impl ReadyCallback {
    /// Calls the callback with the commit's outcome.
    pub(crate) fn run(self) {
        (self.callback)(self.result);
    }
}

/// How the driver stopped; waiting calls report it once they find nothing
/// else to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stopped {
    /// The consumer was closed (or its runtime dropped the driver).
    Closed,
    /// The driver panicked (in a commit callback, say), with its message.
    Panicked(String),
}

impl Stopped {
    /// The error a waiting call returns once the driver is gone.
    pub(crate) fn error(&self) -> Error {
        match self {
            Stopped::Closed => Error::Closed,
            Stopped::Panicked(message) => {
                Error::Runtime(RuntimeFailure::DriverPanicked(message.clone()))
            }
        }
    }

    /// What `close` returns: closing a closed consumer is fine, closing one
    /// whose driver panicked reports the panic.
    pub(crate) fn close_result(&self) -> Result<(), Error> {
        match self {
            Stopped::Closed => Ok(()),
            Stopped::Panicked(_) => Err(self.error()),
        }
    }
}

/// Which thread is running the rebalance listener. The listener runs while
/// the consumer's lock is held, so a call from the listener back into its
/// own consumer is refused with directions instead of deadlocking.
#[derive(Clone, Default)]
pub(crate) struct ListenerOwner(Arc<Mutex<Option<ThreadId>>>);

impl ListenerOwner {
    /// Panics if the calling thread is the one running the listener: it
    /// called its own consumer, which would deadlock.
    pub(crate) fn check(&self) {
        if *self.running() == Some(std::thread::current().id()) {
            panic!(
                "odradek: a RebalanceListener called its own Consumer; inside the \
                 listener, use the RebalanceContext it is given (commit, seek, pause, ...)"
            );
        }
    }

    /// Marks the calling thread as running the listener until the returned
    /// guard drops (also by a panic).
    fn enter(&self) -> InListener<'_> {
        *self.running() = Some(std::thread::current().id());
        InListener(self)
    }

    fn running(&self) -> MutexGuard<'_, Option<ThreadId>> {
        // Only ever set or cleared: a panic elsewhere cannot leave it torn.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Clears the listener's owner when dropped.
struct InListener<'a>(&'a ListenerOwner);

impl Drop for InListener<'_> {
    fn drop(&mut self) {
        *self.0.running() = None;
    }
}

/// A consumer plus the state its waiting calls read.
pub(crate) struct Session {
    /// The consumer itself.
    pub(crate) core: Consumer,
    query_results: HashMap<QueryId, OffsetsResult>,
    commit_results: HashMap<CommitId, Result<(), Error>>,
    /// Commits nobody waits for: their outcome is dropped on arrival.
    unwatched_commits: HashSet<CommitId>,
    committed_results: HashMap<QueryId, CommittedResult>,
    callbacks: HashMap<CommitId, CommitCallback>,
    /// The listener the builder gave (one that does nothing without).
    builder_listener: Box<dyn RebalanceListener>,
    /// The builder's interceptors, in order.
    interceptors: Interceptors,
    /// The current subscription's own listener; without one, the
    /// builder's hears.
    listener: Option<Box<dyn RebalanceListener>>,
    listener_owner: ListenerOwner,
    stopped: Option<Stopped>,
}

/// Everything a driver must act on after an input: drained in one go, as
/// the sans-IO contract requires.
pub(crate) struct Drained {
    /// Connections to open, bytes to write, connections to close, in order.
    pub(crate) io: Vec<Io>,
    /// When to call `handle_timeout` next.
    pub(crate) timeout: Option<Instant>,
    /// Something happened that waiting calls may care about: wake them.
    pub(crate) wake_waiters: bool,
    /// The consumer is closed: once `io` is done, the driver can stop.
    pub(crate) closed: bool,
    /// Commit callbacks to run, after the lock is released.
    pub(crate) callbacks: Vec<ReadyCallback>,
}

impl Session {
    /// A session around `core` with the builder's `parts` (its listener
    /// hears of rebalances of subscriptions that give none; its
    /// interceptors see records and commits); `listener_owner` hears when
    /// a listener or interceptor runs.
    pub(crate) fn new(core: Consumer, parts: BuilderParts, listener_owner: ListenerOwner) -> Self {
        Self {
            core,
            query_results: HashMap::new(),
            commit_results: HashMap::new(),
            unwatched_commits: HashSet::new(),
            committed_results: HashMap::new(),
            callbacks: HashMap::new(),
            builder_listener: parts
                .rebalance_listener
                .unwrap_or_else(|| Box::new(NoopListener)),
            interceptors: Interceptors::new(parts.interceptors),
            listener: None,
            listener_owner,
            stopped: None,
        }
    }

    /// Drains the consumer's outputs: keeps query answers for their callers,
    /// logs connection problems, and reports what the driver must do.
    pub(crate) fn drain(&mut self) -> Drained {
        let io: Vec<Io> = std::iter::from_fn(|| self.core.poll_io()).collect();
        let mut wake_waiters = false;
        let mut callbacks = Vec::new();
        while let Some(event) = self.core.poll_event() {
            wake_waiters = true;
            match event {
                Event::OffsetsQueryDone { id, result } => {
                    self.query_results.insert(id, result);
                }
                Event::CommitDone { id, result } => {
                    if let Some(callback) = self.callbacks.remove(&id) {
                        callbacks.push(ReadyCallback { callback, result });
                    } else if !self.unwatched_commits.remove(&id) {
                        self.commit_results.insert(id, result);
                    }
                }
                Event::CommittedDone { id, result } => {
                    self.committed_results.insert(id, result);
                }
                Event::Committed { offsets, result } => {
                    let _inside = self.listener_owner.enter();
                    self.interceptors.on_commit(&offsets, &result);
                }
                Event::ConnectionError { broker, reason } => {
                    tracing::warn!(%broker, %reason, "broker connection problem");
                }
                // Waiting calls check the core again on any event.
                _ => {}
            }
        }
        Drained {
            io,
            timeout: self.core.poll_timeout(),
            wake_waiters,
            closed: self.core.is_closed(),
            callbacks,
        }
    }

    /// Hands pending rebalance events to the listener.
    fn dispatch_rebalance(&mut self, now: Instant) {
        let _in_listener = self.listener_owner.enter();
        let listener = match &mut self.listener {
            Some(own) => own.as_mut(),
            None => self.builder_listener.as_mut(),
        };
        dispatch_rebalance(&mut self.core, listener, now);
    }

    /// Polls for at most `max` records, running the rebalance listener
    /// first when the group has news (the poll is the safe point).
    pub(crate) fn take_records(
        &mut self,
        max: usize,
        now: Instant,
    ) -> Result<ConsumerRecords, Error> {
        self.dispatch_rebalance(now);
        let records = self.core.take_records_up_to(max, now);
        self.dispatch_rebalance(now);
        if let Ok(records) = &records {
            if !records.is_empty() {
                let _inside = self.listener_owner.enter();
                self.interceptors.on_consume(records);
            }
        }
        records
    }

    /// The core's metrics, with what the session counts itself.
    pub(crate) fn metrics(&self, now: Instant) -> Metrics {
        let mut metrics = self.core.metrics(now);
        metrics.consumer.interceptor_panics_total = self.interceptors.panics;
        metrics
    }

    /// Subscribes to `topics`; `listener` (or the builder's, or a listener
    /// that does nothing) hears of the rebalances.
    pub(crate) fn subscribe(
        &mut self,
        topics: impl IntoIterator<Item = impl Into<String>>,
        listener: Option<Box<dyn RebalanceListener>>,
        now: Instant,
    ) -> Result<(), Error> {
        self.listener = listener;
        self.core.subscribe(topics, now)
    }

    /// Subscribes to the topics matching `pattern`, like
    /// [`subscribe`](Self::subscribe).
    pub(crate) fn subscribe_pattern(
        &mut self,
        pattern: &str,
        listener: Option<Box<dyn RebalanceListener>>,
        now: Instant,
    ) -> Result<(), Error> {
        self.listener = listener;
        self.core.subscribe_pattern(pattern, now)
    }

    /// Leaves the group; the listener hears of the revocation at once.
    pub(crate) fn unsubscribe(&mut self, now: Instant) -> Result<(), Error> {
        self.core.unsubscribe(now)?;
        self.dispatch_rebalance(now);
        Ok(())
    }

    /// Starts closing (commit, revoke, leave, then the connections), unless
    /// already closed; the driver finishes it.
    pub(crate) fn close(&mut self, options: CloseOptions, now: Instant) {
        if !self.core.is_closed() {
            self.core.close_with(options, now);
            self.dispatch_rebalance(now);
        }
    }

    /// Starts a commit (`None`: the delivered positions) that a caller will
    /// wait for: its id, and how long to wait for
    /// [`take_commit_result`](Self::take_commit_result).
    pub(crate) fn start_commit(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        now: Instant,
    ) -> Result<(CommitId, Duration), Error> {
        let timeout = self.core.config().default_api_timeout;
        let id = self.core.commit(offsets, timeout, now)?;
        Ok((id, timeout + ANSWER_GRACE))
    }

    /// Starts a committed-offsets lookup: its id, and how long to wait for
    /// [`take_committed_result`](Self::take_committed_result).
    pub(crate) fn start_committed(
        &mut self,
        partitions: &[TopicPartition],
        now: Instant,
    ) -> Result<(QueryId, Duration), Error> {
        let timeout = self.core.config().default_api_timeout;
        let id = self.core.committed(partitions, timeout, now)?;
        Ok((id, timeout + ANSWER_GRACE))
    }

    /// Starts a commit whose outcome goes to `callback` (run by the driver,
    /// outside the consumer's lock).
    pub(crate) fn commit_async(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        callback: CommitCallback,
        now: Instant,
    ) -> Result<(), Error> {
        let timeout = self.core.config().default_api_timeout;
        let id = self.core.commit_async(offsets, timeout, now)?;
        match self.commit_results.remove(&id) {
            // Finished at once (nothing to commit).
            Some(result) => callback(result),
            None => {
                self.callbacks.insert(id, callback);
            }
        }
        Ok(())
    }

    /// The answer to query `id`, once it arrived (taken: asked once).
    pub(crate) fn take_query_result(&mut self, id: QueryId) -> Option<OffsetsResult> {
        self.query_results.remove(&id)
    }

    /// The outcome of commit `id`, once it finished (taken: asked once).
    pub(crate) fn take_commit_result(&mut self, id: CommitId) -> Option<Result<(), Error>> {
        self.commit_results.remove(&id)
    }

    /// Forgets commit `id`'s outcome when it arrives (nobody waits for it).
    pub(crate) fn forget_commit(&mut self, id: CommitId) {
        if self.commit_results.remove(&id).is_none() {
            self.unwatched_commits.insert(id);
        }
    }

    /// How many commits' outcomes are to be dropped on arrival.
    #[cfg(test)]
    pub(crate) fn unwatched_commits(&self) -> usize {
        self.unwatched_commits.len()
    }

    /// The answer to committed-offsets lookup `id`, once it arrived (taken).
    pub(crate) fn take_committed_result(&mut self, id: QueryId) -> Option<CommittedResult> {
        self.committed_results.remove(&id)
    }

    /// Records that the driver stopped; the first reason given is kept.
    pub(crate) fn set_stopped(&mut self, stopped: Stopped) {
        self.stopped.get_or_insert(stopped);
    }

    /// How the driver stopped, once it has.
    pub(crate) fn stopped(&self) -> Option<&Stopped> {
        self.stopped.as_ref()
    }
}

/// The offsets of an offsets lookup, -1 where none was found (what
/// `beginning_offsets` and `end_offsets` return).
pub(crate) fn offsets_only(
    found: BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>,
) -> BTreeMap<TopicPartition, i64> {
    found
        .into_iter()
        .map(|(tp, o)| (tp, o.map_or(-1, |o| o.offset)))
        .collect()
}

/// The builder's interceptors, each run inside `catch_unwind`: a panic is
/// logged the first time for each interceptor, counted, and otherwise
/// ignored, so records and commits go on.
struct Interceptors {
    list: Vec<(Box<dyn ConsumerInterceptor>, bool)>,
    panics: u64,
}

impl Interceptors {
    fn new(list: Vec<Box<dyn ConsumerInterceptor>>) -> Self {
        Self {
            list: list.into_iter().map(|i| (i, false)).collect(),
            panics: 0,
        }
    }

    fn on_consume(&mut self, records: &ConsumerRecords) {
        self.each("on_consume", |i| i.on_consume(records));
    }

    fn on_commit(
        &mut self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        result: &Result<(), Error>,
    ) {
        self.each("on_commit", |i| i.on_commit(offsets, result));
    }

    fn each(&mut self, hook: &'static str, call: impl Fn(&dyn ConsumerInterceptor)) {
        for (index, (interceptor, reported)) in self.list.iter_mut().enumerate() {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                call(interceptor.as_ref());
            }));
            if let Err(payload) = outcome {
                self.panics += 1;
                if !*reported {
                    *reported = true;
                    let message = panic_message(payload.as_ref());
                    tracing::error!(
                        interceptor = index,
                        hook,
                        %message,
                        "an interceptor panicked; it keeps being called, and its panics only counted"
                    );
                }
            }
        }
    }
}

/// The text of a panic payload, when it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
