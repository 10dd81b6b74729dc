//! DeleteTopics (key 20): delete topics by name or (v6+) by id.

use crate::protocol::Uuid;

wire_struct! {
    /// Asks the controller to delete topics.
    pub struct DeleteTopicsRequest {
        /// The topics to delete, each by name or id (v6+).
        pub topics: Vec<DeleteTopicState> [6+],
        /// The names of the topics to delete (up to v5).
        pub topic_names: Vec<String> [0-5],
        /// How long to wait for the deletions to finish, in milliseconds.
        pub timeout_ms: i32 [0+],
    }
}
message! { DeleteTopicsRequest, versions [1-6], flexible [4+] }

wire_struct! {
    /// One topic to delete, identified by name or by id.
    pub struct DeleteTopicState {
        /// Topic name, or `None` when deleting by id.
        pub name: Option<String> [6+],
        /// Topic id, or nil when deleting by name.
        pub topic_id: Uuid [6+],
    }
}

wire_struct! {
    /// The outcome of a DeleteTopics request, per topic.
    pub struct DeleteTopicsResponse {
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [1+],
        /// One entry per requested topic.
        pub responses: Vec<DeletableTopicResult> [0+],
    }
}
message! { DeleteTopicsResponse, versions [1-6], flexible [4+] }

wire_struct! {
    /// The outcome for one topic.
    pub struct DeletableTopicResult {
        /// Topic name; `None` (v6+ only) when the topic was asked for by an
        /// id the broker does not know.
        pub name: Option<String> [0+] nullable [6+] = Some(String::new()),
        /// Topic id (v6+).
        pub topic_id: Uuid [6+],
        /// Topic-level error, 0 if the topic was deleted.
        pub error_code: i16 [0+],
        /// Details of the error (v5+), or `None`.
        pub error_message: Option<String> [5+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::{assert_literal, hex};
    use crate::protocol::{DecodeErrorKind, EncodeErrorKind, Message};

    #[test]
    fn request_v1_classic_by_name() {
        let request = DeleteTopicsRequest {
            topic_names: vec!["a".into(), "b".into()],
            timeout_ms: 30000,
            ..Default::default()
        };
        assert_literal(1, "00000002 | 0001 61 | 0001 62 | 00007530", &request);
    }

    #[test]
    fn request_v4_flexible_by_name() {
        let request = DeleteTopicsRequest {
            topic_names: vec!["a".into(), "b".into()],
            timeout_ms: 30000,
            ..Default::default()
        };
        assert_literal(4, "03 | 02 61 | 02 62 | 00007530 | 00", &request);
    }

    #[test]
    fn request_v6_by_name_or_id() {
        let request = DeleteTopicsRequest {
            topics: vec![
                DeleteTopicState {
                    name: None,
                    topic_id: Uuid([0x11; 16]),
                },
                DeleteTopicState {
                    name: Some("b".into()),
                    topic_id: Uuid::NIL,
                },
            ],
            timeout_ms: 1000,
            ..Default::default()
        };
        assert_literal(
            6,
            "03 \
             | 00 11111111111111111111111111111111 00 \
             | 02 62 00000000000000000000000000000000 00 \
             | 000003e8 | 00",
            &request,
        );
    }

    #[test]
    fn response_v1_classic() {
        let response = DeleteTopicsResponse {
            throttle_time_ms: 5,
            responses: vec![
                DeletableTopicResult {
                    name: Some("a".into()),
                    error_code: 3,
                    ..Default::default()
                },
                DeletableTopicResult {
                    name: Some("b".into()),
                    error_code: 0,
                    ..Default::default()
                },
            ],
        };
        assert_literal(
            1,
            "00000005 | 00000002 | 0001 61 0003 | 0001 62 0000",
            &response,
        );
    }

    #[test]
    fn response_v6_flexible_with_null_name() {
        let response = DeleteTopicsResponse {
            throttle_time_ms: 0,
            responses: vec![
                DeletableTopicResult {
                    name: None,
                    topic_id: Uuid([0x11; 16]),
                    error_code: 100,
                    error_message: Some("x".into()),
                },
                DeletableTopicResult {
                    name: Some("a".into()),
                    topic_id: Uuid::NIL,
                    error_code: 0,
                    error_message: None,
                },
            ],
        };
        assert_literal(
            6,
            "00000000 | 03 \
             | 00 11111111111111111111111111111111 0064 02 78 00 \
             | 02 61 00000000000000000000000000000000 0000 00 00 \
             | 00",
            &response,
        );
    }

    #[test]
    fn response_name_is_nullable_only_from_v6() {
        let response = DeleteTopicsResponse {
            responses: vec![DeletableTopicResult {
                name: None,
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut out = bytes::BytesMut::new();
        let err = response.encode(&mut out, 5).unwrap_err();
        assert_eq!(err.kind, EncodeErrorKind::NullNotAllowed);
        // v5: throttle, one result whose name is the compact null marker.
        let err =
            DeleteTopicsResponse::decode_exact(hex("00000000 02 00 0000 00 00 00"), 5).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnexpectedNull);
        assert_eq!(err.field, "DeletableTopicResult.name");
    }
}
