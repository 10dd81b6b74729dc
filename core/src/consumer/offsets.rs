//! Offsets by ListOffsets: resolving positions (`auto.offset.reset`,
//! `seek_to_beginning`/`seek_to_end`) and answering offset queries
//! (`beginning_offsets`, `end_offsets`, `offsets_for_times`), grouped into
//! one request per leader broker.

use super::*;

/// One partition's line in a ListOffsets request: partition, timestamp,
/// leader epoch, and what the answer is for.
pub(super) type OffsetsEntry = (TopicPartition, i64, Option<i32>, OffsetsTarget);

#[derive(Debug, Clone, Copy)]
pub(crate) enum OffsetsTarget {
    /// A partition's reset; the offset found is good under `leader`, the
    /// leader asked.
    Reset {
        fence: u64,
        leader: Leader,
    },
    Query {
        id: QueryId,
    },
}

/// An offsets query; its deadline is [`Timer::QueryDeadline`].
#[derive(Debug)]
pub(super) struct Query {
    /// Partitions still to look up.
    pub(super) pending: BTreeMap<TopicPartition, QueryPartition>,
    pub(super) results: BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>,
}

#[derive(Debug)]
pub(super) struct QueryPartition {
    /// Timestamp to look up (-2 earliest, -1 latest).
    pub(super) timestamp: i64,
    pub(super) retry: Retry,
}

impl Consumer {
    pub(super) fn start_query(
        &mut self,
        partitions: impl IntoIterator<Item = (TopicPartition, i64)>,
        timeout: Duration,
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.check_usable()?;
        let id = QueryId(self.next_query);
        self.next_query += 1;
        let pending: BTreeMap<TopicPartition, QueryPartition> = partitions
            .into_iter()
            .map(|(tp, timestamp)| {
                let retry = Retry::new(Timer::QueryRetry(id, tp.clone()));
                (tp, QueryPartition { timestamp, retry })
            })
            .collect();
        if let Some(tp) = pending
            .keys()
            .find(|tp| tp.partition() < 0 || tp.topic().is_empty())
        {
            return Err(Error::InvalidArgument(Misuse::InvalidPartition(tp.clone())));
        }
        self.queries.insert(
            id,
            Query {
                pending,
                results: BTreeMap::new(),
            },
        );
        self.timers.set(Timer::QueryDeadline(id), now + timeout);
        self.update_wanted_metadata();
        self.finish_queries();
        self.progress(now);
        Ok(id)
    }

