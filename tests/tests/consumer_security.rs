//! TLS and SASL against a broker that enforces them (crabka's secure
//! listeners, `odradek_tests::secure`), on every runtime. confluent-kafka
//! produces each batch through the same listener and login the consumer
//! then reads it with.

use std::time::{Duration, Instant};

use odradek_core::protocol::ApiKey;
use odradek_core::records::Compression;
use odradek_core::security::TlsConfig;
use odradek_core::{AuthFailure, ConsumerConfig, Error, TlsFailure, TopicPartition};
use odradek_tests::BrokerKind;
use odradek_tests::produced::ProduceSpec;
use odradek_tests::secure::{self, Listener, Sasl, SecureBroker, SecureOptions};
use odradek_tests::suite::{HangGuard, RebalanceLog, TestConsumer, build, config, partitions};

const TOPIC: &str = "secure";
const BATCH: u64 = 20;

/// The test configuration pointed at `listener`, before its security.
fn base(broker: &SecureBroker, listener: Listener) -> ConsumerConfig {
    let mut c = config(broker);
    c.set("bootstrap.servers", &broker.bootstrap_of(listener))
        .expect("bootstrap");
    c
}

fn tls(broker: &SecureBroker) -> TlsConfig {
    let mut tls = TlsConfig::default();
    tls.ca_location = Some(broker.ca_pem().into());
    tls
}

