//! The typed values that `bulletin.toml` holds and several stages take: a secret read from
//! the environment, a sending rate, DKIM signing settings, and whether a host is this machine.
//!
//! A leaf: it imports nothing of the crate, so that [`crate::config`] (which reads the file),
//! the transports, `serve` and `bounces` can all use these without importing each other.
//! [`crate::config`] re-exports them, as `bulletin::config::Secret` and so on.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// DKIM signing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
}

/// A sending rate: "10/s", "600/m", "5000/h".
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub messages: u32,
    pub per: Duration,
}

/// Text that is not a rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not a rate; write messages per second, minute or hour, e.g. \"10/s\", \"600/m\", \"5000/h\""
)]
pub struct RateError(pub String);

impl TryFrom<String> for Rate {
    type Error = RateError;
    fn try_from(s: String) -> Result<Self, RateError> {
        let bad = || RateError(s.clone());
        let (n, unit) = s.split_once('/').ok_or_else(bad)?;
        let messages: u32 = n.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        if messages == 0 {
            return Err(bad());
        }
        Ok(Rate { messages, per })
    }
}

/// True for `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A secret read from the environment. It never prints.
#[derive(Clone)]
pub struct Secret(String);

/// A secret that is not in the environment. It names the variable, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the environment variable {name} is not set; set it to the secret (it is never stored in bulletin.toml)"
)]
pub struct SecretError {
    pub name: String,
}

impl Secret {
    /// Reads the variable `name` (empty counts as not set).
    pub fn from_env(name: &str) -> Result<Secret, SecretError> {
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(Secret(v)),
            _ => Err(SecretError {
                name: name.to_string(),
            }),
        }
    }

    /// A secret given as a value (one read elsewhere, or a test's).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Stands in for a secret that a dry run does not need.
    pub fn placeholder() -> Secret {
        Secret("not-needed-for-a-dry-run".into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
