//! `Consumer::metrics` against a scripted broker and a fake clock: every
//! number below follows from the inputs, so each is checked exactly.

mod support;

use std::time::Duration;

use odradek_core::protocol::{ApiKey, RequestHeader};
use odradek_core::{ConsumerConfig, OffsetReset};
use support::*;

fn earliest() -> ConsumerConfig {
    let mut c = config();
    c.auto_offset_reset = OffsetReset::Earliest;
    c
}

#[test]
fn partition_and_consumption_metrics_follow_fetches_and_polls() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.in_order = true;
    cluster.topic("m", 2);
    cluster.log("m", 0).append_values(10);
    let (p0, p1) = (tp("m", 0), tp("m", 1));
    cluster
        .consumer
        .assign([p0.clone(), p1.clone()], cluster.now)
        .unwrap();
    let before = cluster.consumer.metrics(cluster.now);
    assert_eq!(before.partitions[&p0].position, None, "not resolved yet");
    assert_eq!(before.partitions[&p0].lag, None);
    assert_eq!(before.consumer.fetch_total, 0);
    assert_eq!(before.consumer.last_poll_ago, None);
    assert!(before.group.is_none(), "no group.id");

    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.buffered_bytes() > 0 && c.consumer.high_watermark(&tp("m", 1)).is_some()
    });
    let fetched = cluster.consumer.metrics(cluster.now);
    let m0 = &fetched.partitions[&p0];
    assert_eq!(
        (m0.position, m0.high_watermark, m0.lag),
        (Some(0), Some(10), Some(10))
    );
    assert_eq!(m0.buffered_records, 10);
    // The partition holds its batch; the consumer holds the whole response
    // the batch came in (against the memory bound).
    assert_eq!(m0.buffered_bytes, cluster.log("m", 0).batches[0].2.len());
    assert!(m0.buffered_bytes < cluster.consumer.buffered_bytes());
    assert_eq!(fetched.partitions[&p1].lag, Some(0));
    let c = &fetched.consumer;
    assert_eq!(c.records_lag_max, Some(10));
    assert!(c.fetch_total >= 1);
    assert!(c.fetch_size_max.unwrap() > 0);
    assert_eq!(c.buffered_bytes, cluster.consumer.buffered_bytes());
    assert_eq!(
        c.buffer_max_bytes,
        cluster.consumer.config().fetch_buffer_max_bytes
    );
    assert!(c.connection_count >= 1 && c.connection_creation_total >= 1);
    assert_eq!(c.request_timeouts_total, 0);

    // A poll of four records.
    let polled_at = cluster.now;
    let taken = cluster.consumer.take_records_up_to(4, cluster.now).unwrap();
    let bytes: usize = taken
        .iter()
        .map(|r| r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len))
        .sum();
    let after = cluster.consumer.metrics(cluster.now);
    assert_eq!(after.consumer.records_consumed_total, 4);
    assert_eq!(after.consumer.bytes_consumed_total, bytes as u64);
    assert_eq!(after.partitions[&p0].lag, Some(6));
    assert_eq!(after.partitions[&p0].buffered_records, 6);
    assert_eq!(after.consumer.last_poll_ago, Some(Duration::ZERO));
    // Two seconds on: 4 records in 2 s.
    cluster.advance(Duration::from_secs(2));
    let later = cluster.consumer.metrics(cluster.now);
    assert_eq!(later.consumer.last_poll_ago, Some(cluster.now - polled_at));
    assert!(
        (later.consumer.records_consumed_rate - 2.0).abs() < 1e-9,
        "{}",
        later.consumer.records_consumed_rate
    );
    cluster
        .consumer
        .pause(std::slice::from_ref(&p1), cluster.now)
        .unwrap();
    assert!(cluster.consumer.metrics(cluster.now).partitions[&p1].paused);
}

