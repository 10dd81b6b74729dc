//! The consumer state machine: its public contract, commands and the
//! progress loop; fetching, offset lookups and position validation live in
//! submodules.

mod fetch;
mod membership;
mod memory;
mod offsets;
mod validation;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backoff::{Backoff, Retry};
use crate::config::{ConfigError, ConfigErrorKind, ConsumerConfig, OffsetReset};
use crate::conn::{
    ConnConfig, ConnectionProblem, Connections, InFlight, Io, Node, Outcome, SaslSettings,
};
use crate::error::{Error, Misuse, Operation};
use crate::group::consumer_group::{ConsumerGroup, GroupPurpose};
use crate::metadata::{Leader, Metadata};
use crate::metrics::{ConsumerMetrics, Metrics, PartitionMetrics};
use crate::protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest,
    MetadataResponse, OffsetForLeaderEpochRequest,
    fetch::{FetchPartition, FetchPartitionData, FetchTopic},
    list_offsets::{ListOffsetsPartition, ListOffsetsTopic},
};
use crate::protocol::{ApiKey, DecodeError, ErrorCode, decode_response};
use crate::records::DecodeLimits;
use crate::security::{SecurityContext, SecurityProtocol};
use crate::timer::{Timer, TimerTable};
use crate::types::{
    BrokerAddress, BrokerId, ConnId, ConsumerRecord, ConsumerRecords, OffsetAndTimestamp,
    TopicPartition,
};
use crate::types::{CloseOptions, OffsetAndMetadata};
use fetch::PartitionBuffer;
use memory::{Charge, MemoryLedger};
use offsets::{OffsetsTarget, Query};
use validation::ValidatedPartition;

/// The jitter seed when the configuration fixes none (adapters normally
/// provide one from entropy).
const DEFAULT_SEED: u64 = 0x6f64_7261_6465_6b21;

/// ListOffsets timestamps that mean "the log start" and "the log end".
const EARLIEST_TIMESTAMP: i64 = -2;
const LATEST_TIMESTAMP: i64 = -1;

/// Identifies an offsets query (`beginning_offsets`, `end_offsets`,
/// `offsets_for_times`); its result arrives as [`Event::OffsetsQueryDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// Identifies a commit; its outcome arrives as [`Event::CommitDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitId(pub u64);

/// The answer to a committed-offsets lookup: per partition, the committed
/// offset, or `None` when the group has none.
pub type CommittedResult = Result<BTreeMap<TopicPartition, Option<OffsetAndMetadata>>, Error>;

/// The answer to an offsets query: per partition, the offset found, or
/// `None` when no record matches (a timestamp after the last record).
pub type OffsetsResult = Result<BTreeMap<TopicPartition, Option<OffsetAndTimestamp>>, Error>;

/// Something the application (through its adapter) may want to react to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// [`Consumer::take_records`] has something to return: records, or an
    /// error the application must see.
    PollReady,
    /// A position was resolved (an offset reset finished) or a partition
    /// entered an error state: `position` waiters should look again.
    PositionsChanged,
    /// An offsets query finished.
    OffsetsQueryDone {
        /// The query.
        id: QueryId,
        /// Its outcome.
        result: OffsetsResult,
    },
    /// A connection failed, timed out or sent something unreadable. The
    /// consumer reconnects on its own; this is for logs and metrics.
    ConnectionError {
        /// The broker.
        broker: BrokerAddress,
        /// What happened.
        reason: ConnectionProblem,
    },
    /// A commit finished.
    CommitDone {
        /// The commit.
        id: CommitId,
        /// Its outcome.
        result: Result<(), Error>,
    },
    /// Any commit that sent offsets finished: the application's (after
    /// its [`CommitDone`](Self::CommitDone)) and auto-commits, in the
    /// order they were made, for interceptors and logs.
    Committed {
        /// What it asked to commit.
        offsets: BTreeMap<TopicPartition, OffsetAndMetadata>,
        /// Its outcome.
        result: Result<(), Error>,
    },
    /// A committed-offsets lookup finished.
    CommittedDone {
        /// The lookup.
        id: QueryId,
        /// Its outcome.
        result: CommittedResult,
    },
    /// The consumer finished closing; its adapter can stop driving it.
    Closed,
}

/// Why a request was sent, to route its response.
#[derive(Debug)]
pub(crate) enum Purpose {
    Metadata,
    Fetch {
        broker: BrokerId,
        partitions: Vec<FetchedPartition>,
        /// The most the response may bring, held against the memory bound
        /// until it is handled (or the request is gone).
        reserved: Charge,
    },
    ListOffsets {
        partitions: Vec<(TopicPartition, OffsetsTarget)>,
    },
    /// OffsetForLeaderEpoch, validating positions after a leader change.
    Validation {
        partitions: Vec<ValidatedPartition>,
    },
    /// A request of the consumer group.
    Group(GroupPurpose),
}

#[derive(Debug)]
pub(crate) struct FetchedPartition {
    tp: TopicPartition,
    /// The partition's fence when the fetch went out.
    fence: u64,
    fetch_offset: i64,
    /// The `last_fetched_epoch` sent (-1 for none): a diverging epoch in
    /// the answer is about this epoch.
    last_fetched_epoch: i32,
    /// The leader the fetch went to.
    leader: Leader,
}

/// Where a partition stands.
#[derive(Debug)]
enum Phase {
    /// Consuming from `position`.
    Fetching,
    /// Waiting for the group's committed offset (then the reset policy).
    AwaitingCommitted,
    /// Waiting for a ListOffsets to set the position.
    Resetting { strategy: OffsetReset },
    /// The position is known, but the partition's leader changed (or the
    /// position came with an epoch from elsewhere, a committed offset):
    /// an OffsetForLeaderEpoch must confirm the new leader's log still
    /// holds it before fetching resumes (KIP-320).
    Validating,
    /// No position and `auto.offset.reset` is `none`: the application must seek.
    NeedsSeek,
    /// The position fell outside the log and the policy is `none`.
    OutOfRange { offset: i64 },
    /// The log was truncated below `position` and the policy is `none`;
    /// the partition stays stopped until the application seeks.
    Truncated {
        position: i64,
        /// The first offset known to diverge, if the leader could say.
        divergent_offset: Option<i64>,
        /// Whether a poll has returned the error (it is returned once).
        reported: bool,
    },
    /// A batch at `offset` could not be decoded.
    Corrupt {
        offset: i64,
        error: crate::records::RecordsError,
    },
}

