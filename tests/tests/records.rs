//! Records through both real brokers: batches Odradek encodes come back
//! byte for byte, Produce and Fetch work at every version both sides
//! support, and batches confluent-kafka (librdkafka) writes in every
//! compression decode to exactly the records it sent.

use bytes::Bytes;
use odradek_core::protocol::messages::{
    fetch::{FetchPartition, FetchPartitionData, FetchTopic},
    metadata::MetadataRequestTopic,
    produce::{PartitionProduceData, TopicProduceData},
    *,
};
use odradek_core::protocol::{Request, Uuid, VersionRange};
use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder, RecordBatchReader};
use odradek_tests::driver::Connection;
use odradek_tests::produced::{ProduceSpec, produce};
use odradek_tests::{Broker, BrokerKind};

fn common<R: Request>(conn: &Connection) -> VersionRange {
    conn.common_versions(R::API_KEY)
        .unwrap_or_else(|| panic!("the broker does not offer {}", R::API_KEY))
}

/// The topic's id, from Metadata (needed for Fetch v13+).
fn topic_id(conn: &mut Connection, topic: &str) -> Uuid {
    let response = conn
        .send_negotiated(&MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        })
        .expect("metadata");
    let id = response.topics[0].topic_id;
    assert_ne!(id, Uuid::NIL, "the broker gives topics ids: {response:?}");
    id
}

/// One Fetch of one partition from `offset`. tansu fills only the first
/// partition with data per response (brokers.md), so tests fetch one
/// partition at a time.
fn fetch(
    conn: &mut Connection,
    version: i16,
    topic: &str,
    id: Uuid,
    partition: i32,
    offset: i64,
) -> FetchPartitionData {
    let request = FetchRequest {
        // A positive wait: tansu answers max_wait_ms = 0 with no topics.
        max_wait_ms: 100,
        min_bytes: 1,
        max_bytes: 50 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            topic_id: id,
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 10 << 20,
                ..Default::default()
            }],
        }],
        ..Default::default()
    };
    let response = conn
        .send(&request, version)
        .unwrap_or_else(|e| panic!("Fetch v{version}: {e}"));
    assert_eq!(response.error_code, 0, "Fetch v{version}: {response:?}");
    let topic_response = response
        .responses
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("Fetch v{version}: no topic in the response"));
    let data = topic_response
        .partitions
        .into_iter()
        .find(|p| p.partition_index == partition)
        .unwrap_or_else(|| panic!("Fetch v{version}: partition {partition} missing"));
    assert_eq!(data.error_code, 0, "Fetch v{version}: {data:?}");
    data
}

/// Every `records` field of a partition from offset 0 up to its high
/// watermark, fetched at `version`.
fn fetch_all(conn: &mut Connection, version: i16, topic: &str, partition: i32) -> Vec<Bytes> {
    let id = topic_id(conn, topic);
    let mut offset = 0;
    let mut sets = Vec::new();
    for _ in 0..10_000 {
        let data = fetch(conn, version, topic, id, partition, offset);
        let records = data.records.unwrap_or_default();
        let mut reader = RecordBatchReader::new(Some(records.clone()));
        for batch in &mut reader {
            let batch = batch.expect("fetched batches decode");
            offset = batch.next_offset();
        }
        sets.push(records);
        if offset >= data.high_watermark {
            return sets;
        }
    }
    panic!("{topic}/{partition}: no progress towards the high watermark");
}

/// Raw batches of a record set: each batch's bytes, by its length prefix.
fn split_batches(mut records: Bytes) -> Vec<Bytes> {
    let mut batches = Vec::new();
    while records.len() >= 12 {
        let length = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        if records.len() < 12 + length {
            break; // a truncated tail, fetched again later
        }
        batches.push(records.split_to(12 + length));
    }
    batches
}

/// A record's key and value, for comparisons.
type KeyValue = (Option<Vec<u8>>, Option<Vec<u8>>);

fn sample_records(batch: usize, count: usize) -> Vec<NewRecord> {
    (0..count)
        .map(|i| {
            let mut record = NewRecord::new()
                .with_value(format!("batch {batch} record {i} ").repeat(1 + i % 4))
                .with_timestamp(1_700_000_000_000 + (batch * count + i) as i64);
            if i % 5 != 0 {
                record = record.with_key(format!("key-{i}"));
            }
            if i % 3 == 0 {
                record = record
                    .with_header("h", format!("{i}"))
                    .with_null_header("empty");
            }
            record
        })
        .collect()
}

