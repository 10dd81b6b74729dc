//! The consumer's side of its group: the group commands, handed to
//! [`ConsumerGroup`] with a [`GroupCtx`] over the consumer's state, and the
//! [`GroupAction`]s it hands back, applied to the partitions.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Consumer, Event, PartitionState, Phase, QueryId, reset_phase};
use crate::conn::Node;
use crate::error::{Error, Misuse};
use crate::group::commits::CommitKind;
use crate::group::consumer_group::{Assigned, ConsumerGroup, GroupAction, GroupCtx, GroupPurpose};
use crate::group::{GroupMetadata, RebalanceEvent};
use crate::protocol::messages::{
    FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use crate::protocol::{Request, decode_response};
use crate::types::{ConsumerRecord, OffsetAndMetadata, TopicPartition};

use super::CommitId;

/// The assignment as the group sees it. What a commit without explicit
/// offsets sends is each partition's position (everything before it was
/// delivered) or, with `enable.auto.offset.store=false`, the offset the
/// application stored.
pub(super) struct AssignedView<'a> {
    pub(super) partitions: &'a BTreeMap<TopicPartition, PartitionState>,
    pub(super) stored_only: bool,
}

impl Assigned for AssignedView<'_> {
    fn partitions(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    fn delivered(
        &self,
        only: Option<&[TopicPartition]>,
    ) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let wanted = self
            .partitions
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(tp)));
        if self.stored_only {
            return wanted
                .filter_map(|(tp, s)| Some((tp.clone(), s.stored.clone()?)))
                .collect();
        }
        wanted
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
            .collect()
    }

    fn awaiting_committed(&self) -> Vec<(TopicPartition, u64)> {
        self.partitions
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::AwaitingCommitted))
            .map(|(tp, s)| (tp.clone(), s.fence))
            .collect()
    }
}

