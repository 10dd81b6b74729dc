//! Consumer configuration: typed fields with the Java client's defaults,
//! a builder, and parsing of the standard property names.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::group::{Assignors, PartitionAssignmentStrategy, RebalanceListener};
use crate::interceptor::ConsumerInterceptor;
use crate::security::{
    AwsCredentials, AwsCredentialsProvider, AwsCredentialsSource, AwsMskIamConfig,
    OAuthBearerSource, OAuthBearerTokenProvider, Provider, SaslConfig, SaslMechanism, SecretString,
    SecurityProtocol, TlsConfig, UnsecuredJwtConfig, jaas,
};
use crate::types::BrokerAddress;

/// What to do when a partition has no valid position: no committed offset,
/// or an offset the broker no longer has (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Start from the oldest record the broker still has.
    Earliest,
    /// Start after the newest record (only records produced from now on).
    #[default]
    Latest,
    /// Report an error from `poll` naming the partitions.
    None,
}

/// Which records a consumer may read (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only committed records: reads stop at the last stable offset and
    /// records of aborted transactions are skipped.
    ReadCommitted,
}

impl IsolationLevel {
    /// The value sent in Fetch and ListOffsets requests.
    pub fn wire_value(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Everything a consumer can be configured with.
///
/// `Default` gives the Java client's defaults (with no bootstrap servers,
/// which must be set). Build one with [`ConsumerConfig::builder`] or from
/// property names with [`ConsumerConfig::from_properties`].
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// `bootstrap.servers`: brokers to ask for the cluster's metadata.
    pub bootstrap_servers: Vec<BrokerAddress>,
    /// `client.id`: names this client in broker logs and quotas.
    pub client_id: String,
    /// `client.rack`: the consumer's rack, sent with fetches.
    pub client_rack: String,
    /// `auto.offset.reset`: where to start without a valid position.
    pub auto_offset_reset: OffsetReset,
    /// `isolation.level`: whether to read uncommitted transactional records.
    pub isolation_level: IsolationLevel,
    /// `max.poll.records`: the most records one `poll` returns.
    pub max_poll_records: usize,
    /// `fetch.min.bytes`: the broker holds a fetch until this much data is ready.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`: the most data one fetch response should carry.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`: the most data per partition in one fetch.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.wait.ms`: how long the broker may hold a fetch for `fetch.min.bytes`.
    pub fetch_max_wait: Duration,
    /// `queued.max.messages.kbytes` (as in librdkafka): the one bound on
    /// the memory fetched data takes in the consumer. It counts each fetch
    /// response while any of its records is buffered, the decompressed
    /// records of the batch being delivered, and the most each fetch in
    /// flight may bring (the sum of its partitions' limits, reserved when it
    /// goes out). Fetches are sized from what is left; when nothing is, no
    /// fetch goes out. Beyond it go at most one batch larger than its
    /// partition's limit (Kafka returns such a batch whole) and one
    /// decompressed batch larger than the bound.
    pub fetch_buffer_max_bytes: usize,
    /// `check.crcs`: verify each batch's CRC-32C.
    pub check_crcs: bool,
    /// `request.timeout.ms`: how long to wait for any response.
    pub request_timeout: Duration,
    /// `default.api.timeout.ms`: the bound on blocking calls such as
    /// `position` or `end_offsets` when the caller gives none.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms`: first wait before retrying a failed request.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest wait between retries.
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms`: first wait before reconnecting to a broker.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the longest wait between reconnects.
    pub reconnect_backoff_max: Duration,
    /// `socket.connection.setup.timeout.ms`: how long a connection may take
    /// to open and finish its handshake.
    pub connection_setup_timeout: Duration,
    /// `metadata.max.age.ms`: refresh metadata at least this often.
    pub metadata_max_age: Duration,
    /// `max.in.flight.requests.per.connection`: requests awaiting a response
    /// on one connection at most.
    pub max_in_flight_requests_per_connection: usize,
    /// The largest response frame accepted (`receive.message.max.bytes` in
    /// librdkafka). Bigger frames close the connection with an error.
    pub max_response_size: usize,
    /// The most bytes one compressed batch may decompress to.
    pub max_decompressed_batch_bytes: usize,
    /// Seed for the jitter added to backoffs. `None` lets the adapter seed
    /// it from entropy (so clients do not retry in lockstep); tests fix it so
    /// runs repeat exactly.
    pub random_seed: Option<u64>,
    /// `group.id`: the consumer group to join with `subscribe`; `None` for
    /// a consumer that only uses `assign`.
    pub group_id: Option<String>,
    /// `group.instance.id`: a static member identity (KIP-345). A static
    /// member that restarts within the session timeout gets its partitions
    /// back without a rebalance, and does not leave the group on close.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms`: how long the coordinator waits for a heartbeat
    /// before it removes the member.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`: how often to heartbeat to the coordinator.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the longest the application may go without
    /// polling before the member leaves the group (also the rebalance timeout).
    pub max_poll_interval: Duration,
    /// `enable.auto.commit`: commit delivered positions in the background.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`: how often auto-commit runs.
    pub auto_commit_interval: Duration,
    /// `enable.auto.offset.store` (librdkafka): what commits without
    /// explicit offsets (auto-commit, `commit()`, the commit before a
    /// revocation or on close) send. `true` (the default): the position
    /// after the last record each poll returned. `false`: only what the
    /// application stored with `store_offset(s)`, for applications that
    /// finish records out of poll order.
    pub enable_auto_offset_store: bool,
    /// `partition.assignment.strategy`: the assignors this member supports,
    /// preferred first.
    pub partition_assignment_strategy: Assignors,
    /// `internal.leave.group.on.close`: send LeaveGroup when closing. Static
    /// members never do (Java semantics) unless this is set explicitly
    /// through [`leave_group_on_close`](Self::leave_group_on_close) with
    /// `Some(true)`.
    pub leave_group_on_close: Option<bool>,
    /// `allow.auto.create.topics`: whether a broker that auto-creates topics
    /// (`auto.create.topics.enable`) may create the topics this consumer
    /// asks about. Default `false`, as librdkafka (Java's is `true`): a
    /// typo in a subscription should not create a topic.
    pub allow_auto_create_topics: bool,
    /// `exclude.internal.topics`: pattern subscriptions never match internal
    /// topics (`__consumer_offsets`, `__transaction_state`). Default `true`.
    pub exclude_internal_topics: bool,
    /// `enable.partition.eof` (librdkafka): a poll reports each partition
    /// whose end (high watermark) the application reached, in
    /// [`ConsumerRecords::reached_end`](crate::ConsumerRecords::reached_end),
    /// once per time it reaches it (`poll` and `poll_max` return them;
    /// `recv` and the record stream hand out records only). Default
    /// `false`.
    pub enable_partition_eof: bool,
    /// `connections.max.idle.ms`: a connection with nothing in flight for
    /// this long is closed (and opened again when next needed), before a
    /// NAT or load balancer drops it silently. `None` (-1 or 0): never.
    /// Default 9 minutes, as Java.
    pub connections_max_idle: Option<Duration>,
    /// `socket.keepalive.enable`: TCP keepalive on broker connections, so
    /// a peer that vanished without a FIN is noticed even while idle.
    /// Default `false`, as Java and librdkafka.
    pub socket_keepalive: bool,
    /// `security.protocol`: plaintext, TLS, SASL, or SASL inside TLS.
    pub security_protocol: SecurityProtocol,
    /// `sasl.*`: the mechanism and credentials, for `SASL_PLAINTEXT` and
    /// `SASL_SSL`.
    pub sasl: SaslConfig,
    /// `ssl.*`: trust roots and the client certificate, for `SSL` and
    /// `SASL_SSL`.
    pub tls: TlsConfig,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: Vec::new(),
            client_id: "odradek".into(),
            client_rack: String::new(),
            auto_offset_reset: OffsetReset::Latest,
            isolation_level: IsolationLevel::ReadUncommitted,
            max_poll_records: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_wait: Duration::from_millis(500),
            fetch_buffer_max_bytes: 64 * 1024 * 1024,
            check_crcs: true,
            request_timeout: Duration::from_millis(30_000),
            default_api_timeout: Duration::from_millis(60_000),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1_000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1_000),
            connection_setup_timeout: Duration::from_millis(10_000),
            metadata_max_age: Duration::from_millis(300_000),
            max_in_flight_requests_per_connection: 5,
            max_response_size: crate::protocol::DEFAULT_MAX_FRAME_SIZE,
            max_decompressed_batch_bytes: crate::records::DecodeLimits::default()
                .max_decompressed_bytes,
            random_seed: None,
            group_id: None,
            group_instance_id: None,
            session_timeout: Duration::from_millis(45_000),
            heartbeat_interval: Duration::from_millis(3_000),
            max_poll_interval: Duration::from_millis(300_000),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_millis(5_000),
            enable_auto_offset_store: true,
            partition_assignment_strategy: Assignors::default(),
            leave_group_on_close: None,
            allow_auto_create_topics: false,
            exclude_internal_topics: true,
            enable_partition_eof: false,
            socket_keepalive: false,
            connections_max_idle: Some(Duration::from_millis(540_000)),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: SaslConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("auto_offset_reset", &self.auto_offset_reset)
            .field("isolation_level", &self.isolation_level)
            .field("max_poll_records", &self.max_poll_records)
            .field("fetch_max_bytes", &self.fetch_max_bytes)
            .field("max_partition_fetch_bytes", &self.max_partition_fetch_bytes)
            .field("fetch_max_wait", &self.fetch_max_wait)
            .field("fetch_buffer_max_bytes", &self.fetch_buffer_max_bytes)
            .field("group_id", &self.group_id)
            .field("group_instance_id", &self.group_instance_id)
            .field("session_timeout", &self.session_timeout)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("max_poll_interval", &self.max_poll_interval)
            .field("enable_auto_commit", &self.enable_auto_commit)
            .field("enable_auto_offset_store", &self.enable_auto_offset_store)
            .field("allow_auto_create_topics", &self.allow_auto_create_topics)
            .field("exclude_internal_topics", &self.exclude_internal_topics)
            .field("enable_partition_eof", &self.enable_partition_eof)
            .field("socket_keepalive", &self.socket_keepalive)
            .field("connections_max_idle", &self.connections_max_idle)
            .field("auto_commit_interval", &self.auto_commit_interval)
            .field(
                "partition_assignment_strategy",
                &self.partition_assignment_strategy,
            )
            .field("security_protocol", &self.security_protocol)
            .field("sasl", &self.sasl)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A configuration key or value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config `{key}`: {kind}")]
pub struct ConfigError {
    /// The property name (or builder field) at fault.
    pub key: String,
    /// What was wrong with it.
    pub kind: ConfigErrorKind,
}

/// What was wrong with a configuration entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not a property the consumer knows.
    #[error("unknown property")]
    UnknownKey,
    /// The value does not parse or is out of range.
    #[error("invalid value `{value}`: {expected}")]
    InvalidValue {
        /// The value given.
        value: String,
        /// What a valid value looks like.
        expected: String,
    },
    /// A known property whose feature this version does not provide yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A required property is missing.
    #[error("required but not set")]
    Missing,
}

