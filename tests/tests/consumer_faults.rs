//! Broker failures on every adapter: the broker killed and restarted on the
//! same port in the middle of consumption, and a broker that is gone. No
//! panic, no hang: the consumer reconnects and continues, or reports an
//! error through `poll`; `poll` and `close` return within their bounds.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use odradek_core::protocol::ApiKey;
use odradek_core::records::Compression;
use odradek_core::{ConsumerRecord, OffsetAndMetadata, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::suite::{
    HangGuard, OffsetTracker, RebalanceLog, TestConsumer, build, check_numbered, config,
    consume_to, group_config, partitions, produce_numbered, timed, wait_connections_closed,
    wait_for,
};
use odradek_tests::{Broker, BrokerKind};

const TOPIC: &str = "faults";

/// How much longer than asked a `poll` may take (scheduling on a loaded
/// 2-core machine), and the bound on `close`.
const POLL_SLACK: Duration = Duration::from_secs(2);
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// Creates the topic (unless it exists) and writes numbered records
/// (batches of 100) to each partition from offset `from` up to `to`.
fn fill(broker: &Broker, create: bool, from: usize, to: usize) {
    if create {
        broker.create_topic(TOPIC, 2).unwrap_or_else(|e| {
            panic!("create {TOPIC}: {e}\n{}", broker.log_tail());
        });
    }
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    for p in 0..2 {
        produce_numbered(
            &mut conn,
            TOPIC,
            p,
            from as i64,
            &vec![100; (to - from) / 100],
            Compression::Lz4,
        );
    }
}

/// Polls until every partition reaches `end`, tolerating (and returning)
/// poll errors: during a broker restart an adapter may report one.
fn consume_through_errors<C: TestConsumer>(
    consumer: &C,
    tracker: &mut OffsetTracker,
    end: &BTreeMap<TopicPartition, i64>,
    limit: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut errors = Vec::new();
    while !tracker.all_reached(end) {
        assert!(
            Instant::now() < deadline,
            "[{}] not caught up {limit:?} after the restart: at {:?}, want {end:?}; poll errors: {errors:?}",
            C::RUNTIME,
            tracker
        );
        let (result, took) = timed(|| consumer.poll(Duration::from_millis(500)));
        assert!(
            took < Duration::from_millis(500) + POLL_SLACK,
            "[{}] poll(500 ms) took {took:?}",
            C::RUNTIME
        );
        match result {
            Ok(records) => {
                for record in &records {
                    tracker.accept(record);
                    check_numbered(record);
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

fn broker_restart_mid_consumption<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_faults restart [{rt}]"),
        Duration::from_secs(300),
    );
    let mut broker = Broker::start(kind).expect("start broker");
    fill(&broker, true, 0, 1000);
    let all = partitions(TOPIC, 2);
    let mut cfg = config(&broker);
    cfg.max_poll_records = 100;
    let consumer: C = build(cfg);
    consumer.assign(&all).expect("assign");

    // Part of the log, then the broker dies with everything it stored.
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let halfway: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 500)).collect();
    consume_to(
        &consumer,
        "before the restart",
        Duration::from_secs(30),
        &mut tracker,
        &halfway,
        check_numbered,
    );
    broker
        .restart()
        .expect("restart the broker on the same port");
    if kind.persists() {
        // crabka kept its log: append the rest.
        fill(&broker, false, 1000, 2000);
    } else {
        // Memory storage starts empty: recreate the topic with the same
        // numbered records, and more of them, so the consumer's positions
        // are inside the new log. Its records are identical at each offset,
        // so the whole run must read as one stream without a gap or a repeat.
        fill(&broker, true, 0, 2000);
    }
    let end: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 2000)).collect();
    let (errors, took) =
        timed(|| consume_through_errors(&consumer, &mut tracker, &end, Duration::from_secs(60)));
    eprintln!("[{rt}] caught up {took:?} after the restart; poll errors: {errors:?}");
    for tp in &all {
        assert_eq!(consumer.position(tp), Ok(2000), "[{rt}] position of {tp}");
    }
    let (closed, took) = timed(|| consumer.close());
    closed.expect("close after a restart");
    assert!(took < CLOSE_BOUND, "[{rt}] close took {took:?}");
    wait_connections_closed(&broker, "connections after close", Duration::from_secs(5));
}

