//! The `sticky` and `cooperative-sticky` assignors.
//!
//! Both compute the same target assignment: as balanced as the
//! subscriptions allow (the sum of squared partition counts is minimal, so
//! no chain of hand-overs can even out the counts any further), and,
//! among such assignments, one that leaves as many partitions as it can
//! with their current owner. The cooperative one then holds back the
//! partitions that change owner until their old owner has revoked them.
//!
//! Two algorithms reach it:
//! - all members subscribe to the same topics (the common case): quotas.
//!   With `P` partitions and `N` members, `P % N` members get
//!   `P / N + 1` partitions and the others `P / N`; members keep their
//!   owned partitions up to their quota and the rest are dealt round-robin
//!   to the members below quota. Kafka's Java client does the same
//!   (`AbstractStickyAssignor`'s constrained builder), and so do the
//!   tie-breaks here, except where Java's depend on hash-map order.
//! - otherwise: every member keeps all its owned partitions, the others go
//!   one by one to the least loaded member that subscribes to their topic
//!   (topics with the fewest subscribers first), and then partitions are
//!   handed along chains of members (`a` gives one to `b`, `b` one of
//!   another topic to `c`, ...) from a heavily to a lightly loaded member
//!   while that improves the balance: first moving only partitions that are
//!   not on their owner, then, if the balance still needs it, owned ones.
//!   A chain exists from every member that has two partitions more than a
//!   member it can reach unless the assignment is optimal, so this ends
//!   optimal; Java's general builder only looks for single moves.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use super::{
    AssignError, MemberAssignment, MemberSubscription, PartitionAssignor, Prepared,
    RebalanceProtocol, into_assignment, java_cmp,
};
use crate::types::TopicPartition;

/// The `sticky` assignor (eager protocol): a balanced assignment that moves
/// as few partitions as possible from one generation to the next.
///
/// - Balance: when all members subscribe to the same topics, partition
///   counts differ by at most one; otherwise the assignment is as balanced
///   as the subscriptions allow (no sequence of hand-overs between members
///   that subscribe to the partitions' topics can narrow the gap between a
///   member and another that has two partitions more).
/// - Stickiness: each member keeps the partitions it owns as far as balance
///   allows; a member that joins or leaves moves only the partitions needed
///   to restore balance.
///
/// A member's current partitions come from
/// [`owned_partitions`](MemberSubscription::owned_partitions) (subscription
/// v1+), tagged with its [`generation`](MemberSubscription::generation)
/// (v2+). When several members claim a partition, the claim with the
/// highest generation wins; two claims tied at the highest generation
/// cancel each other (as in Java, such a partition goes to whoever balance
/// picks). Claims on topics the member no longer subscribes to, on deleted
/// topics or on partitions past the topic's count are dropped.
///
/// The Java `StickyAssignor` also writes its owned partitions and
/// generation into the subscription's user data, for brokers and members
/// older than subscription v1. This one neither writes nor reads that user
/// data ([`subscription_user_data`](PartitionAssignor::subscription_user_data)
/// is `None`): Odradek's members always send subscription v1+ with owned
/// partitions, and a Java member's user-data claims are the same partitions
/// as its `owned_partitions` field.
///
/// Rack awareness (`client.rack`) is not implemented: the assignor
/// interface carries no partition replica racks. Results are deterministic:
/// ties are broken by member id and topic name (in Java's string order);
/// each member's partitions come sorted.
#[derive(Debug, Default, Clone)]
pub struct StickyAssignor;

/// The `cooperative-sticky` assignor: the [`StickyAssignor`]'s assignment,
/// made safe for the cooperative protocol (KIP-429).
///
/// In a cooperative rebalance members keep consuming their partitions, so a
/// partition cannot be handed from one member to another in a single
/// generation: the sticky target is computed, and every partition whose
/// current owner (the member claiming it in
/// [`owned_partitions`](MemberSubscription::owned_partitions) with the
/// highest generation) is not its new member is left out of the
/// assignment. Its owner, not finding it in its assignment, revokes it and
/// rejoins, and the follow-up rebalance assigns it to its new member. A
/// partition claimed by two members in the same generation is likewise left
/// out until both have revoked it. This includes owners that no longer
/// subscribe to the partition's topic.
///
/// Supports both protocols, cooperative preferred. Java's
/// `CooperativeStickyAssignor` puts the member's generation into the
/// subscription user data for members still on subscription v0/v1; with
/// subscription v2+ the generation travels in the subscription itself
/// ([`generation`](MemberSubscription::generation)), so
/// [`subscription_user_data`](PartitionAssignor::subscription_user_data) is
/// `None` and user data is ignored.
#[derive(Debug, Default, Clone)]
pub struct CooperativeStickyAssignor;

