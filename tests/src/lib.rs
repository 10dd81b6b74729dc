//! Test harness for Odradek's integration tests.
//!
//! Everything here runs real processes on loopback addresses only:
//!
//! * [`Broker`] starts one of the two test brokers ([`BrokerKind`]): a
//!   [tansu](https://github.com/tansu-io/tansu) broker with in-memory
//!   storage, or a crabka broker (KRaft, on-disk log, built from
//!   `tests/brokers/crabka`), on free `127.0.0.1` ports, waits until it
//!   really serves, and kills it (by its own PID) when dropped. Both are
//!   described in `shared/reference/brokers.md`; where they deviate from
//!   Apache Kafka is summed up in `tests/BROKERS.md`.
//! * [`secure::SecureBroker`] is a crabka broker with SSL, mutual-TLS,
//!   SASL_PLAINTEXT and SASL_SSL listeners beside PLAINTEXT, certificates
//!   made at test time and SASL users (PLAIN, SCRAM-SHA-256/512,
//!   OAUTHBEARER); [`secure::produce`] and [`secure::probe`] reach any of
//!   its listeners with confluent-kafka.
//! * [`admin`] creates and deletes topics, deletes records, sets features
//!   and creates SCRAM users through the independent `kafka-protocol` codec.
//! * [`python`] and [`run_python`] run the independent Python clients
//!   (confluent-kafka, kafka-python) from a pinned virtualenv.
//! * [`produced`] runs `tests/python/produce.py` and regenerates, on the Rust
//!   side, exactly the records it wrote.
//! * [`driver`] is a blocking one-request-at-a-time connection speaking
//!   Odradek's own codec, for protocol conformance tests and for writing
//!   record batches with known boundaries.
//! * [`suite`] runs each consumer scenario on every adapter (tokio,
//!   async-std, smol, blocking) and every broker through one blocking
//!   interface.
//! * [`Interactive`] is a child process the test talks to line by line
//!   (e.g. `tests/python/transactional.py`, which waits for "commit").
//!
//! A broker is killed when its [`Broker`] is dropped and also, by a small
//! watchdog process, when the test process exits without dropping it (a
//! broker shared through a `static`, or a process ended by a timeout).
//!
//! The brokers and the virtualenv are installed on first use by
//! `scripts/install-tansu.sh`, `scripts/install-crabka.sh` and
//! `scripts/install-python-clients.sh` into
//! `${ODRADEK_CACHE:-$HOME/.cache/odradek}`; each script runs at most once per
//! test process.
//!
//! Environment variables:
//!
//! * `ODRADEK_TANSU`, `ODRADEK_CRABKA`: paths to broker binaries to use
//!   instead of installing them.
//! * `ODRADEK_CACHE`: where the install scripts put their files.
//! * `ODRADEK_BROKER_LOG`: passed to the broker as `RUST_LOG` (otherwise the
//!   broker runs with its default log level).
//! * `ODRADEK_KEEP_BROKER_DIR`: if set, a broker's temporary directory (with its
//!   log) is kept after drop. It is always kept when the dropping thread panics.

pub mod admin;
pub mod driver;
pub mod interop;
pub mod member;
pub mod secure;
pub mod silent;
pub mod suite;

use std::error::Error;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a broker may take to accept connections after being spawned.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Default timeout of [`run_python`].
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(120);

/// Timeout of one run of an install script (a cold install takes seconds).
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Timeout of a cold build of the crabka launcher (about 10 minutes).
pub const CRABKA_BUILD_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// How many fresh ports [`Broker::start`] tries when the chosen one is taken.
const START_ATTEMPTS: u32 = 5;

/// How long [`Broker::restart`] keeps retrying its fixed port while it is taken.
const RESTART_PORT_WAIT: Duration = Duration::from_secs(10);

/// Lines of the broker log included in error messages.
const LOG_TAIL_LINES: usize = 40;

/// Everything that can go wrong in the harness.
///
/// The message says what failed, with the relevant command output or broker
/// log, and where useful how to fix it. `Debug` prints the same text as
/// `Display`, so `.unwrap()` in a test shows a readable message.
pub struct HarnessError {
    message: String,
    source: Option<io::Error>,
}

impl HarnessError {
    fn new(message: impl Into<String>) -> Self {
        HarnessError {
            message: message.into(),
            source: None,
        }
    }

    fn io(context: impl Into<String>, source: io::Error) -> Self {
        let context = context.into();
        HarnessError {
            message: format!("{context}: {source}"),
            source: Some(source),
        }
    }

    /// The full, human-readable description of the failure.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for HarnessError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}

// ---------------------------------------------------------------------------
// Paths and installers
// ---------------------------------------------------------------------------

/// The root of the Cargo workspace (the parent of the `tests/` crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The path of a helper script in `tests/python/`, e.g. `python_script("produce.py")`.
pub fn python_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// Runs `bash scripts/<script>` and returns the path printed on its last
/// stdout line, which must exist.
fn run_installer(script: &str, what: &str, timeout: Duration) -> Result<PathBuf, String> {
    let path = workspace_root().join("scripts").join(script);
    let shown = format!("bash {}", path.display());
    let mut cmd = Command::new("bash");
    cmd.arg(&path).current_dir(workspace_root());
    let out = match run_with_timeout(&mut cmd, timeout) {
        Ok(out) => out,
        Err(e) => {
            return Err(format!(
                "installing {what} failed: could not run `{shown}`: {e}\n\
                 Fix: run `{shown}` by hand and read its output (it needs bash, python3 with pip, \
                 and access to PyPI)."
            ));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "installing {what} failed: `{shown}` exited with {}.\n--- its stderr ---\n{}\n--- its stdout ---\n{}\n\
             Fix: run `{shown}` by hand and fix what it reports (it needs bash, python3 with pip, and \
             access to PyPI; it installs into ${{ODRADEK_CACHE:-$HOME/.cache/odradek}}; deleting that \
             directory forces a clean reinstall).",
            out.status,
            stderr.trim_end(),
            stdout.trim_end()
        ));
    }
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let installed = PathBuf::from(last);
    if last.is_empty() || !installed.is_file() {
        return Err(format!(
            "installing {what} failed: `{shown}` succeeded but its last stdout line {last:?} is not an \
             existing file.\n--- its stderr ---\n{}\nFix: run `{shown}` by hand; it must print the \
             installed path as its last line.",
            stderr.trim_end()
        ));
    }
    Ok(installed)
}

