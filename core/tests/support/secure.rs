//! The brokers' side of TLS and SASL for the deterministic harness: a
//! rustls server per connection, and a SASL gate that answers SaslHandshake
//! and SaslAuthenticate (PLAIN and SCRAM) and, like Kafka, closes a
//! connection that sends anything else before it authenticated or after its
//! session expired. Certificates are made here with rcgen; the consumer's
//! randomness and wall clock are fixed so runs repeat exactly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use odradek_core::protocol::messages::{SaslAuthenticateResponse, SaslHandshakeResponse};
use odradek_core::protocol::{
    ApiKey, ErrorCode, RequestBody, RequestHeader, SecretBytes, encode_response,
};
use odradek_core::rustls::crypto::{CryptoProvider, GetRandomFailed, SecureRandom, ring};
use odradek_core::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use odradek_core::rustls::time_provider::TimeProvider;
use odradek_core::rustls::{self, ServerConfig, ServerConnection};
use odradek_core::sasl::ScramMechanism;
use odradek_core::security::{SecurityContext, TlsConfig, TlsMaterial};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};

use super::scram_server;

/// A CA, a server certificate it signed, a client certificate it signed,
/// and an unrelated CA.
pub struct Pki {
    pub ca: CertificateDer<'static>,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: Vec<u8>,
    pub client_chain: Vec<CertificateDer<'static>>,
    pub client_key: Vec<u8>,
    pub other_ca: CertificateDer<'static>,
}

/// Certificates valid from 2020 to 2040, the server's naming `names`.
pub fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let ca = CertifiedIssuer::self_signed(ca_params("Odradek test CA"), ca_key).unwrap();
    let other = CertifiedIssuer::self_signed(ca_params("Another CA"), KeyPair::generate().unwrap())
        .unwrap();
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let cert = params.signed_by(&key, &ca).unwrap();
        (vec![cert.der().clone()], key.serialize_der())
    };
    let (server_chain, server_key) = leaf(names.iter().map(|n| n.to_string()).collect());
    let (client_chain, client_key) = leaf(vec!["odradek-client".into()]);
    Pki {
        ca: ca.der().clone(),
        server_chain,
        server_key,
        client_chain,
        client_key,
        other_ca: other.der().clone(),
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    params
}

/// 2026-12-02T00:00:00Z, inside every certificate's validity.
pub const WALL_CLOCK: u64 = 1_796_169_600;

/// A wall clock stuck at one instant.
#[derive(Debug)]
pub struct FixedClock(pub u64);

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(self.0)))
    }
}

/// A wall clock the test moves (seconds since the epoch).
#[derive(Debug, Clone)]
pub struct TestClock(pub Arc<std::sync::atomic::AtomicU64>);

impl TestClock {
    pub fn new(secs: u64) -> Self {
        TestClock(Arc::new(secs.into()))
    }
    pub fn secs(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn advance(&self, d: Duration) {
        self.0
            .fetch_add(d.as_secs(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl TimeProvider for TestClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(self.secs())))
    }
}

/// "Randomness" that repeats: the same bytes every run.
#[derive(Debug)]
struct Repeatable;

impl SecureRandom for Repeatable {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        Ok(())
    }
}

static REPEATABLE: Repeatable = Repeatable;

/// The ring provider with repeatable randomness.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(CryptoProvider {
        secure_random: &REPEATABLE,
        ..ring::default_provider()
    })
}

/// The consumer's side of TLS: its settings, the CAs it trusts, and the
/// PKI whose client certificate it presents, if any.
pub struct ClientTls<'a> {
    pub config: &'a TlsConfig,
    pub roots: Vec<CertificateDer<'static>>,
    pub identity: Option<&'a Pki>,
}

/// A consumer's security context, with `tls` if given, at the wall-clock
/// second `clock`.
pub fn client_context(tls: Option<ClientTls<'_>>, clock: u64) -> SecurityContext {
    client_context_with(tls, Arc::new(FixedClock(clock)))
}

