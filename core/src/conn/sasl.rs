//! SASL authentication as a step of the connection handshake, after
//! ApiVersions: SaslHandshake names the mechanism, then SaslAuthenticate
//! carries the mechanism's messages until it is done. KIP-368: when the
//! broker gives the session a lifetime, the connection runs the same steps
//! again before it ends.

use std::time::Duration;

use crate::protocol::{DecodeError, ErrorCode, SecretBytes, UnsupportedVersion};
use crate::sasl::oauthbearer::{self, OAuthBearerServerError, ServerAnswer};
use crate::sasl::{
    MskIamError, OAuthBearerDecodeError, OAuthBearerError, OAuthBearerToken, ScramClient,
    ScramError, aws_msk_iam_payload, parse_aws_msk_iam_answer, plain_message, unsecured_jwt,
};
use crate::security::{
    AwsCredentialsSource, AwsMskIamConfig, OAuthBearerSource, SaslConfig, SaslMechanism,
    SecretString, SecurityContext,
};

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
    /// The `OAUTHBEARER` token provider failed (its message).
    #[error("the OAUTHBEARER token provider failed: {0}")]
    TokenProvider(String),
    /// The `OAUTHBEARER` token or its extensions cannot be sent.
    #[error("bad OAUTHBEARER token: {0}")]
    BadToken(OAuthBearerError),
    /// The broker refused the `OAUTHBEARER` token, saying why (RFC 7628).
    #[error("the broker refused the OAUTHBEARER token: {0}")]
    OAuthBearer(OAuthBearerServerError),
    /// The broker's `OAUTHBEARER` answer could not be read.
    #[error("unreadable OAUTHBEARER answer: {0}")]
    OAuthBearerAnswer(OAuthBearerDecodeError),
    /// The AWS credentials provider failed (its message).
    #[error("the AWS credentials provider failed: {0}")]
    CredentialsProvider(String),
    /// `AWS_MSK_IAM` could not sign, or the broker's answer was wrong.
    #[error("AWS_MSK_IAM: {0}")]
    AwsMskIam(MskIamError),
    /// The wall clock gave no time (tokens and signatures need it).
    #[error("the wall clock is unavailable")]
    NoWallClock,
}

/// The configured mechanism and credentials, checked by the config's
/// validation.
#[derive(Debug, Clone)]
pub(crate) struct SaslSettings {
    mechanism: SaslMechanism,
    credentials: Credentials,
}

#[derive(Debug, Clone)]
enum Credentials {
    Password {
        username: String,
        password: SecretString,
    },
    OAuthBearer(OAuthBearerSource),
    AwsMskIam(AwsMskIamConfig),
}

impl SaslSettings {
    /// The settings from a validated config, if SASL is on.
    pub(crate) fn from_config(config: &SaslConfig) -> Option<Self> {
        let mechanism = config.mechanism?;
        let credentials = match mechanism {
            SaslMechanism::OAuthBearer => Credentials::OAuthBearer(config.oauthbearer.clone()?),
            SaslMechanism::AwsMskIam => Credentials::AwsMskIam(config.aws_msk_iam.clone()?),
            _ => Credentials::Password {
                username: config.username.clone()?,
                password: config.password.clone()?,
            },
        };
        Some(SaslSettings {
            mechanism,
            credentials,
        })
    }

    pub(crate) fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }
}

/// The `OAUTHBEARER` token shared by a client's connections, and when
/// (wall-clock milliseconds) to fetch a new one: after 80% of its lifetime,
/// as Kafka's login refresh does by default.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    token: Option<(OAuthBearerToken, u64)>,
}

