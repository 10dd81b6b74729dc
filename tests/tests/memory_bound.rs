//! One memory bound for the whole consumer, on real brokers: every adapter
//! consumes a 1,000-partition topic per codec under an 8 MiB bound
//! (`queued.max.messages.kbytes` 8192, 12 KiB per partition so every fetch
//! is full), and the heap the consumer takes
//! (counted by an allocator in a process of its own,
//! `src/bin/odradek_memory_probe.rs`) stays within the bound plus
//! [`CONSTANT`], although each topic holds about three times the bound.
//!
//! crabka fills every partition of a fetch up to its limit and ignores the
//! response-level `max_bytes`; tansu fills one partition past its limit:
//! the bound must hold with both.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_tests::driver::Connection;
use odradek_tests::suite::{HangGuard, TestConsumer};
use odradek_tests::{Broker, BrokerKind, PerBroker};

const PARTITIONS: i32 = 1000;
/// Two batches of 75 records (about 9 KB each) per partition.
const PER_PARTITION: usize = 150;
const PER_BATCH: usize = 75;
/// `max.partition.fetch.bytes`: one batch per partition per fetch, so the
/// fetches are full and the bound is what limits them.
const PARTITION_LIMIT: usize = 12 << 10;
const VALUE: usize = 100;
const BOUND: usize = 8 << 20;
/// What the consumer may take beyond the bound: its bookkeeping for 1,000
/// partitions and their metadata, the adapters' read buffers, one poll's
/// records, one response assembling, and one decompressed batch.
const CONSTANT: usize = 4 << 20;

fn topic(codec: Compression) -> String {
    format!("bound-{}", format!("{codec:?}").to_lowercase())
}

/// 100 bytes of text that compresses about as well as JSON does.
fn value(partition: i32, i: usize) -> Vec<u8> {
    let mut state = (partition as u64) << 32 | i as u64;
    let mut v = format!("{{\"p\":{partition},\"i\":{i},\"s\":\"").into_bytes();
    while v.len() < VALUE - 2 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.push(b'a' + (state >> 59) as u8 % 12);
    }
    v.extend_from_slice(b"\"}");
    v
}

/// One broker per kind with a topic per codec, written once per test binary.
fn broker(kind: BrokerKind) -> &'static Broker {
    static BY_KIND: PerBroker<Broker> = PerBroker::new();
    BY_KIND.get_or_init(kind, || {
        let started = Instant::now();
        let broker = Broker::start(kind).expect("start broker");
        let mut conn = Connection::connect(broker.addr()).expect("driver");
        for codec in Compression::ALL {
            let topic = topic(codec);
            broker
                .create_topic(&topic, PARTITIONS as u32)
                .expect("create topic");
            for p in 0..PARTITIONS {
                for first in (0..PER_PARTITION).step_by(PER_BATCH) {
                    let batch = RecordBatchBuilder::new(0)
                        .compression(codec)
                        .records(
                            (first..first + PER_BATCH)
                                .map(|i| NewRecord::new().with_value(value(p, i))),
                        )
                        .encode()
                        .expect("encode");
                    let base = conn.produce(&topic, p, batch).expect("produce");
                    assert_eq!(base, first as i64, "{topic}-{p}");
                }
            }
        }
        eprintln!(
            "memory_bound: wrote {} records into {kind} in {:?}",
            Compression::ALL.len() * PARTITIONS as usize * PER_PARTITION,
            started.elapsed()
        );
        broker
    })
}

fn small_bound_holds_for_every_codec<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("memory_bound [{kind} {rt}]"),
        Duration::from_secs(600),
    );
    let broker = broker(kind);
    let probe = Path::new(env!("CARGO_BIN_EXE_odradek_memory_probe"));
    let records = PARTITIONS as usize * PER_PARTITION;
    for codec in Compression::ALL {
        let topic = topic(codec);
        let output = Command::new(probe)
            .args(["--bootstrap", &broker.bootstrap(), "--topic", &topic])
            .args(["--partitions", &PARTITIONS.to_string()])
            .args(["--records", &records.to_string()])
            .args(["--bound", &BOUND.to_string(), "--runtime", rt])
            .args(["--partition-limit", &PARTITION_LIMIT.to_string()])
            .output()
            .expect("run the probe");
        assert!(
            output.status.success(),
            "[{kind} {rt} {topic}] {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the probe's JSON");
        assert_eq!(report["records"], records as u64, "[{kind} {rt} {topic}]");
        let peak = report["peak_over_baseline"].as_u64().expect("peak") as usize;
        eprintln!(
            "[{kind} {rt} {topic}] peak heap {:.2} MiB (bound {} MiB + {} MiB)",
            peak as f64 / (1 << 20) as f64,
            BOUND >> 20,
            CONSTANT >> 20
        );
        assert!(
            peak <= BOUND + CONSTANT,
            "[{kind} {rt} {topic}] the consumer took {peak} bytes, over the bound {BOUND} + {CONSTANT}"
        );
    }
}

odradek_tests::for_each_runtime!(small_bound_holds_for_every_codec);
