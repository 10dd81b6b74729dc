//! SASL authentication as a step of the connection handshake, after
//! ApiVersions: SaslHandshake names the mechanism, then SaslAuthenticate
//! carries the mechanism's messages until it is done. KIP-368: when the
//! broker gives the session a lifetime, the connection runs the same steps
//! again before it ends.

use std::time::Duration;

use crate::protocol::{DecodeError, ErrorCode, SecretBytes, UnsupportedVersion};
use crate::sasl::{ScramClient, ScramError, plain_message};
use crate::security::{SaslConfig, SaslMechanism, Secret, SecurityContext};

/// Why SASL authentication failed on a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The broker does not offer the configured mechanism
    /// (`UNSUPPORTED_SASL_MECHANISM`).
    #[error(
        "the broker does not offer SASL mechanism {requested}; it offers [{}]",
        .enabled.join(", ")
    )]
    UnsupportedMechanism {
        /// The configured mechanism.
        requested: &'static str,
        /// The mechanisms the broker has enabled.
        enabled: Vec<String>,
    },
    /// The broker refused the credentials (a wrong password or an unknown
    /// user: `SASL_AUTHENTICATION_FAILED`), with its message.
    #[error("authentication failed ({code}){}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        /// The broker's error code.
        code: ErrorCode,
        /// The broker's explanation, if it gave one.
        message: Option<String>,
    },
    /// SaslHandshake failed with another error.
    #[error("SaslHandshake failed: {0}")]
    HandshakeRefused(ErrorCode),
    /// The SCRAM exchange failed on our side: the broker's nonce or
    /// signature did not check out, or it refused the proof.
    #[error(transparent)]
    Scram(#[from] ScramError),
    /// The broker lacks SaslHandshake v1 or SaslAuthenticate.
    #[error("the broker cannot authenticate this client: {0}")]
    NoSaslSupport(UnsupportedVersion),
    /// The crypto provider gave no randomness for a nonce.
    #[error("no randomness available for the SCRAM nonce")]
    NoRandomness,
    /// The connection closed while authenticating (some brokers close
    /// instead of answering a refused login).
    #[error("the broker closed the connection during SASL authentication")]
    Closed,
    /// A SASL response could not be decoded.
    #[error("unreadable SASL response: {0}")]
    Unreadable(DecodeError),
}

/// The configured mechanism and credentials, checked by the config's
/// validation.
#[derive(Debug, Clone)]
pub(crate) struct SaslSettings {
    mechanism: SaslMechanism,
    username: String,
    password: Secret,
}

impl SaslSettings {
    /// The settings from a validated config, if SASL is on.
    pub(crate) fn from_config(config: &SaslConfig) -> Option<Self> {
        Some(SaslSettings {
            mechanism: config.mechanism?,
            username: config.username.clone()?,
            password: config.password.clone()?,
        })
    }

    pub(crate) fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }
}

/// What the mechanism wants next.
#[derive(Debug)]
pub(super) enum Step {
    /// Send this in another SaslAuthenticate.
    Send(SecretBytes),
    /// Authentication is complete.
    Done,
}

/// One run of a mechanism on one connection.
#[derive(Debug)]
pub(super) enum Exchange {
    /// PLAIN: one message; the broker's answer settles it.
    Plain,
    /// SCRAM: client-first, client-final, then the server's signature.
    Scram {
        client: Box<ScramClient>,
        answered_challenge: bool,
    },
}

/// Random bytes in a SCRAM nonce (RFC 5802 asks for unguessable; Kafka's
/// Java client sends 32 alphanumerics).
const NONCE_BYTES: usize = 24;

impl Exchange {
    /// Starts the mechanism: the exchange and its first message.
    pub(super) fn start(
        settings: &SaslSettings,
        context: &SecurityContext,
    ) -> Result<(Self, SecretBytes), AuthFailure> {
        match settings.mechanism {
            SaslMechanism::Plain => Ok((
                Exchange::Plain,
                plain_message(&settings.username, settings.password.expose()),
            )),
            SaslMechanism::Scram(mechanism) => {
                let mut nonce = [0u8; NONCE_BYTES];
                context
                    .fill_random(&mut nonce)
                    .map_err(|_| AuthFailure::NoRandomness)?;
                let mut client = ScramClient::new(
                    mechanism,
                    &settings.username,
                    settings.password.expose().as_bytes(),
                    &nonce,
                )?;
                let first = client.client_first()?;
                let exchange = Exchange::Scram {
                    client: Box::new(client),
                    answered_challenge: false,
                };
                Ok((exchange, SecretBytes(first.into())))
            }
        }
    }

    /// The broker's answer to our last message (its SaslAuthenticate
    /// succeeded): the next message, or done.
    pub(super) fn next(&mut self, server: &[u8]) -> Result<Step, AuthFailure> {
        match self {
            Exchange::Plain => Ok(Step::Done),
            Exchange::Scram {
                client,
                answered_challenge,
            } => {
                if *answered_challenge {
                    client.server_final(server)?;
                    return Ok(Step::Done);
                }
                let last = client.server_first(server)?;
                *answered_challenge = true;
                Ok(Step::Send(SecretBytes(last.into())))
            }
        }
    }
}

/// When to re-authenticate a session the broker gave `lifetime`: at 85% of
/// it, as Kafka's clients do at the earliest (KIP-368), leaving time for
/// requests in flight to finish first.
pub(super) fn reauthenticate_after(lifetime: Duration) -> Duration {
    lifetime.mul_f64(0.85)
}
