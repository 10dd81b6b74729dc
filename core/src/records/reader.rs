//! Splitting a fetched partition's `records` bytes into batches.

use std::iter::FusedIterator;

use bytes::Bytes;

use super::batch::{LOG_OVERHEAD, MAGIC_OFFSET, RecordBatch, decode_v2};
use super::legacy::{MIN_MESSAGE_SIZE, decode_legacy};
use super::{DecodeLimits, RecordsError};

/// Yields the record batches of one partition's `records` field of a fetch
/// response, in order, whatever their format version.
///
/// Brokers cut the response at the size limit, so the last batch is often
/// incomplete. The reader stops there cleanly: every complete batch before it
/// is returned, iteration ends, and [`is_truncated`](Self::is_truncated)
/// reports it. That is not an error; the consumer fetches again from the
/// next offset. A malformed batch is an error, and iteration ends after it.
///
/// ```
/// use bytes::Bytes;
/// use odradek_core::records::{NewRecord, RecordBatchBuilder, RecordBatchReader};
///
/// let batch = RecordBatchBuilder::new(42)
///     .record(NewRecord::new().with_key("k").with_value("v").with_timestamp(1_700_000_000_000))
///     .encode()?;
///
/// let mut reader = RecordBatchReader::new(Some(batch));
/// let mut next_offset = 0;
/// for batch in &mut reader {
///     let batch = batch?;
///     for record in &batch.records()? {
///         let record = record?;
///         assert_eq!((record.offset(), record.value()), (42, Some(&b"v"[..])));
///     }
///     next_offset = batch.next_offset();
/// }
/// assert!(!reader.is_truncated());
/// assert_eq!(next_offset, 43);
/// # Ok::<(), odradek_core::records::RecordsError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchReader {
    buf: Bytes,
    limits: DecodeLimits,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Finished,
    Truncated,
    Failed,
}

impl RecordBatchReader {
    /// A reader over a partition's `records` bytes (`None`, a null field, is empty),
    /// with default [`DecodeLimits`].
    pub fn new(records: Option<Bytes>) -> Self {
        Self::with_limits(records, DecodeLimits::default())
    }

    /// A reader applying `limits` to every batch it yields.
    pub fn with_limits(records: Option<Bytes>, limits: DecodeLimits) -> Self {
        RecordBatchReader {
            buf: records.unwrap_or_default(),
            limits,
            state: State::Reading,
        }
    }

    /// Whether the reader stopped at an incomplete batch at the end of the data.
    pub fn is_truncated(&self) -> bool {
        self.state == State::Truncated
    }

    /// Bytes not yet consumed: after a truncation, the partial batch.
    pub fn remaining_bytes(&self) -> usize {
        self.buf.len()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>, RecordsError> {
        let buf = &self.buf;
        let Some(prefix) = buf.first_chunk::<LOG_OVERHEAD>() else {
            if !buf.is_empty() {
                self.state = State::Truncated;
            }
            return Ok(None);
        };
        let mut offset = [0u8; 8];
        let mut length = [0u8; 4];
        offset.copy_from_slice(prefix.get(..8).unwrap_or_default());
        length.copy_from_slice(prefix.get(8..).unwrap_or_default());
        let base_offset = i64::from_be_bytes(offset);
        let length = i32::from_be_bytes(length);
        // The same checks, in the same order, as the Java client: a size no
        // format allows is corruption, not truncation.
        if length < MIN_MESSAGE_SIZE {
            return Err(RecordsError::MalformedBatch {
                base_offset,
                reason: "batch length below the smallest possible message",
            });
        }
        let Some(&magic) = buf.get(MAGIC_OFFSET) else {
            self.state = State::Truncated;
            return Ok(None);
        };
        let magic = magic as i8;
        if !(0..=2).contains(&magic) {
            return Err(RecordsError::UnsupportedMagic { base_offset, magic });
        }
        let total = LOG_OVERHEAD + length as usize;
        if buf.len() < total {
            self.state = State::Truncated;
            return Ok(None);
        }
        let batch = self.buf.split_to(total);
        let decoded = if magic == 2 {
            decode_v2(batch, self.limits)?
        } else {
            decode_legacy(batch, self.limits)?
        };
        Ok(Some(decoded))
    }
}

impl Iterator for RecordBatchReader {
    type Item = Result<RecordBatch, RecordsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state != State::Reading {
            return None;
        }
        match self.next_batch() {
            Ok(Some(batch)) => Some(Ok(batch)),
            Ok(None) => {
                if self.state == State::Reading {
                    self.state = State::Finished;
                }
                None
            }
            Err(e) => {
                self.state = State::Failed;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for RecordBatchReader {}