impl TokenCache {
    fn get(
        &mut self,
        source: &OAuthBearerSource,
        now_ms: u64,
    ) -> Result<OAuthBearerToken, AuthFailure> {
        if let Some((token, refresh_at)) = &self.token {
            if now_ms < *refresh_at {
                return Ok(token.clone());
            }
        }
        let token = match source {
            OAuthBearerSource::Unsecured(config) => unsecured_jwt(config, now_ms),
            OAuthBearerSource::Provider(provider) => {
                provider.0.token().map_err(AuthFailure::TokenProvider)?
            }
        };
        let lifetime = token.expires_at_unix_ms.saturating_sub(now_ms);
        self.token = Some((token.clone(), now_ms + lifetime / 5 * 4));
        Ok(token)
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
    /// OAUTHBEARER: the token; an error answer is acknowledged with one
    /// more message, and the broker's error follows.
    OAuthBearer {
        refused: Option<OAuthBearerServerError>,
    },
    /// AWS_MSK_IAM: the signed request; the broker answers with JSON.
    AwsMskIam,
}

/// Random bytes in a SCRAM nonce (RFC 5802 asks for unguessable; Kafka's
/// Java client sends 32 alphanumerics).
const NONCE_BYTES: usize = 24;

/// The user agent `AWS_MSK_IAM` payloads name.
const USER_AGENT: &str = concat!("odradek/", env!("CARGO_PKG_VERSION"));

impl Exchange {
    /// Starts the mechanism with the broker at `host`: the exchange and its
    /// first message.
    pub(super) fn start(
        settings: &SaslSettings,
        context: &SecurityContext,
        tokens: &mut TokenCache,
        host: &str,
    ) -> Result<(Self, SecretBytes), AuthFailure> {
        let wall_clock_ms = || {
            context
                .wall_clock
                .current_time()
                .map(|t| t.as_secs().saturating_mul(1000))
                .ok_or(AuthFailure::NoWallClock)
        };
        match (&settings.credentials, settings.mechanism) {
            (Credentials::Password { username, password }, SaslMechanism::Scram(mechanism)) => {
                let mut nonce = [0u8; NONCE_BYTES];
                context
                    .fill_random(&mut nonce)
                    .map_err(|_| AuthFailure::NoRandomness)?;
                let mut client =
                    ScramClient::new(mechanism, username, password.expose().as_bytes(), &nonce)?;
                let first = client.client_first()?;
                let exchange = Exchange::Scram {
                    client: Box::new(client),
                    answered_challenge: false,
                };
                Ok((exchange, SecretBytes(first.into())))
            }
            (Credentials::Password { username, password }, _) => {
                Ok((Exchange::Plain, plain_message(username, password.expose())))
            }
            (Credentials::OAuthBearer(source), _) => {
                let token = tokens.get(source, wall_clock_ms()?)?;
                let message =
                    oauthbearer::initial_response(&token).map_err(AuthFailure::BadToken)?;
                Ok((Exchange::OAuthBearer { refused: None }, message))
            }
            (Credentials::AwsMskIam(aws), _) => {
                let credentials = match &aws.credentials {
                    AwsCredentialsSource::Static(keys) => keys.clone(),
                    AwsCredentialsSource::Provider(provider) => provider
                        .0
                        .credentials()
                        .map_err(AuthFailure::CredentialsProvider)?,
                };
                let now_secs = wall_clock_ms()? / 1000;
                let message =
                    aws_msk_iam_payload(host, &aws.region, &credentials, now_secs, USER_AGENT)
                        .map_err(AuthFailure::AwsMskIam)?;
                Ok((Exchange::AwsMskIam, message))
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
            Exchange::OAuthBearer { refused } => {
                if let Some(refusal) = refused.take() {
                    // The broker must fail the acknowledgement; it did not.
                    return Err(AuthFailure::OAuthBearer(refusal));
                }
                match oauthbearer::parse_server_answer(server)
                    .map_err(AuthFailure::OAuthBearerAnswer)?
                {
                    ServerAnswer::Success => Ok(Step::Done),
                    ServerAnswer::Failure(error) => {
                        *refused = Some(error);
                        Ok(Step::Send(SecretBytes(oauthbearer::FAILURE_ACK.into())))
                    }
                }
            }
            Exchange::AwsMskIam => {
                parse_aws_msk_iam_answer(server).map_err(AuthFailure::AwsMskIam)?;
                Ok(Step::Done)
            }
        }
    }

    /// The broker refused the last message with `code`: the most precise
    /// reason (an OAUTHBEARER refusal explained by its error answer).
    pub(super) fn refusal(&mut self, code: ErrorCode, message: Option<String>) -> AuthFailure {
        match self {
            Exchange::OAuthBearer {
                refused: Some(refusal),
            } => AuthFailure::OAuthBearer(refusal.clone()),
            _ => AuthFailure::Rejected { code, message },
        }
    }
}

/// When to re-authenticate a session the broker gave `lifetime`: at 85% of
/// it, as Kafka's clients do at the earliest (KIP-368), leaving time for
/// requests in flight to finish first.
pub(super) fn reauthenticate_after(lifetime: Duration) -> Duration {
    lifetime.mul_f64(0.85)
}
