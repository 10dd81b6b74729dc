//! Heartbeat (key 12): keeps a classic-protocol group member alive and tells
//! it when a rebalance has started.

wire_struct! {
    /// Tells the coordinator this member is still alive.
    pub struct HeartbeatRequest {
        /// The group.
        pub group_id: String [0+],
        /// The generation this member believes is current.
        pub generation_id: i32 [0+],
        /// This member's id.
        pub member_id: String [0+],
        /// The static membership id configured by the user, or null (v3+).
        pub group_instance_id: Option<String> [3+],
    }
}
message! { HeartbeatRequest, versions [0-4], flexible [4+] }

wire_struct! {
    /// Whether the member is still in good standing.
    pub struct HeartbeatResponse {
        /// Time the request was throttled for, in milliseconds (v1+).
        pub throttle_time_ms: i32 [1+],
        /// 0 if all is well; `REBALANCE_IN_PROGRESS` means rejoin the group.
        pub error_code: i16 [0+],
    }
}
message! { HeartbeatResponse, versions [0-4], flexible [4+] }

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_and_v3_classic() {
        let request = HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m1".into(),
            group_instance_id: None,
        };
        assert_literal(0, "0001 67 | 00000003 | 0002 6d31", &request);
        assert_literal(3, "0001 67 | 00000003 | 0002 6d31 | ffff", &request);
    }

    #[test]
    fn request_v4_flexible() {
        let request = HeartbeatRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m1".into(),
            group_instance_id: Some("i".into()),
        };
        assert_literal(4, "02 67 | 00000003 | 03 6d31 | 02 69 | 00", &request);
    }

    #[test]
    fn response_v0_and_v1_classic() {
        let response = HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: 27,
        };
        assert_literal(0, "001b", &response);
        let response = HeartbeatResponse {
            throttle_time_ms: 100,
            error_code: 27,
        };
        assert_literal(1, "00000064 | 001b", &response);
    }

    #[test]
    fn response_v4_flexible() {
        let response = HeartbeatResponse {
            throttle_time_ms: 100,
            error_code: 0,
        };
        assert_literal(4, "00000064 | 0000 | 00", &response);
    }
}