impl PartitionAssignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>, AssignError> {
        let plan = Plan::new(self.name(), partitions_per_topic, members)?;
        let target = plan.solve();
        Ok(plan.output(members, &target, false))
    }
}

impl PartitionAssignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager, RebalanceProtocol::Cooperative]
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<BTreeMap<String, MemberAssignment>, AssignError> {
        let plan = Plan::new(self.name(), partitions_per_topic, members)?;
        let target = plan.solve();
        Ok(plan.output(members, &target, true))
    }
}

/// "No member" in the `u32` member-index arrays.
const NONE: u32 = u32::MAX;

/// Who holds a partition now, from the members' owned-partition claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// Nobody claims it.
    Free,
    /// One member (index into the plan's member order) claims it at the
    /// highest generation among the claims.
    One(u32),
    /// Several members claim it at the same, highest generation.
    Contested,
}

/// The problem in index form. Members are numbered in member-id order;
/// partitions ("pids") are numbered topic by topic, in topic order.
struct Plan {
    prepared: Prepared,
    /// `order[i]`: the index in the input slice of the `i`-th member.
    order: Vec<usize>,
    /// Per member: the topics it subscribes to (sorted topic indices).
    member_topics: Vec<Vec<usize>>,
    /// Per topic: its subscribers, as (member, slot of the topic in that
    /// member's `member_topics`), by member.
    subscribers: Vec<Vec<(u32, u32)>>,
    /// Per topic: the pid of its partition 0.
    offsets: Vec<usize>,
    /// Per pid: its topic.
    topic_of: Vec<u32>,
    /// Per pid: the resolved claim on it.
    holder: Vec<Holder>,
    /// Per pid: the member that keeps it if balance allows (its holder,
    /// if that still subscribes to the topic), or `NONE`.
    owner: Vec<u32>,
}

