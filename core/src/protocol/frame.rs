//! Size-prefixed frames: an incremental decoder for bytes as they arrive,
//! and helpers that put a header and body into a frame or take them out.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::api::{ApiKey, Message, Request, RequestBody, ResponseBody};
use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::header::{RequestHeader, ResponseHeader};

/// The default largest frame accepted: 100 MiB, like the Java client's
/// socket receive limit.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 100 * 1024 * 1024;

/// A frame could not be read from the byte stream. The connection it came
/// from cannot be trusted any more and should be closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("frame size {0} is negative")]
    NegativeSize(i32),
    /// The size prefix exceeds the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// The announced size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Splits a byte stream into frames, accepting input cut at any byte.
///
/// The size prefix is checked against the maximum before any room is made
/// for the frame, and the buffer only grows with bytes that actually
/// arrive, so a peer announcing a huge frame costs nothing until it sends it.
/// A frame that arrives in pieces is assembled in a buffer of its own that
/// grows by doubling but never past the announced size, so a received
/// frame holds exactly its own bytes, never a doubled capacity or the start
/// of the next frame (a fetch response stays alive while any record in it
/// is buffered, and is counted at its size).
///
/// ```
/// use odradek_core::protocol::FrameDecoder;
///
/// let mut frames = FrameDecoder::new(1024);
/// frames.push(&[0, 0, 0, 3, b'a']);
/// assert_eq!(frames.next_frame().unwrap(), None);
/// frames.push(&[b'b', b'c', 0, 0]);
/// assert_eq!(frames.next_frame().unwrap().unwrap(), &b"abc"[..]);
/// assert_eq!(frames.next_frame().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_size: usize,
    /// Received bytes not yet in a frame: size prefixes, and frames that
    /// arrived whole.
    buf: BytesMut,
    /// The frame being assembled, once its prefix was read and it did not
    /// arrive whole.
    body: Vec<u8>,
    /// Size of the frame in `body`.
    pending: Option<usize>,
}

impl FrameDecoder {
    /// A decoder that rejects frames larger than `max_frame_size` bytes.
    pub fn new(max_frame_size: usize) -> Self {
        Self {
            max_frame_size,
            buf: BytesMut::new(),
            body: Vec::new(),
            pending: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if let Some(size) = self.pending {
            let take = (size - self.body.len()).min(bytes.len());
            let needed = self.body.len() + take;
            if needed > self.body.capacity() {
                let target = needed.max(self.body.capacity() * 2).min(size);
                self.body.reserve_exact(target - self.body.len());
            }
            self.body.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned in a frame (including a partial prefix).
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.body.len()
    }

    /// The next complete frame (without its size prefix), if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(size) = self.pending {
            if self.body.len() < size {
                return Ok(None);
            }
            self.pending = None;
            return Ok(Some(Bytes::from(std::mem::take(&mut self.body))));
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let raw = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let size = usize::try_from(raw).map_err(|_| FrameError::NegativeSize(raw))?;
        if size > self.max_frame_size {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        self.buf.advance(4);
        if self.buf.len() >= size {
            return Ok(Some(self.buf.split_to(size).freeze()));
        }
        // The rest comes later: assemble it apart from the read buffer.
        self.body = Vec::with_capacity(self.buf.len());
        self.body.extend_from_slice(&self.buf);
        self.buf.clear();
        self.pending = Some(size);
        Ok(None)
    }
}

/// Writes the 4-byte size prefix for everything written by `body`.
fn sized<E>(
    out: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    let start = out.len();
    out.put_i32(0);
    body(out)?;
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Appends a complete request frame: size prefix, header, body at `version`.
pub fn encode_request<R: Request>(
    out: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    request: &R,
    version: i16,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = sized(out, |out| {
        RequestHeader {
            api_key: R::API_KEY.code(),
            api_version: version,
            correlation_id,
            client_id: client_id.map(str::to_owned),
        }
        .encode(out, R::API_KEY.request_header_version(version))?;
        request.encode(out, version)
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a complete response frame (the broker's side, for tests and tools).
pub fn encode_response<M: Message>(
    out: &mut BytesMut,
    api: ApiKey,
    correlation_id: i32,
    response: &M,
    version: i16,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = sized(out, |out| {
        ResponseHeader { correlation_id }.encode(out, api.response_header_version(version));
        response.encode(out, version)
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The correlation id of a response frame, read without decoding the rest:
/// it is what tells the caller which request, API and version the frame
/// answers.
pub fn response_correlation_id(frame: &[u8]) -> Option<i32> {
    let bytes: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(i32::from_be_bytes(bytes))
}

/// Decodes a response frame (without its size prefix) to request `R` sent
/// at `version`. The body must fill the frame exactly.
pub fn decode_response<R: Request>(
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, R::Response), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))?;
    let at = 4;
    let body = R::Response::decode_exact(frame, version).map_err(|mut e| {
        e.offset += at;
        e
    })?;
    Ok((header, body))
}

/// Decodes a response frame for any API, chosen at run time.
pub fn decode_response_body(
    api: ApiKey,
    mut frame: Bytes,
    version: i16,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let total = frame.len();
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
    let at = total - frame.len();
    let body = ResponseBody::decode(api, frame, version).map_err(|mut e| {
        e.offset += at;
        e
    })?;
    Ok((header, body))
}

/// Decodes a request frame (without its size prefix): the header says
/// which API and version the body is.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestBody), DecodeError> {
    let total = frame.len();
    let header = RequestHeader::decode(&mut frame)?;
    let at = total - frame.len();
    let api = ApiKey::from_code(header.api_key).ok_or_else(|| {
        DecodeError::new(DecodeErrorKind::UnknownApiKey(header.api_key), 0)
            .in_message("RequestHeader", 1)
    })?;
    let body = RequestBody::decode(api, frame, header.api_version).map_err(|mut e| {
        e.offset += at;
        e
    })?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_every_byte() {
        let mut stream = Vec::new();
        for payload in [&b"hello"[..], b"", b"x", &[7u8; 300][..]] {
            stream.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            stream.extend_from_slice(payload);
        }
        for chunk in 1..=stream.len() {
            let mut frames = FrameDecoder::new(1024);
            let mut seen = Vec::new();
            for piece in stream.chunks(chunk) {
                frames.push(piece);
                while let Some(frame) = frames.next_frame().unwrap() {
                    seen.push(frame);
                }
            }
            assert_eq!(seen.len(), 4, "chunk size {chunk}");
            assert_eq!(&seen[0][..], b"hello");
            assert!(seen[1].is_empty());
            assert_eq!(&seen[3][..], &[7u8; 300][..]);
            assert_eq!(frames.buffered(), 0);
        }
    }

    #[test]
    fn oversized_and_negative_frames_are_rejected_before_allocation() {
        let mut frames = FrameDecoder::new(100);
        frames.push(&[0, 0, 0, 101]);
        assert_eq!(
            frames.next_frame(),
            Err(FrameError::TooLarge {
                size: 101,
                max: 100
            })
        );
        let mut frames = FrameDecoder::new(100);
        frames.push(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(frames.next_frame(), Err(FrameError::NegativeSize(-2)));
        // A 1 GiB announcement with a default limit is refused at once.
        let mut frames = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        frames.push(&0x4000_0000i32.to_be_bytes());
        assert!(matches!(
            frames.next_frame(),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn correlation_id_is_read_from_the_frame_start() {
        assert_eq!(response_correlation_id(&[0, 0, 1, 0, 9]), Some(256));
        assert_eq!(response_correlation_id(&[0, 0, 1]), None);
    }
}
