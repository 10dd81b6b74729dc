//! Primitive wire types: a bounds-checked reader, a writer, and the
//! [`Wire`] trait that every field type and message struct implements.
//!
//! The Rust type of a field decides its encoding: `String` is a Kafka
//! `string`, `Bytes` is `bytes`, `Option<_>` is the nullable form, `Vec<_>`
//! an array. Whether the compact (flexible-version) encoding is used and
//! whether null is legal come from the [`Cx`] the caller passes in.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::error::{DecodeError, DecodeErrorKind, EncodeError, EncodeErrorKind};
use super::{SecretBytes, Uuid};

/// Where a value sits: the message version, whether that version is
/// flexible (compact lengths, tagged fields), and whether null is legal for
/// the field at this version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cx {
    /// Message version.
    pub version: i16,
    /// Compact encodings and tagged fields are in use.
    pub flexible: bool,
    /// The field may be null at this version.
    pub nullable: bool,
}

impl Cx {
    /// The context for a whole message at `version`.
    pub(crate) fn message(version: i16, flexible: bool) -> Self {
        Self {
            version,
            flexible,
            nullable: false,
        }
    }

    /// The context for one field of the current struct.
    pub(crate) fn field(self, nullable: bool) -> Self {
        Self { nullable, ..self }
    }
}

/// A cursor over an immutable buffer that never reads past its end and knows
/// its offset for error reports. Sub-slices ([`Reader::take`]) share the
/// buffer instead of copying it.
#[derive(Debug)]
pub struct Reader {
    buf: Bytes,
    start_len: usize,
    base: usize,
}

impl Reader {
    /// A reader over `buf`, with offsets counted from its start.
    pub fn new(buf: Bytes) -> Self {
        let start_len = buf.len();
        Self {
            buf,
            start_len,
            base: 0,
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the next byte from the start of the outermost buffer.
    pub fn offset(&self) -> usize {
        self.base + (self.start_len - self.buf.len())
    }

    /// The unread rest, consuming the reader.
    pub fn into_rest(self) -> Bytes {
        self.buf
    }

    /// An error of `kind` at the current offset.
    pub fn error(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(kind, self.offset())
    }

    fn need(&self, needed: usize) -> Result<(), DecodeError> {
        if self.buf.len() < needed {
            Err(self.error(DecodeErrorKind::UnexpectedEnd {
                needed,
                remaining: self.buf.len(),
            }))
        } else {
            Ok(())
        }
    }

    /// Reads an `int8`.
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_i8())
    }

