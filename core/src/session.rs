//! What an adapter shares between its driver and its users: the consumer,
//! the answers to finished offset queries, and whether the driver stopped.
//! Keeping the dispatch of events here means every adapter treats them the
//! same way.

use std::collections::HashMap;
use std::time::Instant;

use crate::conn::Io;
use crate::consumer::{Consumer, Event, OffsetsResult, QueryId};

/// A consumer plus the state its adapter's waiting calls read.
#[derive(Debug)]
pub struct Session {
    /// The consumer itself.
    pub core: Consumer,
    query_results: HashMap<QueryId, OffsetsResult>,
    finished: bool,
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
}

impl Session {
    /// A session around `core`.
    pub fn new(core: Consumer) -> Self {
        Self {
            core,
            query_results: HashMap::new(),
            finished: false,
        }
    }

    /// Drains the consumer's outputs: keeps query answers for their callers,
    /// logs connection problems, and reports what the driver must do.
    pub fn drain(&mut self) -> Drained {
        let io: Vec<Io> = std::iter::from_fn(|| self.core.poll_io()).collect();
        let mut wake_waiters = false;
        while let Some(event) = self.core.poll_event() {
            wake_waiters = true;
            match event {
                Event::OffsetsQueryDone { id, result } => {
                    self.query_results.insert(id, result);
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
        }
    }

    /// The answer to query `id`, once it arrived (taken: asked once).
    pub fn take_query_result(&mut self, id: QueryId) -> Option<OffsetsResult> {
        self.query_results.remove(&id)
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
