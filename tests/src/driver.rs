//! A small blocking request/response driver for conformance tests: one TCP
//! connection, one request in flight, the codec of `odradek-core` on both
//! ends. It is test equipment, not the consumer: no retries, no pipelining.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use bytes::BytesMut;
use odradek_core::IsolationLevel;
use odradek_core::protocol::{
    ApiKey, DEFAULT_MAX_FRAME_SIZE, DecodeError, EncodeError, FrameDecoder, FrameError, Request,
    Uuid, VersionRange, decode_response, encode_request,
    messages::{
        ApiVersionsRequest, ApiVersionsResponse, FetchRequest, MetadataRequest, ProduceRequest,
        fetch::{FetchPartition, FetchPartitionData, FetchTopic},
        metadata::MetadataRequestTopic,
        produce::{PartitionProduceData, TopicProduceData},
    },
};

/// How long a single request may take before the driver gives up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong talking to the broker.
#[derive(Debug)]
pub enum DriverError {
    /// The socket failed or the broker closed the connection.
    Io(std::io::Error),
    /// The request could not be encoded.
    Encode(EncodeError),
    /// The response could not be decoded.
    Decode(DecodeError),
    /// The byte stream was not a valid frame sequence.
    Frame(FrameError),
    /// The response answered another request.
    CorrelationMismatch {
        /// The id we sent.
        sent: i32,
        /// The id that came back.
        received: i32,
    },
    /// The broker does not offer the API at any version we implement.
    Unsupported(ApiKey),
    /// The broker answered with an error code (or an answer missing the
    /// partition asked about).
    Broker {
        /// The request.
        api: ApiKey,
        /// The error code, 0 when the answer was malformed.
        code: i16,
        /// The response, for the message.
        detail: String,
    },
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Io(e) => write!(f, "i/o: {e}"),
            DriverError::Encode(e) => write!(f, "{e}"),
            DriverError::Decode(e) => write!(f, "{e}"),
            DriverError::Frame(e) => write!(f, "{e}"),
            DriverError::CorrelationMismatch { sent, received } => {
                write!(f, "sent correlation id {sent}, got {received}")
            }
            DriverError::Unsupported(api) => write!(f, "the broker does not support {api}"),
            DriverError::Broker { api, code, detail } => {
                write!(f, "{api} failed with error code {code}: {detail}")
            }
        }
    }
}

impl std::error::Error for DriverError {}

impl From<std::io::Error> for DriverError {
    fn from(e: std::io::Error) -> Self {
        DriverError::Io(e)
    }
}

/// One blocking connection to a broker.
pub struct Connection {
    stream: TcpStream,
    frames: FrameDecoder,
    next_correlation_id: i32,
    broker_versions: BTreeMap<i16, VersionRange>,
    /// Topic ids learnt from Metadata (Produce v13+ names topics by id).
    topic_ids: BTreeMap<String, Uuid>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.stream.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects and learns the broker's API versions (ApiVersions v3, the
    /// newest we implement that every broker since 2.4 answers).
    pub fn connect(addr: SocketAddr) -> Result<Connection, DriverError> {
        let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut conn = Connection {
            stream,
            frames: FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE),
            next_correlation_id: 1,
            broker_versions: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
        };
        let versions: ApiVersionsResponse = conn.send(
            &ApiVersionsRequest {
                client_software_name: "odradek-tests".into(),
                client_software_version: env!("CARGO_PKG_VERSION").into(),
            },
            3,
        )?;
        conn.broker_versions = versions
            .api_keys
            .iter()
            .map(|k| (k.api_key, VersionRange::new(k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The versions the broker advertised, by API key number.
    pub fn broker_versions(&self) -> &BTreeMap<i16, VersionRange> {
        &self.broker_versions
    }

    /// The versions of `api` both sides support, if any.
    pub fn common_versions(&self, api: ApiKey) -> Option<VersionRange> {
        self.broker_versions
            .get(&api.code())
            .and_then(|theirs| api.versions().intersect(*theirs))
    }

    /// The highest version of `R`'s API both sides support.
    pub fn negotiated<R: Request>(&self) -> Result<i16, DriverError> {
        self.common_versions(R::API_KEY)
            .map(|range| range.max)
            .ok_or(DriverError::Unsupported(R::API_KEY))
    }

    /// Sends `request` at `version` and waits for its response.
    pub fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, DriverError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            correlation_id,
            Some("odradek-tests"),
            request,
            version,
        )
        .map_err(DriverError::Encode)?;
        self.stream.write_all(&out)?;
        let frame = self.read_frame()?;
        let (header, body) = decode_response::<R>(frame, version).map_err(DriverError::Decode)?;
        if header.correlation_id != correlation_id {
            return Err(DriverError::CorrelationMismatch {
                sent: correlation_id,
                received: header.correlation_id,
            });
        }
        Ok(body)
    }

    /// Sends `request` at the highest version both sides support.
    pub fn send_negotiated<R: Request>(&mut self, request: &R) -> Result<R::Response, DriverError> {
        let version = self.negotiated::<R>()?;
        self.send(request, version)
    }

    /// The topic's id from Metadata (Fetch v13+ names topics by id), without
    /// auto-creating it.
    pub fn topic_id(&mut self, topic: &str) -> Result<Uuid, DriverError> {
        let response = self.send_negotiated(&MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.into()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        })?;
        match response
            .topics
            .iter()
            .find(|t| t.name.as_deref() == Some(topic))
        {
            Some(t) if t.error_code == 0 => Ok(t.topic_id),
            t => Err(DriverError::Broker {
                api: ApiKey::Metadata,
                code: t.map_or(0, |t| t.error_code),
                detail: format!("{response:?}"),
            }),
        }
    }

