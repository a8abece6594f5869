//! Latency accounting with coordinated-omission (CO) correction.
//!
//! Open loop: request `k` of a connection is *intended* to be sent at `start + k / rate`. Its
//! latency is measured from that intended time, not from when it actually went out, so a stall
//! (server pause, full in-flight window, slow generator) is charged to every request it delayed,
//! as a real client with a fixed arrival rate would see it. Closed loop: intended = actual send.

use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Highest latency recorded without saturating (1 hour, in µs).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Fixed-rate send schedule of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    interval_ns: f64,
}

impl Schedule {
    /// `rate` requests per second from `start`.
    pub fn new(start: Instant, rate: f64) -> Self {
        Self {
            start,
            interval_ns: 1e9 / rate,
        }
    }

    /// Intended send time of request `k` (0-based).
    pub fn intended(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((k as f64 * self.interval_ns) as u64)
    }
}

/// A new histogram in µs, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Records latencies of requests whose intended send time falls in the measurement window.
pub struct LatencyRecorder {
    /// CO-corrected latency (from the intended send time), µs.
    pub corrected: Histogram<u64>,
    /// Service time (from the actual send time), µs; equals `corrected` in closed loop.
    pub service: Histogram<u64>,
    window_start: Instant,
    window_end: Instant,
}

impl LatencyRecorder {
    /// Records requests intended in `[window_start, window_end)`.
    pub fn new(window_start: Instant, window_end: Instant) -> Self {
        Self {
            corrected: new_histogram(),
            service: new_histogram(),
            window_start,
            window_end,
        }
    }

    /// Whether a request intended at `intended` counts (warm-up and tail excluded).
    pub fn in_window(&self, intended: Instant) -> bool {
        intended >= self.window_start && intended < self.window_end
    }

    /// Records one completed request; returns whether it was in the window.
    pub fn record(&mut self, intended: Instant, sent: Instant, received: Instant) -> bool {
        if !self.in_window(intended) {
            return false;
        }
        self.corrected
            .saturating_record(us(received.saturating_duration_since(intended)));
        self.service
            .saturating_record(us(received.saturating_duration_since(sent)));
        true
    }
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One connection, one request in flight, 1000 requests/s, a server answering in 100 µs except
    /// one 200 ms stall. Deterministic: simulated times, no sleeping.
    #[test]
    fn stall_is_charged_to_every_delayed_request() {
        let t0 = Instant::now();
        let sched = Schedule::new(t0, 1000.0);
        let mut rec = LatencyRecorder::new(t0, t0 + Duration::from_secs(2));
        let mut free_at = t0; // when the single in-flight slot frees up
        for k in 0..2000u64 {
            let intended = sched.intended(k);
            let sent = intended.max(free_at);
            let service = if k == 500 {
                Duration::from_millis(200)
            } else {
                Duration::from_micros(100)
            };
            let received = sent + service;
            free_at = received;
            assert!(rec.record(intended, sent, received));
        }
        assert_eq!(rec.corrected.len(), 2000);
        // Service time sees the stall once.
        assert_eq!(rec.service.value_at_quantile(0.99), 100);
        assert!(rec.service.max() >= 199_000);
        // CO-corrected: the stall delays every request intended during it and the backlog after
        // it (caught up at 0.9 ms per request): k = 500..=722, latencies from 200 ms down.
        let delayed = rec.corrected.count_between(150, MAX_LATENCY_US);
        assert!((220..=225).contains(&delayed), "delayed {delayed}");
        assert!(rec.corrected.value_at_quantile(0.99) >= 170_000);
        assert!(rec.corrected.value_at_quantile(0.5) <= 101);
        // Latencies of the delayed requests fall linearly (0.9 ms per request), so the 95th
        // percentile (rank 1900 of 2000: the 123rd smallest of the 223 delayed) is ~110 ms.
        let p95 = rec.corrected.value_at_quantile(0.95);
        assert!((100_000..=120_000).contains(&p95), "p95 {p95}");
    }

    #[test]
    fn warmup_and_tail_are_excluded() {
        let t0 = Instant::now();
        let ws = t0 + Duration::from_secs(1);
        let we = t0 + Duration::from_secs(3);
        let mut rec = LatencyRecorder::new(ws, we);
        let d = Duration::from_micros(50);
        assert!(!rec.record(t0, t0, t0 + d));
        assert!(rec.record(ws, ws, ws + d));
        assert!(!rec.record(we, we, we + d));
        assert_eq!(rec.corrected.len(), 1);
        assert_eq!(rec.corrected.max(), 50);
    }

    #[test]
    fn schedule_is_evenly_spaced() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 4.0);
        assert_eq!(s.intended(0), t0);
        assert_eq!(s.intended(3) - t0, Duration::from_millis(750));
    }
}
