//! LeaveGroup (key 13): a member leaves a classic-protocol group so the
//! coordinator rebalances at once instead of waiting for the session timeout.
//! Up to v2 one member per request; from v3 a batch of members.

wire_struct! {
    /// Removes one member (v0–2) or several (v3+) from a group.
    pub struct LeaveGroupRequest {
        /// The group to leave.
        pub group_id: String [0+],
        /// The leaving member's id (v0–2).
        pub member_id: String [0-2],
        /// The leaving members (v3+).
        pub members: Vec<LeaveGroupRequestMember> [3+],
    }
}
message! { LeaveGroupRequest, versions [0-5], flexible [4+] }

wire_struct! {
    /// One leaving member (Kafka's `MemberIdentity`).
    pub struct LeaveGroupRequestMember {
        /// The member's id.
        pub member_id: String [3+],
        /// The member's static membership id, or null.
        pub group_instance_id: Option<String> [3+],
        /// Why the member is leaving, for the broker's logs; may be null (v5+).
        pub reason: Option<String> [5+],
    }
}

wire_struct! {
    /// The result of the leave, overall and (v3+) per member.
    pub struct LeaveGroupResponse {
        /// Time the request was throttled for, in milliseconds (v1+).
        pub throttle_time_ms: i32 [1+],
        /// Request-level error, 0 if none.
        pub error_code: i16 [0+],
        /// One result per leaving member (v3+).
        pub members: Vec<LeaveGroupResponseMember> [3+],
    }
}
message! { LeaveGroupResponse, versions [0-5], flexible [4+] }

wire_struct! {
    /// The result for one leaving member (Kafka's `MemberResponse`).
    pub struct LeaveGroupResponseMember {
        /// The member's id.
        pub member_id: String [3+],
        /// The member's static membership id, or null.
        pub group_instance_id: Option<String> [3+] = Some(String::new()),
        /// Error for this member, 0 if none (e.g. `UNKNOWN_MEMBER_ID`).
        pub error_code: i16 [3+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_single_member() {
        let request = LeaveGroupRequest {
            group_id: "g".into(),
            member_id: "m1".into(),
            ..Default::default()
        };
        assert_literal(0, "0001 67 | 0002 6d31", &request);
    }

    #[test]
    fn request_v3_batched_members() {
        let request = LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![
                LeaveGroupRequestMember {
                    member_id: "m1".into(),
                    group_instance_id: None,
                    reason: None,
                },
                LeaveGroupRequestMember {
                    member_id: String::new(),
                    group_instance_id: Some("i".into()),
                    reason: None,
                },
            ],
            ..Default::default()
        };
        assert_literal(
            3,
            "0001 67 | 00000002 | 0002 6d31 ffff | 0000 0001 69",
            &request,
        );
    }

    #[test]
    fn request_v5_flexible_with_reason() {
        let request = LeaveGroupRequest {
            group_id: "g".into(),
            members: vec![LeaveGroupRequestMember {
                member_id: "m1".into(),
                group_instance_id: None,
                reason: Some("r".into()),
            }],
            ..Default::default()
        };
        assert_literal(5, "02 67 | 02 | 03 6d31 00 02 72 00 | 00", &request);
    }

    #[test]
    fn response_v0_and_v3_classic() {
        let response = LeaveGroupResponse {
            error_code: 25,
            ..Default::default()
        };
        assert_literal(0, "0019", &response);
        let response = LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: 0,
            members: vec![
                LeaveGroupResponseMember {
                    member_id: "m1".into(),
                    group_instance_id: None,
                    error_code: 0,
                },
                LeaveGroupResponseMember {
                    member_id: String::new(),
                    group_instance_id: Some("i".into()),
                    error_code: 25,
                },
            ],
        };
        assert_literal(
            3,
            "00000000 | 0000 | 00000002 | 0002 6d31 ffff 0000 | 0000 0001 69 0019",
            &response,
        );
    }

    #[test]
    fn response_v4_flexible() {
        let response = LeaveGroupResponse {
            throttle_time_ms: 1,
            error_code: 0,
            members: vec![LeaveGroupResponseMember {
                member_id: "m1".into(),
                group_instance_id: None,
                error_code: 0,
            }],
        };
        assert_literal(
            4,
            "00000001 | 0000 | 02 | 03 6d31 00 0000 00 | 00",
            &response,
        );
    }
}
