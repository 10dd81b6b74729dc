//! Codecs for compressed record batches, with bounded decompression.

use std::fmt;
use std::io::{self, BufRead, Write};

use bytes::Bytes;

use super::RecordsError;

/// The compression codec of a record batch (attribute bits 0-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Records are stored as is.
    #[default]
    None,
    /// gzip (RFC 1952); several concatenated members are accepted.
    Gzip,
    /// Snappy, in the xerial framing the Java client writes, or raw.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec Kafka defines.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id stored in the batch attributes.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with the given attribute id, if it is one Kafka defines.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Kafka's name for the codec, as in `compression.type`.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Bounds applied while decoding record batches.
///
/// ```
/// use odradek_core::records::DecodeLimits;
///
/// let limits = DecodeLimits::default().with_max_decompressed_bytes(16 << 20);
/// assert_eq!(limits.max_decompressed_bytes, 16 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeLimits {
    /// The most bytes the records of one compressed batch may decompress to.
    ///
    /// Decoding stops with [`RecordsError::DecompressionLimitExceeded`] as
    /// soon as the output would grow past this, so a small "decompression
    /// bomb" costs at most about this much memory and time. Defaults to
    /// [`DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES`] (128 MiB): 128 times
    /// the broker's default `message.max.bytes` of 1 MiB. Raise it for topics
    /// whose batches are larger or extremely compressible; a batch over the
    /// limit cannot be consumed.
    ///
    /// zstd also keeps a window buffer of its own, outside this count; its
    /// size is capped at the larger of 8 MiB and this limit (rounded up to a
    /// power of two), so frames declaring a bigger window are rejected.
    pub max_decompressed_bytes: usize,
    /// Check each batch's CRC (the consumer's `check.crcs`, on by default).
    /// Turning it off saves about a third of the decoding time of
    /// uncompressed batches and lets corrupted bytes through.
    pub verify_crcs: bool,
}

impl DecodeLimits {
    /// The default of [`DecodeLimits::max_decompressed_bytes`]: 128 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 128 << 20;

    /// Returns these limits with `max_decompressed_bytes` replaced.
    pub const fn with_max_decompressed_bytes(mut self, bytes: usize) -> Self {
        self.max_decompressed_bytes = bytes;
        self
    }

    /// Returns these limits with CRC checking turned on or off.
    pub const fn with_crc_check(mut self, verify: bool) -> Self {
        self.verify_crcs = verify;
        self
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_decompressed_bytes: Self::DEFAULT_MAX_DECOMPRESSED_BYTES,
            verify_crcs: true,
        }
    }
}

/// Why decompression stopped, before the batch context is attached.
enum Failure {
    Limit,
    Codec(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Codec(e.to_string())
    }
}

/// Upper bounds on output bytes per input byte, used so that a size claimed
/// by a header can never make us allocate more than the input could really
/// expand to.
const GZIP_MAX_RATIO: usize = 1032;
const LZ4_MAX_RATIO: usize = 255;
const SNAPPY_MAX_RATIO: usize = 22;
const ZSTD_MAX_RATIO: usize = 32 * 1024;

/// Output capacity to start with when no header tells the size.
const UNKNOWN_SIZE_RATIO: usize = 4;
const MIN_GROWTH: usize = 64 * 1024;

/// The xerial snappy-java stream header: magic, version 1, compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
const XERIAL_HEADER_LEN: usize = 16;
/// snappy-java's default block size, used when we write xerial framing.
const XERIAL_BLOCK: usize = 32 * 1024;