fn our_batches_round_trip_byte_for_byte_in_every_compression(kind: BrokerKind) {
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("connect");
    let produce_versions = common::<ProduceRequest>(&conn);
    let fetch_version = conn.negotiated::<FetchRequest>().expect("fetch");
    for compression in Compression::ALL {
        let topic = format!("round-trip-{compression}");
        broker.create_topic(&topic, 1).expect("create topic");
        let id = topic_id(&mut conn, &topic);
        let mut sent = Vec::new();
        let mut next_offset = 0;
        // One batch per Produce version, so every version writes records.
        for (batch, version) in produce_versions.iter().enumerate() {
            let records = sample_records(batch, 20 + batch * 7);
            let count = records.len() as i64;
            let bytes = RecordBatchBuilder::new(0)
                .compression(compression)
                .records(records)
                .encode()
                .expect("encode batch");
            let request = ProduceRequest {
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![TopicProduceData {
                    name: topic.clone(),
                    // v13+ names the topic by id only.
                    topic_id: if version >= 13 { id } else { Uuid::NIL },
                    partition_data: vec![PartitionProduceData {
                        index: 0,
                        records: Some(bytes.clone()),
                    }],
                }],
                ..Default::default()
            };
            let response = conn
                .send(&request, version)
                .unwrap_or_else(|e| panic!("Produce v{version}: {e}"));
            let partition = &response.responses[0].partition_responses[0];
            assert_eq!(partition.error_code, 0, "Produce v{version}: {response:?}");
            assert_eq!(partition.base_offset, next_offset, "Produce v{version}");
            sent.push((next_offset, bytes));
            next_offset += count;
        }

        let fetched: Vec<Bytes> = fetch_all(&mut conn, fetch_version, &topic, 0)
            .into_iter()
            .flat_map(split_batches)
            .collect();
        assert_eq!(fetched.len(), sent.len(), "{compression}: batch count");
        for ((base_offset, sent), fetched) in sent.iter().zip(&fetched) {
            // The broker assigns the base offset (bytes 0..8) and, as
            // Apache Kafka's leader does, may stamp its leader epoch (bytes
            // 12..16, outside the CRC: crabka writes 0, tansu keeps our -1);
            // everything else, CRC included, comes back exactly as we wrote it.
            assert_eq!(&fetched[..8], &base_offset.to_be_bytes(), "{compression}");
            assert_eq!(&fetched[8..12], &sent[8..12], "{compression}: length");
            let epoch = i32::from_be_bytes(fetched[12..16].try_into().expect("4 bytes"));
            assert!(epoch >= -1, "{compression}: leader epoch {epoch}");
            assert_eq!(
                &fetched[16..],
                &sent[16..],
                "{compression}: batch at {base_offset} changed"
            );
            let batch = RecordBatchReader::new(Some(fetched.clone()))
                .next()
                .expect("one batch")
                .expect("decodes");
            assert_eq!(batch.compression(), compression);
            assert_eq!(batch.base_offset(), *base_offset);
        }
    }
}

fn fetch_at_every_common_version(kind: BrokerKind) {
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("connect");
    let topic = "fetch-versions";
    broker.create_topic(topic, 1).expect("create topic");
    let records = sample_records(0, 100);
    let expected: Vec<KeyValue> = records
        .iter()
        .map(|r| {
            (
                r.key.as_ref().map(|k| k.to_vec()),
                r.value.as_ref().map(|v| v.to_vec()),
            )
        })
        .collect();
    let bytes = RecordBatchBuilder::new(0)
        .compression(Compression::Lz4)
        .records(records)
        .encode()
        .expect("encode");
    assert_eq!(conn.produce(topic, 0, bytes).expect("produce"), 0);

    let id = topic_id(&mut conn, topic);
    for version in common::<FetchRequest>(&conn).iter() {
        let data = fetch(&mut conn, version, topic, id, 0, 0);
        assert_eq!(data.high_watermark, 100, "v{version}");
        let mut seen = Vec::new();
        for batch in RecordBatchReader::new(data.records) {
            for record in batch.expect("batch").records().expect("records") {
                let record = record.expect("record");
                seen.push((
                    record.key().map(<[u8]>::to_vec),
                    record.value().map(<[u8]>::to_vec),
                ));
            }
        }
        assert_eq!(seen, expected, "Fetch v{version}");
    }
}

