//! Splitting a glommio `TcpStream` into a read half and a write half on one shard.
//!
//! glommio keeps separate readiness sources for receive and send, so a read and a write may be
//! pending at once. The halves share the stream through `Rc<RefCell<_>>`, borrowed only inside a
//! `poll_*` call, never across an `.await`: no lock, no atomic.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use std::time::Duration;

use futures_lite::future::or;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use glommio::net::TcpStream;

/// One half of a split stream (both halves have the same type; use each for one direction).
pub struct Half(Rc<RefCell<TcpStream>>);

/// Splits `stream` into (read half, write half).
pub fn split(stream: TcpStream) -> (Half, Half) {
    let rc = Rc::new(RefCell::new(stream));
    (Half(rc.clone()), Half(rc))
}

/// Joins two halves back into the stream, when no other reference remains.
pub fn unsplit(a: Half, b: Half) -> Option<TcpStream> {
    drop(b);
    Rc::try_unwrap(a.0).ok().map(RefCell::into_inner)
}

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0.borrow_mut()).poll_close(cx)
    }
}

/// Smallest read attempted; a read asks for at least this much room.
const READ_CHUNK_MIN: usize = 4 * 1024;
/// Largest single read.
const READ_CHUNK_MAX: usize = 64 * 1024;

/// What one [`read_into`] call ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were appended.
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// `stop` was set before any byte arrived.
    Stopped,
    /// `timeout` passed before any byte arrived.
    TimedOut,
}

/// Reads once from `r`, appending to `buf`. `want` hints how many more bytes the current frame
/// needs. The read gives way to `interrupt` completing (then [`ReadOutcome::Stopped`]) and to
/// `timeout`; either way `buf` keeps exactly the bytes received.
///
/// Cancel-safe: if the returned future is dropped while pending, `buf` is left as it was.
pub async fn read_into(
    r: &mut Half,
    buf: &mut BytesMut,
    want: usize,
    interrupt: impl Future<Output = ()>,
    timeout: Option<Duration>,
) -> io::Result<ReadOutcome> {
    let len = buf.len();
    let chunk = want.clamp(READ_CHUNK_MIN, READ_CHUNK_MAX);
    buf.reserve(chunk);
    let room = (buf.capacity() - len).min(READ_CHUNK_MAX);
    // Zero-fill the room we read into (safe Rust cannot hand uninitialised memory to `read`); the
    // guard cuts `buf` back to what was received, also when this future is dropped mid-read.
    let mut guard = Truncate { buf, keep: len };
    guard.buf.resize(len + room, 0);
    let res = {
        let dst = &mut guard.buf[len..];
        let read = async { Some(r.read(dst).await) };
        let stopped = async {
            interrupt.await;
            None
        };
        let timed_out = async {
            match timeout {
                Some(d) => glommio::timer::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
            Some(Err(io::Error::from(io::ErrorKind::TimedOut)))
        };
        or(read, or(stopped, timed_out)).await
    };
    match res {
        Some(Ok(0)) => Ok(ReadOutcome::Eof),
        Some(Ok(n)) => {
            guard.keep = len + n;
            Ok(ReadOutcome::Data(n))
        }
        Some(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Ok(ReadOutcome::TimedOut),
        Some(Err(e)) => Err(e),
        None => Ok(ReadOutcome::Stopped),
    }
}

/// Truncates the buffer to `keep` bytes when dropped.
struct Truncate<'a> {
    buf: &'a mut BytesMut,
    keep: usize,
}

impl Drop for Truncate<'_> {
    fn drop(&mut self) {
        self.buf.truncate(self.keep);
    }
}

/// The raw descriptor behind a half, for socket options (see [`crate::proxy::sockopt`]).
pub fn raw_fd(h: &Half) -> std::os::fd::RawFd {
    use std::os::fd::AsRawFd;
    h.0.borrow().as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncWriteExt;

    #[test]
    fn read_into_is_cancel_safe_and_keeps_only_received_bytes() {
        glommio::LocalExecutor::default().run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = TcpStream::connect(addr).await.expect("connect");
            let mut server = listener.accept().await.expect("accept");
            let (mut r, _w) = split(client);
            let mut buf = BytesMut::from(&b"ab"[..]);

            // Interrupted before any byte: Stopped, buffer unchanged.
            let out = read_into(&mut r, &mut buf, 10, async {}, None)
                .await
                .expect("read");
            assert_eq!(out, ReadOutcome::Stopped);
            assert_eq!(&buf[..], b"ab");

            // Dropped mid-read (timeout future wins in an outer select): buffer unchanged.
            let raced = or(
                async { Some(read_into(&mut r, &mut buf, 10, std::future::pending(), None).await) },
                async {
                    glommio::timer::sleep(Duration::from_millis(20)).await;
                    None
                },
            )
            .await;
            assert!(raced.is_none());
            assert_eq!(&buf[..], b"ab");

            // Timeout.
            let out = read_into(
                &mut r,
                &mut buf,
                10,
                std::future::pending(),
                Some(Duration::from_millis(10)),
            )
            .await
            .expect("read");
            assert_eq!(out, ReadOutcome::TimedOut);
            assert_eq!(&buf[..], b"ab");

            // Data appended exactly.
            server.write_all(b"xyz").await.expect("write");
            let out = read_into(&mut r, &mut buf, 10, std::future::pending(), None)
                .await
                .expect("read");
            assert_eq!(out, ReadOutcome::Data(3));
            assert_eq!(&buf[..], b"abxyz");

            // Peer closes: Eof.
            drop(server);
            let out = read_into(&mut r, &mut buf, 10, std::future::pending(), None)
                .await
                .expect("read");
            assert_eq!(out, ReadOutcome::Eof);
            assert_eq!(&buf[..], b"abxyz");
        });
    }
}
