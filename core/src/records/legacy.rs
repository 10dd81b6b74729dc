//! Legacy message sets (magic 0 and 1), presented as record batches.
//!
//! A legacy entry is `offset i64, size i32, crc u32, magic i8, attributes i8,
//! [timestamp i64, magic 1 only], key bytes, value bytes`, with i32 lengths
//! (-1 for null). A compressed "wrapper" message holds a whole inner message
//! set, compressed, as its value.

use bytes::Bytes;

use super::batch::{ATTR_COMPRESSION_MASK, ATTR_LOG_APPEND_TIME, Body, RecordBatch};
use super::compression::decompress;
use super::{
    Compression, DecodeLimits, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, NO_TIMESTAMP, RecordsError,
};

/// Smallest magic-0 message after the 12-byte prefix: crc, magic, attributes
/// and two null lengths.
pub(crate) const MIN_MESSAGE_SIZE: i32 = 4 + 1 + 1 + 4 + 4;

/// One parsed legacy entry.
pub(crate) struct Message<'a> {
    pub(crate) offset: i64,
    pub(crate) crc: u32,
    /// The bytes the CRC covers: magic through the end of the value.
    pub(crate) crc_covered: &'a [u8],
    pub(crate) magic: i8,
    pub(crate) attributes: i8,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
}

fn take<const N: usize>(buf: &mut &[u8], what: &'static str) -> Result<[u8; N], &'static str> {
    let (head, rest) = buf.split_first_chunk::<N>().ok_or(what)?;
    *buf = rest;
    Ok(*head)
}

fn take_bytes<'a>(
    buf: &mut &'a [u8],
    what: &'static str,
) -> Result<Option<&'a [u8]>, &'static str> {
    let len = i32::from_be_bytes(take::<4>(buf, what)?);
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| what)?;
    let (bytes, rest) = buf.split_at_checked(len).ok_or(what)?;
    *buf = rest;
    Ok(Some(bytes))
}

