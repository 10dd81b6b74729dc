//! Position validation and truncation detection (KIP-320).
//!
//! A position carries the leader epoch of the record before it. When the
//! partition's leader changes (metadata names another leader or a newer
//! leader epoch), or when a position with an epoch comes from elsewhere (a
//! committed offset), the partition stops fetching and an
//! OffsetForLeaderEpoch asks the leader where that epoch ends in its log,
//! one request per leader broker. An end below the position means the log
//! was truncated under the consumer (an unclean leader election): the
//! position moves to the first offset known to diverge, or, with
//! `auto.offset.reset` none, the application is told once and the partition
//! stays stopped until it seeks. A Fetch's diverging epoch (v12+) is the
//! same answer given unasked, and goes through the same decision, [`judge`].

use crate::protocol::messages::{
    OffsetForLeaderEpochResponse,
    offset_for_leader_epoch::{OffsetForLeaderPartition, OffsetForLeaderTopic},
};

use super::*;

/// The first OffsetForLeaderEpoch version a consumer asks with: v3 added
/// `replica_id`, so a broker authorizes a consumer by topic (before, the
/// API needed cluster permission). Like the Java client, a leader without
/// it is not asked and positions under it are trusted.
const MIN_VERSION: i16 = 3;

/// One partition of an OffsetForLeaderEpoch in flight.
#[derive(Debug)]
pub(crate) struct ValidatedPartition {
    tp: TopicPartition,
    /// The partition's fence when the request went out.
    fence: u64,
    /// The leader asked: the position is good under it if the answer says so.
    leader: Leader,
}

/// Where a leader says an epoch ends: the largest epoch it knows at or
/// below the one asked, and the offset where that epoch ends (the first
/// offset of the next one); -1 for either when it cannot say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEnd {
    pub(crate) epoch: i32,
    pub(crate) end_offset: i64,
}

/// What an [`EpochEnd`] means for a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The leader's log still holds everything before the position.
    Valid,
    /// The log was truncated below the position. `divergent`: the first
    /// offset known to diverge and its epoch; `None` when the leader does
    /// not know the epoch at all.
    Truncated { divergent: Option<(i64, i32)> },
}

/// The one truncation decision, for OffsetForLeaderEpoch answers and Fetch
/// diverging epochs alike (the Java client's rule): the log was truncated
/// when the position's epoch ends before the position, or the leader
/// cannot say where it ends.
pub(crate) fn judge(position: i64, end: EpochEnd) -> Verdict {
    if end.epoch < 0 || end.end_offset < 0 {
        Verdict::Truncated { divergent: None }
    } else if end.end_offset < position {
        Verdict::Truncated {
            divergent: Some((end.end_offset, end.epoch)),
        }
    } else {
        Verdict::Valid
    }
}

impl Consumer {
    /// Sends fetching partitions whose leader is not the one their position
    /// is known to be good under to validation; a position without an
    /// epoch (or a leader without one) cannot be checked and is taken over
    /// by the new leader as it is. Either way, records buffered or in
    /// flight from the old leader are dropped: they lie past the position,
    /// where the new leader's log may differ.
    pub(super) fn check_leaders(&mut self) {
        let generation = self.metadata.generation();
        for (tp, state) in &mut self.partitions {
            if !matches!(state.phase, Phase::Fetching) {
                continue;
            }
            let Some(leader) = state.leader(tp, &self.metadata, generation) else {
                continue;
            };
            if state.position_leader == Some(leader) {
                continue;
            }
            let position = state.position;
            if state.position_epoch.is_none() || leader.epoch.is_none() {
                Self::restart(state, Phase::Fetching, &mut self.timers);
                state.fetch_offset = position;
                state.position_leader = Some(leader);
                continue;
            }
            tracing::debug!(
                partition = %tp,
                position,
                epoch = ?state.position_epoch,
                leader = leader.broker.0,
                leader_epoch = ?leader.epoch,
                "validating the position under a new leader"
            );
            Self::restart(state, Phase::Validating, &mut self.timers);
            state.fetch_offset = position;
        }
    }

