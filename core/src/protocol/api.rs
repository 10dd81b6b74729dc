//! API keys, the [`Message`] and [`Request`] traits, and enums that hold
//! any request or response body.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};

use super::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use super::messages::*;
use super::version::VersionRange;
use super::wire::{Cx, Reader, Wire, Writer};

/// A Kafka protocol message (a request or response body, or an embedded
/// payload) with a codec for every version in [`Message::VERSIONS`].
///
/// The encoder writes only the fields that exist at the requested version;
/// fields absent at that version are skipped, and the decoder leaves them at
/// their schema default.
pub trait Message: Wire + Clone + Debug + PartialEq + Default {
    /// The message name, as in Kafka's schemas (`FetchRequest`).
    const NAME: &'static str;
    /// The versions this codec implements.
    const VERSIONS: VersionRange;
    /// The versions that use compact encodings and tagged fields.
    const FLEXIBLE: VersionRange;

    /// Appends the body encoded at `version`.
    fn encode(&self, out: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(EncodeError::new(EncodeErrorKind::UnsupportedVersion {
                version,
                min: Self::VERSIONS.min,
                max: Self::VERSIONS.max,
            })
            .in_message(Self::NAME, version));
        }
        let cx = Cx::message(version, Self::FLEXIBLE.contains(version));
        self.write(&mut Writer::new(out), cx)
            .map_err(|e| e.in_message(Self::NAME, version))
    }

    /// Decodes a body at `version` from the front of `buf`, advancing it past
    /// the bytes used. Byte strings in the result (record sets, metadata) are
    /// zero-copy slices of `buf`.
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {
        if !Self::VERSIONS.contains(version) {
            return Err(DecodeError::new(
                DecodeErrorKind::UnsupportedVersion {
                    version,
                    min: Self::VERSIONS.min,
                    max: Self::VERSIONS.max,
                },
                0,
            )
            .in_message(Self::NAME, version));
        }
        let cx = Cx::message(version, Self::FLEXIBLE.contains(version));
        let mut reader = Reader::new(std::mem::take(buf));
        let result = Self::read(&mut reader, cx);
        *buf = reader.into_rest();
        result.map_err(|e| e.in_message(Self::NAME, version))
    }

    /// Decodes a body that must fill `buf` exactly.
    fn decode_exact(mut buf: Bytes, version: i16) -> Result<Self, DecodeError> {
        let total = buf.len();
        let message = Self::decode(&mut buf, version)?;
        if buf.is_empty() {
            Ok(message)
        } else {
            Err(DecodeError::new(
                DecodeErrorKind::TrailingBytes { count: buf.len() },
                total - buf.len(),
            )
            .in_message(Self::NAME, version))
        }
    }
}

/// A request body: its API key and the type of the matching response.
pub trait Request: Message {
    /// The API this request belongs to.
    const API_KEY: ApiKey;
    /// The response body the broker answers with.
    type Response: Message;
}

