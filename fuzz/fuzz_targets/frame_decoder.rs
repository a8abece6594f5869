#![no_main]
//! Feeds arbitrary bytes to the frame decoder in chunks whose sizes come from the input; checks
//! that the frames found are exactly the consumed prefix and never exceed the limit.
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::protocol::frame::FrameDecoder;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, wire)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = FrameDecoder::new(MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(chunk) {
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
                Err(_) => return,
            }
        }
    }
    assert_eq!(&wire[..out.len()], &out[..]);
    assert_eq!(out.len() + buf.len(), wire.len());
});
