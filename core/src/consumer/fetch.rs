//! Fetching: planning one Fetch per leader broker, handling its response,
//! turning a partition's `records` into buffered batches (read_committed
//! filtering, control batches, compaction gaps), counting the buffer in
//! decompressed bytes, and handing records out.

use std::collections::{BTreeMap, HashSet, VecDeque};

use bytes::Bytes;

use crate::config::IsolationLevel;
use crate::protocol::messages::fetch::FetchAbortedTransaction;
use crate::records::{
    Compression, ControlRecordType, DecodeLimits, RecordBatch, RecordBatchReader, RecordsError,
    RecordsIntoIter, TimestampType,
};
use crate::types::{ConsumerRecord, TopicPartition};

use super::memory::{Charge, MemoryLedger};
use super::validation::{EpochEnd, Verdict, judge};
use super::*;

/// One batch waiting to be delivered. Batches that must not reach the
/// application (control batches, aborted transactions) are kept as empty
/// entries so the position still moves past them.
pub(crate) struct BufferedBatch {
    /// The first offset after this batch (exact across compaction gaps).
    next_offset: i64,
    leader_epoch: Option<i32>,
    timestamp_type: TimestampType,
    content: Content,
    /// Bytes held for the per-partition metrics: the batch as fetched until
    /// it is opened, its decompressed records after.
    bytes: usize,
    /// Records not yet handed out or passed (from the batch header).
    left: usize,
}

/// What a buffered batch holds.
enum Content {
    /// Nothing to deliver (a control batch, an aborted transaction).
    Skipped,
    /// As fetched, not decompressed yet: decompression waits until the
    /// batch is delivered, so only the batches being delivered take their
    /// decompressed size. Holds the response it is a slice of.
    Closed {
        batch: RecordBatch,
        frame: Arc<Charge>,
    },
    /// Being delivered.
    Open {
        records: RecordsIntoIter,
        /// What the records are slices of, charged against the bound: the
        /// response for uncompressed batches...
        _frame: Option<Arc<Charge>>,
        /// ...the decompressed bytes otherwise.
        _decompressed: Option<Charge>,
    },
}

impl BufferedBatch {
    /// Bytes this batch holds (see the field).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn delivers(&self) -> bool {
        !matches!(self.content, Content::Skipped)
    }
}

impl std::fmt::Debug for BufferedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.content {
            Content::Skipped => "skipped",
            Content::Closed { .. } => "closed",
            Content::Open { .. } => "open",
        };
        f.debug_struct("BufferedBatch")
            .field("next_offset", &self.next_offset)
            .field("state", &state)
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// What decoding one partition of a fetch response produced.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) batches: Vec<BufferedBatch>,
    /// Where the next fetch of this partition starts.
    pub(crate) next_fetch_offset: i64,
    /// The leader epoch of the last batch read (for the next fetch's
    /// `last_fetched_epoch`).
    pub(crate) last_epoch: Option<i32>,
    /// A batch failed to decode: the error and the offset it starts at.
    /// Batches before it are kept.
    pub(crate) error: Option<(i64, RecordsError)>,
}

