//! A crabka broker with secure listeners, for the TLS and SASL tests.
//!
//! [`SecureBroker::start`] runs one crabka broker (see [`crate::Broker`])
//! with five client listeners on their own `127.0.0.1` ports, each
//! advertised as itself:
//!
//! | listener | [`Listener`] | what a client needs |
//! | --- | --- | --- |
//! | PLAINTEXT | `Plaintext` | nothing (admin and topic creation go here) |
//! | SSL | `Ssl` | trust [`SecureBroker::ca_pem`] |
//! | MTLS (SSL) | `Mtls` | trust the CA and present [`SecureBroker::client_cert_pem`] / [`SecureBroker::client_key_pem`] |
//! | SASL_PLAINTEXT | `SaslPlaintext` | SASL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER |
//! | SASL_SSL | `SaslSsl` | trust the CA, then SASL as above |
//!
//! The certificates are made at start by [`TestCerts::generate`] (rcgen,
//! ECDSA P-256) into the broker's temporary directory: a CA, a server
//! certificate it signs for `IP:127.0.0.1` and `DNS:localhost`, a client
//! certificate it signs, and an unrelated second CA to test rejection.
//!
//! The SASL users: [`PLAIN_USER`] (configured in the broker),
//! [`SCRAM_SHA_256_USER`] and [`SCRAM_SHA_512_USER`] (created with
//! AlterUserScramCredentials over PLAINTEXT, [`SCRAM_ITERATIONS`] rounds).
//! OAUTHBEARER takes any unsecured JWS (`alg: none`) with a `sub` and an
//! `exp` in the future ([`unsecured_jwt`]); librdkafka's built-in
//! unsecured tokens (`sasl.oauthbearer.config`) qualify.
//!
//! [`ClientSecurity`] turns a listener and a way to log in into
//! confluent-kafka settings, for [`produce`] and [`probe`].
//!
//! ```no_run
//! use odradek_tests::secure::{Listener, Sasl, SecureBroker};
//!
//! let broker = SecureBroker::start().unwrap();
//! broker.create_topic("t", 1).unwrap();
//! let client = broker.client(Listener::SaslSsl).with_sasl(Sasl::scram_sha_512());
//! let spec = odradek_tests::produced::ProduceSpec::new("t", 1, 10);
//! let summary = odradek_tests::secure::produce(&client, &spec).unwrap();
//! assert_eq!(summary.delivered, 10);
//! ```

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::admin::ScramMechanism;
use crate::produced::{ProduceSpec, ProduceSummary};
use crate::{Broker, HarnessError, PYTHON_TIMEOUT, python, python_script, run_with_timeout};

/// The PLAIN user, configured in the broker's environment.
pub const PLAIN_USER: &str = "odradek-plain";
/// [`PLAIN_USER`]'s password.
pub const PLAIN_PASSWORD: &str = "plain-password-1";
/// The SCRAM-SHA-256 user (it has no SHA-512 credential).
pub const SCRAM_SHA_256_USER: &str = "odradek-scram-256";
/// [`SCRAM_SHA_256_USER`]'s password.
pub const SCRAM_SHA_256_PASSWORD: &str = "scram-256-password-1";
/// The SCRAM-SHA-512 user (it has no SHA-256 credential).
pub const SCRAM_SHA_512_USER: &str = "odradek-scram-512";
/// [`SCRAM_SHA_512_USER`]'s password.
pub const SCRAM_SHA_512_PASSWORD: &str = "scram-512-password-1";
/// PBKDF2 rounds of the SCRAM users (4096 is the minimum crabka and Kafka accept).
pub const SCRAM_ITERATIONS: u32 = 4096;
/// The subject common name of the mTLS client certificate (crabka's
/// principal for an MTLS connection is the subject DN).
pub const CLIENT_CERT_CN: &str = "odradek-test-client";