impl ConfigError {
    fn missing(key: &str) -> Self {
        ConfigError {
            key: key.into(),
            kind: ConfigErrorKind::Missing,
        }
    }

    /// `key` is set to `protocol`, which ignores settings that were given.
    fn protocol_needs(key: &str, protocol: SecurityProtocol, what: &str) -> Self {
        ConfigError::invalid(
            key,
            protocol.name(),
            &format!("{what}, for the settings given"),
        )
    }

    fn invalid(key: &str, value: &str, expected: &str) -> Self {
        ConfigError {
            key: key.into(),
            kind: ConfigErrorKind::InvalidValue {
                value: value.into(),
                expected: expected.into(),
            },
        }
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + fmt::Display>(
    key: &str,
    value: &str,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    let expected = format!("an integer from {min} to {max}");
    match value.trim().parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(ConfigError::invalid(key, value, &expected)),
    }
}

fn parse_millis(key: &str, value: &str) -> Result<Duration, ConfigError> {
    parse_number::<u64>(key, value, 0, i32::MAX as u64).map(Duration::from_millis)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(key, value, "true or false")),
    }
}

impl ConsumerConfig {
    /// A builder for a configuration, and through `build`, a consumer.
    pub fn builder() -> ConsumerBuilder<ConsumerConfig> {
        ConsumerBuilder::new()
    }

