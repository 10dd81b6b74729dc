//! Record batches: decoding what brokers send, encoding what tests produce.
//!
//! Kafka stores records in batches. Since Kafka 0.11 these are "magic 2"
//! record batches (a header with offsets, timestamps, producer and
//! transaction information and a CRC-32C, then varint-framed records, the
//! whole records section optionally compressed). Older data may still be in
//! "magic 0/1" message sets; those are decoded here too and presented through
//! the same [`RecordBatch`] and record types.
//!
//! # Reading a fetched partition
//!
//! [`RecordBatchReader`] splits a partition's `records` bytes into batches,
//! checking each batch's CRC and stopping quietly at a batch the broker cut
//! off. [`RecordBatch::records`] decompresses (bounded by [`DecodeLimits`])
//! and returns [`Records`], which iterates lazily: `&Records` yields borrowed
//! [`RecordRef`]s and costs no allocation or reference count per record;
//! `Records` by value yields owned [`Record`]s, each holding one
//! [`bytes::Bytes`] view of its bytes in the fetched or decompressed buffer
//! (never a copy), with [`Record::key_bytes`] and [`Record::value_bytes`]
//! handing out parts as `Bytes` of their own.
//!
//! ```
//! use odradek_core::records::{RecordBatchReader, NewRecord, RecordBatchBuilder, Compression};
//!
//! # let fetched = Some(RecordBatchBuilder::new(0).compression(Compression::Lz4)
//! #     .record(NewRecord::new().with_value("hello")).encode()?);
//! // `fetched`: the partition's `records` field of a FetchResponse.
//! let mut position = 0;
//! let mut reader = RecordBatchReader::new(fetched);
//! for batch in &mut reader {
//!     let batch = batch?;
//!     if batch.is_control() || batch.next_offset() <= position {
//!         position = position.max(batch.next_offset());
//!         continue;
//!     }
//!     for record in batch.records()? {
//!         let record = record?;
//!         if record.offset() >= position {
//!             // hand `record` to the application
//!         }
//!     }
//!     position = batch.next_offset();
//! }
//! // Fetch again from `position`; `reader.is_truncated()` tells whether the
//! // response ended inside a batch.
//! # Ok::<(), odradek_core::records::RecordsError>(())
//! ```
//!
//! Nothing in this module panics on any input, and no allocation is sized by
//! a length read from the input beyond what the input could really hold.

mod batch;
mod builder;
mod compression;
mod control;
mod error;
mod legacy;
mod reader;
mod record;
mod varint;

#[cfg(test)]
mod tests;

pub use batch::{RecordBatch, TimestampType};
pub use builder::{NewRecord, RecordBatchBuilder};
pub use compression::{Compression, DecodeLimits};
pub use control::{ControlRecord, ControlRecordType};
pub use error::RecordsError;
pub use reader::RecordBatchReader;
pub use record::{
    Header, HeaderIter, Headers, Record, RecordRef, Records, RecordsIntoIter, RecordsIter,
};

/// Producer id of batches from non-idempotent producers.
pub const NO_PRODUCER_ID: i64 = -1;
/// Producer epoch of batches from non-idempotent producers.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// Base sequence of batches from non-idempotent producers.
pub const NO_SEQUENCE: i32 = -1;
/// Leader epoch of batches written before leader epochs were stamped.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Timestamp of magic-0 messages and of empty batches.
pub const NO_TIMESTAMP: i64 = -1;
