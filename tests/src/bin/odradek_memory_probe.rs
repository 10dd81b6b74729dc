//! Consumes every record of a topic under a memory bound and prints, as
//! JSON, the most heap the consumer took: for `tests/memory_bound.rs`.
//!
//! ```text
//! odradek_memory_probe --bootstrap HOST:PORT --topic T --partitions N \
//!     --records R --bound BYTES --partition-limit BYTES \
//!     --runtime tokio|async-std|smol|blocking
//! ```
//!
//! It runs in a process of its own so that a counting allocator sees the
//! consumer alone: the peak is measured from what was allocated just
//! before the consumer was built.

use std::time::{Duration, Instant};

use odradek_core::{ConsumerConfig, OffsetReset};
use odradek_tests::suite::{
    AsyncStdConsumer, BlockingConsumer, SmolConsumer, TestConsumer, TokioConsumer, partitions,
};

#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

struct Args {
    bootstrap: String,
    topic: String,
    partitions: i32,
    records: u64,
    bound: usize,
    partition_limit: i32,
    runtime: String,
}

fn args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let mut get = std::collections::BTreeMap::new();
    while let Some(key) = raw.next() {
        let value = raw.next().ok_or(format!("{key} needs a value"))?;
        get.insert(key, value);
    }
    let mut take = |key: &str| get.remove(key).ok_or(format!("missing {key}"));
    let number = |v: String, key: &str| v.parse::<u64>().map_err(|e| format!("{key}: {e}"));
    Ok(Args {
        bootstrap: take("--bootstrap")?,
        topic: take("--topic")?,
        partitions: number(take("--partitions")?, "--partitions")? as i32,
        records: number(take("--records")?, "--records")?,
        bound: number(take("--bound")?, "--bound")? as usize,
        partition_limit: number(take("--partition-limit")?, "--partition-limit")? as i32,
        runtime: take("--runtime")?,
    })
}

fn run<C: TestConsumer>(args: &Args) -> Result<(u64, usize), String> {
    let config = ConsumerConfig::builder()
        .bootstrap_servers(args.bootstrap.as_str())
        .client_id("odradek-memory-probe")
        .auto_offset_reset(OffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(100))
        .fetch_buffer_max_bytes(args.bound)
        .max_partition_fetch_bytes(args.partition_limit)
        .build()
        .map_err(|e| e.to_string())?;
    let baseline = HEAP.allocated();
    let consumer = C::build(config).map_err(|e| e.to_string())?;
    consumer
        .assign(&partitions(&args.topic, args.partitions))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0u64;
    while seen < args.records {
        if Instant::now() > deadline {
            return Err(format!("{seen} of {} records in 120 s", args.records));
        }
        let records = consumer
            .poll(Duration::from_millis(200))
            .map_err(|e| e.to_string())?;
        seen += records.len() as u64;
    }
    consumer.close().map_err(|e| e.to_string())?;
    Ok((seen, baseline))
}

fn main() {
    let outcome = args().and_then(|args| {
        let result = match args.runtime.as_str() {
            "tokio" => run::<TokioConsumer>(&args),
            "async-std" => run::<AsyncStdConsumer>(&args),
            "smol" => run::<SmolConsumer>(&args),
            "blocking" => run::<BlockingConsumer>(&args),
            other => Err(format!("unknown runtime {other}")),
        };
        result.map(|(records, baseline)| (args, records, baseline))
    });
    match outcome {
        Ok((args, records, baseline)) => println!(
            "{}",
            serde_json::json!({
                "runtime": args.runtime,
                "records": records,
                "bound": args.bound,
                "baseline_heap": baseline,
                "peak_heap": HEAP.max_allocated(),
                "peak_over_baseline": HEAP.max_allocated().saturating_sub(baseline),
            })
        ),
        Err(e) => {
            eprintln!("odradek_memory_probe: {e}");
            std::process::exit(1);
        }
    }
}
