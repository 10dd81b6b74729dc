//! Broker administration for the tests (creating and deleting topics,
//! deleting records, setting features, creating SCRAM users), spoken with
//! the independent `kafka-protocol` codec over one blocking connection.
//!
//! It is test equipment, not the consumer: one request at a time, no
//! retries beyond waiting for a new topic to get its leaders. Using another
//! codec than Odradek's keeps a codec bug from hiding in its own set-up.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, CreateTopicsRequest,
    DeleteRecordsRequest, DeleteTopicsRequest, DescribeUserScramCredentialsRequest,
    MetadataRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, TopicName, UpdateFeaturesRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use crate::HarnessError;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new topic may take to have a leader for every partition.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new SCRAM credential may take to be listed by the broker.
const SCRAM_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A SCRAM mechanism, numbered as AlterUserScramCredentials numbers it
/// (KIP-554).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramMechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramMechanism {
    /// The SASL name, `"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn wire(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// `SaltedPassword := Hi(password, salt, iterations)` of RFC 5802, which
    /// is PBKDF2 with this mechanism's HMAC and one hash length of output.
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let (algorithm, len) = match self {
            ScramMechanism::Sha256 => (ring::pbkdf2::PBKDF2_HMAC_SHA256, 32),
            ScramMechanism::Sha512 => (ring::pbkdf2::PBKDF2_HMAC_SHA512, 64),
        };
        let mut out = vec![0u8; len];
        let iterations =
            std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        ring::pbkdf2::derive(algorithm, iterations, salt, password.as_bytes(), &mut out);
        out
    }
}

/// A blocking admin connection to one broker.
pub struct Admin {
    stream: TcpStream,
    addr: SocketAddr,
    correlation_id: i32,
    /// The broker's supported versions by API key.
    versions: BTreeMap<i16, (i16, i16)>,
}