    /// Reads an `int16`.
    pub fn i16(&mut self) -> Result<i16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_i16())
    }

    /// Reads a `uint16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    /// Reads an `int32`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    /// Reads a `uint32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// Reads an `int64`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    /// Reads a `float64`.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.need(8)?;
        Ok(self.buf.get_f64())
    }

    /// Reads an unsigned varint of at most 5 bytes (Kafka's `UNSIGNED_VARINT`).
    pub fn uvarint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            self.need(1)?;
            let byte = self.buf.get_u8();
            // The fifth byte may only carry the top 4 bits of a u32.
            if i == 4 && byte > 0x0f {
                return Err(self.error(DecodeErrorKind::VarintTooLong { max_bytes: 5 }));
            }
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error(DecodeErrorKind::VarintTooLong { max_bytes: 5 }))
    }

    /// Reads an unsigned varlong of at most 10 bytes.
    pub fn uvarlong(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            self.need(1)?;
            let byte = self.buf.get_u8();
            if i == 9 && byte > 0x01 {
                return Err(self.error(DecodeErrorKind::VarintTooLong { max_bytes: 10 }));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error(DecodeErrorKind::VarintTooLong { max_bytes: 10 }))
    }

    /// Reads a zigzag-encoded signed varint (Kafka's `VARINT`).
    pub fn varint(&mut self) -> Result<i32, DecodeError> {
        let raw = self.uvarint()?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Reads a zigzag-encoded signed varlong (Kafka's `VARLONG`).
    pub fn varlong(&mut self) -> Result<i64, DecodeError> {
        let raw = self.uvarlong()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Takes the next `len` bytes as a shared slice of the buffer.
    pub fn take(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        if len > self.buf.len() {
            return Err(self.error(DecodeErrorKind::LengthExceedsInput {
                length: len as u64,
                remaining: self.buf.len(),
            }));
        }
        Ok(self.buf.split_to(len))
    }

    /// A reader over the next `len` bytes, which this reader skips.
    pub fn sub(&mut self, len: usize) -> Result<Reader, DecodeError> {
        let base = self.offset();
        let buf = self.take(len)?;
        Ok(Reader {
            start_len: buf.len(),
            buf,
            base,
        })
    }

    /// Reads a length prefix: `int16`/`int32` in classic versions, an unsigned
    /// varint holding `length + 1` in flexible ones. `None` is the null marker.
    /// A length that cannot fit in the remaining bytes is an error here, before
    /// anything is allocated for it.
    fn length(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let raw: i64 = if flexible {
            i64::from(self.uvarint()?) - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        if raw == -1 {
            return Ok(None);
        }
        if raw < 0 {
            return Err(self.error(DecodeErrorKind::InvalidLength { length: raw }));
        }
        let len = raw as u64;
        if len > self.buf.len() as u64 {
            return Err(self.error(DecodeErrorKind::LengthExceedsInput {
                length: len,
                remaining: self.buf.len(),
            }));
        }
        Ok(Some(len as usize))
    }

    /// Reads a nullable byte string (`bytes`/`records`/`compact_bytes`), zero-copy.
    pub fn nullable_bytes(&mut self, flexible: bool) -> Result<Option<Bytes>, DecodeError> {
        match self.length(flexible, true)? {
            None => Ok(None),
            Some(len) => self.take(len).map(Some),
        }
    }

    /// Reads a nullable string.
    pub fn nullable_string(&mut self, flexible: bool) -> Result<Option<String>, DecodeError> {
        let Some(len) = self.length(flexible, false)? else {
            return Ok(None);
        };
        let at = self.offset();
        let raw = self.take(len)?;
        match std::str::from_utf8(&raw) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(DecodeError::new(DecodeErrorKind::InvalidUtf8, at)),
        }
    }

    /// Reads an array length; see [`Reader::length`]. Every element takes at
    /// least one byte, so a count larger than the remaining bytes is rejected.
    pub fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, DecodeError> {
        self.length(flexible, true)
    }

    /// Fails unless every byte was consumed.
    pub fn expect_end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.error(DecodeErrorKind::TrailingBytes {
                count: self.buf.len(),
            }))
        }
    }
}

/// Appends wire values to a [`BytesMut`].
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut BytesMut,
}

impl<'a> Writer<'a> {
    /// A writer appending to `buf`.
    pub fn new(buf: &'a mut BytesMut) -> Self {
        Self { buf }
    }

    /// Bytes written to the underlying buffer so far (including what was
    /// there before).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when the underlying buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Writes an `int8`.
    pub fn i8(&mut self, v: i8) {
        self.buf.put_i8(v);
    }

    /// Writes an `int16`.
    pub fn i16(&mut self, v: i16) {
        self.buf.put_i16(v);
    }

    /// Writes a `uint16`.
    pub fn u16(&mut self, v: u16) {
        self.buf.put_u16(v);
    }

    /// Writes an `int32`.
    pub fn i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    /// Writes a `uint32`.
    pub fn u32(&mut self, v: u32) {
        self.buf.put_u32(v);
    }

    /// Writes an `int64`.
    pub fn i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    /// Writes a `float64`.
    pub fn f64(&mut self, v: f64) {
        self.buf.put_f64(v);
    }

    /// Writes raw bytes.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    /// Writes an unsigned varint.
    pub fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// Writes an unsigned varlong.
    pub fn uvarlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// Writes a zigzag signed varint.
    pub fn varint(&mut self, v: i32) {
        self.uvarint(((v << 1) ^ (v >> 31)) as u32);
    }

    /// Writes a zigzag signed varlong.
    pub fn varlong(&mut self, v: i64) {
        self.uvarlong(((v << 1) ^ (v >> 63)) as u64);
    }

    /// Writes a length prefix, or the null marker for `None`.
    fn length(
        &mut self,
        len: Option<usize>,
        flexible: bool,
        max: usize,
    ) -> Result<(), EncodeError> {
        match len {
            Some(len) if len > max => {
                Err(EncodeError::new(EncodeErrorKind::TooLong { length: len }))
            }
            Some(len) if flexible => {
                self.uvarint(len as u32 + 1);
                Ok(())
            }
            None if flexible => {
                self.uvarint(0);
                Ok(())
            }
            // `max` is i16::MAX for strings, i32::MAX otherwise, so the casts below fit.
            Some(len) if max == i16::MAX as usize => {
                self.i16(len as i16);
                Ok(())
            }
            Some(len) => {
                self.i32(len as i32);
                Ok(())
            }
            None if max == i16::MAX as usize => {
                self.i16(-1);
                Ok(())
            }
            None => {
                self.i32(-1);
                Ok(())
            }
        }
    }

