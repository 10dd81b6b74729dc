//! TLS and SASL in the core, deterministically: the consumer against
//! brokers that run a real rustls server and a SASL gate in-process
//! (`support/secure.rs`), with a fixed wall clock and repeatable randomness.
//! Every failure the application must hear of is a typed error from poll.

mod support;

use std::time::Duration;

use odradek_core::protocol::ApiKey;
use odradek_core::protocol::ErrorCode;
use odradek_core::rustls::{self, AlertDescription, CertificateError};
use odradek_core::security::{SecurityContext, SecurityProtocol, TlsConfig};
use odradek_core::{AuthFailure, ConsumerConfig, Error, OffsetReset, TlsFailure};
use support::secure::{self, Pki, SaslServer, ServerSecurity, WALL_CLOCK};
use support::*;

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret-7";

fn base() -> odradek_core::ConsumerBuilder<ConsumerConfig> {
    ConsumerConfig::builder()
        .bootstrap_servers("broker1:9092")
        .fetch_max_wait(Duration::from_millis(100))
        .auto_offset_reset(OffsetReset::Earliest)
        .random_seed(7)
}

/// A cluster with one topic of 30 records over 2 partitions, assigned.
fn with_data(mut cluster: Cluster) -> Cluster {
    cluster.topic("t", 2);
    cluster.log("t", 0).append_values(10).append_values(10);
    cluster.log("t", 1).append_values(10);
    cluster
        .consumer
        .assign([tp("t", 0), tp("t", 1)], cluster.now)
        .unwrap();
    cluster
}

fn sasl_only(config: ConsumerConfig, server: SaslServer) -> Cluster {
    let security = ServerSecurity {
        sasl: Some(server),
        ..ServerSecurity::default()
    };
    with_data(Cluster::secure(
        config,
        secure::client_context(None, WALL_CLOCK),
        security,
        1,
    ))
}

/// A consumer trusting `roots` against brokers serving `pki`'s certificate.
fn tls_cluster(
    config: ConsumerConfig,
    pki: &Pki,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    identity: bool,
    server: ServerSecurity,
    clock: u64,
) -> Cluster {
    let tls = config.tls.clone();
    let client = secure::ClientTls {
        config: &tls,
        roots,
        identity: identity.then_some(pki),
    };
    let context = secure::client_context(Some(client), clock);
    with_data(Cluster::secure(config, context, server, 1))
}

fn tls_server(pki: &Pki, sasl: Option<SaslServer>) -> ServerSecurity {
    ServerSecurity {
        tls: Some(secure::server_config(pki, false)),
        sasl,
        ..ServerSecurity::default()
    }
}

/// The first error poll reports within `limit` of simulated time.
fn first_error(cluster: &mut Cluster, limit: Duration) -> Error {
    let end = cluster.now + limit;
    loop {
        if let Err(e) = cluster.poll() {
            return e;
        }
        assert!(cluster.now < end, "no error within {limit:?}");
        cluster.advance(Duration::from_millis(50));
    }
}

fn api_order(cluster: &Cluster) -> Vec<ApiKey> {
    let first = cluster.opened[0].0;
    cluster
        .log
        .iter()
        .filter(|r| r.conn == first)
        .filter_map(|r| ApiKey::from_code(r.header.api_key))
        .take(4)
        .collect()
}

#[test]
fn sasl_plain_authenticates_before_any_other_request() {
    let config = base().sasl_plain(USER, PASSWORD).build().unwrap();
    assert_eq!(config.security_protocol, SecurityProtocol::SaslPlaintext);
    let mut cluster = sasl_only(config, SaslServer::new(&["PLAIN"], USER, PASSWORD));
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
    assert_eq!(
        api_order(&cluster),
        [
            ApiKey::ApiVersions,
            ApiKey::SaslHandshake,
            ApiKey::SaslAuthenticate,
            ApiKey::Metadata
        ]
    );
}

