//! Consumer-group benchmark: odradek-tokio group members against a local
//! tansu broker.
//!
//! ```text
//! cargo bench -p odradek-tests --bench group [-- --runs N --records N --session-ms MS --heartbeat-ms MS --only first,steady,rebalance]
//! ```
//!
//! Every member is an `odradek_tokio::Consumer` with default settings except
//! what a group needs: `group.id` (a fresh one per run), `auto.offset.reset`
//! earliest, `session.timeout.ms` 6000 and `heartbeat.interval.ms` 2000
//! (tansu holds each JoinGroup for half the session timeout, so the session
//! sets the pace of every join; the project's broker notes), and for the
//! rebalance runs `partition.assignment.strategy`. The members are tasks on
//! one multi-thread tokio runtime in this process, each polling in a loop
//! (100 ms poll timeout) and stamping what it gets with the time `poll`
//! returned. Measurements, each repeated `--runs` times (default 5), with the
//! median, minimum and maximum:
//!
//! * **first**: time to first record. One member joins an empty group on a
//!   pre-produced topic: `subscribe` → its first assignment (`assigned_s`)
//!   and → its first record (`first_record_s`).
//! * **steady**: three members subscribe at once to a topic holding
//!   `--records` (default 1,000,000) records of 100-byte values, uncompressed,
//!   over 12 partitions. Each member pauses the partitions it is assigned
//!   (in its rebalance listener) until the three assignments cover every
//!   partition with none shared (`settled_s` after the `subscribe` calls);
//!   then all are resumed and the window opens. It closes with the last
//!   record; records/s is what the group delivered in that window
//!   (`pre_window`, records delivered before it, must be 0).
//! * **rebalance** (`range`, eager, and `cooperative-sticky`): a producer
//!   writes 10 records to each of the 12 partitions every 10 ms; two members
//!   consume until they have shared the partitions for 2 s, then a third
//!   subscribes. `rebalance_s` runs from that `subscribe` until every
//!   partition is consumed again under the new assignment: the three members
//!   own all partitions with none shared, and each partition was delivered a
//!   record after the `subscribe` and after it was last assigned to its
//!   owner (a partition a cooperative member keeps need not move).
//!   `join_s` is `subscribe` → the third member's first assignment.
//!
//! Offsets are checked as they arrive: per partition, a gap (a record
//! skipped) fails the run and a repeated offset is counted as a duplicate.
//! The bench prints `/proc/loadavg` at the start and the end, a line per run,
//! a table, and a JSON summary as its last line.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use odradek_core::protocol::messages::ProduceRequest;
use odradek_core::protocol::messages::produce::{PartitionProduceData, TopicProduceData};
use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_tests::driver::Connection;
use odradek_tests::{Broker, BrokerKind};
use odradek_tokio::{
    Consumer, ConsumerRecords, RebalanceContext, RebalanceListener, TopicPartition,
};
use serde_json::{Value, json};

type BoxError = Box<dyn Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

const PARTITIONS: i32 = 12;
const BATCH: usize = 1000;
const VALUE_SIZE: usize = 100;
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Bounds each phase of a run (joining, consuming, rebalancing).
const PHASE_TIMEOUT: Duration = Duration::from_secs(90);
/// The rebalance runs' producer: records per partition per round, and the
/// time between rounds.
const LIVE_BATCH: usize = 10;
const LIVE_INTERVAL: Duration = Duration::from_millis(10);
/// How long two members consume side by side before the third joins.
const STEADY_BEFORE_JOIN: Duration = Duration::from_secs(2);
/// How often the orchestrator looks at the group.
const CHECK_EVERY: Duration = Duration::from_millis(5);
const STRATEGIES: [&str; 2] = ["range", "cooperative-sticky"];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = runtime.block_on(run(&args)) {
        eprintln!("group bench failed: {e}");
        std::process::exit(1);
    }
}

struct Settings {
    runs: usize,
    records: usize,
    session_ms: u64,
    heartbeat_ms: u64,
    only: BTreeSet<String>,
}

