//! Connecting to an upstream broker: name resolution off the shard, connect timeout, and
//! per-address exponential backoff after failures.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

/// Why an upstream connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The host name did not resolve.
    #[error("cannot resolve {addr}: {reason}")]
    Resolve { addr: String, reason: String },
    /// Every resolved address refused or timed out.
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// No address was given or known.
    #[error("no upstream address to try")]
    NoAddress,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next_attempt: Instant,
}

/// Connects made and failed to one upstream address (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectStats {
    pub connects: u64,
    pub failures: u64,
}

/// Per-shard reconnect backoff, by upstream `host:port`. Timeouts are live (see
/// [`Connector::set_params`]).
#[derive(Debug)]
pub struct Connector {
    connect_timeout: Cell<Duration>,
    backoff_base: Cell<Duration>,
    backoff_max: Cell<Duration>,
    backoff: RefCell<HashMap<String, Backoff>>,
    stats: RefCell<HashMap<String, ConnectStats>>,
}

impl Connector {
    /// A connector with the given connect timeout and backoff bounds.
    pub fn new(connect_timeout: Duration, backoff_base: Duration, backoff_max: Duration) -> Self {
        Self {
            connect_timeout: Cell::new(connect_timeout),
            backoff_base: Cell::new(backoff_base),
            backoff_max: Cell::new(backoff_max),
            backoff: RefCell::new(HashMap::new()),
            stats: RefCell::new(HashMap::new()),
        }
    }

    /// Changes the connect timeout and backoff bounds (a reload); applies from the next connect.
    pub fn set_params(
        &self,
        connect_timeout: Duration,
        backoff_base: Duration,
        backoff_max: Duration,
    ) {
        self.connect_timeout.set(connect_timeout);
        self.backoff_base.set(backoff_base);
        self.backoff_max.set(backoff_max);
    }

    /// Connects made and failed, by upstream address, since start.
    pub fn stats(&self) -> Vec<(String, ConnectStats)> {
        self.stats
            .borrow()
            .iter()
            .map(|(a, s)| (a.clone(), *s))
            .collect()
    }

    /// How long until `addr` may be tried again (zero when it may be tried now).
    pub fn backoff_remaining(&self, addr: &str) -> Duration {
        let now = Instant::now();
        self.backoff
            .borrow()
            .get(addr)
            .map(|b| b.next_attempt.saturating_duration_since(now))
            .unwrap_or(Duration::ZERO)
    }

    fn record_failure(&self, addr: &str) {
        let mut map = self.backoff.borrow_mut();
        let b = map.entry(addr.to_string()).or_insert(Backoff {
            failures: 0,
            next_attempt: Instant::now(),
        });
        b.failures = b.failures.saturating_add(1);
        self.stats
            .borrow_mut()
            .entry(addr.to_string())
            .or_default()
            .failures += 1;
        let exp = b.failures.saturating_sub(1).min(16);
        let delay = self
            .backoff_base
            .get()
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max.get());
        b.next_attempt = Instant::now() + delay;
    }

    fn record_success(&self, addr: &str) {
        self.backoff.borrow_mut().remove(addr);
        self.stats
            .borrow_mut()
            .entry(addr.to_string())
            .or_default()
            .connects += 1;
    }

    /// Connects to `addr` (`host:port`), first waiting out its backoff if it failed recently.
    ///
    /// # Errors
    /// [`ConnectError`] when it does not resolve or no resolved address accepts in time; the
    /// address's backoff then grows (base doubling per failure, up to the maximum).
    pub async fn connect(&self, addr: &str) -> Result<TcpStream, ConnectError> {
        let wait = self.backoff_remaining(addr);
        if !wait.is_zero() {
            glommio::timer::sleep(wait).await;
        }
        let targets = match resolve(addr).await {
            Ok(t) if !t.is_empty() => t,
            Ok(_) => {
                self.record_failure(addr);
                return Err(ConnectError::Resolve {
                    addr: addr.to_string(),
                    reason: "no addresses".into(),
                });
            }
            Err(reason) => {
                self.record_failure(addr);
                return Err(ConnectError::Resolve {
                    addr: addr.to_string(),
                    reason,
                });
            }
        };
        let mut last = String::new();
        for sa in targets {
            match TcpStream::connect_timeout(sa, self.connect_timeout.get()).await {
                Ok(s) => {
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::debug!(upstream = addr, error = %e, "cannot set TCP_NODELAY");
                    }
                    self.record_success(addr);
                    return Ok(s);
                }
                Err(e) => last = e.to_string(),
            }
        }
        self.record_failure(addr);
        Err(ConnectError::Connect {
            addr: addr.to_string(),
            reason: last,
        })
    }

    /// Tries `candidates` in order (skipping ones in backoff while others are not), returning the
    /// first connection made and the address it went to.
    ///
    /// # Errors
    /// The last [`ConnectError`] when every candidate failed.
    pub async fn connect_any(
        &self,
        candidates: &[String],
    ) -> Result<(TcpStream, String), ConnectError> {
        let mut order: Vec<&String> = candidates.iter().collect();
        // Addresses not in backoff first, then by time left.
        order.sort_by_key(|a| self.backoff_remaining(a));
        let mut last = ConnectError::NoAddress;
        for a in order {
            match self.connect(a).await {
                Ok(s) => return Ok((s, a.clone())),
                Err(e) => {
                    tracing::warn!(upstream = %a, error = %e, "upstream connect failed, trying next");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// Resolves `host:port`; literal IPs without a system call, names on the blocking pool (never on
/// the shard's thread).
pub(crate) async fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return Ok(vec![sa]);
    }
    let owned = addr.to_string();
    glommio::executor()
        .spawn_blocking(move || crate::config::resolve(&owned).map_err(|e| e.to_string()))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_resets() {
        let c = Connector::new(
            Duration::from_millis(100),
            Duration::from_millis(10),
            Duration::from_millis(35),
        );
        assert!(c.backoff_remaining("a:1").is_zero());
        c.record_failure("a:1");
        let d1 = c.backoff_remaining("a:1");
        assert!(
            d1 > Duration::ZERO && d1 <= Duration::from_millis(10),
            "{d1:?}"
        );
        c.record_failure("a:1");
        c.record_failure("a:1");
        let d3 = c.backoff_remaining("a:1");
        assert!(
            d3 > Duration::from_millis(20) && d3 <= Duration::from_millis(35),
            "{d3:?}"
        );
        c.record_success("a:1");
        assert!(c.backoff_remaining("a:1").is_zero());
    }

    #[test]
    fn refused_connect_fails_and_backs_off() {
        glommio::LocalExecutor::default().run(async {
            // Bind then drop to find a port that refuses.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap_or(1);
            let addr = format!("127.0.0.1:{port}");
            let c = Connector::new(
                Duration::from_millis(500),
                Duration::from_millis(20),
                Duration::from_millis(40),
            );
            let err = c.connect(&addr).await.expect_err("refused");
            assert!(matches!(err, ConnectError::Connect { .. }), "{err}");
            assert!(!c.backoff_remaining(&addr).is_zero());
            let err = c
                .connect_any(&["nonexistent.invalid:1".to_string(), addr.clone()])
                .await
                .expect_err("all fail");
            assert!(matches!(
                err,
                ConnectError::Connect { .. } | ConnectError::Resolve { .. }
            ));
        });
    }
}
