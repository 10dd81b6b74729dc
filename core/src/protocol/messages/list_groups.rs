//! ListGroups (key 16): the groups a broker coordinates, optionally filtered
//! by state (v4+) and type (v5+).

wire_struct! {
    /// Asks a broker for the groups it coordinates.
    pub struct ListGroupsRequest {
        /// Only list groups in these states; empty lists every state (v4+).
        pub states_filter: Vec<String> [4+],
        /// Only list groups of these types (`classic`, `consumer`, `share`);
        /// empty lists every type (v5+).
        pub types_filter: Vec<String> [5+],
    }
}
message! { ListGroupsRequest, versions [0-5], flexible [3+] }

wire_struct! {
    /// The groups the broker coordinates.
    pub struct ListGroupsResponse {
        /// Time the request was throttled for, in milliseconds (v1+).
        pub throttle_time_ms: i32 [1+],
        /// Request-level error, 0 if none.
        pub error_code: i16 [0+],
        /// Each group.
        pub groups: Vec<ListedGroup> [0+],
    }
}
message! { ListGroupsResponse, versions [0-5], flexible [3+] }

wire_struct! {
    /// One group in a listing.
    pub struct ListedGroup {
        /// The group id.
        pub group_id: String [0+],
        /// The protocol family (`consumer` for consumer groups), or empty.
        pub protocol_type: String [0+],
        /// The group's state (v4+).
        pub group_state: String [4+],
        /// The group's type: `classic`, `consumer` or `share` (v5+).
        pub group_type: String [5+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::tests::testing::assert_literal;

    #[test]
    fn request_v0_classic_is_empty() {
        assert_literal(0, "", &ListGroupsRequest::default());
    }

    #[test]
    fn request_v3_v4_v5_flexible() {
        assert_literal(3, "00", &ListGroupsRequest::default());
        let by_state = ListGroupsRequest {
            states_filter: vec!["Stable".into()],
            ..Default::default()
        };
        assert_literal(4, "02 07 537461626c65 | 00", &by_state);
        let by_type = ListGroupsRequest {
            states_filter: Vec::new(),
            types_filter: vec!["consumer".into(), "classic".into()],
        };
        assert_literal(
            5,
            "01 | 03 09 636f6e73756d6572 08 636c6173736963 | 00",
            &by_type,
        );
    }

    #[test]
    fn response_v0_and_v1_classic() {
        let response = ListGroupsResponse {
            groups: vec![ListedGroup {
                group_id: "g".into(),
                protocol_type: "consumer".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_literal(
            0,
            "0000 | 00000001 | 0001 67 0008 636f6e73756d6572",
            &response,
        );
        let response = ListGroupsResponse {
            throttle_time_ms: 2,
            ..response
        };
        assert_literal(
            1,
            "00000002 | 0000 | 00000001 | 0001 67 0008 636f6e73756d6572",
            &response,
        );
    }

    #[test]
    fn response_v5_flexible_with_state_and_type() {
        let response = ListGroupsResponse {
            throttle_time_ms: 0,
            error_code: 0,
            groups: vec![
                ListedGroup {
                    group_id: "g".into(),
                    protocol_type: "consumer".into(),
                    group_state: "Stable".into(),
                    group_type: "consumer".into(),
                },
                ListedGroup {
                    group_id: "h".into(),
                    protocol_type: String::new(),
                    group_state: "Empty".into(),
                    group_type: "classic".into(),
                },
            ],
        };
        assert_literal(
            5,
            "00000000 | 0000 | 03 \
             | 02 67 09 636f6e73756d6572 07 537461626c65 09 636f6e73756d6572 00 \
             | 02 68 01 06 456d707479 08 636c6173736963 00 \
             | 00",
            &response,
        );
    }
}
