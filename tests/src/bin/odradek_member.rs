//! One Odradek consumer-group member as a child process, for the group
//! tests: it speaks the command line and the JSON-lines protocol of
//! `tests/python/group_member.py` (read that docstring: events, `t`, stop
//! conditions, exit statuses), so a test drives an Odradek member and a
//! librdkafka or kafka-python member the same way
//! (`odradek_tests::member`).
//!
//! Differences from the Python member:
//!
//! * `--runtime tokio|async-std|smol|blocking` (default tokio) picks the
//!   adapter: `odradek-tokio`, `odradek-async-std` under async-std or smol,
//!   `odradek-blocking`. `--client` is accepted only as `odradek`.
//! * Every assignor exists, so status 3 ("unsupported") never happens.
//! * "ready" also carries `"runtime"`.
//! * The member fetches with `fetch.max.wait.ms` 100 so that records show
//!   up promptly in the tests.
//! * `--process-ms N` spends N ms "processing" after each batch, without
//!   polling (it prints `{"event": "processing", "ms": N}` first), so a
//!   test can kill a member while it works on records it was given.
//! * `--commit after-process` keeps the offsets of a commit that failed
//!   (a commit is refused while the group rebalances) and commits them
//!   with the next batch, or from the revocation callback for partitions
//!   being revoked; that commit also prints "committed". So a clean
//!   handover never processes a record twice.
//!
//! It uses nothing but the adapters' public API: a consumer built from
//! Java property names, `subscribe_with_listener` with a listener that
//! prints the rebalance events, `poll`, `commit_offsets` after processing,
//! and `close`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io::{BufRead, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use odradek_core::{
    ConsumerRecords, Error, OffsetAndMetadata, RebalanceContext, RebalanceListener, TopicPartition,
};
use serde_json::{Value, json};

/// How long one poll waits for records.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// Most records taken from one poll (`max.poll.records`).
const BATCH: usize = 500;
/// The interval of "progress" events (with `--quiet-records`).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// A non-fatal error repeated within this interval is printed once.
const ERROR_REPEAT: Duration = Duration::from_secs(5);

const USAGE: &str = "usage: odradek_member --bootstrap HOST:PORT --group G --topics T1[,T2...] \
--assignor range|roundrobin|sticky|cooperative-sticky [--runtime tokio|async-std|smol|blocking] \
[--session-timeout-ms 6000] [--heartbeat-ms 2000] [--max-records N] [--idle-exit-s S] \
[--run-s S] [--commit none|auto|after-process] [--instance-id ID] [--client-id ID] \
[--quiet-records] [--ignore-stdin] [--client odradek]";

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Seconds since the Unix epoch, as Python's `time.time()`.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Prints one event as a JSON line (adding `t`) and flushes: a test may
/// SIGKILL the member at any moment and must have seen every line printed
/// before a commit.
fn emit(mut event: Value) {
    if let Value::Object(fields) = &mut event {
        fields.entry("t").or_insert_with(|| json!(unix_now()));
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{event}").and_then(|()| out.flush()).is_err() {
        // Nobody reads any more (the test is gone): stop like a fatal error.
        request_stop("fatal");
    }
}

/// Reports an error; a non-fatal message identical to one printed less
/// than [`ERROR_REPEAT`] ago is held back and counted.
fn error(message: &str, fatal: bool) {
    static LAST: OnceLock<Mutex<HashMap<String, (Instant, u64)>>> = OnceLock::new();
    let now = Instant::now();
    let repeated = {
        let mut last = LAST
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match last.get_mut(message) {
            Some((at, held)) if !fatal && now.duration_since(*at) < ERROR_REPEAT => {
                *held += 1;
                return;
            }
            Some((at, held)) => {
                let repeated = *held;
                *at = now;
                *held = 0;
                repeated
            }
            None => {
                last.insert(message.to_string(), (now, 0));
                0
            }
        }
    };
    let mut event = json!({"event": "error", "message": message, "fatal": fatal});
    if repeated > 0 {
        event["repeated"] = json!(repeated);
    }
    emit(event);
}

fn pairs(partitions: impl IntoIterator<Item = TopicPartition>) -> Value {
    let sorted: BTreeSet<TopicPartition> = partitions.into_iter().collect();
    Value::Array(
        sorted
            .iter()
            .map(|tp| json!([tp.topic(), tp.partition()]))
            .collect(),
    )
}

// ---------------------------------------------------------------------------
// Stopping
// ---------------------------------------------------------------------------

/// Why the member stops; the first reason wins.
static STOP: OnceLock<&'static str> = OnceLock::new();

