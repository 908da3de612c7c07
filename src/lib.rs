//! **bulletin** composes a newsletter issue from structured sections, renders it to a
//! responsive HTML email and its plain-text twin, and sends it to a subscriber list.
//!
//! The pipeline, one module a stage: [`issue`] reads the JSON issue file into typed, checked
//! values; [`layout`] provides the templates and theme (built in, overridable file by file);
//! [`render`] fills the layout's MJML and text templates with Handlebars and compiles the MJML
//! with mrml — once per issue — into [`merge::Prepared`] templates whose merge fields are
//! filled per [`merge::Recipient`]. [`edition`] is the one entry from an issue file to its
//! email, the same for `render`, `check`, `preview` and `send`. [`check`] finds what would
//! embarrass an issue before it goes out, including every rule that makes a send refuse.
//! [`preview`] serves renders to a browser and follows the files. [`calendar`] writes each
//! event of an issue as an iCalendar entry and its "Add to calendar" links. [`publish`]
//! writes the web edition, a static site of every issue with its list, feed and sitemap.
//!
//! Sending: [`audience`] streams the subscriber list; [`message`] builds what a transport
//! receives (MIME bytes, parts for an API, or values for one template); [`send`] runs the
//! whole send — plan, ownership of the issue in the [`ledger`], the loop that claims,
//! dispatches and records — over any [`transport`] (SMTP, seven providers' APIs, files, a
//! stub for tests), which knows nothing of the loop or the ledger. [`bounces`] reads the
//! bounce mailbox of SMTP sends back into the suppression store that `send` honours.
//!
//! Around them: [`workspace`] finds and creates the folder a newsletter is written in,
//! [`config`] reads its `bulletin.toml`, [`clock`] is the one reader of the time, and [`cli`]
//! parses arguments, calls the stages and is the only part that prints.
#![forbid(unsafe_code)]

pub mod audience;
pub mod bounces;
pub mod calendar;
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
pub mod publish;
pub mod render;
pub mod send;
pub mod serve;
pub mod suppressions;
#[cfg(test)]
mod testing;
pub mod transport;
pub mod values;
pub mod workspace;
