//! Connection count limits per source address over all shards (the broker's
//! `max.connections.per.ip`), enforced at accept without a shard ever waiting on another. Pure
//! logic: the accept path ([`crate::proxy::admission`]) calls [`ConnTable::try_open`] and
//! [`ConnTable::close`]; `quota_loop` in the control plane carries reports and grants.
//!
//! Every shard holds an *allowance* per key (rule, source address): it accepts a connection
//! while its count of open connections of that key is below its allowance, and refuses it
//! otherwise. The allowances of all shards never sum to more than the limit, so the global
//! count never exceeds it, whatever the timing:
//!
//! - A key new to a shard starts with its [`initial`] allowance, an equal split of the limit
//!   (the remainder to the shards after the owner); the initial allowances sum to the limit.
//! - Every [`super::table::INTERVAL`] a shard reports each key that changed (count, allowance in
//!   force, the last grant applied, connections refused) to the key's owner shard
//!   (`hash % shards`).
//! - The owner moves headroom to where it is wanted: first to shards that refused connections,
//!   the rest spread equally, so each shard's target is its count plus part of the headroom. It
//!   only *lowers* an allowance by a grant and counts the old, higher one as held until the shard
//!   reports the grant applied; it *raises* one only out of what no shard holds. At most one grant
//!   per shard and key is in flight. A refusal is remembered until a connection gets in there
//!   (or for 5 s), and spare allowance stays where it is, so places do not flap between shards.
//!
//! How exact: never above the limit (tested with random delivery delays). The cost is that a
//! connection can be refused while the source is under its limit: when it lands on a shard whose
//! allowance is used up, before the owner has moved headroom there (one to three intervals,
//! 100-300 ms; a client that retries gets in). Once headroom has been spread, each shard has room
//! for at least one more connection while the headroom is at least the number of shards, so only
//! the last `shards - 1` connections below the limit can meet such a refusal. A reload that
//! changes a key's limit starts that key again from the initial split (the old and new
//! allowances can overlap for one interval).

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// A connection quota key: the rule's name and the source address.
pub type ConnKey = (String, String);

/// One key's state on one shard, from the shard to the key's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnReport {
    pub key: ConnKey,
    /// The rule's limit, connections open at once over all shards.
    pub limit: u32,
    /// Connections open on the shard.
    pub count: u32,
    /// The allowance in force on the shard.
    pub allowance: u32,
    /// The generation of the last grant applied (0: the initial allowance).
    pub gen: u64,
    /// Connections refused since the last report.
    pub refused: u32,
}

/// A new allowance for one shard, from the key's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnGrant {
    pub key: ConnKey,
    /// The shard it is for.
    pub shard: usize,
    /// The limit it was computed for (a grant for another limit is stale and ignored).
    pub limit: u32,
    /// Increases with every grant the owner sends.
    pub gen: u64,
    pub allowance: u32,
}

/// The initial allowance of `shard` of `shards` for a key owned by `owner`: an equal split of
/// `limit`, the remainder to the shards after the owner. Sums to `limit` over all shards.
pub fn initial(limit: u32, shards: usize, shard: usize, owner: usize) -> u32 {
    let n = shards.max(1);
    let rank = (shard + n - owner % n) % n;
    let n32 = u32::try_from(n).unwrap_or(u32::MAX);
    limit / n32 + u32::from(u32::try_from(rank).unwrap_or(u32::MAX) < limit % n32)
}

/// The shard that owns `key`.
pub fn owner(key: &ConnKey, shards: usize) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

struct Local {
    limit: u32,
    count: u32,
    allowance: u32,
    gen: u64,
    refused: u32,
    dirty: bool,
}

/// Rebalances (intervals) after a key's last refusal during which spare allowance stays where
/// it is rather than returning to the initial split.
const STICKY_ROUNDS: u64 = 50;

#[derive(Debug, Clone)]
struct View {
    count: u32,
    allowance: u32,
    /// Connections refused there since it last had room (demand for more allowance).
    refused: u32,
    /// A grant sent and not yet reported applied: (generation, allowance).
    pending: Option<(u64, u32)>,
}

impl View {
    /// What the shard may hold now: its count, its allowance, or the grant on its way.
    fn held(&self) -> u32 {
        self.count
            .max(self.allowance)
            .max(self.pending.map_or(0, |p| p.1))
    }
}

