//! Shared entry points for the fuzz targets: each target is one call into
//! one of these, so the interesting logic is here and each target stays a
//! one-liner.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use odradek_core::protocol::{
    ApiKey, ConsumerProtocolAssignment, ConsumerProtocolSubscription, EmbeddedProtocol,
    FrameDecoder, decode_request, decode_response_body,
};
use odradek_core::records::{DecodeLimits, RecordBatchReader};

/// The response decoders, grouped the way the fuzz targets split them.
pub mod families {
    use odradek_core::protocol::ApiKey;

    /// Connection set-up, metadata, admin and SASL.
    pub const CLUSTER: &[ApiKey] = &[
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
    ];
    /// Reading and writing records, and offsets by time or epoch.
    pub const FETCH: &[ApiKey] = &[
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::Produce,
    ];
    /// Group membership and committed offsets.
    pub const GROUP: &[ApiKey] = &[
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
    ];
}

/// Feeds `data` through a frame decoder in chunks whose sizes come from the
/// input itself, and decodes every complete frame as a request.
pub fn frames(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk % 32) + 1;
    let mut decoder = FrameDecoder::new(64 * 1024);
    for piece in stream.chunks(chunk) {
        decoder.push(piece);
        while let Ok(Some(frame)) = decoder.next_frame() {
            let _ = decode_request(frame);
        }
    }
}

/// Decodes `data` as a request frame body (header and body).
pub fn request(data: &[u8]) {
    let _ = decode_request(Bytes::copy_from_slice(data));
}

/// Decodes a response of one API of `family`: the first byte picks the API,
/// the second the version, the rest is the frame (header and body).
pub fn response(family: &[ApiKey], data: &[u8]) {
    let [pick, version, frame @ ..] = data else {
        return;
    };
    let api = family[usize::from(*pick) % family.len()];
    let range = api.versions();
    let span = (range.max - range.min + 1) as u8;
    let version = range.min + i16::from(version % span);
    let _ = decode_response_body(api, Bytes::copy_from_slice(frame), version);
}

/// Decodes the consumer embedded protocol: the first byte picks subscription
/// or assignment.
pub fn consumer_protocol(data: &[u8]) {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let payload = Bytes::copy_from_slice(payload);
    if pick % 2 == 0 {
        let _ = ConsumerProtocolSubscription::from_versioned_bytes(payload);
    } else {
        let _ = ConsumerProtocolAssignment::from_versioned_bytes(payload);
    }
}

/// Runs a SCRAM client against arbitrary server messages. The first byte
/// picks the hash, whether the challenge starts with the client's own nonce
/// (so the fuzzer reaches the checks behind the nonce), and where the rest
/// splits into the server-first and server-final messages.
pub fn scram(data: &[u8]) {
    use odradek_core::sasl::{ScramClient, ScramMechanism};
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if pick & 1 == 0 {
        ScramMechanism::Sha256
    } else {
        ScramMechanism::Sha512
    };
    let nonce = [0x42u8; 18];
    let Ok(mut client) = ScramClient::new(mechanism, "fuzz", b"pw", &nonce) else {
        return;
    };
    if client.client_first().is_err() {
        return;
    }
    let split = usize::from(pick >> 2).min(rest.len());
    let (first, last) = rest.split_at(split);
    let mut challenge = Vec::new();
    if pick & 2 != 0 {
        // The base64 of `nonce`, then whatever the fuzzer adds.
        challenge.extend_from_slice(b"r=QkJCQkJCQkJCQkJCQkJCQkJC");
    }
    challenge.extend_from_slice(first);
    if client.server_first(&challenge).is_ok() {
        let _ = client.server_final(last);
    }
}