impl Plan {
    fn new(
        assignor: &str,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberSubscription],
    ) -> Result<Self, AssignError> {
        let prepared = Prepared::new(assignor, partitions_per_topic, members)?;
        if u32::try_from(members.len()).is_err() {
            return Err(AssignError {
                assignor: assignor.to_owned(),
                reason: "too many members".to_owned(),
            });
        }

        // Java's sticky assignor orders members by member id.
        let mut order: Vec<usize> = (0..members.len()).collect();
        order.sort_by(|&a, &b| java_cmp(&members[a].member_id, &members[b].member_id));
        let member_topics: Vec<Vec<usize>> = order
            .iter()
            .map(|&m| prepared.member_topics[m].clone())
            .collect();

        let mut subscribers: Vec<Vec<(u32, u32)>> = vec![Vec::new(); prepared.topics.len()];
        for (i, topics) in (0u32..).zip(&member_topics) {
            for (slot, &t) in (0u32..).zip(topics) {
                subscribers[t].push((i, slot));
            }
        }

        let mut offsets = Vec::with_capacity(prepared.topics.len());
        let mut topic_of = Vec::new();
        for (t, topic) in (0u32..).zip(&prepared.topics) {
            offsets.push(topic_of.len());
            topic_of.extend(std::iter::repeat_n(t, topic.partitions as usize));
        }
        let total = topic_of.len();

        // Resolve the claims: the highest generation wins, a tie at the
        // highest generation leaves the partition contested.
        let mut holder = vec![Holder::Free; total];
        let mut best_generation = vec![0i32; total];
        for (i, &m) in (0u32..).zip(&order) {
            let member = &members[m];
            let mut pids: Vec<usize> = member
                .owned_partitions
                .iter()
                .filter_map(|tp| {
                    let t = prepared.topic_index(tp.topic())?;
                    let p = u32::try_from(tp.partition()).ok()?;
                    (p < prepared.topics[t].partitions).then(|| offsets[t] + p as usize)
                })
                .collect();
            pids.sort_unstable();
            pids.dedup();
            let generation = member.generation;
            for pid in pids {
                match holder[pid] {
                    Holder::Free => {
                        holder[pid] = Holder::One(i);
                        best_generation[pid] = generation;
                    }
                    _ if generation > best_generation[pid] => {
                        holder[pid] = Holder::One(i);
                        best_generation[pid] = generation;
                    }
                    _ if generation == best_generation[pid] => holder[pid] = Holder::Contested,
                    _ => {}
                }
            }
        }

        let owner = holder
            .iter()
            .zip(&topic_of)
            .map(|(h, &t)| match *h {
                Holder::One(i)
                    if member_topics[i as usize]
                        .binary_search(&(t as usize))
                        .is_ok() =>
                {
                    i
                }
                _ => NONE,
            })
            .collect();

        Ok(Self {
            prepared,
            order,
            member_topics,
            subscribers,
            offsets,
            topic_of,
            holder,
            owner,
        })
    }

    fn members(&self) -> usize {
        self.order.len()
    }

    fn partitions(&self) -> usize {
        self.topic_of.len()
    }

    /// The sticky target: per pid, the member it goes to.
    fn solve(&self) -> Vec<u32> {
        if self.partitions() == 0 {
            return Vec::new();
        }
        let uniform = self.member_topics.windows(2).all(|pair| pair[0] == pair[1]);
        if uniform {
            self.solve_uniform()
        } else {
            self.solve_general()
        }
    }

    /// All members subscribe to the same topics: quotas.
    fn solve_uniform(&self) -> Vec<u32> {
        let n = self.members();
        let total = self.partitions();
        let min_quota = total / n;
        // How many members may still get `min_quota + 1`.
        let mut extra_slots = total % n;

        let mut owned: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (pid, &o) in self.owner.iter().enumerate() {
            if o != NONE {
                owned[o as usize].push(pid);
            }
        }
        // Keep partitions by partition number first, so a member that must
        // give some up keeps a spread over its topics (as Java does).
        for list in &mut owned {
            list.sort_by_key(|&pid| {
                let t = self.topic_of[pid] as usize;
                (pid - self.offsets[t], t)
            });
        }

        let mut quota = vec![min_quota; n];
        for (i, list) in owned.iter().enumerate() {
            if list.len() > min_quota && extra_slots > 0 {
                quota[i] += 1;
                extra_slots -= 1;
            }
        }

        let mut target = vec![NONE; total];
        let mut count = vec![0usize; n];
        for (i, list) in owned.iter().enumerate() {
            for &pid in list.iter().take(quota[i]) {
                target[pid] = i as u32;
                count[i] += 1;
            }
        }

        // Members at `min_quota` that may take one more, in the order Java
        // offers them extras: those already there, then those filled below.
        let mut candidates: Vec<usize> = if extra_slots > 0 {
            (0..n)
                .filter(|&i| quota[i] == min_quota && count[i] == min_quota)
                .collect()
        } else {
            Vec::new()
        };
        let mut under: Vec<usize> = (0..n).filter(|&i| count[i] < min_quota).collect();
        let free: Vec<usize> = (0..total).filter(|&pid| target[pid] == NONE).collect();
        let mut free = free.into_iter();

        // Round-robin over the members below `min_quota`.
        'fill: while !under.is_empty() {
            let mut still_under = Vec::with_capacity(under.len());
            for &i in &under {
                let Some(pid) = free.next() else {
                    break 'fill;
                };
                target[pid] = i as u32;
                count[i] += 1;
                if count[i] == min_quota {
                    candidates.push(i);
                } else {
                    still_under.push(i);
                }
            }
            under = still_under;
        }

        // One extra each to the candidates; the fallback is unreachable by
        // the arithmetic of the quotas, but keeps every partition assigned.
        let mut candidates = candidates.into_iter();
        for pid in free {
            let i = candidates
                .next()
                .unwrap_or_else(|| (0..n).min_by_key(|&i| (count[i], i)).unwrap_or(0));
            target[pid] = i as u32;
            count[i] += 1;
        }
        target
    }

    /// Members subscribe to different topics: keep owned partitions, place
    /// the rest greedily, then even out along chains of hand-overs.
    fn solve_general(&self) -> Vec<u32> {
        let mut state = State::new(self);
        for (pid, &o) in self.owner.iter().enumerate() {
            if o != NONE {
                let t = self.topic_of[pid] as usize;
                if let Ok(slot) = self.member_topics[o as usize].binary_search(&t) {
                    state.place(self, pid, o, slot as u32);
                }
            }
        }
        state.place_free(self);
        // Balance first with partitions that are not on their owner, so
        // owned ones move only when balance cannot be had otherwise.
        state.even_out(self, false);
        state.even_out(self, true);
        state.target
    }

    /// Builds the result; `cooperative` leaves out the partitions whose
    /// current holder is not their new member.
    fn output(
        &self,
        members: &[MemberSubscription],
        target: &[u32],
        cooperative: bool,
    ) -> BTreeMap<String, MemberAssignment> {
        let mut lists: Vec<Vec<TopicPartition>> = vec![Vec::new(); members.len()];
        for (pid, &to) in target.iter().enumerate() {
            if to == NONE {
                continue;
            }
            if cooperative {
                match self.holder[pid] {
                    Holder::Contested => continue,
                    Holder::One(h) if h != to => continue,
                    _ => {}
                }
            }
            let t = self.topic_of[pid] as usize;
            let partition = (pid - self.offsets[t]) as i32;
            lists[self.order[to as usize]].push(TopicPartition::new(
                self.prepared.topics[t].name.clone(),
                partition,
            ));
        }
        into_assignment(members, lists)
    }
}