struct Owned {
    limit: u32,
    views: Vec<View>,
    changed: bool,
    /// The rebalance round of the last refusal reported.
    last_refusal: Option<u64>,
}

/// Connection counts of one shard and, for the keys it owns, every shard's allowance
/// (`!Sync`; the shard owns it).
pub struct ConnTable {
    shard: usize,
    shards: usize,
    local: RefCell<HashMap<ConnKey, Local>>,
    owned: RefCell<HashMap<ConnKey, Owned>>,
    next_gen: Cell<u64>,
    round: Cell<u64>,
}

impl ConnTable {
    /// Empty state for shard `shard` of `shards`.
    pub fn new(shard: usize, shards: usize) -> Self {
        Self {
            shard,
            shards: shards.max(1),
            local: RefCell::new(HashMap::new()),
            owned: RefCell::new(HashMap::new()),
            next_gen: Cell::new(0),
            round: Cell::new(0),
        }
    }

    fn initial(&self, key: &ConnKey, limit: u32, shard: usize) -> u32 {
        initial(limit, self.shards, shard, owner(key, self.shards))
    }

    fn fresh(&self, key: &ConnKey, limit: u32) -> Local {
        Local {
            limit,
            count: 0,
            allowance: self.initial(key, limit, self.shard),
            gen: 0,
            refused: 0,
            dirty: false,
        }
    }

    /// A new connection of `key` (at most `limit` open over all shards): true when it may stay
    /// open (then [`ConnTable::close`] must follow when it closes), false when it must be
    /// refused.
    pub fn try_open(&self, key: &ConnKey, limit: u32) -> bool {
        let mut local = self.local.borrow_mut();
        if !local.contains_key(key) {
            let e = self.fresh(key, limit);
            local.insert(key.clone(), e);
        }
        let Some(e) = local.get_mut(key) else {
            return false;
        };
        if e.limit != limit {
            // A reload changed the limit: start again from the initial split.
            let count = e.count;
            *e = self.fresh(key, limit);
            e.count = count;
        }
        e.dirty = true;
        if e.count < e.allowance {
            e.count += 1;
            true
        } else {
            e.refused = e.refused.saturating_add(1);
            false
        }
    }

    /// A connection of `key` that [`ConnTable::try_open`] admitted has closed.
    pub fn close(&self, key: &ConnKey) {
        if let Some(e) = self.local.borrow_mut().get_mut(key) {
            e.count = e.count.saturating_sub(1);
            e.dirty = true;
        }
    }

    /// Connections of `key` open on this shard.
    pub fn count(&self, key: &ConnKey) -> u32 {
        self.local.borrow().get(key).map_or(0, |e| e.count)
    }

    /// The report of every key that changed since the last call, each with its owner shard.
    /// Keys back at their initial state with nothing open are dropped.
    pub fn reports(&self) -> Vec<(usize, ConnReport)> {
        let mut out = Vec::new();
        let mut local = self.local.borrow_mut();
        for (key, e) in local.iter_mut() {
            if !e.dirty {
                continue;
            }
            out.push((
                owner(key, self.shards),
                ConnReport {
                    key: key.clone(),
                    limit: e.limit,
                    count: e.count,
                    allowance: e.allowance,
                    gen: e.gen,
                    refused: e.refused,
                },
            ));
            e.dirty = false;
            e.refused = 0;
        }
        let shards = self.shards;
        let me = self.shard;
        local.retain(|key, e| {
            e.dirty
                || e.count > 0
                || e.allowance != initial(e.limit, shards, me, owner(key, shards))
        });
        out
    }

    /// Owner side: a shard's report.
    pub fn on_report(&self, from: usize, r: ConnReport) {
        if from >= self.shards {
            return;
        }
        let mut owned = self.owned.borrow_mut();
        let fresh = |limit: u32| Owned {
            limit,
            views: (0..self.shards)
                .map(|i| View {
                    count: 0,
                    allowance: self.initial(&r.key, limit, i),
                    refused: 0,
                    pending: None,
                })
                .collect(),
            changed: true,
            last_refusal: None,
        };
        let o = owned.entry(r.key.clone()).or_insert_with(|| fresh(r.limit));
        if o.limit != r.limit {
            *o = fresh(r.limit);
        }
        if r.refused > 0 {
            o.last_refusal = Some(self.round.get());
        }
        let v = &mut o.views[from];
        // Room there now serves earlier refusals.
        v.refused = if r.count < r.allowance {
            0
        } else {
            v.refused.saturating_add(r.refused)
        };
        v.count = r.count;
        v.allowance = r.allowance;
        if v.pending.is_some_and(|(g, _)| r.gen >= g) {
            v.pending = None;
        }
        o.changed = true;
    }

