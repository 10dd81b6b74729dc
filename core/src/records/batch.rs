//! One record batch: its header, checked, and access to its records.

use bytes::Bytes;

use super::compression::decompress;
use super::control::ControlRecord;
use super::record::{Context, Layout, Records};
use super::{Compression, DecodeLimits, RecordsError};

/// Offset of the magic byte, the same in every format version.
pub(crate) const MAGIC_OFFSET: usize = 16;
/// baseOffset + batchLength (legacy: offset + message size).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header, up to and including the record count.
pub(crate) const V2_HEADER_LEN: usize = 61;
/// Where the CRC-32C of a v2 batch starts covering bytes (the attributes).
pub(crate) const V2_CRC_START: usize = 21;

pub(crate) const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub(crate) const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
pub(crate) const ATTR_TRANSACTIONAL: i16 = 1 << 4;
pub(crate) const ATTR_CONTROL: i16 = 1 << 5;
pub(crate) const ATTR_DELETE_HORIZON: i16 = 1 << 6;

/// What the timestamps of a batch mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Magic-0 messages carry no timestamp.
    NoTimestamp,
    /// Set by the producer when it created the record.
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch (topic config
    /// `message.timestamp.type=LogAppendTime`); every record of the batch
    /// takes the batch's max timestamp.
    LogAppendTime,
}

/// One record batch: a v2 batch, or a legacy (magic 0/1) message presented
/// as a batch.
///
/// The header is decoded and its checksum verified by
/// [`RecordBatchReader`](super::RecordBatchReader); the records are decoded
/// (and decompressed) only when [`RecordBatch::records`] is called, so a
/// consumer can skip batches it does not need, such as aborted transactions
/// or batches before its fetch position, without paying for them.
///
/// A legacy uncompressed message becomes a batch of one record. A legacy
/// compressed wrapper message becomes a batch of its inner messages; it is
/// decompressed (and every inner CRC checked) by the reader already, because
/// its first offset is only known after decompression. Legacy batches have no
/// producer id, leader epoch or headers.
#[derive(Clone)]
pub struct RecordBatch {
    pub(crate) base_offset: i64,
    pub(crate) last_offset_delta: i32,
    pub(crate) partition_leader_epoch: i32,
    pub(crate) magic: i8,
    pub(crate) attributes: i16,
    pub(crate) crc: u32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
    pub(crate) base_sequence: i32,
    pub(crate) record_count: u32,
    pub(crate) compression: Compression,
    pub(crate) size_in_bytes: usize,
    pub(crate) body: Body,
    pub(crate) limits: DecodeLimits,
}

#[derive(Clone)]
pub(crate) enum Body {
    /// The records section of a v2 batch, still compressed if the batch is.
    V2(Bytes),
    /// A legacy message set, already decompressed.
    Legacy {
        data: Bytes,
        offset_adjust: i64,
        timestamp_override: Option<i64>,
    },
}