fn with(mut config: ConsumerConfig, properties: &[(&str, &str)]) -> ConsumerConfig {
    for (k, v) in properties {
        config.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    config
}

/// Every way in: SSL, mutual TLS, SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256,
/// SCRAM-SHA-512 and OAUTHBEARER, SASL_SSL with SCRAM-SHA-512 (builder) and
/// PLAIN (a pasted `sasl.jaas.config`). For each: confluent-kafka produces
/// a batch through the listener, Odradek reads the topic from the start
/// through it and finds that batch at the end, byte for byte.
fn every_protocol_and_mechanism<C: TestConsumer>(_: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("security listeners [{rt}]"),
        Duration::from_secs(300),
    );
    let broker = SecureBroker::start().expect("secure broker");
    broker.create_topic(TOPIC, 1).expect("topic");
    let ca = broker.ca_pem().display().to_string();
    let cert = broker.client_cert_pem().display().to_string();
    let key = broker.client_key_pem().display().to_string();
    let jaas = format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"{}\" password=\"{}\";",
        secure::PLAIN_USER,
        secure::PLAIN_PASSWORD
    );
    let cases: Vec<(&str, Listener, Option<Sasl>, ConsumerConfig)> = vec![
        (
            "SSL",
            Listener::Ssl,
            None,
            with(
                base(&broker, Listener::Ssl),
                &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
            ),
        ),
        (
            "mutual TLS",
            Listener::Mtls,
            None,
            with(
                base(&broker, Listener::Mtls),
                &[
                    ("security.protocol", "SSL"),
                    ("ssl.ca.location", &ca),
                    ("ssl.certificate.location", &cert),
                    ("ssl.key.location", &key),
                ],
            ),
        ),
        (
            "SASL_PLAINTEXT PLAIN",
            Listener::SaslPlaintext,
            Some(Sasl::plain()),
            with(
                base(&broker, Listener::SaslPlaintext),
                &[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                    ("sasl.username", secure::PLAIN_USER),
                    ("sasl.password", secure::PLAIN_PASSWORD),
                ],
            ),
        ),
        (
            "SASL_PLAINTEXT SCRAM-SHA-256",
            Listener::SaslPlaintext,
            Some(Sasl::scram_sha_256()),
            ConsumerConfig::builder()
                .bootstrap_servers(broker.sasl_plaintext())
                .sasl_scram_sha256(secure::SCRAM_SHA_256_USER, secure::SCRAM_SHA_256_PASSWORD)
                .build()
                .map(|c| merge(&broker, c))
                .expect("config"),
        ),
        (
            "SASL_PLAINTEXT SCRAM-SHA-512",
            Listener::SaslPlaintext,
            Some(Sasl::scram_sha_512()),
            with(
                base(&broker, Listener::SaslPlaintext),
                &[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "SCRAM-SHA-512"),
                    ("sasl.username", secure::SCRAM_SHA_512_USER),
                    ("sasl.password", secure::SCRAM_SHA_512_PASSWORD),
                ],
            ),
        ),
        (
            "SASL_PLAINTEXT OAUTHBEARER",
            Listener::SaslPlaintext,
            Some(Sasl::oauthbearer("odradek-oauth")),
            with(
                base(&broker, Listener::SaslPlaintext),
                &[
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "OAUTHBEARER"),
                    (
                        "sasl.oauthbearer.config",
                        "principal=odradek-oauth lifeSeconds=600",
                    ),
                ],
            ),
        ),
        (
            "SASL_SSL SCRAM-SHA-512",
            Listener::SaslSsl,
            Some(Sasl::scram_sha_512()),
            ConsumerConfig::builder()
                .bootstrap_servers(broker.sasl_ssl())
                .tls(tls(&broker))
                .sasl_scram_sha512(secure::SCRAM_SHA_512_USER, secure::SCRAM_SHA_512_PASSWORD)
                .build()
                .map(|c| merge(&broker, c))
                .expect("config"),
        ),
        (
            "SASL_SSL PLAIN from sasl.jaas.config",
            Listener::SaslSsl,
            Some(Sasl::plain()),
            with(
                base(&broker, Listener::SaslSsl),
                &[
                    ("security.protocol", "SASL_SSL"),
                    ("ssl.ca.location", &ca),
                    ("sasl.mechanism", "PLAIN"),
                    ("sasl.jaas.config", &jaas),
                ],
            ),
        ),
    ];
    let tp = TopicPartition::new(TOPIC, 0);
    for (i, (name, listener, sasl, config)) in cases.into_iter().enumerate() {
        let mut client = broker.client(listener);
        if let Some(sasl) = sasl {
            client = client.with_sasl(sasl);
        }
        let mut spec = ProduceSpec::new(TOPIC, 1000 + i as u64, BATCH);
        spec.compression = Compression::Lz4;
        secure::produce(&client, &spec).unwrap_or_else(|e| panic!("[{rt}] {name}: produce: {e}"));
        let expected: Vec<Vec<u8>> = spec.records().map(|r| r.value).collect();
        let consumer: C = build(config);
        consumer.assign(std::slice::from_ref(&tp)).expect("assign");
        let total = (i as u64 + 1) * BATCH;
        let values = read(&consumer, total as usize, &format!("[{rt}] {name}"));
        assert_eq!(
            &values[values.len() - BATCH as usize..],
            expected.as_slice(),
            "[{rt}] {name}: the batch confluent-kafka produced"
        );
        consumer
            .close()
            .unwrap_or_else(|e| panic!("[{rt}] {name}: close: {e}"));
    }
}

/// Test settings (timeouts, earliest) with `secured`'s bootstrap and
/// security.
fn merge(broker: &SecureBroker, secured: ConsumerConfig) -> ConsumerConfig {
    let mut c = config(broker);
    c.bootstrap_servers = secured.bootstrap_servers;
    c.security_protocol = secured.security_protocol;
    c.sasl = secured.sasl;
    c.tls = secured.tls;
    c
}

/// Polls until `count` records arrived; their values.
fn read<C: TestConsumer>(consumer: &C, count: usize, what: &str) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut values = Vec::new();
    while values.len() < count {
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {count} records in 30 s",
            values.len()
        );
        let records = consumer
            .poll(Duration::from_millis(500))
            .unwrap_or_else(|e| panic!("{what}: poll: {e}"));
        values.extend(
            records
                .iter()
                .map(|r| r.value().map(|v| v.to_vec()).unwrap_or_default()),
        );
    }
    values
}

/// The first error `poll` reports within 10 s.
fn first_error<C: TestConsumer>(consumer: &C, what: &str) -> Error {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "{what}: no error within 10 s");
        if let Err(e) = consumer.poll(Duration::from_millis(200)) {
            return e;
        }
    }
}

