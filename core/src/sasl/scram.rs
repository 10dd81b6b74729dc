//! The client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677)
//! as Kafka speaks it inside SaslAuthenticate: no channel binding (`n,,`),
//! the password taken as its UTF-8 bytes (Kafka does not apply SASLprep).
//!
//! Three messages: [`ScramClient::client_first`], then
//! [`ScramClient::server_first`] turns the server's challenge into the
//! client's proof, and [`ScramClient::server_final`] checks the server's
//! signature, which proves the server knows the password too. The client
//! nonce comes from the caller, who must take it from a cryptographic
//! source: the core reads no randomness of its own.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

/// Iterations below this are refused (RFC 7677 asks for at least 4096;
/// Kafka's brokers refuse fewer when credentials are created).
pub const MIN_ITERATIONS: u32 = 4096;

/// Iterations above this are refused: Kafka's brokers store at most 16384,
/// and a larger count from a hostile server would only burn the client's
/// CPU (PBKDF2 costs one HMAC per iteration).
pub const MAX_ITERATIONS: u32 = 16_384;

/// Random bytes the client nonce needs at least (it is sent base64-encoded).
pub const MIN_NONCE_BYTES: usize = 16;

/// `base64("n,,")`: the GS2 header, no channel binding, no authzid.
const CHANNEL_BINDING: &str = "biws";

/// Which hash the mechanism uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256`.
    Sha256,
    /// `SCRAM-SHA-512`.
    Sha512,
}

impl ScramMechanism {
    /// The mechanism's SASL name, as SaslHandshake names it.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramMechanism::Sha256 => &digest::SHA256,
            ScramMechanism::Sha512 => &digest::SHA512,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramMechanism::Sha256 => hmac::HMAC_SHA256,
            ScramMechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramMechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramMechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a SCRAM exchange failed. No variant carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The caller's nonce is too short to be unguessable.
    #[error("the SCRAM client nonce has {got} random bytes; at least {MIN_NONCE_BYTES} are needed")]
    ShortNonce {
        /// How many bytes were given.
        got: usize,
    },
    /// A server message does not follow RFC 5802's grammar.
    #[error("the server's SCRAM {message} message is malformed: {reason}")]
    Malformed {
        /// `server-first` or `server-final`.
        message: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The server's nonce does not start with ours (RFC 5802 §5.1): a
    /// replayed or forged challenge.
    #[error("the server's SCRAM nonce does not extend the client's")]
    NonceMismatch,
    /// The server asked for an iteration count outside what Kafka allows.
    #[error(
        "the server asks for {iterations} SCRAM iterations; only {MIN_ITERATIONS} to {MAX_ITERATIONS} are accepted"
    )]
    Iterations {
        /// The count the server sent.
        iterations: u32,
    },
    /// The server refused the login (`e=...`, e.g. `invalid-proof` for a
    /// wrong password or `unknown-user`).
    #[error("the server refused the SCRAM login: {0}")]
    Refused(String),
    /// The server's signature is wrong: it does not know the password, so
    /// it is not the server the credentials are for.
    #[error("the server's SCRAM signature does not verify: it does not know the password")]
    BadServerSignature,
    /// A step was called out of order.
    #[error("SCRAM step out of order: {0}")]
    OutOfOrder(&'static str),
}

/// Where the exchange is.
enum State {
    /// `client_first` not yet called.
    Initial,
    /// Waiting for the server's challenge.
    SentFirst { client_first_bare: String },
    /// Waiting for the server's signature.
    SentFinal {
        server_key: hmac::Key,
        auth_message: String,
    },
    /// The server proved itself.
    Done,
    /// A step failed; the exchange cannot continue.
    Failed,
}

/// One SCRAM login, from the client's first message to the check of the
/// server's signature. `Debug` shows the mechanism, user and step only.
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: Vec<u8>,
    nonce: String,
    state: State,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match self.state {
            State::Initial => "initial",
            State::SentFirst { .. } => "sent client-first",
            State::SentFinal { .. } => "sent client-final",
            State::Done => "done",
            State::Failed => "failed",
        };
        f.debug_struct("ScramClient")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("step", &step)
            .finish()
    }
}

impl ScramClient {
    /// A login as `username` with `password`; `nonce` must be at least
    /// [`MIN_NONCE_BYTES`] bytes from a cryptographic random source.
    pub fn new(
        mechanism: ScramMechanism,
        username: &str,
        password: &[u8],
        nonce: &[u8],
    ) -> Result<Self, ScramError> {
        if nonce.len() < MIN_NONCE_BYTES {
            return Err(ScramError::ShortNonce { got: nonce.len() });
        }
        // Base64 never produces ',' and is printable, as RFC 5802 asks.
        Ok(Self::with_printable_nonce(
            mechanism,
            username,
            password,
            BASE64.encode(nonce),
        ))
    }

    fn with_printable_nonce(
        mechanism: ScramMechanism,
        username: &str,
        password: &[u8],
        nonce: String,
    ) -> Self {
        ScramClient {
            mechanism,
            username: username.to_string(),
            password: password.to_vec(),
            nonce,
            state: State::Initial,
        }
    }

