//! The consumer's part in its group: the [`Coordinator`] it talks to, its
//! [`Member`]ship, and its [`Commits`], tied together. It reacts to the
//! consumer's inputs and commands through a [`GroupCtx`] (the clock, the
//! timers, the connections, the assignment as it stands) and hands back
//! [`GroupAction`]s for what must happen to the consumer's partitions and
//! state, which the consumer applies once the call returns.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::config::ConsumerConfig;
use crate::conn::{ConnectionProblem, Connections, Node};
use crate::consumer::{CommitId, Event, Purpose, QueryId};
use crate::error::{CommitFailure, Error, Misuse};
use crate::group::{GroupMetadata, RebalanceEvent};
use crate::metadata::Metadata;
use crate::protocol::messages::{
    FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, OffsetCommitResponse,
    OffsetFetchResponse, SyncGroupResponse, sync_group::SyncGroupRequestAssignment,
};
use crate::protocol::{ApiKey, ErrorCode, Request};
use crate::timer::{Timer, TimerTable};
use crate::types::{BrokerAddress, ConnId, OffsetAndMetadata, TopicPartition};

use super::commits::{CommitKind, CommitOutcome, Commits, FoundPositions};
use super::coordinator::{Coordinator, Found, Term};
use super::member::{Beat, Joined, Member, MemberState, Synced, not_a_member};
use crate::metrics::{GroupMeters, GroupMetrics, GroupState, ago};

/// The consumer's assignment, as the group sees it while it acts.
pub(crate) trait Assigned {
    /// The assigned partitions, in order.
    fn partitions(&self) -> Vec<TopicPartition>;
    /// True with no partition assigned.
    fn is_empty(&self) -> bool;
    /// The positions of assigned partitions that have one (everything
    /// before them was delivered), optionally only of `only`.
    fn delivered(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata>;
    /// Partitions waiting for their committed offset, with their fences.
    fn awaiting_committed(&self) -> Vec<(TopicPartition, u64)>;
}

/// What the group needs of the consumer while it acts.
pub(crate) struct GroupCtx<'a> {
    pub(crate) now: Instant,
    pub(crate) config: &'a ConsumerConfig,
    pub(crate) timers: &'a mut TimerTable,
    pub(crate) backoff: &'a mut Backoff,
    pub(crate) conns: &'a mut Connections<Purpose>,
    pub(crate) metadata: &'a mut Metadata,
    pub(crate) assigned: &'a dyn Assigned,
    pub(crate) events: &'a mut VecDeque<Event>,
    pub(crate) actions: &'a mut VecDeque<GroupAction>,
}

impl GroupCtx<'_> {
    fn act(&mut self, action: GroupAction) {
        self.actions.push_back(action);
    }

    /// A ready connection to any broker (least loaded), for requests that
    /// any broker answers.
    fn any_broker(&mut self) -> Option<(ConnId, BrokerAddress)> {
        let brokers = self.metadata.brokers();
        let bootstrap = &self.config.bootstrap_servers;
        self.conns
            .any_broker(brokers, bootstrap, self.now, self.timers)
    }

    /// Sends a group request; true when it went out.
    fn send<R: Request>(
        &mut self,
        conn: ConnId,
        request: &R,
        version: i16,
        extra_timeout: Duration,
        purpose: GroupPurpose,
    ) -> bool {
        self.conns
            .send(
                conn,
                request,
                version,
                extra_timeout,
                Purpose::Group(purpose),
                self.now,
                self.timers,
            )
            .is_ok()
    }
}

/// What the consumer must do after the group acted.
#[derive(Debug)]
pub(crate) enum GroupAction {
    /// Take these partitions out of the assignment (revoked or lost):
    /// their buffered records go.
    Remove(Vec<TopicPartition>),
    /// Add these partitions; they start at their committed offsets.
    Add(Vec<TopicPartition>),
    /// Committed offsets for partitions that waited for them (`None`: no
    /// commit, so `auto.offset.reset`), each with its fence at the lookup.
    Positions(FoundPositions),
    /// The topics the group needs described changed.
    InterestChanged,
    /// The consumer cannot go on.
    Fatal(Error),
    /// An error for the next poll.
    PollError(Error),
    /// The application should poll (a rebalance waits, or events).
    WakePoll,
    /// The graceful close is over.
    Closed,
}

/// Why a group request was sent, to route its answer. Requests to the
/// coordinator carry its [`Term`].
#[derive(Debug)]
pub(crate) enum GroupPurpose {
    FindCoordinator,
    Join {
        term: Term,
    },
    Sync {
        term: Term,
        generation: i32,
    },
    Heartbeat {
        term: Term,
        generation: i32,
    },
    Leave,
    Commit {
        term: Term,
        id: CommitId,
    },
    OffsetFetch {
        term: Term,
        /// Partitions waiting for their committed offset, with their
        /// fences when the lookup went out.
        positions: Vec<(TopicPartition, u64)>,
        /// The application's lookup this answers, if any.
        query: Option<QueryId>,
    },
}

