//! Equipment for consumer groups shared with independent clients.
//!
//! * [`PythonClient`] names the independent client a Python member runs
//!   (the member itself is a [`MemberProcess`](crate::member::MemberProcess)
//!   running `tests/python/group_member.py`).
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
use std::time::Duration;

use odradek_core::protocol::messages::DescribeGroupsRequest;
use odradek_core::{Error, GroupMetadata, RebalanceEvent, TopicPartition};

use crate::driver::Connection;
use crate::suite::{RebalanceLog, TestConsumer, check_numbered};

/// Who consumed which record: partition and offset, in the order consumed.
pub type Consumed = Vec<(TopicPartition, i64)>;

/// The independent client a Python member runs.
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

    /// The partitions its rebalance listener was told it owns. The core
    /// takes an assignment at the SyncGroup answer; the listener hears of
    /// it at the next poll, so the two differ for one poll.
    pub fn heard_assignment(&self) -> BTreeSet<TopicPartition> {
        let mut owned = BTreeSet::new();
        for event in self.log.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            match event {
                RebalanceEvent::Assigned(p) => owned.extend(p.iter().cloned()),
                RebalanceEvent::Revoked(p) | RebalanceEvent::Lost(p) => {
                    for tp in p {
                        owned.remove(tp);
                    }
                }
            }
        }
        owned
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
