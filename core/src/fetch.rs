//! Fetched data: turning a partition's `records` into buffered batches
//! (read_committed filtering, control batches, compaction gaps), counting
//! the buffer in decompressed bytes, and handing records out.

use std::collections::{BTreeMap, HashSet, VecDeque};

use bytes::Bytes;

use crate::config::IsolationLevel;
use crate::protocol::messages::fetch::FetchAbortedTransaction;
use crate::records::{
    ControlRecordType, DecodeLimits, RecordBatchReader, RecordsError, RecordsIntoIter,
    TimestampType,
};
use crate::types::{ConsumerRecord, TopicPartition};

/// One decoded batch waiting to be delivered. Batches that must not reach
/// the application (control batches, aborted transactions) are kept as
/// empty entries so the position still moves past them.
pub(crate) struct BufferedBatch {
    /// The first offset after this batch (exact across compaction gaps).
    next_offset: i64,
    leader_epoch: Option<i32>,
    timestamp_type: TimestampType,
    /// `None` for a skipped batch.
    records: Option<RecordsIntoIter>,
    /// Decompressed size, counted against the buffer bound.
    bytes: usize,
}

impl BufferedBatch {
    /// Decompressed bytes this batch holds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl std::fmt::Debug for BufferedBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferedBatch")
            .field("next_offset", &self.next_offset)
            .field("skipped", &self.records.is_none())
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
        let records = if skip {
            None
        } else {
            match batch.records() {
                Ok(records) => Some(records),
                Err(e) => {
                    out.error = Some((out.next_fetch_offset.max(batch.base_offset()), e));
                    break;
                }
            }
        };
        out.batches.push(BufferedBatch {
            next_offset: batch.next_offset(),
            leader_epoch: epoch,
            timestamp_type: batch.timestamp_type(),
            bytes: records.as_ref().map_or(0, |r| r.buffer().len()),
            records: records.map(IntoIterator::into_iter),
        });
        out.next_fetch_offset = batch.next_offset();
        out.last_epoch = epoch.or(out.last_epoch);
    }
    out
}

/// A partition's buffered batches, delivered in order.
#[derive(Debug, Default)]
pub(crate) struct PartitionBuffer {
    batches: VecDeque<BufferedBatch>,
    bytes: usize,
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
        self.batches.push_back(batch);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Drops everything (seek, pause, unassign).
    pub(crate) fn clear(&mut self) -> usize {
        let freed = self.bytes;
        self.batches.clear();
        self.bytes = 0;
        freed
    }

    /// Moves `position` past skipped or exhausted batches at the front
    /// without delivering anything. Returns the bytes freed.
    pub(crate) fn skip_empty(&mut self, position: &mut i64, epoch: &mut Option<i32>) -> usize {
        let mut freed = 0;
        while let Some(front) = self.batches.front() {
            if front.records.is_some() {
                break;
            }
            *position = (*position).max(front.next_offset);
            *epoch = front.leader_epoch.or(*epoch);
            freed += front.bytes;
            self.batches.pop_front();
        }
        self.bytes -= freed;
        freed
    }

    /// True if a record can be delivered now (not only skipped batches).
    pub(crate) fn has_records(&self) -> bool {
        self.batches.iter().any(|b| b.records.is_some())
    }

    /// Delivers up to `max` records at or after `position`, advancing it
    /// (and the epoch) past what was delivered and past skipped batches.
    /// Returns the bytes freed.
    pub(crate) fn take(
        &mut self,
        tp: &TopicPartition,
        position: &mut i64,
        epoch: &mut Option<i32>,
        max: usize,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<usize, DeliveryError> {
        let mut taken = 0;
        let mut freed = 0;
        while let Some(front) = self.batches.front_mut() {
            if let Some(records) = front.records.as_mut() {
                while taken < max {
                    match records.next() {
                        Some(Ok(record)) => {
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
                            self.bytes -= freed;
                            return Err(DeliveryError {
                                offset: *position,
                                error,
                            });
                        }
                        None => break,
                    }
                }
                if taken >= max {
                    // The batch may hold more records: it stays at the front.
                    break;
                }
            }
            // Exhausted or skipped: the position moves past any gap at its end.
            *position = (*position).max(front.next_offset);
            *epoch = front.leader_epoch.or(*epoch);
            freed += front.bytes;
            self.batches.pop_front();
        }
        self.bytes -= freed;
        Ok(freed)
    }
}
