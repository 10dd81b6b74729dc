//! Deterministic tests of the consumer state machine against scripted
//! brokers and a fake clock (see `support/`).

mod support;

use std::time::Duration;

use odradek_core::{ConsumerConfig, OffsetReset};
use support::*;

fn earliest() -> ConsumerConfig {
    let mut c = config();
    c.auto_offset_reset = OffsetReset::Earliest;
    c
}

#[test]
fn consumes_every_record_of_every_partition_from_the_beginning() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 2);
    cluster.log("t", 0).append_values(10).append_values(5);
    cluster.log("t", 1).append_values(7);
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1)], cluster.now)
        .unwrap();
    let records = cluster.poll_n(22, Duration::from_secs(5));
    assert_eq!(records.len(), 22);
    let p0: Vec<i64> = records
        .iter()
        .filter(|r| r.partition() == 0)
        .map(|r| r.offset())
        .collect();
    let p1: Vec<i64> = records
        .iter()
        .filter(|r| r.partition() == 1)
        .map(|r| r.offset())
        .collect();
    assert_eq!(p0, (0..15).collect::<Vec<_>>());
    assert_eq!(p1, (0..7).collect::<Vec<_>>());
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(15)
    );
}

use bytes::Bytes;
use odradek_core::protocol::messages::{
    FetchResponse,
    fetch::{FetchAbortedTransaction, FetchPartitionData, FetchableTopicResponse},
};
use odradek_core::protocol::{ApiKey, RequestBody};
use odradek_core::records::{ControlRecordType, NewRecord, RecordBatchBuilder};
use odradek_core::{ConnectionProblem, Error, Event, Io, IsolationLevel, Misuse, Operation};

fn with(f: impl FnOnce(&mut ConsumerConfig)) -> ConsumerConfig {
    let mut c = earliest();
    f(&mut c);
    c
}

// ---- auto.offset.reset and OFFSET_OUT_OF_RANGE -------------------------

fn truncated_log(cluster: &mut Cluster) {
    cluster.topic("t", 1);
    let log = cluster.log("t", 0);
    log.log_start = 100;
    log.high_watermark = 100;
    log.append_values(10);
}

#[test]
fn out_of_range_with_earliest_restarts_at_the_log_start() {
    let mut cluster = Cluster::new(earliest(), 1);
    truncated_log(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.consumer.seek(&tp("t", 0), 5, cluster.now).unwrap();
    let records = cluster.poll_n(10, Duration::from_secs(5));
    assert_eq!(offsets(&records), (100..110).collect::<Vec<_>>());
}

#[test]
fn out_of_range_with_latest_moves_to_the_end() {
    let mut cluster = Cluster::new(with(|c| c.auto_offset_reset = OffsetReset::Latest), 1);
    truncated_log(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.position(&tp("t", 0), c.now).unwrap() == Some(110)
    });
    cluster.consumer.seek(&tp("t", 0), 5, cluster.now).unwrap();
    cluster.advance(Duration::from_secs(1));
    assert!(cluster.poll().unwrap().is_empty());
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(110)
    );
    cluster.log("t", 0).append_values(3);
    let records = cluster.poll_n(3, Duration::from_secs(5));
    assert_eq!(offsets(&records), vec![110, 111, 112]);
}

