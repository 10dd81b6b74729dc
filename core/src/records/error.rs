//! The one error type of the records module.

use super::Compression;

/// Why a record batch could not be decoded or encoded.
///
/// Decoding never panics: every malformed input ends up as one of these
/// variants. `base_offset` always names the batch (or legacy message) the
/// problem was found in, so a consumer can report the partition position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// The checksum stored in the batch does not match its bytes (CRC-32C for
    /// v2 batches, CRC-32 for legacy messages).
    #[error(
        "CRC mismatch in record batch at offset {base_offset}: stored {expected:#010x}, computed {actual:#010x}"
    )]
    CrcMismatch {
        /// Base offset of the batch (legacy: offset of the message).
        base_offset: i64,
        /// The CRC stored in the batch.
        expected: u32,
        /// The CRC computed over the received bytes.
        actual: u32,
    },

    /// The attributes name a compression codec this client does not know.
    #[error("unknown compression codec id {codec} in record batch at offset {base_offset}")]
    UnknownCompression {
        /// Base offset of the batch.
        base_offset: i64,
        /// The codec id from the attributes (bits 0-2).
        codec: u8,
    },

    /// The batch uses a record format ("magic") other than 0, 1 or 2.
    #[error("unsupported record format (magic {magic}) at offset {base_offset}")]
    UnsupportedMagic {
        /// Base offset of the batch.
        base_offset: i64,
        /// The magic byte found.
        magic: i8,
    },

    /// The batch framing or header is inconsistent.
    #[error("malformed record batch at offset {base_offset}: {reason}")]
    MalformedBatch {
        /// Base offset of the batch.
        base_offset: i64,
        /// What was wrong.
        reason: &'static str,
    },

    /// One record inside a batch could not be parsed.
    #[error(
        "malformed record #{index} at byte {position} of the records of batch at offset {base_offset}: {reason}"
    )]
    MalformedRecord {
        /// Base offset of the batch.
        base_offset: i64,
        /// Zero-based index of the record within the batch.
        index: u32,
        /// Byte position of the record within the (decompressed) records data.
        position: usize,
        /// What was wrong.
        reason: &'static str,
    },

    /// The compressed records could not be decompressed.
    #[error("{codec} decompression of record batch at offset {base_offset} failed: {message}")]
    Decompression {
        /// Base offset of the batch.
        base_offset: i64,
        /// The codec that failed.
        codec: Compression,
        /// The decoder's description of the failure.
        message: String,
    },

    /// The records would decompress to more than
    /// [`DecodeLimits::max_decompressed_bytes`](super::DecodeLimits::max_decompressed_bytes).
    #[error(
        "{codec} records of batch at offset {base_offset} decompress to more than the limit of {limit} bytes"
    )]
    DecompressionLimitExceeded {
        /// Base offset of the batch.
        base_offset: i64,
        /// The codec of the batch.
        codec: Compression,
        /// The limit in force.
        limit: usize,
    },

    /// A control record's key is not a valid control record key.
    #[error("invalid control record: {reason}")]
    InvalidControlRecord {
        /// What was wrong.
        reason: &'static str,
    },

    /// Compressing records while encoding a batch failed.
    #[error("{codec} compression failed: {message}")]
    Compression {
        /// The codec that failed.
        codec: Compression,
        /// The encoder's description of the failure.
        message: String,
    },

    /// The records given to the encoder cannot be represented in a batch.
    #[error("cannot encode record batch: {reason}")]
    Encode {
        /// What was wrong.
        reason: &'static str,
    },
}
