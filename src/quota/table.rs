//! One shard's quota state: a [`TokenBucket`] per (rule, key, kind) in use on this shard, with
//! its share of the rule's global limit, and, for the keys this shard owns, every shard's
//! reported demand (control plane, every [`INTERVAL`]).
//!
//! The owner of a key is `hash(rule, key, kind) % shards`. Each interval every shard reports the
//! demand of each active key to its owner, the owner splits the limit ([`shares::split`]) and
//! sends every shard its share. Keys unused for [`IDLE`] are dropped on both sides.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use super::bucket::{Nanos, TokenBucket};
use super::shares;

/// How often shards report demand and owners rebalance.
pub const INTERVAL: Duration = Duration::from_millis(100);
/// Keys unused this long are dropped.
pub const IDLE: Duration = Duration::from_secs(30);
/// Burst allowance, as seconds of a share.
const BURST_S: f64 = 0.1;

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Produce request bytes per second.
    ProduceBytes,
    /// Fetch response bytes per second.
    FetchBytes,
}

impl Kind {
    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            Kind::ProduceBytes => "produce_bytes",
            Kind::FetchBytes => "fetch_bytes",
        }
    }
}

/// A quota key: the rule's name, the key value (a client id or a source address), the kind.
pub type Key = (String, String, Kind);

/// One key's demand, from a shard to the key's owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub key: Key,
    /// The rule's global limit, per second.
    pub limit: f64,
    /// Units per second this shard wants ([`shares::demand`]).
    pub demand: f64,
}

/// New shares of one key, from its owner to every shard.
#[derive(Debug, Clone, PartialEq)]
pub struct Shares {
    pub key: Key,
    /// Per shard, indexed by shard id.
    pub shares: Vec<f64>,
}

struct Entry {
    bucket: TokenBucket,
    share: f64,
    limit: f64,
    admitted: f64,
    throttled: bool,
    last_used: Nanos,
}

struct Owned {
    limit: f64,
    demand: Vec<f64>,
    changed: bool,
    last_report: Nanos,
}

/// Quota state of one shard (`!Sync`; the shard owns it).
pub struct QuotaTable {
    shard: usize,
    shards: usize,
    epoch: Instant,
    entries: RefCell<HashMap<Key, Entry>>,
    owned: RefCell<HashMap<Key, Owned>>,
}

/// The shard that owns `key`.
pub fn owner(key: &Key, shards: usize) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

impl QuotaTable {
    /// Empty state for shard `shard` of `shards`.
    pub fn new(shard: usize, shards: usize) -> Self {
        Self {
            shard,
            shards: shards.max(1),
            epoch: Instant::now(),
            entries: RefCell::new(HashMap::new()),
            owned: RefCell::new(HashMap::new()),
        }
    }

