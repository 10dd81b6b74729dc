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
//! When the client port is bound it prints `odradek-crabka: ready on ADDR`
//! on stderr. The audit log is off: it would add an internal topic to every
//! Metadata answer and a spool directory to write.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;

use crabka_broker::{BootstrapMode, Broker, BrokerConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::fmt::format::FmtSpan;

/// Reads a required environment variable.
fn required(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("{name} is not set"))
}

/// Reads a required loopback port.
fn port(name: &str) -> Result<SocketAddr, String> {
    let text = required(name)?;
    let port: u16 = text
        .parse()
        .map_err(|e| format!("{name}={text:?} is not a port: {e}"))?;
    Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
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
    Ok(BrokerConfig {
        listen_addr: client,
        advertised_listener: client.to_string(),
        controller_listen_addr: controller,
        controller_quorum_voters: vec![(1, controller.to_string())],
        bootstrap_mode,
        audit_enabled: false,
        audit_spool_dir: log_dir.join("audit-spool"),
        log_dir,
        ..BrokerConfig::default()
    })
}

async fn run() -> Result<(), String> {
    let config = config()?;
    let mode = config.bootstrap_mode;
    let broker = Broker::start(config)
        .await
        .map_err(|e| format!("the broker did not start: {e}"))?;
    eprintln!(
        "odradek-crabka: ready on {} ({mode:?})",
        broker.listen_addr()
    );
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
