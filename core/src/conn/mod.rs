//! Broker connections: opening them (through the adapter), the handshake
//! (TLS, ApiVersions, SASL), correlation ids, in-flight limits, request
//! timeouts and reconnect backoff. Nothing here knows what a request is
//! for; each in-flight request carries an opaque `purpose` the consumer
//! uses to route its response.
//!
//! - [`handshake`]: ApiVersions and the SASL steps, up to ready.
//! - [`tls`]: rustls between the adapter's bytes and the frames.
//! - [`sasl`]: the authentication step and its mechanisms' exchanges.

mod handshake;
mod sasl;
mod tls;

pub use sasl::AuthFailure;
pub(crate) use sasl::SaslSettings;
pub use tls::TlsFailure;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::backoff::Backoff;
use crate::error::Error;
use crate::protocol::{
    ApiKey, DecodeError, ErrorCode, FrameDecoder, FrameError, Request, UnsupportedVersion,
    VersionRange, encode_request, negotiate, response_correlation_id,
};
use crate::security::SecurityContext;
use crate::timer::{Timer, TimerTable};
use crate::types::{BrokerAddress, BrokerId, ConnId};

/// What the adapter must do for the core: open a connection, write bytes to
/// one, or close one. Emitted in order; bytes for one connection must be
/// written in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Open a TCP connection to `address` and report the outcome with
    /// `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The id the core will use for this connection.
        conn: ConnId,
        /// Where to connect.
        address: BrokerAddress,
    },
    /// Write these bytes to the connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// One or more complete request frames.
        data: Bytes,
    },
    /// Close the connection. The core already considers it gone: do not
    /// report `handle_disconnected` for it.
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// What went wrong with a broker connection. The consumer reconnects on
/// its own (with backoff); this says why it had to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionProblem {
    /// The adapter could not open the connection (its reason).
    #[error("could not connect: {0}")]
    ConnectFailed(String),
    /// The broker or the network closed the connection.
    #[error("the connection closed")]
    Closed,
    /// Connecting and the version handshake took longer than
    /// `socket.connection.setup.timeout.ms`.
    #[error("connection setup timed out")]
    SetupTimedOut,
    /// A request got no answer within `request.timeout.ms`.
    #[error("{0} request timed out")]
    RequestTimedOut(ApiKey),
    /// The byte stream did not split into frames.
    #[error("bad frame: {0}")]
    BadFrame(FrameError),
    /// A frame too short to hold a response header.
    #[error("a response frame shorter than its header")]
    ShortFrame,
    /// A response that answers no request in flight.
    #[error("unsolicited response with correlation id {0}")]
    Unsolicited(i32),
    /// Responses must come in request order; this one did not.
    #[error("response with correlation id {got}, expected {expected}")]
    OutOfOrder {
        /// The correlation id the response carried.
        got: i32,
        /// The correlation id of the oldest request in flight.
        expected: i32,
    },
    /// Bytes arrived before the adapter reported the connection open.
    #[error("data before the connection was reported open")]
    DataBeforeConnected,
    /// An answer could not be decoded (the connection stays; the request
    /// is retried).
    #[error("unreadable response: {0}")]
    Unreadable(DecodeError),
    /// The version handshake failed: no ApiVersions version in common, or
    /// a refusal.
    #[error("version handshake failed: {0}")]
    Handshake(HandshakeFailure),
    /// The broker lacks an API the consumer needs (reported as
    /// [`Error::UnsupportedBroker`] too).
    #[error("the broker lacks an API the consumer needs: {0}")]
    LacksApi(UnsupportedVersion),
    /// The group's coordinator moved to another broker: the old one's
    /// connection is no longer needed.
    #[error("the group coordinator moved to another broker")]
    CoordinatorMoved,
    /// TLS failed (reported as [`Error::Tls`] too).
    #[error("TLS failed: {0}")]
    Tls(TlsFailure),
    /// SASL authentication failed (reported as [`Error::Authentication`]
    /// too).
    #[error("SASL authentication failed: {0}")]
    Authentication(AuthFailure),
}