#[test]
fn scram_sha256_and_sha512_log_in_with_every_byte_delivered_apart() {
    for (mechanism, config) in [
        ("SCRAM-SHA-256", base().sasl_scram_sha256(USER, PASSWORD)),
        ("SCRAM-SHA-512", base().sasl_scram_sha512(USER, PASSWORD)),
    ] {
        let server = SaslServer::new(&["PLAIN", mechanism], USER, PASSWORD);
        let mut cluster = sasl_only(config.build().unwrap(), server);
        cluster.chunk = 1;
        assert_eq!(
            cluster.poll_n(30, Duration::from_secs(5)).len(),
            30,
            "{mechanism}"
        );
        // client-first and client-final on each connection (bootstrap,
        // then the broker by id).
        let logins = 2 * cluster.opened.len();
        assert_eq!(
            cluster.count(ApiKey::SaslAuthenticate),
            logins,
            "{mechanism}"
        );
    }
}

#[test]
fn a_wrong_password_is_a_typed_error_and_retries_back_off() {
    let config = base().sasl_scram_sha512(USER, "wrong").build().unwrap();
    let server = SaslServer::new(&["SCRAM-SHA-512"], USER, PASSWORD);
    let mut cluster = sasl_only(config, server);
    let error = first_error(&mut cluster, Duration::from_secs(2));
    let Error::Authentication { broker, cause } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(broker.to_string(), "broker1:9092");
    assert_eq!(
        cause,
        &AuthFailure::Rejected {
            code: ErrorCode::SASL_AUTHENTICATION_FAILED,
            message: Some("Authentication failed".into())
        }
    );
    assert!(!format!("{error} {error:?}").contains(PASSWORD));
    // Ten seconds of failing logins: reconnects back off to
    // reconnect.backoff.max.ms (1 s), not a tight loop.
    cluster.advance(Duration::from_secs(10));
    let attempts = cluster.count(ApiKey::SaslHandshake);
    assert!((5..=16).contains(&attempts), "{attempts} logins in 10 s");
}