fn broker_gone<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_faults gone [{rt}]"),
        Duration::from_secs(300),
    );
    let mut broker = Broker::start(kind).expect("start broker");
    fill(&broker, true, 0, 100);
    let all = partitions(TOPIC, 2);
    let mut cfg = config(&broker);
    cfg.default_api_timeout = Duration::from_secs(3);
    let consumer: C = build(cfg.clone());
    consumer.assign(&all).expect("assign");
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let end: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 100)).collect();
    consume_to(
        &consumer,
        "everything",
        Duration::from_secs(30),
        &mut tracker,
        &end,
        check_numbered,
    );

    broker.stop();
    // poll returns at its timeout (empty) or with an error, never later.
    for _ in 0..3 {
        let (result, took) = timed(|| consumer.poll(Duration::from_millis(700)));
        assert!(
            took < Duration::from_millis(700) + POLL_SLACK,
            "[{rt}] poll(700 ms) with the broker gone took {took:?}"
        );
        if let Ok(records) = result {
            assert!(records.is_empty(), "[{rt}] records from a dead broker");
        }
    }
    // A known position needs no broker.
    let (position, took) = timed(|| consumer.position(&all[0]));
    assert_eq!(position, Ok(100), "[{rt}] position with the broker gone");
    assert!(took < POLL_SLACK, "[{rt}] position took {took:?}");
    // A query cannot be answered: an error within default.api.timeout.ms.
    let (answer, took) = timed(|| consumer.end_offsets(&all));
    assert!(
        answer.is_err(),
        "[{rt}] end_offsets with the broker gone: {answer:?}"
    );
    assert!(
        took < cfg.default_api_timeout + POLL_SLACK,
        "[{rt}] end_offsets took {took:?}"
    );
    let (closed, took) = timed(|| consumer.close());
    assert!(
        took < CLOSE_BOUND,
        "[{rt}] close with the broker gone took {took:?}: {closed:?}"
    );
    closed.expect("close with the broker gone");

    // A consumer that never reaches a broker behaves the same way.
    let stranded: C = build(cfg);
    stranded.assign(&all).expect("assign");
    let (result, took) = timed(|| stranded.poll(Duration::from_millis(700)));
    assert!(
        took < Duration::from_millis(700) + POLL_SLACK,
        "[{rt}] poll(700 ms) without a broker took {took:?}"
    );
    if let Ok(records) = result {
        assert!(records.is_empty(), "[{rt}] records without a broker");
    }
    let (closed, took) = timed(|| stranded.close());
    assert!(
        took < CLOSE_BOUND,
        "[{rt}] close without a broker took {took:?}: {closed:?}"
    );
    closed.expect("close without a broker");
}