    /// Owner side, once per interval: new allowances for the keys whose reports changed.
    pub fn rebalance(&self) -> Vec<ConnGrant> {
        let round = self.round.get() + 1;
        self.round.set(round);
        let mut out = Vec::new();
        let mut owned = self.owned.borrow_mut();
        let n = self.shards;
        for (key, o) in owned.iter_mut() {
            let sticky = o
                .last_refusal
                .is_some_and(|r| round.saturating_sub(r) <= STICKY_ROUNDS);
            if o.last_refusal.is_some() && !sticky {
                // Quiet long enough: back towards the initial split (and no state).
                o.last_refusal = None;
                o.views.iter_mut().for_each(|v| v.refused = 0);
                o.changed = true;
            }
            if !o.changed {
                continue;
            }
            o.changed = false;
            let own = owner(key, n);
            let targets = targets(o.limit, &o.views, own, sticky);
            let held: u64 = o.views.iter().map(|v| u64::from(v.held())).sum();
            let mut free = u64::from(o.limit).saturating_sub(held);
            let mut grant = |shard: usize, v: &mut View, allowance: u32| {
                let gen = self.next_gen.get() + 1;
                self.next_gen.set(gen);
                v.pending = Some((gen, allowance));
                out.push(ConnGrant {
                    key: key.clone(),
                    shard,
                    limit: o.limit,
                    gen,
                    allowance,
                });
            };
            // Lower first (what they free counts once they report it applied), then raise out
            // of what no shard holds, shards that refused connections first.
            for (i, v) in o.views.iter_mut().enumerate() {
                let to = targets[i].max(v.count);
                if v.pending.is_none() && to < v.allowance {
                    grant(i, v, to);
                }
            }
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|i| std::cmp::Reverse(o.views[*i].refused));
            for i in order {
                let v = &mut o.views[i];
                if v.pending.is_some() || targets[i] <= v.allowance {
                    continue;
                }
                let held = v.held();
                let to = u64::from(targets[i]).min(u64::from(held) + free);
                let to = u32::try_from(to).unwrap_or(u32::MAX);
                if to > v.allowance {
                    free -= u64::from(to.saturating_sub(held));
                    grant(i, v, to);
                }
            }
        }
        // A key back at its initial split with nothing open anywhere needs no owner state.
        owned.retain(|key, o| {
            let own = owner(key, n);
            o.last_refusal.is_some()
                || o.views.iter().enumerate().any(|(i, v)| {
                    v.count > 0
                        || v.pending.is_some()
                        || v.refused > 0
                        || v.allowance != initial(o.limit, n, i, own)
                })
        });
        out
    }

    /// A grant for this shard: the new allowance is in force at once (connections already open
    /// above it stay open; none is accepted until the count is below it).
    pub fn on_grant(&self, g: &ConnGrant) {
        if g.shard != self.shard {
            return;
        }
        let mut local = self.local.borrow_mut();
        if !local.contains_key(&g.key) {
            let e = self.fresh(&g.key, g.limit);
            local.insert(g.key.clone(), e);
        }
        if let Some(e) = local.get_mut(&g.key) {
            if e.limit == g.limit && g.gen > e.gen {
                e.allowance = g.allowance;
                e.gen = g.gen;
                e.dirty = true;
            }
        }
    }

    /// Keys with state on this shard (open connections or a non-initial allowance).
    pub fn len(&self) -> usize {
        self.local.borrow().len()
    }

    /// Whether no key has state on this shard.
    pub fn is_empty(&self) -> bool {
        self.local.borrow().is_empty()
    }
}