#[test]
fn out_of_range_with_none_is_an_error_naming_the_partition_until_a_seek() {
    let mut cluster = Cluster::new(with(|c| c.auto_offset_reset = OffsetReset::None), 1);
    truncated_log(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    // No position at all: the application must choose one.
    let err = cluster.poll().unwrap_err();
    assert_eq!(
        err,
        Error::NoOffsetForPartition {
            partitions: vec![tp("t", 0)]
        }
    );
    assert!(err.to_string().contains("t-0"), "{err}");
    cluster.consumer.seek(&tp("t", 0), 5, cluster.now).unwrap();
    cluster.advance(Duration::from_secs(1));
    let err = cluster.poll().unwrap_err();
    assert_eq!(
        err,
        Error::OffsetOutOfRange {
            partitions: vec![(tp("t", 0), 5)]
        }
    );
    // It stays an error (no busy refetching) until the application seeks.
    let fetches = cluster.broker(1).count(ApiKey::Fetch);
    cluster.advance(Duration::from_secs(10));
    assert!(cluster.poll().is_err());
    assert_eq!(cluster.broker(1).count(ApiKey::Fetch), fetches);
    cluster
        .consumer
        .seek(&tp("t", 0), 104, cluster.now)
        .unwrap();
    let records = cluster.poll_n(6, Duration::from_secs(5));
    assert_eq!(offsets(&records), (104..110).collect::<Vec<_>>());
}

// ---- leaders and connections -------------------------------------------

#[test]
fn leader_change_mid_fetch_moves_to_the_new_leader_without_loss_or_duplicates() {
    let mut cluster = Cluster::new(earliest(), 2);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(5);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let first = cluster.poll_n(5, Duration::from_secs(5));
    assert_eq!(offsets(&first), (0..5).collect::<Vec<_>>());
    // Hold the next fetch on broker 1, move leadership to broker 2 meanwhile.
    cluster.broker(1).script.push(Box::new(|h, _| {
        (h.api_key == ApiKey::Fetch.code())
            .then_some(support::Action::Delay(Duration::from_millis(50)))
    }));
    cluster.drive();
    let log = cluster.log("t", 0);
    log.leader = 2;
    log.leader_epoch = 1;
    log.append_values(5);
    let records = cluster.poll_n(5, Duration::from_secs(10));
    assert_eq!(offsets(&records), (5..10).collect::<Vec<_>>());
    assert!(
        cluster.broker(2).count(ApiKey::Fetch) > 0,
        "fetched from the new leader"
    );
    let fetch = cluster
        .broker(2)
        .fetches()
        .last()
        .copied()
        .cloned()
        .unwrap();
    assert_eq!(
        fetch.topics[0].partitions[0].current_leader_epoch, 1,
        "the new epoch is sent"
    );
}

#[test]
fn a_disconnect_mid_response_reconnects_and_loses_nothing() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(20);
    let mut first = true;
    cluster.broker(1).script.push(Box::new(move |h, _| {
        if h.api_key == ApiKey::Fetch.code() && first {
            first = false;
            return Some(support::Action::PartialThenDisconnect(40));
        }
        None
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(20, Duration::from_secs(10));
    assert_eq!(offsets(&records), (0..20).collect::<Vec<_>>());
    assert!(
        cluster.opened.len() >= 3,
        "bootstrap, leader, and a reconnect: {:?}",
        cluster.opened
    );
    assert!(
        cluster
            .events
            .iter()
            .any(|e| matches!(e, Event::ConnectionError { .. }))
    );
}

#[test]
fn responses_split_at_every_byte_decode_the_same() {
    for chunk in [1, 2, 3, 7, 64] {
        let mut cluster = Cluster::new(earliest(), 1);
        cluster.chunk = chunk;
        cluster.topic("t", 2);
        cluster.log("t", 0).append_values(4).append_values(3);
        cluster.log("t", 1).append_values(5);
        cluster
            .consumer
            .assign([tp("t", 0), tp("t", 1)], cluster.now)
            .unwrap();
        let records = cluster.poll_n(12, Duration::from_secs(5));
        let mut got: Vec<(i32, i64)> = records
            .iter()
            .map(|r| (r.partition(), r.offset()))
            .collect();
        got.sort();
        let want: Vec<(i32, i64)> = (0..7)
            .map(|o| (0, o))
            .chain((0..5).map(|o| (1, o)))
            .collect();
        assert_eq!(got, want, "chunk size {chunk}");
    }
}

#[test]
fn a_request_timeout_closes_the_connection_and_the_fetch_is_retried() {
    let mut cluster = Cluster::new(
        with(|c| {
            c.request_timeout = Duration::from_secs(2);
        }),
        1,
    );
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(3);
    let mut ignored = 0;
    cluster.broker(1).script.push(Box::new(move |h, _| {
        if h.api_key == ApiKey::Fetch.code() && ignored == 0 {
            ignored += 1;
            return Some(support::Action::Ignore);
        }
        None
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let start = cluster.now;
    let records = cluster.poll_n(3, Duration::from_secs(10));
    assert_eq!(offsets(&records), vec![0, 1, 2]);
    // Not before the request timeout (plus fetch.max.wait.ms) ran out.
    assert!(
        cluster.now - start >= Duration::from_millis(2_100),
        "{:?}",
        cluster.now - start
    );
    assert!(cluster.events.iter().any(|e| matches!(
        e,
        Event::ConnectionError {
            reason: ConnectionProblem::RequestTimedOut(ApiKey::Fetch),
            ..
        }
    )));
}

#[test]
fn refused_connections_back_off_exponentially_with_jitter() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(1);
    cluster.broker(1).up = false;
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let start = cluster.now;
    let mut attempts = Vec::new();
    cluster.run_until(Duration::from_secs(10), |c| {
        while attempts.len() < c.opened.len() {
            attempts.push(c.now - start);
        }
        attempts.len() >= 6
    });
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // reconnect.backoff.ms 50 doubling to reconnect.backoff.max.ms 1000, ±20%.
    for (i, gap) in gaps.iter().enumerate() {
        let base = (50u64 << i).min(1000) as f64;
        let ms = gap.as_secs_f64() * 1000.0;
        assert!(
            ms >= base * 0.8 - 1.0 && ms <= base * 1.2 + 1.0,
            "gap {i}: {ms} ms, base {base}"
        );
    }
    cluster.broker(1).up = true;
    let records = cluster.poll_n(1, Duration::from_secs(5));
    assert_eq!(records.len(), 1);
}

// ---- transactions and compaction ----------------------------------------

fn transactional_log(cluster: &mut Cluster) {
    cluster.topic("t", 1);
    let values =
        |from: i64, n: i64| (from..from + n).map(|o| NewRecord::new().with_value(format!("v{o}")));
    let txn = |base: i64, pid: i64, n: i64| {
        RecordBatchBuilder::new(base)
            .producer(pid, 0, 0)
            .transactional(true)
            .records(values(base, n))
            .encode()
            .unwrap()
    };
    let marker = |base: i64, pid: i64, kind| {
        RecordBatchBuilder::end_transaction_marker(base, pid, 0, kind, 0, 0)
            .encode()
            .unwrap()
    };
    let log = cluster.log("t", 0);
    // Producer 7 aborts offsets 0..3 (marker at 3); producer 8 commits 4..7
    // (marker at 7); a plain batch 8..10.
    log.append_batch(0, 3, txn(0, 7, 3));
    log.append_batch(3, 4, marker(3, 7, ControlRecordType::Abort));
    log.append_batch(4, 7, txn(4, 8, 3));
    log.append_batch(7, 8, marker(7, 8, ControlRecordType::Commit));
    let plain = RecordBatchBuilder::new(8)
        .records(values(8, 2))
        .encode()
        .unwrap();
    log.append_batch(8, 10, plain);
    log.aborted = vec![FetchAbortedTransaction {
        producer_id: 7,
        first_offset: 0,
    }];
}

#[test]
fn read_committed_skips_aborted_transactions_and_control_records() {
    let mut cluster = Cluster::new(
        with(|c| c.isolation_level = IsolationLevel::ReadCommitted),
        1,
    );
    transactional_log(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(5, Duration::from_secs(5));
    assert_eq!(offsets(&records), vec![4, 5, 6, 8, 9]);
    assert_eq!(values(&records), vec!["v4", "v5", "v6", "v8", "v9"]);
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(10)
    );
    assert!(
        cluster
            .broker(1)
            .fetches()
            .iter()
            .all(|f| f.isolation_level == 1)
    );
}

#[test]
fn read_uncommitted_sees_aborted_data_but_never_control_records() {
    let mut cluster = Cluster::new(earliest(), 1);
    transactional_log(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(8, Duration::from_secs(5));
    assert_eq!(offsets(&records), vec![0, 1, 2, 4, 5, 6, 8, 9]);
}

#[test]
fn read_committed_stops_at_the_last_stable_offset() {
    let mut cluster = Cluster::new(
        with(|c| c.isolation_level = IsolationLevel::ReadCommitted),
        1,
    );
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(5).append_values(5);
    cluster.log("t", 0).last_stable = Some(5);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(5, Duration::from_secs(5));
    assert_eq!(offsets(&records), (0..5).collect::<Vec<_>>());
    cluster.advance(Duration::from_secs(2));
    assert!(cluster.poll().unwrap().is_empty(), "nothing past the LSO");
    cluster.log("t", 0).last_stable = None;
    let rest = cluster.poll_n(5, Duration::from_secs(5));
    assert_eq!(offsets(&rest), (5..10).collect::<Vec<_>>());
}

#[test]
fn compacted_batches_with_gaps_give_exact_offsets_and_positions() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    // Offsets 10, 13, 17 survive compaction of 10..20; the batch still ends at 19.
    let compacted = RecordBatchBuilder::new(10)
        .records([
            NewRecord::new().with_value("a").with_offset_delta(0),
            NewRecord::new().with_value("b").with_offset_delta(3),
            NewRecord::new().with_value("c").with_offset_delta(7),
        ])
        .last_offset_delta(9)
        .encode()
        .unwrap();
    let log = cluster.log("t", 0);
    log.log_start = 10;
    log.append_batch(10, 20, compacted);
    log.append_values(2);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(5, Duration::from_secs(5));
    assert_eq!(offsets(&records), vec![10, 13, 17, 20, 21]);
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(22)
    );
}

// ---- seek and pause while a fetch is in flight ---------------------------

fn slow_fetches(cluster: &mut Cluster) {
    cluster.broker(1).script.push(Box::new(|h, _| {
        (h.api_key == ApiKey::Fetch.code())
            .then_some(support::Action::Delay(Duration::from_millis(500)))
    }));
}

#[test]
fn seek_during_an_in_flight_fetch_never_returns_a_stale_record() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(100);
    slow_fetches(&mut cluster);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    // Let the first fetch (from 0) go out, then seek before it answers.
    cluster.run_until(Duration::from_secs(5), |c| {
        c.broker(1).count(ApiKey::Fetch) == 1
    });
    cluster.consumer.seek(&tp("t", 0), 50, cluster.now).unwrap();
    let records = cluster.poll_n(50, Duration::from_secs(10));
    assert_eq!(records[0].offset(), 50);
    assert_eq!(offsets(&records), (50..100).collect::<Vec<_>>());
}

#[test]
fn seek_drops_buffered_records_atomically() {
    let mut cluster = Cluster::new(with(|c| c.max_poll_records = 10), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(100);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let first = cluster.poll_n(10, Duration::from_secs(5));
    assert_eq!(offsets(&first), (0..10).collect::<Vec<_>>());
    assert!(
        cluster.consumer.buffered_bytes() > 0,
        "the rest is buffered"
    );
    cluster.consumer.seek(&tp("t", 0), 3, cluster.now).unwrap();
    assert_eq!(cluster.consumer.buffered_bytes(), 0);
    let again = cluster.poll_n(10, Duration::from_secs(5));
    assert_eq!(offsets(&again), (3..13).collect::<Vec<_>>());
}

#[test]
fn pause_during_an_in_flight_fetch_drops_its_records_and_resume_refetches() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 2);
    cluster.log("t", 0).append_values(10);
    cluster.log("t", 1).append_values(10);
    slow_fetches(&mut cluster);
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1)], cluster.now)
        .unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.broker(1).count(ApiKey::Fetch) == 1
    });
    cluster.consumer.pause(&[tp("t", 0)], cluster.now).unwrap();
    assert_eq!(cluster.consumer.paused(), vec![tp("t", 0)]);
    let records = cluster.poll_n(10, Duration::from_secs(10));
    assert!(
        records.iter().all(|r| r.partition() == 1),
        "nothing from the paused partition"
    );
    cluster.advance(Duration::from_secs(3));
    assert!(cluster.poll().unwrap().is_empty());
    // The in-flight response for the paused partition was dropped, not kept.
    assert_eq!(cluster.consumer.buffered_bytes(), 0);
    let fetches_of_p0 = |c: &mut Cluster| {
        c.broker(1)
            .fetches()
            .iter()
            .filter(|f| {
                f.topics
                    .iter()
                    .any(|t| t.partitions.iter().any(|p| p.partition == 0))
            })
            .count()
    };
    let before = fetches_of_p0(&mut cluster);
    cluster.consumer.resume(&[tp("t", 0)], cluster.now).unwrap();
    let resumed = cluster.poll_n(10, Duration::from_secs(10));
    assert_eq!(offsets(&resumed), (0..10).collect::<Vec<_>>());
    assert!(resumed.iter().all(|r| r.partition() == 0));
    assert!(
        fetches_of_p0(&mut cluster) > before,
        "fetched again after resume"
    );
}

