//! Pacing: at most `n` deliveries per period, spread evenly, and everyone held back when a
//! provider asks us to wait (HTTP 429).
//!
//! Uses tokio's clock only, so that paused time drives it in tests. Owns no retry decision:
//! `retry` says how long to hold, this only holds.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// When the next delivery may start, shared by every task of a run.
pub(super) struct Pace {
    gap: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    pub(super) fn new(rate: Option<(u32, Duration)>) -> Pace {
        Pace {
            gap: rate.map_or(Duration::ZERO, |(n, per)| per / n.max(1)),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this delivery's turn.
    pub(super) async fn wait(&self) {
        let now = Instant::now();
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(now);
            *next = at + self.gap;
            at
        };
        // A turn that has come starts at once. tokio's timer rounds a deadline up to its next
        // millisecond tick, so sleeping until now held every delivery for up to a millisecond:
        // half of what a message takes over one connection to a fast relay.
        if at > now {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Nobody starts a delivery for `pause`.
    pub(super) async fn hold(&self, pause: Duration) {
        let mut next = self.next.lock().await;
        *next = (*next).max(Instant::now() + pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deliveries_are_spread_over_the_period_and_a_hold_delays_the_next() {
        let pace = Pace::new(Some((4, Duration::from_secs(2))));
        let start = Instant::now();
        for _ in 0..4 {
            pace.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        pace.hold(Duration::from_secs(10)).await;
        pace.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(11_500));
    }
}
