//! JoinGroup (key 11): the first step of a classic-protocol rebalance.
//!
//! From v4 a member joining with an empty member id is answered with
//! `MEMBER_ID_REQUIRED` and a broker-assigned `member_id`, and must join
//! again with that id.

wire_struct! {
    /// Joins (or rejoins) a consumer group, offering the assignment protocols
    /// this member supports.
    pub struct JoinGroupRequest {
        /// The group to join.
        pub group_id: String [0+],
        /// The coordinator drops the member when no heartbeat arrives within
        /// this many milliseconds.
        pub session_timeout_ms: i32 [0+],
        /// How long the coordinator waits for every member to rejoin during a
        /// rebalance, in milliseconds (v1+).
        pub rebalance_timeout_ms: i32 [1+] = -1,
        /// The member id the coordinator assigned, or empty on the first join.
        pub member_id: String [0+],
        /// The static membership id configured by the user, or null (v5+).
        pub group_instance_id: Option<String> [5+],
        /// The protocol family, `"consumer"` for consumers.
        pub protocol_type: String [0+],
        /// The assignment protocols this member supports, in order of preference.
        pub protocols: Vec<JoinGroupRequestProtocol> [0+],
        /// Why the member is (re)joining, for the broker's logs; may be null (v8+).
        pub reason: Option<String> [8+],
    }
}
message! { JoinGroupRequest, versions [0-9], flexible [6+] }

wire_struct! {
    /// One assignment protocol the member supports.
    pub struct JoinGroupRequestProtocol {
        /// Protocol name, e.g. `"range"` or `"cooperative-sticky"`.
        pub name: String [0+],
        /// The member's subscription encoded for this protocol.
        pub metadata: bytes::Bytes [0+],
    }
}

wire_struct! {
    /// The outcome of a join: the generation, the chosen protocol, the leader
    /// and, for the leader only, every member's subscription.
    pub struct JoinGroupResponse {
        /// Time the request was throttled for, in milliseconds (v2+).
        pub throttle_time_ms: i32 [2+],
        /// Join error, 0 if none (e.g. `MEMBER_ID_REQUIRED`).
        pub error_code: i16 [0+],
        /// The new generation of the group, -1 on error.
        pub generation_id: i32 [0+] = -1,
        /// The group's protocol family, or null (v7+).
        pub protocol_type: Option<String> [7+],
        /// The assignment protocol the coordinator chose; null is legal only
        /// from v7 (before that an error leaves it empty).
        pub protocol_name: Option<String> [0+] nullable [7+] = Some(String::new()),
        /// The member id of the group leader.
        pub leader: String [0+],
        /// The leader must not compute an assignment and should send an empty
        /// SyncGroup instead (v9+).
        pub skip_assignment: bool [9+],
        /// This member's id as assigned by the coordinator.
        pub member_id: String [0+],
        /// Every member with its subscription; empty unless this member is the leader.
        pub members: Vec<JoinGroupResponseMember> [0+],
    }
}
message! { JoinGroupResponse, versions [0-9], flexible [6+] }

