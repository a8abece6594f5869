//! Admission of a client connection right after accept (data plane): the shard's own cap
//! (`limits.max_connections_per_shard`) and the per-source connection quotas of
//! `[[policy.quota]]`: `max_connections` (open at once, over all shards, as the broker's
//! `max.connections.per.ip`; see [`crate::quota::conns`]) and `connections_per_s` (KIP-612's
//! connection creation rate, a [`Kind::Connections`] share of the shard's quota table). Nothing
//! here waits on another shard.
//!
//! A refused connection is closed at once, counted in `sluice_connections_refused_total` by
//! reason, and logged at warn at most 5 times a second per shard and reason (the next line
//! saying how many were held back, [`LogBudget`]), at debug otherwise.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::metrics::log_budget::LogBudget;
use crate::metrics::Refusal;
use crate::policy::Identity;
use crate::proxy::shard::Shard;
use crate::quota::conns::ConnKey;
use crate::quota::Kind;

/// An admitted connection's place in the per-source counts; dropping it (when the session ends)
/// gives the places back.
pub struct Admitted {
    shard: Rc<Shard>,
    counted: Vec<ConnKey>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        for key in &self.counted {
            self.shard.conns.close(key);
        }
    }
}

/// Admits a connection from `peer` on `shard`, or says why not (reason and a line for the log).
///
/// # Errors
/// The [`Refusal`] and its explanation (which limit, which rule).
pub fn admit(shard: &Rc<Shard>, peer: Option<SocketAddr>) -> Result<Admitted, (Refusal, String)> {
    let cfg = shard.config();
    let cap = cfg.max_connections_per_shard;
    if shard.active_connections() >= cap {
        return Err((
            Refusal::ShardLimit,
            format!("limits.max_connections_per_shard ({cap}) reached"),
        ));
    }
    let mut admitted = Admitted {
        shard: shard.clone(),
        counted: Vec::new(),
    };
    if !cfg.policy.has_connection_quota() {
        return Ok(admitted);
    }
    let Some(ip) = peer.map(|p| p.ip().to_canonical()) else {
        return Ok(admitted);
    };
    let id = Identity {
        client_id: None,
        source: Some(ip),
    };
    let now = shard.quotas.now();
    for rule in cfg.policy.quotas(&id).filter(|r| r.limits_connections()) {
        let source = ip.to_string();
        if let Some(max) = rule.max_connections {
            let key = (rule.name.clone(), source.clone());
            if !shard.conns.try_open(&key, max) {
                // `admitted` gives back the places already taken.
                return Err((
                    Refusal::SourceLimit,
                    format!(
                        "quota {}: max_connections ({max}) for {ip} reached",
                        rule.name
                    ),
                ));
            }
            admitted.counted.push(key);
        }
        if let Some(rate) = rule.connections_per_s {
            let key = (rule.name.clone(), source, Kind::Connections);
            if !shard.quotas.try_take(&key, rate, 1, now) {
                return Err((
                    Refusal::ConnectionRate,
                    format!(
                        "quota {}: connections_per_s ({rate}) for {ip} exceeded",
                        rule.name
                    ),
                ));
            }
        }
    }
    Ok(admitted)
}

/// Rate-limits the log of refusals on one shard: a few warn lines a second per reason at most
/// ([`LogBudget`]), the number suppressed reported on the next.
#[derive(Debug, Default)]
pub struct RefusalLog {
    budget: LogBudget,
}

impl RefusalLog {
    /// Logs one refusal: at warn within the budget of its reason, else at debug.
    pub fn log(&self, shard: usize, peer: Option<SocketAddr>, why: Refusal, detail: &str) {
        match self.budget.admit(("refused", why.label()), Instant::now()) {
            Some(suppressed) => tracing::warn!(
                shard,
                ?peer,
                reason = why.label(),
                suppressed,
                "connection refused: {detail}"
            ),
            None => tracing::debug!(
                shard,
                ?peer,
                reason = why.label(),
                "connection refused: {detail}"
            ),
        }
    }
}
