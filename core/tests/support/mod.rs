//! A deterministic harness for the consumer state machine: scripted brokers
//! that speak the real wire protocol (requests decoded, responses encoded
//! with Odradek's codec), a fake clock that jumps to the next deadline, and
//! a bounded drive loop that fails a test which livelocks.

#![allow(dead_code)]

pub mod scram_server;
pub mod secure;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use odradek_core::protocol::messages::{
    ApiVersionsResponse, FetchRequest, FetchResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, SyncGroupRequest, SyncGroupResponse,
    api_versions::ApiVersion,
    fetch::{
        FetchAbortedTransaction, FetchEpochEndOffset, FetchPartitionData, FetchableTopicResponse,
    },
    find_coordinator::FindCoordinatorResponseCoordinator,
    join_group::JoinGroupResponseMember,
    leave_group::LeaveGroupResponseMember,
    list_offsets::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse},
    metadata::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    offset_commit::{OffsetCommitResponsePartition, OffsetCommitResponseTopic},
    offset_fetch::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    },
    offset_for_leader_epoch::{OffsetForLeaderEpochEndOffset, OffsetForLeaderTopicResult},
};
use odradek_core::protocol::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, EmbeddedProtocol, ErrorCode,
    FrameDecoder, Message, RequestBody, RequestHeader, TopicPartitions, Uuid, decode_request,
    encode_response,
};
use odradek_core::records::{NewRecord, RecordBatchBuilder};
use odradek_core::{
    BrokerAddress, ConnId, Consumer, ConsumerConfig, ConsumerRecord, Event, Io, RebalanceEvent,
    TopicPartition,
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
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
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

    /// Cuts the log back to `offset` (a batch boundary), as a replica that
    /// had not replicated past it and becomes leader leaves it.
    pub fn truncate_to(&mut self, offset: i64) -> &mut Self {
        assert!(
            self.batches
                .iter()
                .all(|(base, next, _)| *next <= offset || *base >= offset),
            "truncate_to({offset}) must cut between batches"
        );
        self.batches.retain(|(_, next, _)| *next <= offset);
        self.high_watermark = offset;
        self.last_stable = None;
        self
    }

    /// The leader epoch cache, as a broker keeps it: each epoch (ascending)
    /// with its first offset, from the batches' partition leader epochs;
    /// the current leader epoch starts where the log ended when it began.
    pub fn epochs(&self) -> Vec<(i32, i64)> {
        let mut out: Vec<(i32, i64)> = Vec::new();
        for (base, _, bytes) in &self.batches {
            // A v2 batch: base offset (8), length (4), leader epoch (4), magic (1).
            if bytes.len() < 17 || bytes[16] != 2 {
                continue;
            }
            let epoch = i32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
            if epoch >= 0 && out.last().is_none_or(|(e, _)| epoch > *e) {
                out.push((epoch, *base));
            }
        }
        if self.leader_epoch >= 0 && out.last().is_none_or(|(e, _)| self.leader_epoch > *e) {
            out.push((self.leader_epoch, self.high_watermark.max(self.log_start)));
        }
        out
    }

    /// Where `epoch` ends, as Kafka's leader epoch cache answers: the
    /// largest epoch at or below it and the first offset of the next one
    /// (the log end for the latest epoch); (-1, -1) if it cannot say.
    pub fn end_offset_for(&self, epoch: i32) -> (i32, i64) {
        let epochs = self.epochs();
        if epoch < 0 {
            return (-1, -1);
        }
        if epochs.last().is_some_and(|(e, _)| *e == epoch) {
            return (epoch, self.high_watermark.max(self.log_start));
        }
        let Some(&(_, next_start)) = epochs.iter().find(|(e, _)| *e > epoch) else {
            return (-1, -1);
        };
        match epochs.iter().rev().find(|(e, _)| *e <= epoch) {
            Some(&(floor, _)) => (floor, next_start),
            None => (epoch, next_start),
        }
    }

    /// The error a leader gives a request naming `current_leader_epoch`:
    /// FENCED_LEADER_EPOCH for an older one, UNKNOWN_LEADER_EPOCH for a
    /// newer one (0 when it matches or is not given).
    pub fn epoch_error(&self, current_leader_epoch: i32) -> i16 {
        if current_leader_epoch < 0 || current_leader_epoch == self.leader_epoch {
            0
        } else if current_leader_epoch < self.leader_epoch {
            ErrorCode::FENCED_LEADER_EPOCH.0
        } else {
            ErrorCode::UNKNOWN_LEADER_EPOCH.0
        }
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

/// A scripted reaction that sees which broker got the request and may
/// change the group coordinator model (move the coordinator, ...) before
/// the model answers. Tried before the brokers' own scripts.
pub type GroupScript =
    Box<dyn FnMut(i32, &RequestHeader, &RequestBody, &mut GroupModel) -> Option<Action>>;

/// One request as a broker received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// When it arrived (the fake clock).
    pub at: Instant,
    /// The broker that got it.
    pub broker: i32,
    /// The connection it came on.
    pub conn: ConnId,
    pub header: RequestHeader,
    pub body: RequestBody,
}

/// Another member of the group, as the coordinator reports it to a leader.
#[derive(Clone, Debug)]
pub struct OtherMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    /// Its protocols, preferred first: (assignor name, subscription bytes).
    pub protocols: Vec<(String, Bytes)>,
}

