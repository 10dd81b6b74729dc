//! Consumer-group membership inside the consumer: finding the coordinator,
//! join and sync, heartbeats, the rebalance protocols, offset commits and
//! committed-offset lookups. Everything here runs on the consumer's inputs;
//! rebalances start only when the application polls (its safe point).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Consumer, Event, PartitionState, Phase, Purpose, QueryId};
use crate::backoff::Retry;
use crate::conn::Node;
use crate::error::Error;
use crate::group::assignor::{MemberSubscription, RebalanceProtocol};
use crate::group::{GroupMetadata, RebalanceEvent};
use crate::protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse,
    join_group::JoinGroupRequestProtocol,
    leave_group::LeaveGroupRequestMember,
    offset_commit::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics},
    sync_group::SyncGroupRequestAssignment,
};
use crate::protocol::{ApiKey, ErrorCode, Request};
use crate::protocol::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, EmbeddedProtocol, TopicPartitions,
};
use crate::timer::Timer;
use crate::types::ConnId;
use crate::types::{BrokerAddress, BrokerId, OffsetAndMetadata, TopicPartition};

/// The protocol type of consumer groups.
const PROTOCOL_TYPE: &str = "consumer";
/// The newest consumer subscription version Odradek writes.
const SUBSCRIPTION_VERSION: i16 = 3;

/// Identifies a commit; its outcome arrives as [`Event::CommitDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(pub u64);

/// The answer to a committed-offsets lookup: per partition, the committed
/// offset, or `None` when the group has none.
pub type CommittedResult = Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, Error>;

/// Where the member stands in the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberState {
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

/// Why a commit was made, which decides who hears of its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommitKind {
    /// The application asked: its outcome is an event.
    User,
    /// Auto-commit: failures are only logged.
    Auto,
}

/// A commit on its way; its deadline is [`Timer::CommitDeadline`].
#[derive(Debug)]
struct PendingCommit {
    offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    kind: CommitKind,
    retry: Retry,
}

/// A committed-offsets lookup; its deadline is [`Timer::CommittedDeadline`].
#[derive(Debug)]
struct CommittedQuery {
    partitions: Vec<TopicPartition>,
    retry: Retry,
}

/// The JoinGroup answer a leader keeps while it waits for metadata.
#[derive(Debug)]
struct LeaderWork {
    protocol: String,
    members: Vec<MemberSubscription>,
}

/// What a member needs to take part in a group.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) id: String,
    instance_id: Option<String>,
    protocol: RebalanceProtocol,
    /// The subscribed topics; `None` when not subscribed (manual assignment).
    pub(super) subscription: Option<BTreeSet<String>>,
    /// A pattern subscription: `subscription` follows the topics matching it.
    pattern: Option<regex::Regex>,
    /// The pattern was evaluated against a topic list at least once.
    pattern_resolved: bool,
    coordinator: Option<(BrokerId, BrokerAddress)>,
    /// The coordinator before it was lost: its connection closes if the
    /// group turns out to have moved elsewhere.
    previous_coordinator: Option<BrokerId>,
    /// FindCoordinator.
    find: Retry,
    member_id: String,
    generation: i32,
    /// This member leads the current generation (runs the assignor).
    leader: bool,
    pub(super) state: MemberState,
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
    commits: BTreeMap<CommitId, PendingCommit>,
    next_commit: u64,
    /// Offsets known to be committed, so auto-commit sends only changes.
    last_committed: HashMap<TopicPartition, i64>,
    committed_queries: BTreeMap<QueryId, CommittedQuery>,
    /// OffsetFetch of the committed offsets that start new partitions.
    positions_fetch: Retry,
    /// Partition counts the current assignment was made from: a change
    /// means a rebalance.
    snapshot: BTreeMap<String, usize>,
    /// The topics every member subscribes to (known to the leader only).
    group_topics: BTreeSet<String>,
    leader_work: Option<LeaderWork>,
    /// Closing (until [`Timer::Close`]): whether the LeaveGroup went out.
    closing: Option<bool>,
    leave_in_flight: bool,
}

impl Group {
    pub(super) fn new(
        id: String,
        instance_id: Option<String>,
        protocol: RebalanceProtocol,
    ) -> Self {
        Self {
            id,
            instance_id,
            protocol,
            subscription: None,
            pattern: None,
            pattern_resolved: false,
            coordinator: None,
            previous_coordinator: None,
            find: Retry::new(Timer::FindCoordinator),
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
            commits: BTreeMap::new(),
            next_commit: 1,
            last_committed: HashMap::new(),
            committed_queries: BTreeMap::new(),
            positions_fetch: Retry::new(Timer::PositionsFetchRetry),
            snapshot: BTreeMap::new(),
            group_topics: BTreeSet::new(),
            leader_work: None,
            closing: None,
            leave_in_flight: false,
        }
    }

    pub(super) fn coordinator_address(&self) -> Option<BrokerAddress> {
        self.coordinator.as_ref().map(|(_, a)| a.clone())
    }

    fn is_static(&self) -> bool {
        self.instance_id.is_some()
    }

    /// Forget the coordinator: find it again.
    fn coordinator_lost(&mut self) {
        if let Some((id, _)) = self.coordinator.take() {
            self.previous_coordinator = Some(id);
        }
        self.heartbeat_in_flight = false;
    }

    /// Forget the membership (the coordinator no longer knows it).
    fn reset_member(&mut self, keep_member_id: bool) {
        if !keep_member_id {
            self.member_id.clear();
        }
        self.generation = -1;
        self.state = MemberState::Unjoined;
        self.heartbeat_due = false;
        self.leader_work = None;
        if self.subscription.is_some() {
            self.rejoin_needed = true;
            self.join_prepared = false;
        }
    }

    /// Replaces the subscribed topics; a change means a rejoin.
    fn set_subscription(&mut self, topics: BTreeSet<String>) {
        if self.subscription.as_ref() != Some(&topics) {
            self.subscription = Some(topics);
            self.rejoin_needed = true;
            self.join_prepared = false;
        }
    }

    /// Subscribed, and (for a pattern) the matching topics are known.
    fn can_join(&self) -> bool {
        self.subscription.is_some() && (self.pattern.is_none() || self.pattern_resolved)
    }

    fn user_commits_in_flight(&self) -> bool {
        !self.commits.is_empty()
    }

    pub(super) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    pub(super) fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Topics the leader must know the partition counts of.
    pub(super) fn leader_topics(&self) -> impl Iterator<Item = &str> {
        self.group_topics.iter().map(String::as_str)
    }
}

impl Consumer {
    // ---- group commands -----------------------------------------------

    /// Subscribes to `topics` (replacing any earlier subscription); the
    /// group assigns partitions at the next poll. Needs `group.id`.
    pub fn subscribe(
        &mut self,
        topics: impl IntoIterator<Item = impl Into<String>>,
        now: Instant,
    ) -> Result<(), Error> {
        self.check_usable()?;
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if let Some(t) = topics.iter().find(|t| t.trim().is_empty()) {
            return Err(Error::InvalidArgument(format!("invalid topic name `{t}`")));
        }
        if topics.is_empty() {
            return self.unsubscribe(now);
        }
        self.check_can_subscribe()?;
        if let Some(group) = self.group.as_mut() {
            group.pattern = None;
            group.set_subscription(topics);
        }
        self.metadata.set_all_topics(false);
        self.update_wanted_metadata();
        self.progress(now);
        Ok(())
    }

