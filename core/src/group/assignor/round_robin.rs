//! The `roundrobin` assignor.

use std::collections::BTreeMap;

use super::{
    AssignError, MemberAssignment, MemberSubscription, PartitionAssignor, Prepared,
    RebalanceProtocol, into_assignment, member_info_cmp,
};
use crate::types::TopicPartition;

/// The `roundrobin` assignor: every partition of every subscribed topic,
/// sorted by topic and then partition, is dealt in turn to the members,
/// skipping a member that does not subscribe to the partition's topic.
///
/// Members are ordered as in the Java client: static members (with a
/// `group.instance.id`) first, by instance id, then dynamic members by
/// member id. The deal goes on from member to member across topics.
///
/// When every member subscribes to the same topics, the partition counts
/// differ by at most one. With two members `C0`, `C1` and topics `t0`,
/// `t1` of three partitions each, `C0` gets `t0-0, t0-2, t1-1` and `C1`
/// gets `t0-1, t1-0, t1-2`. With different subscriptions the result can be
/// unbalanced, as in Java; [`StickyAssignor`](super::StickyAssignor)
/// balances those. Each member's partitions come sorted.
#[derive(Debug, Default, Clone)]
pub struct RoundRobinAssignor;

impl PartitionAssignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
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
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|&a, &b| member_info_cmp(&members[a], &members[b]));

        // Positions (in `order`) of each topic's subscribers, ascending.
        let mut subscribers: Vec<Vec<usize>> = vec![Vec::new(); prepared.topics.len()];
        for (pos, &m) in order.iter().enumerate() {
            for &t in &prepared.member_topics[m] {
                subscribers[t].push(pos);
            }
        }

        let mut result: Vec<Vec<TopicPartition>> = vec![Vec::new(); members.len()];
        // Position in `order` of the next member to deal to; it carries
        // over from one topic to the next. Skipping non-subscribers one by
        // one would cost partitions × members, so jump straight to the next
        // subscriber instead.
        let mut next = 0;
        for (topic, subs) in prepared.topics.iter().zip(&subscribers) {
            if subs.is_empty() {
                continue;
            }
            let mut j = subs.partition_point(|&pos| pos < next) % subs.len();
            for p in 0..topic.partitions {
                let pos = subs[j];
                result[order[pos]].push(TopicPartition::new(topic.name.clone(), p as i32));
                next = pos + 1;
                j = (j + 1) % subs.len();
            }
        }
        Ok(into_assignment(members, result))
    }
}