    /// Appends one encoded record batch (`acks = -1`) to a partition and
    /// returns the base offset the broker gave it.
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
    ) -> Result<i64, DriverError> {
        let version = self.negotiated::<ProduceRequest>()?;
        let topic_id = if version >= 13 {
            match self.topic_ids.get(topic) {
                Some(id) => *id,
                None => {
                    let id = self.topic_id(topic)?;
                    self.topic_ids.insert(topic.to_string(), id);
                    id
                }
            }
        } else {
            Uuid::NIL
        };
        let response = self.send(
            &ProduceRequest {
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![TopicProduceData {
                    name: topic.into(),
                    topic_id,
                    partition_data: vec![PartitionProduceData {
                        index: partition,
                        records: Some(batch),
                    }],
                }],
                ..Default::default()
            },
            version,
        )?;
        let answer = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == partition);
        match answer {
            Some(p) if p.error_code == 0 => Ok(p.base_offset),
            p => {
                // A topic deleted and created again has a new id.
                self.topic_ids.remove(topic);
                Err(DriverError::Broker {
                    api: ApiKey::Produce,
                    code: p.map_or(0, |p| p.error_code),
                    detail: format!("{response:?}"),
                })
            }
        }
    }

    /// One Fetch of one partition from `offset` at the negotiated version,
    /// with a 100 ms wait (tansu answers `max_wait_ms = 0` with nothing).
    /// Its `high_watermark` and `last_stable_offset` are what the broker's
    /// fetch path says about the log end, independent of ListOffsets.
    pub fn fetch_partition(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        isolation: IsolationLevel,
    ) -> Result<FetchPartitionData, DriverError> {
        let topic_id = self.topic_id(topic)?;
        let response = self.send_negotiated(&FetchRequest {
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: isolation.wire_value(),
            topics: vec![FetchTopic {
                topic: topic.into(),
                topic_id,
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
            }],
            ..Default::default()
        })?;
        let top_level = response.error_code;
        let found = response
            .responses
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition_index == partition);
        match found {
            Some(p) if top_level == 0 && p.error_code == 0 => Ok(p),
            p => Err(DriverError::Broker {
                api: ApiKey::Fetch,
                code: if top_level != 0 {
                    top_level
                } else {
                    p.as_ref().map_or(0, |p| p.error_code)
                },
                detail: format!("{p:?}"),
            }),
        }
    }

    fn read_frame(&mut self) -> Result<bytes::Bytes, DriverError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some(frame) = self.frames.next_frame().map_err(DriverError::Frame)? {
                return Ok(frame);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(DriverError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the broker closed the connection",
                )));
            }
            self.frames.push(&buf[..n]);
        }
    }
}
