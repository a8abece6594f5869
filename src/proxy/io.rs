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
/// Room a buffer keeps after a large frame has gone; more is released.
const READ_KEEP_MAX: usize = 64 * 1024;

/// A connection's read buffer: one allocation, always initialised, holding the unconsumed bytes
/// `data[start..end]`.
///
/// Safe Rust cannot hand uninitialised memory to `read`, and zero-filling fresh room before each
/// read would cost as much as a copy; this buffer is zeroed once when it grows and reused after.
/// Consumed bytes only move the start; what is left of a partial frame is moved to the front when
/// room runs out. Frames are forwarded by slicing it in place (no copy); only a frame that is
/// rewritten is copied out ([`ReadBuf::take_frame`]). Dereferences to the unconsumed bytes.
#[derive(Debug, Default)]
pub struct ReadBuf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    /// An empty buffer; nothing is allocated until the first read.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the first `n` unconsumed bytes.
    pub fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.data.len() > READ_KEEP_MAX {
                self.data.truncate(READ_KEEP_MAX);
                self.data.shrink_to_fit();
            }
        }
    }

    /// Copies the first `n` unconsumed bytes out as `Bytes` and drops them from the buffer.
    pub fn take_frame(&mut self, n: usize) -> bytes::Bytes {
        let n = n.min(self.end - self.start);
        let out = bytes::Bytes::copy_from_slice(&self.data[self.start..self.start + n]);
        self.advance(n);
        out
    }

    /// Makes room for `want` more bytes at once (compacting, then growing), for a peer whose
    /// declared frame sizes are trusted and already checked against the frame limit (a broker):
    /// its large frames then cost one allocation, not a doubling per read.
    pub fn reserve(&mut self, want: usize) {
        self.room(want);
    }

    /// Free room after the unconsumed bytes, at least `want` bytes of it (compacting, then
    /// growing; new room is zeroed once).
    fn room(&mut self, want: usize) -> &mut [u8] {
        if self.data.len() - self.end < want && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.data.len() - self.end < want {
            self.data.resize(self.end + want, 0);
        }
        &mut self.data[self.end..]
    }
}

impl std::ops::Deref for ReadBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }
}

impl std::ops::DerefMut for ReadBuf {
    /// The unconsumed bytes, for an in-place edit of a field of fixed size (`throttle_time_ms`).
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data[self.start..self.end]
    }
}

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