fn confluent_kafka_batches_decode_exactly_in_every_compression(kind: BrokerKind) {
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("connect");
    let fetch_version = conn.negotiated::<FetchRequest>().expect("fetch");
    for compression in Compression::ALL {
        let topic = format!("confluent-{compression}");
        broker.create_topic(&topic, 3).expect("create topic");
        let mut spec = ProduceSpec::new(&topic, 7, 3000);
        spec.partitions = 3;
        spec.compression = compression;
        spec.with_headers = true;
        spec.null_key_every = 7;
        spec.timestamp_base = Some(1_700_000_000_000);
        let summary = produce(&broker, &spec)
            .unwrap_or_else(|e| panic!("{compression}: {e}\n{}", broker.log_tail()));
        assert_eq!(summary.delivered, 3000, "{compression}: {}", summary.json);

        for partition in 0..3u32 {
            let mut expected = spec.partition_records(partition);
            let mut batches = 0;
            let mut offset = 0i64;
            for set in fetch_all(&mut conn, fetch_version, &topic, partition as i32) {
                for batch in RecordBatchReader::new(Some(set)) {
                    let batch = batch.expect("batch decodes");
                    assert_eq!(
                        batch.compression(),
                        compression,
                        "librdkafka used the codec"
                    );
                    batches += 1;
                    for record in batch.records().expect("records") {
                        let record = record.expect("record decodes");
                        if record.offset() < offset {
                            continue; // re-fetched after a truncated tail
                        }
                        let want = expected
                            .next()
                            .unwrap_or_else(|| panic!("{compression} p{partition}: extra record"));
                        let at = format!("{compression} p{partition} offset {}", record.offset());
                        assert_eq!(record.offset(), offset, "{at}");
                        assert_eq!(record.key(), want.key.as_deref(), "{at}: key");
                        assert_eq!(record.value(), Some(&want.value[..]), "{at}: value");
                        assert_eq!(record.timestamp(), want.timestamp.unwrap_or(-1), "{at}");
                        let headers: Vec<(String, Option<Vec<u8>>)> = record
                            .headers()
                            .iter()
                            .map(|h| {
                                let key = h.key_str().expect("utf-8 header key").to_owned();
                                (key, h.value.map(<[u8]>::to_vec))
                            })
                            .collect();
                        assert_eq!(headers, want.headers, "{at}: headers");
                        offset += 1;
                    }
                }
            }
            assert!(
                expected.next().is_none(),
                "{compression} p{partition}: records missing"
            );
            assert!(batches > 0, "{compression} p{partition}: no batches");
        }
    }
}

/// crabka only: a caught-up partition comes back with `records` null (the
/// schema allows it; Kafka sends an empty set). The consumer reads a topic
/// where one partition is caught up at every fetch and the other has data
/// without an error, on every adapter (`suite` covers the runtimes; this
/// checks the premise and the blocking adapter).
#[test]
fn crabka_answers_caught_up_partitions_with_null_records() {
    let broker = Broker::start(BrokerKind::Crabka).expect("start crabka");
    let mut conn = Connection::connect(broker.addr()).expect("connect");
    broker.create_topic("nulls", 2).expect("create topic");
    let batch = RecordBatchBuilder::new(0)
        .records(sample_records(0, 10))
        .encode()
        .expect("encode");
    conn.produce("nulls", 0, batch).expect("produce");
    let caught_up = conn
        .fetch_partition(
            "nulls",
            0,
            10,
            odradek_core::IsolationLevel::ReadUncommitted,
        )
        .expect("fetch at the end");
    assert_eq!(caught_up.records, None, "{caught_up:?}");
    let empty = conn
        .fetch_partition("nulls", 1, 0, odradek_core::IsolationLevel::ReadUncommitted)
        .expect("fetch an empty partition");
    assert_eq!(empty.records, None, "{empty:?}");

    let config = odradek_core::ConsumerConfig::builder()
        .bootstrap_servers(broker.bootstrap())
        .fetch_max_wait(std::time::Duration::from_millis(50))
        .build()
        .expect("config");
    let consumer = odradek_blocking::Consumer::new(config).expect("consumer");
    let all = [
        odradek_core::TopicPartition::new("nulls", 0),
        odradek_core::TopicPartition::new("nulls", 1),
    ];
    consumer.assign(all.clone()).expect("assign");
    consumer.seek_to_beginning(&all).expect("seek");
    let mut got = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while got < 10 {
        assert!(std::time::Instant::now() < deadline, "{got} records");
        got += consumer
            .poll(std::time::Duration::from_millis(100))
            .expect("poll")
            .len();
    }
    // Both partitions caught up: several fetches of nulls, no error.
    for _ in 0..5 {
        let records = consumer
            .poll(std::time::Duration::from_millis(100))
            .expect("poll with caught-up partitions");
        assert!(records.is_empty());
    }
    consumer.close().expect("close");
}

odradek_tests::for_each_broker!(
    our_batches_round_trip_byte_for_byte_in_every_compression,
    fetch_at_every_common_version,
    confluent_kafka_batches_decode_exactly_in_every_compression,
);
