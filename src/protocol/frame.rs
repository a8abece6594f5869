//! Kafka framing: every request and response is `int32 size` followed by `size` payload bytes
//! (Kafka protocol guide, "Common Request and Response Structure").
//!
//! [`FrameDecoder`] splits whole frames off a read buffer without copying: a frame is
//! `buf.split_to(4 + size).freeze()`, which shares the buffer's allocation. Sizes are validated
//! the moment the four prefix bytes are present, before any capacity is reserved for the payload,
//! so a hostile peer cannot make Sluice allocate more than [`FrameDecoder::new`]'s limit.

use bytes::{BufMut, Bytes, BytesMut};

/// Default largest payload accepted: the broker's `socket.request.max.bytes` default, 100 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Length of the size prefix of every frame, in bytes.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// A size prefix that cannot be accepted. Either way the connection cannot be resynchronised and
/// must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("frame size prefix is negative ({0})")]
    Negative(i32),
    /// The size prefix exceeds the configured maximum (bytes of payload, prefix excluded).
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// declared payload size, bytes
        size: usize,
        /// configured maximum, bytes
        max: usize,
    },
}

/// Splits Kafka frames (int32 size + payload) off a read buffer, zero-copy.
///
/// Stateless apart from its limit: the size prefix stays in the buffer until the whole frame has
/// arrived, so calling [`FrameDecoder::decode`] again after more bytes were appended is always
/// correct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder accepting payloads of at most `max_frame_bytes` bytes (size prefix excluded).
    pub fn new(max_frame_bytes: usize) -> Self {
        Self { max_frame_bytes }
    }

    /// The payload limit, bytes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Splits the next frame off the front of `buf`.
    ///
    /// - `Ok(Some(frame))`: `frame` is the whole frame **including** its 4-byte size prefix,
    ///   split off `buf` with `split_to().freeze()` (no copy).
    /// - `Ok(None)`: more bytes are needed. Capacity for the rest of the current frame is reserved
    ///   in `buf`, never more than the validated size.
    /// - `Err`: the size prefix is negative or larger than the limit; checked as soon as the four
    ///   prefix bytes are present, before reserving.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.get(..SIZE_PREFIX_BYTES) else {
            buf.reserve(SIZE_PREFIX_BYTES - buf.len());
            return Ok(None);
        };
        let mut p = [0u8; SIZE_PREFIX_BYTES];
        p.copy_from_slice(prefix);
        let size = i32::from_be_bytes(p);
        let size = usize::try_from(size).map_err(|_| FrameError::Negative(size))?;
        if size > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_bytes,
            });
        }
        let total = SIZE_PREFIX_BYTES + size;
        if buf.len() >= total {
            Ok(Some(buf.split_to(total).freeze()))
        } else {
            buf.reserve(total - buf.len());
            Ok(None)
        }
    }
}

/// The 4-byte size prefix of a frame whose payload is `payload_len` bytes long.
///
/// Useful to write a [`super::rewrite::Rewritten::Spliced`] payload as three buffers (prefix,
/// spliced prefix, tail) without concatenating them. Lengths above `i32::MAX` cannot be framed;
/// they never occur because every payload Sluice builds is bounded by the frame limit, and are
/// saturated to `i32::MAX` (the peer then rejects the frame).
pub fn size_prefix(payload_len: usize) -> [u8; SIZE_PREFIX_BYTES] {
    i32::try_from(payload_len).unwrap_or(i32::MAX).to_be_bytes()
}

/// Length of the frame at the start of `buf` (size prefix included), without splitting it off:
/// `Ok(None)` while the frame is incomplete. Lets a forwarder walk several frames in place and
/// write them with one call.
///
/// # Errors
/// [`FrameError`] for a negative size or one above `max_frame_bytes`, as soon as the 4 size bytes
/// are present (before anything is allocated for the frame).
pub fn peek_frame_len(buf: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(&[a, b, c, d]) = buf.get(..SIZE_PREFIX_BYTES) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([a, b, c, d]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge {
            size,
            max: max_frame_bytes,
        });
    }
    Ok((buf.len() >= SIZE_PREFIX_BYTES + size).then_some(SIZE_PREFIX_BYTES + size))
}

