//! End-to-end consumer benchmark: odradek-tokio (default settings) against
//! rskafka, consuming the same topic (6 partitions, or `--partitions N` for
//! a wide one) from a local broker: tansu
//! (one partition per Fetch response, in-memory log) and crabka (every
//! partition in each response, on-disk log, so the client sets the pace).
//!
//! ```text
//! cargo bench -p odradek-tests --bench consume [-- --records N --runs N --partitions N --codecs none,lz4,zstd --brokers tansu,crabka,crabka-tls]
//! ```
//!
//! `crabka-tls` measures TLS instead: crabka with its secure listeners
//! (`odradek_tests::secure`), and Odradek reading the same topic over the
//! PLAINTEXT listener (`odradek`) and over the SSL listener (`odradek-tls`,
//! TLS 1.3 with the ring provider) in the same run.
//!
//! The parent process starts a fresh broker per broker kind and codec, creates the
//! topic and writes `N` records (100-byte values, small keys) in
//! batches of 1000 compressed with that codec, using Odradek's batch encoder
//! and the blocking test driver (one Produce per batch, batch `b` to
//! partition `b % partitions`). Then it runs each client in its own child process (this
//! binary re-executed with `--child CLIENT ...`), alternating which client goes
//! first, so peak RSS and CPU time belong to one client only. A child reads
//! every partition from offset 0 (assign mode), touches each record's key and
//! value, checks that each partition's offsets arrive exactly once and in
//! order up to the produced end, and prints one JSON line:
//!
//! * `wall_s`: from just before the client is created (bootstrap, metadata,
//!   offset lookup included) to the last record processed;
//! * `cpu_s`: the CPU time of all the child's threads over that same window,
//!   from `/proc/self/task/*/schedstat` (nanoseconds); `cpu_ticks_s` is the
//!   same from `/proc/self/stat` (user + system, 10 ms ticks) as a check;
//!   `cpu_by_thread_s` splits it by thread name (`main` runs the poll loop);
//! * `peak_rss_kib`: `VmHWM` from `/proc/self/status` after the last record;
//! * `peak_heap_kib`: the most heap the child held at once, from a counting
//!   global allocator (`cap`).
//!
//! The parent also samples the broker's CPU (`/proc/PID/stat`) around each
//! child, and prints `/proc/loadavg` at the start and the end. Environment
//! variables `ODRADEK_BENCH_RECORDS`, `ODRADEK_BENCH_RUNS`,
//! `ODRADEK_BENCH_PARTITIONS`, `ODRADEK_BENCH_CODECS` and
//! `ODRADEK_BENCH_BROKERS` set the same knobs as the flags (defaults:
//! 5,000,000 records (fewer are dominated by start-up at these rates), 3
//! runs per client, 6 partitions, none,lz4,zstd, tansu,crabka); `--hold` pauses
//! after producing each topic (until a line on stdin) and prints the child
//! command line, to run a client by hand under a profiler.
//!
//! A child can be run by hand (for example under `perf`) against a running
//! broker: `consume --child odradek --bootstrap 127.0.0.1:PORT --topic T
//! --expect 166000,166000,...` (the end offset of each partition).

use std::collections::BTreeMap;
use std::error::Error;
use std::fs;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_tests::driver::Connection;
use odradek_tests::{Broker, BrokerKind, run_with_timeout};
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

/// The topic's partitions unless `--partitions` says otherwise.
const DEFAULT_PARTITIONS: i32 = 6;

/// Every allocation of a child counted, for its peak heap (both clients run
/// under the same allocator, so the cost is the same for each).
#[global_allocator]
static HEAP: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);
const BATCH: usize = 1000;
const VALUE_SIZE: usize = 100;
/// Bounds one client run (child process).
const CHILD_TIMEOUT: Duration = Duration::from_secs(300);
/// rskafka's fetch size, comparable to Odradek's default `fetch.max.bytes`.
const RSKAFKA_MAX_BYTES: i32 = 52_428_800;
/// rskafka's fetch wait, Odradek's default `fetch.max.wait.ms`.
const RSKAFKA_MAX_WAIT_MS: i32 = 500;
/// Linux `USER_HZ`, the unit of utime/stime in `/proc/*/stat`.
const CLOCK_TICKS_PER_S: f64 = 100.0;
const CLIENTS: [&str; 2] = ["odradek", "rskafka"];
/// The clients of a `crabka-tls` run: Odradek without and with TLS.
const TLS_CLIENTS: [&str; 2] = ["odradek", "odradek-tls"];