/// Decodes a partition's `records` fetched from `fetch_offset`.
///
/// Batches that end before `fetch_offset` (a broker returns whole batches,
/// so the first may start earlier) are dropped. With read_committed,
/// batches of aborted transactions are skipped using the response's
/// aborted-transaction list, the way the Java client does: a producer's
/// batches are aborted from its transaction's first offset until its ABORT
/// marker.
pub(crate) fn decode(
    records: Option<Bytes>,
    fetch_offset: i64,
    isolation: IsolationLevel,
    aborted: Option<&[FetchAbortedTransaction]>,
    limits: DecodeLimits,
    frame: &Arc<Charge>,
) -> Decoded {
    let mut out = Decoded {
        batches: Vec::new(),
        next_fetch_offset: fetch_offset,
        last_epoch: None,
        error: None,
    };
    // First offset of each aborted transaction, ascending, and the producers
    // currently inside an aborted transaction.
    let mut pending_aborts: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    if isolation == IsolationLevel::ReadCommitted {
        for txn in aborted.unwrap_or_default() {
            pending_aborts
                .entry(txn.first_offset)
                .or_default()
                .push(txn.producer_id);
        }
    }
    let mut aborted_producers: HashSet<i64> = HashSet::new();

    for batch in RecordBatchReader::with_limits(records, limits) {
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                out.error = Some((out.next_fetch_offset, e));
                break;
            }
        };
        if batch.next_offset() <= out.next_fetch_offset {
            continue;
        }
        let epoch = (batch.partition_leader_epoch() >= 0).then_some(batch.partition_leader_epoch());
        let mut skip = batch.is_control();
        if isolation == IsolationLevel::ReadCommitted && batch.producer_id() >= 0 {
            let started: Vec<i64> = pending_aborts
                .range(..=batch.last_offset())
                .map(|(&k, _)| k)
                .collect();
            for first in started {
                if let Some(producers) = pending_aborts.remove(&first) {
                    aborted_producers.extend(producers);
                }
            }
            if batch.is_control() {
                let is_abort = matches!(
                    batch.control_record(),
                    Ok(Some(marker)) if marker.kind == ControlRecordType::Abort
                );
                if is_abort {
                    aborted_producers.remove(&batch.producer_id());
                }
            } else if batch.is_transactional() && aborted_producers.contains(&batch.producer_id()) {
                skip = true;
            }
        }
        let next_offset = batch.next_offset();
        let timestamp_type = batch.timestamp_type();
        let (content, bytes, left) = if skip {
            (Content::Skipped, 0, 0)
        } else {
            let (bytes, left) = (batch.size_in_bytes(), batch.record_count() as usize);
            let frame = frame.clone();
            (Content::Closed { batch, frame }, bytes, left)
        };
        out.batches.push(BufferedBatch {
            next_offset,
            leader_epoch: epoch,
            timestamp_type,
            content,
            bytes,
            left,
        });
        out.next_fetch_offset = next_offset;
        out.last_epoch = epoch.or(out.last_epoch);
    }
    out
}

/// A partition's buffered batches, delivered in order.
#[derive(Debug, Default)]
pub(crate) struct PartitionBuffer {
    batches: VecDeque<BufferedBatch>,
    bytes: usize,
    /// Records buffered (for the metrics).
    records: usize,
}

/// Why delivery from a buffer stopped early.
#[derive(Debug)]
pub(crate) struct DeliveryError {
    pub(crate) offset: i64,
    pub(crate) error: RecordsError,
}

impl PartitionBuffer {
    pub(crate) fn push(&mut self, batch: BufferedBatch) {
        self.bytes += batch.bytes;
        self.records += batch.left;
        self.batches.push_back(batch);
    }

    /// Records buffered (counted from batch headers) and their
    /// decompressed bytes.
    pub(crate) fn size(&self) -> (usize, usize) {
        (self.records, self.bytes)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Drops everything (seek, pause, unassign).
    pub(crate) fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
        self.records = 0;
    }

    /// Moves `position` past skipped or exhausted batches at the front
    /// without delivering anything.
    pub(crate) fn skip_empty(&mut self, position: &mut i64, epoch: &mut Option<i32>) {
        while let Some(front) = self.batches.front() {
            if front.delivers() {
                break;
            }
            *position = (*position).max(front.next_offset);
            *epoch = front.leader_epoch.or(*epoch);
            self.bytes -= front.bytes;
            self.batches.pop_front();
        }
    }

    /// True while the batch at the front is partly delivered.
    pub(crate) fn in_batch(&self) -> bool {
        self.open_left().is_some()
    }

    /// The records left in the partly delivered batch at the front.
    pub(crate) fn open_left(&self) -> Option<usize> {
        self.batches
            .front()
            .filter(|b| matches!(b.content, Content::Open { .. }))
            .map(|b| b.left)
    }

    /// True if a record can be delivered now (not only skipped batches).
    pub(crate) fn has_records(&self) -> bool {
        self.batches.iter().any(BufferedBatch::delivers)
    }