/// Parses one entry of a legacy message set, advancing `rest` past it.
/// Checks the framing only; the caller checks the CRC.
pub(crate) fn parse_message<'a>(rest: &mut &'a [u8]) -> Result<Message<'a>, &'static str> {
    let offset = i64::from_be_bytes(take::<8>(rest, "truncated message offset")?);
    let size = i32::from_be_bytes(take::<4>(rest, "truncated message size")?);
    if size < MIN_MESSAGE_SIZE {
        return Err("message size below the minimum");
    }
    let (mut body, after) = rest
        .split_at_checked(size as usize)
        .ok_or("message runs past the end of the message set")?;
    *rest = after;
    let crc = u32::from_be_bytes(take::<4>(&mut body, "truncated message crc")?);
    let crc_covered = body;
    let [magic, attributes] = take::<2>(&mut body, "truncated message header")?;
    let (magic, attributes) = (magic as i8, attributes as i8);
    let timestamp = match magic {
        0 => NO_TIMESTAMP,
        1 => i64::from_be_bytes(take::<8>(&mut body, "truncated message timestamp")?),
        _ => return Err("legacy message with a magic other than 0 or 1"),
    };
    let key = take_bytes(&mut body, "malformed message key")?;
    let value = take_bytes(&mut body, "malformed message value")?;
    if !body.is_empty() {
        return Err("bytes left after the message value");
    }
    Ok(Message {
        offset,
        crc,
        crc_covered,
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

fn check_crc(message: &Message<'_>, limits: DecodeLimits) -> Result<(), RecordsError> {
    if !limits.verify_crcs {
        return Ok(());
    }
    let actual = crc32fast::hash(message.crc_covered);
    if actual == message.crc {
        Ok(())
    } else {
        Err(RecordsError::CrcMismatch {
            base_offset: message.offset,
            expected: message.crc,
            actual,
        })
    }
}

/// Decodes one complete legacy entry (`entry` is exactly its bytes).
pub(crate) fn decode_legacy(
    entry: Bytes,
    limits: DecodeLimits,
) -> Result<RecordBatch, RecordsError> {
    let size_in_bytes = entry.len();
    let mut rest: &[u8] = &entry;
    let offset_hint = entry
        .first_chunk::<8>()
        .map(|b| i64::from_be_bytes(*b))
        .unwrap_or(-1);
    let outer = parse_message(&mut rest).map_err(|reason| RecordsError::MalformedBatch {
        base_offset: offset_hint,
        reason,
    })?;
    check_crc(&outer, limits)?;
    let wrapper_offset = outer.offset;
    let malformed = |reason| RecordsError::MalformedBatch {
        base_offset: wrapper_offset,
        reason,
    };

    let attributes = i16::from(outer.attributes);
    let codec_id = (attributes & ATTR_COMPRESSION_MASK) as u8;
    let compression = match Compression::from_id(codec_id) {
        Some(Compression::Zstd) => return Err(malformed("zstd needs magic 2")),
        Some(codec) => codec,
        None => {
            return Err(RecordsError::UnknownCompression {
                base_offset: wrapper_offset,
                codec: codec_id,
            });
        }
    };
    let log_append_time = outer.magic == 1 && attributes & ATTR_LOG_APPEND_TIME != 0;
    let wrapper_timestamp = outer.timestamp;

    let mut batch = RecordBatch {
        base_offset: wrapper_offset,
        last_offset_delta: 0,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        magic: outer.magic,
        attributes,
        crc: outer.crc,
        base_timestamp: wrapper_timestamp,
        max_timestamp: wrapper_timestamp,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        base_sequence: NO_SEQUENCE,
        record_count: 1,
        compression,
        size_in_bytes,
        body: Body::Legacy {
            data: Bytes::new(),
            offset_adjust: 0,
            timestamp_override: None,
        },
        limits,
    };
    if compression == Compression::None {
        batch.body = Body::Legacy {
            data: entry,
            offset_adjust: 0,
            timestamp_override: None,
        };
        return Ok(batch);
    }

    let compressed = outer
        .value
        .ok_or_else(|| malformed("compressed wrapper message with a null value"))?;
    let inner = decompress(
        compression,
        compressed,
        &limits,
        outer.magic == 0,
        wrapper_offset,
    )?;

    // The first absolute offset is only known once the whole inner set has
    // been read, since magic 1 stores offsets relative to the last one.
    let mut rest: &[u8] = &inner;
    let mut count: u32 = 0;
    let mut first_inner = 0;
    let mut last_inner = 0;
    let mut first_timestamp = NO_TIMESTAMP;
    while !rest.is_empty() {
        let message = parse_message(&mut rest).map_err(malformed)?;
        check_crc(&message, limits)?;
        if message.magic != outer.magic {
            return Err(malformed("inner message magic differs from its wrapper's"));
        }
        if message.attributes as i16 & ATTR_COMPRESSION_MASK != 0 {
            return Err(malformed(
                "compressed message nested in a compressed message",
            ));
        }
        if count == 0 {
            first_inner = message.offset;
            first_timestamp = message.timestamp;
        }
        last_inner = message.offset;
        count = count
            .checked_add(1)
            .ok_or_else(|| malformed("too many inner messages"))?;
    }
    if count == 0 {
        return Err(malformed(
            "compressed wrapper message with no inner messages",
        ));
    }

    let offset_adjust = if outer.magic == 1 {
        if wrapper_offset < last_inner {
            return Err(malformed("wrapper offset below its last inner offset"));
        }
        wrapper_offset
            .checked_sub(last_inner)
            .ok_or_else(|| malformed("inner offset overflows"))?
    } else {
        0
    };
    let base_offset = first_inner
        .checked_add(offset_adjust)
        .ok_or_else(|| malformed("inner offset overflows"))?;
    // The wrapper's offset is the last offset: where the next fetch starts.
    let last_offset_delta = wrapper_offset
        .checked_sub(base_offset)
        .and_then(|d| i32::try_from(d).ok())
        .filter(|d| *d >= 0)
        .ok_or_else(|| malformed("inner offsets inconsistent with the wrapper offset"))?;

    batch.base_offset = base_offset;
    batch.last_offset_delta = last_offset_delta;
    batch.record_count = count;
    batch.base_timestamp = if log_append_time {
        wrapper_timestamp
    } else {
        first_timestamp
    };
    batch.body = Body::Legacy {
        data: inner,
        offset_adjust,
        timestamp_override: log_append_time.then_some(wrapper_timestamp),
    };
    Ok(batch)
}