/// The consumer's part in its group.
#[derive(Debug)]
pub(crate) struct ConsumerGroup {
    id: String,
    coordinator: Coordinator,
    member: Member,
    commits: Commits,
    /// Closing (until [`Timer::Close`]): whether the LeaveGroup went out.
    closing: Option<bool>,
    /// `auto.commit.interval.ms` passed: the next poll commits what
    /// earlier polls returned (never from the timer itself, which would
    /// commit records the application may still be processing).
    auto_commit_due: bool,
    /// The application closes without the final commit.
    no_final_commit: bool,
    /// Rebalances, heartbeats and commit latencies, for the metrics.
    meters: GroupMeters,
    /// The rebalance under way, from its first JoinGroup to the
    /// assignment: its steps are logged inside it.
    rebalance_span: Option<tracing::Span>,
}

impl ConsumerGroup {
    pub(crate) fn new(config: &ConsumerConfig, id: String) -> Self {
        Self {
            coordinator: Coordinator::new(id.clone()),
            member: Member::new(
                id.clone(),
                config.group_instance_id.clone(),
                config.partition_assignment_strategy.protocol(),
            ),
            commits: Commits::new(id.clone()),
            closing: None,
            auto_commit_due: false,
            no_final_commit: false,
            meters: GroupMeters::default(),
            rebalance_span: None,
            id,
        }
    }

    // ---- what the consumer asks -----------------------------------------

    /// The coordinator's address, if known.
    pub(crate) fn coordinator_address(&self) -> Option<BrokerAddress> {
        self.coordinator.current().map(|c| c.address.clone())
    }

    pub(crate) fn is_subscribed(&self) -> bool {
        self.member.is_subscribed()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// The subscribed topics (empty when not subscribed).
    pub(crate) fn subscription(&self) -> Vec<String> {
        self.member
            .subscription()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The topics whose metadata the group needs: the subscription, and for
    /// a leader every member's topics.
    pub(crate) fn interest(&self) -> impl Iterator<Item = Arc<str>> + '_ {
        self.member
            .subscription()
            .into_iter()
            .flatten()
            .map(|t| Arc::from(t.as_str()))
            .chain(self.member.leader_topics().map(Arc::from))
    }

    pub(crate) fn has_events(&self) -> bool {
        self.member.has_events()
    }

    /// True when the application should poll for the group's sake.
    pub(crate) fn wants_poll(&self) -> bool {
        self.member.wants_poll()
    }

    pub(crate) fn poll_rebalance(&mut self) -> Option<RebalanceEvent> {
        self.member.poll_event()
    }

    pub(crate) fn ack_rebalance(&mut self) {
        self.member.ack();
    }

    pub(crate) fn membership(&self) -> Option<(i32, String)> {
        self.member.membership()
    }

    pub(crate) fn metadata(&self) -> GroupMetadata {
        self.member.metadata()
    }

    /// Logs inside the rebalance under way, if any.
    fn in_rebalance(&self, log: impl FnOnce()) {
        match &self.rebalance_span {
            Some(span) => span.in_scope(log),
            None => log(),
        }
    }

    /// The offset known to be committed for `tp`.
    pub(crate) fn known_committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.commits.known_committed(tp)
    }

    /// An answer to a group request came `latency` after it went out.
    pub(crate) fn record_latency(
        &mut self,
        purpose: &GroupPurpose,
        latency: Duration,
        now: Instant,
    ) {
        match purpose {
            GroupPurpose::Heartbeat { .. } => {
                self.meters.last_heartbeat = Some(now);
                self.meters
                    .heartbeat_latency
                    .record(latency.as_secs_f64(), now);
            }
            GroupPurpose::Commit { .. } => {
                self.meters
                    .commit_latency
                    .record(latency.as_secs_f64(), now);
            }
            _ => {}
        }
    }

    /// The group's part of the metrics at `now`.
    pub(crate) fn metrics(&self, now: Instant) -> GroupMetrics {
        let m = &self.meters;
        let (generation, member_id) = self.member.membership().unwrap_or((-1, String::new()));
        let state = match self.member.state() {
            MemberState::Unjoined => GroupState::Unjoined,
            MemberState::Joining => GroupState::Joining,
            MemberState::Assigning => GroupState::Assigning,
            MemberState::Syncing => GroupState::Syncing,
            MemberState::Stable => GroupState::Stable,
        };
        let (commit_total, failed_commit_total) = self.commits.completed();
        GroupMetrics {
            state,
            generation,
            member_id,
            rebalance_total: m.rebalance_total,
            last_rebalance_duration: m.last_rebalance_duration,
            last_rebalance_ago: ago(m.last_rebalance_end, now),
            last_heartbeat_ago: ago(m.last_heartbeat, now),
            heartbeat_latency_avg: m.heartbeat_latency.avg_duration(now),
            heartbeat_latency_max: m.heartbeat_latency.max_duration(now),
            commit_latency_avg: m.commit_latency.avg_duration(now),
            commit_latency_max: m.commit_latency.max_duration(now),
            commit_total,
            failed_commit_total,
        }
    }

