//! **bulletin** composes a newsletter issue from structured sections and renders it to a
//! responsive HTML email and its plain-text twin.
//!
//! The pipeline, one module a stage: [`issue`] reads the JSON issue file into typed, checked
//! values; [`layout`] provides the templates and theme (built in, overridable file by file);
//! [`render`] fills the layout's MJML and text templates with Handlebars and compiles the MJML
//! with mrml — once per issue — into [`merge::Prepared`] templates whose merge fields are
//! filled per recipient. [`check`] finds what would embarrass an issue before it goes out.
//! [`preview`] serves renders to a browser and follows the files. [`workspace`] creates the
//! folder a newsletter is written in, and [`issue::next`] derives the next issue from the last
//! one. [`clock`] is the one reader of the date. [`cli`] parses arguments, calls the stages and
//! is the only part that prints.
#![forbid(unsafe_code)]

pub mod audience;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diag;
pub mod edition;
pub mod issue;
pub mod layout;
pub mod ledger;
pub mod merge;
pub mod message;
pub mod output;
pub mod preview;
pub mod render;
pub mod send;
pub mod transport;
pub mod workspace;