/// The path of the tansu binary, installing it on first use.
///
/// Uses `$ODRADEK_TANSU` if set; otherwise runs `scripts/install-tansu.sh`
/// (once per process; the result, success or failure, is cached).
pub fn tansu_binary() -> Result<PathBuf, HarnessError> {
    static TANSU: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TANSU
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("ODRADEK_TANSU") {
                let p = PathBuf::from(p);
                return if p.is_file() {
                    Ok(p)
                } else {
                    Err(format!(
                        "ODRADEK_TANSU is set to {} but that is not a file. Fix: point it at a tansu \
                         binary, or unset it to use scripts/install-tansu.sh.",
                        p.display()
                    ))
                };
            }
            run_installer("install-tansu.sh", "the tansu broker", INSTALL_TIMEOUT)
        })
        .clone()
        .map_err(HarnessError::new)
}

/// The path of the crabka launcher, building it on first use.
///
/// Uses `$ODRADEK_CRABKA` if set; otherwise runs `scripts/install-crabka.sh`
/// (once per process; the result, success or failure, is cached), which
/// takes about 10 minutes when nothing is cached yet.
pub fn crabka_binary() -> Result<PathBuf, HarnessError> {
    static CRABKA: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CRABKA
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("ODRADEK_CRABKA") {
                let p = PathBuf::from(p);
                return if p.is_file() {
                    Ok(p)
                } else {
                    Err(format!(
                        "ODRADEK_CRABKA is set to {} but that is not a file. Fix: point it at a \
                         built tests/brokers/crabka launcher, or unset it to use \
                         scripts/install-crabka.sh.",
                        p.display()
                    ))
                };
            }
            run_installer(
                "install-crabka.sh",
                "the crabka broker",
                CRABKA_BUILD_TIMEOUT,
            )
        })
        .clone()
        .map_err(HarnessError::new)
}

/// The virtualenv's python with the pinned Kafka clients, installing it on
/// first use by running `scripts/install-python-clients.sh` (once per process;
/// the result, success or failure, is cached).
pub fn python() -> Result<PathBuf, HarnessError> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            run_installer(
                "install-python-clients.sh",
                "the Python Kafka clients",
                INSTALL_TIMEOUT,
            )
        })
        .clone()
        .map_err(HarnessError::new)
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// Runs `cmd` to completion with its stdout and stderr captured, killing it
/// (by its PID) if it runs longer than `timeout`.
///
/// Stdin is closed. Returns the output whatever the exit status; fails only if
/// the command cannot be spawned or times out (the error then includes what it
/// printed so far).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output, HarnessError> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::io(format!("could not spawn {shown}"), e))?;
    // Drain both pipes on threads so a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_thread = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_thread = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::io(format!("waiting for {shown}"), e));
            }
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(HarnessError::new(format!(
            "{shown} did not finish within {timeout:?} and was killed.\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&stdout).trim_end(),
            String::from_utf8_lossy(&stderr).trim_end()
        ))),
    }
}

