//! The reports of a send, as people read them (text) and as scripts read them (JSON): the
//! plan before a run, the tally after it, the results of a test send.
//!
//! Turns data into text and nothing else; printing it is the CLI's.

use std::path::Path;

use lettre::Address;
use serde_json::{Value, json};

use super::plan::Plan;
use super::tally::{Stopped, Tally};
use crate::ledger::RecipientKey;

impl Plan {
    /// The plan as people read it, for the issue file `issue`.
    pub fn text(&self, issue: &Path) -> String {
        let mut out = format!(
            "Issue:      {}\nSubject:    {}\nRecipients: {}\n",
            issue.display(),
            self.subject,
            self.recipients
        );
        for (why, n) in &self.skipped {
            out.push_str(&format!("Skipped:    {n} {why}\n"));
        }
        out.push_str(&format!("Transport:  {}\n", self.transport));
        out
    }
}

/// Readers named in the report for each reason; the rest are counted (`bulletin status
/// --failed --csv` lists them all).
pub const EXAMPLES: usize = 5;

impl Tally {
    /// The end-of-run report. Failures are grouped by reason: a provider that refuses a
    /// request names the same reason for each of its readers.
    pub fn text(&self) -> String {
        let mut out = format!("Sent: {}\n", self.sent);
        if self.already_sent > 0 {
            out.push_str(&format!("Already sent before: {}\n", self.already_sent));
        }
        for (why, n) in &self.skipped {
            out.push_str(&format!("Skipped ({why}): {n}\n"));
        }
        for (line, why) in &self.invalid {
            out.push_str(&format!("  line {line}: {why}\n"));
        }
        if self.not_tried > 0 {
            out.push_str(&format!(
                "Not tried (the run stopped first): {}\n",
                self.not_tried
            ));
        }
        out.push_str(&format!("Failed: {}\n", self.failed()));
        out.push_str(&grouped(&self.failed_permanent, "permanent"));
        out.push_str(&grouped(
            &self.failed_before,
            "permanent, in an earlier run",
        ));
        out.push_str(&grouped(
            &self.failed_temporary,
            "temporary: a new run retries it",
        ));
        if !self.uncertain.is_empty() {
            out.push_str(&format!(
                "Uncertain (may have two copies): {}\n",
                self.uncertain.len()
            ));
            out.push_str(&grouped(&self.uncertain, "uncertain"));
        }
        out
    }

    /// The end-of-run report for scripts, of the issue `issue` (its slug): every reader
    /// named, whatever their number.
    pub fn json(&self, issue: &str) -> Value {
        let mut failures: Vec<Value> = Vec::new();
        for (list, permanent, earlier) in [
            (&self.failed_permanent, true, false),
            (&self.failed_before, true, true),
            (&self.failed_temporary, false, false),
        ] {
            failures.extend(list.iter().map(|(who, reply)| {
                json!({"email": who.as_str(), "reply": reply, "permanent": permanent, "earlier": earlier})
            }));
        }
        let uncertain: Vec<Value> = self
            .uncertain
            .iter()
            .map(|(who, why)| json!({"email": who.as_str(), "reply": why}))
            .collect();
        let stopped = self.stopped.as_ref().map(|s| match s {
            Stopped::Interrupted => json!({"why": "interrupted"}),
            Stopped::Unreachable(reply) => json!({"why": "unreachable", "reply": reply}),
            Stopped::Auth(reply) => json!({"why": "credentials refused", "reply": reply}),
        });
        let invalid: Vec<Value> = self
            .invalid
            .iter()
            .map(|(line, why)| json!({"line": line, "reason": why}))
            .collect();
        json!({
            "issue": issue,
            "sent": self.sent,
            "already_sent": self.already_sent,
            "not_tried": self.not_tried,
            "unsent": self.unsent(),
            "skipped": self.skipped,
            "invalid": invalid,
            "failed": failures,
            "uncertain": uncertain,
            "stopped": stopped,
        })
    }
}

