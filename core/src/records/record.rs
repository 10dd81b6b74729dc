//! Records of a decoded batch: lazy iteration over zero-copy views.

use std::fmt;
use std::iter::FusedIterator;

use bytes::Bytes;

use super::RecordsError;
use super::legacy;
use super::varint::{read_varint, read_varlong};

/// The records of one batch, decompressed if they were compressed, ready to
/// iterate.
///
/// Records are parsed lazily as they are iterated, so a malformed record is
/// reported by the iterator when it is reached; iteration stops after it.
/// Obtain one with [`RecordBatch::records`](super::RecordBatch::records).
///
/// Iterating `&Records` yields borrowed [`RecordRef`]s and allocates nothing;
/// iterating `Records` by value yields owned [`Record`]s, each a [`Bytes`]
/// view into the same buffer.
#[derive(Clone)]
pub struct Records {
    data: Bytes,
    ctx: Context,
}

/// What the iterator needs to know about the batch beyond its bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context {
    pub(crate) layout: Layout,
    pub(crate) base_offset: i64,
    pub(crate) base_timestamp: i64,
    /// For LogAppendTime batches, the timestamp every record takes.
    pub(crate) timestamp_override: Option<i64>,
    pub(crate) count: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Magic 2 records.
    V2,
    /// A legacy message set; each entry's offset plus `offset_adjust` is its
    /// absolute offset (magic 1 compressed sets store relative offsets).
    Legacy { offset_adjust: i64 },
}

impl Records {
    pub(crate) fn new(data: Bytes, ctx: Context) -> Self {
        Records { data, ctx }
    }

    /// Iterates the records as borrowed views, without allocating.
    pub fn iter(&self) -> RecordsIter<'_> {
        RecordsIter {
            data: &self.data,
            rest: &self.data,
            cursor: Cursor::new(self.ctx),
        }
    }

    /// The number of records the batch header declares.
    ///
    /// The iterator reports a typed error if the data holds fewer records
    /// than this, or bytes beyond them.
    pub fn declared_count(&self) -> u32 {
        self.ctx.count
    }

    /// The buffer all records point into: the decompressed records, or for
    /// an uncompressed batch a view into the fetched bytes (which then stay
    /// alive, whole, as long as any record of them does).
    pub fn buffer(&self) -> &Bytes {
        &self.data
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("base_offset", &self.ctx.base_offset)
            .field("declared_count", &self.ctx.count)
            .field("buffer_len", &self.data.len())
            .finish()
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = Result<RecordRef<'a>, RecordsError>;
    type IntoIter = RecordsIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Records {
    type Item = Result<Record, RecordsError>;
    type IntoIter = RecordsIntoIter;

    fn into_iter(self) -> Self::IntoIter {
        RecordsIntoIter {
            cursor: Cursor::new(self.ctx),
            data: self.data,
            pos: 0,
        }
    }
}

/// A record parsed out of the buffer, before it is wrapped for the caller.
#[derive(Clone, Copy)]
struct RawRecord<'a> {
    /// The whole record after its length: every other part lies inside.
    body: &'a [u8],
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Headers<'a>,
}

/// Iteration state shared by the borrowing and the owning iterator.
#[derive(Clone, Debug)]
struct Cursor {
    ctx: Context,
    index: u32,
    done: bool,
}

impl Cursor {
    fn new(ctx: Context) -> Self {
        Cursor {
            ctx,
            index: 0,
            done: false,
        }
    }

    /// Parses the next record from `rest`, the unread tail of a `data_len`-byte buffer.
    #[inline(always)]
    fn next<'a>(
        &mut self,
        rest: &mut &'a [u8],
        data_len: usize,
    ) -> Option<Result<RawRecord<'a>, RecordsError>> {
        if self.done {
            return None;
        }
        let position = data_len - rest.len();
        if self.index == self.ctx.count {
            self.done = true;
            if rest.is_empty() {
                return None;
            }
            return Some(Err(
                self.error(position, "bytes left after the declared record count")
            ));
        }
        let parsed = match self.ctx.layout {
            Layout::V2 => parse_v2(rest, &self.ctx),
            Layout::Legacy { offset_adjust } => parse_legacy(rest, &self.ctx, offset_adjust),
        };
        match parsed {
            Ok(record) => {
                self.index += 1;
                Some(Ok(record))
            }
            Err(reason) => {
                self.done = true;
                Some(Err(self.error(position, reason)))
            }
        }
    }

    #[cold]
    fn error(&self, position: usize, reason: &'static str) -> RecordsError {
        RecordsError::MalformedRecord {
            base_offset: self.ctx.base_offset,
            index: self.index,
            position,
            reason,
        }
    }

    fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            (self.ctx.count - self.index) as usize
        }
    }
}

