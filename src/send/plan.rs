//! The plan: what a send will do, counted before it does it — how many readers, how many
//! rows skipped and why, the subject, the transport.
//!
//! Reads the list once and nothing else: it neither opens the ledger nor sends.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{SendError, Tools};
use crate::audience::{self, AudienceError, Fingerprints, Row, Rows};
use crate::merge::NoValues;
use crate::message::Composer;
use crate::transport::Transport;

/// A subscriber list, and the addresses never to send to.
#[derive(Debug, Clone)]
pub struct List {
    /// The CSV file.
    pub path: PathBuf,
    /// A file of addresses, one a line, never to send to.
    pub suppress: Option<PathBuf>,
    /// Suppression stores (`bulletin serve`'s, and the mirror of one elsewhere): their
    /// unsubscribed readers (and those who complained) are skipped as unsubscribed, their
    /// bounced ones as bounced. A store that does not exist has none.
    pub stores: Vec<PathBuf>,
}

impl List {
    /// The list's rows, from the top.
    pub fn rows(&self) -> Result<Rows, AudienceError> {
        let suppressed = match &self.suppress {
            Some(f) => audience::read_suppressions(f)?,
            None => Fingerprints::default(),
        };
        let (mut unsubscribed, mut bounced) = (Fingerprints::default(), Fingerprints::default());
        for store in &self.stores {
            crate::suppressions::add_current_by_kind(store, &mut unsubscribed, &mut bounced)
                .map_err(|e| AudienceError::Read {
                    path: e.path,
                    reason: e.reason,
                })?;
        }
        Ok(audience::open(&self.path, suppressed)?
            .unsubscribed(unsubscribed)
            .bounced(bounced))
    }
}

/// What a send will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The subject as readers see it (merge fields left empty).
    pub subject: String,
    /// Readers to send to (some may have it already: the ledger knows).
    pub recipients: u64,
    /// Rows not to send to, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// How messages leave: "SMTP smtp.example.org:587 (STARTTLS)".
    pub transport: String,
}

/// Counts `list` for a send with `tools`.
pub fn plan<T: Transport>(list: &List, tools: &Tools<T>) -> Result<Plan, SendError> {
    let mut plan = Plan {
        subject: subject(&tools.composer),
        recipients: 0,
        skipped: BTreeMap::new(),
        transport: tools.transport.describe(),
    };
    for row in list.rows()? {
        match row? {
            Row::Send(_) => plan.recipients += 1,
            Row::Skipped { why, .. } => {
                *plan.skipped.entry(why.label().to_string()).or_default() += 1
            }
        }
    }
    Ok(plan)
}

/// The subject, as the ledger and the plan name it.
pub(super) fn subject(composer: &Composer) -> String {
    composer.rendered.subject.fill(&NoValues)
}