/// A connection closed during its TLS handshake or SASL login this many
/// times in a row before it counts as a refusal: once or twice is a broker
/// going down; every time is a listener that does not speak our protocol
/// or a login refused by closing.
const CLOSED_IN_A_ROW_IS_A_REFUSAL: u32 = 3;

impl ConnectionProblem {
    /// The error the application sees for this problem, if it is one the
    /// application must hear of (a security failure it has to fix) rather
    /// than a passing one the consumer recovers from alone. `failures`
    /// counts the node's failed connections in a row, this one included.
    pub(crate) fn to_error(&self, broker: &BrokerAddress, failures: u32) -> Option<Error> {
        let closed = matches!(
            self,
            ConnectionProblem::Tls(TlsFailure::ClosedDuringHandshake)
                | ConnectionProblem::Authentication(AuthFailure::Closed)
        );
        if closed && failures < CLOSED_IN_A_ROW_IS_A_REFUSAL {
            return None;
        }
        match self {
            ConnectionProblem::Tls(cause) => Some(Error::Tls {
                broker: broker.clone(),
                cause: cause.clone(),
            }),
            ConnectionProblem::Authentication(cause) => Some(Error::Authentication {
                broker: broker.clone(),
                cause: cause.clone(),
            }),
            _ => None,
        }
    }
}

/// Why the ApiVersions handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The answer could not be decoded at our version nor at v0.
    #[error("ApiVersions reply unreadable: {0}")]
    Unreadable(DecodeError),
    /// The answer came with another correlation id.
    #[error("handshake response has correlation id {got}, expected {expected}")]
    OutOfOrder {
        /// The correlation id the response carried.
        got: i32,
        /// The handshake's correlation id.
        expected: i32,
    },
    /// No ApiVersions version both sides support.
    #[error("{0}")]
    NoCommonVersion(UnsupportedVersion),
    /// The broker refused a version it also claims to support.
    #[error("broker rejected ApiVersions v{0} but claims to support it")]
    Contradiction(i16),
    /// The broker answered with an error.
    #[error("ApiVersions failed: {0}")]
    Refused(ErrorCode),
}

/// Whether a frame error on a plaintext connection's first answer is a TLS
/// record read as a size prefix (an alert or handshake record of version
/// 3.x: `15 03 ..` or `16 03 ..`): the broker's listener speaks TLS.
fn looks_like_tls<P>(c: &Conn<P>, error: &FrameError) -> bool {
    let FrameError::TooLarge { size, .. } = error else {
        return false;
    };
    c.tls.is_none()
        && matches!(c.state, State::ApiVersions { .. })
        && matches!(size >> 16, 0x1503 | 0x1603)
}

/// A broker as the connection layer knows it: a bootstrap address (by
/// index) before its id is known, or a broker id from metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Node {
    Bootstrap(usize),
    Broker(BrokerId),
    /// The group coordinator, on its own connection: the broker may hold a
    /// JoinGroup for a long time, and requests on one connection are
    /// answered in order, so fetches must not queue behind it.
    Coordinator(BrokerId),
}

/// A request awaiting its response.
#[derive(Debug)]
pub(crate) struct InFlight<P> {
    pub(crate) correlation_id: i32,
    pub(crate) api: ApiKey,
    pub(crate) version: i16,
    /// When it went out (for latency metrics).
    pub(crate) sent_at: Instant,
    /// The request's span (API, version, broker, correlation id), closed
    /// with its answer.
    pub(crate) span: tracing::Span,
    pub(crate) deadline: Instant,
    pub(crate) purpose: P,
}

