//! Per-shard pool of idle upstream connections, keyed by credential and upstream address. See the
//! module docs of [`crate::upstream`] for when a connection is returned and reused: only with a
//! [`Poolable`] proof, made by [`crate::upstream::reuse::Usage`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

use crate::upstream::reuse::{Credential, Poolable};

/// A pool key: the credential a connection carries and the broker address.
type Key = (Credential, String);
/// An idle connection, the proof it was pooled with, and since when it is idle.
type Idle = (TcpStream, Poolable, Instant);

/// Idle upstream connections of one shard.
pub struct Pool {
    max_idle_per_broker: Cell<usize>,
    idle_timeout: Cell<Duration>,
    idle: RefCell<HashMap<Key, Vec<Idle>>>,
    reuses: RefCell<HashMap<String, u64>>,
}

impl Pool {
    /// An empty pool keeping at most `max_idle_per_broker` connections per address for `idle_timeout`.
    pub fn new(max_idle_per_broker: usize, idle_timeout: Duration) -> Self {
        Self {
            max_idle_per_broker: Cell::new(max_idle_per_broker),
            idle_timeout: Cell::new(idle_timeout),
            idle: RefCell::new(HashMap::new()),
            reuses: RefCell::new(HashMap::new()),
        }
    }

    /// Changes the limits (a reload); connections above the new limit close at the next sweep.
    pub fn set_limits(&self, max_idle_per_broker: usize, idle_timeout: Duration) {
        self.max_idle_per_broker.set(max_idle_per_broker);
        self.idle_timeout.set(idle_timeout);
    }

    /// The idle timeout in force.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout.get()
    }

    /// Per address (all credentials): idle connections now and reuses since start.
    pub fn stats(&self) -> Vec<(String, u64, u64)> {
        let mut by_addr: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for ((_, addr), list) in self.idle.borrow().iter() {
            by_addr.entry(addr.clone()).or_default().0 += list.len() as u64;
        }
        for (addr, n) in self.reuses.borrow().iter() {
            by_addr.entry(addr.clone()).or_default().1 += n;
        }
        by_addr
            .into_iter()
            .map(|(a, (idle, reuses))| (a, idle, reuses))
            .collect()
    }

    /// Takes a live idle connection to `addr` that carries `credential`, newest first, with the
    /// proof it was pooled with; stale or dead ones are closed.
    pub fn take(&self, credential: &Credential, addr: &str) -> Option<(TcpStream, Poolable)> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(&(credential.clone(), addr.to_string()))?;
        while let Some((s, proof, since)) = list.pop() {
            if since.elapsed() < self.idle_timeout.get() && is_idle_and_open(&s) {
                *self
                    .reuses
                    .borrow_mut()
                    .entry(addr.to_string())
                    .or_insert(0) += 1;
                return Some((s, proof));
            }
        }
        None
    }

    /// Returns a clean connection (nothing in flight, nothing unread) to the pool of `addr`, under
    /// the credential `proof` names.
    pub fn put(&self, proof: Poolable, addr: &str, stream: TcpStream) {
        let (max, timeout) = (self.max_idle_per_broker.get(), self.idle_timeout.get());
        if max == 0 {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle
            .entry((proof.credential().clone(), addr.to_string()))
            .or_default();
        list.retain(|(_, _, since)| since.elapsed() < timeout);
        if list.len() < max {
            list.push((stream, proof, Instant::now()));
        }
    }

    /// Closes idle connections past their timeout; returns how many remain.
    pub fn sweep(&self) -> usize {
        let (max, timeout) = (self.max_idle_per_broker.get(), self.idle_timeout.get());
        let mut idle = self.idle.borrow_mut();
        idle.retain(|_, list| {
            list.retain(|(_, _, since)| since.elapsed() < timeout);
            list.truncate(max);
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
    use crate::upstream::reuse::Usage;
    use futures_lite::AsyncWriteExt;

    /// A proof as a session makes it: a Metadata request answered, no SASL.
    fn proof() -> Poolable {
        let u = Usage::default();
        u.request(3, true);
        u.answered(3);
        u.poolable().expect("poolable")
    }

    #[test]
    fn pool_keeps_live_connections_and_drops_closed_ones() {
        glommio::LocalExecutor::default().run(async {
            let listener = glommio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let pool = Pool::new(2, Duration::from_secs(60));
            let c1 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let s1 = listener.accept().await.expect("accept");
            pool.put(proof(), &addr, c1);
            assert!(
                pool.take(&Credential::Unauthenticated, &addr).is_some(),
                "live connection reused"
            );

            let c2 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let s2 = listener.accept().await.expect("accept");
            drop(s2); // broker closes it
            pool.put(proof(), &addr, c2);
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(
                pool.take(&Credential::Unauthenticated, &addr).is_none(),
                "closed connection not reused"
            );

            let c3 = TcpStream::connect(addr.as_str()).await.expect("connect");
            let mut s3 = listener.accept().await.expect("accept");
            s3.write_all(b"x").await.expect("write");
            pool.put(proof(), &addr, c3);
            glommio::timer::sleep(Duration::from_millis(20)).await;
            assert!(
                pool.take(&Credential::Unauthenticated, &addr).is_none(),
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
            pool.put(proof(), &addr, c1);
            glommio::timer::sleep(Duration::from_millis(30)).await;
            assert_eq!(pool.sweep(), 0);
            assert!(pool.take(&Credential::Unauthenticated, &addr).is_none());
        });
    }
}
