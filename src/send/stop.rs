//! The stop signal: Ctrl-C, or anything else that asks a run to stop once what is in flight
//! has been delivered and recorded.
//!
//! Owns the flag and the Ctrl-C hook; it decides nothing about what stopping means (the loop
//! does).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks a run to stop. Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A signal nobody has given yet.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// A signal that Ctrl-C gives. From then on Ctrl-C no longer ends the process at once:
    /// it asks the run to stop. Call it inside a tokio runtime, when the run is about to
    /// start (before, Ctrl-C should still just end the program).
    pub fn on_ctrl_c() -> Stop {
        let stop = Stop::new();
        let flag = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.request();
            }
        });
        stop
    }

    /// Asks for the stop.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether someone asked.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