/// A committed offset as the coordinator stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// A classic-protocol group coordinator for one group. It answers every
/// group API as Kafka's coordinator does in the common cases (and
/// `NOT_COORDINATOR` on any broker but `coordinator`); tests override single
/// answers with scripts.
#[derive(Debug)]
pub struct GroupModel {
    /// The broker that coordinates the group (FindCoordinator's answer).
    pub coordinator: i32,
    /// The current generation (bumped by every successful join).
    pub generation: i32,
    /// Member ids the coordinator knows.
    pub members: BTreeSet<String>,
    next_member: u32,
    /// The leader's member id; `None`: the joining member leads.
    pub leader: Option<String>,
    /// The other members reported to a leader.
    pub others: Vec<OtherMember>,
    /// What SyncGroup gives a follower.
    pub assignment: Vec<TopicPartition>,
    /// The assignments the last leader's SyncGroup carried, per member.
    pub leader_assignments: BTreeMap<String, Bytes>,
    /// The group's committed offsets.
    pub committed: BTreeMap<TopicPartition, Committed>,
    /// Whether a dynamic member's first join (no member id) is answered
    /// `MEMBER_ID_REQUIRED` (KIP-394, JoinGroup v4+).
    pub require_member_id: bool,
}

impl Default for GroupModel {
    fn default() -> Self {
        Self {
            coordinator: 1,
            generation: 0,
            members: BTreeSet::new(),
            next_member: 0,
            leader: None,
            others: Vec::new(),
            assignment: Vec::new(),
            leader_assignments: BTreeMap::new(),
            committed: BTreeMap::new(),
            require_member_id: true,
        }
    }
}

/// Subscription bytes (consumer protocol v3) for `topics` owning `owned`.
pub fn subscription_bytes(topics: &[&str], owned: &[TopicPartition]) -> Bytes {
    ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        owned_partitions: by_topic(owned),
        ..Default::default()
    }
    .to_versioned_bytes(3)
    .expect("encode subscription")
}

/// Assignment bytes (consumer protocol v1) for `partitions`.
pub fn assignment_bytes(partitions: &[TopicPartition]) -> Bytes {
    ConsumerProtocolAssignment {
        assigned_partitions: by_topic(partitions),
        user_data: None,
    }
    .to_versioned_bytes(1)
    .expect("encode assignment")
}

/// Decodes assignment bytes into partitions.
pub fn decode_assignment(bytes: &Bytes) -> Vec<TopicPartition> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let (_, a) =
        ConsumerProtocolAssignment::from_versioned_bytes(bytes.clone()).expect("decode assignment");
    flatten(&a.assigned_partitions)
}

