//! Secure connections: the settings (`security.protocol`, `sasl.*`,
//! `ssl.*`), the secrets they hold, and what the client layer hands the core
//! so that TLS and SASL run here without any I/O of the core's own.
//!
//! - [`SecurityProtocol`], [`SaslConfig`], [`TlsConfig`]: the settings, part
//!   of [`ConsumerConfig`](crate::ConsumerConfig).
//! - [`SecretString`]: a password, token or key that never shows in `Debug`.
//! - [`SecurityContext`]: what only the caller can supply: certificates and
//!   keys read from files or the system store ([`TlsMaterial`]), the crypto
//!   provider (with its randomness), and the wall clock certificates and
//!   signatures are checked against.
//! - [`jaas`]: `sasl.jaas.config` entries.

pub mod jaas;
mod verifier;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, SecureRandom};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::time_provider::TimeProvider;

pub use crate::sasl::{
    AwsCredentials, OAuthBearerToken, ScramMechanism, SecretString, UnsecuredJwtConfig,
};

/// How connections to brokers are secured (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS (optionally with a client certificate), no SASL.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Its property value, e.g. `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses a property value (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    /// Whether connections run inside TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// A SASL mechanism (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password in the clear (use it inside TLS).
    Plain,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`: a salted challenge that never
    /// sends the password and also authenticates the broker.
    Scram(ScramMechanism),
    /// `OAUTHBEARER` (KIP-255): a bearer token from a provider.
    OAuthBearer,
    /// `AWS_MSK_IAM`: a SigV4-signed `kafka-cluster:Connect` request, as
    /// Amazon MSK's IAM access control defines it.
    AwsMskIam,
}

impl SaslMechanism {
    /// The name the broker knows it by, e.g. `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
            SaslMechanism::AwsMskIam => "AWS_MSK_IAM",
        }
    }

    /// Parses a mechanism name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => SaslMechanism::Plain,
            "SCRAM-SHA-256" => SaslMechanism::Scram(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => SaslMechanism::Scram(ScramMechanism::Sha512),
            "OAUTHBEARER" => SaslMechanism::OAuthBearer,
            "AWS_MSK_IAM" => SaslMechanism::AwsMskIam,
            _ => return None,
        })
    }
}

/// SASL settings: the mechanism and its credentials. `Debug` never shows a
/// password.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SaslConfig {
    /// `sasl.mechanism`.
    pub mechanism: Option<SaslMechanism>,
    /// `sasl.username`.
    pub username: Option<String>,
    /// `sasl.password`.
    pub password: Option<SecretString>,
    /// The login module `sasl.jaas.config` named (`PlainLoginModule` or
    /// `ScramLoginModule`), checked against the mechanism.
    pub login_module: Option<String>,
    /// Where `OAUTHBEARER` tokens come from.
    pub oauthbearer: Option<OAuthBearerSource>,
    /// `AWS_MSK_IAM`'s region and credentials.
    pub aws_msk_iam: Option<AwsMskIamConfig>,
}

/// Supplies `OAUTHBEARER` tokens. Called by the consumer when a connection
/// authenticates and its cached token has used 80% of its lifetime, from the
/// consumer's driver: return quickly (fetch tokens ahead in your own task if
/// your identity provider is slow). An `Err` fails that login with
/// [`AuthFailure::TokenProvider`](crate::AuthFailure::TokenProvider); it
/// must not carry the token.
pub trait OAuthBearerTokenProvider: Send + Sync {
    /// A current token.
    fn token(&self) -> Result<OAuthBearerToken, String>;
}

/// Supplies AWS credentials for `AWS_MSK_IAM` (for rotating credentials:
/// instance roles, STS sessions). Called at each login, from the
/// consumer's driver: return quickly.
pub trait AwsCredentialsProvider: Send + Sync {
    /// Current credentials.
    fn credentials(&self) -> Result<AwsCredentials, String>;
}

/// A shared provider: equal only to itself, shown only by its kind.
pub struct Provider<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for Provider<T> {
    fn clone(&self) -> Self {
        Provider(self.0.clone())
    }
}

impl<T: ?Sized> PartialEq for Provider<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T: ?Sized> fmt::Debug for Provider<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Provider(..)")
    }
}

/// Where `OAUTHBEARER` tokens come from.
#[derive(Debug, Clone, PartialEq)]
pub enum OAuthBearerSource {
    /// Unsigned development tokens made here (librdkafka's
    /// `sasl.oauthbearer.config`, e.g. `principal=alice lifeSeconds=600`).
    /// Only brokers configured for unsecured JWS accept them.
    Unsecured(UnsecuredJwtConfig),
    /// The application's provider.
    Provider(Provider<dyn OAuthBearerTokenProvider>),
}