/// Decompresses `input` into a fresh buffer of at most `limits.max_decompressed_bytes`.
///
/// `legacy_lz4_header` selects the KAFKA-3160 workaround for magic-0 messages,
/// whose LZ4 frame header checksum was computed over the wrong bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limits: &DecodeLimits,
    legacy_lz4_header: bool,
    base_offset: i64,
) -> Result<Bytes, RecordsError> {
    let limit = limits.max_decompressed_bytes;
    let result = match codec {
        Compression::None => Ok(Bytes::copy_from_slice(input)),
        Compression::Gzip => gunzip(input, limit).map(Bytes::from),
        Compression::Snappy => unsnappy(input, limit).map(Bytes::from),
        Compression::Lz4 => unlz4(input, limit, legacy_lz4_header).map(Bytes::from),
        Compression::Zstd => unzstd(input, limit).map(Bytes::from),
    };
    result.map_err(|failure| match failure {
        Failure::Limit => RecordsError::DecompressionLimitExceeded {
            base_offset,
            codec,
            limit,
        },
        Failure::Codec(message) => RecordsError::Decompression {
            base_offset,
            codec,
            message,
        },
    })
}

/// Capacity to allocate up front: the size a header claims (if any), but never
/// more than the input could expand to, nor more than the limit allows.
fn initial_capacity(claimed: Option<u64>, input_len: usize, max_ratio: usize, cap: usize) -> usize {
    let plausible = input_len.saturating_mul(max_ratio);
    let guess = match claimed {
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => input_len.saturating_mul(UNKNOWN_SIZE_RATIO),
    };
    guess.min(plausible).min(cap)
}

/// An empty buffer with room for `capacity` bytes, or a failure if the
/// allocator refuses.
fn output_buffer(capacity: usize) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    out.try_reserve_exact(capacity)
        .map_err(|_| Failure::Codec("cannot allocate the decompression buffer".into()))?;
    Ok(out)
}

/// Ensures room for `additional` more bytes while keeping capacity within `cap`.
fn reserve_within(out: &mut Vec<u8>, additional: usize, cap: usize) -> Result<(), Failure> {
    let needed = out.len().checked_add(additional).ok_or(Failure::Limit)?;
    if needed > cap {
        return Err(Failure::Limit);
    }
    if needed > out.capacity() {
        // Doubling keeps the copies amortised; the cap keeps a bomb from
        // reserving more than the limit.
        let target = out
            .capacity()
            .saturating_mul(2)
            .max(needed)
            .max(MIN_GROWTH)
            .min(cap);
        // An allocation failure is reported, not turned into an abort.
        out.try_reserve_exact(target - out.len())
            .map_err(|_| Failure::Codec("cannot allocate the decompression buffer".into()))?;
    }
    Ok(())
}

/// Copies everything `reader` yields into `out`, failing once it passes `limit`.
fn drain<R: BufRead>(mut reader: R, out: &mut Vec<u8>, limit: usize) -> Result<(), Failure> {
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if chunk.is_empty() {
            return Ok(());
        }
        let n = chunk.len();
        reserve_within(out, n, limit)?;
        out.extend_from_slice(chunk);
        reader.consume(n);
    }
}

fn gunzip(input: &[u8], limit: usize) -> Result<Vec<u8>, Failure> {
    // The trailer's ISIZE is the size of the last member modulo 2^32: exact
    // for the single-member streams producers write, only a hint otherwise.
    let claimed = input
        .len()
        .checked_sub(4)
        .and_then(|start| input.get(start..))
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map(|tail| u64::from(u32::from_le_bytes(tail)));
    let mut out = output_buffer(initial_capacity(
        claimed,
        input.len(),
        GZIP_MAX_RATIO,
        limit,
    ))?;
    let decoder = flate2::bufread::MultiGzDecoder::new(input);
    drain(
        io::BufReader::with_capacity(32 * 1024, decoder),
        &mut out,
        limit,
    )?;
    Ok(out)
}

