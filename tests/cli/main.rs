//! Integration tests: the real `bulletin` binary run in temporary workspaces, as a user would.
//! One test binary (modules below) keeps link time down.
#![allow(dead_code)]

mod check;
mod common;
mod errors;
mod init;
mod new;
mod preview;
mod providers;
mod render;
mod schema;
mod send;
mod workspace;

pub use workspace::run_in as workspace_run;