/// `AWS_MSK_IAM` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsMskIamConfig {
    /// The cluster's AWS region, e.g. `us-east-1`.
    pub region: String,
    /// Where the credentials come from.
    pub credentials: AwsCredentialsSource,
}

/// Where `AWS_MSK_IAM` credentials come from.
#[derive(Debug, Clone, PartialEq)]
pub enum AwsCredentialsSource {
    /// Fixed keys (with an optional session token).
    Static(AwsCredentials),
    /// The application's provider.
    Provider(Provider<dyn AwsCredentialsProvider>),
}

/// TLS settings (`ssl.*`). Files are read by the client layer when the
/// consumer is created; the core gets their contents as [`TlsMaterial`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TlsConfig {
    /// `ssl.ca.location`: a PEM file of CA certificates to trust.
    pub ca_location: Option<PathBuf>,
    /// `ssl.ca.pem`: CA certificates to trust, as PEM text.
    pub ca_pem: Option<String>,
    /// `ssl.certificate.location`: the client's certificate chain (PEM),
    /// for brokers that require client certificates.
    pub certificate_location: Option<PathBuf>,
    /// `ssl.certificate.pem`: the client's certificate chain as PEM text.
    pub certificate_pem: Option<String>,
    /// `ssl.key.location`: the client's private key (PEM).
    pub key_location: Option<PathBuf>,
    /// `ssl.key.pem`: the client's private key as PEM text.
    pub key_pem: Option<SecretString>,
    /// `ssl.key.password`: the password of an encrypted (PKCS#8) key.
    pub key_password: Option<SecretString>,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default)
    /// checks that the broker's certificate names the host connected to;
    /// `none` skips only that check (the chain is still verified).
    pub verify_hostname: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca_location: None,
            ca_pem: None,
            certificate_location: None,
            certificate_pem: None,
            key_location: None,
            key_pem: None,
            key_password: None,
            verify_hostname: true,
        }
    }
}

/// Certificates and keys for TLS, as the client layer read them: the CAs to
/// trust (from `ssl.ca.*` or the system store) and an optional client
/// identity.
#[derive(Debug)]
pub struct TlsMaterial {
    /// Trust anchors (DER).
    pub roots: Vec<CertificateDer<'static>>,
    /// The client's certificate chain and private key, for mutual TLS.
    pub identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

/// The TLS material could not make a working TLS configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// Not one usable CA certificate to trust.
    #[error("no usable CA certificate ({ignored} could not be parsed)")]
    NoTrustRoots {
        /// Certificates that were given but could not be used.
        ignored: usize,
    },
    /// rustls refused the settings (e.g. a client key that does not match
    /// its certificate).
    #[error("{0}")]
    Rejected(rustls::Error),
    /// TLS is configured but no material was given.
    #[error("TLS is on but no certificates were given to trust")]
    MissingMaterial,
}

/// What the core cannot get for itself to secure connections: the crypto
/// provider (its randomness makes TLS keys and SCRAM nonces), the wall
/// clock (certificate validity, token expiry), and for TLS the material the
/// client layer read. Built once when a consumer is created.
#[derive(Clone)]
pub struct SecurityContext {
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) random: &'static dyn SecureRandom,
    pub(crate) wall_clock: Arc<dyn TimeProvider>,
}

impl fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityContext")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl SecurityContext {
    /// A context for `config`'s settings. `material` is required when
    /// `tls` is used by the security protocol.
    pub fn new(
        provider: Arc<CryptoProvider>,
        wall_clock: Arc<dyn TimeProvider>,
        tls: Option<(&TlsConfig, TlsMaterial)>,
    ) -> Result<Self, TlsSetupError> {
        let random = provider.secure_random;
        let tls = match tls {
            None => None,
            Some((settings, material)) => Some(Arc::new(client_config(
                provider,
                wall_clock.clone(),
                settings,
                material,
            )?)),
        };
        Ok(SecurityContext {
            tls,
            random,
            wall_clock,
        })
    }

    /// Fills `out` with random bytes from the crypto provider.
    pub(crate) fn fill_random(
        &self,
        out: &mut [u8],
    ) -> Result<(), rustls::crypto::GetRandomFailed> {
        self.random.fill(out)
    }
}

fn client_config(
    provider: Arc<CryptoProvider>,
    wall_clock: Arc<dyn TimeProvider>,
    settings: &TlsConfig,
    material: TlsMaterial,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(material.roots);
    if added == 0 {
        return Err(TlsSetupError::NoTrustRoots { ignored });
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsSetupError::Rejected(rustls::Error::General(e.to_string())))?;
    let builder = rustls::ClientConfig::builder_with_details(provider, wall_clock)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rejected)?;
    let builder = if settings.verify_hostname {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier::AnyHostName::new(verifier)))
    };
    match material.identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(TlsSetupError::Rejected),
        None => Ok(builder.with_no_client_auth()),
    }
}