/// Builds a frame (size prefix + payload) from a payload. One allocation, one copy.
pub fn encode_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(SIZE_PREFIX_BYTES + payload.len());
    out.put_slice(&size_prefix(payload.len()));
    out.put_slice(payload);
    out.freeze()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames_of(payloads: &[Vec<u8>]) -> Vec<u8> {
        payloads
            .iter()
            .flat_map(|p| encode_frame(p).to_vec())
            .collect()
    }

    /// Feeds `wire` to a decoder in the given chunks; returns the frames found.
    fn feed(wire: &[u8], cuts: &[usize], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut d = FrameDecoder::new(max);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
            buf.extend_from_slice(&wire[last..cut]);
            last = cut;
            while let Some(f) = d.decode(&mut buf)? {
                out.push(f);
            }
        }
        assert!(buf.is_empty(), "bytes left over");
        Ok(out)
    }

    /// Walks `wire`, delivered in the given chunks, the way the proxy does: frames are found in
    /// place with [`peek_frame_len`] and consumed from the front of the buffer.
    fn walk(wire: &[u8], cuts: &[usize], max: usize) -> Result<Vec<Bytes>, FrameError> {
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
            buf.extend_from_slice(&wire[last..cut]);
            last = cut;
            let mut at = 0;
            while let Some(len) = peek_frame_len(&buf[at..], max)? {
                out.push(Bytes::copy_from_slice(&buf[at..at + len]));
                at += len;
            }
            buf.drain(..at);
        }
        assert!(buf.is_empty(), "bytes left over");
        Ok(out)
    }

    #[test]
    fn peek_walk_every_split_gives_same_frames() {
        let payloads = vec![vec![1u8, 2, 3], vec![], vec![9; 17], vec![7]];
        let wire = frames_of(&payloads);
        let want = expected(&payloads);
        let cuts: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(walk(&wire, &cuts, 1024).unwrap(), want);
        for cut in 0..=wire.len() {
            assert_eq!(walk(&wire, &[cut], 1024).unwrap(), want, "cut {cut}");
        }
        assert_eq!(
            peek_frame_len(&[0xff, 0xff, 0xff, 0xff], 8),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            peek_frame_len(&size_prefix(9), 8),
            Err(FrameError::TooLarge { size: 9, max: 8 })
        );
        assert_eq!(peek_frame_len(&size_prefix(8), 8), Ok(None));
    }

    fn expected(payloads: &[Vec<u8>]) -> Vec<Bytes> {
        payloads.iter().map(|p| encode_frame(p)).collect()
    }

    #[test]
    fn every_split_gives_same_frames() {
        let payloads = vec![vec![1u8, 2, 3], vec![], vec![9; 17], vec![7]];
        let wire = frames_of(&payloads);
        let want = expected(&payloads);
        // byte by byte
        let cuts: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(feed(&wire, &cuts, 1024).unwrap(), want);
        // every 2-chunk split
        for cut in 0..=wire.len() {
            assert_eq!(feed(&wire, &[cut], 1024).unwrap(), want, "cut {cut}");
        }
    }

    #[test]
    fn frame_includes_prefix_and_is_zero_copy() {
        let mut buf = BytesMut::from(&encode_frame(b"hello")[..]);
        let base = buf.as_ptr();
        let f = FrameDecoder::new(16).decode(&mut buf).unwrap().unwrap();
        assert_eq!(&f[..], &[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        assert_eq!(f.as_ptr(), base);
    }

    #[test]
    fn negative_rejected_before_reserving() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        let cap = buf.capacity();
        assert_eq!(
            FrameDecoder::new(16).decode(&mut buf),
            Err(FrameError::Negative(-2))
        );
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn oversized_rejected_before_reserving() {
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        let cap = buf.capacity();
        assert_eq!(
            FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES).decode(&mut buf),
            Err(FrameError::TooLarge {
                size: i32::MAX as usize,
                max: DEFAULT_MAX_FRAME_BYTES
            })
        );
        assert_eq!(buf.capacity(), cap);
        // exactly the max is allowed
        let mut buf = BytesMut::from(&size_prefix(8)[..]);
        assert_eq!(FrameDecoder::new(8).decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 12);
        let mut buf = BytesMut::from(&size_prefix(9)[..]);
        assert!(FrameDecoder::new(8).decode(&mut buf).is_err());
    }

    #[test]
    fn reserves_only_the_rest_of_the_frame() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&size_prefix(1000));
        buf.extend_from_slice(&[0u8; 10]);
        assert_eq!(FrameDecoder::default().decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 1004);
        assert!(buf.capacity() < 1004 * 4);
    }

    proptest! {
        #[test]
        fn random_frames_and_chunkings(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..12),
            mut cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
        ) {
            let wire = frames_of(&payloads);
            let mut cuts: Vec<usize> = cuts.drain(..).map(|i| i.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            prop_assert_eq!(feed(&wire, &cuts, 300).unwrap(), expected(&payloads));
            prop_assert_eq!(walk(&wire, &cuts, 300).unwrap(), expected(&payloads));
        }

        #[test]
        fn oversized_in_stream_is_an_error(
            good in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..50), 0..4),
            bad in 51usize..1_000_000,
        ) {
            let mut wire = frames_of(&good);
            wire.extend_from_slice(&size_prefix(bad));
            let r = feed(&wire, &[], 50);
            prop_assert_eq!(r, Err(FrameError::TooLarge { size: bad, max: 50 }));
        }
    }
}
