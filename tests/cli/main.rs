//! Integration tests: the real `bulletin` binary run in temporary workspaces, as a user would.
//! One test binary (modules below) keeps link time down.
#![allow(dead_code)]

mod bounces;
mod browser;
mod calendar;
mod check;
mod common;
mod errors;
mod fields;
mod init;
mod languages;
mod new;
mod preview;
mod providers;
mod publish;
mod render;
mod rtl;
mod schema;
mod send;
mod serve;
mod serve_site;
mod web;
mod webhooks;
mod workspace;

pub use workspace::run_in as workspace_run;
