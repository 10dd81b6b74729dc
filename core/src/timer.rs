//! The timer table: every deadline the consumer keeps, by what it is for.
//!
//! One table, so [`Consumer::poll_timeout`](crate::Consumer::poll_timeout)
//! is its minimum and nothing else; each input first fires the timers that
//! expired (removing them), so the minimum left is always in the future.
//! Backoffs are timers too: a request may be retried once its backoff timer
//! is gone from the table.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::conn::Node;
use crate::consumer::{CommitId, QueryId};
use crate::types::{ConnId, TopicPartition};

/// The finest step a timer takes: a deadline is never set closer to the
/// table's present than this, so a zero backoff cannot make the consumer
/// spin on a deadline that is always due.
pub(crate) const GRANULARITY: Duration = Duration::from_millis(1);

/// What a deadline is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Timer {
    // ---- connections ----
    /// A connection's setup or one of its requests runs out of time.
    Connection(ConnId),
    /// A broker may be connected again (reconnect backoff).
    Reconnect(Node),
    // ---- cluster metadata ----
    /// Metadata is older than `metadata.max.age.ms`: refresh it.
    MetadataRefresh,
    /// Metadata may be requested again (backoff).
    MetadataRetry,
    // ---- fetching and offsets ----
    /// A partition's fetch or offset reset may be retried.
    PartitionRetry(TopicPartition),
    /// An offsets query runs out of time.
    QueryDeadline(QueryId),
    /// One partition of an offsets query may be asked for again.
    QueryRetry(QueryId, TopicPartition),
    // ---- the group ----
    /// The coordinator may be looked up again.
    FindCoordinator,
    /// A JoinGroup may be sent again.
    JoinRetry,
    /// A heartbeat is due.
    Heartbeat,
    /// No heartbeat got through for a whole session.
    SessionExpiry,
    /// Half of `max.poll.interval.ms` passed since the last poll: wake a
    /// waiting poll so it restarts the timer.
    PollHalfway,
    /// `max.poll.interval.ms` passed since the last poll.
    PollInterval,
    /// `auto.commit.interval.ms` passed.
    AutoCommit,
    /// A commit runs out of time.
    CommitDeadline(CommitId),
    /// A commit may be retried.
    CommitRetry(CommitId),
    /// A committed-offsets lookup runs out of time.
    CommittedDeadline(QueryId),
    /// A committed-offsets lookup may be retried.
    CommittedRetry(QueryId),
    /// The committed offsets of new partitions may be asked for again.
    PositionsFetchRetry,
    /// A graceful close runs out of time.
    Close,
}

/// Deadlines by timer, ordered for the next one.
#[derive(Debug)]
pub(crate) struct TimerTable {
    /// The time of the latest input.
    now: Instant,
    deadlines: HashMap<Timer, Instant>,
    order: BTreeSet<(Instant, Timer)>,
}

impl TimerTable {
    /// An empty table whose present is `now`.
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            now,
            deadlines: HashMap::new(),
            order: BTreeSet::new(),
        }
    }

    /// Moves the table's present to `now` (never backwards).
    pub(crate) fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Sets `timer` to go off at `at`, replacing its earlier deadline. A
    /// deadline not after the present is moved to one [`GRANULARITY`] past it.
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        let at = at.max(self.now + GRANULARITY);
        if let Some(old) = self.deadlines.insert(timer.clone(), at) {
            self.order.remove(&(old, timer.clone()));
        }
        self.order.insert((at, timer));
    }

    /// Sets `timer` unless it is set already.
    pub(crate) fn set_if_unset(&mut self, timer: Timer, at: Instant) {
        if !self.is_set(&timer) {
            self.set(timer, at);
        }
    }

    /// Stops `timer`, if set.
    pub(crate) fn stop(&mut self, timer: &Timer) {
        if let Some(at) = self.deadlines.remove(timer) {
            self.order.remove(&(at, timer.clone()));
        }
    }

    /// True while `timer` is set.
    pub(crate) fn is_set(&self, timer: &Timer) -> bool {
        self.deadlines.contains_key(timer)
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer whose deadline is not after
    /// the present.
    pub(crate) fn pop_expired(&mut self) -> Option<Timer> {
        let (at, _) = self.order.first()?;
        if *at > self.now {
            return None;
        }
        let (_, timer) = self.order.pop_first()?;
        self.deadlines.remove(&timer);
        Some(timer)
    }

    /// Removes every timer (the consumer closed).
    pub(crate) fn clear(&mut self) {
        self.deadlines.clear();
        self.order.clear();
    }
}