impl RecordBatch {
    /// The offset of the first record (for compacted batches, of the first
    /// record originally written).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// `last_offset() - base_offset()`.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta
    }

    /// The offset of the last record the batch was written with. Compaction
    /// keeps it even when that record is gone, so it can exceed the offset of
    /// the last record present.
    pub fn last_offset(&self) -> i64 {
        // Checked non-negative and non-overflowing when the batch was decoded.
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset to fetch after this batch: `last_offset() + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The leader epoch stamped by the broker, or
    /// [`NO_PARTITION_LEADER_EPOCH`](super::NO_PARTITION_LEADER_EPOCH).
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch
    }

    /// The format version: 2 for record batches, 0 or 1 for legacy messages.
    pub fn magic(&self) -> i8 {
        self.magic
    }

    /// The raw attributes (legacy: the wrapper message's attribute byte).
    pub fn attributes(&self) -> i16 {
        self.attributes
    }

    /// The stored checksum (CRC-32C for v2, CRC-32 for legacy), already verified.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The codec the records are compressed with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// What the timestamps mean.
    pub fn timestamp_type(&self) -> TimestampType {
        match self.magic {
            0 => TimestampType::NoTimestamp,
            _ if self.attributes & ATTR_LOG_APPEND_TIME != 0 => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.magic >= 2 && self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch holds a control record (a transaction marker)
    /// rather than data; consumers hide these from applications.
    pub fn is_control(&self) -> bool {
        self.magic >= 2 && self.attributes & ATTR_CONTROL != 0
    }

    /// Whether the log cleaner has stamped a delete horizon (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.magic >= 2 && self.attributes & ATTR_DELETE_HORIZON != 0
    }

    /// The delete horizon (ms since the epoch), stored in the base timestamp
    /// when [`has_delete_horizon`](Self::has_delete_horizon) is set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        self.has_delete_horizon().then_some(self.base_timestamp)
    }

    /// The timestamp record deltas are relative to.
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// The largest record timestamp, or the append time for LogAppendTime.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// The idempotent/transactional producer id, or
    /// [`NO_PRODUCER_ID`](super::NO_PRODUCER_ID).
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    /// The producer epoch, or [`NO_PRODUCER_EPOCH`](super::NO_PRODUCER_EPOCH).
    pub fn producer_epoch(&self) -> i16 {
        self.producer_epoch
    }

    /// The sequence number of the first record, or [`NO_SEQUENCE`](super::NO_SEQUENCE).
    pub fn base_sequence(&self) -> i32 {
        self.base_sequence
    }

    /// The number of records the header declares.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// The batch's size on the wire, including the 12-byte offset and length prefix.
    pub fn size_in_bytes(&self) -> usize {
        self.size_in_bytes
    }

    /// Decompresses (if needed) and returns the batch's records.
    ///
    /// Uncompressed records are views into the fetched buffer; compressed
    /// ones share one freshly decompressed buffer, whose size is bounded by
    /// [`DecodeLimits::max_decompressed_bytes`]. Each call decompresses anew.
    ///
    /// # Errors
    /// [`RecordsError::Decompression`] or
    /// [`RecordsError::DecompressionLimitExceeded`]; malformed records are
    /// reported by the iterator.
    pub fn records(&self) -> Result<Records, RecordsError> {
        match &self.body {
            Body::V2(raw) => {
                let data = match self.compression {
                    Compression::None => raw.clone(),
                    // The log cleaner keeps empty batches, with their codec bits.
                    _ if raw.is_empty() && self.record_count == 0 => Bytes::new(),
                    codec => decompress(codec, raw, &self.limits, false, self.base_offset)?,
                };
                let timestamp_override = (self.timestamp_type() == TimestampType::LogAppendTime)
                    .then_some(self.max_timestamp);
                Ok(Records::new(
                    data,
                    Context {
                        layout: Layout::V2,
                        base_offset: self.base_offset,
                        base_timestamp: self.base_timestamp,
                        timestamp_override,
                        count: self.record_count,
                    },
                ))
            }
            Body::Legacy {
                data,
                offset_adjust,
                timestamp_override,
            } => Ok(Records::new(
                data.clone(),
                Context {
                    layout: Layout::Legacy {
                        offset_adjust: *offset_adjust,
                    },
                    base_offset: self.base_offset,
                    base_timestamp: self.base_timestamp,
                    timestamp_override: *timestamp_override,
                    count: self.record_count,
                },
            )),
        }
    }

    /// For a control batch, its control record (transaction marker).
    ///
    /// Returns `Ok(None)` for data batches and for control batches the log
    /// cleaner has emptied.
    ///
    /// # Errors
    /// Decoding errors of [`RecordBatch::records`] and its iterator, or
    /// [`RecordsError::InvalidControlRecord`].
    pub fn control_record(&self) -> Result<Option<ControlRecord>, RecordsError> {
        if !self.is_control() {
            return Ok(None);
        }
        let records = self.records()?;
        let Some(first) = records.iter().next() else {
            return Ok(None);
        };
        ControlRecord::parse(first?.key()).map(Some)
    }
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset)
            .field("last_offset_delta", &self.last_offset_delta)
            .field("magic", &self.magic)
            .field("record_count", &self.record_count)
            .field("compression", &self.compression)
            .field("timestamp_type", &self.timestamp_type())
            .field("base_timestamp", &self.base_timestamp)
            .field("max_timestamp", &self.max_timestamp)
            .field("partition_leader_epoch", &self.partition_leader_epoch)
            .field("producer_id", &self.producer_id)
            .field("producer_epoch", &self.producer_epoch)
            .field("base_sequence", &self.base_sequence)
            .field("transactional", &self.is_transactional())
            .field("control", &self.is_control())
            .field("size_in_bytes", &self.size_in_bytes)
            .finish()
    }
}

#[inline(always)]
fn be<const N: usize>(header: &[u8; V2_HEADER_LEN], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = header.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Decodes a complete v2 batch (`batch` is exactly its bytes, prefix included).
pub(crate) fn decode_v2(batch: Bytes, limits: DecodeLimits) -> Result<RecordBatch, RecordsError> {
    let Some(header) = batch.first_chunk::<V2_HEADER_LEN>() else {
        let base_offset = batch
            .first_chunk::<8>()
            .map(|b| i64::from_be_bytes(*b))
            .unwrap_or(-1);
        return Err(RecordsError::MalformedBatch {
            base_offset,
            reason: "batch shorter than the v2 batch header",
        });
    };
    let base_offset = i64::from_be_bytes(be(header, 0));
    let expected = u32::from_be_bytes(be(header, 17));
    let actual = if limits.verify_crcs {
        crc32c::crc32c(batch.get(V2_CRC_START..).unwrap_or_default())
    } else {
        expected
    };
    if expected != actual {
        return Err(RecordsError::CrcMismatch {
            base_offset,
            expected,
            actual,
        });
    }
    let malformed = |reason| RecordsError::MalformedBatch {
        base_offset,
        reason,
    };

    let attributes = i16::from_be_bytes(be(header, 21));
    let codec_id = (attributes & ATTR_COMPRESSION_MASK) as u8;
    let compression = Compression::from_id(codec_id).ok_or(RecordsError::UnknownCompression {
        base_offset,
        codec: codec_id,
    })?;
    let last_offset_delta = i32::from_be_bytes(be(header, 23));
    if last_offset_delta < 0 {
        return Err(malformed("negative last offset delta"));
    }
    if base_offset
        .checked_add(i64::from(last_offset_delta))
        .is_none()
    {
        return Err(malformed("last offset overflows"));
    }
    let record_count = i32::from_be_bytes(be(header, 57));
    let record_count =
        u32::try_from(record_count).map_err(|_| malformed("negative record count"))?;

    Ok(RecordBatch {
        base_offset,
        last_offset_delta,
        partition_leader_epoch: i32::from_be_bytes(be(header, 12)),
        magic: 2,
        attributes,
        crc: expected,
        base_timestamp: i64::from_be_bytes(be(header, 27)),
        max_timestamp: i64::from_be_bytes(be(header, 35)),
        producer_id: i64::from_be_bytes(be(header, 43)),
        producer_epoch: i16::from_be_bytes(be(header, 51)),
        base_sequence: i32::from_be_bytes(be(header, 53)),
        record_count,
        compression,
        size_in_bytes: batch.len(),
        body: Body::V2(batch.slice(V2_HEADER_LEN..)),
        limits,
    })
}