/// Formats a finished command's failure with everything it printed.
fn command_failed(what: &str, status: ExitStatus, out: &Output) -> HarnessError {
    HarnessError::new(format!(
        "{what} failed with {status}.\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    ))
}

/// Runs a Python script with the virtualenv's python ([`python`]) and
/// [`PYTHON_TIMEOUT`]; fails unless it exits 0, with its stdout and stderr in
/// the error.
pub fn run_python(script: &Path, args: &[&str]) -> Result<Output, HarnessError> {
    run_python_with_timeout(script, args, PYTHON_TIMEOUT)
}

/// Like [`run_python`] with an explicit timeout.
pub fn run_python_with_timeout(
    script: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<Output, HarnessError> {
    let py = python()?;
    let mut cmd = Command::new(&py);
    cmd.arg(script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let out = run_with_timeout(&mut cmd, timeout)?;
    if !out.status.success() {
        let what = format!("python script {} {}", script.display(), args.join(" "));
        return Err(command_failed(&what, out.status, &out));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------

/// Which test broker to run (see `shared/reference/brokers.md`; where each
/// one deviates from Apache Kafka is listed in `tests/BROKERS.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BrokerKind {
    /// tansu with in-memory storage: lenient, fast to start, loses
    /// everything on restart.
    Tansu,
    /// crabka, a KRaft broker with an on-disk log: stricter (log start
    /// offsets, leader epochs, commit metadata, aborted transactions,
    /// static membership) and persistent across restarts.
    Crabka,
}

/// One value per broker kind, made on first use and kept for the whole test
/// binary: a broker with its topics written once, shared by every runtime's
/// test.
pub struct PerBroker<T> {
    tansu: OnceLock<T>,
    crabka: OnceLock<T>,
}

impl<T> PerBroker<T> {
    /// Nothing made yet.
    pub const fn new() -> Self {
        Self {
            tansu: OnceLock::new(),
            crabka: OnceLock::new(),
        }
    }

    /// `kind`'s value, made by `make` if this is its first use (concurrent
    /// callers wait for the first one).
    pub fn get_or_init(&self, kind: BrokerKind, make: impl FnOnce() -> T) -> &T {
        match kind {
            BrokerKind::Tansu => self.tansu.get_or_init(make),
            BrokerKind::Crabka => self.crabka.get_or_init(make),
        }
    }
}

impl<T> Default for PerBroker<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerKind {
    /// Both brokers.
    pub const ALL: [BrokerKind; 2] = [BrokerKind::Tansu, BrokerKind::Crabka];

    /// `"tansu"` or `"crabka"`.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Tansu => "tansu",
            BrokerKind::Crabka => "crabka",
        }
    }

    /// The broker binary, installed on first use.
    pub fn binary(self) -> Result<PathBuf, HarnessError> {
        match self {
            BrokerKind::Tansu => tansu_binary(),
            BrokerKind::Crabka => crabka_binary(),
        }
    }

    /// The session timeout and heartbeat interval group tests use: short
    /// joins on tansu, which holds a JoinGroup for half the session (3 s /
    /// 1 s); on crabka Kafka's minimum session (6 s / 2 s), because it
    /// expires a member whose session ends while its JoinGroup waits out
    /// the first join's 3 s delay (Apache Kafka does not).
    pub fn group_timeouts(self) -> (Duration, Duration) {
        match self {
            BrokerKind::Tansu => (Duration::from_millis(3000), Duration::from_millis(1000)),
            BrokerKind::Crabka => (Duration::from_millis(6000), Duration::from_millis(2000)),
        }
    }

    /// Whether data survives [`Broker::restart`] (crabka's on-disk log) or
    /// not (tansu's memory storage).
    pub fn persists(self) -> bool {
        self == BrokerKind::Crabka
    }
}

impl fmt::Display for BrokerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A test broker process listening on a loopback port: tansu with
/// in-memory storage, or crabka with its log in the broker's directory.
///
/// Each broker has its own temporary directory (its working directory, which
/// holds `broker.log` with its stdout and stderr, and crabka's `data/`).
/// Dropping the broker kills the process by its PID, waits for it, and
/// removes the directory (unless the thread is panicking or
/// `ODRADEK_KEEP_BROKER_DIR` is set, in which case the path is printed to
/// stderr).
pub struct Broker {
    kind: BrokerKind,
    binary: PathBuf,
    port: u16,
    /// crabka's KRaft controller port (unused by tansu).
    controller_port: u16,
    /// Whether crabka logs every request it answers (see
    /// [`Broker::start_logging_requests`]).
    log_requests: bool,
    /// crabka's secure listeners, certificates and options (see
    /// [`secure::SecureBroker`]).
    secure: Option<secure::SecureSetup>,
    dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// Kills the broker if this process dies without dropping it (see
    /// [`Watchdog`]).
    watchdog: Option<Watchdog>,
}

/// Why one attempt to spawn a broker failed.
enum SpawnError {
    /// The port was taken; the log segment of this attempt.
    PortInUse(String),
    /// Anything else.
    Other(HarnessError),
}

impl Broker {
    /// Installs the broker if needed and starts it on a free loopback port.
    ///
    /// Returns once the process itself listens on `127.0.0.1:PORT` and
    /// answers Metadata with itself as a broker. Retries with new ports if a
    /// chosen one was taken in the meantime.
    pub fn start(kind: BrokerKind) -> Result<Broker, HarnessError> {
        Self::start_with(kind, false, None)
    }

    /// crabka with the secure listeners, for [`secure::SecureBroker`].
    pub(crate) fn start_secure(options: secure::SecureOptions) -> Result<Broker, HarnessError> {
        Self::start_with(BrokerKind::Crabka, options.log_requests, Some(options))
    }

    fn start_with(
        kind: BrokerKind,
        log_requests: bool,
        secure: Option<secure::SecureOptions>,
    ) -> Result<Broker, HarnessError> {
        let binary = kind.binary()?;
        let dir = make_temp_dir(kind)?;
        let log_path = dir.join("broker.log");
        let secure = match secure {
            Some(options) => Some(secure::SecureSetup::new(&dir, options)?),
            None => None,
        };
        let mut broker = Broker {
            kind,
            binary,
            port: 0,
            controller_port: 0,
            log_requests,
            secure,
            dir,
            log_path,
            child: None,
            watchdog: None,
        };
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            broker.port = free_port()?;
            broker.controller_port = free_port()?;
            let taken = [broker.port, broker.controller_port];
            if let Some(secure) = broker.secure.as_mut() {
                secure.choose_ports(&taken)?;
            }
            match broker.spawn() {
                Ok(()) => {
                    broker.prepare()?;
                    return Ok(broker);
                }
                Err(SpawnError::PortInUse(log)) => last_log = log,
                Err(SpawnError::Other(e)) => return Err(e),
            }
        }
        Err(HarnessError::new(format!(
            "{kind} could not bind free loopback ports in {START_ATTEMPTS} attempts (each chosen port \
             was taken before the broker bound it). Last broker log ({}):\n{last_log}",
            broker.log_path.display()
        )))
    }

    /// Settings a fresh broker needs before the tests use it.
    ///
    /// A fresh crabka finalizes `transaction.version` 2, under which it
    /// bumps the producer epoch at every EndTxn and so fences librdkafka's
    /// second transaction; version 0 (persisted in its log) gives the
    /// transaction protocol confluent-kafka's producer speaks.
    fn prepare(&self) -> Result<(), HarnessError> {
        match self.kind {
            BrokerKind::Tansu => Ok(()),
            BrokerKind::Crabka => self.admin()?.set_feature("transaction.version", 0),
        }
    }

    /// Like [`Broker::start`] for crabka, which then logs every request it
    /// answers (across restarts too), for [`Broker::requests_answered`].
    pub fn start_logging_requests() -> Result<Broker, HarnessError> {
        Self::start_with(BrokerKind::Crabka, true, None)
    }

    /// Which broker this is.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// The broker's listening address, `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// The bootstrap string for clients, `"127.0.0.1:PORT"`.
    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    /// The file that receives the broker's stdout and stderr (appended to
    /// across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the broker log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }

    /// The PID of the running broker process, or `None` after [`Broker::stop`].
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the broker process is running (it has not exited or been stopped).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the broker process (SIGKILL, by its PID) and waits for it.
    /// Idempotent. tansu's in-memory storage is lost; crabka's log stays in
    /// the broker's directory.
    pub fn stop(&mut self) {
        // The watchdog first, so it can never signal a PID reused after
        // the broker's exit.
        self.watchdog = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker (SIGKILL, if running) and starts it again on the
    /// same port.
    ///
    /// tansu starts empty (its storage is in memory); crabka rejoins its
    /// own cluster from its log, with topics, records and committed offsets
    /// intact. If the port is briefly taken by someone else, retries for up
    /// to 10 s.
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        let deadline = Instant::now() + RESTART_PORT_WAIT;
        loop {
            match self.spawn() {
                Ok(()) => return Ok(()),
                Err(SpawnError::PortInUse(log)) if Instant::now() >= deadline => {
                    return Err(HarnessError::new(format!(
                        "restarting {} on {} failed: the port stayed in use for {RESTART_PORT_WAIT:?}. \
                         Broker log ({}):\n{log}",
                        self.kind,
                        self.addr(),
                        self.log_path.display()
                    )));
                }
                Err(SpawnError::PortInUse(_)) => thread::sleep(Duration::from_millis(100)),
                Err(SpawnError::Other(e)) => return Err(e),
            }
        }
    }

    /// An admin connection to the broker (see [`admin::Admin`]).
    pub fn admin(&self) -> Result<admin::Admin, HarnessError> {
        admin::Admin::connect(self.addr())
    }

    /// Creates a topic with `partitions` partitions and waits until every
    /// partition has a leader.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), HarnessError> {
        self.admin()?.create_topic(name, partitions)
    }

    /// Deletes a topic.
    pub fn delete_topic(&self, name: &str) -> Result<(), HarnessError> {
        self.admin()?.delete_topic(name)
    }

    /// Deletes the records of a partition before `offset` (DeleteRecords;
    /// crabka only: tansu drops the connection); returns the new log start.
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, HarnessError> {
        self.admin()?.delete_records(topic, partition, offset)
    }

    /// How many requests with API key `api` the broker answered since it
    /// was started or restarted last, from its request log (crabka started
    /// by [`Broker::start_logging_requests`] only).
    pub fn requests_answered(
        &self,
        api: odradek_core::protocol::ApiKey,
    ) -> Result<usize, HarnessError> {
        if !self.log_requests {
            return Err(HarnessError::new(format!(
                "{} {} does not log its requests: start it with Broker::start_logging_requests",
                self.kind,
                self.addr()
            )));
        }
        let log = fs::read_to_string(&self.log_path)
            .map_err(|e| HarnessError::io(format!("reading {}", self.log_path.display()), e))?;
        let since = log
            .rfind("--- odradek-tests: starting")
            .map_or(&log[..], |at| &log[at..]);
        let key = format!("kafka.api_key={}", api.code());
        Ok(since
            .lines()
            .filter(|l| l.contains("kafka.request") && l.contains(&key) && l.contains("close"))
            .count())
    }

    /// The environment of the broker process (and of nothing else).
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        let url = format!("tcp://{}", self.addr());
        match self.kind {
            BrokerKind::Tansu => {
                cmd.arg("broker")
                    .args(["--cluster-id", "odradek-tests"])
                    .args(["--listener-url", &url])
                    .args(["--advertised-listener-url", &url])
                    .args(["--storage-engine", "memory://tansu/"]);
                scrub_env(&mut cmd);
            }
            BrokerKind::Crabka => {
                cmd.env("ODRADEK_CRABKA_LOG_DIR", self.dir.join("data"))
                    .env("ODRADEK_CRABKA_PORT", self.port.to_string())
                    .env(
                        "ODRADEK_CRABKA_CONTROLLER_PORT",
                        self.controller_port.to_string(),
                    );
                if self.log_requests {
                    cmd.env("ODRADEK_CRABKA_LOG_REQUESTS", "1");
                }
                if let Some(secure) = &self.secure {
                    secure.apply(&mut cmd);
                }
            }
        }
        match std::env::var_os("ODRADEK_BROKER_LOG") {
            Some(level) => cmd.env("RUST_LOG", level),
            None => cmd.env_remove("RUST_LOG"),
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    /// Whether the broker serves clients: it lists itself in Metadata
    /// (crabka accepts connections a moment before its controller has
    /// registered it).
    fn serves(&self) -> bool {
        match self.kind {
            BrokerKind::Tansu => true,
            BrokerKind::Crabka => self
                .admin()
                .and_then(|mut a| a.brokers())
                .is_ok_and(|n| n > 0),
        }
    }

    /// Every client port: the PLAINTEXT one and the secure listeners'.
    fn client_ports(&self) -> Vec<u16> {
        let mut ports = vec![self.port];
        if let Some(secure) = &self.secure {
            ports.extend(secure.ports());
        }
        ports
    }

    /// Whether process `pid` listens on every client port (`None`: `/proc`
    /// cannot tell).
    fn owns_every_listener(&self, pid: u32) -> Option<bool> {
        let mut all = Some(true);
        for port in self.client_ports() {
            match owns_listener(pid, port) {
                Some(false) => return Some(false),
                None => all = None,
                Some(true) => {}
            }
        }
        all
    }

    /// Whether every client port accepts a TCP connection.
    fn accepts_everywhere(&self) -> bool {
        self.client_ports().into_iter().all(|port| {
            let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
    }

    /// One attempt to spawn the broker on `self.port` (and the secure
    /// listeners' ports) and wait until it listens on each and serves.
    fn spawn(&mut self) -> Result<(), SpawnError> {
        let other = SpawnError::Other;
        let kind = self.kind;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| {
                other(HarnessError::io(
                    format!("opening {}", self.log_path.display()),
                    e,
                ))
            })?;
        let _ = writeln!(
            log,
            "--- odradek-tests: starting {kind} on {} ---",
            self.addr()
        );
        let start_offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log
            .try_clone()
            .map_err(|e| other(HarnessError::io("duplicating the log file handle", e)))?;

        let mut cmd = self.command();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        let shown = format!("{cmd:?}");
        let mut child = cmd.spawn().map_err(|e| {
            other(HarnessError::io(
                format!(
                    "could not spawn {kind} ({}); fix: delete it and rerun scripts/install-{kind}.sh",
                    self.binary.display()
                ),
                e,
            ))
        })?;
        let pid = child.id();
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        let segment = |path: &Path| read_from(path, start_offset);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let seg = segment(&self.log_path);
                    if port_in_use(&seg) {
                        return Err(SpawnError::PortInUse(seg));
                    }
                    return Err(other(HarnessError::new(format!(
                        "{kind} exited during startup with {status} (command: {shown}).\n\
                         Broker log ({}):\n{}",
                        self.log_path.display(),
                        log_tail(&self.log_path)
                    ))));
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(other(HarnessError::io(format!("waiting for {kind}"), e)));
                }
            }
            // tansu prints "listening on" before binding and exits (status 0)
            // when the bind fails, so neither the line nor a successful
            // connect (someone else may own the port) proves it is up: require
            // that the process itself owns a listening socket on the port.
            let owned = self.owns_every_listener(pid);
            if owned != Some(false) && self.accepts_everywhere() {
                // Without /proc (owned == None) fall back to: it accepts and
                // the process is still alive a moment later.
                let alive = owned.is_some() || {
                    thread::sleep(Duration::from_millis(200));
                    matches!(child.try_wait(), Ok(None))
                };
                if alive && self.serves() {
                    match Watchdog::arm(pid, &self.dir) {
                        Ok(watchdog) => self.watchdog = Some(watchdog),
                        Err(e) => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err(other(e));
                        }
                    }
                    self.child = Some(child);
                    return Ok(());
                }
            } else {
                let seg = segment(&self.log_path);
                if port_in_use(&seg) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SpawnError::PortInUse(seg));
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(other(HarnessError::new(format!(
                    "{kind} (pid {pid}) did not serve on {} within {BROKER_START_TIMEOUT:?} and was killed \
                     (command: {shown}).\nBroker log ({}):\n{}",
                    self.addr(),
                    self.log_path.display(),
                    log_tail(&self.log_path)
                ))));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("kind", &self.kind)
            .field("addr", &self.addr())
            .field("pid", &self.pid())
            .field("log", &self.log_path)
            .finish()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if thread::panicking() || std::env::var_os("ODRADEK_KEEP_BROKER_DIR").is_some() {
            eprintln!(
                "odradek-tests: kept the directory of broker {} (log: {})",
                self.addr(),
                self.log_path.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A tiny `sh` process that kills a broker (SIGKILL, by PID) when the test
/// process dies without dropping its [`Broker`]: a broker held in a
/// `static` (shared by the tests of one binary) is never dropped, and a test
/// process killed by a timeout drops nothing.
///
/// The shell blocks reading its stdin, a pipe only this process holds; when
/// this process exits for any reason the kernel closes the pipe, the read
/// returns, and the shell kills the broker and removes its directory
/// (unless `ODRADEK_KEEP_BROKER_DIR` is set). Dropping the watchdog kills
/// the shell (by its PID) without firing it.
struct Watchdog {
    shell: Child,
}

impl Watchdog {
    fn arm(pid: u32, dir: &Path) -> Result<Watchdog, HarnessError> {
        let script = if std::env::var_os("ODRADEK_KEEP_BROKER_DIR").is_some() {
            r#"read _unused; kill -9 "$1" 2>/dev/null"#
        } else {
            r#"read _unused; kill -9 "$1" 2>/dev/null; rm -rf -- "$2""#
        };
        let shell = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("odradek-broker-watchdog")
            .arg(pid.to_string())
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| HarnessError::io("spawning the broker's watchdog (sh)", e))?;
        Ok(Watchdog { shell })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.shell.kill();
        let _ = self.shell.wait();
    }
}

/// The number of this machine's established TCP connections to
/// `127.0.0.1:port` (client side only), from `/proc/net/tcp`; `None` where
/// `/proc` cannot tell.
///
/// Tests use it to check that a consumer closed its connections: every
/// broker has its own port, so the count covers one test's clients.
pub fn established_connections_to(port: u16) -> Option<usize> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let remote = format!("0100007F:{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // sl local_address rem_address st ...; 01 = ESTABLISHED
                f.len() > 3 && f[2] == remote && f[3] == "01"
            })
            .count(),
    )
}