/// A consumer's security context with `clock` as its wall clock.
pub fn client_context_with(
    tls: Option<ClientTls<'_>>,
    clock: Arc<dyn TimeProvider>,
) -> SecurityContext {
    let tls = tls.map(|tls| {
        let identity = tls.identity.map(|pki| {
            let key = PrivateKeyDer::Pkcs8(pki.client_key.clone().into());
            (pki.client_chain.clone(), key)
        });
        let material = TlsMaterial {
            roots: tls.roots,
            identity,
        };
        (tls.config, material)
    });
    SecurityContext::new(provider(), clock, tls).expect("security context")
}

/// A TLS server configuration with `pki`'s server certificate; with
/// `require_client_cert`, clients must present one signed by the CA.
pub fn server_config(pki: &Pki, require_client_cert: bool) -> Arc<ServerConfig> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let key = PrivateKeyDer::Pkcs8(pki.server_key.clone().into());
    Arc::new(
        builder
            .with_single_cert(pki.server_chain.clone(), key)
            .unwrap(),
    )
}

/// What the brokers require.
#[derive(Clone, Default)]
pub struct ServerSecurity {
    pub tls: Option<Arc<ServerConfig>>,
    pub sasl: Option<SaslServer>,
    /// Close this many connections in the middle of their TLS handshake
    /// (a broker going down), then serve normally.
    pub cut_tls_handshakes: Arc<std::sync::atomic::AtomicUsize>,
}

/// SASL as the brokers run it.
#[derive(Clone)]
pub struct SaslServer {
    /// Enabled mechanisms, e.g. `["PLAIN", "SCRAM-SHA-512"]`.
    pub mechanisms: Vec<&'static str>,
    /// (user, password).
    pub users: Vec<(String, String)>,
    /// The session lifetime reported on success (KIP-368); zero for none.
    pub session_lifetime: Duration,
    pub scram_iterations: u32,
    /// Close the connection instead of answering SaslAuthenticate.
    pub close_on_authenticate: bool,
}

impl SaslServer {
    pub fn new(mechanisms: &[&'static str], user: &str, password: &str) -> Self {
        SaslServer {
            mechanisms: mechanisms.to_vec(),
            users: vec![(user.into(), password.into())],
            session_lifetime: Duration::ZERO,
            scram_iterations: 4096,
            close_on_authenticate: false,
        }
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.as_str())
    }
}

enum Auth {
    /// No SASL on this listener.
    Open,
    /// Waiting for SaslHandshake.
    Start,
    /// Mechanism chosen, waiting for its first message.
    Chosen(String),
    /// An OAUTHBEARER token was refused with an error answer: waiting for
    /// the client's acknowledgement.
    OAuthRefused,
    /// SCRAM challenge sent.
    Challenged {
        server: Box<scram_server::Server>,
        bare: String,
        challenge: String,
    },
    Authenticated {
        until: Option<Instant>,
    },
}

/// One connection's TLS and SASL state on the broker's side.
pub struct LinkSecurity {
    tls: Option<ServerConnection>,
    cut: Arc<std::sync::atomic::AtomicUsize>,
    auth: Auth,
    /// Successful authentications on this connection (re-authentications
    /// after the first).
    pub logins: usize,
}

/// What the SASL gate decided for a request.
pub enum Gate {
    /// Not a SASL matter: the broker answers as usual.
    Pass,
    /// Send this response frame.
    Reply(Bytes),
    /// Close the connection (Kafka does so for a request before
    /// authentication or after the session expired).
    Disconnect,
}