/// Something the consumer must react to.
#[derive(Debug)]
pub(crate) enum Outcome<P> {
    /// A response arrived: the frame (without its size prefix) for `request`.
    Response {
        node: Node,
        request: InFlight<P>,
        frame: Bytes,
    },
    /// A request will get no response: its connection failed or timed out.
    Failed { node: Node, request: InFlight<P> },
    /// A connection finished its handshake and can take requests.
    Ready,
    /// A connection failed to open, broke, or sent garbage (diagnostic; the
    /// layer reconnects on demand with backoff).
    ConnectionError {
        address: BrokerAddress,
        problem: ConnectionProblem,
        /// Connections to this node that failed in a row, this one
        /// included.
        failures: u32,
    },
    /// A broker cannot serve this client at all.
    Fatal(Error),
}

#[derive(Debug)]
enum State {
    Connecting,
    /// The TLS handshake (rustls drives it; application data waits).
    Tls,
    /// Negotiating versions.
    ApiVersions {
        version: i16,
        correlation_id: i32,
    },
    /// SaslHandshake sent, naming the mechanism.
    SaslHandshake {
        correlation_id: i32,
    },
    /// SaslAuthenticate sent with the mechanism's latest message.
    SaslAuthenticate {
        version: i16,
        correlation_id: i32,
        exchange: sasl::Exchange,
    },
    Ready,
}

#[derive(Debug)]
struct Conn<P> {
    node: Node,
    address: BrokerAddress,
    state: State,
    frames: FrameDecoder,
    next_correlation_id: i32,
    in_flight: VecDeque<InFlight<P>>,
    versions: HashMap<i16, VersionRange>,
    /// The end of the setup (connect, TLS, versions, SASL), or of a
    /// re-authentication while one runs.
    setup_deadline: Instant,
    tls: Option<tls::TlsSession>,
    /// When the SASL session must be renewed (KIP-368).
    reauthenticate_at: Option<Instant>,
    /// The SASL steps running now renew a session (the connection was
    /// ready before and becomes ready again without news).
    reauthenticating: bool,
    /// The last request sent or bytes received: an idle connection closes
    /// after `connections.max.idle.ms`.
    last_active: Instant,
}

impl<P> Conn<P> {
    /// Queues `data` for the broker, through TLS when the connection has it.
    fn transmit(&mut self, id: ConnId, io: &mut VecDeque<Io>, data: Bytes) {
        match &mut self.tls {
            Some(tls) => {
                tls.send(&data);
                if let Some(records) = tls.take_outgoing() {
                    io.push_back(Io::Send {
                        conn: id,
                        data: records,
                    });
                }
            }
            None => io.push_back(Io::Send { conn: id, data }),
        }
    }

    /// Whether a re-authentication is due and waits for the requests in
    /// flight to finish (no new request goes out meanwhile).
    fn reauthentication_due(&self, now: Instant) -> bool {
        matches!(self.state, State::Ready) && self.reauthenticate_at.is_some_and(|at| at <= now)
    }

    /// Encodes a request and queues it; returns its correlation id.
    fn send_request<R: Request>(
        &mut self,
        id: ConnId,
        io: &mut VecDeque<Io>,
        client_id: &str,
        request: &R,
        version: i16,
    ) -> Option<i32> {
        let correlation_id = self.next_correlation_id;
        let mut out = BytesMut::new();
        encode_request(&mut out, correlation_id, Some(client_id), request, version).ok()?;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        self.transmit(id, io, out.freeze());
        Some(correlation_id)
    }
}

/// A node's connection, if any, and how often connecting to it failed in a
/// row (its reconnect backoff is [`Timer::Reconnect`]).
#[derive(Debug, Default)]
struct NodeState {
    conn: Option<ConnId>,
    failures: u32,
}

