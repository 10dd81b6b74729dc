//! One consumer group, three independent clients: Odradek (in process),
//! confluent-kafka (librdkafka) and kafka-python (child processes running
//! `tests/python/group_member.py`), for each assignor all three implement
//! (range, roundrobin, cooperative-sticky), with Odradek leading the group
//! (running the assignor for everyone) or following a Python leader. The
//! eager `sticky` assignor, which librdkafka lacks, is tested the same way
//! with Odradek and kafka-python only.
//!
//! Each test runs its own broker (tansu or crabka). Records are numbered (value and
//! key name their offset) and produced before and while the group forms;
//! once it has converged more are produced. The test then checks:
//!
//! * the members' own views of their partitions are disjoint, cover every
//!   partition and leave no member empty, while the coordinator
//!   (DescribeGroups) reports a stable group of exactly these members;
//! * the split is the assignor's: range and roundrobin exactly as defined
//!   over the sorted member ids (whoever computed it), the sticky ones
//!   balanced within one;
//! * Odradek leads exactly when it was the first member (on crabka, which
//!   makes the smallest member id lead, exactly when its id is smallest);
//! * the group then stays stable, every record was consumed at least once
//!   and without a gap, every record produced after convergence exactly
//!   once and by the partition's owner, and the committed offsets (Odradek
//!   and Python members commit after processing) reach the end.
//!
//! All members use the same short session (tansu holds a JoinGroup for
//! about half of it, brokers.md), so a join takes 1–3 s.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use odradek_core::group::Assignors;
use odradek_core::records::Compression;
use odradek_core::{GroupMetadata, RebalanceEvent, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::interop::{
    Consumed, DescribedGroup, OdradekMember, PythonClient, describe_group, range_assignment,
    roundrobin_assignment,
};
use odradek_tests::member::{MemberProcess, MemberSpec, Program};
use odradek_tests::suite::{
    AsyncStdConsumer, BlockingConsumer, HangGuard, SmolConsumer, TestConsumer, TokioConsumer,
    build, group_config, produce_numbered,
};
use odradek_tests::{Broker, BrokerKind};

/// Two topics with different partition counts, so that range (per topic)
/// and roundrobin (over all partitions) give visibly different splits
/// among three members: 4/3/2 against 3/3/3.
const TOPICS: [(&str, i32); 2] = [("interop-x", 5), ("interop-y", 4)];

/// Records per partition before anyone joins.
const PRODUCED_FIRST: usize = 12;
/// Records per partition produced every [`PRODUCE_EVERY`] while the group forms.
const PRODUCED_WHILE_FORMING: usize = 2;
const PRODUCE_EVERY: Duration = Duration::from_secs(1);
/// Records per partition produced once the group has converged.
const PRODUCED_AFTER: usize = 5;

/// A first member alone gets everything within this.
const FIRST_JOIN_LIMIT: Duration = Duration::from_secs(30);
/// The members settle within this after the first one is alone.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);
/// Records and commits catch up within this once the group is stable.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);

/// Who joins first and so leads the group.
#[derive(Debug, Clone, Copy)]
enum First {
    Odradek,
    Python(PythonClient),
}

impl fmt::Display for First {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            First::Odradek => f.write_str("odradek leads"),
            First::Python(client) => write!(f, "{client} leads"),
        }
    }
}

/// The numbered records produced so far: each partition's end offset.
struct Producer {
    conn: Connection,
    ends: BTreeMap<TopicPartition, i64>,
    last: Instant,
}

impl Producer {
    fn new(broker: &Broker) -> Producer {
        let conn = Connection::connect(broker.addr()).expect("driver connection");
        let ends = all_partitions().into_iter().map(|tp| (tp, 0)).collect();
        Producer {
            conn,
            ends,
            last: Instant::now(),
        }
    }

