//! What a running consumer says about itself: [`Metrics`], a typed
//! snapshot from [`Consumer::metrics`](crate::Consumer::metrics), cheap
//! enough to take every second. Everything is computed from the consumer's
//! own inputs and the `now` it is given (no clock is read, no request is
//! made); rates, averages and maxima cover a sliding window of the last
//! 30 s, in two 15 s halves, as the Java client's metrics do.
//!
//! Names follow the Java consumer's metrics where one exists, so
//! dashboards port:
//!
//! | Java metric (group)                          | Here |
//! |----------------------------------------------|------|
//! | `records-lag` (fetch-manager, per partition)  | [`PartitionMetrics::lag`] |
//! | `records-lag-max`                            | [`ConsumerMetrics::records_lag_max`] |
//! | `records-consumed-total` / `-rate`           | [`ConsumerMetrics::records_consumed_total`] / [`records_consumed_rate`](ConsumerMetrics::records_consumed_rate) |
//! | `bytes-consumed-total` / `-rate`             | [`ConsumerMetrics::bytes_consumed_total`] / [`bytes_consumed_rate`](ConsumerMetrics::bytes_consumed_rate) |
//! | `fetch-total`, `fetch-rate`                  | [`ConsumerMetrics::fetch_total`], [`fetch_rate`](ConsumerMetrics::fetch_rate) |
//! | `fetch-latency-avg` / `-max`                 | [`ConsumerMetrics::fetch_latency_avg`] / [`fetch_latency_max`](ConsumerMetrics::fetch_latency_max) |
//! | `fetch-size-avg` / `-max`                    | [`ConsumerMetrics::fetch_size_avg`] / [`fetch_size_max`](ConsumerMetrics::fetch_size_max) |
//! | `connection-count`                           | [`ConsumerMetrics::connection_count`] |
//! | `connection-creation-total`                  | [`ConsumerMetrics::connection_creation_total`] |
//! | `connection-close-total`                     | [`ConsumerMetrics::connection_close_total`] |
//! | (librdkafka `outbuf_cnt`/`waitresp_cnt`)      | [`ConsumerMetrics::requests_in_flight`] |
//! | (librdkafka `req_timeouts`)                  | [`ConsumerMetrics::request_timeouts_total`] |
//! | `time-between-poll-avg`, `last-poll-seconds-ago` | [`ConsumerMetrics::last_poll_ago`] |
//! | `rebalance-total`                            | [`GroupMetrics::rebalance_total`] |
//! | `rebalance-latency-max` (last one)           | [`GroupMetrics::last_rebalance_duration`] |
//! | `last-rebalance-seconds-ago`                 | [`GroupMetrics::last_rebalance_ago`] |
//! | `last-heartbeat-seconds-ago`                 | [`GroupMetrics::last_heartbeat_ago`] |
//! | `heartbeat-response-time-max`                | [`GroupMetrics::heartbeat_latency_max`] |
//! | `commit-latency-avg` / `-max`                | [`GroupMetrics::commit_latency_avg`] / [`commit_latency_max`](GroupMetrics::commit_latency_max) |
//! | `commit-total`                               | [`GroupMetrics::commit_total`] |
//! | (librdkafka failed commits)                  | [`GroupMetrics::failed_commit_total`] |

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::types::TopicPartition;

/// How long a windowed statistic looks back.
pub const WINDOW: Duration = Duration::from_secs(30);

/// A typed snapshot of a consumer's metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Per assigned partition.
    pub partitions: BTreeMap<TopicPartition, PartitionMetrics>,
    /// The consumer as a whole: consumption, fetches, the buffer and the
    /// connections.
    pub consumer: ConsumerMetrics,
    /// The consumer group, with a `group.id`.
    pub group: Option<GroupMetrics>,
}