// ---------------------------------------------------------------------------
// Interactive child processes
// ---------------------------------------------------------------------------

/// A child process the test talks to line by line: its stdin is a pipe the
/// test writes to, and its stdout lines arrive on a channel, so the test can
/// wait for a line with a timeout. Stderr is collected for error messages.
///
/// Dropping it kills the process (by its PID) and waits for it.
pub struct Interactive {
    child: Child,
    shown: String,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Interactive {
    /// Spawns `cmd` with piped stdin, stdout and stderr.
    pub fn spawn(cmd: &mut Command) -> Result<Interactive, HarnessError> {
        let shown = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HarnessError::io(format!("could not spawn {shown}"), e))?;
        let stdin = child.stdin.take();
        let (tx, lines) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            thread::spawn(move || {
                use std::io::BufRead;
                for line in io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = stderr.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match err.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => sink
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
        Ok(Interactive {
            child,
            shown,
            stdin,
            lines,
            stdout_seen: Vec::new(),
            stderr,
        })
    }

    /// Runs a script with the virtualenv's python ([`python`]), unbuffered.
    pub fn python(script: &Path, args: &[&str]) -> Result<Interactive, HarnessError> {
        let py = python()?;
        let mut cmd = Command::new(&py);
        cmd.arg(script)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1");
        Interactive::spawn(&mut cmd)
    }

    /// The process's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far (lossy UTF-8).
    pub fn stderr(&self) -> String {
        let buf = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn failure(&self, what: &str) -> HarnessError {
        HarnessError::new(format!(
            "{}: {what}.\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
            self.shown,
            self.stdout_seen.join("\n"),
            self.stderr().trim_end()
        ))
    }

    /// The next line the process prints, waiting at most `timeout`. Fails,
    /// with everything it printed, on timeout or when stdout closes.
    pub fn next_line(&mut self, timeout: Duration) -> Result<String, HarnessError> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.stdout_seen.push(line.clone());
                Ok(line)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(self.failure(&format!("printed no line within {timeout:?}")))
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // Give the stderr thread a moment to collect the last words.
                let status = self.wait_status(Duration::from_secs(5));
                Err(self.failure(&format!("closed its stdout (exit status {status:?})")))
            }
        }
    }