fn request_stop(reason: &'static str) {
    let _ = STOP.set(reason);
}

/// Reads stdin on a thread: "stop" stops, other lines are errors, and the
/// end of input stops unless `--ignore-stdin`.
fn watch_stdin(ignore_eof: bool) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "stop" => return request_stop("stdin-stop"),
                "" => {}
                other => error(&format!("unknown stdin command: {other:?}"), false),
            }
        }
        if !ignore_eof {
            request_stop("stdin-eof");
        }
    });
}

/// SIGTERM and SIGINT stop the member cleanly.
fn watch_signals() {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let mut signals = match Signals::new([Signal::Term, Signal::Int]) {
        Ok(signals) => signals,
        Err(e) => return error(&format!("cannot watch SIGTERM/SIGINT: {e}"), false),
    };
    std::thread::spawn(move || {
        if let Some(Ok(signal)) = futures_lite::future::block_on(signals.next()) {
            request_stop(if signal == Signal::Term {
                "sigterm"
            } else {
                "sigint"
            });
        }
    });
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    None,
    Auto,
    AfterProcess,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runtime {
    Tokio,
    AsyncStd,
    Smol,
    Blocking,
}

#[derive(Debug)]
struct Args {
    bootstrap: String,
    group: String,
    topics: Vec<String>,
    assignor: String,
    runtime: Runtime,
    runtime_name: String,
    session_timeout_ms: u64,
    heartbeat_ms: u64,
    max_records: Option<u64>,
    idle_exit: Option<Duration>,
    run_for: Option<Duration>,
    commit: Commit,
    instance_id: Option<String>,
    client_id: String,
    quiet_records: bool,
    ignore_stdin: bool,
    process: Option<Duration>,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut values: HashMap<String, String> = HashMap::new();
    let (mut quiet_records, mut ignore_stdin) = (false, false);
    while let Some(flag) = argv.next() {
        match flag.as_str() {
            "--quiet-records" => quiet_records = true,
            "--ignore-stdin" => ignore_stdin = true,
            "--bootstrap"
            | "--group"
            | "--topics"
            | "--assignor"
            | "--runtime"
            | "--session-timeout-ms"
            | "--heartbeat-ms"
            | "--max-records"
            | "--idle-exit-s"
            | "--run-s"
            | "--commit"
            | "--instance-id"
            | "--client-id"
            | "--process-ms"
            | "--client" => {
                let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
                values.insert(flag[2..].to_string(), value);
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    let mut take = |name: &str| values.remove(name);
    let required =
        |value: Option<String>, name: &str| value.ok_or_else(|| format!("--{name} is required"));
    fn number<T: std::str::FromStr>(
        value: Option<String>,
        name: &str,
    ) -> Result<Option<T>, String> {
        value
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("--{name}: not a number: {v:?}"))
            })
            .transpose()
    }
    fn seconds(value: Option<String>, name: &str) -> Result<Option<Duration>, String> {
        number::<f64>(value, name)?
            .map(|s| Duration::try_from_secs_f64(s).map_err(|e| format!("--{name}: {e}")))
            .transpose()
    }
    if let Some(client) = take("client") {
        if client != "odradek" {
            return Err(format!("--client must be odradek, not {client:?}"));
        }
    }
    let bootstrap = required(take("bootstrap"), "bootstrap")?;
    let group = required(take("group"), "group")?;
    let topics: Vec<String> = required(take("topics"), "topics")?
        .split(',')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    if topics.is_empty() {
        return Err("--topics must name at least one topic".into());
    }
    let assignor = required(take("assignor"), "assignor")?;
    if !["range", "roundrobin", "sticky", "cooperative-sticky"].contains(&assignor.as_str()) {
        return Err(format!("unknown --assignor {assignor:?}"));
    }
    let runtime_name = take("runtime").unwrap_or_else(|| "tokio".into());
    let runtime = match runtime_name.as_str() {
        "tokio" => Runtime::Tokio,
        "async-std" => Runtime::AsyncStd,
        "smol" => Runtime::Smol,
        "blocking" => Runtime::Blocking,
        other => return Err(format!("unknown --runtime {other:?}")),
    };
    let commit = match take("commit").as_deref().unwrap_or("after-process") {
        "none" => Commit::None,
        "auto" => Commit::Auto,
        "after-process" => Commit::AfterProcess,
        other => return Err(format!("unknown --commit {other:?}")),
    };
    let session_timeout_ms = number(take("session-timeout-ms"), "session-timeout-ms")?;
    let heartbeat_ms = number(take("heartbeat-ms"), "heartbeat-ms")?;
    let max_records = number(take("max-records"), "max-records")?;
    if max_records == Some(0) {
        return Err("--max-records must be >= 1".into());
    }
    let args = Args {
        bootstrap,
        group,
        topics,
        assignor,
        runtime,
        runtime_name,
        session_timeout_ms: session_timeout_ms.unwrap_or(6000),
        heartbeat_ms: heartbeat_ms.unwrap_or(2000),
        max_records,
        idle_exit: seconds(take("idle-exit-s"), "idle-exit-s")?,
        run_for: seconds(take("run-s"), "run-s")?,
        commit,
        instance_id: take("instance-id").filter(|id| !id.is_empty()),
        client_id: take("client-id").unwrap_or_else(|| "odradek-tests-odradek".into()),
        quiet_records,
        ignore_stdin,
        process: number::<u64>(take("process-ms"), "process-ms")?.map(Duration::from_millis),
    };
    if args.session_timeout_ms == 0 || args.heartbeat_ms == 0 {
        return Err("--session-timeout-ms and --heartbeat-ms must be >= 1".into());
    }
    Ok(args)
}

/// The consumer's configuration, as Java property names.
fn properties(args: &Args) -> Vec<(&'static str, String)> {
    let batch = args
        .max_records
        .map_or(BATCH, |n| n.min(BATCH as u64) as usize);
    let mut properties = vec![
        ("bootstrap.servers", args.bootstrap.clone()),
        ("group.id", args.group.clone()),
        ("client.id", args.client_id.clone()),
        ("partition.assignment.strategy", args.assignor.clone()),
        ("session.timeout.ms", args.session_timeout_ms.to_string()),
        ("heartbeat.interval.ms", args.heartbeat_ms.to_string()),
        ("auto.offset.reset", "earliest".into()),
        (
            "enable.auto.commit",
            (args.commit == Commit::Auto).to_string(),
        ),
        ("auto.commit.interval.ms", "500".into()),
        ("fetch.max.wait.ms", "100".into()),
        ("max.poll.records", batch.to_string()),
    ];
    if let Some(id) = &args.instance_id {
        properties.push(("group.instance.id", id.clone()));
    }
    properties
}

// ---------------------------------------------------------------------------
// The rebalance listener
// ---------------------------------------------------------------------------

/// With `--commit after-process`: the next offsets of processed records
/// whose commit has not succeeded yet. A commit refused while the group
/// rebalances is retried after the next poll, and the revocation callback
/// commits what is pending for the partitions it gives up, so their next
/// owner starts right after the last processed record.
static PENDING: Mutex<BTreeMap<TopicPartition, i64>> = Mutex::new(BTreeMap::new());

fn pending() -> std::sync::MutexGuard<'static, BTreeMap<TopicPartition, i64>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

fn committed_event(offsets: &BTreeMap<TopicPartition, i64>) -> Value {
    json!({
        "event": "committed",
        "offsets": offsets
            .iter()
            .map(|(tp, next)| json!([tp.topic(), tp.partition(), next]))
            .collect::<Vec<_>>(),
    })
}

/// Prints "assigned", "revoked" and "lost" with the member's full
/// assignment after each change; with `--commit after-process` it commits
/// the pending offsets of revoked partitions (the consumer completes that
/// commit before the rebalance goes on) and prints "committed".
/// Auto-commit commits before a revocation by itself.
struct PrintingListener {
    cooperative: bool,
    commit_on_revoke: bool,
    owned: BTreeSet<TopicPartition>,
}

impl PrintingListener {
    fn commit_revoked(&self, context: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let mut pending = pending();
        let offsets: BTreeMap<TopicPartition, i64> = partitions
            .iter()
            .filter_map(|tp| pending.remove(tp).map(|next| (tp.clone(), next)))
            .collect();
        if !self.commit_on_revoke || offsets.is_empty() {
            return;
        }
        let request = offsets
            .iter()
            .map(|(tp, next)| (tp.clone(), OffsetAndMetadata::new(*next)))
            .collect();
        match context.commit_offsets(request) {
            Ok(_) => emit(committed_event(&offsets)),
            Err(e) => error(&format!("commit on revocation: {e}"), false),
        }
    }

    fn removed(&mut self, event: &str, partitions: &[TopicPartition]) {
        if partitions.is_empty() {
            return;
        }
        if self.cooperative {
            for tp in partitions {
                self.owned.remove(tp);
            }
        } else {
            self.owned.clear();
        }
        emit(json!({
            "event": event,
            "partitions": pairs(partitions.iter().cloned()),
            "assignment": pairs(self.owned.iter().cloned()),
        }));
    }
}

impl RebalanceListener for PrintingListener {
    fn on_partitions_assigned(
        &mut self,
        _: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        if !self.cooperative {
            self.owned.clear();
        }
        self.owned.extend(partitions.iter().cloned());
        emit(json!({
            "event": "assigned",
            "partitions": pairs(partitions.iter().cloned()),
            "assignment": pairs(self.owned.iter().cloned()),
        }));
    }

    fn on_partitions_revoked(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.commit_revoked(context, partitions);
        self.removed("revoked", partitions);
    }

    fn on_partitions_lost(&mut self, _: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        // Another member may own them already: nothing can be committed.
        let mut pending = pending();
        for tp in partitions {
            pending.remove(tp);
        }
        drop(pending);
        self.removed("lost", partitions);
    }
}

// ---------------------------------------------------------------------------
// The adapters
// ---------------------------------------------------------------------------

/// The three calls the member loop makes, as blocking calls on any adapter.
trait Member {
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error>;
    fn commit_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error>;
    fn close(&self) -> Result<(), Error>;
}

/// The process's tokio runtime: the consumer's driver task runs on it and
/// every call blocks on it.
fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

fn tokio_block_on<F: Future>(future: F) -> F::Output {
    tokio_runtime().block_on(future)
}

/// Implements [`Member`] for a wrapper of an async adapter's consumer whose
/// calls run under `$block_on`.
macro_rules! async_member {
    ($name:ident, $consumer:ty, $block_on:path) => {
        struct $name($consumer);

        impl Member for $name {
            fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
                $block_on(self.0.poll(timeout))
            }
            fn commit_offsets(
                &self,
                offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
            ) -> Result<(), Error> {
                $block_on(self.0.commit_offsets(offsets))
            }
            fn close(&self) -> Result<(), Error> {
                $block_on(self.0.close())
            }
        }
    };
}

