//! Equipment for consumer groups shared with independent clients.
//!
//! * [`PythonMember`] runs `tests/python/group_member.py` (confluent-kafka
//!   or kafka-python) as an [`Interactive`] child and keeps what its JSON
//!   lines report: its current assignment, the records it consumed and its
//!   errors.
//! * [`OdradekMember`] is the in-process member: a [`TestConsumer`] that
//!   checks and records every record it polls and commits after each batch.
//! * [`describe_group`] asks the broker (DescribeGroups) for a group's
//!   state and member ids.
//! * [`range_assignment`] and [`roundrobin_assignment`] say what the range
//!   and round-robin assignors must hand out, from the members' sorted ids,
//!   as the Kafka protocol documents them (every client implements the
//!   same definition, so the result does not depend on who leads).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use odradek_core::protocol::messages::DescribeGroupsRequest;
use odradek_core::{Error, GroupMetadata, TopicPartition};
use serde_json::Value;

use crate::driver::Connection;
use crate::suite::{RebalanceLog, TestConsumer, check_numbered};
use crate::{Broker, HarnessError, Interactive, python_script};

/// Who consumed which record: partition and offset, in the order consumed.
pub type Consumed = Vec<(TopicPartition, i64)>;

/// The independent client a [`PythonMember`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonClient {
    /// confluent-kafka (librdkafka).
    Confluent,
    /// kafka-python.
    KafkaPython,
}

impl PythonClient {
    /// The name `group_member.py --client` takes.
    pub fn name(self) -> &'static str {
        match self {
            PythonClient::Confluent => "confluent",
            PythonClient::KafkaPython => "kafka-python",
        }
    }
}

impl fmt::Display for PythonClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a [`PythonMember`] joins: the group settings every member of an
/// interop group must share.
#[derive(Debug, Clone)]
pub struct PythonMemberSpec {
    /// Which client.
    pub client: PythonClient,
    /// The group.
    pub group: String,
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// The one assignor (`range`, `roundrobin`, `sticky`, `cooperative-sticky`).
    pub assignor: String,
    /// `session.timeout.ms`.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// The client id, which is how the test recognises the member in
    /// DescribeGroups.
    pub client_id: String,
}

/// A confluent-kafka or kafka-python group member in a child process
/// (`tests/python/group_member.py`, committing after each processed batch).
///
/// Call [`pump`](Self::pump) often: it reads what the member printed since
/// and updates the member's assignment, records and errors.
pub struct PythonMember {
    spec: PythonMemberSpec,
    process: Interactive,
    assignment: BTreeSet<TopicPartition>,
    assignment_changes: usize,
    consumed: Consumed,
    errors: Vec<String>,
    closed: bool,
    exited: Option<String>,
}

