//! SyncGroup (key 14): the second step of a classic-protocol rebalance. The
//! leader sends every member's assignment; every member receives its own.

wire_struct! {
    /// Completes a rebalance: the leader carries the assignments, followers
    /// send an empty list.
    pub struct SyncGroupRequest {
        /// The group.
        pub group_id: String [0+],
        /// The generation this member joined with.
        pub generation_id: i32 [0+],
        /// This member's id.
        pub member_id: String [0+],
        /// The static membership id configured by the user, or null (v3+).
        pub group_instance_id: Option<String> [3+],
        /// The protocol family from the JoinGroup response, or null; the
        /// coordinator checks it when set (v5+).
        pub protocol_type: Option<String> [5+],
        /// The assignment protocol from the JoinGroup response, or null; the
        /// coordinator checks it when set (v5+).
        pub protocol_name: Option<String> [5+],
        /// Each member's assignment; only the leader sends any.
        pub assignments: Vec<SyncGroupRequestAssignment> [0+],
    }
}
message! { SyncGroupRequest, versions [0-5], flexible [4+] }

wire_struct! {
    /// The assignment the leader computed for one member.
    pub struct SyncGroupRequestAssignment {
        /// The member the assignment is for.
        pub member_id: String [0+],
        /// The assignment, encoded for the chosen protocol.
        pub assignment: bytes::Bytes [0+],
    }
}

wire_struct! {
    /// This member's assignment for the new generation.
    pub struct SyncGroupResponse {
        /// Time the request was throttled for, in milliseconds (v1+).
        pub throttle_time_ms: i32 [1+],
        /// Sync error, 0 if none (e.g. `REBALANCE_IN_PROGRESS`).
        pub error_code: i16 [0+],
        /// The group's protocol family, or null (v5+).
        pub protocol_type: Option<String> [5+],
        /// The group's assignment protocol, or null (v5+).
        pub protocol_name: Option<String> [5+],
        /// This member's assignment, encoded for the chosen protocol.
        pub assignment: bytes::Bytes [0+],
    }
}
message! { SyncGroupResponse, versions [0-5], flexible [4+] }

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    fn assignments() -> Vec<SyncGroupRequestAssignment> {
        vec![
            SyncGroupRequestAssignment {
                member_id: "m1".into(),
                assignment: bytes::Bytes::from_static(&[1, 2]),
            },
            SyncGroupRequestAssignment {
                member_id: "m2".into(),
                assignment: bytes::Bytes::new(),
            },
        ]
    }

    #[test]
    fn request_v0_and_v3_classic() {
        let request = SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m1".into(),
            assignments: assignments(),
            ..Default::default()
        };
        assert_literal(
            0,
            "0001 67 | 00000003 | 0002 6d31 \
             | 00000002 | 0002 6d31 00000002 0102 | 0002 6d32 00000000",
            &request,
        );
        assert_literal(
            3,
            "0001 67 | 00000003 | 0002 6d31 | ffff \
             | 00000002 | 0002 6d31 00000002 0102 | 0002 6d32 00000000",
            &request,
        );
    }

    #[test]
    fn request_v4_and_v5_flexible() {
        let follower = SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m2".into(),
            group_instance_id: Some("i".into()),
            ..Default::default()
        };
        assert_literal(4, "02 67 | 00000003 | 03 6d32 | 02 69 | 01 | 00", &follower);
        let leader = SyncGroupRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m1".into(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments(),
        };
        assert_literal(
            5,
            "02 67 | 00000003 | 03 6d31 | 00 | 09 636f6e73756d6572 | 06 72616e6765 \
             | 03 | 03 6d31 03 0102 00 | 03 6d32 01 00 \
             | 00",
            &leader,
        );
    }

    #[test]
    fn response_v0_and_v1_classic() {
        let response = SyncGroupResponse {
            assignment: bytes::Bytes::from_static(&[1, 2]),
            ..Default::default()
        };
        assert_literal(0, "0000 | 00000002 0102", &response);
        let response = SyncGroupResponse {
            throttle_time_ms: 9,
            error_code: 27,
            assignment: bytes::Bytes::new(),
            ..Default::default()
        };
        assert_literal(1, "00000009 | 001b | 00000000", &response);
    }

    #[test]
    fn response_v5_flexible() {
        let response = SyncGroupResponse {
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignment: bytes::Bytes::from_static(&[1, 2]),
            ..Default::default()
        };
        assert_literal(
            5,
            "00000000 | 0000 | 09 636f6e73756d6572 | 06 72616e6765 | 03 0102 | 00",
            &response,
        );
        let error = SyncGroupResponse {
            error_code: 27,
            ..Default::default()
        };
        assert_literal(5, "00000000 | 001b | 00 | 00 | 01 | 00", &error);
        assert_literal(4, "00000000 | 001b | 01 | 00", &error);
    }
}