    /// Delivers up to `max` records at or after `position`, advancing it
    /// (and the epoch) past what was delivered and past skipped batches,
    /// decompressing each batch as its turn comes (charged to `ledger`).
    pub(crate) fn take(
        &mut self,
        tp: &TopicPartition,
        position: &mut i64,
        epoch: &mut Option<i32>,
        max: usize,
        ledger: &MemoryLedger,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<(), DeliveryError> {
        let mut taken = 0;
        while let Some(front) = self.batches.front_mut() {
            if matches!(front.content, Content::Closed { .. }) {
                if taken >= max {
                    // Opened when a poll wants its records, not before.
                    break;
                }
                let Content::Closed { batch, frame } =
                    std::mem::replace(&mut front.content, Content::Skipped)
                else {
                    continue;
                };
                match batch.records() {
                    Ok(records) => {
                        let (frame, decompressed) = if batch.compression() == Compression::None {
                            (Some(frame), None)
                        } else {
                            // The compressed bytes are not needed any more.
                            drop(frame);
                            let size = records.buffer().len();
                            self.bytes = self.bytes - front.bytes + size;
                            front.bytes = size;
                            (None, Some(ledger.charge(size)))
                        };
                        front.content = Content::Open {
                            records: records.into_iter(),
                            _frame: frame,
                            _decompressed: decompressed,
                        };
                    }
                    Err(error) => {
                        return Err(DeliveryError {
                            offset: (*position).max(batch.base_offset()),
                            error,
                        });
                    }
                }
            }
            if let Content::Open { records, .. } = &mut front.content {
                while taken < max {
                    match records.next() {
                        Some(Ok(record)) => {
                            front.left = front.left.saturating_sub(1);
                            self.records = self.records.saturating_sub(1);
                            if record.offset() < *position {
                                continue;
                            }
                            *position = record.offset() + 1;
                            *epoch = front.leader_epoch.or(*epoch);
                            out.push(ConsumerRecord::new(
                                tp.clone(),
                                front.leader_epoch,
                                front.timestamp_type,
                                record,
                            ));
                            taken += 1;
                        }
                        Some(Err(error)) => {
                            return Err(DeliveryError {
                                offset: *position,
                                error,
                            });
                        }
                        None => break,
                    }
                }
                if taken >= max && front.left > 0 {
                    // The batch holds more records: it stays at the front.
                    break;
                }
            }
            // Exhausted or skipped: the position moves past any gap at its end.
            *position = (*position).max(front.next_offset);
            *epoch = front.leader_epoch.or(*epoch);
            self.bytes -= front.bytes;
            self.records = self.records.saturating_sub(front.left);
            self.batches.pop_front();
        }
        Ok(())
    }
}

/// How much one Fetch asks for at most (unless one partition's limit is
/// more). Bigger responses save no CPU (measured on 1,000 partitions: 4,
/// 8, 16 and 32 MiB cost the same per record within noise) but each is a
/// fresh allocation of its size, held until its last record is delivered.
pub(crate) const REQUEST_TARGET_BYTES: usize = 8 << 20;

/// What a Fetch response spends on each partition besides its records
/// (index, error, offsets, the records' length, tagged fields: about 45
/// bytes), reserved with the records so that a response naming many
/// caught-up partitions is counted too.
pub(crate) const RESPONSE_BYTES_PER_PARTITION: usize = 64;

/// What it spends on each topic (name or id, array lengths), and the
/// response header.
pub(crate) const RESPONSE_BYTES_PER_TOPIC: usize = 300;

/// The least a fetch asks for however often fetches failed.
pub(crate) const SHRUNK_REQUEST_BYTES: usize = 16 * 1024;

/// The smallest per-partition limit given to a caught-up partition when
/// many share what is left of a request's budget. Smaller limits would
/// miss batches larger than it: Kafka returns an oversized first batch
/// only for the first partition of a response.
pub(crate) const MIN_CAUGHT_UP_LIMIT: usize = 16 * 1024;

impl Consumer {
    /// One Fetch per leader broker without one in flight, for as many of
    /// its fetchable partitions as the memory bound has room for.
    ///
    /// A request may bring at most the sum of its partitions' limits
    /// (`partition_max_bytes` is honoured by every broker, the
    /// response-level `max_bytes` is not), so that sum is reserved against
    /// the bound when the request goes out. One request takes at most half
    /// the bound (and [`REQUEST_TARGET_BYTES`]), so the next one can be on
    /// its way while the application reads the last. Partitions known to have records get the full
    /// per-partition limit; caught-up ones share what is left (at least
    /// [`MIN_CAUGHT_UP_LIMIT`] each), so a wide topic of quiet partitions
    /// is asked about in few requests. Each leader's next request starts
    /// after the last partition its previous one carried, so none starves.
    pub(super) fn send_fetches(&mut self, now: Instant) {
        let bound = self.config.fetch_buffer_max_bytes.max(1);
        let in_use = self.memory.in_use() + self.reserved.in_use();
        if in_use >= bound || self.partitions.is_empty() {
            return;
        }
        if !self.fetching_from.is_empty()
            && self.fetching_from.len() >= self.metadata.broker_count()
        {
            // Every broker has a fetch in flight.
            return;
        }
        let full_limit =
            usize::try_from(self.config.max_partition_fetch_bytes.max(1)).unwrap_or(usize::MAX);
        let request_cap = usize::try_from(self.config.fetch_max_bytes.max(1))
            .unwrap_or(usize::MAX)
            .min((bound / 2).max(1))
            .min(REQUEST_TARGET_BYTES.max(full_limit));
        // Don't ask for crumbs: wait until a partition's worth is free
        // (or a quarter of a bound smaller than that).
        let least = full_limit.min(bound / 4).max(1);
        let mut room = bound - in_use;
        if room < least {
            return;
        }
        let generation = self.metadata.generation();
        // Per leader, in partition order: (partition, leader, caught up).
        let mut by_leader: BTreeMap<BrokerId, Vec<(TopicPartition, Leader, bool)>> =
            BTreeMap::new();
        let mut need_metadata = false;
        for (tp, state) in &mut self.partitions {
            if state.paused || !matches!(state.phase, Phase::Fetching) {
                continue;
            }
            if state.pending_corruption.is_some() || !state.retry.ready(&self.timers) {
                continue;
            }
            let Some(leader) = state.leader(tp, &self.metadata, generation) else {
                need_metadata = true;
                continue;
            };
            if self.fetching_from.contains(&leader.broker) {
                continue;
            }
            by_leader.entry(leader.broker).or_default().push((
                tp.clone(),
                leader,
                state.caught_up(),
            ));
        }
        if need_metadata {
            self.metadata.request_update();
        }
        for (broker, mut candidates) in by_leader {
            if room < least {
                break;
            }
            // Each leader's partitions take turns: start after the last
            // one its previous request carried.
            if let Some(last) = self.fetch_cursor.get(&broker) {
                let after = candidates.partition_point(|c| c.0 <= *last);
                candidates.rotate_left(after);
            }
            let candidates: Vec<(usize, TopicPartition, Leader, bool)> = candidates
                .into_iter()
                .enumerate()
                .map(|(i, (tp, leader, quiet))| (i, tp, leader, quiet))
                .collect();
            // Halved for each fetch from this leader that failed in a row.
            let shrink = self.fetch_health.get(&broker).map_or(0, |h| h.shrink);
            let budget = room.min(request_cap);
            let budget = (budget >> shrink).max(SHRUNK_REQUEST_BYTES.min(budget));
            // Room for the response's own fields besides the records.
            let budget = budget.saturating_sub(RESPONSE_BYTES_PER_TOPIC);
            let each = |limit: usize| limit + RESPONSE_BYTES_PER_PARTITION;
            let limit = full_limit.min(budget.saturating_sub(RESPONSE_BYTES_PER_PARTITION).max(1));
            // Partitions with records first, each at the full limit...
            let mut chosen: Vec<(usize, TopicPartition, Leader, usize)> = Vec::new();
            let mut used = 0;
            for (i, tp, leader, _) in candidates.iter().filter(|c| !c.3) {
                if !chosen.is_empty() && used + each(limit) > budget {
                    break;
                }
                chosen.push((*i, tp.clone(), *leader, limit));
                used += each(limit);
            }
            // ...then caught-up ones share the rest.
            let quiet: Vec<_> = candidates.iter().filter(|c| c.3).collect();
            let left = budget.saturating_sub(used);
            if !quiet.is_empty() && (chosen.is_empty() || left >= each(MIN_CAUGHT_UP_LIMIT)) {
                let share = (left / quiet.len())
                    .saturating_sub(RESPONSE_BYTES_PER_PARTITION)
                    .clamp(MIN_CAUGHT_UP_LIMIT.min(limit), limit);
                for (i, tp, leader, _) in quiet {
                    if !chosen.is_empty() && used + each(share) > budget {
                        break;
                    }
                    chosen.push((*i, tp.clone(), *leader, share));
                    used += each(share);
                }
            }
            let Some((conn, _)) = self.sendable_conn(broker, now) else {
                continue;
            };
            let Ok(mut version) = self.conns.version(conn, ApiKey::Fetch) else {
                continue;
            };
            // Fetch v13+ names topics by id; without ids (old metadata) stay below.
            if chosen
                .iter()
                .any(|(_, tp, _, _)| self.metadata.topic_id(tp.topic()).is_nil())
            {
                version = version.min(12);
            }
            let mut topics: Vec<FetchTopic> = Vec::new();
            let mut fetched = Vec::new();
            let mut reserved = 0usize;
            chosen.sort_by_key(|c| c.0);
            for (_, tp, leader, limit) in &chosen {
                let Some(state) = self.partitions.get(tp) else {
                    continue;
                };
                reserved += limit + RESPONSE_BYTES_PER_PARTITION;
                let last_fetched_epoch = state
                    .last_fetched_epoch
                    .or(state.position_epoch)
                    .unwrap_or(-1);
                let partition = FetchPartition {
                    partition: tp.partition(),
                    current_leader_epoch: leader.epoch.unwrap_or(-1),
                    fetch_offset: state.fetch_offset,
                    last_fetched_epoch,
                    log_start_offset: -1,
                    partition_max_bytes: i32::try_from(*limit).unwrap_or(i32::MAX),
                    ..Default::default()
                };
                match topics.last_mut() {
                    Some(topic) if topic.topic == tp.topic() => topic.partitions.push(partition),
                    _ => topics.push(FetchTopic {
                        topic: tp.topic().to_string(),
                        topic_id: self.metadata.topic_id(tp.topic()),
                        partitions: vec![partition],
                    }),
                }
                fetched.push(FetchedPartition {
                    tp: tp.clone(),
                    fence: state.fence,
                    fetch_offset: state.fetch_offset,
                    last_fetched_epoch,
                    leader: *leader,
                });
            }
            let max_bytes = i32::try_from(reserved).unwrap_or(i32::MAX);
            reserved += RESPONSE_BYTES_PER_TOPIC * topics.len();
            let request = FetchRequest {
                replica_id: -1,
                max_wait_ms: i32::try_from(self.config.fetch_max_wait.as_millis())
                    .unwrap_or(i32::MAX),
                min_bytes: self.config.fetch_min_bytes,
                max_bytes,
                isolation_level: self.config.isolation_level.wire_value(),
                session_id: 0,
                session_epoch: -1,
                topics,
                rack_id: self.config.client_rack.clone(),
                ..Default::default()
            };
            let purpose = Purpose::Fetch {
                broker,
                partitions: fetched,
                reserved: self.reserved.charge(reserved),
            };
            if self
                .conns
                .send(
                    conn,
                    &request,
                    version,
                    self.config.fetch_max_wait,
                    purpose,
                    now,
                    &mut self.timers,
                )
                .is_ok()
            {
                self.fetching_from.insert(broker);
                room = room.saturating_sub(reserved);
                // The next request starts after the last partition this one
                // carried; when it carried them all, after its first (tansu
                // fills only the first partition with records in a request).
                let next_after = if chosen.len() == candidates.len() {
                    chosen.first()
                } else {
                    chosen.last()
                };
                if let Some((_, tp, _, _)) = next_after {
                    self.fetch_cursor.insert(broker, tp.clone());
                }
                for (_, tp, _, _) in &chosen {
                    if let Some(state) = self.partitions.get_mut(tp) {
                        state.retry.sent();
                    }
                }
            }
        }
    }