/// One of the secure broker's client listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// PLAINTEXT: no TLS, no SASL.
    Plaintext,
    /// SSL: TLS, no client certificate requested.
    Ssl,
    /// SSL requiring a client certificate signed by the test CA.
    Mtls,
    /// SASL_PLAINTEXT: SASL, no TLS.
    SaslPlaintext,
    /// SASL_SSL: TLS (no client certificate), then SASL.
    SaslSsl,
}

impl Listener {
    /// Every listener.
    pub const ALL: [Listener; 5] = [
        Listener::Plaintext,
        Listener::Ssl,
        Listener::Mtls,
        Listener::SaslPlaintext,
        Listener::SaslSsl,
    ];

    /// Kafka's `security.protocol` for it.
    pub fn security_protocol(self) -> &'static str {
        match self {
            Listener::Plaintext => "PLAINTEXT",
            Listener::Ssl | Listener::Mtls => "SSL",
            Listener::SaslPlaintext => "SASL_PLAINTEXT",
            Listener::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether it speaks TLS.
    pub fn tls(self) -> bool {
        matches!(self, Listener::Ssl | Listener::Mtls | Listener::SaslSsl)
    }

    /// Whether it requires SASL.
    pub fn sasl(self) -> bool {
        matches!(self, Listener::SaslPlaintext | Listener::SaslSsl)
    }
}

/// Settings of a [`SecureBroker`] beyond the defaults.
#[derive(Clone, Debug, Default)]
pub struct SecureOptions {
    /// A ceiling on OAUTHBEARER sessions (whole seconds, at least 1):
    /// crabka reports `min(token exp - now, ceiling)` as
    /// `session_lifetime_ms` and closes a connection that has not
    /// re-authenticated by then (KIP-368). `None`: the token's `exp`.
    pub oauthbearer_max_session: Option<Duration>,
    /// Log every answered request, for
    /// [`Broker::requests_answered`](crate::Broker::requests_answered).
    pub log_requests: bool,
}

/// The PEM files of the test PKI, in the broker's directory.
#[derive(Clone, Debug)]
pub struct TestCerts {
    /// The CA that signed the server and client certificates.
    pub ca_pem: PathBuf,
    /// The server certificate (`IP:127.0.0.1`, `DNS:localhost`).
    pub server_cert_pem: PathBuf,
    /// The server's private key (PKCS#8).
    pub server_key_pem: PathBuf,
    /// The client certificate for mTLS (CN [`CLIENT_CERT_CN`]).
    pub client_cert_pem: PathBuf,
    /// The client's private key (PKCS#8).
    pub client_key_pem: PathBuf,
    /// A CA that signed nothing here: a client trusting only it must reject
    /// the broker.
    pub wrong_ca_pem: PathBuf,
}

impl TestCerts {
    /// Makes a fresh CA, server and client certificates and an unrelated CA,
    /// writing them as PEM files into `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<TestCerts, HarnessError> {
        fs::create_dir_all(dir)
            .map_err(|e| HarnessError::io(format!("creating {}", dir.display()), e))?;
        let failed = |what: &str, e: rcgen::Error| {
            HarnessError::new(format!("making the test {what} with rcgen: {e}"))
        };
        let write = |name: &str, pem: &str| -> Result<PathBuf, HarnessError> {
            let path = dir.join(name);
            fs::write(&path, pem)
                .map_err(|e| HarnessError::io(format!("writing {}", path.display()), e))?;
            Ok(path)
        };

        let (ca_pem, ca) = certificate_authority("odradek test CA").map_err(|e| failed("CA", e))?;
        let (wrong_ca_pem, _) =
            certificate_authority("odradek unrelated CA").map_err(|e| failed("second CA", e))?;

        let server_key = KeyPair::generate().map_err(|e| failed("server key", e))?;
        let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .map_err(|e| failed("server certificate", e))?;
        server
            .distinguished_name
            .push(DnType::CommonName, "odradek test broker");
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.use_authority_key_identifier_extension = true;
        let server = server
            .signed_by(&server_key, &ca)
            .map_err(|e| failed("server certificate", e))?;

