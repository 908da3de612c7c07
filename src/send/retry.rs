//! How often, and how patiently, a delivery that failed for a reason that may pass is tried
//! again: a backoff that doubles, up to a number of attempts; a provider's "wait this long"
//! (429) honoured a bounded number of times, without spending an attempt.
//!
//! Pure decisions, no waiting: the dispatcher sleeps or holds the pace as told.

use std::time::Duration;

/// Throttling answers (429) waited out per delivery before giving up for this run.
pub(super) const MAX_THROTTLES: u32 = 8;

/// The retry settings.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    /// Tries per message for temporary failures (at least 1).
    pub(super) max_attempts: u32,
    /// The first wait before a retry.
    pub(super) backoff: Duration,
}

/// What to do after a try that left messages to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Enough: record them as failed (temporary).
    GiveUp,
    /// Wait this long, then try again.
    Backoff(Duration),
    /// The provider asked for this pause: hold everyone back, then try again.
    Hold(Duration),
}

/// Where one delivery stands in its retries.
#[derive(Debug, Clone)]
pub(super) struct Attempts {
    retry: Retry,
    attempt: u32,
    throttles: u32,
    wait: Duration,
}

impl Attempts {
    pub(super) fn new(retry: Retry) -> Attempts {
        Attempts {
            retry,
            attempt: 1,
            throttles: 0,
            wait: retry.backoff,
        }
    }

    /// After a try that failed again: `throttled` is the longest pause a provider asked for
    /// in it, if it asked.
    pub(super) fn after(&mut self, throttled: Option<Duration>) -> Next {
        match throttled {
            Some(_) if self.throttles >= MAX_THROTTLES => Next::GiveUp,
            Some(pause) => {
                self.throttles += 1;
                Next::Hold(pause)
            }
            None if self.attempt >= self.retry.max_attempts.max(1) => Next::GiveUp,
            None => {
                let wait = self.wait;
                self.wait *= 2;
                self.attempt += 1;
                Next::Backoff(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(max_attempts: u32) -> Retry {
        Retry {
            max_attempts,
            backoff: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_backoff_doubles_until_the_attempts_are_spent() {
        let mut a = Attempts::new(retry(4));
        let s = Duration::from_secs;
        assert_eq!(a.after(None), Next::Backoff(s(2)));
        assert_eq!(a.after(None), Next::Backoff(s(4)));
        assert_eq!(a.after(None), Next::Backoff(s(8)));
        assert_eq!(a.after(None), Next::GiveUp);
    }

    #[test]
    fn a_pause_asked_for_spends_no_attempt_but_is_bounded() {
        let mut a = Attempts::new(retry(1));
        let pause = Some(Duration::from_secs(30));
        for _ in 0..MAX_THROTTLES {
            assert_eq!(a.after(pause), Next::Hold(Duration::from_secs(30)));
        }
        assert_eq!(a.after(pause), Next::GiveUp);
        assert_eq!(Attempts::new(retry(1)).after(None), Next::GiveUp);
        assert_eq!(
            Attempts::new(retry(0)).after(None),
            Next::GiveUp,
            "0 attempts means 1"
        );
    }
}