/// A member's partitions of one topic.
#[derive(Debug, Default, Clone)]
struct Held {
    /// Partitions the member owns (moving them costs stickiness).
    kept: Vec<usize>,
    /// Partitions it got this round.
    loose: Vec<usize>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.loose.is_empty()
    }
}

/// The assignment being built by [`Plan::solve_general`].
struct State {
    /// Per pid: its member, or `NONE`.
    target: Vec<u32>,
    /// Per member: its partition count.
    load: Vec<usize>,
    /// Per member, per slot of `member_topics`: its partitions.
    held: Vec<Vec<Held>>,
}

/// One hand-over step of a chain: `from` gives partitions of the topic in
/// its slot `from_slot` to `to`, where that topic is in slot `to_slot`.
#[derive(Debug, Clone, Copy)]
struct Step {
    from: u32,
    from_slot: u32,
    to: u32,
    to_slot: u32,
}

impl State {
    fn new(plan: &Plan) -> Self {
        Self {
            target: vec![NONE; plan.partitions()],
            load: vec![0; plan.members()],
            held: plan
                .member_topics
                .iter()
                .map(|ts| vec![Held::default(); ts.len()])
                .collect(),
        }
    }

    fn place(&mut self, plan: &Plan, pid: usize, member: u32, slot: u32) {
        self.target[pid] = member;
        self.load[member as usize] += 1;
        let held = &mut self.held[member as usize][slot as usize];
        if plan.owner[pid] == member {
            held.kept.push(pid);
        } else {
            held.loose.push(pid);
        }
    }

    /// Gives each unplaced partition to the least loaded member (then the
    /// first by member id) among its topic's subscribers, topics with the
    /// fewest subscribers first, as Java's general builder does.
    fn place_free(&mut self, plan: &Plan) {
        // Topics with the same subscribers share a heap of (load, member,
        // position in the subscriber list). Loads only grow here, so an
        // entry whose load is out of date is pushed back with the current
        // one when it surfaces.
        let mut group_of_topic = Vec::with_capacity(plan.subscribers.len());
        let mut groups: BTreeMap<Vec<u32>, usize> = BTreeMap::new();
        let mut heaps: Vec<BinaryHeap<Reverse<(usize, u32, u32)>>> = Vec::new();
        for subs in &plan.subscribers {
            let key: Vec<u32> = subs.iter().map(|&(m, _)| m).collect();
            let next = groups.len();
            let g = *groups.entry(key).or_insert_with(|| {
                heaps.push(
                    (0u32..)
                        .zip(subs)
                        .map(|(pos, &(m, _))| Reverse((0, m, pos)))
                        .collect(),
                );
                next
            });
            group_of_topic.push(g);
        }

        let mut topics: Vec<usize> = (0..plan.subscribers.len()).collect();
        topics.sort_by_key(|&t| (plan.subscribers[t].len(), t));
        for t in topics {
            let subs = &plan.subscribers[t];
            let heap = &mut heaps[group_of_topic[t]];
            let first = plan.offsets[t];
            let end = first + plan.prepared.topics[t].partitions as usize;
            for pid in first..end {
                if self.target[pid] != NONE {
                    continue;
                }
                while let Some(Reverse((load, m, pos))) = heap.pop() {
                    if load != self.load[m as usize] {
                        heap.push(Reverse((self.load[m as usize], m, pos)));
                        continue;
                    }
                    if let Some(&(_, slot)) = subs.get(pos as usize) {
                        self.place(plan, pid, m, slot);
                    }
                    heap.push(Reverse((self.load[m as usize], m, pos)));
                    break;
                }
            }
        }
    }