wire_struct! {
    /// One group member as the leader sees it.
    pub struct JoinGroupResponseMember {
        /// The member's id.
        pub member_id: String [0+],
        /// The member's static membership id, or null (v5+).
        pub group_instance_id: Option<String> [5+],
        /// The member's subscription, encoded for the chosen protocol.
        pub metadata: bytes::Bytes [0+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::{assert_literal, hex};
    use crate::protocol::{DecodeErrorKind, EncodeErrorKind, Message};

    fn range() -> Vec<JoinGroupRequestProtocol> {
        vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: bytes::Bytes::from_static(&[1, 2]),
        }]
    }

    #[test]
    fn request_v0_has_no_rebalance_timeout() {
        let request = JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: range(),
            ..Default::default()
        };
        assert_literal(
            0,
            "0001 67 | 00002710 | 0000 | 0008 636f6e73756d6572 \
             | 00000001 | 0005 72616e6765 00000002 0102",
            &request,
        );
    }

    #[test]
    fn request_v5_first_join_with_null_instance_id() {
        let request = JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 300_000,
            member_id: String::new(),
            group_instance_id: None,
            protocol_type: "consumer".into(),
            protocols: range(),
            ..Default::default()
        };
        assert_literal(
            5,
            "0001 67 | 00002710 | 000493e0 | 0000 | ffff | 0008 636f6e73756d6572 \
             | 00000001 | 0005 72616e6765 00000002 0102",
            &request,
        );
    }

    #[test]
    fn request_v9_flexible_rejoin_with_reason() {
        let request = JoinGroupRequest {
            group_id: "g".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 300_000,
            member_id: "m-1".into(),
            group_instance_id: Some("i".into()),
            protocol_type: "consumer".into(),
            protocols: range(),
            reason: Some("r".into()),
        };
        assert_literal(
            9,
            "02 67 | 00002710 | 000493e0 | 04 6d2d31 | 02 69 | 09 636f6e73756d6572 \
             | 02 | 06 72616e6765 03 0102 00 \
             | 02 72 | 00",
            &request,
        );
        let no_reason = JoinGroupRequest {
            group_instance_id: None,
            reason: None,
            ..request
        };
        assert_literal(
            8,
            "02 67 | 00002710 | 000493e0 | 04 6d2d31 | 00 | 09 636f6e73756d6572 \
             | 02 | 06 72616e6765 03 0102 00 \
             | 00 | 00",
            &no_reason,
        );
    }

    #[test]
    fn response_v4_member_id_required() {
        let response = JoinGroupResponse {
            error_code: 79,
            member_id: "m-1".into(),
            ..Default::default()
        };
        assert_literal(
            4,
            "00000000 | 004f | ffffffff | 0000 | 0000 | 0003 6d2d31 | 00000000",
            &response,
        );
    }

    #[test]
    fn response_v5_leader_sees_members() {
        let response = JoinGroupResponse {
            generation_id: 3,
            protocol_name: Some("range".into()),
            leader: "m1".into(),
            member_id: "m1".into(),
            members: vec![
                JoinGroupResponseMember {
                    member_id: "m1".into(),
                    group_instance_id: Some("i".into()),
                    metadata: bytes::Bytes::from_static(&[1]),
                },
                JoinGroupResponseMember {
                    member_id: "m2".into(),
                    group_instance_id: None,
                    metadata: bytes::Bytes::new(),
                },
            ],
            ..Default::default()
        };
        assert_literal(
            5,
            "00000000 | 0000 | 00000003 | 0005 72616e6765 | 0002 6d31 | 0002 6d31 \
             | 00000002 | 0002 6d31 0001 69 00000001 01 | 0002 6d32 ffff 00000000",
            &response,
        );
    }

    #[test]
    fn response_v7_null_protocol_type_and_name() {
        let response = JoinGroupResponse {
            error_code: 79,
            protocol_type: None,
            protocol_name: None,
            member_id: "m-1".into(),
            ..Default::default()
        };
        assert_literal(
            7,
            "00000000 | 004f | ffffffff | 00 | 00 | 01 | 04 6d2d31 | 01 | 00",
            &response,
        );
    }

    #[test]
    fn response_v6_rejects_null_protocol_name() {
        // v6 is flexible but `protocol_name` only becomes nullable in v7.
        let err = JoinGroupResponse::decode_exact(
            hex("00000000 | 004f | ffffffff | 00 | 01 | 04 6d2d31 | 01 | 00"),
            6,
        )
        .unwrap_err();
        assert_eq!(err.field, "JoinGroupResponse.protocol_name");
        assert!(matches!(err.kind, DecodeErrorKind::UnexpectedNull));
        let response = JoinGroupResponse {
            protocol_name: None,
            ..Default::default()
        };
        let err = response.encode(&mut bytes::BytesMut::new(), 6).unwrap_err();
        assert_eq!(err.field, "JoinGroupResponse.protocol_name");
        assert!(matches!(err.kind, EncodeErrorKind::NullNotAllowed));
    }

    #[test]
    fn response_v9_skip_assignment() {
        let response = JoinGroupResponse {
            generation_id: 3,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            leader: "m1".into(),
            skip_assignment: true,
            member_id: "m1".into(),
            members: vec![JoinGroupResponseMember {
                member_id: "m1".into(),
                group_instance_id: None,
                metadata: bytes::Bytes::from_static(&[1]),
            }],
            ..Default::default()
        };
        assert_literal(
            9,
            "00000000 | 0000 | 00000003 | 09 636f6e73756d6572 | 06 72616e6765 | 03 6d31 \
             | 01 | 03 6d31 | 02 | 03 6d31 00 02 01 00 | 00",
            &response,
        );
    }
}