    // ---- commands -----------------------------------------------------

    fn check_can_subscribe(&self, ctx: &GroupCtx<'_>) -> Result<(), Error> {
        if !self.member.is_subscribed() && !ctx.assigned.is_empty() {
            return Err(Error::InvalidArgument(Misuse::SubscribeAfterAssign));
        }
        Ok(())
    }

    /// Subscribes to `topics`, replacing any earlier subscription.
    pub(crate) fn subscribe(
        &mut self,
        topics: BTreeSet<String>,
        ctx: &mut GroupCtx<'_>,
    ) -> Result<(), Error> {
        self.check_can_subscribe(ctx)?;
        self.member.subscribe(topics);
        ctx.metadata.set_all_topics(false);
        ctx.act(GroupAction::InterestChanged);
        Ok(())
    }

    /// Subscribes to the topics `pattern` matches.
    pub(crate) fn subscribe_pattern(
        &mut self,
        pattern: regex::Regex,
        ctx: &mut GroupCtx<'_>,
    ) -> Result<(), Error> {
        self.check_can_subscribe(ctx)?;
        self.member.subscribe_pattern(pattern);
        ctx.metadata.set_all_topics(true);
        ctx.act(GroupAction::InterestChanged);
        Ok(())
    }

    /// Leaves the group: revokes the assignment (committing first with
    /// auto-commit), sends LeaveGroup and clears the subscription.
    pub(crate) fn unsubscribe(&mut self, ctx: &mut GroupCtx<'_>) {
        if !self.member.is_subscribed() {
            return;
        }
        self.revoke(ctx.assigned.partitions(), ctx);
        // The revocation's auto-commit goes out first, with the generation.
        self.send_commits(ctx);
        self.member.clear_subscription();
        ctx.metadata.set_all_topics(false);
        self.send_leave(ctx);
        self.member.reset(false);
        ctx.act(GroupAction::InterestChanged);
    }

    /// The positions the application has been given (those of partitions
    /// being revoked included, until the revocation is acknowledged).
    pub(crate) fn delivered(
        &self,
        only: Option<&[TopicPartition]>,
        assigned: &dyn Assigned,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let mut out = assigned.delivered(only);
        for (tp, o) in self.member.revoking() {
            if only.is_none_or(|only| only.contains(tp)) {
                out.entry(tp.clone()).or_insert_with(|| o.clone());
            }
        }
        out
    }

    /// The application commits `offsets`. Not while the member rejoins,
    /// unless the commit comes `from_listener`: the rebalance waits for the
    /// listener, and the rejoin for its commit.
    pub(crate) fn commit(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        kind: CommitKind,
        deadline: Instant,
        from_listener: bool,
        ctx: &mut GroupCtx<'_>,
    ) -> Result<CommitId, Error> {
        if !from_listener {
            self.member.check_commit()?;
        }
        Ok(self.commits.queue(offsets, kind, deadline, ctx))
    }

    /// Starts the application's committed-offsets lookup `id`.
    pub(crate) fn committed(
        &mut self,
        id: QueryId,
        partitions: &[TopicPartition],
        deadline: Instant,
        ctx: &mut GroupCtx<'_>,
    ) {
        self.commits.start_query(id, partitions, deadline, ctx);
    }

    // ---- the rebalance, on the consumer's side ---------------------------

    /// Takes `partitions` away from the application: their delivered
    /// positions are auto-committed (if enabled) and the listener hears
    /// `Revoked`.
    fn revoke(&mut self, partitions: Vec<TopicPartition>, ctx: &mut GroupCtx<'_>) {
        if partitions.is_empty() {
            return;
        }
        self.in_rebalance(|| tracing::info!(group = %self.id, ?partitions, "revoking partitions"));
        self.commit_before_revoke(&partitions, ctx);
        let positions = self.delivered(Some(&partitions), ctx.assigned);
        self.commits.forget(&partitions);
        ctx.act(GroupAction::Remove(partitions.clone()));
        self.member.revoked(partitions, positions);
        ctx.act(GroupAction::WakePoll);
    }

