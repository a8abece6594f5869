//! A token bucket with debt, the broker's quota model (KIP-13, KIP-219): a request is never
//! refused or dropped; when it takes the bucket below zero, the client is told to wait
//! (`throttle_time_ms`) until the debt is repaid, and its connection is muted for that long.
//!
//! Time is passed in (nanoseconds on any monotonic clock), so the bucket is tested without
//! sleeping.

use std::time::Duration;

/// Nanoseconds on a monotonic clock chosen by the caller.
pub type Nanos = u64;

/// A token bucket that can go into debt.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    /// Tokens added per second (bytes/s or requests/s).
    rate: f64,
    /// Most tokens the bucket holds (a burst allowance).
    burst: f64,
    /// Tokens now; negative is debt.
    tokens: f64,
    last: Nanos,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` per second holding at most `burst`, at time `now`.
    pub fn new(rate: f64, burst: f64, now: Nanos) -> Self {
        let rate = rate.max(0.0);
        let burst = burst.max(0.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Nanos) {
        let dt = now.saturating_sub(self.last) as f64 / 1e9;
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Takes `n` tokens at `now` and returns how long the caller must wait before the bucket is
    /// out of debt again (zero when it is not in debt). With a rate of zero nothing is ever
    /// repaid: the delay is capped by the caller.
    pub fn take(&mut self, n: f64, now: Nanos) -> Duration {
        self.refill(now);
        self.tokens -= n.max(0.0);
        self.delay()
    }

    /// The wait until the debt is repaid, at the time of the last refill.
    pub fn delay(&self) -> Duration {
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        if self.rate <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64((-self.tokens / self.rate).min(1e6))
    }

    /// The wait until the debt would be repaid at `rate` per second (zero when not in debt).
    pub fn delay_at(&self, rate: f64) -> Duration {
        if self.tokens >= 0.0 {
            return Duration::ZERO;
        }
        if rate <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64((-self.tokens / rate).min(1e6))
    }

    /// Changes the rate (a new share or a reload) without forgiving debt or granting credit;
    /// the burst follows the rate when `burst` is given.
    pub fn set_rate(&mut self, rate: f64, burst: f64, now: Nanos) {
        self.refill(now);
        self.rate = rate.max(0.0);
        self.burst = burst.max(0.0);
        self.tokens = self.tokens.min(self.burst);
    }

    /// The refill rate, per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Tokens now (negative: debt), after refilling to `now`.
    pub fn tokens(&mut self, now: Nanos) -> f64 {
        self.refill(now);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: Nanos = 1_000_000_000;

    #[test]
    fn debt_turns_into_a_delay_and_is_repaid_over_time() {
        let mut b = TokenBucket::new(1000.0, 1000.0, 0);
        assert_eq!(b.take(1000.0, 0), Duration::ZERO);
        // 500 tokens of debt at 1000/s: half a second.
        assert_eq!(b.take(500.0, 0), Duration::from_millis(500));
        assert_eq!(b.take(0.0, S / 2), Duration::ZERO);
        assert!((b.tokens(S / 2)).abs() < 1e-6);
        // Refill stops at the burst.
        assert!((b.tokens(100 * S) - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn time_going_backwards_changes_nothing() {
        let mut b = TokenBucket::new(10.0, 10.0, 5 * S);
        b.take(10.0, 5 * S);
        assert_eq!(b.take(0.0, S), Duration::ZERO);
        assert!(b.tokens(S).abs() < 1e-9);
    }

    #[test]
    fn rate_change_keeps_debt() {
        let mut b = TokenBucket::new(100.0, 100.0, 0);
        b.take(300.0, 0);
        b.set_rate(200.0, 200.0, 0);
        assert_eq!(b.delay(), Duration::from_secs(1));
    }

    #[test]
    fn delay_at_another_rate() {
        let mut b = TokenBucket::new(100.0, 0.0, 0);
        b.take(300.0, 0);
        assert_eq!(b.delay(), Duration::from_secs(3));
        assert_eq!(b.delay_at(600.0), Duration::from_millis(500));
        assert_eq!(b.delay_at(0.0), Duration::MAX);
        b.take(0.0, 10 * S);
        assert_eq!(b.delay_at(600.0), Duration::ZERO);
    }

    proptest! {
        /// Whatever the request sizes and arrival times, a client that waits out every delay it
        /// is given never gets more than rate × elapsed + burst tokens.
        #[test]
        fn obeying_the_delays_bounds_the_rate(
            rate in 1.0f64..1e7,
            sizes in proptest::collection::vec(0.0f64..1e6, 1..200),
            gaps in proptest::collection::vec(0u64..50_000_000, 1..200),
        ) {
            let burst = rate;
            let mut b = TokenBucket::new(rate, burst, 0);
            let mut now: Nanos = 0;
            let mut taken = 0.0;
            for (i, n) in sizes.iter().enumerate() {
                now += gaps[i % gaps.len()];
                let d = b.take(*n, now);
                taken += n;
                // The client waits as told before its next request.
                now += u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2).min(u64::MAX / 4);
            }
            let allowed = rate * now as f64 / 1e9 + burst;
            // Only the last request can be outstanding (its delay was waited out too).
            prop_assert!(taken <= allowed + 1e-6 * allowed.max(1.0), "taken {taken} allowed {allowed}");
        }
    }
}
