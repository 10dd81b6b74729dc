//! The `range` assignor.

use std::collections::BTreeMap;

use super::{
    AssignError, MemberAssignment, MemberSubscription, PartitionAssignor, Prepared,
    RebalanceProtocol, into_assignment, member_info_cmp,
};
use crate::types::TopicPartition;

/// The `range` assignor, Kafka's default: topic by topic, the partitions in
/// numeric order are cut into consecutive ranges, one per subscribed
/// member, and the first `partitions % members` members get one partition
/// more.
///
/// Members are ordered as in the Java client: static members (with a
/// `group.instance.id`) first, by instance id, then dynamic members by
/// member id. Static members therefore keep their ranges across restarts
/// as long as the group's membership and subscriptions stay the same.
///
/// With two members `C0`, `C1` and topics `t0`, `t1` of three partitions
/// each, `C0` gets `t0-0, t0-1, t1-0, t1-1` and `C1` gets `t0-2, t1-2`.
///
/// Unlike the Java client's (since 3.5, KIP-881) this assignor is not rack
/// aware: the assignor interface carries no partition replica racks, so
/// `rack_id` is ignored and the result is the non-rack-aware one. Each
/// member's partitions come sorted.
#[derive(Debug, Default, Clone)]
pub struct RangeAssignor;

impl PartitionAssignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>, AssignError> {
        let prepared = Prepared::new(self.name(), partitions_per_topic, members)?;

        // Subscribers of each topic, in member order.
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|&a, &b| member_info_cmp(&members[a], &members[b]));
        let mut subscribers: Vec<Vec<usize>> = vec![Vec::new(); prepared.topics.len()];
        for &m in &order {
            for &t in &prepared.member_topics[m] {
                subscribers[t].push(m);
            }
        }

        let mut result: Vec<Vec<TopicPartition>> = vec![Vec::new(); members.len()];
        for (topic, subs) in prepared.topics.iter().zip(&subscribers) {
            // Every topic in `prepared` has a subscriber; the guard only
            // keeps the division safe.
            let Ok(count) = u32::try_from(subs.len()) else {
                continue;
            };
            if count == 0 {
                continue;
            }
            let per_member = topic.partitions / count;
            let with_extra = topic.partitions % count;
            let mut next = 0u32;
            for (i, &m) in (0u32..).zip(subs) {
                let len = per_member + u32::from(i < with_extra);
                result[m].extend(
                    (next..next + len).map(|p| TopicPartition::new(topic.name.clone(), p as i32)),
                );
                next += len;
            }
        }
        Ok(into_assignment(members, result))
    }
}
