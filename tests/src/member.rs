//! Consumer-group members whose every step is timestamped, and the checks
//! that turn their logs into verdicts about partition ownership.
//!
//! A member is either
//!
//! * a child process speaking the JSON-lines protocol of
//!   `tests/python/group_member.py` ([`MemberProcess`]): the Odradek member
//!   `src/bin/odradek_member.rs` on any adapter, or the Python member on
//!   confluent-kafka or kafka-python (the one harness for every child
//!   member, in the ownership and the interop tests alike); or
//! * a [`TestConsumer`] polled on its own thread ([`InProcessMember`]).
//!
//! Both write the same [`MemberEvent`]s, stamped with Unix time in seconds
//! (the clock every process on the machine shares), into a [`MemberLog`]: a
//! child's events carry the time the child printed them, so a log says
//! when a member really held a partition, not when the test read about it.
//! [`MemberProcess::kill`] SIGKILLs a child by its PID and closes its log
//! with a [`MemberEvent::Killed`] event at the time of the kill.
//!
//! From the logs, [`ownership`] derives who owned which partition when;
//! [`overlaps`] finds partitions owned by two members at once,
//! [`records_outside_ownership`] records processed by a member that did not
//! own their partition, [`handover_problems`] members that resumed a
//! partition elsewhere than at its committed offset (or skipped records),
//! and [`coverage_gaps`] records nobody processed.
//!
//! [`NumberedProducer`] keeps numbered records (see
//! [`suite::numbered_batch`](crate::suite::numbered_batch)) flowing into a
//! topic in the background meanwhile.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use odradek_core::group::assignor::RebalanceProtocol;
use odradek_core::records::Compression;
use odradek_core::{
    ConsumerConfig, ConsumerRecord, OffsetAndMetadata, RebalanceContext, RebalanceListener,
    TopicPartition,
};
use serde_json::Value;

use crate::driver::Connection;
use crate::interop::Consumed;
use crate::suite::{TestConsumer, produce_numbered};
use crate::{Broker, HarnessError, Interactive, python_script};

/// How long an in-process member's poll waits for records.
const IN_PROCESS_POLL: Duration = Duration::from_millis(100);

/// How long a child's reader thread waits for a line before it looks for
/// commands from the test.
const PUMP_WAIT: Duration = Duration::from_millis(100);

/// How long a child may take to exit once its stdout closed.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Seconds since the Unix epoch, the clock of every event.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------------------
// Events and logs
// ---------------------------------------------------------------------------

/// One thing a member did, as `group_member.py` reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberEvent {
    /// The consumer was created and subscribed (not yet joined).
    Ready,
    /// The client does not implement the assignor; the member exits.
    Unsupported {
        /// What the client said.
        message: String,
    },
    /// `partitions` were added; `assignment` is the whole assignment now.
    Assigned {
        /// The partitions the callback reported.
        partitions: Vec<TopicPartition>,
        /// The member's full assignment after the change.
        assignment: Vec<TopicPartition>,
    },
    /// `partitions` were given up cleanly.
    Revoked {
        /// The partitions the callback reported.
        partitions: Vec<TopicPartition>,
        /// The member's full assignment after the change.
        assignment: Vec<TopicPartition>,
    },
    /// `partitions` were lost (the membership ended without a clean handover).
    Lost {
        /// The partitions the callback reported.
        partitions: Vec<TopicPartition>,
        /// The member's full assignment after the change.
        assignment: Vec<TopicPartition>,
    },
    /// One record was processed.
    Record {
        /// Its partition.
        partition: TopicPartition,
        /// Its offset.
        offset: i64,
        /// Its key as UTF-8 (lossy), `None` for a null key.
        key: Option<String>,
    },
    /// Offsets were committed after processing (`next` offsets).
    Committed {
        /// The committed offset of each partition.
        offsets: Vec<(TopicPartition, i64)>,
    },
    /// Progress with `--quiet-records`.
    Progress {
        /// Records processed so far.
        count: u64,
    },
    /// An error the member reported.
    Error {
        /// What went wrong.
        message: String,
        /// Whether the member gave up because of it.
        fatal: bool,
    },
    /// The member decided to stop.
    Stopping {
        /// Why.
        reason: String,
    },
    /// The member closed its consumer and left.
    Closed {
        /// Records processed in all.
        count: u64,
        /// Why it stopped.
        reason: String,
    },
    /// The test SIGKILLed the member (written by the test, not the member).
    Killed,
    /// A line that is not one of the events above, kept as printed.
    Other(String),
}

/// An event with the Unix time (seconds) it happened at.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    /// When, in seconds since the Unix epoch.
    pub t: f64,
    /// What.
    pub event: MemberEvent,
}

fn topic_partitions(value: &Value) -> Option<Vec<TopicPartition>> {
    value
        .as_array()?
        .iter()
        .map(|pair| {
            let topic = pair.get(0)?.as_str()?;
            let partition = i32::try_from(pair.get(1)?.as_i64()?).ok()?;
            Some(TopicPartition::new(topic, partition))
        })
        .collect()
}

impl Stamped {
    /// Parses one line a member printed; anything unexpected becomes
    /// [`MemberEvent::Other`] stamped with the time of parsing.
    pub fn parse(line: &str) -> Stamped {
        Self::parse_json(line).unwrap_or_else(|| Stamped {
            t: unix_now(),
            event: MemberEvent::Other(line.to_string()),
        })
    }

