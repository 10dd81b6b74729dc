//! The README demo: a consumer group of three members, one per Odradek
//! adapter (tokio, async-std, blocking), sharing a 12-partition topic on a
//! local tansu broker while a producer writes sample records to it.
//!
//! ```text
//! cargo run --release -p odradek-tests --example demo -- [RECORDS] [PARTITIONS] [ASSIGNOR]
//! ```
//!
//! Defaults: 300,000 records, 12 partitions, `cooperative-sticky` (or
//! `range`, `roundrobin`, `sticky`). The producer spreads the records over
//! about 15 s so the members join while records still arrive (holding the
//! last fifth back until all three are in): one member subscribes, and each
//! next one once the group has been settled for 2 s, so the group
//! rebalances twice. Each member has a live line (runtime,
//! partitions, records, rate, and its largest partition lag from
//! `metrics()`; redrawn on a terminal, printed every second otherwise), and
//! every rebalance callback is printed as it happens.
//!
//! Auto-commit commits the delivered positions before every revocation, so
//! a partition's next owner starts where the last one stopped. At the end
//! the demo prints the final assignment and checks every value, and that
//! every record written was delivered **exactly once** across the group;
//! it exits non-zero otherwise.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use odradek_core::protocol::messages::{
    ProduceRequest,
    produce::{PartitionProduceData, TopicProduceData},
};
use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_core::{
    ConsumerConfig, ConsumerRecords, RebalanceContext, RebalanceListener, TopicPartition,
};
use odradek_tests::driver::Connection;
use odradek_tests::{Broker, BrokerKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TOPIC: &str = "odradek-demo";
const GROUP: &str = "odradek-demo";
const BATCH: usize = 1_000;
const VALUE_SIZE: usize = 100;
/// The producer spreads the records over this long, so that the members
/// join (and the group rebalances) while records are still arriving.
const PRODUCE_FOR: Duration = Duration::from_secs(15);
/// The producer holds back 1/`HELD_BACK` of the records until every member
/// has joined.
const HELD_BACK: usize = 5;
/// How long the group stays settled before the next member subscribes.
const JOIN_GAP: Duration = Duration::from_secs(2);
/// The whole demo must finish within this (a hang fails it).
const DEADLINE: Duration = Duration::from_secs(120);
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// One member per adapter, in joining order.
const RUNTIMES: [&str; 3] = ["tokio", "async-std", "blocking"];

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(300_000);
    let partitions: i32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(12);
    let assignor = args.next().unwrap_or_else(|| "cooperative-sticky".into());

    eprintln!("starting tansu (installing it first if needed)...");
    let broker = Broker::start(BrokerKind::Tansu)?;
    broker.create_topic(TOPIC, partitions as u32)?;
    println!(
        "broker: tansu on {}; topic {TOPIC}: {partitions} partitions; group {GROUP}: \
         3 members, {assignor}, auto-commit",
        broker.bootstrap()
    );
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", broker.bootstrap().as_str()),
        ("group.id", GROUP),
        ("partition.assignment.strategy", assignor.as_str()),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "true"),
        // tansu holds each JoinGroup for half the session timeout: a short
        // session keeps rebalances to a second or two.
        ("session.timeout.ms", "3000"),
        ("heartbeat.interval.ms", "1000"),
    ])?;

    let board = Arc::new(Board::new(total, partitions));
    let producer = {
        let board = board.clone();
        let addr = broker.addr();
        thread::Builder::new()
            .name("producer".into())
            .spawn(move || {
                if let Err(e) = produce(addr, &board) {
                    board.fail(format!("producer: {e}"));
                }
            })?
    };

    let mut screen = Screen::new(std::io::stdout().is_terminal());
    let mut members = Vec::new();
    // The first member subscribes at once; each next one after the group
    // has been settled for a while.
    let mut settled_since: Option<Instant> = Some(board.started - JOIN_GAP);
    let mut finished_at = None;
    loop {
        if let Some(failure) = board.failure() {
            screen.draw(&board);
            return Err(failure.into());
        }
        if board.started.elapsed() > DEADLINE {
            screen.draw(&board);
            return Err(format!(
                "not done after {DEADLINE:?}: {} of {total} records consumed",
                board.unique.load(Ordering::SeqCst)
            )
            .into());
        }
        let joined = members.len();
        let settled = board.settled(joined);
        settled_since = match (settled, settled_since) {
            (false, _) => None,
            (true, None) => Some(Instant::now()),
            (true, since) => since,
        };
        if joined < RUNTIMES.len() && settled_since.is_some_and(|t| t.elapsed() >= JOIN_GAP) {
            board.event(format!("{} subscribes", board.members[joined].label()));
            members.push(spawn_member(joined, config.clone(), &board)?);
            settled_since = None;
        }
        let everything_read = board.produced.load(Ordering::SeqCst) == total
            && board.unique.load(Ordering::SeqCst) == total;
        if finished_at.is_none() && joined == RUNTIMES.len() && settled && everything_read {
            finished_at = Some(board.started.elapsed());
            board.event(format!("all {total} records consumed; members close"));
            board.stop.store(true, Ordering::SeqCst);
        }
        screen.tick(&board);
        if board.stop.load(Ordering::SeqCst)
            && board
                .members
                .iter()
                .all(|m| m.state().final_assignment.is_some())
        {
            break;
        }
        thread::sleep(POLL_TIMEOUT);
    }
    board.closing.store(true, Ordering::SeqCst);
    for member in members {
        member
            .join()
            .map_err(|_| "a member thread panicked")?
            .map_err(|e| format!("closing: {e}"))?;
    }
    producer.join().map_err(|_| "the producer panicked")?;
    screen.draw(&board);
    if let Some(failure) = board.failure() {
        return Err(failure.into());
    }
    summary(&board, &assignor, finished_at.unwrap_or_default())
}