    /// Writes a nullable string.
    pub fn nullable_string(&mut self, s: Option<&str>, flexible: bool) -> Result<(), EncodeError> {
        self.length(s.map(str::len), flexible, i16::MAX as usize)?;
        if let Some(s) = s {
            self.raw(s.as_bytes());
        }
        Ok(())
    }

    /// Writes a nullable byte string.
    pub fn nullable_bytes(&mut self, b: Option<&[u8]>, flexible: bool) -> Result<(), EncodeError> {
        self.length(b.map(<[u8]>::len), flexible, i32::MAX as usize - 1)?;
        if let Some(b) = b {
            self.raw(b);
        }
        Ok(())
    }

    /// Writes an array length, or the null marker.
    pub fn array_len(&mut self, len: Option<usize>, flexible: bool) -> Result<(), EncodeError> {
        self.length(len, flexible, i32::MAX as usize - 1)
    }
}

/// A type with a Kafka wire encoding. Implemented by primitive field types and,
/// through the `wire_struct!` macro, by every message struct.
///
/// This trait is sealed inside the crate: users go through
/// [`Message`](crate::protocol::Message) and the frame helpers.
pub trait Wire: Sized {
    /// Appends the encoding of `self`.
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError>;
    /// Decodes a value.
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError>;
}

macro_rules! fixed_width {
    ($($ty:ty => $method:ident),* $(,)?) => {$(
        impl Wire for $ty {
            #[inline]
            fn write(&self, w: &mut Writer<'_>, _cx: Cx) -> Result<(), EncodeError> {
                w.$method(*self);
                Ok(())
            }
            #[inline]
            fn read(r: &mut Reader, _cx: Cx) -> Result<Self, DecodeError> {
                r.$method()
            }
        }
    )*};
}

fixed_width!(i8 => i8, i16 => i16, u16 => u16, i32 => i32, u32 => u32, i64 => i64, f64 => f64);

impl Wire for bool {
    fn write(&self, w: &mut Writer<'_>, _cx: Cx) -> Result<(), EncodeError> {
        w.i8(i8::from(*self));
        Ok(())
    }
    fn read(r: &mut Reader, _cx: Cx) -> Result<Self, DecodeError> {
        // Any non-zero byte is true, as in the Java client.
        Ok(r.i8()? != 0)
    }
}

impl Wire for Uuid {
    fn write(&self, w: &mut Writer<'_>, _cx: Cx) -> Result<(), EncodeError> {
        w.raw(&self.0);
        Ok(())
    }
    fn read(r: &mut Reader, _cx: Cx) -> Result<Self, DecodeError> {
        let raw = r.take(16)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(&raw);
        Ok(Uuid(out))
    }
}

impl Wire for String {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        w.nullable_string(Some(self), cx.flexible)
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        let at = r.offset();
        r.nullable_string(cx.flexible)?
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull, at))
    }
}

impl Wire for Option<String> {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        if self.is_none() && !cx.nullable {
            return Err(EncodeError::new(EncodeErrorKind::NullNotAllowed));
        }
        w.nullable_string(self.as_deref(), cx.flexible)
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        let at = r.offset();
        let value = r.nullable_string(cx.flexible)?;
        if value.is_none() && !cx.nullable {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedNull, at));
        }
        Ok(value)
    }
}

impl Wire for Bytes {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        w.nullable_bytes(Some(self), cx.flexible)
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        let at = r.offset();
        r.nullable_bytes(cx.flexible)?
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnexpectedNull, at))
    }
}

impl Wire for SecretBytes {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        self.0.write(w, cx)
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        Bytes::read(r, cx).map(SecretBytes)
    }
}

impl Wire for Option<Bytes> {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        if self.is_none() && !cx.nullable {
            return Err(EncodeError::new(EncodeErrorKind::NullNotAllowed));
        }
        w.nullable_bytes(self.as_deref(), cx.flexible)
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        let at = r.offset();
        let value = r.nullable_bytes(cx.flexible)?;
        if value.is_none() && !cx.nullable {
            return Err(DecodeError::new(DecodeErrorKind::UnexpectedNull, at));
        }
        Ok(value)
    }
}

/// Initial capacity for a decoded array of `T`: at most as many bytes as
/// remain in the input, so a claimed count costs nothing until its elements
/// actually parse; past that the vector grows with the elements parsed.
fn initial_capacity<T>(count: usize, remaining: usize) -> usize {
    count.min(remaining / std::mem::size_of::<T>().max(1))
}