// ---- the buffer bound, max.poll.records, fairness --------------------------

/// A broker that ignores the request-level `fetch.max.bytes` (crabka fills
/// every partition up to its own limit): the consumer asks for no more
/// partitions than fit, so the buffer still overshoots its bound by at most
/// one partition's limit, and every partition keeps being fetched.
#[test]
fn buffer_bound_holds_when_the_broker_ignores_fetch_max_bytes() {
    let (bound, partition_max, fetch_max) = (3_000, 1_000, 2_000);
    let mut cluster = Cluster::new(
        with(|c| {
            c.fetch_buffer_max_bytes = bound;
            c.max_partition_fetch_bytes = partition_max as i32;
            c.fetch_max_bytes = fetch_max;
            c.max_poll_records = 3;
        }),
        1,
    );
    cluster.broker(1).ignores_fetch_max_bytes = true;
    cluster.topic("t", 6);
    for p in 0..6 {
        for _ in 0..20 {
            cluster.log("t", p).append_values(5);
        }
    }
    let all: Vec<_> = (0..6).map(|p| tp("t", p)).collect();
    cluster.consumer.assign(all, cluster.now).unwrap();
    let mut records = Vec::new();
    let mut peak = 0;
    let deadline = cluster.now + Duration::from_secs(120);
    while records.len() < 600 {
        assert!(cluster.now < deadline, "{} records", records.len());
        cluster.advance(Duration::from_millis(5));
        peak = peak.max(cluster.consumer.buffered_bytes());
        records.extend(cluster.poll().unwrap());
        peak = peak.max(cluster.consumer.buffered_bytes());
    }
    assert!(
        peak <= bound + partition_max,
        "peak {peak} over the bound {bound} + one partition {partition_max}"
    );
    for fetch in cluster.broker(1).fetches() {
        let asked: i32 = fetch
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.partition_max_bytes)
            .sum();
        assert!(
            asked <= fetch.max_bytes.max(partition_max as i32),
            "asked for {asked} bytes of partitions with max_bytes {}",
            fetch.max_bytes
        );
    }
    for p in 0..6 {
        let mut got: Vec<i64> = records
            .iter()
            .filter(|r| r.partition() == p)
            .map(|r| r.offset())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>(), "partition {p}");
    }
}

