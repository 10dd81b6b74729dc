//! Offsets and the group: the commit queue (the application's commits and
//! auto-commits), what is known to be committed, and committed-offset
//! lookups, both the application's and those that start newly assigned
//! partitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use crate::backoff::Retry;
use crate::consumer::{CommitId, CommittedResult, Event, QueryId};
use crate::error::{CommitFailure, Error, Operation};
use crate::protocol::ErrorCode;
use crate::protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    offset_commit::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch::{OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics},
};
use crate::timer::{Timer, TimerTable};
use crate::types::{OffsetAndMetadata, TopicPartition};

use super::consumer_group::GroupCtx;

/// Why a commit was made, which decides who hears of its outcome and
/// whether a retriable failure is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitKind {
    /// The application waits for it: retried until its deadline.
    Sync,
    /// The application's `commit_async`: retried only while no newer
    /// commit of its partitions was made (Java never retries `commitAsync`;
    /// the newer commit carries newer offsets).
    Async,
    /// Auto-commit: retried like `Async`; failures are only logged.
    Auto,
}

/// A commit not reported yet; its deadline is [`Timer::CommitDeadline`].
#[derive(Debug)]
struct PendingCommit {
    /// What the commit asked for, as made (reported with its outcome).
    requested: BTreeMap<TopicPartition, OffsetAndMetadata>,
    /// What is still to be sent. A newer commit that went out with one of
    /// these partitions takes it over (see [`Commits::newest_sent`]).
    offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    kind: CommitKind,
    retry: Retry,
    /// What the last attempt failed with, retriably.
    last_failure: Option<Error>,
    /// Its own outcome once known; it is reported once every older commit
    /// was (commits complete in the order they were made).
    outcome: Option<Result<(), Error>>,
    /// Newer commits that took over some of its partitions: their outcomes
    /// are part of its own.
    superseded_by: BTreeSet<CommitId>,
    /// Its span: what it sent and how it ended are logged inside.
    span: tracing::Span,
}

/// A committed-offsets lookup; its deadline is [`Timer::CommittedDeadline`].
#[derive(Debug)]
struct CommittedQuery {
    partitions: Vec<TopicPartition>,
    retry: Retry,
}

/// Who a commit is made as: the member of a generation, or (manual
/// assignment) nobody in particular.
#[derive(Debug, Clone)]
pub(crate) enum Committer {
    Member {
        generation: i32,
        member_id: String,
        instance_id: Option<String>,
    },
    /// No group membership: generation -1, empty member id.
    Standalone,
}

/// What an OffsetCommit answer means beyond the commit itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitOutcome {
    /// Done, or retried, or failed with nothing else to do.
    Settled,
    /// The coordinator moved or is gone: the commit is retried.
    CoordinatorLost,
    /// The group is rebalancing: the member must rejoin.
    Rebalancing,
    /// The generation moved on: the member's partitions are lost
    /// (`keep_member_id` for ILLEGAL_GENERATION).
    GenerationGone { keep_member_id: bool },
    /// Another member with our `group.instance.id` exists.
    Fenced,
}

/// One OffsetFetch answer, flattened: per partition, the offset, leader
/// epoch, metadata and error; plus the group-level error.
struct Fetched {
    group_code: ErrorCode,
    entries: Vec<(TopicPartition, i64, i32, Option<String>, ErrorCode)>,
}

/// Committed offsets found for partitions that waited for them, with the
/// fence each had when the lookup went out.
pub(crate) type FoundPositions = Vec<(TopicPartition, u64, Option<(i64, Option<i32>)>)>;

/// The commit queue. Three rules keep a partition's committed offset from
/// ever moving backwards:
/// - commits go out in the order they were made (several may be in flight
///   on the coordinator's connection, which the broker serves in order),
///   and none overtakes an older one waiting to be retried;
/// - an older commit is never sent with a partition that a newer commit
///   already went out with: the newer one takes it over;
/// - asynchronous commits and auto-commits are not retried once a newer
///   commit of their partitions exists.
///
/// Outcomes are reported in the order the commits were made.
#[derive(Debug)]
pub(crate) struct Commits {
    group_id: String,
    commits: BTreeMap<CommitId, PendingCommit>,
    next_commit: u64,
    /// Per partition, the newest commit that went out with it.
    newest_sent: HashMap<TopicPartition, CommitId>,
    /// Offsets known to be committed, so auto-commit sends only changes.
    last_committed: HashMap<TopicPartition, i64>,
    committed_queries: BTreeMap<QueryId, CommittedQuery>,
    /// The lookup of committed offsets that start new partitions.
    positions_fetch: Retry,
    /// Commits reported, and of those the failed ones (for the metrics).
    completed: (u64, u64),
}