fn write_elements<T: Wire>(items: &[T], w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
    w.array_len(Some(items.len()), cx.flexible)?;
    // Elements of an array are never null themselves.
    let element_cx = cx.field(false);
    items.iter().try_for_each(|item| item.write(w, element_cx))
}

fn read_elements<T: Wire>(r: &mut Reader, count: usize, cx: Cx) -> Result<Vec<T>, DecodeError> {
    let element_cx = cx.field(false);
    let mut items = Vec::with_capacity(initial_capacity::<T>(count, r.remaining()));
    for _ in 0..count {
        items.push(T::read(r, element_cx)?);
    }
    Ok(items)
}

impl<T: Wire> Wire for Vec<T> {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        write_elements(self, w, cx)
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        let at = r.offset();
        match r.array_len(cx.flexible)? {
            Some(count) => read_elements(r, count, cx),
            None => Err(DecodeError::new(DecodeErrorKind::UnexpectedNull, at)),
        }
    }
}

impl<T: Wire> Wire for Option<Vec<T>> {
    fn write(&self, w: &mut Writer<'_>, cx: Cx) -> Result<(), EncodeError> {
        match self {
            Some(items) => write_elements(items, w, cx),
            None if cx.nullable => w.array_len(None, cx.flexible),
            None => Err(EncodeError::new(EncodeErrorKind::NullNotAllowed)),
        }
    }
    fn read(r: &mut Reader, cx: Cx) -> Result<Self, DecodeError> {
        let at = r.offset();
        match r.array_len(cx.flexible)? {
            Some(count) => read_elements(r, count, cx).map(Some),
            None if cx.nullable => Ok(None),
            None => Err(DecodeError::new(DecodeErrorKind::UnexpectedNull, at)),
        }
    }
}

/// Random values for property tests, valid for a given version.
#[cfg(test)]
pub(crate) mod sample {
    use super::*;
    use proptest::prelude::Rng;
    use proptest::test_runner::TestRng;

    /// A type that can produce random values that are legal at a version.
    pub(crate) trait Sample: Sized {
        fn sample(rng: &mut TestRng, cx: Cx) -> Self;

        /// Whether the value may be encoded in `cx` (only null can be illegal).
        fn legal(&self, _cx: Cx) -> bool {
            true
        }
    }