impl Consumer {
    /// Runs `f` on the group (if there is one) with a context over the
    /// consumer's state, then applies what the group asked for.
    pub(super) fn with_group<T>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut ConsumerGroup, &mut GroupCtx<'_>) -> T,
    ) -> Option<T> {
        let group = self.group.as_mut()?;
        let mut actions = VecDeque::new();
        let assigned = AssignedView {
            partitions: &self.partitions,
            stored_only: !self.config.enable_auto_offset_store,
        };
        let mut ctx = GroupCtx {
            now,
            config: &self.config,
            timers: &mut self.timers,
            backoff: &mut self.retry_backoff,
            conns: &mut self.conns,
            metadata: &mut self.metadata,
            assigned: &assigned,
            events: &mut self.events,
            actions: &mut actions,
        };
        let out = f(group, &mut ctx);
        self.apply_group_actions(actions, now);
        Some(out)
    }

    fn apply_group_actions(&mut self, actions: VecDeque<GroupAction>, now: Instant) {
        if !actions.is_empty() {
            self.scan_due = true;
        }
        for action in actions {
            match action {
                GroupAction::Remove(partitions) => {
                    for tp in &partitions {
                        if let Some(mut state) = self.partitions.remove(tp) {
                            state.buffer.clear();
                            state.retry.cancel(&mut self.timers);
                        }
                    }
                    self.update_wanted_metadata();
                }
                GroupAction::Add(partitions) => {
                    for tp in partitions {
                        let state = self.new_partition_state(&tp);
                        self.partitions.insert(tp, state);
                    }
                    self.update_wanted_metadata();
                }
                GroupAction::Positions(found) => {
                    for (tp, fence, committed) in found {
                        let Some(state) = self.partitions.get_mut(&tp) else {
                            continue;
                        };
                        if state.fence != fence || !matches!(state.phase, Phase::AwaitingCommitted)
                        {
                            continue;
                        }
                        match committed {
                            Some((offset, epoch)) => {
                                state.phase = Phase::Fetching;
                                state.position = offset;
                                state.fetch_offset = offset;
                                state.position_epoch = epoch;
                                // Committed under some earlier leader: with
                                // an epoch, it is validated before fetching
                                // (`check_leaders`).
                                state.position_leader = None;
                            }
                            None => state.phase = reset_phase(self.config.auto_offset_reset),
                        }
                    }
                    self.events.push_back(Event::PositionsChanged);
                    self.note_needs_seek();
                }
                GroupAction::InterestChanged => self.update_wanted_metadata(),
                GroupAction::Fatal(error) => self.set_fatal(error),
                GroupAction::PollError(error) => {
                    tracing::warn!(%error, "a group error for the next poll");
                    self.poll_error.get_or_insert(error);
                }
                GroupAction::WakePoll => self.signal_poll_ready(),
                GroupAction::Closed => self.finish_close(now),
            }
        }
    }

    /// The one way a consumer fails for good: every later command returns
    /// `error`, pending offset queries fail with it, and waiting polls wake.
    pub(super) fn set_fatal(&mut self, error: Error) {
        debug_assert!(error.is_fatal(), "not a fatal error: {error}");
        if self.stopped.is_some() {
            return;
        }
        tracing::error!(%error, "the consumer cannot go on");
        self.stopped = Some(error.clone());
        for (id, _) in std::mem::take(&mut self.queries) {
            self.events.push_back(Event::OffsetsQueryDone {
                id,
                result: Err(error.clone()),
            });
        }
        self.events.push_back(Event::PollReady);
        self.events.push_back(Event::PositionsChanged);
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

    /// Decodes a group answer; an unreadable one is reported and counts as
    /// no answer.
    fn decode_group<R: Request>(
        &mut self,
        node: Node,
        reply: Option<(Bytes, i16)>,
    ) -> Option<R::Response> {
        let (frame, version) = reply?;
        match decode_response::<R>(frame, version) {
            Ok((_, response)) => Some(response),
            Err(e) => {
                self.protocol_error(node, e);
                None
            }
        }
    }

    /// A group request's answer (`reply`: the frame and its version), or
    /// its failure (`None`).
    pub(super) fn on_group_reply(
        &mut self,
        node: Node,
        purpose: GroupPurpose,
        reply: Option<(Bytes, i16)>,
        now: Instant,
    ) {
        match purpose {
            GroupPurpose::FindCoordinator => {
                let response = self.decode_group::<FindCoordinatorRequest>(node, reply);
                self.with_group(now, |g, ctx| g.on_find_coordinator(response, ctx));
            }
            GroupPurpose::Join { term } => {
                let response = self.decode_group::<JoinGroupRequest>(node, reply);
                self.with_group(now, |g, ctx| g.on_join(term, response, ctx));
            }
            GroupPurpose::Sync { term, generation } => {
                let response = self.decode_group::<SyncGroupRequest>(node, reply);
                self.with_group(now, |g, ctx| g.on_sync(term, generation, response, ctx));
            }
            GroupPurpose::Heartbeat { term, generation } => {
                let response = self.decode_group::<HeartbeatRequest>(node, reply);
                self.with_group(now, |g, ctx| {
                    g.on_heartbeat(term, generation, response, ctx)
                });
            }
            GroupPurpose::Leave => {
                self.with_group(now, |g, ctx| g.on_leave(ctx));
            }
            GroupPurpose::Commit { term, id } => {
                let response = self.decode_group::<OffsetCommitRequest>(node, reply);
                self.with_group(now, |g, ctx| g.on_commit(term, id, response, ctx));
            }
            GroupPurpose::OffsetFetch {
                term,
                positions,
                query,
            } => {
                let response = self.decode_group::<OffsetFetchRequest>(node, reply);
                self.with_group(now, |g, ctx| {
                    g.on_offset_fetch(term, positions, query, response, ctx)
                });
            }
        }
    }

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
            return Err(Error::InvalidArgument(Misuse::InvalidTopic(t.clone())));
        }
        if topics.is_empty() {
            return self.unsubscribe(now);
        }
        self.with_group(now, |g, ctx| g.subscribe(topics, ctx))
            .ok_or(Error::NoGroup("subscribe"))??;
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
            Error::InvalidArgument(Misuse::InvalidPattern {
                pattern: pattern.to_string(),
                reason: e.to_string(),
            })
        })?;
        self.with_group(now, |g, ctx| g.subscribe_pattern(regex, ctx))
            .ok_or(Error::NoGroup("subscribe"))??;
        self.progress(now);
        Ok(())
    }

    /// Leaves the group: revokes the assignment (committing first with
    /// auto-commit), sends LeaveGroup and clears the subscription.
    pub fn unsubscribe(&mut self, now: Instant) -> Result<(), Error> {
        self.check_usable()?;
        self.with_group(now, |g, ctx| g.unsubscribe(ctx));
        self.progress(now);
        Ok(())
    }

    /// The subscribed topics (empty when not subscribed).
    pub fn subscription(&self) -> Vec<String> {
        self.group
            .as_ref()
            .map(ConsumerGroup::subscription)
            .unwrap_or_default()
    }

    /// The next rebalance event for the application's listener. After
    /// handling the events, call [`ack_rebalance`](Self::ack_rebalance):
    /// the consumer holds the rebalance until then.
    pub fn poll_rebalance(&mut self) -> Option<RebalanceEvent> {
        self.group.as_mut()?.poll_rebalance()
    }

    /// The application handled the rebalance events it took: the rebalance
    /// may go on (after any commit made while handling them).
    pub fn ack_rebalance(&mut self, now: Instant) {
        if let Some(group) = self.group.as_mut() {
            group.ack_rebalance();
        }
        self.progress(now);
    }

    /// The group generation and member id, while a member.
    pub fn group_membership(&self) -> Option<(i32, String)> {
        self.group.as_ref()?.membership()
    }

    /// Who this member is in its group: `None` without a `group.id`. Before
    /// the first join completes the member id is empty and the generation
    /// -1 (Java's `groupMetadata()`); [`GroupMetadata::leader`] tells
    /// whether this member ran the assignor of the current generation.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        Some(self.group.as_ref()?.metadata())
    }

    /// Commits offsets to the group: `None` commits the positions of every
    /// assigned partition (what was delivered), `Some` commits exactly
    /// those. The outcome arrives as [`Event::CommitDone`]; retriable
    /// failures are retried until `timeout`.
    ///
    /// Commits go out, and complete, in the order they are made, and a
    /// partition's committed offset never moves backwards: an older commit
    /// is never sent with a partition a newer one already went out with
    /// (its outcome then includes the newer one's).
    pub fn commit(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        timeout: Duration,
        now: Instant,
    ) -> Result<CommitId, Error> {
        self.queue_commit(offsets, CommitKind::Sync, timeout, false, now)
    }

    /// Like [`commit`](Self::commit), for an application that does not
    /// wait for it (Java's `commitAsync`): a retriable failure is retried
    /// only while no newer commit of its partitions was made; otherwise it
    /// fails with [`CommitFailure::Retriable`](crate::CommitFailure) or
    /// `NoAnswer`, as the newer commit carries newer offsets.
    pub fn commit_async(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        timeout: Duration,
        now: Instant,
    ) -> Result<CommitId, Error> {
        self.queue_commit(offsets, CommitKind::Async, timeout, false, now)
    }

    /// A commit from a rebalance listener: allowed while the rebalance
    /// waits for the listener, and the rejoin waits for it.
    pub(crate) fn commit_from_listener(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        timeout: Duration,
        now: Instant,
    ) -> Result<CommitId, Error> {
        self.queue_commit(offsets, CommitKind::Sync, timeout, true, now)
    }

    fn queue_commit(
        &mut self,
        offsets: Option<BTreeMap<TopicPartition, OffsetAndMetadata>>,
        kind: CommitKind,
        timeout: Duration,
        from_listener: bool,
        now: Instant,
    ) -> Result<CommitId, Error> {
        self.check_usable()?;
        let offsets = offsets.unwrap_or_else(|| self.delivered_positions());
        if let Some((tp, _)) = offsets
            .iter()
            .find(|(tp, o)| o.offset < 0 || tp.partition() < 0)
        {
            return Err(Error::InvalidArgument(Misuse::InvalidCommitOffset(
                tp.clone(),
            )));
        }
        let deadline = now + timeout;
        let id = self
            .with_group(now, |g, ctx| {
                g.commit(offsets, kind, deadline, from_listener, ctx)
            })
            .ok_or(Error::NoGroup("commit"))??;
        self.progress(now);
        Ok(id)
    }

    /// The positions of every assigned partition that has one, and of
    /// partitions being revoked.
    fn delivered_positions(&self) -> BTreeMap<TopicPartition, OffsetAndMetadata> {
        let assigned = AssignedView {
            partitions: &self.partitions,
            stored_only: !self.config.enable_auto_offset_store,
        };
        match &self.group {
            Some(group) => group.delivered(None, &assigned),
            None => assigned.delivered(None),
        }
    }

    /// Stores the offset after `record` as its partition's offset to commit
    /// (librdkafka's `rd_kafka_offset_store`, Sarama's `MarkMessage`):
    /// with `enable.auto.offset.store=false`, commits without explicit
    /// offsets send only stored offsets. Storing an offset below the one
    /// stored already moves it back (the application decides).
    pub fn store_offset(&mut self, record: &ConsumerRecord) -> Result<(), Error> {
        let tp = record.topic_partition().clone();
        let offset = OffsetAndMetadata {
            offset: record.offset() + 1,
            leader_epoch: record.leader_epoch(),
            metadata: String::new(),
        };
        self.store_offsets([(tp, offset)].into())
    }

    /// Stores `offsets` (each the offset of the next record to read) as
    /// the offsets to commit; see [`store_offset`](Self::store_offset).
    /// Fails, storing nothing, if auto offset store is on or a partition
    /// is not assigned.
    pub fn store_offsets(
        &mut self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.check_usable()?;
        if self.config.enable_auto_offset_store {
            return Err(Error::InvalidArgument(Misuse::AutoOffsetStore));
        }
        for (tp, o) in &offsets {
            if o.offset < 0 {
                return Err(Error::InvalidArgument(Misuse::InvalidCommitOffset(
                    tp.clone(),
                )));
            }
            if !self.partitions.contains_key(tp) {
                return Err(Error::InvalidArgument(Misuse::NotAssigned(tp.clone())));
            }
        }
        for (tp, o) in offsets {
            if let Some(state) = self.partitions.get_mut(&tp) {
                state.stored = Some(o);
            }
        }
        Ok(())
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
        if self.group.is_none() {
            return Err(Error::NoGroup("committed"));
        }
        let id = QueryId(self.next_query);
        self.next_query += 1;
        self.with_group(now, |g, ctx| {
            g.committed(id, partitions, now + timeout, ctx)
        });
        self.progress(now);
        Ok(id)
    }
}
