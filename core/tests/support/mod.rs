//! A deterministic harness for the consumer state machine: scripted brokers
//! that speak the real wire protocol (requests decoded, responses encoded
//! with Odradek's codec), a fake clock that jumps to the next deadline, and
//! a bounded drive loop that fails a test which livelocks.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use odradek_core::protocol::messages::{
    ApiVersionsResponse, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse,
    api_versions::ApiVersion,
    fetch::{FetchAbortedTransaction, FetchPartitionData, FetchableTopicResponse},
    list_offsets::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    metadata::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
};
use odradek_core::protocol::{
    ApiKey, FrameDecoder, Message, RequestBody, RequestHeader, Uuid, decode_request,
    encode_response,
};
use odradek_core::records::{NewRecord, RecordBatchBuilder};
use odradek_core::{
    BrokerAddress, ConnId, Consumer, ConsumerConfig, ConsumerRecord, Event, Io, TopicPartition,
};

/// The moment every test's clock starts from. Only differences matter.
#[allow(clippy::disallowed_methods)] // the one clock read: the fake clock's origin
pub fn origin() -> Instant {
    Instant::now()
}

/// What a scripted broker does with one request.
pub enum Action {
    /// Answer as the model says (the default).
    Default,
    /// Answer with this body.
    Respond(RequestBodyReply),
    /// Answer with these raw bytes as the whole frame body after the size
    /// prefix (header included).
    Raw(Bytes),
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// Never answer.
    Ignore,
    /// Close the connection instead of answering.
    Disconnect,
    /// Send the first `n` bytes of the normal answer, then close.
    PartialThenDisconnect(usize),
}

/// A response body to send instead of the model's.
pub enum RequestBodyReply {
    Metadata(MetadataResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    ApiVersions(ApiVersionsResponse),
}

/// One partition's log as a broker holds it.
#[derive(Clone, Default)]
pub struct PartitionLog {
    pub leader: i32,
    pub leader_epoch: i32,
    pub log_start: i64,
    /// Complete batches: (base offset, next offset, bytes).
    pub batches: Vec<(i64, i64, Bytes)>,
    pub high_watermark: i64,
    /// Last stable offset; `None` means the high watermark.
    pub last_stable: Option<i64>,
    pub aborted: Vec<FetchAbortedTransaction>,
    /// Error code the leader answers fetches with, if set.
    pub fetch_error: i16,
}

impl PartitionLog {
    /// Appends a batch of `count` records with values `"v{offset}"`.
    pub fn append_values(&mut self, count: usize) -> &mut Self {
        let base = self.high_watermark.max(self.log_start);
        let records = (0..count as i64).map(|i| {
            NewRecord::new()
                .with_key(format!("k{}", base + i))
                .with_value(format!("v{}", base + i))
                .with_timestamp(1_000 + base + i)
        });
        let bytes = RecordBatchBuilder::new(base)
            .partition_leader_epoch(self.leader_epoch)
            .records(records)
            .encode()
            .expect("encode batch");
        self.append_batch(base, base + count as i64, bytes)
    }

    /// Appends an already encoded batch that covers `[base, next)`.
    pub fn append_batch(&mut self, base: i64, next: i64, bytes: Bytes) -> &mut Self {
        self.batches.push((base, next, bytes));
        self.high_watermark = self.high_watermark.max(next);
        self
    }

    fn end_for(&self, isolation: i8) -> i64 {
        if isolation == 1 {
            self.last_stable.unwrap_or(self.high_watermark)
        } else {
            self.high_watermark
        }
    }
}

/// A scripted reaction: `Some(action)` overrides the model for a request.
pub type Script = Box<dyn FnMut(&RequestHeader, &RequestBody) -> Option<Action>>;

/// A broker model: its address, what it advertises, and the logs it leads.
pub struct Broker {
    pub id: i32,
    pub address: BrokerAddress,
    pub up: bool,
    pub api_versions: Vec<ApiVersion>,
    /// Scripted reactions, tried in order before the default behaviour.
    pub script: Vec<Script>,
    /// Requests received, in order.
    pub received: Vec<(RequestHeader, RequestBody)>,
}

impl Broker {
    fn new(id: i32) -> Self {
        Self {
            id,
            address: BrokerAddress::new(format!("broker{id}"), 9092),
            up: true,
            api_versions: ApiKey::ALL
                .iter()
                .map(|api| ApiVersion {
                    api_key: api.code(),
                    min_version: api.versions().min,
                    max_version: api.versions().max,
                })
                .collect(),
            script: Vec::new(),
            received: Vec::new(),
        }
    }

