//! Starts one crabka broker (a combined KRaft controller and broker) for
//! Odradek's integration tests, configured by environment variables, and
//! runs it until SIGTERM or SIGINT.
//!
//! * `ODRADEK_CRABKA_LOG_DIR` (required): the data directory. When it already
//!   holds a metadata log the broker rejoins its own cluster (a restart);
//!   otherwise it bootstraps a new one.
//! * `ODRADEK_CRABKA_PORT` (required): the client (PLAINTEXT) listener on
//!   127.0.0.1, advertised as such in Metadata.
//! * `ODRADEK_CRABKA_CONTROLLER_PORT` (required): the KRaft controller
//!   listener on 127.0.0.1. Every instance needs its own, or brokers started
//!   side by side join each other's quorum.
//! * `ODRADEK_CRABKA_LOG_REQUESTS` (optional, any value): log every request
//!   the broker handled when it is answered, as a `kafka.request` span with
//!   its `kafka.api_key`, so tests can see which requests a client sent.
//! * `RUST_LOG`: the broker's log filter (default `warn`).
//!
//! Secure listeners, each optional and each on its own 127.0.0.1 port,
//! advertised as itself (Metadata and FindCoordinator answer with the
//! address of the listener the request came in on). Without any of the
//! four port variables the broker has exactly the one PLAINTEXT listener
//! above and none of the variables below is read.
//!
//! * `ODRADEK_CRABKA_SSL_PORT`: an `SSL` listener (TLS, no client
//!   certificate requested).
//! * `ODRADEK_CRABKA_MTLS_PORT`: an SSL listener named `MTLS` that requires
//!   a client certificate chaining to `ODRADEK_CRABKA_TLS_CLIENT_CA` (the
//!   handshake fails without one); the certificate's subject becomes the
//!   connection's principal.
//! * `ODRADEK_CRABKA_SASL_PLAINTEXT_PORT`: a `SASL_PLAINTEXT` listener.
//! * `ODRADEK_CRABKA_SASL_SSL_PORT`: a `SASL_SSL` listener (TLS without a
//!   client certificate, then SASL).
//! * `ODRADEK_CRABKA_TLS_CERT`, `ODRADEK_CRABKA_TLS_KEY` (required by any
//!   TLS listener): PEM files with the server certificate chain (leaf
//!   first) and its private key (PKCS#8, PKCS#1 or SEC1). All TLS
//!   listeners serve the same chain.
//! * `ODRADEK_CRABKA_TLS_CLIENT_CA` (required by the MTLS listener): PEM
//!   file with the CA certificates client certificates must chain to.
//! * `ODRADEK_CRABKA_TLS_TRUST_ROOTS` (optional): PEM roots the broker
//!   trusts as a TLS *client* (crabka's `trust_roots_path`, used only when
//!   it dials other brokers, which a one-node cluster never does).
//! * `ODRADEK_CRABKA_SASL_MECHANISMS` (optional): the mechanisms both SASL
//!   listeners offer, comma-separated wire names; default
//!   `PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER`.
//! * `ODRADEK_CRABKA_PLAIN_USERS` (optional): the PLAIN users,
//!   `user:password` pairs separated by commas (a password may contain `:`
//!   but not `,`). SCRAM users are not configured here: create them with
//!   AlterUserScramCredentials (they persist in the metadata log).
//! * `ODRADEK_CRABKA_OAUTHBEARER_MAX_SESSION_S` (optional): a ceiling, in
//!   whole seconds, on an OAUTHBEARER session. The broker reports
//!   `session_lifetime_ms = min(token exp - now, ceiling)` in
//!   SaslAuthenticate and closes the connection when that time is up
//!   unless the client re-authenticated (KIP-368). Without it a session
//!   lasts until the token's `exp`. PLAIN and SCRAM sessions never expire.
//!
//! OAUTHBEARER tokens are checked by crabka's default validator: unsecured
//! JWS (`alg: none`, empty signature) with a `sub` claim (the principal)
//! and an `exp` claim in the future (30 s skew allowed); `iat`, if present,
//! must not be in the future.
//!
//! In crabka TLS material (and so the client-certificate requirement) and
//! the SASL mechanism list can differ per listener; PLAIN users, SCRAM
//! users, the OAUTHBEARER validator and its session ceiling are
//! broker-wide. The TLS files are given to each TLS listener, not to the
//! broker as a whole: that leaves the KRaft controller listener in
//! plaintext and skips crabka's kernel-TLS probe, and the files are read
//! again at every TLS connection.
//!
//! When the client port is bound it prints `odradek-crabka: ready on ADDR`
//! on stderr. The audit log is off: it would add an internal topic to every
//! Metadata answer and a spool directory to write.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;

