//! The send loop's rules, run whole ([`super::run`]) against the stub transport, a real
//! SQLite ledger in a temporary folder, a fixed clock, and tokio's paused time: retries,
//! backoff, 429 pauses, giving up, stopping, Ctrl-C and a panicking delivery, each in
//! milliseconds.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use lettre::Address;
use lettre::message::Mailbox;
use tokio::time::Instant;

use super::*;
use crate::clock::FixedClock;
use crate::layout::Layout;
use crate::ledger::{Ledger, RecipientKey, Report, State};
use crate::message::{Composer, Unsubscribe};
use crate::render::{self, RenderOptions};
use crate::transport::Kind;
use crate::transport::stub::{Answer, StubTransport};
use crate::values::Secret;

const ISSUE: &str = "2020-06";

/// The sample issue, rendered, ready to compose.
fn composer() -> Composer {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("issues/2020-06.json");
    let loaded = crate::issue::parse(&path, std::fs::read_to_string(&path).unwrap()).unwrap();
    let layout = Layout::load(Some(&root.join("layouts/efus"))).unwrap();
    let rendered = render::render(&loaded, &layout, &RenderOptions::default()).unwrap();
    Composer {
        rendered,
        issue: ISSUE.into(),
        from: Mailbox::from_str("Efus <newsletter@example.org>").unwrap(),
        reply_to: None,
        list_id: "Efus newsletter <newsletter.example.org>".into(),
        unsubscribe: Unsubscribe::new(
            "https://example.org/unsubscribe?token={token}".into(),
            Address::from_str("unsubscribe@example.org").unwrap(),
            Secret::placeholder(),
        ),
        test: false,
        verp: None,
        dkim: None,
        feedback_id: None,
        per_issue: Default::default(),
    }
}

/// A workspace of sorts: a folder with a list and a ledger, and the tools to send with.
struct Bench {
    dir: tempfile::TempDir,
    tools: Tools<StubTransport>,
    readers: Vec<Address>,
}

impl Bench {
    /// `n` readers, r0@example.org…, sent to through `stub`.
    fn new(n: usize, stub: impl FnOnce(&Bench) -> StubTransport) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let readers: Vec<Address> = (0..n)
            .map(|i| Address::from_str(&format!("r{i}@example.org")).unwrap())
            .collect();
        let mut list = String::from("email\n");
        for r in &readers {
            list.push_str(&format!("{r}\n"));
        }
        std::fs::write(dir.path().join("list.csv"), list).unwrap();
        let mut bench = Bench {
            dir,
            tools: Tools {
                composer: Arc::new(composer()),
                transport: Arc::new(StubTransport::new()),
                clock: Arc::new(FixedClock(
                    chrono::DateTime::from_timestamp(1_591_000_000, 0).unwrap(),
                )),
            },
            readers,
        };
        bench.tools.transport = Arc::new(stub(&bench));
        bench
    }

    /// The Message-ID of reader `i`: how the stub tells readers apart.
    fn id(&self, i: usize) -> String {
        self.tools.composer.message_id(&self.readers[i])
    }

    fn key(&self, i: usize) -> RecipientKey {
        RecipientKey::from(&self.readers[i])
    }

    fn stub(&self) -> &StubTransport {
        &self.tools.transport
    }

    fn options(&self, stop: Stop, delivery: Options) -> RunOptions {
        RunOptions {
            ledger: self.dir.path().join("ledger.sqlite"),
            list: List {
                path: self.dir.path().join("list.csv"),
                suppress: None,
                stores: Vec::new(),
            },
            force: false,
            stop,
            delivery,
        }
    }

    async fn send_with(&self, stop: Stop, delivery: Options) -> Tally {
        run(&self.options(stop, delivery), &self.tools, |_| {})
            .await
            .unwrap()
    }

    async fn send(&self, delivery: Options) -> Tally {
        self.send_with(Stop::new(), delivery).await
    }

    fn ledger(&self) -> Ledger {
        Ledger::open(&self.dir.path().join("ledger.sqlite")).unwrap()
    }

    fn report(&self) -> Report {
        self.ledger().report(ISSUE).unwrap()
    }

    /// Who the ledger records as not sent to, and in what state.
    fn undelivered(&self) -> Vec<(String, State)> {
        self.ledger()
            .failures(ISSUE)
            .unwrap()
            .into_iter()
            .map(|f| (f.recipient.as_str().to_string(), f.state))
            .collect()
    }
}

