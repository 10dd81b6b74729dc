//! Typed codec errors: what went wrong, in which message, version, field and
//! byte offset.

use std::fmt;

/// A message could not be decoded.
///
/// Carries the API (or embedded-protocol) name, the version being decoded,
/// the innermost field (`Struct.field`) and the byte offset from the start of
/// the decoded buffer where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode {api} v{version}: {kind} (field `{field}`, byte {offset})")]
pub struct DecodeError {
    /// The message being decoded, e.g. `FetchResponse`.
    pub api: &'static str,
    /// The version it was decoded at.
    pub version: i16,
    /// The innermost field being decoded, `Struct.field`; empty when the
    /// failure is not inside a field (e.g. trailing bytes after a message).
    pub field: &'static str,
    /// Byte offset from the start of the decoded buffer.
    pub offset: usize,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended before a value was complete.
    #[error("input ended: needed {needed} more bytes, {remaining} left")]
    UnexpectedEnd {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length prefix is negative (and not the null marker where null is allowed).
    #[error("invalid length {length}")]
    InvalidLength {
        /// The length as read.
        length: i64,
    },
    /// A length or element count claims more than the remaining input could hold.
    #[error("length {length} exceeds the {remaining} bytes left")]
    LengthExceedsInput {
        /// The claimed length or count.
        length: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A varint ran past its maximum width.
    #[error("varint longer than {max_bytes} bytes")]
    VarintTooLong {
        /// The widest legal encoding.
        max_bytes: usize,
    },
    /// A string is not UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A null value where the version does not allow null.
    #[error("null is not allowed here at this version")]
    UnexpectedNull,
    /// A tagged field's declared size does not match its content.
    #[error("tagged field {tag} declared {declared} bytes but its value used {used}")]
    TaggedFieldSize {
        /// The tag.
        tag: u32,
        /// Declared size.
        declared: usize,
        /// Bytes the value actually used.
        used: usize,
    },
    /// Bytes were left over after the message ended.
    #[error("{count} unexpected bytes after the end of the message")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// This codec does not implement the requested version.
    #[error("version {version} is outside the supported range {min}..={max}")]
    UnsupportedVersion {
        /// Requested version.
        version: i16,
        /// Lowest supported.
        min: i16,
        /// Highest supported.
        max: i16,
    },
    /// The API key in a request header is not one this codec knows.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
}

impl DecodeError {
    /// A new error with no field or API attached yet; they are filled in as
    /// the error travels out of the decoder.
    pub(crate) fn new(kind: DecodeErrorKind, offset: usize) -> Self {
        Self {
            api: "",
            version: -1,
            field: "",
            offset,
            kind,
        }
    }

    /// Names the innermost field, unless a deeper field already did.
    pub(crate) fn in_field(mut self, field: &'static str) -> Self {
        if self.field.is_empty() {
            self.field = field;
        }
        self
    }

    /// Names the message and version.
    pub(crate) fn in_message(mut self, api: &'static str, version: i16) -> Self {
        self.api = api;
        self.version = version;
        self
    }
}

/// A message could not be encoded at the requested version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {api} v{version}: {kind} (field `{field}`)")]
pub struct EncodeError {
    /// The message being encoded.
    pub api: &'static str,
    /// The version requested.
    pub version: i16,
    /// The innermost field, `Struct.field`, or empty.
    pub field: &'static str,
    /// What was wrong.
    pub kind: EncodeErrorKind,
}

/// Why a value cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeErrorKind {
    /// The field is `None` but the version has no way to express null.
    #[error("null is not allowed at this version")]
    NullNotAllowed,
    /// A string, byte string or array is longer than its length prefix can say.
    #[error("length {length} does not fit the length prefix")]
    TooLong {
        /// The length.
        length: usize,
    },
    /// This codec does not implement the requested version.
    #[error("version {version} is outside the supported range {min}..={max}")]
    UnsupportedVersion {
        /// Requested version.
        version: i16,
        /// Lowest supported.
        min: i16,
        /// Highest supported.
        max: i16,
    },
}

impl EncodeError {
    pub(crate) fn new(kind: EncodeErrorKind) -> Self {
        Self {
            api: "",
            version: -1,
            field: "",
            kind,
        }
    }

    pub(crate) fn in_field(mut self, field: &'static str) -> Self {
        if self.field.is_empty() {
            self.field = field;
        }
        self
    }

    pub(crate) fn in_message(mut self, api: &'static str, version: i16) -> Self {
        self.api = api;
        self.version = version;
        self
    }
}

/// No version of an API is supported by both sides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnsupportedVersion {
    /// The API that cannot be used.
    pub api: &'static str,
    /// The versions Odradek implements.
    pub ours: crate::protocol::VersionRange,
    /// The versions the broker advertised, or `None` if it does not offer the API.
    pub theirs: Option<crate::protocol::VersionRange>,
}

impl fmt::Display for UnsupportedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.theirs {
            None => write!(
                f,
                "the broker does not support {} (Odradek needs versions {})",
                self.api, self.ours
            ),
            Some(theirs) => write!(
                f,
                "no common version of {}: the broker supports {}, Odradek implements {}",
                self.api, theirs, self.ours
            ),
        }
    }
}