impl LinkSecurity {
    pub fn new(security: &ServerSecurity) -> Self {
        LinkSecurity {
            cut: security.cut_tls_handshakes.clone(),
            tls: security
                .tls
                .as_ref()
                .map(|c| ServerConnection::new(c.clone()).unwrap()),
            auth: match security.sasl {
                Some(_) => Auth::Start,
                None => Auth::Open,
            },
            logins: 0,
        }
    }

    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Bytes from the client: the plaintext they carried, and what the
    /// server must send back now (handshake records, alerts). `Err` holds
    /// the final bytes (an alert) when TLS failed: close after sending them.
    pub fn receive(&mut self, data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Vec<u8>> {
        let Some(tls) = &mut self.tls else {
            // Kafka reads a ClientHello's first bytes as a frame size far
            // over its limit and closes the connection.
            if matches!(data, [0x16, 0x03, ..]) {
                return Err(Vec::new());
            }
            return Ok((data.to_vec(), Vec::new()));
        };
        let cut = &self.cut;
        let take = |n: usize| n.checked_sub(1);
        if tls.is_handshaking()
            && cut
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    take,
                )
                .is_ok()
        {
            return Err(Vec::new());
        }
        let mut rest = data;
        let mut plain = Vec::new();
        while !rest.is_empty() {
            tls.read_tls(&mut rest).unwrap();
            if tls.process_new_packets().is_err() {
                return Err(drain(tls));
            }
            let _ = std::io::Read::read_to_end(&mut tls.reader(), &mut plain);
        }
        Ok((plain, drain(tls)))
    }

    /// Encrypts a response (or passes it through without TLS).
    pub fn seal(&mut self, plain: &[u8]) -> Bytes {
        match &mut self.tls {
            None => Bytes::copy_from_slice(plain),
            Some(tls) => {
                std::io::Write::write_all(&mut tls.writer(), plain).unwrap();
                Bytes::from(drain(tls))
            }
        }
    }

    /// The SASL gate for one request.
    pub fn on_request(
        &mut self,
        sasl: Option<&SaslServer>,
        header: &RequestHeader,
        body: &RequestBody,
        now: Instant,
    ) -> Gate {
        let Some(sasl) = sasl else {
            return Gate::Pass;
        };
        let id = header.correlation_id;
        let version = header.api_version;
        match body {
            RequestBody::ApiVersions(_) => Gate::Pass,
            RequestBody::SaslHandshake(request) => {
                let authenticated = matches!(self.auth, Auth::Authenticated { .. });
                if !matches!(self.auth, Auth::Start) && !authenticated {
                    return Gate::Disconnect;
                }
                let known = sasl.mechanisms.contains(&request.mechanism.as_str());
                let response = SaslHandshakeResponse {
                    error_code: if known {
                        0
                    } else {
                        ErrorCode::UNSUPPORTED_SASL_MECHANISM.0
                    },
                    mechanisms: sasl.mechanisms.iter().map(|m| m.to_string()).collect(),
                };
                if known {
                    self.auth = Auth::Chosen(request.mechanism.clone());
                }
                Gate::Reply(frame(ApiKey::SaslHandshake, id, &response, version))
            }
            RequestBody::SaslAuthenticate(_) if sasl.close_on_authenticate => Gate::Disconnect,
            RequestBody::SaslAuthenticate(request) => {
                let token = &request.auth_bytes.0;
                let (error, reply, next) = self.authenticate(sasl, token, now);
                let lifetime = match next {
                    Auth::Authenticated { until: Some(_) } => {
                        sasl.session_lifetime.as_millis() as i64
                    }
                    _ => 0,
                };
                let failed = error.is_some();
                self.auth = next;
                let response = SaslAuthenticateResponse {
                    error_code: error.map_or(0, |e| e.0),
                    error_message: failed.then(|| "Authentication failed".to_string()),
                    auth_bytes: SecretBytes(Bytes::from(reply)),
                    session_lifetime_ms: lifetime,
                };
                Gate::Reply(frame(ApiKey::SaslAuthenticate, id, &response, version))
            }
            _ => match self.auth {
                Auth::Open => Gate::Pass,
                Auth::Authenticated { until } if until.is_none_or(|t| now < t) => Gate::Pass,
                _ => Gate::Disconnect,
            },
        }
    }

