//! Partition assignors: how the group leader splits the subscribed topics'
//! partitions among the members. Each is a pure function of the members'
//! subscriptions and the partition counts; [`PartitionAssignor`] lets an
//! application plug in its own.
//!
//! - [`RangeAssignor`] (`range`, the default): per topic, consecutive ranges.
//! - [`RoundRobinAssignor`] (`roundrobin`): all partitions dealt in turn.
//! - [`StickyAssignor`] (`sticky`): balanced, moving as few partitions as
//!   possible between generations.
//! - [`CooperativeStickyAssignor`] (`cooperative-sticky`): sticky, for the
//!   cooperative protocol: a partition changing owner is first revoked, and
//!   only handed to its new owner in the next generation.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::types::TopicPartition;

mod range;
mod round_robin;
mod sticky;
#[cfg(test)]
mod tests;

pub use range::RangeAssignor;
pub use round_robin::RoundRobinAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};

/// The most partitions (summed over the subscribed topics) the built-in
/// assignors accept; past it they return an [`AssignError`] rather than
/// try to allocate an assignment of that size. Far above what any real
/// group subscribes to, it only stops absurd metadata.
pub const MAX_ASSIGNABLE_PARTITIONS: usize = 1 << 23;

/// The two rebalance protocols (KIP-429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before the group rebalances.
    Eager,
    /// Members keep their partitions through a rebalance and give up only
    /// those that move, which the next rebalance hands to their new owner.
    Cooperative,
}

/// One member of the group as the leader's assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// The member's static identity (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The topics it subscribes to.
    pub topics: Vec<String>,
    /// The partitions it owns now (subscription v1+; empty before).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation its owned partitions come from (subscription v2+), or
    /// -1 when unknown.
    pub generation: i32,
    /// The member's rack (`client.rack`), if any.
    pub rack_id: Option<String>,
    /// Data the member's assignor added to its subscription.
    pub user_data: Option<Bytes>,
}

/// What the assignor gives one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The member's partitions.
    pub partitions: Vec<TopicPartition>,
    /// Data for the member's assignor.
    pub user_data: Option<Bytes>,
}

/// Why an assignment could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("assignor `{assignor}` failed: {reason}")]
pub struct AssignError {
    /// The assignor's name.
    pub assignor: String,
    /// What went wrong.
    pub reason: String,
}

/// A strategy for splitting partitions among group members.
///
/// The leader calls [`assign`](Self::assign) with every member's
/// subscription; the result must give each partition of a subscribed topic
/// to exactly one member that subscribes to its topic.
pub trait PartitionAssignor: fmt::Debug + Send + Sync {
    /// The protocol name members advertise in JoinGroup (`range`, ...).
    fn name(&self) -> &str;

    /// The rebalance protocols this assignor supports, preferred last.
    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    /// Data this member adds to its subscription for the leader's assignor.
    fn subscription_user_data(&self, _topics: &[String]) -> Option<Bytes> {
        None
    }

    /// Splits the partitions of `partitions_per_topic` (topic → partition
    /// count; topics absent from it are ignored) among `members`. Returns
    /// an entry for every member, possibly with no partitions.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>, AssignError>;
}

// ---------------------------------------------------------------------------
// Helpers shared by the built-in assignors.
// ---------------------------------------------------------------------------

/// Compares two strings as Java's `String.compareTo` does (UTF-16 code
/// units), so member and topic orders match the Java client's even for
/// names outside the Basic Multilingual Plane.
fn java_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The member order of Java's `AbstractPartitionAssignor.MemberInfo`:
/// static members (with a `group.instance.id`) first, ordered by instance
/// id, then dynamic members by member id. Ties (duplicate instance ids,
/// which the coordinator forbids) fall back to the member id so the order
/// is total.
fn member_info_cmp(a: &MemberSubscription, b: &MemberSubscription) -> Ordering {
    match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y).then_with(|| java_cmp(&a.member_id, &b.member_id)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => java_cmp(&a.member_id, &b.member_id),
    }
}

/// One topic that at least one member subscribes to and that has
/// partitions.
#[derive(Debug)]
struct Topic {
    name: Arc<str>,
    /// Partition count, at least 1.
    partitions: u32,
}

/// The validated input every built-in assignor starts from.
#[derive(Debug)]
struct Prepared {
    /// Subscribed topics with partitions, in Java's string order.
    topics: Vec<Topic>,
    /// Per member (in input order): indices into `topics` of the topics it
    /// subscribes to, sorted and without duplicates.
    member_topics: Vec<Vec<usize>>,
}

impl Prepared {
    /// Validates `members` (unique member ids), keeps the subscribed topics
    /// `partitions_per_topic` knows with a positive count (negative counts
    /// count as 0) and checks the total against
    /// [`MAX_ASSIGNABLE_PARTITIONS`].
    fn new(
        assignor: &str,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<Self, AssignError> {
        let mut ids = BTreeSet::new();
        for member in members {
            if !ids.insert(member.member_id.as_str()) {
                return Err(AssignError {
                    assignor: assignor.to_owned(),
                    reason: format!("duplicate member id `{}`", member.member_id),
                });
            }
        }

        let subscribed: BTreeSet<&str> = members
            .iter()
            .flat_map(|m| m.topics.iter().map(String::as_str))
            .collect();
        let mut topics: Vec<Topic> = Vec::new();
        let mut total: usize = 0;
        for name in subscribed {
            let count = partitions_per_topic.get(name).copied().unwrap_or(0);
            // Negative or zero: nothing to assign (Java skips such topics too).
            let Ok(count) = u32::try_from(count) else {
                continue;
            };
            if count == 0 {
                continue;
            }
            total = total.saturating_add(count as usize);
            if total > MAX_ASSIGNABLE_PARTITIONS {
                return Err(AssignError {
                    assignor: assignor.to_owned(),
                    reason: format!(
                        "the subscribed topics have more than {MAX_ASSIGNABLE_PARTITIONS} partitions"
                    ),
                });
            }
            topics.push(Topic {
                name: Arc::from(name),
                partitions: count,
            });
        }
        // BTreeSet gave byte order; Java sorts by UTF-16 units.
        topics.sort_by(|a, b| java_cmp(&a.name, &b.name));

        let index: BTreeMap<&str, usize> = topics
            .iter()
            .enumerate()
            .map(|(i, t)| (&*t.name, i))
            .collect();
        let member_topics = members
            .iter()
            .map(|m| {
                let mut ts: Vec<usize> = m
                    .topics
                    .iter()
                    .filter_map(|t| index.get(t.as_str()).copied())
                    .collect();
                ts.sort_unstable();
                ts.dedup();
                ts
            })
            .collect();
        Ok(Self {
            topics,
            member_topics,
        })
    }

    /// The index of topic `name` in `topics`, if it is there.
    fn topic_index(&self, name: &str) -> Option<usize> {
        self.topics
            .binary_search_by(|t| java_cmp(&t.name, name))
            .ok()
    }
}

/// Builds the result map from per-member partition lists (in the same
/// order as `members`), sorting each list.
fn into_assignment(
    members: &[MemberSubscription],
    partitions: Vec<Vec<TopicPartition>>,
) -> BTreeMap<String, MemberAssignment> {
    members
        .iter()
        .zip(partitions)
        .map(|(member, mut partitions)| {
            partitions.sort_unstable();
            (
                member.member_id.clone(),
                MemberAssignment {
                    partitions,
                    user_data: None,
                },
            )
        })
        .collect()
}
