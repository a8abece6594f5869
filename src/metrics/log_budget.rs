//! Rate limits for log lines that hostile or broken peers can repeat at will (a malformed frame,
//! a refused connection): per shard and per key from a fixed vocabulary, at most
//! [`LogBudget::burst`] lines a window; the rest are suppressed and their number is reported on the
//! next line that passes. Metrics still count every occurrence; only the log is limited.
//!
//! Data plane, per shard, `!Send`; keys are `&'static str` pairs, so the map is bounded by the
//! vocabulary.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A key: two labels from fixed vocabularies (e.g. side and reason).
pub type LogKey = (&'static str, &'static str);

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    used: u32,
    suppressed: u64,
}

/// Per-key log budget of one shard. See the module docs.
#[derive(Debug)]
pub struct LogBudget {
    window: Duration,
    burst: u32,
    keys: RefCell<BTreeMap<LogKey, Window>>,
}

impl Default for LogBudget {
    /// 5 lines per key per second.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), 5)
    }
}

impl LogBudget {
    /// At most `burst` lines per key in each `window`.
    pub fn new(window: Duration, burst: u32) -> Self {
        Self {
            window,
            burst,
            keys: RefCell::new(BTreeMap::new()),
        }
    }

    /// Lines allowed per key and window.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether a line of `key` may be logged at `now`: `Some(n)` with `n` the lines of this key
    /// suppressed since the last one logged (to be reported on this line), or `None` when this
    /// one is suppressed too.
    pub fn admit(&self, key: LogKey, now: Instant) -> Option<u64> {
        let mut keys = self.keys.borrow_mut();
        let w = keys.entry(key).or_insert(Window {
            start: now,
            used: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(w.start) >= self.window {
            w.start = now;
            w.used = 0;
        }
        if w.used < self.burst {
            w.used += 1;
            Some(std::mem::take(&mut w.suppressed))
        } else {
            w.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_window_then_the_count_of_the_rest() {
        let b = LogBudget::new(Duration::from_secs(1), 3);
        let t0 = Instant::now();
        let k = ("downstream", "client_frame");
        let admitted: Vec<Option<u64>> = (0..10).map(|_| b.admit(k, t0)).collect();
        assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        // Another key has its own budget.
        assert_eq!(b.admit(("upstream", "upstream_io"), t0), Some(0));
        // The next window: the first line reports the 7 suppressed.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(b.admit(k, t1), Some(7));
        assert_eq!(b.admit(k, t1), Some(0));
        assert_eq!(b.burst(), 3);
    }

    #[test]
    fn ten_thousand_lines_log_a_handful() {
        let b = LogBudget::default();
        let t0 = Instant::now();
        let k = ("downstream", "client_header");
        // 10,000 in 3 s: 5 per second pass.
        let passed = (0..10_000u32)
            .filter(|i| {
                b.admit(k, t0 + Duration::from_micros(u64::from(*i) * 300))
                    .is_some()
            })
            .count();
        assert_eq!(passed, 15);
    }
}
