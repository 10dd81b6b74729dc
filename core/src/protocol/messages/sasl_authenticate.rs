//! SaslAuthenticate (key 36): carry SASL exchange tokens in Kafka frames.

use crate::protocol::SecretBytes;
#[cfg(test)]
use bytes::Bytes;

wire_struct! {
    /// One client step of the SASL exchange.
    pub struct SaslAuthenticateRequest {
        /// The client's token for this step, as the mechanism defines it.
        /// Holds credentials (e.g. the password for `PLAIN`), so `Debug`
        /// redacts it.
        pub auth_bytes: SecretBytes [0+],
    }
}
message! { SaslAuthenticateRequest, versions [0-2], flexible [2+] }

wire_struct! {
    /// One server step of the SASL exchange.
    pub struct SaslAuthenticateResponse {
        /// 0 on success, e.g. `SASL_AUTHENTICATION_FAILED` otherwise.
        pub error_code: i16 [0+],
        /// Details of the error, or `None`.
        pub error_message: Option<String> [0+] = Some(String::new()),
        /// The server's token for this step, as the mechanism defines it.
        /// Redacted in `Debug`: SCRAM server messages carry salts and proofs.
        pub auth_bytes: SecretBytes [0+],
        /// How long the session lasts before the client must
        /// re-authenticate on the connection, in milliseconds; 0 for no
        /// limit (v1+).
        pub session_lifetime_ms: i64 [1+],
    }
}
message! { SaslAuthenticateResponse, versions [0-2], flexible [2+] }

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    /// `PLAIN` token for user `u`, password `p`: `\0u\0p`.
    const PLAIN: &[u8] = &[0, b'u', 0, b'p'];

    #[test]
    fn request_v0_classic() {
        let request = SaslAuthenticateRequest {
            auth_bytes: SecretBytes(Bytes::from_static(PLAIN)),
        };
        assert_literal(0, "00000004 | 00750070", &request);
    }

    #[test]
    fn request_v2_flexible() {
        let request = SaslAuthenticateRequest {
            auth_bytes: SecretBytes(Bytes::from_static(PLAIN)),
        };
        assert_literal(2, "05 | 00750070 | 00", &request);
    }

    #[test]
    fn response_v0_classic_null_message() {
        let response = SaslAuthenticateResponse {
            error_code: 0,
            error_message: None,
            auth_bytes: SecretBytes(Bytes::from_static(&[0xab, 0xcd])),
            ..Default::default()
        };
        assert_literal(0, "0000 | ffff | 00000002 abcd", &response);
    }

    #[test]
    fn response_v1_classic_with_session_lifetime() {
        let response = SaslAuthenticateResponse {
            error_code: 0,
            error_message: None,
            auth_bytes: SecretBytes(Bytes::new()),
            session_lifetime_ms: 3_600_000,
        };
        assert_literal(1, "0000 | ffff | 00000000 | 000000000036ee80", &response);
    }

    #[test]
    fn response_v2_flexible_failure() {
        let response = SaslAuthenticateResponse {
            error_code: 58,
            error_message: Some("failed".into()),
            auth_bytes: SecretBytes(Bytes::new()),
            session_lifetime_ms: 0,
        };
        assert_literal(
            2,
            "003a | 07 6661696c6564 | 01 | 0000000000000000 | 00",
            &response,
        );
    }

    #[test]
    fn debug_output_never_shows_credentials() {
        let request = SaslAuthenticateRequest {
            auth_bytes: SecretBytes(Bytes::from_static(b"\0alice\0hunter2")),
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("104, 117, 110"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
