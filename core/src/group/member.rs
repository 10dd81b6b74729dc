//! The classic group membership protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup): where the member stands, what it subscribes to, and what
//! each answer means. It builds requests and reads answers; what an answer
//! means for the consumer's partitions it hands back as an outcome, which
//! [`ConsumerGroup`](super::consumer_group::ConsumerGroup) applies.
//!
//! KIP-848's `ConsumerGroupHeartbeat` protocol is meant to be a sibling of
//! this file with the same role: membership state in, outcomes out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Retry;
use crate::config::ConsumerConfig;
use crate::error::{CommitFailure, Error};
use crate::group::assignor::{MemberSubscription, RebalanceProtocol};
use crate::group::{GroupMetadata, RebalanceEvent};
use crate::metadata::Metadata;
use crate::protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest, SyncGroupResponse, join_group::JoinGroupRequestProtocol,
    leave_group::LeaveGroupRequestMember, sync_group::SyncGroupRequestAssignment,
};
use crate::protocol::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, EmbeddedProtocol, ErrorCode,
    TopicPartitions,
};
use crate::timer::{Timer, TimerTable};
use crate::types::{OffsetAndMetadata, TopicPartition};

use super::commits::Committer;
use super::consumer_group::GroupCtx;

/// The protocol type of consumer groups.
const PROTOCOL_TYPE: &str = "consumer";
/// The newest consumer subscription version Odradek writes.
const SUBSCRIPTION_VERSION: i16 = 3;

/// Where the member stands in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberState {
    /// Not a member (never joined, left, or lost its membership).
    Unjoined,
    /// A JoinGroup is in flight.
    Joining,
    /// The leader waits for metadata before running its assignor.
    Assigning,
    /// A SyncGroup is in flight.
    Syncing,
    /// A member of the current generation.
    Stable,
}

/// The JoinGroup answer a leader keeps while it waits for metadata.
#[derive(Debug)]
struct LeaderWork {
    protocol: String,
    members: Vec<MemberSubscription>,
}

/// What a JoinGroup answer means.
#[derive(Debug)]
pub(crate) enum Joined {
    /// Nothing more to do (stale answer, or retried inside).
    Nothing,
    /// No answer: the coordinator is presumed gone; the join is retried.
    CoordinatorLost,
    /// The coordinator forgot this member: its partitions are lost; the
    /// join is retried.
    PartitionsLost,
    /// An error JoinGroup and SyncGroup share.
    Failed(ErrorCode),
    /// This member leads: assign once metadata knows every topic.
    Lead,
    /// Sync with the leader's assignment, using `protocol`.
    Follow { protocol: String },
}

/// What a SyncGroup answer means.
#[derive(Debug)]
pub(crate) enum Synced {
    Nothing,
    CoordinatorLost,
    PartitionsLost,
    Failed(ErrorCode),
    /// The member's assignment for the new generation.
    Assigned(BTreeSet<TopicPartition>),
}

/// What a Heartbeat answer means.
#[derive(Debug)]
pub(crate) enum Beat {
    Nothing,
    /// The coordinator knows this member: the session goes on.
    Alive,
    CoordinatorLost,
    /// The group rebalances: rejoin at the next poll.
    Rebalance,
    /// The generation or the membership is gone: the partitions are lost.
    MembershipGone {
        keep_member_id: bool,
    },
    Fenced,
    /// A non-retriable error for the application.
    Failed(ErrorCode),
}

/// The changes a new assignment makes.
#[derive(Debug)]
pub(crate) struct AssignmentChange {
    pub(crate) revoked: Vec<TopicPartition>,
    pub(crate) added: Vec<TopicPartition>,
}

