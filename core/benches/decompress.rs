//! Decompression alone, the decoders against each other on the same batch:
//! what `RecordBatch::records` pays for lz4 and zstd (with its limits),
//! beside the raw decoders it could use instead.
//!
//! One batch of 1,000 records (9-byte keys, 100-byte JSON-like values),
//! the size a producer writes by default, so per-call costs (a zstd
//! context, the output buffer) weigh as they do when consuming.
//!
//! lz4_flex's `safe-decode` decoder cannot sit beside its default one in
//! one build (a cargo feature picks it); to measure it, add `safe-decode`
//! to the workspace's lz4_flex features and run again.

use std::hint::black_box;
use std::io::Read;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_main};
use odradek_core::records::{Compression, RecordBatch, RecordBatchBuilder, RecordBatchReader};

mod sample;

const RECORDS: usize = 1_000;
/// The v2 batch header before the records section.
const HEADER: usize = 61;

fn batch(codec: Compression) -> (RecordBatch, Bytes) {
    let bytes = RecordBatchBuilder::new(0)
        .compression(codec)
        .records(sample::records(RECORDS))
        .encode()
        .expect("encode");
    let section = bytes.slice(HEADER..);
    let batch = RecordBatchReader::new(Some(bytes))
        .next()
        .expect("one batch")
        .expect("a valid batch");
    (batch, section)
}

fn bench(c: &mut Criterion) {
    let (plain, _) = batch(Compression::None);
    let size = plain.records().expect("records").buffer().len();

    let (lz4_batch, lz4_section) = batch(Compression::Lz4);
    let mut group = c.benchmark_group("decompress_lz4");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("odradek_records", |b| {
        b.iter(|| black_box(lz4_batch.records().expect("records").buffer().len()));
    });
    group.bench_function("lz4_flex_frame", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(size);
            lz4_flex::frame::FrameDecoder::new(&lz4_section[..])
                .read_to_end(&mut out)
                .expect("lz4_flex");
            black_box(out.len())
        });
    });
    group.bench_function("lz4_c_frame", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(size);
            lz4::Decoder::new(&lz4_section[..])
                .expect("lz4 decoder")
                .read_to_end(&mut out)
                .expect("lz4");
            black_box(out.len())
        });
    });
    group.finish();

    let (zstd_batch, zstd_section) = batch(Compression::Zstd);
    let mut group = c.benchmark_group("decompress_zstd");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("odradek_records", |b| {
        b.iter(|| black_box(zstd_batch.records().expect("records").buffer().len()));
    });
    group.bench_function("zstd_fresh_context", |b| {
        b.iter(|| {
            black_box(
                zstd::bulk::decompress(&zstd_section, size)
                    .expect("zstd")
                    .len(),
            )
        });
    });
    let mut reused = zstd::bulk::Decompressor::new().expect("context");
    let mut out = Vec::with_capacity(size);
    group.bench_function("zstd_reused_context_and_buffer", |b| {
        b.iter(|| {
            out.clear();
            reused
                .decompress_to_buffer(&zstd_section[..], &mut out)
                .expect("zstd");
            black_box(out.len())
        });
    });
    let mut reused = zstd::bulk::Decompressor::new().expect("context");
    group.bench_function("zstd_reused_context", |b| {
        b.iter(|| black_box(reused.decompress(&zstd_section, size).expect("zstd").len()));
    });
    group.finish();
}

mod group {
    // criterion_group! defines an undocumented public function.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