    /// How many requests of `api` this broker received.
    pub fn count(&self, api: ApiKey) -> usize {
        self.received
            .iter()
            .filter(|(h, _)| h.api_key == api.code())
            .count()
    }

    /// The fetch requests this broker received.
    pub fn fetches(&self) -> Vec<&FetchRequest> {
        self.received
            .iter()
            .filter_map(|(_, body)| match body {
                RequestBody::Fetch(f) => Some(f),
                _ => None,
            })
            .collect()
    }
}

struct Link {
    broker: i32,
    requests: FrameDecoder,
}

struct Scheduled {
    at: Instant,
    conn: ConnId,
    bytes: Bytes,
    close_after: bool,
    seq: u64,
}

/// The consumer, its brokers and the clock.
pub struct Cluster {
    pub consumer: Consumer,
    pub now: Instant,
    pub brokers: BTreeMap<i32, Broker>,
    pub topics: BTreeMap<String, (Uuid, Vec<PartitionLog>)>,
    pub events: Vec<Event>,
    /// Deliver response bytes in chunks of this size (1 = byte by byte).
    pub chunk: usize,
    links: HashMap<ConnId, Link>,
    scheduled: Vec<Scheduled>,
    seq: u64,
    /// Connections the consumer opened, in order.
    pub opened: Vec<(ConnId, BrokerAddress)>,
}

pub fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

/// A config pointing at broker 1, with a fixed seed and small waits.
pub fn config() -> ConsumerConfig {
    ConsumerConfig::builder()
        .bootstrap_servers("broker1:9092")
        .fetch_max_wait(Duration::from_millis(100))
        .random_seed(7)
        .build()
        .expect("config")
}

impl Cluster {
    /// A cluster of brokers `1..=brokers` and a consumer with `config`.
    pub fn new(config: ConsumerConfig, brokers: i32) -> Self {
        let now = origin();
        Self {
            consumer: Consumer::new(config, now).expect("consumer"),
            now,
            brokers: (1..=brokers).map(|id| (id, Broker::new(id))).collect(),
            topics: BTreeMap::new(),
            events: Vec::new(),
            chunk: usize::MAX,
            links: HashMap::new(),
            scheduled: Vec::new(),
            seq: 0,
            opened: Vec::new(),
        }
    }

    /// Adds a topic with `partitions` partitions led by broker 1.
    pub fn topic(&mut self, name: &str, partitions: usize) -> &mut Vec<PartitionLog> {
        let id = Uuid([name.len() as u8 + 1; 16]);
        let logs = (0..partitions)
            .map(|_| PartitionLog {
                leader: 1,
                leader_epoch: 0,
                ..Default::default()
            })
            .collect();
        &mut self.topics.entry(name.into()).or_insert((id, logs)).1
    }

    pub fn log(&mut self, topic: &str, partition: usize) -> &mut PartitionLog {
        &mut self.topics.get_mut(topic).expect("topic").1[partition]
    }

    pub fn broker(&mut self, id: i32) -> &mut Broker {
        self.brokers.get_mut(&id).expect("broker")
    }

    /// Runs until nothing more happens without time passing. Fails if that
    /// takes more than a generous number of steps (a livelock).
    pub fn drive(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the consumer did not settle: livelock");
    }

    fn step(&mut self) -> bool {
        let mut progressed = false;
        while let Some(io) = self.consumer.poll_io() {
            progressed = true;
            self.on_io(io);
        }
        while let Some(event) = self.consumer.poll_event() {
            self.events.push(event);
        }
        // Deliver the earliest due reply (in order of scheduling).
        let due = self
            .scheduled
            .iter()
            .enumerate()
            .filter(|(_, s)| s.at <= self.now)
            .min_by_key(|(_, s)| (s.at, s.seq))
            .map(|(i, _)| i);
        if let Some(i) = due {
            progressed = true;
            let s = self.scheduled.remove(i);
            if self.links.contains_key(&s.conn) {
                let chunk = self.chunk.max(1);
                for piece in s.bytes.chunks(chunk) {
                    self.consumer.handle_received(s.conn, piece, self.now);
                }
                if s.close_after {
                    self.links.remove(&s.conn);
                    self.scheduled.retain(|x| x.conn != s.conn);
                    self.consumer.handle_disconnected(s.conn, self.now);
                }
            }
        }
        progressed
    }

