//! Internationalised addresses (issue 14): `jörg@münchen.example`, `ascii@münchen.example`.
//!
//! A domain written in Unicode goes out in its ASCII form (A-labels, IDNA / UTS 46:
//! `münchen.example` is `xn--mnchen-3ya.example`), in the envelope and in the headers alike,
//! whatever the relay: every relay takes that form. A local part written in Unicode (`jörg`)
//! has no ASCII form; it needs a relay that offers SMTPUTF8 (RFC 6531), which the transport
//! asks. People are shown the address as written, its domain in Unicode ([`display`]).
//!
//! Pure functions on addresses; nothing here knows of lists or sending.

use lettre::Address;

/// The address with its domain in ASCII form (A-labels), as SMTP and headers carry it. A
/// domain already in ASCII is kept as written; the local part is never changed.
pub fn ascii(address: &Address) -> Address {
    let domain = address.domain();
    if domain.is_ascii() {
        return address.clone();
    }
    // lettre accepted the address only if the domain has an ASCII form (it checks with the
    // same UTS 46 processing), so neither step fails; the address as written is the fallback.
    idna::domain_to_ascii(domain)
        .ok()
        .and_then(|ascii| Address::new(address.user(), ascii).ok())
        .unwrap_or_else(|| address.clone())
}

/// True when the address cannot be written in ASCII even with its domain converted: its
/// local part has other characters, so it can only travel over SMTPUTF8.
pub fn needs_smtputf8(address: &Address) -> bool {
    !address.user().is_ascii()
}

/// The address for people: its domain in Unicode (`xn--mnchen-3ya.example` reads
/// `münchen.example`).
pub fn display(address: &Address) -> String {
    let (unicode, result) = idna::domain_to_unicode(address.domain());
    match result {
        Ok(()) => format!("{}@{unicode}", address.user()),
        Err(_) => address.to_string(),
    }
}

/// An address as written, reduced to the one form that says whether two are the same
/// reader: lower case, domain in ASCII form. Text that is not an address is only lowered.
pub fn key(text: &str) -> String {
    let lower = text.trim().to_lowercase();
    if lower.is_ascii() {
        return lower;
    }
    match lower.rsplit_once('@') {
        Some((user, domain)) => match idna::domain_to_ascii(domain) {
            Ok(domain) => format!("{user}@{domain}"),
            Err(_) => lower,
        },
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Address {
        text.parse().unwrap()
    }

    #[test]
    fn unicode_domains_go_out_in_their_ascii_form() {
        assert_eq!(
            ascii(&address("ascii@münchen.example")).to_string(),
            "ascii@xn--mnchen-3ya.example"
        );
        assert_eq!(
            ascii(&address("jörg@MÜNCHEN.example")).to_string(),
            "jörg@xn--mnchen-3ya.example"
        );
        // UTS 46 maps before it converts: full-width and upper case letters, the ideographic
        // full stop.
        assert_eq!(
            ascii(&address("a@ｍüｎchen。example")).to_string(),
            "a@xn--mnchen-3ya.example"
        );
        // ASCII domains are kept as written.
        assert_eq!(
            ascii(&address("Ana@Example.org")).to_string(),
            "Ana@Example.org"
        );
        assert!(needs_smtputf8(&address("jörg@münchen.example")));
        assert!(!needs_smtputf8(&address("ascii@münchen.example")));
    }

    #[test]
    fn people_see_the_domain_in_unicode() {
        assert_eq!(
            display(&address("ascii@xn--mnchen-3ya.example")),
            "ascii@münchen.example"
        );
        assert_eq!(display(&address("ana@example.org")), "ana@example.org");
    }

    #[test]
    fn one_reader_whichever_way_the_domain_is_written() {
        assert_eq!(
            key("Jörg@München.example"),
            key("jörg@xn--mnchen-3ya.example")
        );
        assert_eq!(key(" ANA@example.org "), "ana@example.org");
        assert_eq!(key("not an address ü"), "not an address ü");
    }
}