/// A wrong password, a wrong CA, TLS to a plaintext listener: each is the
/// typed error from poll within seconds, without the password, and close
/// still returns promptly.
fn failures_are_typed_and_prompt<C: TestConsumer>(_: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("security failures [{rt}]"),
        Duration::from_secs(120),
    );
    let broker = SecureBroker::start().expect("secure broker");
    broker.create_topic(TOPIC, 1).expect("topic");
    let tp = TopicPartition::new(TOPIC, 0);
    let wrong_password = "not-the-password-9";
    let ca = broker.ca_pem().display().to_string();
    let wrong_ca = broker.wrong_ca_pem().display().to_string();

    let config = with(
        base(&broker, Listener::SaslSsl),
        &[
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", &ca),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", secure::SCRAM_SHA_512_USER),
            ("sasl.password", wrong_password),
        ],
    );
    let consumer: C = build(config);
    consumer.assign(std::slice::from_ref(&tp)).expect("assign");
    let error = first_error(&consumer, &format!("[{rt}] wrong password"));
    match &error {
        Error::Authentication { broker: at, cause } => {
            assert_eq!(at.to_string(), broker.sasl_ssl(), "[{rt}]");
            assert!(
                matches!(cause, AuthFailure::Rejected { .. } | AuthFailure::Scram(_)),
                "[{rt}] {cause:?}"
            );
        }
        other => panic!("[{rt}] wrong password: {other:?}"),
    }
    assert!(!format!("{error} {error:?}").contains(wrong_password));
    let start = Instant::now();
    consumer.close().expect("close");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "[{rt}] close took {:?}",
        start.elapsed()
    );

    let config = with(
        base(&broker, Listener::Ssl),
        &[("security.protocol", "SSL"), ("ssl.ca.location", &wrong_ca)],
    );
    let consumer: C = build(config);
    consumer.assign(std::slice::from_ref(&tp)).expect("assign");
    match first_error(&consumer, &format!("[{rt}] wrong CA")) {
        Error::Tls {
            cause: TlsFailure::Rejected(odradek_core::rustls::Error::InvalidCertificate(e)),
            ..
        } => assert_eq!(
            e,
            odradek_core::rustls::CertificateError::UnknownIssuer,
            "[{rt}]"
        ),
        other => panic!("[{rt}] wrong CA: {other:?}"),
    }
    consumer.close().expect("close");

    let config = with(
        base(&broker, Listener::Plaintext),
        &[("security.protocol", "SSL"), ("ssl.ca.location", &ca)],
    );
    let consumer: C = build(config);
    consumer.assign(std::slice::from_ref(&tp)).expect("assign");
    match first_error(&consumer, &format!("[{rt}] TLS to a plaintext listener")) {
        Error::Tls { .. } => {}
        other => panic!("[{rt}] TLS to a plaintext listener: {other:?}"),
    }
    consumer.close().expect("close");

    let consumer: C = build(base(&broker, Listener::Ssl));
    consumer.assign(std::slice::from_ref(&tp)).expect("assign");
    match first_error(&consumer, &format!("[{rt}] plaintext to a TLS listener")) {
        Error::Tls {
            cause: TlsFailure::ServerSpeaksTls,
            ..
        } => {}
        other => panic!("[{rt}] plaintext to a TLS listener: {other:?}"),
    }
    consumer.close().expect("close");
}