#[derive(Debug)]
struct PartitionState {
    phase: Phase,
    /// The next offset to hand the application.
    position: i64,
    /// Leader epoch of the last record handed out (or found by a reset,
    /// or committed with the position).
    position_epoch: Option<i32>,
    /// The leader (and its epoch) under which the position is known to be
    /// good; metadata naming another means the position must be validated
    /// again. `None` until a leader was seen since the position was set.
    position_leader: Option<Leader>,
    paused: bool,
    /// Bumped by every seek, pause, reset or reassignment: fetched data or
    /// offsets from before it are stale and dropped when they arrive.
    fence: u64,
    buffer: PartitionBuffer,
    /// Where the next fetch starts (after the buffered data).
    fetch_offset: i64,
    /// The epoch the next fetch names as `last_fetched_epoch` (the
    /// position's epoch when `None`).
    last_fetched_epoch: Option<i32>,
    /// A decode error waiting at the end of the buffered data.
    pending_corruption: Option<(i64, crate::records::RecordsError)>,
    /// The partition's Fetch, ListOffsets or OffsetForLeaderEpoch (one at a
    /// time): in flight, and its backoff after a failure.
    retry: Retry,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// The offset the application stored to commit
    /// (`enable.auto.offset.store=false`).
    stored: Option<OffsetAndMetadata>,
    /// The position at which reaching the partition's end was last
    /// reported (`enable.partition.eof`).
    end_reported_at: Option<i64>,
    /// The leader metadata named at the generation kept with it, so scans
    /// over every partition need no map lookup until metadata changes.
    leader_seen: (u64, Option<Leader>),
    /// In [`Consumer::ready`] (perhaps with a stale entry, skipped there).
    queued: bool,
}

/// How a leader's recent fetches went. Each fetch in a row that fails
/// before its response is complete halves what the next one asks for (a
/// link that breaks every few hundred kilobytes still lets small responses
/// through); every [`FetchHealth::GROW_AFTER`] complete responses double it
/// back.
#[derive(Debug, Default, Clone, Copy)]
struct FetchHealth {
    /// How many times the request budget is halved.
    shrink: u32,
    /// Complete responses since the last change.
    good: u32,
}

impl FetchHealth {
    const MAX_SHRINK: u32 = 10;
    const GROW_AFTER: u32 = 4;
}

/// Which rare phases some partition is in, as of the last full scan. A
/// flag may stay set after its partition moved on (that costs a scan); it
/// is never clear while one is there.
#[derive(Debug, Default, Clone, Copy)]
struct PhaseSummary {
    awaiting_committed: bool,
    /// Needs a seek, out of range, corrupt, or truncated.
    stopped: bool,
}

impl PartitionState {
    /// The application has every record up to the partition's end (the
    /// high watermark, or the last stable offset with `read_committed`)
    /// and has not been told at this position yet.
    fn end_unreported(&self, isolation: crate::IsolationLevel) -> bool {
        let end = match isolation {
            crate::IsolationLevel::ReadCommitted => self.last_stable_offset,
            crate::IsolationLevel::ReadUncommitted => self.high_watermark,
        };
        !self.paused
            && matches!(self.phase, Phase::Fetching)
            && !self.buffer.has_records()
            && end >= 0
            && self.position >= end
            && self.end_reported_at != Some(self.position)
    }

    /// Whether the partition has buffered batches to deliver or pass.
    fn can_deliver(&self) -> bool {
        !self.paused && matches!(self.phase, Phase::Fetching) && !self.buffer.is_empty()
    }

    /// Whether the last fetch found nothing after `fetch_offset` (the high
    /// watermark is known and reached).
    fn caught_up(&self) -> bool {
        self.high_watermark >= 0 && self.fetch_offset >= self.high_watermark
    }

    fn new(tp: &TopicPartition, reset: OffsetReset) -> Self {
        Self {
            phase: reset_phase(reset),
            position: -1,
            position_epoch: None,
            position_leader: None,
            paused: false,
            fence: 0,
            buffer: PartitionBuffer::default(),
            fetch_offset: -1,
            last_fetched_epoch: None,
            pending_corruption: None,
            retry: Retry::new(Timer::PartitionRetry(tp.clone())),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            stored: None,
            end_reported_at: None,
            leader_seen: (u64::MAX, None),
            queued: false,
        }
    }

    /// The partition's leader per `metadata`, at its `generation`.
    fn leader(
        &mut self,
        tp: &TopicPartition,
        metadata: &Metadata,
        generation: u64,
    ) -> Option<Leader> {
        if self.leader_seen.0 != generation {
            self.leader_seen = (generation, metadata.leader(tp));
        }
        self.leader_seen.1
    }
}

fn reset_phase(strategy: OffsetReset) -> Phase {
    match strategy {
        OffsetReset::None => Phase::NeedsSeek,
        strategy => Phase::Resetting { strategy },
    }
}

