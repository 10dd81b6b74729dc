//! ApiVersions (key 18): which APIs and versions the broker supports.

wire_struct! {
    /// Asks the broker which API versions it supports. Sent first on every
    /// connection.
    pub struct ApiVersionsRequest {
        /// Name of the client library, for broker metrics (v3+).
        pub client_software_name: String [3+],
        /// Version of the client library (v3+).
        pub client_software_version: String [3+],
    }
}
message! { ApiVersionsRequest, versions [0-4], flexible [3+] }

wire_struct! {
    /// The broker's supported API versions and features.
    pub struct ApiVersionsResponse {
        /// Top-level error; `UNSUPPORTED_VERSION` (35) means the request
        /// version was too new, and the broker then answers at v0.
        pub error_code: i16 [0+],
        /// Supported versions per API key. The order is not guaranteed.
        pub api_keys: Vec<ApiVersion> [0+],
        /// Time the request was throttled for, in milliseconds.
        pub throttle_time_ms: i32 [1+],
        /// Features the broker supports.
        pub supported_features: Vec<SupportedFeatureKey> [3+] tag 0,
        /// Epoch of the finalized features, -1 when unknown.
        pub finalized_features_epoch: i64 [3+] tag 1 = -1,
        /// Cluster-wide finalized features.
        pub finalized_features: Vec<FinalizedFeatureKey> [3+] tag 2,
        /// Set by a KRaft controller ready for ZooKeeper migration.
        pub zk_migration_ready: bool [3+] tag 3,
    }
}
message! { ApiVersionsResponse, versions [0-4], flexible [3+] }

wire_struct! {
    /// The version range of one API.
    pub struct ApiVersion {
        /// The API key number.
        pub api_key: i16 [0+],
        /// Lowest supported version.
        pub min_version: i16 [0+],
        /// Highest supported version.
        pub max_version: i16 [0+],
    }
}

wire_struct! {
    /// A feature the broker supports, with its version range.
    pub struct SupportedFeatureKey {
        /// Feature name.
        pub name: String [3+],
        /// Lowest supported feature version.
        pub min_version: i16 [3+],
        /// Highest supported feature version.
        pub max_version: i16 [3+],
    }
}

wire_struct! {
    /// A cluster-wide finalized feature level.
    pub struct FinalizedFeatureKey {
        /// Feature name.
        pub name: String [3+],
        /// Finalized highest version level.
        pub max_version_level: i16 [3+],
        /// Finalized lowest version level.
        pub min_version_level: i16 [3+],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Message;
    use crate::protocol::tests::testing::{assert_decodes, assert_literal};

    #[test]
    fn request_v0_is_empty_and_v3_names_the_client() {
        assert_literal(0, "", &ApiVersionsRequest::default());
        let request = ApiVersionsRequest {
            client_software_name: "odradek".into(),
            client_software_version: "0.1".into(),
        };
        assert_literal(3, "08 6f6472616465 6b | 04 302e31 | 00", &request);
    }

    #[test]
    fn response_v0_classic() {
        let response = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: 0,
                    min_version: 0,
                    max_version: 9,
                },
                ApiVersion {
                    api_key: 1,
                    min_version: 0,
                    max_version: 13,
                },
            ],
            ..Default::default()
        };
        assert_literal(
            0,
            "0000 | 00000002 | 0000 0000 0009 | 0001 0000 000d",
            &response,
        );
    }

    #[test]
    fn response_v3_flexible_with_a_tagged_field() {
        let response = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: 18,
                    min_version: 0,
                    max_version: 4,
                },
                ApiVersion {
                    api_key: 1,
                    min_version: 4,
                    max_version: 17,
                },
            ],
            throttle_time_ms: 0,
            finalized_features_epoch: 5,
            ..Default::default()
        };
        assert_literal(
            3,
            "0000 | 03 | 0012 0000 0004 00 | 0001 0004 0011 00 | 00000000 \
             | 01 | 01 08 0000000000000005",
            &response,
        );
    }

    #[test]
    fn response_v3_skips_unknown_tags_and_keeps_order() {
        // Unsorted keys, an unknown tag 9 in an entry and unknown tags 7 and
        // 12 at the top level, as tansu sends them.
        let response = ApiVersionsResponse {
            api_keys: vec![
                ApiVersion {
                    api_key: 3,
                    min_version: 0,
                    max_version: 12,
                },
                ApiVersion {
                    api_key: 0,
                    min_version: 0,
                    max_version: 11,
                },
            ],
            zk_migration_ready: true,
            ..Default::default()
        };
        assert_decodes(
            3,
            "0000 | 03 | 0003 0000 000c 01 09 02 abcd | 0000 0000 000b 00 | 00000000 \
             | 03 | 03 01 01 | 07 00 | 0c 03 010203",
            &response,
        );
    }

    #[test]
    fn tagged_field_with_a_wrong_size_is_rejected() {
        // Tag 1 (an int64) declared as 9 bytes.
        let bytes =
            crate::protocol::tests::testing::hex("0000 01 00000000 01 01 09 000000000000000500");
        let err = ApiVersionsResponse::decode_exact(bytes, 3).unwrap_err();
        assert_eq!(err.field, "ApiVersionsResponse.finalized_features_epoch");
        assert!(matches!(
            err.kind,
            crate::protocol::DecodeErrorKind::TaggedFieldSize {
                tag: 1,
                declared: 9,
                used: 8
            }
        ));
    }
}
