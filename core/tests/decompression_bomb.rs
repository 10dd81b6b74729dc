//! Decompression bombs: small compressed batches that expand enormously must
//! fail fast with a typed error while the decoder's memory stays near
//! `DecodeLimits::max_decompressed_bytes`.
//!
//! Memory is checked without looking at RSS: this test binary's global
//! allocator is `cap::Cap`, and each decode runs with the allocator's hard
//! limit set to (bytes allocated before) + (decompression limit) + a fixed
//! allowance for codec state. Any allocation past that fails, which the
//! decoder reports as an error (or the process aborts), so the test also
//! fails. The peak the allocator saw is checked afterwards as well.
//! zstd's own C allocations (context and window) bypass the Rust allocator;
//! they are bounded separately by the window-size cap.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use odradek_core::records::{Compression, DecodeLimits, RecordBatchReader, RecordsError};

#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Tests share the allocator's limit, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Room for codec state on top of the output limit: lz4 keeps two 4 MiB
/// block buffers, gzip a 32 KiB window and read buffer.
const CODEC_ALLOWANCE: usize = 12 << 20;

const GIB: u64 = 1 << 30;

/// Wraps compressed records data in a v2 batch header with a valid CRC.
fn batch_around(codec: Compression, records: u32, compressed: &[u8]) -> Bytes {
    let mut body = Vec::with_capacity(49 + compressed.len());
    body.extend_from_slice(&i16::from(codec.id()).to_be_bytes()); // attributes
    body.extend_from_slice(&(records as i32 - 1).max(0).to_be_bytes()); // last offset delta
    body.extend_from_slice(&0i64.to_be_bytes()); // base timestamp
    body.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
    body.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    body.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    body.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    body.extend_from_slice(&(records as i32).to_be_bytes());
    body.extend_from_slice(compressed);
    let mut batch = Vec::with_capacity(21 + body.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((body.len() + 9) as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    batch.push(2);
    batch.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    batch.extend_from_slice(&body);
    batch.into()
}

/// Decodes `batch` under `limit`, with the allocator capped, and checks the
/// outcome is the typed limit error, quickly.
#[allow(
    clippy::disallowed_methods,
    reason = "the test measures how long the decoder takes; the decoder itself reads no clock"
)]
fn assert_bomb_defused(codec: Compression, batch: Bytes, limit: usize) {
    let limits = DecodeLimits::default().with_max_decompressed_bytes(limit);
    let batch = RecordBatchReader::with_limits(Some(batch), limits)
        .next()
        .expect("a batch")
        .expect("header and CRC are valid");

    let before = ALLOCATOR.allocated();
    let peak_before = ALLOCATOR.max_allocated();
    let budget = before + limit + CODEC_ALLOWANCE;
    ALLOCATOR.set_limit(budget).expect("set limit");
    let started = Instant::now();
    let result = batch.records();
    let elapsed = started.elapsed();
    ALLOCATOR.set_limit(usize::MAX).expect("lift limit");

    let err = result.expect_err("bomb must not decode");
    assert_eq!(
        err,
        RecordsError::DecompressionLimitExceeded {
            base_offset: 0,
            codec,
            limit
        },
        "{codec}"
    );
    // The allocator's peak is process-wide and never resets; it only says
    // something about this decode if the decode raised it.
    let peak = ALLOCATOR.max_allocated();
    if peak > peak_before {
        assert!(peak <= budget, "{codec}: peak {peak} over budget {budget}");
    }
    // Generous for debug builds on a loaded machine; a bomb decoded to its
    // end would take many times longer (or never return).
    assert!(
        elapsed < Duration::from_secs(10),
        "{codec}: took {elapsed:?}"
    );
    eprintln!("{codec}: limit {limit} bytes, defused in {elapsed:?}");
}