/// Settings the connection layer needs.
#[derive(Debug, Clone)]
pub(crate) struct ConnConfig {
    pub(crate) client_id: String,
    pub(crate) max_in_flight: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) setup_timeout: Duration,
    pub(crate) max_frame_size: usize,
    /// `connections.max.idle.ms`; `None`: connections never idle out.
    pub(crate) max_idle: Option<Duration>,
    pub(crate) reconnect_backoff: Backoff,
    /// APIs without which a broker cannot serve the client.
    pub(crate) required: Vec<ApiKey>,
    /// TLS and randomness, when the security protocol needs them.
    pub(crate) security: Option<SecurityContext>,
    /// SASL, when the security protocol uses it.
    pub(crate) sasl: Option<SaslSettings>,
}

/// Every connection of one client.
#[derive(Debug)]
pub(crate) struct Connections<P> {
    config: ConnConfig,
    conns: BTreeMap<ConnId, Conn<P>>,
    nodes: HashMap<Node, NodeState>,
    next_id: u64,
    io: VecDeque<Io>,
    outcomes: VecDeque<Outcome<P>>,
    /// The OAUTHBEARER token, shared by every connection.
    tokens: sasl::TokenCache,
    /// Counters for the metrics.
    stats: ConnStats,
}

/// What the connection layer counts for the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConnStats {
    /// Connections opened.
    pub(crate) created: u64,
    /// Connections closed (failed, timed out, idle, or not needed).
    pub(crate) closed: u64,
    /// Requests that ran out of time.
    pub(crate) request_timeouts: u64,
}

impl<P> Connections<P> {
    pub(crate) fn new(config: ConnConfig) -> Self {
        Self {
            tokens: sasl::TokenCache::default(),
            stats: ConnStats::default(),
            config,
            conns: BTreeMap::new(),
            nodes: HashMap::new(),
            next_id: 1,
            io: VecDeque::new(),
            outcomes: VecDeque::new(),
        }
    }

    /// The counters, with the connections open and requests in flight now.
    pub(crate) fn stats(&self) -> (ConnStats, usize, usize) {
        let in_flight = self.conns.values().map(|c| c.in_flight.len()).sum();
        (self.stats, self.conns.len(), in_flight)
    }

    pub(crate) fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    pub(crate) fn poll_outcome(&mut self) -> Option<Outcome<P>> {
        self.outcomes.pop_front()
    }

    /// The ready connection to `node`, opening one (or waiting out its
    /// backoff) if there is none.
    pub(crate) fn ready(
        &mut self,
        node: Node,
        address: &BrokerAddress,
        now: Instant,
        timers: &mut TimerTable,
    ) -> Option<ConnId> {
        let state = self.nodes.entry(node).or_default();
        if let Some(id) = state.conn {
            return self
                .conns
                .get(&id)
                .filter(|c| matches!(c.state, State::Ready))
                .map(|_| id);
        }
        if timers.is_set(&Timer::Reconnect(node)) {
            return None;
        }
        let id = ConnId(self.next_id);
        self.next_id += 1;
        state.conn = Some(id);
        self.conns.insert(
            id,
            Conn {
                node,
                address: address.clone(),
                state: State::Connecting,
                frames: FrameDecoder::new(self.config.max_frame_size),
                next_correlation_id: 0,
                in_flight: VecDeque::new(),
                versions: HashMap::new(),
                setup_deadline: now + self.config.setup_timeout,
                tls: None,
                reauthenticate_at: None,
                reauthenticating: false,
                last_active: now,
            },
        );
        self.stats.created += 1;
        tracing::debug!(broker = %address, %id, ?node, "connecting");
        self.rearm(id, timers);
        self.io.push_back(Io::Connect {
            conn: id,
            address: address.clone(),
        });
        None
    }

    /// True if `node` has a connection that is open or opening.
    pub(crate) fn has_connection(&self, node: Node) -> bool {
        self.nodes.get(&node).is_some_and(|n| n.conn.is_some())
    }

    /// True if a request can go out on `conn` now.
    pub(crate) fn can_send(&self, conn: ConnId, now: Instant) -> bool {
        self.conns.get(&conn).is_some_and(|c| {
            matches!(c.state, State::Ready)
                && c.in_flight.len() < self.config.max_in_flight
                && !c.reauthentication_due(now)
        })
    }