#[inline(always)]
fn parse_v2<'a>(rest: &mut &'a [u8], ctx: &Context) -> Result<RawRecord<'a>, &'static str> {
    let len = read_varint(rest).ok_or("truncated record length")?;
    let len = usize::try_from(len).map_err(|_| "negative record length")?;
    let (mut body, after) = rest
        .split_at_checked(len)
        .ok_or("record length runs past the end of the batch")?;
    *rest = after;
    let whole = body;

    // The record attributes byte is unused by every format version so far.
    body = body.get(1..).ok_or("record shorter than its attributes")?;
    let timestamp_delta = read_varlong(&mut body).ok_or("truncated timestamp delta")?;
    let offset_delta = read_varint(&mut body).ok_or("truncated offset delta")?;
    let key = read_nullable(&mut body, &KEY)?;
    let value = read_nullable(&mut body, &VALUE)?;
    let header_count = read_varint(&mut body).ok_or("truncated header count")?;
    let header_count = u32::try_from(header_count).map_err(|_| "negative header count")?;
    if header_count == 0 {
        if !body.is_empty() {
            return Err("bytes left after the record's fields");
        }
    } else {
        validate_headers(body, header_count)?;
    }

    let offset = ctx
        .base_offset
        .checked_add(i64::from(offset_delta))
        .ok_or("record offset overflows")?;
    let timestamp = match ctx.timestamp_override {
        Some(t) => t,
        None => ctx.base_timestamp.wrapping_add(timestamp_delta),
    };
    Ok(RawRecord {
        body: whole,
        offset,
        timestamp,
        key,
        value,
        headers: Headers {
            data: body,
            count: header_count,
        },
    })
}

/// Error messages for one nullable field, so the hot path passes no strings around.
struct FieldErrors {
    truncated: &'static str,
    negative: &'static str,
    overrun: &'static str,
}

const KEY: FieldErrors = FieldErrors {
    truncated: "truncated key length",
    negative: "negative key length",
    overrun: "key runs past the end of the record",
};

const VALUE: FieldErrors = FieldErrors {
    truncated: "truncated value length",
    negative: "negative value length",
    overrun: "value runs past the end of the record",
};

#[inline(always)]
fn read_nullable<'a>(
    buf: &mut &'a [u8],
    errors: &FieldErrors,
) -> Result<Option<&'a [u8]>, &'static str> {
    let len = read_varint(buf).ok_or(errors.truncated)?;
    if len < 0 {
        return if len == -1 {
            Ok(None)
        } else {
            Err(errors.negative)
        };
    }
    let (bytes, rest) = buf.split_at_checked(len as usize).ok_or(errors.overrun)?;
    *buf = rest;
    Ok(Some(bytes))
}

/// Checks that `data` is exactly `count` well-formed headers, so iterating
/// them later cannot fail.
fn validate_headers(mut data: &[u8], count: u32) -> Result<(), &'static str> {
    for _ in 0..count {
        parse_header(&mut data)?;
    }
    if data.is_empty() {
        Ok(())
    } else {
        Err("bytes left after the record's headers")
    }
}

#[inline]
fn parse_header<'a>(data: &mut &'a [u8]) -> Result<Header<'a>, &'static str> {
    let key_len = read_varint(data).ok_or("truncated header key length")?;
    let key_len = usize::try_from(key_len).map_err(|_| "negative header key length")?;
    let (key, rest) = data
        .split_at_checked(key_len)
        .ok_or("header key runs past the end of the record")?;
    *data = rest;
    let value_len = read_varint(data).ok_or("truncated header value length")?;
    let value = match value_len {
        -1 => None,
        n if n < 0 => return Err("negative header value length"),
        n => {
            let (value, rest) = data
                .split_at_checked(n as usize)
                .ok_or("header value runs past the end of the record")?;
            *data = rest;
            Some(value)
        }
    };
    Ok(Header { key, value })
}

fn parse_legacy<'a>(
    rest: &mut &'a [u8],
    ctx: &Context,
    offset_adjust: i64,
) -> Result<RawRecord<'a>, &'static str> {
    let message = legacy::parse_message(rest)?;
    let offset = message
        .offset
        .checked_add(offset_adjust)
        .ok_or("record offset overflows")?;
    let timestamp = match (message.magic, ctx.timestamp_override) {
        (0, _) => super::NO_TIMESTAMP,
        (_, Some(t)) => t,
        (_, None) => message.timestamp,
    };
    Ok(RawRecord {
        body: message.crc_covered,
        offset,
        timestamp,
        key: message.key,
        value: message.value,
        headers: Headers::default(),
    })
}