    /// A configuration from Java/librdkafka property names, starting from
    /// the defaults. Unknown keys and bad values are errors naming the key.
    ///
    /// ```
    /// use odradek_core::{ConsumerConfig, OffsetReset};
    ///
    /// let config = ConsumerConfig::from_properties([
    ///     ("bootstrap.servers", "localhost:9092"),
    ///     ("auto.offset.reset", "earliest"),
    ///     ("max.poll.records", "100"),
    /// ])
    /// .unwrap();
    /// assert_eq!(config.auto_offset_reset, OffsetReset::Earliest);
    ///
    /// let err = ConsumerConfig::from_properties([("fetch.max.wait", "5")]).unwrap_err();
    /// assert_eq!(err.key, "fetch.max.wait");
    /// ```
    pub fn from_properties<I, K, V>(properties: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ConsumerConfig::default();
        for (key, value) in properties {
            config.set(key.as_ref(), value.as_ref())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Sets one property by its Java/librdkafka name.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                let servers: Result<Vec<BrokerAddress>, _> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect();
                self.bootstrap_servers = servers.map_err(|e| {
                    ConfigError::invalid(key, value, &format!("host:port[,host:port...] ({e})"))
                })?;
            }
            "client.id" => self.client_id = value.into(),
            "client.rack" => self.client_rack = value.into(),
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.trim().to_ascii_lowercase().as_str() {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    _ => return Err(ConfigError::invalid(key, value, "earliest, latest or none")),
                }
            }
            "isolation.level" => {
                self.isolation_level = match value.trim().to_ascii_lowercase().as_str() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => {
                        return Err(ConfigError::invalid(
                            key,
                            value,
                            "read_uncommitted or read_committed",
                        ));
                    }
                }
            }
            "max.poll.records" => {
                self.max_poll_records = parse_number(key, value, 1, i32::MAX as usize)?;
            }
            "fetch.min.bytes" => self.fetch_min_bytes = parse_number(key, value, 0, i32::MAX)?,
            "fetch.max.bytes" => self.fetch_max_bytes = parse_number(key, value, 0, i32::MAX)?,
            "max.partition.fetch.bytes" | "fetch.message.max.bytes" => {
                self.max_partition_fetch_bytes = parse_number(key, value, 0, i32::MAX)?;
            }
            "fetch.max.wait.ms" | "fetch.wait.max.ms" => {
                self.fetch_max_wait = parse_millis(key, value)?;
            }
            "queued.max.messages.kbytes" => {
                let kbytes: usize = parse_number(key, value, 1, 2_097_151)?;
                self.fetch_buffer_max_bytes = kbytes * 1024;
            }
            "check.crcs" => self.check_crcs = parse_bool(key, value)?,
            "request.timeout.ms" => self.request_timeout = parse_millis(key, value)?,
            "default.api.timeout.ms" => self.default_api_timeout = parse_millis(key, value)?,
            "retry.backoff.ms" => self.retry_backoff = parse_millis(key, value)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_millis(key, value)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_millis(key, value)?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = parse_millis(key, value)?,
            "socket.connection.setup.timeout.ms" => {
                self.connection_setup_timeout = parse_millis(key, value)?;
            }
            "metadata.max.age.ms" | "topic.metadata.refresh.interval.ms" => {
                self.metadata_max_age = parse_millis(key, value)?;
            }
            "max.in.flight.requests.per.connection" | "max.in.flight" => {
                self.max_in_flight_requests_per_connection =
                    parse_number(key, value, 1, 1_000_000)?;
            }
            "receive.message.max.bytes" => {
                self.max_response_size = parse_number(key, value, 1000, i32::MAX as usize)?;
            }
            "security.protocol" => {
                self.security_protocol = SecurityProtocol::from_name(value).ok_or_else(|| {
                    ConfigError::invalid(key, value, "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
                })?;
            }
            "group.id" => {
                let id = value.trim();
                self.group_id = (!id.is_empty()).then(|| id.to_string());
            }
            "group.instance.id" => {
                let id = value.trim();
                self.group_instance_id = (!id.is_empty()).then(|| id.to_string());
            }
            "enable.auto.commit" => self.enable_auto_commit = parse_bool(key, value)?,
            "auto.commit.interval.ms" => self.auto_commit_interval = parse_millis(key, value)?,
            "enable.auto.offset.store" => self.enable_auto_offset_store = parse_bool(key, value)?,
            "allow.auto.create.topics" => self.allow_auto_create_topics = parse_bool(key, value)?,
            "exclude.internal.topics" => self.exclude_internal_topics = parse_bool(key, value)?,
            "enable.partition.eof" => self.enable_partition_eof = parse_bool(key, value)?,
            "socket.keepalive.enable" => self.socket_keepalive = parse_bool(key, value)?,
            "connections.max.idle.ms" => {
                self.connections_max_idle = match value.trim() {
                    "-1" | "0" => None,
                    _ => Some(parse_millis(key, value)?),
                };
            }
            "client.dns.lookup" => match value.trim() {
                // What every adapter does: try each address a name resolves
                // to, in order, until one connects.
                "use_all_dns_ips" => {}
                "resolve_canonical_bootstrap_servers_only" => {
                    return Err(ConfigError {
                        key: key.into(),
                        kind: ConfigErrorKind::Unsupported(
                            "resolve_canonical_bootstrap_servers_only: canonical names matter \
                             for Kerberos (GSSAPI), which Odradek does not speak; brokers are \
                             reached by the names given, trying each address (use_all_dns_ips)"
                                .into(),
                        ),
                    });
                }
                _ => return Err(ConfigError::invalid(key, value, "use_all_dns_ips")),
            },
            "session.timeout.ms" => self.session_timeout = parse_millis(key, value)?,
            "heartbeat.interval.ms" => self.heartbeat_interval = parse_millis(key, value)?,
            "max.poll.interval.ms" => self.max_poll_interval = parse_millis(key, value)?,
            "internal.leave.group.on.close" => {
                self.leave_group_on_close = Some(parse_bool(key, value)?);
            }
            "partition.assignment.strategy" => {
                self.partition_assignment_strategy = Assignors::from_names(value)
                    .map_err(|expected| ConfigError::invalid(key, value, &expected))?;
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                self.sasl.mechanism = Some(SaslMechanism::from_name(value).ok_or_else(|| {
                    ConfigError::invalid(
                        key,
                        value,
                        "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM",
                    )
                })?);
            }
            "sasl.username" => self.sasl.username = Some(value.into()),
            "sasl.password" => self.sasl.password = Some(SecretString::new(value)),
            "sasl.jaas.config" => self.set_jaas(value)?,
            "sasl.oauthbearer.config" => {
                let unsecured = UnsecuredJwtConfig::parse(value).map_err(|e| ConfigError {
                    key: key.into(),
                    kind: ConfigErrorKind::InvalidValue {
                        value: "(redacted)".into(),
                        expected: e.to_string(),
                    },
                })?;
                self.sasl.oauthbearer = Some(OAuthBearerSource::Unsecured(unsecured));
            }
            "sasl.oauthbearer.method" => match value.trim().to_ascii_lowercase().as_str() {
                "default" => {}
                "oidc" => {
                    return Err(ConfigError {
                        key: key.into(),
                        kind: ConfigErrorKind::Unsupported(
                            "oidc: fetch tokens in your code and give them through \
                             ConsumerBuilder::sasl_oauthbearer(provider)"
                                .into(),
                        ),
                    });
                }
                _ => return Err(ConfigError::invalid(key, value, "default")),
            },
            "sasl.aws.region" => self.aws_msk_iam_mut().region = value.trim().into(),
            "sasl.aws.access.key.id" => {
                self.update_aws_keys(|keys| keys.access_key_id = value.trim().into());
            }
            "sasl.aws.secret.access.key" => {
                self.update_aws_keys(|keys| keys.secret_access_key = SecretString::new(value));
            }
            "sasl.aws.session.token" => self.update_aws_keys(|keys| {
                keys.session_token = (!value.is_empty()).then(|| SecretString::new(value));
            }),
            "ssl.ca.location" => self.tls.ca_location = Some(value.trim().into()),
            "ssl.ca.pem" => self.tls.ca_pem = Some(value.into()),
            "ssl.certificate.location" => {
                self.tls.certificate_location = Some(value.trim().into());
            }
            "ssl.certificate.pem" => self.tls.certificate_pem = Some(value.into()),
            "ssl.key.location" => self.tls.key_location = Some(value.trim().into()),
            "ssl.key.pem" => self.tls.key_pem = Some(SecretString::new(value)),
            "ssl.endpoint.identification.algorithm" => {
                self.tls.verify_hostname = match value.trim().to_ascii_lowercase().as_str() {
                    "https" => true,
                    "none" | "" => false,
                    _ => return Err(ConfigError::invalid(key, "(redacted)", "https or none")),
                };
            }
            "ssl.key.password" => self.tls.key_password = Some(SecretString::new(value)),
            "ssl.truststore.location" | "ssl.keystore.location" => {
                return Err(ConfigError {
                    key: key.into(),
                    kind: ConfigErrorKind::Unsupported(
                        "Java key stores: give PEM files with ssl.ca.location, \
                         ssl.certificate.location and ssl.key.location"
                            .into(),
                    ),
                });
            }
            _ => {
                return Err(ConfigError {
                    key: key.into(),
                    kind: ConfigErrorKind::UnknownKey,
                });
            }
        }
        Ok(())
    }

    /// Checks the settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError {
                key: "bootstrap.servers".into(),
                kind: ConfigErrorKind::Missing,
            });
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(ConfigError::invalid(
                "retry.backoff.max.ms",
                &self.retry_backoff_max.as_millis().to_string(),
                "at least retry.backoff.ms",
            ));
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            return Err(ConfigError::invalid(
                "reconnect.backoff.max.ms",
                &self.reconnect_backoff_max.as_millis().to_string(),
                "at least reconnect.backoff.ms",
            ));
        }
        if self.max_poll_records == 0 {
            return Err(ConfigError::invalid("max.poll.records", "0", "at least 1"));
        }
        self.validate_security()?;
        if self.group_id.is_some() {
            if self.heartbeat_interval >= self.session_timeout {
                return Err(ConfigError::invalid(
                    "heartbeat.interval.ms",
                    &self.heartbeat_interval.as_millis().to_string(),
                    "less than session.timeout.ms",
                ));
            }
            if self.partition_assignment_strategy.is_empty() {
                return Err(ConfigError {
                    key: "partition.assignment.strategy".into(),
                    kind: ConfigErrorKind::Missing,
                });
            }
        }
        Ok(())
    }
}

