//! Listeners: binding with `SO_REUSEPORT` (every shard binds every listener address and the kernel
//! spreads connections), and the accept loop that starts a session per client connection.

use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::future::or;
use glommio::net::TcpListener;

use crate::proxy::shard::Shard;
use crate::proxy::{admission, session};
use crate::runtime::event::Latch;

/// Which upstream a listener's connections go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The bootstrap listener: any broker (bootstrap servers, with failover).
    Bootstrap,
    /// The port of one node id.
    Node(i32),
}

/// Listen backlog of every listener (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 1024;

/// Binds `addr` with `SO_REUSEPORT` (each shard binds the same address) and `SO_REUSEADDR`, and
/// listens.
///
/// `SO_REUSEADDR` is what servers set so that a restart can bind at once: connections another
/// program accepted on this port and closed first stay in `TIME_WAIT` for a minute, and without it
/// they make the bind fail with "address in use" (`SO_REUSEPORT` alone only passes over sockets
/// that had it too). A port another socket *listens* on is still refused.
///
/// # Errors
/// The bind error (address in use by a listener without `SO_REUSEPORT`, permission, no such
/// address).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::fd::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is the bound, listening TCP socket created above; `into_raw_fd` released it, so
    // the listener built here is its one owner. glommio has no safe constructor from a socket.
    #[allow(unsafe_code)]
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    Ok(listener)
}

/// Accepts until the shard shuts down or `stop` is set (a reload moved the port), spawning one
/// session task per admitted connection ([`admission::admit`]; a refused one is closed at once).
/// Sessions outlive their listener.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, target: Target, stop: Rc<Latch>) {
    loop {
        let accepted = or(async { Some(listener.accept().await) }, async {
            or(shard.shutdown.wait(), stop.wait()).await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                tracing::warn!(shard = shard.id, ?target, error = %e, "accept failed");
                // Out of descriptors or memory: give the shard a moment instead of spinning.
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let peer = stream.peer_addr().ok();
        let admitted = match admission::admit(&shard, peer) {
            Ok(a) => a,
            Err((why, detail)) => {
                shard.metrics.refused(why);
                shard.refusals.log(shard.id, peer, why, &detail);
                drop(stream);
                continue;
            }
        };
        let guard = shard.session_started(peer, target);
        let s = shard.clone();
        glommio::spawn_local(async move {
            session::run(s, stream, target, guard.conn_id, peer).await;
            drop(guard);
            drop(admitted);
        })
        .detach();
    }
    tracing::debug!(shard = shard.id, ?target, "listener closed");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Another program's listener (`SO_REUSEADDR`, no `SO_REUSEPORT`) accepted a connection on
    /// the port and closed it first, so its side sits in `TIME_WAIT` there: Sluice still binds the
    /// port (without `SO_REUSEADDR` this fails with "address in use" for a minute). A port another
    /// socket listens on is still refused, and two shards share one.
    #[test]
    fn binds_over_a_foreign_time_wait_but_not_over_a_listener() {
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = other.local_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = other.accept().unwrap();
        drop(accepted);
        std::thread::sleep(Duration::from_millis(50));
        drop(client);
        glommio::LocalExecutor::default().run(async move {
            assert!(bind(addr).is_err(), "bound over a live listener");
            drop(other);
            let first = bind(addr).expect("bind over a foreign TIME_WAIT");
            let second = bind(addr).expect("a second shard shares the port");
            assert_eq!(first.local_addr().unwrap(), second.local_addr().unwrap());
        });
    }
}
