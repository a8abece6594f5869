//! Splitting a global quota into per-shard shares from reported demand.
//!
//! Each shard enforces its share with its own [`super::TokenBucket`], lock-free; an owner shard
//! collects every shard's demand over the cross-shard channels and sends back new shares. A
//! shard's demand is the rate it admitted in the last interval, doubled while its bucket was in
//! debt or one of its clients was still waiting out a delay it handed out (its clients want more
//! than it may give, by an unknown amount: ask for twice as much, as TCP slow start probes), so a
//! client that moves to one shard gets the whole limit there within a few intervals.
//!
//! [`split`] is max-min fair (water-filling): shards that want less than an equal share get what
//! they want, the rest share what remains equally; spare capacity is spread over every shard, and
//! [`RESERVE`] of the limit is always split equally, so an idle shard can admit a newcomer at
//! once and report its demand.

/// Fraction of a limit split equally whatever the demand.
pub const RESERVE: f64 = 0.05;

/// Shares of `limit` for shards wanting `demand` (units/s each). The shares sum to `limit`
/// (within rounding) and none is below `limit * RESERVE / n`.
pub fn split(limit: f64, demand: &[f64]) -> Vec<f64> {
    let n = demand.len();
    if n == 0 {
        return Vec::new();
    }
    let limit = limit.max(0.0);
    let floor = limit * RESERVE / n as f64;
    let mut rest = limit - floor * n as f64;
    let want: Vec<f64> = demand.iter().map(|d| d.max(0.0)).collect();
    let mut share = vec![floor; n];
    let total: f64 = want.iter().sum();
    if total <= rest {
        // Everyone gets what they want; the spare is spread equally.
        let spare = (rest - total) / n as f64;
        for i in 0..n {
            share[i] += want[i] + spare;
        }
        return share;
    }
    // Water-filling: satisfy the smallest demands first.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| want[*a].total_cmp(&want[*b]));
    let mut left = n;
    for i in order {
        let fair = rest / left as f64;
        let give = want[i].min(fair);
        share[i] += give;
        rest -= give;
        left -= 1;
    }
    share
}

/// The demand a shard reports: the rate it admitted, doubled (at least its share) while its
/// bucket was in debt during the interval.
pub fn demand(admitted_per_s: f64, share: f64, throttled: bool) -> f64 {
    if throttled {
        2.0 * admitted_per_s.max(share)
    } else {
        admitted_per_s
    }
}

#[cfg(test)]
mod tests {
    use super::super::bucket::{Nanos, TokenBucket};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn shares_sum_to_the_limit_and_respect_the_floor(
            limit in 0.0f64..1e9,
            demand in proptest::collection::vec(0.0f64..2e9, 1..64),
        ) {
            let s = split(limit, &demand);
            let n = demand.len() as f64;
            let sum: f64 = s.iter().sum();
            prop_assert!((sum - limit).abs() <= 1e-6 * limit.max(1.0), "sum {sum} limit {limit}");
            for x in &s {
                prop_assert!(*x >= limit * RESERVE / n - 1e-6 * limit.max(1.0));
            }
        }

        /// Max-min fairness: a shard that wants no more than an equal share gets all it wants.
        #[test]
        fn small_demands_are_met(
            limit in 1.0f64..1e9,
            demand in proptest::collection::vec(0.0f64..2e9, 1..64),
        ) {
            let s = split(limit, &demand);
            let equal = limit * (1.0 - RESERVE) / demand.len() as f64;
            for (d, x) in demand.iter().zip(&s) {
                if *d <= equal {
                    prop_assert!(*x + 1e-6 * limit >= *d, "demand {d} got {x}");
                }
            }
        }
    }

    /// A simulated client, closed loop and always wanting more, spread over `busy` of `n` shards:
    /// every 1 ms each busy shard admits one request of `size` if its bucket is not in debt (a
    /// throttled connection is muted); every 100 ms the owner rebalances. Returns the rate
    /// achieved over the second second, as a fraction of the limit.
    fn simulate(n: usize, busy: usize, limit: f64, size: f64) -> f64 {
        const MS: Nanos = 1_000_000;
        let mut shares = vec![limit / n as f64; n];
        let mut buckets: Vec<TokenBucket> = shares
            .iter()
            .map(|s| TokenBucket::new(*s, *s / 10.0, 0))
            .collect();
        let mut admitted = vec![0.0; n];
        let mut throttled = vec![false; n];
        let mut muted_until = vec![0; n];
        let mut total_second_second = 0.0;
        for t in 0..2000u64 {
            let now = t * MS;
            for i in 0..busy {
                // Several connections per shard: up to 8 requests per ms when not muted.
                for _ in 0..8 {
                    if now < muted_until[i] {
                        break;
                    }
                    let d = buckets[i].take(size, now);
                    admitted[i] += size;
                    if t >= 1000 {
                        total_second_second += size;
                    }
                    if !d.is_zero() {
                        throttled[i] = true;
                        muted_until[i] = now + u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                    }
                }
            }
            if t % 100 == 99 {
                let demand: Vec<f64> = (0..n)
                    .map(|i| super::demand(admitted[i] * 10.0, shares[i], throttled[i]))
                    .collect();
                shares = split(limit, &demand);
                for i in 0..n {
                    buckets[i].set_rate(shares[i], shares[i] / 10.0, now);
                    admitted[i] = 0.0;
                    throttled[i] = false;
                }
            }
        }
        total_second_second / limit
    }

    #[test]
    fn global_limit_is_tracked_within_ten_percent_after_one_second() {
        let limit = 10.0 * 1024.0 * 1024.0; // 10 MiB/s
        for n in [1, 2, 4, 8, 16] {
            for busy in [1, n] {
                let r = simulate(n, busy, limit, 16.0 * 1024.0);
                eprintln!("{n} shards, client on {busy}: {r:.3}");
                assert!(
                    (0.9..=1.1).contains(&r),
                    "{n} shards, client on {busy}: achieved {r:.3} of the limit"
                );
            }
        }
    }
}