    /// The version of `api` to use on `conn`: the highest both sides
    /// support, at least `min` (an error naming both ranges otherwise).
    pub(crate) fn version_at_least(
        &self,
        conn: ConnId,
        api: ApiKey,
        min: i16,
    ) -> Result<i16, UnsupportedVersion> {
        let theirs = self
            .conns
            .get(&conn)
            .and_then(|c| c.versions.get(&api.code()).copied());
        let ours = api.versions();
        let ours = VersionRange::new(ours.min.max(min), ours.max);
        negotiate(api.name(), ours, theirs)
    }

    /// The version of `api` to use on `conn`: the highest both sides support.
    pub(crate) fn version(&self, conn: ConnId, api: ApiKey) -> Result<i16, UnsupportedVersion> {
        self.version_at_least(conn, api, i16::MIN)
    }

    /// Sends `request` at `version` on a ready connection. `extra_timeout` is
    /// added to the request timeout (a fetch may legitimately be held by the
    /// broker for `fetch.max.wait.ms`).
    #[allow(clippy::too_many_arguments)] // what, where, how long, and the clock
    pub(crate) fn send<R: Request>(
        &mut self,
        conn: ConnId,
        request: &R,
        version: i16,
        extra_timeout: Duration,
        purpose: P,
        now: Instant,
        timers: &mut TimerTable,
    ) -> Result<(), P> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(purpose);
        };
        let Some(correlation_id) =
            c.send_request(conn, &mut self.io, &self.config.client_id, request, version)
        else {
            return Err(purpose);
        };
        c.last_active = now;
        let span = tracing::debug_span!(
            "request",
            api = %R::API_KEY,
            version,
            broker = %c.address,
            correlation_id,
        );
        span.in_scope(|| tracing::debug!("request sent"));
        c.in_flight.push_back(InFlight {
            correlation_id,
            api: R::API_KEY,
            version,
            sent_at: now,
            span,
            deadline: now + self.config.request_timeout + extra_timeout,
            purpose,
        });
        self.rearm(conn, timers);
        Ok(())
    }

    /// Sets `conn`'s timer to its earliest deadline: the setup until the
    /// handshake is done, then its requests'.
    fn rearm(&self, conn: ConnId, timers: &mut TimerTable) {
        let timer = Timer::Connection(conn);
        let Some(c) = self.conns.get(&conn) else {
            return timers.stop(&timer);
        };
        let setup = (!matches!(c.state, State::Ready)).then_some(c.setup_deadline);
        let renew = c
            .reauthenticate_at
            .filter(|_| matches!(c.state, State::Ready));
        let idle = self.idle_deadline(c);
        let next = setup
            .into_iter()
            .chain(renew)
            .chain(idle)
            .chain(c.in_flight.iter().map(|r| r.deadline))
            .min();
        match next {
            Some(at) => timers.set(timer, at),
            None => timers.stop(&timer),
        }
    }

    /// The adapter opened the connection: start the handshake, with TLS
    /// first if the connection has it.
    pub(crate) fn handle_connected(&mut self, conn: ConnId, now: Instant, timers: &mut TimerTable) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !matches!(c.state, State::Connecting) {
            return;
        }
        let tls_config = self.config.security.as_ref().and_then(|s| s.tls.clone());
        let Some(tls_config) = tls_config else {
            let version = ApiKey::ApiVersions.versions().max;
            Self::send_api_versions(&self.config.client_id, &mut self.io, conn, c, version);
            return;
        };
        match tls::TlsSession::new(tls_config, &c.address.host) {
            Ok(mut session) => {
                if let Some(hello) = session.take_outgoing() {
                    self.io.push_back(Io::Send { conn, data: hello });
                }
                c.tls = Some(session);
                c.state = State::Tls;
            }
            Err(e) => self.drop_conn(conn, ConnectionProblem::Tls(e), now, true, timers),
        }
    }

    /// The adapter could not open the connection.
    pub(crate) fn handle_connect_failed(
        &mut self,
        conn: ConnId,
        reason: &str,
        now: Instant,
        timers: &mut TimerTable,
    ) {
        let problem = ConnectionProblem::ConnectFailed(reason.to_string());
        self.drop_conn(conn, problem, now, false, timers);
    }

    /// The connection broke (or the peer closed it).
    pub(crate) fn handle_disconnected(
        &mut self,
        conn: ConnId,
        now: Instant,
        timers: &mut TimerTable,
    ) {
        let problem = match self.conns.get(&conn).map(|c| &c.state) {
            Some(State::Tls) => ConnectionProblem::Tls(TlsFailure::ClosedDuringHandshake),
            Some(State::SaslHandshake { .. } | State::SaslAuthenticate { .. }) => {
                ConnectionProblem::Authentication(AuthFailure::Closed)
            }
            _ => ConnectionProblem::Closed,
        };
        self.drop_conn(conn, problem, now, false, timers);
    }

    /// Bytes arrived on a connection.
    pub(crate) fn handle_received(
        &mut self,
        conn: ConnId,
        data: &[u8],
        now: Instant,
        timers: &mut TimerTable,
    ) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.last_active = now;
        let mut peer_closed = false;
        match &mut c.tls {
            None => c.frames.push(data),
            Some(session) => {
                let frames = &mut c.frames;
                let received = session.receive(data, |plain| frames.push(plain));
                if let Some(out) = session.take_outgoing() {
                    self.io.push_back(Io::Send { conn, data: out });
                }
                match received {
                    Ok(tls::Received::Open) => {}
                    Ok(tls::Received::PeerClosed) => peer_closed = true,
                    Err(e) => {
                        return self.drop_conn(conn, ConnectionProblem::Tls(e), now, true, timers);
                    }
                }
                if matches!(c.state, State::Tls) && !session.is_handshaking() {
                    let version = ApiKey::ApiVersions.versions().max;
                    Self::send_api_versions(&self.config.client_id, &mut self.io, conn, c, version);
                }
            }
        }
        self.read_frames(conn, now, timers);
        if peer_closed {
            self.handle_disconnected(conn, now, timers);
        }
    }

    /// Handles every complete frame buffered on `conn`.
    fn read_frames(&mut self, conn: ConnId, now: Instant, timers: &mut TimerTable) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let frame = match c.frames.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return self.rearm(conn, timers),
                Err(e) => {
                    let problem = if looks_like_tls(c, &e) {
                        ConnectionProblem::Tls(TlsFailure::ServerSpeaksTls)
                    } else {
                        ConnectionProblem::BadFrame(e)
                    };
                    self.drop_conn(conn, problem, now, true, timers);
                    return;
                }
            };
            if let Err(problem) = self.handle_frame(conn, frame, now, timers) {
                self.drop_conn(conn, problem, now, true, timers);
                return;
            }
        }
    }

    fn handle_frame(
        &mut self,
        conn: ConnId,
        frame: Bytes,
        now: Instant,
        timers: &mut TimerTable,
    ) -> Result<(), ConnectionProblem> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let Some(correlation_id) = response_correlation_id(&frame) else {
            return Err(ConnectionProblem::ShortFrame);
        };
        match c.state {
            State::ApiVersions {
                version,
                correlation_id: expected,
            } => {
                if correlation_id != expected {
                    return Err(ConnectionProblem::Handshake(HandshakeFailure::OutOfOrder {
                        got: correlation_id,
                        expected,
                    }));
                }
                self.handle_api_versions(conn, frame, version, now, timers)
                    .map_err(ConnectionProblem::Handshake)
            }
            State::Ready => {
                let Some(front) = c.in_flight.front() else {
                    return Err(ConnectionProblem::Unsolicited(correlation_id));
                };
                if front.correlation_id != correlation_id {
                    return Err(ConnectionProblem::OutOfOrder {
                        got: correlation_id,
                        expected: front.correlation_id,
                    });
                }
                let node = c.node;
                let Some(request) = c.in_flight.pop_front() else {
                    return Ok(());
                };
                request.span.in_scope(|| {
                    let latency = now.saturating_duration_since(request.sent_at);
                    tracing::debug!(
                        latency_ms = latency.as_secs_f64() * 1e3,
                        bytes = frame.len(),
                        "response received"
                    );
                });
                self.outcomes.push_back(Outcome::Response {
                    node,
                    request,
                    frame,
                });
                if c.in_flight.is_empty() && c.reauthentication_due(now) {
                    self.start_sasl(conn, true, now)
                        .map_err(ConnectionProblem::Authentication)?;
                }
                Ok(())
            }
            State::SaslHandshake {
                correlation_id: expected,
            }
            | State::SaslAuthenticate {
                correlation_id: expected,
                ..
            } => {
                if correlation_id != expected {
                    return Err(ConnectionProblem::OutOfOrder {
                        got: correlation_id,
                        expected,
                    });
                }
                self.handle_sasl(conn, frame, now, timers)
                    .map_err(ConnectionProblem::Authentication)
            }
            State::Connecting | State::Tls => Err(ConnectionProblem::DataBeforeConnected),
        }
    }

    /// When `c` closes for idleness: a ready connection with nothing in
    /// flight, `connections.max.idle.ms` after it was last used.
    fn idle_deadline(&self, c: &Conn<P>) -> Option<Instant> {
        let max_idle = self.config.max_idle?;
        (matches!(c.state, State::Ready) && c.in_flight.is_empty())
            .then(|| c.last_active + max_idle)
    }

    /// `conn`'s timer went off: closes it if its setup or a request ran
    /// out of time, or it sat idle for `connections.max.idle.ms`.
    pub(crate) fn on_timeout(&mut self, conn: ConnId, now: Instant, timers: &mut TimerTable) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if self.idle_deadline(c).is_some_and(|at| at <= now) && !c.reauthentication_due(now) {
            // Not a failure: no backoff, no error; the next request to the
            // node opens a new connection.
            tracing::debug!(broker = %c.address, "closing an idle connection");
            let node = c.node;
            self.conns.remove(&conn);
            self.stats.closed += 1;
            timers.stop(&Timer::Connection(conn));
            if let Some(state) = self.nodes.get_mut(&node) {
                if state.conn == Some(conn) {
                    state.conn = None;
                }
            }
            self.io.push_back(Io::Close { conn });
            return;
        }
        if c.reauthentication_due(now) && c.in_flight.is_empty() {
            if let Err(e) = self.start_sasl(conn, true, now) {
                let problem = ConnectionProblem::Authentication(e);
                return self.drop_conn(conn, problem, now, true, timers);
            }
            return self.rearm(conn, timers);
        }
        let expired = if !matches!(c.state, State::Ready) && c.setup_deadline <= now {
            Some(ConnectionProblem::SetupTimedOut)
        } else {
            c.in_flight
                .iter()
                .find(|r| r.deadline <= now)
                .map(|r| ConnectionProblem::RequestTimedOut(r.api))
        };
        match expired {
            Some(problem) => self.drop_conn(conn, problem, now, true, timers),
            None => self.rearm(conn, timers),
        }
    }

    /// Forgets a connection: its requests fail, and the node backs off
    /// before it is connected again. `close` asks the adapter to close it.
    fn drop_conn(
        &mut self,
        conn: ConnId,
        problem: ConnectionProblem,
        now: Instant,
        close: bool,
        timers: &mut TimerTable,
    ) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.stats.closed += 1;
        if matches!(problem, ConnectionProblem::RequestTimedOut(_)) {
            self.stats.request_timeouts += 1;
        }
        tracing::debug!(
            broker = %c.address,
            %conn,
            cause = %problem,
            unanswered = c.in_flight.len(),
            "connection closed"
        );
        timers.stop(&Timer::Connection(conn));
        if close {
            self.io.push_back(Io::Close { conn });
        }
        let mut failures = 1;
        if let Some(state) = self.nodes.get_mut(&c.node) {
            if state.conn == Some(conn) {
                state.conn = None;
            }
            let delay = self.config.reconnect_backoff.delay(state.failures);
            state.failures = state.failures.saturating_add(1);
            failures = state.failures;
            timers.set(Timer::Reconnect(c.node), now + delay);
        }
        self.outcomes.push_back(Outcome::ConnectionError {
            address: c.address.clone(),
            problem,
            failures,
        });
        for request in c.in_flight {
            self.outcomes.push_back(Outcome::Failed {
                node: c.node,
                request,
            });
        }
    }

    /// Closes `node`'s connection, if any, failing its requests (the node
    /// is no longer needed, e.g. the group coordinator moved away).
    pub(crate) fn close_node(
        &mut self,
        node: Node,
        problem: ConnectionProblem,
        now: Instant,
        timers: &mut TimerTable,
    ) {
        if let Some(conn) = self.nodes.get(&node).and_then(|n| n.conn) {
            self.drop_conn(conn, problem, now, true, timers);
        }
    }

    /// Closes every connection (the consumer is shutting down).
    pub(crate) fn close_all(&mut self) {
        // Nothing queued for a connection that is about to close matters.
        self.io
            .retain(|io| !matches!(io, Io::Send { .. } | Io::Connect { .. }));
        for &id in self.conns.keys() {
            self.io.push_back(Io::Close { conn: id });
        }
        self.conns.clear();
        for state in self.nodes.values_mut() {
            state.conn = None;
        }
    }

    /// A connection that can take a request now to the least loaded broker
    /// of the cluster (`brokers` from metadata, then the `bootstrap`
    /// addresses), for requests any broker answers; opens one if needed.
    pub(crate) fn any_broker<'a>(
        &mut self,
        brokers: impl Iterator<Item = (BrokerId, &'a BrokerAddress)>,
        bootstrap: &[BrokerAddress],
        now: Instant,
        timers: &mut TimerTable,
    ) -> Option<(ConnId, BrokerAddress)> {
        let mut candidates: Vec<(Node, BrokerAddress)> = brokers
            .map(|(id, a)| (Node::Broker(id), a.clone()))
            .collect();
        candidates.extend(
            bootstrap
                .iter()
                .enumerate()
                .map(|(i, a)| (Node::Bootstrap(i), a.clone())),
        );
        let (node, address) = self.least_loaded(&candidates, timers)?;
        let conn = self.ready(node, &address, now, timers)?;
        self.can_send(conn, now).then_some((conn, address))
    }

    /// A node to send a cluster-wide request (Metadata) to: a ready
    /// connection with the fewest requests in flight, else a connection
    /// being opened, else the first of `candidates` not backing off.
    fn least_loaded(
        &self,
        candidates: &[(Node, BrokerAddress)],
        timers: &TimerTable,
    ) -> Option<(Node, BrokerAddress)> {
        let ready = candidates
            .iter()
            .filter_map(|(node, addr)| {
                let id = self.nodes.get(node)?.conn?;
                let c = self.conns.get(&id)?;
                matches!(c.state, State::Ready).then_some((c.in_flight.len(), node, addr))
            })
            .min_by_key(|(load, node, _)| (*load, **node));
        if let Some((_, node, addr)) = ready {
            return Some((*node, addr.clone()));
        }
        if let Some((node, addr)) = candidates
            .iter()
            .find(|(node, _)| self.has_connection(*node))
        {
            return Some((*node, addr.clone()));
        }
        candidates
            .iter()
            .filter(|(node, _)| !timers.is_set(&Timer::Reconnect(*node)))
            .min_by_key(|(node, _)| self.nodes.get(node).map_or(0, |n| n.failures))
            .cloned()
    }
}
