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
/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Produce request bytes per second (KIP-13).
    ProduceBytes,
    /// Fetch response bytes per second (KIP-13).
    FetchBytes,
    /// Requests per second (Sluice's form of KIP-124's request quota: see
    /// [`crate::policy::QuotaRule::requests_per_s`]).
    Requests,
    /// New connections per second from one source (KIP-612's connection creation rate).
    Connections,
}

impl Kind {
    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            Kind::ProduceBytes => "produce_bytes",
            Kind::FetchBytes => "fetch_bytes",
            Kind::Requests => "requests",
            Kind::Connections => "connections",
        }
    }

    /// Burst allowance, as seconds of a shard's share: 0.5 s for rates charged with debt (a
    /// request over the limit is throttled, not refused); 1 s for the connection rate, which is
    /// enforced by refusing (KIP-612 measures it over windows of about a second). The broker
    /// measures rates over 11 one-second samples, so it allows longer bursts still. With 0.1 s a
    /// client whose delays were handed out at a share that has since grown lost what its bucket
    /// refilled beyond 0.1 s while it waited: a consumer draining partitions over two shards
    /// reached 0.93 of the limit in simulation, 0.98 with 0.5 s.
    pub fn burst_s(self) -> f64 {
        match self {
            Kind::Connections => 1.0,
            _ => 0.5,
        }
    }

    /// The burst of a bucket refilled at `share` per second: never below one unit, so that
    /// [`QuotaTable::try_take`] of one unit can succeed however small the share.
    fn burst(self, share: f64) -> f64 {
        (share * self.burst_s()).max(1.0)
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
    /// Units admitted in the current interval.
    admitted: f64,
    /// A take went into debt in the current interval.
    throttled: bool,
    /// The end of the longest delay handed out: until then a client waits to send more.
    waiting_until: Nanos,
    last_used: Nanos,
}