impl Commits {
    pub(crate) fn new(group_id: String) -> Self {
        Self {
            group_id,
            commits: BTreeMap::new(),
            next_commit: 1,
            newest_sent: HashMap::new(),
            last_committed: HashMap::new(),
            committed_queries: BTreeMap::new(),
            positions_fetch: Retry::new(Timer::PositionsFetchRetry),
            completed: (0, 0),
        }
    }

    /// Commits reported so far, and how many of them failed.
    pub(crate) fn completed(&self) -> (u64, u64) {
        self.completed
    }

    /// The offset known to be committed for `tp`.
    pub(crate) fn known_committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.last_committed.get(tp).copied()
    }

    /// Commits not reported yet (the application's and auto-commits).
    pub(crate) fn has_pending(&self) -> bool {
        !self.commits.is_empty()
    }

    pub(crate) fn has_queries(&self) -> bool {
        !self.committed_queries.is_empty()
    }

    /// An auto-commit is still under way.
    pub(crate) fn auto_in_flight(&self) -> bool {
        self.commits
            .values()
            .any(|c| c.kind == CommitKind::Auto && c.outcome.is_none())
    }

    /// Queues a commit of `offsets` that gives up at `deadline`. An empty
    /// one is done at once (reported after any older commit).
    pub(crate) fn queue(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        kind: CommitKind,
        deadline: Instant,
        ctx: &mut GroupCtx<'_>,
    ) -> CommitId {
        let id = CommitId(self.next_commit);
        self.next_commit += 1;
        let outcome = offsets.is_empty().then_some(Ok(()));
        if outcome.is_none() {
            ctx.timers.set(Timer::CommitDeadline(id), deadline);
        }
        self.commits.insert(
            id,
            PendingCommit {
                span: tracing::debug_span!("commit", group = %self.group_id, commit = id.0, ?kind),
                requested: offsets.clone(),
                offsets,
                kind,
                retry: Retry::new(Timer::CommitRetry(id)),
                last_failure: None,
                outcome,
                superseded_by: BTreeSet::new(),
            },
        );
        self.report_finished(ctx);
        id
    }

    /// `positions` without those known to be committed already.
    pub(crate) fn changed(
        &self,
        positions: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        positions
            .into_iter()
            .filter(|(tp, o)| self.last_committed.get(tp) != Some(&o.offset))
            .collect()
    }

    /// The partitions left the assignment: what was committed for them no
    /// longer matters here.
    pub(crate) fn forget(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.last_committed.remove(tp);
        }
    }

    /// The membership is gone: auto-commits for the old generation would
    /// be refused anyway.
    pub(crate) fn drop_auto_commits(&mut self, ctx: &mut GroupCtx<'_>) {
        let auto: Vec<CommitId> = self
            .commits
            .iter()
            .filter(|(_, c)| c.kind == CommitKind::Auto && c.outcome.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in auto {
            self.finish(id, Err(super::member::not_a_member()), ctx);
        }
    }

    /// True if a commit newer than `id` was made with partition `tp`.
    fn newer_exists(&self, id: CommitId, tp: &TopicPartition) -> bool {
        self.newest_sent.get(tp).is_some_and(|&n| n > id)
            || self
                .commits
                .range(CommitId(id.0 + 1)..)
                .any(|(_, c)| c.offsets.contains_key(tp))
    }

    /// The next commit to send, if one may go now. Commits go in the order
    /// they were made: one waiting for its retry holds back every newer
    /// one. On the way, partitions a newer commit took over are dropped,
    /// and asynchronous commits that a newer one replaces give up.
    pub(crate) fn next_to_send(&mut self, ctx: &mut GroupCtx<'_>) -> Option<CommitId> {
        let ids: Vec<CommitId> = self
            .commits
            .iter()
            .filter(|(_, c)| c.outcome.is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(commit) = self.commits.get(&id) else {
                continue;
            };
            if commit.retry.in_flight() {
                continue;
            }
            if self.give_up_if_replaced(id, ctx) {
                continue;
            }
            let Some(commit) = self.commits.get(&id) else {
                continue;
            };
            if !commit.retry.ready(ctx.timers) {
                return None;
            }
            if self.take_over(id, ctx) {
                return Some(id);
            }
        }
        None
    }

    /// An asynchronous commit or auto-commit that failed and that a newer
    /// commit replaces finishes with its failure (true) instead of going
    /// again.
    fn give_up_if_replaced(&mut self, id: CommitId, ctx: &mut GroupCtx<'_>) -> bool {
        let Some(commit) = self.commits.get(&id) else {
            return false;
        };
        let Some(failure) = commit.last_failure.clone() else {
            return false;
        };
        if commit.kind == CommitKind::Sync
            || !commit.offsets.keys().any(|tp| self.newer_exists(id, tp))
        {
            return false;
        }
        self.finish(id, Err(failure), ctx);
        true
    }

    /// Drops from commit `id` the partitions a newer commit went out with
    /// (their outcome becomes part of its own); false if nothing is left
    /// to send, and it finished.
    fn take_over(&mut self, id: CommitId, ctx: &mut GroupCtx<'_>) -> bool {
        let Some(commit) = self.commits.get(&id) else {
            return false;
        };
        let taken: Vec<(TopicPartition, CommitId)> = commit
            .offsets
            .keys()
            .filter_map(|tp| {
                let newest = *self.newest_sent.get(tp)?;
                (newest > id).then(|| (tp.clone(), newest))
            })
            .collect();
        let Some(commit) = self.commits.get_mut(&id) else {
            return false;
        };
        for (tp, newer) in taken {
            commit.offsets.remove(&tp);
            commit.superseded_by.insert(newer);
        }
        if commit.offsets.is_empty() {
            self.finish(id, Ok(()), ctx);
            return false;
        }
        true
    }

    /// The OffsetCommit for commit `id`, made as `committer`.
    pub(crate) fn request(
        &self,
        id: CommitId,
        committer: &Committer,
    ) -> Option<OffsetCommitRequest> {
        let commit = self.commits.get(&id)?;
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
        let (generation, member_id, instance_id) = match committer {
            Committer::Member {
                generation,
                member_id,
                instance_id,
            } => (*generation, member_id.clone(), instance_id.clone()),
            Committer::Standalone => (-1, String::new(), None),
        };
        Some(OffsetCommitRequest {
            group_id: self.group_id.clone(),
            generation_id_or_member_epoch: generation,
            member_id,
            group_instance_id: instance_id,
            topics: topics
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_string(),
                    partitions,
                })
                .collect(),
            ..Default::default()
        })
    }

    /// Commit `id` went out: no older commit may go with its partitions
    /// from now on.
    pub(crate) fn sent(&mut self, id: CommitId) {
        if let Some(c) = self.commits.get_mut(&id) {
            c.retry.sent();
            c.span
                .in_scope(|| tracing::debug!(offsets = ?c.offsets, "commit sent"));
            for tp in c.offsets.keys() {
                let newest = self.newest_sent.entry(tp.clone()).or_insert(id);
                *newest = (*newest).max(id);
            }
        }
    }

    /// The answer to commit `id` (`None`: no answer).
    pub(crate) fn on_response(
        &mut self,
        id: CommitId,
        response: Option<OffsetCommitResponse>,
        instance_id: Option<&str>,
        ctx: &mut GroupCtx<'_>,
    ) -> CommitOutcome {
        let Some(commit) = self.commits.get_mut(&id) else {
            return CommitOutcome::Settled;
        };
        commit.retry.settled();
        if commit.outcome.is_some() {
            // It finished meanwhile (its deadline passed).
            return CommitOutcome::Settled;
        }
        let Some(response) = response else {
            self.retry(
                id,
                Error::CommitFailed {
                    reason: CommitFailure::NoAnswer,
                },
                ctx,
            );
            return CommitOutcome::CoordinatorLost;
        };
        let worst = response.topics.iter().find_map(|topic| {
            topic.partitions.iter().find_map(|p| {
                let code = ErrorCode(p.error_code);
                (!code.is_ok()).then(|| {
                    (
                        TopicPartition::new(topic.name.as_str(), p.partition_index),
                        code,
                    )
                })
            })
        });
        let Some((tp, code)) = worst else {
            for (tp, o) in &commit.offsets {
                // Only the newest commit sent with a partition says what
                // is committed for it now.
                if self.newest_sent.get(tp).is_none_or(|&n| n <= id) {
                    self.last_committed.insert(tp.clone(), o.offset);
                }
            }
            self.finish(id, Ok(()), ctx);
            return CommitOutcome::Settled;
        };
        let retriable = Error::CommitFailed {
            reason: CommitFailure::Retriable(code),
        };
        match code {
            ErrorCode::COORDINATOR_NOT_AVAILABLE | ErrorCode::NOT_COORDINATOR => {
                self.retry(id, retriable, ctx);
                CommitOutcome::CoordinatorLost
            }
            ErrorCode::REBALANCE_IN_PROGRESS => {
                self.finish(id, Err(Error::RebalanceInProgress), ctx);
                CommitOutcome::Rebalancing
            }
            ErrorCode::ILLEGAL_GENERATION | ErrorCode::UNKNOWN_MEMBER_ID => {
                self.finish(
                    id,
                    Err(Error::CommitFailed {
                        reason: CommitFailure::GenerationMoved(code),
                    }),
                    ctx,
                );
                CommitOutcome::GenerationGone {
                    keep_member_id: code == ErrorCode::ILLEGAL_GENERATION,
                }
            }
            ErrorCode::FENCED_INSTANCE_ID => {
                let instance_id = instance_id.unwrap_or_default().to_string();
                self.finish(id, Err(Error::FencedInstanceId { instance_id }), ctx);
                CommitOutcome::Fenced
            }
            code if code.is_retriable() => {
                self.retry(id, retriable, ctx);
                CommitOutcome::Settled
            }
            code => {
                self.finish(
                    id,
                    Err(Error::Partition {
                        api: crate::protocol::ApiKey::OffsetCommit,
                        partition: tp,
                        code,
                    }),
                    ctx,
                );
                CommitOutcome::Settled
            }
        }
    }

    /// Commit `id` failed retriably with `failure`: it goes again after a
    /// backoff, unless (asynchronous) a newer commit replaces it.
    fn retry(&mut self, id: CommitId, failure: Error, ctx: &mut GroupCtx<'_>) {
        let Some(commit) = self.commits.get_mut(&id) else {
            return;
        };
        commit.last_failure = Some(failure);
        commit.retry.failed(ctx.now, ctx.backoff, ctx.timers);
        self.give_up_if_replaced(id, ctx);
    }

    /// Commit `id`'s own outcome is `result`; it is reported when every
    /// older commit was, and with the outcomes of the newer commits that
    /// took over its partitions.
    pub(crate) fn finish(
        &mut self,
        id: CommitId,
        result: Result<(), Error>,
        ctx: &mut GroupCtx<'_>,
    ) {
        let Some(commit) = self.commits.get_mut(&id) else {
            return;
        };
        if commit.outcome.is_some() {
            return;
        }
        commit.retry.cancel(ctx.timers);
        ctx.timers.stop(&Timer::CommitDeadline(id));
        commit.outcome = Some(result);
        self.report_finished(ctx);
    }

    /// Commit `id`'s whole outcome (its own and those of the commits that
    /// took over its partitions), once all are known.
    fn whole_outcome(&self, id: CommitId) -> Option<Result<(), Error>> {
        let commit = self.commits.get(&id)?;
        let own = commit.outcome.clone()?;
        let mut whole = own;
        for newer in &commit.superseded_by {
            // A newer commit is reported after this one, so it is here.
            let theirs = self.whole_outcome(*newer)?;
            whole = whole.and(theirs);
        }
        Some(whole)
    }

    /// Reports finished commits, oldest first, stopping at the first one
    /// still under way.
    fn report_finished(&mut self, ctx: &mut GroupCtx<'_>) {
        while let Some((&id, _)) = self.commits.first_key_value() {
            let Some(result) = self.whole_outcome(id) else {
                return;
            };
            let Some(commit) = self.commits.remove(&id) else {
                return;
            };
            // Every older commit is gone: none is left for it to hold back.
            for tp in commit.offsets.keys() {
                if self.newest_sent.get(tp) == Some(&id) {
                    self.newest_sent.remove(tp);
                }
            }
            self.completed.0 += 1;
            if result.is_err() {
                self.completed.1 += 1;
            }
            commit.span.in_scope(|| match &result {
                Ok(()) => tracing::debug!("commit done"),
                Err(error) => tracing::warn!(%error, "commit failed"),
            });
            if commit.kind != CommitKind::Auto {
                ctx.events.push_back(Event::CommitDone {
                    id,
                    result: result.clone(),
                });
            }
            if !commit.requested.is_empty() {
                ctx.events.push_back(Event::Committed {
                    offsets: commit.requested,
                    result,
                });
            }
        }
    }

    // ---- committed-offset lookups ---------------------------------------

    /// Starts the application's lookup `id` of `partitions`.
    pub(crate) fn start_query(
        &mut self,
        id: QueryId,
        partitions: &[TopicPartition],
        deadline: Instant,
        ctx: &mut GroupCtx<'_>,
    ) {
        if partitions.is_empty() {
            ctx.events.push_back(Event::CommittedDone {
                id,
                result: Ok(BTreeMap::new()),
            });
            return;
        }
        self.committed_queries.insert(
            id,
            CommittedQuery {
                partitions: partitions.to_vec(),
                retry: Retry::new(Timer::CommittedRetry(id)),
            },
        );
        ctx.timers.set(Timer::CommittedDeadline(id), deadline);
    }

    /// The application's lookup `id` ran out of time.
    pub(crate) fn expire_query(&mut self, id: QueryId, ctx: &mut GroupCtx<'_>) {
        if let Some(query) = self.committed_queries.remove(&id) {
            query.retry.cancel(ctx.timers);
            ctx.events.push_back(Event::CommittedDone {
                id,
                result: Err(Error::Timeout(Operation::CommittedOffsets)),
            });
        }
    }

    /// The next application lookup ready to go, with its partitions.
    pub(crate) fn next_query(&self, timers: &TimerTable) -> Option<(QueryId, Vec<TopicPartition>)> {
        self.committed_queries
            .iter()
            .find(|(_, q)| q.retry.ready(timers))
            .map(|(id, q)| (*id, q.partitions.clone()))
    }

    pub(crate) fn query_sent(&mut self, id: QueryId) {
        if let Some(q) = self.committed_queries.get_mut(&id) {
            q.retry.sent();
        }
    }

    /// True if the lookup that starts new partitions may go out now.
    pub(crate) fn positions_fetch_ready(&self, timers: &TimerTable) -> bool {
        self.positions_fetch.ready(timers)
    }

    pub(crate) fn positions_fetch_sent(&mut self) {
        self.positions_fetch.sent();
    }

    /// An OffsetFetch for `partitions` in the shape of `version`.
    pub(crate) fn fetch_request(
        &self,
        partitions: &[TopicPartition],
        version: i16,
    ) -> OffsetFetchRequest {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            topics.entry(tp.topic()).or_default().push(tp.partition());
        }
        if version >= 8 {
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: self.group_id.clone(),
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
                group_id: self.group_id.clone(),
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
        }
    }

    /// An OffsetFetch answer (`None`: no answer) for the application's
    /// lookup `query`, or (`None`) for the lookup that starts the
    /// partitions in `positions`. Returns whether the coordinator is lost,
    /// and for the positions lookup what was found (or the error the
    /// application must see).
    pub(crate) fn on_fetch_response(
        &mut self,
        response: Option<OffsetFetchResponse>,
        positions: Vec<(TopicPartition, u64)>,
        query: Option<QueryId>,
        ctx: &mut GroupCtx<'_>,
    ) -> (bool, Option<Result<FoundPositions, Error>>) {
        if query.is_none() {
            self.positions_fetch.settled();
        }
        let parsed = response.map(flatten_fetch);
        let coordinator_gone = parsed.as_ref().is_none_or(|f| {
            matches!(
                f.group_code,
                ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
            )
        });
        let retriable = match &parsed {
            None => true,
            Some(f) => {
                f.group_code.is_retriable()
                    || coordinator_gone
                    || f.entries.iter().any(|e| e.4.is_retriable())
            }
        };
        if retriable {
            match query {
                Some(id) => {
                    if let Some(q) = self.committed_queries.get_mut(&id) {
                        q.retry.failed(ctx.now, ctx.backoff, ctx.timers);
                    }
                }
                None => self
                    .positions_fetch
                    .failed(ctx.now, ctx.backoff, ctx.timers),
            }
            return (coordinator_gone, None);
        }
        let Some(fetched) = parsed else {
            return (false, None);
        };
        let failure = if !fetched.group_code.is_ok() {
            Some(Error::Group {
                group: self.group_id.clone(),
                api: crate::protocol::ApiKey::OffsetFetch,
                code: fetched.group_code,
            })
        } else {
            fetched
                .entries
                .iter()
                .find(|e| !e.4.is_ok())
                .map(|e| Error::Partition {
                    api: crate::protocol::ApiKey::OffsetFetch,
                    partition: e.0.clone(),
                    code: e.4,
                })
        };
        match query {
            Some(id) => {
                let Some(q) = self.committed_queries.remove(&id) else {
                    return (false, None);
                };
                q.retry.cancel(ctx.timers);
                ctx.timers.stop(&Timer::CommittedDeadline(id));
                let result: CommittedResult = match failure {
                    Some(e) => Err(e),
                    None => {
                        let mut out: BTreeMap<TopicPartition, Option<OffsetAndMetadata>> =
                            q.partitions.iter().map(|tp| (tp.clone(), None)).collect();
                        for (tp, offset, epoch, metadata, _) in fetched.entries {
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
                ctx.events.push_back(Event::CommittedDone { id, result });
                (false, None)
            }
            None => {
                self.positions_fetch.succeeded(ctx.timers);
                if let Some(e) = failure {
                    return (false, Some(Err(e)));
                }
                let found: HashMap<TopicPartition, (i64, i32)> = fetched
                    .entries
                    .into_iter()
                    .map(|(tp, o, e, _, _)| (tp, (o, e)))
                    .collect();
                let mut out = Vec::with_capacity(positions.len());
                for (tp, fence) in positions {
                    let committed = match found.get(&tp) {
                        Some(&(offset, epoch)) if offset >= 0 => {
                            self.last_committed.insert(tp.clone(), offset);
                            Some((offset, (epoch >= 0).then_some(epoch)))
                        }
                        _ => None,
                    };
                    out.push((tp, fence, committed));
                }
                (false, Some(Ok(out)))
            }
        }
    }

    /// What is still pending fails with `error` (the consumer closes, or
    /// it cannot authenticate).
    pub(crate) fn fail_all(&mut self, ctx: &mut GroupCtx<'_>, error: &Error) {
        let ids: Vec<CommitId> = self.commits.keys().copied().collect();
        for id in ids {
            self.finish(id, Err(error.clone()), ctx);
        }
        for (id, query) in std::mem::take(&mut self.committed_queries) {
            query.retry.cancel(ctx.timers);
            ctx.events.push_back(Event::CommittedDone {
                id,
                result: Err(error.clone()),
            });
        }
    }
}

/// Either OffsetFetch shape (v8+ per group) as one list plus a group error.
fn flatten_fetch(r: OffsetFetchResponse) -> Fetched {
    let mut group_code = ErrorCode(r.error_code);
    if let Some(g) = r.groups.iter().find(|g| g.error_code != 0) {
        group_code = ErrorCode(g.error_code);
    }
    // (topic, partition, offset, leader epoch, metadata, error code)
    let old = r.topics.iter().flat_map(|t| {
        t.partitions.iter().map(move |p| {
            let o = (p.committed_offset, p.committed_leader_epoch);
            (
                t.name.as_str(),
                p.partition_index,
                o,
                &p.metadata,
                p.error_code,
            )
        })
    });
    let per_group = r.groups.iter().flat_map(|g| &g.topics).flat_map(|t| {
        t.partitions.iter().map(move |p| {
            let o = (p.committed_offset, p.committed_leader_epoch);
            (
                t.name.as_str(),
                p.partition_index,
                o,
                &p.metadata,
                p.error_code,
            )
        })
    });
    let entries = old
        .chain(per_group)
        .map(|(topic, partition, (offset, epoch), metadata, code)| {
            (
                TopicPartition::new(topic, partition),
                offset,
                epoch,
                metadata.clone(),
                ErrorCode(code),
            )
        })
        .collect();
    Fetched {
        group_code,
        entries,
    }
}