    macro_rules! sample_int {
        ($($ty:ty),*) => {$(
            impl Sample for $ty {
                fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
                    // Mostly small values (short varints), often the sentinels
                    // schemas use as defaults (-1, 0, the extremes), some anything.
                    match rng.random_range(0..10) {
                        0 => -1,
                        1 => 0,
                        2 => <$ty>::MIN,
                        3 => <$ty>::MAX,
                        4..=6 => rng.random_range(-2..100) as $ty,
                        _ => rng.random(),
                    }
                }
            }
        )*};
    }
    sample_int!(i8, i16, i32, i64);

    impl Sample for u16 {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            rng.random()
        }
    }

    impl Sample for u32 {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            rng.random()
        }
    }

    impl Sample for f64 {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            // Finite values only: NaN != NaN would break equality checks.
            rng.random_range(-1.0e9..1.0e9)
        }
    }

    impl Sample for bool {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            rng.random()
        }
    }

    impl Sample for Uuid {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            Uuid(rng.random())
        }
    }

    const CHARS: &[char] = &['a', 'b', 'z', 'A', '0', '-', '.', '_', 'é', '☃', '𝄞'];

    impl Sample for String {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            let len = rng.random_range(0..8);
            (0..len)
                .map(|_| CHARS[rng.random_range(0..CHARS.len())])
                .collect()
        }
    }

    impl Sample for Bytes {
        fn sample(rng: &mut TestRng, _cx: Cx) -> Self {
            let len = rng.random_range(0..16);
            (0..len).map(|_| rng.random::<u8>()).collect()
        }
    }

    impl Sample for SecretBytes {
        fn sample(rng: &mut TestRng, cx: Cx) -> Self {
            SecretBytes(Bytes::sample(rng, cx))
        }
    }

    fn maybe<T>(rng: &mut TestRng, cx: Cx, f: impl FnOnce(&mut TestRng) -> T) -> Option<T> {
        if cx.nullable && rng.random_bool(0.25) {
            None
        } else {
            Some(f(rng))
        }
    }

    impl Sample for Option<String> {
        fn legal(&self, cx: Cx) -> bool {
            self.is_some() || cx.nullable
        }
        fn sample(rng: &mut TestRng, cx: Cx) -> Self {
            maybe(rng, cx, |rng| String::sample(rng, cx))
        }
    }

    impl Sample for Option<Bytes> {
        fn legal(&self, cx: Cx) -> bool {
            self.is_some() || cx.nullable
        }
        fn sample(rng: &mut TestRng, cx: Cx) -> Self {
            maybe(rng, cx, |rng| Bytes::sample(rng, cx))
        }
    }

    impl<T: Sample> Sample for Vec<T> {
        fn sample(rng: &mut TestRng, cx: Cx) -> Self {
            let len = rng.random_range(0..4);
            let element_cx = cx.field(false);
            (0..len).map(|_| T::sample(rng, element_cx)).collect()
        }
    }

    impl<T: Sample> Sample for Option<Vec<T>> {
        fn legal(&self, cx: Cx) -> bool {
            self.is_some() || cx.nullable
        }
        fn sample(rng: &mut TestRng, cx: Cx) -> Self {
            maybe(rng, cx, |rng| Vec::sample(rng, cx))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes))
    }

    #[test]
    fn varints_match_kafka_examples() {
        // Zigzag: 0 → 0, -1 → 1, 1 → 2, -64 → 127, 64 → 128 (two bytes).
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for &(value, bytes) in cases {
            let mut out = BytesMut::new();
            Writer::new(&mut out).varint(value);
            assert_eq!(&out[..], bytes, "encoding {value}");
            assert_eq!(
                Reader::new(Bytes::copy_from_slice(bytes)).varint().unwrap(),
                value
            );
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        let err = reader(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
            .uvarint()
            .unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::VarintTooLong { max_bytes: 5 });
        let err = reader(&[0xff, 0xff, 0xff, 0xff, 0x1f])
            .uvarint()
            .unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::VarintTooLong { max_bytes: 5 });
        let err = reader(&[0xff; 11]).uvarlong().unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::VarintTooLong { max_bytes: 10 });
    }

    #[test]
    fn lengths_are_checked_before_allocation() {
        // A classic array claiming 2^31-1 elements with 2 bytes left.
        let cx = Cx::message(0, false);
        let err = <Vec<i32>>::read(&mut reader(&[0x7f, 0xff, 0xff, 0xff, 0, 0]), cx).unwrap_err();
        assert_eq!(
            err.kind,
            DecodeErrorKind::LengthExceedsInput {
                length: i32::MAX as u64,
                remaining: 2
            }
        );
        assert_eq!(err.offset, 4);
        let err = String::read(&mut reader(&[0x00, 0x05, b'a']), cx).unwrap_err();
        assert_eq!(
            err.kind,
            DecodeErrorKind::LengthExceedsInput {
                length: 5,
                remaining: 1
            }
        );
        let err = String::read(&mut reader(&[0xff, 0xfe]), cx).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::InvalidLength { length: -2 });
    }

    #[test]
    fn null_is_only_accepted_where_allowed() {
        let strict = Cx::message(0, true);
        let lenient = strict.field(true);
        assert_eq!(
            <Option<String>>::read(&mut reader(&[0x00]), lenient).unwrap(),
            None
        );
        let err = <Option<String>>::read(&mut reader(&[0x00]), strict).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnexpectedNull);
        let err = String::read(&mut reader(&[0xff, 0xff]), Cx::message(0, false)).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnexpectedNull);
        let mut out = BytesMut::new();
        let err = None::<String>
            .write(&mut Writer::new(&mut out), strict)
            .unwrap_err();
        assert_eq!(err.kind, EncodeErrorKind::NullNotAllowed);
    }

    #[test]
    fn compact_and_classic_strings() {
        let mut out = BytesMut::new();
        let mut w = Writer::new(&mut out);
        "ab".to_string()
            .write(&mut w, Cx::message(0, false))
            .unwrap();
        "ab".to_string()
            .write(&mut w, Cx::message(0, true))
            .unwrap();
        assert_eq!(&out[..], &[0x00, 0x02, b'a', b'b', 0x03, b'a', b'b']);
        let err = reader(&[0x02, 0xff]).nullable_string(true).unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::InvalidUtf8);
        assert_eq!(err.offset, 1);
    }

    #[test]
    fn over_long_strings_do_not_encode() {
        let mut out = BytesMut::new();
        let long = "x".repeat(i16::MAX as usize + 1);
        let err = long
            .write(&mut Writer::new(&mut out), Cx::message(0, false))
            .unwrap_err();
        assert_eq!(err.kind, EncodeErrorKind::TooLong { length: long.len() });
    }
}
