//! Encoding v2 record batches.

use bytes::Bytes;

use super::batch::{
    ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, LOG_OVERHEAD,
    V2_CRC_START, V2_HEADER_LEN,
};
use super::compression::compress;
use super::control::{ControlRecord, ControlRecordType};
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    NO_TIMESTAMP, RecordsError, TimestampType,
};

/// A record to encode with [`RecordBatchBuilder`].
///
/// ```
/// use odradek_core::records::NewRecord;
///
/// let record = NewRecord::new()
///     .with_key("user-42")
///     .with_value(&b"{\"clicks\":3}"[..])
///     .with_timestamp(1_700_000_000_000)
///     .with_header("trace-id", "abc");
/// assert_eq!(record.headers.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRecord {
    /// Offset relative to the batch's base offset; `None` means one more than
    /// the previous record's (0 for the first). Set it to leave gaps, as
    /// compaction does.
    pub offset_delta: Option<i32>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The key, `None` for null.
    pub key: Option<Bytes>,
    /// The value, `None` for null.
    pub value: Option<Bytes>,
    /// Headers in order; keys may repeat.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
}

impl NewRecord {
    /// A record with null key and value, timestamp 0 and no headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn with_value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Appends a header with a value.
    pub fn with_header(mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// Appends a header with a null value.
    pub fn with_null_header(mut self, key: impl Into<Bytes>) -> Self {
        self.headers.push((key.into(), None));
        self
    }

    /// Sets the offset delta explicitly.
    pub fn with_offset_delta(mut self, offset_delta: i32) -> Self {
        self.offset_delta = Some(offset_delta);
        self
    }
}

/// Builds and encodes one v2 record batch, computing its length and CRC-32C.
///
/// Compression follows the Java producer's settings (see [`Compression`]).
///
/// ```
/// use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder, RecordBatchReader};
///
/// let bytes = RecordBatchBuilder::new(100)
///     .compression(Compression::Zstd)
///     .producer(7, 0, 0)
///     .record(NewRecord::new().with_value("a"))
///     .record(NewRecord::new().with_value("b").with_offset_delta(5))
///     .encode()?;
/// let batch = RecordBatchReader::new(Some(bytes)).next().unwrap()?;
/// let offsets: Vec<i64> = batch.records()?.iter().map(|r| r.map(|r| r.offset())).collect::<Result<_, _>>()?;
/// assert_eq!(offsets, [100, 105]);
/// # Ok::<(), odradek_core::records::RecordsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    delete_horizon: bool,
    timestamp_type: TimestampType,
    compression: Compression,
    base_timestamp: Option<i64>,
    max_timestamp: Option<i64>,
    last_offset_delta: Option<i32>,
    records: Vec<NewRecord>,
}

impl RecordBatchBuilder {
    /// An empty, uncompressed, non-transactional batch starting at `base_offset`.
    pub fn new(base_offset: i64) -> Self {
        RecordBatchBuilder {
            base_offset,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            delete_horizon: false,
            timestamp_type: TimestampType::CreateTime,
            compression: Compression::None,
            base_timestamp: None,
            max_timestamp: None,
            last_offset_delta: None,
            records: Vec::new(),
        }
    }

    /// A transaction marker batch, as a transaction coordinator writes: one
    /// control record whose value carries the coordinator epoch.
    pub fn end_transaction_marker(
        base_offset: i64,
        producer_id: i64,
        producer_epoch: i16,
        kind: ControlRecordType,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Self {
        let mut value = Vec::with_capacity(6);
        value.extend_from_slice(&0i16.to_be_bytes());
        value.extend_from_slice(&coordinator_epoch.to_be_bytes());
        Self::new(base_offset)
            .producer(producer_id, producer_epoch, NO_SEQUENCE)
            .transactional(true)
            .control(true)
            .record(
                NewRecord::new()
                    .with_key(Bytes::copy_from_slice(&ControlRecord::key(kind)))
                    .with_value(value)
                    .with_timestamp(timestamp),
            )
    }

    /// Sets the compression codec.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the partition leader epoch (brokers overwrite it on append).
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent producer's id, epoch and first sequence number.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as holding control records.
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Sets the timestamp type; [`TimestampType::NoTimestamp`] encodes as CreateTime.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Stamps a delete horizon (KIP-534): sets the flag and stores the horizon
    /// as the base timestamp.
    pub fn delete_horizon(mut self, horizon_ms: i64) -> Self {
        self.delete_horizon = true;
        self.base_timestamp = Some(horizon_ms);
        self
    }

    /// Overrides the base timestamp (default: the smallest record timestamp).
    pub fn base_timestamp(mut self, timestamp: i64) -> Self {
        self.base_timestamp = Some(timestamp);
        self
    }

    /// Overrides the max timestamp (default: the largest record timestamp);
    /// for LogAppendTime batches this is the append time.
    pub fn max_timestamp(mut self, timestamp: i64) -> Self {
        self.max_timestamp = Some(timestamp);
        self
    }

    /// Overrides the last offset delta (default: the largest record offset
    /// delta), as compaction leaves it when it removes the last records.
    pub fn last_offset_delta(mut self, delta: i32) -> Self {
        self.last_offset_delta = Some(delta);
        self
    }

    /// Appends a record.
    pub fn record(mut self, record: NewRecord) -> Self {
        self.records.push(record);
        self
    }

    /// Appends a record in place.
    pub fn push(&mut self, record: NewRecord) {
        self.records.push(record);
    }

    /// Appends several records.
    pub fn records(mut self, records: impl IntoIterator<Item = NewRecord>) -> Self {
        self.records.extend(records);
        self
    }

    /// Encodes the batch into a new buffer.
    ///
    /// # Errors
    /// [`RecordsError::Encode`] when a length does not fit the format, or
    /// [`RecordsError::Compression`] when the codec fails.
    pub fn encode(&self) -> Result<Bytes, RecordsError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(Bytes::from(out))
    }

