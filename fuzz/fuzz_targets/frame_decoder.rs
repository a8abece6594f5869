#![no_main]
//! Feeds arbitrary bytes to the frame decoder in chunks whose sizes come from the input; checks
//! that the frames found are exactly the consumed prefix and never exceed the limit, and that the
//! in-place walk the proxy uses (`peek_frame_len`) finds the same frames and the same error.
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::frame::{peek_frame_len, FrameDecoder};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, wire)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = FrameDecoder::new(MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut decoder_err = None;
    'feed: for piece in wire.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(f)) => {
                    assert!(f.len() >= 4 && f.len() - 4 <= MAX);
                    let size = i32::from_be_bytes([f[0], f[1], f[2], f[3]]);
                    assert_eq!(size as usize, f.len() - 4);
                    out.extend_from_slice(&f);
                }
                Ok(None) => break,
                Err(e) => {
                    decoder_err = Some(e);
                    break 'feed;
                }
            }
        }
    }
    if decoder_err.is_none() {
        assert_eq!(&wire[..out.len()], &out[..]);
        assert_eq!(out.len() + buf.len(), wire.len());
    }

    // The in-place walk over the same chunks.
    let mut pending: Vec<u8> = Vec::new();
    let mut walked = Vec::new();
    let mut walk_err = None;
    'walk: for piece in wire.chunks(chunk) {
        pending.extend_from_slice(piece);
        let mut at = 0;
        loop {
            match peek_frame_len(&pending[at..], MAX) {
                Ok(Some(len)) => {
                    walked.extend_from_slice(&pending[at..at + len]);
                    at += len;
                }
                Ok(None) => break,
                Err(e) => {
                    walk_err = Some(e);
                    break 'walk;
                }
            }
        }
        pending.drain(..at);
    }
    assert_eq!(walk_err, decoder_err);
    assert_eq!(walked, out);
});
