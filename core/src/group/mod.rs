//! Consumer groups.
//!
//! Public: the assignors the leader runs ([`assignor`], [`Assignors`]), the
//! rebalance listener ([`RebalanceListener`]) and what a rebalance tells the
//! application ([`RebalanceEvent`], [`GroupMetadata`]).
//!
//! Inside, the consumer's part in its group is a set of machines that own
//! their state and hand the consumer actions to apply to its partitions:
//! `coordinator` (finding and following the coordinator, by term),
//! `member` (the classic join / sync / heartbeat / leave protocol),
//! `commits` (the commit queue, auto-commit, committed lookups), tied
//! together by `consumer_group`.

pub mod assignor;
pub(crate) mod commits;
pub(crate) mod consumer_group;
mod coordinator;
mod listener;
mod member;

pub use listener::{NoopListener, RebalanceContext, RebalanceListener, dispatch_rebalance};

use std::fmt;
use std::sync::Arc;

use assignor::{
    CooperativeStickyAssignor, PartitionAssignor, RangeAssignor, RebalanceProtocol,
    RoundRobinAssignor, StickyAssignor,
};

/// A built-in partition assignment strategy, for the builder
/// (`ConsumerBuilder::assignment_strategy`) beside the property names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PartitionAssignmentStrategy {
    /// `range`: each topic's partitions in ranges over the members (eager).
    Range,
    /// `roundrobin`: all partitions dealt round the members (eager).
    RoundRobin,
    /// `sticky`: balanced, moving as few partitions as possible (eager).
    Sticky,
    /// `cooperative-sticky`: sticky, with incremental cooperative
    /// rebalances (KIP-429): members keep what does not move.
    CooperativeSticky,
}

impl PartitionAssignmentStrategy {
    /// The assignor's protocol name (`range`, `cooperative-sticky`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Range => "range",
            Self::RoundRobin => "roundrobin",
            Self::Sticky => "sticky",
            Self::CooperativeSticky => "cooperative-sticky",
        }
    }

    fn assignor(self) -> Arc<dyn PartitionAssignor> {
        match self {
            Self::Range => Arc::new(RangeAssignor),
            Self::RoundRobin => Arc::new(RoundRobinAssignor),
            Self::Sticky => Arc::new(StickyAssignor),
            Self::CooperativeSticky => Arc::new(CooperativeStickyAssignor),
        }
    }
}

impl From<PartitionAssignmentStrategy> for Assignors {
    fn from(strategy: PartitionAssignmentStrategy) -> Self {
        Self(vec![strategy.assignor()])
    }
}

impl FromIterator<PartitionAssignmentStrategy> for Assignors {
    fn from_iter<I: IntoIterator<Item = PartitionAssignmentStrategy>>(strategies: I) -> Self {
        Self(strategies.into_iter().map(|s| s.assignor()).collect())
    }
}

/// The assignors a member supports (`partition.assignment.strategy`),
/// preferred first. The group's leader uses the first one every member
/// supports.
#[derive(Clone)]
pub struct Assignors(Vec<Arc<dyn PartitionAssignor>>);

impl Assignors {
    /// A list of assignors, preferred first; built-in and custom ones mix.
    pub fn new(assignors: Vec<Arc<dyn PartitionAssignor>>) -> Self {
        Self(assignors)
    }

    /// Built-in assignors from a comma-separated list of names, short
    /// (`range`, `roundrobin`, `sticky`, `cooperative-sticky`) or Java class
    /// names. On failure, says what is accepted.
    pub fn from_names(value: &str) -> Result<Self, String> {
        let mut list: Vec<Arc<dyn PartitionAssignor>> = Vec::new();
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let short = name.rsplit('.').next().unwrap_or(name);
            let strategy = match short {
                "range" | "RangeAssignor" => PartitionAssignmentStrategy::Range,
                "roundrobin" | "RoundRobinAssignor" => PartitionAssignmentStrategy::RoundRobin,
                "sticky" | "StickyAssignor" => PartitionAssignmentStrategy::Sticky,
                "cooperative-sticky" | "CooperativeStickyAssignor" => {
                    PartitionAssignmentStrategy::CooperativeSticky
                }
                _ => {
                    return Err(format!(
                        "a list of range, roundrobin, sticky, cooperative-sticky (not `{name}`)"
                    ));
                }
            };
            list.push(strategy.assignor());
        }
        Ok(Self(list))
    }

    /// The assignors' protocol names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|a| a.name()).collect()
    }

    /// True if the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The assignors, preferred first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn PartitionAssignor>> {
        self.0.iter()
    }

    /// The assignor called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn PartitionAssignor>> {
        self.0.iter().find(|a| a.name() == name)
    }

    /// The rebalance protocol the member follows: cooperative only if every
    /// configured assignor supports it (as the Java client decides).
    pub fn protocol(&self) -> RebalanceProtocol {
        let all_cooperative = !self.0.is_empty()
            && self.0.iter().all(|a| {
                a.supported_protocols()
                    .contains(&RebalanceProtocol::Cooperative)
            });
        if all_cooperative {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }
}

impl Default for Assignors {
    /// The Java client's default: `range`, then `cooperative-sticky`.
    fn default() -> Self {
        Self(vec![
            Arc::new(RangeAssignor),
            Arc::new(CooperativeStickyAssignor),
        ])
    }
}

impl PartialEq for Assignors {
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names()
    }
}

impl fmt::Debug for Assignors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Who a consumer is in its group, as
/// [`Consumer::group_metadata`](crate::Consumer::group_metadata) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadata {
    /// The group (`group.id`).
    pub group_id: String,
    /// The current generation, or -1 while (re)joining.
    pub generation_id: i32,
    /// The member id the coordinator gave, or empty while (re)joining.
    pub member_id: String,
    /// The static member id (`group.instance.id`), if configured.
    pub group_instance_id: Option<String>,
    /// This member is the generation's leader: it ran the assignor.
    pub leader: bool,
}

/// What a rebalance tells the application, in the order it happens. The
/// consumer waits at [`Revoked`](Self::Revoked) and [`Lost`](Self::Lost)
/// until the application acknowledges (see
/// [`Consumer::ack_rebalance`](crate::Consumer::ack_rebalance)), so offsets
/// committed while handling a revocation are committed before the
/// partitions move to another member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// These partitions were added to the assignment. Their positions come
    /// from the committed offsets (or `auto.offset.reset`) unless the
    /// application seeks.
    Assigned(Vec<crate::TopicPartition>),
    /// These partitions are about to go to another member: the last chance
    /// to commit their offsets.
    Revoked(Vec<crate::TopicPartition>),
    /// These partitions may already belong to another member (the session
    /// expired or the generation moved on): nothing is committed for them.
    Lost(Vec<crate::TopicPartition>),
}