/// Reads once from `r`, appending to `buf`. `want` is how many more bytes the current frame
/// needs: the buffer grows for it to at most 64 KiB at once, and beyond that by at most as much
/// as it already holds, so memory follows the bytes that arrive, not a size a peer declares
/// ([`ReadBuf::reserve`] makes room up front for a trusted peer); the read is offered all the
/// room the buffer has.
/// The read gives way to `interrupt` completing (then [`ReadOutcome::Stopped`]) and to `timeout`
/// completing (then [`ReadOutcome::TimedOut`]; a deadline, or an idle timer that starts when the
/// caller's condition holds); either way `buf` keeps exactly the bytes received.
///
/// Cancel-safe: if the returned future is dropped while pending, `buf` is left as it was.
pub async fn read_into(
    r: &mut Half,
    buf: &mut ReadBuf,
    want: usize,
    interrupt: impl Future<Output = ()>,
    timeout: impl Future<Output = ()>,
) -> io::Result<ReadOutcome> {
    let res = {
        // Up to the room a buffer keeps anyway (64 KiB) at once; beyond it, by what is held.
        let dst = buf.room(want.min(buf.len().max(READ_KEEP_MAX)).max(READ_CHUNK_MIN));
        let read = async { Some(r.read(dst).await) };
        let stopped = async {
            interrupt.await;
            None
        };
        let timed_out = async {
            timeout.await;
            Some(Err(io::Error::from(io::ErrorKind::TimedOut)))
        };
        or(read, or(stopped, timed_out)).await
    };
    // Bytes count as received only here, so a dropped future leaves `buf` as it was.
    match res {
        Some(Ok(0)) => Ok(ReadOutcome::Eof),
        Some(Ok(n)) => {
            buf.end += n;
            Ok(ReadOutcome::Data(n))
        }
        Some(Err(e)) if e.kind() == io::ErrorKind::TimedOut => Ok(ReadOutcome::TimedOut),
        Some(Err(e)) => Err(e),
        None => Ok(ReadOutcome::Stopped),
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
    use std::time::Duration;

    /// One [`read_into`] with neither an interrupt nor a timeout.
    async fn read(r: &mut Half, buf: &mut ReadBuf, want: usize) -> io::Result<ReadOutcome> {
        read_into(r, buf, want, std::future::pending(), std::future::pending()).await
    }

    #[test]
    fn read_into_is_cancel_safe_and_keeps_only_received_bytes() {
        glommio::LocalExecutor::default().run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = TcpStream::connect(addr).await.expect("connect");
            let mut server = listener.accept().await.expect("accept");
            let (mut r, _w) = split(client);
            let mut buf = ReadBuf::new();
            buf.room(2)[..2].copy_from_slice(b"ab");
            buf.end = 2;

            // Interrupted before any byte: Stopped, buffer unchanged.
            let out = read_into(&mut r, &mut buf, 10, async {}, std::future::pending())
                .await
                .expect("read");
            assert_eq!(out, ReadOutcome::Stopped);
            assert_eq!(&buf[..], b"ab");

            // Dropped mid-read (timeout future wins in an outer select): buffer unchanged.
            let raced = or(async { Some(read(&mut r, &mut buf, 10).await) }, async {
                glommio::timer::sleep(Duration::from_millis(20)).await;
                None
            })
            .await;
            assert!(raced.is_none());
            assert_eq!(&buf[..], b"ab");

            // Timeout.
            let out = read_into(
                &mut r,
                &mut buf,
                10,
                std::future::pending(),
                glommio::timer::sleep(Duration::from_millis(10)),
            )
            .await
            .expect("read");
            assert_eq!(out, ReadOutcome::TimedOut);
            assert_eq!(&buf[..], b"ab");

            // Data appended exactly.
            server.write_all(b"xyz").await.expect("write");
            let out = read(&mut r, &mut buf, 10).await.expect("read");
            assert_eq!(out, ReadOutcome::Data(3));
            assert_eq!(&buf[..], b"abxyz");

            // Peer closes: Eof.
            drop(server);
            let out = read(&mut r, &mut buf, 10).await.expect("read");
            assert_eq!(out, ReadOutcome::Eof);
            assert_eq!(&buf[..], b"abxyz");
        });
    }

    /// Issue 11, defect 5: a size prefix alone declaring a huge frame must not make the buffer
    /// grow to that size; room follows the bytes that arrived (at most doubling what is held).
    #[test]
    fn a_declared_size_does_not_allocate_the_frame() {
        glommio::LocalExecutor::default().run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr");
            let client = TcpStream::connect(addr).await.expect("connect");
            let mut server = listener.accept().await.expect("accept");
            let (mut r, _w) = split(client);
            let mut buf = ReadBuf::new();
            let declared: usize = 100 << 20;
            server
                .write_all(&(declared as i32).to_be_bytes())
                .await
                .expect("write");
            let mut got = 0;
            while got < 4 {
                match read(&mut r, &mut buf, 4).await.expect("read") {
                    ReadOutcome::Data(n) => got += n,
                    other => panic!("{other:?}"),
                }
            }
            // The frame needs 100 MiB more; nothing more has arrived.
            let out = read_into(
                &mut r,
                &mut buf,
                declared,
                std::future::pending(),
                glommio::timer::sleep(Duration::from_millis(20)),
            )
            .await
            .expect("read");
            assert_eq!(out, ReadOutcome::TimedOut);
            assert!(
                buf.data.len() <= READ_KEEP_MAX + 4,
                "{} bytes allocated for 4 received",
                buf.data.len()
            );
            // As bytes arrive, room grows with them: 1 MiB sent, at most about twice held.
            let chunk = vec![7u8; 1 << 20];
            let writer = glommio::spawn_local(async move {
                server.write_all(&chunk).await.expect("write");
                server
            });
            while buf.len() < 4 + (1 << 20) {
                read(&mut r, &mut buf, declared).await.expect("read");
            }
            let _server = writer.await;
            assert!(
                buf.data.len() <= 2 * buf.len() + READ_KEEP_MAX,
                "{} bytes allocated for {} received",
                buf.data.len(),
                buf.len()
            );
        });
    }

    #[test]
    fn read_buf_compacts_grows_and_releases() {
        let mut b = ReadBuf::new();
        let room = b.room(8);
        assert!(room.len() >= 8);
        room[..6].copy_from_slice(b"abcdef");
        b.end = 6;
        b.advance(4);
        assert_eq!(&b[..], b"ef");
        // Asking for more room than is free after the data compacts first: "ef" moves to 0.
        let cap = b.data.len();
        let room_len = b.room(cap - 2).len();
        assert_eq!(b.start, 0);
        assert_eq!(&b[..], b"ef");
        assert!(room_len >= cap - 2);
        assert_eq!(b.take_frame(2).as_ref(), b"ef");
        assert!(b.is_empty());
        // A large frame grows the buffer; once consumed, the room above 64 KiB is released.
        b.room(1 << 20);
        b.end = 1 << 20;
        b.advance(1 << 20);
        assert!(b.data.len() <= READ_KEEP_MAX);
    }
}