    /// Hands partitions along chains from heavily to lightly loaded
    /// members until no chain improves the balance. `move_owned` allows
    /// moving partitions off their owner.
    fn even_out(&mut self, plan: &Plan, move_owned: bool) {
        let floor_average = plan.partitions() / plan.members().max(1);
        while let Some(chain) = self.find_chain(plan, move_owned) {
            let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
                break;
            };
            let source = first.from as usize;
            let sink = last.to as usize;
            // Move several partitions per chain when that cannot overshoot:
            // the source stays at or above every other member and the sink
            // at or below the average, so partitions do not move twice and
            // no member gives up more owned partitions than it must.
            let next_highest = (0..self.load.len())
                .filter(|&m| m != source)
                .map(|m| self.load[m])
                .max()
                .unwrap_or(0);
            let mut amount = ((self.load[source] - self.load[sink]) / 2)
                .min(self.load[source].saturating_sub(next_highest))
                .min(floor_average.saturating_sub(self.load[sink]))
                .max(1);
            for step in &chain {
                let held = &self.held[step.from as usize][step.from_slot as usize];
                let available = if held.loose.is_empty() {
                    held.kept.len()
                } else {
                    held.loose.len()
                };
                amount = amount.min(available);
            }
            if amount == 0 {
                // Cannot happen (the search only follows non-empty holdings);
                // stop rather than loop.
                break;
            }
            // From the sink back, so each member gives away what it held
            // before receiving anything in this chain.
            for step in chain.iter().rev() {
                for _ in 0..amount {
                    let held = &mut self.held[step.from as usize][step.from_slot as usize];
                    let Some(pid) = held.loose.pop().or_else(|| held.kept.pop()) else {
                        break;
                    };
                    self.load[step.from as usize] -= 1;
                    self.place(plan, pid, step.to, step.to_slot);
                }
            }
        }
    }

    /// Finds a chain of hand-overs from a member to one with at least two
    /// partitions fewer, or `None` when the assignment is optimal.
    ///
    /// Searches breadth-first from the most loaded member, then the next,
    /// never revisiting a member or a topic: whatever a later (less loaded)
    /// source could reach was already reached from a more loaded one. So
    /// one call costs O(members' subscriptions + topics' subscribers).
    fn find_chain(&self, plan: &Plan, move_owned: bool) -> Option<Vec<Step>> {
        let n = plan.members();
        // Members without topics stay empty and cannot be reached; leave
        // them out of the lowest load the search hopes for.
        let min_load = (0..n)
            .filter(|&m| !plan.member_topics[m].is_empty())
            .map(|m| self.load[m])
            .min()?;
        let mut sources: Vec<usize> = (0..n).collect();
        sources.sort_by_key(|&m| (Reverse(self.load[m]), m));

        // Per member: the hand-over that reached it (`None` for sources).
        let mut reached_from: Vec<Option<Step>> = vec![None; n];
        let mut reached = vec![false; n];
        let mut topic_expanded = vec![false; plan.subscribers.len()];
        let mut queue = VecDeque::new();

        for source in sources {
            let source_load = self.load[source];
            if source_load < min_load + 2 {
                return None;
            }
            if reached[source] {
                continue;
            }
            reached[source] = true;
            queue.clear();
            queue.push_back(source);
            let mut best: Option<usize> = None;
            while let Some(u) = queue.pop_front() {
                let load = self.load[u];
                if load + 2 <= source_load && best.is_none_or(|b| load < self.load[b]) {
                    best = Some(u);
                    if load == min_load {
                        break;
                    }
                }
                // Topics it can give away without costing stickiness
                // first, then (if allowed) those it owns.
                for pass_owned in [false, true] {
                    if pass_owned && !move_owned {
                        break;
                    }
                    for (slot, &t) in plan.member_topics[u].iter().enumerate() {
                        let held = &self.held[u][slot];
                        let usable = if pass_owned {
                            !held.is_empty()
                        } else {
                            !held.loose.is_empty()
                        };
                        if !usable || topic_expanded[t] {
                            continue;
                        }
                        topic_expanded[t] = true;
                        for &(v, v_slot) in &plan.subscribers[t] {
                            if !reached[v as usize] {
                                reached[v as usize] = true;
                                reached_from[v as usize] = Some(Step {
                                    from: u as u32,
                                    from_slot: slot as u32,
                                    to: v,
                                    to_slot: v_slot,
                                });
                                queue.push_back(v as usize);
                            }
                        }
                    }
                }
            }
            if let Some(sink) = best {
                let mut chain = Vec::new();
                let mut v = sink;
                while v != source {
                    let step = reached_from[v]?;
                    chain.push(step);
                    v = step.from as usize;
                }
                chain.reverse();
                return Some(chain);
            }
        }
        None
    }
}
