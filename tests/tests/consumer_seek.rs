//! Positions under the application's control, on every adapter: `seek`
//! (into the middle of a batch), `seek_to_beginning`, `seek_to_end`,
//! `pause` / `resume` / `paused`, and `position` after consuming, each
//! checked record by record for loss and duplication.
//!
//! Records are written with Odradek's own batch encoder through the test
//! driver, so batch boundaries are known: every partition ends with a
//! one-record batch, which is what makes tansu's ListOffsets LATEST (and so
//! `seek_to_end`) exact — tansu answers "start of the last batch + 1"
//! (brokers.md), which equals the log end only when that batch holds one
//! record.

use std::collections::BTreeMap;
use std::time::Duration;

use odradek_core::records::Compression;
use odradek_core::{Error, Misuse, TopicPartition};
use odradek_tests::driver::Connection;
use odradek_tests::suite::{
    HangGuard, OffsetTracker, TestConsumer, build, check_numbered, config, consume_to,
    expect_no_records, partitions, partitions_of, poll_until, produce_numbered,
    wait_connections_closed,
};
use odradek_tests::{Broker, BrokerKind};

const TOPIC: &str = "seek";
/// Batch sizes per partition: 800 records, the last batch a single record.
const BATCHES: [usize; 4] = [200, 300, 299, 1];
const END: i64 = 800;
const LIMIT: Duration = Duration::from_secs(60);

fn ends(tps: &[TopicPartition], end: i64) -> BTreeMap<TopicPartition, i64> {
    tps.iter().map(|tp| (tp.clone(), end)).collect()
}

