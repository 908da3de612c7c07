//! When a run stops before the end of its list: the relay refused our credentials (at once),
//! the relay cannot be reached (at once), or it kept failing — a number of temporary
//! failures in a row with no success at all in the run. A permanent failure is one reader's
//! problem, not the relay's: it resets the count, and the run goes on.
//!
//! Pure bookkeeping over the fates the loop sees; Ctrl-C is the loop's, not this.

use super::tally::{Fate, Stopped};
use crate::transport::{Failure, Kind};

/// The stop policy of one run.
#[derive(Debug, Clone)]
pub(super) struct StopPolicy {
    unreachable_after: u32,
    in_a_row: u32,
    ever_sent: bool,
    verdict: Option<Stopped>,
}

impl StopPolicy {
    pub(super) fn new(unreachable_after: u32) -> StopPolicy {
        StopPolicy {
            unreachable_after: unreachable_after.max(1),
            in_a_row: 0,
            ever_sent: false,
            verdict: None,
        }
    }

    /// Takes one recipient's fate into account.
    pub(super) fn observe(&mut self, fate: &Fate) {
        match fate {
            Fate::Sent { .. } => {
                self.ever_sent = true;
                self.in_a_row = 0;
            }
            Fate::Failed { failure, .. } => self.failed(failure),
            // Neither says anything about the relay.
            Fate::NotTried { .. } | Fate::Crashed(_) => {}
        }
    }

    fn failed(&mut self, failure: &Failure) {
        match failure.kind {
            Kind::Permanent => self.in_a_row = 0,
            // Refused credentials outrank everything: nothing will pass until they change.
            Kind::Auth => self.verdict = Some(Stopped::Auth(failure.reply.clone())),
            Kind::Transient
            | Kind::Throttled(_)
            | Kind::Lost
            | Kind::Bystander
            | Kind::Unreachable => {
                self.in_a_row += 1;
                let gone = failure.kind == Kind::Unreachable
                    || (!self.ever_sent && self.in_a_row >= self.unreachable_after);
                if gone && self.verdict.is_none() {
                    self.verdict = Some(Stopped::Unreachable(failure.reply.clone()));
                }
            }
        }
    }

    /// Why the run must stop, if it must.
    pub(super) fn verdict(&self) -> Option<&Stopped> {
        self.verdict.as_ref()
    }

    /// Whether the relay has taken a message in this run: failures in a row can no longer
    /// stop it.
    pub(super) fn ever_sent(&self) -> bool {
        self.ever_sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(kind: Kind, reply: &str) -> Fate {
        Fate::failed(Failure {
            kind,
            reply: reply.into(),
        })
    }

    fn sent() -> Fate {
        Fate::sent("<m>", "250")
    }

    #[test]
    fn temporary_failures_in_a_row_with_no_success_mean_the_relay_is_gone() {
        let mut p = StopPolicy::new(3);
        p.observe(&failed(Kind::Transient, "451 a"));
        p.observe(&failed(Kind::Transient, "451 b"));
        assert_eq!(p.verdict(), None);
        p.observe(&failed(Kind::Transient, "451 c"));
        assert_eq!(p.verdict(), Some(&Stopped::Unreachable("451 c".into())));
    }

    #[test]
    fn one_success_and_the_relay_is_only_flaky() {
        let mut p = StopPolicy::new(2);
        p.observe(&sent());
        for _ in 0..10 {
            p.observe(&failed(Kind::Transient, "451"));
        }
        assert_eq!(p.verdict(), None);
    }

    #[test]
    fn a_permanent_failure_resets_the_count_and_a_crash_does_not_count() {
        let mut p = StopPolicy::new(2);
        p.observe(&failed(Kind::Transient, "451"));
        p.observe(&failed(Kind::Permanent, "550"));
        p.observe(&Fate::Crashed("panic".into()));
        p.observe(&Fate::NotTried { uncertain: false });
        p.observe(&failed(Kind::Transient, "451"));
        assert_eq!(p.verdict(), None);
    }

    #[test]
    fn unreachable_and_refused_credentials_stop_at_once_and_credentials_win() {
        let mut p = StopPolicy::new(20);
        p.observe(&sent());
        p.observe(&failed(Kind::Unreachable, "connection refused"));
        assert_eq!(
            p.verdict(),
            Some(&Stopped::Unreachable("connection refused".into()))
        );
        p.observe(&failed(Kind::Auth, "535"));
        assert_eq!(p.verdict(), Some(&Stopped::Auth("535".into())));
    }
}