/// A zstd frame of `blocks` RLE blocks, each expanding one byte to 128 KiB.
///
/// A block regenerates at most 128 KiB and an RLE block is the smallest
/// (3-byte header + 1 byte), so 32768:1 is the format's best ratio: 1 KiB of
/// frame expands to at most ~32 MiB, and 10 GiB needs ~320 KiB.
fn zstd_rle_bomb(blocks: u64) -> Vec<u8> {
    const BLOCK: u32 = 128 * 1024;
    let mut frame = Vec::with_capacity(6 + 4 * blocks as usize);
    frame.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    frame.push(0x00); // no content size, no checksum, no dictionary
    frame.push(7 << 3); // window 2^(10+7) = 128 KiB
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | (BLOCK << 3); // RLE block of 128 KiB
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

#[test]
fn zstd_bomb_of_10_gib_fails_fast_with_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let blocks = 10 * GIB / (128 * 1024);
    let bomb = zstd_rle_bomb(blocks);
    assert!(bomb.len() < 330 * 1024, "{} bytes", bomb.len());
    let batch = batch_around(Compression::Zstd, 1, &bomb);
    assert_bomb_defused(
        Compression::Zstd,
        batch,
        DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES,
    );
}

#[test]
fn zstd_bomb_really_expands_to_10_gib() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = zstd_rle_bomb(10 * GIB / (128 * 1024));
    // Stream it through a counting sink: nothing is kept.
    struct Count(u64);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Count(0);
    zstd::stream::copy_decode(&bomb[..], &mut sink).expect("valid zstd");
    assert_eq!(sink.0, 10 * GIB);
}

#[test]
fn one_kib_zstd_frame_trips_a_small_limit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bomb = zstd_rle_bomb(254);
    assert!(bomb.len() <= 1024);
    assert_eq!(
        zstd::stream::decode_all(&bomb[..]).unwrap().len(),
        254 * 128 * 1024
    );
    assert_bomb_defused(
        Compression::Zstd,
        batch_around(Compression::Zstd, 1, &bomb),
        1 << 20,
    );
}

#[test]
fn gzip_bomb_of_1_gib_fails_fast_with_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Deflate tops out near 1032:1, so a 10 GiB gzip bomb is ~10 MB; 1 GiB
    // (about 1 MiB of repeated members) shows the same thing.
    let mut member = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    member.write_all(&vec![0u8; 1 << 20]).unwrap();
    let member = member.finish().unwrap();
    let bomb = member.repeat(1024);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    assert_bomb_defused(
        Compression::Gzip,
        batch_around(Compression::Gzip, 1, &bomb),
        16 << 20,
    );
}

#[test]
fn lz4_bomb_of_1_gib_fails_fast_with_bounded_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    // Take a real frame header for 4 MiB independent blocks, then repeat one
    // compressed block of 4 MiB of zeros 256 times (LZ4 tops out near 255:1).
    let info = FrameInfo::new()
        .block_size(BlockSize::Max4MB)
        .block_mode(BlockMode::Independent);
    let header = FrameEncoder::with_frame_info(info, Vec::new())
        .finish()
        .unwrap();
    let header = &header[..header.len() - 4]; // drop the end mark
    let block = lz4_flex::block::compress(&vec![0u8; 4 << 20]);
    let mut bomb = header.to_vec();
    for _ in 0..256 {
        bomb.extend_from_slice(&(block.len() as u32).to_le_bytes());
        bomb.extend_from_slice(&block);
    }
    bomb.extend_from_slice(&0u32.to_le_bytes());
    assert!(bomb.len() < 5 << 20, "{} bytes", bomb.len());
    assert_bomb_defused(
        Compression::Lz4,
        batch_around(Compression::Lz4, 1, &bomb),
        16 << 20,
    );
}

#[test]
fn snappy_bombs_are_refused_before_allocating() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Raw snappy declares its length up front: a 4 GiB claim in 6 bytes.
    let raw = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    assert_bomb_defused(
        Compression::Snappy,
        batch_around(Compression::Snappy, 1, &raw),
        16 << 20,
    );

    // Xerial framing: many honest chunks that together exceed the limit.
    let chunk = snap::raw::Encoder::new()
        .compress_vec(&vec![0u8; 64 << 10])
        .unwrap();
    let mut bomb = b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01".to_vec();
    for _ in 0..1024 {
        bomb.extend_from_slice(&(chunk.len() as i32).to_be_bytes());
        bomb.extend_from_slice(&chunk);
    }
    assert_bomb_defused(
        Compression::Snappy,
        batch_around(Compression::Snappy, 1, &bomb),
        16 << 20,
    );
}