/// Prints the final assignment and totals; fails unless every record was
/// delivered exactly once.
fn summary(board: &Board, assignor: &str, elapsed: Duration) -> Result<(), BoxError> {
    println!("\nfinal assignment ({assignor}):");
    let mut delivered = 0;
    for member in &board.members {
        let state = member.state();
        let owned = state.final_assignment.clone().unwrap_or_default();
        println!(
            "  {:<22} partitions {:<12} {:>9} records consumed in all",
            member.label(),
            ranges(&owned),
            state.records
        );
        delivered += state.records;
    }
    let (mut missing, mut repeated) = (0, 0);
    for deliveries in &board.deliveries {
        match deliveries.load(Ordering::SeqCst) {
            0 => missing += 1,
            1 => {}
            _ => repeated += 1,
        }
    }
    let total = board.deliveries.len();
    println!(
        "totals: {total} records written, {delivered} delivered, all read {:.1} s after the start",
        elapsed.as_secs_f64(),
    );
    if missing > 0 || repeated > 0 || delivered != total {
        return Err(format!(
            "not exactly once: {missing} records never delivered, {repeated} delivered more \
             than once ({delivered} deliveries for {total} records)"
        )
        .into());
    }
    println!("every record delivered exactly once across the group, every value checked");
    Ok(())
}

// ---------------------------------------------------------------------------
// The members: one per adapter, each on its own thread
// ---------------------------------------------------------------------------

fn spawn_member(
    index: usize,
    mut config: ConsumerConfig,
    board: &Arc<Board>,
) -> Result<thread::JoinHandle<Result<(), String>>, BoxError> {
    let member = board.members[index].clone();
    config.client_id = member.name.clone();
    let board = board.clone();
    let handle = thread::Builder::new()
        .name(member.name.clone())
        .spawn(move || {
            let result = match member.runtime {
                "tokio" => run_tokio(config, &member, &board),
                "async-std" => run_async_std(config, &member, &board),
                _ => run_blocking(config, &member, &board),
            };
            result.map_err(|e| {
                let message = format!("{}: {e}", member.label());
                board.fail(message.clone());
                message
            })
        })?;
    Ok(handle)
}