/// One delivery at a time, one message a delivery: the order of events is the list's.
fn one_at_a_time() -> Options {
    Options {
        concurrency: 1,
        batch: 1,
        ..Options::default()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn a_temporary_failure_is_retried_until_it_passes() {
    let b = Bench::new(1, |b| {
        StubTransport::new().message_answers(
            b.id(0),
            [Answer::Temporary, Answer::Temporary, Answer::Accept],
        )
    });
    let tally = b.send(Options::default()).await;
    assert_eq!(tally.sent, 1);
    assert!(tally.failed_temporary.is_empty() && tally.stopped.is_none());
    assert_eq!(b.stub().attempts_of(&b.id(0)).len(), 3);
    assert_eq!(b.stub().delivered(), [b.id(0)]);
    assert_eq!(b.report().sent, 1);
    assert!(b.undelivered().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_between_tries() {
    let b = Bench::new(1, |b| {
        StubTransport::new().message_answers(
            b.id(0),
            [
                Answer::Temporary,
                Answer::Temporary,
                Answer::Temporary,
                Answer::Accept,
            ],
        )
    });
    let start = Instant::now();
    let tally = b.send(Options::default()).await;
    assert_eq!(tally.sent, 1);
    let tries = b.stub().attempts_of(&b.id(0));
    let gaps: Vec<Duration> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [secs(2), secs(4), secs(8)]);
    assert_eq!(
        start.elapsed(),
        secs(14),
        "2 + 4 + 8 seconds of virtual time"
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_pause_is_honoured_holds_everyone_back_and_spends_no_attempt() {
    // r0 is told to wait 30 s; r1 is slow, so its slot frees while r0 waits: r2 and r3 must
    // still wait for the end of the pause.
    let b = Bench::new(4, |b| {
        StubTransport::new()
            .message_answers(b.id(0), [Answer::Throttled(secs(30)), Answer::Accept])
            .message_answers(b.id(1), [Answer::Slow(secs(5))])
    });
    let start = Instant::now();
    let tally = b
        .send(Options {
            concurrency: 2,
            max_attempts: 1,
            ..Options::default()
        })
        .await;
    assert_eq!(tally.sent, 4, "{tally:?}");
    let r0 = b.stub().attempts_of(&b.id(0));
    assert_eq!(r0, [start, start + secs(30)]);
    for i in 2..4 {
        let at = b.stub().attempts_of(&b.id(i))[0];
        assert!(at >= start + secs(30), "r{i} went {:?} in", at - start);
    }
    for call in b.stub().calls() {
        let at = call.at - start;
        assert!(
            at == Duration::ZERO || at >= secs(30),
            "a delivery started during the pause, {at:?} in"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn after_the_last_attempt_a_reader_is_failed_temporary() {
    let b = Bench::new(1, |_| StubTransport::new().otherwise(Answer::Temporary));
    let start = Instant::now();
    let tally = b
        .send(Options {
            max_attempts: 3,
            ..Options::default()
        })
        .await;
    assert_eq!(tally.sent, 0);
    assert_eq!(
        tally.failed_temporary,
        [(b.key(0), "451 4.3.0 try again later".to_string())]
    );
    assert_eq!(tally.stopped, None);
    let tries = b.stub().attempts_of(&b.id(0));
    assert_eq!(tries, [start, start + secs(2), start + secs(6)]);
    assert_eq!(
        b.undelivered(),
        [("r0@example.org".to_string(), State::FailedTemporary)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_permanent_failure_is_recorded_not_retried_and_the_run_goes_on() {
    let b = Bench::new(3, |b| {
        StubTransport::new().message_answers(b.id(1), [Answer::Permanent])
    });
    let tally = b.send(one_at_a_time()).await;
    assert_eq!(tally.sent, 2);
    assert_eq!(
        tally.failed_permanent,
        [(b.key(1), "550 5.1.1 no such user".to_string())]
    );
    assert_eq!(tally.stopped, None);
    assert_eq!(b.stub().attempts_of(&b.id(1)).len(), 1);
    assert_eq!(
        b.undelivered(),
        [("r1@example.org".to_string(), State::FailedPermanent)]
    );
    assert_eq!(b.report().sent, 2);
}

#[tokio::test(start_paused = true)]
async fn failures_in_a_row_with_no_success_stop_the_run_and_leave_the_rest_unclaimed() {
    let b = Bench::new(10, |_| StubTransport::new().otherwise(Answer::Temporary));
    let tally = b
        .send(Options {
            max_attempts: 1,
            unreachable_after: 3,
            ..one_at_a_time()
        })
        .await;
    assert_eq!(
        tally.stopped,
        Some(Stopped::Unreachable("451 4.3.0 try again later".into()))
    );
    assert_eq!(tally.failed_temporary.len(), 3);
    assert_eq!(b.stub().calls().len(), 3);
    let report = b.report();
    assert_eq!(
        (report.failed_temporary, report.pending, report.in_flight),
        (3, 0, 0)
    );

    // With one success first, the same failures are a flaky relay: the run goes on.
    let b = Bench::new(10, |b| {
        StubTransport::new()
            .otherwise(Answer::Temporary)
            .message_answers(b.id(0), [Answer::Accept])
    });
    let tally = b
        .send(Options {
            max_attempts: 1,
            unreachable_after: 3,
            ..one_at_a_time()
        })
        .await;
    assert_eq!((tally.sent, tally.failed_temporary.len()), (1, 9));
    assert_eq!(tally.stopped, None);
}

#[tokio::test(start_paused = true)]
async fn refused_credentials_stop_at_once_and_the_others_go_back_to_pending() {
    let b = Bench::new(5, |_| {
        StubTransport::new().calls_answer([Answer::AuthRefused])
    });
    let tally = b
        .send(Options {
            concurrency: 1,
            ..Options::default()
        })
        .await;
    assert_eq!(
        tally.stopped,
        Some(Stopped::Auth("535 5.7.8 authentication failed".into()))
    );
    assert_eq!(b.stub().calls().len(), 1, "nothing after the refusal");
    // Refused credentials are nobody's own failure: the refused reader is pending too.
    assert_eq!((tally.failed(), tally.not_tried), (0, 5));
    let report = b.report();
    assert_eq!(
        (report.failed_temporary, report.pending, report.in_flight),
        (0, 5, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_relay_stops_at_once_even_after_successes() {
    let b = Bench::new(6, |b| {
        StubTransport::new().message_answers(b.id(2), [Answer::Unreachable])
    });
    let tally = b.send(one_at_a_time()).await;
    assert_eq!(
        tally.stopped,
        Some(Stopped::Unreachable("connection refused".into()))
    );
    assert_eq!((tally.sent, tally.failed(), tally.not_tried), (2, 0, 1));
    assert_eq!(b.stub().calls().len(), 3);
    let report = b.report();
    assert_eq!(
        (report.failed_temporary, report.pending),
        (0, 1),
        "nobody failed for a relay that is gone"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stop_request_lets_what_is_in_flight_finish_and_releases_the_rest() {
    // Each delivery takes a second; Ctrl-C comes 2.5 s in, during the third.
    let b = Bench::new(10, |_| {
        StubTransport::new().otherwise(Answer::Slow(secs(1)))
    });
    let stop = Stop::new();
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ctrl_c.request();
    });
    let tally = b
        .send_with(
            stop,
            Options {
                concurrency: 1,
                ..Options::default()
            },
        )
        .await;
    assert_eq!(tally.stopped, Some(Stopped::Interrupted));
    assert_eq!((tally.sent, tally.not_tried), (3, 7));
    assert_eq!(b.stub().calls().len(), 3);
    let report = b.report();
    assert_eq!(
        (
            report.sent,
            report.pending,
            report.in_flight,
            report.uncertain
        ),
        (3, 7, 0, 0)
    );
    assert!(
        b.undelivered().iter().all(|(_, s)| *s == State::Pending),
        "released, not failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_delivery_is_a_temporary_failure_of_its_readers_and_the_run_goes_on() {
    // Two readers a delivery: r2 and r3 share the one that panics.
    let b = Bench::new(6, |b| {
        StubTransport::new()
            .with_batch_limit(2)
            .message_answers(b.id(2), [Answer::Panic])
    });
    let tally = b
        .send(Options {
            concurrency: 1,
            ..Options::default()
        })
        .await;
    assert_eq!(tally.sent, 4);
    assert_eq!(tally.stopped, None);
    let failed: Vec<&RecipientKey> = tally.failed_temporary.iter().map(|(k, _)| k).collect();
    assert_eq!(failed, [&b.key(2), &b.key(3)]);
    assert!(
        tally.failed_temporary[0].1.contains("panic"),
        "{:?}",
        tally.failed_temporary
    );
    let report = b.report();
    assert_eq!(
        (report.sent, report.failed_temporary, report.in_flight),
        (4, 2, 0),
        "nobody is left in flight"
    );
}

#[tokio::test(start_paused = true)]
async fn a_batch_refused_whole_once_is_split_and_its_readers_sent() {
    let b = Bench::new(4, |_| {
        StubTransport::new()
            .with_batch_limit(2)
            .calls_answer([Answer::RefuseBatch(Kind::Permanent)])
    });
    let tally = b
        .send(Options {
            concurrency: 1,
            ..Options::default()
        })
        .await;
    // The refusal named nobody: each half goes alone, and passes.
    assert_eq!((tally.sent, tally.failed()), (4, 0));
    assert_eq!(b.stub().calls().len(), 4);
}

/// Eight readers, one request of eight, one delivery at a time.
fn one_request_of_eight() -> Options {
    Options {
        concurrency: 1,
        ..Options::default()
    }
}

#[tokio::test(start_paused = true)]
async fn one_refused_address_fails_alone_when_the_refusal_does_not_name_it() {
    let b = Bench::new(8, |b| {
        StubTransport::new()
            .with_batch_limit(8)
            .message_answers(b.id(5), [Answer::Spoils])
    });
    let start = Instant::now();
    let tally = b.send(one_request_of_eight()).await;
    assert_eq!(tally.sent, 7);
    assert_eq!(
        tally.failed_permanent,
        [(b.key(5), "550 5.1.1 refused: bad address".to_string())]
    );
    // 8 → 4 + 4 → (4) 2 + 2 → (2) 1 + 1: seven requests, none waiting for a backoff.
    let sizes: Vec<usize> = b
        .stub()
        .calls()
        .iter()
        .map(|c| c.message_ids.len())
        .collect();
    assert_eq!(sizes, [8, 4, 4, 2, 2, 1, 1]);
    assert_eq!(start.elapsed(), Duration::ZERO);
    for i in 0..8 {
        let copies = b.stub().copies_of(&b.id(i));
        assert_eq!(copies, usize::from(i != 5), "r{i}");
    }
    assert_eq!(
        b.undelivered(),
        [("r5@example.org".to_string(), State::FailedPermanent)]
    );
    // --only-failed tries the one at fault, alone.
    let again = b
        .send(Options {
            only_failed: true,
            ..one_request_of_eight()
        })
        .await;
    assert_eq!((again.sent, again.failed_permanent.len()), (0, 1));
    assert_eq!(b.stub().calls().last().unwrap().message_ids, [b.id(5)]);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_that_names_the_address_fails_it_and_sends_the_others_at_once() {
    let b = Bench::new(8, |b| {
        StubTransport::new()
            .with_batch_limit(8)
            .message_answers(b.id(2), [Answer::SpoilsNamed])
    });
    let tally = b.send(one_request_of_eight()).await;
    assert_eq!((tally.sent, tally.failed_permanent.len()), (7, 1));
    assert_eq!(tally.failed_permanent[0].0, b.key(2));
    let sizes: Vec<usize> = b
        .stub()
        .calls()
        .iter()
        .map(|c| c.message_ids.len())
        .collect();
    assert_eq!(sizes, [8, 7], "the others again, without the one named");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_of_every_part_stops_the_run_and_fails_nobody() {
    let b = Bench::new(16, |_| {
        StubTransport::new()
            .with_batch_limit(8)
            .otherwise(Answer::Spoils)
    });
    let tally = b.send(one_request_of_eight()).await;
    assert!(
        matches!(&tally.stopped, Some(Stopped::Unreachable(r)) if r.contains("what all readers share")),
        "{:?}",
        tally.stopped
    );
    assert_eq!((tally.failed(), tally.not_tried), (0, 16));
    assert_eq!(
        b.stub().calls().len(),
        7,
        "1 + 2 + 4 requests, then nothing"
    );
    assert_eq!(b.report().pending, 16);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_sent_again_is_uncertain_and_stays_so() {
    let b = Bench::new(2, |_| {
        StubTransport::new()
            .with_batch_limit(2)
            .calls_answer([Answer::Lost])
    });
    let tally = b.send(Options::default()).await;
    assert_eq!(tally.sent, 2);
    let doubtful: Vec<&RecipientKey> = tally.uncertain.iter().map(|(k, _)| k).collect();
    assert_eq!(doubtful, [&b.key(0), &b.key(1)]);
    assert_eq!(b.stub().copies_of(&b.id(0)), 2, "the stub got it twice");
    let report = b.report();
    assert_eq!((report.sent, report.uncertain), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_looked_up_before_sending_again() {
    let b = Bench::new(2, |_| {
        StubTransport::new()
            .with_batch_limit(2)
            .with_look_up()
            .calls_answer([Answer::Lost])
    });
    let tally = b.send(Options::default()).await;
    assert_eq!((tally.sent, tally.uncertain.len()), (2, 0));
    assert_eq!(b.stub().calls().len(), 1, "found: not sent again");
    assert_eq!(b.stub().copies_of(&b.id(0)), 1);
    assert_eq!(b.report().uncertain, 0);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_retried_under_the_same_idempotency_key_is_certain() {
    let b = Bench::new(2, |_| {
        StubTransport::new()
            .with_batch_limit(2)
            .idempotent()
            .calls_answer([Answer::Lost])
    });
    let tally = b.send(Options::default()).await;
    assert_eq!((tally.sent, tally.uncertain.len()), (2, 0));
    let calls = b.stub().calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].key, calls[1].key, "the same key again");
    assert_eq!(b.stub().copies_of(&b.id(0)), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reader_whose_answer_was_lost_is_still_uncertain_after_a_later_run_sends_it() {
    let b = Bench::new(1, |_| StubTransport::new().calls_answer([Answer::Lost]));
    let first = b
        .send(Options {
            max_attempts: 1,
            ..Options::default()
        })
        .await;
    assert_eq!((first.sent, first.failed_temporary.len()), (0, 1));
    assert_eq!(first.uncertain.len(), 1);
    let second = b.send(Options::default()).await;
    assert_eq!(second.sent, 1);
    let report = b.report();
    assert_eq!((report.sent, report.uncertain), (1, 1), "it may have two");
}

#[tokio::test(start_paused = true)]
async fn readers_failed_for_good_are_failed_on_a_rerun_not_already_sent() {
    let b = Bench::new(3, |b| {
        StubTransport::new().message_answers(b.id(1), [Answer::Permanent])
    });
    let first = b.send(one_at_a_time()).await;
    assert_eq!((first.sent, first.unsent()), (2, 1));
    let again = b.send(one_at_a_time()).await;
    assert_eq!((again.sent, again.already_sent), (0, 2));
    assert_eq!(
        again.failed_before,
        [(b.key(1), "550 5.1.1 no such user".to_string())]
    );
    assert_eq!((again.failed(), again.unsent()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn only_failed_sends_to_those_the_ledger_records_as_failed_whatever_the_case() {
    let b = Bench::new(3, |b| {
        StubTransport::new().message_answers(b.id(1), [Answer::Permanent, Answer::Accept])
    });
    let first = b.send(one_at_a_time()).await;
    assert_eq!((first.sent, first.failed_permanent.len()), (2, 1));
    // The list as someone re-saved it: the failed reader's address in capitals.
    std::fs::write(
        b.dir.path().join("list.csv"),
        "email\nr0@example.org\nR1@EXAMPLE.ORG\nr2@example.org\n",
    )
    .unwrap();
    let again = b
        .send(Options {
            only_failed: true,
            ..one_at_a_time()
        })
        .await;
    assert_eq!((again.sent, again.already_sent), (1, 0));
    assert_eq!(b.report().sent, 3);
    assert_eq!(
        b.stub().calls().len(),
        4,
        "r0 and r2 were not sent to again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_second_run_sends_nobody_a_second_copy() {
    let b = Bench::new(3, |_| StubTransport::new());
    assert_eq!(b.send(Options::default()).await.sent, 3);
    let again = b.send(Options::default()).await;
    assert_eq!((again.sent, again.already_sent), (0, 3));
    assert_eq!(b.stub().delivered().len(), 3);
}

/// A clock that moves with tokio's (paused) time, from a fixed moment.
struct Following {
    base: chrono::DateTime<chrono::Utc>,
    start: Instant,
}

impl crate::clock::Clock for Following {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_keeps_its_hold_through_a_batch_longer_than_a_heartbeat_lasts() {
    let mut b = Bench::new(1, |_| {
        StubTransport::new().otherwise(Answer::Slow(secs(150)))
    });
    let clock = Arc::new(Following {
        base: chrono::DateTime::from_timestamp(1_591_000_000, 0).unwrap(),
        start: Instant::now(),
    });
    b.tools.clock = clock.clone();
    // 100 s in, with the one delivery still out, another run tries to take the issue.
    let path = b.dir.path().join("ledger.sqlite");
    let intruder = tokio::spawn(async move {
        tokio::time::sleep(secs(100)).await;
        let holder = crate::ledger::Holder {
            host: "another-machine".into(),
            pid: 1,
        };
        let request = crate::ledger::RunRequest {
            issue: ISSUE,
            content_hash: "whatever",
            subject: "s",
            holder: &holder,
            force: true,
        };
        Ledger::open(&path)
            .unwrap()
            .start_run(&request, crate::clock::Clock::now(clock.as_ref()), |_| true)
            .map(|_| ())
    });
    let tally = b.send(Options::default()).await;
    assert_eq!(tally.sent, 1);
    let taken = intruder.await.unwrap();
    assert!(
        matches!(taken, Err(crate::ledger::LedgerError::Held { .. })),
        "{taken:?}"
    );
}
