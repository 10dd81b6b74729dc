//! The one memory bound (`queued.max.messages.kbytes`): fetch responses
//! held for their records, decompressed batches and the fetches in flight
//! all count against it, on a scripted broker that (like crabka) ignores
//! the response-level `max_bytes`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use odradek_core::records::{Compression, NewRecord, RecordBatchBuilder};
use odradek_core::{ConsumerConfig, OffsetReset, TopicPartition};
use support::*;

fn with(f: impl FnOnce(&mut ConsumerConfig)) -> ConsumerConfig {
    let mut c = config();
    c.auto_offset_reset = OffsetReset::Earliest;
    f(&mut c);
    c
}

/// Appends `batches` batches of `per_batch` records with `value_size`-byte
/// values (`"{partition}:{offset}:"` then filler) in `codec`; returns the
/// largest batch's decompressed records size.
fn fill(
    log: &mut PartitionLog,
    partition: i32,
    batches: usize,
    per_batch: usize,
    value_size: usize,
    codec: Compression,
) -> usize {
    let mut largest = 0;
    for _ in 0..batches {
        let base = log.high_watermark.max(0);
        let records: Vec<NewRecord> = (0..per_batch as i64)
            .map(|i| NewRecord::new().with_value(value(partition, base + i, value_size)))
            .collect();
        largest = largest.max(per_batch * (value_size + 20));
        let bytes = RecordBatchBuilder::new(base)
            .compression(codec)
            .records(records)
            .encode()
            .expect("encode");
        log.append_batch(base, base + per_batch as i64, bytes);
    }
    largest
}

fn value(partition: i32, offset: i64, size: usize) -> Vec<u8> {
    let mut v = format!("{partition}:{offset}:").into_bytes();
    v.resize(size, b'x');
    v
}

fn zeros(ends: &BTreeMap<i32, i64>) -> BTreeMap<i32, i64> {
    ends.keys().map(|&p| (p, 0)).collect()
}

/// Consumes everything assigned, checking order and content, and after
/// every step that the bytes held plus those reserved stay within
/// `bound + slack`. Returns the highest figure seen.
fn consume_within(
    cluster: &mut Cluster,
    from: &BTreeMap<i32, i64>,
    ends: &BTreeMap<i32, i64>,
    value_size: usize,
    bound: usize,
    slack: usize,
) -> usize {
    let mut next = from.clone();
    let mut peak = 0;
    let mut check = |c: &mut Cluster| {
        let m = c.consumer.metrics(c.now).consumer;
        let in_use = m.buffered_bytes + m.fetch_reserved_bytes;
        assert!(
            in_use <= bound + slack,
            "{} held + {} reserved = {in_use} over the bound {bound} + {slack}",
            m.buffered_bytes,
            m.fetch_reserved_bytes
        );
        peak = peak.max(in_use);
    };
    let deadline = cluster.now + Duration::from_secs(120);
    while next != *ends {
        assert!(cluster.now < deadline, "stuck at {next:?}");
        cluster.drive();
        check(cluster);
        let records = cluster.consumer.take_records(cluster.now).expect("poll");
        check(cluster);
        if records.is_empty() {
            let at = cluster.next_wakeup().expect("a timer");
            cluster.now = at;
            cluster.consumer.handle_timeout(at);
            continue;
        }
        for r in &records {
            let p = r.partition();
            let at = next.get_mut(&p).expect("assigned");
            assert_eq!(r.offset(), *at, "partition {p}");
            assert_eq!(r.value(), Some(&value(p, *at, value_size)[..]));
            *at += 1;
        }
    }
    peak
}