#[derive(Debug)]
pub(crate) struct Member {
    group_id: String,
    instance_id: Option<String>,
    protocol: RebalanceProtocol,
    /// The subscribed topics; `None` when not subscribed (manual assignment).
    subscription: Option<BTreeSet<String>>,
    /// A pattern subscription: `subscription` follows the topics matching it.
    pattern: Option<regex::Regex>,
    /// The pattern was evaluated against a topic list at least once.
    pattern_resolved: bool,
    member_id: String,
    generation: i32,
    /// This member leads the current generation (runs the assignor).
    leader: bool,
    state: MemberState,
    rejoin_needed: bool,
    /// The revocation for the coming join was done (it happens at a poll).
    join_prepared: bool,
    /// JoinGroup's backoff (its being in flight is `state`).
    join: Retry,
    events: VecDeque<RebalanceEvent>,
    /// A revocation or loss was handed out and not yet acknowledged.
    awaiting_ack: bool,
    /// Delivered positions of partitions being revoked, so a commit made
    /// while handling the revocation still covers them.
    revoking: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// [`Timer::Heartbeat`] went off: send one when possible.
    heartbeat_due: bool,
    heartbeat_in_flight: bool,
    /// `max.poll.interval.ms` passed without a poll: no rejoin until one.
    poll_expired: bool,
    /// Partition counts the current assignment was made from: a change
    /// means a rebalance.
    snapshot: BTreeMap<String, usize>,
    /// The topics every member subscribes to (known to the leader only).
    group_topics: BTreeSet<String>,
    leader_work: Option<LeaderWork>,
    leave_in_flight: bool,
}

impl Member {
    pub(crate) fn new(
        group_id: String,
        instance_id: Option<String>,
        protocol: RebalanceProtocol,
    ) -> Self {
        Self {
            group_id,
            instance_id,
            protocol,
            subscription: None,
            pattern: None,
            pattern_resolved: false,
            member_id: String::new(),
            generation: -1,
            leader: false,
            state: MemberState::Unjoined,
            rejoin_needed: false,
            join_prepared: false,
            join: Retry::new(Timer::JoinRetry),
            events: VecDeque::new(),
            awaiting_ack: false,
            revoking: BTreeMap::new(),
            heartbeat_due: false,
            heartbeat_in_flight: false,
            poll_expired: false,
            snapshot: BTreeMap::new(),
            group_topics: BTreeSet::new(),
            leader_work: None,
            leave_in_flight: false,
        }
    }

    // ---- who the member is ----------------------------------------------

    pub(crate) fn state(&self) -> MemberState {
        self.state
    }

    pub(crate) fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    pub(crate) fn is_static(&self) -> bool {
        self.instance_id.is_some()
    }

    pub(crate) fn generation(&self) -> i32 {
        self.generation
    }

    /// The member id the coordinator gave (empty before).
    pub(crate) fn member_id(&self) -> &str {
        &self.member_id
    }

    pub(crate) fn has_member_id(&self) -> bool {
        !self.member_id.is_empty()
    }

    /// The generation and member id, while a member.
    pub(crate) fn membership(&self) -> Option<(i32, String)> {
        (self.state == MemberState::Stable).then(|| (self.generation, self.member_id.clone()))
    }

    /// Java's `groupMetadata()`, plus whether this member leads.
    pub(crate) fn metadata(&self) -> GroupMetadata {
        let stable = self.state == MemberState::Stable;
        GroupMetadata {
            group_id: self.group_id.clone(),
            generation_id: if stable { self.generation } else { -1 },
            member_id: if stable {
                self.member_id.clone()
            } else {
                String::new()
            },
            group_instance_id: self.instance_id.clone(),
            leader: stable && self.leader,
        }
    }

    /// Whether the application may commit now: not while the member
    /// rejoins, and not after it lost its membership.
    pub(crate) fn check_commit(&self) -> Result<(), Error> {
        if self.subscription.is_none() {
            return Ok(());
        }
        match self.state {
            MemberState::Joining | MemberState::Assigning | MemberState::Syncing => {
                Err(Error::RebalanceInProgress)
            }
            MemberState::Unjoined if self.generation < 0 => Err(not_a_member()),
            _ => Ok(()),
        }
    }