    /// Auto-commits the delivered positions of `partitions` (if enabled)
    /// before they are revoked.
    fn commit_before_revoke(&mut self, partitions: &[TopicPartition], ctx: &mut GroupCtx<'_>) {
        if !ctx.config.enable_auto_commit || self.no_final_commit {
            return;
        }
        let offsets = self
            .commits
            .changed(self.delivered(Some(partitions), ctx.assigned));
        let deadline = ctx.now + ctx.config.request_timeout.min(ctx.config.max_poll_interval);
        self.commits.queue(offsets, CommitKind::Auto, deadline, ctx);
    }

    /// The membership is gone: the partitions are lost, never committed.
    fn lose_partitions(&mut self, ctx: &mut GroupCtx<'_>) {
        let owned = ctx.assigned.partitions();
        if !owned.is_empty() {
            tracing::warn!(
                group = %self.id,
                partitions = ?owned,
                "partitions lost (the membership is gone); they are not committed"
            );
        }
        self.commits.forget(&owned);
        // Commits for the old generation would be refused anyway.
        self.commits.drop_auto_commits(ctx);
        if !owned.is_empty() {
            ctx.act(GroupAction::Remove(owned.clone()));
        }
        self.member.lost(owned);
        ctx.act(GroupAction::WakePoll);
    }

    /// The application polled: a pending rejoin revokes what it must, and
    /// a due auto-commit goes out with the positions earlier polls returned
    /// (this poll's records are not taken yet).
    pub(crate) fn on_poll(&mut self, ctx: &mut GroupCtx<'_>) {
        let assigned = ctx.assigned;
        if let Some(revoke) = self.member.on_poll(|| assigned.partitions(), ctx) {
            // The revocation commits what was delivered; a due auto-commit
            // waits for the rebalance to end.
            self.revoke(revoke, ctx);
        }
        if self.auto_commit_due {
            self.auto_commit(ctx);
        }
    }

    /// A metadata refresh listed the cluster's topics.
    pub(crate) fn on_topic_list(&mut self, listed: &BTreeSet<Arc<str>>, ctx: &mut GroupCtx<'_>) {
        if self.member.on_topic_list(listed) {
            ctx.act(GroupAction::InterestChanged);
            ctx.act(GroupAction::WakePoll);
        }
    }

    /// New metadata: a changed partition count means a rebalance.
    pub(crate) fn on_metadata(&mut self, ctx: &mut GroupCtx<'_>) {
        if self.member.on_metadata(ctx.metadata) {
            ctx.act(GroupAction::WakePoll);
        }
    }

    /// The session is alive: restart its timer.
    fn session_alive(ctx: &mut GroupCtx<'_>) {
        ctx.timers
            .set(Timer::SessionExpiry, ctx.now + ctx.config.session_timeout);
    }

    /// The coordinator of `term` failed us: find it again (unless the
    /// group already moved on from it).
    fn coordinator_lost(&mut self, term: Term) {
        if self.coordinator.lost(term) {
            self.member.coordinator_lost();
        }
    }

    /// A group timer went off.
    pub(crate) fn on_timer(&mut self, timer: Timer, ctx: &mut GroupCtx<'_>) {
        match timer {
            Timer::CommitDeadline(id) => self.commits.finish(
                id,
                Err(Error::CommitFailed {
                    reason: CommitFailure::TimedOut,
                }),
                ctx,
            ),
            Timer::CommittedDeadline(id) => self.commits.expire_query(id, ctx),
            Timer::PollInterval => self.poll_expired(ctx),
            Timer::PollHalfway if self.member.poll_halfway() => ctx.act(GroupAction::WakePoll),
            Timer::Heartbeat => self.member.heartbeat_timer(),
            Timer::SessionExpiry if self.member.is_stable() => {
                // No heartbeat got through for a whole session: the
                // coordinator is presumed dead; find it again (it will tell
                // us whether we are still a member).
                if let Some(term) = self.coordinator.current().map(|c| c.term) {
                    self.coordinator_lost(term);
                }
            }
            Timer::AutoCommit if ctx.config.enable_auto_commit => {
                // Due now, sent by the next poll; a poll waiting right now
                // wakes to send it.
                self.auto_commit_due = true;
                ctx.act(GroupAction::WakePoll);
            }
            Timer::Close if self.closing.is_some() => ctx.act(GroupAction::Closed),
            _ => {}
        }
    }

    /// Commits the delivered positions, unless a rebalance or an earlier
    /// auto-commit is under way (then the next poll tries again).
    fn auto_commit(&mut self, ctx: &mut GroupCtx<'_>) {
        let stable = !self.member.is_subscribed() || self.member.is_stable();
        if !ctx.config.enable_auto_commit || self.commits.auto_in_flight() || !stable {
            return;
        }
        self.auto_commit_due = false;
        let offsets = self.commits.changed(self.delivered(None, ctx.assigned));
        let deadline = ctx.now
            + ctx
                .config
                .auto_commit_interval
                .max(ctx.config.request_timeout);
        self.commits.queue(offsets, CommitKind::Auto, deadline, ctx);
    }