fn run_tokio(
    config: ConsumerConfig,
    member: &Arc<Member>,
    board: &Arc<Board>,
) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let consumer = odradek_tokio::Consumer::new(config)?;
        consumer.subscribe_with_listener([TOPIC], Announcer::new(member, board))?;
        while !board.stop.load(Ordering::SeqCst) {
            let records = consumer.poll(POLL_TIMEOUT).await?;
            member.take(board, &records)?;
            member.observe(&consumer.metrics());
        }
        member.finish(consumer.assignment(), board);
        consumer.close().await?;
        Ok(())
    })
}

fn run_async_std(
    config: ConsumerConfig,
    member: &Arc<Member>,
    board: &Arc<Board>,
) -> Result<(), BoxError> {
    async_std::task::block_on(async {
        let consumer = odradek_async_std::Consumer::new(config)?;
        consumer.subscribe_with_listener([TOPIC], Announcer::new(member, board))?;
        while !board.stop.load(Ordering::SeqCst) {
            let records = consumer.poll(POLL_TIMEOUT).await?;
            member.take(board, &records)?;
            member.observe(&consumer.metrics());
        }
        member.finish(consumer.assignment(), board);
        consumer.close().await?;
        Ok(())
    })
}

fn run_blocking(
    config: ConsumerConfig,
    member: &Arc<Member>,
    board: &Arc<Board>,
) -> Result<(), BoxError> {
    let consumer = odradek_blocking::Consumer::new(config)?;
    consumer.subscribe_with_listener([TOPIC], Announcer::new(member, board))?;
    while !board.stop.load(Ordering::SeqCst) {
        let records = consumer.poll(POLL_TIMEOUT)?;
        member.take(board, &records)?;
        member.observe(&consumer.metrics());
    }
    member.finish(consumer.assignment(), board);
    consumer.close()?;
    Ok(())
}

/// One group member as the screen shows it.
struct Member {
    name: String,
    runtime: &'static str,
    state: Mutex<MemberState>,
}

#[derive(Default)]
struct MemberState {
    subscribed: bool,
    assigned: BTreeSet<i32>,
    records: usize,
    /// The largest partition lag, from `metrics()` after each poll.
    lag: Option<i64>,
    /// The assignment when the demo stopped, before any member left.
    final_assignment: Option<Vec<i32>>,
}