/// One assigned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// The offset of the next record `poll` returns, once known.
    pub position: Option<i64>,
    /// The offset known to be committed for the group (from a commit this
    /// consumer made or the lookup that started the partition).
    pub committed: Option<i64>,
    /// The high watermark from the last fetch response.
    pub high_watermark: Option<i64>,
    /// The last stable offset from the last fetch response.
    pub last_stable_offset: Option<i64>,
    /// Records after the position (Java's `records-lag`): the high
    /// watermark (last stable offset with `read_committed`) minus the
    /// position.
    pub lag: Option<i64>,
    /// Records fetched and not yet returned (counted from batch headers).
    pub buffered_records: usize,
    /// Their batches' bytes: as fetched, decompressed once a batch's turn
    /// to be delivered came.
    pub buffered_bytes: usize,
    /// Paused by the application.
    pub paused: bool,
}

/// The consumer as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerMetrics {
    /// Records returned to the application since the consumer started.
    pub records_consumed_total: u64,
    /// Records returned per second over the window.
    pub records_consumed_rate: f64,
    /// Key and value bytes of those records.
    pub bytes_consumed_total: u64,
    /// Bytes returned per second over the window.
    pub bytes_consumed_rate: f64,
    /// The largest partition lag now (Java's `records-lag-max`).
    pub records_lag_max: Option<i64>,
    /// Fetch responses received.
    pub fetch_total: u64,
    /// Fetches that failed before their response was complete (the
    /// connection broke, or the response timed out).
    pub fetch_failed_total: u64,
    /// Leaders whose fetches now ask for less because recent ones failed
    /// that way (a slow or faulty link): each failure in a row halves what
    /// the next fetch asks for, and a run of complete responses doubles it
    /// back.
    pub fetch_shrunk_brokers: usize,
    /// Fetch responses per second over the window.
    pub fetch_rate: f64,
    /// Time from sending a Fetch to its response, averaged over the window.
    pub fetch_latency_avg: Option<Duration>,
    /// The longest over the window.
    pub fetch_latency_max: Option<Duration>,
    /// Fetch response size in bytes, averaged over the window.
    pub fetch_size_avg: Option<f64>,
    /// The largest over the window.
    pub fetch_size_max: Option<u64>,
    /// Bytes the fetched data holds: each fetch response while any of its
    /// records is buffered, and the decompressed records of the batches
    /// being delivered.
    pub buffered_bytes: usize,
    /// The most that the fetches in flight may bring, reserved when they
    /// went out.
    pub fetch_reserved_bytes: usize,
    /// The bound on `buffered_bytes` plus `fetch_reserved_bytes`
    /// (`queued.max.messages.kbytes`).
    pub buffer_max_bytes: usize,
    /// Connections open or opening now.
    pub connection_count: usize,
    /// Connections opened since the consumer started (reconnects
    /// included).
    pub connection_creation_total: u64,
    /// Connections that closed (failed, timed out, idle, or no longer
    /// needed).
    pub connection_close_total: u64,
    /// Requests sent and not answered yet.
    pub requests_in_flight: usize,
    /// Requests that got no answer within `request.timeout.ms`.
    pub request_timeouts_total: u64,
    /// Time since the application last polled (`None` before the first
    /// poll).
    pub last_poll_ago: Option<Duration>,
    /// `max.poll.interval.ms`, to compare it with.
    pub max_poll_interval: Duration,
    /// Panics caught in interceptors (counted by the client layer, which
    /// runs them; the core alone reports 0).
    pub interceptor_panics_total: u64,
}

/// Where the member stands in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupState {
    /// Not a member (not subscribed, left, or lost its membership).
    Unjoined,
    /// Joining (a JoinGroup in flight).
    Joining,
    /// The leader is assigning partitions.
    Assigning,
    /// Waiting for the assignment (a SyncGroup in flight).
    Syncing,
    /// A member of the current generation.
    Stable,
}

