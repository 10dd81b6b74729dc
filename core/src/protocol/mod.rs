//! The Kafka wire protocol: framing, headers, and one codec per API message.
//!
//! Messages are plain data (one file per API under [`messages`]), kept apart
//! from any client logic. Every message implements [`Message`], which
//! encodes and decodes it at a given version; requests also implement
//! [`Request`], which ties them to their API key and response type.
//!
//! Decoding never trusts a length: every length or element count is checked
//! against the bytes that remain before anything is allocated for it, and
//! every failure is a [`DecodeError`] naming the message, version, field and
//! byte offset.
//!
//! ```
//! use bytes::BytesMut;
//! use odradek_core::protocol::{self, messages::ApiVersionsRequest, Request};
//!
//! let request = ApiVersionsRequest {
//!     client_software_name: "odradek".into(),
//!     client_software_version: "0.1.0".into(),
//! };
//! let mut out = BytesMut::new();
//! protocol::encode_request(&mut out, 7, Some("my-app"), &request, 3).unwrap();
//! // Size prefix, then api key 18, version 3, correlation id 7.
//! assert_eq!(&out[4..12], &[0, 18, 0, 3, 0, 0, 0, 7]);
//! ```

#[macro_use]
mod macros;
mod api;
mod consumer_protocol;
mod error;
mod error_code;
mod frame;
mod header;
pub mod messages;
#[cfg(test)]
mod tests;
mod version;
pub(crate) mod wire;

pub use api::{ApiKey, Message, Request, RequestBody, ResponseBody};
pub use consumer_protocol::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, EmbeddedProtocol, TopicPartitions,
};
pub use error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind, UnsupportedVersion};
pub use error_code::ErrorCode;
pub use frame::{
    DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameError, decode_request, decode_response,
    decode_response_body, encode_request, encode_response, response_correlation_id,
};
pub use header::{RequestHeader, ResponseHeader};
pub use version::{SecretBytes, Uuid, VersionRange, negotiate};