    /// Who a commit is sent as, or `None` if the member lost its
    /// membership since the commit was queued: without a generation the
    /// commit would bypass fencing and could overwrite offsets another
    /// member owns now.
    pub(crate) fn committer(&self) -> Option<Committer> {
        match &self.subscription {
            None => Some(Committer::Standalone),
            Some(_) if self.generation < 0 => None,
            Some(_) => Some(Committer::Member {
                generation: self.generation,
                member_id: self.member_id.clone(),
                instance_id: self.instance_id.clone(),
            }),
        }
    }

    // ---- the subscription ---------------------------------------------

    /// The subscribed topics; `None` when not subscribed.
    pub(crate) fn subscription(&self) -> Option<&BTreeSet<String>> {
        self.subscription.as_ref()
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscription.is_some()
    }

    /// Topics the leader must know the partition counts of.
    pub(crate) fn leader_topics(&self) -> impl Iterator<Item = &str> {
        self.group_topics.iter().map(String::as_str)
    }

    fn needs_rejoin(&mut self) {
        self.rejoin_needed = true;
        self.join_prepared = false;
    }

    /// Replaces the subscribed topics; a change means a rejoin.
    fn set_subscription(&mut self, topics: BTreeSet<String>) {
        if self.subscription.as_ref() != Some(&topics) {
            self.subscription = Some(topics);
            self.needs_rejoin();
        }
    }

    /// Subscribes to `topics` (no pattern).
    pub(crate) fn subscribe(&mut self, topics: BTreeSet<String>) {
        self.pattern = None;
        self.set_subscription(topics);
    }

    /// Subscribes to the topics `pattern` matches, once a topic list says
    /// which those are; until then the member holds on to what it has.
    pub(crate) fn subscribe_pattern(&mut self, pattern: regex::Regex) {
        if self.pattern.as_ref().map(regex::Regex::as_str) == Some(pattern.as_str()) {
            return;
        }
        self.pattern = Some(pattern);
        self.pattern_resolved = false;
        let current = self.subscription.clone().unwrap_or_default();
        self.subscription = Some(current);
        self.needs_rejoin();
    }

    /// Drops the subscription (after `unsubscribe` revoked and left).
    pub(crate) fn clear_subscription(&mut self) {
        self.subscription = None;
        self.pattern = None;
        self.rejoin_needed = false;
    }

    /// A metadata refresh listed the cluster's topics: a pattern
    /// subscription follows what now matches. True if the member's interest
    /// changed (or the pattern was resolved for the first time).
    pub(crate) fn on_topic_list(&mut self, listed: &BTreeSet<Arc<str>>) -> bool {
        let Some(pattern) = self.pattern.as_ref() else {
            return false;
        };
        let matching: BTreeSet<String> = listed
            .iter()
            .filter(|t| pattern.is_match(t))
            .map(|t| t.to_string())
            .collect();
        let first = !self.pattern_resolved;
        self.pattern_resolved = true;
        let changed = self.subscription.as_ref() != Some(&matching);
        if changed {
            tracing::info!(group = %self.group_id, topics = ?matching, "pattern subscription changed");
            self.set_subscription(matching);
        }
        changed || first
    }

    /// New metadata: true if a subscribed topic's partition count changed,
    /// which makes the assignment out of date (a rejoin is then needed).
    pub(crate) fn on_metadata(&mut self, metadata: &Metadata) -> bool {
        if self.subscription.is_none() || self.state != MemberState::Stable || self.rejoin_needed {
            return false;
        }
        let mut topics: BTreeSet<&String> = self.snapshot.keys().collect();
        topics.extend(self.subscription.iter().flatten());
        let changed = topics.into_iter().any(|t| {
            match (self.snapshot.get(t).copied(), metadata.partition_count(t)) {
                (Some(a), Some(b)) => a != b,
                (None, Some(b)) => b > 0,
                _ => false,
            }
        });
        if changed {
            self.needs_rejoin();
        }
        changed
    }