impl PythonMember {
    /// Starts the member against `broker` and waits (up to 30 s) until it
    /// has subscribed. Fails if the client does not support the assignor
    /// or the process dies.
    pub fn start(broker: &Broker, spec: PythonMemberSpec) -> Result<PythonMember, HarnessError> {
        let args = [
            "--client".to_string(),
            spec.client.name().into(),
            "--bootstrap".into(),
            broker.bootstrap(),
            "--group".into(),
            spec.group.clone(),
            "--topics".into(),
            spec.topics.join(","),
            "--assignor".into(),
            spec.assignor.clone(),
            "--session-timeout-ms".into(),
            spec.session_timeout.as_millis().to_string(),
            "--heartbeat-ms".into(),
            spec.heartbeat_interval.as_millis().to_string(),
            "--commit".into(),
            "after-process".into(),
            "--client-id".into(),
            spec.client_id.clone(),
            // A backstop: the test stops it with "stop" long before.
            "--run-s".into(),
            "240".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut process = Interactive::python(&python_script("group_member.py"), &args)?;
        loop {
            let line = process.next_line(Duration::from_secs(30))?;
            let event: Value = serde_json::from_str(&line).map_err(|e| {
                HarnessError::new(format!("{}: not JSON ({e}): {line}", spec.client))
            })?;
            match event["event"].as_str() {
                Some("ready") => break,
                Some("unsupported") => {
                    return Err(HarnessError::new(format!(
                        "{} does not support the {} assignor: {line}",
                        spec.client, spec.assignor
                    )));
                }
                _ => {}
            }
        }
        Ok(PythonMember {
            spec,
            process,
            assignment: BTreeSet::new(),
            assignment_changes: 0,
            consumed: Vec::new(),
            errors: Vec::new(),
            closed: false,
            exited: None,
        })
    }

    /// Which client this is.
    pub fn client(&self) -> PythonClient {
        self.spec.client
    }

    /// The client id it joined with.
    pub fn client_id(&self) -> &str {
        &self.spec.client_id
    }

    /// Reads everything the member printed so far without waiting. Panics
    /// on a line that is not one of `group_member.py`'s events, on a
    /// record whose key does not match its offset (the test's numbered
    /// records), and on a fatal client error.
    pub fn pump(&mut self) {
        while self.exited.is_none() {
            match self.process.next_line(Duration::ZERO) {
                Ok(line) => self.handle(&line),
                // `Interactive` reports a quiet process and one whose
                // stdout closed the same way; only the latter is final.
                Err(e) if e.message().contains("closed its stdout") => {
                    self.exited = Some(e.message().to_string());
                }
                Err(_) => return,
            }
        }
    }

    fn handle(&mut self, line: &str) {
        let client = self.spec.client;
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{client}: a line that is not JSON ({e}): {line}"));
        match event["event"].as_str() {
            Some("assigned" | "revoked" | "lost") => {
                let assignment = partitions_of(&event["assignment"])
                    .unwrap_or_else(|| panic!("{client}: bad assignment in {line}"));
                if assignment != self.assignment {
                    self.assignment_changes += 1;
                }
                self.assignment = assignment;
            }
            Some("record") => {
                let (Some(topic), Some(partition), Some(offset)) = (
                    event["topic"].as_str(),
                    event["partition"].as_i64(),
                    event["offset"].as_i64(),
                ) else {
                    panic!("{client}: bad record event {line}");
                };
                assert_eq!(
                    event["key"].as_str(),
                    Some(format!("k{offset}").as_str()),
                    "{client}: the key of {topic}-{partition}@{offset}"
                );
                self.consumed
                    .push((TopicPartition::new(topic, partition as i32), offset));
            }
            Some("error") => {
                assert_ne!(
                    event["fatal"].as_bool(),
                    Some(true),
                    "{client}: fatal error: {line}\n--- stderr ---\n{}",
                    self.process.stderr()
                );
                self.errors.push(line.to_string());
            }
            Some("closed") => self.closed = true,
            // Commits are checked at the coordinator instead.
            Some("ready" | "stopping" | "progress" | "committed") => {}
            _ => panic!("{client}: unknown event {line}"),
        }
    }

    /// Panics (with everything it printed) if the process has ended.
    pub fn assert_running(&self) {
        if let Some(exit) = &self.exited {
            panic!("{} ended unexpectedly: {exit}", self.spec.client);
        }
    }

    /// The member's whole assignment after the last rebalance callback.
    pub fn assignment(&self) -> &BTreeSet<TopicPartition> {
        &self.assignment
    }

    /// How many times its assignment changed.
    pub fn assignment_changes(&self) -> usize {
        self.assignment_changes
    }

    /// The records it consumed, in order.
    pub fn consumed(&self) -> &Consumed {
        &self.consumed
    }

    /// The non-fatal errors it reported (as printed).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Asks the member to stop (it leaves the group), without waiting.
    pub fn request_stop(&mut self) {
        if self.exited.is_none() {
            // A member that already exited is reported by `finish`.
            let _ = self.process.send_line("stop");
        }
    }

    /// Waits up to `limit` for the member to print "closed" and exit 0.
    pub fn finish(mut self, limit: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + limit;
        while !self.closed && self.exited.is_none() && Instant::now() < deadline {
            self.pump();
            std::thread::sleep(Duration::from_millis(20));
        }
        self.process
            .finish(deadline.saturating_duration_since(Instant::now()))
    }
}

impl fmt::Debug for PythonMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PythonMember")
            .field("client", &self.spec.client)
            .field("pid", &self.process.pid())
            .field("assignment", &self.assignment)
            .field("consumed", &self.consumed.len())
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

/// `[[topic, partition], ...]` as `group_member.py` prints partitions.
fn partitions_of(value: &Value) -> Option<BTreeSet<TopicPartition>> {
    value
        .as_array()?
        .iter()
        .map(|pair| {
            let topic = pair.get(0)?.as_str()?;
            let partition = pair.get(1)?.as_i64()?;
            Some(TopicPartition::new(topic, i32::try_from(partition).ok()?))
        })
        .collect()
}

/// The in-process Odradek member: every record polled is checked with
/// [`check_numbered`] and remembered, and the delivered positions are
/// committed after each non-empty poll (as the Python members do).
pub struct OdradekMember<C: TestConsumer> {
    consumer: C,
    log: RebalanceLog,
    consumed: Consumed,
    refused_commits: Vec<String>,
}

impl<C: TestConsumer> OdradekMember<C> {
    /// Wraps `consumer` (not subscribed yet).
    pub fn new(consumer: C) -> Self {
        OdradekMember {
            consumer,
            log: RebalanceLog::default(),
            consumed: Vec::new(),
            refused_commits: Vec::new(),
        }
    }

