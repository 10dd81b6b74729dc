//! Who owns which partition, and when, while a group changes under load.
//!
//! Members come and go over a topic that records keep flowing into: some
//! in process (a [`TestConsumer`] on its own thread), some in child
//! processes (`odradek_member`, the same adapter) that the test SIGKILLs.
//! Every member logs its rebalance events and the records it processed with
//! Unix timestamps (`odradek_tests::member`), and the verdicts come from
//! those logs afterwards: no partition owned by two live members at once,
//! no record processed outside its member's ownership, each new owner
//! resuming at the committed offset without skipping, and every produced
//! record processed.
//!
//! tansu timing (brokers.md): joins take 1–3 s with a 3 s session; a
//! killed member's partitions move only after its session timeout; a
//! cooperative rebalance into a busy group takes two rounds; static members
//! add ~3 s to a join, and a static restart triggers a rebalance (Apache
//! Kafka would not) — so there the static test asserts assignments, not
//! generations. crabka (a 3 s first join, ~1 s rebalances) restarts static
//! members as Kafka does, and the test asserts that nobody else rebalanced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use odradek_core::group::Assignors;
use odradek_core::protocol::messages::DescribeGroupsRequest;
use odradek_core::{ConsumerConfig, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::member::{
    InProcessMember, MemberEvent, MemberLog, MemberProcess, MemberSpec, NumberedProducer,
    Ownership, OwnershipEnd, Program, coverage_gaps, handover_problems, overlaps, ownership,
    records_outside_ownership, split_among, union_processed, unix_now,
};
use odradek_tests::suite::{
    HangGuard, TestConsumer, check_numbered, group_config, partitions, produce_numbered,
};
use odradek_tests::{Broker, BrokerKind};

/// A join or a rebalance, with room for a loaded machine: a cooperative
/// rebalance into a busy group took 8–12 s in earlier measurements.
const REBALANCE_LIMIT: Duration = Duration::from_secs(45);

fn member_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_odradek_member"))
}

/// The in-process members' configuration: [`group_config`] (3 s session,
/// manual commits) with `assignor` and a client id naming the member.
fn member_config(broker: &Broker, group: &str, name: &str, assignor: &str) -> ConsumerConfig {
    let mut config = group_config(broker, group, false);
    config.client_id = format!("odradek-tests-{name}");
    config.partition_assignment_strategy = Assignors::from_names(assignor).expect("assignor");
    config
}