impl Member {
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.runtime)
    }

    fn state(&self) -> MutexGuard<'_, MemberState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks each record's value and counts its delivery.
    fn take(&self, board: &Board, records: &ConsumerRecords) -> Result<(), BoxError> {
        for record in records {
            let index = index_of(record.key().unwrap_or_default())?;
            if record.value() != Some(value(index).as_bytes()) {
                return Err(format!(
                    "record {index} ({}@{}) came back changed",
                    record.partition(),
                    record.offset()
                )
                .into());
            }
            let deliveries = board
                .deliveries
                .get(index)
                .ok_or_else(|| format!("record {index} was never written"))?;
            if deliveries.fetch_add(1, Ordering::SeqCst) == 0 {
                board.unique.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.state().records += records.len();
        Ok(())
    }

    /// Keeps what the live line shows from the consumer's metrics.
    fn observe(&self, metrics: &odradek_core::metrics::Metrics) {
        self.state().lag = metrics.consumer.records_lag_max;
    }

    /// Records the final assignment, then waits (bounded) until every
    /// member has, so no member's leaving changes another's before then.
    fn finish(&self, assignment: Vec<TopicPartition>, board: &Board) {
        self.state().final_assignment =
            Some(assignment.iter().map(TopicPartition::partition).collect());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !board.closing.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The rebalance listener: keeps the member's partitions up to date and
/// announces each callback.
struct Announcer {
    member: Arc<Member>,
    board: Arc<Board>,
}

impl Announcer {
    fn new(member: &Arc<Member>, board: &Arc<Board>) -> Self {
        member.state().subscribed = true;
        Announcer {
            member: member.clone(),
            board: board.clone(),
        }
    }

    fn announce(&self, what: &str, partitions: &[TopicPartition]) {
        // The cooperative protocol calls `on_partitions_assigned` after
        // every rebalance, often with nothing new: not worth a line.
        if partitions.is_empty() {
            return;
        }
        let numbers: Vec<i32> = partitions.iter().map(TopicPartition::partition).collect();
        self.board.event(format!(
            "{} {what} {}",
            self.member.label(),
            ranges(&numbers)
        ));
    }
}

impl RebalanceListener for Announcer {
    fn on_partitions_assigned(
        &mut self,
        _: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.member
            .state()
            .assigned
            .extend(partitions.iter().map(TopicPartition::partition));
        self.announce("assigned", partitions);
    }

    fn on_partitions_revoked(
        &mut self,
        _: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        // Auto-commit has already committed what was delivered.
        let mut state = self.member.state();
        for tp in partitions {
            state.assigned.remove(&tp.partition());
        }
        drop(state);
        self.announce("revoked", partitions);
    }

    fn on_partitions_lost(&mut self, _: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
        let mut state = self.member.state();
        for tp in partitions {
            state.assigned.remove(&tp.partition());
        }
        drop(state);
        self.announce("LOST", partitions);
    }
}

// ---------------------------------------------------------------------------
// Shared state and the screen
// ---------------------------------------------------------------------------

/// What the producer, the members and the screen share.
struct Board {
    started: Instant,
    partitions: i32,
    produced: AtomicUsize,
    /// How many times each record (by its index) was delivered.
    deliveries: Vec<AtomicU32>,
    /// Records delivered at least once.
    unique: AtomicUsize,
    members: Vec<Arc<Member>>,
    /// Lines for the screen to print above the live lines.
    events: Mutex<Vec<String>>,
    /// Set once everything was read: members stop polling.
    stop: AtomicBool,
    /// Set once every member recorded its final assignment: members close.
    closing: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Board {
    fn new(total: usize, partitions: i32) -> Self {
        Board {
            started: Instant::now(),
            partitions,
            produced: AtomicUsize::new(0),
            deliveries: (0..total).map(|_| AtomicU32::new(0)).collect(),
            unique: AtomicUsize::new(0),
            members: RUNTIMES
                .iter()
                .enumerate()
                .map(|(i, runtime)| {
                    Arc::new(Member {
                        name: format!("member-{}", i + 1),
                        runtime,
                        state: Mutex::new(MemberState::default()),
                    })
                })
                .collect(),
            events: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            failure: Mutex::new(None),
        }
    }

    fn event(&self, line: String) {
        let line = format!("[{:5.1} s] {line}", self.started.elapsed().as_secs_f64());
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    fn fail(&self, message: String) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(message);
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the first `joined` members own every partition between
    /// them, each a non-empty share, none twice.
    fn settled(&self, joined: usize) -> bool {
        let mut owned = BTreeSet::new();
        for member in &self.members[..joined] {
            let state = member.state();
            if state.assigned.is_empty() || !owned.is_disjoint(&state.assigned) {
                return false;
            }
            owned.extend(state.assigned.iter().copied());
        }
        joined == 0 || owned.len() == self.partitions as usize
    }
}

/// The live lines: redrawn in place on a terminal, printed once a second
/// otherwise (a log or a pipe).
struct Screen {
    terminal: bool,
    /// Live lines currently on the terminal, below the cursor's line.
    drawn: usize,
    last_lines: Instant,
    /// Per member: records and time at the last rate sample, and the rate.
    rates: Vec<(usize, Instant, f64)>,
}

impl Screen {
    fn new(terminal: bool) -> Self {
        let now = Instant::now();
        Screen {
            terminal,
            drawn: 0,
            last_lines: now,
            rates: vec![(0, now, 0.0); RUNTIMES.len()],
        }
    }

    /// Prints new events, and the live lines when they are due.
    fn tick(&mut self, board: &Board) {
        let due = self.last_lines.elapsed()
            >= if self.terminal {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(1)
            };
        let has_events = !board
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if due || (self.terminal && has_events) {
            self.draw(board);
        } else if has_events {
            self.print(board, false);
        }
    }

    /// Prints new events and the live lines now.
    fn draw(&mut self, board: &Board) {
        self.last_lines = Instant::now();
        self.print(board, true);
    }

    fn print(&mut self, board: &Board, with_lines: bool) {
        let events = std::mem::take(&mut *board.events.lock().unwrap_or_else(|e| e.into_inner()));
        let mut out = String::new();
        if self.terminal && self.drawn > 0 {
            // Back to the first live line, to overwrite the block.
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        // Clearing each line first matters only on a terminal.
        let clear = if self.terminal { "\x1b[2K" } else { "" };
        for event in events {
            out.push_str(&format!("{clear}{event}\n"));
        }
        if with_lines || self.terminal {
            let lines = self.lines(board);
            self.drawn = lines.len();
            for line in lines {
                out.push_str(&format!("{clear}{line}\n"));
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }

    fn lines(&mut self, board: &Board) -> Vec<String> {
        let total = board.deliveries.len();
        let elapsed = board.started.elapsed().as_secs_f64();
        let mut lines = vec![format!(
            "  {elapsed:5.1} s  producer                 {:>9} of {total} records written",
            board.produced.load(Ordering::SeqCst)
        )];
        for (member, rate) in board.members.iter().zip(&mut self.rates) {
            let state = member.state();
            let (last_records, last_at, per_second) = rate;
            if last_at.elapsed() >= Duration::from_secs(1) {
                *per_second =
                    (state.records - *last_records) as f64 / last_at.elapsed().as_secs_f64();
                *last_records = state.records;
                *last_at = Instant::now();
            }
            let partitions = if let Some(last) = &state.final_assignment {
                ranges(last)
            } else if state.subscribed && state.assigned.is_empty() {
                "(joining)".to_string()
            } else if !state.subscribed {
                "(not yet subscribed)".to_string()
            } else {
                ranges(&state.assigned.iter().copied().collect::<Vec<_>>())
            };
            let lag = state.lag.map_or("-".to_string(), |lag| lag.to_string());
            lines.push(format!(
                "           {:<22} {:<20} {:>9} records {:>9.0} records/s  lag {:>7}",
                member.label(),
                partitions,
                state.records,
                per_second,
                lag
            ));
        }
        lines
    }
}

/// `[0, 1, 2, 3, 7, 9, 10]` as `0-3,7,9-10`.
fn ranges(partitions: &[i32]) -> String {
    let mut sorted = partitions.to_vec();
    sorted.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

// ---------------------------------------------------------------------------
// The producer and the sample records
// ---------------------------------------------------------------------------

/// Writes every record in lz4 batches of [`BATCH`], batch `b` to partition
/// `b % partitions`, spread evenly over [`PRODUCE_FOR`]; the last
/// 1/[`HELD_BACK`] waits until all three members share the topic, so the
/// last one to join has records to read however long the rebalances take.
fn produce(addr: std::net::SocketAddr, board: &Board) -> Result<(), BoxError> {
    let total = board.deliveries.len();
    let batches = total.div_ceil(BATCH).max(1);
    let mut conn = Connection::connect(addr)?;
    let started = Instant::now();
    let mut written = 0;
    let mut batch_no = 0;
    while written < total && board.failure().is_none() {
        let due = started + PRODUCE_FOR.mul_f64(batch_no as f64 / batches as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if written >= total - total / HELD_BACK && !board.settled(RUNTIMES.len()) {
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        let partition = (batch_no % board.partitions as usize) as i32;
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
        batch_no += 1;
        board.produced.store(written, Ordering::SeqCst);
    }
    Ok(())
}

fn value(i: usize) -> String {
    let mut value = format!("record {i} ");
    while value.len() < VALUE_SIZE {
        value.push_str("odradek ");
    }
    value.truncate(VALUE_SIZE);
    value
}

fn index_of(key: &[u8]) -> Result<usize, BoxError> {
    let key = std::str::from_utf8(key)?;
    Ok(key.trim_start_matches("key-").parse()?)
}