fn unlz4(input: &[u8], limit: usize, legacy_header: bool) -> Result<Vec<u8>, Failure> {
    // The frame decoder reads zero frames from no input as success.
    if input.is_empty() {
        return Err(Failure::Codec("empty lz4 data".into()));
    }
    let header = lz4_header(input);
    let claimed = header.as_ref().and_then(|h| h.content_size);
    let mut out = output_buffer(initial_capacity(claimed, input.len(), LZ4_MAX_RATIO, limit))?;
    match header {
        Some(h) if legacy_header => {
            // Kafka's magic-0 writer hashed the magic number into the header
            // checksum (KAFKA-3160); its reader never checked it. Rewrite the
            // checksum byte so a standard decoder accepts the frame.
            let mut fixed = [0u8; LZ4_MAX_HEADER_LEN];
            let head = input.get(..h.len).unwrap_or_default();
            let fixed = fixed.get_mut(..h.len).unwrap_or_default();
            fixed.copy_from_slice(head);
            let descriptor = fixed.get(4..h.len - 1).unwrap_or_default();
            let checksum = (xxh32(descriptor, 0) >> 8) as u8;
            if let Some(last) = fixed.last_mut() {
                *last = checksum;
            }
            let rest = input.get(h.len..).unwrap_or_default();
            let decoder = lz4_flex::frame::FrameDecoder::new(io::Read::chain(&*fixed, rest));
            drain(decoder, &mut out, limit)?;
        }
        _ => drain(lz4_flex::frame::FrameDecoder::new(input), &mut out, limit)?,
    }
    Ok(out)
}

const LZ4_MAGIC: u32 = 0x184D_2204;
const LZ4_MAX_HEADER_LEN: usize = 4 + 2 + 8 + 4 + 1;

struct Lz4Header {
    /// Bytes from the magic number through the header checksum.
    len: usize,
    content_size: Option<u64>,
}

fn lz4_header(input: &[u8]) -> Option<Lz4Header> {
    let magic = u32::from_le_bytes(input.get(..4)?.try_into().ok()?);
    if magic != LZ4_MAGIC {
        return None;
    }
    let flg = *input.get(4)?;
    let has_content_size = flg & 0x08 != 0;
    let has_dict_id = flg & 0x01 != 0;
    let mut len = 4 + 2;
    let content_size = if has_content_size {
        let raw = input.get(len..len + 8)?;
        len += 8;
        Some(u64::from_le_bytes(raw.try_into().ok()?))
    } else {
        None
    };
    if has_dict_id {
        len += 4;
    }
    len += 1;
    input.get(..len)?;
    Some(Lz4Header { len, content_size })
}