    fn parse_json(line: &str) -> Option<Stamped> {
        let json: Value = serde_json::from_str(line).ok()?;
        let t = json.get("t")?.as_f64()?;
        let text = |key: &str| json.get(key).and_then(Value::as_str).map(String::from);
        let count = |key: &str| json.get(key).and_then(Value::as_u64);
        let change = || -> Option<(Vec<TopicPartition>, Vec<TopicPartition>)> {
            Some((
                topic_partitions(json.get("partitions")?)?,
                topic_partitions(json.get("assignment")?)?,
            ))
        };
        let event = match json.get("event")?.as_str()? {
            "ready" => MemberEvent::Ready,
            "unsupported" => MemberEvent::Unsupported {
                message: text("message").unwrap_or_default(),
            },
            "assigned" => {
                let (partitions, assignment) = change()?;
                MemberEvent::Assigned {
                    partitions,
                    assignment,
                }
            }
            "revoked" => {
                let (partitions, assignment) = change()?;
                MemberEvent::Revoked {
                    partitions,
                    assignment,
                }
            }
            "lost" => {
                let (partitions, assignment) = change()?;
                MemberEvent::Lost {
                    partitions,
                    assignment,
                }
            }
            "record" => MemberEvent::Record {
                partition: TopicPartition::new(
                    text("topic")?,
                    i32::try_from(json.get("partition")?.as_i64()?).ok()?,
                ),
                offset: json.get("offset")?.as_i64()?,
                key: text("key"),
            },
            "committed" => MemberEvent::Committed {
                offsets: json
                    .get("offsets")?
                    .as_array()?
                    .iter()
                    .map(|o| {
                        let tp = TopicPartition::new(
                            o.get(0)?.as_str()?,
                            i32::try_from(o.get(1)?.as_i64()?).ok()?,
                        );
                        Some((tp, o.get(2)?.as_i64()?))
                    })
                    .collect::<Option<_>>()?,
            },
            "progress" => MemberEvent::Progress {
                count: count("count")?,
            },
            "error" => MemberEvent::Error {
                message: text("message")?,
                fatal: json.get("fatal")?.as_bool()?,
            },
            "stopping" => MemberEvent::Stopping {
                reason: text("reason")?,
            },
            "closed" => MemberEvent::Closed {
                count: count("count")?,
                reason: text("reason")?,
            },
            _ => return None,
        };
        Some(Stamped { t, event })
    }
}

/// A member's events in the order they happened, shared between the
/// member (or the thread reading a child's output) and the test.
#[derive(Debug, Clone, Default)]
pub struct MemberLog(Arc<Mutex<Vec<Stamped>>>);

impl MemberLog {
    fn lock(&self) -> MutexGuard<'_, Vec<Stamped>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `event`, stamped now.
    pub fn push(&self, event: MemberEvent) {
        self.push_at(unix_now(), event);
    }

    /// Appends `event` stamped `t`.
    pub fn push_at(&self, t: f64, event: MemberEvent) {
        self.lock().push(Stamped { t, event });
    }

