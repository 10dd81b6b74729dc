//! Helpers for literal-byte tests of messages.

use bytes::{Bytes, BytesMut};

use crate::protocol::Message;

/// Bytes from hex digits; whitespace and `|` separators are ignored, so
/// tests can lay fields out one per line.
pub(crate) fn hex(text: &str) -> Bytes {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| b.is_ascii_hexdigit())
        .map(|b| (b as char).to_digit(16).map_or(0, |d| d as u8))
        .collect();
    assert!(
        digits.len() % 2 == 0,
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| pair[0] << 4 | pair[1])
        .collect()
}

/// `bytes` decodes to `value` at `version`, and `value` encodes to `bytes`.
pub(crate) fn assert_literal<M: Message>(version: i16, bytes: &str, value: &M) {
    let bytes = hex(bytes);
    let decoded = M::decode_exact(bytes.clone(), version)
        .unwrap_or_else(|e| panic!("{} v{version} failed to decode: {e}", M::NAME));
    assert_eq!(&decoded, value, "{} v{version} decoded", M::NAME);
    let mut encoded = BytesMut::new();
    value.encode(&mut encoded, version).unwrap();
    assert_eq!(&encoded[..], &bytes[..], "{} v{version} encoded", M::NAME);
}

/// `bytes` decodes to `value` at `version` (for inputs our encoder would
/// not produce, such as unknown tagged fields or unsorted entries).
pub(crate) fn assert_decodes<M: Message>(version: i16, bytes: &str, value: &M) {
    let decoded = M::decode_exact(hex(bytes), version)
        .unwrap_or_else(|e| panic!("{} v{version} failed to decode: {e}", M::NAME));
    assert_eq!(&decoded, value, "{} v{version} decoded", M::NAME);
}
