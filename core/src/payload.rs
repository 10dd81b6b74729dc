//! Typed keys and values: [`FromPayload`] reads a record's key or value as
//! an application type, and a payload that does not fit is a
//! [`PayloadError`] for that record alone, never a failed poll (as rdkafka's
//! `payload_view::<T>()`, kafka-python's `value_deserializer`).
//!
//! ```
//! use odradek_core::payload::{FromPayload, PayloadErrorSource};
//!
//! /// A big-endian u64 counter.
//! struct Counter(u64);
//!
//! impl FromPayload<'_> for Counter {
//!     type Error = PayloadErrorSource;
//!     fn from_payload(bytes: &[u8]) -> Result<Self, Self::Error> {
//!         let bytes: [u8; 8] = bytes.try_into().map_err(|_| "not 8 bytes")?;
//!         Ok(Counter(u64::from_be_bytes(bytes)))
//!     }
//! }
//! // record.value_as::<Counter>()? then gives Option<Counter>.
//! ```

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;

use bytes::Bytes;

use crate::types::TopicPartition;

/// A type a record's key or value can be read as.
pub trait FromPayload<'a>: Sized {
    /// What a payload that does not fit fails with.
    type Error: Into<PayloadErrorSource>;
    /// Reads `bytes` (the whole key or value).
    fn from_payload(bytes: &'a [u8]) -> Result<Self, Self::Error>;
}

/// The cause inside a [`PayloadError`]: any error type, or a message.
pub type PayloadErrorSource = Box<dyn std::error::Error + Send + Sync>;

impl<'a> FromPayload<'a> for &'a [u8] {
    type Error = Infallible;
    fn from_payload(bytes: &'a [u8]) -> Result<Self, Infallible> {
        Ok(bytes)
    }
}

impl FromPayload<'_> for Vec<u8> {
    type Error = Infallible;
    fn from_payload(bytes: &[u8]) -> Result<Self, Infallible> {
        Ok(bytes.to_vec())
    }
}

impl FromPayload<'_> for Bytes {
    type Error = Infallible;
    fn from_payload(bytes: &[u8]) -> Result<Self, Infallible> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

impl<'a> FromPayload<'a> for &'a str {
    type Error = std::str::Utf8Error;
    fn from_payload(bytes: &'a [u8]) -> Result<Self, Self::Error> {
        std::str::from_utf8(bytes)
    }
}

impl FromPayload<'_> for String {
    type Error = std::str::Utf8Error;
    fn from_payload(bytes: &[u8]) -> Result<Self, Self::Error> {
        std::str::from_utf8(bytes).map(str::to_string)
    }
}

impl<'a> FromPayload<'a> for Cow<'a, str> {
    type Error = std::str::Utf8Error;
    fn from_payload(bytes: &'a [u8]) -> Result<Self, Self::Error> {
        std::str::from_utf8(bytes).map(Cow::Borrowed)
    }
}

/// JSON through serde (the `json` cargo feature): `record.value_as::<Json<Order>>()`.
///
/// ```
/// # #[cfg(feature = "json")] {
/// use odradek_core::payload::{FromPayload, Json};
///
/// #[derive(serde::Deserialize)]
/// struct Order {
///     id: u32,
/// }
/// let Json(order) = Json::<Order>::from_payload(br#"{"id": 7}"#).unwrap();
/// assert_eq!(order.id, 7);
/// # }
/// ```
#[cfg(feature = "json")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json<T>(pub T);

#[cfg(feature = "json")]
impl<'a, T: serde::Deserialize<'a>> FromPayload<'a> for Json<T> {
    type Error = serde_json::Error;
    fn from_payload(bytes: &'a [u8]) -> Result<Self, Self::Error> {
        serde_json::from_slice(bytes).map(Json)
    }
}

/// Which part of a record a [`PayloadError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadPart {
    /// The key.
    Key,
    /// The value.
    Value,
}

impl fmt::Display for PayloadPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadPart::Key => "key",
            PayloadPart::Value => "value",
        })
    }
}

/// A record's key or value could not be read as the type asked for. Only
/// this record is affected: the consumer and its position are not.
#[derive(Debug, thiserror::Error)]
#[error("the {part} of {partition} at offset {offset} is not a valid {type_name}: {source}")]
pub struct PayloadError {
    /// The record's partition.
    pub partition: TopicPartition,
    /// The record's offset.
    pub offset: i64,
    /// Key or value.
    pub part: PayloadPart,
    /// The type asked for.
    pub type_name: &'static str,
    /// Why it did not fit.
    #[source]
    pub source: PayloadErrorSource,
}