/// The OAUTHBEARER parsers: the server's error answer (the first byte
/// chooses which parser reads the rest) and librdkafka's
/// `sasl.oauthbearer.config`, whose tokens must then frame.
pub fn oauthbearer(data: &[u8]) {
    use odradek_core::sasl::oauthbearer::{
        UnsecuredJwtConfig, initial_response, parse_server_answer, unsecured_jwt,
    };
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick & 1 == 0 {
        let _ = parse_server_answer(rest);
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(config) = UnsecuredJwtConfig::parse(text) {
        let token = unsecured_jwt(&config, u64::from(pick) << 32);
        // A parsed config only holds valid extensions and the JWT is
        // base64url: the message must build.
        assert!(initial_response(&token).is_ok(), "{config:?}");
    }
}

/// The AWS_MSK_IAM broker answer parser.
pub fn aws_msk_iam(data: &[u8]) {
    let _ = odradek_core::sasl::parse_aws_msk_iam_answer(data);
}

/// Decodes `data` as a partition's record set and touches every record.
///
/// Checksums are fixed up first (CRC-32C of v2 batches, CRC-32 of legacy
/// messages), so mutations reach the parsers behind the CRC check instead
/// of all failing at it.
pub fn record_batches(data: &[u8]) {
    let mut bytes = data.to_vec();
    fix_checksums(&mut bytes);
    // Small, so decompression bombs are cheap to find and to reject.
    let limits = DecodeLimits::default().with_max_decompressed_bytes(1 << 20);
    for batch in RecordBatchReader::with_limits(Some(Bytes::from(bytes)), limits) {
        let Ok(batch) = batch else { break };
        let _ = batch.control_record();
        let Ok(records) = batch.records() else {
            continue;
        };
        for record in &records {
            let Ok(record) = record else { break };
            let _ = (
                record.offset(),
                record.timestamp(),
                record.key(),
                record.value(),
            );
            for header in record.headers().iter() {
                let _ = (header.key_str(), header.value);
            }
        }
    }
}

/// Rewrites the checksum of every batch or legacy message it can find.
fn fix_checksums(bytes: &mut [u8]) {
    let mut at = 0;
    while at + 17 <= bytes.len() {
        let size =
            i32::from_be_bytes([bytes[at + 8], bytes[at + 9], bytes[at + 10], bytes[at + 11]]);
        let Ok(size) = usize::try_from(size) else {
            return;
        };
        let end = (at + 12).saturating_add(size).min(bytes.len());
        match bytes[at + 16] {
            // v2: CRC-32C at 17..21 over everything after it.
            2 if end >= at + 21 => {
                let crc = crc32c::crc32c(&bytes[at + 21..end]);
                bytes[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
            }
            // Legacy: CRC-32 at 12..16 over magic onwards.
            0 | 1 if end > at + 16 => {
                let crc = crc32fast::hash(&bytes[at + 16..end]);
                bytes[at + 12..at + 16].copy_from_slice(&crc.to_be_bytes());
            }
            _ => return,
        }
        at = end;
    }
}

/// Drives a whole consumer against a "broker" whose answers come from the
/// input: valid ApiVersions replies (so the handshake usually passes) and
/// arbitrary bytes, correctly framed and correlated, for everything else,
/// interleaved with time passing, disconnects and user commands. The
/// consumer must never panic, loop or grow without bound.
pub fn consumer(data: &[u8]) {
    drive_consumer(data, false, false);
}

/// [`consumer`] over SASL_PLAINTEXT: every connection authenticates first
/// (SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER, chosen by the input).
/// SaslHandshake is often accepted so the fuzzer reaches SaslAuthenticate,
/// whose answers (SCRAM challenges and signatures, OAUTHBEARER error JSON,
/// session lifetimes) are arbitrary.
pub fn sasl_consumer(data: &[u8]) {
    drive_consumer(data, false, true);
}

/// Any property set to any value, and `sasl.jaas.config` parsed on its own:
/// the input is `key NUL value`.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (key, value) = text.split_once('\0').unwrap_or(("sasl.jaas.config", &text));
    let mut config = odradek_core::ConsumerConfig::default();
    let _ = config.set(key, value);
    let _ = config.validate();
    let _ = odradek_core::security::jaas::parse(value);
}

/// A wall clock stuck at 2026-12-02.
#[derive(Debug)]
struct FixedClock;

impl odradek_core::rustls::time_provider::TimeProvider for FixedClock {
    fn current_time(&self) -> Option<odradek_core::rustls::pki_types::UnixTime> {
        Some(odradek_core::rustls::pki_types::UnixTime::since_unix_epoch(
            Duration::from_secs(1_796_169_600),
        ))
    }
}

/// [`consumer`] as a group member: it subscribes (to a list or a pattern),
/// and group responses are often well-formed with input-chosen error codes,
/// generations, leaders, member subscriptions and assignments, so the fuzzer
/// gets deep into joins, syncs, heartbeats, commits and rebalances. The
/// application commits, looks up committed offsets, handles rebalance events
/// and changes its subscription at input-chosen moments.
pub fn consumer_group(data: &[u8]) {
    drive_consumer(data, true, false);
}

fn drive_consumer(data: &[u8], group: bool, sasl: bool) {
    use odradek_core::protocol::messages::{ApiVersionsResponse, api_versions::ApiVersion};
    use odradek_core::protocol::{RequestHeader, encode_response};
    use odradek_core::{
        CloseOptions, Consumer, ConsumerConfig, Io, OffsetAndMetadata, OffsetReset, TopicPartition,
    };
    use std::collections::BTreeMap;

    let mut input = data.iter().copied();
    let mut next = move || input.next();
    let mut config = ConsumerConfig::builder()
        .bootstrap_servers("b:9092")
        .fetch_buffer_max_bytes(1 << 20)
        .max_response_size(1 << 20)
        .max_decompressed_batch_bytes(1 << 20)
        .random_seed(1)
        .build()
        .expect("config");
    config.auto_offset_reset = OffsetReset::Earliest;
    if group {
        config.group_id = Some("g".into());
        // Half the inputs run the offset store and end markers.
        let flags = next().unwrap_or(0);
        config.enable_auto_offset_store = flags & 1 == 0;
        config.enable_partition_eof = flags & 2 != 0;
        config.connections_max_idle = Some(Duration::from_millis(500));
    }
    let mut now = Instant::now();
    let mechanism = match sasl.then(|| next().unwrap_or(0) % 3) {
        None => "",
        Some(0) => "SCRAM-SHA-256",
        Some(1) => "SCRAM-SHA-512",
        Some(_) => "OAUTHBEARER",
    };
    let consumer = if sasl {
        let mut config = config;
        let _ = config.set("security.protocol", "SASL_PLAINTEXT");
        let _ = config.set("sasl.mechanism", mechanism);
        if mechanism == "OAUTHBEARER" {
            let _ = config.set("sasl.oauthbearer.config", "principal=fuzz lifeSeconds=60");
        } else {
            let _ = config.set("sasl.username", "fuzz");
            let _ = config.set("sasl.password", "pw");
        }
        let provider = std::sync::Arc::new(odradek_core::rustls::crypto::ring::default_provider());
        let clock = std::sync::Arc::new(FixedClock);
        odradek_core::security::SecurityContext::new(provider, clock, None)
            .map_err(|_| ())
            .and_then(|context| Consumer::with_security(config, context, now).map_err(|_| ()))
    } else {
        Consumer::new(config, now).map_err(|_| ())
    };
    let Ok(mut consumer) = consumer else {
        return;
    };
    let partitions = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
    if group {
        let _ = match next().unwrap_or(0) % 3 {
            0 => consumer.subscribe(["t"], now),
            1 => consumer.subscribe_pattern("t|u", now),
            _ => consumer.assign(partitions.clone(), now),
        };
    } else {
        let _ = consumer.assign(partitions.clone(), now);
    }
    // Requests awaiting an answer: (connection, header).
    let mut pending: Vec<(odradek_core::ConnId, RequestHeader)> = Vec::new();
    let mut open: Vec<odradek_core::ConnId> = Vec::new();
    for _ in 0..400 {
        while let Some(io) = consumer.poll_io() {
            match io {
                Io::Connect { conn, .. } => {
                    open.push(conn);
                    consumer.handle_connected(conn, now);
                }
                Io::Send { conn, data } => {
                    let mut frames = FrameDecoder::new(1 << 20);
                    frames.push(&data);
                    while let Ok(Some(mut frame)) = frames.next_frame() {
                        if let Ok(header) = RequestHeader::decode(&mut frame) {
                            pending.push((conn, header));
                        }
                    }
                }
                Io::Close { conn } => {
                    open.retain(|c| *c != conn);
                    pending.retain(|(c, _)| *c != conn);
                }
            }
        }
        while consumer.poll_event().is_some() {}
        let Some(op) = next() else { break };
        match op % 8 {
            // Answer the oldest request.
            0..=3 if !pending.is_empty() => {
                let (conn, header) = pending.remove(0);
                let api = ApiKey::from_code(header.api_key);
                let mut frame = BytesMut::new();
                let plausible = match api {
                    Some(api) if group && op % 8 == 2 => plausible_group_reply(api, &mut next),
                    _ => None,
                };
                if let (Some(api), Some(reply)) = (api, plausible) {
                    let _ = reply.encode(&mut frame, api, &header);
                } else if api == Some(ApiKey::SaslHandshake) && op % 8 != 3 {
                    let reply = odradek_core::protocol::messages::SaslHandshakeResponse {
                        error_code: 0,
                        mechanisms: vec![mechanism.into()],
                    };
                    let _ = encode_response(
                        &mut frame,
                        ApiKey::SaslHandshake,
                        header.correlation_id,
                        &reply,
                        header.api_version,
                    );
                } else if api == Some(ApiKey::ApiVersions) && op % 8 != 3 {
                    let reply = ApiVersionsResponse {
                        api_keys: ApiKey::ALL
                            .iter()
                            .map(|a| ApiVersion {
                                api_key: a.code(),
                                min_version: a.versions().min,
                                max_version: a.versions().max,
                            })
                            .collect(),
                        ..Default::default()
                    };
                    let _ = encode_response(
                        &mut frame,
                        ApiKey::ApiVersions,
                        header.correlation_id,
                        &reply,
                        header.api_version,
                    );
                } else {
                    // Bodies up to 4 KiB, made of the input that follows.
                    let len = usize::from(next().unwrap_or(0)) * 16;
                    let body: Vec<u8> = (0..len).map_while(|_| next()).collect();
                    let flexible =
                        api.is_some_and(|a| a.response_header_version(header.api_version) >= 1);
                    frame.put_i32((4 + usize::from(flexible) + body.len()) as i32);
                    frame.put_i32(header.correlation_id);
                    if flexible {
                        frame.put_u8(0);
                    }
                    frame.put_slice(&body);
                }
                // Deliver in pieces of an input-chosen size.
                let chunk = next().map_or(frame.len(), |c| usize::from(c).max(1));
                for piece in frame.chunks(chunk) {
                    consumer.handle_received(conn, piece, now);
                }
            }
            4 => {
                now += Duration::from_millis(u64::from(next().unwrap_or(0)) * 40);
                consumer.handle_timeout(now);
            }
            5 => {
                let _ = consumer.take_records(now);
            }
            6 => {
                let tp = &partitions[usize::from(next().unwrap_or(0) % 2)];
                let timeout = Duration::from_secs(5);
                let offset = OffsetAndMetadata::new(i64::from(next().unwrap_or(0)));
                let offsets = BTreeMap::from([(tp.clone(), offset)]);
                let _ = match next().unwrap_or(0) % if group { 12 } else { 4 } {
                    0 => consumer.seek(tp, i64::from(next().unwrap_or(0)), now),
                    1 => consumer.pause(std::slice::from_ref(tp), now),
                    2 => consumer.resume(std::slice::from_ref(tp), now),
                    3 => consumer.position(tp, now).map(|_| ()),
                    4 => consumer.commit(None, timeout, now).map(|_| ()),
                    5 => consumer.committed(&partitions, timeout, now).map(|_| ()),
                    6 => {
                        while consumer.poll_rebalance().is_some() {}
                        consumer.ack_rebalance(now);
                        Ok(())
                    }
                    7 => consumer.unsubscribe(now),
                    8 => consumer
                        .commit_async(Some(offsets), timeout, now)
                        .map(|_| ()),
                    9 => consumer.commit(Some(offsets), timeout, now).map(|_| ()),
                    10 => consumer.store_offsets(offsets),
                    _ => consumer.subscribe(["t", "u"], now),
                };
            }
            _ => {
                if let Some(conn) = open.pop() {
                    pending.retain(|(c, _)| *c != conn);
                    consumer.handle_disconnected(conn, now);
                }
            }
        }
        assert!(
            consumer.buffered_bytes() <= 4 << 20,
            "buffer bound exceeded"
        );
        // The metrics snapshot holds up whatever state the input reached.
        let metrics = consumer.metrics(now);
        assert_eq!(metrics.consumer.buffered_bytes, consumer.buffered_bytes());
    }
    if group {
        let options = CloseOptions::new().timeout(Duration::from_secs(1));
        let options = match next() {
            Some(b) if b % 2 == 0 => options.without_commit(),
            _ => options,
        };
        consumer.close_with(options, now);
    }
    consumer.close(now);
}

/// A group response to encode: well-formed, with input-chosen contents.
enum GroupReply {
    FindCoordinator(odradek_core::protocol::messages::FindCoordinatorResponse),
    JoinGroup(odradek_core::protocol::messages::JoinGroupResponse),
    SyncGroup(odradek_core::protocol::messages::SyncGroupResponse),
    Heartbeat(odradek_core::protocol::messages::HeartbeatResponse),
    Metadata(odradek_core::protocol::messages::MetadataResponse),
}

impl GroupReply {
    fn encode(
        &self,
        out: &mut BytesMut,
        api: ApiKey,
        header: &odradek_core::protocol::RequestHeader,
    ) -> Result<(), odradek_core::protocol::EncodeError> {
        use odradek_core::protocol::encode_response;
        let (id, v) = (header.correlation_id, header.api_version);
        match self {
            GroupReply::FindCoordinator(r) => encode_response(out, api, id, r, v),
            GroupReply::JoinGroup(r) => encode_response(out, api, id, r, v),
            GroupReply::SyncGroup(r) => encode_response(out, api, id, r, v),
            GroupReply::Heartbeat(r) => encode_response(out, api, id, r, v),
            GroupReply::Metadata(r) => encode_response(out, api, id, r, v),
        }
    }
}

/// A well-formed answer to a group-related request, shaped by the input:
/// error codes from the group APIs' repertoire, generations, which member
/// leads, valid or garbled subscriptions and assignments.
fn plausible_group_reply(api: ApiKey, next: &mut impl FnMut() -> Option<u8>) -> Option<GroupReply> {
    use odradek_core::protocol::TopicPartitions;
    use odradek_core::protocol::messages::{
        FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, MetadataResponse,
        SyncGroupResponse,
        find_coordinator::FindCoordinatorResponseCoordinator,
        join_group::JoinGroupResponseMember,
        metadata::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    };
    // Mostly success, else the errors group APIs answer with.
    const CODES: [i16; 12] = [0, 0, 0, 0, 14, 15, 16, 22, 25, 27, 79, 82];
    let mut code = || CODES[usize::from(next().unwrap_or(0)) % CODES.len()];
    let error_code = code();
    let bytes = |next: &mut dyn FnMut() -> Option<u8>| -> Bytes {
        let len = usize::from(next().unwrap_or(0) % 64);
        (0..len).map_while(|_| next()).collect::<Vec<u8>>().into()
    };
    let partitions = |mask: u8| -> Vec<TopicPartitions> {
        let list: Vec<i32> = (0..2).filter(|p| mask & (1 << p) != 0).collect();
        vec![TopicPartitions {
            topic: "t".into(),
            partitions: list,
        }]
    };
    Some(match api {
        ApiKey::FindCoordinator => GroupReply::FindCoordinator(FindCoordinatorResponse {
            error_code,
            node_id: 1,
            host: "b".into(),
            port: 9092,
            coordinators: vec![FindCoordinatorResponseCoordinator {
                key: "g".into(),
                node_id: 1,
                host: "b".into(),
                port: 9092,
                error_code,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::JoinGroup => {
            let leads = next().unwrap_or(0).is_multiple_of(2);
            let ours = "m-1".to_string();
            let member = |id: &str, metadata: Bytes| JoinGroupResponseMember {
                member_id: id.into(),
                metadata,
                ..Default::default()
            };
            let subscription = ConsumerProtocolSubscription {
                topics: vec!["t".into(), "u".into()],
                owned_partitions: partitions(next().unwrap_or(0)),
                generation_id: i32::from(next().unwrap_or(0)) - 1,
                ..Default::default()
            };
            let valid = subscription
                .to_versioned_bytes(i16::from(next().unwrap_or(0) % 4))
                .unwrap_or_default();
            let garbled = bytes(next);
            GroupReply::JoinGroup(JoinGroupResponse {
                error_code,
                generation_id: i32::from(next().unwrap_or(0)),
                protocol_name: Some(
                    ["range", "cooperative-sticky", "unknown"]
                        [usize::from(next().unwrap_or(0) % 3)]
                    .into(),
                ),
                leader: if leads { ours.clone() } else { "m-2".into() },
                member_id: ours.clone(),
                members: if leads {
                    vec![member(&ours, valid), member("m-2", garbled)]
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
        }
        ApiKey::SyncGroup => {
            let assignment = if next().unwrap_or(0).is_multiple_of(4) {
                bytes(next)
            } else {
                ConsumerProtocolAssignment {
                    assigned_partitions: partitions(next().unwrap_or(0)),
                    ..Default::default()
                }
                .to_versioned_bytes(i16::from(next().unwrap_or(0) % 4))
                .unwrap_or_default()
            };
            GroupReply::SyncGroup(SyncGroupResponse {
                error_code,
                assignment,
                ..Default::default()
            })
        }
        ApiKey::Heartbeat => GroupReply::Heartbeat(HeartbeatResponse {
            error_code,
            ..Default::default()
        }),
        ApiKey::Metadata => GroupReply::Metadata(MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "b".into(),
                port: 9092,
                rack: None,
            }],
            topics: ["t", "u"]
                .iter()
                .map(|name| MetadataResponseTopic {
                    name: Some((*name).into()),
                    partitions: (0..i32::from(next().unwrap_or(0) % 4))
                        .map(|p| MetadataResponsePartition {
                            partition_index: p,
                            leader_id: 1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        _ => return None,
    })
}

// Every API's response decoder is in exactly one family (counted here; the
// lists above are checked by eye for duplicates).
const _: () = assert!(
    families::CLUSTER.len() + families::FETCH.len() + families::GROUP.len() == ApiKey::ALL.len()
);