    /// Subscribes to `topics` with the recording listener.
    pub fn subscribe(&self, topics: &[&str]) {
        self.consumer
            .subscribe(topics, &self.log)
            .unwrap_or_else(|e| panic!("[{}] subscribe: {e}", C::RUNTIME));
    }

    /// One poll of at most `timeout`, then a commit if it returned records.
    /// A commit the group refuses because it is rebalancing is remembered,
    /// not fatal: the next owner re-reads from the last commit (at least
    /// once). Panics on any other error.
    pub fn poll_once(&mut self, timeout: Duration) {
        let records = self
            .consumer
            .poll(timeout)
            .unwrap_or_else(|e| panic!("[{}] poll: {e}", C::RUNTIME));
        for record in &records {
            check_numbered(record);
            self.consumed
                .push((record.topic_partition().clone(), record.offset()));
        }
        if records.is_empty() {
            return;
        }
        match self.consumer.commit() {
            Ok(()) => {}
            Err(e @ (Error::RebalanceInProgress | Error::CommitFailed { .. })) => {
                self.refused_commits.push(e.to_string());
            }
            Err(e) => panic!("[{}] commit: {e}", C::RUNTIME),
        }
    }

    /// The consumer.
    pub fn consumer(&self) -> &C {
        &self.consumer
    }

    /// What the rebalance listener saw.
    pub fn log(&self) -> &RebalanceLog {
        &self.log
    }

    /// Its current assignment.
    pub fn assignment(&self) -> BTreeSet<TopicPartition> {
        self.consumer.assignment().into_iter().collect()
    }

    /// Its group membership, once it has joined.
    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        self.consumer.group_metadata()
    }

    /// The records it consumed, in order.
    pub fn consumed(&self) -> &Consumed {
        &self.consumed
    }

    /// The commits refused during rebalances.
    pub fn refused_commits(&self) -> &[String] {
        &self.refused_commits
    }
}

/// A group as DescribeGroups returns it: what tansu fills in. (Its
/// members' client ids, metadata and assignments, and the group's
/// protocol, come back empty at every version, so a member's assignment
/// cannot be read from the coordinator.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedGroup {
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, ...
    pub state: String,
    /// The assignor the group runs, or empty if the broker does not say.
    pub protocol: String,
    /// The members' ids, sorted.
    pub member_ids: Vec<String>,
}

