//! VERP (variable envelope return path): an envelope sender per reader and issue, so that a
//! bounce that keeps neither the original Message-ID nor the reader's address still says who
//! it is about, by the address it was returned to.
//!
//! The envelope sender is `<local>+<slug>.<tag>@<domain>`, from the `[sender] from` address
//! `<local>@<domain>`: `<slug>` is the issue's, `<tag>` the reader's [`tag`], a keyed digest
//! of their lower-case address (the address itself stays out of it, as it does out of the
//! unsubscribe link). When the local part would be longer than 64 octets (RFC 5321), or the
//! slug holds characters that do not belong in a local part, the message goes with the plain
//! sender instead ([`envelope_sender`]): a slug cut short would no longer name its issue.
//!
//! `bulletin bounces` reads `<slug>` and `<tag>` back ([`parse`]) and finds the reader among
//! the recipients by computing each one's tag.

use hmac::{KeyInit, Mac};
use lettre::Address;
use sha2::Sha256;

use crate::values::Secret;

/// What the key is derived for, so that the secret's other uses never share it.
const KEY_LABEL: &[u8] = b"bulletin verp v1";

/// Characters of a tag: base32 (RFC 4648), lower case, unpadded.
pub const TAG_LEN: usize = 10;

/// The longest local part (RFC 5321, 4.5.3.1.1).
const MAX_LOCAL: usize = 64;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The key tags are made with: HMAC-SHA256 of a fixed label under the secret (the
/// unsubscribe secret). Derived once per send or per mailbox read, not once per reader.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl Key {
    pub fn new(secret: &Secret) -> Key {
        let mut derive = hmac::Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        derive.update(KEY_LABEL);
        Key(derive.finalize().into_bytes().into())
    }

    /// The reader's tag ([`tag`]).
    pub fn tag(&self, address: &str) -> String {
        tag_with(&self.0, address)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("verp::Key([redacted])")
    }
}

/// The reader's tag: the first 10 characters of the lower-case, unpadded base32 of
/// HMAC-SHA256(key, lower-case address), the [`Key`] derived from the secret.
pub fn tag(secret: &Secret, address: &str) -> String {
    Key::new(secret).tag(address)
}

fn tag_with(key: &[u8], address: &str) -> String {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(address.trim().to_lowercase().as_bytes());
    let digest = mac.finalize().into_bytes();
    // 10 characters of 5 bits: the first 50 bits of the digest.
    let bits = digest[..8]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..TAG_LEN)
        .map(|i| ALPHABET[((bits >> (59 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// The envelope sender for a reader with `tag` of the issue `slug`: `<local>+<slug>.<tag>@
/// <domain>` from `from`, or `from` itself when that local part would exceed 64 octets or
/// the slug is not made of letters, digits, `-`, `_` and single inner dots.
pub fn envelope_sender(from: &Address, slug: &str, tag: &str) -> Address {
    let local = format!("{}+{slug}.{tag}", from.user());
    let safe_slug = !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !slug.starts_with('.')
        && !slug.contains("..");
    if !safe_slug || local.len() > MAX_LOCAL {
        return from.clone();
    }
    Address::new(local, from.domain()).unwrap_or_else(|_| from.clone())
}

/// The issue slug and the tag of a VERP address (`anything+<slug>.<tag>@domain`), if it is
/// one.
pub fn parse(address: &str) -> Option<(String, String)> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    let (_, extension) = local.rsplit_once('+')?;
    let (slug, tag) = extension.rsplit_once('.')?;
    let tag = tag.to_ascii_lowercase();
    let is_tag = tag.len() == TAG_LEN && tag.bytes().all(|b| ALPHABET.contains(&b));
    (is_tag && !slug.is_empty()).then(|| (slug.to_string(), tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s.to_string())
    }

    #[test]
    fn a_tag_is_stable_ten_base32_characters_per_address_and_secret() {
        let s = secret("one secret");
        let ana = tag(&s, "ana@example.org");
        assert_eq!(ana, tag(&s, "Ana@Example.ORG"), "case does not matter");
        assert_eq!(ana, tag(&s, "ana@example.org"), "stable");
        assert_eq!(ana.len(), TAG_LEN);
        assert!(ana.bytes().all(|b| ALPHABET.contains(&b)), "{ana}");
        assert_ne!(ana, tag(&s, "bo@example.org"), "another reader");
        assert_ne!(
            ana,
            tag(&secret("another secret"), "ana@example.org"),
            "another secret"
        );
        // Fixed, so that a bounce of a message sent by an older build still matches.
        assert_eq!(tag(&secret("s"), "ana@example.org"), fixed_tag());
    }

    /// The tag of ana@example.org under the secret "s", computed independently:
    /// python3 -c 'import hmac,hashlib,base64;k=hmac.new(b"s",b"bulletin verp v1",
    /// hashlib.sha256).digest();print(base64.b32encode(hmac.new(k,b"ana@example.org",
    /// hashlib.sha256).digest()).decode().lower()[:10])'
    fn fixed_tag() -> &'static str {
        "3f35ktuu76"
    }

    #[test]
    fn the_envelope_sender_carries_slug_and_tag_and_reads_back() {
        let from: Address = "newsletter@example.org".parse().unwrap();
        let sender = envelope_sender(&from, "2020-06", "abcdefgh23");
        assert_eq!(
            sender.to_string(),
            "newsletter+2020-06.abcdefgh23@example.org"
        );
        assert_eq!(
            parse(&format!("<{sender}>")),
            Some(("2020-06".into(), "abcdefgh23".into()))
        );
        // A sender with its own + extension, a slug with a dot.
        let from: Address = "news+list@example.org".parse().unwrap();
        let sender = envelope_sender(&from, "v1.2", "abcdefgh23");
        assert_eq!(
            parse(sender.as_ref()),
            Some(("v1.2".into(), "abcdefgh23".into()))
        );
    }

    #[test]
    fn a_local_part_over_64_octets_or_an_odd_slug_falls_back_to_the_plain_sender() {
        let from: Address = "newsletter@example.org".parse().unwrap();
        let long = "a".repeat(64 - "newsletter+.abcdefgh23".len());
        assert_ne!(envelope_sender(&from, &long, "abcdefgh23"), from);
        let longer = format!("{long}b");
        assert_eq!(envelope_sender(&from, &longer, "abcdefgh23"), from);
        for odd in ["été", "a b", "a+b", ".a", "a..b", ""] {
            assert_eq!(envelope_sender(&from, odd, "abcdefgh23"), from, "{odd}");
        }
    }

    #[test]
    fn only_plus_slug_dot_tag_addresses_are_read_as_verp() {
        assert_eq!(parse("newsletter@example.org"), None);
        assert_eq!(parse("ana+news@example.org"), None);
        assert_eq!(parse("newsletter+2020-06.short@example.org"), None);
        assert_eq!(
            parse("newsletter+2020-06.abcdefgh01@example.org"),
            None,
            "0, 1 are not base32"
        );
        assert_eq!(
            parse("NewsLetter+2020-06.ABCDEFGH23@example.org"),
            Some(("2020-06".into(), "abcdefgh23".into()))
        );
    }
}