    /// Appends `count` numbered records to every partition (gzip, which
    /// both Python clients decode without extra modules).
    fn produce(&mut self, count: usize) {
        for (tp, end) in self.ends.iter_mut() {
            *end = produce_numbered(
                &mut self.conn,
                tp.topic(),
                tp.partition(),
                *end,
                &[count],
                Compression::Gzip,
            );
        }
        self.last = Instant::now();
    }

    /// Produces a few more if [`PRODUCE_EVERY`] has passed.
    fn trickle(&mut self) {
        if self.last.elapsed() >= PRODUCE_EVERY {
            self.produce(PRODUCED_WHILE_FORMING);
        }
    }
}

fn all_partitions() -> BTreeSet<TopicPartition> {
    TOPICS
        .iter()
        .flat_map(|&(topic, n)| (0..n).map(move |p| TopicPartition::new(topic, p)))
        .collect()
}

/// The members of one test.
struct Group<C: TestConsumer> {
    name: String,
    odradek_id: String,
    odradek: OdradekMember<C>,
    /// The Python members, each named by its client id.
    pythons: Vec<MemberProcess>,
}

impl<C: TestConsumer> Group<C> {
    /// One round: a short Odradek poll (and commit), then a look at what
    /// the Python members reported meanwhile: none may have given up,
    /// printed something that is no event, or processed a record whose key
    /// does not match its offset.
    fn step(&mut self) {
        self.odradek.poll_once(Duration::from_millis(100));
        for python in &self.pythons {
            python.assert_running();
            let log = python.log();
            if let Some(error) = log.fatal_error() {
                panic!("{}: fatal error: {error}", python.name());
            }
            let unexpected = log.unexpected_output();
            assert!(
                unexpected.is_empty(),
                "{}: output that is no event: {unexpected:?}",
                python.name()
            );
            let misnumbered = log.misnumbered();
            assert!(
                misnumbered.is_empty(),
                "{}: records whose key is not k{{offset}}: {misnumbered:?}",
                python.name()
            );
        }
    }