fn nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
        let fair = limit / self.shards as f64;
        self.with_entry(key, limit, now, |e| {
            e.admitted += units as f64;
            let mut d = e.bucket.take(units as f64, now);
            if !d.is_zero() && e.share < fair {
                // A shard whose share is below an equal split (its clients were idle here) asks
                // for no longer a wait than an equal share would: the debt stays in its bucket,
                // so the next request waits for the rest, while the owner raises its share. At
                // the floor share a 256 KiB Fetch response would otherwise stall its connection
                // for seconds, longer than the share takes to follow.
                d = e.bucket.delay_at(fair);
            }
            if !d.is_zero() {
                e.throttled = true;
                e.waiting_until = e.waiting_until.max(now.saturating_add(nanos(d)));
            }
            d
        })
    }

    /// Takes `units` from `key` only if its bucket holds them (no debt): true when admitted.
    /// For limits enforced by refusing (the connection rate), where a refused attempt must not
    /// cost tokens. A refusal counts as throttled for the demand report.
    pub fn try_take(&self, key: &Key, limit: f64, units: usize, now: Nanos) -> bool {
        self.with_entry(key, limit, now, |e| {
            if e.bucket.tokens(now) >= units as f64 {
                e.bucket.take(units as f64, now);
                e.admitted += units as f64;
                true
            } else {
                e.throttled = true;
                false
            }
        })
    }

    /// Runs `f` on the entry of `key`, made (with an equal share) if new to this shard.
    /// Allocates only for a key new to this shard.
    fn with_entry<T: Default>(
        &self,
        key: &Key,
        limit: f64,
        now: Nanos,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> T {
        let mut entries = self.entries.borrow_mut();
        let kind = key.2;
        if !entries.contains_key(key) {
            let share = limit / self.shards as f64;
            entries.insert(
                key.clone(),
                Entry {
                    bucket: TokenBucket::new(share, kind.burst(share), now),
                    share,
                    limit,
                    admitted: 0.0,
                    throttled: false,
                    waiting_until: 0,
                    last_used: now,
                },
            );
        }
        let Some(e) = entries.get_mut(key) else {
            return T::default();
        };
        if e.limit != limit {
            // The rule changed (reload): start again from an equal share.
            e.limit = limit;
            e.share = limit / self.shards as f64;
            e.bucket.set_rate(e.share, kind.burst(e.share), now);
        }
        e.last_used = now;
        f(e)
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
            // Still in debt, or a client still waiting out a delay handed out here, counts as
            // throttled: a client muted for a large request charges nothing for a while but
            // wants as much as before (lumpy Fetch responses). Without the wait, a share that
            // grew pays the debt off before the client's delay ends, and the interval reads as
            // no demand at all.
            let in_debt = e.bucket.tokens(now) < 0.0;
            let waiting = now < e.waiting_until;
            let throttled = e.throttled || in_debt || waiting;
            let demand = shares::demand(e.admitted / secs, e.share, throttled);
            tracing::trace!(shard = self.shard, key = ?key, admitted_per_s = e.admitted / secs,
                share = e.share, throttled = e.throttled, in_debt, waiting, demand,
                "quota demand");
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
            e.bucket.set_rate(share, s.key.2.burst(share), now);
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

    /// A closed-loop client of `conns.len()` connections (the shard of each given), each with one
    /// request in flight, as a Kafka consumer has one Fetch in flight per broker: a response of
    /// `size` units arrives `rtt_ms` after its request, is charged on arrival, and the connection
    /// sends its next request when the delay handed out has passed (KIP-219: the client waits,
    /// and Sluice mutes it). Each shard reports at its own phase of the 100 ms interval and
    /// rebalances what it owns then, as `quota_loop` does. Returns the rate achieved from the
    /// first second to the end, as a fraction of the limit.
    fn simulate_lumpy(n: usize, conns: &[usize], size: usize, rtt_ms: u64, seconds: u64) -> f64 {
        simulate(n, conns, size, rtt_ms, seconds, None)
    }

    /// As [`simulate_lumpy`], each connection with `backlog` units to fetch, after which it
    /// stops (a consumer draining a topic whose partitions are led by different brokers): the
    /// rate is measured from the first second to the last charge.
    fn simulate(
        n: usize,
        conns: &[usize],
        size: usize,
        rtt_ms: u64,
        seconds: u64,
        backlog: Option<usize>,
    ) -> f64 {
        let limit = 1024.0 * 1024.0;
        let tables: Vec<QuotaTable> = (0..n).map(|i| QuotaTable::new(i, n)).collect();
        let key: Key = ("r".into(), "consumer".into(), Kind::FetchBytes);
        let mut next_send = vec![0; conns.len()];
        let mut arrives: Vec<Option<Nanos>> = vec![None; conns.len()];
        let mut left = vec![backlog.unwrap_or(usize::MAX); conns.len()];
        let phase: Vec<u64> = (0..n as u64).map(|i| (i * 37 + 11) % 100).collect();
        let mut charged = 0.0;
        let mut last = 0;
        for t in 0..seconds * 1000 {
            let now = t * MS;
            for (c, shard) in conns.iter().enumerate() {
                match arrives[c] {
                    None if now >= next_send[c] && left[c] > 0 => {
                        arrives[c] = Some(now + rtt_ms * MS)
                    }
                    Some(at) if now >= at => {
                        let units = size.min(left[c]);
                        left[c] -= units;
                        let d = tables[*shard].take(&key, limit, units, now);
                        if t >= 1000 {
                            charged += units as f64;
                            last = t;
                        }
                        arrives[c] = None;
                        next_send[c] = now + nanos(d.min(Duration::from_secs(10)));
                    }
                    _ => {}
                }
            }
            for (i, table) in tables.iter().enumerate() {
                if t % 100 != phase[i] {
                    continue;
                }
                for (owner, r) in table.reports(INTERVAL, now) {
                    tables[owner].on_report(i, r, now);
                }
                for s in table.rebalance(now) {
                    for t in &tables {
                        t.on_shares(&s, now);
                    }
                }
            }
        }
        let window = match backlog {
            None => (seconds - 1) as f64,
            Some(_) => (last.saturating_sub(1000) as f64 / 1000.0).max(1e-3),
        };
        charged / limit / window
    }

    /// A consumer draining three partitions on three brokers, two of its connections on one
    /// shard and one on the other: the partition on the lone connection finishes first, and its
    /// shard's share must move to the other shard for the rest. Smoothing demand over a second
    /// (tried) held the idle shard's share too long: 0.81 with 256 KiB responses.
    #[test]
    fn a_draining_consumer_on_uneven_shards_stays_within_ten_percent() {
        let kib = 1024;
        for (n, conns) in [
            (2, &[0, 0, 1][..]),
            (2, &[0, 1, 1][..]),
            (1, &[0, 0, 0][..]),
        ] {
            for size in [64 * kib, 256 * kib] {
                let r = simulate(n, conns, size, 2, 30, Some(3 * 1024 * kib));
                eprintln!("drain: {n} shards {conns:?}, {} KiB: {r:.3}", size / kib);
                assert!(
                    (0.9..=1.1).contains(&r),
                    "{n} shards {conns:?}, {} KiB: {r:.3} of the limit",
                    size / kib
                );
            }
        }
    }

    /// Multi-shard accuracy with lumpy charges, as a Java consumer's Fetch responses are (64 or
    /// 256 KiB each, one connection per broker): within 10% of the limit from the first second
    /// on, with the connections on one shard or spread. Before the wait count and the
    /// equal-share delay cap, the same simulation gave 0.73-0.79 in 4 of these cases (a
    /// connection on a shard at the floor share stalled for seconds).
    #[test]
    fn lumpy_fetch_responses_track_the_limit_on_several_shards() {
        let kib = 1024;
        for (n, conns, what) in [
            (2, &[0, 0, 0][..], "all on shard 0"),
            (2, &[0, 0, 1][..], "two on shard 0, one on shard 1"),
            (2, &[1, 0, 1][..], "one on shard 0, two on shard 1"),
            (2, &[0, 1][..], "one on each"),
            (4, &[0, 1, 2][..], "one on each of three"),
            (4, &[3, 3, 3][..], "all on shard 3"),
        ] {
            for size in [64 * kib, 256 * kib] {
                for rtt in [1, 5] {
                    let r = simulate_lumpy(n, conns, size, rtt, 11);
                    eprintln!(
                        "{n} shards, {what}, {} KiB, rtt {rtt} ms: {r:.3}",
                        size / kib
                    );
                    assert!(
                        (0.9..=1.1).contains(&r),
                        "{n} shards, {what}, {} KiB, rtt {rtt} ms: {r:.3} of the limit",
                        size / kib
                    );
                }
            }
        }
    }

    #[test]
    fn try_take_refuses_without_debt_and_the_burst_is_one_second() {
        let t = QuotaTable::new(0, 1);
        let k: Key = ("r".into(), "10.0.0.1".into(), Kind::Connections);
        // 5/s: a full bucket holds 5 (1 s), then one more every 200 ms.
        let admitted = (0..20).filter(|_| t.try_take(&k, 5.0, 1, 0)).count();
        assert_eq!(admitted, 5);
        assert!(!t.try_take(&k, 5.0, 1, 100 * MS));
        assert!(t.try_take(&k, 5.0, 1, 200 * MS));
        // Refusals cost nothing: still one token every 200 ms.
        assert!(!t.try_take(&k, 5.0, 1, 300 * MS));
        assert!(t.try_take(&k, 5.0, 1, 400 * MS));
        // A refusal reads as demand.
        let r = t.reports(INTERVAL, 400 * MS);
        assert!(r[0].1.demand >= 5.0, "{r:?}");
    }

    #[test]
    fn request_rate_is_charged_with_debt() {
        let t = QuotaTable::new(0, 1);
        let k: Key = ("r".into(), "client".into(), Kind::Requests);
        // 100/s, 0.5 s of burst: 50 requests pass, the 60th waits 100 ms.
        for _ in 0..50 {
            assert_eq!(t.take(&k, 100.0, 1, 0), Duration::ZERO);
        }
        let mut d = Duration::ZERO;
        for _ in 0..10 {
            d = t.take(&k, 100.0, 1, 0);
        }
        assert_eq!(d, Duration::from_millis(100));
    }

    /// A shard below an equal split asks for no longer a wait than an equal share would; the
    /// debt stays and is repaid at its own share.
    #[test]
    fn delay_on_a_small_share_is_capped_at_an_equal_split() {
        let t = QuotaTable::new(1, 2);
        let k = key();
        t.take(&k, 1000.0, 0, 0);
        t.on_shares(
            &Shares {
                key: k.clone(),
                shares: vec![975.0, 25.0],
            },
            0,
        );
        // 249.5 units of debt (burst 12.5): 0.499 s at the equal share of 500, not 10 s at 25.
        let d = t.take(&k, 1000.0, 262, 0);
        assert_eq!(d, Duration::from_millis(499));
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