    /// Subscribes to every topic whose whole name matches the regular
    /// expression `pattern` (Java's `subscribe(Pattern)`), replacing any
    /// earlier subscription. Internal topics never match. The pattern is
    /// evaluated against the cluster's topic list at every metadata refresh
    /// (`metadata.max.age.ms`), so topics created later join the
    /// subscription and deleted ones leave it; the member joins the group
    /// once the first list arrived. Needs `group.id`.
    pub fn subscribe_pattern(&mut self, pattern: &str, now: Instant) -> Result<(), Error> {
        self.check_usable()?;
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            Error::InvalidArgument(format!("invalid topic pattern `{pattern}`: {e}"))
        })?;
        self.check_can_subscribe()?;
        if let Some(group) = self.group.as_mut() {
            if group.pattern.as_ref().map(regex::Regex::as_str) != Some(regex.as_str()) {
                group.pattern = Some(regex);
                group.pattern_resolved = false;
                // Until the topic list arrives the member holds on to what it
                // has; it joins when the list says what matches.
                let current = group.subscription.clone().unwrap_or_default();
                group.subscription = Some(current);
                group.rejoin_needed = true;
                group.join_prepared = false;
            }
        }
        self.metadata.set_all_topics(true);
        self.update_wanted_metadata();
        self.progress(now);
        Ok(())
    }

    fn check_can_subscribe(&self) -> Result<(), Error> {
        let Some(group) = self.group.as_ref() else {
            return Err(Error::NoGroup("subscribe"));
        };
        if group.subscription.is_none() && !self.partitions.is_empty() {
            return Err(Error::InvalidArgument(
                "subscribe after assign: unassign (assign no partitions) first".into(),
            ));
        }
        Ok(())
    }

    /// A metadata refresh listed the cluster's topics: a pattern
    /// subscription follows what now matches.
    pub(super) fn group_on_topic_list(&mut self, listed: &BTreeSet<Arc<str>>) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let Some(pattern) = group.pattern.as_ref() else {
            return;
        };
        let matching: BTreeSet<String> = listed
            .iter()
            .filter(|t| pattern.is_match(t))
            .map(|t| t.to_string())
            .collect();
        let first = !group.pattern_resolved;
        group.pattern_resolved = true;
        let changed = group.subscription.as_ref() != Some(&matching);
        if changed {
            tracing::info!(group = %group.id, topics = ?matching, "pattern subscription changed");
            group.set_subscription(matching);
        }
        if changed || first {
            self.update_wanted_metadata();
            self.signal_poll_ready();
        }
    }

    /// Leaves the group: revokes the assignment (committing first with
    /// auto-commit), sends LeaveGroup and clears the subscription.
    pub fn unsubscribe(&mut self, now: Instant) -> Result<(), Error> {
        self.check_usable()?;
        let Some(group) = self.group.as_mut() else {
            return Ok(());
        };
        if group.subscription.is_none() {
            return Ok(());
        }
        let owned: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        self.revoke(owned, now);
        // The revocation's auto-commit goes out first, with the generation.
        self.send_commits(now);
        if let Some(group) = self.group.as_mut() {
            group.subscription = None;
            group.pattern = None;
            group.rejoin_needed = false;
        }
        self.metadata.set_all_topics(false);
        self.send_leave(now);
        if let Some(group) = self.group.as_mut() {
            group.reset_member(false);
            group.rejoin_needed = false;
        }
        self.update_wanted_metadata();
        self.progress(now);
        Ok(())
    }

    /// The subscribed topics (empty when not subscribed).
    pub fn subscription(&self) -> Vec<String> {
        self.group
            .as_ref()
            .and_then(|g| g.subscription.as_ref())
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The next rebalance event for the application's listener. After
    /// handling the events, call [`ack_rebalance`](Self::ack_rebalance):
    /// the consumer holds the rebalance until then.
    pub fn poll_rebalance(&mut self) -> Option<RebalanceEvent> {
        self.group.as_mut()?.events.pop_front()
    }

    /// The application handled the rebalance events it took: the rebalance
    /// may go on (after any commit made while handling them).
    pub fn ack_rebalance(&mut self, now: Instant) {
        if let Some(group) = self.group.as_mut() {
            if group.events.is_empty() {
                group.awaiting_ack = false;
                group.revoking.clear();
            }
        }
        self.progress(now);
    }

    /// The group generation and member id, while a member.
    pub fn group_membership(&self) -> Option<(i32, String)> {
        let group = self.group.as_ref()?;
        (group.state == MemberState::Stable).then(|| (group.generation, group.member_id.clone()))
    }

    /// Who this member is in its group: `None` without a `group.id`. Before
    /// the first join completes the member id is empty and the generation
    /// -1 (Java's `groupMetadata()`); [`GroupMetadata::leader`] tells
    /// whether this member ran the assignor of the current generation.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        let group = self.group.as_ref()?;
        let stable = group.state == MemberState::Stable;
        Some(GroupMetadata {
            group_id: group.id.clone(),
            generation_id: if stable { group.generation } else { -1 },
            member_id: if stable {
                group.member_id.clone()
            } else {
                String::new()
            },
            group_instance_id: group.instance_id.clone(),
            leader: stable && group.leader,
        })
    }

    /// Commits offsets to the group: `None` commits the positions of every
    /// assigned partition (what was delivered), `Some` commits exactly
    /// those. The outcome arrives as [`Event::CommitDone`]; retriable
    /// failures are retried until `timeout`.
    pub fn commit(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        timeout: Duration,
        now: Instant,
    ) -> Result<CommitId, Error> {
        self.check_usable()?;
        let offsets = match offsets {
            Some(offsets) => offsets,
            None => self.delivered_positions(None),
        };
        if let Some((tp, _)) = offsets
            .iter()
            .find(|(tp, o)| o.offset < 0 || tp.partition() < 0)
        {
            return Err(Error::InvalidArgument(format!(
                "invalid offset to commit for {tp}"
            )));
        }
        let Some(group) = self.group.as_mut() else {
            return Err(Error::NoGroup("commit"));
        };
        if group.subscription.is_some() {
            match group.state {
                MemberState::Joining | MemberState::Assigning | MemberState::Syncing => {
                    return Err(Error::RebalanceInProgress);
                }
                MemberState::Unjoined if group.generation < 0 => {
                    return Err(Error::CommitFailed {
                        reason: "the member is not in the group (it lost its membership)".into(),
                    });
                }
                _ => {}
            }
        }
        let id = self.queue_commit(offsets, CommitKind::User, now + timeout);
        self.progress(now);
        Ok(id)
    }

    /// A commit from a rebalance listener: allowed while the rebalance
    /// waits for the listener, and the rejoin waits for it.
    pub(crate) fn commit_from_listener(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        timeout: Duration,
        now: Instant,
    ) -> Result<CommitId, Error> {
        self.check_usable()?;
        if self.group.is_none() {
            return Err(Error::NoGroup("commit"));
        }
        let offsets = offsets.unwrap_or_else(|| self.delivered_positions(None));
        let id = self.queue_commit(offsets, CommitKind::User, now + timeout);
        self.progress(now);
        Ok(id)
    }

    /// Starts looking up the group's committed offsets for `partitions`;
    /// the answer arrives as [`Event::CommittedDone`].
    pub fn committed(
        &mut self,
        partitions: &[TopicPartition],
        timeout: Duration,
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.check_usable()?;
        let Some(group) = self.group.as_mut() else {
            return Err(Error::NoGroup("committed"));
        };
        let id = QueryId(self.next_query);
        self.next_query += 1;
        if partitions.is_empty() {
            self.events.push_back(Event::CommittedDone {
                id,
                result: Ok(BTreeMap::new()),
            });
            return Ok(id);
        }
        group.committed_queries.insert(
            id,
            CommittedQuery {
                partitions: partitions.to_vec(),
                retry: Retry::new(Timer::CommittedRetry(id)),
            },
        );
        self.timers.set(Timer::CommittedDeadline(id), now + timeout);
        self.progress(now);
        Ok(id)
    }

    // ---- internals ----------------------------------------------------

    /// The positions of assigned partitions that have one (everything
    /// before them was delivered), optionally only of `only`.
    fn delivered_positions(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let mut out: BTreeMap<TopicPartition, OffsetAndMetadata> = self
            .partitions
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)))
            .filter(|(_, s)| matches!(s.phase, Phase::Fetching) && s.position >= 0)
            .map(|(tp, s)| {
                (
                    tp.clone(),
                    OffsetAndMetadata {
                        offset: s.position,
                        leader_epoch: s.position_epoch,
                        metadata: String::new(),
                    },
                )
            })
            .collect();
        if let Some(group) = &self.group {
            // Partitions being revoked still count until the revocation is
            // acknowledged: the listener's commit covers them.
            for (tp, o) in &group.revoking {
                if only.is_none_or(|o| o.contains(tp)) {
                    out.entry(tp.clone()).or_insert_with(|| o.clone());
                }
            }
        }
        out
    }

    fn queue_commit(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        kind: CommitKind,
        deadline: Instant,
    ) -> CommitId {
        let Some(group) = self.group.as_mut() else {
            return CommitId(0);
        };
        let id = CommitId(group.next_commit);
        group.next_commit += 1;
        if offsets.is_empty() {
            if kind == CommitKind::User {
                self.events
                    .push_back(Event::CommitDone { id, result: Ok(()) });
            }
            return id;
        }
        group.commits.insert(
            id,
            PendingCommit {
                offsets,
                kind,
                retry: Retry::new(Timer::CommitRetry(id)),
            },
        );
        self.timers.set(Timer::CommitDeadline(id), deadline);
        id
    }

    /// Auto-commits the delivered positions of `partitions` (if enabled)
    /// before they are revoked.
    fn commit_before_revoke(&mut self, partitions: &[TopicPartition], now: Instant) {
        if !self.config.enable_auto_commit {
            return;
        }
        let offsets = self.changed_positions(Some(partitions));
        let deadline = now
            + self
                .config
                .request_timeout
                .min(self.config.max_poll_interval);
        self.queue_commit(offsets, CommitKind::Auto, deadline);
    }

    /// Delivered positions that differ from what is known to be committed.
    fn changed_positions(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let Some(group) = self.group.as_ref() else {
            return BTreeMap::new();
        };
        self.delivered_positions(only)
            .into_iter()
            .filter(|(tp, o)| group.last_committed.get(tp) != Some(&o.offset))
            .collect()
    }

    /// Takes `partitions` away from the application: their buffers go and
    /// the listener hears `Revoked` (after an auto-commit of their positions).
    fn revoke(&mut self, partitions: Vec<TopicPartition>, now: Instant) {
        if partitions.is_empty() {
            return;
        }
        self.commit_before_revoke(&partitions, now);
        let positions = self.delivered_positions(Some(&partitions));
        self.remove_partitions(&partitions);
        if let Some(group) = self.group.as_mut() {
            group.revoking.extend(positions);
            group.events.push_back(RebalanceEvent::Revoked(partitions));
            group.awaiting_ack = true;
        }
        self.signal_poll_ready();
    }

    /// The membership is gone: the partitions are lost, never committed.
    fn lose_partitions(&mut self) {
        let owned: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        self.remove_partitions(&owned);
        if let Some(group) = self.group.as_mut() {
            // Commits for the old generation would be refused anyway.
            group.commits.retain(|_, c| c.kind == CommitKind::User);
            if !owned.is_empty() {
                group.events.push_back(RebalanceEvent::Lost(owned));
                group.awaiting_ack = true;
            }
        }
        self.signal_poll_ready();
    }

    fn remove_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(mut state) = self.partitions.remove(tp) {
                self.buffered_bytes -= state.buffer.clear();
                state.retry.cancel(&mut self.timers);
            }
            if let Some(group) = self.group.as_mut() {
                group.last_committed.remove(tp);
            }
        }
        self.update_wanted_metadata();
    }

    /// The start state of a newly assigned partition: with a group, its
    /// committed offset is looked up first.
    pub(super) fn new_partition_state(&self, tp: &TopicPartition) -> PartitionState {
        let mut state = PartitionState::new(tp, self.config.auto_offset_reset);
        if self.group.is_some() {
            state.phase = Phase::AwaitingCommitted;
        }
        state
    }

    /// Group work that happens when the application polls: the poll timer
    /// restarts and a pending rejoin revokes what it must.
    pub(super) fn group_on_poll(&mut self, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        group.poll_expired = false;
        self.timers
            .set(Timer::PollInterval, now + self.config.max_poll_interval);
        self.timers
            .set(Timer::PollHalfway, now + self.config.max_poll_interval / 2);
        if !group.can_join()
            || !group.rejoin_needed
            || group.join_prepared
            || group.awaiting_ack
            || !matches!(group.state, MemberState::Unjoined | MemberState::Stable)
        {
            return;
        }
        group.join_prepared = true;
        let subscription = group.subscription.clone().unwrap_or_default();
        let revoke: Vec<TopicPartition> = match group.protocol {
            RebalanceProtocol::Eager => self.partitions.keys().cloned().collect(),
            RebalanceProtocol::Cooperative => self
                .partitions
                .keys()
                .filter(|tp| !subscription.contains(tp.topic()))
                .cloned()
                .collect(),
        };
        self.revoke(revoke, now);
    }

    /// True when the application should poll for the group's sake: a
    /// rebalance waits for it, or its listener has events.
    pub(super) fn group_wants_poll(&self) -> bool {
        self.group.as_ref().is_some_and(|g| {
            !g.events.is_empty()
                || (g.can_join()
                    && g.rejoin_needed
                    && !g.join_prepared
                    && !g.awaiting_ack
                    && matches!(g.state, MemberState::Unjoined | MemberState::Stable))
        })
    }

    /// A group timer went off.
    pub(super) fn group_timer(&mut self, timer: Timer, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        match timer {
            Timer::CommitDeadline(id) => self.finish_commit(
                id,
                Err(Error::CommitFailed {
                    reason: "timed out before the coordinator accepted it".into(),
                }),
            ),
            Timer::CommittedDeadline(id) => {
                if let Some(query) = group.committed_queries.remove(&id) {
                    query.retry.cancel(&mut self.timers);
                    self.events.push_back(Event::CommittedDone {
                        id,
                        result: Err(Error::Timeout("committed offsets not found in time".into())),
                    });
                }
            }
            Timer::PollInterval => {
                if group.subscription.is_none() {
                    return;
                }
                // No rejoin without a poll from now on.
                group.poll_expired = true;
                if group.state != MemberState::Unjoined {
                    // The application stopped polling: leave so the group
                    // can move on without us, and rejoin at the next poll.
                    tracing::warn!(group = %group.id, "max.poll.interval.ms passed without a poll: leaving the group");
                    self.send_leave(now);
                    self.lose_partitions();
                    if let Some(group) = self.group.as_mut() {
                        let keep = group.is_static();
                        group.reset_member(keep);
                    }
                }
            }
            Timer::PollHalfway
                if group.subscription.is_some()
                    && group.state != MemberState::Unjoined
                    && !group.poll_expired =>
            {
                self.signal_poll_ready();
            }
            Timer::Heartbeat => group.heartbeat_due = true,
            Timer::SessionExpiry
                if group.state == MemberState::Stable && group.coordinator.is_some() =>
            {
                // No heartbeat got through for a whole session: the
                // coordinator is presumed dead; find it again (it will tell
                // us whether we are still a member).
                group.coordinator_lost();
            }
            Timer::AutoCommit => {
                let auto_in_flight = group.commits.values().any(|c| c.kind == CommitKind::Auto);
                let stable = group.subscription.is_none() || group.state == MemberState::Stable;
                if self.config.enable_auto_commit && !auto_in_flight && stable {
                    let offsets = self.changed_positions(None);
                    let deadline = now
                        + self
                            .config
                            .auto_commit_interval
                            .max(self.config.request_timeout);
                    self.queue_commit(offsets, CommitKind::Auto, deadline);
                }
            }
            Timer::Close if group.closing.is_some() => self.finish_close(now),
            _ => {}
        }
    }

    /// Restarts the session timer: the coordinator answered a heartbeat
    /// (or the membership began).
    fn session_alive(&mut self, now: Instant) {
        self.timers
            .set(Timer::SessionExpiry, now + self.config.session_timeout);
    }

    /// Sends whatever group requests are due. Called from `progress`.
    pub(super) fn group_progress(&mut self, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let active = group.subscription.is_some()
            || !group.commits.is_empty()
            || !group.committed_queries.is_empty()
            || group.closing.is_some()
            || self
                .partitions
                .values()
                .any(|s| matches!(s.phase, Phase::AwaitingCommitted));
        if self.config.enable_auto_commit && !self.partitions.is_empty() {
            self.timers
                .set_if_unset(Timer::AutoCommit, now + self.config.auto_commit_interval);
        }
        if !active {
            return;
        }
        if group.coordinator.is_none() {
            self.send_find_coordinator(now);
            return;
        }
        if group.leader_work.is_some() {
            self.try_assign(now);
        }
        self.send_commits(now);
        self.send_positions_fetch(now);
        self.send_committed_queries(now);
        self.send_join(now);
        self.send_heartbeat(now);
        self.check_close_done(now);
    }

    fn coordinator_conn(&mut self, now: Instant) -> Option<crate::types::ConnId> {
        let (id, address) = self.group.as_ref()?.coordinator.clone()?;
        let conn = self
            .conns
            .ready(Node::Coordinator(id), &address, now, &mut self.timers)?;
        self.conns.can_send(conn).then_some(conn)
    }

    fn send_find_coordinator(&mut self, now: Instant) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if !group.find.ready(&self.timers) {
            return;
        }
        let key = group.id.clone();
        let Some(conn) = self.any_broker_conn(now) else {
            return;
        };
        let Ok(version) = self.conns.version(conn, ApiKey::FindCoordinator) else {
            return self.fail_fatal_unsupported(conn, ApiKey::FindCoordinator);
        };
        let request = FindCoordinatorRequest {
            key: key.clone(),
            key_type: 0,
            coordinator_keys: vec![key],
        };
        if self.send_group(conn, &request, version, Purpose::FindCoordinator, now) {
            if let Some(group) = self.group.as_mut() {
                group.find.sent();
            }
        }
    }

    /// The coordinator's connection, if ready, and the version of `api`
    /// it speaks; a coordinator without `api` is a fatal error.
    fn coordinator_for(&mut self, api: ApiKey, now: Instant) -> Option<(ConnId, i16)> {
        let conn = self.coordinator_conn(now)?;
        match self.conns.version(conn, api) {
            Ok(version) => Some((conn, version)),
            Err(_) => {
                self.fail_fatal_unsupported(conn, api);
                None
            }
        }
    }

    /// Sends a group request with the usual request timeout; true when it
    /// went out.
    fn send_group<R: Request>(
        &mut self,
        conn: ConnId,
        request: &R,
        version: i16,
        purpose: Purpose,
        now: Instant,
    ) -> bool {
        self.conns
            .send(
                conn,
                request,
                version,
                Duration::ZERO,
                purpose,
                now,
                &mut self.timers,
            )
            .is_ok()
    }

    /// True for an answer (or failure) from a coordinator the group has
    /// since left for another broker.
    pub(super) fn is_former_coordinator(&self, node: Node) -> bool {
        let Node::Coordinator(id) = node else {
            return false;
        };
        self.group
            .as_ref()
            .and_then(|g| g.coordinator.as_ref())
            .is_some_and(|(current, _)| *current != id)
    }

    /// The coordinator the group talks to now.
    pub(super) fn current_coordinator(&self) -> Option<(BrokerId, BrokerAddress)> {
        self.group.as_ref()?.coordinator.clone()
    }

    /// Puts `coordinator` back if handling a former coordinator's answer
    /// dropped it.
    pub(super) fn restore_coordinator(&mut self, coordinator: Option<(BrokerId, BrokerAddress)>) {
        if let Some(group) = self.group.as_mut() {
            if group.coordinator.is_none() && !group.find.in_flight() {
                group.coordinator = coordinator;
            }
        }
    }

    /// A ready connection to any broker (least loaded), for requests that
    /// any broker answers.
    fn any_broker_conn(&mut self, now: Instant) -> Option<crate::types::ConnId> {
        let mut candidates: Vec<(Node, BrokerAddress)> = self
            .metadata
            .brokers()
            .map(|(id, a)| (Node::Broker(id), a.clone()))
            .collect();
        candidates.extend(
            self.config
                .bootstrap_servers
                .iter()
                .enumerate()
                .map(|(i, a)| (Node::Bootstrap(i), a.clone())),
        );
        let (node, address) = self.conns.least_loaded(&candidates, &self.timers)?;
        let conn = self.conns.ready(node, &address, now, &mut self.timers)?;
        self.conns.can_send(conn).then_some(conn)
    }

    fn fail_fatal_unsupported(&mut self, conn: crate::types::ConnId, api: ApiKey) {
        // `version` failed: the broker lacks the API at any version we know.
        let _ = (conn, api);
        self.set_fatal(Error::Group {
            group: self
                .group
                .as_ref()
                .map(|g| g.id.clone())
                .unwrap_or_default(),
            api,
            code: ErrorCode::UNSUPPORTED_VERSION,
        });
    }

    pub(super) fn set_fatal(&mut self, error: Error) {
        if self.fatal.is_none() {
            self.fatal = Some(error);
            self.events.push_back(Event::PollReady);
            self.events.push_back(Event::PositionsChanged);
        }
    }

    pub(super) fn on_find_coordinator(
        &mut self,
        response: Option<FindCoordinatorResponse>,
        now: Instant,
    ) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        group.find.settled();
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
            Some(Ok(coordinator)) => {
                let moved_from = group
                    .previous_coordinator
                    .take()
                    .filter(|&old| old != coordinator.0);
                group.coordinator = Some(coordinator);
                group.find.succeeded(&mut self.timers);
                self.session_alive(now);
                if let Some(old) = moved_from {
                    self.conns.close_node(
                        Node::Coordinator(old),
                        "the group coordinator moved to another broker",
                        now,
                        &mut self.timers,
                    );
                }
            }
            Some(Err(code)) => {
                let group_id = group.id.clone();
                self.poll_error.get_or_insert(Error::Group {
                    group: group_id,
                    api: ApiKey::FindCoordinator,
                    code,
                });
                let Some(group) = self.group.as_mut() else {
                    return;
                };
                group
                    .find
                    .failed(now, &mut self.retry_backoff, &mut self.timers);
            }
            None => {
                group
                    .find
                    .failed(now, &mut self.retry_backoff, &mut self.timers);
                self.metadata.request_update();
            }
        }
    }

    fn send_join(&mut self, now: Instant) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let ready = group.can_join()
            && group.rejoin_needed
            && group.join_prepared
            && !group.awaiting_ack
            && !group.user_commits_in_flight()
            && group.closing.is_none()
            && !group.poll_expired
            && matches!(group.state, MemberState::Unjoined | MemberState::Stable)
            && group.join.ready(&self.timers);
        if !ready {
            return;
        }
        let Some((conn, version)) = self.coordinator_for(ApiKey::JoinGroup, now) else {
            return;
        };
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if group.is_static() && version < 5 {
            return self.set_fatal(Error::Group {
                group: group.id.clone(),
                api: ApiKey::JoinGroup,
                code: ErrorCode::UNSUPPORTED_VERSION,
            });
        }
        let topics: Vec<String> = group.subscription.iter().flatten().cloned().collect();
        let owned = group_by_topic(self.partitions.keys());
        let rack = (!self.config.client_rack.is_empty()).then(|| self.config.client_rack.clone());
        let mut protocols = Vec::new();
        for assignor in self.config.partition_assignment_strategy.iter() {
            let subscription = ConsumerProtocolSubscription {
                topics: topics.clone(),
                user_data: assignor.subscription_user_data(&topics),
                owned_partitions: owned.clone(),
                generation_id: group.generation,
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
        let request = JoinGroupRequest {
            group_id: group.id.clone(),
            session_timeout_ms: millis(self.config.session_timeout),
            rebalance_timeout_ms: millis(self.config.max_poll_interval),
            member_id: group.member_id.clone(),
            group_instance_id: group.instance_id.clone(),
            protocol_type: PROTOCOL_TYPE.into(),
            protocols,
            reason: Some("odradek: joining".into()),
        };
        // The coordinator may hold the join for a whole rebalance.
        let extra = self.config.max_poll_interval + Duration::from_secs(5);
        if self
            .conns
            .send(
                conn,
                &request,
                version,
                extra,
                Purpose::JoinGroup,
                now,
                &mut self.timers,
            )
            .is_ok()
        {
            if let Some(group) = self.group.as_mut() {
                group.state = MemberState::Joining;
                group.rejoin_needed = false;
                group.join_prepared = false;
            }
        }
    }

    /// A join or sync failed in a way worth retrying after a pause.
    fn retry_join_later(&mut self, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        group.state = MemberState::Unjoined;
        group.rejoin_needed = true;
        // The revocation (if any) already happened for this rebalance.
        group.join_prepared = true;
        group
            .join
            .failed(now, &mut self.retry_backoff, &mut self.timers);
    }

    /// A JoinGroup or SyncGroup error the two share: a moved or missing
    /// coordinator (found again), one still loading the group (the same
    /// one, later), other retriable errors (rejoin after a backoff), a
    /// fenced static member, and anything else, which ends the membership
    /// with a typed fatal error.
    fn on_rebalance_error(&mut self, api: ApiKey, code: ErrorCode, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        match code {
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                group.coordinator_lost();
                self.retry_join_later(now);
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                let instance_id = group.instance_id.clone().unwrap_or_default();
                self.set_fatal(Error::FencedInstanceId { instance_id });
            }
            code if code.is_retriable() => self.retry_join_later(now),
            code => {
                let error = Error::Group {
                    group: group.id.clone(),
                    api,
                    code,
                };
                group.state = MemberState::Unjoined;
                group.subscription = None;
                group.pattern = None;
                self.metadata.set_all_topics(false);
                self.update_wanted_metadata();
                self.set_fatal(error);
            }
        }
    }

    pub(super) fn on_join(&mut self, response: Option<JoinGroupResponse>, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        if group.state != MemberState::Joining {
            return;
        }
        let Some(response) = response else {
            group.coordinator_lost();
            return self.retry_join_later(now);
        };
        let code = ErrorCode(response.error_code);
        match code {
            ErrorCode::NONE => {}
            ErrorCode::MEMBER_ID_REQUIRED => {
                // KIP-394: join again at once with the id we were given.
                group.member_id = response.member_id;
                group.state = MemberState::Unjoined;
                group.rejoin_needed = true;
                group.join_prepared = true;
                return;
            }
            ErrorCode::UNKNOWN_MEMBER_ID => {
                group.member_id.clear();
                group.generation = -1;
                // What a cooperative member still owns may be another's now.
                self.lose_partitions();
                return self.retry_join_later(now);
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::REBALANCE_IN_PROGRESS => {
                return self.retry_join_later(now);
            }
            code => return self.on_rebalance_error(ApiKey::JoinGroup, code, now),
        }
        group.join.succeeded(&mut self.timers);
        group.member_id = response.member_id.clone();
        group.generation = response.generation_id;
        group.leader = response.leader == response.member_id;
        let protocol = response.protocol_name.clone().unwrap_or_default();
        if group.leader && !response.skip_assignment {
            let mut members = Vec::new();
            let mut topics = BTreeSet::new();
            for m in &response.members {
                let Ok((_, sub)) =
                    ConsumerProtocolSubscription::from_versioned_bytes(m.metadata.clone())
                else {
                    // A member whose subscription we cannot read gets
                    // nothing; the others still get their partitions.
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
            group.group_topics = topics;
            group.leader_work = Some(LeaderWork { protocol, members });
            group.state = MemberState::Assigning;
            // The assignment needs every subscribed topic's partition count.
            self.update_wanted_metadata();
            self.metadata.request_update();
            self.try_assign(now);
        } else {
            group.group_topics.clear();
            self.send_sync(Vec::new(), protocol, now);
        }
    }

    /// The leader runs the assignor once metadata describes every topic.
    fn try_assign(&mut self, now: Instant) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if group.state != MemberState::Assigning {
            return;
        }
        let mut counts = BTreeMap::new();
        for topic in &group.group_topics {
            match self.metadata.partition_count(topic) {
                Some(n) => {
                    counts.insert(topic.clone(), i32::try_from(n).unwrap_or(i32::MAX));
                }
                None => return,
            }
        }
        let Some(work) = self.group.as_mut().and_then(|g| g.leader_work.take()) else {
            return;
        };
        let Some(assignor) = self
            .config
            .partition_assignment_strategy
            .get(&work.protocol)
            .cloned()
        else {
            let group = self
                .group
                .as_ref()
                .map(|g| g.id.clone())
                .unwrap_or_default();
            return self.set_fatal(Error::Group {
                group,
                api: ApiKey::JoinGroup,
                code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL,
            });
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
                    assignment
                        .map(|a| a.partitions.iter())
                        .into_iter()
                        .flatten(),
                ),
                user_data: assignment.and_then(|a| a.user_data.clone()),
            }
            .to_versioned_bytes(SUBSCRIPTION_VERSION);
            out.push(SyncGroupRequestAssignment {
                member_id: member.member_id.clone(),
                assignment: encoded.unwrap_or_default(),
            });
        }
        if let Some(group) = self.group.as_mut() {
            group.snapshot = counts
                .into_iter()
                .map(|(t, n)| (t, usize::try_from(n).unwrap_or(0)))
                .collect();
        }
        self.send_sync(out, work.protocol, now);
    }

    fn send_sync(
        &mut self,
        assignments: Vec<SyncGroupRequestAssignment>,
        protocol: String,
        now: Instant,
    ) {
        // The sync waits for the coordinator connection; the join response
        // came over it, so it is normally ready at once.
        let Some(conn) = self.coordinator_conn(now) else {
            if let Some(group) = self.group.as_mut() {
                group.coordinator_lost();
            }
            return self.retry_join_later(now);
        };
        let Ok(version) = self.conns.version(conn, ApiKey::SyncGroup) else {
            return self.fail_fatal_unsupported(conn, ApiKey::SyncGroup);
        };
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let generation = group.generation;
        let request = SyncGroupRequest {
            group_id: group.id.clone(),
            generation_id: generation,
            member_id: group.member_id.clone(),
            group_instance_id: group.instance_id.clone(),
            protocol_type: Some(PROTOCOL_TYPE.into()),
            protocol_name: Some(protocol),
            assignments,
        };
        let extra = self.config.max_poll_interval;
        if self
            .conns
            .send(
                conn,
                &request,
                version,
                extra,
                Purpose::SyncGroup { generation },
                now,
                &mut self.timers,
            )
            .is_ok()
        {
            if let Some(group) = self.group.as_mut() {
                group.state = MemberState::Syncing;
            }
        } else {
            self.retry_join_later(now);
        }
    }

    pub(super) fn on_sync(
        &mut self,
        response: Option<SyncGroupResponse>,
        generation: i32,
        now: Instant,
    ) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        if group.state != MemberState::Syncing || group.generation != generation {
            return;
        }
        let Some(response) = response else {
            group.coordinator_lost();
            return self.retry_join_later(now);
        };
        let code = ErrorCode(response.error_code);
        match code {
            ErrorCode::NONE => {}
            ErrorCode::REBALANCE_IN_PROGRESS => return self.retry_join_later(now),
            ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION => {
                if code == ErrorCode::UNKNOWN_MEMBER_ID {
                    group.member_id.clear();
                }
                group.generation = -1;
                // What a cooperative member still owns may be another's now.
                self.lose_partitions();
                return self.retry_join_later(now);
            }
            code => return self.on_rebalance_error(ApiKey::SyncGroup, code, now),
        }
        let assigned: BTreeSet<TopicPartition> = if response.assignment.is_empty() {
            BTreeSet::new()
        } else {
            match ConsumerProtocolAssignment::from_versioned_bytes(response.assignment) {
                Ok((_, a)) => flatten(&a.assigned_partitions).into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable assignment; rejoining");
                    return self.retry_join_later(now);
                }
            }
        };
        self.apply_assignment(assigned, now);
    }

    fn apply_assignment(&mut self, assigned: BTreeSet<TopicPartition>, now: Instant) {
        let owned: BTreeSet<TopicPartition> = self.partitions.keys().cloned().collect();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        if let Some(group) = self.group.as_mut() {
            group.state = MemberState::Stable;
            group.heartbeat_due = false;
            self.timers
                .set(Timer::Heartbeat, now + self.config.heartbeat_interval);
            self.timers
                .set(Timer::SessionExpiry, now + self.config.session_timeout);
            if group.group_topics.is_empty() {
                // A follower watches the partition counts of its own topics.
                group.snapshot = group
                    .subscription
                    .iter()
                    .flatten()
                    .filter_map(|t| Some((t.clone(), self.metadata.partition_count(t)?)))
                    .collect();
            }
        }
        if !revoked.is_empty() {
            // Cooperative: give these up now; their new owner gets them in
            // the next generation, which we join after the revocation.
            self.revoke(revoked, now);
            if let Some(group) = self.group.as_mut() {
                group.rejoin_needed = true;
                group.join_prepared = false;
            }
        }
        for tp in &added {
            let state = self.new_partition_state(tp);
            self.partitions.insert(tp.clone(), state);
        }
        if let Some(group) = self.group.as_mut() {
            group.events.push_back(RebalanceEvent::Assigned(added));
        }
        self.update_wanted_metadata();
        self.signal_poll_ready();
    }

    fn send_heartbeat(&mut self, now: Instant) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if group.state != MemberState::Stable || group.heartbeat_in_flight || !group.heartbeat_due {
            return;
        }
        let Some((conn, version)) = self.coordinator_for(ApiKey::Heartbeat, now) else {
            return;
        };
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let generation = group.generation;
        let request = HeartbeatRequest {
            group_id: group.id.clone(),
            generation_id: generation,
            member_id: group.member_id.clone(),
            group_instance_id: group.instance_id.clone(),
        };
        if self.send_group(
            conn,
            &request,
            version,
            Purpose::Heartbeat { generation },
            now,
        ) {
            if let Some(group) = self.group.as_mut() {
                group.heartbeat_in_flight = true;
                group.heartbeat_due = false;
                self.timers
                    .set(Timer::Heartbeat, now + self.config.heartbeat_interval);
            }
        }
    }

    pub(super) fn on_heartbeat(
        &mut self,
        response: Option<HeartbeatResponse>,
        generation: i32,
        now: Instant,
    ) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        group.heartbeat_in_flight = false;
        if group.generation != generation || group.state != MemberState::Stable {
            return;
        }
        let Some(response) = response else {
            group.coordinator_lost();
            return;
        };
        match ErrorCode(response.error_code) {
            ErrorCode::NONE => self.session_alive(now),
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.session_alive(now);
                let Some(group) = self.group.as_mut() else {
                    return;
                };
                if !group.rejoin_needed {
                    group.rejoin_needed = true;
                    group.join_prepared = false;
                }
                self.signal_poll_ready();
            }
            code @ (ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID) => {
                let keep_member_id = code == ErrorCode::ILLEGAL_GENERATION;
                self.lose_partitions();
                if let Some(group) = self.group.as_mut() {
                    group.reset_member(keep_member_id);
                }
            }
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                group.coordinator_lost()
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                let instance_id = group.instance_id.clone().unwrap_or_default();
                self.set_fatal(Error::FencedInstanceId { instance_id });
            }
            code if code.is_retriable() => {}
            code => {
                let error = Error::Group {
                    group: group.id.clone(),
                    api: ApiKey::Heartbeat,
                    code,
                };
                self.poll_error.get_or_insert(error);
            }
        }
    }

    fn send_commits(&mut self, now: Instant) {
        loop {
            let Some(group) = self.group.as_ref() else {
                return;
            };
            let Some(id) = group
                .commits
                .iter()
                .find(|(_, c)| c.retry.ready(&self.timers))
                .map(|(id, _)| *id)
            else {
                return;
            };
            if group.subscription.is_some() && group.generation < 0 {
                // The membership was lost (or never made) since the commit
                // was queued: without a generation it would bypass fencing
                // and could overwrite offsets another member owns now.
                self.finish_commit(
                    id,
                    Err(Error::CommitFailed {
                        reason: "the member is not in the group (it lost its membership)".into(),
                    }),
                );
                continue;
            }
            let Some((conn, version)) = self.coordinator_for(ApiKey::OffsetCommit, now) else {
                return;
            };
            let Some(group) = self.group.as_ref() else {
                return;
            };
            let Some(commit) = group.commits.get(&id) else {
                return;
            };
            let member = group.subscription.is_some() && group.generation >= 0;
            let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
            for (tp, o) in &commit.offsets {
                topics
                    .entry(tp.topic())
                    .or_default()
                    .push(OffsetCommitRequestPartition {
                        partition_index: tp.partition(),
                        committed_offset: o.offset,
                        committed_leader_epoch: o.leader_epoch.unwrap_or(-1),
                        committed_metadata: Some(o.metadata.clone()),
                    });
            }
            let request = OffsetCommitRequest {
                group_id: group.id.clone(),
                generation_id_or_member_epoch: if member { group.generation } else { -1 },
                member_id: if member {
                    group.member_id.clone()
                } else {
                    String::new()
                },
                group_instance_id: if member {
                    group.instance_id.clone()
                } else {
                    None
                },
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| OffsetCommitRequestTopic {
                        name: name.to_string(),
                        partitions,
                    })
                    .collect(),
                ..Default::default()
            };
            if !self.send_group(conn, &request, version, Purpose::OffsetCommit { id }, now) {
                return;
            }
            if let Some(c) = self.group.as_mut().and_then(|g| g.commits.get_mut(&id)) {
                c.retry.sent();
            }
        }
    }

    pub(super) fn on_commit(
        &mut self,
        response: Option<OffsetCommitResponse>,
        id: CommitId,
        now: Instant,
    ) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let Some(commit) = group.commits.get_mut(&id) else {
            return;
        };
        commit.retry.settled();
        let Some(response) = response else {
            group.coordinator_lost();
            return self.retry_commit(id, now);
        };
        let mut worst: Option<(TopicPartition, ErrorCode)> = None;
        for topic in &response.topics {
            for p in &topic.partitions {
                let code = ErrorCode(p.error_code);
                if !code.is_ok() && worst.is_none() {
                    worst = Some((
                        TopicPartition::new(topic.name.as_str(), p.partition_index),
                        code,
                    ));
                }
            }
        }
        let Some((tp, code)) = worst else {
            let offsets = group
                .commits
                .get(&id)
                .map(|c| c.offsets.clone())
                .unwrap_or_default();
            for (tp, o) in offsets {
                group.last_committed.insert(tp, o.offset);
            }
            return self.finish_commit(id, Ok(()));
        };
        match code {
            ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS => {
                if code != ErrorCode::COORDINATOR_LOAD_IN_PROGRESS {
                    group.coordinator_lost();
                }
                self.retry_commit(id, now);
            }
            ErrorCode::REBALANCE_IN_PROGRESS => {
                if !group.rejoin_needed && group.subscription.is_some() {
                    group.rejoin_needed = true;
                    group.join_prepared = false;
                }
                self.finish_commit(id, Err(Error::RebalanceInProgress));
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID => {
                let keep = code == ErrorCode::ILLEGAL_GENERATION;
                self.finish_commit(
                    id,
                    Err(Error::CommitFailed {
                        reason: format!("the group's generation moved on ({code}); the partitions may belong to another member now"),
                    }),
                );
                if self
                    .group
                    .as_ref()
                    .is_some_and(|g| g.subscription.is_some() && g.state == MemberState::Stable)
                {
                    self.lose_partitions();
                    if let Some(group) = self.group.as_mut() {
                        group.reset_member(keep);
                    }
                }
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                let instance_id = group.instance_id.clone().unwrap_or_default();
                self.finish_commit(
                    id,
                    Err(Error::FencedInstanceId {
                        instance_id: instance_id.clone(),
                    }),
                );
                self.set_fatal(Error::FencedInstanceId { instance_id });
            }
            code if code.is_retriable() => self.retry_commit(id, now),
            code => self.finish_commit(
                id,
                Err(Error::Partition {
                    api: ApiKey::OffsetCommit,
                    partition: tp,
                    code,
                }),
            ),
        }
    }

    fn retry_commit(&mut self, id: CommitId, now: Instant) {
        let Some(commit) = self.group.as_mut().and_then(|g| g.commits.get_mut(&id)) else {
            return;
        };
        commit
            .retry
            .failed(now, &mut self.retry_backoff, &mut self.timers);
    }

    fn finish_commit(&mut self, id: CommitId, result: Result<(), Error>) {
        let Some(commit) = self.group.as_mut().and_then(|g| g.commits.remove(&id)) else {
            return;
        };
        commit.retry.cancel(&mut self.timers);
        self.timers.stop(&Timer::CommitDeadline(id));
        match commit.kind {
            CommitKind::User => self.events.push_back(Event::CommitDone { id, result }),
            CommitKind::Auto => {
                if let Err(error) = result {
                    tracing::warn!(%error, "auto-commit failed");
                }
            }
        }
    }

    fn offset_fetch_request(
        &self,
        partitions: &[TopicPartition],
        version: i16,
    ) -> Option<OffsetFetchRequest> {
        let group = self.group.as_ref()?;
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            topics.entry(tp.topic()).or_default().push(tp.partition());
        }
        Some(if version >= 8 {
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: group.id.clone(),
                    topics: Some(
                        topics
                            .into_iter()
                            .map(|(name, partition_indexes)| OffsetFetchRequestTopics {
                                name: name.to_string(),
                                partition_indexes,
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                require_stable: true,
                ..Default::default()
            }
        } else {
            OffsetFetchRequest {
                group_id: group.id.clone(),
                topics: Some(
                    topics
                        .into_iter()
                        .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
                            name: name.to_string(),
                            partition_indexes,
                        })
                        .collect(),
                ),
                require_stable: true,
                ..Default::default()
            }
        })
    }

    fn send_positions_fetch(&mut self, now: Instant) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if !group.positions_fetch.ready(&self.timers)
            || matches!(
                group.state,
                MemberState::Joining | MemberState::Assigning | MemberState::Syncing
            )
        {
            return;
        }
        let wanted: Vec<(TopicPartition, u64)> = self
            .partitions
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::AwaitingCommitted))
            .map(|(tp, s)| (tp.clone(), s.fence))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let Some((conn, version)) = self.coordinator_for(ApiKey::OffsetFetch, now) else {
            return;
        };
        let tps: Vec<TopicPartition> = wanted.iter().map(|(tp, _)| tp.clone()).collect();
        let Some(request) = self.offset_fetch_request(&tps, version) else {
            return;
        };
        let purpose = Purpose::OffsetFetch {
            positions: wanted,
            query: None,
        };
        if self.send_group(conn, &request, version, purpose, now) {
            if let Some(group) = self.group.as_mut() {
                group.positions_fetch.sent();
            }
        }
    }

    fn send_committed_queries(&mut self, now: Instant) {
        loop {
            let Some(group) = self.group.as_ref() else {
                return;
            };
            let Some((id, partitions)) = group
                .committed_queries
                .iter()
                .find(|(_, q)| q.retry.ready(&self.timers))
                .map(|(id, q)| (*id, q.partitions.clone()))
            else {
                return;
            };
            let Some((conn, version)) = self.coordinator_for(ApiKey::OffsetFetch, now) else {
                return;
            };
            let Some(request) = self.offset_fetch_request(&partitions, version) else {
                return;
            };
            let purpose = Purpose::OffsetFetch {
                positions: Vec::new(),
                query: Some(id),
            };
            if !self.send_group(conn, &request, version, purpose, now) {
                return;
            }
            if let Some(q) = self
                .group
                .as_mut()
                .and_then(|g| g.committed_queries.get_mut(&id))
            {
                q.retry.sent();
            }
        }
    }

    pub(super) fn on_offset_fetch(
        &mut self,
        response: Option<OffsetFetchResponse>,
        positions: Vec<(TopicPartition, u64)>,
        query: Option<QueryId>,
        now: Instant,
    ) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        if query.is_none() {
            group.positions_fetch.settled();
        }
        // Either shape (v8+ per group) becomes one list plus a group error.
        let parsed = response.map(|r| {
            let mut entries: Vec<(TopicPartition, i64, i32, Option<String>, ErrorCode)> =
                Vec::new();
            let mut group_code = ErrorCode(r.error_code);
            for t in &r.topics {
                for p in &t.partitions {
                    entries.push((
                        TopicPartition::new(t.name.as_str(), p.partition_index),
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.clone(),
                        ErrorCode(p.error_code),
                    ));
                }
            }
            for g in &r.groups {
                if !ErrorCode(g.error_code).is_ok() {
                    group_code = ErrorCode(g.error_code);
                }
                for t in &g.topics {
                    for p in &t.partitions {
                        entries.push((
                            TopicPartition::new(t.name.as_str(), p.partition_index),
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.metadata.clone(),
                            ErrorCode(p.error_code),
                        ));
                    }
                }
            }
            (group_code, entries)
        });
        let retriable_failure = match &parsed {
            None => true,
            Some((code, entries)) => {
                code.is_retriable()
                    || matches!(
                        *code,
                        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
                    )
                    || entries.iter().any(|e| e.4.is_retriable())
            }
        };
        if retriable_failure {
            if parsed.as_ref().is_none_or(|(code, _)| {
                matches!(
                    *code,
                    ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
                )
            }) {
                group.coordinator_lost();
            }
            match query {
                Some(id) => {
                    if let Some(q) = group.committed_queries.get_mut(&id) {
                        q.retry
                            .failed(now, &mut self.retry_backoff, &mut self.timers);
                    }
                }
                None => {
                    group
                        .positions_fetch
                        .failed(now, &mut self.retry_backoff, &mut self.timers);
                }
            }
            return;
        }
        let Some((group_code, entries)) = parsed else {
            return;
        };
        let group_id = group.id.clone();
        let failure = if !group_code.is_ok() {
            Some(Error::Group {
                group: group_id,
                api: ApiKey::OffsetFetch,
                code: group_code,
            })
        } else {
            entries
                .iter()
                .find(|e| !e.4.is_ok())
                .map(|e| Error::Partition {
                    api: ApiKey::OffsetFetch,
                    partition: e.0.clone(),
                    code: e.4,
                })
        };
        match query {
            Some(id) => {
                let Some(q) = group.committed_queries.remove(&id) else {
                    return;
                };
                q.retry.cancel(&mut self.timers);
                self.timers.stop(&Timer::CommittedDeadline(id));
                let result = match failure {
                    Some(e) => Err(e),
                    None => {
                        let mut out: BTreeMap<TopicPartition, Option<OffsetAndMetadata>> =
                            q.partitions.iter().map(|tp| (tp.clone(), None)).collect();
                        for (tp, offset, epoch, metadata, _) in entries {
                            if offset >= 0 {
                                if let Some(slot) = out.get_mut(&tp) {
                                    *slot = Some(OffsetAndMetadata {
                                        offset,
                                        leader_epoch: (epoch >= 0).then_some(epoch),
                                        metadata: metadata.unwrap_or_default(),
                                    });
                                }
                            }
                        }
                        Ok(out)
                    }
                };
                self.events.push_back(Event::CommittedDone { id, result });
            }
            None => {
                group.positions_fetch.succeeded(&mut self.timers);
                if let Some(e) = failure {
                    self.poll_error.get_or_insert(e);
                    return;
                }
                let found: HashMap<TopicPartition, (i64, i32)> = entries
                    .into_iter()
                    .map(|(tp, o, e, _, _)| (tp, (o, e)))
                    .collect();
                for (tp, fence) in positions {
                    let Some(state) = self.partitions.get_mut(&tp) else {
                        continue;
                    };
                    if state.fence != fence || !matches!(state.phase, Phase::AwaitingCommitted) {
                        continue;
                    }
                    match found.get(&tp) {
                        Some(&(offset, epoch)) if offset >= 0 => {
                            state.phase = Phase::Fetching;
                            state.position = offset;
                            state.fetch_offset = offset;
                            state.position_epoch = (epoch >= 0).then_some(epoch);
                            if let Some(group) = self.group.as_mut() {
                                group.last_committed.insert(tp.clone(), offset);
                            }
                        }
                        _ => state.phase = super::reset_phase(self.config.auto_offset_reset),
                    }
                }
                self.events.push_back(Event::PositionsChanged);
                self.note_needs_seek();
            }
        }
    }

    /// Sends LeaveGroup if the member should: a dynamic member, or a static
    /// one asked to leave explicitly.
    pub(super) fn send_leave(&mut self, now: Instant) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let leave = match self.config.leave_group_on_close {
            Some(leave) => leave,
            None => !group.is_static(),
        };
        if !leave || group.member_id.is_empty() || group.leave_in_flight {
            return;
        }
        let Some(conn) = self.coordinator_conn(now) else {
            return;
        };
        let Ok(version) = self.conns.version(conn, ApiKey::LeaveGroup) else {
            return;
        };
        let Some(group) = self.group.as_ref() else {
            return;
        };
        let request = LeaveGroupRequest {
            group_id: group.id.clone(),
            member_id: group.member_id.clone(),
            members: vec![LeaveGroupRequestMember {
                member_id: group.member_id.clone(),
                group_instance_id: group.instance_id.clone(),
                reason: Some("odradek: the consumer is leaving".into()),
            }],
        };
        if self.send_group(conn, &request, version, Purpose::LeaveGroup, now) {
            if let Some(group) = self.group.as_mut() {
                group.leave_in_flight = true;
            }
        }
    }

    pub(super) fn on_leave(&mut self, now: Instant) {
        if let Some(group) = self.group.as_mut() {
            group.leave_in_flight = false;
        }
        self.check_close_done(now);
    }

    /// Starts a graceful close: commit what was delivered (auto-commit),
    /// revoke, leave the group; the consumer closes when that is done or at
    /// `deadline`. Returns false if there is nothing to do (close at once).
    pub(super) fn begin_group_close(&mut self, deadline: Instant, now: Instant) -> bool {
        let Some(group) = self.group.as_ref() else {
            return false;
        };
        if group.closing.is_some() {
            return true;
        }
        let member = group.subscription.is_some() && !group.member_id.is_empty();
        let owned: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        let has_commits = !group.commits.is_empty();
        if group.subscription.is_some() && group.state == MemberState::Stable {
            self.revoke(owned, now);
        } else if group.subscription.is_none() {
            self.commit_before_revoke(&owned, now);
        }
        let Some(group) = self.group.as_mut() else {
            return false;
        };
        // A close never waits for the application's listener.
        group.awaiting_ack = false;
        group.rejoin_needed = false;
        if !member && group.commits.is_empty() && !has_commits {
            return false;
        }
        group.closing = Some(!member);
        self.timers.set(Timer::Close, deadline);
        self.progress(now);
        true
    }

    /// Fails what is still pending when the consumer closes.
    pub(super) fn fail_group_requests(&mut self) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let commits = std::mem::take(&mut group.commits);
        let queries = std::mem::take(&mut group.committed_queries);
        for (id, commit) in commits {
            if commit.kind == CommitKind::User {
                self.events.push_back(Event::CommitDone {
                    id,
                    result: Err(Error::Closed),
                });
            }
        }
        for (id, _) in queries {
            self.events.push_back(Event::CommittedDone {
                id,
                result: Err(Error::Closed),
            });
        }
    }

    /// New metadata: a changed partition count of a subscribed topic means
    /// the assignment is out of date.
    pub(super) fn group_on_metadata(&mut self) {
        let Some(group) = self.group.as_ref() else {
            return;
        };
        if group.subscription.is_none() || group.state != MemberState::Stable || group.rejoin_needed
        {
            return;
        }
        let mut topics: BTreeSet<&String> = group.snapshot.keys().collect();
        topics.extend(group.subscription.iter().flatten());
        let changed = topics.into_iter().any(|t| {
            let now_count = self.metadata.partition_count(t);
            let then = group.snapshot.get(t).copied();
            match (then, now_count) {
                (Some(a), Some(b)) => a != b,
                (None, Some(b)) => b > 0,
                _ => false,
            }
        });
        if changed {
            if let Some(group) = self.group.as_mut() {
                group.rejoin_needed = true;
                group.join_prepared = false;
            }
            self.signal_poll_ready();
        }
    }

    /// Finishes the close once commits are done and the leave went out.
    fn check_close_done(&mut self, now: Instant) {
        let Some(group) = self.group.as_mut() else {
            return;
        };
        let Some(left) = group.closing else {
            return;
        };
        if !group.commits.is_empty() {
            return;
        }
        if !left {
            group.closing = Some(true);
            self.send_leave(now);
        }
        if self.group.as_ref().is_some_and(|g| !g.leave_in_flight) {
            self.finish_close(now);
        }
    }
}

/// Partitions grouped per topic, as the consumer protocol carries them.
fn group_by_topic<'a>(
    partitions: impl IntoIterator<Item = &'a TopicPartition>,
) -> Vec<TopicPartitions> {
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