/// When fewer partitions fit in a Fetch than are assigned, those known to
/// have records go first: a request of caught-up partitions would wait out
/// `fetch.max.wait` while another partition has a backlog.
#[test]
fn partitions_with_records_go_first_when_not_all_fit() {
    let mut cluster = Cluster::new(
        with(|c| {
            c.fetch_max_wait = Duration::from_millis(500);
            c.max_partition_fetch_bytes = 1;
            c.fetch_max_bytes = 1;
        }),
        1,
    );
    cluster.topic("t", 4);
    for _ in 0..10 {
        cluster.log("t", 3).append_values(10);
    }
    let all: Vec<_> = (0..4).map(|p| tp("t", p)).collect();
    cluster.consumer.assign(all, cluster.now).unwrap();
    // One partition per Fetch: the three empty ones are each found caught
    // up once (waiting 500 ms), then every request goes to the backlog.
    let started = cluster.now;
    let records = cluster.poll_n(100, Duration::from_secs(30));
    assert_eq!(offsets(&records), (0..100).collect::<Vec<_>>());
    let took = cluster.now - started;
    assert!(
        took < Duration::from_secs(4),
        "100 records in 10 batches took {took:?}"
    );
    assert!(
        cluster.broker(1).fetches().iter().all(|f| f
            .topics
            .iter()
            .map(|t| t.partitions.len())
            .sum::<usize>()
            == 1),
        "one partition per request"
    );
}

#[test]
fn no_fetch_goes_out_while_the_buffer_is_full() {
    let bound = 4_000;
    let mut cluster = Cluster::new(
        with(|c| {
            c.fetch_buffer_max_bytes = bound;
            c.max_partition_fetch_bytes = 1_000;
            c.max_poll_records = 5;
        }),
        1,
    );
    cluster.topic("t", 1);
    for _ in 0..40 {
        cluster.log("t", 0).append_values(10);
    }
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    // Fetches go out while a partition's limit (1,000) still fits beside
    // what is held.
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.buffered_bytes() + 1_000 > bound
    });
    let fetches = cluster.broker(1).count(ApiKey::Fetch);
    let batch = cluster.log("t", 0).batches[0].2.len();
    assert!(
        cluster.consumer.buffered_bytes() < bound + 2 * batch,
        "overshoot by at most one response"
    );
    cluster.advance(Duration::from_secs(5));
    assert_eq!(
        cluster.broker(1).count(ApiKey::Fetch),
        fetches,
        "a full buffer sends no fetch"
    );
    // Polling frees room; fetching resumes; every record arrives once.
    let records = cluster.poll_n(400, Duration::from_secs(60));
    assert_eq!(offsets(&records), (0..400).collect::<Vec<_>>());
    assert!(cluster.broker(1).count(ApiKey::Fetch) > fetches);
}