fn settings(args: &[String]) -> Res<Settings> {
    let env = |k: &str| std::env::var(k).ok();
    let mut runs = env("ODRADEK_BENCH_RUNS");
    let mut records = env("ODRADEK_BENCH_RECORDS");
    let mut session = None;
    let mut heartbeat = None;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let slot = match a.as_str() {
            "--runs" => &mut runs,
            "--records" => &mut records,
            "--session-ms" => &mut session,
            "--heartbeat-ms" => &mut heartbeat,
            "--only" => &mut only,
            // `cargo bench` passes `--bench`; ignore it and anything else.
            _ => continue,
        };
        *slot = it.next().cloned();
    }
    let only: BTreeSet<String> = only
        .unwrap_or_else(|| "first,steady,rebalance".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    if let Some(bad) = only
        .iter()
        .find(|m| !["first", "steady", "rebalance"].contains(&m.as_str()))
    {
        return Err(format!("unknown measurement {bad:?} (first, steady, rebalance)").into());
    }
    Ok(Settings {
        runs: runs.map_or(Ok(5), |r| r.parse())?.max(1),
        records: records.map_or(Ok(1_000_000), |r| r.parse())?,
        session_ms: session.map_or(Ok(6000), |r| r.parse())?,
        heartbeat_ms: heartbeat.map_or(Ok(2000), |r| r.parse())?,
        only,
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("unavailable ({e})"))
}

async fn run(args: &[String]) -> Res<()> {
    let settings = settings(args)?;
    let load_start = loadavg();
    println!("load at start (/proc/loadavg): {load_start}");
    println!(
        "odradek-tokio group members; session.timeout.ms {}, heartbeat.interval.ms {}; \
         {} runs per measurement",
        settings.session_ms, settings.heartbeat_ms, settings.runs
    );
    let mut summary = serde_json::Map::new();
    let mut table = Vec::new();

    if settings.only.contains("first") || settings.only.contains("steady") {
        // One broker and one pre-produced topic serve both; every run is a
        // fresh group reading it from the start.
        let broker = Broker::start(BrokerKind::Tansu)?;
        let topic = "bench-group-steady";
        broker.create_topic(topic, PARTITIONS as u32)?;
        let started = Instant::now();
        let ends = produce_backlog(&broker, topic, settings.records)?;
        println!(
            "\nproduced {} records ({VALUE_SIZE}-byte values, uncompressed) to {PARTITIONS} \
             partitions in {:.1} s",
            settings.records,
            started.elapsed().as_secs_f64()
        );
        if settings.only.contains("first") {
            println!("\n== first: one member joins an empty group");
            let mut runs = Vec::new();
            for i in 0..settings.runs {
                let run = first_record(&broker, topic, &settings, i).await?;
                println!(
                    "  run {i}: assigned after {:.3} s, first record after {:.3} s",
                    run["assigned_s"].as_f64().unwrap_or(f64::NAN),
                    run["first_record_s"].as_f64().unwrap_or(f64::NAN),
                );
                runs.push(run);
            }
            table.push(stat_row("first", "assigned_s", &runs));
            table.push(stat_row("first", "first_record_s", &runs));
            summary.insert("first".into(), json!({ "runs": runs }));
        }
        if settings.only.contains("steady") {
            println!(
                "\n== steady: three members share {} records",
                settings.records
            );
            let mut runs = Vec::new();
            for i in 0..settings.runs {
                let run = steady(&broker, topic, &ends, &settings, i).await?;
                println!(
                    "  run {i}: {:.0} records/s over {:.3} s ({} records in the window, {} before); \
                     all assigned {:.3} s after subscribe; {} duplicates; per member {}",
                    run["records_per_s"].as_f64().unwrap_or(f64::NAN),
                    run["window_s"].as_f64().unwrap_or(f64::NAN),
                    run["window_records"],
                    run["pre_window"],
                    run["settled_s"].as_f64().unwrap_or(f64::NAN),
                    run["duplicates"],
                    run["per_member"],
                );
                runs.push(run);
            }
            table.push(stat_row("steady", "records_per_s", &runs));
            table.push(stat_row("steady", "settled_s", &runs));
            summary.insert("steady".into(), json!({ "runs": runs }));
        }
    }

    if settings.only.contains("rebalance") {
        for strategy in STRATEGIES {
            // A fresh broker per strategy keeps tansu's memory small.
            let broker = Broker::start(BrokerKind::Tansu)?;
            println!("\n== rebalance, {strategy}: a third member joins two consuming ones");
            let mut runs = Vec::new();
            for i in 0..settings.runs {
                let run = rebalance(&broker, strategy, &settings, i).await?;
                println!(
                    "  run {i}: every partition consuming again after {:.3} s; new member \
                     assigned after {:.3} s; two-member group formed in {:.3} s; \
                     {} duplicates; final {}",
                    run["rebalance_s"].as_f64().unwrap_or(f64::NAN),
                    run["join_s"].as_f64().unwrap_or(f64::NAN),
                    run["two_settled_s"].as_f64().unwrap_or(f64::NAN),
                    run["duplicates"],
                    run["final_assignment"],
                );
                runs.push(run);
            }
            let label = format!("rebalance {strategy}");
            table.push(stat_row(&label, "rebalance_s", &runs));
            table.push(stat_row(&label, "join_s", &runs));
            summary.insert(format!("rebalance_{strategy}"), json!({ "runs": runs }));
        }
    }

    let load_end = loadavg();
    println!("\nload at end (/proc/loadavg): {load_end}");
    println!(
        "\n  {:<30} {:<16} {:>12} {:>12} {:>12}",
        "measurement", "metric", "median", "min", "max"
    );
    for row in &table {
        println!(
            "  {:<30} {:<16} {:>12} {:>12} {:>12}",
            row["measurement"].as_str().unwrap_or_default(),
            row["metric"].as_str().unwrap_or_default(),
            format_stat(&row["median"]),
            format_stat(&row["min"]),
            format_stat(&row["max"]),
        );
    }
    summary.insert("table".into(), Value::Array(table));
    summary.insert("loadavg_start".into(), load_start.into());
    summary.insert("loadavg_end".into(), load_end.into());
    summary.insert("session_timeout_ms".into(), settings.session_ms.into());
    summary.insert("heartbeat_interval_ms".into(), settings.heartbeat_ms.into());
    println!("\n{}", Value::Object(summary));
    Ok(())
}

fn format_stat(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x >= 1000.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => "-".into(),
    }
}