    /// Subscribed, and (for a pattern) the matching topics are known.
    fn can_join(&self) -> bool {
        self.subscription.is_some() && (self.pattern.is_none() || self.pattern_resolved)
    }

    /// A rejoin waits for the application's poll to start it.
    fn rejoin_waits_for_poll(&self) -> bool {
        self.can_join()
            && self.rejoin_needed
            && !self.join_prepared
            && !self.awaiting_ack
            && matches!(self.state, MemberState::Unjoined | MemberState::Stable)
    }

    /// True when the application should poll for the group's sake: a
    /// rebalance waits for it, or its listener has events.
    pub(crate) fn wants_poll(&self) -> bool {
        !self.events.is_empty() || self.rejoin_waits_for_poll()
    }

    /// The application polled: the poll timer restarts, and a pending
    /// rejoin starts. Returns the partitions to revoke before joining
    /// (eager: all of them; cooperative: those no longer subscribed).
    /// `assigned` is only called then, so a poll costs nothing per
    /// partition.
    pub(crate) fn on_poll(
        &mut self,
        assigned: impl FnOnce() -> Vec<TopicPartition>,
        ctx: &mut GroupCtx<'_>,
    ) -> Option<Vec<TopicPartition>> {
        self.poll_expired = false;
        ctx.timers
            .set(Timer::PollInterval, ctx.now + ctx.config.max_poll_interval);
        ctx.timers.set(
            Timer::PollHalfway,
            ctx.now + ctx.config.max_poll_interval / 2,
        );
        if !self.rejoin_waits_for_poll() {
            return None;
        }
        self.join_prepared = true;
        let subscription = self.subscription.clone().unwrap_or_default();
        Some(match self.protocol {
            RebalanceProtocol::Eager => assigned(),
            RebalanceProtocol::Cooperative => assigned()
                .into_iter()
                .filter(|tp| !subscription.contains(tp.topic()))
                .collect(),
        })
    }

    /// `max.poll.interval.ms` passed without a poll. True if the member
    /// must leave (it is in the group or joining); either way it does not
    /// rejoin before the next poll.
    pub(crate) fn on_poll_expired(&mut self) -> bool {
        if self.subscription.is_none() {
            return false;
        }
        self.poll_expired = true;
        if self.state == MemberState::Unjoined {
            return false;
        }
        tracing::warn!(group = %self.group_id, "max.poll.interval.ms passed without a poll: leaving the group");
        true
    }

    /// Half of `max.poll.interval.ms` passed: true if a waiting poll should
    /// wake to restart the timer.
    pub(crate) fn poll_halfway(&self) -> bool {
        self.subscription.is_some() && self.state != MemberState::Unjoined && !self.poll_expired
    }

    /// Forgets the membership (the coordinator no longer knows it).
    pub(crate) fn reset(&mut self, keep_member_id: bool) {
        if !keep_member_id {
            self.member_id.clear();
        }
        self.generation = -1;
        self.state = MemberState::Unjoined;
        self.heartbeat_due = false;
        self.leader_work = None;
        if self.subscription.is_some() {
            self.needs_rejoin();
        }
    }

    /// After the partitions were lost: `reset` keeping the member id for
    /// static members.
    pub(crate) fn reset_after_poll_expired(&mut self) {
        let keep = self.is_static();
        self.reset(keep);
    }

    // ---- rebalance events ---------------------------------------------

    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event for the application's listener.
    pub(crate) fn poll_event(&mut self) -> Option<RebalanceEvent> {
        self.events.pop_front()
    }

    /// The application handled the events it took.
    pub(crate) fn ack(&mut self) {
        if self.events.is_empty() {
            self.awaiting_ack = false;
            self.revoking.clear();
        }
    }

    /// A close never waits for the application's listener.
    pub(crate) fn stop_waiting(&mut self) {
        self.awaiting_ack = false;
        self.rejoin_needed = false;
    }