/// A Kafka consumer with no I/O: the sans-IO heart of every adapter.
///
/// # The contract
///
/// The consumer never touches a socket, reads a clock or spawns a thread.
/// Its adapter moves bytes and time in and out. Every method is one of:
///
/// - **Inputs**, from the network and the clock (each takes `now`, the time
///   as the adapter read it):
///   [`handle_connected`](Self::handle_connected),
///   [`handle_connect_failed`](Self::handle_connect_failed),
///   [`handle_received`](Self::handle_received) (bytes from a connection,
///   cut anywhere), [`handle_disconnected`](Self::handle_disconnected), and
///   [`handle_timeout`](Self::handle_timeout) once the deadline from
///   `poll_timeout` has passed.
/// - **Commands**, from the application (each takes `now` too):
///   [`assign`](Self::assign), [`subscribe`](Self::subscribe),
///   [`subscribe_pattern`](Self::subscribe_pattern),
///   [`unsubscribe`](Self::unsubscribe), [`seek`](Self::seek),
///   [`seek_to_beginning`](Self::seek_to_beginning),
///   [`seek_to_end`](Self::seek_to_end), [`pause`](Self::pause),
///   [`resume`](Self::resume), [`position`](Self::position),
///   [`beginning_offsets`](Self::beginning_offsets),
///   [`end_offsets`](Self::end_offsets),
///   [`offsets_for_times`](Self::offsets_for_times),
///   [`commit`](Self::commit), [`committed`](Self::committed),
///   [`take_records`](Self::take_records) (and
///   [`take_records_up_to`](Self::take_records_up_to)),
///   [`close`](Self::close) and [`close_gracefully`](Self::close_gracefully).
/// - **The rebalance pair**: when a group rebalances, the application's
///   listener takes [`poll_rebalance`](Self::poll_rebalance) until `None`
///   (assigned, revoked, lost), then calls
///   [`ack_rebalance`](Self::ack_rebalance); the rebalance waits for it, so
///   a commit made in between covers the revoked partitions.
/// - **Outputs**, pulled by the adapter: [`poll_io`](Self::poll_io)
///   (connections to open, bytes to write, connections to close, in
///   order), [`poll_event`](Self::poll_event) (records ready, answers to
///   queries and commits, connection problems, closed), and
///   [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout`;
///   never a time at or before the `now` of the last input).
/// - **Queries**, which change nothing: [`assignment`](Self::assignment),
///   [`paused`](Self::paused), [`subscription`](Self::subscription),
///   [`group_metadata`](Self::group_metadata),
///   [`has_pending`](Self::has_pending), [`config`](Self::config), ...
///
/// **Every input or command must be followed by a full drain of the
/// outputs**: `poll_io` until `None`, `poll_event` until `None`, then
/// `poll_timeout`, and sleep until that deadline or the next input.
/// Nothing the consumer wants done happens otherwise. The whole drive loop
/// of an adapter, with the network and the clock left abstract:
///
/// ```
/// use std::time::Instant;
/// use odradek_core::{ConnId, Consumer, Event, Io};
///
/// /// What an adapter's runtime provides (sockets, a clock, a timer).
/// trait Network {
///     fn act(&mut self, io: Io);
///     /// Waits for the next thing that happens, or until `deadline`.
///     fn wait(&mut self, deadline: Option<Instant>) -> Happened;
///     fn now(&self) -> Instant;
/// }
///
/// enum Happened {
///     Connected(ConnId),
///     ConnectFailed(ConnId, String),
///     Received(ConnId, Vec<u8>),
///     Disconnected(ConnId),
///     TimedOut,
/// }
///
/// fn drive(consumer: &mut Consumer, net: &mut impl Network) {
///     loop {
///         // The full drain, after every input.
///         while let Some(io) = consumer.poll_io() {
///             net.act(io);
///         }
///         while let Some(event) = consumer.poll_event() {
///             if event == Event::Closed {
///                 return;
///             }
///             // ... wake whoever waits for records, answers, commits.
///         }
///         let deadline = consumer.poll_timeout();
///         let happened = net.wait(deadline);
///         let now = net.now();
///         match happened {
///             Happened::Connected(conn) => consumer.handle_connected(conn, now),
///             Happened::ConnectFailed(conn, why) => {
///                 consumer.handle_connect_failed(conn, &why, now)
///             }
///             Happened::Received(conn, bytes) => consumer.handle_received(conn, &bytes, now),
///             Happened::Disconnected(conn) => consumer.handle_disconnected(conn, now),
///             // Any input also fires the timers that expired before it,
///             // so a steady stream of inputs cannot starve them.
///             Happened::TimedOut => consumer.handle_timeout(now),
///         }
///     }
/// }
/// ```
///
/// The consumer is deterministic: the same inputs at the same times give
/// the same outputs (backoff jitter comes from
/// [`ConsumerConfig::random_seed`]). Its deadlines live in one timer table,
/// and every input first fires the timers that expired.
///
/// Records are fetched ahead of the application (one Fetch per leader
/// broker in flight while the buffer has room) and buffered here, bounded by
/// [`ConsumerConfig::fetch_buffer_max_bytes`] in decompressed bytes. A seek,
/// pause or unassignment drops that partition's buffered and in-flight
/// records at once: no record from before it is ever returned.
///
/// Positions carry the leader epoch of the record before them (KIP-320).
/// When a partition's leader changes, or a committed offset with an epoch
/// becomes its position, fetching waits until an OffsetForLeaderEpoch
/// confirms the leader still has the log up to the position (leaders
/// without OffsetForLeaderEpoch v3 are trusted instead). If the log was
/// truncated below it (an unclean leader election), the position moves to
/// the first divergent offset, or, with `auto.offset.reset` none, one
/// [`take_records`](Self::take_records) returns [`Error::LogTruncation`]
/// and the partition stays stopped until the application seeks. A Fetch
/// that reports a diverging epoch is judged the same way.
#[derive(Debug)]
pub struct Consumer {
    config: ConsumerConfig,
    now: Instant,
    /// Every deadline: request timeouts, backoffs, group timers.
    timers: TimerTable,
    retry_backoff: Backoff,
    limits: DecodeLimits,
    conns: Connections<Purpose>,
    metadata: Metadata,
    partitions: BTreeMap<TopicPartition, PartitionState>,
    /// Brokers with a fetch in flight (one per broker).
    fetching_from: HashSet<BrokerId>,
    /// Per leader, the last partition its latest fetch carried.
    fetch_cursor: BTreeMap<BrokerId, TopicPartition>,
    /// Per leader, how its recent fetches went.
    fetch_health: BTreeMap<BrokerId, FetchHealth>,
    /// What the fetched data holds against the memory bound.
    memory: MemoryLedger,
    /// What fetches in flight may bring, reserved against the bound.
    reserved: MemoryLedger,
    queries: BTreeMap<QueryId, Query>,
    next_query: u64,
    events: VecDeque<Event>,
    /// An error for the next `take_records` (non-sticky).
    poll_error: Option<Error>,
    /// Why the consumer stopped: a fatal error, or [`Error::Closed`] once
    /// closed. Every later command returns it; only errors whose
    /// [`Error::is_fatal`] is true get here.
    stopped: Option<Error>,
    poll_ready_signalled: bool,
    /// Something happened that may need a request for some partition (a
    /// command, a response, a timer): the next step scans every partition.
    /// Steps after bytes that completed no response, or after a poll,
    /// skip those scans, so their cost does not grow with the partitions.
    scan_due: bool,
    /// What the last scan found, for the steps that skip it.
    summary: PhaseSummary,
    /// Partitions with buffered batches, in the order they take turns
    /// delivering records.
    ready: VecDeque<TopicPartition>,
    /// Counters and windows for [`metrics`](Self::metrics).
    meters: crate::metrics::Meters,
    /// Membership, commits and committed offsets, with `group.id` set.
    group: Option<ConsumerGroup>,
}

impl Consumer {
    /// A consumer with `config`, created at `now`, for a plaintext
    /// cluster. A `security.protocol` other than `PLAINTEXT` needs
    /// [`with_security`](Self::with_security).
    pub fn new(config: ConsumerConfig, now: Instant) -> Result<Self, Error> {
        if config.security_protocol != SecurityProtocol::Plaintext {
            return Err(Error::Config(ConfigError {
                key: "security.protocol".into(),
                kind: ConfigErrorKind::InvalidValue {
                    value: config.security_protocol.name().into(),
                    expected: "PLAINTEXT for a consumer without a SecurityContext \
                               (Consumer::with_security takes one)"
                        .into(),
                },
            }));
        }
        Self::create(config, None, now)
    }

    /// A consumer with `config` and what its security protocol needs from
    /// outside the core (TLS material, randomness, the wall clock),
    /// created at `now`. The client layer builds `security` from the
    /// config's `ssl.*` settings.
    pub fn with_security(
        config: ConsumerConfig,
        security: SecurityContext,
        now: Instant,
    ) -> Result<Self, Error> {
        if config.security_protocol.uses_tls() && security.tls.is_none() {
            return Err(Error::Config(ConfigError {
                key: "security.protocol".into(),
                kind: ConfigErrorKind::InvalidValue {
                    value: config.security_protocol.name().into(),
                    expected: "a SecurityContext with TLS material for a TLS protocol".into(),
                },
            }));
        }
        Self::create(config, Some(security), now)
    }

