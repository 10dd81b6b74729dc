//! Finding the group's coordinator and following it when it moves.
//!
//! Every coordinator found opens a new [`Term`]; requests to it carry that
//! term, and only a report about the current term can make the group look
//! for its coordinator again. A former coordinator's late failure is thereby
//! ignored by construction.

use crate::backoff::Retry;
use crate::protocol::ErrorCode;
use crate::protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use crate::timer::Timer;
use crate::types::{BrokerAddress, BrokerId};

use super::consumer_group::GroupCtx;

/// One coordinator, from being found until it is lost: what a request to
/// the coordinator was sent under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Term(u64);

/// The coordinator the group talks to.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    pub(crate) broker: BrokerId,
    pub(crate) address: BrokerAddress,
    pub(crate) term: Term,
}

/// What a FindCoordinator answer meant.
#[derive(Debug)]
pub(crate) enum Found {
    /// A coordinator; the one before it (another broker) is no longer
    /// needed.
    Coordinator { moved_from: Option<BrokerId> },
    /// The group may not be used: an error for the application, and the
    /// lookup is retried after a backoff.
    Refused(ErrorCode),
    /// No answer worth keeping: retried after a backoff.
    Retry,
}

#[derive(Debug)]
pub(crate) struct Coordinator {
    group_id: String,
    current: Option<Current>,
    /// The broker of the last coordinator lost: its connection closes if
    /// the group turns out to have moved elsewhere.
    previous: Option<BrokerId>,
    find: Retry,
    terms: u64,
}

impl Coordinator {
    pub(crate) fn new(group_id: String) -> Self {
        Self {
            group_id,
            current: None,
            previous: None,
            find: Retry::new(Timer::FindCoordinator),
            terms: 0,
        }
    }

    /// The coordinator, if known.
    pub(crate) fn current(&self) -> Option<&Current> {
        self.current.as_ref()
    }

    /// True while `term` is the current coordinator's.
    pub(crate) fn is_current(&self, term: Term) -> bool {
        self.current.as_ref().is_some_and(|c| c.term == term)
    }

    /// The coordinator of `term` failed or said it is not the coordinator:
    /// find it again. Returns false (and does nothing) if the group has
    /// already left that coordinator.
    pub(crate) fn lost(&mut self, term: Term) -> bool {
        if !self.is_current(term) {
            return false;
        }
        self.previous = self.current.take().map(|c| c.broker);
        true
    }

    /// The FindCoordinator to send now, if the coordinator is unknown and
    /// no lookup is in flight or backing off.
    pub(crate) fn find_request(&self, ctx: &GroupCtx<'_>) -> Option<FindCoordinatorRequest> {
        if self.current.is_some() || !self.find.ready(ctx.timers) {
            return None;
        }
        Some(FindCoordinatorRequest {
            key: self.group_id.clone(),
            key_type: 0,
            coordinator_keys: vec![self.group_id.clone()],
        })
    }

    /// The lookup went out.
    pub(crate) fn find_sent(&mut self) {
        self.find.sent();
    }

    /// The lookup's answer (`None`: it failed or was unreadable).
    pub(crate) fn on_found(
        &mut self,
        response: Option<FindCoordinatorResponse>,
        ctx: &mut GroupCtx<'_>,
    ) -> Found {
        self.find.settled();
        let found = response.and_then(|r| {
            // v4+ answers per key; older versions at the top level.
            let (code, node_id, host, port) = match r.coordinators.first() {
                Some(c) => (c.error_code, c.node_id, c.host.clone(), c.port),
                None => (r.error_code, r.node_id, r.host.clone(), r.port),
            };
            let code = ErrorCode(code);
            if code == ErrorCode::GROUP_AUTHORIZATION_FAILED {
                return Some(Err(code));
            }
            let port = u16::try_from(port).ok()?;
            (code.is_ok() && node_id >= 0)
                .then(|| Ok((BrokerId(node_id), BrokerAddress::new(host, port))))
        });
        match found {
            Some(Ok((broker, address))) => {
                let moved_from = self.previous.take().filter(|&old| old != broker);
                self.terms += 1;
                self.current = Some(Current {
                    broker,
                    address,
                    term: Term(self.terms),
                });
                self.find.succeeded(ctx.timers);
                Found::Coordinator { moved_from }
            }
            Some(Err(code)) => {
                self.find.failed(ctx.now, ctx.backoff, ctx.timers);
                Found::Refused(code)
            }
            None => {
                self.find.failed(ctx.now, ctx.backoff, ctx.timers);
                Found::Retry
            }
        }
    }
}