    /// Nanoseconds since this table was made (the buckets' clock).
    pub fn now(&self) -> Nanos {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Charges `units` to `key` (limit `limit` per second, all shards together) at `now`; returns
    /// how long the client must wait (zero when within its quota). A key new to this shard starts
    /// with an equal share until its owner says otherwise.
    pub fn take(&self, key: &Key, limit: f64, units: usize, now: Nanos) -> Duration {
        let mut entries = self.entries.borrow_mut();
        if !entries.contains_key(key) {
            let share = limit / self.shards as f64;
            entries.insert(
                key.clone(),
                Entry {
                    bucket: TokenBucket::new(share, share * BURST_S, now),
                    share,
                    limit,
                    admitted: 0.0,
                    throttled: false,
                    last_used: now,
                },
            );
        }
        let Some(e) = entries.get_mut(key) else {
            return Duration::ZERO;
        };
        if e.limit != limit {
            // The rule changed (reload): start again from an equal share.
            e.limit = limit;
            e.share = limit / self.shards as f64;
            e.bucket.set_rate(e.share, e.share * BURST_S, now);
        }
        e.last_used = now;
        e.admitted += units as f64;
        let d = e.bucket.take(units as f64, now);
        if !d.is_zero() {
            e.throttled = true;
        }
        d
    }

    /// Every active key's demand over the last `interval`, grouped by owner shard; resets the
    /// interval counters and drops idle keys.
    pub fn reports(&self, interval: Duration, now: Nanos) -> Vec<(usize, Report)> {
        let secs = interval.as_secs_f64().max(1e-3);
        let idle = u64::try_from(IDLE.as_nanos()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut entries = self.entries.borrow_mut();
        entries.retain(|_, e| now.saturating_sub(e.last_used) < idle);
        for (key, e) in entries.iter_mut() {
            // Still in debt counts as throttled: a client muted for a large request charges
            // nothing for a while but wants as much as before (lumpy Fetch responses).
            let in_debt = e.bucket.tokens(now) < 0.0;
            let demand = shares::demand(e.admitted / secs, e.share, e.throttled || in_debt);
            tracing::trace!(shard = self.shard, key = ?key, admitted_per_s = e.admitted / secs,
                share = e.share, throttled = e.throttled, in_debt, demand, "quota demand");
            out.push((
                owner(key, self.shards),
                Report {
                    key: key.clone(),
                    limit: e.limit,
                    demand,
                },
            ));
            e.admitted = 0.0;
            e.throttled = false;
        }
        out
    }

    /// Owner side: a shard's report.
    pub fn on_report(&self, from: usize, r: Report, now: Nanos) {
        if from >= self.shards {
            return;
        }
        let mut owned = self.owned.borrow_mut();
        let o = owned.entry(r.key).or_insert_with(|| Owned {
            limit: r.limit,
            demand: vec![0.0; self.shards],
            changed: true,
            last_report: now,
        });
        if o.limit != r.limit {
            o.limit = r.limit;
        }
        if o.demand[from] != r.demand {
            o.demand[from] = r.demand;
            o.changed = true;
        }
        o.last_report = now;
    }

    /// Owner side: new shares for every owned key whose demand changed; drops keys no shard has
    /// reported for [`IDLE`].
    pub fn rebalance(&self, now: Nanos) -> Vec<Shares> {
        let idle = u64::try_from(IDLE.as_nanos()).unwrap_or(u64::MAX);
        let mut owned = self.owned.borrow_mut();
        owned.retain(|_, o| now.saturating_sub(o.last_report) < idle);
        let mut out = Vec::new();
        for (key, o) in owned.iter_mut() {
            // Demand that stopped being reported decays to zero.
            if now.saturating_sub(o.last_report)
                > 3 * u64::try_from(INTERVAL.as_nanos()).unwrap_or(0)
            {
                o.demand.iter_mut().for_each(|d| *d = 0.0);
            }
            if o.changed {
                o.changed = false;
                out.push(Shares {
                    key: key.clone(),
                    shares: shares::split(o.limit, &o.demand),
                });
            }
        }
        out
    }

    /// Every shard: applies new shares to the keys in use here.
    pub fn on_shares(&self, s: &Shares, now: Nanos) {
        let Some(share) = s.shares.get(self.shard).copied() else {
            return;
        };
        if let Some(e) = self.entries.borrow_mut().get_mut(&s.key) {
            e.share = share;
            e.bucket.set_rate(share, share * BURST_S, now);
        }
    }

    /// Keys in use on this shard.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether no key is in use on this shard.
    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn key() -> Key {
        ("r".into(), "client-a".into(), Kind::ProduceBytes)
    }

    /// Two shards exchange reports and shares every 100 ms by hand; a client on shard 0 only
    /// ends up with (nearly) the whole limit there.
    #[test]
    fn shares_follow_the_demand_between_two_tables() {
        let tables = [QuotaTable::new(0, 2), QuotaTable::new(1, 2)];
        let limit = 1_000_000.0;
        let mut admitted_last_second = 0.0;
        let mut muted_until = 0;
        for t in 0..3000u64 {
            let now = t * MS;
            // Shard 0: a client that waits out its delays, 1 KiB per request, one per ms.
            if now >= muted_until {
                let d = tables[0].take(&key(), limit, 1024, now);
                muted_until = now + u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                if t >= 2000 {
                    admitted_last_second += 1024.0;
                }
            }
            if t % 100 == 99 {
                for (from, table) in tables.iter().enumerate() {
                    for (owner, r) in table.reports(INTERVAL, now) {
                        tables[owner].on_report(from, r, now);
                    }
                }
                for table in &tables {
                    for s in table.rebalance(now) {
                        for t in &tables {
                            t.on_shares(&s, now);
                        }
                    }
                }
            }
        }
        // One request per ms offered (1 MiB/s > the limit): the admitted rate approaches the limit.
        assert!(
            admitted_last_second > 0.85 * limit && admitted_last_second < 1.1 * limit,
            "admitted {admitted_last_second}"
        );
        assert_eq!(tables[1].len(), 0, "shard 1 never saw the key");
    }

    #[test]
    fn idle_keys_are_dropped() {
        let t = QuotaTable::new(0, 1);
        t.take(&key(), 1000.0, 10, 0);
        assert_eq!(t.len(), 1);
        let late = u64::try_from(IDLE.as_nanos()).unwrap_or(0) + 1;
        assert!(t.reports(INTERVAL, late).is_empty());
        assert!(t.is_empty());
    }
}