    /// Moves the clock forward by `d`, firing the consumer's timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        let mut stalls = 0;
        loop {
            self.drive();
            let next = self.next_wakeup();
            match next {
                Some(at) if at <= end => {
                    stalls = if at <= self.now { stalls + 1 } else { 0 };
                    assert!(
                        stalls < 10_000,
                        "timer livelock: the deadline stays at {:?}",
                        at - self.now
                    );
                    self.now = self.now.max(at);
                    self.consumer.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.consumer.handle_timeout(self.now);
        self.drive();
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let timer = self.consumer.poll_timeout();
        let reply = self.scheduled.iter().map(|s| s.at).min();
        match (timer, reply) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drives (jumping the clock) until `done` holds, for at most `limit`
    /// of simulated time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) {
        let end = self.now + limit;
        let mut stalls = 0;
        loop {
            self.drive();
            if done(self) {
                return;
            }
            match self.next_wakeup() {
                Some(at) if at <= end => {
                    // A deadline that never moves time forward is a livelock.
                    stalls = if at <= self.now { stalls + 1 } else { 0 };
                    assert!(
                        stalls < 10_000,
                        "timer livelock: the deadline stays at {:?}",
                        at - self.now
                    );
                    self.now = self.now.max(at);
                    self.consumer.handle_timeout(self.now);
                }
                _ => panic!("condition not reached within {limit:?} of simulated time"),
            }
        }
    }

    /// Polls until `n` records arrived (or fails after `limit` of
    /// simulated time). Time only moves when a poll brings nothing.
    pub fn poll_n(&mut self, n: usize, limit: Duration) -> Vec<ConsumerRecord> {
        let end = self.now + limit;
        let mut out = Vec::new();
        let mut stalls = 0;
        loop {
            self.drive();
            let records = match self.consumer.poll_records(self.now) {
                Ok(records) => records,
                Err(e) => panic!("poll failed: {e}"),
            };
            let got = !records.is_empty();
            out.extend(records);
            if out.len() >= n {
                return out;
            }
            if got {
                continue;
            }
            match self.next_wakeup() {
                Some(at) if at <= end => {
                    stalls = if at <= self.now { stalls + 1 } else { 0 };
                    assert!(
                        stalls < 10_000,
                        "timer livelock: the deadline stays at {:?}",
                        at - self.now
                    );
                    self.now = self.now.max(at);
                    self.consumer.handle_timeout(self.now);
                }
                _ => panic!(
                    "only {} of {n} records within {limit:?} of simulated time",
                    out.len()
                ),
            }
        }
    }

    /// Polls once (after driving), returning the result.
    pub fn poll(&mut self) -> Result<Vec<ConsumerRecord>, odradek_core::Error> {
        self.drive();
        let result = self
            .consumer
            .poll_records(self.now)
            .map(|r| r.into_iter().collect());
        self.drive();
        result
    }

    fn on_io(&mut self, io: Io) {
        match io {
            Io::Connect { conn, address } => {
                self.opened.push((conn, address.clone()));
                let broker = self
                    .brokers
                    .values()
                    .find(|b| b.address == address)
                    .map(|b| (b.id, b.up));
                match broker {
                    Some((id, true)) => {
                        self.links.insert(
                            conn,
                            Link {
                                broker: id,
                                requests: FrameDecoder::new(1 << 30),
                            },
                        );
                        self.consumer.handle_connected(conn, self.now);
                    }
                    _ => self
                        .consumer
                        .handle_connect_failed(conn, "connection refused", self.now),
                }
            }
            Io::Send { conn, data } => {
                let Some(link) = self.links.get_mut(&conn) else {
                    return;
                };
                link.requests.push(&data);
                let broker = link.broker;
                let mut frames = Vec::new();
                while let Ok(Some(frame)) = link.requests.next_frame() {
                    frames.push(frame);
                }
                for frame in frames {
                    self.on_request(conn, broker, frame);
                }
            }
            Io::Close { conn } => {
                self.links.remove(&conn);
                self.scheduled.retain(|s| s.conn != conn);
            }
        }
    }

    fn on_request(&mut self, conn: ConnId, broker_id: i32, frame: Bytes) {
        let (header, body) =
            decode_request(frame).expect("the consumer sent a request we cannot decode");
        let mut action = Action::Default;
        {
            let broker = self.brokers.get_mut(&broker_id).expect("broker");
            broker.received.push((header.clone(), body.clone()));
            for script in broker.script.iter_mut() {
                if let Some(a) = script(&header, &body) {
                    action = a;
                    break;
                }
            }
        }
        let (delay, bytes, close_after) = match action {
            Action::Ignore => return,
            Action::Disconnect => {
                self.links.remove(&conn);
                self.scheduled.retain(|s| s.conn != conn);
                self.consumer.handle_disconnected(conn, self.now);
                return;
            }
            Action::Raw(bytes) => {
                let mut framed = BytesMut::new();
                framed.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                framed.extend_from_slice(&bytes);
                (Duration::ZERO, framed.freeze(), false)
            }
            Action::Respond(reply) => (Duration::ZERO, self.encode_reply(&header, reply), false),
            Action::Default => {
                let (delay, reply) = self.model_reply(broker_id, &body);
                (delay, self.encode_reply(&header, reply), false)
            }
            Action::Delay(d) => {
                let (delay, reply) = self.model_reply(broker_id, &body);
                (d.max(delay), self.encode_reply(&header, reply), false)
            }
            Action::PartialThenDisconnect(n) => {
                let (_, reply) = self.model_reply(broker_id, &body);
                let full = self.encode_reply(&header, reply);
                (Duration::ZERO, full.slice(..n.min(full.len())), true)
            }
        };
        self.seq += 1;
        self.scheduled.push(Scheduled {
            at: self.now + delay,
            conn,
            bytes,
            close_after,
            seq: self.seq,
        });
    }

    fn encode_reply(&self, header: &RequestHeader, reply: RequestBodyReply) -> Bytes {
        let version = header.api_version;
        let id = header.correlation_id;
        let mut out = BytesMut::new();
        let result = match reply {
            RequestBodyReply::Metadata(r) => {
                encode_response(&mut out, ApiKey::Metadata, id, &r, version)
            }
            RequestBodyReply::Fetch(r) => encode_response(&mut out, ApiKey::Fetch, id, &r, version),
            RequestBodyReply::ListOffsets(r) => {
                encode_response(&mut out, ApiKey::ListOffsets, id, &r, version)
            }
            RequestBodyReply::ApiVersions(r) => {
                encode_response(&mut out, ApiKey::ApiVersions, id, &r, version)
            }
        };
        result.expect("encode reply");
        out.freeze()
    }

    /// What the modelled broker answers, and after how long.
    fn model_reply(&self, broker_id: i32, body: &RequestBody) -> (Duration, RequestBodyReply) {
        let broker = &self.brokers[&broker_id];
        match body {
            RequestBody::ApiVersions(_) => (
                Duration::ZERO,
                RequestBodyReply::ApiVersions(ApiVersionsResponse {
                    api_keys: broker.api_versions.clone(),
                    ..Default::default()
                }),
            ),
            RequestBody::Metadata(request) => (
                Duration::ZERO,
                RequestBodyReply::Metadata(self.metadata(request)),
            ),
            RequestBody::ListOffsets(request) => (
                Duration::ZERO,
                RequestBodyReply::ListOffsets(self.list_offsets(broker_id, request)),
            ),
            RequestBody::Fetch(request) => {
                let response = self.fetch(broker_id, request);
                let has_data = response
                    .responses
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .any(|p| {
                        p.error_code != 0 || p.records.as_ref().is_some_and(|r| !r.is_empty())
                    });
                // Like a real broker: hold an empty fetch for max_wait_ms.
                let delay = if has_data {
                    Duration::ZERO
                } else {
                    Duration::from_millis(request.max_wait_ms.max(0) as u64)
                };
                (delay, RequestBodyReply::Fetch(response))
            }
            other => panic!("the model does not answer {:?}", other.api_key()),
        }
    }

    fn metadata(&self, request: &MetadataRequest) -> MetadataResponse {
        let names: Vec<String> = match &request.topics {
            Some(topics) => topics.iter().filter_map(|t| t.name.clone()).collect(),
            None => self.topics.keys().cloned().collect(),
        };
        MetadataResponse {
            brokers: self
                .brokers
                .values()
                .map(|b| MetadataResponseBroker {
                    node_id: b.id,
                    host: b.address.host.clone(),
                    port: i32::from(b.address.port),
                    rack: None,
                })
                .collect(),
            cluster_id: Some("test".into()),
            controller_id: 1,
            topics: names
                .into_iter()
                .map(|name| match self.topics.get(&name) {
                    None => MetadataResponseTopic {
                        error_code: 3,
                        name: Some(name),
                        ..Default::default()
                    },
                    Some((id, logs)) => MetadataResponseTopic {
                        name: Some(name),
                        topic_id: *id,
                        partitions: logs
                            .iter()
                            .enumerate()
                            .map(|(i, log)| MetadataResponsePartition {
                                partition_index: i as i32,
                                leader_id: log.leader,
                                leader_epoch: log.leader_epoch,
                                replica_nodes: vec![log.leader],
                                isr_nodes: vec![log.leader],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                })
                .collect(),
            ..Default::default()
        }
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionLog> {
        self.topics
            .get(topic)?
            .1
            .get(usize::try_from(partition).ok()?)
    }

    fn list_offsets(&self, broker: i32, request: &ListOffsetsRequest) -> ListOffsetsResponse {
        ListOffsetsResponse {
            topics: request
                .topics
                .iter()
                .map(|t| ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut answer = ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                ..Default::default()
                            };
                            match self.partition(&t.name, p.partition_index) {
                                None => answer.error_code = 3,
                                Some(log) if log.leader != broker => answer.error_code = 6,
                                Some(log) => {
                                    answer.leader_epoch = log.leader_epoch;
                                    match p.timestamp {
                                        -2 => answer.offset = log.log_start,
                                        -1 => answer.offset = log.end_for(request.isolation_level),
                                        ts => {
                                            // Records' timestamps are 1000 + offset.
                                            let offset = (ts - 1_000).max(log.log_start);
                                            if offset < log.high_watermark {
                                                answer.offset = offset;
                                                answer.timestamp = 1_000 + offset;
                                            } else {
                                                answer.offset = -1;
                                            }
                                        }
                                    }
                                }
                            }
                            answer
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn fetch(&self, broker: i32, request: &FetchRequest) -> FetchResponse {
        let mut budget = request.max_bytes.max(0) as usize;
        FetchResponse {
            responses: request
                .topics
                .iter()
                .map(|t| {
                    let name = if t.topic.is_empty() {
                        self.topics
                            .iter()
                            .find(|(_, (id, _))| *id == t.topic_id)
                            .map(|(n, _)| n.clone())
                            .unwrap_or_default()
                    } else {
                        t.topic.clone()
                    };
                    FetchableTopicResponse {
                        topic: t.topic.clone(),
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| {
                                let mut data = FetchPartitionData {
                                    partition_index: p.partition,
                                    ..Default::default()
                                };
                                let Some(log) = self.partition(&name, p.partition) else {
                                    data.error_code = 3;
                                    return data;
                                };
                                data.high_watermark = log.high_watermark;
                                data.last_stable_offset = log.end_for(request.isolation_level);
                                data.log_start_offset = log.log_start;
                                if log.leader != broker {
                                    data.error_code = 6;
                                    return data;
                                }
                                if log.fetch_error != 0 {
                                    data.error_code = log.fetch_error;
                                    return data;
                                }
                                if p.fetch_offset < log.log_start
                                    || p.fetch_offset > log.high_watermark
                                {
                                    data.error_code = 1;
                                    return data;
                                }
                                let end = log.end_for(request.isolation_level);
                                let mut records = BytesMut::new();
                                let mut first = true;
                                for (_, next, bytes) in &log.batches {
                                    if *next <= p.fetch_offset || *next > end {
                                        continue;
                                    }
                                    let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                                    if !first && records.len() + bytes.len() > limit {
                                        break;
                                    }
                                    records.extend_from_slice(bytes);
                                    first = false;
                                }
                                budget = budget.saturating_sub(records.len());
                                if request.isolation_level == 1 {
                                    data.aborted_transactions = Some(log.aborted.clone());
                                }
                                data.records = Some(records.freeze());
                                data
                            })
                            .collect(),
                    }
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Takes the events seen so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

/// Values of records, as strings.
pub fn values(records: &[ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned())
        .collect()
}

/// Offsets of records.
pub fn offsets(records: &[ConsumerRecord]) -> Vec<i64> {
    records.iter().map(ConsumerRecord::offset).collect()
}

/// Encodes `body` as a complete response frame body (header + body) for
/// tests that inject raw bytes.
pub fn response_bytes<M: Message>(
    api: ApiKey,
    correlation_id: i32,
    body: &M,
    version: i16,
) -> Bytes {
    let mut out = BytesMut::new();
    encode_response(&mut out, api, correlation_id, body, version).expect("encode");
    out.split_off(4).freeze()
}