impl ConsumerConfig {
    fn aws_msk_iam_mut(&mut self) -> &mut AwsMskIamConfig {
        self.sasl
            .aws_msk_iam
            .get_or_insert_with(|| AwsMskIamConfig {
                region: String::new(),
                credentials: AwsCredentialsSource::Static(AwsCredentials::new(
                    String::new(),
                    String::new(),
                    None,
                )),
            })
    }

    /// Changes the fixed `AWS_MSK_IAM` keys (replacing a provider).
    fn update_aws_keys(&mut self, change: impl FnOnce(&mut AwsCredentials)) {
        let aws = self.aws_msk_iam_mut();
        let mut keys = match &aws.credentials {
            AwsCredentialsSource::Static(keys) => keys.clone(),
            AwsCredentialsSource::Provider(_) => {
                AwsCredentials::new(String::new(), String::new(), None)
            }
        };
        change(&mut keys);
        aws.credentials = AwsCredentialsSource::Static(keys);
    }

    /// Applies a `sasl.jaas.config` entry: the PLAIN and SCRAM login
    /// modules' `username` and `password`.
    fn set_jaas(&mut self, value: &str) -> Result<(), ConfigError> {
        const KEY: &str = "sasl.jaas.config";
        let entry = jaas::parse(value).map_err(|e| ConfigError {
            key: KEY.into(),
            kind: ConfigErrorKind::InvalidValue {
                value: "(redacted)".into(),
                expected: e.to_string(),
            },
        })?;
        let module = entry.module.rsplit('.').next().unwrap_or_default();
        if !matches!(module, "PlainLoginModule" | "ScramLoginModule") {
            return Err(ConfigError::invalid(
                KEY,
                &entry.module,
                "PlainLoginModule or ScramLoginModule with username and password",
            ));
        }
        for option in entry.options.keys() {
            if !matches!(option.as_str(), "username" | "password") {
                return Err(ConfigError::invalid(
                    KEY,
                    option,
                    "only the options username and password",
                ));
            }
        }
        self.sasl.login_module = Some(module.to_string());
        if let Some(user) = entry.options.get("username") {
            self.sasl.username = Some(user.clone());
        }
        if let Some(password) = entry.options.get("password") {
            self.sasl.password = Some(SecretString::new(password.clone()));
        }
        Ok(())
    }

    /// Checks that the SASL and TLS settings fit the security protocol and
    /// each other: nothing set that the protocol would ignore.
    fn validate_security(&self) -> Result<(), ConfigError> {
        let protocol = self.security_protocol;
        let needs = |key: &str, what: &str| ConfigError::protocol_needs(key, protocol, what);
        let missing = ConfigError::missing;
        let sasl = &self.sasl;
        let sasl_set = sasl.mechanism.is_some()
            || sasl.username.is_some()
            || sasl.password.is_some()
            || sasl.login_module.is_some()
            || sasl.oauthbearer.is_some()
            || sasl.aws_msk_iam.is_some();
        if sasl_set && !protocol.uses_sasl() {
            return Err(needs("security.protocol", "SASL_PLAINTEXT or SASL_SSL"));
        }
        if protocol.uses_sasl() {
            let mechanism = sasl.mechanism.ok_or_else(|| missing("sasl.mechanism"))?;
            let unused = |key: &str| {
                ConfigError::invalid(
                    key,
                    "(set)",
                    &format!("unset: sasl.mechanism {} does not use it", mechanism.name()),
                )
            };
            let password_based =
                matches!(mechanism, SaslMechanism::Plain | SaslMechanism::Scram(_));
            if !password_based {
                if sasl.username.is_some() {
                    return Err(unused("sasl.username"));
                }
                if sasl.password.is_some() {
                    return Err(unused("sasl.password"));
                }
                if sasl.login_module.is_some() {
                    return Err(unused("sasl.jaas.config"));
                }
            }
            if mechanism != SaslMechanism::OAuthBearer && sasl.oauthbearer.is_some() {
                return Err(unused("sasl.oauthbearer.config"));
            }
            if mechanism != SaslMechanism::AwsMskIam && sasl.aws_msk_iam.is_some() {
                return Err(unused("sasl.aws.region"));
            }
            match mechanism {
                SaslMechanism::OAuthBearer if sasl.oauthbearer.is_none() => {
                    return Err(missing("sasl.oauthbearer.config"));
                }
                SaslMechanism::AwsMskIam => validate_aws(sasl.aws_msk_iam.as_ref())?,
                SaslMechanism::Plain | SaslMechanism::Scram(_) => {
                    validate_password(sasl, mechanism)?
                }
                SaslMechanism::OAuthBearer => {}
            }
        }
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let protocol = self.security_protocol;
        let needs = |key: &str, what: &str| ConfigError::protocol_needs(key, protocol, what);
        let missing = ConfigError::missing;
        let tls = &self.tls;
        let tls_set = tls.ca_location.is_some()
            || tls.ca_pem.is_some()
            || tls.certificate_location.is_some()
            || tls.certificate_pem.is_some()
            || tls.key_location.is_some()
            || tls.key_pem.is_some()
            || tls.key_password.is_some()
            || !tls.verify_hostname;
        if tls_set && !protocol.uses_tls() {
            return Err(needs("security.protocol", "SSL or SASL_SSL"));
        }
        if tls.ca_location.is_some() && tls.ca_pem.is_some() {
            return Err(ConfigError::invalid(
                "ssl.ca.pem",
                "(PEM)",
                "either ssl.ca.location or ssl.ca.pem, not both",
            ));
        }
        let has_cert = tls.certificate_location.is_some() || tls.certificate_pem.is_some();
        let has_key = tls.key_location.is_some() || tls.key_pem.is_some();
        if tls.certificate_location.is_some() && tls.certificate_pem.is_some() {
            return Err(ConfigError::invalid(
                "ssl.certificate.pem",
                "(PEM)",
                "either ssl.certificate.location or ssl.certificate.pem, not both",
            ));
        }
        if tls.key_location.is_some() && tls.key_pem.is_some() {
            return Err(ConfigError::invalid(
                "ssl.key.pem",
                "(redacted)",
                "either ssl.key.location or ssl.key.pem, not both",
            ));
        }
        if has_cert && !has_key {
            return Err(missing("ssl.key.location"));
        }
        if has_key && !has_cert {
            return Err(missing("ssl.certificate.location"));
        }
        if tls.key_password.is_some() && !has_key {
            return Err(missing("ssl.key.location"));
        }
        Ok(())
    }
}

