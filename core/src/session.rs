//! What an adapter shares between its driver and its users: the consumer,
//! the answers to finished offset queries, and whether the driver stopped.
//! Keeping the dispatch of events here means every adapter treats them the
//! same way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::conn::Io;
use crate::consumer::{CommitId, CommittedResult, Consumer, Event, OffsetsResult, QueryId};
use crate::error::Error;
use crate::group::{NoopListener, RebalanceListener, dispatch_rebalance};
use crate::types::{ConsumerRecords, OffsetAndMetadata, OffsetAndTimestamp, TopicPartition};

/// How long a group member may spend committing and leaving when closed;
/// adapters give their whole close a little longer.
pub const GROUP_CLOSE_TIMEOUT: Duration = Duration::from_secs(4);

/// How long an adapter's `close` waits for its driver to finish: the
/// group's part, then closing connections (which needs no broker).
pub const CLOSE_TIMEOUT: Duration = GROUP_CLOSE_TIMEOUT.saturating_add(Duration::from_secs(1));

/// How much longer than the request's own timeout a caller waits for a
/// commit or committed-offsets answer (the core gives up first).
const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// What `commit_async` calls with the commit's outcome.
pub type CommitCallback = Box<dyn FnOnce(Result<(), Error>) + Send>;

/// A commit callback whose commit finished: run it outside the lock.
pub struct ReadyCallback {
    callback: CommitCallback,
    result: Result<(), Error>,
}

impl ReadyCallback {
    /// Calls the callback with the commit's outcome.
    pub fn run(self) {
        (self.callback)(self.result);
    }
}

impl std::fmt::Debug for ReadyCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyCallback")
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

/// A consumer plus the state its adapter's waiting calls read.
pub struct Session {
    /// The consumer itself.
    pub core: Consumer,
    query_results: HashMap<QueryId, OffsetsResult>,
    commit_results: HashMap<CommitId, Result<(), Error>>,
    /// Commits nobody waits for: their outcome is dropped on arrival.
    unwatched_commits: HashSet<CommitId>,
    committed_results: HashMap<QueryId, CommittedResult>,
    callbacks: HashMap<CommitId, CommitCallback>,
    listener: Box<dyn RebalanceListener>,
    listener_scope: Option<ListenerScope>,
    finished: bool,
}

/// Told `true` just before the rebalance listener runs and `false` right
/// after (also if it panics); see [`Session::set_listener_scope`].
pub type ListenerScope = Box<dyn Fn(bool) + Send>;

/// Which caller is running the rebalance listener, for adapters whose
/// listener runs under their lock: `T` names a caller (an adapter uses its
/// thread id), so a call from the listener back into its own consumer is
/// refused with directions instead of deadlocking on that lock.
pub struct ListenerOwner<T> {
    running: Arc<Mutex<Option<T>>>,
    current: fn() -> T,
}

impl<T> Clone for ListenerOwner<T> {
    fn clone(&self) -> Self {
        Self {
            running: self.running.clone(),
            current: self.current,
        }
    }
}