    /// Writes `line` and a newline to the process's stdin.
    pub fn send_line(&mut self, line: &str) -> Result<(), HarnessError> {
        let result = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{line}").and_then(|()| stdin.flush()),
            None => Err(io::Error::other("stdin already closed")),
        };
        result.map_err(|e| self.failure(&format!("writing {line:?} to its stdin: {e}")))
    }

    fn wait_status(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => return None,
            }
        }
    }

    /// Closes stdin and waits up to `timeout` for the process to exit 0.
    pub fn finish(mut self, timeout: Duration) -> Result<(), HarnessError> {
        self.stdin = None;
        match self.wait_status(timeout) {
            Some(status) if status.success() => Ok(()),
            Some(status) => Err(self.failure(&format!("exited with {status}"))),
            None => Err(self.failure(&format!("did not exit within {timeout:?}"))),
        }
    }
}

impl fmt::Debug for Interactive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interactive")
            .field("command", &self.shown)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes environment variables that tansu reads in place of its flags.
fn scrub_env(cmd: &mut Command) {
    for var in [
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
}

fn port_in_use(log: &str) -> bool {
    log.contains("AddrInUse")
        || log.contains("Address in use")
        || log.contains("Address already in use")
}

/// Picks a free loopback port by binding port 0 and dropping the listener.
pub fn free_port() -> Result<u16, HarnessError> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| HarnessError::io("binding 127.0.0.1:0 to find a free port", e))?;
    let port = l
        .local_addr()
        .map_err(|e| HarnessError::io("reading the local address of 127.0.0.1:0", e))?
        .port();
    Ok(port)
}