        let client_key = KeyPair::generate().map_err(|e| failed("client key", e))?;
        let mut client =
            CertificateParams::new(Vec::new()).map_err(|e| failed("client certificate", e))?;
        client
            .distinguished_name
            .push(DnType::CommonName, CLIENT_CERT_CN);
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        client.use_authority_key_identifier_extension = true;
        let client = client
            .signed_by(&client_key, &ca)
            .map_err(|e| failed("client certificate", e))?;

        Ok(TestCerts {
            ca_pem: write("ca.pem", &ca_pem)?,
            server_cert_pem: write("server.pem", &server.pem())?,
            server_key_pem: write("server-key.pem", &server_key.serialize_pem())?,
            client_cert_pem: write("client.pem", &client.pem())?,
            client_key_pem: write("client-key.pem", &client_key.serialize_pem())?,
            wrong_ca_pem: write("wrong-ca.pem", &wrong_ca_pem)?,
        })
    }
}

/// A self-signed CA: its certificate as PEM, and the issuer that signs with it.
fn certificate_authority(name: &str) -> Result<(String, Issuer<'static, KeyPair>), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let pem = params.self_signed(&key)?.pem();
    Ok((pem, Issuer::new(params, key)))
}

/// What [`crate::Broker`] needs to run crabka with the secure listeners:
/// their ports, the certificate files and the options.
#[derive(Debug)]
pub(crate) struct SecureSetup {
    pub(crate) ssl: u16,
    pub(crate) mtls: u16,
    pub(crate) sasl_plaintext: u16,
    pub(crate) sasl_ssl: u16,
    pub(crate) certs: TestCerts,
    pub(crate) options: SecureOptions,
}

impl SecureSetup {
    /// Makes the certificates in `dir`; the ports are chosen by
    /// [`SecureSetup::choose_ports`].
    pub(crate) fn new(dir: &Path, options: SecureOptions) -> Result<SecureSetup, HarnessError> {
        Ok(SecureSetup {
            ssl: 0,
            mtls: 0,
            sasl_plaintext: 0,
            sasl_ssl: 0,
            certs: TestCerts::generate(&dir.join("certs"))?,
            options,
        })
    }

    /// The extra listeners' ports.
    pub(crate) fn ports(&self) -> [u16; 4] {
        [self.ssl, self.mtls, self.sasl_plaintext, self.sasl_ssl]
    }

    /// Picks four free ports, distinct from each other and from `taken`.
    pub(crate) fn choose_ports(&mut self, taken: &[u16]) -> Result<(), HarnessError> {
        let mut chosen: Vec<u16> = taken.to_vec();
        let mut fresh = || -> Result<u16, HarnessError> {
            loop {
                let port = crate::free_port()?;
                if !chosen.contains(&port) {
                    chosen.push(port);
                    return Ok(port);
                }
            }
        };
        self.ssl = fresh()?;
        self.mtls = fresh()?;
        self.sasl_plaintext = fresh()?;
        self.sasl_ssl = fresh()?;
        Ok(())
    }