/// The consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMetrics {
    /// Where the member stands.
    pub state: GroupState,
    /// The generation, -1 while not a member.
    pub generation: i32,
    /// The member id the coordinator gave (empty while not a member).
    pub member_id: String,
    /// Rebalances this member completed (joined and got an assignment).
    pub rebalance_total: u64,
    /// How long the last one took, from the first JoinGroup to the
    /// assignment.
    pub last_rebalance_duration: Option<Duration>,
    /// Time since the last rebalance completed.
    pub last_rebalance_ago: Option<Duration>,
    /// Time since the last heartbeat answer.
    pub last_heartbeat_ago: Option<Duration>,
    /// Heartbeat round trip, averaged over the window.
    pub heartbeat_latency_avg: Option<Duration>,
    /// The longest over the window.
    pub heartbeat_latency_max: Option<Duration>,
    /// OffsetCommit round trip, averaged over the window.
    pub commit_latency_avg: Option<Duration>,
    /// The longest over the window.
    pub commit_latency_max: Option<Duration>,
    /// Commits that completed (auto, sync, async and listener commits).
    pub commit_total: u64,
    /// Of those, the ones that failed.
    pub failed_commit_total: u64,
}

/// A statistic over a sliding window: two halves, the older dropped as
/// the window moves on (as Java's `SampledStat`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Windowed {
    halves: [Half; 2],
}

#[derive(Debug, Clone, Copy, Default)]
struct Half {
    start: Option<Instant>,
    count: u64,
    sum: f64,
    max: f64,
}

impl Windowed {
    const HALF: Duration = Duration::from_secs(15);

    /// Records one value at `now`.
    pub(crate) fn record(&mut self, value: f64, now: Instant) {
        let current = self.current(now);
        let half = &mut self.halves[current];
        half.count += 1;
        half.sum += value;
        half.max = if half.count == 1 {
            value
        } else {
            half.max.max(value)
        };
    }

    /// The half that `now` falls in, starting a new one (dropping the
    /// older) if the newest is over.
    fn current(&mut self, now: Instant) -> usize {
        let newest = self.newest();
        match self.halves[newest].start {
            Some(start) if now < start + Self::HALF => newest,
            _ => {
                let older = 1 - newest;
                self.halves[older] = Half {
                    start: Some(now),
                    ..Half::default()
                };
                older
            }
        }
    }

    fn newest(&self) -> usize {
        match (self.halves[0].start, self.halves[1].start) {
            (Some(a), Some(b)) if b > a => 1,
            (None, Some(_)) => 1,
            _ => 0,
        }
    }

    /// The halves still inside the window at `now`.
    fn live(&self, now: Instant) -> impl Iterator<Item = &Half> {
        self.halves
            .iter()
            .filter(move |h| h.start.is_some_and(|s| now < s + WINDOW))
    }

    /// Values per second over the window (or since the first value, if
    /// less, counting at least one second).
    pub(crate) fn rate(&self, now: Instant) -> f64 {
        let sum: f64 = self.live(now).map(|h| h.sum).sum();
        let Some(oldest) = self.live(now).filter_map(|h| h.start).min() else {
            return 0.0;
        };
        let elapsed = now
            .saturating_duration_since(oldest)
            .max(Duration::from_secs(1));
        sum / elapsed.as_secs_f64()
    }

    /// Values recorded per second over the window (as [`rate`](Self::rate)
    /// counts their sum).
    pub(crate) fn count_rate(&self, now: Instant) -> f64 {
        let count: u64 = self.live(now).map(|h| h.count).sum();
        let Some(oldest) = self.live(now).filter_map(|h| h.start).min() else {
            return 0.0;
        };
        let elapsed = now
            .saturating_duration_since(oldest)
            .max(Duration::from_secs(1));
        count as f64 / elapsed.as_secs_f64()
    }

    /// The mean over the window, if anything was recorded in it.
    pub(crate) fn avg(&self, now: Instant) -> Option<f64> {
        let (count, sum) = self
            .live(now)
            .fold((0, 0.0), |(c, s), h| (c + h.count, s + h.sum));
        (count > 0).then(|| sum / count as f64)
    }

    /// The largest value over the window.
    pub(crate) fn max(&self, now: Instant) -> Option<f64> {
        self.live(now)
            .filter(|h| h.count > 0)
            .map(|h| h.max)
            .reduce(f64::max)
    }

    /// The mean as a duration, for values recorded in seconds.
    pub(crate) fn avg_duration(&self, now: Instant) -> Option<Duration> {
        self.avg(now).map(Duration::from_secs_f64)
    }