#[test]
fn poll_returns_at_most_max_poll_records_fairly_across_partitions() {
    let mut cluster = Cluster::new(with(|c| c.max_poll_records = 9), 1);
    cluster.topic("t", 3);
    for p in 0..3 {
        for _ in 0..3 {
            cluster.log("t", p).append_values(10);
        }
    }
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1), tp("t", 2)], cluster.now)
        .unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        (0..3).all(|p| c.consumer.high_watermark(&tp("t", p)).is_some())
            && c.consumer.buffered_bytes() > 0
    });
    let mut all = Vec::new();
    while all.len() < 90 {
        let batch = cluster.poll().unwrap();
        assert!(batch.len() <= 9);
        all.extend(batch);
    }
    // Partitions take turns a batch (10 records) at a time: no partition
    // has two turns in a row while another has records.
    let runs: Vec<i32> = all.chunks(10).map(|c| c[0].partition()).collect();
    for (i, chunk) in all.chunks(10).enumerate() {
        assert!(chunk.iter().all(|r| r.partition() == runs[i]), "{runs:?}");
    }
    for turn in runs.chunks(3) {
        let mut turn = turn.to_vec();
        turn.sort_unstable();
        assert_eq!(turn, vec![0, 1, 2], "{runs:?}");
    }
}

// ---- odd responses ---------------------------------------------------------

#[test]
fn a_null_records_field_is_treated_as_empty() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(3);
    let mut nulls = 0;
    cluster.broker(1).script.push(Box::new(move |h, body| {
        let RequestBody::Fetch(fetch) = body else {
            return None;
        };
        if nulls > 1 {
            return None;
        }
        nulls += 1;
        let topic = &fetch.topics[0];
        Some(support::Action::Respond(support::RequestBodyReply::Fetch(
            FetchResponse {
                responses: vec![FetchableTopicResponse {
                    topic: topic.topic.clone(),
                    topic_id: topic.topic_id,
                    partitions: vec![FetchPartitionData {
                        partition_index: 0,
                        high_watermark: 3,
                        records: None,
                        ..Default::default()
                    }],
                }],
                ..Default::default()
            },
        )))
        .filter(|_| h.api_key == ApiKey::Fetch.code())
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(3, Duration::from_secs(5));
    assert_eq!(offsets(&records), vec![0, 1, 2]);
}

#[test]
fn unsorted_api_versions_with_unknown_tagged_fields_are_understood() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(2);
    // ApiVersions v4 reply (header v0), written out by hand: keys unsorted,
    // an API key we do not know (999), an unknown tag inside an entry and
    // unknown tags at the top level.
    let entry = |key: u16, min: u16, max: u16, tags: &[u8]| {
        let mut e = Vec::new();
        e.extend_from_slice(&key.to_be_bytes());
        e.extend_from_slice(&min.to_be_bytes());
        e.extend_from_slice(&max.to_be_bytes());
        e.extend_from_slice(tags);
        e
    };
    cluster.broker(1).script.push(Box::new(move |h, _| {
        if h.api_key != ApiKey::ApiVersions.code() {
            return None;
        }
        let mut body = Vec::new();
        body.extend_from_slice(&h.correlation_id.to_be_bytes());
        body.extend_from_slice(&0i16.to_be_bytes());
        body.push(6); // five entries, compact
        body.extend(entry(999, 0, 3, &[1, 4, 2, 0xab, 0xcd])); // unknown API, unknown tag 4
        body.extend(entry(3, 0, 12, &[0]));
        body.extend(entry(1, 4, 17, &[0]));
        body.extend(entry(18, 0, 4, &[0]));
        body.extend(entry(2, 1, 9, &[0]));
        body.extend_from_slice(&0i32.to_be_bytes()); // throttle
        body.extend_from_slice(&[2, 7, 1, 0xff, 31, 0]); // tags 7 and 31
        Some(support::Action::Raw(Bytes::from(body)))
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(2, Duration::from_secs(5));
    assert_eq!(offsets(&records), vec![0, 1]);
    let fetch = cluster
        .broker(1)
        .received
        .iter()
        .find(|(h, _)| h.api_key == 1)
        .unwrap()
        .0
        .clone();
    assert_eq!(fetch.api_version, 17, "negotiated from the unsorted list");
}

#[test]
fn a_broker_without_fetch_is_a_clear_fatal_error() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster
        .broker(1)
        .api_versions
        .retain(|v| v.api_key != ApiKey::Fetch.code());
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.events.iter().any(|e| matches!(e, Event::PollReady))
    });
    let err = cluster.poll().unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedBroker { source, .. } if source.api == "Fetch"),
        "{err}"
    );
    assert!(err.to_string().contains("Fetch"), "{err}");
    // Sticky: everything after reports it too, and nothing more is sent.
    assert_eq!(cluster.poll().unwrap_err(), err);
    assert_eq!(
        cluster
            .consumer
            .seek(&tp("t", 0), 1, cluster.now)
            .unwrap_err(),
        err
    );
    assert_eq!(cluster.consumer.poll_timeout(), None);
}

#[test]
fn an_unreadable_response_is_reported_with_its_decode_error_and_retried() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(2);
    let mut garbled = false;
    cluster.broker(1).script.push(Box::new(move |h, _| {
        if h.api_key != ApiKey::Metadata.code() || garbled {
            return None;
        }
        garbled = true;
        // The right correlation id, then a body that ends mid-field.
        let mut body = h.correlation_id.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0, 0]);
        Some(support::Action::Raw(Bytes::from(body)))
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(2, Duration::from_secs(5)).len(), 2);
    let unreadable: Vec<&odradek_core::protocol::DecodeError> = cluster
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionError {
                reason: ConnectionProblem::Unreadable(error),
                ..
            } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(unreadable.len(), 1, "{:?}", cluster.events);
    assert!(unreadable[0].api.contains("Metadata"), "{}", unreadable[0]);
}

