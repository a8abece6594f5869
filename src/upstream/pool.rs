//! Per-shard pool of idle upstream connections, by upstream address. See the module docs of
//! [`crate::upstream`] for when a connection is returned and reused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

/// Idle upstream connections of one shard.
pub struct Pool {
    max_idle_per_broker: usize,
    idle_timeout: Duration,
    idle: RefCell<HashMap<String, Vec<(TcpStream, Instant)>>>,
}

impl Pool {
    /// An empty pool keeping at most `max_idle_per_broker` connections per address for `idle_timeout`.
    pub fn new(max_idle_per_broker: usize, idle_timeout: Duration) -> Self {
        Self {
            max_idle_per_broker,
            idle_timeout,
            idle: RefCell::new(HashMap::new()),
        }
    }

    /// Takes a live idle connection to `addr`, newest first; stale or dead ones are closed.
    pub fn take(&self, addr: &str) -> Option<TcpStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(addr)?;
        while let Some((s, since)) = list.pop() {
            if since.elapsed() < self.idle_timeout && is_idle_and_open(&s) {
                return Some(s);
            }
        }
        None
    }

    /// Returns a clean connection (nothing in flight, nothing unread) to the pool of `addr`.
    pub fn put(&self, addr: &str, stream: TcpStream) {
        if self.max_idle_per_broker == 0 {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(addr.to_string()).or_default();
        list.retain(|(_, since)| since.elapsed() < self.idle_timeout);
        if list.len() < self.max_idle_per_broker {
            list.push((stream, Instant::now()));
        }
    }

    /// Closes idle connections past their timeout; returns how many remain.
    pub fn sweep(&self) -> usize {
        let mut idle = self.idle.borrow_mut();
        idle.retain(|_, list| {
            list.retain(|(_, since)| since.elapsed() < self.idle_timeout);
            !list.is_empty()
        });
        idle.values().map(Vec::len).sum()
    }

    /// Drops every idle connection.
    pub fn clear(&self) {
        self.idle.borrow_mut().clear();
    }
}

fn is_idle_and_open(s: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    crate::proxy::sockopt::is_idle_and_open(s.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::AsyncWriteExt;

    #[test]
    fn pool_keeps_live_connections_and_drops_closed_ones() {
        glommio::LocalExecutor::default().run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let pool = Pool::new(2, Duration::from_secs(60));
            let c1 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let s1 = listener.accept().await.expect("accept");
            pool.put(&addr, c1);
            assert!(pool.take(&addr).is_some(), "live connection reused");

            let c2 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let s2 = listener.accept().await.expect("accept");
            drop(s2); // broker closes it
            pool.put(&addr, c2);
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(pool.take(&addr).is_none(), "closed connection not reused");

            let c3 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let mut s3 = listener.accept().await.expect("accept");
            s3.write_all(b"x").await.expect("write");
            pool.put(&addr, c3);
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(
                pool.take(&addr).is_none(),
                "connection with unread bytes not reused"
            );
            drop(s1);
        });
    }

    #[test]
    fn pool_expires_idle_connections() {
        glommio::LocalExecutor::default().run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let pool = Pool::new(2, Duration::from_millis(10));
            let c1 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let _s1 = listener.accept().await.expect("accept");
            pool.put(&addr, c1);
            glommio::timer::sleep(Duration::from_millis(30)).await;
            assert_eq!(pool.sweep(), 0);
            assert!(pool.take(&addr).is_none());
        });
    }
}