    /// One OffsetForLeaderEpoch per leader broker for the partitions
    /// awaiting validation.
    pub(super) fn send_validations(&mut self, now: Instant) {
        let mut by_leader: BTreeMap<BrokerId, Vec<(TopicPartition, Leader)>> = BTreeMap::new();
        let mut unchecked = Vec::new();
        for (tp, state) in &self.partitions {
            if !matches!(state.phase, Phase::Validating) || !state.retry.ready(&self.timers) {
                continue;
            }
            let Some(leader) = self.metadata.leader(tp) else {
                self.metadata.request_update();
                continue;
            };
            if state.position_epoch.is_none() || leader.epoch.is_none() {
                unchecked.push((tp.clone(), leader));
                continue;
            }
            by_leader
                .entry(leader.broker)
                .or_default()
                .push((tp.clone(), leader));
        }
        for (tp, leader) in unchecked {
            self.position_valid(&tp, leader, None);
        }
        for (broker, entries) in by_leader {
            let Some((conn, address)) = self.sendable_conn(broker, now) else {
                continue;
            };
            let Ok(version) =
                self.conns
                    .version_at_least(conn, ApiKey::OffsetForLeaderEpoch, MIN_VERSION)
            else {
                tracing::debug!(
                    broker = %address,
                    "the leader has no OffsetForLeaderEpoch v3+: positions are not validated"
                );
                for (tp, leader) in entries {
                    self.position_valid(&tp, leader, None);
                }
                continue;
            };
            let mut topics: BTreeMap<Arc<str>, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
            let mut validated = Vec::new();
            for (tp, leader) in entries {
                let Some(state) = self.partitions.get(&tp) else {
                    continue;
                };
                topics
                    .entry(tp.topic_arc().clone())
                    .or_default()
                    .push(OffsetForLeaderPartition {
                        partition: tp.partition(),
                        current_leader_epoch: leader.epoch.unwrap_or(-1),
                        leader_epoch: state.position_epoch.unwrap_or(-1),
                    });
                validated.push(ValidatedPartition {
                    tp,
                    fence: state.fence,
                    leader,
                });
            }
            let request = OffsetForLeaderEpochRequest {
                replica_id: -1,
                topics: topics
                    .into_iter()
                    .map(|(topic, partitions)| OffsetForLeaderTopic {
                        topic: topic.to_string(),
                        partitions,
                    })
                    .collect(),
            };
            let sent: Vec<TopicPartition> = validated.iter().map(|p| p.tp.clone()).collect();
            let purpose = Purpose::Validation {
                partitions: validated,
            };
            if self
                .conns
                .send(
                    conn,
                    &request,
                    version,
                    Duration::ZERO,
                    purpose,
                    now,
                    &mut self.timers,
                )
                .is_ok()
            {
                for tp in sent {
                    if let Some(state) = self.partitions.get_mut(&tp) {
                        state.retry.sent();
                    }
                }
            }
        }
    }