    /// `max.poll.interval.ms` passed without a poll.
    fn poll_expired(&mut self, ctx: &mut GroupCtx<'_>) {
        if self.member.on_poll_expired() {
            // The application stopped polling: leave so the group can move
            // on without us, and rejoin at the next poll.
            self.send_leave(ctx);
            self.lose_partitions(ctx);
            self.member.reset_after_poll_expired();
        }
    }

    // ---- sending ------------------------------------------------------

    /// Sends whatever group requests are due. Called after every input.
    pub(crate) fn send_due(&mut self, any_awaiting_committed: bool, ctx: &mut GroupCtx<'_>) {
        if ctx.config.enable_auto_commit && !ctx.assigned.is_empty() {
            ctx.timers
                .set_if_unset(Timer::AutoCommit, ctx.now + ctx.config.auto_commit_interval);
        }
        let active = self.member.is_subscribed()
            || self.commits.has_pending()
            || self.commits.has_queries()
            || self.closing.is_some()
            || any_awaiting_committed;
        if !active {
            return;
        }
        if self.coordinator.current().is_none() {
            self.send_find_coordinator(ctx);
            return;
        }
        if self.member.state() == MemberState::Assigning {
            self.try_assign(ctx);
        }
        self.send_commits(ctx);
        self.send_positions_fetch(ctx);
        self.send_committed_queries(ctx);
        self.send_join(ctx);
        self.send_heartbeat(ctx);
        self.check_close_done(ctx);
    }

    fn send_find_coordinator(&mut self, ctx: &mut GroupCtx<'_>) {
        let Some(request) = self.coordinator.find_request(ctx) else {
            return;
        };
        let Some((conn, address)) = ctx.any_broker() else {
            return;
        };
        let version = match ctx.conns.version(conn, ApiKey::FindCoordinator) {
            Ok(version) => version,
            Err(source) => {
                return ctx.act(GroupAction::Fatal(Error::UnsupportedBroker {
                    broker: address,
                    source,
                }));
            }
        };
        let purpose = GroupPurpose::FindCoordinator;
        if ctx.send(conn, &request, version, Duration::ZERO, purpose) {
            self.coordinator.find_sent();
        }
    }

    /// The coordinator's connection, if ready, the version of `api` it
    /// speaks (at least `min`), and the coordinator's term; a coordinator
    /// without `api` is a fatal error.
    fn coordinator_for(
        &mut self,
        api: ApiKey,
        min: i16,
        ctx: &mut GroupCtx<'_>,
    ) -> Option<(ConnId, i16, Term)> {
        let current = self.coordinator.current()?.clone();
        let node = Node::Coordinator(current.broker);
        let conn = ctx
            .conns
            .ready(node, &current.address, ctx.now, ctx.timers)?;
        if !ctx.conns.can_send(conn, ctx.now) {
            return None;
        }
        match ctx.conns.version_at_least(conn, api, min) {
            Ok(version) => Some((conn, version, current.term)),
            Err(source) => {
                ctx.act(GroupAction::Fatal(Error::UnsupportedBroker {
                    broker: current.address,
                    source,
                }));
                None
            }
        }
    }

    fn send_join(&mut self, ctx: &mut GroupCtx<'_>) {
        let commits_pending = self.commits.has_pending();
        if !self
            .member
            .join_due(commits_pending, self.closing.is_some(), ctx.timers)
        {
            return;
        }
        let min = self.member.min_join_version();
        let Some((conn, version, term)) = self.coordinator_for(ApiKey::JoinGroup, min, ctx) else {
            return;
        };
        let request = self
            .member
            .join_request(&ctx.assigned.partitions(), ctx.config);
        // The coordinator may hold the join for a whole rebalance.
        let extra = ctx.config.max_poll_interval + Duration::from_secs(5);
        if ctx.send(conn, &request, version, extra, GroupPurpose::Join { term }) {
            self.member.join_sent();
            self.meters.joining(ctx.now);
            let group = self.id.as_str();
            let span = self
                .rebalance_span
                .get_or_insert_with(|| tracing::info_span!("rebalance", %group));
            span.in_scope(|| {
                tracing::info!(
                    member_id = %request.member_id,
                    owned = ctx.assigned.partitions().len(),
                    "joining the group"
                );
            });
        }
    }

    /// The leader runs the assignor once metadata describes every topic.
    fn try_assign(&mut self, ctx: &mut GroupCtx<'_>) {
        match self.member.assign(ctx.metadata, ctx.config) {
            None => {}
            Some(Ok((assignments, protocol))) => self.send_sync(assignments, protocol, ctx),
            Some(Err(code)) => ctx.act(GroupAction::Fatal(Error::Group {
                group: self.id.clone(),
                api: ApiKey::JoinGroup,
                code,
            })),
        }
    }

