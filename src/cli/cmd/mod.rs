//! One module per command, each with its clap `Args` and a `run` that calls the library.

pub mod bounces;
pub mod check;
pub mod init;
pub mod new;
pub mod preview;
pub mod publish;
pub mod render;
pub mod schema;
pub mod send;
pub mod serve;
pub mod status;
pub mod suppressions;
