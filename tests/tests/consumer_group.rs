//! Consumer groups on every adapter and both brokers: joining, splitting
//! partitions between members, commits (with metadata and leader epochs on
//! crabka, which keeps them) that survive the member, auto-commit on close,
//! and the rebalance listener.
//!
//! tansu holds each JoinGroup for about half the session timeout, crabka
//! the first join of an empty group for 3 s, so the members use a 3 s
//! session (brokers.md); a join takes 1–3 s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use odradek_core::records::Compression;
use odradek_core::{OffsetAndMetadata, RebalanceEvent, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::interop::describe_group;
use odradek_tests::member::{Commit, MemberProcess, MemberSpec, Program};
use odradek_tests::suite::{
    HangGuard, OffsetTracker, RebalanceLog, TestConsumer, build, check_numbered, consume_to,
    group_config, partitions, produce_numbered, wait_for,
};
use odradek_tests::{Broker, BrokerKind, for_each_runtime};

const JOIN_LIMIT: Duration = Duration::from_secs(30);

fn produce_all(
    conn: &mut Connection,
    topic: &str,
    count: i32,
    from: i64,
    n: usize,
) -> BTreeMap<TopicPartition, i64> {
    (0..count)
        .map(|p| {
            let end = produce_numbered(conn, topic, p, from, &[n], Compression::Lz4);
            (TopicPartition::new(topic, p), end)
        })
        .collect()
}

/// What every test here starts from: a hang guard, a broker, a driver
/// connection, and `topic` with `count` partitions of `n` numbered records.
struct Setup {
    _guard: HangGuard,
    broker: Broker,
    conn: Connection,
    all: Vec<TopicPartition>,
    end: BTreeMap<TopicPartition, i64>,
}

fn setup(
    kind: BrokerKind,
    test: &str,
    limit: Duration,
    topic: &str,
    count: i32,
    n: usize,
) -> Setup {
    let guard = HangGuard::new(test, limit);
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    broker
        .create_topic(topic, count as u32)
        .expect("create topic");
    let end = produce_all(&mut conn, topic, count, 0, n);
    Setup {
        _guard: guard,
        broker,
        conn,
        all: partitions(topic, count),
        end,
    }
}

/// Polls `member` until every partition of `end` was read, from `from` on.
fn consume_from<C: TestConsumer>(
    member: &C,
    what: &str,
    from: i64,
    end: &BTreeMap<TopicPartition, i64>,
) {
    let all: Vec<TopicPartition> = end.keys().cloned().collect();
    let mut tracker = OffsetTracker::starting_at(&all, from);
    consume_to(member, what, JOIN_LIMIT, &mut tracker, end, check_numbered);
}

fn assigned_in(log: &RebalanceLog) -> BTreeSet<TopicPartition> {
    let mut owned = BTreeSet::new();
    for event in log.lock().unwrap().iter() {
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

/// A member consumes everything, commits, and leaves; the next member of
/// the group starts from the committed offsets and sees only new records.
fn commits_survive_the_member<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let Setup {
        broker,
        mut conn,
        all,
        end,
        ..
    } = setup(
        kind,
        &format!("commits_survive_the_member [{rt}]"),
        Duration::from_secs(180),
        "orders",
        3,
        20,
    );

    let first: C = build(group_config(&broker, "billing", false));
    let log = RebalanceLog::default();
    first.subscribe(&["orders"], &log).expect("subscribe");
    consume_from(&first, "first member", 0, &end);
    assert_eq!(
        assigned_in(&log),
        all.iter().cloned().collect(),
        "[{rt}] listener: {log:?}"
    );
    first.commit().expect("commit");
    let committed = first.committed(&all).expect("committed");
    for tp in &all {
        assert_eq!(
            committed.get(tp).cloned().flatten().map(|o| o.offset),
            Some(20),
            "[{rt}] committed offset of {tp}: {committed:?}"
        );
        if kind == BrokerKind::Crabka {
            // crabka stamps its leader epoch (0) into the batches it
            // stores; the commit carries the epoch of the last record
            // delivered and the broker returns it (tansu stamps none).
            assert_eq!(
                committed[tp].as_ref().and_then(|o| o.leader_epoch),
                Some(0),
                "[{rt}] committed leader epoch of {tp}: {committed:?}"
            );
        }
    }
    // Explicit offsets with metadata round-trip too (tansu drops the
    // metadata, brokers.md: there only the offset is asserted).
    let explicit: BTreeMap<TopicPartition, OffsetAndMetadata> = [(
        all[0].clone(),
        OffsetAndMetadata::new(15).with_metadata("replay"),
    )]
    .into();
    first.commit_offsets(&explicit).expect("commit_offsets");
    let reader: C = build(group_config(&broker, "billing", false));
    for (who, committed) in [
        ("the member", first.committed(&all[..1]).expect("committed")),
        (
            "another consumer",
            reader.committed(&all[..1]).expect("committed"),
        ),
    ] {
        let got = committed[&all[0]].clone().expect("an offset");
        assert_eq!(got.offset, 15, "[{rt}] {who}: {got:?}");
        if kind == BrokerKind::Crabka {
            assert_eq!(got.metadata, "replay", "[{rt}] {who}: metadata {got:?}");
        }
    }
    reader.close().expect("close");
    first
        .commit_offsets(&[(all[0].clone(), OffsetAndMetadata::new(20))].into())
        .expect("commit");
    first.close().expect("close");
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, RebalanceEvent::Revoked(_))),
        "[{rt}] close revokes: {log:?}"
    );

    let end = produce_all(&mut conn, "orders", 3, 20, 5);
    let second: C = build(group_config(&broker, "billing", false));
    second
        .subscribe(&["orders"], &RebalanceLog::default())
        .expect("subscribe");
    consume_from(&second, "second member", 20, &end);
    second.close().expect("close");
}

