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

/// Binds `addr` with `SO_REUSEPORT`.
///
/// # Errors
/// The bind error (address in use without `SO_REUSEPORT`, permission, no such address).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(std::io::Error::from)
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
