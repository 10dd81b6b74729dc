//! Request and response headers.

use bytes::{Bytes, BytesMut};

use super::api::ApiKey;
use super::error::{DecodeError, DecodeErrorKind, EncodeError};
use super::wire::{Reader, Writer};

/// The header in front of every request body.
///
/// Version 1 is used for classic request versions, version 2 (which adds a
/// tagged-field section) for flexible ones; see
/// [`ApiKey::request_header_version`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The API key number.
    pub api_key: i16,
    /// The version of the request body.
    pub api_version: i16,
    /// Echoed back in the response header, to pair responses with requests.
    pub correlation_id: i32,
    /// Identifies the client in broker logs and quotas.
    pub client_id: Option<String>,
}

impl RequestHeader {
    /// Appends the header at `header_version` (1 or 2).
    pub fn encode(&self, out: &mut BytesMut, header_version: i16) -> Result<(), EncodeError> {
        let mut w = Writer::new(out);
        w.i16(self.api_key);
        w.i16(self.api_version);
        w.i32(self.correlation_id);
        // The client id stays a classic nullable string even in header v2,
        // so any broker can read it before it knows the request version.
        w.nullable_string(self.client_id.as_deref(), false)
            .map_err(|e| {
                e.in_field("RequestHeader.client_id")
                    .in_message("RequestHeader", header_version)
            })?;
        if header_version >= 2 {
            w.uvarint(0);
        }
        Ok(())
    }

    /// Decodes a request header from the front of `buf`, choosing the header
    /// version from the API key and version it finds.
    pub fn decode(buf: &mut Bytes) -> Result<RequestHeader, DecodeError> {
        let mut r = Reader::new(std::mem::take(buf));
        let result = Self::read(&mut r);
        *buf = r.into_rest();
        result
    }

    fn read(r: &mut Reader) -> Result<RequestHeader, DecodeError> {
        let in_header = |e: DecodeError, field| e.in_field(field).in_message("RequestHeader", 1);
        let api_key = r.i16().map_err(|e| in_header(e, "RequestHeader.api_key"))?;
        let api_version = r
            .i16()
            .map_err(|e| in_header(e, "RequestHeader.api_version"))?;
        let correlation_id = r
            .i32()
            .map_err(|e| in_header(e, "RequestHeader.correlation_id"))?;
        let client_id = r
            .nullable_string(false)
            .map_err(|e| in_header(e, "RequestHeader.client_id"))?;
        let api = ApiKey::from_code(api_key).ok_or_else(|| {
            DecodeError::new(DecodeErrorKind::UnknownApiKey(api_key), 0)
                .in_message("RequestHeader", 1)
        })?;
        if api.request_header_version(api_version) >= 2 {
            skip_tagged_fields(r).map_err(|e| e.in_message("RequestHeader", 2))?;
        }
        Ok(RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        })
    }
}

/// The header in front of every response body.
///
/// Version 0 is the correlation id alone; version 1 adds a tagged-field
/// section. See [`ApiKey::response_header_version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The correlation id of the request this answers.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Appends the header at `header_version` (0 or 1).
    pub fn encode(&self, out: &mut BytesMut, header_version: i16) {
        let mut w = Writer::new(out);
        w.i32(self.correlation_id);
        if header_version >= 1 {
            w.uvarint(0);
        }
    }

    /// Decodes a response header at `header_version` (0 or 1) from the front of `buf`.
    pub fn decode(buf: &mut Bytes, header_version: i16) -> Result<ResponseHeader, DecodeError> {
        let mut r = Reader::new(std::mem::take(buf));
        let result = (|| {
            let correlation_id = r
                .i32()
                .map_err(|e| e.in_field("ResponseHeader.correlation_id"))?;
            if header_version >= 1 {
                skip_tagged_fields(&mut r)?;
            }
            Ok(ResponseHeader { correlation_id })
        })();
        *buf = r.into_rest();
        result.map_err(|e: DecodeError| e.in_message("ResponseHeader", header_version))
    }
}

/// Skips a tagged-field section; headers define no tags we use.
fn skip_tagged_fields(r: &mut Reader) -> Result<(), DecodeError> {
    let count = r.uvarint()?;
    for _ in 0..count {
        let _tag = r.uvarint()?;
        let size = r.uvarint()? as usize;
        r.take(size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_v1_and_v2_literal_bytes() {
        let header = RequestHeader {
            api_key: 3,
            api_version: 12,
            correlation_id: 258,
            client_id: Some("ab".into()),
        };
        let mut out = BytesMut::new();
        header.encode(&mut out, 2).unwrap();
        let expected = [0, 3, 0, 12, 0, 0, 1, 2, 0, 2, b'a', b'b', 0];
        assert_eq!(&out[..], &expected);
        assert_eq!(
            RequestHeader::decode(&mut out.clone().freeze()).unwrap(),
            header
        );

        let v1 = RequestHeader {
            api_version: 1,
            client_id: None,
            ..header
        };
        let mut out = BytesMut::new();
        v1.encode(&mut out, 1).unwrap();
        assert_eq!(&out[..], &[0, 3, 0, 1, 0, 0, 1, 2, 0xff, 0xff]);
        let mut bytes = out.freeze();
        assert_eq!(RequestHeader::decode(&mut bytes).unwrap(), v1);
        assert!(bytes.is_empty());
    }

    #[test]
    fn response_header_v1_skips_unknown_tags() {
        // Correlation id 5, one tagged field (tag 9, 2 bytes), then the body.
        let mut bytes = Bytes::from_static(&[0, 0, 0, 5, 1, 9, 2, 0xaa, 0xbb, 0x42]);
        let header = ResponseHeader::decode(&mut bytes, 1).unwrap();
        assert_eq!(header.correlation_id, 5);
        assert_eq!(&bytes[..], &[0x42]);
    }

    #[test]
    fn truncated_headers_are_typed_errors() {
        let err = ResponseHeader::decode(&mut Bytes::from_static(&[0, 0, 1]), 0).unwrap_err();
        assert_eq!(err.api, "ResponseHeader");
        assert_eq!(err.field, "ResponseHeader.correlation_id");
        let err = RequestHeader::decode(&mut Bytes::from_static(&[
            0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff,
        ]))
        .unwrap_err();
        assert_eq!(err.kind, DecodeErrorKind::UnknownApiKey(0x7f00));
    }
}