/// Auto-commit commits what was delivered, and does so on close.
fn auto_commit_on_close<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let Setup {
        broker, all, end, ..
    } = setup(
        kind,
        &format!("auto_commit_on_close [{rt}]"),
        Duration::from_secs(120),
        "events",
        2,
        30,
    );

    let member: C = build(group_config(&broker, "auditors", true));
    member
        .subscribe(&["events"], &RebalanceLog::default())
        .expect("subscribe");
    consume_from(&member, "auto-commit member", 0, &end);
    member.close().expect("close");

    let checker: C = build(group_config(&broker, "auditors", false));
    let committed = checker.committed(&all).expect("committed");
    for tp in &all {
        assert_eq!(
            committed.get(tp).cloned().flatten().map(|o| o.offset),
            Some(30),
            "[{rt}] auto-committed offset of {tp}: {committed:?}"
        );
    }
    checker.close().expect("close");
}

/// Auto-commit is at-least-once across a crash: a member (a child
/// process on this runtime) polls a batch, works on it for 3 s without
/// polling while several `auto.commit.interval.ms` (500 ms) pass, and is
/// SIGKILLed. Nothing of that batch was committed (the interval only makes
/// the commit due; the next poll would have sent it), so a restarted
/// member reads the whole batch again. Committing from the timer, as
/// before, committed the batch and the restart skipped it.
fn auto_commit_is_at_least_once_across_a_kill<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let Setup { broker, all, .. } = setup(
        kind,
        &format!("auto_commit_at_least_once [{rt}]"),
        Duration::from_secs(120),
        "payments",
        1,
        40,
    );
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_odradek_member"));
    let program = Program::Odradek {
        binary,
        runtime: rt,
    };
    let mut spec = MemberSpec::new(&broker, "payers", &["payments"], "range");
    spec.commit = Commit::Auto;
    spec.process_ms = Some(3_000);
    let mut worker = MemberProcess::spawn("worker", program, &spec)
        .unwrap_or_else(|e| panic!("[{rt}] starting the worker: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while worker.log().record_count() == 0 {
        assert!(Instant::now() < deadline, "[{rt}] the worker got no batch");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Three auto-commit intervals into the batch's processing.
    std::thread::sleep(Duration::from_millis(1_500));
    worker.kill();
    let batch = worker.log().processed();

    let checker: C = build(group_config(&broker, "payers", false));
    let committed = checker.committed(&all).expect("committed");
    checker.close().expect("close");
    for (tp, offsets) in &batch {
        let first = offsets.iter().next().copied().unwrap_or(0);
        let at = committed.get(tp).cloned().flatten().map(|o| o.offset);
        assert!(
            at.is_none_or(|at| at <= first),
            "[{rt}] {tp} committed at {at:?} while the killed batch from {first} was in \
             processing: a restart would skip it"
        );
    }
    spec.process_ms = None;
    spec.commit = Commit::AfterProcess;
    let mut restarted = MemberProcess::spawn("restarted", program, &spec)
        .unwrap_or_else(|e| panic!("[{rt}] restarting: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let again = restarted.log().processed();
        let missing: Vec<(TopicPartition, i64)> = batch
            .iter()
            .flat_map(|(tp, offsets)| offsets.iter().map(move |o| (tp.clone(), *o)))
            .filter(|(tp, o)| !again.get(tp).is_some_and(|seen| seen.contains(o)))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{rt}] the restarted member skipped {} records of the killed batch, e.g. {:?}",
            missing.len(),
            missing.first()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    restarted.kill();
}

/// Two members split a topic: disjoint assignments covering every
/// partition, and every record consumed at least once across the handover.
fn two_members_split_the_partitions<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let Setup {
        broker, all, end, ..
    } = setup(
        kind,
        &format!("two_members [{rt}]"),
        Duration::from_secs(180),
        "jobs",
        4,
        10,
    );
    let all: BTreeSet<TopicPartition> = all.into_iter().collect();

    let a: C = build(group_config(&broker, "workers", false));
    let b: C = build(group_config(&broker, "workers", false));
    let (log_a, log_b) = (RebalanceLog::default(), RebalanceLog::default());
    let mut seen: BTreeMap<TopicPartition, BTreeSet<i64>> = BTreeMap::new();
    let record = |seen: &mut BTreeMap<TopicPartition, BTreeSet<i64>>,
                  records: odradek_core::ConsumerRecords| {
        for r in &records {
            check_numbered(r);
            seen.entry(r.topic_partition().clone())
                .or_default()
                .insert(r.offset());
        }
    };
    a.subscribe(&["jobs"], &log_a).expect("subscribe a");
    let deadline = Instant::now() + JOIN_LIMIT;
    while assigned_in(&log_a) != all {
        assert!(
            Instant::now() < deadline,
            "[{rt}] a never got every partition: {log_a:?}"
        );
        record(
            &mut seen,
            a.poll(Duration::from_millis(100)).expect("poll a"),
        );
    }
    b.subscribe(&["jobs"], &log_b).expect("subscribe b");
    let deadline = Instant::now() + JOIN_LIMIT;
    loop {
        record(
            &mut seen,
            a.poll(Duration::from_millis(50)).expect("poll a"),
        );
        record(
            &mut seen,
            b.poll(Duration::from_millis(50)).expect("poll b"),
        );
        let (owned_a, owned_b) = (assigned_in(&log_a), assigned_in(&log_b));
        let split = !owned_a.is_empty()
            && !owned_b.is_empty()
            && owned_a.is_disjoint(&owned_b)
            && owned_a.union(&owned_b).cloned().collect::<BTreeSet<_>>() == all;
        if split && seen.values().map(BTreeSet::len).sum::<usize>() == 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{rt}] no split: a {owned_a:?} b {owned_b:?}; seen {seen:?}"
        );
    }
    for (tp, end) in &end {
        let offsets = seen.get(tp).cloned().unwrap_or_default();
        assert_eq!(
            offsets,
            (0..*end).collect(),
            "[{rt}] {tp}: every record at least once"
        );
    }
    a.close().expect("close a");
    b.close().expect("close b");
}