/// Iterator over the records of a [`Records`] as borrowed [`RecordRef`]s.
#[derive(Clone, Debug)]
pub struct RecordsIter<'a> {
    data: &'a Bytes,
    rest: &'a [u8],
    cursor: Cursor,
}

impl<'a> Iterator for RecordsIter<'a> {
    type Item = Result<RecordRef<'a>, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        Some(
            self.cursor
                .next(&mut self.rest, data.len())?
                .map(|raw| RecordRef { data, raw }),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // The declared count is untrusted: a malformed batch may end early.
        (0, Some(self.cursor.remaining().saturating_add(1)))
    }
}

impl FusedIterator for RecordsIter<'_> {}

/// Iterator over the records of a [`Records`] as owned [`Record`]s.
#[derive(Clone, Debug)]
pub struct RecordsIntoIter {
    data: Bytes,
    pos: usize,
    cursor: Cursor,
}

impl Iterator for RecordsIntoIter {
    type Item = Result<Record, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let data = &self.data;
        let mut rest = data.get(self.pos..).unwrap_or_default();
        let parsed = self.cursor.next(&mut rest, data.len());
        self.pos = data.len() - rest.len();
        Some(parsed?.map(|raw| RecordRef { data, raw }.to_record()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.cursor.remaining().saturating_add(1)))
    }
}

impl FusedIterator for RecordsIntoIter {}

/// A record borrowed from a [`Records`] buffer.
///
/// Reading fields costs nothing; [`RecordRef::to_record`] (or the `*_bytes`
/// methods) turn parts into [`Bytes`] sharing the same buffer, without copying.
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    data: &'a Bytes,
    raw: RawRecord<'a>,
}

impl<'a> RecordRef<'a> {
    /// The record's absolute offset in its partition (base offset + offset delta).
    #[inline]
    pub fn offset(&self) -> i64 {
        self.raw.offset
    }

    /// The record's timestamp in milliseconds since the epoch; for
    /// LogAppendTime batches the batch's max timestamp, and
    /// [`NO_TIMESTAMP`](super::NO_TIMESTAMP) for magic-0 messages.
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.raw.timestamp
    }

    /// The key, or `None` for a null key.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.raw.key
    }

    /// The value, or `None` for a null value (a tombstone on compacted topics).
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.raw.value
    }

    /// The record's headers, in the order they were written.
    #[inline]
    pub fn headers(&self) -> Headers<'a> {
        self.raw.headers
    }

    /// The key as [`Bytes`] sharing the batch buffer.
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.raw.key.map(|k| self.share(k))
    }

    /// The value as [`Bytes`] sharing the batch buffer.
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.raw.value.map(|v| self.share(v))
    }

    /// An owned copy of this record: one [`Bytes`] view of the record's
    /// bytes in the batch buffer, no copy.
    // Inlined, the record is built in place; returned through memory, its
    // stores stall behind the reference count's atomic increment (2x slower).
    #[inline]
    pub fn to_record(&self) -> Record {
        let raw = &self.raw;
        let base = raw.body.as_ptr() as usize;
        // Every part was sliced out of `body` by the parser, and a record is
        // shorter than 2 GiB, so these offsets fit.
        let start = |part: &[u8]| (part.as_ptr() as usize).wrapping_sub(base) as u32;
        let span = |part: &[u8]| Span {
            start: start(part),
            len: part.len() as u32,
        };
        Record {
            offset: raw.offset,
            timestamp: raw.timestamp,
            buf: self.share(raw.body),
            key: raw.key.map(span),
            value: raw.value.map(span),
            headers_start: if raw.headers.is_empty() {
                raw.body.len() as u32
            } else {
                start(raw.headers.data)
            },
            header_count: raw.headers.count,
        }
    }

    #[inline]
    fn share(&self, part: &[u8]) -> Bytes {
        // `Bytes::slice_ref` would do, but it cannot be inlined across
        // crates, and this is the per-record hot path of owned iteration.
        let start = (part.as_ptr() as usize).wrapping_sub(self.data.as_ptr() as usize);
        match start.checked_add(part.len()) {
            Some(end) if !part.is_empty() && end <= self.data.len() => self.data.slice(start..end),
            _ => Bytes::new(),
        }
    }
}

