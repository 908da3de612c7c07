//! The reports of a send, as people read them (text) and as scripts read them (JSON): the
//! plan before a run, the tally after it, the results of a test send.
//!
//! Turns data into text and nothing else; printing it is the CLI's.

use std::path::Path;

use serde_json::{Value, json};

use super::plan::Plan;
use super::tally::{Stopped, Tally};
use super::test_send::TestOutcome;
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

impl Tally {
    /// The end-of-run report.
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
        for (who, reply) in &self.failed_permanent {
            out.push_str(&format!("  {who}: {reply} (permanent)\n"));
        }
        for (who, reply) in &self.failed_temporary {
            out.push_str(&format!(
                "  {who}: {reply} (temporary: a new run retries it)\n"
            ));
        }
        out
    }

    /// The end-of-run report for scripts, of the issue `issue` (its slug).
    pub fn json(&self, issue: &str) -> Value {
        let failed = |list: &[(RecipientKey, String)], permanent: bool| -> Vec<Value> {
            list.iter()
                .map(|(who, reply)| {
                    json!({"email": who.as_str(), "reply": reply, "permanent": permanent})
                })
                .collect()
        };
        let mut failures = failed(&self.failed_permanent, true);
        failures.extend(failed(&self.failed_temporary, false));
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
            "skipped": self.skipped,
            "invalid": invalid,
            "failed": failures,
            "stopped": stopped,
        })
    }
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
            Stopped::Unreachable(reply) => format!("stopped: the relay keeps failing ({reply})"),
            Stopped::Auth(reply) => format!(
                "stopped: the relay refused the credentials ({reply}); check the password's environment variable"
            ),
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
        let j = t.json("2020-06");
        assert_eq!(j["failed"][0]["email"], "mariusz@example.pl");
        assert_eq!(j["failed"][1]["permanent"], false);
        assert_eq!(j["stopped"]["why"], "unreachable");
        assert_eq!(j["invalid"][0]["line"], 4);
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