    /// The launcher's environment for the secure listeners (see the doc
    /// comment of `tests/brokers/crabka/src/main.rs`).
    pub(crate) fn apply(&self, cmd: &mut Command) {
        let c = &self.certs;
        cmd.env("ODRADEK_CRABKA_SSL_PORT", self.ssl.to_string())
            .env("ODRADEK_CRABKA_MTLS_PORT", self.mtls.to_string())
            .env(
                "ODRADEK_CRABKA_SASL_PLAINTEXT_PORT",
                self.sasl_plaintext.to_string(),
            )
            .env("ODRADEK_CRABKA_SASL_SSL_PORT", self.sasl_ssl.to_string())
            .env("ODRADEK_CRABKA_TLS_CERT", &c.server_cert_pem)
            .env("ODRADEK_CRABKA_TLS_KEY", &c.server_key_pem)
            .env("ODRADEK_CRABKA_TLS_TRUST_ROOTS", &c.ca_pem)
            .env("ODRADEK_CRABKA_TLS_CLIENT_CA", &c.ca_pem)
            .env(
                "ODRADEK_CRABKA_SASL_MECHANISMS",
                "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            )
            .env(
                "ODRADEK_CRABKA_PLAIN_USERS",
                format!("{PLAIN_USER}:{PLAIN_PASSWORD}"),
            );
        match self.options.oauthbearer_max_session {
            Some(max) => cmd.env(
                "ODRADEK_CRABKA_OAUTHBEARER_MAX_SESSION_S",
                max.as_secs().max(1).to_string(),
            ),
            None => cmd.env_remove("ODRADEK_CRABKA_OAUTHBEARER_MAX_SESSION_S"),
        };
    }
}

/// A crabka broker with PLAINTEXT, SSL, MTLS, SASL_PLAINTEXT and SASL_SSL
/// listeners, its test certificates and its SASL users (see the [module
/// documentation](self)).
///
/// It dereferences to the underlying [`Broker`]: `create_topic`, `admin`,
/// `restart`, `log_tail`, ... work as there, through the PLAINTEXT
/// listener. Dropping it kills the broker (by its PID) and removes its
/// directory, certificates included.
#[derive(Debug)]
pub struct SecureBroker {
    broker: Broker,
}

impl SecureBroker {
    /// Starts the broker with the default [`SecureOptions`], once every
    /// listener accepts connections and the SCRAM users exist.
    pub fn start() -> Result<SecureBroker, HarnessError> {
        Self::start_with(SecureOptions::default())
    }

    /// Starts the broker with `options`.
    pub fn start_with(options: SecureOptions) -> Result<SecureBroker, HarnessError> {
        let broker = Broker::start_secure(options)?;
        let mut admin = broker.admin()?;
        admin.upsert_scram_user(
            ScramMechanism::Sha256,
            SCRAM_SHA_256_USER,
            SCRAM_SHA_256_PASSWORD,
            SCRAM_ITERATIONS,
        )?;
        admin.upsert_scram_user(
            ScramMechanism::Sha512,
            SCRAM_SHA_512_USER,
            SCRAM_SHA_512_PASSWORD,
            SCRAM_ITERATIONS,
        )?;
        Ok(SecureBroker { broker })
    }

    fn setup(&self) -> &SecureSetup {
        self.broker
            .secure
            .as_ref()
            .expect("a SecureBroker's broker has secure listeners")
    }

    /// The underlying broker.
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The address of `listener`, `127.0.0.1:PORT`.
    pub fn addr(&self, listener: Listener) -> SocketAddr {
        let s = self.setup();
        let port = match listener {
            Listener::Plaintext => self.broker.port,
            Listener::Ssl => s.ssl,
            Listener::Mtls => s.mtls,
            Listener::SaslPlaintext => s.sasl_plaintext,
            Listener::SaslSsl => s.sasl_ssl,
        };
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
    }

    /// The bootstrap string of `listener`, `"127.0.0.1:PORT"`.
    pub fn bootstrap_of(&self, listener: Listener) -> String {
        self.addr(listener).to_string()
    }

    /// The PLAINTEXT listener, `"127.0.0.1:PORT"`.
    pub fn plaintext(&self) -> String {
        self.bootstrap_of(Listener::Plaintext)
    }

    /// The SSL listener (no client certificate), `"127.0.0.1:PORT"`.
    pub fn ssl(&self) -> String {
        self.bootstrap_of(Listener::Ssl)
    }

    /// The SSL listener that requires a client certificate, `"127.0.0.1:PORT"`.
    pub fn mtls(&self) -> String {
        self.bootstrap_of(Listener::Mtls)
    }

