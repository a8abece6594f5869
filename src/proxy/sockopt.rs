//! Socket operations glommio does not offer, on a descriptor the caller keeps open: a
//! non-blocking liveness peek and an abortive close (`SO_LINGER` 0, so `close` sends RST).

use std::os::fd::{BorrowedFd, RawFd};

/// Runs `f` on a socket2 view of `fd` without taking ownership of it.
#[allow(unsafe_code)]
fn with_sock<T>(fd: RawFd, f: impl FnOnce(socket2::SockRef<'_>) -> T) -> T {
    // SAFETY: callers pass the descriptor of a stream they hold borrowed for the whole call, so it
    // is open and stays open while the `BorrowedFd` lives; the borrow does not outlive this
    // function, and nothing closes the descriptor or takes ownership of it.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    f(socket2::SockRef::from(&fd))
}

/// True when the peer has neither closed the connection nor sent unsolicited bytes: a
/// non-blocking `MSG_PEEK` reports "would block".
pub fn is_idle_and_open(fd: RawFd) -> bool {
    const MSG_PEEK_DONTWAIT: i32 = 0x02 | 0x40; // MSG_PEEK | MSG_DONTWAIT on Linux
    with_sock(fd, |s| {
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        match s.recv_with_flags(&mut buf, MSG_PEEK_DONTWAIT) {
            Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            Ok(_) => false, // 0: closed by the peer; >0: bytes nobody asked for
        }
    })
}

/// Makes the next close of `fd` abortive (RST), as a refused connection looks to a client:
/// clients retry a reset, while some treat an orderly close before any answer as a
/// configuration error (franz-go: "is TLS missing?").
pub fn reset_on_close(fd: RawFd) -> std::io::Result<()> {
    with_sock(fd, |s| s.set_linger(Some(std::time::Duration::ZERO)))
}

/// Hands a bound std listener (no `SO_REUSEPORT`: a second process cannot share the port) to the
/// glommio executor of the calling thread. Call from inside an executor.
#[allow(unsafe_code)]
pub fn into_glommio_listener(l: std::net::TcpListener) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: `into_raw_fd` gives up ownership of an open listening socket; the glommio listener
    // becomes its only owner and closes it on drop.
    unsafe { glommio::net::TcpListener::from_raw_fd(l.into_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    #[test]
    fn peek_and_reset() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        assert!(is_idle_and_open(c.as_raw_fd()));
        reset_on_close(s.as_raw_fd()).expect("linger");
        drop(s);
        let mut b = [0u8; 1];
        let err = c.read(&mut b).expect_err("reset, not EOF");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
        assert!(!is_idle_and_open(c.as_raw_fd()));
    }
}
