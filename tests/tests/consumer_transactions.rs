//! `isolation.level` against confluent-kafka's transactional producer
//! (`tests/python/transactional.py`), on every adapter and both brokers.
//!
//! The script commits one transaction, then writes a second and leaves it
//! open until the test tells it to commit. A read_committed consumer must
//! stop at the last stable offset (the start of the open transaction) and
//! continue after the commit; a read_uncommitted consumer sees the open
//! records at once. Neither may ever return a control record (the commit
//! markers, which occupy offsets), and positions step over them.
//!
//! `end_offsets` is not checked here: tansu answers ListOffsets LATEST
//! with isolation read_committed with offset 0 (and read_uncommitted with
//! the start of the last batch + 1), where Kafka gives the last stable
//! offset and the high watermark. The Fetch response's last stable offset
//! and high watermark, which tansu gets right, are checked instead.
//!
//! Aborted records: tansu never lists aborted transactions in Fetch
//! responses (brokers.md), so a read_committed consumer cannot filter them
//! there; on crabka the second transaction is also aborted instead, and
//! read_committed consumers (one waiting at the last stable offset, one
//! reading from the start afterwards) must never return its records. The
//! core's deterministic tests cover the path with literal responses too.

use std::collections::BTreeMap;
use std::time::Duration;

use odradek_core::{ConsumerRecord, IsolationLevel, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::suite::{
    HangGuard, TestConsumer, build, config, expect_no_records, partitions, poll_until, wait_for,
};
use odradek_tests::{Broker, BrokerKind, Interactive, python_script};

const TOPIC: &str = "txn";
const PARTITIONS: i32 = 2;
const COMMITTED: usize = 40;
const OPEN: usize = 30;
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Offsets per partition from one line of the script.
type Layout = BTreeMap<i32, Vec<i64>>;

fn read_event(script: &mut Interactive, event: &str) -> serde_json::Value {
    let line = script
        .next_line(SCRIPT_TIMEOUT)
        .expect("a line from the script");
    let json: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("transactional.py printed {line:?}: {e}"));
    assert_eq!(json["event"], event, "transactional.py: {line}");
    json
}

fn layout(json: &serde_json::Value) -> Layout {
    json["partitions"]
        .as_object()
        .expect("partitions")
        .iter()
        .map(|(p, offsets)| {
            let offsets = offsets
                .as_array()
                .expect("offsets")
                .iter()
                .map(|o| o.as_i64().expect("offset"))
                .collect();
            (p.parse().expect("partition number"), offsets)
        })
        .collect()
}

/// The value the script wrote at `offset` of `partition`, if it wrote one.
fn expected_value(
    committed: &Layout,
    open: &Layout,
    partition: i32,
    offset: i64,
) -> Option<String> {
    let find = |layout: &Layout, prefix: &str| {
        let k = layout.get(&partition)?.iter().position(|&o| o == offset)?;
        // Record i went to partition i % PARTITIONS, in order.
        Some(format!(
            "{prefix}-{}",
            partition as usize + k * PARTITIONS as usize
        ))
    };
    find(committed, "committed").or_else(|| find(open, "open"))
}

/// Collects records until each partition has exactly the offsets in
/// `want` (checking order, values, and that nothing else arrives).
fn receive<C: TestConsumer>(
    consumer: &C,
    what: &str,
    want: &BTreeMap<TopicPartition, Vec<i64>>,
    check: impl Fn(&ConsumerRecord),
) {
    let mut got: BTreeMap<TopicPartition, Vec<i64>> =
        want.keys().map(|tp| (tp.clone(), Vec::new())).collect();
    poll_until(
        consumer,
        what,
        Duration::from_secs(30),
        &mut got,
        |got, record| {
            let tp = record.topic_partition();
            let offsets = got
                .get_mut(tp)
                .unwrap_or_else(|| panic!("[{}] {what}: record of {tp}", C::RUNTIME));
            let expected = want[tp].get(offsets.len());
            assert_eq!(
                Some(&record.offset()),
                expected,
                "[{}] {what}: {tp} delivered offset {} after {:?}; the expected offsets are {:?}",
                C::RUNTIME,
                record.offset(),
                offsets,
                want[tp]
            );
            offsets.push(record.offset());
            check(record);
        },
        |got| {
            got.iter()
                .all(|(tp, offsets)| offsets.len() == want[tp].len())
        },
    );
}