/// `list` grouped by reply, in the order each reply first came: one line for a reason that
/// concerns one reader, else the count and the first [`EXAMPLES`] readers.
fn grouped(list: &[(RecipientKey, String)], what: &str) -> String {
    let mut groups: Vec<(&str, Vec<&RecipientKey>)> = Vec::new();
    for (who, reply) in list {
        match groups.iter_mut().find(|(r, _)| *r == reply.as_str()) {
            Some((_, readers)) => readers.push(who),
            None => groups.push((reply, vec![who])),
        }
    }
    let mut out = String::new();
    for (reply, readers) in groups {
        if let [who] = readers.as_slice() {
            out.push_str(&format!("  {who}: {reply} ({what})\n"));
            continue;
        }
        let named: Vec<&str> = readers.iter().take(EXAMPLES).map(|k| k.as_str()).collect();
        let more = readers.len().saturating_sub(EXAMPLES);
        let rest = match more {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        out.push_str(&format!(
            "  {} readers: {reply} ({what})\n    {}{rest}\n",
            readers.len(),
            named.join(", ")
        ));
    }
    out
}

/// What became of a test copy.
#[derive(Debug, Clone, PartialEq)]
pub struct TestOutcome {
    pub address: Address,
    pub sent: bool,
    /// The server's reply, or what went wrong.
    pub reply: String,
}

/// What a test send did, address by address.
#[derive(Debug, Clone, Default)]
pub struct TestReport(pub Vec<TestOutcome>);

impl TestReport {
    /// Whether every address took it.
    pub fn all_sent(&self) -> bool {
        self.0.iter().all(|t| t.sent)
    }

    /// One line per address.
    pub fn text(&self) -> String {
        self.0
            .iter()
            .map(|t| {
                let not = if t.sent { "" } else { "NOT " };
                format!("test {not}sent to {}: {}\n", t.address, t.reply)
            })
            .collect()
    }

    /// For scripts.
    pub fn json(&self) -> Value {
        let results: Vec<Value> = self
            .0
            .iter()
            .map(|t| json!({"email": t.address.to_string(), "sent": t.sent, "reply": t.reply}))
            .collect();
        json!({ "test": results })
    }
}

impl Stopped {
    /// Why the run stopped, as a person reads it.
    pub fn explain(&self) -> String {
        match self {
            Stopped::Interrupted => "stopped by Ctrl-C".to_string(),
            Stopped::Unreachable(reply) => format!("stopped: sending cannot go on ({reply})"),
            Stopped::Auth(reply) => format!("stopped: the credentials were refused ({reply})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(a: &str) -> RecipientKey {
        RecipientKey::from(&a.parse::<lettre::Address>().unwrap())
    }

    #[test]
    fn the_report_says_what_happened_to_whom() {
        let mut t = Tally {
            sent: 2,
            already_sent: 1,
            not_tried: 3,
            ..Tally::default()
        };
        t.skipped.insert("duplicate".into(), 1);
        t.invalid.push((4, "\"x\" is not an email address".into()));
        t.failed_permanent
            .push((key("Mariusz@example.pl"), "550 no".into()));
        t.failed_temporary
            .push((key("tom@example.org"), "451 later".into()));
        t.stopped = Some(Stopped::Unreachable("421 gone".into()));
        assert_eq!(
            t.text(),
            "Sent: 2\nAlready sent before: 1\nSkipped (duplicate): 1\n  line 4: \"x\" is not an email address\n\
             Not tried (the run stopped first): 3\nFailed: 2\n  mariusz@example.pl: 550 no (permanent)\n\
             \x20 tom@example.org: 451 later (temporary: a new run retries it)\n"
        );
        assert_eq!(t.unsent(), 5);
        let j = t.json("2020-06");
        assert_eq!(j["failed"][0]["email"], "mariusz@example.pl");
        assert_eq!(j["failed"][1]["permanent"], false);
        assert_eq!(j["stopped"]["why"], "unreachable");
        assert_eq!(j["invalid"][0]["line"], 4);
    }

    #[test]
    fn failures_are_grouped_by_reason_with_five_examples_and_earlier_ones_count() {
        let mut t = Tally::default();
        for i in 0..1000 {
            t.failed_temporary
                .push((key(&format!("r{i}@example.org")), "HTTP 503".into()));
        }
        t.failed_permanent
            .push((key("a@example.org"), "550 no such user".into()));
        t.failed_before
            .push((key("b@example.org"), "550 no such user".into()));
        t.failed_before
            .push((key("c@example.org"), "550 no such user".into()));
        t.uncertain
            .push((key("d@example.org"), "no answer within 60 s".into()));
        let text = t.text();
        assert_eq!(
            text,
            "Sent: 0\nFailed: 1003\n  a@example.org: 550 no such user (permanent)\n\
             \x20 2 readers: 550 no such user (permanent, in an earlier run)\n    b@example.org, c@example.org\n\
             \x20 1000 readers: HTTP 503 (temporary: a new run retries it)\n\
             \x20   r0@example.org, r1@example.org, r2@example.org, r3@example.org, r4@example.org and 995 more\n\
             Uncertain (may have two copies): 1\n  d@example.org: no answer within 60 s (uncertain)\n"
        );
        let j = t.json("2020-06");
        assert_eq!(
            j["failed"].as_array().unwrap().len(),
            1003,
            "JSON names everyone"
        );
        assert_eq!(j["failed"][1]["earlier"], true);
        assert_eq!(j["unsent"], 1003);
        assert_eq!(j["uncertain"][0]["email"], "d@example.org");
    }

    #[test]
    fn the_plan_lists_skipped_rows_by_reason() {
        let mut plan = Plan {
            subject: "June".into(),
            recipients: 3,
            skipped: Default::default(),
            transport: "stub".into(),
        };
        plan.skipped.insert("duplicate".into(), 1);
        plan.skipped.insert("unsubscribed".into(), 2);
        assert_eq!(
            plan.text(Path::new("issues/2020-06.json")),
            "Issue:      issues/2020-06.json\nSubject:    June\nRecipients: 3\n\
             Skipped:    1 duplicate\nSkipped:    2 unsubscribed\nTransport:  stub\n"
        );
    }
}