    /// The largest as a duration, for values recorded in seconds.
    pub(crate) fn max_duration(&self, now: Instant) -> Option<Duration> {
        self.max(now).map(Duration::from_secs_f64)
    }
}

/// The consumer-level counters the core keeps as it runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meters {
    pub(crate) records_consumed_total: u64,
    pub(crate) records_consumed: Windowed,
    pub(crate) bytes_consumed_total: u64,
    pub(crate) bytes_consumed: Windowed,
    pub(crate) fetch_total: u64,
    pub(crate) fetch_failed_total: u64,
    /// Fetch round trips, in seconds.
    pub(crate) fetch_latency: Windowed,
    /// Fetch response sizes, in bytes.
    pub(crate) fetch_size: Windowed,
    pub(crate) last_poll: Option<Instant>,
}

impl Meters {
    /// A poll returned `records` records of `bytes` key and value bytes.
    pub(crate) fn consumed(&mut self, records: usize, bytes: usize, now: Instant) {
        self.last_poll = Some(now);
        self.records_consumed_total += records as u64;
        self.bytes_consumed_total += bytes as u64;
        self.records_consumed.record(records as f64, now);
        self.bytes_consumed.record(bytes as f64, now);
    }

    /// A Fetch response of `size` bytes came `latency` after the request.
    pub(crate) fn fetched(&mut self, latency: Duration, size: usize, now: Instant) {
        self.fetch_total += 1;
        self.fetch_latency.record(latency.as_secs_f64(), now);
        self.fetch_size.record(size as f64, now);
    }
}

/// The group-level counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupMeters {
    pub(crate) rebalance_total: u64,
    /// When the rebalance under way began (its first JoinGroup).
    pub(crate) rebalance_started: Option<Instant>,
    pub(crate) last_rebalance_duration: Option<Duration>,
    pub(crate) last_rebalance_end: Option<Instant>,
    pub(crate) last_heartbeat: Option<Instant>,
    /// Heartbeat round trips, in seconds.
    pub(crate) heartbeat_latency: Windowed,
    /// OffsetCommit round trips, in seconds.
    pub(crate) commit_latency: Windowed,
}

impl GroupMeters {
    /// A JoinGroup went out: a rebalance starts unless one is under way.
    pub(crate) fn joining(&mut self, now: Instant) {
        self.rebalance_started.get_or_insert(now);
    }

    /// The member got its assignment: the rebalance is complete.
    pub(crate) fn assigned(&mut self, now: Instant) {
        self.rebalance_total += 1;
        let started = self.rebalance_started.take().unwrap_or(now);
        self.last_rebalance_duration = Some(now.saturating_duration_since(started));
        self.last_rebalance_end = Some(now);
    }
}

/// Time since `at`, if it happened.
pub(crate) fn ago(at: Option<Instant>, now: Instant) -> Option<Duration> {
    at.map(|at| now.saturating_duration_since(at))
}

/// Milliseconds, for JSON.
fn millis(d: Option<Duration>) -> serde_json::Value {
    d.map_or(serde_json::Value::Null, |d| {
        serde_json::json!(d.as_secs_f64() * 1e3)
    })
}

