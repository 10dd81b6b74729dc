//! The README demo: start a local tansu broker, write sample records to a
//! 6-partition topic with Odradek's record-batch encoder and Produce codec,
//! then consume them all with the tokio consumer, showing the rates live
//! and checking every value.
//!
//! ```text
//! cargo run --release -p odradek-tests --example demo -- [RECORDS] [PARTITIONS]
//! ```

use std::io::Write;
use std::time::{Duration, Instant};

use odradek_core::protocol::messages::{
    FetchRequest, ProduceRequest,
    produce::{PartitionProduceData, TopicProduceData},
};
use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_tests::Broker;
use odradek_tests::driver::Connection;

const TOPIC: &str = "odradek-demo";
const BATCH: usize = 2_000;
const VALUE_SIZE: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(500_000);
    let partitions: i32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(6);

    eprintln!("starting tansu (installing it first if needed)...");
    let broker = Broker::start()?;
    println!("broker: tansu on {}", broker.bootstrap());
    broker.create_topic(TOPIC, partitions as u32)?;
    let mut conn = Connection::connect(broker.addr())?;
    println!(
        "topic {TOPIC}: {partitions} partitions; Produce v{}, Fetch v{}",
        conn.negotiated::<ProduceRequest>()?,
        conn.negotiated::<FetchRequest>()?
    );

    // Write: lz4 batches of BATCH records, round-robin over partitions.
    let started = Instant::now();
    let mut progress = Progress::new("produced");
    let mut written = 0;
    while written < total {
        let partition = (written / BATCH) as i32 % partitions;
        let count = BATCH.min(total - written);
        let batch = RecordBatchBuilder::new(0)
            .compression(Compression::Lz4)
            .records((written..written + count).map(|i| {
                NewRecord::new()
                    .with_key(format!("key-{i}"))
                    .with_value(value(i))
                    .with_header("source", "odradek-demo")
            }))
            .encode()?;
        let response = conn.send_negotiated(&ProduceRequest {
            acks: -1,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: TOPIC.into(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch),
                }],
                ..Default::default()
            }],
            ..Default::default()
        })?;
        let error = response.responses[0].partition_responses[0].error_code;
        if error != 0 {
            return Err(
                format!("produce to partition {partition} failed with error {error}").into(),
            );
        }
        written += count;
        progress.add(count, count * VALUE_SIZE);
    }
    progress.finish();
    let produce_time = started.elapsed();

    // Consume everything with the tokio consumer, checking every value.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (read, fetch_time, per_partition) =
        runtime.block_on(consume(&broker.bootstrap(), partitions, total))?;
    println!(
        "done: wrote {written} records in {:.2}s; the tokio consumer read {read} in {:.2}s ({:.0} records/s), every value checked",
        produce_time.as_secs_f64(),
        fetch_time.as_secs_f64(),
        read as f64 / fetch_time.as_secs_f64().max(1e-9),
    );
    println!("per partition: {per_partition:?}");
    if read != written {
        return Err(format!("read {read} records, wrote {written}").into());
    }
    Ok(())
}

/// Reads `total` records from every partition of the demo topic with
/// `odradek-tokio`, showing a live rate line.
async fn consume(
    bootstrap: &str,
    partitions: i32,
    total: usize,
) -> Result<(usize, Duration, Vec<usize>), Box<dyn std::error::Error>> {
    let consumer = odradek_tokio::Consumer::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(odradek_tokio::OffsetReset::Earliest)
        .build()?;
    consumer.assign((0..partitions).map(|p| odradek_tokio::TopicPartition::new(TOPIC, p)))?;
    let started = Instant::now();
    let mut progress = Progress::new("consumed");
    let mut per_partition = vec![0usize; partitions as usize];
    let mut read = 0;
    while read < total {
        if started.elapsed() > Duration::from_secs(120) {
            return Err(format!("only {read} of {total} records after two minutes").into());
        }
        let records = consumer.poll(Duration::from_millis(500)).await?;
        let mut bytes = 0;
        for record in &records {
            let index = index_of(record.key().unwrap_or_default())?;
            if record.value() != Some(value(index).as_bytes()) {
                return Err(format!("record {index} came back changed").into());
            }
            bytes += record.value().map_or(0, <[u8]>::len);
            per_partition[record.partition() as usize] += 1;
        }
        read += records.len();
        progress.add(records.len(), bytes);
    }
    progress.finish();
    let elapsed = started.elapsed();
    consumer.close().await?;
    Ok((read, elapsed, per_partition))
}

fn value(i: usize) -> String {
    let mut value = format!("record {i} ");
    while value.len() < VALUE_SIZE {
        value.push_str("odradek ");
    }
    value.truncate(VALUE_SIZE);
    value
}

fn index_of(key: &[u8]) -> Result<usize, Box<dyn std::error::Error>> {
    let key = std::str::from_utf8(key)?;
    Ok(key.trim_start_matches("key-").parse()?)
}

/// A live progress line: records, records/s and MB/s.
struct Progress {
    label: &'static str,
    started: Instant,
    last_print: Instant,
    records: usize,
    bytes: usize,
}

impl Progress {
    fn new(label: &'static str) -> Self {
        let now = Instant::now();
        Self {
            label,
            started: now,
            last_print: now,
            records: 0,
            bytes: 0,
        }
    }

    fn add(&mut self, records: usize, bytes: usize) {
        self.records += records;
        self.bytes += bytes;
        if self.last_print.elapsed() >= Duration::from_millis(200) {
            self.print('\r');
            self.last_print = Instant::now();
        }
    }

    fn print(&self, end: char) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        print!(
            "\r{} {:>9} records  {:>10.0} records/s  {:>7.1} MB/s{end}",
            self.label,
            self.records,
            self.records as f64 / secs,
            self.bytes as f64 / secs / 1e6
        );
        let _ = std::io::stdout().flush();
    }

    fn finish(&self) {
        self.print('\n');
    }
}
