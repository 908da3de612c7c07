//! Each reader's own unsubscribe link, and the token in it that carries their address, sealed.
//!
//! The link holds only the token (`https://example.org/unsubscribe/{token}`), never the
//! address in clear: the address would be readable by anyone the message passes through, and
//! spam filters score a link that carries one (SpamAssassin's `GB_CUSTOM_HTM_URI`, issue 14).
//! The page that unsubscribes (`bulletin serve`, deployed away from the sender's files and
//! ledger) finds the address from the token alone with [`open`], given the same secret.
//!
//! A token is `base64url(version ‖ AES-SIV(lower-case address ‖ "\n" ‖ issue slug))`,
//! unpadded: AES-SIV (RFC 5297, a deterministic AEAD) under a key derived from the secret
//! with HMAC-SHA256. So the same reader always gets the same link for an issue (a retry, a
//! resumed run), the unsubscribe is counted against the issue it came from (`bulletin
//! status`), nobody without the secret can read the address or the issue from a token or
//! make a token that opens, and a token made with another secret, cut short or altered opens
//! to nothing. Version 2 carries the issue; version 1 (the address alone, in messages sent
//! before) still opens, to no issue.
//!
//! Knows nothing of how the link is used.

use std::sync::{Mutex, PoisonError};

use aes_siv::KeyInit;
use aes_siv::siv::Aes128Siv;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use lettre::Address;
use sha2::Sha256;

use crate::values::Secret;

/// The first byte of every token: how it was sealed. 2: address and issue.
const VERSION: u8 = 2;

/// Tokens in messages sent before the issue was sealed in: the address alone.
const VERSION_ADDRESS_ONLY: u8 = 1;

/// What the key is derived for, so that the secret's other uses never share it.
const KEY_LABEL: &[u8] = b"bulletin unsubscribe token v1 aes-siv";

/// Associated data: binds a token to its purpose and version.
const CONTEXT: &[u8] = b"bulletin-unsubscribe";

/// The SIV in front of the ciphertext.
const TAG_LEN: usize = 16;

/// How readers unsubscribe, with the secret that seals their tokens.
pub struct Unsubscribe {
    /// An https URL with `{token}` in it (and never the address: see the module's docs).
    pub url: String,
    pub mailto: Address,
    secret: Secret,
    /// The cipher of `secret`, its key derived and scheduled once for every reader of a send
    /// (per reader it was a tenth of composing a message's headers, callgrind). AES-SIV seals
    /// with `&mut`: the lock is held for one token.
    cipher: Mutex<Aes128Siv>,
}

impl Clone for Unsubscribe {
    fn clone(&self) -> Self {
        Unsubscribe::new(self.url.clone(), self.mailto.clone(), self.secret.clone())
    }
}

impl Unsubscribe {
    pub fn new(url: String, mailto: Address, secret: Secret) -> Unsubscribe {
        Unsubscribe {
            url,
            mailto,
            cipher: Mutex::new(cipher(&secret)),
            secret,
        }
    }

    /// The secret that seals the tokens.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The reader's token for the issue `slug`: their address and the issue, sealed
    /// ([`seal`]).
    pub fn token(&self, address: &Address, slug: &str) -> String {
        let mut cipher = self.cipher.lock().unwrap_or_else(PoisonError::into_inner);
        seal_with(&mut cipher, address, slug)
    }

    /// The reader's unsubscribe link in the issue `slug`: the URL with their token in place
    /// of `{token}`.
    pub fn url_for(&self, address: &Address, slug: &str) -> String {
        self.url.replace("{token}", &self.token(address, slug))
    }
}

/// What a token opens to: the reader, and the issue whose link it was (none for tokens of
/// version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub address: Address,
    pub issue: Option<String>,
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

/// The reader's token: their lower-case address and the issue `slug` sealed under `secret`.
/// The same address, issue and secret always give the same token.
pub fn seal(secret: &Secret, address: &Address, slug: &str) -> String {
    seal_with(&mut cipher(secret), address, slug)
}

/// [`seal`] with the secret's cipher.
fn seal_with(cipher: &mut Aes128Siv, address: &Address, slug: &str) -> String {
    // An address never holds a line break, so the first one ends it.
    let plain = format!("{}\n{slug}", address.to_string().to_lowercase());
    let sealed = cipher
        .encrypt([CONTEXT, &[VERSION]], plain.as_bytes())
        .unwrap_or_else(|_| unreachable!("AES-SIV seals any text with two headers"));
    let mut token = Vec::with_capacity(1 + sealed.len());
    token.push(VERSION);
    token.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(token)
}