    /// Runs `f` on the events so far, without copying them.
    pub fn with_events<T>(&self, f: impl FnOnce(&[Stamped]) -> T) -> T {
        f(&self.lock())
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Stamped> {
        self.lock().clone()
    }

    /// The member's assignment now: that of its latest rebalance event,
    /// nothing once it closed or was killed.
    pub fn assignment(&self) -> BTreeSet<TopicPartition> {
        self.with_events(|events| {
            for e in events.iter().rev() {
                match &e.event {
                    MemberEvent::Assigned { assignment, .. }
                    | MemberEvent::Revoked { assignment, .. }
                    | MemberEvent::Lost { assignment, .. } => {
                        return assignment.iter().cloned().collect();
                    }
                    MemberEvent::Closed { .. } | MemberEvent::Killed => return BTreeSet::new(),
                    _ => {}
                }
            }
            BTreeSet::new()
        })
    }

    /// How many times the assignment changed (rebalance events that left
    /// it different).
    pub fn assignment_changes(&self) -> usize {
        self.with_events(|events| {
            let mut last = BTreeSet::new();
            let mut changes = 0;
            for e in events {
                if let MemberEvent::Assigned { assignment, .. }
                | MemberEvent::Revoked { assignment, .. }
                | MemberEvent::Lost { assignment, .. } = &e.event
                {
                    let now: BTreeSet<TopicPartition> = assignment.iter().cloned().collect();
                    if now != last {
                        changes += 1;
                        last = now;
                    }
                }
            }
            changes
        })
    }

    /// The records processed, in order.
    pub fn consumed(&self) -> Consumed {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(|e| match &e.event {
                    MemberEvent::Record {
                        partition, offset, ..
                    } => Some((partition.clone(), *offset)),
                    _ => None,
                })
                .collect()
        })
    }

    /// Records whose key is not `k{offset}` (the numbered records of the
    /// interop tests), as `partition@offset: key`.
    pub fn misnumbered(&self) -> Vec<String> {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(|e| match &e.event {
                    MemberEvent::Record {
                        partition,
                        offset,
                        key,
                    } if key.as_deref() != Some(format!("k{offset}").as_str()) => {
                        Some(format!("{partition}@{offset}: {key:?}"))
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// Lines the member printed that are no event of its protocol.
    pub fn unexpected_output(&self) -> Vec<String> {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(|e| match &e.event {
                    MemberEvent::Other(line) => Some(line.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// The first error the member gave up on, if any.
    pub fn fatal_error(&self) -> Option<String> {
        self.find(|e| match e {
            MemberEvent::Error {
                message,
                fatal: true,
            } => Some(message.clone()),
            _ => None,
        })
        .map(|(_, message)| message)
    }

    /// The offsets processed per partition.
    pub fn processed(&self) -> BTreeMap<TopicPartition, BTreeSet<i64>> {
        let mut processed: BTreeMap<TopicPartition, BTreeSet<i64>> = BTreeMap::new();
        self.with_events(|events| {
            for e in events {
                if let MemberEvent::Record {
                    partition, offset, ..
                } = &e.event
                {
                    processed
                        .entry(partition.clone())
                        .or_default()
                        .insert(*offset);
                }
            }
        });
        processed
    }

    /// How many records were processed.
    pub fn record_count(&self) -> usize {
        self.with_events(|events| {
            events
                .iter()
                .filter(|e| matches!(e.event, MemberEvent::Record { .. }))
                .count()
        })
    }

    /// The first event `select` picks, with its time.
    pub fn find<T>(&self, mut select: impl FnMut(&MemberEvent) -> Option<T>) -> Option<(f64, T)> {
        self.with_events(|events| {
            events
                .iter()
                .find_map(|e| select(&e.event).map(|found| (e.t, found)))
        })
    }

    /// Whether the member closed or was killed.
    pub fn ended(&self) -> bool {
        self.find(|e| matches!(e, MemberEvent::Closed { .. } | MemberEvent::Killed).then_some(()))
            .is_some()
    }

    /// The messages of every error event (and of lines that were no event).
    pub fn errors(&self) -> Vec<String> {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(|e| match &e.event {
                    MemberEvent::Error { message, fatal } => {
                        Some(format!("{message} (fatal: {fatal})"))
                    }
                    MemberEvent::Other(line) => Some(format!("unexpected output: {line}")),
                    _ => None,
                })
                .collect()
        })
    }

    /// The last `n` events other than records, committed offsets and
    /// progress, for failure messages.
    pub fn describe_tail(&self, n: usize) -> String {
        self.with_events(|events| {
            let chosen: Vec<&Stamped> = events
                .iter()
                .filter(|e| {
                    !matches!(
                        e.event,
                        MemberEvent::Record { .. }
                            | MemberEvent::Committed { .. }
                            | MemberEvent::Progress { .. }
                    )
                })
                .collect();
            let mut out = String::new();
            for e in &chosen[chosen.len().saturating_sub(n)..] {
                let _ = writeln!(out, "  {:.3} {:?}", e.t, e.event);
            }
            let _ = write!(out, "  ({} records)", self_records(events));
            out
        })
    }
}

fn self_records(events: &[Stamped]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e.event, MemberEvent::Record { .. }))
        .count()
}

// ---------------------------------------------------------------------------
// In-process members
// ---------------------------------------------------------------------------

/// Next offsets of processed records not committed yet, shared by an
/// [`InProcessMember`]'s poll loop and its [`StampedListener`].
pub type PendingCommits = Arc<Mutex<BTreeMap<TopicPartition, i64>>>;

/// A rebalance listener that writes assigned, revoked and lost events,
/// stamped inside the callback, with the member's whole assignment after
/// each change. Given [`PendingCommits`], it commits those of revoked
/// partitions before giving them up (and logs the commit), and forgets
/// those of lost ones.
#[derive(Debug)]
pub struct StampedListener {
    log: MemberLog,
    cooperative: bool,
    owned: BTreeSet<TopicPartition>,
    pending: Option<PendingCommits>,
}

impl StampedListener {
    /// A listener writing to `log`. `cooperative`: the callbacks report
    /// increments (cooperative-sticky) rather than whole assignments.
    pub fn new(log: MemberLog, cooperative: bool) -> Self {
        StampedListener {
            log,
            cooperative,
            owned: BTreeSet::new(),
            pending: None,
        }
    }

    /// Commits `pending` offsets of partitions as they are revoked.
    pub fn committing(mut self, pending: PendingCommits) -> Self {
        self.pending = Some(pending);
        self
    }

    fn removed(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
        lost: bool,
    ) {
        if partitions.is_empty() {
            return;
        }
        if let Some(pending) = &self.pending {
            let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
            let offsets: BTreeMap<TopicPartition, i64> = partitions
                .iter()
                .filter_map(|tp| pending.remove(tp).map(|next| (tp.clone(), next)))
                .collect();
            if !lost && !offsets.is_empty() {
                let request = offsets
                    .iter()
                    .map(|(tp, next)| (tp.clone(), OffsetAndMetadata::new(*next)))
                    .collect();
                // The consumer completes this commit before the rebalance
                // goes on; a failure would come out of the next poll.
                match context.commit_offsets(request) {
                    Ok(_) => self.log.push(MemberEvent::Committed {
                        offsets: offsets.into_iter().collect(),
                    }),
                    Err(e) => self.log.push(MemberEvent::Error {
                        message: format!("commit on revocation: {e}"),
                        fatal: false,
                    }),
                }
            }
        }
        if self.cooperative {
            for tp in partitions {
                self.owned.remove(tp);
            }
        } else {
            self.owned.clear();
        }
        let (partitions, assignment) = (partitions.to_vec(), self.owned.iter().cloned().collect());
        self.log.push(if lost {
            MemberEvent::Lost {
                partitions,
                assignment,
            }
        } else {
            MemberEvent::Revoked {
                partitions,
                assignment,
            }
        });
    }
}

impl RebalanceListener for StampedListener {
    fn on_partitions_assigned(
        &mut self,
        _: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        if !self.cooperative {
            self.owned.clear();
        }
        self.owned.extend(partitions.iter().cloned());
        self.log.push(MemberEvent::Assigned {
            partitions: partitions.to_vec(),
            assignment: self.owned.iter().cloned().collect(),
        });
    }

    fn on_partitions_revoked(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.removed(context, partitions, false);
    }

    fn on_partitions_lost(
        &mut self,
        context: &mut RebalanceContext<'_>,
        partitions: &[TopicPartition],
    ) {
        self.removed(context, partitions, true);
    }
}

/// Whether a member configured with `config` follows the cooperative
/// protocol (every one of its assignors supports it).
pub fn is_cooperative(config: &ConsumerConfig) -> bool {
    let mut assignors = config.partition_assignment_strategy.iter().peekable();
    assignors.peek().is_some()
        && assignors.all(|a| {
            a.supported_protocols()
                .contains(&RebalanceProtocol::Cooperative)
        })
}

/// A group member on the [`TestConsumer`] `C`, polled on its own thread
/// until [`stop`](Self::stop): it checks each record with the given
/// function, logs it, and with `commit_after_process` commits the
/// processed offsets after each poll (and logs them); a commit refused
/// during a rebalance is retried after the next poll, and the
/// [`StampedListener`] that logs its rebalance events commits what is
/// pending for partitions being revoked.
///
/// Poll and commit failures are logged as non-fatal errors; a panic of the
/// check function ends the thread, which [`assert_running`](Self::assert_running)
/// reports.
#[derive(Debug)]
pub struct InProcessMember {
    name: String,
    log: MemberLog,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InProcessMember {
    /// Creates the consumer on a new thread and subscribes it to `topics`.
    pub fn start<C: TestConsumer>(
        name: &str,
        config: ConsumerConfig,
        topics: &[&str],
        commit_after_process: bool,
        check: fn(&ConsumerRecord),
    ) -> InProcessMember {
        let log = MemberLog::default();
        let stop = Arc::new(AtomicBool::new(false));
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("member {name}"))
                .spawn(move || {
                    run_in_process::<C>(config, &topics, commit_after_process, check, &log, &stop)
                })
                .expect("spawn a member thread")
        };
        InProcessMember {
            name: name.to_string(),
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The member's log.
    pub fn log(&self) -> &MemberLog {
        &self.log
    }

    /// Panics if the member's thread ended before it was asked to stop.
    pub fn assert_running(&self) {
        let ended = self.thread.as_ref().is_none_or(JoinHandle::is_finished);
        assert!(
            !ended,
            "member {} stopped by itself (its thread's panic is printed above); last events:\n{}",
            self.name,
            self.log.describe_tail(20)
        );
    }

    /// Closes the consumer (a clean leave) and waits for the thread; a
    /// panic of the thread is passed on.
    pub fn stop(mut self) -> MemberLog {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        self.log.clone()
    }
}

impl Drop for InProcessMember {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run_in_process<C: TestConsumer>(
    config: ConsumerConfig,
    topics: &[String],
    commit_after_process: bool,
    check: fn(&ConsumerRecord),
    log: &MemberLog,
    stop: &AtomicBool,
) {
    let cooperative = is_cooperative(&config);
    let consumer = match C::build(config) {
        Ok(consumer) => consumer,
        Err(e) => {
            return log.push(MemberEvent::Error {
                message: format!("[{}] building the consumer: {e}", C::RUNTIME),
                fatal: true,
            });
        }
    };
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let pending = PendingCommits::default();
    let mut listener = StampedListener::new(log.clone(), cooperative);
    if commit_after_process {
        listener = listener.committing(pending.clone());
    }
    if let Err(e) = consumer.subscribe_with(&topics, listener) {
        return log.push(MemberEvent::Error {
            message: format!("[{}] subscribe: {e}", C::RUNTIME),
            fatal: true,
        });
    }
    log.push(MemberEvent::Ready);
    let mut count = 0;
    while !stop.load(Ordering::SeqCst) {
        let records = match consumer.poll(IN_PROCESS_POLL) {
            Ok(records) => records,
            Err(e) => {
                log.push(MemberEvent::Error {
                    message: format!("[{}] poll: {e}", C::RUNTIME),
                    fatal: false,
                });
                thread::sleep(IN_PROCESS_POLL);
                continue;
            }
        };
        let mut processed: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for record in &records {
            check(record);
            count += 1;
            processed.insert(record.topic_partition().clone(), record.offset());
            log.push(MemberEvent::Record {
                partition: record.topic_partition().clone(),
                offset: record.offset(),
                key: record
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
            });
        }
        if !commit_after_process {
            continue;
        }
        let offsets = {
            let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend(processed.into_iter().map(|(tp, last)| (tp, last + 1)));
            pending.clone()
        };
        if offsets.is_empty() {
            continue;
        }
        let request = offsets
            .iter()
            .map(|(tp, next)| (tp.clone(), OffsetAndMetadata::new(*next)))
            .collect();
        match consumer.commit_offsets(&request) {
            Ok(()) => {
                // The listener, the only other user, runs inside `poll`.
                pending.lock().unwrap_or_else(|e| e.into_inner()).clear();
                log.push(MemberEvent::Committed {
                    offsets: offsets.into_iter().collect(),
                });
            }
            // Kept pending: retried after the next poll.
            Err(e) => log.push(MemberEvent::Error {
                message: format!("[{}] commit: {e}", C::RUNTIME),
                fatal: false,
            }),
        }
    }
    log.push(MemberEvent::Stopping {
        reason: "stop".into(),
    });
    if let Err(e) = consumer.close() {
        log.push(MemberEvent::Error {
            message: format!("[{}] close: {e}", C::RUNTIME),
            fatal: true,
        });
    }
    log.push(MemberEvent::Closed {
        count,
        reason: "stop".into(),
    });
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/// The `--commit` modes of a member process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// No commits at all.
    None,
    /// Auto-commit every 500 ms.
    Auto,
    /// A synchronous commit of the processed offsets after each poll.
    AfterProcess,
}

impl Commit {
    /// The command-line value.
    pub fn as_arg(self) -> &'static str {
        match self {
            Commit::None => "none",
            Commit::Auto => "auto",
            Commit::AfterProcess => "after-process",
        }
    }
}

/// Which member program to run.
#[derive(Debug, Clone, Copy)]
pub enum Program<'a> {
    /// `odradek_member` (pass `env!("CARGO_BIN_EXE_odradek_member")`) on
    /// one adapter: `tokio`, `async-std`, `smol` or `blocking`.
    Odradek {
        /// The binary.
        binary: &'a Path,
        /// The `--runtime`.
        runtime: &'a str,
    },
    /// `tests/python/group_member.py` with `--client confluent` or
    /// `--client kafka-python`.
    Python {
        /// The `--client`.
        client: &'a str,
    },
}

/// The command line of a member process (see `group_member.py`).
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// `--bootstrap`.
    pub bootstrap: String,
    /// `--group`.
    pub group: String,
    /// `--topics`.
    pub topics: Vec<String>,
    /// `--assignor`.
    pub assignor: String,
    /// `--session-timeout-ms` (by default the broker's test session).
    pub session_timeout_ms: u64,
    /// `--heartbeat-ms` (1000 by default here).
    pub heartbeat_ms: u64,
    /// `--commit` (after-process by default).
    pub commit: Commit,
    /// `--instance-id`.
    pub instance_id: Option<String>,
    /// `--client-id`.
    pub client_id: Option<String>,
    /// `--max-records`.
    pub max_records: Option<u64>,
    /// `--idle-exit-s`.
    pub idle_exit_s: Option<f64>,
    /// `--run-s`.
    pub run_s: Option<f64>,
    /// `--quiet-records`.
    pub quiet_records: bool,
    /// `--process-ms` (the Odradek member only): time spent on each batch
    /// before the next poll.
    pub process_ms: Option<u64>,
}

impl MemberSpec {
    /// A member of `group` on `broker` reading `topics` with `assignor`;
    /// the broker's session and heartbeat for tests
    /// ([`BrokerKind::group_timeouts`](crate::BrokerKind::group_timeouts)),
    /// commit after processing.
    pub fn new(broker: &Broker, group: &str, topics: &[&str], assignor: &str) -> MemberSpec {
        let (session, heartbeat) = broker.kind().group_timeouts();
        MemberSpec {
            bootstrap: broker.bootstrap(),
            group: group.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            assignor: assignor.to_string(),
            session_timeout_ms: session.as_millis() as u64,
            heartbeat_ms: heartbeat.as_millis() as u64,
            commit: Commit::AfterProcess,
            instance_id: None,
            client_id: None,
            max_records: None,
            idle_exit_s: None,
            run_s: None,
            quiet_records: false,
            process_ms: None,
        }
    }

    /// The arguments both member programs take (stdin stays open: the
    /// member stops on "stop" or when the test drops it).
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--bootstrap".to_string(),
            self.bootstrap.clone(),
            "--group".into(),
            self.group.clone(),
            "--topics".into(),
            self.topics.join(","),
            "--assignor".into(),
            self.assignor.clone(),
            "--session-timeout-ms".into(),
            self.session_timeout_ms.to_string(),
            "--heartbeat-ms".into(),
            self.heartbeat_ms.to_string(),
            "--commit".into(),
            self.commit.as_arg().into(),
        ];
        let optional = [
            ("--instance-id", self.instance_id.clone()),
            ("--client-id", self.client_id.clone()),
            ("--max-records", self.max_records.map(|n| n.to_string())),
            ("--idle-exit-s", self.idle_exit_s.map(|s| s.to_string())),
            ("--run-s", self.run_s.map(|s| s.to_string())),
            ("--process-ms", self.process_ms.map(|ms| ms.to_string())),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                args.push(flag.into());
                args.push(value);
            }
        }
        if self.quiet_records {
            args.push("--quiet-records".into());
        }
        args
    }
}