/// Decodes subscription bytes.
pub fn decode_subscription(bytes: &Bytes) -> ConsumerProtocolSubscription {
    ConsumerProtocolSubscription::from_versioned_bytes(bytes.clone())
        .expect("decode subscription")
        .1
}

/// Partitions grouped per topic, as the consumer protocol carries them.
pub fn by_topic(partitions: &[TopicPartition]) -> Vec<TopicPartitions> {
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics
            .entry(tp.topic().to_string())
            .or_default()
            .push(tp.partition());
    }
    topics
        .into_iter()
        .map(|(topic, partitions)| TopicPartitions { topic, partitions })
        .collect()
}

/// The partitions of a consumer-protocol list, flattened.
pub fn flatten(topics: &[TopicPartitions]) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|&p| tp(&t.topic, p)))
        .collect()
}

/// A broker model: its address, what it advertises, and the logs it leads.
pub struct Broker {
    pub id: i32,
    pub address: BrokerAddress,
    pub up: bool,
    pub api_versions: Vec<ApiVersion>,
    /// Answers a Fetch ignoring the request-level `max_bytes` (but keeping
    /// each partition's limit), as crabka does.
    pub ignores_fetch_max_bytes: bool,
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
            ignores_fetch_max_bytes: false,
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
    security: secure::LinkSecurity,
}