async_member!(TokioMember, odradek_tokio::Consumer, tokio_block_on);
async_member!(
    AsyncStdMember,
    odradek_async_std::Consumer,
    async_std::task::block_on
);
async_member!(SmolMember, odradek_async_std::Consumer, smol::block_on);

struct BlockingMember(odradek_blocking::Consumer);

impl Member for BlockingMember {
    fn poll(&self, timeout: Duration) -> Result<ConsumerRecords, Error> {
        self.0.poll(timeout)
    }
    fn commit_offsets(
        &self,
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<(), Error> {
        self.0.commit_offsets(offsets)
    }
    fn close(&self) -> Result<(), Error> {
        self.0.close()
    }
}

/// Creates the consumer on the chosen adapter and subscribes it.
fn start(args: &Args) -> Result<Box<dyn Member>, Error> {
    let listener = PrintingListener {
        cooperative: args.assignor == "cooperative-sticky",
        commit_on_revoke: args.commit == Commit::AfterProcess,
        owned: BTreeSet::new(),
    };
    let properties = properties(args);
    let topics = args.topics.clone();
    Ok(match args.runtime {
        Runtime::Tokio => {
            // Inside the runtime: the consumer spawns its driver task there.
            let _inside = tokio_runtime().enter();
            let consumer = odradek_tokio::Consumer::from_properties(properties)?;
            consumer.subscribe_with_listener(topics, listener)?;
            Box::new(TokioMember(consumer))
        }
        Runtime::AsyncStd | Runtime::Smol => {
            let consumer = odradek_async_std::Consumer::from_properties(properties)?;
            consumer.subscribe_with_listener(topics, listener)?;
            if args.runtime == Runtime::Smol {
                Box::new(SmolMember(consumer))
            } else {
                Box::new(AsyncStdMember(consumer))
            }
        }
        Runtime::Blocking => {
            let consumer = odradek_blocking::Consumer::from_properties(properties)?;
            consumer.subscribe_with_listener(topics, listener)?;
            Box::new(BlockingMember(consumer))
        }
    })
}

/// Errors after which polling again cannot help.
fn is_fatal(error: &Error) -> bool {
    matches!(
        error,
        Error::Closed
            | Error::Config(_)
            | Error::FencedInstanceId { .. }
            | Error::InvalidArgument(_)
    )
}

// ---------------------------------------------------------------------------
// The member loop
// ---------------------------------------------------------------------------

/// Records consumed so far and when the last one came.
#[derive(Default)]
struct Progress {
    count: u64,
    last_offsets: BTreeMap<TopicPartition, i64>,
    last_record: Option<Instant>,
}

impl Progress {
    fn emit(&self) {
        let per_partition: serde_json::Map<String, Value> = self
            .last_offsets
            .iter()
            .map(|(tp, offset)| (format!("{}-{}", tp.topic(), tp.partition()), json!(offset)))
            .collect();
        emit(json!({"event": "progress", "count": self.count, "per_partition": per_partition}));
    }
}

fn check_timers(args: &Args, progress: &Progress, started: Instant) {
    let now = Instant::now();
    if args.max_records.is_some_and(|n| progress.count >= n) {
        request_stop("max-records");
    } else if args
        .idle_exit
        .zip(progress.last_record)
        .is_some_and(|(idle, last)| now.duration_since(last) >= idle)
    {
        request_stop("idle");
    } else if args
        .run_for
        .is_some_and(|run| now.duration_since(started) >= run)
    {
        request_stop("run-s");
    }
}

/// One poll: prints and counts the records, then commits them with
/// `--commit after-process`. Returns false after a fatal error.
fn poll_once(args: &Args, member: &dyn Member, progress: &mut Progress) -> bool {
    let room = args
        .max_records
        .map_or(usize::MAX, |n| n.saturating_sub(progress.count) as usize);
    if room == 0 {
        return true;
    }
    let records = match member.poll(POLL_TIMEOUT) {
        Ok(records) => records,
        Err(e) => {
            let fatal = is_fatal(&e);
            error(&format!("poll: {e}"), fatal);
            return !fatal;
        }
    };
    let mut processed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for record in records.iter().take(room) {
        progress.count += 1;
        progress.last_record = Some(Instant::now());
        progress
            .last_offsets
            .insert(record.topic_partition().clone(), record.offset());
        processed.insert(record.topic_partition().clone(), record.offset());
        if !args.quiet_records {
            emit(json!({
                "event": "record",
                "topic": record.topic(),
                "partition": record.partition(),
                "offset": record.offset(),
                "key": record.key().map(String::from_utf8_lossy),
            }));
        }
    }
    if let Some(work) = args.process.filter(|_| !processed.is_empty()) {
        emit(json!({"event": "processing", "ms": work.as_millis() as u64}));
        std::thread::sleep(work);
    }
    if args.commit == Commit::AfterProcess {
        let offsets = {
            let mut pending = pending();
            pending.extend(processed.iter().map(|(tp, last)| (tp.clone(), last + 1)));
            pending.clone()
        };
        if offsets.is_empty() {
            return true;
        }
        let request = offsets
            .iter()
            .map(|(tp, next)| (tp.clone(), OffsetAndMetadata::new(*next)))
            .collect();
        match member.commit_offsets(request) {
            Ok(()) => {
                // Nothing else touches the map between here and the
                // commit: the listener runs inside `poll`.
                pending().clear();
                emit(committed_event(&offsets));
            }
            Err(e) => {
                // RebalanceInProgress among them: retried after the next poll.
                let fatal = is_fatal(&e);
                error(&format!("commit: {e}"), fatal);
                return !fatal;
            }
        }
    }
    true
}

fn run(args: &Args) -> i32 {
    let member = match start(args) {
        Ok(member) => member,
        Err(e) => {
            error(&format!("creating the consumer: {e}"), true);
            emit(json!({"event": "closed", "count": 0, "reason": "fatal"}));
            return 1;
        }
    };
    let started = Instant::now();
    emit(json!({
        "event": "ready",
        "client": "odradek",
        "runtime": args.runtime_name,
        "assignor": args.assignor,
        "protocol": if args.assignor == "cooperative-sticky" { "cooperative" } else { "eager" },
        "group": args.group,
        "topics": args.topics,
        "client_id": args.client_id,
    }));
    let mut progress = Progress::default();
    let mut next_progress = Instant::now() + PROGRESS_INTERVAL;
    let mut status = 0;
    loop {
        check_timers(args, &progress, started);
        if STOP.get().is_some() {
            break;
        }
        if !poll_once(args, member.as_ref(), &mut progress) {
            status = 1;
            request_stop("fatal");
        }
        if args.quiet_records && Instant::now() >= next_progress {
            progress.emit();
            next_progress = Instant::now() + PROGRESS_INTERVAL;
        }
    }
    let reason = STOP.get().copied().unwrap_or("fatal");
    emit(json!({"event": "stopping", "reason": reason}));
    if args.quiet_records {
        progress.emit();
    }
    if let Err(e) = member.close() {
        error(&format!("close: {e}"), true);
        status = 1;
    }
    emit(json!({"event": "closed", "count": progress.count, "reason": reason}));
    status
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("odradek_member: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    watch_signals();
    watch_stdin(args.ignore_stdin);
    std::process::exit(run(&args));
}
