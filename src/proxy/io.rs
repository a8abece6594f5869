//! Splitting a glommio `TcpStream` into a read half and a write half on one shard.
//!
//! glommio keeps separate readiness sources for receive and send, so a read and a write may be
//! pending at once. The halves share the stream through `Rc<RefCell<_>>`, borrowed only inside a
//! `poll_*` call, never across an `.await`: no lock, no atomic.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use std::time::Duration;

use futures_lite::future::or;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite};
use glommio::net::TcpStream;

use crate::runtime::event::Latch;

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
/// needs. The read gives way to `stop` being set and to `timeout`; either way `buf` keeps exactly
/// the bytes received.
pub async fn read_into(
    r: &mut Half,
    buf: &mut BytesMut,
    want: usize,
    stop: Option<&Latch>,
    timeout: Option<Duration>,
) -> io::Result<ReadOutcome> {
    let len = buf.len();
    let chunk = want.clamp(READ_CHUNK_MIN, READ_CHUNK_MAX);
    buf.reserve(chunk);
    // Zero-fill the room we read into: safe Rust cannot hand uninitialised memory to `read`.
    let room = (buf.capacity() - len).min(READ_CHUNK_MAX);
    buf.resize(len + room, 0);
    let res = {
        let dst = &mut buf[len..];
        let read = async { Some(r.read(dst).await) };
        let stopped = async {
            match stop {
                Some(l) => l.wait().await,
                None => std::future::pending::<()>().await,
            }
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
        Some(Ok(0)) => {
            buf.truncate(len);
            Ok(ReadOutcome::Eof)
        }
        Some(Ok(n)) => {
            buf.truncate(len + n);
            Ok(ReadOutcome::Data(n))
        }
        Some(Err(e)) if e.kind() == io::ErrorKind::TimedOut => {
            buf.truncate(len);
            Ok(ReadOutcome::TimedOut)
        }
        Some(Err(e)) => {
            buf.truncate(len);
            Err(e)
        }
        None => {
            buf.truncate(len);
            Ok(ReadOutcome::Stopped)
        }
    }
}