impl Admin {
    /// Connects and asks the broker which versions it supports.
    pub fn connect(addr: SocketAddr) -> Result<Admin, HarnessError> {
        let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
            .map_err(|e| HarnessError::io(format!("admin: connecting to {addr}"), e))?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)))
            .map_err(|e| HarnessError::io("admin: setting socket timeouts", e))?;
        let mut admin = Admin {
            stream,
            addr,
            correlation_id: 0,
            versions: BTreeMap::new(),
        };
        // Version 0 is understood by every broker and lists the rest.
        let answer = admin.call_at(&ApiVersionsRequest::default(), 0)?;
        if answer.error_code != 0 {
            return Err(admin.failed("ApiVersions", answer.error_code, &answer));
        }
        admin.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(admin)
    }

    /// Creates `name` with `partitions` partitions (replication factor 1)
    /// and waits until Metadata names a leader for every partition.
    pub fn create_topic(&mut self, name: &str, partitions: u32) -> Result<(), HarnessError> {
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions as i32)
            .with_replication_factor(1);
        let request = CreateTopicsRequest::default()
            .with_topics(vec![topic])
            .with_timeout_ms(REQUEST_TIMEOUT.as_millis() as i32);
        let answer = self.call(&request)?;
        for result in &answer.topics {
            if result.error_code != 0 {
                let detail = match &result.error_message {
                    Some(m) => m.to_string(),
                    None => String::new(),
                };
                return Err(HarnessError::new(format!(
                    "admin: creating topic {name:?} on {} failed with error {}{} ({detail})",
                    self.addr,
                    result.error_code,
                    if result.error_code == 36 {
                        " (topic already exists)"
                    } else {
                        ""
                    }
                )));
            }
        }
        self.await_leaders(name, partitions)
    }

    /// Deletes topic `name`.
    pub fn delete_topic(&mut self, name: &str) -> Result<(), HarnessError> {
        // Version 6 names topics in `topics`, older versions in `topic_names`.
        let version = self.version::<DeleteTopicsRequest>()?;
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(name))),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![topic_name(name)])
        }
        .with_timeout_ms(REQUEST_TIMEOUT.as_millis() as i32);
        let answer = self.call_at(&request, version)?;
        match answer.responses.iter().find(|r| r.error_code != 0) {
            Some(r) => Err(self.failed("DeleteTopics", r.error_code, &answer)),
            None => Ok(()),
        }
    }

    /// Deletes the records of `topic`/`partition` before `offset` (moves its
    /// log start offset); returns the new log start offset.
    pub fn delete_records(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, HarnessError> {
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(partition)
                            .with_offset(offset),
                    ]),
            ])
            .with_timeout_ms(REQUEST_TIMEOUT.as_millis() as i32);
        let answer = self.call(&request)?;
        let found = answer
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition);
        match found {
            Some(p) if p.error_code == 0 => Ok(p.low_watermark),
            Some(p) => Err(self.failed("DeleteRecords", p.error_code, &answer)),
            None => Err(self.failed("DeleteRecords", 0, &answer)),
        }
    }

    /// Sets the finalized level of a feature (e.g. `transaction.version`),
    /// allowing a downgrade.
    pub fn set_feature(&mut self, feature: &str, level: i16) -> Result<(), HarnessError> {
        let version = self.version::<UpdateFeaturesRequest>()?;
        let update = FeatureUpdateKey::default()
            .with_feature(StrBytes::from_string(feature.to_string()))
            .with_max_version_level(level);
        // v0 has a flag; v1+ a type, 2 being a safe downgrade.
        let update = if version == 0 {
            update.with_allow_downgrade(true)
        } else {
            update.with_upgrade_type(2)
        };
        let request = UpdateFeaturesRequest::default()
            .with_timeout_ms(REQUEST_TIMEOUT.as_millis() as i32)
            .with_feature_updates(vec![update]);
        let answer = self.call_at(&request, version)?;
        if answer.error_code != 0 {
            return Err(self.failed("UpdateFeatures", answer.error_code, &answer));
        }
        match answer.results.iter().find(|r| r.error_code != 0) {
            Some(r) => Err(self.failed("UpdateFeatures", r.error_code, &answer)),
            None => Ok(()),
        }
    }

    /// Creates (or replaces) the SCRAM credential of `user` for `mechanism`
    /// with a random salt (AlterUserScramCredentials; crabka keeps it in
    /// its metadata log), then waits until DescribeUserScramCredentials
    /// lists it.
    pub fn upsert_scram_user(
        &mut self,
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
        iterations: u32,
    ) -> Result<(), HarnessError> {
        let mut salt = [0u8; 24];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
            .map_err(|_| HarnessError::new("admin: no random bytes for a SCRAM salt"))?;
        let salted = mechanism.salted_password(password, &salt, iterations);
        let upsertion = ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(user.to_string()))
            .with_mechanism(mechanism.wire())
            .with_iterations(iterations as i32)
            .with_salt(bytes::Bytes::copy_from_slice(&salt))
            .with_salted_password(bytes::Bytes::from(salted));
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]);
        let answer = self.call(&request)?;
        if let Some(r) = answer.results.iter().find(|r| r.error_code != 0) {
            return Err(self.failed("AlterUserScramCredentials", r.error_code, &answer));
        }
        let deadline = Instant::now() + SCRAM_READY_TIMEOUT;
        loop {
            if self.scram_users()?.contains(&(user.to_string(), mechanism)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::new(format!(
                    "admin: {} credential of {user:?} on {} not listed by \
                     DescribeUserScramCredentials after {SCRAM_READY_TIMEOUT:?}",
                    mechanism.name(),
                    self.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every SCRAM credential the broker has: (user, mechanism) pairs.
    pub fn scram_users(&mut self) -> Result<Vec<(String, ScramMechanism)>, HarnessError> {
        // A null user list asks for every user.
        let answer = self.call(&DescribeUserScramCredentialsRequest::default().with_users(None))?;
        if answer.error_code != 0 {
            return Err(self.failed("DescribeUserScramCredentials", answer.error_code, &answer));
        }
        let mut users = Vec::new();
        for result in answer.results.iter().filter(|r| r.error_code == 0) {
            for info in &result.credential_infos {
                let mechanism = match info.mechanism {
                    1 => ScramMechanism::Sha256,
                    2 => ScramMechanism::Sha512,
                    _ => continue,
                };
                users.push((result.user.to_string(), mechanism));
            }
        }
        Ok(users)
    }

    /// One SASL exchange of a single client message (PLAIN or OAUTHBEARER):
    /// SaslHandshake v1 for `mechanism`, then one SaslAuthenticate with
    /// `auth_bytes`; returns the broker's SaslAuthenticate answer (its
    /// error code and `session_lifetime_ms`). Fails if the handshake is
    /// refused. For a SASL listener, connect with [`Admin::connect`] (its
    /// ApiVersions is allowed before authentication).
    pub fn sasl_authenticate(
        &mut self,
        mechanism: &str,
        auth_bytes: &[u8],
    ) -> Result<SaslAuthenticateResponse, HarnessError> {
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(mechanism.to_string()));
        let answer = self.call_at(&handshake, 1)?;
        if answer.error_code != 0 {
            return Err(self.failed("SaslHandshake", answer.error_code, &answer));
        }
        let request = SaslAuthenticateRequest::default()
            .with_auth_bytes(bytes::Bytes::copy_from_slice(auth_bytes));
        self.call(&request)
    }

    /// How many brokers Metadata lists.
    pub fn brokers(&mut self) -> Result<usize, HarnessError> {
        let request = MetadataRequest::default()
            .with_topics(Some(Vec::new()))
            .with_allow_auto_topic_creation(false);
        Ok(self.call(&request)?.brokers.len())
    }

    /// Waits until Metadata lists `name` with `partitions` partitions, each
    /// with a leader.
    fn await_leaders(&mut self, name: &str, partitions: u32) -> Result<(), HarnessError> {
        let deadline = Instant::now() + TOPIC_READY_TIMEOUT;
        loop {
            let request = MetadataRequest::default()
                .with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic_name(name))),
                ]))
                .with_allow_auto_topic_creation(false);
            let answer = self.call(&request)?;
            let ready = answer.topics.iter().any(|t| {
                t.error_code == 0
                    && t.partitions.len() == partitions as usize
                    && t.partitions
                        .iter()
                        .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
            });
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::new(format!(
                    "admin: topic {name:?} on {} has no leader for each of its {partitions} \
                     partitions after {TOPIC_READY_TIMEOUT:?}; last Metadata answer: {:?}",
                    self.addr, answer.topics
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `request` at the highest version both sides support.
    fn call<R: Request>(&mut self, request: &R) -> Result<R::Response, HarnessError> {
        let version = self.version::<R>()?;
        self.call_at(request, version)
    }

    /// The highest version of `R` both sides support.
    fn version<R: Request>(&self) -> Result<i16, HarnessError> {
        let (min, max) = self.versions.get(&R::KEY).copied().ok_or_else(|| {
            HarnessError::new(format!(
                "admin: the broker at {} does not support API key {}",
                self.addr,
                R::KEY
            ))
        })?;
        let version = max.min(R::VERSIONS.max);
        if version < min.max(R::VERSIONS.min) {
            return Err(HarnessError::new(format!(
                "admin: no common version of API key {} with the broker at {} (it offers {min}..={max})",
                R::KEY,
                self.addr
            )));
        }
        Ok(version)
    }

    fn call_at<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, HarnessError> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("odradek-tests-admin")));
        let mut body = BytesMut::new();
        let encoded = header
            .encode(&mut body, R::header_version(version))
            .and_then(|()| request.encode(&mut body, version));
        encoded.map_err(|e| {
            HarnessError::new(format!(
                "admin: encoding API key {} v{version}: {e}",
                R::KEY
            ))
        })?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        let io = |e| HarnessError::io(format!("admin: API key {} to {}", R::KEY, self.addr), e);
        self.stream.write_all(&frame).map_err(io)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(io)?;
        let size = i32::from_be_bytes(size);
        if !(0..=64 << 20).contains(&size) {
            return Err(HarnessError::new(format!(
                "admin: API key {} answered with a frame of {size} bytes",
                R::KEY
            )));
        }
        let mut answer = vec![0u8; size as usize];
        self.stream.read_exact(&mut answer).map_err(io)?;
        let mut answer = bytes::Bytes::from(answer);
        let decode_failed = |e: &dyn std::fmt::Display| {
            HarnessError::new(format!(
                "admin: decoding API key {} v{version}: {e}",
                R::KEY
            ))
        };
        let header = ResponseHeader::decode(&mut answer, R::Response::header_version(version))
            .map_err(|e| decode_failed(&e))?;
        if header.correlation_id != self.correlation_id {
            return Err(HarnessError::new(format!(
                "admin: sent correlation id {}, the answer carries {}",
                self.correlation_id, header.correlation_id
            )));
        }
        let response = R::Response::decode(&mut answer, version).map_err(|e| decode_failed(&e))?;
        if answer.has_remaining() {
            return Err(HarnessError::new(format!(
                "admin: {} bytes left after the answer to API key {} v{version}",
                answer.remaining(),
                R::KEY
            )));
        }
        Ok(response)
    }

    fn failed(&self, api: &str, code: i16, answer: &impl std::fmt::Debug) -> HarnessError {
        HarnessError::new(format!(
            "admin: {api} on {} failed with error {code}: {answer:?}",
            self.addr
        ))
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}