/// Something the test waits on whose failure should end the wait at once.
enum Watched<'a> {
    InProcess(&'a InProcessMember),
    Child(&'a MemberProcess),
}

/// Waits until `done` holds, checking that the watched members are alive.
fn wait_until(
    what: &str,
    limit: Duration,
    watched: &[Watched<'_>],
    mut done: impl FnMut() -> Result<(), String>,
) -> Duration {
    let start = Instant::now();
    loop {
        for w in watched {
            match w {
                Watched::InProcess(m) => m.assert_running(),
                Watched::Child(m) => m.assert_running(),
            }
        }
        match done() {
            Ok(()) => return start.elapsed(),
            Err(last) if start.elapsed() >= limit => {
                let mut logs = String::new();
                for w in watched {
                    let (name, log) = match w {
                        Watched::InProcess(m) => (m.name(), m.log()),
                        Watched::Child(m) => (m.name(), m.log()),
                    };
                    logs.push_str(&format!("\n{name}:\n{}", log.describe_tail(60)));
                }
                panic!("{what}: not done after {limit:?}; last: {last}{logs}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Every check on the finished logs of a group. `killed` names members
/// that were SIGKILLed (their ownership must end with the kill).
fn check_logs(
    rt: &str,
    logs: &[(&str, &MemberLog)],
    killed: &[&str],
    end: &BTreeMap<TopicPartition, i64>,
) -> Vec<Ownership> {
    let events: Vec<(&str, Vec<odradek_tests::member::Stamped>)> = logs
        .iter()
        .map(|(name, log)| (*name, log.events()))
        .collect();
    let mut intervals = Vec::new();
    for (name, events) in &events {
        let own = ownership(name, events);
        assert!(
            !own.is_empty(),
            "[{rt}] {name} never owned a partition: {:?}",
            events
                .iter()
                .filter(|e| !matches!(e.event, MemberEvent::Record { .. }))
                .collect::<Vec<_>>()
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e.event, MemberEvent::Record { .. })),
            "[{rt}] {name} processed no record"
        );
        for o in &own {
            let expected = if killed.contains(name) {
                OwnershipEnd::Killed
            } else {
                OwnershipEnd::Closed
            };
            assert!(
                o.end == OwnershipEnd::Revoked || o.end == expected,
                "[{rt}] {name} ended ownership of {} with {:?} (expected revocations, then {expected:?})",
                o.partition,
                o.end
            );
        }
        let outside = records_outside_ownership(name, events, &own);
        assert!(
            outside.is_empty(),
            "[{rt}] records outside ownership: {outside:#?}"
        );
        // Keys are k{offset}: the child checked nothing else.
        for e in events {
            if let MemberEvent::Record {
                partition,
                offset,
                key,
            } = &e.event
            {
                assert_eq!(
                    key.as_deref(),
                    Some(format!("k{offset}").as_str()),
                    "[{rt}] {name}: {partition}@{offset}"
                );
            }
        }
        intervals.extend(own);
    }
    let both = overlaps(&intervals);
    assert!(
        both.is_empty(),
        "[{rt}] partitions owned by two members at once: {both:#?}"
    );
    let named: Vec<(&str, &[odradek_tests::member::Stamped])> = events
        .iter()
        .map(|(name, e)| (*name, e.as_slice()))
        .collect();
    let problems = handover_problems(&named, &intervals);
    assert!(problems.is_empty(), "[{rt}] handovers: {problems:#?}");
    let all: Vec<&MemberLog> = logs.iter().map(|(_, log)| *log).collect();
    let gaps = coverage_gaps(&union_processed(&all), end);
    assert!(gaps.is_empty(), "[{rt}] records never processed: {gaps:#?}");
    intervals
}

/// Fails on any error a member reported except commits refused while the
/// group rebalanced (the members retry those after the next poll, and the
/// handover checks show whether anything was lost), and on lost
/// partitions; returns how many commits were refused.
fn assert_no_errors(rt: &str, logs: &[(&str, &MemberLog)]) -> usize {
    let mut refused = 0;
    for (name, log) in logs {
        let (retried, errors): (Vec<String>, Vec<String>) = log
            .errors()
            .into_iter()
            .partition(|e| e.contains("commit: commit refused: the group is rebalancing"));
        refused += retried.len();
        assert!(
            errors.is_empty(),
            "[{rt}] {name} reported errors: {errors:#?}"
        );
        let lost = log.find(|e| matches!(e, MemberEvent::Lost { .. }).then(|| format!("{e:?}")));
        assert!(lost.is_none(), "[{rt}] {name} lost partitions: {lost:?}");
    }
    refused
}

/// Whether some member other than `killed` took over one of the killed
/// member's partitions after the kill and processed records there.
fn took_over_after(intervals: &[Ownership], killed: &str, logs: &[(&str, &MemberLog)]) -> bool {
    let kill_time = intervals
        .iter()
        .filter(|o| o.member == killed && o.end == OwnershipEnd::Killed)
        .map(|o| (o.partition.clone(), o.to))
        .collect::<BTreeMap<_, _>>();
    intervals.iter().any(|o| {
        o.member != killed
            && kill_time.get(&o.partition).is_some_and(|&t| o.from > t)
            && logs.iter().any(|(name, log)| {
                *name == o.member
                    && log
                        .find(|e| match e {
                            MemberEvent::Record { partition, .. } if partition == &o.partition => {
                                Some(())
                            }
                            _ => None,
                        })
                        .is_some()
            })
    })
}

/// Three members join one by one over a 12-partition topic that is being
/// produced to (cooperative-sticky, commits after processing); the second
/// leaves cleanly, the third (a child process) is SIGKILLed, and a
/// replacement child joins; then production stops and the survivors drain.
fn three_members_share_a_busy_topic<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let started = Instant::now();
    let _guard = HangGuard::new(
        format!("three_members_share_a_busy_topic [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic("ledger", 12).expect("create topic");
    let all: BTreeSet<TopicPartition> = partitions("ledger", 12).into_iter().collect();
    let group = "ledger-readers";
    let assignor = "cooperative-sticky";
    let producer = NumberedProducer::start(&broker, "ledger", 12, 2, Duration::from_millis(150));
    let child = |name: &str| {
        let mut spec = MemberSpec::new(&broker, group, &["ledger"], assignor);
        spec.client_id = Some(format!("odradek-tests-{name}"));
        MemberProcess::spawn(
            name,
            Program::Odradek {
                binary: member_binary(),
                runtime: rt,
            },
            &spec,
        )
        .unwrap_or_else(|e| panic!("[{rt}] starting {name}: {e}"))
    };
    let mut timings = Vec::new();

    let first = InProcessMember::start::<C>(
        "first",
        member_config(&broker, group, "first", assignor),
        &["ledger"],
        true,
        check_numbered,
    );
    timings.push((
        "first joins",
        wait_until(
            "first owns every partition",
            REBALANCE_LIMIT,
            &[Watched::InProcess(&first)],
            || split_among(&[("first", first.log())], &all),
        ),
    ));

    let second = InProcessMember::start::<C>(
        "second",
        member_config(&broker, group, "second", assignor),
        &["ledger"],
        true,
        check_numbered,
    );
    timings.push((
        "second joins",
        wait_until(
            "first and second split the partitions",
            REBALANCE_LIMIT,
            &[Watched::InProcess(&first), Watched::InProcess(&second)],
            || split_among(&[("first", first.log()), ("second", second.log())], &all),
        ),
    ));

    let mut third = child("third");
    timings.push((
        "third (child) joins",
        wait_until(
            "three members split the partitions",
            REBALANCE_LIMIT,
            &[
                Watched::InProcess(&first),
                Watched::InProcess(&second),
                Watched::Child(&third),
            ],
            || {
                split_among(
                    &[
                        ("first", first.log()),
                        ("second", second.log()),
                        ("third", third.log()),
                    ],
                    &all,
                )
            },
        ),
    ));
    // The child processes something before it dies.
    wait_until(
        "third processes records",
        REBALANCE_LIMIT,
        &[Watched::Child(&third)],
        || match third.log().record_count() {
            0 => Err("no records yet".into()),
            _ => Ok(()),
        },
    );

    let second_log = second.stop();
    timings.push((
        "second leaves",
        wait_until(
            "first and third take over second's partitions",
            REBALANCE_LIMIT,
            &[Watched::InProcess(&first), Watched::Child(&third)],
            || split_among(&[("first", first.log()), ("third", third.log())], &all),
        ),
    ));

    let kill_time = third.kill();
    timings.push((
        "third killed, first takes over",
        wait_until(
            "first owns every partition after third's session expires",
            REBALANCE_LIMIT,
            &[Watched::InProcess(&first)],
            || split_among(&[("first", first.log())], &all),
        ),
    ));
    let reassigned_after = first.log().with_events(|events| {
        events
            .iter()
            .rev()
            .find(|e| matches!(e.event, MemberEvent::Assigned { .. }))
            .map(|e| e.t - kill_time)
    });
    assert!(
        reassigned_after.is_some_and(|s| s > 0.0),
        "[{rt}] third's partitions were assigned to first before the kill: {reassigned_after:?}"
    );

    let mut fourth = child("fourth");
    timings.push((
        "fourth (child) joins",
        wait_until(
            "first and the replacement split the partitions",
            REBALANCE_LIMIT,
            &[Watched::InProcess(&first), Watched::Child(&fourth)],
            || split_among(&[("first", first.log()), ("fourth", fourth.log())], &all),
        ),
    ));

    let end = producer.stop();
    let produced: i64 = end.values().sum();
    let logs_so_far = [
        first.log().clone(),
        second_log.clone(),
        third.log().clone(),
        fourth.log().clone(),
    ];
    timings.push((
        "drain",
        wait_until(
            "every produced record processed",
            REBALANCE_LIMIT,
            &[Watched::InProcess(&first), Watched::Child(&fourth)],
            || {
                let logs: Vec<&MemberLog> = logs_so_far.iter().collect();
                let gaps = coverage_gaps(&union_processed(&logs), &end);
                if gaps.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{gaps:?}"))
                }
            },
        ),
    ));
    // Sanity: the final assignment covers every partition exactly once.
    split_among(&[("first", first.log()), ("fourth", fourth.log())], &all)
        .unwrap_or_else(|e| panic!("[{rt}] final assignment: {e}"));

    fourth
        .stop(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("[{rt}] {e}"));
    let first_log = first.stop();
    let logs = [
        ("first", &first_log),
        ("second", &second_log),
        ("third", third.log()),
        ("fourth", fourth.log()),
    ];
    let refused = assert_no_errors(rt, &logs);
    let intervals = check_logs(rt, &logs, &["third"], &end);
    assert!(
        intervals.len() > all.len(),
        "[{rt}] only {} ownership intervals",
        intervals.len()
    );
    assert!(
        took_over_after(&intervals, "third", &logs),
        "[{rt}] nobody processed a partition of the killed member after the kill"
    );
    let records: usize = logs.iter().map(|(_, log)| log.record_count()).sum();
    eprintln!(
        "[{rt}] three_members_share_a_busy_topic: {produced} records produced, {records} processed \
         ({} duplicates across the kill), {} ownership intervals, {refused} commits refused during \
         rebalances, {:.1} s; steps: {timings:?}",
        records as i64 - produced,
        intervals.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The smoke version for the other executors: an in-process member and a
/// child that is SIGKILLed while records are produced.
fn killed_member_smoke<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let started = Instant::now();
    let _guard = HangGuard::new(
        format!("killed_member_smoke [{rt}]"),
        Duration::from_secs(240),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic("audit", 6).expect("create topic");
    let all: BTreeSet<TopicPartition> = partitions("audit", 6).into_iter().collect();
    let (group, assignor) = ("auditors", "cooperative-sticky");
    let producer = NumberedProducer::start(&broker, "audit", 6, 2, Duration::from_millis(150));

    let first = InProcessMember::start::<C>(
        "first",
        member_config(&broker, group, "first", assignor),
        &["audit"],
        true,
        check_numbered,
    );
    wait_until(
        "first owns every partition",
        REBALANCE_LIMIT,
        &[Watched::InProcess(&first)],
        || split_among(&[("first", first.log())], &all),
    );
    let mut spec = MemberSpec::new(&broker, group, &["audit"], assignor);
    spec.client_id = Some("odradek-tests-child".into());
    let mut child = MemberProcess::spawn(
        "child",
        Program::Odradek {
            binary: member_binary(),
            runtime: rt,
        },
        &spec,
    )
    .unwrap_or_else(|e| panic!("[{rt}] starting the child: {e}"));
    wait_until(
        "first and the child split the partitions and the child processes records",
        REBALANCE_LIMIT,
        &[Watched::InProcess(&first), Watched::Child(&child)],
        || {
            split_among(&[("first", first.log()), ("child", child.log())], &all)?;
            match child.log().record_count() {
                0 => Err("the child processed nothing yet".into()),
                _ => Ok(()),
            }
        },
    );
    child.kill();
    wait_until(
        "first owns every partition after the child's session expires",
        REBALANCE_LIMIT,
        &[Watched::InProcess(&first)],
        || split_among(&[("first", first.log())], &all),
    );
    let end = producer.stop();
    wait_until(
        "every produced record processed",
        REBALANCE_LIMIT,
        &[Watched::InProcess(&first)],
        || {
            let gaps = coverage_gaps(&union_processed(&[first.log(), child.log()]), &end);
            if gaps.is_empty() {
                Ok(())
            } else {
                Err(format!("{gaps:?}"))
            }
        },
    );
    let first_log = first.stop();
    let logs = [("first", &first_log), ("child", child.log())];
    let refused = assert_no_errors(rt, &logs);
    let intervals = check_logs(rt, &logs, &["child"], &end);
    assert!(
        took_over_after(&intervals, "child", &logs),
        "[{rt}] nobody processed a partition of the killed child after the kill"
    );
    eprintln!(
        "[{rt}] killed_member_smoke: {} intervals, {refused} commits refused during rebalances, {:.1} s",
        intervals.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The group's members as the coordinator describes them: (member id,
/// static instance id). tansu leaves `group_instance_id` null in
/// DescribeGroups, so a static member is also recognised by its member
/// id, which coordinators (Apache Kafka and tansu alike) derive from the
/// instance id the member sent in JoinGroup: `{instance id}-{uuid}`.
fn described_members(
    broker: &Broker,
    group: &str,
    instance: &str,
) -> Vec<(String, Option<String>)> {
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    let described = conn
        .send_negotiated(&DescribeGroupsRequest {
            groups: vec![group.to_string()],
            ..Default::default()
        })
        .expect("DescribeGroups");
    let group = &described.groups[0];
    assert_eq!(group.error_code, 0, "DescribeGroups: {described:?}");
    let mut members: Vec<(String, Option<String>)> = group
        .members
        .iter()
        .map(|m| {
            let from_id = m
                .member_id
                .starts_with(&format!("{instance}-"))
                .then(|| instance.to_string());
            (m.member_id.clone(), m.group_instance_id.clone().or(from_id))
        })
        .collect();
    members.sort();
    members
}

/// A static member (child, `--instance-id`) and a dynamic one (in
/// process) share a topic with the range assignor, which puts static
/// members first. The static member closes (static members send no
/// LeaveGroup) and restarts within the session timeout, then is killed
/// and restarts again: each time the coordinator still lists it under its
/// instance id while it is away, it gets the same partitions back, the
/// dynamic member never owns them, and it resumes from the committed
/// offsets.
fn static_member_restarts<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let started = Instant::now();
    let _guard = HangGuard::new(
        format!("static_member_restarts [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic("profiles", 4).expect("create topic");
    let all: BTreeSet<TopicPartition> = partitions("profiles", 4).into_iter().collect();
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    let mut end: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 0)).collect();
    let mut produce = |n: usize, end: &mut BTreeMap<TopicPartition, i64>| {
        for (tp, next) in end.iter_mut() {
            *next = produce_numbered(
                &mut conn,
                "profiles",
                tp.partition(),
                *next,
                &[n],
                odradek_core::records::Compression::None,
            );
        }
    };
    produce(10, &mut end);
    let (group, assignor, instance) = ("profile-readers", "range", "profiles-static-1");
    let session = Duration::from_millis(6000);
    let mut spec = MemberSpec::new(&broker, group, &["profiles"], assignor);
    spec.instance_id = Some(instance.into());
    spec.session_timeout_ms = session.as_millis() as u64;
    spec.heartbeat_ms = 2000;
    let program = Program::Odradek {
        binary: member_binary(),
        runtime: rt,
    };
    let spawn_static = |name: &str| {
        MemberProcess::spawn(name, program, &spec)
            .unwrap_or_else(|e| panic!("[{rt}] starting {name}: {e}"))
    };

    let mut static1 = spawn_static("static-1");
    wait_until(
        "the static member owns every partition",
        REBALANCE_LIMIT,
        &[Watched::Child(&static1)],
        || split_among(&[("static-1", static1.log())], &all),
    );
    let mut dynamic_config = member_config(&broker, group, "dynamic", assignor);
    dynamic_config.session_timeout = session;
    dynamic_config.heartbeat_interval = Duration::from_millis(2000);
    let dynamic = InProcessMember::start::<C>(
        "dynamic",
        dynamic_config,
        &["profiles"],
        true,
        check_numbered,
    );
    wait_until(
        "the static and the dynamic member split the partitions and process them",
        REBALANCE_LIMIT,
        &[Watched::Child(&static1), Watched::InProcess(&dynamic)],
        || {
            split_among(
                &[("static-1", static1.log()), ("dynamic", dynamic.log())],
                &all,
            )?;
            let gaps = coverage_gaps(&union_processed(&[static1.log(), dynamic.log()]), &end);
            if gaps.is_empty() {
                Ok(())
            } else {
                Err(format!("{gaps:?}"))
            }
        },
    );
    let static_parts = static1.log().assignment();
    let dynamic_parts = dynamic.log().assignment();
    let split_at = unix_now();
    let members = described_members(&broker, group, instance);
    assert_eq!(members.len(), 2, "[{rt}] {members:?}");
    let static_id = members
        .iter()
        .find(|(_, instance_id)| instance_id.as_deref() == Some(instance))
        .unwrap_or_else(|| panic!("[{rt}] no member with instance id {instance}: {members:?}"))
        .0
        .clone();
    let dynamic_id = members
        .iter()
        .find(|(id, _)| *id != static_id)
        .expect("dynamic member")
        .0
        .clone();

    // Restart 1: a clean close, which sends no LeaveGroup for a static member.
    static1
        .stop(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("[{rt}] {e}"));
    let closed_at = unix_now();
    let members = described_members(&broker, group, instance);
    assert!(
        members
            .iter()
            .any(|(id, i)| *id == static_id && i.as_deref() == Some(instance)),
        "[{rt}] the closed static member left the group (LeaveGroup sent?): {members:?}"
    );
    let mut static2 = spawn_static("static-2");
    produce(5, &mut end);
    let restarted = |member: &MemberProcess,
                     what: &str,
                     end: &BTreeMap<TopicPartition, i64>,
                     earlier: &[&MemberLog]| {
        wait_until(
            what,
            REBALANCE_LIMIT,
            &[Watched::Child(member), Watched::InProcess(&dynamic)],
            || {
                let (s, d) = (member.log().assignment(), dynamic.log().assignment());
                if s != static_parts || d != dynamic_parts {
                    return Err(format!("static {s:?}, dynamic {d:?}"));
                }
                let mut logs = vec![member.log(), dynamic.log()];
                logs.extend(earlier);
                let gaps = coverage_gaps(&union_processed(&logs), end);
                let gaps: Vec<&String> = gaps
                    .iter()
                    .filter(|g| {
                        static_parts
                            .iter()
                            .any(|tp| g.starts_with(&format!("{tp}:")))
                    })
                    .collect();
                if gaps.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{gaps:?}"))
                }
            },
        )
    };
    let first_restart = restarted(
        &static2,
        "the restarted static member gets its partitions back and processes the new records",
        &end,
        &[static1.log()],
    );
    let ready_at = static2
        .log()
        .find(|e| (*e == MemberEvent::Ready).then_some(()))
        .expect("ready")
        .0;
    assert!(
        ready_at - closed_at < session.as_secs_f64(),
        "[{rt}] the restart took {:.1} s, longer than the session timeout",
        ready_at - closed_at
    );
    let members = described_members(&broker, group, instance);
    assert_eq!(
        members.len(),
        2,
        "[{rt}] after the first restart: {members:?}"
    );
    assert!(
        members.iter().any(|(id, _)| *id == dynamic_id),
        "[{rt}] {members:?}"
    );
    assert!(
        members.iter().any(|(_, i)| i.as_deref() == Some(instance)),
        "[{rt}] {members:?}"
    );

    // Restart 2: SIGKILL and start again at once.
    static2.kill();
    let mut static3 = spawn_static("static-3");
    produce(5, &mut end);
    let second_restart = restarted(
        &static3,
        "the static member restarted after a kill gets its partitions back",
        &end,
        &[static1.log(), static2.log()],
    );
    let members = described_members(&broker, group, instance);
    assert_eq!(
        members.len(),
        2,
        "[{rt}] after the second restart: {members:?}"
    );
    assert!(
        members.iter().any(|(_, i)| i.as_deref() == Some(instance)),
        "[{rt}] {members:?}"
    );

    let restarts_done = unix_now();
    static3
        .stop(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("[{rt}] {e}"));
    let dynamic_log = dynamic.stop();
    let logs = [
        ("static-1", static1.log()),
        ("static-2", static2.log()),
        ("static-3", static3.log()),
        ("dynamic", &dynamic_log),
    ];
    let refused = assert_no_errors(rt, &logs);
    let intervals = check_logs(rt, &logs, &["static-2"], &end);
    // The dynamic member's assignment never moved onto the static
    // member's partitions while it was away (extra rebalances allowed).
    let taken: Vec<&Ownership> = intervals
        .iter()
        .filter(|o| o.member == "dynamic" && o.to > split_at && static_parts.contains(&o.partition))
        .collect();
    assert!(
        taken.is_empty(),
        "[{rt}] the dynamic member took the static member's partitions: {taken:#?}"
    );
    if kind == BrokerKind::Crabka {
        // As in Apache Kafka (KIP-345): a static member back within its
        // session timeout triggers no rebalance, so the other member's
        // assignment never changed after the split (tansu rebalances).
        let moved: Vec<MemberEvent> = dynamic_log
            .events()
            .into_iter()
            .filter(|e| e.t > split_at && e.t < restarts_done)
            .map(|e| e.event)
            .filter(|e| {
                matches!(
                    e,
                    MemberEvent::Assigned { .. }
                        | MemberEvent::Revoked { .. }
                        | MemberEvent::Lost { .. }
                )
            })
            .collect();
        assert!(
            moved.is_empty(),
            "[{rt}] the static restarts rebalanced the dynamic member: {moved:#?}"
        );
    }
    for (name, log) in &logs[1..3] {
        let (_, got) = log
            .find(|e| match e {
                MemberEvent::Assigned { assignment, .. } if !assignment.is_empty() => {
                    Some(assignment.clone())
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("[{rt}] {name} was never assigned anything"));
        assert_eq!(
            got.into_iter().collect::<BTreeSet<_>>(),
            static_parts,
            "[{rt}] {name}'s first assignment"
        );
    }
    eprintln!(
        "[{rt}] static_member_restarts: restarts took {first_restart:?} and {second_restart:?}; \
         {refused} commits refused during rebalances; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

odradek_tests::for_each_runtime!(
    three_members_share_a_busy_topic,
    killed_member_smoke,
    static_member_restarts
);
