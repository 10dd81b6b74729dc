//! DescribeGroups (key 15): the state, protocol and members of classic groups.

wire_struct! {
    /// Asks for the details of some groups.
    pub struct DescribeGroupsRequest {
        /// The groups to describe.
        pub groups: Vec<String> [0+],
        /// Also return the operations the client may perform on each group (v3+).
        pub include_authorized_operations: bool [3+],
    }
}
message! { DescribeGroupsRequest, versions [0-6], flexible [5+] }

wire_struct! {
    /// One description per requested group.
    pub struct DescribeGroupsResponse {
        /// Time the request was throttled for, in milliseconds (v1+).
        pub throttle_time_ms: i32 [1+],
        /// One entry per requested group.
        pub groups: Vec<DescribedGroup> [0+],
    }
}
message! { DescribeGroupsResponse, versions [0-6], flexible [5+] }

wire_struct! {
    /// One group's description.
    pub struct DescribedGroup {
        /// Error for this group, 0 if none (e.g. `GROUP_ID_NOT_FOUND`).
        pub error_code: i16 [0+],
        /// Human-readable error, or null when there was none (v6+).
        pub error_message: Option<String> [6+],
        /// The group id.
        pub group_id: String [0+],
        /// The group state (`Stable`, `Empty`, `Dead`, ...), or empty.
        pub group_state: String [0+],
        /// The protocol family (`consumer`), or empty.
        pub protocol_type: String [0+],
        /// The chosen assignment protocol (`range`, ...), or empty.
        pub protocol_data: String [0+],
        /// The group's members.
        pub members: Vec<DescribedGroupMember> [0+],
        /// Bit field of the operations the client may perform on the group (v3+);
        /// `i32::MIN` when not requested.
        pub authorized_operations: i32 [3+] = i32::MIN,
    }
}

wire_struct! {
    /// One member of a described group.
    pub struct DescribedGroupMember {
        /// The member's id.
        pub member_id: String [0+],
        /// The member's static membership id, or null (v4+).
        pub group_instance_id: Option<String> [4+],
        /// The client id the member last joined with.
        pub client_id: String [0+],
        /// The host the member connects from.
        pub client_host: String [0+],
        /// The member's subscription for the group's current protocol.
        pub member_metadata: bytes::Bytes [0+],
        /// The member's current assignment from the leader.
        pub member_assignment: bytes::Bytes [0+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_and_v3_classic() {
        let request = DescribeGroupsRequest {
            groups: vec!["g".into(), "h".into()],
            include_authorized_operations: false,
        };
        assert_literal(0, "00000002 | 0001 67 | 0001 68", &request);
        let request = DescribeGroupsRequest {
            groups: vec!["g".into()],
            include_authorized_operations: true,
        };
        assert_literal(3, "00000001 | 0001 67 | 01", &request);
    }

    #[test]
    fn request_v5_flexible() {
        let request = DescribeGroupsRequest {
            groups: vec!["g".into()],
            include_authorized_operations: true,
        };
        assert_literal(5, "02 02 67 | 01 | 00", &request);
    }

    fn stable_group(
        group_instance_id: Option<String>,
        authorized_operations: i32,
    ) -> DescribedGroup {
        DescribedGroup {
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_data: "range".into(),
            members: vec![DescribedGroupMember {
                member_id: "m1".into(),
                group_instance_id,
                client_id: "c".into(),
                client_host: "/h".into(),
                member_metadata: bytes::Bytes::from_static(&[1]),
                member_assignment: bytes::Bytes::from_static(&[2]),
            }],
            authorized_operations,
            ..Default::default()
        }
    }

    #[test]
    fn response_v0_classic() {
        let response = DescribeGroupsResponse {
            groups: vec![stable_group(None, i32::MIN)],
            ..Default::default()
        };
        assert_literal(
            0,
            "00000001 \
             | 0000 | 0001 67 | 0006 537461626c65 | 0008 636f6e73756d6572 | 0005 72616e6765 \
             | 00000001 | 0002 6d31 | 0001 63 | 0002 2f68 | 00000001 01 | 00000001 02",
            &response,
        );
    }

    #[test]
    fn response_v4_classic_with_instance_id_and_operations() {
        let response = DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![stable_group(Some("i".into()), 0x108)],
        };
        assert_literal(
            4,
            "00000000 | 00000001 \
             | 0000 | 0001 67 | 0006 537461626c65 | 0008 636f6e73756d6572 | 0005 72616e6765 \
             | 00000001 | 0002 6d31 | 0001 69 | 0001 63 | 0002 2f68 | 00000001 01 | 00000001 02 \
             | 00000108",
            &response,
        );
    }

    #[test]
    fn response_v5_flexible() {
        let response = DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![stable_group(None, 8)],
        };
        assert_literal(
            5,
            "00000000 | 02 \
             | 0000 | 02 67 | 07 537461626c65 | 09 636f6e73756d6572 | 06 72616e6765 \
             | 02 | 03 6d31 00 02 63 03 2f68 02 01 02 02 00 \
             | 00000008 | 00 \
             | 00",
            &response,
        );
    }

    #[test]
    fn response_v6_error_message() {
        let response = DescribeGroupsResponse {
            throttle_time_ms: 0,
            groups: vec![DescribedGroup {
                error_code: 69,
                error_message: Some("x".into()),
                group_id: "g".into(),
                group_state: "Dead".into(),
                ..Default::default()
            }],
        };
        assert_literal(
            6,
            "00000000 | 02 \
             | 0045 | 02 78 | 02 67 | 05 44656164 | 01 | 01 | 01 | 80000000 | 00 \
             | 00",
            &response,
        );
    }
}