/// Median, minimum and maximum of `metric` over `runs`.
fn stat_row(measurement: &str, metric: &str, runs: &[Value]) -> Value {
    let mut values: Vec<f64> = runs.iter().filter_map(|r| r[metric].as_f64()).collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    };
    json!({
        "measurement": measurement,
        "metric": metric,
        "median": median,
        "min": values.first(),
        "max": values.last(),
        "runs": n,
    })
}

// ---------------------------------------------------------------------------
// The three measurements
// ---------------------------------------------------------------------------

/// One member, an empty group: subscribe → assignment → first record.
async fn first_record(broker: &Broker, topic: &str, settings: &Settings, run: usize) -> Res<Value> {
    let group = Group::new(1, None);
    let mut member = group.member(broker, &format!("first-{run}"), None, settings, 0)?;
    let subscribed = Instant::now();
    member.start(topic)?;
    let deadline = subscribed + PHASE_TIMEOUT;
    let first = loop {
        if let Some(first) = group.state().members[0].first_record {
            break first;
        }
        check(&group, deadline, "no record")?;
        tokio::time::sleep(CHECK_EVERY).await;
    };
    let assigned = group.state().members[0]
        .first_assigned
        .ok_or("a record before any assignment")?;
    group.stop_all(vec![member]).await?;
    Ok(json!({
        "assigned_s": (assigned - subscribed).as_secs_f64(),
        "first_record_s": (first - subscribed).as_secs_f64(),
    }))
}