    pub(super) fn on_fetch(
        &mut self,
        response: FetchResponse,
        partitions: Vec<FetchedPartition>,
        frame: &Arc<Charge>,
        now: Instant,
    ) {
        let top_error = ErrorCode(response.error_code);
        let mut data: HashMap<(String, i32), FetchPartitionData> = HashMap::new();
        for topic in response.responses {
            let name = if topic.topic.is_empty() {
                // v13+: by id.
                partitions
                    .iter()
                    .find(|p| self.metadata.topic_id(p.tp.topic()) == topic.topic_id)
                    .map(|p| p.tp.topic().to_string())
                    .unwrap_or_default()
            } else {
                topic.topic
            };
            for p in topic.partitions {
                data.insert((name.clone(), p.partition_index), p);
            }
        }
        for fetched in partitions {
            let Some(state) = self.partitions.get_mut(&fetched.tp) else {
                continue;
            };
            if state.fence != fetched.fence {
                // Sought, paused or reset since: whatever came is stale.
                continue;
            }
            state.retry.settled();
            if !top_error.is_ok() {
                self.partition_fetch_error(&fetched.tp, top_error, now);
                continue;
            }
            let Some(partition) =
                data.remove(&(fetched.tp.topic().to_string(), fetched.tp.partition()))
            else {
                continue;
            };
            self.on_fetch_partition(&fetched, partition, frame, now);
        }
    }

