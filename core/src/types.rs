//! Small value types shared by the consumer's parts and its users.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;

use crate::payload::{FromPayload, PayloadError, PayloadPart};
use crate::records::{Headers, Record, TimestampType};

/// A topic name and partition number.
///
/// Cheap to clone: the name is shared.
///
/// ```
/// use odradek_core::TopicPartition;
///
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.topic(), "orders");
/// assert_eq!(tp.to_string(), "orders-3");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    topic: Arc<str>,
    partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The shared topic name.
    pub fn topic_arc(&self) -> &Arc<str> {
        &self.topic
    }

    /// The partition number.
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl fmt::Debug for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl<T: Into<Arc<str>>> From<(T, i32)> for TopicPartition {
    fn from((topic, partition): (T, i32)) -> Self {
        TopicPartition::new(topic, partition)
    }
}

/// A broker's host and port, as given in `bootstrap.servers` or advertised
/// in metadata.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddress {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl BrokerAddress {
    /// The address `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a broker address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a broker address of the form host:port")]
pub struct InvalidAddress(pub String);

impl FromStr for BrokerAddress {
    type Err = InvalidAddress;

    /// Parses `host:port`, `[ipv6]:port`, or with a `PLAINTEXT://`-style
    /// listener prefix as Kafka tools print them.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidAddress(text.to_owned());
        let trimmed = text.trim();
        let without_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
        let (host, port) = if let Some(rest) = without_scheme.strip_prefix('[') {
            let (host, rest) = rest.split_once(']').ok_or_else(bad)?;
            (host, rest.strip_prefix(':').ok_or_else(bad)?)
        } else {
            without_scheme.rsplit_once(':').ok_or_else(bad)?
        };
        if host.is_empty() || host.contains(':') && !without_scheme.starts_with('[') {
            return Err(bad());
        }
        let port = port.parse::<u16>().map_err(|_| bad())?;
        Ok(BrokerAddress::new(host, port))
    }
}

/// Identifies one connection the core asked its adapter to open.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A broker's node id, as the cluster's metadata names it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BrokerId(pub i32);

impl fmt::Display for BrokerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broker {}", self.0)
    }
}

/// An offset found by a time or position query, with the record's
/// timestamp and leader epoch where the broker gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record at that offset, or -1.
    pub timestamp: i64,
    /// The leader epoch of that record, when known.
    pub leader_epoch: Option<i32>,
}

/// One record handed to the application.
///
/// Key, value and headers are views into the fetched (or decompressed)
/// buffer; cloning a record or taking its key as [`Bytes`] copies nothing.
#[derive(Clone)]
pub struct ConsumerRecord {
    partition: TopicPartition,
    leader_epoch: Option<i32>,
    timestamp_type: TimestampType,
    record: Record,
}

impl ConsumerRecord {
    pub(crate) fn new(
        partition: TopicPartition,
        leader_epoch: Option<i32>,
        timestamp_type: TimestampType,
        record: Record,
    ) -> Self {
        Self {
            partition,
            leader_epoch,
            timestamp_type,
            record,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        self.partition.topic()
    }

    /// The partition number.
    pub fn partition(&self) -> i32 {
        self.partition.partition()
    }

    /// The topic and partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.partition
    }

    /// The record's offset.
    pub fn offset(&self) -> i64 {
        self.record.offset()
    }