    /// Resets and queries, grouped by leader into one ListOffsets per broker.
    pub(super) fn send_list_offsets(&mut self, now: Instant) {
        let isolation = self.config.isolation_level;
        let mut by_leader: BTreeMap<BrokerId, Vec<OffsetsEntry>> = BTreeMap::new();
        for (tp, state) in &self.partitions {
            let Phase::Resetting { strategy } = state.phase else {
                continue;
            };
            if !state.retry.ready(&self.timers) {
                continue;
            }
            let Some(leader) = self.metadata.leader(tp) else {
                self.metadata.request_update();
                continue;
            };
            let timestamp = if strategy == OffsetReset::Earliest {
                EARLIEST_TIMESTAMP
            } else {
                LATEST_TIMESTAMP
            };
            by_leader.entry(leader.broker).or_default().push((
                tp.clone(),
                timestamp,
                leader.epoch,
                OffsetsTarget::Reset {
                    fence: state.fence,
                    leader,
                },
            ));
        }
        for (&id, query) in &self.queries {
            for (tp, p) in &query.pending {
                if !p.retry.ready(&self.timers) {
                    continue;
                }
                let Some(leader) = self.metadata.leader(tp) else {
                    self.metadata.request_update();
                    continue;
                };
                by_leader.entry(leader.broker).or_default().push((
                    tp.clone(),
                    p.timestamp,
                    leader.epoch,
                    OffsetsTarget::Query { id },
                ));
            }
        }
        for (broker, entries) in by_leader {
            let Some((conn, _)) = self.sendable_conn(broker, now) else {
                continue;
            };
            let Ok(version) = self.conns.version(conn, ApiKey::ListOffsets) else {
                continue;
            };
            // One ListOffsets may list a partition once: a reset and a query
            // for the same partition go in separate requests.
            let mut seen: HashSet<TopicPartition> = HashSet::new();
            let (now_entries, _later): (Vec<_>, Vec<_>) =
                entries.into_iter().partition(|e| seen.insert(e.0.clone()));
            let mut topics: BTreeMap<Arc<str>, Vec<ListOffsetsPartition>> = BTreeMap::new();
            for (tp, timestamp, epoch, _) in &now_entries {
                topics
                    .entry(tp.topic_arc().clone())
                    .or_default()
                    .push(ListOffsetsPartition {
                        partition_index: tp.partition(),
                        current_leader_epoch: epoch.unwrap_or(-1),
                        timestamp: *timestamp,
                    });
            }
            let request = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: isolation.wire_value(),
                topics: topics
                    .into_iter()
                    .map(|(name, partitions)| ListOffsetsTopic {
                        name: name.to_string(),
                        partitions,
                    })
                    .collect(),
                timeout_ms: i32::try_from(self.config.request_timeout.as_millis())
                    .unwrap_or(i32::MAX),
            };
            let purpose = Purpose::ListOffsets {
                partitions: now_entries
                    .iter()
                    .map(|(tp, _, _, target)| (tp.clone(), *target))
                    .collect(),
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
                for (tp, _, _, target) in now_entries {
                    self.mark_offsets_in_flight(&tp, target, true);
                }
            }
        }
    }

    pub(super) fn mark_offsets_in_flight(
        &mut self,
        tp: &TopicPartition,
        target: OffsetsTarget,
        value: bool,
    ) {
        match target {
            OffsetsTarget::Reset { fence, .. } => {
                if let Some(state) = self.partitions.get_mut(tp) {
                    if state.fence == fence && matches!(state.phase, Phase::Resetting { .. }) {
                        if value {
                            state.retry.sent();
                        } else {
                            state.retry.settled();
                        }
                    }
                }
            }
            OffsetsTarget::Query { id } => {
                if let Some(p) = self
                    .queries
                    .get_mut(&id)
                    .and_then(|q| q.pending.get_mut(tp))
                {
                    if value {
                        p.retry.sent();
                    } else {
                        p.retry.settled();
                    }
                }
            }
        }
    }

    pub(super) fn on_list_offsets(
        &mut self,
        response: &ListOffsetsResponse,
        partitions: Vec<(TopicPartition, OffsetsTarget)>,
        now: Instant,
    ) {
        let mut answers: HashMap<
            (&str, i32),
            &crate::protocol::messages::list_offsets::ListOffsetsPartitionResponse,
        > = HashMap::new();
        for topic in &response.topics {
            for p in &topic.partitions {
                answers.insert((topic.name.as_str(), p.partition_index), p);
            }
        }
        for (tp, target) in &partitions {
            let Some(answer) = answers.get(&(tp.topic(), tp.partition())) else {
                self.offsets_failed(tp, *target, ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, now);
                continue;
            };
            let code = ErrorCode(answer.error_code);
            if !code.is_ok() {
                self.offsets_failed(tp, *target, code, now);
                continue;
            }
            let epoch = (answer.leader_epoch >= 0).then_some(answer.leader_epoch);
            match *target {
                OffsetsTarget::Reset { fence, leader } => {
                    let Some(state) = self.partitions.get_mut(tp) else {
                        continue;
                    };
                    if state.fence != fence || !matches!(state.phase, Phase::Resetting { .. }) {
                        continue;
                    }
                    state.phase = Phase::Fetching;
                    state.position = answer.offset.max(0);
                    state.position_epoch = epoch;
                    // The leader asked found the offset in its own log: no
                    // need to validate it unless the leader changes.
                    state.position_leader = Some(leader);
                    state.fetch_offset = state.position;
                    state.retry.succeeded(&mut self.timers);
                    tracing::info!(partition = %tp, offset = state.position, "position reset");
                    self.events.push_back(Event::PositionsChanged);
                }
                OffsetsTarget::Query { id } => {
                    let Some(query) = self.queries.get_mut(&id) else {
                        continue;
                    };
                    if let Some(p) = query.pending.remove(tp) {
                        p.retry.cancel(&mut self.timers);
                        let found = (answer.offset >= 0).then_some(OffsetAndTimestamp {
                            offset: answer.offset,
                            timestamp: answer.timestamp,
                            leader_epoch: epoch,
                        });
                        query.results.insert(tp.clone(), found);
                    }
                }
            }
        }
        self.finish_queries();
    }

    pub(super) fn offsets_failed(
        &mut self,
        tp: &TopicPartition,
        target: OffsetsTarget,
        code: ErrorCode,
        now: Instant,
    ) {
        let retriable = code.is_retriable() || code == ErrorCode::NETWORK_EXCEPTION;
        if retriable {
            self.metadata.request_update();
        }
        match target {
            OffsetsTarget::Reset { fence, .. } => {
                let Some(state) = self.partitions.get_mut(tp) else {
                    return;
                };
                if state.fence != fence {
                    return;
                }
                state
                    .retry
                    .failed(now, &mut self.retry_backoff, &mut self.timers);
                if !retriable {
                    self.poll_error.get_or_insert(Error::Partition {
                        api: ApiKey::ListOffsets,
                        partition: tp.clone(),
                        code,
                    });
                }
            }
            OffsetsTarget::Query { id } => {
                if !retriable {
                    self.fail_query(
                        id,
                        Error::Partition {
                            api: ApiKey::ListOffsets,
                            partition: tp.clone(),
                            code,
                        },
                    );
                    return;
                }
                let Some(p) = self
                    .queries
                    .get_mut(&id)
                    .and_then(|q| q.pending.get_mut(tp))
                else {
                    return;
                };
                p.retry
                    .failed(now, &mut self.retry_backoff, &mut self.timers);
            }
        }
    }

    pub(super) fn fail_query(&mut self, id: QueryId, error: Error) {
        if let Some(query) = self.queries.remove(&id) {
            self.forget_query_timers(id, &query);
            self.events.push_back(Event::OffsetsQueryDone {
                id,
                result: Err(error),
            });
            self.update_wanted_metadata();
        }
    }

    pub(super) fn finish_queries(&mut self) {
        let done: Vec<QueryId> = self
            .queries
            .iter()
            .filter(|(_, q)| q.pending.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in done {
            if let Some(query) = self.queries.remove(&id) {
                self.forget_query_timers(id, &query);
                self.events.push_back(Event::OffsetsQueryDone {
                    id,
                    result: Ok(query.results),
                });
                self.update_wanted_metadata();
            }
        }
    }

    fn forget_query_timers(&mut self, id: QueryId, query: &Query) {
        self.timers.stop(&Timer::QueryDeadline(id));
        for p in query.pending.values() {
            p.retry.cancel(&mut self.timers);
        }
    }

    /// Query `id` ran out of time.
    pub(super) fn expire_query(&mut self, id: QueryId) {
        let Some(query) = self.queries.get(&id) else {
            return;
        };
        let partitions = query.pending.keys().cloned().collect();
        self.fail_query(id, Error::Timeout(Operation::OffsetsLookup(partitions)));
    }
}
