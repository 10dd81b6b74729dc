//! SASL mechanisms, as messages in and out: no connection, no clock and no
//! randomness of their own (a SCRAM nonce comes from the caller).
//!
//! - [`plain_message`]: `PLAIN` (RFC 4616), one message.
//! - [`scram`]: `SCRAM-SHA-256` and `SCRAM-SHA-512` (RFC 5802, RFC 7677),
//!   a three-message exchange that also authenticates the server.
//! - [`aws_msk_iam`]: `AWS_MSK_IAM`, Amazon MSK's IAM login: a SigV4
//!   presigned request as JSON ([`sigv4`] signs it), one answer.
//! - [`oauthbearer`]: `OAUTHBEARER` (RFC 7628, KIP-255, KIP-342): a bearer
//!   token with extensions, the server's error JSON, and librdkafka's
//!   unsecured-JWT provider for development.
//!
//! The connection handshake that carries them (SaslHandshake, then
//! SaslAuthenticate) is built on these.

pub mod aws_msk_iam;
pub mod oauthbearer;
pub mod scram;
mod secret;
pub mod sigv4;

pub use aws_msk_iam::{
    AwsCredentials, MskIamAnswer, MskIamError, aws_msk_iam_payload, parse_aws_msk_iam_answer,
};
pub use oauthbearer::{
    OAuthBearerConfigError, OAuthBearerDecodeError, OAuthBearerError, OAuthBearerServerError,
    OAuthBearerToken, UnsecuredJwtConfig, unsecured_jwt,
};
pub use scram::{ScramClient, ScramError, ScramMechanism};
pub use secret::SecretString;
pub use sigv4::SigV4Error;

use crate::protocol::SecretBytes;

/// The `PLAIN` message: `authzid NUL username NUL password`, with an empty
/// authorization identity (act as `username`), as Kafka's clients send it.
/// Neither field may contain a NUL; the caller's configuration check
/// refuses those, and here they are cut at the first NUL so the message
/// cannot be reframed.
pub fn plain_message(username: &str, password: &str) -> SecretBytes {
    let until_nul = |s: &str| s.split('\0').next().unwrap_or_default().to_string();
    let mut message = Vec::with_capacity(username.len() + password.len() + 2);
    message.push(0);
    message.extend_from_slice(until_nul(username).as_bytes());
    message.push(0);
    message.extend_from_slice(until_nul(password).as_bytes());
    SecretBytes(bytes::Bytes::from(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_message_layout_and_redaction() {
        let message = plain_message("alice", "s3cret");
        assert_eq!(&message.0[..], b"\0alice\0s3cret");
        assert!(!format!("{message:?}").contains("s3cret"));
        assert_eq!(&plain_message("a\0b", "p\0q").0[..], b"\0a\0p");
    }
}