/// A pattern subscription takes every matching topic, and a matching topic
/// created later joins it at the next metadata refresh; the lone member
/// leads its group.
fn pattern_subscription_follows_new_topics<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("pattern_subscription [{rt}]"),
        Duration::from_secs(180),
    );
    let broker = Broker::start(kind).expect("start broker");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    broker.create_topic("ledger-eu", 2).expect("create topic");
    broker.create_topic("ledgers", 1).expect("create topic");
    let mut end = produce_all(&mut conn, "ledger-eu", 2, 0, 10);
    produce_all(&mut conn, "ledgers", 1, 0, 10);

    let mut config = group_config(&broker, "auditors", false);
    config.metadata_max_age = Duration::from_secs(1);
    let member: C = build(config);
    let log = RebalanceLog::default();
    member
        .subscribe_pattern("ledger-.*", &log)
        .expect("subscribe");
    let mut tracker = OffsetTracker::starting_at(&partitions("ledger-eu", 2), 0);
    consume_to(
        &member,
        "pattern member",
        JOIN_LIMIT,
        &mut tracker,
        &end,
        check_numbered,
    );
    assert_eq!(
        member.subscription(),
        vec!["ledger-eu".to_string()],
        "[{rt}]"
    );
    let metadata = member.group_metadata().expect("group metadata");
    assert!(
        metadata.leader,
        "[{rt}] the only member leads: {metadata:?}"
    );
    assert!(metadata.generation_id >= 0, "[{rt}] {metadata:?}");
    assert!(!metadata.member_id.is_empty(), "[{rt}] {metadata:?}");

    broker.create_topic("ledger-us", 3).expect("create topic");
    end.extend(produce_all(&mut conn, "ledger-us", 3, 0, 10));
    for tp in partitions("ledger-us", 3) {
        tracker.expect(&tp, 0);
    }
    consume_to(
        &member,
        "pattern member after a new topic",
        JOIN_LIMIT,
        &mut tracker,
        &end,
        check_numbered,
    );
    assert_eq!(
        member.subscription(),
        vec!["ledger-eu".to_string(), "ledger-us".into()],
        "[{rt}]"
    );
    let want: BTreeSet<TopicPartition> = end.keys().cloned().collect();
    assert_eq!(assigned_in(&log), want, "[{rt}] listener: {log:?}");
    member.close().expect("close");
}