    /// `partitions` were revoked, with their delivered `positions`.
    pub(crate) fn revoked(
        &mut self,
        partitions: Vec<TopicPartition>,
        positions: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) {
        self.revoking.extend(positions);
        self.events.push_back(RebalanceEvent::Revoked(partitions));
        self.awaiting_ack = true;
    }

    /// `partitions` were lost (never committed).
    pub(crate) fn lost(&mut self, partitions: Vec<TopicPartition>) {
        if !partitions.is_empty() {
            self.events.push_back(RebalanceEvent::Lost(partitions));
            self.awaiting_ack = true;
        }
    }

    /// Positions of partitions being revoked: they count as delivered
    /// until the revocation is acknowledged.
    pub(crate) fn revoking(&self) -> &BTreeMap<TopicPartition, OffsetAndMetadata> {
        &self.revoking
    }

    // ---- JoinGroup ----------------------------------------------------

    /// True when a JoinGroup should go out: a rejoin was prepared (at a
    /// poll), the listener is done, no commit of the application's is
    /// pending (it must finish under the old generation) and no backoff
    /// holds it.
    pub(crate) fn join_due(
        &self,
        commits_pending: bool,
        closing: bool,
        timers: &TimerTable,
    ) -> bool {
        self.can_join()
            && self.rejoin_needed
            && self.join_prepared
            && !self.awaiting_ack
            && !commits_pending
            && !closing
            && !self.poll_expired
            && matches!(self.state, MemberState::Unjoined | MemberState::Stable)
            && self.join.ready(timers)
    }

    /// The JoinGroup, at `version`, announcing `owned`.
    pub(crate) fn join_request(
        &self,
        owned: &[TopicPartition],
        config: &ConsumerConfig,
    ) -> JoinGroupRequest {
        let topics: Vec<String> = self.subscription.iter().flatten().cloned().collect();
        let owned = group_by_topic(owned);
        let rack = (!config.client_rack.is_empty()).then(|| config.client_rack.clone());
        let mut protocols = Vec::new();
        for assignor in config.partition_assignment_strategy.iter() {
            let subscription = ConsumerProtocolSubscription {
                topics: topics.clone(),
                user_data: assignor.subscription_user_data(&topics),
                owned_partitions: owned.clone(),
                generation_id: self.generation,
                rack_id: rack.clone(),
            };
            let Ok(metadata) = subscription.to_versioned_bytes(SUBSCRIPTION_VERSION) else {
                continue;
            };
            protocols.push(JoinGroupRequestProtocol {
                name: assignor.name().to_string(),
                metadata,
            });
        }
        JoinGroupRequest {
            group_id: self.group_id.clone(),
            session_timeout_ms: millis(config.session_timeout),
            rebalance_timeout_ms: millis(config.max_poll_interval),
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.into(),
            protocols,
            reason: Some("odradek: joining".into()),
        }
    }

    pub(crate) fn join_sent(&mut self) {
        self.state = MemberState::Joining;
        self.rejoin_needed = false;
        self.join_prepared = false;
    }

    /// A join or sync failed in a way worth retrying after a pause.
    pub(crate) fn retry_join_later(&mut self, ctx: &mut GroupCtx<'_>) {
        self.state = MemberState::Unjoined;
        self.rejoin_needed = true;
        // The revocation (if any) already happened for this rebalance.
        self.join_prepared = true;
        self.join.failed(ctx.now, ctx.backoff, ctx.timers);
    }

    /// A JoinGroup or SyncGroup error ended the membership for good.
    pub(crate) fn give_up(&mut self) {
        self.state = MemberState::Unjoined;
        self.subscription = None;
        self.pattern = None;
    }

