//! Record batch decoding throughput: Odradek's decoder against
//! kafka-protocol's `RecordBatchDecoder` on the same bytes.
//!
//! One batch of 10,000 records (9-byte keys, 100-byte JSON-like values), for
//! compression none, lz4 and zstd. Every variant checks the CRC and touches
//! every record's key and value.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_main};
use odradek_core::records::{Compression, RecordBatchBuilder, RecordBatchReader};

mod sample;

const RECORDS: usize = 10_000;

fn batch(codec: Compression) -> Bytes {
    RecordBatchBuilder::new(1_000_000)
        .compression(codec)
        .producer(4242, 0, 0)
        .records(sample::records(RECORDS))
        .encode()
        .expect("encode")
}

fn touch(acc: &mut u64, key: Option<&[u8]>, value: Option<&[u8]>) {
    for part in [key, value].into_iter().flatten() {
        *acc += part.len() as u64 + u64::from(part.first().copied().unwrap_or(0));
    }
}

fn ours_borrowed(bytes: &Bytes) -> u64 {
    let mut acc = 0;
    for batch in RecordBatchReader::new(Some(bytes.clone())) {
        let records = batch.expect("batch").records().expect("records");
        for record in &records {
            let record = record.expect("record");
            touch(&mut acc, record.key(), record.value());
        }
    }
    acc
}

fn ours_owned(bytes: &Bytes) -> u64 {
    let mut acc = 0;
    for batch in RecordBatchReader::new(Some(bytes.clone())) {
        for record in batch.expect("batch").records().expect("records") {
            let record = record.expect("record");
            touch(&mut acc, record.key(), record.value());
        }
    }
    acc
}

fn kafka_protocol(bytes: &Bytes) -> u64 {
    let mut acc = 0;
    let mut buf = bytes.clone();
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).expect("decode");
    for record in &set.records {
        touch(&mut acc, record.key.as_deref(), record.value.as_deref());
    }
    acc
}

fn bench(c: &mut Criterion) {
    for codec in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let bytes = batch(codec);
        let expected = ours_borrowed(&bytes);
        assert_eq!(expected, ours_owned(&bytes));
        assert_eq!(expected, kafka_protocol(&bytes));

        let mut group = c.benchmark_group(format!("decode_10k_{codec}"));
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_function("odradek_borrowed", |b| {
            b.iter(|| black_box(ours_borrowed(black_box(&bytes))))
        });
        group.bench_function("odradek_owned_bytes", |b| {
            b.iter(|| black_box(ours_owned(black_box(&bytes))))
        });
        group.bench_function("kafka_protocol", |b| {
            b.iter(|| black_box(kafka_protocol(black_box(&bytes))))
        });
        group.finish();
    }
}

mod group {
    // criterion_group! defines an undocumented public function.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