    pub(super) fn on_fetch_partition(
        &mut self,
        fetched: &FetchedPartition,
        partition: FetchPartitionData,
        frame: &Arc<Charge>,
        now: Instant,
    ) {
        let tp = &fetched.tp;
        let code = ErrorCode(partition.error_code);
        if partition.current_leader.leader_id >= 0 && partition.current_leader.leader_epoch >= 0 {
            self.metadata.update_leader(
                tp,
                BrokerId(partition.current_leader.leader_id),
                partition.current_leader.leader_epoch,
            );
        }
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        if state.fetch_offset != fetched.fetch_offset {
            return;
        }
        if partition.high_watermark >= 0 {
            state.high_watermark = partition.high_watermark;
        }
        if partition.last_stable_offset >= 0 {
            state.last_stable_offset = partition.last_stable_offset;
        }
        if partition.log_start_offset >= 0 {
            state.log_start_offset = partition.log_start_offset;
        }
        if !code.is_ok() {
            self.partition_fetch_error(tp, code, now);
            return;
        }
        if partition.diverging_epoch.epoch >= 0 {
            let end = EpochEnd {
                epoch: partition.diverging_epoch.epoch,
                end_offset: partition.diverging_epoch.end_offset,
            };
            self.on_diverging_epoch(fetched, end);
            return;
        }
        let decoded = fetch::decode(
            partition.records,
            fetched.fetch_offset,
            self.config.isolation_level,
            partition.aborted_transactions.as_deref(),
            self.limits,
            frame,
        );
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        state.retry.succeeded(&mut self.timers);
        tracing::trace!(
            partition = %tp,
            batches = decoded.batches.len(),
            bytes = decoded.batches.iter().map(BufferedBatch::bytes).sum::<usize>(),
            high_watermark = state.high_watermark,
            "fetched"
        );
        for batch in decoded.batches {
            state.buffer.push(batch);
        }
        if !state.buffer.is_empty() && !state.queued {
            state.queued = true;
            self.ready.push_back(tp.clone());
        }
        state.fetch_offset = decoded.next_fetch_offset;
        state.last_fetched_epoch = decoded.last_epoch.or(state.last_fetched_epoch);
        if let Some((offset, error)) = decoded.error {
            state.pending_corruption = Some((offset, error));
            if state.buffer.is_empty() {
                // Nothing before the bad batch: report it now.
                self.deliver(tp, 0, &mut Vec::new());
            }
        }
    }