#[test]
fn fetch_latency_is_the_round_trip_on_the_consumers_clock() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.in_order = true;
    cluster.topic("m", 1);
    cluster.log("m", 0).append_values(3);
    let delay = Duration::from_millis(300);
    cluster
        .broker(1)
        .script
        .push(Box::new(move |h: &RequestHeader, _| {
            (h.api_key == ApiKey::Fetch.code()).then_some(Action::Delay(delay))
        }));
    cluster.consumer.assign([tp("m", 0)], cluster.now).unwrap();
    cluster.run_until(Duration::from_secs(5), |c| {
        c.consumer.metrics(c.now).consumer.fetch_total >= 2
    });
    let m = cluster.consumer.metrics(cluster.now).consumer;
    assert_eq!(m.fetch_latency_max, Some(delay));
    assert_eq!(m.fetch_latency_avg, Some(delay));
    assert!(m.fetch_rate > 0.0);
}

#[test]
fn a_request_timeout_counts_and_so_does_the_reconnect() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.in_order = true;
    cluster.topic("m", 1);
    cluster.log("m", 0).append_values(3);
    let mut first = true;
    cluster
        .broker(1)
        .script
        .push(Box::new(move |h: &RequestHeader, _| {
            if h.api_key == ApiKey::Fetch.code() && first {
                first = false;
                return Some(Action::Ignore);
            }
            None
        }));
    cluster.consumer.assign([tp("m", 0)], cluster.now).unwrap();
    let records = cluster.poll_n(3, Duration::from_secs(60));
    assert_eq!(records.len(), 3);
    let m = cluster.consumer.metrics(cluster.now).consumer;
    assert_eq!(m.request_timeouts_total, 1);
    assert!(m.connection_close_total >= 1);
    assert!(m.connection_creation_total >= 2, "{m:?}");
}

#[test]
fn the_snapshot_serializes_to_json_with_milliseconds_and_nulls() {
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.in_order = true;
    cluster.topic("m", 1);
    cluster.log("m", 0).append_values(4);
    cluster.consumer.assign([tp("m", 0)], cluster.now).unwrap();
    cluster.poll_n(4, Duration::from_secs(5));
    let json = cluster.consumer.metrics(cluster.now).to_json();
    assert_eq!(json["partitions"]["m-0"]["position"], 4);
    assert_eq!(json["partitions"]["m-0"]["lag"], 0);
    assert_eq!(json["consumer"]["records_consumed_total"], 4);
    assert!(json["consumer"]["fetch_latency_max_ms"].is_number());
    assert!(json["group"].is_null());
    let text = json.to_string();
    let back: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, json);
}

#[cfg(feature = "metrics")]
#[test]
fn export_records_the_java_names_through_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let mut cluster = Cluster::new(earliest(), 1);
    cluster.in_order = true;
    cluster.topic("m", 1);
    cluster.log("m", 0).append_values(4);
    cluster.consumer.assign([tp("m", 0)], cluster.now).unwrap();
    cluster.poll_n(4, Duration::from_secs(5));
    let snapshot = cluster.consumer.metrics(cluster.now);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || snapshot.export("app-1"));
    /// A metric's name, labels and value.
    type Recorded = (String, Vec<(String, String)>, DebugValue);
    let recorded: Vec<Recorded> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            (key.name().to_string(), labels, value)
        })
        .collect();
    let find = |name: &str| {
        recorded
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {recorded:?}"))
    };
    let (_, labels, value) = find("kafka.consumer.records-consumed-total");
    assert_eq!(value, &DebugValue::Counter(4));
    assert!(labels.contains(&("client_id".into(), "app-1".into())));
    let (_, labels, value) = find("kafka.consumer.records-lag");
    assert_eq!(value, &DebugValue::Gauge(0.0.into()));
    assert!(labels.contains(&("topic".into(), "m".into())));
    assert!(labels.contains(&("partition".into(), "0".into())));
    find("kafka.consumer.fetch-latency-avg");
    find("kafka.consumer.records-lag-max");
}