/// Three members subscribe at once and read the backlog.
async fn steady(
    broker: &Broker,
    topic: &str,
    ends: &[i64],
    settings: &Settings,
    run: usize,
) -> Res<Value> {
    let group = Group::new(3, Some(ends.to_vec()));
    let group_id = format!("steady-{run}");
    let mut members = (0..3)
        .map(|i| group.member(broker, &group_id, None, settings, i))
        .collect::<Res<Vec<_>>>()?;
    let subscribed = Instant::now();
    for member in &mut members {
        member.start(topic)?;
    }
    let deadline = subscribed + PHASE_TIMEOUT;
    // Members pause what they are assigned until all three are in, so
    // that no member reads its share before the others have theirs.
    while !group.state().settled(3) {
        check(&group, deadline, "the group never settled")?;
        tokio::time::sleep(CHECK_EVERY).await;
    }
    group.state().window_opened = Some(Instant::now());
    for member in &members {
        member.consumer.resume(&member.consumer.paused())?;
    }
    loop {
        let read_all = group.state().next.as_slice() == ends;
        if read_all {
            break;
        }
        check(&group, deadline, "backlog not read")?;
        tokio::time::sleep(CHECK_EVERY).await;
    }
    group.stop_all(members).await?;
    let state = group.state();
    let window_open = state.window_opened.ok_or("the group never settled")?;
    let last = state.last_record.ok_or("no records")?;
    let window = (last - window_open).as_secs_f64();
    if state.pre_window_records > 0 {
        return Err(format!(
            "{} records delivered from paused partitions before the window",
            state.pre_window_records
        )
        .into());
    }
    Ok(json!({
        "records_per_s": state.window_records as f64 / window,
        "window_s": window,
        "window_records": state.window_records,
        "pre_window": state.pre_window_records,
        "settled_s": (window_open - subscribed).as_secs_f64(),
        "duplicates": state.duplicates,
        "per_member": state.members.iter().map(|m| m.records).collect::<Vec<_>>(),
    }))
}

/// Two members consume a live topic; a third joins; how long until every
/// partition is consumed again.
async fn rebalance(broker: &Broker, strategy: &str, settings: &Settings, run: usize) -> Res<Value> {
    let topic = format!("bench-group-live-{strategy}-{run}");
    broker.create_topic(&topic, PARTITIONS as u32)?;
    let producer = LiveProducer::start(broker, &topic)?;
    let group = Group::new(3, None);
    let group_id = format!("rebalance-{strategy}-{run}");
    let mut members = (0..3)
        .map(|i| group.member(broker, &group_id, Some(strategy), settings, i))
        .collect::<Res<Vec<_>>>()?;

    let started = Instant::now();
    members[0].start(&topic)?;
    members[1].start(&topic)?;
    let deadline = started + PHASE_TIMEOUT;
    while !group.state().settled(2) {
        check(&group, deadline, "two members never shared the partitions")?;
        producer.check()?;
        tokio::time::sleep(CHECK_EVERY).await;
    }
    let two_settled = started.elapsed();
    tokio::time::sleep(STEADY_BEFORE_JOIN).await;
    if !group.state().settled(2) {
        return Err("the two-member group rebalanced again on its own".into());
    }

    let joined = Instant::now();
    group.state().mark = Some(joined);
    members[2].start(&topic)?;
    let deadline = joined + PHASE_TIMEOUT;
    let done = loop {
        if let Some(done) = group.state().all_consuming_again(3) {
            break done;
        }
        check(&group, deadline, "partitions not all consuming again")?;
        producer.check()?;
        tokio::time::sleep(CHECK_EVERY).await;
    };
    let produced = producer.stop()?;
    let final_assignment: Vec<Vec<i32>> = group
        .state()
        .members
        .iter()
        .map(|m| m.owned.keys().copied().collect())
        .collect();
    group.stop_all(members).await?;
    // Frees the broker's memory for the next run.
    broker.delete_topic(&topic)?;
    let state = group.state();
    let join = state.members[2]
        .first_assigned
        .ok_or("the new member was never assigned")?;
    Ok(json!({
        "rebalance_s": (done - joined).as_secs_f64(),
        "join_s": (join - joined).as_secs_f64(),
        "two_settled_s": two_settled.as_secs_f64(),
        "duplicates": state.duplicates,
        "produced": produced,
        "final_assignment": final_assignment,
    }))
}