    fn send_sync(
        &mut self,
        assignments: Vec<SyncGroupRequestAssignment>,
        protocol: String,
        ctx: &mut GroupCtx<'_>,
    ) {
        // The sync waits for the coordinator connection; the join response
        // came over it, so it is normally ready at once.
        let Some((conn, version, term)) = self.coordinator_for(ApiKey::SyncGroup, 0, ctx) else {
            if let Some(term) = self.coordinator.current().map(|c| c.term) {
                self.coordinator_lost(term);
            }
            return self.member.retry_join_later(ctx);
        };
        let generation = self.member.generation();
        let request = self.member.sync_request(assignments, protocol);
        let purpose = GroupPurpose::Sync { term, generation };
        if ctx.send(
            conn,
            &request,
            version,
            ctx.config.max_poll_interval,
            purpose,
        ) {
            self.member.sync_sent();
        } else {
            self.member.retry_join_later(ctx);
        }
    }

    fn send_heartbeat(&mut self, ctx: &mut GroupCtx<'_>) {
        if self.member.heartbeat_request().is_none() {
            return;
        }
        let Some((conn, version, term)) = self.coordinator_for(ApiKey::Heartbeat, 0, ctx) else {
            return;
        };
        let Some(request) = self.member.heartbeat_request() else {
            return;
        };
        let generation = request.generation_id;
        let purpose = GroupPurpose::Heartbeat { term, generation };
        if ctx.send(conn, &request, version, Duration::ZERO, purpose) {
            self.member.heartbeat_sent(ctx);
        }
    }

    fn send_commits(&mut self, ctx: &mut GroupCtx<'_>) {
        while let Some(id) = self.commits.next_to_send(ctx) {
            let Some(committer) = self.member.committer() else {
                self.commits.finish(id, Err(not_a_member()), ctx);
                continue;
            };
            let Some((conn, version, term)) = self.coordinator_for(ApiKey::OffsetCommit, 0, ctx)
            else {
                return;
            };
            let Some(request) = self.commits.request(id, &committer) else {
                return;
            };
            let purpose = GroupPurpose::Commit { term, id };
            if !ctx.send(conn, &request, version, Duration::ZERO, purpose) {
                return;
            }
            self.commits.sent(id);
        }
    }

    fn send_positions_fetch(&mut self, ctx: &mut GroupCtx<'_>) {
        if !self.commits.positions_fetch_ready(ctx.timers)
            || matches!(
                self.member.state(),
                MemberState::Joining | MemberState::Assigning | MemberState::Syncing
            )
        {
            return;
        }
        let wanted = ctx.assigned.awaiting_committed();
        if wanted.is_empty() {
            return;
        }
        let Some((conn, version, term)) = self.coordinator_for(ApiKey::OffsetFetch, 0, ctx) else {
            return;
        };
        let partitions: Vec<TopicPartition> = wanted.iter().map(|(tp, _)| tp.clone()).collect();
        let request = self.commits.fetch_request(&partitions, version);
        let purpose = GroupPurpose::OffsetFetch {
            term,
            positions: wanted,
            query: None,
        };
        if ctx.send(conn, &request, version, Duration::ZERO, purpose) {
            self.commits.positions_fetch_sent();
        }
    }

    fn send_committed_queries(&mut self, ctx: &mut GroupCtx<'_>) {
        while let Some((id, partitions)) = self.commits.next_query(ctx.timers) {
            let Some((conn, version, term)) = self.coordinator_for(ApiKey::OffsetFetch, 0, ctx)
            else {
                return;
            };
            let request = self.commits.fetch_request(&partitions, version);
            let purpose = GroupPurpose::OffsetFetch {
                term,
                positions: Vec::new(),
                query: Some(id),
            };
            if !ctx.send(conn, &request, version, Duration::ZERO, purpose) {
                return;
            }
            self.commits.query_sent(id);
        }
    }

    /// Sends LeaveGroup if the member should: a dynamic member, or a static
    /// one asked to leave explicitly.
    fn send_leave(&mut self, ctx: &mut GroupCtx<'_>) {
        let leave_on_close = ctx.config.leave_group_on_close;
        if self.member.leave_request(leave_on_close).is_none() {
            return;
        }
        let Some(current) = self.coordinator.current().cloned() else {
            return;
        };
        let node = Node::Coordinator(current.broker);
        let Some(conn) = ctx.conns.ready(node, &current.address, ctx.now, ctx.timers) else {
            return;
        };
        if !ctx.conns.can_send(conn, ctx.now) {
            return;
        }
        let Ok(version) = ctx.conns.version(conn, ApiKey::LeaveGroup) else {
            return;
        };
        let Some(request) = self.member.leave_request(leave_on_close) else {
            return;
        };
        if ctx.send(conn, &request, version, Duration::ZERO, GroupPurpose::Leave) {
            self.member.leave_sent();
        }
    }