    /// The timestamp in milliseconds since the epoch (-1 if the record has none).
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp()
    }

    /// Whether the timestamp was set by the producer or the broker.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type
    }

    /// The leader epoch of the batch the record came in, when the broker records it.
    pub fn leader_epoch(&self) -> Option<i32> {
        self.leader_epoch
    }

    /// The key, `None` for a null key.
    pub fn key(&self) -> Option<&[u8]> {
        self.record.key()
    }

    /// The value, `None` for a null value (a tombstone).
    pub fn value(&self) -> Option<&[u8]> {
        self.record.value()
    }

    /// The key as shared bytes (no copy).
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.record.key_bytes()
    }

    /// The value as shared bytes (no copy).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.record.value_bytes()
    }

    /// The headers, in order; keys may repeat and values may be null.
    pub fn headers(&self) -> Headers<'_> {
        self.record.headers()
    }

    /// The key's size in bytes, -1 for a null key (as Java).
    ///
    /// ```no_run
    /// # fn f(record: &odradek_core::ConsumerRecord) {
    /// if record.serialized_value_size() == -1 {
    ///     println!("a tombstone for key of {} bytes", record.serialized_key_size());
    /// }
    /// # }
    /// ```
    pub fn serialized_key_size(&self) -> i32 {
        size(self.key())
    }

    /// The value's size in bytes, -1 for a null value (as Java).
    pub fn serialized_value_size(&self) -> i32 {
        size(self.value())
    }

    /// The key as text; `None` for a null key, an error naming the record
    /// if it is not UTF-8.
    pub fn key_str(&self) -> Result<Option<&str>, PayloadError> {
        self.key_as()
    }

    /// The value as text; `None` for a null value, an error naming the
    /// record if it is not UTF-8.
    ///
    /// ```
    /// # fn f(record: &odradek_core::ConsumerRecord) {
    /// match record.value_str() {
    ///     Ok(Some(text)) => println!("{text}"),
    ///     Ok(None) => println!("tombstone"),
    ///     // Only this record is bad; keep consuming.
    ///     Err(e) => eprintln!("skipping: {e}"),
    /// }
    /// # }
    /// ```
    pub fn value_str(&self) -> Result<Option<&str>, PayloadError> {
        self.value_as()
    }

    /// The key read as `T` (see [`FromPayload`]); `None` for a null key.
    pub fn key_as<'a, T: FromPayload<'a>>(&'a self) -> Result<Option<T>, PayloadError> {
        self.read_as(self.key(), PayloadPart::Key)
    }

    /// The value read as `T` (see [`FromPayload`]); `None` for a null
    /// value.
    pub fn value_as<'a, T: FromPayload<'a>>(&'a self) -> Result<Option<T>, PayloadError> {
        self.read_as(self.value(), PayloadPart::Value)
    }

    fn read_as<'a, T: FromPayload<'a>>(
        &self,
        bytes: Option<&'a [u8]>,
        part: PayloadPart,
    ) -> Result<Option<T>, PayloadError> {
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        T::from_payload(bytes).map(Some).map_err(|e| PayloadError {
            partition: self.partition.clone(),
            offset: self.offset(),
            part,
            type_name: std::any::type_name::<T>(),
            source: e.into(),
        })
    }
}

/// A payload's size as Java reports it: -1 for null.
fn size(payload: Option<&[u8]>) -> i32 {
    payload.map_or(-1, |p| i32::try_from(p.len()).unwrap_or(i32::MAX))
}

impl fmt::Debug for ConsumerRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerRecord")
            .field("partition", &self.partition)
            .field("offset", &self.offset())
            .field("timestamp", &self.timestamp())
            .field("key_len", &self.key().map(<[u8]>::len))
            .field("value_len", &self.value().map(<[u8]>::len))
            .finish()
    }
}

/// The records one `poll` returns, in the order they were delivered: each
/// partition's records in offset order.
#[derive(Debug, Clone, Default)]
pub struct ConsumerRecords {
    records: Vec<ConsumerRecord>,
    reached_end: Vec<TopicPartition>,
}

impl ConsumerRecords {
    pub(crate) fn from_vec(records: Vec<ConsumerRecord>) -> Self {
        Self::new(records, Vec::new())
    }

    pub(crate) fn new(records: Vec<ConsumerRecord>, reached_end: Vec<TopicPartition>) -> Self {
        Self {
            records,
            reached_end,
        }
    }

    /// With `enable.partition.eof`: the partitions whose end this poll
    /// reached (every record up to the high watermark returned, by this
    /// poll or earlier ones), each reported once per time it gets there,
    /// as librdkafka's `PARTITION_EOF`. A poll may return only these, with
    /// no records.
    ///
    /// ```no_run
    /// # fn f(records: &odradek_core::ConsumerRecords) {
    /// for tp in records.reached_end() {
    ///     println!("caught up with {tp}");
    /// }
    /// # }
    /// ```
    pub fn reached_end(&self) -> &[TopicPartition] {
        &self.reached_end
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in delivery order.
    pub fn iter(&self) -> std::slice::Iter<'_, ConsumerRecord> {
        self.records.iter()
    }