    fn create(
        config: ConsumerConfig,
        security: Option<SecurityContext>,
        now: Instant,
    ) -> Result<Self, Error> {
        config.validate()?;
        let sasl = config
            .security_protocol
            .uses_sasl()
            .then(|| SaslSettings::from_config(&config.sasl))
            .flatten();
        // TLS only where the protocol asks for it, whatever the context holds.
        let security = security.map(|mut s| {
            if !config.security_protocol.uses_tls() {
                s.tls = None;
            }
            s
        });
        let seed = config.random_seed.unwrap_or(DEFAULT_SEED);
        let conn_config = ConnConfig {
            client_id: config.client_id.clone(),
            max_in_flight: config.max_in_flight_requests_per_connection,
            request_timeout: config.request_timeout,
            setup_timeout: config.connection_setup_timeout,
            max_frame_size: config.max_response_size,
            max_idle: config.connections_max_idle,
            reconnect_backoff: Backoff::new(
                config.reconnect_backoff,
                config.reconnect_backoff_max,
                seed ^ 0x5eed,
            ),
            required: vec![ApiKey::Metadata, ApiKey::Fetch, ApiKey::ListOffsets],
            security,
            sasl,
        };
        Ok(Self {
            timers: TimerTable::new(now),
            retry_backoff: Backoff::new(config.retry_backoff, config.retry_backoff_max, seed),
            limits: DecodeLimits::default()
                .with_max_decompressed_bytes(config.max_decompressed_batch_bytes)
                .with_crc_check(config.check_crcs),
            conns: Connections::new(conn_config),
            metadata: Metadata::new(
                config.metadata_max_age,
                config.allow_auto_create_topics,
                config.exclude_internal_topics,
            ),
            partitions: BTreeMap::new(),
            fetching_from: HashSet::new(),
            fetch_cursor: BTreeMap::new(),
            fetch_health: BTreeMap::new(),
            memory: MemoryLedger::default(),
            reserved: MemoryLedger::default(),
            queries: BTreeMap::new(),
            next_query: 1,
            events: VecDeque::new(),
            poll_error: None,
            stopped: None,
            poll_ready_signalled: false,
            scan_due: true,
            summary: PhaseSummary::default(),
            ready: VecDeque::new(),
            meters: crate::metrics::Meters::default(),
            group: config
                .group_id
                .clone()
                .map(|id| ConsumerGroup::new(&config, id)),
            now,
            config,
        })
    }

    /// The configuration this consumer runs with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    // ---- inputs -------------------------------------------------------

    /// The adapter opened connection `conn`.
    pub fn handle_connected(&mut self, conn: ConnId, now: Instant) {
        self.conns.handle_connected(conn, now, &mut self.timers);
        self.progress(now);
    }

    /// The adapter could not open connection `conn`.
    pub fn handle_connect_failed(&mut self, conn: ConnId, reason: &str, now: Instant) {
        self.conns
            .handle_connect_failed(conn, reason, now, &mut self.timers);
        self.progress(now);
    }

    /// Bytes arrived on `conn`, cut anywhere.
    pub fn handle_received(&mut self, conn: ConnId, data: &[u8], now: Instant) {
        self.conns
            .handle_received(conn, data, now, &mut self.timers);
        self.step(now);
    }

    /// Connection `conn` closed or broke.
    pub fn handle_disconnected(&mut self, conn: ConnId, now: Instant) {
        self.conns.handle_disconnected(conn, now, &mut self.timers);
        self.progress(now);
    }