/// Declares the API table: the [`ApiKey`] enum, the `Request` impls, and the
/// body enums that dispatch on an API key.
macro_rules! apis {
    ($($variant:ident = $key:literal, $request:ident, $response:ident;)*) => {
        /// The Kafka APIs Odradek implements.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ApiKey {
            $(
                #[doc = concat!("`", stringify!($variant), "` (key ", stringify!($key), ").")]
                $variant = $key,
            )*
        }

        impl ApiKey {
            /// Every API Odradek implements.
            pub const ALL: &'static [ApiKey] = &[$(ApiKey::$variant),*];

            /// The API key number on the wire.
            pub const fn code(self) -> i16 {
                self as i16
            }

            /// The API for a key number, if Odradek implements it.
            pub const fn from_code(code: i16) -> Option<ApiKey> {
                match code {
                    $($key => Some(ApiKey::$variant),)*
                    _ => None,
                }
            }

            /// The API's name, as in Kafka's documentation.
            pub const fn name(self) -> &'static str {
                match self {
                    $(ApiKey::$variant => stringify!($variant),)*
                }
            }

            /// The request versions Odradek implements.
            pub const fn versions(self) -> VersionRange {
                match self {
                    $(ApiKey::$variant => <$request as Message>::VERSIONS,)*
                }
            }

            /// The versions of this API that are flexible.
            pub const fn flexible_versions(self) -> VersionRange {
                match self {
                    $(ApiKey::$variant => <$request as Message>::FLEXIBLE,)*
                }
            }
        }

        $(
            impl Request for $request {
                const API_KEY: ApiKey = ApiKey::$variant;
                type Response = $response;
            }
        )*

        /// Any request body, tagged by API.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        #[allow(clippy::large_enum_variant)]
        pub enum RequestBody {
            $(
                #[doc = concat!("A `", stringify!($request), "`.")]
                $variant($request),
            )*
        }

        /// Any response body, tagged by API.
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        #[allow(clippy::large_enum_variant)]
        pub enum ResponseBody {
            $(
                #[doc = concat!("A `", stringify!($response), "`.")]
                $variant($response),
            )*
        }

        impl RequestBody {
            /// The API of this body.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(RequestBody::$variant(_) => ApiKey::$variant,)*
                }
            }

            /// Decodes the request body of `api` at `version`, which must fill `buf`.
            pub fn decode(api: ApiKey, buf: Bytes, version: i16) -> Result<Self, DecodeError> {
                match api {
                    $(ApiKey::$variant => <$request>::decode_exact(buf, version).map(RequestBody::$variant),)*
                }
            }

            /// Appends the body encoded at `version`.
            pub fn encode(&self, out: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
                match self {
                    $(RequestBody::$variant(body) => body.encode(out, version),)*
                }
            }
        }

        #[cfg(test)]
        impl RequestBody {
            /// A random body of `api` legal at `version`.
            pub(crate) fn sample(api: ApiKey, rng: &mut proptest::test_runner::TestRng, version: i16) -> Self {
                use super::wire::sample::Sample;
                match api {
                    $(ApiKey::$variant => RequestBody::$variant(<$request>::sample(
                        rng,
                        Cx::message(version, <$request as Message>::FLEXIBLE.contains(version)),
                    )),)*
                }
            }
        }

        #[cfg(test)]
        impl ResponseBody {
            /// A random body of `api` legal at `version`.
            pub(crate) fn sample(api: ApiKey, rng: &mut proptest::test_runner::TestRng, version: i16) -> Self {
                use super::wire::sample::Sample;
                match api {
                    $(ApiKey::$variant => ResponseBody::$variant(<$response>::sample(
                        rng,
                        Cx::message(version, <$response as Message>::FLEXIBLE.contains(version)),
                    )),)*
                }
            }
        }

        impl ResponseBody {
            /// The API of this body.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $(ResponseBody::$variant(_) => ApiKey::$variant,)*
                }
            }

            /// Decodes the response body of `api` at `version`, which must fill `buf`.
            pub fn decode(api: ApiKey, buf: Bytes, version: i16) -> Result<Self, DecodeError> {
                match api {
                    $(ApiKey::$variant => <$response>::decode_exact(buf, version).map(ResponseBody::$variant),)*
                }
            }

            /// Appends the body encoded at `version`.
            pub fn encode(&self, out: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
                match self {
                    $(ResponseBody::$variant(body) => body.encode(out, version),)*
                }
            }
        }
    };
}

apis! {
    ApiVersions = 18, ApiVersionsRequest, ApiVersionsResponse;
    Metadata = 3, MetadataRequest, MetadataResponse;
    Fetch = 1, FetchRequest, FetchResponse;
    ListOffsets = 2, ListOffsetsRequest, ListOffsetsResponse;
    OffsetForLeaderEpoch = 23, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
    OffsetCommit = 8, OffsetCommitRequest, OffsetCommitResponse;
    OffsetFetch = 9, OffsetFetchRequest, OffsetFetchResponse;
    FindCoordinator = 10, FindCoordinatorRequest, FindCoordinatorResponse;
    JoinGroup = 11, JoinGroupRequest, JoinGroupResponse;
    Heartbeat = 12, HeartbeatRequest, HeartbeatResponse;
    LeaveGroup = 13, LeaveGroupRequest, LeaveGroupResponse;
    SyncGroup = 14, SyncGroupRequest, SyncGroupResponse;
    DescribeGroups = 15, DescribeGroupsRequest, DescribeGroupsResponse;
    ListGroups = 16, ListGroupsRequest, ListGroupsResponse;
    Produce = 0, ProduceRequest, ProduceResponse;
    CreateTopics = 19, CreateTopicsRequest, CreateTopicsResponse;
    DeleteTopics = 20, DeleteTopicsRequest, DeleteTopicsResponse;
    SaslHandshake = 17, SaslHandshakeRequest, SaslHandshakeResponse;
    SaslAuthenticate = 36, SaslAuthenticateRequest, SaslAuthenticateResponse;
}

impl ApiKey {
    /// The request header version for this API at `version`: 2 for flexible
    /// versions, 1 otherwise.
    pub const fn request_header_version(self, version: i16) -> i16 {
        if self.flexible_versions().contains(version) {
            2
        } else {
            1
        }
    }

    /// The response header version for this API at `version`: 1 for flexible
    /// versions, 0 otherwise — except ApiVersions, whose response header is
    /// always v0 so a client can read it before it knows what the broker
    /// supports.
    pub const fn response_header_version(self, version: i16) -> i16 {
        match self {
            ApiKey::ApiVersions => 0,
            _ if self.flexible_versions().contains(version) => 1,
            _ => 0,
        }
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