impl<T: PartialEq + Send + 'static> ListenerOwner<T> {
    /// Nobody runs the listener yet; `current` names the calling caller.
    pub fn new(current: fn() -> T) -> Self {
        Self {
            running: Arc::new(Mutex::new(None)),
            current,
        }
    }

    /// The hook to give [`Session::set_listener_scope`].
    pub fn scope(&self) -> ListenerScope {
        let owner = self.clone();
        Box::new(move |active| *owner.running() = active.then(owner.current))
    }

    /// Panics if the caller is the one running the listener: it called its
    /// own consumer, which would deadlock.
    pub fn check(&self) {
        if *self.running() == Some((self.current)()) {
            panic!(
                "odradek: a RebalanceListener called its own Consumer; inside the \
                 listener, use the RebalanceContext it is given (commit, seek, pause, ...)"
            );
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<T>> {
        // Only ever set or cleared: a panic elsewhere cannot leave it torn.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Reports the end of a listener scope when dropped, even by a panic.
struct InListener<'a>(Option<&'a ListenerScope>);

impl<'a> InListener<'a> {
    fn enter(scope: Option<&'a ListenerScope>) -> Self {
        if let Some(scope) = scope {
            scope(true);
        }
        InListener(scope)
    }
}

impl Drop for InListener<'_> {
    fn drop(&mut self) {
        if let Some(scope) = self.0 {
            scope(false);
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("core", &self.core)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

/// Everything a driver must act on after an input: drained in one go, as
/// the sans-IO contract requires.
#[derive(Debug)]
pub struct Drained {
    /// Connections to open, bytes to write, connections to close, in order.
    pub io: Vec<Io>,
    /// When to call `handle_timeout` next.
    pub timeout: Option<Instant>,
    /// Something happened that waiting calls may care about: wake them.
    pub wake_waiters: bool,
    /// The consumer is closed: once `io` is done, the driver can stop.
    pub closed: bool,
    /// Commit callbacks to run, after the lock is released.
    pub callbacks: Vec<ReadyCallback>,
}

impl Session {
    /// A session around `core`.
    pub fn new(core: Consumer) -> Self {
        Self {
            core,
            query_results: HashMap::new(),
            commit_results: HashMap::new(),
            unwatched_commits: HashSet::new(),
            committed_results: HashMap::new(),
            callbacks: HashMap::new(),
            listener: Box::new(NoopListener),
            listener_scope: None,
            finished: false,
        }
    }

    /// Drains the consumer's outputs: keeps query answers for their callers,
    /// logs connection problems, and reports what the driver must do.
    pub fn drain(&mut self) -> Drained {
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
                Event::ConnectionError { broker, reason } => {
                    tracing::warn!(%broker, %reason, "broker connection problem");
                }
                Event::PollReady | Event::PositionsChanged | Event::Closed => {}
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

    /// Sets the listener that hears of rebalances.
    pub fn set_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = listener;
    }

    /// Lets the adapter know when the rebalance listener runs: it runs
    /// while the adapter's lock is held, so the adapter can refuse calls the
    /// listener makes into the consumer itself (they would deadlock) and
    /// point to the [`RebalanceContext`](crate::RebalanceContext) instead.
    pub fn set_listener_scope(&mut self, scope: ListenerScope) {
        self.listener_scope = Some(scope);
    }

    /// Hands pending rebalance events to the listener.
    pub fn dispatch_rebalance(&mut self, now: Instant) {
        let _in_listener = InListener::enter(self.listener_scope.as_ref());
        dispatch_rebalance(&mut self.core, self.listener.as_mut(), now);
    }

    /// Polls for at most `max` records, running the rebalance listener
    /// first when the group has news (the poll is the safe point).
    pub fn take_records(
        &mut self,
        max: usize,
        now: Instant,
    ) -> Result<ConsumerRecords, crate::Error> {
        self.dispatch_rebalance(now);
        let records = self.core.take_records_up_to(max, now);
        self.dispatch_rebalance(now);
        records
    }

    /// Subscribes to `topics`; `listener` (or a listener that does nothing)
    /// hears of the rebalances.
    pub fn subscribe(
        &mut self,
        topics: impl IntoIterator<Item = impl Into<String>>,
        listener: Option<Box<dyn RebalanceListener>>,
        now: Instant,
    ) -> Result<(), Error> {
        self.listener = listener.unwrap_or_else(|| Box::new(NoopListener));
        self.core.subscribe(topics, now)
    }

    /// Subscribes to the topics matching `pattern`, like
    /// [`subscribe`](Self::subscribe).
    pub fn subscribe_pattern(
        &mut self,
        pattern: &str,
        listener: Option<Box<dyn RebalanceListener>>,
        now: Instant,
    ) -> Result<(), Error> {
        self.listener = listener.unwrap_or_else(|| Box::new(NoopListener));
        self.core.subscribe_pattern(pattern, now)
    }

    /// Leaves the group; the listener hears of the revocation at once.
    pub fn unsubscribe(&mut self, now: Instant) -> Result<(), Error> {
        self.core.unsubscribe(now)?;
        self.dispatch_rebalance(now);
        Ok(())
    }

    /// Starts closing (commit, revoke, leave, then the connections), unless
    /// already closed; the driver finishes it.
    pub fn close(&mut self, now: Instant) {
        if !self.core.is_closed() {
            self.core.close_gracefully(GROUP_CLOSE_TIMEOUT, now);
            self.dispatch_rebalance(now);
        }
    }

    /// Starts a commit (`None`: the delivered positions) that a caller will
    /// wait for: its id, and how long to wait for
    /// [`take_commit_result`](Self::take_commit_result).
    pub fn start_commit(
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
    pub fn start_committed(
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
    pub fn commit_async(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        callback: CommitCallback,
        now: Instant,
    ) -> Result<(), crate::Error> {
        let timeout = self.core.config().default_api_timeout;
        let id = self.core.commit(offsets, timeout, now)?;
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
    pub fn take_query_result(&mut self, id: QueryId) -> Option<OffsetsResult> {
        self.query_results.remove(&id)
    }

    /// The outcome of commit `id`, once it finished (taken: asked once).
    pub fn take_commit_result(&mut self, id: CommitId) -> Option<Result<(), Error>> {
        self.commit_results.remove(&id)
    }

    /// Forgets commit `id`'s outcome when it arrives (nobody waits for it).
    pub fn forget_commit(&mut self, id: CommitId) {
        if self.commit_results.remove(&id).is_none() {
            self.unwatched_commits.insert(id);
        }
    }

    /// The answer to committed-offsets lookup `id`, once it arrived (taken).
    pub fn take_committed_result(&mut self, id: QueryId) -> Option<CommittedResult> {
        self.committed_results.remove(&id)
    }

    /// Marks that the driver has stopped: waiting calls return `Closed`.
    pub fn set_finished(&mut self) {
        self.finished = true;
    }

    /// True once the driver has stopped.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// The offsets of an offsets lookup, -1 where none was found (what
/// `beginning_offsets` and `end_offsets` return).
pub fn offsets_only(
    found: BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>,
) -> BTreeMap<TopicPartition, i64> {
    found
        .into_iter()
        .map(|(tp, o)| (tp, o.map_or(-1, |o| o.offset)))
        .collect()
}