#[test]
fn responses_and_fetches_in_flight_stay_within_the_bound() {
    const PARTS: i32 = 40;
    let bound = 64 * 1024;
    let mut cluster = Cluster::new(
        with(|c| {
            c.fetch_buffer_max_bytes = bound;
            c.max_partition_fetch_bytes = 4096;
            c.max_poll_records = 7;
        }),
        2,
    );
    // Two leaders, so two fetches are in flight at once: the second is
    // sized from what the first did not reserve.
    cluster.broker(1).ignores_fetch_max_bytes = true;
    cluster.broker(2).ignores_fetch_max_bytes = true;
    cluster.topic("wide", PARTS as usize);
    let mut ends = BTreeMap::new();
    for p in 0..PARTS {
        let log = cluster.log("wide", p as usize);
        log.leader = 1 + p % 2;
        fill(log, p, 6, 10, 100, Compression::None);
        ends.insert(p, 60);
    }
    let all: Vec<TopicPartition> = (0..PARTS).map(|p| tp("wide", p)).collect();
    cluster.consumer.assign(all, cluster.now).unwrap();
    // Batches (about 1.3 KB) are below the partition limit, so nothing may
    // overshoot: every response fits what was reserved for it.
    let peak = consume_within(&mut cluster, &zeros(&ends), &ends, 100, bound, 0);
    assert!(peak > bound / 2, "the bound was used: peak {peak}");

    // No request asks for more than half the bound, so one can be in
    // flight while the application reads another.
    let fetches: Vec<_> = [1, 2]
        .into_iter()
        .flat_map(|b| {
            cluster
                .broker(b)
                .fetches()
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    for f in &fetches {
        let asked: i64 = f
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| i64::from(p.partition_max_bytes) + 64)
            .sum();
        assert!(asked <= (bound / 2) as i64, "a fetch asked for {asked}");
    }
    // The order rotates: every partition is asked for once before any is
    // asked for twice.
    let mut asked = BTreeSet::new();
    for f in cluster.broker(1).fetches() {
        for p in f.topics.iter().flat_map(|t| &t.partitions) {
            if !asked.insert(p.partition) {
                assert_eq!(
                    asked.len(),
                    PARTS as usize / 2,
                    "{} asked again first",
                    p.partition
                );
            }
        }
    }
}

#[test]
fn a_response_is_held_until_its_last_batch_is_delivered() {
    let mut cluster = Cluster::new(with(|c| c.max_poll_records = 10), 1);
    cluster.in_order = true;
    cluster.topic("t", 2);
    for p in 0..2 {
        fill(
            cluster.log("t", p as usize),
            p,
            1,
            10,
            50,
            Compression::None,
        );
    }
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1)], cluster.now)
        .unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.buffered_bytes() > 0
            && (0..2).all(|p| c.consumer.high_watermark(&tp("t", p)).is_some())
    });
    let held = cluster.consumer.buffered_bytes();
    let batches: usize = (0..2).map(|p| cluster.log("t", p).batches[0].2.len()).sum();
    assert!(held > batches, "the whole response ({held}) is held");
    // One partition's batch is delivered: the other still holds the response.
    let first = cluster.consumer.take_records(cluster.now).unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(cluster.consumer.buffered_bytes(), held);
    let second = cluster.consumer.take_records(cluster.now).unwrap();
    assert_eq!(second.len(), 10);
    assert_ne!(
        first.iter().next().unwrap().partition(),
        second.iter().next().unwrap().partition()
    );
    assert_eq!(
        cluster.consumer.buffered_bytes(),
        0,
        "the response is let go"
    );
}

#[test]
fn compressed_batches_are_decompressed_only_when_their_turn_comes() {
    // Five lz4 batches of 100 records of 1,000 bytes: about 100 KB each
    // decompressed, a few KB compressed.
    let mut cluster = Cluster::new(with(|c| c.max_poll_records = 10), 1);
    cluster.in_order = true;
    cluster.topic("z", 1);
    let largest = fill(cluster.log("z", 0), 0, 5, 100, 1000, Compression::Lz4);
    cluster.consumer.assign([tp("z", 0)], cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| c.consumer.buffered_bytes() > 0);
    let fetched = cluster.consumer.buffered_bytes();
    assert!(fetched < 50_000, "compressed: {fetched}");
    let taken = cluster.consumer.take_records(cluster.now).unwrap();
    assert_eq!(taken.len(), 10);
    let open = cluster.consumer.buffered_bytes();
    assert!(
        open > fetched + 90_000 && open < fetched + largest,
        "one batch decompressed: {open} (response {fetched}, a batch about 100 KB)"
    );
    let m = cluster.consumer.metrics(cluster.now).partitions[&tp("z", 0)].clone();
    assert_eq!(m.buffered_records, 490);
    drop(taken);
    let rest = cluster.poll_n(490, Duration::from_secs(5));
    assert_eq!(rest.len(), 490);
    assert_eq!(rest.last().unwrap().offset(), 499);
}

#[test]
fn decompressed_batches_larger_than_the_bound_still_go_through() {
    // Each batch decompresses to about 100 KB against a 64 KiB bound: one
    // batch is open at a time, so the overshoot is one batch.
    let bound = 64 * 1024;
    let mut cluster = Cluster::new(
        with(|c| {
            c.fetch_buffer_max_bytes = bound;
            c.max_partition_fetch_bytes = 8192;
            c.max_poll_records = 30;
        }),
        1,
    );
    cluster.broker(1).ignores_fetch_max_bytes = true;
    cluster.topic("z", 4);
    let mut ends = BTreeMap::new();
    let mut largest = 0;
    for p in 0..4 {
        largest = largest.max(fill(
            cluster.log("z", p as usize),
            p,
            4,
            100,
            1000,
            Compression::Zstd,
        ));
        ends.insert(p, 400);
    }
    let all: Vec<TopicPartition> = (0..4).map(|p| tp("z", p)).collect();
    cluster.consumer.assign(all, cluster.now).unwrap();
    consume_within(&mut cluster, &zeros(&ends), &ends, 1000, bound, largest);
}

