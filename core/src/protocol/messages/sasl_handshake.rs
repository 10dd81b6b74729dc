//! SaslHandshake (key 17): choose the SASL mechanism for a connection.

wire_struct! {
    /// Names the SASL mechanism the client wants to authenticate with.
    pub struct SaslHandshakeRequest {
        /// The mechanism, e.g. `PLAIN` or `SCRAM-SHA-256`.
        pub mechanism: String [0+],
    }
}
message! { SaslHandshakeRequest, versions [0-1], flexible [none] }

wire_struct! {
    /// Whether the broker accepts the mechanism, and which ones it offers.
    pub struct SaslHandshakeResponse {
        /// 0 if the mechanism is accepted; `UNSUPPORTED_SASL_MECHANISM`
        /// otherwise.
        pub error_code: i16 [0+],
        /// The mechanisms the broker has enabled.
        pub mechanisms: Vec<String> [0+],
    }
}
message! { SaslHandshakeResponse, versions [0-1], flexible [none] }

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_and_v1() {
        let plain = SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
        };
        assert_literal(0, "0005 | 504c41494e", &plain);
        let scram = SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-256".into(),
        };
        assert_literal(1, "000d | 5343 5241 4d2d 5348 412d 3235 36", &scram);
    }

    #[test]
    fn response_v0_rejects_and_lists_mechanisms() {
        let response = SaslHandshakeResponse {
            error_code: 33,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
        };
        assert_literal(
            0,
            "0021 | 00000002 | 0005 504c41494e | 000d 5343 5241 4d2d 5348 412d 3235 36",
            &response,
        );
    }

    #[test]
    fn response_v1_accepts_with_no_mechanisms() {
        let response = SaslHandshakeResponse {
            error_code: 0,
            mechanisms: Vec::new(),
        };
        assert_literal(1, "0000 | 00000000", &response);
    }
}
