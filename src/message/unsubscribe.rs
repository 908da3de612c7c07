//! Each reader's own unsubscribe link: a token that is an HMAC of their address, so that
//! nobody can make a working link for someone else. Knows nothing of how the link is used.

use hmac::{KeyInit, Mac};
use lettre::Address;
use sha2::Sha256;

use crate::config::Secret;

/// How readers unsubscribe, with the secret that signs their tokens.
#[derive(Clone)]
pub struct Unsubscribe {
    /// An https URL with `{token}` and optionally `{email}`.
    pub url: String,
    pub mailto: Address,
    pub secret: Secret,
}

impl Unsubscribe {
    /// The reader's token: an HMAC-SHA256 of their lower-case address, so that nobody can
    /// make a working link for someone else.
    pub fn token(&self, address: &Address) -> String {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(address.to_string().to_lowercase().as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    /// The reader's unsubscribe link.
    pub fn url_for(&self, address: &Address) -> String {
        let email =
            percent_encoding::utf8_percent_encode(address.as_ref(), crate::merge::URL_COMPONENT)
                .to_string();
        self.url
            .replace("{token}", &self.token(address))
            .replace("{email}", &email)
    }
}

/// Bytes as lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