    /// The SASL_PLAINTEXT listener, `"127.0.0.1:PORT"`.
    pub fn sasl_plaintext(&self) -> String {
        self.bootstrap_of(Listener::SaslPlaintext)
    }

    /// The SASL_SSL listener, `"127.0.0.1:PORT"`.
    pub fn sasl_ssl(&self) -> String {
        self.bootstrap_of(Listener::SaslSsl)
    }

    /// All certificate files.
    pub fn certs(&self) -> &TestCerts {
        &self.setup().certs
    }

    /// The CA that signed the broker's (and the client's) certificate.
    pub fn ca_pem(&self) -> &Path {
        &self.certs().ca_pem
    }

    /// The mTLS client certificate.
    pub fn client_cert_pem(&self) -> &Path {
        &self.certs().client_cert_pem
    }

    /// The mTLS client's private key (PKCS#8 PEM).
    pub fn client_key_pem(&self) -> &Path {
        &self.certs().client_key_pem
    }

    /// A CA unrelated to the broker's certificate.
    pub fn wrong_ca_pem(&self) -> &Path {
        &self.certs().wrong_ca_pem
    }

    /// The options the broker was started with.
    pub fn options(&self) -> &SecureOptions {
        &self.setup().options
    }

    /// Adds (or replaces) a SCRAM credential, e.g. a user whose name needs
    /// SCRAM's `=2C`/`=3D` escaping.
    pub fn add_scram_user(
        &self,
        mechanism: ScramMechanism,
        user: &str,
        password: &str,
    ) -> Result<(), HarnessError> {
        self.broker
            .admin()?
            .upsert_scram_user(mechanism, user, password, SCRAM_ITERATIONS)
    }

    /// Client settings for `listener` that should work: the test CA for TLS
    /// listeners, the client certificate for MTLS, no SASL yet (add it with
    /// [`ClientSecurity::with_sasl`]).
    pub fn client(&self, listener: Listener) -> ClientSecurity {
        let certs = self.certs();
        ClientSecurity {
            bootstrap: self.bootstrap_of(listener),
            protocol: listener.security_protocol(),
            ca: listener.tls().then(|| certs.ca_pem.clone()),
            client_cert: (listener == Listener::Mtls)
                .then(|| (certs.client_cert_pem.clone(), certs.client_key_pem.clone())),
            sasl: None,
        }
    }
}

impl Deref for SecureBroker {
    type Target = Broker;

    fn deref(&self) -> &Broker {
        &self.broker
    }
}

impl DerefMut for SecureBroker {
    fn deref_mut(&mut self) -> &mut Broker {
        &mut self.broker
    }
}

/// How a client logs in on a SASL listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sasl {
    /// PLAIN with a user name and password.
    Plain {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// SCRAM with a user name and password.
    Scram {
        /// SHA-256 or SHA-512.
        mechanism: ScramMechanism,
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// OAUTHBEARER with librdkafka's built-in unsecured JWT
    /// (`sasl.oauthbearer.config`): `sub` = `principal`, `exp` =
    /// now + `life_seconds`.
    OAuthBearerUnsecured {
        /// The `sub` claim.
        principal: String,
        /// The token's lifetime.
        life_seconds: u32,
    },
}

impl Sasl {
    /// [`PLAIN_USER`] with its password.
    pub fn plain() -> Sasl {
        Sasl::Plain {
            user: PLAIN_USER.into(),
            password: PLAIN_PASSWORD.into(),
        }
    }

    /// [`SCRAM_SHA_256_USER`] with its password.
    pub fn scram_sha_256() -> Sasl {
        Sasl::Scram {
            mechanism: ScramMechanism::Sha256,
            user: SCRAM_SHA_256_USER.into(),
            password: SCRAM_SHA_256_PASSWORD.into(),
        }
    }

    /// [`SCRAM_SHA_512_USER`] with its password.
    pub fn scram_sha_512() -> Sasl {
        Sasl::Scram {
            mechanism: ScramMechanism::Sha512,
            user: SCRAM_SHA_512_USER.into(),
            password: SCRAM_SHA_512_PASSWORD.into(),
        }
    }

    /// An unsecured OAUTHBEARER token for `principal`, valid for an hour.
    pub fn oauthbearer(principal: &str) -> Sasl {
        Sasl::OAuthBearerUnsecured {
            principal: principal.into(),
            life_seconds: 3600,
        }
    }

    /// The same login with another password (PLAIN and SCRAM).
    pub fn with_password(self, new: &str) -> Sasl {
        match self {
            Sasl::Plain { user, .. } => Sasl::Plain {
                user,
                password: new.into(),
            },
            Sasl::Scram {
                mechanism, user, ..
            } => Sasl::Scram {
                mechanism,
                user,
                password: new.into(),
            },
            other => other,
        }
    }

    /// The SASL mechanism name.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::Scram { mechanism, .. } => mechanism.name(),
            Sasl::OAuthBearerUnsecured { .. } => "OAUTHBEARER",
        }
    }
}