/// Each shard's target allowance: its count, plus the headroom (limit minus all counts) given
/// first to shards that refused connections (max-min fair), then spread equally. The remainder
/// of the equal split stays where it is held (shards with the most spare allowance first) while
/// connections are open or a refusal is recent (`sticky`), so a place moved to a shard on
/// request is not moved back; otherwise the split is the [`initial`] one (then the key's state
/// can be dropped).
fn targets(limit: u32, views: &[View], owner: usize, sticky: bool) -> Vec<u32> {
    let n = views.len().max(1);
    let counts: u64 = views.iter().map(|v| u64::from(v.count)).sum();
    let mut left = u64::from(limit).saturating_sub(counts);
    let mut target: Vec<u64> = views.iter().map(|v| u64::from(v.count)).collect();
    let mut order: Vec<usize> = (0..views.len()).collect();
    order.sort_by_key(|i| views[*i].refused);
    let mut remaining = views.len() as u64;
    for i in order {
        let fair = left / remaining.max(1);
        let give = u64::from(views[i].refused).min(fair);
        target[i] += give;
        left -= give;
        remaining -= 1;
    }
    let each = left / n as u64;
    let rem = left % n as u64;
    for t in target.iter_mut() {
        *t += each;
    }
    let rank = |i: usize| (i + n - owner % n) % n;
    let mut order: Vec<usize> = (0..views.len()).collect();
    if counts > 0 || sticky {
        // Spare allowance held beyond the target so far, most first.
        order.sort_by_key(|i| {
            let spare = u64::from(views[*i].allowance).saturating_sub(target[*i]);
            (std::cmp::Reverse(spare), rank(*i))
        });
    } else {
        order.sort_by_key(|i| rank(*i));
    }
    for i in order
        .into_iter()
        .take(usize::try_from(rem).unwrap_or(usize::MAX))
    {
        target[i] += 1;
    }
    target
        .into_iter()
        .map(|t| u32::try_from(t).unwrap_or(u32::MAX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn key() -> ConnKey {
        ("per-ip".into(), "10.0.0.7".into())
    }

    /// `n` tables and the channels between them: reports to the owner and grants to each shard,
    /// FIFO per channel, delivered when the test says.
    struct Mesh {
        tables: Vec<ConnTable>,
        reports: Vec<VecDeque<ConnReport>>,
        grants: Vec<VecDeque<ConnGrant>>,
        open: Vec<u32>,
    }

    impl Mesh {
        fn new(n: usize) -> Self {
            Self {
                tables: (0..n).map(|i| ConnTable::new(i, n)).collect(),
                reports: vec![VecDeque::new(); n],
                grants: vec![VecDeque::new(); n],
                open: vec![0; n],
            }
        }
        fn owner(&self) -> usize {
            owner(&key(), self.tables.len())
        }
        fn open(&mut self, shard: usize, limit: u32) -> bool {
            let ok = self.tables[shard].try_open(&key(), limit);
            if ok {
                self.open[shard] += 1;
            }
            ok
        }
        fn close(&mut self, shard: usize) {
            if self.open[shard] > 0 {
                self.open[shard] -= 1;
                self.tables[shard].close(&key());
            }
        }
        /// Shard `i`'s interval tick: its reports go out; as owner, it rebalances.
        fn tick(&mut self, i: usize) {
            for (_, r) in self.tables[i].reports() {
                self.reports[i].push_back(r);
            }
            if i == self.owner() {
                for g in self.tables[i].rebalance() {
                    self.grants[g.shard].push_back(g);
                }
            }
        }
        fn deliver_report(&mut self, from: usize) {
            if let Some(r) = self.reports[from].pop_front() {
                let o = self.owner();
                self.tables[o].on_report(from, r);
            }
        }
        fn deliver_grant(&mut self, to: usize) {
            if let Some(g) = self.grants[to].pop_front() {
                self.tables[to].on_grant(&g);
            }
        }
        /// Ticks and delivers everything, `rounds` times.
        fn settle(&mut self, rounds: usize) {
            let n = self.tables.len();
            for _ in 0..rounds {
                for i in 0..n {
                    self.tick(i);
                }
                for i in 0..n {
                    while !self.reports[i].is_empty() {
                        self.deliver_report(i);
                    }
                }
                let o = self.owner();
                self.tick(o);
                for i in 0..n {
                    while !self.grants[i].is_empty() {
                        self.deliver_grant(i);
                    }
                }
            }
        }
        fn total(&self) -> u32 {
            self.tables.iter().map(|t| t.count(&key())).sum()
        }
    }

    #[test]
    fn initial_allowances_sum_to_the_limit() {
        for n in 1..8 {
            for limit in 0..20 {
                for owner in 0..n {
                    let sum: u32 = (0..n).map(|i| initial(limit, n, i, owner)).sum();
                    assert_eq!(sum, limit, "n {n} limit {limit} owner {owner}");
                }
            }
        }
    }

    #[test]
    fn one_shard_is_exact() {
        let t = ConnTable::new(0, 1);
        assert!((0..3).all(|_| t.try_open(&key(), 3)));
        assert!(!t.try_open(&key(), 3));
        t.close(&key());
        assert!(t.try_open(&key(), 3));
        assert_eq!(t.count(&key()), 3);
    }

    /// Headroom follows the connections: on two shards with a limit of 6, a client whose
    /// connections all land on one shard gets all 6 there once the owner has moved the
    /// allowance (each refusal is retried after the exchanges settle), never a 7th; closing
    /// one frees a place, on any shard, once it settles again.
    #[test]
    fn allowance_moves_to_where_the_connections_are() {
        let mut m = Mesh::new(2);
        let mut refused = 0;
        for _ in 0..6 {
            let mut tries = 0;
            while !m.open(1, 6) {
                refused += 1;
                tries += 1;
                assert!(tries < 4, "not admitted after 3 settled retries");
                m.settle(3);
            }
        }
        assert_eq!(m.total(), 6);
        assert!(refused > 0, "shard 1 began with half the limit");
        m.settle(3);
        assert!(!m.open(0, 6) && !m.open(1, 6), "a 7th connection");
        // Closing one frees a place; a connection landing on the other shard gets it once a
        // refusal there has been reported and the place moved.
        m.close(1);
        m.settle(3);
        let mut tries = 0;
        while !m.open(0, 6) {
            tries += 1;
            assert!(tries < 3, "the freed place never moved to shard 0");
            m.settle(3);
        }
        m.settle(3);
        assert!(!m.open(0, 6) && !m.open(1, 6), "a 7th connection");
    }

    /// Under the limit by at least the number of shards, a settled exchange leaves room on
    /// every shard: no refusal however the connections land.
    #[test]
    fn settled_headroom_leaves_room_on_every_shard() {
        for n in [2, 3, 4] {
            let limit = 12;
            let mut m = Mesh::new(n);
            for c in 0..(limit - n as u32) {
                m.settle(3);
                let shard = (c as usize * 7 + 3) % n;
                assert!(m.open(shard, limit), "n {n}: connection {c} refused");
            }
        }
    }

    #[test]
    fn state_is_dropped_when_everything_closed() {
        let mut m = Mesh::new(2);
        for _ in 0..3 {
            m.open(0, 4);
        }
        m.settle(3);
        for _ in 0..3 {
            m.close(0);
        }
        // The third connection was refused: spare places stay put for 5 s (50 intervals).
        m.settle(30);
        assert!(m.tables.iter().all(ConnTable::is_empty));
        assert!(m.tables.iter().all(|t| t.owned.borrow().is_empty()));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Open(usize),
        Close(usize),
        Tick(usize),
        Report(usize),
        Grant(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..4).prop_map(Op::Open),
            2 => (0usize..4).prop_map(Op::Close),
            2 => (0usize..4).prop_map(Op::Tick),
            2 => (0usize..4).prop_map(Op::Report),
            2 => (0usize..4).prop_map(Op::Grant),
        ]
    }

    proptest! {
        /// Whatever the order of connections, closes, reports and grants (each channel FIFO,
        /// any delay), the connections open over all shards never exceed the limit.
        #[test]
        fn the_limit_holds_under_any_delivery_order(
            n in 1usize..5,
            limit in 1u32..12,
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let mut m = Mesh::new(n);
            for op in ops {
                match op {
                    Op::Open(s) => { m.open(s % n, limit); }
                    Op::Close(s) => m.close(s % n),
                    Op::Tick(s) => m.tick(s % n),
                    Op::Report(s) => m.deliver_report(s % n),
                    Op::Grant(s) => m.deliver_grant(s % n),
                }
                prop_assert!(m.total() <= limit, "{} open, limit {limit}", m.total());
            }
            // And once everything settles, the whole limit is usable again.
            m.settle(4);
            let free = limit - m.total();
            let mut admitted = 0;
            for _ in 0..free {
                for _ in 0..4 {
                    let s = (admitted as usize) % n;
                    if m.open(s, limit) {
                        admitted += 1;
                        break;
                    }
                    m.settle(3);
                }
            }
            prop_assert_eq!(m.total(), limit);
        }
    }
}
