//! Version ranges, version negotiation, and small value types of the wire
//! format (UUIDs, secret byte strings).

use std::fmt;

use super::error::UnsupportedVersion;

/// An inclusive range of API versions. Empty when `min > max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VersionRange {
    /// Lowest version, inclusive.
    pub min: i16,
    /// Highest version, inclusive.
    pub max: i16,
}

impl VersionRange {
    /// The range that contains no version.
    pub const NONE: VersionRange = VersionRange { min: 0, max: -1 };

    /// The range `min..=max`.
    pub const fn new(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    /// True if `version` lies in the range.
    pub const fn contains(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// True if the range holds no version.
    pub const fn is_empty(self) -> bool {
        self.min > self.max
    }

    /// The versions in both ranges, if any.
    pub fn intersect(self, other: VersionRange) -> Option<VersionRange> {
        let both = VersionRange::new(self.min.max(other.min), self.max.min(other.max));
        (!both.is_empty()).then_some(both)
    }

    /// Every version in the range, lowest first.
    pub fn iter(self) -> impl Iterator<Item = i16> {
        self.min..=self.max
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("none")
        } else if self.max == i16::MAX {
            write!(f, "{}+", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// Picks the highest version both sides support.
///
/// `theirs` is what the broker advertised for the API in its ApiVersions
/// reply, or `None` when it did not list the API at all.
///
/// ```
/// use odradek_core::protocol::{negotiate, VersionRange};
///
/// let ours = VersionRange::new(4, 18);
/// assert_eq!(negotiate("Fetch", ours, Some(VersionRange::new(0, 12))), Ok(12));
/// let err = negotiate("Fetch", ours, Some(VersionRange::new(0, 3))).unwrap_err();
/// assert!(err.to_string().contains("Fetch"));
/// ```
pub fn negotiate(
    api: &'static str,
    ours: VersionRange,
    theirs: Option<VersionRange>,
) -> Result<i16, UnsupportedVersion> {
    theirs
        .and_then(|theirs| ours.intersect(theirs))
        .map(|both| both.max)
        .ok_or(UnsupportedVersion { api, ours, theirs })
}

/// A 128-bit UUID as Kafka sends it (topic ids, among others): 16 bytes,
/// most significant first.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "no id".
    pub const NIL: Uuid = Uuid([0; 16]);

    /// True for the nil UUID.
    pub fn is_nil(&self) -> bool {
        *self == Uuid::NIL
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Bytes that may hold credentials (SASL tokens). They encode like any
/// `bytes` field, but `Debug` shows only their length, so secrets never reach
/// logs or error messages.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(pub bytes::Bytes);

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl From<bytes::Bytes> for SecretBytes {
    fn from(bytes: bytes::Bytes) -> Self {
        SecretBytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_highest_common_version() {
        let ours = VersionRange::new(2, 9);
        assert_eq!(
            negotiate("OffsetCommit", ours, Some(VersionRange::new(0, 8))),
            Ok(8)
        );
        assert_eq!(
            negotiate("OffsetCommit", ours, Some(VersionRange::new(5, 12))),
            Ok(9)
        );
        assert_eq!(
            negotiate("OffsetCommit", ours, Some(VersionRange::new(9, 9))),
            Ok(9)
        );
    }

    #[test]
    fn negotiation_failure_names_the_api_and_both_ranges() {
        let ours = VersionRange::new(3, 13);
        let err = negotiate("Produce", ours, Some(VersionRange::new(0, 2))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no common version of Produce: the broker supports 0-2, Odradek implements 3-13"
        );
        let err = negotiate("Produce", ours, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the broker does not support Produce (Odradek needs versions 3-13)"
        );
    }

    #[test]
    fn secret_bytes_are_redacted_in_debug() {
        let secret = SecretBytes(bytes::Bytes::from_static(b"\0user\0hunter2"));
        let shown = format!("{secret:?}");
        assert_eq!(shown, "SecretBytes(<13 bytes redacted>)");
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn uuid_displays_in_canonical_form() {
        let id = Uuid([
            0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
            0x40, 0x00,
        ]);
        assert_eq!(id.to_string(), "123e4567-e89b-12d3-a456-426614174000");
    }
}