    /// The mechanism.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Whether the server's signature was verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The client-first message: `n,,n=USER,r=NONCE`.
    pub fn client_first(&mut self) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::Initial) {
            return Err(self.fail("client_first called twice"));
        }
        let client_first_bare = format!("n={},r={}", sasl_name(&self.username), self.nonce);
        let message = format!("n,,{client_first_bare}").into_bytes();
        self.state = State::SentFirst { client_first_bare };
        Ok(message)
    }

    /// Answers the server's challenge (`r=NONCE,s=SALT,i=ITERATIONS`) with
    /// the client-final message carrying the proof.
    pub fn server_first(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let State::SentFirst { client_first_bare } = &self.state else {
            return Err(self.fail("server_first before client_first"));
        };
        let client_first_bare = client_first_bare.clone();
        match self.answer_challenge(&client_first_bare, message) {
            Ok((client_final, server_key, auth_message)) => {
                self.state = State::SentFinal {
                    server_key,
                    auth_message,
                };
                Ok(client_final)
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn answer_challenge(
        &self,
        client_first_bare: &str,
        message: &[u8],
    ) -> Result<(Vec<u8>, hmac::Key, String), ScramError> {
        const WHICH: &str = "server-first";
        let malformed = |reason| ScramError::Malformed {
            message: WHICH,
            reason,
        };
        let server_first = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
        let mut attributes = server_first.split(',');
        let first = attributes.next().unwrap_or_default();
        if let Some(error) = first.strip_prefix("e=") {
            return Err(ScramError::Refused(error.to_string()));
        }
        if first.starts_with("m=") {
            return Err(malformed(
                "it requires an extension (m=) this client does not know",
            ));
        }
        let nonce = first
            .strip_prefix("r=")
            .ok_or_else(|| malformed("it does not start with the nonce (r=)"))?;
        let salt = attributes
            .next()
            .and_then(|a| a.strip_prefix("s="))
            .ok_or_else(|| malformed("the salt (s=) does not follow the nonce"))?;
        let iterations = attributes
            .next()
            .and_then(|a| a.strip_prefix("i="))
            .ok_or_else(|| malformed("the iteration count (i=) does not follow the salt"))?;
        // Extensions may follow; none is mandatory (that would be m= first).
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(ScramError::NonceMismatch);
        }
        if !nonce.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(malformed("the nonce is not printable"));
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| malformed("the salt is not base64"))?;
        if salt.is_empty() {
            return Err(malformed("the salt is empty"));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| malformed("the iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations { iterations });
        }

        let mechanism = self.mechanism;
        let len = mechanism.digest().output_len();
        let mut salted = vec![0u8; len];
        // Zero is already refused above; this keeps the type honest.
        let rounds =
            std::num::NonZeroU32::new(iterations).ok_or(ScramError::Iterations { iterations })?;
        pbkdf2::derive(
            mechanism.pbkdf2(),
            rounds,
            &salt,
            &self.password,
            &mut salted,
        );
        let salted = hmac::Key::new(mechanism.hmac(), &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(mechanism.digest(), client_key.as_ref());
        let server_key = hmac::Key::new(
            mechanism.hmac(),
            hmac::sign(&salted, b"Server Key").as_ref(),
        );
        let without_proof = format!("c={CHANNEL_BINDING},r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hmac::sign(
            &hmac::Key::new(mechanism.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let client_final = format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes();
        Ok((client_final, server_key, auth_message))
    }

    /// Checks the server-final message: `v=SIGNATURE`, or `e=ERROR` when
    /// the server refused the proof.
    pub fn server_final(&mut self, message: &[u8]) -> Result<(), ScramError> {
        let result = match &self.state {
            State::SentFinal {
                server_key,
                auth_message,
            } => check_server_final(server_key, auth_message, message),
            _ => return Err(self.fail("server_final before server_first")),
        };
        self.state = if result.is_ok() {
            State::Done
        } else {
            State::Failed
        };
        result
    }

    fn fail(&mut self, step: &'static str) -> ScramError {
        self.state = State::Failed;
        ScramError::OutOfOrder(step)
    }
}

fn check_server_final(
    server_key: &hmac::Key,
    auth_message: &str,
    message: &[u8],
) -> Result<(), ScramError> {
    const WHICH: &str = "server-final";
    let malformed = |reason| ScramError::Malformed {
        message: WHICH,
        reason,
    };
    let text = std::str::from_utf8(message).map_err(|_| malformed("not UTF-8"))?;
    let first = text.split(',').next().unwrap_or_default();
    if let Some(error) = first.strip_prefix("e=") {
        return Err(ScramError::Refused(error.to_string()));
    }
    let signature = first
        .strip_prefix("v=")
        .ok_or_else(|| malformed("it carries neither a signature (v=) nor an error (e=)"))?;
    let signature = BASE64
        .decode(signature)
        .map_err(|_| malformed("the signature is not base64"))?;
    // Constant-time comparison against the expected signature.
    hmac::verify(server_key, auth_message.as_bytes(), &signature)
        .map_err(|_| ScramError::BadServerSignature)
}

/// RFC 5802's `saslname`: `=` and `,` escaped as `=3D` and `=2C`.
fn sasl_name(username: &str) -> String {
    username.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn rfc7677_sha256_example() {
        let mut client = ScramClient::with_printable_nonce(
            ScramMechanism::Sha256,
            "user",
            b"pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(
            client.client_first().unwrap(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
        );
        let client_final = client
            .server_first(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                  s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(client.is_done());
    }

    #[test]
    fn user_names_are_escaped() {
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
        let mut client =
            ScramClient::new(ScramMechanism::Sha512, "x,y", b"pw", &[7; MIN_NONCE_BYTES]).unwrap();
        let first = String::from_utf8(client.client_first().unwrap()).unwrap();
        assert!(first.starts_with("n,,n=x=2Cy,r="), "{first}");
    }

    #[test]
    fn a_short_nonce_is_refused() {
        assert_eq!(
            ScramClient::new(ScramMechanism::Sha256, "u", b"p", &[1; 8]).unwrap_err(),
            ScramError::ShortNonce { got: 8 }
        );
    }

    #[test]
    fn debug_shows_no_password() {
        let client =
            ScramClient::new(ScramMechanism::Sha256, "alice", b"hunter2-secret", &[9; 32]).unwrap();
        let text = format!("{client:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("alice"), "{text}");
    }
}
