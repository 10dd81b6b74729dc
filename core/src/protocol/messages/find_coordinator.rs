//! FindCoordinator (key 10): which broker coordinates a group or a
//! transactional id. Up to v3 one key per request; from v4 a batch of keys.

wire_struct! {
    /// Asks which broker is the coordinator for one key (v0–3) or several (v4+).
    pub struct FindCoordinatorRequest {
        /// The group id (or transactional id) to look up; v0–3 only.
        pub key: String [0-3],
        /// What kind of key this is: 0 for a group, 1 for a transaction (v1+).
        pub key_type: i8 [1+],
        /// The keys to look up, all of the same `key_type` (v4+).
        pub coordinator_keys: Vec<String> [4+],
    }
}
message! { FindCoordinatorRequest, versions [0-6], flexible [3+] }

wire_struct! {
    /// The coordinator for the single key (v0–3) or for each key (v4+).
    pub struct FindCoordinatorResponse {
        /// Time the request was throttled for, in milliseconds (v1+).
        pub throttle_time_ms: i32 [1+],
        /// Lookup error, 0 if none (v0–3).
        pub error_code: i16 [0-3],
        /// Human-readable error, or null when there was none (v1–3).
        pub error_message: Option<String> [1-3] = Some(String::new()),
        /// Coordinator broker id (v0–3).
        pub node_id: i32 [0-3],
        /// Coordinator host name (v0–3).
        pub host: String [0-3],
        /// Coordinator port (v0–3).
        pub port: i32 [0-3],
        /// One result per requested key (v4+).
        pub coordinators: Vec<FindCoordinatorResponseCoordinator> [4+],
    }
}
message! { FindCoordinatorResponse, versions [0-6], flexible [3+] }

wire_struct! {
    /// The coordinator found for one key of a batched lookup (Kafka's `Coordinator`).
    pub struct FindCoordinatorResponseCoordinator {
        /// The key this result is for.
        pub key: String [4+],
        /// Coordinator broker id, -1 when the lookup failed.
        pub node_id: i32 [4+],
        /// Coordinator host name.
        pub host: String [4+],
        /// Coordinator port.
        pub port: i32 [4+],
        /// Lookup error for this key, 0 if none (e.g. `COORDINATOR_NOT_AVAILABLE`).
        pub error_code: i16 [4+],
        /// Human-readable error, or null when there was none.
        pub error_message: Option<String> [4+] = Some(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_and_v1_single_key() {
        let request = FindCoordinatorRequest {
            key: "g".into(),
            ..Default::default()
        };
        assert_literal(0, "0001 67", &request);
        let transaction = FindCoordinatorRequest {
            key: "g".into(),
            key_type: 1,
            ..Default::default()
        };
        assert_literal(1, "0001 67 | 01", &transaction);
    }

    #[test]
    fn request_v3_flexible_single_key() {
        let request = FindCoordinatorRequest {
            key: "g".into(),
            ..Default::default()
        };
        assert_literal(3, "02 67 | 00 | 00", &request);
    }

    #[test]
    fn request_v4_batched_keys() {
        let request = FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert_literal(4, "00 | 03 02 61 02 62 | 00", &request);
    }

    #[test]
    fn response_v0_and_v1_classic() {
        let response = FindCoordinatorResponse {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            ..Default::default()
        };
        assert_literal(0, "0000 | 00000001 | 0001 68 | 00002384", &response);
        let response = FindCoordinatorResponse {
            throttle_time_ms: 7,
            error_message: None,
            ..response
        };
        assert_literal(
            1,
            "00000007 | 0000 | ffff | 00000001 | 0001 68 | 00002384",
            &response,
        );
    }

    #[test]
    fn response_v3_flexible_single_key_with_error() {
        let response = FindCoordinatorResponse {
            error_code: 15,
            error_message: Some("x".into()),
            node_id: -1,
            host: String::new(),
            port: -1,
            ..Default::default()
        };
        assert_literal(
            3,
            "00000000 | 000f | 02 78 | ffffffff | 01 | ffffffff | 00",
            &response,
        );
    }

    #[test]
    fn response_v4_batched() {
        let response = FindCoordinatorResponse {
            throttle_time_ms: 5,
            coordinators: vec![
                FindCoordinatorResponseCoordinator {
                    key: "g".into(),
                    node_id: 1,
                    host: "h".into(),
                    port: 9092,
                    error_code: 0,
                    error_message: None,
                },
                FindCoordinatorResponseCoordinator {
                    key: "t".into(),
                    node_id: -1,
                    host: String::new(),
                    port: -1,
                    error_code: 15,
                    error_message: Some("x".into()),
                },
            ],
            ..Default::default()
        };
        assert_literal(
            4,
            "00000005 | 03 \
             | 02 67 00000001 02 68 00002384 0000 00 00 \
             | 02 74 ffffffff 01 ffffffff 000f 02 78 00 \
             | 00",
            &response,
        );
    }
}