/// The reader (and issue) a token was sealed for, or `None` for anything [`seal`] did not
/// make with this secret: forged, altered, cut short, sealed with another secret, or not a
/// token at all. The check is AES-SIV's, in constant time.
pub fn open(secret: &Secret, token: &str) -> Option<Opened> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    let (&version, sealed) = bytes.split_first()?;
    if !matches!(version, VERSION | VERSION_ADDRESS_ONLY) || sealed.len() < TAG_LEN {
        return None;
    }
    let plain = cipher(secret).decrypt([CONTEXT, &[version]], sealed).ok()?;
    let plain = String::from_utf8(plain).ok()?;
    let (address, issue) = match version {
        VERSION => {
            let (address, issue) = plain.split_once('\n')?;
            (address, Some(issue.to_string()).filter(|i| !i.is_empty()))
        }
        _ => (plain.as_str(), None),
    };
    Some(Opened {
        address: address.parse().ok()?,
        issue,
    })
}

/// Bytes as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(2 * bytes.len());
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    hex
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
        let token = seal(&s, &ana, "2020-06");
        // The same reader always gets the same link for an issue; another reader, or the
        // next issue, another one.
        assert_eq!(seal(&s, &ana, "2020-06"), token);
        assert_eq!(
            seal(&s, &address("ana.martin@example.org"), "2020-06"),
            token
        );
        assert_ne!(seal(&s, &address("bo@example.org"), "2020-06"), token);
        assert_ne!(seal(&s, &ana, "2020-07"), token);
        assert_eq!(
            open(&s, &token),
            Some(Opened {
                address: address("ana.martin@example.org"),
                issue: Some("2020-06".into())
            })
        );
        // URL-safe as it is: no padding, no characters a path or query would need escaped.
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{token}"
        );
        // The address cannot be read from the token.
        let decoded = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert!(
            !decoded
                .windows(3)
                .any(|w| w == b"ana" || w == b"exa" || w == b"202")
        );
        assert!(!token.to_lowercase().contains("ana"));
        // Short enough for a link: version, 16-byte SIV, the address and the issue.
        assert_eq!(
            decoded.len(),
            1 + 16 + "ana.martin@example.org".len() + 1 + "2020-06".len()
        );
    }

    #[test]
    fn tokens_of_messages_sent_before_the_issue_was_sealed_in_still_open() {
        let s = secret("a long random secret");
        let sealed = cipher(&s)
            .encrypt([CONTEXT, &[VERSION_ADDRESS_ONLY]], b"ana@example.org")
            .unwrap();
        let token = URL_SAFE_NO_PAD.encode([&[VERSION_ADDRESS_ONLY][..], &sealed].concat());
        assert_eq!(
            open(&s, &token),
            Some(Opened {
                address: address("ana@example.org"),
                issue: None
            })
        );
        // A version-1 body under a version-2 header (or the other way round) opens to nothing.
        let relabelled = URL_SAFE_NO_PAD.encode([&[VERSION][..], &sealed].concat());
        assert_eq!(open(&s, &relabelled), None);
    }

    #[test]
    fn forged_altered_truncated_or_foreign_tokens_open_to_nothing() {
        let s = secret("a long random secret");
        let token = seal(&s, &address("ana@example.org"), "2020-06");
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
            let token = seal(&s, &address(text), "2020-06");
            assert_eq!(
                open(&s, &token).map(|o| o.address),
                Some(address(text)),
                "{text}"
            );
        }
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn the_link_holds_the_token_and_never_the_address() {
        let u = Unsubscribe::new(
            "https://example.org/unsubscribe/{token}".into(),
            address("unsubscribe@example.org"),
            secret("a long random secret"),
        );
        let ana = address("ana@example.org");
        let link = u.url_for(&ana, "2020-06");
        let token = link
            .strip_prefix("https://example.org/unsubscribe/")
            .unwrap();
        assert_eq!(
            open(u.secret(), token).map(|o| o.address),
            Some(ana.clone())
        );
        // The cipher kept for every reader seals as the secret does.
        assert_eq!(token, seal(u.secret(), &ana, "2020-06"));
        assert_eq!(u.clone().token(&ana, "2020-06"), token);
        assert!(!link.contains("ana") && !link.contains("%40") && !link.contains('@'));
    }
}