/// XXH32, as the LZ4 frame format uses for its header checksum.
pub(crate) fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    fn lane(chunk: &[u8]) -> u32 {
        let mut word = [0u8; 4];
        word.copy_from_slice(chunk.get(..4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(word)
    }
    fn round(acc: u32, input: u32) -> u32 {
        acc.wrapping_add(input.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    }

    let mut stripes = data.chunks_exact(16);
    let mut h = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for stripe in &mut stripes {
            for (acc, word) in v.iter_mut().zip(stripe.chunks_exact(4)) {
                *acc = round(*acc, lane(word));
            }
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u32);
    let tail = stripes.remainder();
    let mut words = tail.chunks_exact(4);
    for word in &mut words {
        h = h
            .wrapping_add(lane(word).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &byte in words.remainder() {
        h = h
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

thread_local! {
    /// One zstd decompression context per thread, reused from batch to
    /// batch: creating one costs about a fifth of decompressing a batch of
    /// a thousand 100-byte records (`cargo bench -p odradek-core --bench
    /// decompress`). It keeps at most one window buffer, itself bounded by
    /// [`zstd_window_log_max`].
    static ZSTD_CONTEXT: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn unzstd(input: &[u8], limit: usize) -> Result<Vec<u8>, Failure> {
    ZSTD_CONTEXT.with(|slot| {
        // A context in use further up this thread's stack (never, today)
        // would only cost a fresh one.
        let mut slot = slot.try_borrow_mut().ok();
        let mut fresh = None;
        let dctx = match slot.as_deref_mut() {
            Some(Some(dctx)) => dctx,
            Some(empty) => empty.insert(new_zstd_context()?),
            None => fresh.insert(new_zstd_context()?),
        };
        unzstd_with(dctx, input, limit)
    })
}

fn new_zstd_context() -> Result<zstd::zstd_safe::DCtx<'static>, Failure> {
    zstd::zstd_safe::DCtx::try_create()
        .ok_or_else(|| Failure::Codec("cannot allocate zstd context".into()))
}

fn unzstd_with(
    dctx: &mut zstd::zstd_safe::DCtx<'static>,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    use zstd::zstd_safe::{
        DParameter, InBuffer, OutBuffer, ResetDirective, get_frame_content_size,
    };

    let claimed = get_frame_content_size(input).ok().flatten();
    // One spare byte past the limit tells "exactly at the limit" from "over".
    let cap = limit.saturating_add(1);
    let mut out = output_buffer(initial_capacity(claimed, input.len(), ZSTD_MAX_RATIO, cap))?;

    // Whatever the last batch left (an error mid-frame), start clean.
    dctx.reset(ResetDirective::SessionAndParameters)
        .map_err(zstd_failure)?;
    dctx.set_parameter(DParameter::WindowLogMax(zstd_window_log_max(limit)))
        .map_err(zstd_failure)?;

    let mut src = InBuffer::around(input);
    loop {
        if out.len() == out.capacity() {
            reserve_within(&mut out, 1, cap)?;
        }
        let (in_before, out_before) = (src.pos(), out.len());
        let hint = {
            let mut dst = OutBuffer::around_pos(&mut out, out_before);
            dctx.decompress_stream(&mut dst, &mut src)
                .map_err(zstd_failure)?
        };
        if out.len() > limit {
            return Err(Failure::Limit);
        }
        // A zero hint ends a frame; input left over holds further frames.
        let input_left = src.pos() < input.len();
        if hint == 0 && !input_left {
            return Ok(out);
        }
        let stalled =
            src.pos() == in_before && out.len() == out_before && out.len() < out.capacity();
        if stalled {
            return Err(Failure::Codec("truncated zstd frame".into()));
        }
    }
}

/// The largest zstd window we accept for a given output limit.
fn zstd_window_log_max(limit: usize) -> u32 {
    let log = usize::BITS - limit.saturating_sub(1).leading_zeros();
    log.clamp(23, 31)
}

fn zstd_failure(code: usize) -> Failure {
    Failure::Codec(zstd::zstd_safe::get_error_name(code).to_owned())
}

fn unsnappy(input: &[u8], limit: usize) -> Result<Vec<u8>, Failure> {
    let Some(mut chunks) = xerial_body(input) else {
        let mut out = Vec::new();
        raw_snappy_into(input, &mut out, limit)?;
        return Ok(out);
    };
    let mut out = output_buffer(initial_capacity(None, input.len(), SNAPPY_MAX_RATIO, limit))?;
    while !chunks.is_empty() {
        let (len, rest) = chunks
            .split_first_chunk::<4>()
            .ok_or_else(|| Failure::Codec("truncated xerial chunk length".into()))?;
        let len = usize::try_from(i32::from_be_bytes(*len))
            .map_err(|_| Failure::Codec("negative xerial chunk length".into()))?;
        let block = rest
            .get(..len)
            .ok_or_else(|| Failure::Codec("truncated xerial chunk".into()))?;
        chunks = rest.get(len..).unwrap_or_default();
        raw_snappy_into(block, &mut out, limit)?;
    }
    Ok(out)
}

/// The chunk section of a xerial-framed stream, or `None` for raw snappy.
fn xerial_body(input: &[u8]) -> Option<&[u8]> {
    if input.get(..XERIAL_MAGIC.len())? != XERIAL_MAGIC {
        return None;
    }
    input.get(XERIAL_HEADER_LEN..)
}

/// Appends one raw snappy block to `out`, checking its declared length first.
fn raw_snappy_into(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Failure> {
    let declared = snap::raw::decompress_len(block).map_err(|e| Failure::Codec(e.to_string()))?;
    if out.len().saturating_add(declared) > limit {
        return Err(Failure::Limit);
    }
    if declared > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(Failure::Codec(
            "snappy block claims more output than it could encode".into(),
        ));
    }
    let start = out.len();
    reserve_within(out, declared, limit)?;
    out.resize(start + declared, 0);
    let target = out.get_mut(start..).unwrap_or_default();
    let written = snap::raw::Decoder::new()
        .decompress(block, target)
        .map_err(|e| Failure::Codec(e.to_string()))?;
    out.truncate(start + written);
    Ok(())
}

/// Compresses `data` with `codec`, appending to `out`. Settings follow the
/// Java producer: gzip level 6, xerial-framed snappy in 32 KiB blocks, LZ4
/// frames of independent 64 KiB blocks without checksums, zstd level 3.
pub(crate) fn compress(
    codec: Compression,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RecordsError> {
    let fail = |e: &dyn fmt::Display| RecordsError::Compression {
        codec,
        message: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(&mut *out, flate2::Compression::default());
            encoder.write_all(data).map_err(|e| fail(&e))?;
            encoder.finish().map_err(|e| fail(&e))?;
        }
        Compression::Snappy => {
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for block in data.chunks(XERIAL_BLOCK) {
                let len_at = out.len();
                let max = snap::raw::max_compress_len(block.len());
                out.resize(len_at + 4 + max, 0);
                let target = out.get_mut(len_at + 4..).unwrap_or_default();
                let written = encoder.compress(block, target).map_err(|e| fail(&e))?;
                out.truncate(len_at + 4 + written);
                let written = i32::try_from(written).map_err(|e| fail(&e))?;
                if let Some(slot) = out.get_mut(len_at..len_at + 4) {
                    slot.copy_from_slice(&written.to_be_bytes());
                }
            }
        }
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent);
            let mut encoder = FrameEncoder::with_frame_info(info, &mut *out);
            encoder.write_all(data).map_err(|e| fail(&e))?;
            encoder.finish().map_err(|e| fail(&e))?;
        }
        Compression::Zstd => {
            let mut encoder =
                zstd::stream::write::Encoder::new(&mut *out, 3).map_err(|e| fail(&e))?;
            encoder.write_all(data).map_err(|e| fail(&e))?;
            encoder.finish().map_err(|e| fail(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> DecodeLimits {
        DecodeLimits::default().with_max_decompressed_bytes(max)
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in Compression::ALL {
            let mut compressed = Vec::new();
            compress(codec, &data, &mut compressed).unwrap();
            let back = decompress(codec, &compressed, &DecodeLimits::default(), false, 0).unwrap();
            assert_eq!(&back[..], &data[..], "{codec}");
        }
    }

    #[test]
    fn limit_is_inclusive() {
        let data = sample();
        for codec in &Compression::ALL[1..] {
            let codec = *codec;
            let mut compressed = Vec::new();
            compress(codec, &data, &mut compressed).unwrap();
            assert!(
                decompress(codec, &compressed, &limits(data.len()), false, 0).is_ok(),
                "{codec}"
            );
            let err =
                decompress(codec, &compressed, &limits(data.len() - 1), false, 7).unwrap_err();
            assert_eq!(
                err,
                RecordsError::DecompressionLimitExceeded {
                    base_offset: 7,
                    codec,
                    limit: data.len() - 1
                }
            );
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let data = sample();
        let compressed = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        let back = decompress(
            Compression::Snappy,
            &compressed,
            &DecodeLimits::default(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(&back[..], &data[..]);
    }

    #[test]
    fn xerial_snappy_header_and_chunks_are_java_shaped() {
        let data = sample();
        let mut compressed = Vec::new();
        compress(Compression::Snappy, &data, &mut compressed).unwrap();
        assert_eq!(&compressed[..16], b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01");
        let first_len = i32::from_be_bytes(compressed[16..20].try_into().unwrap()) as usize;
        let first = snap::raw::Decoder::new()
            .decompress_vec(&compressed[20..20 + first_len])
            .unwrap();
        assert_eq!(first.len(), XERIAL_BLOCK);
    }

    #[test]
    fn snappy_lying_length_does_not_allocate() {
        // Varint 0xffffffff: a 4 GiB claim in six bytes.
        let lie = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let err = decompress(Compression::Snappy, &lie, &limits(usize::MAX), false, 0).unwrap_err();
        assert!(matches!(err, RecordsError::Decompression { .. }), "{err:?}");
        let err = decompress(
            Compression::Snappy,
            &lie,
            &DecodeLimits::default(),
            false,
            0,
        )
        .unwrap_err();
        assert!(
            matches!(err, RecordsError::DecompressionLimitExceeded { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn xxh32_matches_lz4_frame_header_checksums() {
        use lz4_flex::frame::{FrameEncoder, FrameInfo};
        for info in [FrameInfo::new(), FrameInfo::new().content_size(Some(5))] {
            let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(b"hello").unwrap();
            let frame = enc.finish().unwrap();
            let h = lz4_header(&frame).unwrap();
            assert_eq!(
                frame[h.len - 1],
                (xxh32(&frame[4..h.len - 1], 0) >> 8) as u8
            );
        }
        // Reference values of the XXH32 specification test vectors.
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
        assert_eq!(
            xxh32(b"Nobody inspects the spammish repetition", 0),
            0xE229_3B2F
        );
    }

    #[test]
    fn legacy_lz4_broken_header_checksum_is_repaired() {
        let data = sample();
        let mut frame = Vec::new();
        compress(Compression::Lz4, &data, &mut frame).unwrap();
        let h = lz4_header(&frame).unwrap();
        // What Kafka 0.8-0.9 wrote: the checksum over magic + descriptor.
        frame[h.len - 1] = (xxh32(&frame[..h.len - 1], 0) >> 8) as u8;
        assert!(decompress(Compression::Lz4, &frame, &DecodeLimits::default(), false, 0).is_err());
        let back = decompress(Compression::Lz4, &frame, &DecodeLimits::default(), true, 0).unwrap();
        assert_eq!(&back[..], &data[..]);
    }

    #[test]
    fn concatenated_gzip_members_decode() {
        let mut compressed = Vec::new();
        compress(Compression::Gzip, b"hello ", &mut compressed).unwrap();
        compress(Compression::Gzip, b"world", &mut compressed).unwrap();
        let back = decompress(
            Compression::Gzip,
            &compressed,
            &DecodeLimits::default(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(&back[..], b"hello world");
    }

    #[test]
    fn truncated_inputs_fail_cleanly() {
        let data = sample();
        for codec in &Compression::ALL[1..] {
            let codec = *codec;
            let mut compressed = Vec::new();
            compress(codec, &data, &mut compressed).unwrap();
            for cut in [0, 1, 5, 17, compressed.len() / 2, compressed.len() - 6] {
                let r = decompress(
                    codec,
                    &compressed[..cut],
                    &DecodeLimits::default(),
                    false,
                    0,
                );
                assert!(r.is_err(), "{codec} cut at {cut} decoded");
            }
        }
    }

    #[test]
    fn zstd_window_cap() {
        assert_eq!(zstd_window_log_max(1), 23);
        assert_eq!(zstd_window_log_max(128 << 20), 27);
        assert_eq!(zstd_window_log_max((128 << 20) + 1), 28);
        assert_eq!(zstd_window_log_max(usize::MAX), 31);
    }
}