/// How a member process ended.
#[derive(Debug, Clone)]
struct Exit {
    success: bool,
    detail: String,
}

/// A member child process ([`Program`]) whose output a thread parses into
/// its [`MemberLog`] as it arrives.
///
/// Dropping it kills the process (by its PID) if it still runs.
#[derive(Debug)]
pub struct MemberProcess {
    name: String,
    pid: u32,
    log: MemberLog,
    to_stdin: Option<mpsc::Sender<String>>,
    exit: Arc<Mutex<Option<Exit>>>,
    reader: Option<JoinHandle<()>>,
    ended_on_purpose: bool,
}

impl MemberProcess {
    /// Starts `program` with `spec`.
    pub fn spawn(
        name: &str,
        program: Program<'_>,
        spec: &MemberSpec,
    ) -> Result<MemberProcess, HarnessError> {
        let mut args = spec.args();
        let process = match program {
            Program::Odradek { binary, runtime } => {
                args.extend(["--runtime".to_string(), runtime.to_string()]);
                Interactive::spawn(Command::new(binary).args(&args))?
            }
            Program::Python { client } => {
                args.extend(["--client".to_string(), client.to_string()]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Interactive::python(&python_script("group_member.py"), &args)?
            }
        };
        let pid = process.pid();
        let log = MemberLog::default();
        let exit = Arc::new(Mutex::new(None));
        let (to_stdin, commands) = mpsc::channel();
        let reader = {
            let (log, exit) = (log.clone(), exit.clone());
            thread::Builder::new()
                .name(format!("member {name} output"))
                .spawn(move || pump(process, &log, &commands, &exit))
                .map_err(|e| HarnessError::io("spawning a member's reader thread", e))?
        };
        Ok(MemberProcess {
            name: name.to_string(),
            pid,
            log,
            to_stdin: Some(to_stdin),
            exit,
            reader: Some(reader),
            ended_on_purpose: false,
        })
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The member's log.
    pub fn log(&self) -> &MemberLog {
        &self.log
    }

    fn exited(&self) -> Option<Exit> {
        self.exit.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits up to `limit` for the member to report that it subscribed.
    /// Fails if its client does not implement the assignor, if it exits,
    /// or if it says nothing in time.
    pub fn wait_ready(&self, limit: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + limit;
        loop {
            let ready = self.log.find(|e| match e {
                MemberEvent::Ready => Some(Ok(())),
                MemberEvent::Unsupported { message } => Some(Err(message.clone())),
                _ => None,
            });
            match ready {
                Some((_, Ok(()))) => return Ok(()),
                Some((_, Err(message))) => {
                    return Err(HarnessError::new(format!(
                        "member {} does not support its assignor: {message}",
                        self.name
                    )));
                }
                None => {}
            }
            if let Some(exit) = self.exited() {
                return Err(HarnessError::new(format!(
                    "member {} exited before it was ready: {}",
                    self.name, exit.detail
                )));
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::new(format!(
                    "member {} not ready within {limit:?}",
                    self.name
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics if the process ended without being stopped or killed.
    pub fn assert_running(&self) {
        if let Some(exit) = self.exited() {
            panic!(
                "member {} (pid {}) ended by itself: {}; last events:\n{}",
                self.name,
                self.pid,
                exit.detail,
                self.log.describe_tail(20)
            );
        }
    }

    /// SIGKILLs the process by its PID, reads what it printed before, and
    /// ends its log with [`MemberEvent::Killed`] stamped with the time of
    /// the kill, which it returns.
    pub fn kill(&mut self) -> f64 {
        // Never signal a PID the process may have given up.
        self.assert_running();
        let status = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .unwrap_or_else(|e| panic!("running kill -KILL {}: {e}", self.pid));
        assert!(status.success(), "kill -KILL {}: {status}", self.pid);
        let t = unix_now();
        self.ended_on_purpose = true;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log.push_at(t, MemberEvent::Killed);
        t
    }

    /// Asks the member to stop (it closes its consumer and leaves), without
    /// waiting; see [`stop`](Self::stop).
    pub fn request_stop(&mut self) {
        self.ended_on_purpose = true;
        if let Some(to_stdin) = &self.to_stdin {
            let _ = to_stdin.send("stop".into());
        }
    }

    /// Sends "stop", waits up to `limit` for the member to close and exit,
    /// and fails unless it exited with status 0.
    pub fn stop(&mut self, limit: Duration) -> Result<(), String> {
        self.request_stop();
        let deadline = Instant::now() + limit;
        while self.exited().is_none() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "member {} did not exit within {limit:?} of \"stop\"; last events:\n{}",
                    self.name,
                    self.log.describe_tail(20)
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        match self.exited() {
            Some(exit) if exit.success => Ok(()),
            exit => Err(format!(
                "member {} did not stop cleanly: {exit:?}; last events:\n{}",
                self.name,
                self.log.describe_tail(20)
            )),
        }
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        // The reader sees the channel close, drops the process (killing it
        // by its PID) and ends.
        self.to_stdin = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread of a [`MemberProcess`]: parses lines into `log`,
/// forwards lines from `commands` to the process's stdin, and records how
/// the process exited once its stdout closes.
fn pump(
    mut process: Interactive,
    log: &MemberLog,
    commands: &mpsc::Receiver<String>,
    exit: &Mutex<Option<Exit>>,
) {
    loop {
        match commands.try_recv() {
            Ok(line) => {
                if let Err(e) = process.send_line(&line) {
                    log.push(MemberEvent::Other(format!(
                        "the test could not write {line:?}: {e}"
                    )));
                }
            }
            Err(mpsc::TryRecvError::Empty) => {}
            // The test dropped the member: dropping `process` kills it.
            Err(mpsc::TryRecvError::Disconnected) => return,
        }
        let asked = Instant::now();
        match process.next_line(PUMP_WAIT) {
            Ok(line) => log.push_at_line(&line),
            Err(e) => {
                // `next_line` fails on a timeout (after PUMP_WAIT) or at
                // once when stdout closed; the message tells them apart.
                let closed =
                    e.message().contains("closed its stdout") || asked.elapsed() < PUMP_WAIT / 2;
                if closed {
                    let stderr = process.stderr();
                    let result = process.finish(EXIT_WAIT);
                    let detail = match &result {
                        Ok(()) => "exited with status 0".to_string(),
                        Err(e) => {
                            let first = e.message().lines().next().unwrap_or("").to_string();
                            format!("{first}\n--- stderr ---\n{}", stderr.trim_end())
                        }
                    };
                    *exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(Exit {
                        success: result.is_ok(),
                        detail,
                    });
                    return;
                }
            }
        }
    }
}

impl MemberLog {
    fn push_at_line(&self, line: &str) {
        let stamped = Stamped::parse(line);
        self.lock().push(stamped);
    }
}

// ---------------------------------------------------------------------------
// A producer in the background
// ---------------------------------------------------------------------------

/// Appends numbered records to every partition of a topic on a thread,
/// `per_tick` records per partition every `tick`, until stopped.
#[derive(Debug)]
pub struct NumberedProducer {
    stop: Arc<AtomicBool>,
    produced: Arc<Mutex<BTreeMap<TopicPartition, i64>>>,
    thread: Option<JoinHandle<()>>,
}

impl NumberedProducer {
    /// Starts producing to partitions `0..partitions` of `topic`, which
    /// must be empty.
    pub fn start(
        broker: &Broker,
        topic: &str,
        partitions: i32,
        per_tick: usize,
        tick: Duration,
    ) -> NumberedProducer {
        let mut conn = Connection::connect(broker.addr()).expect("producer connection");
        let stop = Arc::new(AtomicBool::new(false));
        let produced = Arc::new(Mutex::new(
            (0..partitions)
                .map(|p| (TopicPartition::new(topic, p), 0))
                .collect::<BTreeMap<_, _>>(),
        ));
        let thread = {
            let (stop, produced, topic) = (stop.clone(), produced.clone(), topic.to_string());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    for p in 0..partitions {
                        let tp = TopicPartition::new(topic.as_str(), p);
                        let next = produced.lock().unwrap_or_else(|e| e.into_inner())[&tp];
                        let end = produce_numbered(
                            &mut conn,
                            &topic,
                            p,
                            next,
                            &[per_tick],
                            Compression::None,
                        );
                        produced
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(tp, end);
                    }
                    thread::sleep(tick);
                }
            })
        };
        NumberedProducer {
            stop,
            produced,
            thread: Some(thread),
        }
    }

    /// The end offsets written so far.
    pub fn produced(&self) -> BTreeMap<TopicPartition, i64> {
        self.produced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops producing and returns the end offset of every partition; a
    /// failure of the producer thread is passed on.
    pub fn stop(mut self) -> BTreeMap<TopicPartition, i64> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        self.produced()
    }
}

impl Drop for NumberedProducer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/// How an ownership interval ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnershipEnd {
    /// A revocation: the partition was given up cleanly.
    Revoked,
    /// The member reported it lost.
    Lost,
    /// The member closed.
    Closed,
    /// The test killed the member.
    Killed,
    /// The log ends with the partition still owned.
    Open,
}

/// One member owning one partition from `from` to `to` (Unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Ownership {
    /// The member.
    pub member: String,
    /// The partition.
    pub partition: TopicPartition,
    /// When the member was told it owns the partition.
    pub from: f64,
    /// When it stopped owning it (`f64::INFINITY` while open).
    pub to: f64,
    /// How the ownership ended.
    pub end: OwnershipEnd,
}

/// The ownership intervals in `member`'s events: a partition is owned from
/// the "assigned" event that first lists it in the assignment until a
/// "revoked" or "lost" event lists it, or the member closes or is killed.
pub fn ownership(member: &str, events: &[Stamped]) -> Vec<Ownership> {
    let mut open: BTreeMap<TopicPartition, f64> = BTreeMap::new();
    let mut done = Vec::new();
    let mut close = |tp: TopicPartition, from: f64, to: f64, end: OwnershipEnd| {
        done.push(Ownership {
            member: member.to_string(),
            partition: tp,
            from,
            to,
            end,
        });
    };
    for e in events {
        match &e.event {
            MemberEvent::Assigned { assignment, .. } => {
                let now: BTreeSet<&TopicPartition> = assignment.iter().collect();
                let gone: Vec<TopicPartition> = open
                    .keys()
                    .filter(|tp| !now.contains(tp))
                    .cloned()
                    .collect();
                for tp in gone {
                    let from = open.remove(&tp).unwrap_or(e.t);
                    close(tp, from, e.t, OwnershipEnd::Revoked);
                }
                for tp in assignment {
                    open.entry(tp.clone()).or_insert(e.t);
                }
            }
            MemberEvent::Revoked { partitions, .. } | MemberEvent::Lost { partitions, .. } => {
                let end = if matches!(e.event, MemberEvent::Lost { .. }) {
                    OwnershipEnd::Lost
                } else {
                    OwnershipEnd::Revoked
                };
                for tp in partitions {
                    if let Some(from) = open.remove(tp) {
                        close(tp.clone(), from, e.t, end);
                    }
                }
            }
            MemberEvent::Closed { .. } | MemberEvent::Killed => {
                let end = if e.event == MemberEvent::Killed {
                    OwnershipEnd::Killed
                } else {
                    OwnershipEnd::Closed
                };
                for (tp, from) in std::mem::take(&mut open) {
                    close(tp, from, e.t, end);
                }
            }
            _ => {}
        }
    }
    for (tp, from) in open {
        close(tp, from, f64::INFINITY, OwnershipEnd::Open);
    }
    done
}

/// Pairs of intervals in which two different members owned the same
/// partition at the same time.
pub fn overlaps(intervals: &[Ownership]) -> Vec<(Ownership, Ownership)> {
    let mut found = Vec::new();
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            if a.partition == b.partition && a.member != b.member && a.from < b.to && b.from < a.to
            {
                found.push((a.clone(), b.clone()));
            }
        }
    }
    found
}

/// Records `member` processed while it did not own their partition.
pub fn records_outside_ownership(
    member: &str,
    events: &[Stamped],
    intervals: &[Ownership],
) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            MemberEvent::Record {
                partition, offset, ..
            } => {
                let owned = intervals.iter().any(|o| {
                    o.member == member && &o.partition == partition && o.from <= e.t && e.t <= o.to
                });
                (!owned).then(|| format!("{member} processed {partition}@{offset} at {:.3}", e.t))
            }
            _ => None,
        })
        .collect()
}

