//! Kafka framing over blocking std streams, on top of kafka-protocol's message codecs.

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use std::io::{self, Read};

/// Largest frame accepted (the broker's `socket.request.max.bytes` default).
pub const MAX_FRAME: usize = 100 * 1024 * 1024;

/// Reads one frame (without its size prefix). `Ok(None)` on a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut size[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = i32::from_be_bytes(size);
    if len < 0 || len as usize > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad frame size {len}"),
        ));
    }
    let mut buf = BytesMut::zeroed(len as usize);
    r.read_exact(&mut buf)?;
    Ok(Some(buf.freeze()))
}

/// Encodes a complete request frame (size prefix, header, body).
pub fn encode_request<R: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &R,
) -> Result<BytesMut> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header.encode(&mut buf, R::header_version(version))?;
    body.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Encodes a complete response frame (size prefix, header, body).
pub fn encode_response<R: Encodable + HeaderVersion>(
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<BytesMut> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, R::header_version(version))?;
    body.encode(&mut buf, version)?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Decodes a response frame (no size prefix): correlation id and body.
pub fn decode_response<R: Decodable + HeaderVersion>(
    mut frame: Bytes,
    version: i16,
) -> Result<(i32, R)> {
    let header = ResponseHeader::decode(&mut frame, R::header_version(version))
        .context("response header")?;
    let body = R::decode(&mut frame, version).context("response body")?;
    Ok((header.correlation_id, body))
}

/// Peeks api key, version and correlation id of a request frame (no size prefix).
pub fn peek_request(frame: &[u8]) -> Result<(i16, i16, i32)> {
    if frame.len() < 8 {
        bail!("request frame of {} bytes", frame.len());
    }
    let mut b = frame;
    Ok((b.get_i16(), b.get_i16(), b.get_i32()))
}

/// Decodes a request frame (no size prefix): header and body.
pub fn decode_request<R: Decodable + HeaderVersion>(
    mut frame: Bytes,
    version: i16,
) -> Result<(RequestHeader, R)> {
    let header =
        RequestHeader::decode(&mut frame, R::header_version(version)).context("request header")?;
    let body = R::decode(&mut frame, version).context("request body")?;
    Ok((header, body))
}

/// Overwrites the correlation id of an encoded request frame (with its size prefix).
pub fn patch_correlation_id(frame: &mut [u8], correlation_id: i32) {
    frame[8..12].copy_from_slice(&correlation_id.to_be_bytes());
}

/// Picks the highest version in `ours` that the peer's `[min, max]` also covers.
pub fn negotiate(ours: (i16, i16), theirs: Option<(i16, i16)>) -> Option<i16> {
    let (lo, hi) = theirs?;
    let v = ours.1.min(hi);
    (v >= ours.0.max(lo)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn request_round_trip_and_patch() {
        let req = MetadataRequest::default();
        let mut frame = encode_request(ApiKey::Metadata, 9, 7, "t", &req).expect("encodes");
        patch_correlation_id(&mut frame, 99);
        let mut r = &frame[..];
        let body = read_frame(&mut r).expect("reads").expect("frame");
        assert_eq!(peek_request(&body).expect("peek"), (3, 9, 99));
        let (h, _m): (RequestHeader, MetadataRequest) = decode_request(body, 9).expect("decodes");
        assert_eq!(h.client_id.as_deref(), Some("t"));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate((3, 12), Some((3, 13))), Some(12));
        assert_eq!(negotiate((3, 12), Some((0, 9))), Some(9));
        assert_eq!(negotiate((3, 12), Some((0, 2))), None);
        assert_eq!(negotiate((3, 12), None), None);
    }
}