#[test]
fn an_old_api_versions_reply_is_retried_at_the_brokers_version() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(1);
    // A broker that only knows ApiVersions v0-2 answers v4 with
    // UNSUPPORTED_VERSION in the v0 layout.
    cluster.broker(1).script.push(Box::new(|h, _| {
        if h.api_key != ApiKey::ApiVersions.code() || h.api_version <= 2 {
            return None;
        }
        let mut body = Vec::new();
        body.extend_from_slice(&h.correlation_id.to_be_bytes());
        body.extend_from_slice(&35i16.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&[0, 18, 0, 0, 0, 2]);
        Some(support::Action::Raw(Bytes::from(body)))
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    assert_eq!(cluster.poll_n(1, Duration::from_secs(5)).len(), 1);
    let versions: Vec<i16> = cluster
        .broker(1)
        .received
        .iter()
        .filter(|(h, _)| h.api_key == ApiKey::ApiVersions.code())
        .map(|(h, _)| h.api_version)
        .collect();
    assert_eq!(&versions[..2], &[4, 2]);
}

// ---- offsets queries ----------------------------------------------------

fn query_result(cluster: &mut Cluster, id: odradek_core::QueryId) -> odradek_core::OffsetsResult {
    let mut result = None;
    cluster.run_until(Duration::from_secs(70), |c| {
        // Take this query's answer; leave other events for other readers.
        if let Some(i) = c
            .events
            .iter()
            .position(|e| matches!(e, Event::OffsetsQueryDone { id: done, .. } if *done == id))
        {
            if let Event::OffsetsQueryDone { result: r, .. } = c.events.remove(i) {
                result = Some(r);
            }
        }
        result.is_some()
    });
    result.unwrap()
}

#[test]
fn beginning_end_and_time_queries() {
    let mut cluster = Cluster::new(earliest(), 1);
    truncated_log(&mut cluster);
    let p = tp("t", 0);
    let id = cluster
        .consumer
        .beginning_offsets(
            std::slice::from_ref(&p),
            Duration::from_secs(5),
            cluster.now,
        )
        .unwrap();
    assert_eq!(
        query_result(&mut cluster, id).unwrap()[&p].unwrap().offset,
        100
    );
    let id = cluster
        .consumer
        .end_offsets(
            std::slice::from_ref(&p),
            Duration::from_secs(5),
            cluster.now,
        )
        .unwrap();
    assert_eq!(
        query_result(&mut cluster, id).unwrap()[&p].unwrap().offset,
        110
    );
    let id = cluster
        .consumer
        .offsets_for_times([(p.clone(), 1_105)], Duration::from_secs(5), cluster.now)
        .unwrap();
    let found = query_result(&mut cluster, id).unwrap()[&p].unwrap();
    assert_eq!((found.offset, found.timestamp), (105, 1_105));
    let id = cluster
        .consumer
        .offsets_for_times([(p.clone(), 9_999)], Duration::from_secs(5), cluster.now)
        .unwrap();
    assert_eq!(
        query_result(&mut cluster, id).unwrap()[&p],
        None,
        "no record that late"
    );
    assert!(matches!(
        cluster
            .consumer
            .offsets_for_times([(p, -5)], Duration::from_secs(1), cluster.now),
        Err(Error::InvalidArgument(Misuse::NegativeTimestamp {
            timestamp: -5,
            ..
        }))
    ));
}

#[test]
fn a_query_for_an_unknown_topic_times_out_with_a_clear_error() {
    let mut cluster = Cluster::new(earliest(), 1);
    let id = cluster
        .consumer
        .end_offsets(&[tp("nope", 0)], Duration::from_secs(3), cluster.now)
        .unwrap();
    let err = query_result(&mut cluster, id).unwrap_err();
    assert!(
        matches!(&err, Error::Timeout(Operation::OffsetsLookup(p)) if p == &[tp("nope", 0)]),
        "{err}"
    );
}

// ---- arguments, close, determinism -----------------------------------------

#[test]
fn bad_arguments_are_errors() {
    let mut cluster = Cluster::new(earliest(), 1);
    let now = cluster.now;
    let c = &mut cluster.consumer;
    assert!(
        matches!(c.seek(&tp("t", 0), 1, now), Err(Error::InvalidArgument(Misuse::NotAssigned(p))) if p == tp("t", 0))
    );
    c.assign([tp("t", 0)], now).unwrap();
    assert!(matches!(
        c.seek(&tp("t", 0), -1, now),
        Err(Error::InvalidArgument(Misuse::NegativeOffset {
            offset: -1,
            ..
        }))
    ));
    assert!(matches!(
        c.assign([tp("t", -1)], now),
        Err(Error::InvalidArgument(Misuse::InvalidPartition(_)))
    ));
    assert!(matches!(
        c.pause(&[tp("u", 0)], now),
        Err(Error::InvalidArgument(Misuse::NotAssigned(_)))
    ));
}

#[test]
fn close_closes_every_connection_and_fails_pending_queries() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(3);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.poll_n(3, Duration::from_secs(5));
    let id = cluster
        .consumer
        .end_offsets(&[tp("nope", 0)], Duration::from_secs(30), cluster.now)
        .unwrap();
    cluster.consumer.close(cluster.now);
    let mut closes = 0;
    while let Some(io) = cluster.consumer.poll_io() {
        assert!(matches!(io, Io::Close { .. }), "{io:?}");
        closes += 1;
    }
    assert!(closes >= 1);
    let events: Vec<Event> = std::iter::from_fn(|| cluster.consumer.poll_event()).collect();
    assert!(events.contains(&Event::OffsetsQueryDone {
        id,
        result: Err(Error::Closed)
    }));
    assert!(events.contains(&Event::Closed));
    assert_eq!(
        cluster.consumer.take_records(cluster.now).unwrap_err(),
        Error::Closed
    );
    assert_eq!(cluster.consumer.poll_timeout(), None);
}

#[test]
fn the_same_inputs_give_the_same_outputs() {
    let run = || {
        let mut cluster = Cluster::new(earliest(), 2);
        cluster.topic("t", 3);
        for p in 0..3 {
            cluster.log("t", p).append_values(20);
        }
        cluster.log("t", 2).leader = 2;
        cluster.broker(1).up = false;
        cluster
            .consumer
            .assign([tp("t", 0), tp("t", 1), tp("t", 2)], cluster.now)
            .unwrap();
        cluster.advance(Duration::from_millis(300));
        cluster.broker(1).up = true;
        let records = cluster.poll_n(60, Duration::from_secs(20));
        let origin = cluster.now;
        let _ = origin;
        let trace: Vec<String> = cluster
            .brokers
            .values()
            .flat_map(|b| {
                b.received
                    .iter()
                    .map(move |(h, _)| format!("{}:{}:{}", b.id, h.api_key, h.correlation_id))
            })
            .collect();
        (offsets(&records), trace, cluster.opened.len())
    };
    assert_eq!(run(), run());
}

// ---- fetch requests, in-flight limit, metadata refresh, unassignment --------

#[test]
fn one_fetch_per_leader_carries_the_configured_limits() {
    let mut cluster = Cluster::new(
        with(|c| {
            c.fetch_min_bytes = 7;
            c.fetch_max_bytes = 123_456;
            c.max_partition_fetch_bytes = 4_321;
            c.fetch_max_wait = Duration::from_millis(250);
            c.client_rack = "rack-a".into();
        }),
        2,
    );
    cluster.topic("t", 4);
    for p in 0..4 {
        cluster.log("t", p).append_values(3);
        cluster.log("t", p).leader = if p % 2 == 0 { 1 } else { 2 };
    }
    cluster
        .consumer
        .assign((0..4).map(|p| tp("t", p)), cluster.now)
        .unwrap();
    let records = cluster.poll_n(12, Duration::from_secs(5));
    assert_eq!(records.len(), 12);
    for (broker, mine) in [(1, [0, 2]), (2, [1, 3])] {
        let fetches = cluster
            .broker(broker)
            .fetches()
            .into_iter()
            .cloned()
            .collect::<Vec<_>>();
        let first = &fetches[0];
        let mut partitions: Vec<i32> = first
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition))
            .collect();
        partitions.sort();
        assert_eq!(
            partitions, mine,
            "broker {broker} fetches exactly the partitions it leads"
        );
        assert_eq!(first.min_bytes, 7);
        assert_eq!(first.max_wait_ms, 250);
        assert!(first.max_bytes <= 123_456 && first.max_bytes > 0);
        assert_eq!(first.rack_id, "rack-a");
        assert!(
            first
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.partition_max_bytes == 4_321)
        );
    }
}