/// Checks every ownership interval of every member against what the group
/// processed and committed before it began:
///
/// * within one interval a member processes consecutive offsets;
/// * its first record is at or after the group's last logged commit for
///   the partition (it resumed from the committed offset, not earlier);
/// * its first record is at most one past the highest offset anyone
///   processed before (nothing skipped).
///
/// With commits after processing and a clean handover the two bounds
/// meet, so the new owner must start exactly there; after a kill the
/// records processed but not committed come again.
pub fn handover_problems(members: &[(&str, &[Stamped])], intervals: &[Ownership]) -> Vec<String> {
    let mut problems = Vec::new();
    for o in intervals {
        let Some((_, events)) = members.iter().find(|(name, _)| *name == o.member) else {
            problems.push(format!("no log for member {}", o.member));
            continue;
        };
        let offsets: Vec<i64> = events
            .iter()
            .filter(|e| o.from <= e.t && e.t <= o.to)
            .filter_map(|e| match &e.event {
                MemberEvent::Record {
                    partition, offset, ..
                } if partition == &o.partition => Some(*offset),
                _ => None,
            })
            .collect();
        let Some(&first) = offsets.first() else {
            continue;
        };
        if let Some(w) = offsets.windows(2).find(|w| w[1] != w[0] + 1) {
            problems.push(format!(
                "{} on {} from {:.3}: offset {} followed {}",
                o.member, o.partition, o.from, w[1], w[0]
            ));
        }
        let mut processed_before = -1;
        let mut committed_before = 0;
        for (_, events) in members {
            for e in events.iter().take_while(|e| e.t < o.from) {
                match &e.event {
                    MemberEvent::Record {
                        partition, offset, ..
                    } if partition == &o.partition => {
                        processed_before = processed_before.max(*offset);
                    }
                    MemberEvent::Committed { offsets } => {
                        for (tp, next) in offsets {
                            if tp == &o.partition {
                                committed_before = committed_before.max(*next);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if first > processed_before + 1 {
            problems.push(format!(
                "{} on {} from {:.3}: started at {first}, skipping {}..{first} \
                 (the highest offset processed before was {processed_before})",
                o.member,
                o.partition,
                o.from,
                processed_before + 1
            ));
        }
        if first < committed_before {
            problems.push(format!(
                "{} on {} from {:.3}: started at {first}, before the committed offset {committed_before}",
                o.member, o.partition, o.from
            ));
        }
    }
    problems
}

/// The offsets in `0..end` of each partition of `end` that nobody
/// processed, and any processed offset at or past the end.
pub fn coverage_gaps(
    processed: &BTreeMap<TopicPartition, BTreeSet<i64>>,
    end: &BTreeMap<TopicPartition, i64>,
) -> Vec<String> {
    let empty = BTreeSet::new();
    let mut gaps = Vec::new();
    for (tp, &end) in end {
        let seen = processed.get(tp).unwrap_or(&empty);
        let mut missing = (0..end).filter(|o| !seen.contains(o)).peekable();
        if let Some(&first) = missing.peek() {
            let count = missing.count();
            gaps.push(format!(
                "{tp}: {count} of 0..{end} never processed, from {first}"
            ));
        }
        if let Some(beyond) = seen.range(end..).next() {
            gaps.push(format!("{tp}: processed {beyond}, past the end {end}"));
        }
    }
    for tp in processed.keys().filter(|tp| !end.contains_key(*tp)) {
        gaps.push(format!("{tp}: processed but never produced to"));
    }
    gaps
}

/// Merges processed offsets of several members.
pub fn union_processed(logs: &[&MemberLog]) -> BTreeMap<TopicPartition, BTreeSet<i64>> {
    let mut all: BTreeMap<TopicPartition, BTreeSet<i64>> = BTreeMap::new();
    for log in logs {
        for (tp, offsets) in log.processed() {
            all.entry(tp).or_default().extend(offsets);
        }
    }
    all
}

/// `Ok` when the members' assignments are all non-empty, pairwise disjoint
/// and together exactly `all`; otherwise a description of them.
pub fn split_among(
    logs: &[(&str, &MemberLog)],
    all: &BTreeSet<TopicPartition>,
) -> Result<(), String> {
    let assignments: Vec<(&str, BTreeSet<TopicPartition>)> = logs
        .iter()
        .map(|(name, log)| (*name, log.assignment()))
        .collect();
    let total: usize = assignments.iter().map(|(_, a)| a.len()).sum();
    let union: BTreeSet<&TopicPartition> = assignments.iter().flat_map(|(_, a)| a).collect();
    let ok = assignments.iter().all(|(_, a)| !a.is_empty())
        && total == all.len()
        && union.len() == all.len()
        && union.iter().all(|tp| all.contains(*tp));
    if ok {
        return Ok(());
    }
    let mut out = String::new();
    for (name, a) in &assignments {
        let parts: Vec<String> = a.iter().map(ToString::to_string).collect();
        let _ = write!(out, "{name}: [{}] ", parts.join(" "));
    }
    Err(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn at(t: f64, event: MemberEvent) -> Stamped {
        Stamped { t, event }
    }

    fn assigned(t: f64, partitions: &[i32], assignment: &[i32]) -> Stamped {
        at(
            t,
            MemberEvent::Assigned {
                partitions: partitions.iter().map(|&p| tp(p)).collect(),
                assignment: assignment.iter().map(|&p| tp(p)).collect(),
            },
        )
    }

    fn revoked(t: f64, partitions: &[i32], assignment: &[i32]) -> Stamped {
        at(
            t,
            MemberEvent::Revoked {
                partitions: partitions.iter().map(|&p| tp(p)).collect(),
                assignment: assignment.iter().map(|&p| tp(p)).collect(),
            },
        )
    }

    fn record(t: f64, p: i32, offset: i64) -> Stamped {
        at(
            t,
            MemberEvent::Record {
                partition: tp(p),
                offset,
                key: Some(format!("k{offset}")),
            },
        )
    }

    fn committed(t: f64, p: i32, next: i64) -> Stamped {
        at(
            t,
            MemberEvent::Committed {
                offsets: vec![(tp(p), next)],
            },
        )
    }

    #[test]
    fn parses_the_python_members_lines() {
        let line = r#"{"event": "assigned", "partitions": [["t", 1]], "assignment": [["t", 0], ["t", 1]], "t": 12.5}"#;
        assert_eq!(Stamped::parse(line), assigned(12.5, &[1], &[0, 1]));
        let line = r#"{"event": "record", "topic": "t", "partition": 2, "offset": 7, "key": "k7", "t": 1.0}"#;
        assert_eq!(Stamped::parse(line), record(1.0, 2, 7));
        let line = r#"{"event": "committed", "offsets": [["t", 2, 8]], "t": 2.0}"#;
        assert_eq!(Stamped::parse(line), committed(2.0, 2, 8));
        assert!(matches!(
            Stamped::parse("Traceback (most recent call last):").event,
            MemberEvent::Other(_)
        ));
    }

    #[test]
    fn intervals_follow_increments_revocations_and_kills() {
        let a = [
            assigned(1.0, &[0, 1], &[0, 1]),
            revoked(5.0, &[1], &[0]),
            at(9.0, MemberEvent::Killed),
        ];
        let got = ownership("a", &a);
        let spans: Vec<(i32, f64, f64, OwnershipEnd)> = got
            .iter()
            .map(|o| (o.partition.partition(), o.from, o.to, o.end))
            .collect();
        assert_eq!(
            spans,
            vec![
                (1, 1.0, 5.0, OwnershipEnd::Revoked),
                (0, 1.0, 9.0, OwnershipEnd::Killed)
            ]
        );
        // An eager "assigned" replaces the whole assignment.
        let eager = [assigned(1.0, &[0], &[0]), assigned(3.0, &[1], &[1])];
        let got = ownership("e", &eager);
        assert_eq!(got[0].to, 3.0);
        assert_eq!(got[1].to, f64::INFINITY);
    }

    #[test]
    fn overlapping_owners_are_found_and_handovers_are_not() {
        let a = ownership("a", &[assigned(1.0, &[0], &[0]), revoked(5.0, &[0], &[])]);
        let late_b = ownership("b", &[assigned(6.0, &[0], &[0])]);
        let early_b = ownership("b", &[assigned(4.0, &[0], &[0])]);
        assert!(overlaps(&[a.clone(), late_b].concat()).is_empty());
        assert_eq!(overlaps(&[a.clone(), early_b].concat()).len(), 1);
        let killed = ownership(
            "k",
            &[assigned(1.0, &[0], &[0]), at(3.0, MemberEvent::Killed)],
        );
        let after = ownership("b", &[assigned(3.5, &[0], &[0])]);
        assert!(overlaps(&[killed, after].concat()).is_empty());
    }

    #[test]
    fn records_must_fall_inside_ownership() {
        let events = [
            assigned(1.0, &[0], &[0]),
            record(2.0, 0, 0),
            revoked(3.0, &[0], &[]),
            record(4.0, 0, 1),
        ];
        let intervals = ownership("a", &events);
        assert_eq!(records_outside_ownership("a", &events, &intervals).len(), 1);
    }

    #[test]
    fn handovers_must_resume_at_the_commit_without_skipping() {
        let a = [
            assigned(1.0, &[0], &[0]),
            record(2.0, 0, 0),
            record(2.0, 0, 1),
            committed(2.1, 0, 2),
            revoked(3.0, &[0], &[]),
        ];
        let check = |b: &[Stamped]| {
            let intervals = [ownership("a", &a), ownership("b", b)].concat();
            handover_problems(&[("a", &a), ("b", b)], &intervals)
        };
        let resumes = [
            assigned(4.0, &[0], &[0]),
            record(5.0, 0, 2),
            record(5.0, 0, 3),
        ];
        assert_eq!(check(&resumes), Vec::<String>::new());
        let skips = [assigned(4.0, &[0], &[0]), record(5.0, 0, 3)];
        assert_eq!(check(&skips).len(), 1, "{:?}", check(&skips));
        let rewinds = [assigned(4.0, &[0], &[0]), record(5.0, 0, 1)];
        assert_eq!(check(&rewinds).len(), 1, "{:?}", check(&rewinds));
        let gap = [
            assigned(4.0, &[0], &[0]),
            record(5.0, 0, 2),
            record(5.0, 0, 4),
        ];
        assert_eq!(check(&gap).len(), 1, "{:?}", check(&gap));
    }

    #[test]
    fn coverage_reports_what_nobody_processed() {
        let end: BTreeMap<TopicPartition, i64> = [(tp(0), 3), (tp(1), 2)].into();
        let mut processed: BTreeMap<TopicPartition, BTreeSet<i64>> =
            [(tp(0), [0, 1, 2].into())].into();
        assert_eq!(coverage_gaps(&processed, &end).len(), 1);
        processed.insert(tp(1), [0, 1].into());
        assert!(coverage_gaps(&processed, &end).is_empty());
    }
}
