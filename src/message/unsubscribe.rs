//! Each reader's own unsubscribe link, and the token in it that carries their address, sealed.
//!
//! The link holds only the token (`https://example.org/unsubscribe/{token}`), never the
//! address in clear: the address would be readable by anyone the message passes through, and
//! spam filters score a link that carries one (SpamAssassin's `GB_CUSTOM_HTM_URI`, issue 14).
//! The page that unsubscribes (`bulletin serve`, deployed away from the sender's files and
//! ledger) finds the address from the token alone with [`open`], given the same secret.
//!
//! A token is `base64url(version ‖ AES-SIV(lower-case address))`, unpadded: AES-SIV
//! (RFC 5297, a deterministic AEAD) under a key derived from the secret with HMAC-SHA256. So
//! the same reader always gets the same link (a retry, a second issue), nobody without the
//! secret can read the address from a token or make a token that opens, and a token made
//! with another secret, cut short or altered opens to nothing. Version 1 is the only one.
//!
//! Knows nothing of how the link is used.

use aes_siv::KeyInit;
use aes_siv::siv::Aes128Siv;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use lettre::Address;
use sha2::Sha256;

use crate::config::Secret;

/// The first byte of every token: how it was sealed.
const VERSION: u8 = 1;

/// What the key is derived for, so that the secret's other uses never share it.
const KEY_LABEL: &[u8] = b"bulletin unsubscribe token v1 aes-siv";

/// Associated data: binds a token to its purpose and version.
const CONTEXT: &[u8] = b"bulletin-unsubscribe";

/// The SIV in front of the ciphertext.
const TAG_LEN: usize = 16;

/// How readers unsubscribe, with the secret that seals their tokens.
#[derive(Clone)]
pub struct Unsubscribe {
    /// An https URL with `{token}` in it (and never the address: see the module's docs).
    pub url: String,
    pub mailto: Address,
    pub secret: Secret,
}

impl Unsubscribe {
    /// The reader's token: their address, sealed ([`seal`]).
    pub fn token(&self, address: &Address) -> String {
        seal(&self.secret, address)
    }

    /// The reader's unsubscribe link: the URL with their token in place of `{token}`.
    pub fn url_for(&self, address: &Address) -> String {
        self.url.replace("{token}", &self.token(address))
    }
}

/// The AES-SIV key for tokens: HMAC-SHA256 of a fixed label under the secret. Any secret
/// gives a key; a long random one (`openssl rand -base64 32`) is what makes it strong.
fn cipher(secret: &Secret) -> Aes128Siv {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(KEY_LABEL);
    let key = mac.finalize().into_bytes();
    // HMAC-SHA256 gives 32 bytes: AES-SIV-128's two 128-bit keys (MAC, then encryption).
    Aes128Siv::new(&key)
}

/// The reader's token: their lower-case address sealed under `secret`. The same address and
/// secret always give the same token.
pub fn seal(secret: &Secret, address: &Address) -> String {
    let plain = address.to_string().to_lowercase();
    let sealed = cipher(secret)
        .encrypt([CONTEXT, &[VERSION]], plain.as_bytes())
        .unwrap_or_else(|_| unreachable!("AES-SIV seals any text with two headers"));
    let mut token = Vec::with_capacity(1 + sealed.len());
    token.push(VERSION);
    token.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(token)
}

/// The address a token was sealed for, or `None` for anything [`seal`] did not make with this
/// secret: forged, altered, cut short, sealed with another secret, or not a token at all.
/// The check is AES-SIV's, in constant time.
pub fn open(secret: &Secret, token: &str) -> Option<Address> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let (&version, sealed) = bytes.split_first()?;
    if version != VERSION || sealed.len() < TAG_LEN {
        return None;
    }
    let plain = cipher(secret).decrypt([CONTEXT, &[VERSION]], sealed).ok()?;
    String::from_utf8(plain).ok()?.parse().ok()
}

/// Bytes as lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> Secret {
        Secret::new(value)
    }

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn a_token_opens_to_the_readers_address_and_to_nothing_else() {
        let s = secret("a long random secret");
        let ana = address("Ana.Martin@Example.org");
        let token = seal(&s, &ana);
        // The same reader always gets the same link; another reader another one.
        assert_eq!(seal(&s, &ana), token);
        assert_eq!(seal(&s, &address("ana.martin@example.org")), token);
        assert_ne!(seal(&s, &address("bo@example.org")), token);
        assert_eq!(open(&s, &token), Some(address("ana.martin@example.org")));
        // URL-safe as it is: no padding, no characters a path or query would need escaped.
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        // The address cannot be read from the token.
        let decoded = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert!(!decoded.windows(3).any(|w| w == b"ana" || w == b"exa"));
        assert!(!token.to_lowercase().contains("ana"));
        // Short enough for a link: version, 16-byte SIV and the address itself.
        assert_eq!(decoded.len(), 1 + 16 + "ana.martin@example.org".len());
    }

    #[test]
    fn forged_altered_truncated_or_foreign_tokens_open_to_nothing() {
        let s = secret("a long random secret");
        let token = seal(&s, &address("ana@example.org"));
        // Another secret.
        assert_eq!(open(&secret("another secret"), &token), None);
        // Every single bit flipped, one at a time.
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut altered = bytes.clone();
            altered[i / 8] ^= 1 << (i % 8);
            assert_eq!(open(&s, &URL_SAFE_NO_PAD.encode(&altered)), None, "bit {i}");
        }
        // Cut short, by a character or down to nothing.
        for n in 0..token.len() {
            assert_eq!(open(&s, &token[..n]), None, "{n} characters");
        }
        // Not a token at all: the old hex HMAC, padding, other alphabets, an address.
        for junk in [
            "3f2a9c0b5e1d4a7f8b6c2d1e0f9a8b7c",
            &format!("{token}="),
            &token.replace('-', "+").replace('_', "/"),
            "ana@example.org",
            "",
            "AQ",
        ] {
            assert_eq!(open(&s, junk), None, "{junk}");
        }
        // A well-formed token of the right length, made without the secret.
        let forged = URL_SAFE_NO_PAD.encode([&[VERSION][..], &[0u8; 31]].concat());
        assert_eq!(open(&s, &forged), None);
    }

    #[test]
    fn internationalised_addresses_seal_and_open() {
        let s = secret("a long random secret");
        for text in [
            "jörg@münchen.example",
            "ascii@münchen.example",
            "ü@example.org",
        ] {
            let token = seal(&s, &address(text));
            assert_eq!(open(&s, &token), Some(address(text)), "{text}");
        }
    }

    #[test]
    fn the_link_holds_the_token_and_never_the_address() {
        let u = Unsubscribe {
            url: "https://example.org/unsubscribe/{token}".into(),
            mailto: address("unsubscribe@example.org"),
            secret: secret("a long random secret"),
        };
        let ana = address("ana@example.org");
        let link = u.url_for(&ana);
        let token = link
            .strip_prefix("https://example.org/unsubscribe/")
            .unwrap();
        assert_eq!(open(&u.secret, token), Some(ana));
        assert!(!link.contains("ana") && !link.contains("%40") && !link.contains('@'));
    }
}