/// How an independent client reaches one listener: its bootstrap address,
/// `security.protocol`, CA, client certificate and SASL login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSecurity {
    /// `"127.0.0.1:PORT"`.
    pub bootstrap: String,
    /// `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
    pub protocol: &'static str,
    /// The CA file the client trusts (TLS).
    pub ca: Option<PathBuf>,
    /// The client certificate and key files (mTLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// The SASL login.
    pub sasl: Option<Sasl>,
}

impl ClientSecurity {
    /// With this SASL login.
    pub fn with_sasl(mut self, sasl: Sasl) -> Self {
        self.sasl = Some(sasl);
        self
    }

    /// Trusting `ca` instead.
    pub fn with_ca(mut self, ca: &Path) -> Self {
        self.ca = Some(ca.to_path_buf());
        self
    }

    /// Without a client certificate.
    pub fn without_client_cert(mut self) -> Self {
        self.client_cert = None;
        self
    }

    /// The confluent-kafka (librdkafka) settings, without
    /// `bootstrap.servers`.
    pub fn confluent_config(&self) -> Vec<(String, String)> {
        let mut c: Vec<(String, String)> = vec![("security.protocol".into(), self.protocol.into())];
        let mut set = |k: &str, v: String| c.push((k.to_string(), v));
        if let Some(ca) = &self.ca {
            set("ssl.ca.location", ca.display().to_string());
            // Hostname checks stay on (librdkafka's default): the server
            // certificate names IP:127.0.0.1.
            set("ssl.endpoint.identification.algorithm", "https".into());
        }
        if let Some((cert, key)) = &self.client_cert {
            set("ssl.certificate.location", cert.display().to_string());
            set("ssl.key.location", key.display().to_string());
        }
        match &self.sasl {
            None => {}
            Some(Sasl::Plain { user, password }) | Some(Sasl::Scram { user, password, .. }) => {
                set("sasl.mechanisms", self.sasl_mechanism().into());
                set("sasl.username", user.clone());
                set("sasl.password", password.clone());
            }
            Some(Sasl::OAuthBearerUnsecured {
                principal,
                life_seconds,
            }) => {
                set("sasl.mechanisms", "OAUTHBEARER".into());
                set("enable.sasl.oauthbearer.unsecure.jwt", "true".into());
                set(
                    "sasl.oauthbearer.config",
                    format!("principal={principal} lifeSeconds={life_seconds}"),
                );
            }
        }
        c
    }

    fn sasl_mechanism(&self) -> &'static str {
        self.sasl.as_ref().map_or("", Sasl::mechanism)
    }

    /// `--config KEY=VALUE` arguments for the Python scripts.
    fn config_args(&self) -> Vec<String> {
        self.confluent_config()
            .into_iter()
            .flat_map(|(k, v)| ["--config".to_string(), format!("{k}={v}")])
            .collect()
    }
}