    pub(super) fn on_validation(
        &mut self,
        response: &OffsetForLeaderEpochResponse,
        partitions: Vec<ValidatedPartition>,
        now: Instant,
    ) {
        let mut answers: HashMap<(&str, i32), EpochEnd> = HashMap::new();
        let mut errors: HashMap<(&str, i32), ErrorCode> = HashMap::new();
        for topic in &response.topics {
            for p in &topic.partitions {
                let key = (topic.topic.as_str(), p.partition);
                let code = ErrorCode(p.error_code);
                if code.is_ok() {
                    answers.insert(
                        key,
                        EpochEnd {
                            epoch: p.leader_epoch,
                            end_offset: p.end_offset,
                        },
                    );
                } else {
                    errors.insert(key, code);
                }
            }
        }
        for p in &partitions {
            let key = (p.tp.topic(), p.tp.partition());
            let Some(&end) = answers.get(&key) else {
                let code = errors
                    .get(&key)
                    .copied()
                    .unwrap_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION);
                self.validation_failed(p, code, now);
                continue;
            };
            let Some(state) = self.partitions.get(&p.tp) else {
                continue;
            };
            if state.fence != p.fence || !matches!(state.phase, Phase::Validating) {
                // Sought, reset or reassigned since: the answer is stale.
                continue;
            }
            match judge(state.position, end) {
                Verdict::Valid => self.position_valid(&p.tp, p.leader, Some(end.epoch)),
                Verdict::Truncated { divergent } => self.truncated(&p.tp, divergent, p.leader),
            }
        }
    }

    /// A validation got an error, or no answer: retried after a backoff,
    /// with fresh metadata (the usual errors, NOT_LEADER_OR_FOLLOWER,
    /// FENCED_LEADER_EPOCH and UNKNOWN_LEADER_EPOCH, mean the leader or
    /// its epoch moved). A non-retriable error is also reported once.
    pub(super) fn validation_failed(
        &mut self,
        p: &ValidatedPartition,
        code: ErrorCode,
        now: Instant,
    ) {
        let Some(state) = self.partitions.get_mut(&p.tp) else {
            return;
        };
        if state.fence != p.fence || !matches!(state.phase, Phase::Validating) {
            return;
        }
        state
            .retry
            .failed(now, &mut self.retry_backoff, &mut self.timers);
        self.metadata.request_update();
        if !code.is_retriable() {
            self.poll_error.get_or_insert(Error::Partition {
                api: ApiKey::OffsetForLeaderEpoch,
                partition: p.tp.clone(),
                code,
            });
        }
    }

    /// The position stands under `leader`: fetching resumes from it. The
    /// next fetch names `matched_epoch`, the epoch the leader matched it
    /// with, so the leader does not answer with the same divergence again.
    pub(super) fn position_valid(
        &mut self,
        tp: &TopicPartition,
        leader: Leader,
        matched_epoch: Option<i32>,
    ) {
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        state.phase = Phase::Fetching;
        state.position_leader = Some(leader);
        state.fetch_offset = state.position;
        state.last_fetched_epoch = matched_epoch;
        state.retry.succeeded(&mut self.timers);
        self.events.push_back(Event::PositionsChanged);
    }

    /// The log was truncated below the position of `tp`. With a reset
    /// policy, the position moves to the first offset known to diverge (or,
    /// when the leader cannot say, is reset by the policy); with `none`,
    /// the partition stops and the next poll reports it.
    pub(super) fn truncated(
        &mut self,
        tp: &TopicPartition,
        divergent: Option<(i64, i32)>,
        leader: Leader,
    ) {
        let reset = self.config.auto_offset_reset;
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        let position = state.position;
        let divergent_offset = divergent.map(|(offset, _)| offset);
        let phase = match (reset, divergent) {
            (OffsetReset::None, _) => {
                tracing::warn!(
                    partition = %tp,
                    position,
                    divergent_offset = ?divergent_offset,
                    "log truncation detected and auto.offset.reset is none"
                );
                Phase::Truncated {
                    position,
                    divergent_offset,
                    reported: false,
                }
            }
            (_, Some(_)) => Phase::Fetching,
            (strategy, None) => {
                tracing::info!(
                    partition = %tp,
                    position,
                    "log truncation detected, first divergent offset unknown: resetting the position"
                );
                reset_phase(strategy)
            }
        };
        Self::restart(state, phase, &mut self.timers);
        if let (Phase::Fetching, Some((offset, epoch))) = (&state.phase, divergent) {
            tracing::info!(
                partition = %tp,
                position,
                divergent_offset = offset,
                "log truncation detected: resetting the position to the first offset known to diverge"
            );
            state.position = offset;
            state.position_epoch = Some(epoch);
            state.fetch_offset = offset;
            state.last_fetched_epoch = Some(epoch);
            state.position_leader = Some(leader);
        }
        self.events.push_back(Event::PositionsChanged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(epoch: i32, end_offset: i64) -> EpochEnd {
        EpochEnd { epoch, end_offset }
    }

    #[test]
    fn an_epoch_ending_at_or_after_the_position_is_valid() {
        assert_eq!(judge(100, end(4, 100)), Verdict::Valid);
        assert_eq!(judge(100, end(4, 250)), Verdict::Valid);
        // An older epoch that still reaches the position: valid (Java's rule).
        assert_eq!(judge(100, end(2, 100)), Verdict::Valid);
    }

    #[test]
    fn an_epoch_ending_before_the_position_is_a_truncation_there() {
        assert_eq!(
            judge(100, end(4, 90)),
            Verdict::Truncated {
                divergent: Some((90, 4))
            }
        );
        assert_eq!(
            judge(100, end(3, 0)),
            Verdict::Truncated {
                divergent: Some((0, 3))
            }
        );
    }

    #[test]
    fn an_unknown_epoch_or_end_is_a_truncation_at_an_unknown_offset() {
        for unknown in [end(-1, -1), end(-1, 90), end(4, -1)] {
            assert_eq!(
                judge(100, unknown),
                Verdict::Truncated { divergent: None },
                "{unknown:?}"
            );
        }
    }
}