    // ---- answers ------------------------------------------------------

    pub(crate) fn on_find_coordinator(
        &mut self,
        response: Option<FindCoordinatorResponse>,
        ctx: &mut GroupCtx<'_>,
    ) {
        match self.coordinator.on_found(response, ctx) {
            Found::Coordinator { moved_from } => {
                Self::session_alive(ctx);
                if let Some(old) = moved_from {
                    ctx.conns.close_node(
                        Node::Coordinator(old),
                        ConnectionProblem::CoordinatorMoved,
                        ctx.now,
                        ctx.timers,
                    );
                }
            }
            Found::Refused(code) => ctx.act(GroupAction::PollError(Error::Group {
                group: self.id.clone(),
                api: ApiKey::FindCoordinator,
                code,
            })),
            Found::Retry => ctx.metadata.request_update(),
        }
    }

    pub(crate) fn on_join(
        &mut self,
        term: Term,
        response: Option<JoinGroupResponse>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let joined = self.member.on_join(response, ctx);
        if matches!(joined, Joined::Lead | Joined::Follow { .. }) {
            let leader = matches!(joined, Joined::Lead);
            self.in_rebalance(|| {
                let generation = self.member.generation();
                let member_id = self.member.member_id();
                tracing::info!(generation, %member_id, leader, "joined the group");
            });
        }
        match joined {
            Joined::Nothing => {}
            Joined::CoordinatorLost => self.coordinator_lost(term),
            Joined::PartitionsLost => self.lose_partitions(ctx),
            Joined::Failed(code) => self.on_rebalance_error(ApiKey::JoinGroup, code, term, ctx),
            Joined::Lead => {
                // The assignment needs every subscribed topic's partition count.
                ctx.act(GroupAction::InterestChanged);
                ctx.metadata.request_update();
                self.try_assign(ctx);
            }
            Joined::Follow { protocol } => self.send_sync(Vec::new(), protocol, ctx),
        }
    }

    pub(crate) fn on_sync(
        &mut self,
        term: Term,
        generation: i32,
        response: Option<SyncGroupResponse>,
        ctx: &mut GroupCtx<'_>,
    ) {
        match self.member.on_sync(response, generation, ctx) {
            Synced::Nothing => {}
            Synced::CoordinatorLost => self.coordinator_lost(term),
            Synced::PartitionsLost => self.lose_partitions(ctx),
            Synced::Failed(code) => self.on_rebalance_error(ApiKey::SyncGroup, code, term, ctx),
            Synced::Assigned(assigned) => {
                self.meters.assigned(ctx.now);
                let owned = ctx.assigned.partitions();
                let change = self.member.assigned(assigned, owned, ctx);
                if let Some(span) = self.rebalance_span.take() {
                    let (generation, member_id) = self.member.membership().unwrap_or_default();
                    span.in_scope(|| {
                        tracing::info!(
                            generation,
                            %member_id,
                            added = ?change.added,
                            revoked = ?change.revoked,
                            took_ms = self.meters.last_rebalance_duration.unwrap_or_default().as_secs_f64() * 1e3,
                            "assignment received"
                        );
                    });
                }
                if !change.revoked.is_empty() {
                    // Cooperative: give these up now; their new owner gets
                    // them in the next generation, which we join after the
                    // revocation.
                    self.revoke(change.revoked, ctx);
                    self.member.rejoin_after_revocation();
                }
                ctx.act(GroupAction::Add(change.added.clone()));
                self.member.announce_added(change.added);
                ctx.act(GroupAction::WakePoll);
            }
        }
    }