#[test]
fn caught_up_partitions_share_one_request() {
    // 300 empty partitions: once each is known to be caught up, one Fetch
    // asks for all of them, at a smaller limit each.
    const PARTS: i32 = 300;
    let mut cluster = Cluster::new(with(|_| {}), 1);
    cluster.topic("quiet", PARTS as usize);
    let all: Vec<TopicPartition> = (0..PARTS).map(|p| tp("quiet", p)).collect();
    cluster.consumer.assign(all, cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(30), |c| {
        c.broker(1)
            .fetches()
            .iter()
            .any(|f| f.topics.iter().map(|t| t.partitions.len()).sum::<usize>() == PARTS as usize)
    });
    let widest = cluster
        .broker(1)
        .fetches()
        .into_iter()
        .max_by_key(|f| f.topics.iter().map(|t| t.partitions.len()).sum::<usize>())
        .cloned()
        .unwrap();
    let limits: BTreeSet<i32> = widest
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.partition_max_bytes)
        .collect();
    assert!(
        limits.iter().all(|l| (16 * 1024..1024 * 1024).contains(l)),
        "{limits:?}"
    );
    // And nobody waits on them: a record in any partition arrives.
    cluster.log("quiet", 297).append_values(3);
    let records = cluster.poll_n(3, Duration::from_secs(10));
    assert!(records.iter().all(|r| r.partition() == 297));
}

// ---- a faulty link -----------------------------------------------------

#[test]
fn fetches_shrink_on_a_link_that_breaks_mid_response_and_grow_back() {
    // Every response is cut after 64 KiB and the connection closed: three
    // partitions of 100 KB each can only come through in smaller fetches.
    let mut cluster = Cluster::new(with(|_| {}), 1);
    cluster.topic("f", 3);
    let mut ends = BTreeMap::new();
    for p in 0..3 {
        fill(
            cluster.log("f", p as usize),
            p,
            10,
            20,
            500,
            Compression::None,
        );
        ends.insert(p, 200);
    }
    cluster.broker(1).script.push(Box::new(|h, _| {
        (h.api_key == odradek_core::protocol::ApiKey::Fetch.code())
            .then_some(Action::PartialThenDisconnect(64 * 1024))
    }));
    let all: Vec<TopicPartition> = (0..3).map(|p| tp("f", p)).collect();
    cluster.consumer.assign(all, cluster.now).unwrap();
    consume_within(&mut cluster, &zeros(&ends), &ends, 500, 64 << 20, 0);
    let m = cluster.consumer.metrics(cluster.now).consumer;
    assert!(m.fetch_failed_total >= 3, "{m:?}");
    assert_eq!(
        m.fetch_shrunk_brokers, 1,
        "still shrunk while the link is bad"
    );
    let asked = |f: &odradek_core::protocol::messages::FetchRequest| -> i64 {
        f.topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| i64::from(p.partition_max_bytes))
            .sum()
    };
    let fetches: Vec<i64> = cluster.broker(1).fetches().into_iter().map(asked).collect();
    assert!(fetches[0] >= 3 << 20, "the first fetch asks for everything");
    assert!(fetches.iter().any(|&a| a < 64 * 1024), "{fetches:?}");

    // The link heals: after a few complete responses fetches grow back.
    cluster.broker(1).script.clear();
    for p in 0..3 {
        fill(
            cluster.log("f", p as usize),
            p,
            30,
            20,
            500,
            Compression::None,
        );
        ends.insert(p, 800);
    }
    let before = cluster.broker(1).fetches().len();
    let from = ends.keys().map(|&p| (p, 200)).collect();
    consume_within(&mut cluster, &from, &ends, 500, 64 << 20, 0);
    // Caught up, the empty answers to long polls count as complete too.
    cluster.advance(Duration::from_secs(5));
    let m = cluster.consumer.metrics(cluster.now).consumer;
    assert_eq!(m.fetch_shrunk_brokers, 0, "grown back");
    let last = cluster
        .broker(1)
        .fetches()
        .last()
        .map(|f| asked(f))
        .unwrap();
    assert!(last >= 3 << 20, "asks for everything again: {last}");
    assert!(cluster.broker(1).fetches().len() > before);
}