#[test]
fn the_in_flight_limit_holds_requests_back() {
    let mut cluster = Cluster::new(with(|c| c.max_in_flight_requests_per_connection = 1), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(1);
    cluster.broker(1).script.push(Box::new(|h, _| {
        (h.api_key == ApiKey::Fetch.code())
            .then_some(support::Action::Delay(Duration::from_secs(1)))
    }));
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.broker(1).count(ApiKey::Fetch) == 1
    });
    // The reset to earliest already used one ListOffsets.
    let before = cluster.broker(1).count(ApiKey::ListOffsets);
    let id = cluster
        .consumer
        .end_offsets(&[tp("t", 0)], Duration::from_secs(10), cluster.now)
        .unwrap();
    cluster.drive();
    // The fetch holds the only slot on the leader's connection, so the
    // ListOffsets waits for it instead of going out alongside.
    assert_eq!(cluster.broker(1).count(ApiKey::ListOffsets), before);
    let result = query_result(&mut cluster, id).unwrap();
    assert_eq!(result[&tp("t", 0)].unwrap().offset, 1);
    assert_eq!(cluster.broker(1).count(ApiKey::ListOffsets), before + 1);
}

#[test]
fn metadata_is_refreshed_every_metadata_max_age() {
    let mut cluster = Cluster::new(with(|c| c.metadata_max_age = Duration::from_secs(10)), 1);
    cluster.topic("t", 1);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    cluster.advance(Duration::from_secs(1));
    let initial = cluster.broker(1).count(ApiKey::Metadata);
    assert!(initial >= 1);
    cluster.advance(Duration::from_secs(35));
    let later = cluster.broker(1).count(ApiKey::Metadata);
    assert!(
        (initial + 3..=initial + 4).contains(&later),
        "{initial} then {later}"
    );
}