/// PLAIN and SCRAM need a user name and password without NUL characters,
/// and a `sasl.jaas.config` login module that fits the mechanism.
fn validate_password(sasl: &SaslConfig, mechanism: SaslMechanism) -> Result<(), ConfigError> {
    let missing = ConfigError::missing;
    let username = sasl
        .username
        .as_deref()
        .ok_or_else(|| missing("sasl.username"))?;
    if sasl.password.is_none() {
        return Err(missing("sasl.password"));
    }
    if username.is_empty() || username.contains('\0') {
        return Err(ConfigError::invalid(
            "sasl.username",
            username,
            "a non-empty name without NUL characters",
        ));
    }
    if sasl
        .password
        .as_ref()
        .is_some_and(|p| p.expose().contains('\0'))
    {
        return Err(ConfigError::invalid(
            "sasl.password",
            "(redacted)",
            "a password without NUL characters",
        ));
    }
    let module_fits = match (sasl.login_module.as_deref(), mechanism) {
        (None, _) => true,
        (Some(module), SaslMechanism::Plain) => module == "PlainLoginModule",
        (Some(module), SaslMechanism::Scram(_)) => module == "ScramLoginModule",
        (Some(_), _) => false,
    };
    if !module_fits {
        return Err(ConfigError::invalid(
            "sasl.jaas.config",
            sasl.login_module.as_deref().unwrap_or_default(),
            &format!("the login module for sasl.mechanism {}", mechanism.name()),
        ));
    }
    Ok(())
}

/// `AWS_MSK_IAM` needs a region and, for fixed keys, both parts of them.
fn validate_aws(aws: Option<&AwsMskIamConfig>) -> Result<(), ConfigError> {
    let missing = ConfigError::missing;
    let aws = aws.ok_or_else(|| missing("sasl.aws.region"))?;
    if aws.region.trim().is_empty() {
        return Err(missing("sasl.aws.region"));
    }
    if let AwsCredentialsSource::Static(keys) = &aws.credentials {
        if keys.access_key_id.is_empty() {
            return Err(missing("sasl.aws.access.key.id"));
        }
        if keys.secret_access_key.is_empty() {
            return Err(missing("sasl.aws.secret.access.key"));
        }
    }
    Ok(())
}

/// Something that can be built from a [`ConsumerConfig`]: the adapters'
/// consumers, and the configuration itself.
pub trait FromConfig: Sized {
    /// What building can fail with.
    type Error: From<ConfigError>;
    /// Builds from a validated configuration.
    fn from_config(config: ConsumerConfig) -> Result<Self, Self::Error>;
}

impl FromConfig for ConsumerConfig {
    type Error = ConfigError;
    fn from_config(config: ConsumerConfig) -> Result<Self, ConfigError> {
        Ok(config)
    }
}

/// What a builder hands a consumer besides its configuration: the
/// rebalance listener and the interceptors.
#[derive(Default)]
pub struct BuilderParts {
    /// Hears the rebalances of every `subscribe` that gives no listener.
    pub rebalance_listener: Option<Box<dyn RebalanceListener>>,
    /// Run in this order on every poll's records and every commit.
    pub interceptors: Vec<Box<dyn ConsumerInterceptor>>,
}

impl fmt::Debug for BuilderParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuilderParts")
            .field("rebalance_listener", &self.rebalance_listener.is_some())
            .field("interceptors", &self.interceptors.len())
            .finish()
    }
}

/// A consumer that takes [`BuilderParts`] (a listener, interceptors) from
/// its builder: the runtime crates' consumers.
pub trait FromBuilder: FromConfig {
    /// Builds from a validated configuration and the builder's parts.
    fn from_builder(config: ConsumerConfig, parts: BuilderParts) -> Result<Self, Self::Error>;
}

/// How the builder finishes once it holds parts.
type FromParts<T> = fn(ConsumerConfig, BuilderParts) -> Result<T, <T as FromConfig>::Error>;

/// A typed builder for a consumer (or a bare [`ConsumerConfig`]).
///
/// ```
/// use std::time::Duration;
/// use odradek_core::{ConsumerConfig, IsolationLevel, OffsetReset};
///
/// let config = ConsumerConfig::builder()
///     .bootstrap_servers("localhost:9092")
///     .auto_offset_reset(OffsetReset::Earliest)
///     .isolation_level(IsolationLevel::ReadCommitted)
///     .fetch_max_wait(Duration::from_millis(100))
///     .build()
///     .unwrap();
/// assert_eq!(config.fetch_max_wait, Duration::from_millis(100));
/// ```
pub struct ConsumerBuilder<T: FromConfig = ConsumerConfig> {
    config: ConsumerConfig,
    error: Option<ConfigError>,
    /// The listener and interceptors given.
    parts: BuilderParts,
    /// Set once parts are given (only targets that take them can).
    from_parts: Option<FromParts<T>>,
    _target: PhantomData<fn() -> T>,
}

impl<T: FromConfig> fmt::Debug for ConsumerBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.config)
            .field("error", &self.error)
            .field("parts", &self.parts)
            .finish()
    }
}

impl<T: FromConfig> Default for ConsumerBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    )*};
}

impl<T: FromBuilder> ConsumerBuilder<T> {
    /// The consumer's rebalance listener (krafka's builder option): it
    /// hears of assigned, revoked and lost partitions for every
    /// `subscribe` call that gives no listener of its own.
    ///
    /// ```no_run
    /// # use odradek_core::{ConsumerBuilder, FromBuilder, RebalanceContext, RebalanceListener, TopicPartition};
    /// struct Log;
    /// impl RebalanceListener for Log {
    ///     fn on_partitions_assigned(&mut self, _: &mut RebalanceContext<'_>, p: &[TopicPartition]) {
    ///         println!("assigned {p:?}");
    ///     }
    ///     fn on_partitions_revoked(&mut self, _: &mut RebalanceContext<'_>, p: &[TopicPartition]) {
    ///         println!("revoked {p:?}");
    ///     }
    /// }
    /// # fn f<C: FromBuilder>() -> Result<C, C::Error> {
    /// // C: odradek_tokio::Consumer, odradek_async_std::Consumer, ...
    /// let consumer = ConsumerBuilder::<C>::new()
    ///     .bootstrap_servers("localhost:9092")
    ///     .group_id("billing")
    ///     .rebalance_listener(Log)
    ///     .build()?;
    /// # Ok(consumer) }
    /// ```
    pub fn rebalance_listener(mut self, listener: impl RebalanceListener + 'static) -> Self {
        self.parts.rebalance_listener = Some(Box::new(listener));
        self.from_parts = Some(T::from_builder);
        self
    }

