//! 100,000 records written by confluent-kafka (librdkafka) into six
//! partitions of each of five topics, one per compression codec, consumed
//! by every adapter with every byte checked: key (null for every 7th
//! record), value, headers (one null-valued), timestamp and offset. No
//! record may be lost or repeated.
//!
//! The records are produced once per test binary and broker kind into one
//! broker held in a `static`, and the four runtime variants read them concurrently (reading
//! is read-only); the broker's watchdog kills it when the process exits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use odradek_core::records::{
    Compression as RecordCompression, NewRecord, RecordBatchBuilder, TimestampType,
};
use odradek_core::{ConsumerRecord, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::produced::{Compression, ProduceSpec, produce};
use odradek_tests::suite::{
    HangGuard, OffsetTracker, TestConsumer, build, config, expect_no_records, partitions,
    poll_until,
};
use odradek_tests::{Broker, BrokerKind, PerBroker};

const PARTITIONS: u32 = 6;
const PER_TOPIC: u64 = 20_000;

struct Bulk {
    broker: Broker,
    specs: Vec<ProduceSpec>,
}

impl Bulk {
    fn spec(&self, topic: &str) -> &ProduceSpec {
        self.specs
            .iter()
            .find(|s| s.topic == topic)
            .unwrap_or_else(|| panic!("no spec for topic {topic}"))
    }
}

/// The records, produced once per broker kind.
fn bulk(kind: BrokerKind) -> &'static Bulk {
    static BY_KIND: PerBroker<Bulk> = PerBroker::new();
    BY_KIND.get_or_init(kind, || {
        let started = Instant::now();
        let broker = Broker::start(kind).expect("start broker");
        let mut specs = Vec::new();
        for (n, compression) in Compression::ALL.into_iter().enumerate() {
            let topic = format!("bulk-{}", compression.name());
            broker
                .create_topic(&topic, PARTITIONS)
                .expect("create topic");
            let mut spec = ProduceSpec::new(&topic, 1000 + n as u64, PER_TOPIC);
            spec.partitions = PARTITIONS;
            spec.compression = compression;
            spec.with_headers = true;
            spec.null_key_every = 7;
            spec.timestamp_base = Some(1_700_000_000_000 + n as i64 * 10_000_000);
            let summary = produce(&broker, &spec)
                .unwrap_or_else(|e| panic!("produce {topic}: {e}\n{}", broker.log_tail()));
            assert_eq!(summary.delivered, PER_TOPIC, "{}", summary.json);
            for (p, s) in &summary.partitions {
                // Fresh topic, idempotent producer: offsets 0..n in order.
                let n = spec.partition_records(*p).count() as i64;
                assert_eq!(
                    (s.first_offset, s.last_offset),
                    (0, n - 1),
                    "{}",
                    summary.json
                );
            }
            specs.push(spec);
        }
        eprintln!(
            "consumer_bulk: produced {} records into {kind} in {:?}",
            PER_TOPIC * specs.len() as u64,
            started.elapsed()
        );
        Bulk { broker, specs }
    })
}

/// Checks one record against what produce.py sent at its offset.
fn check(bulk: &Bulk, record: &ConsumerRecord) {
    let spec = bulk.spec(record.topic());
    let index = record.partition() as u64 + record.offset() as u64 * u64::from(PARTITIONS);
    let want = spec.record(index);
    let at = format!("{}@{}", record.topic_partition(), record.offset());
    assert_eq!(record.partition() as u32, want.partition, "{at}: partition");
    assert_eq!(record.key(), want.key.as_deref(), "{at}: key");
    assert_eq!(record.value(), Some(&want.value[..]), "{at}: value");
    assert_eq!(Some(record.timestamp()), want.timestamp, "{at}: timestamp");
    assert_eq!(
        record.timestamp_type(),
        TimestampType::CreateTime,
        "{at}: timestamp type"
    );
    let headers: Vec<(String, Option<Vec<u8>>)> = record
        .headers()
        .iter()
        .map(|h| {
            let key = h.key_str().expect("UTF-8 header key").to_owned();
            (key, h.value.map(<[u8]>::to_vec))
        })
        .collect();
    assert_eq!(headers, want.headers, "{at}: headers");
}