/// `commit_async` and `commit_offsets_async` reach the coordinator and
/// report through their callbacks, with no poll needed in between.
fn async_commits_call_back<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let Setup {
        broker, all, end, ..
    } = setup(
        kind,
        &format!("async_commits_call_back [{rt}]"),
        Duration::from_secs(120),
        "payments",
        2,
        12,
    );

    let member: C = build(group_config(&broker, "settlers", false));
    member
        .subscribe(&["payments"], &RebalanceLog::default())
        .expect("subscribe");
    consume_from(&member, "async committer", 0, &end);
    member.commit_async(None).expect("commit_async callback");
    let committed = member.committed(&all).expect("committed");
    for tp in &all {
        assert_eq!(
            committed.get(tp).cloned().flatten().map(|o| o.offset),
            Some(12),
            "[{rt}] {tp}: {committed:?}"
        );
    }
    let rewind: BTreeMap<TopicPartition, OffsetAndMetadata> =
        [(all[1].clone(), OffsetAndMetadata::new(4))].into();
    member
        .commit_async(Some(rewind))
        .expect("commit_offsets_async callback");
    let committed = member.committed(&all).expect("committed");
    assert_eq!(
        committed[&all[1]].as_ref().map(|o| o.offset),
        Some(4),
        "[{rt}]"
    );
    assert_eq!(
        committed[&all[0]].as_ref().map(|o| o.offset),
        Some(12),
        "[{rt}]"
    );
    member.close().expect("close");
}

/// `unsubscribe` revokes through the listener, leaves the group at once
/// (LeaveGroup: the coordinator forgets the member well before its session
/// would expire), and a later `subscribe` joins again from the commits.
fn unsubscribe_leaves_and_subscribe_rejoins<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let Setup {
        broker,
        mut conn,
        all,
        end,
        ..
    } = setup(
        kind,
        &format!("unsubscribe [{rt}]"),
        Duration::from_secs(120),
        "refunds",
        2,
        8,
    );

    let member: C = build(group_config(&broker, "refunders", false));
    let log = RebalanceLog::default();
    member.subscribe(&["refunds"], &log).expect("subscribe");
    consume_from(&member, "member", 0, &end);
    member.commit().expect("commit");
    let member_id = member.group_metadata().expect("metadata").member_id;
    assert_eq!(
        describe_group(&mut conn, "refunders").member_ids,
        vec![member_id.clone()],
        "[{rt}]"
    );

    let left_at = Instant::now();
    member.unsubscribe().expect("unsubscribe");
    assert_eq!(
        log.lock().unwrap().last(),
        Some(&RebalanceEvent::Revoked(all.clone())),
        "[{rt}] the listener hears of the revocation at once: {log:?}"
    );
    assert!(member.assignment().is_empty(), "[{rt}]");
    assert!(member.subscription().is_empty(), "[{rt}]");
    // The session is 3 s: a member gone within 2 s was let go, not expired.
    wait_for(
        "the coordinator forgets the member",
        Duration::from_secs(2),
        || {
            let group = describe_group(&mut conn, "refunders");
            if group.member_ids.is_empty() {
                Ok(())
            } else {
                Err(format!("members still {:?}", group.member_ids))
            }
        },
    );
    assert!(left_at.elapsed() < Duration::from_secs(3), "[{rt}]");
    assert!(
        member
            .poll(Duration::from_millis(300))
            .expect("poll")
            .is_empty(),
        "[{rt}] no records after unsubscribe"
    );

    let end = produce_all(&mut conn, "refunds", 2, 8, 4);
    member
        .subscribe(&["refunds"], &log)
        .expect("subscribe again");
    consume_from(&member, "member again", 8, &end);
    member.close().expect("close");
}