/// Runs `tests/python/produce.py` (confluent-kafka) through the listener
/// and login of `client`; fails unless every record was delivered.
pub fn produce(
    client: &ClientSecurity,
    spec: &ProduceSpec,
) -> Result<ProduceSummary, HarnessError> {
    crate::produced::produce_at(&client.bootstrap, &client.config_args(), spec)
}

/// What [`probe`] saw: whether a confluent-kafka client got Metadata
/// through a listener, and the errors it reported.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Whether Metadata arrived.
    pub connected: bool,
    /// The brokers Metadata listed, `host:port`.
    pub brokers: Vec<String>,
    /// Errors the client reported (librdkafka error name and text, e.g.
    /// `_AUTHENTICATION: ...`, `_TRANSPORT: ...`), in order.
    pub errors: Vec<String>,
    /// The distinct warnings and errors librdkafka logged (the precise
    /// reason, e.g. `certificate verify failed`).
    pub logs: Vec<String>,
    /// The JSON the script printed.
    pub json: serde_json::Value,
}

impl Probe {
    /// Whether any reported error or logged line contains `needle`
    /// (case-insensitive).
    pub fn error_mentions(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.errors
            .iter()
            .chain(&self.logs)
            .any(|e| e.to_lowercase().contains(&needle))
    }
}

/// Asks for Metadata with confluent-kafka through `client`'s listener and
/// login (`tests/python/secure_probe.py`), waiting up to `timeout`.
/// Returns what happened either way; fails only if the script cannot run.
pub fn probe(client: &ClientSecurity, timeout: Duration) -> Result<Probe, HarnessError> {
    let py = python()?;
    let mut cmd = Command::new(&py);
    cmd.arg(python_script("secure_probe.py"))
        .args(["--bootstrap", &client.bootstrap])
        .args(["--timeout-s", &format!("{:.1}", timeout.as_secs_f64())])
        .args(client.config_args())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let out = run_with_timeout(&mut cmd, timeout + PYTHON_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    let json: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| {
        HarnessError::new(format!(
            "secure_probe.py printed no JSON summary ({e}); exit {}.\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    })?;
    let strings = |key: &str| -> Vec<String> {
        json.get(key)
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Probe {
        connected: json.get("connected").and_then(serde_json::Value::as_bool) == Some(true),
        brokers: strings("brokers"),
        errors: strings("errors"),
        logs: strings("logs"),
        json,
    })
}

/// An unsecured JWS (`alg: none`, empty signature) with claims `sub` =
/// `subject`, `iat` = now and `exp` = now + `lifetime` (whole seconds,
/// rounded up), the kind crabka's default OAUTHBEARER validator accepts.
/// Send it as `n,,\x01auth=Bearer TOKEN\x01\x01` (RFC 7628).
pub fn unsecured_jwt(subject: &str, lifetime: Duration) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let life = lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0);
    let claims = serde_json::json!({ "sub": subject, "iat": now, "exp": now + life });
    format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(claims.to_string().as_bytes())
    )
}

/// Base64url without padding (RFC 4648 §5).
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_vectors() {
        // RFC 4648 §10, with the URL alphabet and no padding.
        for (input, want) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(input.as_bytes()), want);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn unsecured_jwt_has_an_empty_signature() {
        let token = unsecured_jwt("alice", Duration::from_secs(5));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "eyJhbGciOiJub25lIn0");
        assert_eq!(parts[2], "");
    }

    #[test]
    fn certificates_are_pem_files() {
        let dir = std::env::temp_dir().join(format!("odradek-certs-unit-{}", std::process::id()));
        let certs = TestCerts::generate(&dir).unwrap();
        for path in [
            &certs.ca_pem,
            &certs.server_cert_pem,
            &certs.client_cert_pem,
            &certs.wrong_ca_pem,
        ] {
            let text = fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{text}");
        }
        for path in [&certs.server_key_pem, &certs.client_key_pem] {
            let text = fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN PRIVATE KEY-----"), "{text}");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