/// crabka only (tansu keeps nothing across a restart): a group member
/// consumes half the topic and commits; the broker is SIGKILLed and
/// restarted on its data directory while the member keeps polling. The
/// committed offsets are intact (another consumer of the group reads them
/// back), the member carries on, and every record, including those written
/// after the restart, is delivered at least once.
fn crabka_group_survives_a_broker_kill<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_faults group across a kill [{kind} {rt}]"),
        Duration::from_secs(300),
    );
    let mut broker = Broker::start(kind).expect("start broker");
    fill(&broker, true, 0, 1000);
    let all = partitions(TOPIC, 2);
    let mut cfg = group_config(&broker, "survivors", false);
    cfg.max_poll_records = 100;
    let member: C = build(cfg.clone());
    member
        .subscribe(&[TOPIC], &RebalanceLog::default())
        .expect("subscribe");
    let mut seen: BTreeMap<TopicPartition, BTreeSet<i64>> = BTreeMap::new();
    let take = |seen: &mut BTreeMap<TopicPartition, BTreeSet<i64>>, records: &[ConsumerRecord]| {
        for record in records {
            check_numbered(record);
            seen.entry(record.topic_partition().clone())
                .or_default()
                .insert(record.offset());
        }
    };
    let halfway: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 500)).collect();
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let got = consume_to(
        &member,
        "the first half",
        Duration::from_secs(60),
        &mut tracker,
        &halfway,
        check_numbered,
    );
    take(&mut seen, &got);
    member.commit().expect("commit");
    let committed = member.committed(&all).expect("committed");
    let before: BTreeMap<TopicPartition, i64> = committed
        .iter()
        .map(|(tp, o)| (tp.clone(), o.as_ref().expect("committed").offset))
        .collect();
    assert!(before.values().all(|&o| o >= 500), "[{rt}] {before:?}");

    broker.stop();
    broker.restart().expect("restart crabka on its data");
    fill(&broker, false, 1000, 1200);

    let reader: C = build(cfg);
    let after = wait_for(
        "the committed offsets after the restart",
        Duration::from_secs(60),
        || {
            let committed = reader.committed(&all).map_err(|e| e.to_string())?;
            Ok(committed
                .iter()
                .map(|(tp, o)| (tp.clone(), o.as_ref().map_or(-1, |o| o.offset)))
                .collect::<BTreeMap<_, _>>())
        },
    );
    assert_eq!(after, before, "[{rt}] commits after the broker's restart");
    reader.close().expect("close");

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut errors = Vec::new();
    while !all.iter().all(|tp| {
        seen.get(tp)
            .is_some_and(|s| (0..1200).all(|o| s.contains(&o)))
    }) {
        assert!(
            Instant::now() < deadline,
            "[{rt}] not every record after the restart; poll errors {errors:?}; last offsets {:?}",
            seen.iter()
                .map(|(tp, s)| (tp, s.len(), s.last()))
                .collect::<Vec<_>>()
        );
        match member.poll(Duration::from_millis(500)) {
            Ok(records) => take(&mut seen, &records.iter().cloned().collect::<Vec<_>>()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    // crabka keeps no group membership across a restart (Apache Kafka does:
    // the member would carry on in its generation), so the member may lose
    // its partitions, rejoin and read again from the committed offsets: it
    // commits once it owns every partition again and has read it to the end.
    wait_for(
        "a commit of the end after the restart",
        Duration::from_secs(60),
        || {
            match member.poll(Duration::from_millis(200)) {
                Ok(records) => take(&mut seen, &records.iter().cloned().collect::<Vec<_>>()),
                Err(e) => errors.push(e.to_string()),
            }
            let at_end = member.assignment().len() == all.len()
                && all.iter().all(|tp| member.position(tp) == Ok(1200));
            if !at_end {
                return Err(format!("assignment {:?}", member.assignment()));
            }
            member.commit().map_err(|e| {
                errors.push(e.to_string());
                e.to_string()
            })
        },
    );
    let committed = member.committed(&all).expect("committed");
    for tp in &all {
        assert_eq!(
            committed[tp].as_ref().map(|o| o.offset),
            Some(1200),
            "[{rt}] final commit of {tp}"
        );
    }
    eprintln!("[{rt}] poll errors across the broker's restart: {errors:?}");
    member.close().expect("close");
}

/// crabka only (tansu has no OffsetForLeaderEpoch): KIP-320 end to end. A
/// group commits offsets that carry the leader epoch of the last record;
/// after a broker restart a new member of the group starts from them and
/// first validates them with OffsetForLeaderEpoch (counted by the broker),
/// then resumes exactly at the committed offset, neither reset nor
/// truncated.
fn crabka_committed_positions_are_validated_after_a_restart<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_faults validation after a restart [{kind} {rt}]"),
        Duration::from_secs(180),
    );
    assert_eq!(kind, BrokerKind::Crabka);
    let mut broker = Broker::start_logging_requests().expect("start crabka");
    fill(&broker, true, 0, 200);
    let all = partitions(TOPIC, 2);
    let cfg = group_config(&broker, "validators", false);
    let first: C = build(cfg.clone());
    first
        .subscribe(&[TOPIC], &RebalanceLog::default())
        .expect("subscribe");
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let halfway: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 100)).collect();
    consume_to(
        &first,
        "the first half",
        Duration::from_secs(60),
        &mut tracker,
        &halfway,
        check_numbered,
    );
    let positions: BTreeMap<TopicPartition, OffsetAndMetadata> = all
        .iter()
        .map(|tp| {
            let offset = OffsetAndMetadata {
                leader_epoch: Some(0),
                ..OffsetAndMetadata::new(100)
            };
            (tp.clone(), offset)
        })
        .collect();
    first.commit_offsets(&positions).expect("commit");
    first.close().expect("close");

    broker.restart().expect("restart crabka on its data");
    assert_eq!(
        broker
            .requests_answered(ApiKey::OffsetForLeaderEpoch)
            .expect("request log"),
        0,
        "no validation before the second member"
    );
    let second: C = build(cfg);
    second
        .subscribe(&[TOPIC], &RebalanceLog::default())
        .expect("subscribe");
    let mut tracker = OffsetTracker::starting_at(&all, 100);
    let end: BTreeMap<TopicPartition, i64> = all.iter().map(|tp| (tp.clone(), 200)).collect();
    let got = consume_to(
        &second,
        "from the committed offsets",
        Duration::from_secs(60),
        &mut tracker,
        &end,
        check_numbered,
    );
    for tp in &all {
        let first = got
            .iter()
            .find(|r| r.topic_partition() == tp)
            .map(|r| r.offset());
        assert_eq!(
            first,
            Some(100),
            "[{rt}] first record of {tp} after validation"
        );
    }
    let validations = broker
        .requests_answered(ApiKey::OffsetForLeaderEpoch)
        .expect("request log");
    assert!(
        validations >= 1,
        "[{rt}] no OffsetForLeaderEpoch reached the broker"
    );
    second.close().expect("close");
}

odradek_tests::for_each_runtime!(broker_restart_mid_consumption, broker_gone);
odradek_tests::for_each_runtime!(
    crabka: crabka_group_survives_a_broker_kill,
    crabka_committed_positions_are_validated_after_a_restart
);