    /// A JoinGroup or SyncGroup error the two share: a moved or missing
    /// coordinator (found again), other retriable errors (rejoin after a
    /// backoff), a fenced static member, and anything else, which ends the
    /// membership with a typed fatal error.
    fn on_rebalance_error(
        &mut self,
        api: ApiKey,
        code: ErrorCode,
        term: Term,
        ctx: &mut GroupCtx<'_>,
    ) {
        match code {
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.coordinator_lost(term);
                self.member.retry_join_later(ctx);
            }
            ErrorCode::FENCED_INSTANCE_ID => ctx.act(GroupAction::Fatal(self.fenced())),
            code if code.is_retriable() => self.member.retry_join_later(ctx),
            code => {
                self.member.give_up();
                ctx.metadata.set_all_topics(false);
                ctx.act(GroupAction::InterestChanged);
                ctx.act(GroupAction::Fatal(Error::Group {
                    group: self.id.clone(),
                    api,
                    code,
                }));
            }
        }
    }

    fn fenced(&self) -> Error {
        Error::FencedInstanceId {
            instance_id: self.member.instance_id().unwrap_or_default().to_string(),
        }
    }

    pub(crate) fn on_heartbeat(
        &mut self,
        term: Term,
        generation: i32,
        response: Option<HeartbeatResponse>,
        ctx: &mut GroupCtx<'_>,
    ) {
        if !self.coordinator.is_current(term) {
            // A heartbeat to a coordinator the group left means nothing
            // (and one to the current coordinator may be in flight).
            return;
        }
        match self.member.on_heartbeat(response, generation) {
            Beat::Nothing => {}
            Beat::Alive => Self::session_alive(ctx),
            Beat::Rebalance => {
                Self::session_alive(ctx);
                ctx.act(GroupAction::WakePoll);
            }
            Beat::MembershipGone { keep_member_id } => {
                self.lose_partitions(ctx);
                self.member.reset(keep_member_id);
            }
            Beat::CoordinatorLost => self.coordinator_lost(term),
            Beat::Fenced => ctx.act(GroupAction::Fatal(self.fenced())),
            Beat::Failed(code) => ctx.act(GroupAction::PollError(Error::Group {
                group: self.id.clone(),
                api: ApiKey::Heartbeat,
                code,
            })),
        }
    }

    pub(crate) fn on_leave(&mut self, ctx: &mut GroupCtx<'_>) {
        self.member.leave_done();
        self.check_close_done(ctx);
    }

    pub(crate) fn on_commit(
        &mut self,
        term: Term,
        id: CommitId,
        response: Option<OffsetCommitResponse>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let instance_id = self.member.instance_id().map(str::to_string);
        match self
            .commits
            .on_response(id, response, instance_id.as_deref(), ctx)
        {
            CommitOutcome::Settled => {}
            CommitOutcome::CoordinatorLost => self.coordinator_lost(term),
            CommitOutcome::Rebalancing => self.member.rebalancing(),
            CommitOutcome::GenerationGone { keep_member_id } => {
                if self.member.is_subscribed() && self.member.is_stable() {
                    self.lose_partitions(ctx);
                    self.member.reset(keep_member_id);
                }
            }
            CommitOutcome::Fenced => ctx.act(GroupAction::Fatal(self.fenced())),
        }
    }

    pub(crate) fn on_offset_fetch(
        &mut self,
        term: Term,
        positions: Vec<(TopicPartition, u64)>,
        query: Option<QueryId>,
        response: Option<OffsetFetchResponse>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let (coordinator_gone, found) = self
            .commits
            .on_fetch_response(response, positions, query, ctx);
        if coordinator_gone {
            self.coordinator_lost(term);
        }
        match found {
            None => {}
            Some(Ok(found)) => ctx.act(GroupAction::Positions(found)),
            Some(Err(e)) => ctx.act(GroupAction::PollError(e)),
        }
    }

    // ---- closing ------------------------------------------------------

    /// Starts a graceful close: commit what was delivered (auto-commit),
    /// revoke, leave the group; the close ends when that is done or at
    /// `deadline`. Returns false if there is nothing to do (close at once).
    pub(crate) fn begin_close(
        &mut self,
        deadline: Instant,
        commit: bool,
        ctx: &mut GroupCtx<'_>,
    ) -> bool {
        if self.closing.is_some() {
            return true;
        }
        self.no_final_commit = !commit;
        let member = self.member.is_subscribed() && self.member.has_member_id();
        let owned = ctx.assigned.partitions();
        let had_commits = self.commits.has_pending();
        if self.member.is_subscribed() && self.member.is_stable() {
            self.revoke(owned, ctx);
        } else if !self.member.is_subscribed() {
            self.commit_before_revoke(&owned, ctx);
        }
        // A close never waits for the application's listener.
        self.member.stop_waiting();
        if !member && !self.commits.has_pending() && !had_commits {
            return false;
        }
        self.closing = Some(!member);
        ctx.timers.set(Timer::Close, deadline);
        true
    }

    /// Finishes the close once commits are done and the leave went out.
    fn check_close_done(&mut self, ctx: &mut GroupCtx<'_>) {
        let Some(left) = self.closing else {
            return;
        };
        if self.commits.has_pending() {
            return;
        }
        if !left {
            self.closing = Some(true);
            self.send_leave(ctx);
        }
        if !self.member.leave_in_flight() {
            ctx.act(GroupAction::Closed);
        }
    }

    /// What is still pending fails with `error` (the consumer closes, or
    /// it cannot authenticate).
    pub(crate) fn fail_requests(&mut self, ctx: &mut GroupCtx<'_>, error: &Error) {
        self.commits.fail_all(ctx, error);
    }
}