    /// The deadline from [`poll_timeout`](Self::poll_timeout) passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.progress(now);
    }

    // ---- outputs ------------------------------------------------------

    /// The next thing the adapter must do with a connection.
    #[must_use]
    pub fn poll_io(&mut self) -> Option<Io> {
        self.conns.poll_io()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When the consumer next needs [`handle_timeout`](Self::handle_timeout),
    /// or `None` if only an input can make it act.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopped.is_some() {
            return None;
        }
        self.timers.next()
    }

    // ---- commands -----------------------------------------------------

    /// Replaces the assignment with `partitions` (manual assignment, no
    /// group). Partitions kept keep their position and buffer; new ones
    /// start from `auto.offset.reset`.
    pub fn assign(
        &mut self,
        partitions: impl IntoIterator<Item = TopicPartition>,
        now: Instant,
    ) -> Result<(), Error> {
        self.check_usable()?;
        if self.is_subscribed() {
            return Err(Error::InvalidArgument(Misuse::AssignWhileSubscribed));
        }
        let wanted: BTreeSet<TopicPartition> = partitions.into_iter().collect();
        if let Some(tp) = wanted
            .iter()
            .find(|tp| tp.topic().is_empty() || tp.partition() < 0)
        {
            return Err(Error::InvalidArgument(Misuse::InvalidPartition(tp.clone())));
        }
        let removed: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|tp| !wanted.contains(*tp))
            .cloned()
            .collect();
        for tp in removed {
            if let Some(mut state) = self.partitions.remove(&tp) {
                state.buffer.clear();
                state.retry.cancel(&mut self.timers);
            }
        }
        for tp in &wanted {
            if !self.partitions.contains_key(tp) {
                let state = self.new_partition_state(tp);
                self.partitions.insert(tp.clone(), state);
            }
        }
        self.update_wanted_metadata();
        self.note_needs_seek();
        self.progress(now);
        Ok(())
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.partitions.keys().cloned().collect()
    }

    /// Tells metadata which partitions matter: the assigned ones and those
    /// of pending offset queries.
    fn update_wanted_metadata(&mut self) {
        let mut wanted: BTreeSet<TopicPartition> = self.partitions.keys().cloned().collect();
        for query in self.queries.values() {
            wanted.extend(query.pending.keys().cloned());
        }
        self.metadata.set_wanted(wanted);
        let mut topics: BTreeSet<Arc<str>> = BTreeSet::new();
        if let Some(group) = &self.group {
            topics.extend(group.interest());
        }
        self.metadata.set_wanted_topics(topics);
    }

    /// True while subscribed to topics through a group.
    fn is_subscribed(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(ConsumerGroup::is_subscribed)
    }

    /// Makes `offset` the next record `poll` returns for `tp`, dropping
    /// anything fetched from before.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64, now: Instant) -> Result<(), Error> {
        self.check_usable()?;
        if offset < 0 {
            return Err(Error::InvalidArgument(Misuse::NegativeOffset {
                partition: tp.clone(),
                offset,
            }));
        }
        let state = self
            .partitions
            .get_mut(tp)
            .ok_or_else(|| not_assigned(tp))?;
        Self::restart(state, Phase::Fetching, &mut self.timers);
        state.position = offset;
        state.position_epoch = None;
        state.fetch_offset = offset;
        self.events.push_back(Event::PositionsChanged);
        self.progress(now);
        Ok(())
    }

    /// Moves each partition to the start of its log (resolved lazily); no
    /// partitions means every assigned partition (as Java and
    /// kafka-python).
    pub fn seek_to_beginning(
        &mut self,
        partitions: &[TopicPartition],
        now: Instant,
    ) -> Result<(), Error> {
        self.seek_to(partitions, OffsetReset::Earliest, now)
    }

    /// Moves each partition to the end of its log (resolved lazily); no
    /// partitions means every assigned partition.
    pub fn seek_to_end(
        &mut self,
        partitions: &[TopicPartition],
        now: Instant,
    ) -> Result<(), Error> {
        self.seek_to(partitions, OffsetReset::Latest, now)
    }

    fn seek_to(
        &mut self,
        partitions: &[TopicPartition],
        strategy: OffsetReset,
        now: Instant,
    ) -> Result<(), Error> {
        self.check_usable()?;
        let all: Vec<TopicPartition>;
        let partitions = if partitions.is_empty() {
            all = self.partitions.keys().cloned().collect();
            &all
        } else {
            partitions
        };
        for tp in partitions {
            self.assigned_mut(tp)?;
        }
        for tp in partitions {
            let Some(state) = self.partitions.get_mut(tp) else {
                continue;
            };
            Self::restart(state, reset_phase(strategy), &mut self.timers);
        }
        self.progress(now);
        Ok(())
    }

    /// The next offset `poll` will return for `tp`, or `None` while it is
    /// still being resolved (an offset reset in flight). Errors if the
    /// partition cannot get a position without the application's help.
    pub fn position(&mut self, tp: &TopicPartition, now: Instant) -> Result<Option<i64>, Error> {
        self.check_usable()?;
        let Some(state) = self.partitions.get_mut(tp) else {
            return Err(not_assigned(tp));
        };
        let result = match &state.phase {
            Phase::Fetching => {
                // Skipped batches (control, aborted) at the front move the
                // position without any record to deliver.
                state
                    .buffer
                    .skip_empty(&mut state.position, &mut state.position_epoch);
                Ok(Some(state.position))
            }
            // A position being validated may still move (truncation).
            Phase::Resetting { .. } | Phase::AwaitingCommitted | Phase::Validating => Ok(None),
            Phase::NeedsSeek => Err(Error::NoOffsetForPartition {
                partitions: vec![tp.clone()],
            }),
            Phase::OutOfRange { offset } => Err(Error::OffsetOutOfRange {
                partitions: vec![(tp.clone(), *offset)],
            }),
            Phase::Truncated {
                position,
                divergent_offset,
                ..
            } => Err(Error::LogTruncation {
                partition: tp.clone(),
                position: *position,
                divergent_offset: *divergent_offset,
            }),
            Phase::Corrupt { offset, error } => Err(Error::CorruptRecord {
                partition: tp.clone(),
                offset: *offset,
                source: error.clone(),
            }),
        };
        self.progress(now);
        result
    }

    /// Stops fetching `partitions` and drops what was fetched for them;
    /// their positions stay.
    pub fn pause(&mut self, partitions: &[TopicPartition], now: Instant) -> Result<(), Error> {
        self.check_usable()?;
        let all: Vec<TopicPartition>;
        let partitions = if partitions.is_empty() {
            all = self.partitions.keys().cloned().collect();
            &all
        } else {
            partitions
        };
        for tp in partitions {
            self.assigned_mut(tp)?;
        }
        for tp in partitions {
            let Some(state) = self.partitions.get_mut(tp) else {
                continue;
            };
            if state.paused {
                continue;
            }
            state.paused = true;
            state.fence += 1;
            state.retry.settled();
            state.buffer.clear();
            state.pending_corruption = None;
            state.fetch_offset = state.position;
        }
        self.progress(now);
        Ok(())
    }

    /// Resumes fetching `partitions` from their positions.
    pub fn resume(&mut self, partitions: &[TopicPartition], now: Instant) -> Result<(), Error> {
        self.check_usable()?;
        for tp in partitions {
            self.assigned_mut(tp)?;
        }
        for tp in partitions {
            if let Some(state) = self.partitions.get_mut(tp) {
                state.paused = false;
            }
        }
        self.progress(now);
        Ok(())
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Starts looking up the first offset of each partition.
    pub fn beginning_offsets(
        &mut self,
        partitions: &[TopicPartition],
        timeout: Duration,
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.start_query(
            partitions.iter().map(|tp| (tp.clone(), EARLIEST_TIMESTAMP)),
            timeout,
            now,
        )
    }

    /// Starts looking up the end offset of each partition (the high
    /// watermark, or the last stable offset with read_committed).
    pub fn end_offsets(
        &mut self,
        partitions: &[TopicPartition],
        timeout: Duration,
        now: Instant,
    ) -> Result<QueryId, Error> {
        self.start_query(
            partitions.iter().map(|tp| (tp.clone(), LATEST_TIMESTAMP)),
            timeout,
            now,
        )
    }

    /// Starts looking up, per partition, the first offset whose timestamp is
    /// at or after the given one (milliseconds since the epoch).
    pub fn offsets_for_times(
        &mut self,
        timestamps: impl IntoIterator<Item = (TopicPartition, i64)>,
        timeout: Duration,
        now: Instant,
    ) -> Result<QueryId, Error> {
        let timestamps: Vec<(TopicPartition, i64)> = timestamps.into_iter().collect();
        if let Some((tp, ts)) = timestamps.iter().find(|(_, ts)| *ts < 0) {
            return Err(Error::InvalidArgument(Misuse::NegativeTimestamp {
                partition: tp.clone(),
                timestamp: *ts,
            }));
        }
        self.start_query(timestamps, timeout, now)
    }

    /// Takes up to `max.poll.records` buffered records, fairly across
    /// partitions, or the error the application must see first. Never
    /// waits: an empty result means nothing is buffered yet.
    pub fn take_records(&mut self, now: Instant) -> Result<ConsumerRecords, Error> {
        self.take_records_up_to(self.config.max_poll_records, now)
    }

    /// Like [`take_records`](Self::take_records) with a smaller limit (at
    /// most `max.poll.records`): `recv`-style one-at-a-time delivery.
    pub fn take_records_up_to(
        &mut self,
        max: usize,
        now: Instant,
    ) -> Result<ConsumerRecords, Error> {
        self.check_usable()?;
        self.poll_ready_signalled = false;
        self.with_group(now, |g, ctx| g.on_poll(ctx));
        if self.group.as_ref().is_some_and(ConsumerGroup::has_events) {
            // The listener hears of the rebalance before any record.
            self.progress(now);
            return Ok(ConsumerRecords::from_vec(Vec::new()));
        }
        if let Some(e) = self.poll_error.take() {
            self.progress(now);
            return Err(e);
        }
        if self.summary.stopped {
            if let Some(e) = self.take_truncation() {
                self.progress(now);
                return Err(e);
            }
            if let Some(e) = self.blocking_error() {
                return Err(e);
            }
        }
        let max = max.clamp(1, self.config.max_poll_records);
        let mut out: Vec<ConsumerRecord> = Vec::new();
        self.take_turns(max, &mut out);
        if out.is_empty() {
            if let Some(e) = self.poll_error.take() {
                self.progress(now);
                return Err(e);
            }
        }
        let bytes: usize = out
            .iter()
            .map(|r| r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len))
            .sum();
        self.meters.consumed(out.len(), bytes, now);
        let mut reached_end = Vec::new();
        if self.config.enable_partition_eof {
            let isolation = self.config.isolation_level;
            for (tp, state) in &mut self.partitions {
                if state.end_unreported(isolation) {
                    state.end_reported_at = Some(state.position);
                    reached_end.push(tp.clone());
                }
            }
        }
        self.step(now);
        Ok(ConsumerRecords::new(out, reached_end))
    }

    /// True when `take_records` would return records or an error now.
    pub fn has_pending(&self) -> bool {
        self.poll_error.is_some()
            || self.stopped.is_some()
            || self.group.as_ref().is_some_and(ConsumerGroup::wants_poll)
            || (self.summary.stopped
                && (self.blocking_error().is_some()
                    || self.partitions.values().any(|s| {
                        matches!(
                            s.phase,
                            Phase::Truncated {
                                reported: false,
                                ..
                            }
                        )
                    })))
            || self.ready.iter().any(|tp| {
                self.partitions
                    .get(tp)
                    .is_some_and(|s| s.can_deliver() && s.buffer.has_records())
            })
            || (self.config.enable_partition_eof
                && self
                    .partitions
                    .values()
                    .any(|s| s.end_unreported(self.config.isolation_level)))
    }

    fn take_truncation(&mut self) -> Option<Error> {
        self.partitions.iter_mut().find_map(|(tp, state)| {
            let Phase::Truncated {
                position,
                divergent_offset,
                reported,
            } = &mut state.phase
            else {
                return None;
            };
            if *reported {
                return None;
            }
            *reported = true;
            Some(Error::LogTruncation {
                partition: tp.clone(),
                position: *position,
                divergent_offset: *divergent_offset,
            })
        })
    }

    /// An error that holds back every poll until the application acts.
    fn blocking_error(&self) -> Option<Error> {
        let mut needs_seek = Vec::new();
        let mut out_of_range = Vec::new();
        for (tp, state) in &self.partitions {
            match &state.phase {
                Phase::NeedsSeek => needs_seek.push(tp.clone()),
                Phase::OutOfRange { offset } => out_of_range.push((tp.clone(), *offset)),
                Phase::Corrupt { offset, error } => {
                    return Some(Error::CorruptRecord {
                        partition: tp.clone(),
                        offset: *offset,
                        source: error.clone(),
                    });
                }
                // A truncation is reported once (`take_truncation`), then
                // only its partition stays stopped.
                Phase::Truncated { .. }
                | Phase::Fetching
                | Phase::Resetting { .. }
                | Phase::AwaitingCommitted
                | Phase::Validating => {}
            }
        }
        if !out_of_range.is_empty() {
            return Some(Error::OffsetOutOfRange {
                partitions: out_of_range,
            });
        }
        (!needs_seek.is_empty()).then_some(Error::NoOffsetForPartition {
            partitions: needs_seek,
        })
    }

    /// Closes at once: every connection closes and pending queries fail.
    /// The consumer cannot be used afterwards. A group member neither
    /// commits nor leaves; see [`close_gracefully`](Self::close_gracefully).
    pub fn close(&mut self, now: Instant) {
        self.finish_close(now);
    }

    /// Closes like the Java client: a group member auto-commits what was
    /// delivered (if enabled), revokes its partitions and leaves the group
    /// (dynamic members), waiting at most `timeout` for that; then closes.
    /// [`Event::Closed`] says when it is done.
    pub fn close_gracefully(&mut self, timeout: Duration, now: Instant) {
        self.close_with(CloseOptions::new().timeout(timeout), now);
    }

    /// Like [`close_gracefully`](Self::close_gracefully) with `options`:
    /// the group's part may take at most their timeout, and
    /// [`CloseOptions::without_commit`] skips the final auto-commit (the
    /// member still revokes and leaves).
    pub fn close_with(&mut self, options: CloseOptions, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.now = now;
        let deadline = now + options.close_timeout();
        let commit = options.commits();
        let closing = self.stopped.is_none()
            && self
                .with_group(now, |g, ctx| g.begin_close(deadline, commit, ctx))
                .unwrap_or(false);
        if closing {
            self.progress(now);
        } else {
            self.finish_close(now);
        }
    }

    fn finish_close(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        self.now = now;
        self.stopped = Some(Error::Closed);
        self.conns.close_all();
        self.timers.clear();
        for (id, _) in std::mem::take(&mut self.queries) {
            self.events.push_back(Event::OffsetsQueryDone {
                id,
                result: Err(Error::Closed),
            });
        }
        for state in self.partitions.values_mut() {
            state.buffer.clear();
        }
        self.with_group(now, |g, ctx| g.fail_requests(ctx, &Error::Closed));
        self.events.push_back(Event::Closed);
    }

    /// True once [`close`](Self::close) ran.
    pub fn is_closed(&self) -> bool {
        matches!(self.stopped, Some(Error::Closed))
    }

    /// Bytes the fetched data holds against the memory bound
    /// ([`ConsumerConfig::fetch_buffer_max_bytes`]): fetch responses kept
    /// for their buffered records, and the decompressed records of batches
    /// being delivered. The bound also counts, on top, the most that the
    /// fetches in flight may bring.
    pub fn buffered_bytes(&self) -> usize {
        self.memory.in_use()
    }

    /// The high watermark last reported for `tp` by a fetch, if any.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions
            .get(tp)
            .map(|s| s.high_watermark)
            .filter(|&hw| hw >= 0)
    }

    /// How many records `tp` has after the position (Java's
    /// `currentLag`): the high watermark (the last stable offset with
    /// `read_committed`) from the last fetch response, minus the position.
    /// `None` while either is unknown; no request is made for it.
    pub fn lag(&self, tp: &TopicPartition) -> Option<i64> {
        let state = self.partitions.get(tp)?;
        if !matches!(state.phase, Phase::Fetching) || state.position < 0 {
            return None;
        }
        let end = match self.config.isolation_level {
            crate::IsolationLevel::ReadCommitted => state.last_stable_offset,
            crate::IsolationLevel::ReadUncommitted => state.high_watermark,
        };
        (end >= 0).then(|| (end - state.position).max(0))
    }

    /// A snapshot of the consumer's metrics at `now` (see
    /// [`metrics`](crate::metrics) for the fields and their Java names).
    /// Cheap: no request, no clock read; call it as often as you like.
    pub fn metrics(&self, now: Instant) -> Metrics {
        let isolation = self.config.isolation_level;
        let partitions: BTreeMap<TopicPartition, PartitionMetrics> = self
            .partitions
            .iter()
            .map(|(tp, s)| {
                let (buffered_records, buffered_bytes) = s.buffer.size();
                let end = match isolation {
                    crate::IsolationLevel::ReadCommitted => s.last_stable_offset,
                    crate::IsolationLevel::ReadUncommitted => s.high_watermark,
                };
                let position =
                    (matches!(s.phase, Phase::Fetching) && s.position >= 0).then_some(s.position);
                let metrics = PartitionMetrics {
                    position,
                    committed: self.group.as_ref().and_then(|g| g.known_committed(tp)),
                    high_watermark: (s.high_watermark >= 0).then_some(s.high_watermark),
                    last_stable_offset: (s.last_stable_offset >= 0).then_some(s.last_stable_offset),
                    lag: position.filter(|_| end >= 0).map(|p| (end - p).max(0)),
                    buffered_records,
                    buffered_bytes,
                    paused: s.paused,
                };
                (tp.clone(), metrics)
            })
            .collect();
        let m = &self.meters;
        let (conns, connection_count, requests_in_flight) = self.conns.stats();
        let consumer = ConsumerMetrics {
            records_consumed_total: m.records_consumed_total,
            records_consumed_rate: m.records_consumed.rate(now),
            bytes_consumed_total: m.bytes_consumed_total,
            bytes_consumed_rate: m.bytes_consumed.rate(now),
            records_lag_max: partitions.values().filter_map(|p| p.lag).max(),
            fetch_total: m.fetch_total,
            fetch_failed_total: m.fetch_failed_total,
            fetch_shrunk_brokers: self.fetch_health.values().filter(|h| h.shrink > 0).count(),
            fetch_rate: m.fetch_latency.count_rate(now),
            fetch_latency_avg: m.fetch_latency.avg_duration(now),
            fetch_latency_max: m.fetch_latency.max_duration(now),
            fetch_size_avg: m.fetch_size.avg(now),
            fetch_size_max: m.fetch_size.max(now).map(|b| b as u64),
            buffered_bytes: self.memory.in_use(),
            fetch_reserved_bytes: self.reserved.in_use(),
            buffer_max_bytes: self.config.fetch_buffer_max_bytes,
            connection_count,
            connection_creation_total: conns.created,
            connection_close_total: conns.closed,
            requests_in_flight,
            request_timeouts_total: conns.request_timeouts,
            last_poll_ago: crate::metrics::ago(m.last_poll, now),
            max_poll_interval: self.config.max_poll_interval,
            interceptor_panics_total: 0,
        };
        Metrics {
            partitions,
            consumer,
            group: self.group.as_ref().map(|g| g.metrics(now)),
        }
    }

    /// The last stable offset last reported for `tp` by a fetch, if any.
    pub fn last_stable_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.partitions
            .get(tp)
            .map(|s| s.last_stable_offset)
            .filter(|&o| o >= 0)
    }

    // ---- internals ----------------------------------------------------

    fn check_usable(&self) -> Result<(), Error> {
        if let Some(e) = &self.stopped {
            return Err(e.clone());
        }
        if self.group.as_ref().is_some_and(ConsumerGroup::is_closing) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn assigned_mut(&mut self, tp: &TopicPartition) -> Result<&mut PartitionState, Error> {
        self.partitions.get_mut(tp).ok_or_else(|| not_assigned(tp))
    }

    /// Invalidates a partition's fetched and in-flight data and moves it to
    /// `phase`.
    fn restart(state: &mut PartitionState, phase: Phase, timers: &mut TimerTable) {
        state.fence += 1;
        state.phase = phase;
        state.pending_corruption = None;
        state.retry.reset(timers);
        state.last_fetched_epoch = None;
        // Whatever position comes next has not been seen under any leader.
        state.position_leader = None;
        state.buffer.clear();
    }

    fn note_needs_seek(&mut self) {
        if self
            .partitions
            .values()
            .any(|s| matches!(s.phase, Phase::NeedsSeek))
        {
            self.signal_poll_ready();
        }
    }

    fn signal_poll_ready(&mut self) {
        if !self.poll_ready_signalled {
            self.poll_ready_signalled = true;
            self.events.push_back(Event::PollReady);
        }
    }

    /// A connection to `broker` that can take a request now (opening one
    /// if there is none), with the broker's address; `None` while it
    /// connects, is busy, or is unknown to metadata.
    fn sendable_conn(&mut self, broker: BrokerId, now: Instant) -> Option<(ConnId, BrokerAddress)> {
        let address = self.metadata.broker(broker).cloned()?;
        let conn = self
            .conns
            .ready(Node::Broker(broker), &address, now, &mut self.timers)?;
        self.conns.can_send(conn, now).then_some((conn, address))
    }

    /// Reacts to everything the connections reported, then sends whatever
    /// is due. Called after every input and command.
    fn progress(&mut self, now: Instant) {
        self.scan_due = true;
        self.step(now);
    }

    /// [`progress`](Self::progress) after an input that changes no
    /// partition by itself: the scans over every partition run only if a
    /// timer or a response asks for them.
    fn step(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        // Whatever input brought us here, timers that expired fire first,
        // so the earliest deadline left is always in the future.
        self.timers.advance(now);
        while let Some(timer) = self.timers.pop_expired() {
            self.scan_due = true;
            self.fire(timer, now);
            if self.is_closed() {
                return;
            }
        }
        while let Some(outcome) = self.conns.poll_outcome() {
            self.scan_due = true;
            self.on_outcome(outcome, now);
        }
        if self.stopped.is_some() {
            return;
        }
        self.send_metadata(now);
        let scan = std::mem::take(&mut self.scan_due);
        if scan {
            self.summary.awaiting_committed = self
                .partitions
                .values()
                .any(|s| matches!(s.phase, Phase::AwaitingCommitted));
        }
        let awaiting = self.summary.awaiting_committed;
        self.with_group(now, |g, ctx| g.send_due(awaiting, ctx));
        if self.is_closed() {
            return;
        }
        if scan || self.scan_due {
            self.send_list_offsets(now);
            self.check_leaders();
            self.send_validations(now);
        }
        self.send_fetches(now);
        // Sending can fail synchronously (a connection vanished): react.
        while let Some(outcome) = self.conns.poll_outcome() {
            self.scan_due = true;
            self.on_outcome(outcome, now);
        }
        if scan || self.scan_due {
            self.summary.stopped = self.partitions.values().any(|s| {
                matches!(
                    s.phase,
                    Phase::NeedsSeek
                        | Phase::OutOfRange { .. }
                        | Phase::Corrupt { .. }
                        | Phase::Truncated { .. }
                )
            });
        }
        if self.has_pending() {
            self.signal_poll_ready();
        }
    }

    /// Acts on a timer that went off. A backoff that ended needs nothing:
    /// its request may simply go again.
    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::Connection(conn) => self.conns.on_timeout(conn, now, &mut self.timers),
            Timer::MetadataRefresh => self.metadata.request_update(),
            Timer::QueryDeadline(id) => self.expire_query(id),
            Timer::Reconnect(_)
            | Timer::MetadataRetry
            | Timer::PartitionRetry(_)
            | Timer::QueryRetry(..)
            | Timer::FindCoordinator
            | Timer::JoinRetry
            | Timer::CommitRetry(_)
            | Timer::CommittedRetry(_)
            | Timer::PositionsFetchRetry => {}
            Timer::Heartbeat
            | Timer::SessionExpiry
            | Timer::PollHalfway
            | Timer::PollInterval
            | Timer::AutoCommit
            | Timer::CommitDeadline(_)
            | Timer::CommittedDeadline(_)
            | Timer::Close => {
                self.with_group(now, |g, ctx| g.on_timer(timer, ctx));
            }
        }
    }

    fn on_outcome(&mut self, outcome: Outcome<Purpose>, now: Instant) {
        match outcome {
            Outcome::Response {
                node,
                request,
                frame,
            } => self.on_response(node, request, frame, now),
            Outcome::Failed { node, request } => self.on_failed(node, request.purpose, now),
            Outcome::Ready => {}
            Outcome::ConnectionError {
                address,
                problem: reason,
                failures,
            } => {
                if let Some(error) = reason.to_error(&address, failures) {
                    self.security_failed(error, now);
                }
                self.events.push_back(Event::ConnectionError {
                    broker: address,
                    reason,
                });
            }
            Outcome::Fatal(error) => self.set_fatal(error),
        }
    }

    /// A broker refused TLS or SASL: the application hears of it from its
    /// next poll, and calls waiting on a broker (commits, offset lookups)
    /// fail with it now instead of at their deadlines. Connecting goes on
    /// with backoff, so a fixed credential or certificate heals it.
    fn security_failed(&mut self, error: Error, now: Instant) {
        let queries: Vec<QueryId> = self.queries.keys().copied().collect();
        for id in queries {
            self.fail_query(id, error.clone());
        }
        self.with_group(now, |g, ctx| g.fail_requests(ctx, &error));
        // An error already waiting for the application is not replaced: this
        // one comes back with the next failed login.
        self.poll_error.get_or_insert(error);
    }

    fn on_failed(&mut self, node: Node, purpose: Purpose, now: Instant) {
        match purpose {
            Purpose::Metadata => {
                self.metadata
                    .update_failed(now, &mut self.retry_backoff, &mut self.timers);
            }
            Purpose::Group(purpose) => self.on_group_reply(node, purpose, None, now),
            Purpose::Fetch {
                broker, partitions, ..
            } => {
                self.fetching_from.remove(&broker);
                self.meters.fetch_failed_total += 1;
                let health = self.fetch_health.entry(broker).or_default();
                health.good = 0;
                if health.shrink < FetchHealth::MAX_SHRINK {
                    health.shrink += 1;
                    if health.shrink >= 2 {
                        tracing::warn!(
                            broker = broker.0,
                            failures = health.shrink,
                            asking_for_at_most = fetch::REQUEST_TARGET_BYTES >> health.shrink,
                            "fetches keep failing before their response is complete: asking for less"
                        );
                    }
                }
                for p in partitions {
                    if let Some(state) = self.partitions.get_mut(&p.tp) {
                        if state.fence == p.fence {
                            state.retry.settled();
                        }
                    }
                }
                self.metadata.request_update();
            }
            Purpose::ListOffsets { partitions } => {
                for (tp, target) in partitions {
                    self.offsets_failed(&tp, target, ErrorCode::NETWORK_EXCEPTION, now);
                }
                self.metadata.request_update();
            }
            Purpose::Validation { partitions } => {
                for p in &partitions {
                    self.validation_failed(p, ErrorCode::NETWORK_EXCEPTION, now);
                }
            }
        }
    }

    fn on_response(
        &mut self,
        node: Node,
        request: InFlight<Purpose>,
        frame: bytes::Bytes,
        now: Instant,
    ) {
        let version = request.version;
        let latency = now.saturating_duration_since(request.sent_at);
        match request.purpose {
            Purpose::Group(purpose) => {
                if let Some(group) = self.group.as_mut() {
                    group.record_latency(&purpose, latency, now);
                }
                self.on_group_reply(node, purpose, Some((frame, version)), now);
            }
            Purpose::Metadata => match decode_response::<MetadataRequest>(frame, version) {
                Ok((_, response)) => self.on_metadata(&response, now),
                Err(e) => {
                    self.protocol_error(node, e);
                    self.metadata
                        .update_failed(now, &mut self.retry_backoff, &mut self.timers);
                }
            },
            Purpose::Fetch {
                broker,
                partitions,
                reserved,
            } => {
                self.fetching_from.remove(&broker);
                self.meters.fetched(latency, frame.len(), now);
                // The response takes over from the reservation: held until
                // the last batch in it leaves the buffer.
                let held = Arc::new(self.memory.charge(frame.len()));
                drop(reserved);
                match decode_response::<FetchRequest>(frame, version) {
                    Ok((_, response)) => {
                        if let Some(health) = self.fetch_health.get_mut(&broker) {
                            health.good += 1;
                            if health.good >= FetchHealth::GROW_AFTER {
                                health.good = 0;
                                health.shrink = health.shrink.saturating_sub(1);
                                if health.shrink == 0 {
                                    tracing::info!(broker = broker.0, "fetches complete again");
                                    self.fetch_health.remove(&broker);
                                }
                            }
                        }
                        self.on_fetch(response, partitions, &held, now);
                    }
                    Err(e) => {
                        self.protocol_error(node, e);
                        let reserved = self.reserved.charge(0);
                        self.on_failed(
                            node,
                            Purpose::Fetch {
                                broker,
                                partitions,
                                reserved,
                            },
                            now,
                        );
                    }
                }
            }
            Purpose::ListOffsets { partitions } => {
                match decode_response::<ListOffsetsRequest>(frame, version) {
                    Ok((_, response)) => self.on_list_offsets(&response, partitions, now),
                    Err(e) => {
                        self.protocol_error(node, e);
                        self.on_failed(node, Purpose::ListOffsets { partitions }, now);
                    }
                }
            }
            Purpose::Validation { partitions } => {
                match decode_response::<OffsetForLeaderEpochRequest>(frame, version) {
                    Ok((_, response)) => self.on_validation(&response, partitions, now),
                    Err(e) => {
                        self.protocol_error(node, e);
                        self.on_failed(node, Purpose::Validation { partitions }, now);
                    }
                }
            }
        }
    }

    /// A response decoded badly: report it. (The frame itself was sound, so
    /// the connection stays; the request is retried.)
    fn protocol_error(&mut self, node: Node, error: DecodeError) {
        let broker = match node {
            Node::Broker(id) => self.metadata.broker(id).cloned(),
            Node::Coordinator(id) => self
                .metadata
                .broker(id)
                .cloned()
                .or_else(|| self.group.as_ref()?.coordinator_address()),
            Node::Bootstrap(i) => self.config.bootstrap_servers.get(i).cloned(),
        };
        if let Some(broker) = broker {
            self.events.push_back(Event::ConnectionError {
                broker,
                reason: ConnectionProblem::Unreadable(error),
            });
        }
    }

    fn on_metadata(&mut self, response: &MetadataResponse, now: Instant) {
        let applied = self
            .metadata
            .apply(response, now, &mut self.retry_backoff, &mut self.timers);
        if let Some(listed) = &applied.listed_topics {
            self.with_group(now, |g, ctx| g.on_topic_list(listed, ctx));
        }
        self.with_group(now, |g, ctx| g.on_metadata(ctx));
        for (topic, code) in applied.topic_errors {
            let partition = self
                .partitions
                .keys()
                .find(|tp| tp.topic() == &*topic)
                .cloned()
                .unwrap_or_else(|| TopicPartition::new(topic, -1));
            self.poll_error.get_or_insert(Error::Partition {
                api: ApiKey::Metadata,
                partition,
                code,
            });
        }
        // Queries for partitions metadata says do not exist cannot succeed.
        let missing: Vec<(QueryId, TopicPartition)> = self
            .queries
            .iter()
            .flat_map(|(id, q)| q.pending.keys().map(move |tp| (*id, tp.clone())))
            .filter(|(_, tp)| self.metadata.partition_missing(tp))
            .collect();
        for (id, tp) in missing {
            self.fail_query(
                id,
                Error::Partition {
                    api: ApiKey::ListOffsets,
                    partition: tp,
                    code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                },
            );
        }
    }

    fn send_metadata(&mut self, now: Instant) {
        let needed =
            !self.partitions.is_empty() || !self.queries.is_empty() || self.is_subscribed();
        if !needed || !self.metadata.is_due(&self.timers) {
            return;
        }
        let brokers = self.metadata.brokers();
        let bootstrap = &self.config.bootstrap_servers;
        let Some((conn, _)) = self
            .conns
            .any_broker(brokers, bootstrap, now, &mut self.timers)
        else {
            return;
        };
        let Ok(version) = self.conns.version(conn, ApiKey::Metadata) else {
            return;
        };
        let mut request = self.metadata.begin_update();
        if version == 0 && request.topics.is_none() {
            // Metadata v0 has no null list: an empty one means every topic.
            request.topics = Some(Vec::new());
        }
        if self
            .conns
            .send(
                conn,
                &request,
                version,
                Duration::ZERO,
                Purpose::Metadata,
                now,
                &mut self.timers,
            )
            .is_err()
        {
            self.metadata
                .update_failed(now, &mut self.retry_backoff, &mut self.timers);
        }
    }
}

fn not_assigned(tp: &TopicPartition) -> Error {
    Error::InvalidArgument(Misuse::NotAssigned(tp.clone()))
}