    /// The leader says the log diverges from what was fetched: the epoch
    /// named as `last_fetched_epoch` ends at `end` in its log. Judged like
    /// an OffsetForLeaderEpoch answer for the position; either way nothing
    /// fetched past the position is kept.
    pub(super) fn on_diverging_epoch(&mut self, fetched: &FetchedPartition, end: EpochEnd) {
        let Some(state) = self.partitions.get_mut(&fetched.tp) else {
            return;
        };
        let position = state.position;
        if let Verdict::Truncated { divergent } = judge(position, end) {
            self.truncated(&fetched.tp, divergent, fetched.leader);
            return;
        }
        // Delivered records are still in the leader's log, as far as the
        // epoch asked about tells; what was fetched past them may not be.
        Self::restart(state, Phase::Fetching, &mut self.timers);
        state.fetch_offset = position;
        if state.position_epoch.unwrap_or(-1) == fetched.last_fetched_epoch {
            // The answer was about the position's own epoch, so it validates
            // the position under this leader. Naming the epoch the leader
            // matched, the next fetch does not get the same divergence back.
            state.last_fetched_epoch = Some(end.epoch);
            state.position_leader = Some(fetched.leader);
        }
        // Otherwise it was about records buffered past the position: the
        // restarted position is known good under no leader, so
        // `check_leaders` validates its own epoch before the next fetch.
    }