for_each_runtime!(
    commits_survive_the_member,
    auto_commit_on_close,
    auto_commit_is_at_least_once_across_a_kill,
    two_members_split_the_partitions,
    pattern_subscription_follows_new_topics,
    async_commits_call_back,
    unsubscribe_leaves_and_subscribe_rejoins
);

/// A listener that calls back into its own consumer (instead of using its
/// `RebalanceContext`) would deadlock on the consumer's lock; the call
/// panics with directions instead, and the consumer stays usable.
mod listener_calling_its_own_consumer {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Arc, OnceLock, Weak};

    use odradek_core::{RebalanceContext, RebalanceListener, TopicPartition};

    use super::*;

    /// Calls `assignment()` on its own consumer from `on_partitions_assigned`.
    struct Reentrant<C: Send + Sync + 'static> {
        consumer: Arc<OnceLock<Weak<C>>>,
        call: fn(&C),
    }

    impl<C: Send + Sync + 'static> RebalanceListener for Reentrant<C> {
        fn on_partitions_assigned(&mut self, _: &mut RebalanceContext<'_>, _: &[TopicPartition]) {
            if let Some(consumer) = self.consumer.get().and_then(Weak::upgrade) {
                (self.call)(&consumer);
            }
        }
        fn on_partitions_revoked(&mut self, _: &mut RebalanceContext<'_>, _: &[TopicPartition]) {}
    }

    fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    fn reentrant_blocking(kind: BrokerKind) {
        let _guard = HangGuard::new("reentrant listener [blocking]", Duration::from_secs(60));
        let broker = Broker::start(kind).expect("start broker");
        broker.create_topic("loops", 1).expect("create topic");
        let consumer = Arc::new(
            odradek_blocking::Consumer::new(group_config(&broker, "loopers", false))
                .expect("consumer"),
        );
        let slot = Arc::new(OnceLock::new());
        let _ = slot.set(Arc::downgrade(&consumer));
        consumer
            .subscribe_with_listener(
                ["loops"],
                Reentrant {
                    consumer: slot,
                    call: |c: &odradek_blocking::Consumer| drop(c.assignment()),
                },
            )
            .expect("subscribe");
        let deadline = Instant::now() + JOIN_LIMIT;
        let message = loop {
            assert!(Instant::now() < deadline, "never assigned");
            match catch_unwind(AssertUnwindSafe(|| {
                consumer.poll(Duration::from_millis(200))
            })) {
                Ok(result) => drop(result.expect("poll")),
                Err(payload) => break panic_message(payload),
            }
        };
        assert!(message.contains("RebalanceContext"), "{message}");
        // Still usable: the lock was released, and close completes.
        assert_eq!(consumer.assignment(), vec![TopicPartition::new("loops", 0)]);
        consumer.close().expect("close");
    }

    fn reentrant_tokio(kind: BrokerKind) {
        let _guard = HangGuard::new("reentrant listener [tokio]", Duration::from_secs(60));
        let broker = Broker::start(kind).expect("start broker");
        broker.create_topic("loops", 1).expect("create topic");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _entered = runtime.enter();
        let consumer = Arc::new(
            odradek_tokio::Consumer::new(group_config(&broker, "loopers", false))
                .expect("consumer"),
        );
        let slot = Arc::new(OnceLock::new());
        let _ = slot.set(Arc::downgrade(&consumer));
        consumer
            .subscribe_with_listener(
                ["loops"],
                Reentrant {
                    consumer: slot,
                    call: |c: &odradek_tokio::Consumer| drop(c.commit_async(|_| {})),
                },
            )
            .expect("subscribe");
        let deadline = Instant::now() + JOIN_LIMIT;
        let message = loop {
            assert!(Instant::now() < deadline, "never assigned");
            match catch_unwind(AssertUnwindSafe(|| {
                runtime.block_on(consumer.poll(Duration::from_millis(200)))
            })) {
                Ok(result) => drop(result.expect("poll")),
                Err(payload) => break panic_message(payload),
            }
        };
        assert!(message.contains("RebalanceContext"), "{message}");
        assert_eq!(consumer.assignment(), vec![TopicPartition::new("loops", 0)]);
        runtime.block_on(consumer.close()).expect("close");
    }

    odradek_tests::for_each_broker!(reentrant_blocking, reentrant_tokio);
}