/// Whether process `pid` owns a TCP socket listening on 127.0.0.1:`port` (or
/// 0.0.0.0:`port`), per `/proc`. `None` if `/proc` cannot tell (not Linux).
fn owns_listener(pid: u32, port: u16) -> Option<bool> {
    let table = fs::read_to_string("/proc/net/tcp").ok()?;
    let want_local = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    let inodes: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            (f.len() > 9 && f[3] == "0A" && want_local.iter().any(|w| w == f[1])).then(|| f[9])
        })
        .collect();
    if inodes.is_empty() {
        return Some(false);
    }
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    for fd in fds.flatten() {
        if let Ok(target) = fs::read_link(fd.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                if inodes.contains(&inode) {
                    return Some(true);
                }
            }
        }
    }
    Some(false)
}

/// Creates a fresh, private temporary directory for one broker.
fn make_temp_dir(kind: BrokerKind) -> Result<PathBuf, HarnessError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let mut last_err = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "odradek-{kind}-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(HarnessError::io(format!("creating {}", dir.display()), e)),
        }
    }
    Err(HarnessError::io(
        format!("creating a temporary directory in {}", base.display()),
        last_err.unwrap_or_else(|| io::Error::other("too many collisions")),
    ))
}

/// The log from byte `offset` on (lossy UTF-8, ANSI escapes removed).
fn read_from(path: &Path, offset: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_end(&mut buf);
        }
    }
    strip_ansi(&String::from_utf8_lossy(&buf))
}