#[test]
fn an_unknown_scram_user_is_refused() {
    let config = base()
        .sasl_scram_sha256("mallory", PASSWORD)
        .build()
        .unwrap();
    let server = SaslServer::new(&["SCRAM-SHA-256"], USER, PASSWORD);
    let mut cluster = sasl_only(config, server);
    match first_error(&mut cluster, Duration::from_secs(2)) {
        Error::Authentication {
            cause: AuthFailure::Scram(odradek_core::sasl::ScramError::Refused(why)),
            ..
        } => assert_eq!(why, "unknown-user"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unsupported_mechanism_names_the_brokers_list() {
    let config = base().sasl_scram_sha512(USER, PASSWORD).build().unwrap();
    let server = SaslServer::new(&["PLAIN", "SCRAM-SHA-256"], USER, PASSWORD);
    let mut cluster = sasl_only(config, server);
    match first_error(&mut cluster, Duration::from_secs(2)) {
        Error::Authentication {
            cause: AuthFailure::UnsupportedMechanism { requested, enabled },
            ..
        } => {
            assert_eq!(requested, "SCRAM-SHA-512");
            assert_eq!(enabled, ["PLAIN", "SCRAM-SHA-256"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_broker_that_closes_during_authentication_is_reported() {
    let config = base().sasl_plain(USER, PASSWORD).build().unwrap();
    let mut server = SaslServer::new(&["PLAIN"], USER, PASSWORD);
    server.close_on_authenticate = true;
    let mut cluster = sasl_only(config, server);
    match first_error(&mut cluster, Duration::from_secs(2)) {
        Error::Authentication {
            cause: AuthFailure::Closed,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn tls_consumes_with_every_byte_delivered_apart() {
    let pki = secure::pki(&["broker1"]);
    let config = base().tls(TlsConfig::default()).build().unwrap();
    assert_eq!(config.security_protocol, SecurityProtocol::Ssl);
    let server = tls_server(&pki, None);
    let mut cluster = tls_cluster(
        config,
        &pki,
        vec![pki.ca.clone()],
        false,
        server,
        WALL_CLOCK,
    );
    cluster.chunk = 1;
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
}

/// A broker that goes down during a TLS handshake or two is not a TLS
/// failure: the consumer reconnects and the application hears nothing.
#[test]
fn a_handshake_cut_once_or_twice_is_not_reported() {
    let pki = secure::pki(&["broker1"]);
    let config = base().tls(TlsConfig::default()).build().unwrap();
    let server = tls_server(&pki, None);
    server
        .cut_tls_handshakes
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let mut cluster = tls_cluster(
        config,
        &pki,
        vec![pki.ca.clone()],
        false,
        server,
        WALL_CLOCK,
    );
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
}

#[test]
fn sasl_ssl_with_scram_sha512() {
    let pki = secure::pki(&["broker1"]);
    let config = base()
        .tls(TlsConfig::default())
        .sasl_scram_sha512(USER, PASSWORD)
        .build()
        .unwrap();
    assert_eq!(config.security_protocol, SecurityProtocol::SaslSsl);
    let server = tls_server(
        &pki,
        Some(SaslServer::new(&["SCRAM-SHA-512"], USER, PASSWORD)),
    );
    let mut cluster = tls_cluster(
        config,
        &pki,
        vec![pki.ca.clone()],
        false,
        server,
        WALL_CLOCK,
    );
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
}

#[test]
fn mutual_tls_needs_the_client_certificate() {
    let pki = secure::pki(&["broker1"]);
    let config = base().tls(TlsConfig::default()).build().unwrap();
    let server = ServerSecurity {
        tls: Some(secure::server_config(&pki, true)),
        ..ServerSecurity::default()
    };
    let roots = vec![pki.ca.clone()];
    let mut with_identity = tls_cluster(
        config.clone(),
        &pki,
        roots.clone(),
        true,
        server.clone(),
        WALL_CLOCK,
    );
    assert_eq!(with_identity.poll_n(30, Duration::from_secs(5)).len(), 30);

    let mut without = tls_cluster(config, &pki, roots, false, server, WALL_CLOCK);
    match first_error(&mut without, Duration::from_secs(2)) {
        Error::Tls {
            cause: TlsFailure::Rejected(rustls::Error::AlertReceived(alert)),
            ..
        } => assert_eq!(alert, AlertDescription::CertificateRequired),
        other => panic!("{other:?}"),
    }
}

fn tls_failure(
    pki: &Pki,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    clock: u64,
) -> Error {
    let config = base().tls(TlsConfig::default()).build().unwrap();
    let server = tls_server(pki, None);
    let mut cluster = tls_cluster(config, pki, roots, false, server, clock);
    first_error(&mut cluster, Duration::from_secs(2))
}

fn certificate_error(error: Error) -> CertificateError {
    match error {
        Error::Tls {
            cause: TlsFailure::Rejected(rustls::Error::InvalidCertificate(e)),
            ..
        } => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_ca_is_refused() {
    let pki = secure::pki(&["broker1"]);
    let error = tls_failure(&pki, vec![pki.other_ca.clone()], WALL_CLOCK);
    assert_eq!(certificate_error(error), CertificateError::UnknownIssuer);
}

#[test]
fn an_expired_certificate_is_refused_at_a_later_wall_clock() {
    let pki = secure::pki(&["broker1"]);
    // 2041-01-01, after every certificate's end.
    let error = tls_failure(&pki, vec![pki.ca.clone()], 2_240_524_800);
    assert!(matches!(
        certificate_error(error),
        CertificateError::Expired | CertificateError::ExpiredContext { .. }
    ),);
}

#[test]
fn a_certificate_for_another_host_is_refused_unless_the_name_check_is_off() {
    let pki = secure::pki(&["elsewhere.example"]);
    let error = tls_failure(&pki, vec![pki.ca.clone()], WALL_CLOCK);
    assert!(matches!(
        certificate_error(error),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    ));

    let config = base()
        .tls(TlsConfig::default())
        .property("ssl.endpoint.identification.algorithm", "none")
        .build()
        .unwrap();
    let server = tls_server(&pki, None);
    let mut cluster = tls_cluster(
        config,
        &pki,
        vec![pki.ca.clone()],
        false,
        server,
        WALL_CLOCK,
    );
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
}

#[test]
fn tls_to_a_plaintext_listener_and_plaintext_to_a_tls_listener_are_named() {
    let pki = secure::pki(&["broker1"]);
    let config = base().tls(TlsConfig::default()).build().unwrap();
    let plaintext = ServerSecurity::default();
    let mut cluster = tls_cluster(
        config,
        &pki,
        vec![pki.ca.clone()],
        false,
        plaintext,
        WALL_CLOCK,
    );
    match first_error(&mut cluster, Duration::from_secs(2)) {
        Error::Tls {
            cause: TlsFailure::ClosedDuringHandshake,
            ..
        } => {}
        other => panic!("{other:?}"),
    }

    let context = SecurityContext::new(
        secure::provider(),
        std::sync::Arc::new(secure::FixedClock(WALL_CLOCK)),
        None,
    )
    .unwrap();
    let config = base().build().unwrap();
    let mut cluster = with_data(Cluster::secure(config, context, tls_server(&pki, None), 1));
    match first_error(&mut cluster, Duration::from_secs(2)) {
        Error::Tls {
            cause: TlsFailure::ServerSpeaksTls,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
}

/// KIP-368: a session that lasts 10 s is renewed on the same connection
/// before it ends, between fetches, while records keep coming. A client
/// that did not re-authenticate would be disconnected by the broker at the
/// end of each session (and open new connections).
#[test]
fn sessions_are_renewed_on_the_same_connection_while_fetching() {
    let pki = secure::pki(&["broker1"]);
    let config = base()
        .tls(TlsConfig::default())
        .sasl_scram_sha256(USER, PASSWORD)
        .build()
        .unwrap();
    let mut sasl = SaslServer::new(&["SCRAM-SHA-256"], USER, PASSWORD);
    sasl.session_lifetime = Duration::from_secs(10);
    let server = tls_server(&pki, Some(sasl));
    let mut cluster = tls_cluster(
        config,
        &pki,
        vec![pki.ca.clone()],
        false,
        server,
        WALL_CLOCK,
    );
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
    let connections = cluster.opened.len();
    let mut expected = 30;
    for _ in 0..12 {
        cluster.log("t", 0).append_values(3);
        expected += 3;
        let got = cluster.poll_n(3, Duration::from_secs(5)).len();
        assert_eq!(got, 3);
        cluster.advance(Duration::from_secs(4));
    }
    assert!(expected > 60);
    assert_eq!(cluster.opened.len(), connections, "no connection dropped");
    let logins = cluster.count(ApiKey::SaslHandshake);
    assert!(
        logins >= 6,
        "{logins} logins in about a minute of 10 s sessions"
    );
}

/// Tokens from the application's provider, counting its calls.
struct Tokens {
    clock: secure::TestClock,
    subject: &'static str,
    lifetime_secs: u64,
    calls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl odradek_core::security::OAuthBearerTokenProvider for Tokens {
    fn token(&self) -> Result<odradek_core::security::OAuthBearerToken, String> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let config = odradek_core::security::UnsecuredJwtConfig::parse(&format!(
            "principal={} lifeSeconds={}",
            self.subject, self.lifetime_secs
        ))
        .map_err(|e| e.to_string())?;
        Ok(odradek_core::sasl::unsecured_jwt(
            &config,
            self.clock.secs() * 1000,
        ))
    }
}

fn oauth_cluster(
    subject: &'static str,
    lifetime_secs: u64,
) -> (
    Cluster,
    secure::TestClock,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let clock = secure::TestClock::new(WALL_CLOCK);
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let provider = Tokens {
        clock: clock.clone(),
        subject,
        lifetime_secs,
        calls: calls.clone(),
    };
    let config = base().sasl_oauthbearer(provider).build().unwrap();
    let mut sasl = SaslServer::new(&["OAUTHBEARER"], USER, "");
    sasl.session_lifetime = Duration::from_secs(lifetime_secs);
    let server = ServerSecurity {
        sasl: Some(sasl),
        ..ServerSecurity::default()
    };
    let context = secure::client_context_with(None, std::sync::Arc::new(clock.clone()));
    (
        with_data(Cluster::secure(config, context, server, 1)),
        clock,
        calls,
    )
}

/// OAUTHBEARER: tokens come from the provider, are shared by connections,
/// are fetched again after 80% of their life, and each session is renewed
/// (KIP-368) on the same connection with a fresh token.
#[test]
fn oauthbearer_tokens_are_refreshed_and_sessions_renewed() {
    let (mut cluster, clock, calls) = oauth_cluster(USER, 10);
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one token for both connections"
    );
    let connections = cluster.opened.len();
    for _ in 0..12 {
        cluster.log("t", 1).append_values(2);
        assert_eq!(cluster.poll_n(2, Duration::from_secs(5)).len(), 2);
        clock.advance(Duration::from_secs(4));
        cluster.advance(Duration::from_secs(4));
    }
    assert_eq!(cluster.opened.len(), connections, "no connection dropped");
    let fetched = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        fetched >= 5,
        "{fetched} tokens in about a minute of 10 s tokens"
    );
}

#[test]
fn a_refused_oauthbearer_token_reports_the_brokers_reason() {
    let (mut cluster, _, _) = oauth_cluster("nobody", 3600);
    match first_error(&mut cluster, Duration::from_secs(2)) {
        Error::Authentication {
            cause: AuthFailure::OAuthBearer(refusal),
            ..
        } => {
            assert_eq!(refusal.status, "invalid_token");
            assert_eq!(refusal.scope.as_deref(), Some("kafka"));
        }
        other => panic!("{other:?}"),
    }
    // The refusal was acknowledged with the RFC 7628 `\x01` message.
    assert!(cluster.count(ApiKey::SaslAuthenticate) >= 2);
}

#[test]
fn the_unsecured_development_token_from_properties_logs_in() {
    let config = ConsumerConfig::from_properties([
        ("bootstrap.servers", "broker1:9092"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "OAUTHBEARER"),
        (
            "sasl.oauthbearer.config",
            "principal=alice lifeSeconds=600 scope=a,b",
        ),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
    ])
    .unwrap();
    let server = SaslServer::new(&["OAUTHBEARER"], USER, "");
    let mut cluster = sasl_only(config, server);
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);
}

#[test]
fn aws_msk_iam_signs_in_and_a_wrong_key_is_refused() {
    let config = base()
        .aws_msk_iam(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        )
        .build()
        .unwrap();
    let server = SaslServer::new(&["AWS_MSK_IAM"], "AKIDEXAMPLE", "");
    let mut cluster = sasl_only(config, server.clone());
    assert_eq!(cluster.poll_n(30, Duration::from_secs(5)).len(), 30);

    let config = base()
        .aws_msk_iam_session("AKIDOTHER", "s3cr3t-KEY-zz", "tok3n-zz", "us-east-1")
        .build()
        .unwrap();
    let mut cluster = sasl_only(config, server);
    let error = first_error(&mut cluster, Duration::from_secs(2));
    assert!(
        matches!(
            &error,
            Error::Authentication {
                cause: AuthFailure::Rejected { .. },
                ..
            }
        ),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {:?}", cluster.consumer.config());
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("tok3n"),
        "{shown}"
    );
}