    /// One SaslAuthenticate: (error, server message, next state).
    fn authenticate(
        &mut self,
        sasl: &SaslServer,
        token: &[u8],
        now: Instant,
    ) -> (Option<ErrorCode>, Vec<u8>, Auth) {
        let until = (!sasl.session_lifetime.is_zero()).then(|| now + sasl.session_lifetime);
        let failed = (
            Some(ErrorCode::SASL_AUTHENTICATION_FAILED),
            Vec::new(),
            Auth::Start,
        );
        match std::mem::replace(&mut self.auth, Auth::Start) {
            Auth::Chosen(mechanism) if mechanism == "PLAIN" => {
                let parts: Vec<&[u8]> = token.split(|&b| b == 0).collect();
                let [_, user, password] = parts.as_slice() else {
                    return failed;
                };
                let user = String::from_utf8_lossy(user);
                match sasl.password(&user) {
                    Some(p) if p.as_bytes() == *password => {
                        self.logins += 1;
                        (None, Vec::new(), Auth::Authenticated { until })
                    }
                    _ => failed,
                }
            }
            Auth::Chosen(mechanism) if mechanism == "OAUTHBEARER" => match oauth_subject(token) {
                Some(sub) if sasl.password(&sub).is_some() => {
                    self.logins += 1;
                    (None, Vec::new(), Auth::Authenticated { until })
                }
                _ => {
                    let refusal = br#"{"status":"invalid_token","scope":"kafka"}"#.to_vec();
                    (None, refusal, Auth::OAuthRefused)
                }
            },
            Auth::OAuthRefused => failed,
            Auth::Chosen(mechanism) if mechanism == "AWS_MSK_IAM" => {
                let Ok(payload) = serde_json::from_slice::<serde_json::Value>(token) else {
                    return failed;
                };
                let field = |k: &str| payload[k].as_str().unwrap_or_default().to_string();
                let key = field("x-amz-credential");
                let key = key.split('/').next().unwrap_or_default();
                let signed = field("x-amz-signature").len() == 64;
                let known = sasl.password(key).is_some();
                if field("action") != "kafka-cluster:Connect" || !signed || !known {
                    return failed;
                }
                self.logins += 1;
                let answer = br#"{"version":"2020_10_22","request-id":"test-1"}"#.to_vec();
                (None, answer, Auth::Authenticated { until })
            }
            Auth::Chosen(mechanism) => {
                let scram = match mechanism.as_str() {
                    "SCRAM-SHA-256" => ScramMechanism::Sha256,
                    "SCRAM-SHA-512" => ScramMechanism::Sha512,
                    _ => return failed,
                };
                let text = String::from_utf8_lossy(token);
                let user = text
                    .split(',')
                    .find_map(|f| f.strip_prefix("n="))
                    .unwrap_or_default()
                    .to_string();
                let Some(password) = sasl.password(&user) else {
                    return (None, b"e=unknown-user".to_vec(), Auth::Start);
                };
                let server =
                    scram_server::Server::new(scram, password.as_bytes(), sasl.scram_iterations);
                let (challenge, bare) = server.first(token);
                let reply = challenge.clone().into_bytes();
                let next = Auth::Challenged {
                    server: Box::new(server),
                    bare,
                    challenge,
                };
                (None, reply, next)
            }
            Auth::Challenged {
                server,
                bare,
                challenge,
            } => {
                let last = server.last(&bare, &challenge, token);
                if last.starts_with("e=") {
                    return failed;
                }
                self.logins += 1;
                (None, last.into_bytes(), Auth::Authenticated { until })
            }
            other => {
                self.auth = other;
                (Some(ErrorCode::ILLEGAL_SASL_STATE), Vec::new(), Auth::Start)
            }
        }
    }
}

/// The `sub` claim of the JWT in an OAUTHBEARER initial response.
fn oauth_subject(message: &[u8]) -> Option<String> {
    use base64::Engine;
    let text = std::str::from_utf8(message).ok()?;
    let token = text
        .split('\x01')
        .find_map(|kv| kv.strip_prefix("auth=Bearer "))?;
    let claims = token.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    claims["sub"].as_str().map(str::to_string)
}

fn drain(tls: &mut ServerConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut out).unwrap();
    }
    out
}

fn frame<M: odradek_core::protocol::Message>(
    api: ApiKey,
    id: i32,
    response: &M,
    version: i16,
) -> Bytes {
    let mut out = BytesMut::new();
    encode_response(&mut out, api, id, response, version).unwrap();
    out.freeze()
}