    pub(super) fn partition_fetch_error(
        &mut self,
        tp: &TopicPartition,
        code: ErrorCode,
        now: Instant,
    ) {
        let reset = self.config.auto_offset_reset;
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        if code == ErrorCode::OFFSET_OUT_OF_RANGE {
            if state.fetch_offset != state.position || !state.buffer.is_empty() {
                // A fetch ahead of buffered data: deliver those first.
                state
                    .retry
                    .failed(now, &mut self.retry_backoff, &mut self.timers);
                return;
            }
            let offset = state.position;
            tracing::info!(partition = %tp, offset, policy = ?reset, "offset out of range");
            let phase = match reset {
                OffsetReset::None => Phase::OutOfRange { offset },
                strategy => reset_phase(strategy),
            };
            Self::restart(state, phase, &mut self.timers);
            self.events.push_back(Event::PositionsChanged);
            return;
        }
        state
            .retry
            .failed(now, &mut self.retry_backoff, &mut self.timers);
        if code.is_retriable() {
            self.metadata.request_update();
        } else {
            tracing::warn!(partition = %tp, %code, "fetch refused");
            self.poll_error.get_or_insert(Error::Partition {
                api: ApiKey::Fetch,
                partition: tp.clone(),
                code,
            });
        }
    }

    /// Fills `out` with up to `max` records. Partitions take turns: each
    /// delivers as much as the poll still takes, then goes to the back of
    /// the line if it has more, so a poll touches few partitions however
    /// many are assigned.
    pub(super) fn take_turns(&mut self, max: usize, out: &mut Vec<ConsumerRecord>) {
        let mut turns = self.ready.len();
        while out.len() < max && turns > 0 {
            turns -= 1;
            let Some(tp) = self.ready.pop_front() else {
                break;
            };
            if !self
                .partitions
                .get(&tp)
                .is_some_and(PartitionState::can_deliver)
            {
                if let Some(state) = self.partitions.get_mut(&tp) {
                    state.queued = false;
                }
                continue;
            }
            // A partition back for the rest of a batch delivers only that.
            let quota = match self.partitions.get(&tp).and_then(|s| s.buffer.open_left()) {
                Some(left) => left.clamp(1, max - out.len()),
                None => max - out.len(),
            };
            self.deliver(&tp, quota, out);
            if let Some(state) = self.partitions.get_mut(&tp) {
                if !state.can_deliver() {
                    state.queued = false;
                } else if state.buffer.in_batch() {
                    // A partition keeps its turn until its batch is done:
                    // one batch open (decompressed) at a time.
                    self.ready.push_front(tp);
                } else {
                    self.ready.push_back(tp);
                }
            }
        }
    }

    pub(super) fn deliver(
        &mut self,
        tp: &TopicPartition,
        quota: usize,
        out: &mut Vec<ConsumerRecord>,
    ) {
        let Some(state) = self.partitions.get_mut(tp) else {
            return;
        };
        match state.buffer.take(
            tp,
            &mut state.position,
            &mut state.position_epoch,
            quota,
            &self.memory,
            out,
        ) {
            Ok(()) => {}
            Err(failure) => {
                self.summary.stopped = true;
                state.buffer.clear();
                state.fence += 1;
                state.retry.settled();
                state.phase = Phase::Corrupt {
                    offset: failure.offset,
                    error: failure.error.clone(),
                };
                self.poll_error = Some(Error::CorruptRecord {
                    partition: tp.clone(),
                    offset: failure.offset,
                    source: failure.error,
                });
                return;
            }
        }
        if state.buffer.is_empty() {
            if let Some((offset, error)) = state.pending_corruption.take() {
                self.summary.stopped = true;
                state.fence += 1;
                state.retry.settled();
                state.phase = Phase::Corrupt {
                    offset,
                    error: error.clone(),
                };
                self.poll_error.get_or_insert(Error::CorruptRecord {
                    partition: tp.clone(),
                    offset,
                    source: error,
                });
            }
        }
    }
}