    /// Adds an interceptor (see [`ConsumerInterceptor`]): it sees every
    /// poll's records before the application and every commit once it
    /// completes. Several run in the order added.
    pub fn interceptor(mut self, interceptor: impl ConsumerInterceptor + 'static) -> Self {
        self.parts.interceptors.push(Box::new(interceptor));
        self.from_parts = Some(T::from_builder);
        self
    }
}

impl<T: FromConfig> ConsumerBuilder<T> {
    /// A builder starting from the defaults.
    pub fn new() -> Self {
        Self {
            config: ConsumerConfig::default(),
            error: None,
            parts: BuilderParts::default(),
            from_parts: None,
            _target: PhantomData,
        }
    }

    /// One built-in assignment strategy (`partition.assignment.strategy`).
    ///
    /// ```
    /// use odradek_core::{ConsumerConfig, PartitionAssignmentStrategy};
    ///
    /// let config = ConsumerConfig::builder()
    ///     .bootstrap_servers("localhost:9092")
    ///     .group_id("billing")
    ///     .assignment_strategy(PartitionAssignmentStrategy::CooperativeSticky)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.partition_assignment_strategy.names(), ["cooperative-sticky"]);
    /// ```
    pub fn assignment_strategy(mut self, strategy: PartitionAssignmentStrategy) -> Self {
        self.config.partition_assignment_strategy = strategy.into();
        self
    }