fn seek_pause_resume<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(format!("consumer_seek [{rt}]"), Duration::from_secs(300));
    let broker = Broker::start(kind).expect("start broker");
    broker.create_topic(TOPIC, 3).expect("create topic");
    let mut conn = Connection::connect(broker.addr()).expect("driver");
    let codecs = [Compression::None, Compression::Lz4, Compression::Zstd];
    for (p, codec) in codecs.into_iter().enumerate() {
        let end = produce_numbered(&mut conn, TOPIC, p as i32, 0, &BATCHES, codec);
        assert_eq!(end, END);
    }
    let all = partitions(TOPIC, 3);
    let (p0, p1, p2) = (all[0].clone(), all[1].clone(), all[2].clone());

    // A small max.poll.records leaves fetched records buffered between
    // polls, so seeks and pauses have buffered data to drop.
    let mut cfg = config(&broker);
    cfg.max_poll_records = 50;
    let consumer: C = build(cfg);
    consumer.assign(&all).expect("assign");

    // Everything once, then positions equal last offset + 1.
    let mut tracker = OffsetTracker::starting_at(&all, 0);
    let got = consume_to(
        &consumer,
        "first pass",
        LIMIT,
        &mut tracker,
        &ends(&all, END),
        check_numbered,
    );
    assert_eq!(got.len(), 3 * END as usize, "[{rt}] first pass");
    for tp in &all {
        let last = got
            .iter()
            .filter(|r| r.topic_partition() == tp)
            .map(|r| r.offset())
            .max();
        assert_eq!(last, Some(END - 1), "[{rt}] last offset of {tp}");
        assert_eq!(consumer.position(tp), Ok(END), "[{rt}] position of {tp}");
    }
    expect_no_records(&consumer, "at the end", Duration::from_millis(300));

    // seek into the middle of the first batch: the next record of p1 is
    // exactly 137, then the rest of p1 and nothing else.
    consumer.seek(&p1, 137).expect("seek");
    assert_eq!(
        consumer.position(&p1),
        Ok(137),
        "[{rt}] position after seek"
    );
    tracker.expect(&p1, 137);
    let got = consume_to(
        &consumer,
        "after seek(p1, 137)",
        LIMIT,
        &mut tracker,
        &ends(&all, END),
        check_numbered,
    );
    assert_eq!(got.first().map(|r| r.offset()), Some(137), "[{rt}]");
    assert_eq!(got.len(), (END - 137) as usize, "[{rt}] after seek");
    assert_eq!(partitions_of(&got), [p1.clone()].into(), "[{rt}]");

    // seek while records are buffered: consume a little from 0, then seek
    // back to 10; the buffered records from before the seek are dropped.
    consumer.seek(&p1, 0).expect("seek");
    tracker.expect(&p1, 0);
    consume_to(
        &consumer,
        "p1 from 0 to 60",
        LIMIT,
        &mut tracker,
        &ends(std::slice::from_ref(&p1), 60),
        check_numbered,
    );
    let stopped_at = tracker.next(&p1).expect("tracked");
    consumer.seek(&p1, 10).expect("seek");
    tracker.expect(&p1, 10);
    let got = consume_to(
        &consumer,
        "after seek(p1, 10)",
        LIMIT,
        &mut tracker,
        &ends(&all, END),
        check_numbered,
    );
    assert_eq!(
        got.len(),
        (END - 10) as usize,
        "[{rt}] seek(p1, 10) after stopping at {stopped_at}"
    );

    // seek_to_beginning: p0 and p2 start again at 0.
    consumer
        .seek_to_beginning(&[p0.clone(), p2.clone()])
        .expect("seek_to_beginning");
    assert_eq!(
        consumer.position(&p0),
        Ok(0),
        "[{rt}] position after seek_to_beginning"
    );
    tracker.expect(&p0, 0);
    tracker.expect(&p2, 0);
    let got = consume_to(
        &consumer,
        "after seek_to_beginning",
        LIMIT,
        &mut tracker,
        &ends(&all, END),
        check_numbered,
    );
    assert_eq!(
        got.len(),
        2 * END as usize,
        "[{rt}] after seek_to_beginning"
    );
    assert_eq!(
        partitions_of(&got),
        [p0.clone(), p2.clone()].into(),
        "[{rt}]"
    );

    // seek_to_end from the start of the log: nothing old comes back, and
    // records appended later arrive from exactly the old end.
    consumer.seek(&p0, 0).expect("seek");
    consumer
        .seek_to_end(std::slice::from_ref(&p0))
        .expect("seek_to_end");
    assert_eq!(
        consumer.position(&p0),
        Ok(END),
        "[{rt}] position after seek_to_end"
    );
    expect_no_records(&consumer, "after seek_to_end", Duration::from_millis(300));
    let new_end = produce_numbered(&mut conn, TOPIC, 0, END, &[10], Compression::Snappy);
    tracker.expect(&p0, END);
    let got = consume_to(
        &consumer,
        "records appended after seek_to_end",
        LIMIT,
        &mut tracker,
        &BTreeMap::from([(p0.clone(), new_end)]),
        check_numbered,
    );
    assert_eq!(got.len(), 10, "[{rt}] appended records");

    // pause: while p0 is paused none of its records arrive (including
    // those already buffered); the others continue. resume continues p0
    // from its position with nothing lost or repeated.
    let end_of = |tp: &TopicPartition| if tp == &p0 { new_end } else { END };
    consumer.seek_to_beginning(&all).expect("seek_to_beginning");
    for tp in &all {
        tracker.expect(tp, 0);
    }
    // One poll with records for p0, so p0 has fetched data in the buffer.
    let mut tmp = (0usize, &mut tracker);
    poll_until(
        &consumer,
        "records of p0 before pausing",
        LIMIT,
        &mut tmp,
        |(n, tracker), record| {
            tracker.accept(record);
            check_numbered(record);
            if record.topic_partition() == &p0 {
                *n += 1;
            }
        },
        |(n, _)| *n > 0,
    );
    consumer.pause(std::slice::from_ref(&p0)).expect("pause");
    assert_eq!(consumer.paused(), vec![p0.clone()], "[{rt}] paused()");
    let paused_at = tracker.next(&p0).expect("tracked");
    assert!(
        paused_at < new_end,
        "[{rt}] p0 was not fully consumed before the pause"
    );
    let others = [p1.clone(), p2.clone()];
    let got = consume_to(
        &consumer,
        "p1 and p2 while p0 is paused",
        LIMIT,
        &mut tracker,
        &others.iter().map(|tp| (tp.clone(), end_of(tp))).collect(),
        check_numbered,
    );
    assert!(
        got.iter().all(|r| r.topic_partition() != &p0),
        "[{rt}] records of paused p0 were returned"
    );
    expect_no_records(
        &consumer,
        "all but p0 consumed, p0 paused",
        Duration::from_millis(500),
    );
    assert_eq!(
        consumer.position(&p0),
        Ok(paused_at),
        "[{rt}] position of paused p0"
    );
    assert_eq!(consumer.paused(), vec![p0.clone()], "[{rt}] paused()");
    consumer.resume(std::slice::from_ref(&p0)).expect("resume");
    assert!(consumer.paused().is_empty(), "[{rt}] paused() after resume");
    let got = consume_to(
        &consumer,
        "p0 after resume",
        LIMIT,
        &mut tracker,
        &all.iter().map(|tp| (tp.clone(), end_of(tp))).collect(),
        check_numbered,
    );
    assert_eq!(
        got.len() as i64,
        new_end - paused_at,
        "[{rt}] p0 after resume"
    );
    assert_eq!(
        consumer.position(&p0),
        Ok(new_end),
        "[{rt}] position after resume"
    );

    // Bad arguments are errors, not panics or silent no-ops.
    let stranger = TopicPartition::new(TOPIC, 7);
    assert!(
        matches!(consumer.seek(&stranger, 0), Err(Error::InvalidArgument(Misuse::NotAssigned(p))) if p == stranger),
        "[{rt}] seek on an unassigned partition"
    );
    assert!(
        matches!(
            consumer.seek(&p0, -1),
            Err(Error::InvalidArgument(Misuse::NegativeOffset {
                offset: -1,
                ..
            }))
        ),
        "[{rt}] seek to a negative offset"
    );
    assert!(
        matches!(
            consumer.pause(std::slice::from_ref(&stranger)),
            Err(Error::InvalidArgument(Misuse::NotAssigned(_)))
        ),
        "[{rt}] pause of an unassigned partition"
    );
    assert!(
        consumer.paused().is_empty(),
        "[{rt}] a failed pause paused something"
    );

    drop(conn);
    consumer.close().expect("close");
    wait_connections_closed(&broker, "connections after close", Duration::from_secs(5));
}

odradek_tests::for_each_runtime!(seek_pause_resume);