/// Describes `group` through the driver connection `conn` (a one-broker
/// cluster is its own coordinator).
pub fn describe_group(conn: &mut Connection, group: &str) -> DescribedGroup {
    let response = conn
        .send_negotiated(&DescribeGroupsRequest {
            groups: vec![group.into()],
            include_authorized_operations: false,
        })
        .unwrap_or_else(|e| panic!("DescribeGroups {group}: {e}"));
    let described = response
        .groups
        .into_iter()
        .find(|g| g.group_id == group)
        .unwrap_or_else(|| panic!("DescribeGroups: no {group} in the answer"));
    assert_eq!(
        described.error_code, 0,
        "DescribeGroups {group}: error code"
    );
    let mut member_ids: Vec<String> = described.members.into_iter().map(|m| m.member_id).collect();
    member_ids.sort();
    DescribedGroup {
        state: described.group_state,
        protocol: described.protocol_data,
        member_ids,
    }
}

/// `members` sorted by member id, and an empty assignment for each.
fn nothing_yet(members: &[String]) -> (Vec<String>, BTreeMap<String, BTreeSet<TopicPartition>>) {
    let mut sorted = members.to_vec();
    sorted.sort();
    let empty = sorted
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    (sorted, empty)
}

/// What the range assignor gives each of `members` (any order; sorted
/// here): per topic, the partitions split into contiguous runs in member-id
/// order, the first `partitions % members` members getting one more.
/// `topics` lists each topic with its partition count; every member
/// subscribes to all of them.
pub fn range_assignment(
    members: &[String],
    topics: &[(String, i32)],
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let (sorted, mut out) = nothing_yet(members);
    let count = sorted.len() as i32;
    for (topic, partitions) in topics {
        let (each, extra) = (partitions / count, partitions % count);
        let mut next = 0;
        for (i, member) in sorted.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let owned = out.get_mut(member).expect("member");
            owned.extend((next..next + take).map(|p| TopicPartition::new(topic.as_str(), p)));
            next += take;
        }
    }
    out
}

/// What the round-robin assignor gives each of `members` (any order;
/// sorted here): all partitions sorted by topic then number, dealt to the
/// members in member-id order. Every member subscribes to every topic.
pub fn roundrobin_assignment(
    members: &[String],
    topics: &[(String, i32)],
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let (sorted, mut out) = nothing_yet(members);
    let mut all: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|(topic, n)| (0..*n).map(move |p| TopicPartition::new(topic.as_str(), p)))
        .collect();
    all.sort();
    for (i, tp) in all.into_iter().enumerate() {
        let member = &sorted[i % sorted.len()];
        out.get_mut(member).expect("member").insert(tp);
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    fn set(pairs: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
        pairs
            .iter()
            .map(|&(t, p)| TopicPartition::new(t, p))
            .collect()
    }

    #[test]
    fn range_splits_each_topic_in_member_order() {
        let members = ["m-b".to_string(), "m-a".into(), "m-c".into()];
        let topics = [("x".to_string(), 5), ("y".to_string(), 4)];
        let got = range_assignment(&members, &topics);
        assert_eq!(got["m-a"], set(&[("x", 0), ("x", 1), ("y", 0), ("y", 1)]));
        assert_eq!(got["m-b"], set(&[("x", 2), ("x", 3), ("y", 2)]));
        assert_eq!(got["m-c"], set(&[("x", 4), ("y", 3)]));
    }

    #[test]
    fn roundrobin_deals_sorted_partitions() {
        let members = ["m-b".to_string(), "m-a".into()];
        let topics = [("y".to_string(), 2), ("x".to_string(), 3)];
        let got = roundrobin_assignment(&members, &topics);
        assert_eq!(got["m-a"], set(&[("x", 0), ("x", 2), ("y", 1)]));
        assert_eq!(got["m-b"], set(&[("x", 1), ("y", 0)]));
    }
}
