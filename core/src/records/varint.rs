//! Kafka's variable-length integers: unsigned LEB128 groups of seven bits,
//! signed values zig-zag mapped (as in Protocol Buffers).

/// Reads a zig-zag varint (at most 5 bytes) and advances `buf` past it.
///
/// Like the Java client, bits of the fifth byte that do not fit in 32 bits are
/// dropped rather than rejected; only a sixth continuation byte is an error.
#[inline(always)]
pub(crate) fn read_varint(buf: &mut &[u8]) -> Option<i32> {
    // Record lengths, deltas and field lengths nearly always fit in one or
    // two bytes; decode those inline and leave the loop for the rest.
    let bytes: &[u8] = buf;
    match *bytes {
        [b0, ref rest @ ..] if b0 < 0x80 => {
            *buf = rest;
            Some(zigzag32(u32::from(b0)))
        }
        [b0, b1, ref rest @ ..] if b1 < 0x80 => {
            *buf = rest;
            Some(zigzag32(u32::from(b0 & 0x7f) | u32::from(b1) << 7))
        }
        _ => read_varint_slow(buf).map(zigzag32),
    }
}

#[inline(never)]
fn read_varint_slow(buf: &mut &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for (i, &byte) in buf.iter().enumerate().take(5) {
        value |= u32::from(byte & 0x7f).wrapping_shl(7 * i as u32);
        if byte < 0x80 {
            *buf = buf.get(i + 1..)?;
            return Some(value);
        }
    }
    None
}

/// Reads a zig-zag varlong (at most 10 bytes) and advances `buf` past it.
#[inline(always)]
pub(crate) fn read_varlong(buf: &mut &[u8]) -> Option<i64> {
    // Timestamp deltas within a batch are usually under a few seconds.
    let bytes: &[u8] = buf;
    match *bytes {
        [b0, ref rest @ ..] if b0 < 0x80 => {
            *buf = rest;
            Some(zigzag64(u64::from(b0)))
        }
        [b0, b1, ref rest @ ..] if b1 < 0x80 => {
            *buf = rest;
            Some(zigzag64(u64::from(b0 & 0x7f) | u64::from(b1) << 7))
        }
        [b0, b1, b2, ref rest @ ..] if b2 < 0x80 => {
            *buf = rest;
            Some(zigzag64(
                u64::from(b0 & 0x7f) | u64::from(b1 & 0x7f) << 7 | u64::from(b2) << 14,
            ))
        }
        _ => read_varlong_slow(buf).map(zigzag64),
    }
}

#[inline(never)]
fn read_varlong_slow(buf: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f).wrapping_shl(7 * i as u32);
        if byte < 0x80 {
            *buf = buf.get(i + 1..)?;
            return Some(value);
        }
    }
    None
}

#[inline(always)]
fn zigzag32(n: u32) -> i32 {
    ((n >> 1) as i32) ^ -((n & 1) as i32)
}

#[inline(always)]
fn zigzag64(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Appends `value` as a zig-zag varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i32) {
    let mut n = ((value << 1) ^ (value >> 31)) as u32;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends `value` as a zig-zag varlong.
pub(crate) fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Encoded size of `value` as a zig-zag varint.
pub(crate) fn varint_len(value: i32) -> usize {
    let n = ((value << 1) ^ (value >> 31)) as u32;
    // Each byte carries seven bits; zero still takes one byte.
    (32 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Encoded size of `value` as a zig-zag varlong.
pub(crate) fn varlong_len(value: i64) -> usize {
    let n = ((value << 1) ^ (value >> 63)) as u64;
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_varints() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (300, &[0xd8, 0x04]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(value, bytes) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out, bytes, "encoding {value}");
            assert_eq!(varint_len(value), bytes.len());
            let mut buf = bytes;
            assert_eq!(read_varint(&mut buf), Some(value));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn varint_errors() {
        let mut empty: &[u8] = &[];
        assert_eq!(read_varint(&mut empty), None);
        let mut unterminated: &[u8] = &[0x80, 0x80];
        assert_eq!(read_varint(&mut unterminated), None);
        let mut too_long: &[u8] = &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(read_varint(&mut too_long), None);
        let mut too_long: &[u8] = &[0x80; 11];
        assert_eq!(read_varlong(&mut too_long), None);
    }

    #[test]
    fn varlong_extremes_round_trip() {
        for value in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            assert_eq!(varlong_len(value), out.len());
            let mut buf = &out[..];
            assert_eq!(read_varlong(&mut buf), Some(value));
            assert!(buf.is_empty());
        }
    }

    proptest::proptest! {
        #[test]
        fn every_varint_round_trips(value: i32, tail: Vec<u8>) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            proptest::prop_assert_eq!(out.len(), varint_len(value));
            out.extend_from_slice(&tail);
            let mut buf = &out[..];
            proptest::prop_assert_eq!(read_varint(&mut buf), Some(value));
            proptest::prop_assert_eq!(buf, &tail[..]);
        }

        #[test]
        fn every_varlong_round_trips(value: i64, tail: Vec<u8>) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            proptest::prop_assert_eq!(out.len(), varlong_len(value));
            out.extend_from_slice(&tail);
            let mut buf = &out[..];
            proptest::prop_assert_eq!(read_varlong(&mut buf), Some(value));
            proptest::prop_assert_eq!(buf, &tail[..]);
        }

        #[test]
        fn small_varints_round_trip(value in -70_000i64..70_000, tail: Vec<u8>) {
            let mut out = Vec::new();
            put_varlong(&mut out, value);
            out.extend_from_slice(&tail);
            let mut buf = &out[..];
            proptest::prop_assert_eq!(read_varlong(&mut buf), Some(value));
            proptest::prop_assert_eq!(buf, &tail[..]);
            let mut out = Vec::new();
            put_varint(&mut out, value as i32);
            let mut buf = &out[..];
            proptest::prop_assert_eq!(read_varint(&mut buf), Some(value as i32));
        }
    }
}
