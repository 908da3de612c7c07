//! A test send: the issue to a few addresses, "[TEST]" in the subject (the composer's doing),
//! one at a time, recorded nowhere.
//!
//! Owns nothing of the ledger or the loop: a test copy never counts as anyone's delivery.

use std::collections::BTreeMap;
use std::time::SystemTime;

use lettre::Address;

use super::report::{TestOutcome, TestReport};
use super::{SendError, Tools};
use crate::audience::Subscriber;
use crate::transport::Transport;

/// Sends a test copy to each of `to`. A message that cannot be built stops it (it would be
/// the same for everyone); a refused one is reported and the others go on.
pub async fn test_send<T: Transport>(
    to: &[Address],
    tools: &Tools<T>,
) -> Result<TestReport, SendError> {
    let mut report = TestReport::default();
    for address in to {
        let mut fields = BTreeMap::new();
        fields.insert("email".to_string(), address.to_string());
        let subscriber = Subscriber {
            address: address.clone(),
            fields,
            line: 0,
        };
        let now = SystemTime::from(tools.clock.now());
        let message = tools
            .composer
            .compose_as(&subscriber, now, tools.transport.form())?;
        let (sent, reply) = match tools.transport.send(&message).await {
            Ok(a) => (true, a.reply),
            Err(f) => (false, f.reply),
        };
        report.0.push(TestOutcome {
            address: address.clone(),
            sent,
            reply,
        });
    }
    Ok(report)
}