/// Fails on a member's error or when `deadline` has passed.
fn check(group: &Group, deadline: Instant, what: &str) -> Res<()> {
    let state = group.state();
    if let Some(failure) = &state.failure {
        return Err(failure.clone().into());
    }
    if Instant::now() > deadline {
        return Err(format!(
            "{what} after {PHASE_TIMEOUT:?}: owned {:?}, next offsets {:?}",
            state
                .members
                .iter()
                .map(|m| m.owned.keys().copied().collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            state.next
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The group's shared bookkeeping
// ---------------------------------------------------------------------------

/// Everything the members and listeners report, behind one lock (taken
/// once per poll and per rebalance callback).
struct Group {
    state: Mutex<GroupState>,
    stop: AtomicBool,
}

struct GroupState {
    members: Vec<MemberState>,
    /// The next offset expected per partition.
    next: Vec<i64>,
    duplicates: u64,
    /// Steady runs: the end offsets. Until the window opens (every member
    /// assigned), listeners pause what they are assigned.
    ends: Option<Vec<i64>>,
    window_opened: Option<Instant>,
    window_records: u64,
    pre_window_records: u64,
    /// Rebalance runs: when the joining member subscribed.
    mark: Option<Instant>,
    last_record: Option<Instant>,
    failure: Option<String>,
}

#[derive(Default)]
struct MemberState {
    /// Owned partitions, each with its first delivery after both the mark
    /// and the assignment that gave it to this member.
    owned: BTreeMap<i32, Option<Instant>>,
    first_assigned: Option<Instant>,
    first_record: Option<Instant>,
    records: u64,
}

impl GroupState {
    /// Whether the first `n` members own every partition, each a non-empty
    /// share, none twice.
    fn settled(&self, n: usize) -> bool {
        let mut owned = BTreeSet::new();
        for member in &self.members[..n] {
            if member.owned.is_empty() {
                return false;
            }
            for p in member.owned.keys() {
                if !owned.insert(*p) {
                    return false;
                }
            }
        }
        owned.len() == PARTITIONS as usize
    }

    /// When the group, settled with `n` members, had delivered a record of
    /// every partition since the mark (`None` if it has not yet).
    fn all_consuming_again(&self, n: usize) -> Option<Instant> {
        if !self.settled(n) {
            return None;
        }
        let mut last = None;
        for member in &self.members[..n] {
            for first in member.owned.values() {
                last = last.max(Some((*first)?));
            }
        }
        last
    }
}

impl Group {
    fn new(members: usize, ends: Option<Vec<i64>>) -> Arc<Group> {
        Arc::new(Group {
            state: Mutex::new(GroupState {
                members: (0..members).map(|_| MemberState::default()).collect(),
                next: vec![0; PARTITIONS as usize],
                duplicates: 0,
                ends,
                window_opened: None,
                window_records: 0,
                pre_window_records: 0,
                mark: None,
                last_record: None,
                failure: None,
            }),
            stop: AtomicBool::new(false),
        })
    }

    fn state(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A member (not yet subscribed) of group `group_id`.
    fn member(
        self: &Arc<Self>,
        broker: &Broker,
        group_id: &str,
        strategy: Option<&str>,
        settings: &Settings,
        index: usize,
    ) -> Res<Member> {
        let session = settings.session_ms.to_string();
        let heartbeat = settings.heartbeat_ms.to_string();
        let client_id = format!("{group_id}-member-{index}");
        let mut properties = vec![
            ("bootstrap.servers", broker.bootstrap()),
            ("group.id", group_id.to_string()),
            ("client.id", client_id),
            ("auto.offset.reset", "earliest".into()),
            ("session.timeout.ms", session),
            ("heartbeat.interval.ms", heartbeat),
        ];
        if let Some(strategy) = strategy {
            properties.push(("partition.assignment.strategy", strategy.into()));
        }
        Ok(Member {
            consumer: Arc::new(Consumer::from_properties(properties)?),
            group: self.clone(),
            index,
            task: None,
        })
    }

    /// Stops every member's poll loop and closes the members.
    async fn stop_all(&self, members: Vec<Member>) -> Res<()> {
        self.stop.store(true, Ordering::SeqCst);
        for member in members {
            if let Some(task) = member.task {
                task.await??;
            }
        }
        Ok(())
    }

    /// Records an assignment; returns whether the listener must pause the
    /// partitions (a steady run before its window opens).
    fn assigned(&self, index: usize, partitions: &[TopicPartition]) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        let member = &mut state.members[index];
        for tp in partitions {
            member.owned.insert(tp.partition(), None);
        }
        if !partitions.is_empty() {
            member.first_assigned.get_or_insert(now);
        }
        state.ends.is_some() && state.window_opened.is_none()
    }

    fn removed(&self, index: usize, partitions: &[TopicPartition]) {
        let mut state = self.state();
        for tp in partitions {
            state.members[index].owned.remove(&tp.partition());
        }
    }

    /// Checks and counts what one `poll` returned at `now`.
    fn delivered(&self, index: usize, records: &ConsumerRecords, now: Instant) -> Res<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut state = self.state();
        let state = &mut *state;
        let after_mark = state.mark.is_some_and(|mark| now >= mark);
        let in_window = state.window_opened.is_some();
        let member = &mut state.members[index];
        for record in records {
            let p = record.partition();
            let next = state
                .next
                .get_mut(p as usize)
                .ok_or_else(|| format!("record from unexpected partition {p}"))?;
            let offset = record.offset();
            if offset > *next {
                return Err(format!(
                    "partition {p}: offset {offset} delivered, {next} expected: records skipped"
                )
                .into());
            }
            if offset < *next {
                state.duplicates += 1;
            } else {
                *next = offset + 1;
            }
            // Touch the data, as an application would.
            if record.value().is_none_or(|v| v.len() != VALUE_SIZE) {
                return Err(format!("partition {p} offset {offset}: wrong value size").into());
            }
            if after_mark {
                if let Some(first @ None) = member.owned.get_mut(&p) {
                    *first = Some(now);
                }
            }
        }
        let count = records.len() as u64;
        member.records += count;
        member.first_record.get_or_insert(now);
        if in_window {
            state.window_records += count;
        } else {
            state.pre_window_records += count;
        }
        state.last_record = Some(now);
        Ok(())
    }
}

/// One group member: its consumer, and once subscribed, its poll loop.
struct Member {
    consumer: Arc<Consumer>,
    group: Arc<Group>,
    index: usize,
    task: Option<tokio::task::JoinHandle<Res<()>>>,
}

impl Member {
    /// Subscribes and starts polling (a task on the runtime).
    fn start(&mut self, topic: &str) -> Res<()> {
        self.consumer
            .subscribe_with_listener([topic], Probe(self.group.clone(), self.index))?;
        let (consumer, group, index) = (self.consumer.clone(), self.group.clone(), self.index);
        self.task = Some(tokio::spawn(async move {
            let result = poll_loop(&consumer, &group, index).await;
            if let Err(e) = &result {
                group
                    .state()
                    .failure
                    .get_or_insert(format!("member {index}: {e}"));
            }
            consumer.close().await?;
            result
        }));
        Ok(())
    }
}

async fn poll_loop(consumer: &Consumer, group: &Group, index: usize) -> Res<()> {
    while !group.stop.load(Ordering::SeqCst) {
        let records = consumer.poll(POLL_TIMEOUT).await?;
        group.delivered(index, &records, Instant::now())?;
    }
    Ok(())
}

/// The rebalance listener: reports the member's assignment changes.
struct Probe(Arc<Group>, usize);

impl RebalanceListener for Probe {
    fn on_partitions_assigned(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        if self.0.assigned(self.1, partitions) {
            if let Err(e) = context.pause(partitions) {
                self.0.state().failure.get_or_insert(format!("pause: {e}"));
            }
        }
    }

    fn on_partitions_revoked(
        &mut self,
        _: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.0.removed(self.1, partitions);
    }

    fn on_partitions_lost(&mut self, _: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        self.0.removed(self.1, partitions);
    }
}

// ---------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("{{\"id\":{i},\"note\":\"").into_bytes();
    v.resize(VALUE_SIZE - 2, b'a' + (i % 26) as u8);
    v.extend_from_slice(b"\"}");
    v
}

fn produce_request(topic: &str, partition_data: Vec<PartitionProduceData>) -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn batch(first: usize, count: usize) -> Res<bytes::Bytes> {
    Ok(RecordBatchBuilder::new(0)
        .compression(Compression::None)
        .records((first..first + count).map(|i| {
            NewRecord::new()
                .with_key(format!("key-{i}"))
                .with_value(value(i))
        }))
        .encode()?)
}

/// Writes `total` records in batches of [`BATCH`], batch `b` to partition
/// `b % PARTITIONS`; returns each partition's end offset.
fn produce_backlog(broker: &Broker, topic: &str, total: usize) -> Res<Vec<i64>> {
    let mut conn = Connection::connect(broker.addr())?;
    let mut ends = vec![0i64; PARTITIONS as usize];
    let mut written = 0;
    let mut batch_no = 0usize;
    while written < total {
        let partition = (batch_no % PARTITIONS as usize) as i32;
        let count = BATCH.min(total - written);
        let response = conn.send_negotiated(&produce_request(
            topic,
            vec![PartitionProduceData {
                index: partition,
                records: Some(batch(written, count)?),
            }],
        ))?;
        let p = &response.responses[0].partition_responses[0];
        if p.error_code != 0 {
            return Err(format!("produce to partition {partition}: error {}", p.error_code).into());
        }
        ends[partition as usize] += count as i64;
        written += count;
        batch_no += 1;
    }
    Ok(ends)
}

/// A thread writing [`LIVE_BATCH`] records to every partition every
/// [`LIVE_INTERVAL`], one Produce request per round.
struct LiveProducer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Res<usize>>>,
}

impl LiveProducer {
    fn start(broker: &Broker, topic: &str) -> Res<LiveProducer> {
        let mut conn = Connection::connect(broker.addr())?;
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let flag = stop.clone();
        let thread =
            thread::Builder::new()
                .name("live-producer".into())
                .spawn(move || -> Res<usize> {
                    let started = Instant::now();
                    let mut written = 0;
                    let mut round = 0u32;
                    while !flag.load(Ordering::SeqCst) {
                        let partitions = (0..PARTITIONS)
                            .map(|p| {
                                let first = written + p as usize * LIVE_BATCH;
                                Ok(PartitionProduceData {
                                    index: p,
                                    records: Some(batch(first, LIVE_BATCH)?),
                                })
                            })
                            .collect::<Res<Vec<_>>>()?;
                        let response =
                            conn.send_negotiated(&produce_request(&topic, partitions))?;
                        if let Some(bad) = response.responses[0]
                            .partition_responses
                            .iter()
                            .find(|p| p.error_code != 0)
                        {
                            return Err(format!("live produce: error {}", bad.error_code).into());
                        }
                        written += PARTITIONS as usize * LIVE_BATCH;
                        round += 1;
                        let due = started + LIVE_INTERVAL * round;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            thread::sleep(wait);
                        }
                    }
                    Ok(written)
                })?;
        Ok(LiveProducer {
            stop,
            thread: Some(thread),
        })
    }

    /// Fails if the producer thread has stopped with an error.
    fn check(&self) -> Res<()> {
        match &self.thread {
            Some(t) if t.is_finished() => Err("the live producer stopped".into()),
            _ => Ok(()),
        }
    }

    /// Stops the producer; returns how many records it wrote.
    fn stop(mut self) -> Res<usize> {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().ok_or("stopped twice")?;
        thread.join().map_err(|_| "the live producer panicked")?
    }
}

impl Drop for LiveProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