    /// A JoinGroup answer (`None`: no answer).
    pub(crate) fn on_join(
        &mut self,
        response: Option<JoinGroupResponse>,
        ctx: &mut GroupCtx<'_>,
    ) -> Joined {
        if self.state != MemberState::Joining {
            return Joined::Nothing;
        }
        let Some(response) = response else {
            self.retry_join_later(ctx);
            return Joined::CoordinatorLost;
        };
        match ErrorCode(response.error_code) {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: join again at once with the id we were given.
                self.member_id = response.member_id;
                self.state = MemberState::Unjoined;
                self.rejoin_needed = true;
                self.join_prepared = true;
                return Joined::Nothing;
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                self.generation = -1;
                // What a cooperative member still owns may be another's now.
                self.retry_join_later(ctx);
                return Joined::PartitionsLost;
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::REBALANCE_IN_PROGRESS => {
                self.retry_join_later(ctx);
                return Joined::Nothing;
            }
            code => return Joined::Failed(code),
        }
        self.join.succeeded(ctx.timers);
        self.member_id = response.member_id.clone();
        self.generation = response.generation_id;
        self.leader = response.leader == response.member_id;
        let protocol = response.protocol_name.clone().unwrap_or_default();
        if !self.leader || response.skip_assignment {
            self.group_topics.clear();
            return Joined::Follow { protocol };
        }
        let mut members = Vec::new();
        let mut topics = BTreeSet::new();
        for m in &response.members {
            let Ok((_, sub)) =
                ConsumerProtocolSubscription::from_versioned_bytes(m.metadata.clone())
            else {
                // A member whose subscription we cannot read gets nothing;
                // the others still get their partitions.
                members.push(MemberSubscription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    topics: Vec::new(),
                    owned_partitions: Vec::new(),
                    generation: -1,
                    rack_id: None,
                    user_data: None,
                });
                continue;
            };
            topics.extend(sub.topics.iter().cloned());
            members.push(MemberSubscription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                topics: sub.topics,
                owned_partitions: flatten(&sub.owned_partitions),
                generation: sub.generation_id,
                rack_id: sub.rack_id,
                user_data: sub.user_data,
            });
        }
        self.group_topics = topics;
        self.leader_work = Some(LeaderWork { protocol, members });
        self.state = MemberState::Assigning;
        Joined::Lead
    }

    /// The leader runs the assignor once metadata describes every topic:
    /// the SyncGroup assignments and protocol, `None` while metadata is
    /// missing, or an error if the group chose an assignor we lack.
    pub(crate) fn assign(
        &mut self,
        metadata: &Metadata,
        config: &ConsumerConfig,
    ) -> Option<Result<(Vec<SyncGroupRequestAssignment>, String), ErrorCode>> {
        if self.state != MemberState::Assigning {
            return None;
        }
        let mut counts = BTreeMap::new();
        for topic in &self.group_topics {
            let n = metadata.partition_count(topic)?;
            counts.insert(topic.clone(), i32::try_from(n).unwrap_or(i32::MAX));
        }
        let work = self.leader_work.take()?;
        let Some(assignor) = config.partition_assignment_strategy.get(&work.protocol) else {
            return Some(Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL));
        };
        let assignments = match assignor.assign(&counts, &work.members) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "the assignor failed; the group gets no assignment");
                BTreeMap::new()
            }
        };
        let mut out = Vec::new();
        for member in &work.members {
            let assignment = assignments.get(&member.member_id);
            let encoded = ConsumerProtocolAssignment {
                assigned_partitions: group_by_topic(
                    assignment.map(|a| a.partitions.as_slice()).unwrap_or(&[]),
                ),
                user_data: assignment.and_then(|a| a.user_data.clone()),
            }
            .to_versioned_bytes(SUBSCRIPTION_VERSION);
            out.push(SyncGroupRequestAssignment {
                member_id: member.member_id.clone(),
                assignment: encoded.unwrap_or_default(),
            });
        }
        self.snapshot = counts
            .into_iter()
            .map(|(t, n)| (t, usize::try_from(n).unwrap_or(0)))
            .collect();
        Some(Ok((out, work.protocol)))
    }

    // ---- SyncGroup ----------------------------------------------------

    pub(crate) fn sync_request(
        &self,
        assignments: Vec<SyncGroupRequestAssignment>,
        protocol: String,
    ) -> SyncGroupRequest {
        SyncGroupRequest {
            group_id: self.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.into()),
            protocol_name: Some(protocol),
            assignments,
        }
    }

    pub(crate) fn sync_sent(&mut self) {
        self.state = MemberState::Syncing;
    }

    /// A SyncGroup answer for `generation` (`None`: no answer).
    pub(crate) fn on_sync(
        &mut self,
        response: Option<SyncGroupResponse>,
        generation: i32,
        ctx: &mut GroupCtx<'_>,
    ) -> Synced {
        if self.state != MemberState::Syncing || self.generation != generation {
            return Synced::Nothing;
        }
        let Some(response) = response else {
            self.retry_join_later(ctx);
            return Synced::CoordinatorLost;
        };
        let code = ErrorCode(response.error_code);
        match code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.retry_join_later(ctx);
                return Synced::Nothing;
            }
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                if code == ErrorCode::UNKNOWN_MEMBER_ID {
                    self.member_id.clear();
                }
                self.generation = -1;
                // What a cooperative member still owns may be another's now.
                self.retry_join_later(ctx);
                return Synced::PartitionsLost;
            }
            code => return Synced::Failed(code),
        }
        if response.assignment.is_empty() {
            return Synced::Assigned(BTreeSet::new());
        }
        match ConsumerProtocolAssignment::from_versioned_bytes(response.assignment) {
            Ok((_, a)) => Synced::Assigned(flatten(&a.assigned_partitions).into_iter().collect()),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable assignment; rejoining");
                self.retry_join_later(ctx);
                Synced::Nothing
            }
        }
    }

    /// The member is in the new generation with `assigned`, having owned
    /// `owned`: what to revoke and what to add. Partitions taken away
    /// (cooperative) make the member rejoin after the revocation.
    pub(crate) fn assigned(
        &mut self,
        assigned: BTreeSet<TopicPartition>,
        owned: Vec<TopicPartition>,
        ctx: &mut GroupCtx<'_>,
    ) -> AssignmentChange {
        let owned: BTreeSet<TopicPartition> = owned.into_iter().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        self.state = MemberState::Stable;
        self.heartbeat_due = false;
        ctx.timers
            .set(Timer::Heartbeat, ctx.now + ctx.config.heartbeat_interval);
        ctx.timers
            .set(Timer::SessionExpiry, ctx.now + ctx.config.session_timeout);
        if self.group_topics.is_empty() {
            // A follower watches the partition counts of its own topics.
            self.snapshot = self
                .subscription
                .iter()
                .flatten()
                .filter_map(|t| Some((t.clone(), ctx.metadata.partition_count(t)?)))
                .collect();
        }
        AssignmentChange { revoked, added }
    }

    /// After the revocation of a cooperative rebalance: join the next
    /// generation once the listener is done.
    pub(crate) fn rejoin_after_revocation(&mut self) {
        self.needs_rejoin();
    }

    /// The listener hears of the partitions added.
    pub(crate) fn announce_added(&mut self, added: Vec<TopicPartition>) {
        self.events.push_back(RebalanceEvent::Assigned(added));
    }

    // ---- Heartbeat ----------------------------------------------------

    /// The Heartbeat to send now, if one is due.
    pub(crate) fn heartbeat_request(&self) -> Option<HeartbeatRequest> {
        if self.state != MemberState::Stable || self.heartbeat_in_flight || !self.heartbeat_due {
            return None;
        }
        Some(HeartbeatRequest {
            group_id: self.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.instance_id.clone(),
        })
    }

    pub(crate) fn heartbeat_sent(&mut self, ctx: &mut GroupCtx<'_>) {
        self.heartbeat_in_flight = true;
        self.heartbeat_due = false;
        ctx.timers
            .set(Timer::Heartbeat, ctx.now + ctx.config.heartbeat_interval);
    }

    /// [`Timer::Heartbeat`] went off.
    pub(crate) fn heartbeat_timer(&mut self) {
        self.heartbeat_due = true;
    }

    /// The coordinator is gone: its heartbeat will get no answer.
    pub(crate) fn coordinator_lost(&mut self) {
        self.heartbeat_in_flight = false;
    }

    /// True if the session timer matters: a member with a coordinator.
    pub(crate) fn is_stable(&self) -> bool {
        self.state == MemberState::Stable
    }

    /// A Heartbeat answer for `generation` (`None`: no answer).
    pub(crate) fn on_heartbeat(
        &mut self,
        response: Option<HeartbeatResponse>,
        generation: i32,
    ) -> Beat {
        self.heartbeat_in_flight = false;
        if self.generation != generation || self.state != MemberState::Stable {
            return Beat::Nothing;
        }
        let Some(response) = response else {
            return Beat::CoordinatorLost;
        };
        match ErrorCode(response.error_code) {
            ErrorCode::NONE => Beat::Alive,
            ErrorCode::REBALANCE_IN_PROGRESS => {
                if !self.rejoin_needed {
                    self.needs_rejoin();
                }
                Beat::Rebalance
            }
            code @ (ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID) => {
                Beat::MembershipGone {
                    keep_member_id: code == ErrorCode::ILLEGAL_GENERATION,
                }
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                Beat::CoordinatorLost
            }
            ErrorCode::FENCED_INSTANCE_ID => Beat::Fenced,
            code if code.is_retriable() => Beat::Nothing,
            code => Beat::Failed(code),
        }
    }

    /// A commit was refused because the group rebalances: rejoin.
    pub(crate) fn rebalancing(&mut self) {
        if !self.rejoin_needed && self.subscription.is_some() {
            self.needs_rejoin();
        }
    }

    // ---- LeaveGroup ---------------------------------------------------

    /// The LeaveGroup to send, if the member should: a dynamic member, or
    /// a static one asked to leave explicitly (`leave_group_on_close`).
    pub(crate) fn leave_request(
        &self,
        leave_group_on_close: Option<bool>,
    ) -> Option<LeaveGroupRequest> {
        let leave = leave_group_on_close.unwrap_or(!self.is_static());
        if !leave || self.member_id.is_empty() || self.leave_in_flight {
            return None;
        }
        Some(LeaveGroupRequest {
            group_id: self.group_id.clone(),
            member_id: self.member_id.clone(),
            members: vec![LeaveGroupRequestMember {
                member_id: self.member_id.clone(),
                group_instance_id: self.instance_id.clone(),
                reason: Some("odradek: the consumer is leaving".into()),
            }],
        })
    }

    pub(crate) fn leave_sent(&mut self) {
        self.leave_in_flight = true;
    }

    pub(crate) fn leave_done(&mut self) {
        self.leave_in_flight = false;
    }

    pub(crate) fn leave_in_flight(&self) -> bool {
        self.leave_in_flight
    }

    /// JoinGroup needs v5+ for a static member (`group.instance.id`).
    pub(crate) fn min_join_version(&self) -> i16 {
        if self.is_static() { 5 } else { 0 }
    }
}

/// The error of a commit by a member that lost its membership.
pub(crate) fn not_a_member() -> Error {
    Error::CommitFailed {
        reason: CommitFailure::NotAMember,
    }
}

/// Partitions grouped per topic, as the consumer protocol carries them.
fn group_by_topic(partitions: &[TopicPartition]) -> Vec<TopicPartitions> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(tp.topic()).or_default().push(tp.partition());
    }
    topics
        .into_iter()
        .map(|(topic, partitions)| TopicPartitions {
            topic: topic.to_string(),
            partitions,
        })
        .collect()
}

fn flatten(topics: &[TopicPartitions]) -> Vec<TopicPartition> {
    let mut out = Vec::new();
    for t in topics {
        let name: Arc<str> = Arc::from(t.topic.as_str());
        out.extend(
            t.partitions
                .iter()
                .filter(|&&p| p >= 0)
                .map(|&p| TopicPartition::new(name.clone(), p)),
        );
    }
    out
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
