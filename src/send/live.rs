//! Who is sending, and whether another run's process is still alive.
//!
//! Owns the identity of this process (host, pid) and the check through `/proc`; the ledger
//! decides what a live or dead holder means.

use std::path::Path;

use crate::ledger::Holder;

/// This process, on this machine.
pub fn this_process() -> Holder {
    Holder {
        host: hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "this machine".into()),
        pid: std::process::id(),
    }
}

/// Whether the run of `other` may still be sending: on another machine we cannot tell (its
/// heartbeat decides); on this one, its process must exist (`kill -9` is noticed at once).
pub fn process_alive(other: &Holder, this_host: &str) -> bool {
    if other.host != this_host {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.is_dir() {
        return true;
    }
    proc.join(other.pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_another_host_is_given_the_benefit_of_the_doubt() {
        let me = this_process();
        assert!(process_alive(&me, &me.host));
        let elsewhere = Holder {
            host: "another-machine".into(),
            pid: u32::MAX,
        };
        assert!(process_alive(&elsewhere, &me.host));
        if Path::new("/proc").is_dir() {
            let gone = Holder {
                host: me.host.clone(),
                pid: u32::MAX,
            };
            assert!(!process_alive(&gone, &me.host));
        }
    }
}