/// How the second transaction ends.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Outcome {
    Commit,
    Abort,
}

fn read_committed_and_uncommitted<C: TestConsumer>(kind: BrokerKind) {
    transaction::<C>(kind, Outcome::Commit);
}

/// crabka only: tansu never lists aborted transactions in Fetch responses.
fn crabka_read_committed_skips_aborted<C: TestConsumer>(kind: BrokerKind) {
    transaction::<C>(kind, Outcome::Abort);
}

fn transaction<C: TestConsumer>(kind: BrokerKind, outcome: Outcome) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("consumer_transactions {outcome:?} [{kind} {rt}]"),
        Duration::from_secs(300),
    );
    let broker = Broker::start(kind).expect("start broker");
    broker
        .create_topic(TOPIC, PARTITIONS as u32)
        .expect("create topic");
    let all = partitions(TOPIC, PARTITIONS);
    let mut script = Interactive::python(
        &python_script("transactional.py"),
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            TOPIC,
            "--partitions",
            &PARTITIONS.to_string(),
            "--committed",
            &COMMITTED.to_string(),
            "--open",
            &OPEN.to_string(),
            "--transactional-id",
            &format!("odradek-tests-{rt}"),
        ],
    )
    .expect("start transactional.py");
    let committed = layout(&read_event(&mut script, "committed"));
    let open = layout(&read_event(&mut script, "open"));

    // The layout Kafka gives a transaction per partition: its records, then
    // one commit marker, so the open transaction starts one offset after
    // the committed one's last record + 1.
    let mut marker = BTreeMap::new();
    let mut lso = BTreeMap::new();
    let mut open_end = BTreeMap::new();
    for tp in &all {
        let p = tp.partition();
        let c = &committed[&p];
        let o = &open[&p];
        let n = c.len() as i64;
        assert_eq!(c, &(0..n).collect::<Vec<_>>(), "committed offsets of {tp}");
        assert_eq!(
            o[0],
            n + 1,
            "{tp}: one commit marker at {n}; open offsets {o:?}"
        );
        assert_eq!(
            o,
            &(n + 1..n + 1 + o.len() as i64).collect::<Vec<_>>(),
            "open offsets of {tp}"
        );
        marker.insert(tp.clone(), n);
        lso.insert(tp.clone(), n + 1);
        open_end.insert(tp.clone(), o[o.len() - 1] + 1);
    }
    // The broker's own view while the transaction is open, by a Fetch:
    // the last stable offset is the open transaction's first offset.
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    for tp in &all {
        let data = conn
            .fetch_partition(TOPIC, tp.partition(), 0, IsolationLevel::ReadCommitted)
            .expect("driver fetch");
        assert_eq!(data.last_stable_offset, lso[tp], "driver: LSO of {tp}");
        assert_eq!(
            data.high_watermark, open_end[tp],
            "driver: high watermark of {tp}"
        );
    }
    drop(conn);

    let check = |record: &ConsumerRecord| {
        let at = format!("{}@{}", record.topic_partition(), record.offset());
        let value = expected_value(&committed, &open, record.partition(), record.offset())
            .unwrap_or_else(|| {
                panic!("[{rt}] {at}: no record was written there (a control record?)")
            });
        assert_eq!(
            record.value().map(String::from_utf8_lossy),
            Some(value.as_str().into()),
            "[{rt}] {at}: value"
        );
    };
    let offsets_of = |layouts: &[&Layout]| -> BTreeMap<TopicPartition, Vec<i64>> {
        all.iter()
            .map(|tp| {
                let offsets = layouts
                    .iter()
                    .flat_map(|l| l[&tp.partition()].iter().copied())
                    .collect();
                (tp.clone(), offsets)
            })
            .collect()
    };

    // read_uncommitted: the open transaction's records are visible now.
    let uncommitted: C = build(config(&broker));
    uncommitted.assign(&all).expect("assign");
    receive(
        &uncommitted,
        "read_uncommitted before the commit",
        &offsets_of(&[&committed, &open]),
        check,
    );
    for tp in &all {
        assert_eq!(
            uncommitted.position(tp),
            Ok(open_end[tp]),
            "[{rt}] read_uncommitted position of {tp}"
        );
    }

    // read_committed: the committed records, then nothing while the
    // transaction is open; the position steps over the commit marker to
    // the last stable offset.
    let mut cfg = config(&broker);
    cfg.isolation_level = IsolationLevel::ReadCommitted;
    let committed_reader: C = build(cfg);
    committed_reader.assign(&all).expect("assign");
    receive(
        &committed_reader,
        "read_committed before the commit",
        &offsets_of(&[&committed]),
        check,
    );
    expect_no_records(
        &committed_reader,
        "read_committed while the transaction is open",
        Duration::from_millis(1500),
    );
    for tp in &all {
        let want = lso[tp];
        wait_for(
            &format!("[{rt}] read_committed position of {tp} at the LSO {want}"),
            Duration::from_secs(10),
            || match committed_reader.position(tp) {
                Ok(p) if p == want => Ok(()),
                other => Err(format!("{other:?} (marker at {})", marker[tp])),
            },
        );
    }

    match outcome {
        // Commit: read_committed continues with exactly the open records.
        Outcome::Commit => {
            script
                .send_line("commit")
                .expect("tell the script to commit");
            read_event(&mut script, "commit");
            script
                .finish(SCRIPT_TIMEOUT)
                .expect("transactional.py exits");
            receive(
                &committed_reader,
                "read_committed after the commit",
                &offsets_of(&[&open]),
                check,
            );
        }
        // Abort: the records stay in the log, listed as aborted in Fetch
        // responses; read_committed never returns them, neither the reader
        // that waited at the LSO nor a new one reading from the start.
        Outcome::Abort => {
            script.send_line("abort").expect("tell the script to abort");
            read_event(&mut script, "abort");
            script
                .finish(SCRIPT_TIMEOUT)
                .expect("transactional.py exits");
            let mut cfg = config(&broker);
            cfg.isolation_level = IsolationLevel::ReadCommitted;
            let late_reader: C = build(cfg);
            late_reader.assign(&all).expect("assign");
            receive(
                &late_reader,
                "a new read_committed consumer after the abort",
                &offsets_of(&[&committed]),
                check,
            );
            expect_no_records(
                &late_reader,
                "a new read_committed consumer after the abort",
                Duration::from_millis(500),
            );
            for tp in &all {
                let want = open_end[tp] + 1;
                wait_for(
                    &format!("[{rt}] new read_committed position of {tp} after the abort"),
                    Duration::from_secs(10),
                    || match late_reader.position(tp) {
                        Ok(p) if p == want => Ok(()),
                        other => Err(format!("{other:?}, want {want}")),
                    },
                );
            }
            late_reader.close().expect("close");
        }
    }
    // Each partition now ends with the second marker: positions step over
    // it, and it is never returned.
    expect_no_records(
        &committed_reader,
        "read_committed after everything",
        Duration::from_millis(500),
    );
    expect_no_records(
        &uncommitted,
        "read_uncommitted after the commit marker",
        Duration::from_millis(200),
    );
    for tp in &all {
        let want = open_end[tp] + 1;
        for (name, consumer) in [
            ("read_committed", &committed_reader),
            ("read_uncommitted", &uncommitted),
        ] {
            wait_for(
                &format!("[{rt}] {name} position of {tp} after the second marker"),
                Duration::from_secs(10),
                || match consumer.position(tp) {
                    Ok(p) if p == want => Ok(()),
                    other => Err(format!("{other:?}, want {want}")),
                },
            );
        }
    }
    committed_reader.close().expect("close");
    uncommitted.close().expect("close");
}

odradek_tests::for_each_runtime!(read_committed_and_uncommitted);
odradek_tests::for_each_runtime!(crabka: crabka_read_committed_skips_aborted);