    /// What the Python members did lately, for failure messages.
    fn describe_pythons(&self) -> String {
        self.pythons
            .iter()
            .map(|p| {
                format!(
                    "{} (pid {}):\n{}",
                    p.name(),
                    p.pid(),
                    p.log().describe_tail(12)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Each member's own view of its partitions, by client id.
    fn views(&self) -> BTreeMap<String, BTreeSet<TopicPartition>> {
        let mut views: BTreeMap<String, BTreeSet<TopicPartition>> = self
            .pythons
            .iter()
            .map(|p| (p.name().to_string(), p.log().assignment()))
            .collect();
        views.insert(self.odradek_id.clone(), self.odradek.assignment());
        views
    }

    /// Everything each member consumed, by client id.
    fn consumed(&self) -> BTreeMap<String, Consumed> {
        let mut all: BTreeMap<String, Consumed> = self
            .pythons
            .iter()
            .map(|p| (p.name().to_string(), p.log().consumed()))
            .collect();
        all.insert(self.odradek_id.clone(), self.odradek.consumed().clone());
        all
    }

    /// How many rebalance callbacks each member has seen so far.
    fn rebalance_marks(&self) -> Vec<usize> {
        let mut marks: Vec<usize> = self
            .pythons
            .iter()
            .map(|p| p.log().assignment_changes())
            .collect();
        marks.push(self.odradek.log().lock().unwrap().len());
        marks
    }

    /// The converged group, if it is: Odradek has joined, the members' own
    /// views are non-empty, disjoint and cover every partition, and the
    /// coordinator reports a stable group of exactly these members, Odradek
    /// one of them.
    fn converged(&self, conn: &mut Connection) -> Option<(DescribedGroup, GroupMetadata)> {
        let metadata = self
            .odradek
            .group_metadata()
            .filter(|m| m.generation_id >= 0 && !m.member_id.is_empty())?;
        // Not before Odradek's listener heard of its assignment (at the
        // poll after the SyncGroup answer): a rebalance mark counted later
        // would look like a rebalance after convergence.
        if self.odradek.heard_assignment() != self.odradek.assignment() {
            return None;
        }
        let views = self.views();
        let total: usize = views.values().map(BTreeSet::len).sum();
        let union: BTreeSet<TopicPartition> = views.values().flatten().cloned().collect();
        if views.values().any(BTreeSet::is_empty) || total != union.len() {
            return None;
        }
        if union != all_partitions() {
            return None;
        }
        let described = describe_group(conn, &self.name);
        let stable = described.state == "Stable"
            && described.member_ids.len() == self.pythons.len() + 1
            && described.member_ids.contains(&metadata.member_id);
        stable.then_some((described, metadata))
    }
}

/// The Python clients that implement `assignor`: both, except for the
/// eager `sticky`, which librdkafka does not have (kafka-python does).
fn python_clients(assignor: &str) -> Vec<PythonClient> {
    if assignor == "sticky" {
        vec![PythonClient::KafkaPython]
    } else {
        vec![PythonClient::Confluent, PythonClient::KafkaPython]
    }
}

/// Odradek's client id. tansu, like Kafka, starts member ids with the
/// client id, and range and roundrobin deal partitions in member-id order:
/// this puts Odradek first, between the Python members
/// (`interop-confluent`, `interop-kafka-python`) or last, depending on the
/// test, so it takes each share somewhere in the matrix.
fn odradek_client_id(assignor: &str, first: First) -> String {
    let places = [
        "interop-a-odradek",
        "interop-d-odradek",
        "interop-z-odradek",
    ];
    let by_assignor = match assignor {
        "range" | "sticky" => 0,
        "roundrobin" => 1,
        _ => 2,
    };
    let by_role = usize::from(!matches!(first, First::Odradek));
    places[(by_assignor + by_role) % places.len()].to_string()
}

/// Checks that the members' own views are `expected` (by member id):
/// exactly for Odradek, whose member id is known; as a set of assignments
/// for the two Python members, whose ids the test cannot tell apart (tansu
/// leaves the client ids out of DescribeGroups).
fn check_split(
    what: &str,
    views: &BTreeMap<String, BTreeSet<TopicPartition>>,
    odradek_client_id: &str,
    odradek_member_id: &str,
    expected: &BTreeMap<String, BTreeSet<TopicPartition>>,
) {
    assert_eq!(
        views[odradek_client_id], expected[odradek_member_id],
        "{what}: Odradek ({odradek_member_id}) should have its share of {expected:?}"
    );
    let mut python_views: Vec<&BTreeSet<TopicPartition>> = views
        .iter()
        .filter(|(client, _)| client.as_str() != odradek_client_id)
        .map(|(_, view)| view)
        .collect();
    let mut python_expected: Vec<&BTreeSet<TopicPartition>> = expected
        .iter()
        .filter(|(member, _)| member.as_str() != odradek_member_id)
        .map(|(_, share)| share)
        .collect();
    python_views.sort();
    python_expected.sort();
    assert_eq!(
        python_views, python_expected,
        "{what}: the Python members' shares of {expected:?}; views {views:?}"
    );
}

/// Checks what the members consumed (by client id): every record up to
/// `ends` at least once, so none was skipped; those from `after_from` on
/// (produced once the group was stable) exactly once, by the partition's
/// `owner`. Returns how many records were consumed more than once.
fn check_consumption(
    what: &str,
    consumed: &BTreeMap<String, Consumed>,
    ends: &BTreeMap<TopicPartition, i64>,
    after_from: &BTreeMap<TopicPartition, i64>,
    owner: &BTreeMap<TopicPartition, String>,
) -> usize {
    let mut duplicates = 0;
    for (tp, end) in ends {
        let mut consumers: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
        for (client, records) in consumed {
            for (_, offset) in records.iter().filter(|(t, _)| t == tp) {
                consumers.entry(*offset).or_default().push(client);
            }
        }
        let missing: Vec<i64> = (0..*end).filter(|o| !consumers.contains_key(o)).collect();
        assert!(
            missing.is_empty(),
            "{what}: {tp}: never consumed {missing:?}"
        );
        duplicates += consumers.values().map(|c| c.len() - 1).sum::<usize>();
        for offset in after_from[tp]..*end {
            assert_eq!(
                consumers[&offset],
                vec![owner[tp].as_str()],
                "{what}: {tp}@{offset}, produced after convergence"
            );
        }
    }
    duplicates
}

fn interop<C: TestConsumer>(kind: BrokerKind, assignor: &str, first: First) {
    let rt = C::RUNTIME;
    let what = format!("group_interop {assignor}, {first} [{kind} {rt}]");
    let _guard = HangGuard::new(what.clone(), Duration::from_secs(180));
    let started = Instant::now();
    let broker = Broker::start(kind).expect("start broker");
    for (topic, partitions) in TOPICS {
        broker
            .create_topic(topic, partitions as u32)
            .expect("create topic");
    }
    let mut producer = Producer::new(&broker);
    producer.produce(PRODUCED_FIRST);
    let mut conn = Connection::connect(broker.addr()).expect("driver connection");
    let all = all_partitions();
    let topics: Vec<&str> = TOPICS.iter().map(|(t, _)| *t).collect();
    let name = format!("interop-{assignor}");
    let clients = python_clients(assignor);

    let mut config = group_config(&broker, &name, false);
    let odradek_id = odradek_client_id(assignor, first);
    config.client_id = odradek_id.clone();
    config.partition_assignment_strategy = Assignors::from_names(assignor).expect("assignor");
    let start_python = |client: PythonClient| {
        let client_id = format!("interop-{client}");
        let mut spec = MemberSpec::new(&broker, &name, &topics, assignor);
        spec.session_timeout_ms = config.session_timeout.as_millis() as u64;
        spec.heartbeat_ms = config.heartbeat_interval.as_millis() as u64;
        spec.client_id = Some(client_id.clone());
        // A backstop: the test stops it with "stop" long before.
        spec.run_s = Some(240.0);
        let program = Program::Python {
            client: client.name(),
        };
        let member = MemberProcess::spawn(&client_id, program, &spec)
            .unwrap_or_else(|e| panic!("{what}: starting the {client} member: {e}"));
        member
            .wait_ready(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{what}: starting the {client} member: {e}"));
        member
    };
    let mut group = Group {
        name: name.clone(),
        odradek_id: odradek_id.clone(),
        odradek: OdradekMember::new(build::<C>(config.clone())),
        pythons: Vec::new(),
    };

    // The first member, alone, takes every partition and leads.
    let alone = Instant::now();
    match first {
        First::Odradek => {
            group.odradek.subscribe(&topics);
            let deadline = Instant::now() + FIRST_JOIN_LIMIT;
            while group.odradek.assignment() != all
                || !group.odradek.group_metadata().is_some_and(|m| m.leader)
            {
                assert!(
                    Instant::now() < deadline,
                    "{what}: Odradek alone never led with every partition: {:?}, {:?}",
                    group.odradek.group_metadata(),
                    group.odradek.log()
                );
                group.step();
            }
            for &client in &clients {
                group.pythons.push(start_python(client));
            }
        }
        First::Python(client) => {
            group.pythons.push(start_python(client));
            let deadline = Instant::now() + FIRST_JOIN_LIMIT;
            while group.pythons[0].log().assignment() != all {
                assert!(
                    Instant::now() < deadline,
                    "{what}: {client} alone never got every partition:\n{}",
                    group.pythons[0].log().describe_tail(20)
                );
                group.step();
            }
            group.odradek.subscribe(&topics);
            for &other in clients.iter().filter(|&&c| c != client) {
                group.pythons.push(start_python(other));
            }
        }
    }
    let alone = alone.elapsed();

    // The others join; records keep arriving meanwhile.
    let forming = Instant::now();
    let deadline = forming + CONVERGE_LIMIT;
    let (described, metadata) = loop {
        group.step();
        producer.trickle();
        if let Some(converged) = group.converged(&mut conn) {
            break converged;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no convergence after {CONVERGE_LIMIT:?}: views {:?}; coordinator {:?}; \
             Odradek {:?}, listener {:?};\n{}",
            group.views(),
            describe_group(&mut conn, &name),
            group.odradek.group_metadata(),
            group.odradek.log(),
            group.describe_pythons()
        );
    };
    let forming = forming.elapsed();
    let marks = group.rebalance_marks();

    // The split is the assignor's, whoever computed it.
    let views = group.views();
    let topic_sizes: Vec<(String, i32)> = TOPICS.iter().map(|&(t, n)| (t.into(), n)).collect();
    // tansu leaves the protocol out of DescribeGroups; a broker that says
    // it must name the one assignor every member offered.
    assert!(
        described.protocol.is_empty() || described.protocol == assignor,
        "{what}: the group's protocol {:?}",
        described.protocol
    );
    let members = &described.member_ids;
    match assignor {
        "range" => check_split(
            &what,
            &views,
            &odradek_id,
            &metadata.member_id,
            &range_assignment(members, &topic_sizes),
        ),
        "roundrobin" => check_split(
            &what,
            &views,
            &odradek_id,
            &metadata.member_id,
            &roundrobin_assignment(members, &topic_sizes),
        ),
        _ => {
            let sizes: Vec<usize> = views.values().map(BTreeSet::len).collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(
                max.zip(min).is_some_and(|(max, min)| max - min <= 1),
                "{what}: {assignor} is balanced: {views:?}"
            );
        }
    }
    // Apache Kafka (and tansu) keep the first member as the leader while it
    // stays; crabka makes the smallest member id lead each generation.
    let odradek_leads = match kind {
        BrokerKind::Tansu => matches!(first, First::Odradek),
        BrokerKind::Crabka => members.iter().min() == Some(&metadata.member_id),
    };
    assert_eq!(
        metadata.leader, odradek_leads,
        "{what}: Odradek's leader flag in the final generation {metadata:?}, members {members:?}"
    );

    // Records produced now go to the final owners, each exactly once.
    let owner: BTreeMap<TopicPartition, String> = views
        .clone()
        .into_iter()
        .flat_map(|(client, view)| view.into_iter().map(move |tp| (tp, client.clone())))
        .collect();
    let after_from = producer.ends.clone();
    producer.produce(PRODUCED_AFTER);
    let ends = producer.ends.clone();
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    loop {
        group.step();
        let consumed = group.consumed();
        let reached = ends.iter().all(|(tp, end)| {
            consumed[&owner[tp]]
                .iter()
                .any(|(t, offset)| t == tp && *offset == end - 1)
        });
        if reached {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the owners did not reach the end offsets {ends:?} within \
             {CATCH_UP_LIMIT:?}; owners {owner:?};\n{}",
            group.describe_pythons()
        );
    }
    // Both Python members commit right after processing, Odradek after
    // each poll: the coordinator soon holds the end of every partition.
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    let all_list: Vec<TopicPartition> = all.iter().cloned().collect();
    loop {
        let committed = group
            .odradek
            .consumer()
            .committed(&all_list)
            .unwrap_or_else(|e| panic!("{what}: committed: {e}"));
        let committed: BTreeMap<TopicPartition, i64> = committed
            .into_iter()
            .filter_map(|(tp, o)| Some((tp, o?.offset)))
            .collect();
        if committed == ends {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: committed offsets {committed:?}, want {ends:?}"
        );
        group.step();
    }

    // Nobody rebalanced since the convergence.
    assert_eq!(
        group.rebalance_marks(),
        marks,
        "{what}: a rebalance after convergence: listener {:?};\n{}",
        group.odradek.log(),
        group.describe_pythons()
    );
    let again = describe_group(&mut conn, &name);
    assert_eq!(again, described, "{what}: the coordinator's view moved");
    assert_eq!(
        group.odradek.group_metadata().as_ref(),
        Some(&metadata),
        "{what}: Odradek's membership moved"
    );

    let duplicates = check_consumption(&what, &group.consumed(), &ends, &after_from, &owner);

    for python in &mut group.pythons {
        python.request_stop();
    }
    group
        .odradek
        .consumer()
        .close()
        .unwrap_or_else(|e| panic!("{what}: close: {e}"));
    let summary: Vec<String> = group
        .pythons
        .iter()
        .map(|p| {
            format!(
                "{} {} records, {} errors {:?}",
                p.name(),
                p.log().record_count(),
                p.log().errors().len(),
                p.log().errors()
            )
        })
        .collect();
    for mut python in group.pythons {
        python
            .stop(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{what}: stopping a Python member: {e}"));
    }
    let revocations = group
        .odradek
        .log()
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, RebalanceEvent::Revoked(_)))
        .count();
    eprintln!(
        "{what}: passed in {:.1?} (first member alone {alone:.1?}, converged {forming:.1?} \
         later, generation {}); {} records, {duplicates} consumed twice; Odradek {} records, \
         {revocations} revocations, refused commits {:?}; {}; split {:?}",
        started.elapsed(),
        metadata.generation_id,
        ends.values().sum::<i64>(),
        group.odradek.consumed().len(),
        group.odradek.refused_commits(),
        summary.join("; "),
        views
            .iter()
            .map(|(client, view)| (client.as_str(), view.len()))
            .collect::<Vec<_>>()
    );
}

/// The full matrix for one runtime, on each broker: every assignor, Odradek leading and
/// following (the test names say which assignor and whether Odradek leads;
/// the messages name the Python leader). The Python leader alternates between the clients (and
/// between the runtimes) so each client leads Odradek under each assignor
/// somewhere in the matrix.
macro_rules! matrix {
    ($runtime:ident, $consumer:ty, $($name:ident: $assignor:literal, $first:expr;)*) => {
        mod $runtime {
            use super::*;
            mod tansu {
                use super::*;
                $(
                    #[test]
                    fn $name() {
                        interop::<$consumer>(BrokerKind::Tansu, $assignor, $first);
                    }
                )*
            }
            mod crabka {
                use super::*;
                $(
                    #[test]
                    fn $name() {
                        interop::<$consumer>(BrokerKind::Crabka, $assignor, $first);
                    }
                )*
            }
        }
    };
}

matrix!(tokio, TokioConsumer,
    sticky_odradek_leads: "sticky", First::Odradek;
    sticky_odradek_follows: "sticky", First::Python(PythonClient::KafkaPython);
    range_odradek_leads: "range", First::Odradek;
    range_odradek_follows: "range", First::Python(PythonClient::Confluent);
    roundrobin_odradek_leads: "roundrobin", First::Odradek;
    roundrobin_odradek_follows: "roundrobin", First::Python(PythonClient::KafkaPython);
    cooperative_sticky_odradek_leads: "cooperative-sticky", First::Odradek;
    cooperative_sticky_odradek_follows: "cooperative-sticky", First::Python(PythonClient::Confluent);
);

matrix!(blocking, BlockingConsumer,
    sticky_odradek_leads: "sticky", First::Odradek;
    sticky_odradek_follows: "sticky", First::Python(PythonClient::KafkaPython);
    range_odradek_leads: "range", First::Odradek;
    range_odradek_follows: "range", First::Python(PythonClient::KafkaPython);
    roundrobin_odradek_leads: "roundrobin", First::Odradek;
    roundrobin_odradek_follows: "roundrobin", First::Python(PythonClient::Confluent);
    cooperative_sticky_odradek_leads: "cooperative-sticky", First::Odradek;
    cooperative_sticky_odradek_follows: "cooperative-sticky", First::Python(PythonClient::KafkaPython);
);

// The other two executors: one combination each.
matrix!(async_std, AsyncStdConsumer,
    cooperative_sticky_odradek_follows: "cooperative-sticky", First::Python(PythonClient::KafkaPython);
);

matrix!(smol, SmolConsumer,
    cooperative_sticky_odradek_follows: "cooperative-sticky", First::Python(PythonClient::Confluent);
);