#[test]
fn an_unknown_topic_is_retried_with_backoff_until_it_exists() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster
        .consumer
        .assign([tp("later", 0)], cluster.now)
        .unwrap();
    cluster.advance(Duration::from_secs(3));
    let asked = cluster.broker(1).count(ApiKey::Metadata);
    assert!(
        (3..=20).contains(&asked),
        "retried with backoff, not in a loop: {asked}"
    );
    assert!(
        cluster.poll().unwrap().is_empty(),
        "no error: the topic may appear"
    );
    cluster.topic("later", 1);
    cluster.log("later", 0).append_values(2);
    assert_eq!(cluster.poll_n(2, Duration::from_secs(5)).len(), 2);
}

#[test]
fn unassigning_drops_buffered_records() {
    let mut cluster = Cluster::new(with(|c| c.max_poll_records = 1), 1);
    cluster.topic("t", 2);
    cluster.log("t", 0).append_values(10);
    cluster.log("t", 1).append_values(10);
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1)], cluster.now)
        .unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.buffered_bytes() > 0
            && c.consumer.high_watermark(&tp("t", 0)).is_some()
            && c.consumer.high_watermark(&tp("t", 1)).is_some()
    });
    cluster.consumer.assign([tp("t", 1)], cluster.now).unwrap();
    assert_eq!(cluster.consumer.assignment(), vec![tp("t", 1)]);
    let records = cluster.poll_n(10, Duration::from_secs(5));
    assert!(records.iter().all(|r| r.partition() == 1));
    cluster.advance(Duration::from_secs(1));
    assert!(cluster.poll().unwrap().is_empty());
}

#[test]
fn position_is_resolved_by_a_reset_and_reported_once_known() {
    let mut cluster = Cluster::new(with(|c| c.auto_offset_reset = OffsetReset::Latest), 1);
    cluster.topic("t", 1);
    cluster.log("t", 0).append_values(42);
    cluster.consumer.assign([tp("t", 0)], cluster.now).unwrap();
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        None
    );
    cluster.run_until(Duration::from_secs(5), |c| {
        c.events
            .iter()
            .any(|e| matches!(e, Event::PositionsChanged))
    });
    assert_eq!(
        cluster.consumer.position(&tp("t", 0), cluster.now).unwrap(),
        Some(42)
    );
}

// ---- metadata for queries and missing partitions ---------------------------

#[test]
fn a_query_over_several_new_topics_finds_them_all() {
    let mut cluster = Cluster::new(earliest(), 1);
    for topic in ["alpha", "beta", "gamma"] {
        cluster.topic(topic, 2);
        cluster.log(topic, 1).append_values(3);
    }
    let partitions: Vec<_> = ["alpha", "beta", "gamma"]
        .iter()
        .flat_map(|t| [tp(t, 0), tp(t, 1)])
        .collect();
    let id = cluster
        .consumer
        .end_offsets(&partitions, Duration::from_secs(5), cluster.now)
        .unwrap();
    let result = query_result(&mut cluster, id).unwrap();
    assert_eq!(result.len(), 6);
    for t in ["alpha", "beta", "gamma"] {
        assert_eq!(result[&tp(t, 0)].unwrap().offset, 0);
        assert_eq!(result[&tp(t, 1)].unwrap().offset, 3);
    }
}

#[test]
fn concurrent_queries_and_an_assignment_keep_each_others_topics() {
    let mut cluster = Cluster::new(earliest(), 1);
    for topic in ["a", "b", "c"] {
        cluster.topic(topic, 1);
        cluster.log(topic, 0).append_values(2);
    }
    let first = cluster
        .consumer
        .beginning_offsets(&[tp("a", 0)], Duration::from_secs(5), cluster.now)
        .unwrap();
    let second = cluster
        .consumer
        .end_offsets(&[tp("b", 0)], Duration::from_secs(5), cluster.now)
        .unwrap();
    // An assignment in between must not drop the queries' topics.
    cluster.consumer.assign([tp("c", 0)], cluster.now).unwrap();
    assert_eq!(
        query_result(&mut cluster, first).unwrap()[&tp("a", 0)]
            .unwrap()
            .offset,
        0
    );
    assert_eq!(
        query_result(&mut cluster, second).unwrap()[&tp("b", 0)]
            .unwrap()
            .offset,
        2
    );
}

#[test]
fn a_missing_partition_is_waited_for_with_backoff_not_in_a_loop() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 3);
    cluster.consumer.assign([tp("t", 9)], cluster.now).unwrap();
    cluster.advance(Duration::from_secs(5));
    let asked = cluster.broker(1).count(ApiKey::Metadata);
    // retry.backoff.ms 100 doubling to 1000: about a dozen refreshes in 5 s.
    assert!(
        (4..=15).contains(&asked),
        "metadata requests in 5 s: {asked}"
    );
    assert!(cluster.poll().unwrap().is_empty());
    // Grow the topic: the partition appears and is consumed.
    cluster.topic("t", 3).resize(
        10,
        support::PartitionLog {
            leader: 1,
            ..Default::default()
        },
    );
    cluster.log("t", 9).append_values(2);
    assert_eq!(cluster.poll_n(2, Duration::from_secs(5)).len(), 2);
}

#[test]
fn a_burst_of_leader_errors_costs_one_metadata_refresh() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.topic("t", 4);
    cluster
        .consumer
        .assign((0..4).map(|p| tp("t", p)), cluster.now)
        .unwrap();
    cluster.advance(Duration::from_millis(500));
    let before = cluster.broker(1).count(ApiKey::Metadata);
    for p in 0..4 {
        cluster.log("t", p).fetch_error = 6; // NOT_LEADER_OR_FOLLOWER
    }
    cluster.advance(Duration::from_millis(150));
    let after = cluster.broker(1).count(ApiKey::Metadata);
    assert!(after - before <= 2, "{before} then {after}");
}