    /// Several built-in strategies, preferred first (the group uses the
    /// first every member supports).
    ///
    /// ```
    /// use odradek_core::{ConsumerConfig, PartitionAssignmentStrategy as S};
    ///
    /// let config = ConsumerConfig::builder()
    ///     .bootstrap_servers("localhost:9092")
    ///     .assignment_strategies([S::Range, S::CooperativeSticky])
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.partition_assignment_strategy.names(), ["range", "cooperative-sticky"]);
    /// ```
    pub fn assignment_strategies(
        mut self,
        strategies: impl IntoIterator<Item = PartitionAssignmentStrategy>,
    ) -> Self {
        self.config.partition_assignment_strategy = strategies.into_iter().collect();
        self
    }

    /// A builder starting from `config`.
    pub fn from_config(config: ConsumerConfig) -> Self {
        Self {
            config,
            error: None,
            parts: BuilderParts::default(),
            from_parts: None,
            _target: PhantomData,
        }
    }

    /// `bootstrap.servers`, as a comma-separated `host:port` list.
    pub fn bootstrap_servers(self, servers: impl AsRef<str>) -> Self {
        self.property("bootstrap.servers", servers.as_ref())
    }

    /// Any property by its Java/librdkafka name; an error surfaces from `build`.
    pub fn property(mut self, key: &str, value: &str) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.set(key, value) {
                self.error = Some(e);
            }
        }
        self
    }

    /// `client.id`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = id.into();
        self
    }

    /// `client.rack`.
    pub fn client_rack(mut self, rack: impl Into<String>) -> Self {
        self.config.client_rack = rack.into();
        self
    }

    setters! {
        /// `auto.offset.reset`.
        auto_offset_reset: OffsetReset;
        /// `isolation.level`.
        isolation_level: IsolationLevel;
        /// `max.poll.records`.
        max_poll_records: usize;
        /// `fetch.min.bytes`.
        fetch_min_bytes: i32;
        /// `fetch.max.bytes`.
        fetch_max_bytes: i32;
        /// `max.partition.fetch.bytes`.
        max_partition_fetch_bytes: i32;
        /// `fetch.max.wait.ms`.
        fetch_max_wait: std::time::Duration;
        /// The memory bound on fetched data in bytes (`queued.max.messages.kbytes` × 1024).
        fetch_buffer_max_bytes: usize;
        /// `check.crcs`.
        check_crcs: bool;
        /// `request.timeout.ms`.
        request_timeout: std::time::Duration;
        /// `default.api.timeout.ms`.
        default_api_timeout: std::time::Duration;
        /// `retry.backoff.ms`.
        retry_backoff: std::time::Duration;
        /// `retry.backoff.max.ms`.
        retry_backoff_max: std::time::Duration;
        /// `reconnect.backoff.ms`.
        reconnect_backoff: std::time::Duration;
        /// `reconnect.backoff.max.ms`.
        reconnect_backoff_max: std::time::Duration;
        /// `socket.connection.setup.timeout.ms`.
        connection_setup_timeout: std::time::Duration;
        /// `metadata.max.age.ms`.
        metadata_max_age: std::time::Duration;
        /// `max.in.flight.requests.per.connection`.
        max_in_flight_requests_per_connection: usize;
        /// The largest response frame accepted.
        max_response_size: usize;
        /// The most bytes one compressed batch may decompress to.
        max_decompressed_batch_bytes: usize;
        /// `session.timeout.ms`.
        session_timeout: std::time::Duration;
        /// `heartbeat.interval.ms`.
        heartbeat_interval: std::time::Duration;
        /// `max.poll.interval.ms`.
        max_poll_interval: std::time::Duration;
        /// `enable.auto.commit`.
        enable_auto_commit: bool;
        /// `auto.commit.interval.ms`.
        auto_commit_interval: std::time::Duration;
        /// `enable.auto.offset.store`: `false` commits only stored offsets.
        enable_auto_offset_store: bool;
        /// `allow.auto.create.topics`.
        allow_auto_create_topics: bool;
        /// `exclude.internal.topics`.
        exclude_internal_topics: bool;
        /// `enable.partition.eof`: polls report partitions that reached their end.
        enable_partition_eof: bool;
        /// `socket.keepalive.enable`.
        socket_keepalive: bool;
        /// `connections.max.idle.ms` (`None`: never close idle connections).
        connections_max_idle: Option<std::time::Duration>;
        /// `partition.assignment.strategy`.
        partition_assignment_strategy: Assignors;
    }

    /// `group.id`.
    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.config.group_id = Some(id.into());
        self
    }

    /// `group.instance.id`: makes this member static.
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.config.group_instance_id = Some(id.into());
        self
    }

    /// Whether to send LeaveGroup on close (default: yes for dynamic
    /// members, no for static ones).
    pub fn leave_group_on_close(mut self, leave: bool) -> Self {
        self.config.leave_group_on_close = Some(leave);
        self
    }

    /// `security.protocol`.
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.config.security_protocol = protocol;
        self
    }

    /// SASL `PLAIN` with a user name and password (inside TLS if TLS is
    /// also set, `SASL_PLAINTEXT` otherwise).
    pub fn sasl_plain(
        self,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        self.sasl(SaslMechanism::Plain, username.into(), password.into())
    }

    /// SASL `SCRAM-SHA-256` with a user name and password.
    pub fn sasl_scram_sha256(
        self,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        let mechanism = SaslMechanism::Scram(crate::sasl::ScramMechanism::Sha256);
        self.sasl(mechanism, username.into(), password.into())
    }

    /// SASL `SCRAM-SHA-512` with a user name and password.
    pub fn sasl_scram_sha512(
        self,
        username: impl Into<String>,
        password: impl Into<SecretString>,
    ) -> Self {
        let mechanism = SaslMechanism::Scram(crate::sasl::ScramMechanism::Sha512);
        self.sasl(mechanism, username.into(), password.into())
    }

    /// SASL `OAUTHBEARER` with tokens from `provider`.
    pub fn sasl_oauthbearer(self, provider: impl OAuthBearerTokenProvider + 'static) -> Self {
        let source = OAuthBearerSource::Provider(Provider(std::sync::Arc::new(provider)));
        self.with_sasl(SaslMechanism::OAuthBearer, |sasl| {
            sasl.oauthbearer = Some(source)
        })
    }

    /// SASL `AWS_MSK_IAM` with fixed keys (`secret_key` is the secret
    /// access key) in `region`.
    pub fn aws_msk_iam(
        self,
        access_key: impl Into<String>,
        secret_key: impl Into<SecretString>,
        region: impl Into<String>,
    ) -> Self {
        let keys = AwsCredentials::new(access_key.into(), secret_key.into(), None);
        self.aws_msk_iam_with(AwsCredentialsSource::Static(keys), region.into())
    }

    /// SASL `AWS_MSK_IAM` with temporary credentials (an STS session
    /// token) in `region`.
    pub fn aws_msk_iam_session(
        self,
        access_key: impl Into<String>,
        secret_key: impl Into<SecretString>,
        session_token: impl Into<SecretString>,
        region: impl Into<String>,
    ) -> Self {
        let keys = AwsCredentials::new(
            access_key.into(),
            secret_key.into(),
            Some(session_token.into()),
        );
        self.aws_msk_iam_with(AwsCredentialsSource::Static(keys), region.into())
    }

    /// SASL `AWS_MSK_IAM` with credentials from `provider` in `region`.
    pub fn aws_msk_iam_provider(
        self,
        provider: impl AwsCredentialsProvider + 'static,
        region: impl Into<String>,
    ) -> Self {
        let source = AwsCredentialsSource::Provider(Provider(std::sync::Arc::new(provider)));
        self.aws_msk_iam_with(source, region.into())
    }

    fn aws_msk_iam_with(self, credentials: AwsCredentialsSource, region: String) -> Self {
        let aws = AwsMskIamConfig {
            region,
            credentials,
        };
        self.with_sasl(SaslMechanism::AwsMskIam, |sasl| {
            sasl.aws_msk_iam = Some(aws)
        })
    }

    fn sasl(self, mechanism: SaslMechanism, username: String, password: SecretString) -> Self {
        self.with_sasl(mechanism, |sasl| {
            sasl.username = Some(username);
            sasl.password = Some(password);
        })
    }

    /// Sets the mechanism and its credentials (clearing any other
    /// mechanism's), and turns SASL on.
    fn with_sasl(mut self, mechanism: SaslMechanism, set: impl FnOnce(&mut SaslConfig)) -> Self {
        let sasl = &mut self.config.sasl;
        *sasl = SaslConfig::default();
        sasl.mechanism = Some(mechanism);
        set(sasl);
        self.config.security_protocol = match self.config.security_protocol {
            SecurityProtocol::Plaintext => SecurityProtocol::SaslPlaintext,
            SecurityProtocol::Ssl => SecurityProtocol::SaslSsl,
            other => other,
        };
        self
    }

    /// TLS with these settings (`SSL`, or `SASL_SSL` if SASL is also set).
    /// `TlsConfig::default()` trusts the system's CA certificates.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config.tls = tls;
        self.config.security_protocol = match self.config.security_protocol {
            SecurityProtocol::Plaintext => SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext => SecurityProtocol::SaslSsl,
            other => other,
        };
        self
    }

    /// Fixes the seed for backoff jitter (for reproducible runs).
    pub fn random_seed(mut self, seed: u64) -> Self {
        self.config.random_seed = Some(seed);
        self
    }

    /// The configuration so far (before validation).
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Validates the configuration and builds the target.
    pub fn build(self) -> Result<T, T::Error> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        self.config.validate()?;
        match self.from_parts {
            Some(from_parts) => from_parts(self.config, self.parts),
            None => T::from_config(self.config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_java_client() {
        let c = ConsumerConfig::default();
        assert_eq!(c.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(c.max_poll_records, 500);
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.request_timeout, Duration::from_secs(30));
        assert_eq!(c.default_api_timeout, Duration::from_secs(60));
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.retry_backoff_max, Duration::from_secs(1));
        assert_eq!(c.reconnect_backoff, Duration::from_millis(50));
        assert_eq!(c.reconnect_backoff_max, Duration::from_secs(1));
        assert_eq!(c.connection_setup_timeout, Duration::from_secs(10));
        assert_eq!(c.metadata_max_age, Duration::from_secs(300));
        assert!(c.check_crcs);
    }

    #[test]
    fn the_properties_users_bring_from_other_clients_work_or_say_why_not() {
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "b:9092"),
            ("enable.auto.offset.store", "false"),
            ("allow.auto.create.topics", "true"),
            ("exclude.internal.topics", "false"),
            ("enable.partition.eof", "true"),
            ("socket.keepalive.enable", "true"),
            ("connections.max.idle.ms", "180000"),
            ("client.dns.lookup", "use_all_dns_ips"),
        ])
        .unwrap();
        assert!(!c.enable_auto_offset_store);
        assert!(c.allow_auto_create_topics);
        assert!(!c.exclude_internal_topics);
        assert!(c.enable_partition_eof);
        assert!(c.socket_keepalive);
        assert_eq!(c.connections_max_idle, Some(Duration::from_secs(180)));
        let d = ConsumerConfig::default();
        assert!(d.enable_auto_offset_store && !d.allow_auto_create_topics);
        assert!(d.exclude_internal_topics && !d.enable_partition_eof && !d.socket_keepalive);
        assert_eq!(d.connections_max_idle, Some(Duration::from_secs(540)));
        for never in ["-1", "0"] {
            let c = ConsumerConfig::from_properties([
                ("bootstrap.servers", "b:9092"),
                ("connections.max.idle.ms", never),
            ])
            .unwrap();
            assert_eq!(c.connections_max_idle, None);
        }
        let canonical = ConsumerConfig::from_properties([
            ("bootstrap.servers", "b:9092"),
            (
                "client.dns.lookup",
                "resolve_canonical_bootstrap_servers_only",
            ),
        ])
        .unwrap_err();
        assert_eq!(canonical.key, "client.dns.lookup");
        assert!(matches!(
            &canonical.kind,
            ConfigErrorKind::Unsupported(why) if why.contains("Kerberos")
        ));
        let bad = ConsumerConfig::from_properties([
            ("bootstrap.servers", "b:9092"),
            ("client.dns.lookup", "maybe"),
        ])
        .unwrap_err();
        assert!(matches!(bad.kind, ConfigErrorKind::InvalidValue { .. }));
    }

    #[test]
    fn properties_parse_with_java_and_librdkafka_names() {
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "a:1, b:2"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "smallest"),
            ("fetch.wait.max.ms", "250"),
            ("queued.max.messages.kbytes", "1024"),
            ("client.id", "app"),
        ])
        .unwrap();
        assert_eq!(
            c.bootstrap_servers,
            vec![BrokerAddress::new("a", 1), BrokerAddress::new("b", 2)]
        );
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(c.auto_offset_reset, OffsetReset::Earliest);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(250));
        assert_eq!(c.fetch_buffer_max_bytes, 1024 * 1024);
        assert_eq!(c.client_id, "app");
    }

    #[test]
    fn errors_name_the_key() {
        let err = |props: &[(&str, &str)]| {
            let mut all = vec![("bootstrap.servers", "h:1")];
            all.extend_from_slice(props);
            ConsumerConfig::from_properties(all).unwrap_err()
        };
        let e = err(&[("max.poll.records", "0")]);
        assert_eq!(e.key, "max.poll.records");
        assert!(matches!(e.kind, ConfigErrorKind::InvalidValue { .. }));
        assert_eq!(
            err(&[("no.such.key", "1")]).kind,
            ConfigErrorKind::UnknownKey
        );
        assert_eq!(
            err(&[("auto.offset.reset", "sideways")]).key,
            "auto.offset.reset"
        );
        assert_eq!(err(&[("fetch.max.wait.ms", "-5")]).key, "fetch.max.wait.ms");
        assert_eq!(
            err(&[("bootstrap.servers", "nohost")]).key,
            "bootstrap.servers"
        );
        let e = err(&[("partition.assignment.strategy", "range,fastest")]);
        assert_eq!(e.key, "partition.assignment.strategy");
        assert!(e.to_string().contains("fastest"), "{e}");
        let e = err(&[
            ("group.id", "g"),
            ("session.timeout.ms", "3000"),
            ("heartbeat.interval.ms", "3000"),
        ]);
        assert_eq!(e.key, "heartbeat.interval.ms");
        assert_eq!(
            err(&[("security.protocol", "TLS")]).key,
            "security.protocol"
        );
        assert_eq!(
            ConsumerConfig::from_properties([("client.id", "x")])
                .unwrap_err()
                .kind,
            ConfigErrorKind::Missing
        );
        let e = err(&[("retry.backoff.ms", "5000")]);
        assert_eq!(e.key, "retry.backoff.max.ms");
        assert!(e.to_string().contains("retry.backoff.max.ms"), "{e}");
    }

    #[test]
    fn group_settings_have_java_defaults_and_parse() {
        let c = ConsumerConfig::default();
        assert_eq!(c.group_id, None);
        assert_eq!(c.session_timeout, Duration::from_secs(45));
        assert_eq!(c.heartbeat_interval, Duration::from_secs(3));
        assert_eq!(c.max_poll_interval, Duration::from_secs(300));
        assert!(c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval, Duration::from_secs(5));
        assert_eq!(
            c.partition_assignment_strategy.names(),
            ["range", "cooperative-sticky"]
        );
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("group.id", "orders"),
            ("group.instance.id", "worker-1"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "2000"),
            ("enable.auto.commit", "false"),
            (
                "partition.assignment.strategy",
                "org.apache.kafka.clients.consumer.RoundRobinAssignor, sticky",
            ),
        ])
        .unwrap();
        assert_eq!(c.group_id.as_deref(), Some("orders"));
        assert_eq!(c.group_instance_id.as_deref(), Some("worker-1"));
        assert_eq!(c.session_timeout, Duration::from_secs(6));
        assert!(!c.enable_auto_commit);
        assert_eq!(
            c.partition_assignment_strategy.names(),
            ["roundrobin", "sticky"]
        );
    }

    #[test]
    fn builder_reports_the_first_bad_property() {
        let result = ConsumerConfig::builder()
            .bootstrap_servers("h:1")
            .property("fetch.min.bytes", "lots")
            .property("max.poll.records", "0")
            .build();
        assert_eq!(result.unwrap_err().key, "fetch.min.bytes");
    }

    #[test]
    fn security_settings_parse_and_never_show_secrets() {
        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"alice\" password=\"pa55-word\";",
            ),
            ("ssl.ca.location", "/etc/ca.pem"),
            ("ssl.certificate.location", "/etc/me.pem"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----k3y"),
            ("ssl.endpoint.identification.algorithm", "none"),
        ])
        .unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.sasl.username.as_deref(), Some("alice"));
        assert_eq!(c.sasl.password.as_ref().unwrap().expose(), "pa55-word");
        assert!(!c.tls.verify_hostname);
        let shown = format!("{c:?}");
        assert!(!shown.contains("pa55") && !shown.contains("k3y"), "{shown}");

        let c = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "AWS_MSK_IAM"),
            ("sasl.aws.region", "eu-west-1"),
            ("sasl.aws.access.key.id", "AKIA1"),
            ("sasl.aws.secret.access.key", "wJalr-s3cret"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn security_settings_that_do_not_fit_are_errors() {
        let err = |props: &[(&str, &str)]| {
            let mut all = vec![("bootstrap.servers", "h:1")];
            all.extend_from_slice(props);
            ConsumerConfig::from_properties(all).unwrap_err()
        };
        let plain = [("sasl.mechanism", "PLAIN"), ("sasl.username", "u")];
        assert_eq!(err(&plain).key, "security.protocol");
        assert_eq!(
            err(&[("ssl.ca.location", "/ca.pem")]).key,
            "security.protocol"
        );
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
        ]);
        assert_eq!(
            (e.key.as_str(), e.kind),
            ("sasl.username", ConfigErrorKind::Missing)
        );
        let e = err(&[("security.protocol", "SASL_SSL")]);
        assert_eq!(e.key, "sasl.mechanism");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"u\" password=\"hunter2\";",
            ),
        ]);
        assert_eq!(e.key, "sasl.jaas.config");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = err(&[("sasl.jaas.config", "Broken required password=\"hunter2")]);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = err(&[("sasl.mechanism", "GSSAPI")]);
        assert_eq!(e.key, "sasl.mechanism");
        let e = err(&[("sasl.oauthbearer.method", "oidc")]);
        assert!(matches!(e.kind, ConfigErrorKind::Unsupported(_)));
        let e = err(&[("security.protocol", "SSL"), ("ssl.key.password", "x")]);
        assert_eq!(
            (e.key.as_str(), e.kind),
            ("ssl.key.location", ConfigErrorKind::Missing)
        );
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.certificate.location", "/me.pem"),
        ]);
        assert_eq!(e.key, "ssl.key.location");
        let e = err(&[
            ("security.protocol", "SSL"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.ca.pem", "-----BEGIN CERTIFICATE-----"),
        ]);
        assert_eq!(e.key, "ssl.ca.pem");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "AWS_MSK_IAM"),
            ("sasl.aws.access.key.id", "AKIA1"),
        ]);
        assert_eq!(e.key, "sasl.aws.region");
        let e = err(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.username", "u"),
        ]);
        assert_eq!(e.key, "sasl.username");
    }

    #[test]
    fn builder_methods_turn_on_the_protocol_they_need() {
        let c = ConsumerConfig::builder()
            .bootstrap_servers("h:1")
            .sasl_scram_sha256("u", "p")
            .tls(TlsConfig::default())
            .build()
            .unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::SaslSsl);
        let c = ConsumerConfig::builder()
            .bootstrap_servers("h:1")
            .tls(TlsConfig::default())
            .aws_msk_iam("AKIA1", "k", "us-east-1")
            .build()
            .unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.sasl.mechanism, Some(SaslMechanism::AwsMskIam));
    }
}