impl Metrics {
    /// The snapshot as JSON (librdkafka's `statistics.interval.ms` output
    /// plays the same part): the fields as named here, durations in
    /// milliseconds (`_ms`), `null` where unknown; partitions keyed
    /// `"topic-partition"`.
    ///
    /// ```
    /// # fn f(consumer: &mut odradek_core::Consumer, now: std::time::Instant) {
    /// let json = consumer.metrics(now).to_json();
    /// println!("{json}");
    /// # }
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let partitions: serde_json::Map<String, serde_json::Value> = self
            .partitions
            .iter()
            .map(|(tp, p)| {
                let value = serde_json::json!({
                    "topic": tp.topic(),
                    "partition": tp.partition(),
                    "position": p.position,
                    "committed": p.committed,
                    "high_watermark": p.high_watermark,
                    "last_stable_offset": p.last_stable_offset,
                    "lag": p.lag,
                    "buffered_records": p.buffered_records,
                    "buffered_bytes": p.buffered_bytes,
                    "paused": p.paused,
                });
                (tp.to_string(), value)
            })
            .collect();
        let c = &self.consumer;
        let consumer = serde_json::json!({
            "records_consumed_total": c.records_consumed_total,
            "records_consumed_rate": c.records_consumed_rate,
            "bytes_consumed_total": c.bytes_consumed_total,
            "bytes_consumed_rate": c.bytes_consumed_rate,
            "records_lag_max": c.records_lag_max,
            "fetch_total": c.fetch_total,
            "fetch_failed_total": c.fetch_failed_total,
            "fetch_shrunk_brokers": c.fetch_shrunk_brokers,
            "fetch_rate": c.fetch_rate,
            "fetch_latency_avg_ms": millis(c.fetch_latency_avg),
            "fetch_latency_max_ms": millis(c.fetch_latency_max),
            "fetch_size_avg": c.fetch_size_avg,
            "fetch_size_max": c.fetch_size_max,
            "buffered_bytes": c.buffered_bytes,
            "fetch_reserved_bytes": c.fetch_reserved_bytes,
            "buffer_max_bytes": c.buffer_max_bytes,
            "connection_count": c.connection_count,
            "connection_creation_total": c.connection_creation_total,
            "connection_close_total": c.connection_close_total,
            "requests_in_flight": c.requests_in_flight,
            "request_timeouts_total": c.request_timeouts_total,
            "last_poll_ago_ms": millis(c.last_poll_ago),
            "max_poll_interval_ms": millis(Some(c.max_poll_interval)),
            "interceptor_panics_total": c.interceptor_panics_total,
        });
        let group = self.group.as_ref().map(|g| {
            serde_json::json!({
                "state": format!("{:?}", g.state),
                "generation": g.generation,
                "member_id": g.member_id,
                "rebalance_total": g.rebalance_total,
                "last_rebalance_duration_ms": millis(g.last_rebalance_duration),
                "last_rebalance_ago_ms": millis(g.last_rebalance_ago),
                "last_heartbeat_ago_ms": millis(g.last_heartbeat_ago),
                "heartbeat_latency_avg_ms": millis(g.heartbeat_latency_avg),
                "heartbeat_latency_max_ms": millis(g.heartbeat_latency_max),
                "commit_latency_avg_ms": millis(g.commit_latency_avg),
                "commit_latency_max_ms": millis(g.commit_latency_max),
                "commit_total": g.commit_total,
                "failed_commit_total": g.failed_commit_total,
            })
        });
        serde_json::json!({
            "partitions": partitions,
            "consumer": consumer,
            "group": group,
        })
    }
}