/// A consumer group over SASL_SSL: the coordinator's connection
/// authenticates too; every record is read and the commit lands.
fn group_over_sasl_ssl<C: TestConsumer>(kind: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("group over SASL_SSL [{rt}]"),
        Duration::from_secs(120),
    );
    let broker = SecureBroker::start().expect("secure broker");
    broker.create_topic(TOPIC, 3).expect("topic");
    let client = broker
        .client(Listener::SaslSsl)
        .with_sasl(Sasl::scram_sha_512());
    let mut spec = ProduceSpec::new(TOPIC, 7, 90);
    spec.partitions = 3;
    secure::produce(&client, &spec).expect("produce");
    let mut config = with(
        base(&broker, Listener::SaslSsl),
        &[
            ("security.protocol", "SASL_SSL"),
            ("ssl.ca.location", &broker.ca_pem().display().to_string()),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", secure::SCRAM_SHA_512_USER),
            ("sasl.password", secure::SCRAM_SHA_512_PASSWORD),
            ("group.id", "secure-group"),
            ("enable.auto.commit", "false"),
        ],
    );
    (config.session_timeout, config.heartbeat_interval) = kind.group_timeouts();
    let consumer: C = build(config);
    consumer
        .subscribe(&[TOPIC], &RebalanceLog::default())
        .expect("subscribe");
    assert_eq!(read(&consumer, 90, &format!("[{rt}] group")).len(), 90);
    consumer.commit().expect("commit");
    let all = partitions(TOPIC, 3);
    let committed = consumer.committed(&all).expect("committed");
    let total: i64 = committed
        .values()
        .map(|o| o.as_ref().map_or(0, |o| o.offset))
        .sum();
    assert_eq!(total, 90, "[{rt}] committed {committed:?}");
    consumer.close().expect("close");
}

/// KIP-368 against crabka: OAUTHBEARER sessions capped at 2 s are renewed
/// on the same connections while records keep coming. crabka closes a
/// connection whose session ended, so a consumer that did not
/// re-authenticate would open new connections, each starting with
/// ApiVersions; here the logins grow while the connections do not.
fn sessions_are_renewed<C: TestConsumer>(_: BrokerKind) {
    let rt = C::RUNTIME;
    let _guard = HangGuard::new(
        format!("re-authentication [{rt}]"),
        Duration::from_secs(120),
    );
    let broker = SecureBroker::start_with(SecureOptions {
        oauthbearer_max_session: Some(Duration::from_secs(2)),
        log_requests: true,
    })
    .expect("secure broker");
    broker.create_topic(TOPIC, 1).expect("topic");
    let config = with(
        base(&broker, Listener::SaslPlaintext),
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
            (
                "sasl.oauthbearer.config",
                "principal=odradek-oauth lifeSeconds=600",
            ),
        ],
    );
    let consumer: C = build(config);
    let tp = TopicPartition::new(TOPIC, 0);
    consumer.assign(std::slice::from_ref(&tp)).expect("assign");
    let client = broker
        .client(Listener::SaslPlaintext)
        .with_sasl(Sasl::plain());
    secure::produce(&client, &ProduceSpec::new(TOPIC, 50, 40)).expect("produce");
    let versions_before = broker.requests_answered(ApiKey::ApiVersions).expect("log");
    let handshakes_before = broker
        .requests_answered(ApiKey::SaslHandshake)
        .expect("log");
    read(&consumer, 40, &format!("[{rt}] before the sessions end"));
    // About four sessions of 2 s with fetches going on all the time.
    let until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < until {
        let records = consumer.poll(Duration::from_millis(300));
        assert!(
            records.as_ref().is_ok_and(|r| r.is_empty()),
            "[{rt}] {records:?}"
        );
    }
    let versions = broker.requests_answered(ApiKey::ApiVersions).expect("log") - versions_before;
    let handshakes = broker
        .requests_answered(ApiKey::SaslHandshake)
        .expect("log")
        - handshakes_before;
    // The consumer's two connections (bootstrap, then the broker by id),
    // each opened once; a consumer that did not re-authenticate would be
    // cut off every 2 s and open new ones, each starting with ApiVersions.
    assert!(
        versions <= 2,
        "[{rt}] {versions} connections opened: the consumer reconnected instead of re-authenticating"
    );
    assert!(
        handshakes >= 2 + 4,
        "[{rt}] {handshakes} SASL handshakes in 8 s of 2 s sessions"
    );
    secure::produce(&client, &ProduceSpec::new(TOPIC, 51, 10)).expect("produce");
    read(&consumer, 10, &format!("[{rt}] after four sessions"));
    consumer.close().expect("close");
}

odradek_tests::for_each_runtime!(crabka:
    every_protocol_and_mechanism,
    failures_are_typed_and_prompt,
    group_over_sasl_ssl,
    sessions_are_renewed
);
