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
message!(ApiVersionsRequest, versions [0-4], flexible [3+]);

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
message!(ApiVersionsResponse, versions [0-4], flexible [3+]);

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