    /// Appends the encoded batch to `out`.
    ///
    /// # Errors
    /// As [`RecordBatchBuilder::encode`]; `out` is left as it was on error.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), RecordsError> {
        let start = out.len();
        let result = self.encode_at(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_at(&self, out: &mut Vec<u8>, start: usize) -> Result<(), RecordsError> {
        let too_big = |reason| RecordsError::Encode { reason };
        let count =
            i32::try_from(self.records.len()).map_err(|_| too_big("more than i32::MAX records"))?;
        let base_timestamp = self
            .base_timestamp
            .or_else(|| self.records.iter().map(|r| r.timestamp).min())
            .unwrap_or(NO_TIMESTAMP);
        let max_timestamp = self
            .max_timestamp
            .or_else(|| self.records.iter().map(|r| r.timestamp).max())
            .unwrap_or(NO_TIMESTAMP);

        out.resize(start + V2_HEADER_LEN, 0);
        let mut scratch = Vec::new();
        let body = if self.compression == Compression::None {
            &mut *out
        } else {
            &mut scratch
        };
        let mut delta: i32 = -1;
        let mut max_delta: Option<i32> = None;
        for record in &self.records {
            delta = match record.offset_delta {
                Some(d) => d,
                None => delta
                    .checked_add(1)
                    .ok_or(too_big("offset delta overflows i32"))?,
            };
            max_delta = Some(max_delta.map_or(delta, |m| m.max(delta)));
            encode_record(
                body,
                record,
                delta,
                record.timestamp.wrapping_sub(base_timestamp),
            )?;
        }
        if self.compression != Compression::None {
            compress(self.compression, &scratch, out)?;
        }

        let batch_length = i32::try_from(out.len() - start - LOG_OVERHEAD)
            .map_err(|_| too_big("batch larger than i32::MAX bytes"))?;
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= ATTR_LOG_APPEND_TIME;
        }
        if self.transactional {
            attributes |= ATTR_TRANSACTIONAL;
        }
        if self.control {
            attributes |= ATTR_CONTROL;
        }
        if self.delete_horizon {
            attributes |= ATTR_DELETE_HORIZON;
        }
        let last_offset_delta = self.last_offset_delta.or(max_delta).unwrap_or(0);

        let mut header = Vec::with_capacity(V2_HEADER_LEN);
        header.extend_from_slice(&self.base_offset.to_be_bytes());
        header.extend_from_slice(&batch_length.to_be_bytes());
        header.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        header.push(2);
        header.extend_from_slice(&[0; 4]);
        header.extend_from_slice(&attributes.to_be_bytes());
        header.extend_from_slice(&last_offset_delta.to_be_bytes());
        header.extend_from_slice(&base_timestamp.to_be_bytes());
        header.extend_from_slice(&max_timestamp.to_be_bytes());
        header.extend_from_slice(&self.producer_id.to_be_bytes());
        header.extend_from_slice(&self.producer_epoch.to_be_bytes());
        header.extend_from_slice(&self.base_sequence.to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        let batch = out.get_mut(start..).unwrap_or_default();
        if let Some(slot) = batch.get_mut(..V2_HEADER_LEN) {
            slot.copy_from_slice(&header);
        }
        let crc = crc32c::crc32c(batch.get(V2_CRC_START..).unwrap_or_default());
        if let Some(slot) = batch.get_mut(17..V2_CRC_START) {
            slot.copy_from_slice(&crc.to_be_bytes());
        }
        Ok(())
    }
}

fn len_i32(len: usize) -> Result<i32, RecordsError> {
    i32::try_from(len).map_err(|_| RecordsError::Encode {
        reason: "field longer than i32::MAX bytes",
    })
}

fn nullable_len(field: Option<&Bytes>) -> Result<usize, RecordsError> {
    Ok(match field {
        None => varint_len(-1),
        Some(b) => varint_len(len_i32(b.len())?) + b.len(),
    })
}

fn put_nullable(out: &mut Vec<u8>, field: Option<&Bytes>) {
    match field {
        None => put_varint(out, -1),
        Some(b) => {
            // Lengths were checked by `nullable_len`.
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

fn encode_record(
    out: &mut Vec<u8>,
    record: &NewRecord,
    offset_delta: i32,
    timestamp_delta: i64,
) -> Result<(), RecordsError> {
    let header_count = len_i32(record.headers.len())?;
    let mut size = 1
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + nullable_len(record.key.as_ref())?
        + nullable_len(record.value.as_ref())?
        + varint_len(header_count);
    for (key, value) in &record.headers {
        size += varint_len(len_i32(key.len())?) + key.len() + nullable_len(value.as_ref())?;
    }
    put_varint(out, len_i32(size)?);
    out.reserve(size);
    out.push(0);
    put_varlong(out, timestamp_delta);
    put_varint(out, offset_delta);
    put_nullable(out, record.key.as_ref());
    put_nullable(out, record.value.as_ref());
    put_varint(out, header_count);
    for (key, value) in &record.headers {
        put_varint(out, key.len() as i32);
        out.extend_from_slice(key);
        put_nullable(out, value.as_ref());
    }
    Ok(())
}