    /// The partitions that have records here, in order of first appearance.
    pub fn partitions(&self) -> Vec<TopicPartition> {
        let mut seen: Vec<TopicPartition> = Vec::new();
        for record in &self.records {
            if seen.last() != Some(&record.partition) && !seen.contains(&record.partition) {
                seen.push(record.partition.clone());
            }
        }
        seen
    }

    /// The records of one topic, in delivery order (Java's
    /// `records(String topic)`).
    ///
    /// ```no_run
    /// # fn f(records: &odradek_core::ConsumerRecords) {
    /// for record in records.by_topic("orders") {
    ///     println!("order at {}", record.offset());
    /// }
    /// # }
    /// ```
    pub fn by_topic<'a>(&'a self, topic: &'a str) -> impl Iterator<Item = &'a ConsumerRecord> + 'a {
        self.records.iter().filter(move |r| r.topic() == topic)
    }

    /// The records of one partition, in offset order.
    pub fn records<'a>(
        &'a self,
        partition: &'a TopicPartition,
    ) -> impl Iterator<Item = &'a ConsumerRecord> + 'a {
        self.records
            .iter()
            .filter(move |r| &r.partition == partition)
    }
}

impl IntoIterator for ConsumerRecords {
    type Item = ConsumerRecord;
    type IntoIter = std::vec::IntoIter<ConsumerRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConsumerRecords {
    type Item = &'a ConsumerRecord;
    type IntoIter = std::slice::Iter<'a, ConsumerRecord>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_parse_in_every_common_form() {
        let parse = |s: &str| s.parse::<BrokerAddress>();
        assert_eq!(
            parse("localhost:9092"),
            Ok(BrokerAddress::new("localhost", 9092))
        );
        assert_eq!(
            parse(" 10.0.0.1:9093 "),
            Ok(BrokerAddress::new("10.0.0.1", 9093))
        );
        assert_eq!(parse("[::1]:9092"), Ok(BrokerAddress::new("::1", 9092)));
        assert_eq!(
            parse("PLAINTEXT://b1:9092"),
            Ok(BrokerAddress::new("b1", 9092))
        );
        for bad in [
            "",
            "host",
            "host:",
            ":9092",
            "host:99999",
            "::1:9092",
            "[::1]9092",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(BrokerAddress::new("::1", 9092).to_string(), "[::1]:9092");
    }
}

/// A committed offset: the next offset to consume, the leader epoch of the
/// record before it (if known) and free-form metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetAndMetadata {
    /// The next offset the group should consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// Application data stored with the offset.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset with no epoch and no metadata.
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// The same offset with `metadata` attached.
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> Self {
        self.metadata = metadata.into();
        self
    }
}

/// How a consumer closes (Java's `close(Duration)`, kafka-python's
/// `close(autocommit=…)`).
///
/// ```
/// use std::time::Duration;
/// use odradek_core::CloseOptions;
///
/// // Leave the group within 2 s, committing nothing on the way out.
/// let options = CloseOptions::new()
///     .timeout(Duration::from_secs(2))
///     .without_commit();
/// assert!(!options.commits());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseOptions {
    timeout: std::time::Duration,
    commit: bool,
}

impl CloseOptions {
    /// The default close: auto-commit (if enabled) and leave the group,
    /// giving the group's part 4 s (Java gives 30; a close that waits on an
    /// unreachable coordinator for long helps nobody).
    pub fn new() -> Self {
        Self {
            timeout: std::time::Duration::from_secs(4),
            commit: true,
        }
    }

    /// The longest the group's part of the close (the final commit and
    /// LeaveGroup) may take; whatever is unanswered then is given up.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Close without the final auto-commit (kafka-python's
    /// `close(autocommit=False)`): the group's committed offsets stay as
    /// they are, and the next owner reads again what this consumer
    /// delivered since its last commit.
    pub fn without_commit(mut self) -> Self {
        self.commit = false;
        self
    }

    /// The timeout given.
    pub fn close_timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Whether the close makes the final auto-commit.
    pub fn commits(&self) -> bool {
        self.commit
    }
}

impl Default for CloseOptions {
    fn default() -> Self {
        Self::new()
    }
}