/// The last [`LOG_TAIL_LINES`] lines of a log file.
fn log_tail(path: &Path) -> String {
    let all = read_from(path, 0);
    let lines: Vec<&str> = all.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut tail = lines[start..].join("\n");
    if tail.is_empty() {
        tail = "(empty)".to_string();
    }
    tail
}

/// Removes ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.clone().next() == Some('[') {
                chars.next();
                for c2 in chars.by_ref() {
                    if c2.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Deterministic records from tests/python/produce.py
// ---------------------------------------------------------------------------

pub mod produced {
    //! Runs `tests/python/produce.py` (a confluent-kafka producer) and
    //! regenerates on the Rust side exactly the records it produced. The
    //! derivation here must match the docstring of `produce.py`.

    use super::{Broker, HarnessError, PYTHON_TIMEOUT, python_script, run_python_with_timeout};
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// The filler that pads values after their `"{seed}-{i}-"` prefix.
    pub const PATTERN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

    /// The batch codecs, with the names `produce.py --compression` takes.
    pub use odradek_core::records::Compression;

    /// What to produce; mirrors `produce.py`'s command line.
    #[derive(Clone, Debug)]
    pub struct ProduceSpec {
        /// Topic to produce to (create it first).
        pub topic: String,
        /// Seed mixed into every key and value.
        pub seed: u64,
        /// Number of records, indexes `0..count`.
        pub count: u64,
        /// Record `i` goes to partition `i % partitions`.
        pub partitions: u32,
        /// Batch compression.
        pub compression: Compression,
        /// Minimum value length in bytes (see [`value`]).
        pub value_size: usize,
        /// Whether records carry headers (see [`headers`]).
        pub with_headers: bool,
        /// If non-zero, record `i` has a null key when `i % null_key_every == 0`.
        pub null_key_every: u64,
        /// If set, record `i` has timestamp `base + i` (ms); otherwise wall-clock time.
        pub timestamp_base: Option<i64>,
        /// Producer `linger.ms` (batches hold several records).
        pub linger_ms: u64,
        /// Whether the producer is idempotent (keeps per-partition order).
        pub idempotence: bool,
        /// Bound on the whole run.
        pub timeout: Duration,
    }

    impl ProduceSpec {
        /// A spec with the defaults of `produce.py`: one partition, no
        /// compression, 100-byte values, no headers, non-null keys, wall-clock
        /// timestamps, linger 50 ms, idempotent.
        pub fn new(topic: &str, seed: u64, count: u64) -> Self {
            ProduceSpec {
                topic: topic.to_string(),
                seed,
                count,
                partitions: 1,
                compression: Compression::None,
                value_size: 100,
                with_headers: false,
                null_key_every: 0,
                timestamp_base: None,
                linger_ms: 50,
                idempotence: true,
                timeout: PYTHON_TIMEOUT,
            }
        }

        /// The command-line arguments for `produce.py`.
        pub fn args(&self, bootstrap: &str) -> Vec<String> {
            let mut a = vec![
                "--bootstrap".to_string(),
                bootstrap.to_string(),
                "--topic".into(),
                self.topic.clone(),
                "--seed".into(),
                self.seed.to_string(),
                "--count".into(),
                self.count.to_string(),
                "--partitions".into(),
                self.partitions.to_string(),
                "--compression".into(),
                self.compression.name().into(),
                "--value-size".into(),
                self.value_size.to_string(),
                "--null-key-every".into(),
                self.null_key_every.to_string(),
                "--linger-ms".into(),
                self.linger_ms.to_string(),
                "--timeout-s".into(),
                // The script's own delivery bound, a little inside ours.
                format!("{:.1}", (self.timeout.as_secs_f64() - 5.0).max(5.0)),
            ];
            if self.with_headers {
                a.push("--with-headers".into());
            }
            if let Some(base) = self.timestamp_base {
                a.push("--timestamp-base".into());
                a.push(base.to_string());
            }
            if !self.idempotence {
                a.push("--no-idempotence".into());
            }
            a
        }

        /// The record with index `i`, as `produce.py` sends it.
        pub fn record(&self, i: u64) -> ExpectedRecord {
            ExpectedRecord {
                index: i,
                partition: partition(i, self.partitions),
                key: key(self.seed, i, self.null_key_every),
                value: value(self.seed, i, self.value_size),
                headers: if self.with_headers {
                    headers(self.seed, i)
                } else {
                    Vec::new()
                },
                timestamp: self.timestamp_base.map(|b| b + i as i64),
            }
        }

        /// All records in index order.
        pub fn records(&self) -> impl Iterator<Item = ExpectedRecord> + '_ {
            (0..self.count).map(|i| self.record(i))
        }

        /// The records of one partition in offset order (valid with
        /// idempotence on a topic that was empty: offset `k` holds the `k`-th).
        pub fn partition_records(
            &self,
            partition: u32,
        ) -> impl Iterator<Item = ExpectedRecord> + '_ {
            (u64::from(partition)..self.count)
                .step_by(self.partitions.max(1) as usize)
                .map(|i| self.record(i))
        }
    }

    /// One record as produced by `produce.py`.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ExpectedRecord {
        /// Index `i` of the record.
        pub index: u64,
        /// Partition `i % P`.
        pub partition: u32,
        /// Key, `None` for a null key.
        pub key: Option<Vec<u8>>,
        /// Value.
        pub value: Vec<u8>,
        /// Headers in order; a `None` value is a null header value.
        pub headers: Vec<(String, Option<Vec<u8>>)>,
        /// Timestamp in ms if the spec fixed it.
        pub timestamp: Option<i64>,
    }

    /// Partition of record `i`: `i % partitions`.
    pub fn partition(i: u64, partitions: u32) -> u32 {
        (i % u64::from(partitions.max(1))) as u32
    }

    /// Key of record `i`: `None` if `null_key_every > 0 && i % null_key_every == 0`,
    /// else `"key-{seed}-{i}"`.
    pub fn key(seed: u64, i: u64, null_key_every: u64) -> Option<Vec<u8>> {
        if null_key_every > 0 && i % null_key_every == 0 {
            None
        } else {
            Some(format!("key-{seed}-{i}").into_bytes())
        }
    }

    /// Value of record `i`: `"{seed}-{i}-"` followed by [`PATTERN`] repeated,
    /// cut so the total is `max(value_size, prefix length)` bytes.
    pub fn value(seed: u64, i: u64, value_size: usize) -> Vec<u8> {
        let mut v = format!("{seed}-{i}-").into_bytes();
        let need = value_size.saturating_sub(v.len());
        v.extend(PATTERN.iter().cycle().take(need));
        v
    }

    /// Headers of record `i` (when enabled): `("index", "{i}")`, `("seed", "{seed}")`,
    /// and for `i % 3 == 0` also `("null", None)`.
    pub fn headers(seed: u64, i: u64) -> Vec<(String, Option<Vec<u8>>)> {
        let mut h = vec![
            ("index".to_string(), Some(i.to_string().into_bytes())),
            ("seed".to_string(), Some(seed.to_string().into_bytes())),
        ];
        if i % 3 == 0 {
            h.push(("null".to_string(), None));
        }
        h
    }

    /// Per-partition figures from the delivery reports.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct PartitionSummary {
        /// Records delivered to the partition.
        pub count: u64,
        /// Lowest offset reported.
        pub first_offset: i64,
        /// Highest offset reported.
        pub last_offset: i64,
    }

    /// The JSON summary `produce.py` prints.
    #[derive(Clone, Debug)]
    pub struct ProduceSummary {
        /// Records requested.
        pub count: u64,
        /// Records whose delivery was confirmed.
        pub delivered: u64,
        /// Records whose delivery failed.
        pub failed: u64,
        /// Per partition.
        pub partitions: BTreeMap<u32, PartitionSummary>,
        /// The summary as printed.
        pub json: serde_json::Value,
    }

    impl ProduceSummary {
        /// Parses the JSON object `produce.py` prints.
        pub fn parse(text: &str) -> Result<Self, HarnessError> {
            let bad =
                |why: &str| HarnessError::new(format!("bad produce.py summary ({why}): {text}"));
            let json: serde_json::Value =
                serde_json::from_str(text.trim()).map_err(|e| bad(&e.to_string()))?;
            let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_i64);
            let mut partitions = BTreeMap::new();
            for (p, s) in json
                .get("partitions")
                .and_then(|p| p.as_object())
                .ok_or_else(|| bad("no partitions"))?
            {
                let p: u32 = p.parse().map_err(|_| bad("partition key"))?;
                let (Some(count), Some(first_offset), Some(last_offset)) = (
                    num(s, "count"),
                    num(s, "first_offset"),
                    num(s, "last_offset"),
                ) else {
                    return Err(bad("partition fields"));
                };
                partitions.insert(
                    p,
                    PartitionSummary {
                        count: count as u64,
                        first_offset,
                        last_offset,
                    },
                );
            }
            Ok(ProduceSummary {
                count: num(&json, "count").ok_or_else(|| bad("count"))? as u64,
                delivered: num(&json, "delivered").ok_or_else(|| bad("delivered"))? as u64,
                failed: num(&json, "failed").ok_or_else(|| bad("failed"))? as u64,
                partitions,
                json,
            })
        }
    }

    /// Runs `produce.py` against `broker` and returns its summary; fails if
    /// any record was not delivered (the script exits non-zero).
    pub fn produce(broker: &Broker, spec: &ProduceSpec) -> Result<ProduceSummary, HarnessError> {
        produce_at(&broker.bootstrap(), &[], spec)
    }

    /// Runs `produce.py` against `bootstrap` with `extra_args` appended
    /// (e.g. `--config security.protocol=SSL`, see
    /// [`crate::secure::produce`]) and returns its summary; fails if any
    /// record was not delivered.
    pub fn produce_at(
        bootstrap: &str,
        extra_args: &[String],
        spec: &ProduceSpec,
    ) -> Result<ProduceSummary, HarnessError> {
        let mut args = spec.args(bootstrap);
        args.extend_from_slice(extra_args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_python_with_timeout(&python_script("produce.py"), &args, spec.timeout)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or("");
        ProduceSummary::parse(line)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn values_match_the_documented_derivation() {
        assert_eq!(produced::value(7, 12, 0), b"7-12-");
        assert_eq!(produced::value(7, 12, 8), b"7-12-abc");
        assert_eq!(
            produced::value(7, 12, 5 + 36 + 2),
            b"7-12-abcdefghijklmnopqrstuvwxyz0123456789ab"
        );
        assert_eq!(produced::key(7, 10, 5), None);
        assert_eq!(produced::key(7, 11, 5), Some(b"key-7-11".to_vec()));
        assert_eq!(produced::headers(1, 3).len(), 3);
        assert_eq!(produced::headers(1, 4).len(), 2);
    }

    #[test]
    fn strips_ansi() {
        assert_eq!(
            strip_ansi("\u{1b}[2mtime\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m x"),
            "time ERROR x"
        );
    }
}