/// Where a run reads from.
#[derive(Clone, Copy)]
enum Target {
    /// A plain broker: Odradek against rskafka.
    Broker(BrokerKind),
    /// crabka's PLAINTEXT and SSL listeners: Odradek without and with TLS.
    CrabkaTls,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Broker(kind) => write!(f, "{kind}"),
            Target::CrabkaTls => f.write_str("crabka-tls"),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..])
    } else {
        parent(&args)
    };
    if let Err(e) = result {
        eprintln!("consume bench failed: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Parent: produce, run the children, print the tables
// ---------------------------------------------------------------------------

struct Settings {
    records: usize,
    partitions: i32,
    runs: usize,
    codecs: Vec<Compression>,
    brokers: Vec<Target>,
    /// After producing, print the child command and wait for a line on
    /// stdin before running the clients (to run a child under a profiler).
    hold: bool,
}

fn settings(args: &[String]) -> Res<Settings> {
    let env = |k: &str| std::env::var(k).ok();
    let mut records = env("ODRADEK_BENCH_RECORDS");
    let mut runs = env("ODRADEK_BENCH_RUNS");
    let mut codecs = env("ODRADEK_BENCH_CODECS");
    let mut brokers = env("ODRADEK_BENCH_BROKERS");
    let mut partitions = env("ODRADEK_BENCH_PARTITIONS");
    let mut hold = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--records" => &mut records,
            "--runs" => &mut runs,
            "--codecs" => &mut codecs,
            "--brokers" => &mut brokers,
            "--partitions" => &mut partitions,
            "--hold" => {
                hold = true;
                continue;
            }
            // `cargo bench` passes `--bench`; ignore it and anything else.
            _ => continue,
        };
        *slot = it.next().cloned();
    }
    let codecs = codecs
        .unwrap_or_else(|| "none,lz4,zstd".into())
        .split(',')
        .map(|c| match c.trim() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!("unknown codec {other:?}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let brokers = brokers
        .unwrap_or_else(|| "tansu,crabka".into())
        .split(',')
        .map(|b| match b.trim() {
            "tansu" => Ok(Target::Broker(BrokerKind::Tansu)),
            "crabka" => Ok(Target::Broker(BrokerKind::Crabka)),
            "crabka-tls" => Ok(Target::CrabkaTls),
            other => Err(format!("unknown broker {other:?}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Settings {
        records: records.map_or(Ok(5_000_000), |r| r.parse())?,
        partitions: partitions
            .map_or(Ok(DEFAULT_PARTITIONS), |p| p.parse())?
            .max(1),
        runs: runs.map_or(Ok(3), |r| r.parse())?.max(1),
        codecs,
        brokers,
        hold,
    })
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unavailable ({e})"))
}

fn parent(args: &[String]) -> Res<()> {
    let settings = settings(args)?;
    println!("load at start (/proc/loadavg): {}", loadavg());
    println!(
        "{} records per codec, {VALUE_SIZE}-byte values, {} partitions, batches of {BATCH}; \
         {} runs per client, medians shown",
        settings.records, settings.partitions, settings.runs
    );
    let mut verdicts = Vec::new();
    for &kind in &settings.brokers {
        for &codec in &settings.codecs {
            verdicts.push((kind, bench_codec(kind, codec, &settings)?));
        }
    }
    println!("load at end (/proc/loadavg): {}", loadavg());
    println!();
    for (kind, (codec, rate_ratio, cpu_ratio)) in &verdicts {
        if matches!(kind, Target::CrabkaTls) {
            println!(
                "{kind:>10} {codec:>5}: odradek with TLS / without: records/s {rate_ratio:.2}x, \
                 CPU per record {cpu_ratio:.2}x"
            );
            continue;
        }
        let ok = *rate_ratio >= 1.2 && *cpu_ratio <= 0.5;
        println!(
            "{kind:>6} {codec:>5}: odradek/rskafka records/s {rate_ratio:.2}x (goal >= 1.20x), \
             CPU per record {cpu_ratio:.2}x (goal <= 0.50x): {}",
            if ok { "met" } else { "MISSED" }
        );
    }
    Ok(())
}

/// One client run as reported by the child, plus the broker's CPU meanwhile.
struct Run {
    json: Value,
    broker_cpu_s: f64,
}

impl Run {
    fn f(&self, key: &str) -> f64 {
        self.json
            .get(key)
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN)
    }
    fn rate(&self) -> f64 {
        self.f("records") / self.f("wall_s")
    }
    fn mb_s(&self) -> f64 {
        self.f("value_bytes") / self.f("wall_s") / 1e6
    }
    fn cpu_per_m(&self) -> f64 {
        self.f("cpu_s") / self.f("records") * 1e6
    }
    fn rss_mib(&self) -> f64 {
        self.f("peak_rss_kib") / 1024.0
    }
    fn heap_mib(&self) -> f64 {
        self.f("peak_heap_kib") / 1024.0
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn bench_codec(
    kind: Target,
    codec: Compression,
    settings: &Settings,
) -> Res<(&'static str, f64, f64)> {
    let name = codec.name();
    let topic = format!("bench-consume-{name}");
    // A fresh broker per codec keeps tansu's memory storage small.
    let (plain, secure) = match kind {
        Target::Broker(kind) => (Some(Broker::start(kind)?), None),
        Target::CrabkaTls => (None, Some(odradek_tests::secure::SecureBroker::start()?)),
    };
    let broker: &Broker = match (&plain, &secure) {
        (Some(b), _) => b,
        (None, Some(s)) => s,
        (None, None) => return Err("no broker started".into()),
    };
    let tls = secure.is_some();
    let clients = if tls { TLS_CLIENTS } else { CLIENTS };
    broker.create_topic(&topic, settings.partitions as u32)?;
    let started = Instant::now();
    let ends = produce(broker, &topic, codec, settings.records, settings.partitions)?;
    let produce_s = started.elapsed().as_secs_f64();
    // A wide topic's list of end offsets would fill the screen.
    let shown_ends = if ends.len() <= 12 {
        format!("{ends:?}")
    } else {
        let min = ends.iter().min().copied().unwrap_or_default();
        let max = ends.iter().max().copied().unwrap_or_default();
        format!("{} partitions, {min}..{max} each", ends.len())
    };
    println!();
    println!(
        "== {kind}, codec {name}: produced {} records to {topic} in {produce_s:.1} s; end offsets {shown_ends}; \
         broker RSS {:.0} MiB",
        settings.records,
        broker
            .pid()
            .and_then(|p| status_kib(&format!("/proc/{p}/status"), "VmRSS:"))
            .unwrap_or(0) as f64
            / 1024.0
    );
    let expect = ends
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe()?;
    if settings.hold {
        println!(
            "holding: {} --child CLIENT --bootstrap {} --topic {topic} --expect {expect}\n\
             (press enter to go on)",
            exe.display(),
            broker.bootstrap()
        );
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
    }
    let mut runs: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    for i in 0..settings.runs {
        let order = if i % 2 == 0 {
            clients
        } else {
            [clients[1], clients[0]]
        };
        for client in order {
            let broker_cpu0 = broker.pid().and_then(proc_cpu_ticks).unwrap_or(0);
            let mut cmd = Command::new(&exe);
            cmd.args(["--child", client, "--topic", &topic, "--expect", &expect]);
            match (&secure, client) {
                (Some(secure), "odradek-tls") => cmd
                    .args(["--bootstrap", &secure.ssl(), "--ca"])
                    .arg(secure.ca_pem()),
                _ => cmd.args(["--bootstrap", &broker.bootstrap()]),
            };
            let out = run_with_timeout(&mut cmd, CHILD_TIMEOUT)?;
            let broker_cpu1 = broker.pid().and_then(proc_cpu_ticks).unwrap_or(0);
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(format!(
                    "{client} child ({name}, run {i}) failed with {}: {}{}",
                    out.status,
                    stdout.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
                .into());
            }
            let line = stdout
                .lines()
                .rev()
                .find(|l| l.starts_with('{'))
                .ok_or_else(|| format!("{client} child printed no JSON: {stdout}"))?;
            let run = Run {
                json: serde_json::from_str(line)?,
                broker_cpu_s: (broker_cpu1 - broker_cpu0) as f64 / CLOCK_TICKS_PER_S,
            };
            println!(
                "  run {i} {client:<8} {:>9.0} records/s  wall {:.3} s  cpu {:.3} s (ticks {:.2})  \
                 rss {:.0} MiB  broker cpu {:.2} s  first record after {:.3} s  threads [{}]",
                run.rate(),
                run.f("wall_s"),
                run.f("cpu_s"),
                run.f("cpu_ticks_s"),
                run.rss_mib(),
                run.broker_cpu_s,
                run.f("first_record_s"),
                run.json
                    .get("cpu_by_thread_s")
                    .and_then(Value::as_object)
                    .map(|threads| threads
                        .iter()
                        .map(|(name, s)| format!("{name} {:.3}", s.as_f64().unwrap_or(0.0)))
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
            );
            runs.entry(client).or_default().push(run);
        }
    }
    drop(plain);
    drop(secure);
    // Both clients must have seen the same data, not only the same offsets.
    let fingerprint = |r: &Run| {
        ["checksum", "key_bytes", "value_bytes"].map(|k| r.json.get(k).and_then(Value::as_u64))
    };
    let first = fingerprint(&runs["odradek"][0]);
    if let Some(bad) = runs.values().flatten().find(|r| fingerprint(r) != first) {
        return Err(format!(
            "clients disagree on the data read: {:?} vs {first:?}",
            fingerprint(bad)
        )
        .into());
    }

    let med = |client: &str, f: &dyn Fn(&Run) -> f64| median(runs[client].iter().map(f).collect());
    println!();
    println!(
        "  {:<10} {:>12} {:>9} {:>14} {:>14} {:>15} {:>9} {:>15}",
        "client",
        "records/s",
        "MB/s",
        "CPU s/M rec",
        "peak RSS MiB",
        "peak heap MiB",
        "wall s",
        "broker CPU s"
    );
    for client in clients {
        println!(
            "  {:<11} {:>12.0} {:>9.1} {:>14.3} {:>14.1} {:>15.1} {:>9.3} {:>15.2}",
            client,
            med(client, &Run::rate),
            med(client, &Run::mb_s),
            med(client, &Run::cpu_per_m),
            med(client, &Run::rss_mib),
            med(client, &Run::heap_mib),
            med(client, &|r| r.f("wall_s")),
            med(client, &|r| r.broker_cpu_s),
        );
    }
    let [first, second] = if tls {
        ["odradek-tls", "odradek"]
    } else {
        ["odradek", "rskafka"]
    };
    let rate_ratio = med(first, &Run::rate) / med(second, &Run::rate);
    let cpu_ratio = med(first, &Run::cpu_per_m) / med(second, &Run::cpu_per_m);
    println!(
        "  {first}/{second}: records/s {rate_ratio:.2}x, CPU per record {cpu_ratio:.2}x, peak RSS {:.2}x",
        med(first, &Run::rss_mib) / med(second, &Run::rss_mib)
    );
    Ok((name, rate_ratio, cpu_ratio))
}

/// Key of record `i`.
fn key(i: usize) -> String {
    format!("key-{i}")
}

/// Value of record `i`: 100 bytes of JSON-like text whose tail is
/// pseudo-random letters, so compression has real work but no free lunch.
fn value(i: usize) -> Vec<u8> {
    let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let events = ["click", "view", "purchase", "scroll"];
    let mut v = format!(
        "{{\"id\":{i},\"user\":\"user-{:05}\",\"event\":\"{}\",\"amount\":{},\"note\":\"",
        next() % 100_000,
        events[(next() % 4) as usize],
        next() % 10_000
    )
    .into_bytes();
    while v.len() < VALUE_SIZE - 2 {
        v.push(b'a' + (next() % 26) as u8);
    }
    v.truncate(VALUE_SIZE - 2);
    v.extend_from_slice(b"\"}");
    v
}

/// Writes `total` records in batches of [`BATCH`], batch `b` to partition
/// `b % partitions`; returns each partition's end offset.
fn produce(
    broker: &Broker,
    topic: &str,
    codec: Compression,
    total: usize,
    partitions: i32,
) -> Res<Vec<i64>> {
    let mut conn = Connection::connect(broker.addr())?;
    let mut ends = vec![0i64; partitions as usize];
    let mut written = 0;
    let mut batch_no = 0usize;
    while written < total {
        let partition = (batch_no % partitions as usize) as i32;
        let count = BATCH.min(total - written);
        let batch = RecordBatchBuilder::new(0)
            .compression(codec)
            .records((written..written + count).map(|i| {
                NewRecord::new()
                    .with_key(key(i))
                    .with_value(value(i))
                    .with_timestamp(1_700_000_000_000 + i as i64)
            }))
            .encode()?;
        let base = conn.produce(topic, partition, batch)?;
        let end = &mut ends[partition as usize];
        if base != *end {
            return Err(format!(
                "produce to partition {partition}: base offset {base} (expected {end})"
            )
            .into());
        }
        *end += count as i64;
        written += count;
        batch_no += 1;
    }
    Ok(ends)
}

// ---------------------------------------------------------------------------
// Child: one client, one run
// ---------------------------------------------------------------------------

/// `utime + stime` of a process, in clock ticks.
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    stat_cpu_ticks(&format!("/proc/{pid}/stat"))
}

fn stat_cpu_ticks(path: &str) -> Option<u64> {
    let stat = fs::read_to_string(path).ok()?;
    // Fields after the parenthesised command name start at field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// On-CPU time of every thread of this process, in nanoseconds, from
/// `/proc/self/task/*/schedstat` (exact, unlike the 10 ms ticks of
/// `/proc/self/stat`; a thread that exits takes its time with it, which
/// the runtimes here do not do within a run).
fn threads_cpu_ns() -> Option<BTreeMap<u64, (String, u64)>> {
    let mut threads = BTreeMap::new();
    for task in fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        let tid = dir.file_name()?.to_str()?.parse().ok()?;
        let text = fs::read_to_string(dir.join("schedstat")).ok()?;
        let ns = text.split_whitespace().next()?.parse::<u64>().ok()?;
        let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
        threads.insert(tid, (name.trim().to_string(), ns));
    }
    Some(threads)
}

/// CPU seconds per thread name between two [`threads_cpu_ns`] snapshots
/// (the main thread, which runs the poll loop, is `main`).
fn cpu_by_thread(
    before: &BTreeMap<u64, (String, u64)>,
    after: &BTreeMap<u64, (String, u64)>,
) -> BTreeMap<String, f64> {
    let main_tid = u64::from(std::process::id());
    let mut by_name = BTreeMap::new();
    for (tid, (name, ns)) in after {
        let start = before.get(tid).map_or(0, |(_, ns)| *ns);
        let name = if *tid == main_tid {
            "main"
        } else {
            name.as_str()
        };
        *by_name.entry(name.to_string()).or_insert(0.0) += ns.saturating_sub(start) as f64 / 1e9;
    }
    by_name
}

/// A `kB` line (`VmHWM:`, `VmRSS:`) of a `/proc/*/status` file.
fn status_kib(path: &str, field: &str) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What a client saw, checked as it arrives.
struct Tally {
    /// The next offset expected per partition.
    next: Vec<i64>,
    /// The end offset per partition.
    ends: Vec<i64>,
    records: u64,
    key_bytes: u64,
    value_bytes: u64,
    /// Sum of every key's last byte and every value's middle byte, so
    /// each record's data is really read.
    checksum: u64,
    first_record: Option<Instant>,
}

impl Tally {
    fn new(ends: &[i64]) -> Self {
        Tally {
            next: vec![0; ends.len()],
            ends: ends.to_vec(),
            records: 0,
            key_bytes: 0,
            value_bytes: 0,
            checksum: 0,
            first_record: None,
        }
    }

    fn done(&self) -> bool {
        self.next == self.ends
    }

    #[inline]
    fn record(
        &mut self,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
    ) -> Res<()> {
        let p = partition as usize;
        let expected = *self
            .next
            .get(p)
            .ok_or_else(|| format!("record from unexpected partition {partition}"))?;
        if offset != expected || offset >= self.ends[p] {
            return Err(format!(
                "partition {partition}: got offset {offset}, expected {expected} (end {})",
                self.ends[p]
            )
            .into());
        }
        self.next[p] = offset + 1;
        self.records += 1;
        self.key_bytes += key.map_or(0, <[u8]>::len) as u64;
        let value = value.unwrap_or_default();
        self.value_bytes += value.len() as u64;
        let key_byte = key.and_then(<[u8]>::last).copied().unwrap_or(0);
        let value_byte = value.get(value.len() / 2).copied().unwrap_or(0);
        self.checksum = self
            .checksum
            .wrapping_add(u64::from(key_byte) + u64::from(value_byte));
        if self.first_record.is_none() {
            self.first_record = Some(Instant::now());
        }
        Ok(())
    }

    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.next.iter_mut().zip(&other.next) {
            *mine = (*mine).max(*theirs);
        }
        self.records += other.records;
        self.key_bytes += other.key_bytes;
        self.value_bytes += other.value_bytes;
        self.checksum = self.checksum.wrapping_add(other.checksum);
        self.first_record = match (self.first_record, other.first_record) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

fn child(args: &[String]) -> Res<()> {
    let client = args.first().ok_or("--child needs a client name")?.clone();
    let mut bootstrap = None;
    let mut topic = None;
    let mut expect = None;
    let mut ca = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let v = it.next().cloned();
        match a.as_str() {
            "--bootstrap" => bootstrap = v,
            "--topic" => topic = v,
            "--expect" => expect = v,
            "--ca" => ca = v,
            other => return Err(format!("unknown child argument {other}").into()),
        }
    }
    let bootstrap = bootstrap.ok_or("--bootstrap missing")?;
    let topic = topic.ok_or("--topic missing")?;
    let ends = expect
        .ok_or("--expect missing")?
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<i64>, _>>()?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let cpu0 = stat_cpu_ticks("/proc/self/stat").ok_or("no /proc/self/stat")?;
    let cpu_ns0 = threads_cpu_ns();
    let tally = match client.as_str() {
        "odradek" => runtime.block_on(run_odradek(&bootstrap, &topic, &ends, None))?,
        "odradek-tls" => {
            let ca = ca.ok_or("odradek-tls needs --ca")?;
            runtime.block_on(run_odradek(&bootstrap, &topic, &ends, Some(&ca)))?
        }
        "rskafka" => runtime.block_on(run_rskafka(&bootstrap, &topic, &ends))?,
        other => return Err(format!("unknown client {other}").into()),
    };
    let wall = started.elapsed();
    let cpu1 = stat_cpu_ticks("/proc/self/stat").ok_or("no /proc/self/stat")?;
    let cpu_ns1 = threads_cpu_ns();
    let by_thread = cpu_ns0
        .as_ref()
        .zip(cpu_ns1.as_ref())
        .map(|(a, b)| cpu_by_thread(a, b));
    let peak_rss = status_kib("/proc/self/status", "VmHWM:").unwrap_or(0);
    if !tally.done() {
        return Err(format!(
            "incomplete: next offsets {:?}, ends {:?}",
            tally.next, tally.ends
        )
        .into());
    }
    let expected: i64 = ends.iter().sum();
    if tally.records != expected as u64 {
        return Err(format!("{} records, expected {expected}", tally.records).into());
    }
    println!(
        "{}",
        json!({
            "client": client,
            "records": tally.records,
            "key_bytes": tally.key_bytes,
            "value_bytes": tally.value_bytes,
            "checksum": tally.checksum,
            "wall_s": wall.as_secs_f64(),
            "first_record_s": tally.first_record.map(|t| (t - started).as_secs_f64()),
            "cpu_s": match &by_thread {
                Some(threads) => threads.values().sum(),
                None => (cpu1 - cpu0) as f64 / CLOCK_TICKS_PER_S,
            },
            "cpu_by_thread_s": by_thread,
            "cpu_ticks_s": (cpu1 - cpu0) as f64 / CLOCK_TICKS_PER_S,
            "peak_rss_kib": peak_rss,
            "peak_heap_kib": HEAP.max_allocated() / 1024,
        })
    );
    // Shut down without waiting for background tasks (rskafka's
    // connection task, Odradek's driver after close).
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

/// Odradek's tokio consumer with default settings, `poll` in a loop; over
/// TLS trusting the CA file `ca` if given.
async fn run_odradek(bootstrap: &str, topic: &str, ends: &[i64], ca: Option<&str>) -> Res<Tally> {
    use odradek_tokio::{Consumer, OffsetReset, TopicPartition};
    let started = Instant::now();
    let mut builder = Consumer::builder()
        .bootstrap_servers(bootstrap)
        .auto_offset_reset(OffsetReset::Earliest);
    if let Some(ca) = ca {
        builder = builder
            .property("security.protocol", "SSL")
            .property("ssl.ca.location", ca);
    }
    let consumer = builder.build()?;
    let topic: Arc<str> = topic.into();
    consumer.assign((0..ends.len() as i32).map(|p| TopicPartition::new(topic.clone(), p)))?;
    let mut tally = Tally::new(ends);
    while !tally.done() {
        if started.elapsed() > CHILD_TIMEOUT {
            return Err(format!("timed out with {} records", tally.records).into());
        }
        let records = consumer.poll(Duration::from_millis(500)).await?;
        for record in &records {
            tally.record(
                record.partition(),
                record.offset(),
                record.key(),
                record.value(),
            )?;
        }
    }
    // Dropping closes the consumer in the background, outside the window.
    drop(consumer);
    Ok(tally)
}

/// rskafka: one partition client per partition, each a fetch loop in its
/// own task over the client's shared broker connection.
async fn run_rskafka(bootstrap: &str, topic: &str, ends: &[i64]) -> Res<Tally> {
    use rskafka::client::ClientBuilder;
    use rskafka::client::partition::UnknownTopicHandling;
    let started = Instant::now();
    let client = ClientBuilder::new(vec![bootstrap.to_string()])
        .build()
        .await?;
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..ends.len() as i32 {
        let partition = client
            .partition_client(topic.to_string(), p, UnknownTopicHandling::Retry)
            .await?;
        let ends = ends.to_vec();
        tasks.spawn(async move {
            let mut tally = Tally::new(&ends);
            let end = ends[p as usize];
            let mut offset = 0;
            while offset < end {
                if started.elapsed() > CHILD_TIMEOUT {
                    return Err(BoxError::from(format!(
                        "partition {p} timed out at {offset}"
                    )));
                }
                let (records, _high_watermark) = partition
                    .fetch_records(offset, 1..RSKAFKA_MAX_BYTES, RSKAFKA_MAX_WAIT_MS)
                    .await?;
                for r in &records {
                    tally.record(
                        p,
                        r.offset,
                        r.record.key.as_deref(),
                        r.record.value.as_deref(),
                    )?;
                    offset = r.offset + 1;
                }
            }
            Ok(tally)
        });
    }
    let mut total = Tally::new(ends);
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined??);
    }
    Ok(total)
}