impl fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRef")
            .field("offset", &self.offset())
            .field("timestamp", &self.timestamp())
            .field("key", &self.key().map(Bytes::copy_from_slice))
            .field("value", &self.value().map(Bytes::copy_from_slice))
            .field("headers", &self.headers())
            .finish()
    }
}

/// Where a part lies within [`Record::buf`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        let start = self.start as usize;
        start..start + self.len as usize
    }
}

/// An owned record: a single [`Bytes`] view of its bytes in the fetched or
/// decompressed buffer (no copy), plus where the key, value and headers lie.
///
/// Holding one buffer reference rather than one per part keeps turning
/// records into owned values cheap; [`Record::key_bytes`] and
/// [`Record::value_bytes`] hand out parts as their own [`Bytes`] when needed.
#[derive(Clone, Default)]
pub struct Record {
    offset: i64,
    timestamp: i64,
    buf: Bytes,
    key: Option<Span>,
    value: Option<Span>,
    headers_start: u32,
    header_count: u32,
}

impl Record {
    /// The record's absolute offset in its partition.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Milliseconds since the epoch (see [`RecordRef::timestamp`]).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The key, or `None` for a null key.
    #[inline]
    pub fn key(&self) -> Option<&[u8]> {
        self.key
            .map(|span| self.buf.get(span.range()).unwrap_or_default())
    }

    /// The value, or `None` for a null value.
    #[inline]
    pub fn value(&self) -> Option<&[u8]> {
        self.value
            .map(|span| self.buf.get(span.range()).unwrap_or_default())
    }

    /// The headers, in the order they were written.
    #[inline]
    pub fn headers(&self) -> Headers<'_> {
        Headers {
            data: self
                .buf
                .get(self.headers_start as usize..)
                .unwrap_or_default(),
            count: self.header_count,
        }
    }

    /// The key as its own [`Bytes`], sharing the buffer.
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.key.map(|span| self.part(span))
    }

    /// The value as its own [`Bytes`], sharing the buffer.
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.value.map(|span| self.part(span))
    }

    /// The headers as owned pairs sharing the buffer.
    pub fn header_pairs(&self) -> Vec<(Bytes, Option<Bytes>)> {
        let share = |part: &[u8]| {
            if part.is_empty() {
                Bytes::new()
            } else {
                self.buf.slice_ref(part)
            }
        };
        self.headers()
            .iter()
            .map(|h| (share(h.key), h.value.map(share)))
            .collect()
    }

    fn part(&self, span: Span) -> Bytes {
        let range = span.range();
        if range.is_empty() || range.end > self.buf.len() {
            Bytes::new()
        } else {
            self.buf.slice(range)
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.offset == other.offset
            && self.timestamp == other.timestamp
            && self.key() == other.key()
            && self.value() == other.value()
            && self.headers() == other.headers()
    }
}

impl Eq for Record {}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp)
            .field("key", &self.key().map(Bytes::copy_from_slice))
            .field("value", &self.value().map(Bytes::copy_from_slice))
            .field("headers", &self.headers())
            .finish()
    }
}

/// Record headers, parsed as iterated.
#[derive(Clone, Copy, Default)]
pub struct Headers<'a> {
    data: &'a [u8],
    count: u32,
}

impl<'a> Headers<'a> {
    /// The number of headers.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the headers in order; keys may repeat.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.data,
            remaining: self.count,
        }
    }

    /// The last header with this key, as the Java client's `lastHeader`.
    pub fn last(&self, key: &[u8]) -> Option<Header<'a>> {
        self.iter().filter(|h| h.key == key).last()
    }
}

impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers<'_> {}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One record header.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header key; Kafka clients write UTF-8 strings here.
    pub key: &'a [u8],
    /// The header value, `None` when null.
    pub value: Option<&'a [u8]>,
}

impl<'a> Header<'a> {
    /// The key as a string, if it is valid UTF-8.
    pub fn key_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.key).ok()
    }
}

impl fmt::Debug for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Header")
            .field(&String::from_utf8_lossy(self.key))
            .field(&self.value.map(Bytes::copy_from_slice))
            .finish()
    }
}

/// Iterator over record headers.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // Headers were validated when their record was parsed, so this only
        // stops early on a bug, never on input.
        match parse_header(&mut self.rest) {
            Ok(header) => {
                self.remaining -= 1;
                Some(header)
            }
            Err(_) => {
                self.remaining = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

impl FusedIterator for HeaderIter<'_> {}