#[cfg(feature = "metrics")]
impl Metrics {
    /// Records the snapshot through the [`metrics`](https://docs.rs/metrics)
    /// crate's facade (the `metrics` cargo feature), so any exporter
    /// (Prometheus, StatsD, ...) publishes it. Names are the Java client's,
    /// prefixed `kafka.consumer.` (`kafka.consumer.records-lag-max`,
    /// `kafka.consumer.fetch-latency-avg` in milliseconds, ...), labelled
    /// `client_id`, and per partition also `topic` and `partition`.
    /// Totals are counters; everything else is a gauge. Call it as often
    /// as you want the exporter's figures refreshed.
    pub fn export(&self, client_id: &str) {
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1e3);
        let gauge = |name: &'static str, value: Option<f64>| {
            if let Some(value) = value {
                metrics::gauge!(name, "client_id" => client_id.to_string()).set(value);
            }
        };
        let counter = |name: &'static str, value: u64| {
            metrics::counter!(name, "client_id" => client_id.to_string()).absolute(value);
        };
        for (tp, p) in &self.partitions {
            let labels = [
                ("client_id", client_id.to_string()),
                ("topic", tp.topic().to_string()),
                ("partition", tp.partition().to_string()),
            ];
            let set = |name: &'static str, value: Option<f64>| {
                if let Some(value) = value {
                    metrics::gauge!(name, &labels).set(value);
                }
            };
            set("kafka.consumer.records-lag", p.lag.map(|v| v as f64));
            set("kafka.consumer.position", p.position.map(|v| v as f64));
            set("kafka.consumer.committed", p.committed.map(|v| v as f64));
            set(
                "kafka.consumer.high-watermark",
                p.high_watermark.map(|v| v as f64),
            );
            set(
                "kafka.consumer.buffered-records",
                Some(p.buffered_records as f64),
            );
            set(
                "kafka.consumer.buffered-bytes",
                Some(p.buffered_bytes as f64),
            );
        }
        let c = &self.consumer;
        counter(
            "kafka.consumer.records-consumed-total",
            c.records_consumed_total,
        );
        gauge(
            "kafka.consumer.records-consumed-rate",
            Some(c.records_consumed_rate),
        );
        counter(
            "kafka.consumer.bytes-consumed-total",
            c.bytes_consumed_total,
        );
        gauge(
            "kafka.consumer.bytes-consumed-rate",
            Some(c.bytes_consumed_rate),
        );
        gauge(
            "kafka.consumer.records-lag-max",
            c.records_lag_max.map(|v| v as f64),
        );
        counter("kafka.consumer.fetch-total", c.fetch_total);
        counter("kafka.consumer.fetch-failed-total", c.fetch_failed_total);
        gauge(
            "kafka.consumer.fetch-shrunk-brokers",
            Some(c.fetch_shrunk_brokers as f64),
        );
        gauge("kafka.consumer.fetch-rate", Some(c.fetch_rate));
        gauge("kafka.consumer.fetch-latency-avg", ms(c.fetch_latency_avg));
        gauge("kafka.consumer.fetch-latency-max", ms(c.fetch_latency_max));
        gauge("kafka.consumer.fetch-size-avg", c.fetch_size_avg);
        gauge(
            "kafka.consumer.fetch-size-max",
            c.fetch_size_max.map(|v| v as f64),
        );
        gauge(
            "kafka.consumer.buffered-bytes",
            Some(c.buffered_bytes as f64),
        );
        gauge(
            "kafka.consumer.fetch-reserved-bytes",
            Some(c.fetch_reserved_bytes as f64),
        );
        gauge(
            "kafka.consumer.buffer-max-bytes",
            Some(c.buffer_max_bytes as f64),
        );
        gauge(
            "kafka.consumer.connection-count",
            Some(c.connection_count as f64),
        );
        counter(
            "kafka.consumer.connection-creation-total",
            c.connection_creation_total,
        );
        counter(
            "kafka.consumer.connection-close-total",
            c.connection_close_total,
        );
        gauge(
            "kafka.consumer.requests-in-flight",
            Some(c.requests_in_flight as f64),
        );
        counter(
            "kafka.consumer.request-timeouts-total",
            c.request_timeouts_total,
        );
        gauge(
            "kafka.consumer.last-poll-seconds-ago",
            c.last_poll_ago.map(|d| d.as_secs_f64()),
        );
        counter(
            "kafka.consumer.interceptor-panics-total",
            c.interceptor_panics_total,
        );
        if let Some(g) = &self.group {
            counter("kafka.consumer.rebalance-total", g.rebalance_total);
            gauge(
                "kafka.consumer.rebalance-latency-last",
                ms(g.last_rebalance_duration),
            );
            gauge(
                "kafka.consumer.last-rebalance-seconds-ago",
                g.last_rebalance_ago.map(|d| d.as_secs_f64()),
            );
            gauge(
                "kafka.consumer.last-heartbeat-seconds-ago",
                g.last_heartbeat_ago.map(|d| d.as_secs_f64()),
            );
            gauge(
                "kafka.consumer.heartbeat-response-time-max",
                ms(g.heartbeat_latency_max),
            );
            gauge(
                "kafka.consumer.commit-latency-avg",
                ms(g.commit_latency_avg),
            );
            gauge(
                "kafka.consumer.commit-latency-max",
                ms(g.commit_latency_max),
            );
            counter("kafka.consumer.commit-total", g.commit_total);
            counter("kafka.consumer.failed-commit-total", g.failed_commit_total);
            gauge("kafka.consumer.generation", Some(f64::from(g.generation)));
        }
    }
}