use crabka_broker::config::ListenerSpec;
use crabka_broker::{BootstrapMode, Broker, BrokerConfig};
use crabka_security::{ClientAuthMode, ListenerProtocol, SaslMechanism, TlsConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::fmt::format::FmtSpan;

/// Reads a required environment variable.
fn required(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is not set"))
}

/// Reads an optional environment variable (unset or empty: `None`).
fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads a required loopback port.
fn port(name: &str) -> Result<SocketAddr, String> {
    let text = required(name)?;
    let port: u16 = text
        .parse()
        .map_err(|e| format!("{name}={text:?} is not a port: {e}"))?;
    Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
}

/// Reads an optional loopback port.
fn optional_port(name: &str) -> Result<Option<SocketAddr>, String> {
    match optional(name) {
        Some(_) => port(name).map(Some),
        None => Ok(None),
    }
}

/// The mechanisms the SASL listeners offer when
/// `ODRADEK_CRABKA_SASL_MECHANISMS` is unset.
const DEFAULT_MECHANISMS: [SaslMechanism; 4] = [
    SaslMechanism::Plain,
    SaslMechanism::ScramSha256,
    SaslMechanism::ScramSha512,
    SaslMechanism::OAuthBearer,
];

/// The extra listeners' ports, from the environment.
struct SecurePorts {
    ssl: Option<SocketAddr>,
    mtls: Option<SocketAddr>,
    sasl_plaintext: Option<SocketAddr>,
    sasl_ssl: Option<SocketAddr>,
}

impl SecurePorts {
    fn from_env() -> Result<SecurePorts, String> {
        Ok(SecurePorts {
            ssl: optional_port("ODRADEK_CRABKA_SSL_PORT")?,
            mtls: optional_port("ODRADEK_CRABKA_MTLS_PORT")?,
            sasl_plaintext: optional_port("ODRADEK_CRABKA_SASL_PLAINTEXT_PORT")?,
            sasl_ssl: optional_port("ODRADEK_CRABKA_SASL_SSL_PORT")?,
        })
    }

    fn any(&self) -> bool {
        self.ssl.is_some()
            || self.mtls.is_some()
            || self.sasl_plaintext.is_some()
            || self.sasl_ssl.is_some()
    }

    fn any_sasl(&self) -> bool {
        self.sasl_plaintext.is_some() || self.sasl_ssl.is_some()
    }
}

/// The TLS settings of one listener, with or without a required client
/// certificate.
fn tls_config(client_auth: ClientAuthMode) -> Result<TlsConfig, String> {
    let why = "a TLS listener is configured";
    let cert = required("ODRADEK_CRABKA_TLS_CERT").map_err(|e| format!("{e} ({why})"))?;
    let key = required("ODRADEK_CRABKA_TLS_KEY").map_err(|e| format!("{e} ({why})"))?;
    let client_ca_path = match client_auth {
        ClientAuthMode::Disabled => None,
        _ => Some(PathBuf::from(
            required("ODRADEK_CRABKA_TLS_CLIENT_CA")
                .map_err(|e| format!("{e} (ODRADEK_CRABKA_MTLS_PORT needs the client CA)"))?,
        )),
    };
    let tls = TlsConfig {
        cert_chain_path: cert.into(),
        private_key_path: key.into(),
        trust_roots_path: optional("ODRADEK_CRABKA_TLS_TRUST_ROOTS").map(PathBuf::from),
        client_ca_path,
        client_auth,
    };
    // Fail at start with the reason, not at the first handshake (the
    // broker builds a listener's TLS settings only when a client connects).
    tls.build_server_config()
        .map_err(|e| format!("the TLS files do not make a server configuration: {e}"))?;
    Ok(tls)
}

fn listener(
    name: &str,
    addr: SocketAddr,
    protocol: ListenerProtocol,
    tls_config: Option<TlsConfig>,
) -> ListenerSpec {
    ListenerSpec {
        name: name.to_string(),
        bind_addr: addr,
        advertised: addr.to_string(),
        protocol,
        tls_config,
        // The broker-wide list (`enabled_sasl_mechanisms`) applies.
        sasl_mechanisms: None,
    }
}

/// Adds the listeners and the security settings the environment asks for.
fn add_secure_listeners(config: &mut BrokerConfig) -> Result<(), String> {
    let ports = SecurePorts::from_env()?;
    if !ports.any() {
        return Ok(());
    }
    let mut listeners = vec![listener(
        "PLAINTEXT",
        config.listen_addr,
        ListenerProtocol::Plaintext,
        None,
    )];
    if let Some(addr) = ports.ssl {
        let tls = tls_config(ClientAuthMode::Disabled)?;
        listeners.push(listener("SSL", addr, ListenerProtocol::Ssl, Some(tls)));
    }
    if let Some(addr) = ports.mtls {
        let tls = tls_config(ClientAuthMode::Required)?;
        listeners.push(listener("MTLS", addr, ListenerProtocol::Ssl, Some(tls)));
    }
    if let Some(addr) = ports.sasl_plaintext {
        listeners.push(listener(
            "SASL_PLAINTEXT",
            addr,
            ListenerProtocol::SaslPlaintext,
            None,
        ));
    }
    if let Some(addr) = ports.sasl_ssl {
        let tls = tls_config(ClientAuthMode::Disabled)?;
        listeners.push(listener(
            "SASL_SSL",
            addr,
            ListenerProtocol::SaslSsl,
            Some(tls),
        ));
    }
    config.listeners = listeners;
    if !ports.any_sasl() {
        return Ok(());
    }
    config.enabled_sasl_mechanisms = match optional("ODRADEK_CRABKA_SASL_MECHANISMS") {
        None => DEFAULT_MECHANISMS.to_vec(),
        Some(list) => list
            .split(',')
            .map(|m| {
                m.trim()
                    .parse()
                    .map_err(|_| format!("ODRADEK_CRABKA_SASL_MECHANISMS: unknown mechanism {m:?}"))
            })
            .collect::<Result<_, _>>()?,
    };
    if let Some(users) = optional("ODRADEK_CRABKA_PLAIN_USERS") {
        for pair in users.split(',') {
            let (user, password) = pair.split_once(':').ok_or_else(|| {
                "ODRADEK_CRABKA_PLAIN_USERS: an entry is not user:password".to_string()
            })?;
            config
                .plain_credentials
                .insert(user.to_string(), password.to_string());
        }
    }
    if let Some(text) = optional("ODRADEK_CRABKA_OAUTHBEARER_MAX_SESSION_S") {
        let seconds = text.parse().map_err(|e| {
            format!(
                "ODRADEK_CRABKA_OAUTHBEARER_MAX_SESSION_S={text:?} is not a number of seconds: {e}"
            )
        })?;
        config.oauthbearer_max_session_lifetime_seconds = Some(seconds);
    }
    Ok(())
}

fn config() -> Result<BrokerConfig, String> {
    let log_dir = PathBuf::from(required("ODRADEK_CRABKA_LOG_DIR")?);
    let client = port("ODRADEK_CRABKA_PORT")?;
    let controller = port("ODRADEK_CRABKA_CONTROLLER_PORT")?;
    // The library does not detect a restart itself: bootstrapping on an
    // existing metadata log fails, so say which one this is.
    let bootstrap_mode = if crabka_raft::metadata_log_nonempty(&log_dir.join("__cluster_metadata"))
    {
        BootstrapMode::Rejoin
    } else {
        BootstrapMode::Bootstrap
    };
    let mut config = BrokerConfig {
        listen_addr: client,
        advertised_listener: client.to_string(),
        controller_listen_addr: controller,
        controller_quorum_voters: vec![(1, controller.to_string())],
        bootstrap_mode,
        audit_enabled: false,
        audit_spool_dir: log_dir.join("audit-spool"),
        log_dir,
        ..BrokerConfig::default()
    };
    add_secure_listeners(&mut config)?;
    Ok(config)
}

async fn run() -> Result<(), String> {
    // rustls is built with two providers here (ring and aws-lc-rs), so one
    // must be chosen before the TLS files are checked; crabka uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = config()?;
    let mode = config.bootstrap_mode;
    let listeners: Vec<String> = config
        .listeners
        .iter()
        .map(|l| format!("{} {}", l.name, l.advertised))
        .collect();
    let broker = Broker::start(config)
        .await
        .map_err(|e| format!("the broker did not start: {e}"))?;
    eprintln!(
        "odradek-crabka: ready on {} ({mode:?})",
        broker.listen_addr()
    );
    for listener in listeners {
        eprintln!("odradek-crabka: listener {listener}");
    }
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    eprintln!("odradek-crabka: shutting down");
    broker.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string());
    let log_requests = std::env::var_os("ODRADEK_CRABKA_LOG_REQUESTS").is_some();
    if log_requests {
        // The broker opens a span per request only when this target is on.
        filter.push_str(",crabka_broker::request=debug");
    }
    let spans = if log_requests {
        FmtSpan::CLOSE
    } else {
        FmtSpan::NONE
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_span_events(spans)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("odradek-crabka: {message}");
            ExitCode::FAILURE
        }
    }
}