fn every_record_of_every_codec<C: TestConsumer>(kind: BrokerKind) {
    let _guard = HangGuard::new(
        format!("consumer_bulk [{kind} {}]", C::RUNTIME),
        Duration::from_secs(600),
    );
    let bulk = bulk(kind);
    let started = Instant::now();
    let all: Vec<TopicPartition> = bulk
        .specs
        .iter()
        .flat_map(|s| partitions(&s.topic, PARTITIONS as i32))
        .collect();
    let end: BTreeMap<TopicPartition, i64> = all
        .iter()
        .map(|tp| {
            let spec = bulk.spec(tp.topic());
            let n = spec.partition_records(tp.partition() as u32).count();
            (tp.clone(), n as i64)
        })
        .collect();
    let total: i64 = end.values().sum();
    assert_eq!(total, 100_000);

    let consumer: C = build(config(&bulk.broker));
    consumer.assign(&all).expect("assign");
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(consumer.assignment(), sorted);
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let seen = poll_until(
        &consumer,
        "consume 100,000 records",
        Duration::from_secs(300),
        &mut tracker,
        |tracker, record| {
            tracker.accept(record);
            check(bulk, record);
        },
        |tracker| tracker.all_reached(&end),
    );
    assert_eq!(seen as i64, total, "[{}] records received", C::RUNTIME);
    // Nothing after the end: no duplicates arrive late.
    expect_no_records(
        &consumer,
        "after the last record",
        Duration::from_millis(500),
    );
    for tp in &all {
        let position = consumer.position(tp).expect("position");
        assert_eq!(
            Some(position),
            tracker.next(tp),
            "[{}] position of {tp}",
            C::RUNTIME
        );
    }
    consumer.close().expect("close");
    eprintln!(
        "consumer_bulk [{}]: 100,000 records checked in {:?}",
        C::RUNTIME,
        started.elapsed()
    );
}

/// crabka fills every partition of a Fetch up to the partition's limit and
/// ignores the response-level `fetch.max.bytes`; tansu fills one partition
/// and ignores the partition limit. With a buffer bound well below "every
/// partition at its limit", the buffered bytes (sampled at every poll while
/// the application reads slowly) never exceed the bound by more than one
/// partition's limit, and every record arrives in order.
fn buffer_bound_holds_however_the_broker_fills_a_fetch<C: TestConsumer>(kind: BrokerKind) {
    const PARTS: i32 = 6;
    const VALUE: usize = 2048;
    const PER_PARTITION: i64 = 200;
    let (bound, partition_max, fetch_max) = (256 << 10, 64 << 10, 128 << 10);
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_bulk buffer bound [{kind} {rt}]"),
        Duration::from_secs(180),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker
        .create_topic("wide", PARTS as u32)
        .expect("create topic");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    let value = |p: i32, offset: i64| {
        let mut v = format!("{p}:{offset}:").into_bytes();
        v.resize(VALUE, b'x');
        v
    };
    for p in 0..PARTS {
        for first in (0..PER_PARTITION).step_by(10) {
            let batch = RecordBatchBuilder::new(0)
                .compression(RecordCompression::None)
                .records(
                    (first..first + 10)
                        .map(|o| NewRecord::new().with_value(value(p, o)))
                        .collect::<Vec<_>>(),
                )
                .encode()
                .expect("encode");
            assert_eq!(conn.produce("wide", p, batch).expect("produce"), first);
        }
    }
    let all = partitions("wide", PARTS);

    let mut cfg = config(&broker);
    cfg.fetch_buffer_max_bytes = bound;
    cfg.max_partition_fetch_bytes = partition_max;
    cfg.fetch_max_bytes = fetch_max;
    cfg.max_poll_records = 10;
    let consumer: C = build(cfg);
    consumer.assign(&all).expect("assign");
    let mut seen: BTreeMap<i32, i64> = BTreeMap::new();
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.values().sum::<i64>() < PER_PARTITION * i64::from(PARTS) {
        assert!(
            Instant::now() < deadline,
            "[{rt}] read {seen:?}, buffered {}",
            consumer.buffered_bytes()
        );
        // A slow application: the consumer fetches while it waits.
        std::thread::sleep(Duration::from_millis(2));
        peak = peak.max(consumer.buffered_bytes());
        for record in &consumer.poll(Duration::from_millis(100)).expect("poll") {
            let next = seen.entry(record.partition()).or_default();
            assert_eq!(
                record.offset(),
                *next,
                "[{rt}] {}",
                record.topic_partition()
            );
            assert_eq!(record.value(), Some(&value(record.partition(), *next)[..]));
            *next += 1;
        }
        peak = peak.max(consumer.buffered_bytes());
    }
    let limit = bound + partition_max as usize;
    assert!(
        peak <= limit,
        "[{rt}] peak buffered {peak} bytes, over the bound {bound} + one partition {partition_max}"
    );
    eprintln!("[{kind} {rt}] peak buffered {peak} bytes (bound {bound}, limit {limit})");
    consumer.close().expect("close");
}

odradek_tests::for_each_runtime!(every_record_of_every_codec);
odradek_tests::for_each_runtime!(buffer_bound_holds_however_the_broker_fills_a_fetch);