struct Scheduled {
    at: Instant,
    conn: ConnId,
    bytes: Bytes,
    close_after: bool,
    seq: u64,
    /// Bytes that go out as they are (TLS records); otherwise a response
    /// encrypted when it is delivered, so TLS records keep their order.
    raw: bool,
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
    /// Every request any broker received, in order.
    pub log: Vec<Received>,
    /// The group coordinator.
    pub group: GroupModel,
    /// Scripts over the group model, tried before the brokers' scripts.
    pub group_scripts: Vec<GroupScript>,
    /// Answer each connection's requests in order, like a real broker (a
    /// delayed answer holds back later ones on the same connection).
    pub in_order: bool,
    /// TLS and SASL as every broker requires them.
    pub security: secure::ServerSecurity,
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
        let consumer = Consumer::new(config, origin()).expect("consumer");
        Self::with_consumer(consumer, secure::ServerSecurity::default(), brokers)
    }

    /// A cluster whose brokers require `server` security, and a consumer
    /// with `config` and `context`.
    pub fn secure(
        config: ConsumerConfig,
        context: odradek_core::security::SecurityContext,
        server: secure::ServerSecurity,
        brokers: i32,
    ) -> Self {
        let consumer = Consumer::with_security(config, context, origin()).expect("consumer");
        Self::with_consumer(consumer, server, brokers)
    }

    fn with_consumer(consumer: Consumer, security: secure::ServerSecurity, brokers: i32) -> Self {
        let now = origin();
        Self {
            consumer,
            security,
            now,
            brokers: (1..=brokers).map(|id| (id, Broker::new(id))).collect(),
            topics: BTreeMap::new(),
            events: Vec::new(),
            chunk: usize::MAX,
            links: HashMap::new(),
            scheduled: Vec::new(),
            seq: 0,
            opened: Vec::new(),
            log: Vec::new(),
            group: GroupModel::default(),
            group_scripts: Vec::new(),
            in_order: false,
        }
    }

    /// Adds a topic with `partitions` partitions led by broker 1.
    pub fn topic(&mut self, name: &str, partitions: usize) -> &mut Vec<PartitionLog> {
        // Distinct names get distinct ids (an FNV-1a hash of the name).
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let mut id = [name.len() as u8 + 1; 16];
        id[8..].copy_from_slice(&hash.to_be_bytes());
        let id = Uuid(id);
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
            if let Some(link) = self.links.get_mut(&s.conn) {
                let bytes = match s.raw {
                    true => s.bytes.clone(),
                    false => link.security.seal(&s.bytes),
                };
                let chunk = self.chunk.max(1);
                for piece in bytes.chunks(chunk) {
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
        loop {
            self.drive();
            let next = self.next_wakeup();
            match next {
                Some(at) if at <= end => {
                    self.now = at;
                    self.consumer.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.consumer.handle_timeout(self.now);
        self.drive();
    }

    /// The consumer's next deadline or the next scripted reply, whichever
    /// comes first. The consumer's deadline is always in the future after a
    /// drain (its timer table fires what expired on every input), so time
    /// always moves and no timer can livelock a test.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let timer = self.consumer.poll_timeout();
        if let Some(at) = timer {
            assert!(
                at > self.now,
                "poll_timeout is {:?} in the past after a full drain",
                self.now - at
            );
        }
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
        loop {
            self.drive();
            if done(self) {
                return;
            }
            match self.next_wakeup() {
                Some(at) if at <= end => {
                    self.now = at;
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
        loop {
            self.drive();
            let records = match self.consumer.take_records(self.now) {
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
                    self.now = at;
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
            .take_records(self.now)
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
                                security: secure::LinkSecurity::new(&self.security),
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
                let (plain, out) = match link.security.receive(&data) {
                    Ok(received) => received,
                    Err(alert) => {
                        // TLS failed: the alert goes out, then the close.
                        self.schedule(conn, Duration::ZERO, Bytes::from(alert), true, true);
                        return;
                    }
                };
                if !out.is_empty() {
                    self.schedule(conn, Duration::ZERO, Bytes::from(out), false, true);
                }
                let Some(link) = self.links.get_mut(&conn) else {
                    return;
                };
                link.requests.push(&plain);
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
        self.log.push(Received {
            at: self.now,
            broker: broker_id,
            conn,
            header: header.clone(),
            body: body.clone(),
        });
        let gate = match self.links.get_mut(&conn) {
            Some(link) => {
                let sasl = self.security.sasl.as_ref();
                link.security.on_request(sasl, &header, &body, self.now)
            }
            None => return,
        };
        let mut action = None;
        match gate {
            secure::Gate::Pass => {}
            secure::Gate::Reply(bytes) => {
                self.brokers
                    .get_mut(&broker_id)
                    .expect("broker")
                    .received
                    .push((header, body));
                return self.schedule(conn, Duration::ZERO, bytes, false, false);
            }
            secure::Gate::Disconnect => action = Some(Action::Disconnect),
        }
        for script in self.group_scripts.iter_mut() {
            if action.is_some() {
                break;
            }
            if let Some(a) = script(broker_id, &header, &body, &mut self.group) {
                action = Some(a);
                break;
            }
        }
        let mut action = action.unwrap_or(Action::Default);
        {
            let broker = self.brokers.get_mut(&broker_id).expect("broker");
            broker.received.push((header.clone(), body.clone()));
            if matches!(action, Action::Default) {
                for script in broker.script.iter_mut() {
                    if let Some(a) = script(&header, &body) {
                        action = a;
                        break;
                    }
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
                let (delay, reply) = self.reply(broker_id, &body);
                (delay, self.encode_reply(&header, reply), false)
            }
            Action::Delay(d) => {
                let (delay, reply) = self.reply(broker_id, &body);
                (d.max(delay), self.encode_reply(&header, reply), false)
            }
            Action::PartialThenDisconnect(n) => {
                let (_, reply) = self.reply(broker_id, &body);
                let full = self.encode_reply(&header, reply);
                (Duration::ZERO, full.slice(..n.min(full.len())), true)
            }
        };
        self.schedule(conn, delay, bytes, close_after, false);
    }

    /// Queues bytes for `conn` after `delay`: `raw` TLS records as they are,
    /// otherwise a response (encrypted on delivery when the link has TLS).
    fn schedule(
        &mut self,
        conn: ConnId,
        delay: Duration,
        bytes: Bytes,
        close_after: bool,
        raw: bool,
    ) {
        self.seq += 1;
        let mut at = self.now + delay;
        if self.in_order {
            // A broker answers one connection's requests in order.
            if let Some(last) = self
                .scheduled
                .iter()
                .filter(|s| s.conn == conn)
                .map(|s| s.at)
                .max()
            {
                at = at.max(last);
            }
        }
        self.scheduled.push(Scheduled {
            at,
            conn,
            bytes,
            close_after,
            seq: self.seq,
            raw,
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
            RequestBodyReply::FindCoordinator(r) => {
                encode_response(&mut out, ApiKey::FindCoordinator, id, &r, version)
            }
            RequestBodyReply::JoinGroup(r) => {
                encode_response(&mut out, ApiKey::JoinGroup, id, &r, version)
            }
            RequestBodyReply::SyncGroup(r) => {
                encode_response(&mut out, ApiKey::SyncGroup, id, &r, version)
            }
            RequestBodyReply::Heartbeat(r) => {
                encode_response(&mut out, ApiKey::Heartbeat, id, &r, version)
            }
            RequestBodyReply::LeaveGroup(r) => {
                encode_response(&mut out, ApiKey::LeaveGroup, id, &r, version)
            }
            RequestBodyReply::OffsetCommit(r) => {
                encode_response(&mut out, ApiKey::OffsetCommit, id, &r, version)
            }
            RequestBodyReply::OffsetFetch(r) => {
                encode_response(&mut out, ApiKey::OffsetFetch, id, &r, version)
            }
            RequestBodyReply::OffsetForLeaderEpoch(r) => {
                encode_response(&mut out, ApiKey::OffsetForLeaderEpoch, id, &r, version)
            }
        };
        result.expect("encode reply");
        out.freeze()
    }

    /// The model's answer: the group coordinator's for group APIs, the
    /// broker's otherwise.
    fn reply(&mut self, broker_id: i32, body: &RequestBody) -> (Duration, RequestBodyReply) {
        match self.group_reply(broker_id, body) {
            Some(reply) => (Duration::ZERO, reply),
            None => self.model_reply(broker_id, body),
        }
    }

    /// What the group coordinator model answers a group request with.
    fn group_reply(&mut self, broker_id: i32, body: &RequestBody) -> Option<RequestBodyReply> {
        let coordinator = self.group.coordinator;
        let is_coordinator = broker_id == coordinator;
        let not_coordinator = ErrorCode::NOT_COORDINATOR.0;
        let g = &mut self.group;
        Some(match body {
            RequestBody::FindCoordinator(r) => {
                let address = self.brokers[&coordinator].address.clone();
                RequestBodyReply::FindCoordinator(FindCoordinatorResponse {
                    node_id: coordinator,
                    host: address.host.clone(),
                    port: i32::from(address.port),
                    coordinators: r
                        .coordinator_keys
                        .iter()
                        .map(|key| FindCoordinatorResponseCoordinator {
                            key: key.clone(),
                            node_id: coordinator,
                            host: address.host.clone(),
                            port: i32::from(address.port),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
            }
            RequestBody::JoinGroup(r) => RequestBodyReply::JoinGroup(if !is_coordinator {
                JoinGroupResponse {
                    error_code: not_coordinator,
                    ..Default::default()
                }
            } else {
                g.join(r)
            }),
            RequestBody::SyncGroup(r) => RequestBodyReply::SyncGroup(if !is_coordinator {
                SyncGroupResponse {
                    error_code: not_coordinator,
                    ..Default::default()
                }
            } else {
                g.sync(r)
            }),
            RequestBody::Heartbeat(r) => RequestBodyReply::Heartbeat(HeartbeatResponse {
                error_code: if !is_coordinator {
                    not_coordinator
                } else {
                    g.check_member(&r.member_id, r.generation_id)
                },
                ..Default::default()
            }),
            RequestBody::LeaveGroup(r) => {
                if is_coordinator {
                    for m in &r.members {
                        g.members.remove(&m.member_id);
                    }
                    g.members.remove(&r.member_id);
                }
                RequestBodyReply::LeaveGroup(LeaveGroupResponse {
                    error_code: if is_coordinator { 0 } else { not_coordinator },
                    members: r
                        .members
                        .iter()
                        .map(|m| LeaveGroupResponseMember {
                            member_id: m.member_id.clone(),
                            group_instance_id: m.group_instance_id.clone(),
                            error_code: 0,
                        })
                        .collect(),
                    ..Default::default()
                })
            }
            RequestBody::OffsetCommit(r) => {
                let code = if !is_coordinator {
                    not_coordinator
                } else if r.generation_id_or_member_epoch >= 0 || !g.is_empty() {
                    // Without a generation, only an empty group's offsets.
                    g.check_member(&r.member_id, r.generation_id_or_member_epoch)
                } else {
                    0
                };
                RequestBodyReply::OffsetCommit(OffsetCommitResponse {
                    topics: r
                        .topics
                        .iter()
                        .map(|t| OffsetCommitResponseTopic {
                            name: t.name.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| {
                                    if code == 0 {
                                        g.committed.insert(
                                            tp(&t.name, p.partition_index),
                                            Committed {
                                                offset: p.committed_offset,
                                                leader_epoch: p.committed_leader_epoch,
                                                metadata: p
                                                    .committed_metadata
                                                    .clone()
                                                    .unwrap_or_default(),
                                            },
                                        );
                                    }
                                    OffsetCommitResponsePartition {
                                        partition_index: p.partition_index,
                                        error_code: code,
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                    ..Default::default()
                })
            }
            RequestBody::OffsetFetch(r) => {
                let code = if is_coordinator { 0 } else { not_coordinator };
                let lookup = |topic: &str, p: i32| {
                    g.committed
                        .get(&tp(topic, p))
                        .cloned()
                        .unwrap_or(Committed {
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                        })
                };
                RequestBodyReply::OffsetFetch(OffsetFetchResponse {
                    error_code: code,
                    topics: r
                        .topics
                        .iter()
                        .flatten()
                        .map(|t| OffsetFetchResponseTopic {
                            name: t.name.clone(),
                            partitions: t
                                .partition_indexes
                                .iter()
                                .map(|&p| {
                                    let c = lookup(&t.name, p);
                                    OffsetFetchResponsePartition {
                                        partition_index: p,
                                        committed_offset: c.offset,
                                        committed_leader_epoch: c.leader_epoch,
                                        metadata: Some(c.metadata),
                                        error_code: 0,
                                    }
                                })
                                .collect(),
                        })
                        .collect(),
                    groups: r
                        .groups
                        .iter()
                        .map(|group| OffsetFetchResponseGroup {
                            group_id: group.group_id.clone(),
                            error_code: code,
                            topics: group
                                .topics
                                .iter()
                                .flatten()
                                .map(|t| OffsetFetchResponseTopics {
                                    name: t.name.clone(),
                                    partitions: t
                                        .partition_indexes
                                        .iter()
                                        .map(|&p| {
                                            let c = lookup(&t.name, p);
                                            OffsetFetchResponsePartitions {
                                                partition_index: p,
                                                committed_offset: c.offset,
                                                committed_leader_epoch: c.leader_epoch,
                                                metadata: Some(c.metadata),
                                                error_code: 0,
                                            }
                                        })
                                        .collect(),
                                })
                                .collect(),
                        })
                        .collect(),
                    ..Default::default()
                })
            }
            _ => return None,
        })
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
                RequestBodyReply::Metadata(self.metadata(request, broker)),
            ),
            RequestBody::ListOffsets(request) => (
                Duration::ZERO,
                RequestBodyReply::ListOffsets(self.list_offsets(broker_id, request)),
            ),
            RequestBody::OffsetForLeaderEpoch(request) => (
                Duration::ZERO,
                RequestBodyReply::OffsetForLeaderEpoch(
                    self.offset_for_leader_epoch(broker_id, request),
                ),
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

    fn metadata(&self, request: &MetadataRequest, broker: &Broker) -> MetadataResponse {
        // Metadata v0 has no null list: there, an empty one asks for all.
        let v0_only = broker
            .api_versions
            .iter()
            .any(|v| v.api_key == ApiKey::Metadata.code() && v.max_version == 0);
        let names: Vec<String> = match &request.topics {
            Some(topics) if !(v0_only && topics.is_empty()) => {
                topics.iter().filter_map(|t| t.name.clone()).collect()
            }
            _ => self.topics.keys().cloned().collect(),
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
                        // Kafka's own topics (`__consumer_offsets`, ...).
                        is_internal: name.starts_with("__"),
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
                                Some(log) if log.epoch_error(p.current_leader_epoch) != 0 => {
                                    answer.error_code = log.epoch_error(p.current_leader_epoch);
                                }
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

    fn offset_for_leader_epoch(
        &self,
        broker: i32,
        request: &OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        OffsetForLeaderEpochResponse {
            throttle_time_ms: 0,
            topics: request
                .topics
                .iter()
                .map(|t| OffsetForLeaderTopicResult {
                    topic: t.topic.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| {
                            let mut answer = OffsetForLeaderEpochEndOffset {
                                partition: p.partition,
                                ..Default::default()
                            };
                            match self.partition(&t.topic, p.partition) {
                                None => answer.error_code = 3,
                                Some(log) if log.leader != broker => answer.error_code = 6,
                                Some(log) if log.epoch_error(p.current_leader_epoch) != 0 => {
                                    answer.error_code = log.epoch_error(p.current_leader_epoch);
                                }
                                Some(log) => {
                                    let (epoch, end) = log.end_offset_for(p.leader_epoch);
                                    answer.leader_epoch = epoch;
                                    answer.end_offset = end;
                                }
                            }
                            answer
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn fetch(&self, broker: i32, request: &FetchRequest) -> FetchResponse {
        let ignores_max_bytes = self
            .brokers
            .get(&broker)
            .is_some_and(|b| b.ignores_fetch_max_bytes);
        let mut budget = if ignores_max_bytes {
            usize::MAX
        } else {
            request.max_bytes.max(0) as usize
        };
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
                                if log.epoch_error(p.current_leader_epoch) != 0 {
                                    data.error_code = log.epoch_error(p.current_leader_epoch);
                                    return data;
                                }
                                if log.fetch_error != 0 {
                                    data.error_code = log.fetch_error;
                                    return data;
                                }
                                if p.last_fetched_epoch >= 0 {
                                    // Fetch v12+: a leader checks the fetcher's log
                                    // against its own before reading.
                                    let (epoch, end) = log.end_offset_for(p.last_fetched_epoch);
                                    if epoch >= 0
                                        && (epoch < p.last_fetched_epoch || end < p.fetch_offset)
                                    {
                                        data.diverging_epoch = FetchEpochEndOffset {
                                            epoch,
                                            end_offset: end,
                                        };
                                        return data;
                                    }
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

    /// How many connections to broker `id` are open.
    pub fn open_links(&self, id: i32) -> usize {
        self.links.values().filter(|l| l.broker == id).count()
    }

    /// Takes the events seen so far.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The requests of `api` received so far (by any broker), in order.
    pub fn requests(&self, api: ApiKey) -> Vec<Received> {
        self.log
            .iter()
            .filter(|r| r.header.api_key == api.code())
            .cloned()
            .collect()
    }

    /// How many requests of `api` any broker received.
    pub fn count(&self, api: ApiKey) -> usize {
        self.requests(api).len()
    }

    /// The rebalance events waiting for the application (taken).
    pub fn rebalance_events(&mut self) -> Vec<RebalanceEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.consumer.poll_rebalance() {
            out.push(e);
        }
        out
    }
}

macro_rules! typed_requests {
    ($($fn:ident: $variant:ident($ty:ty);)*) => {
        impl Cluster {
            $(
                #[doc = concat!("The `", stringify!($variant), "` requests received, in order.")]
                pub fn $fn(&self) -> Vec<$ty> {
                    self.log
                        .iter()
                        .filter_map(|r| match &r.body {
                            RequestBody::$variant(b) => Some(b.clone()),
                            _ => None,
                        })
                        .collect()
                }
            )*
        }
    };
}

typed_requests! {
    find_coordinators: FindCoordinator(FindCoordinatorRequest);
    joins: JoinGroup(JoinGroupRequest);
    syncs: SyncGroup(SyncGroupRequest);
    heartbeats: Heartbeat(HeartbeatRequest);
    leaves: LeaveGroup(LeaveGroupRequest);
    offset_commits: OffsetCommit(OffsetCommitRequest);
    offset_fetches: OffsetFetch(OffsetFetchRequest);
    offset_for_leader_epochs: OffsetForLeaderEpoch(OffsetForLeaderEpochRequest);
    list_offsets_requests: ListOffsets(ListOffsetsRequest);
    fetch_requests: Fetch(FetchRequest);
}

impl GroupModel {
    /// `0`, or the error the coordinator gives a request from `member_id`
    /// at `generation`.
    pub fn check_member(&self, member_id: &str, generation: i32) -> i16 {
        if !self.members.contains(member_id) {
            ErrorCode::UNKNOWN_MEMBER_ID.0
        } else if generation != self.generation {
            ErrorCode::ILLEGAL_GENERATION.0
        } else {
            0
        }
    }

    /// True if the group has no members (it only stores offsets).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.others.is_empty() && self.leader.is_none()
    }

    fn new_member_id(&mut self, instance: Option<&str>) -> String {
        self.next_member += 1;
        let id = match instance {
            Some(instance) => format!("{instance}-{}", self.next_member),
            None => format!("member-{}", self.next_member),
        };
        self.members.insert(id.clone());
        id
    }

    fn join(&mut self, r: &JoinGroupRequest) -> JoinGroupResponse {
        let member_id = if r.member_id.is_empty() {
            let id = self.new_member_id(r.group_instance_id.as_deref());
            if r.group_instance_id.is_none() && self.require_member_id {
                return JoinGroupResponse {
                    error_code: ErrorCode::MEMBER_ID_REQUIRED.0,
                    member_id: id,
                    ..Default::default()
                };
            }
            id
        } else if self.members.contains(&r.member_id) {
            r.member_id.clone()
        } else {
            return JoinGroupResponse {
                error_code: ErrorCode::UNKNOWN_MEMBER_ID.0,
                ..Default::default()
            };
        };
        // The protocol every member supports, in the joining member's order.
        let Some(protocol) = r.protocols.iter().find(|p| {
            self.others
                .iter()
                .all(|o| o.protocols.iter().any(|(name, _)| *name == p.name))
        }) else {
            return JoinGroupResponse {
                error_code: ErrorCode::INCONSISTENT_GROUP_PROTOCOL.0,
                ..Default::default()
            };
        };
        self.generation += 1;
        let leader = self.leader.clone().unwrap_or_else(|| member_id.clone());
        let members = if leader == member_id {
            let mut members = vec![JoinGroupResponseMember {
                member_id: member_id.clone(),
                group_instance_id: r.group_instance_id.clone(),
                metadata: protocol.metadata.clone(),
            }];
            members.extend(self.others.iter().map(|o| {
                JoinGroupResponseMember {
                    member_id: o.member_id.clone(),
                    group_instance_id: o.instance_id.clone(),
                    metadata: o
                        .protocols
                        .iter()
                        .find(|(name, _)| *name == protocol.name)
                        .map(|(_, m)| m.clone())
                        .unwrap_or_default(),
                }
            }));
            members
        } else {
            Vec::new()
        };
        JoinGroupResponse {
            error_code: 0,
            generation_id: self.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(protocol.name.clone()),
            leader,
            member_id,
            members,
            ..Default::default()
        }
    }

    fn sync(&mut self, r: &SyncGroupRequest) -> SyncGroupResponse {
        let code = self.check_member(&r.member_id, r.generation_id);
        if code != 0 {
            return SyncGroupResponse {
                error_code: code,
                ..Default::default()
            };
        }
        let assignment = if !r.assignments.is_empty() {
            self.leader_assignments = r
                .assignments
                .iter()
                .map(|a| (a.member_id.clone(), a.assignment.clone()))
                .collect();
            self.leader_assignments
                .get(&r.member_id)
                .cloned()
                .unwrap_or_default()
        } else {
            assignment_bytes(&self.assignment)
        };
        SyncGroupResponse {
            protocol_type: r.protocol_type.clone(),
            protocol_name: r.protocol_name.clone(),
            assignment,
            ..Default::default()
        }
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
