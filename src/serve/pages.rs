//! The pages readers see: one question, one button, plain HTML. They work without
//! JavaScript (a `<form method="post">`), have one `<h1>`, the language and direction of the
//! issue the link came in ([`Look`]: its layout's `page_*` words, colours and logo), visible
//! focus, and text that keeps WCAG AA contrast. They fit a 375 px phone: long addresses and
//! names wrap.
//!
//! Forms and the logo use relative URLs (the link's own, `{token}/resubscribe`, `../{token}`,
//! `logo/…`), so the pages work under whatever prefix the reverse proxy puts in front. The
//! address is shown masked (`a•••@example.org`): enough for a reader with two addresses to
//! know which one, not enough for whoever the link is forwarded to. Names and addresses put
//! into a sentence are isolated (`<bdi>`), so that a Latin address keeps its place in an
//! Arabic one.

use lettre::Address;

use super::look::{LogoSrc, Look};
use crate::merge::escape_html;
use crate::suppressions::Kind;

/// What every page of a link needs.
pub struct Page<'a> {
    pub look: &'a Look,
    /// From the page's URL to the links' folder: `""` at `{prefix}/{token}`, `"../"` at
    /// `{prefix}/{token}/resubscribe`.
    pub up: &'a str,
    /// The newsletter's name.
    pub newsletter: &'a str,
}

/// The style, in the look's colours. Buttons change only their underline on hover, so that
/// no further colour pair needs checking.
fn style(look: &Look) -> String {
    let c = &look.colors;
    format!(
        "body{{margin:0;background:{bg};color:{text};font:1.125rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}}\
main{{box-sizing:border-box;max-width:36rem;margin:2rem auto;padding:2rem 1.25rem;background:{surface};overflow-wrap:anywhere}}\
@media (max-width:38rem){{main{{margin:0}}}}\
img.logo{{display:block;max-width:100%;height:auto;margin:0 0 1.5rem}}\
h1{{font-size:1.6rem;line-height:1.25;margin:0 0 1rem;color:{heading}}}\
button{{font:inherit;font-weight:600;color:{button_text};background:{button};border:2px solid {button};border-radius:.4rem;padding:.6rem 1.2rem;cursor:pointer;max-width:100%;white-space:normal}}\
button.secondary{{color:{button};background:{surface}}}\
button:hover{{text-decoration:underline;text-underline-offset:.2em}}\
:focus-visible{{outline:3px solid {text};outline-offset:3px}}\
p.small{{font-size:1rem;color:{muted}}}\
a{{color:{link}}}",
        bg = c.background,
        text = c.text,
        surface = c.surface,
        heading = c.heading,
        button = c.button,
        button_text = c.button_text,
        muted = c.muted,
        link = c.link,
    )
}

/// A whole page: `title` is also its one `<h1>`; `body` is HTML.
fn page(p: &Page, title: &str, body: &str) -> String {
    let look = p.look;
    let title = escape_html(title);
    let logo = match &look.logo {
        None => String::new(),
        Some(logo) => {
            let src = match &logo.src {
                LogoSrc::Served(name) => format!("{}logo/{name}", p.up),
                LogoSrc::Remote(url) => url.to_string(),
            };
            let width = logo
                .width
                .map(|w| format!(" width=\"{w}\""))
                .unwrap_or_default();
            format!(
                "<img class=\"logo\" src=\"{}\" alt=\"{}\"{width}>\n",
                escape_html(&src),
                escape_html(&logo.alt)
            )
        }
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n<style>{style}</style>\n</head>\n\
         <body>\n<main>\n{logo}<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        lang = escape_html(&look.lang),
        dir = look.dir,
        style = style(look),
    )
}

/// The words `key` as HTML, each `{{name}}` filled with its value (already HTML), isolated.
fn words(look: &Look, key: &str, values: &[(&str, &str)]) -> String {
    let mut out = escape_html(look.word(key));
    for (name, html) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), &format!("<bdi>{html}</bdi>"));
    }
    out
}

/// The words `key` as plain text (a title), each `{{name}}` filled with its value; isolated
/// by Unicode's marks in a right-to-left page.
fn text(look: &Look, key: &str, values: &[(&str, &str)]) -> String {
    let mut out = look.word(key).to_string();
    for (name, value) in values {
        let field = format!("{{{{{name}}}}}");
        // labels.toml isolates the fields of its right-to-left languages itself; a theme's
        // own words may not.
        let isolated = out.contains(&format!("\u{2068}{field}"));
        let value = if look.dir == "rtl" && !isolated {
            format!("\u{2068}{value}\u{2069}")
        } else {
            (*value).to_string()
        };
        out = out.replace(&field, &value);
    }
    out
}

/// A form with one button that POSTs to `action` (the page's own URL when `None`).
fn button(action: Option<&str>, label: &str, class: &str) -> String {
    let action = action
        .map(|a| format!(" action=\"{}\"", escape_html(a)))
        .unwrap_or_default();
    let class = if class.is_empty() {
        String::new()
    } else {
        format!(" class=\"{class}\"")
    };
    format!(
        "<form method=\"post\"{action}>\n<input type=\"hidden\" name=\"via\" value=\"page\">\n\
         <button type=\"submit\"{class}>{}</button>\n</form>",
        escape_html(label)
    )
}

/// `ana@example.org` as `a•••@example.org`.
pub fn masked(address: &Address) -> String {
    let first: String = address.user().chars().take(1).collect();
    format!("{first}\u{2022}\u{2022}\u{2022}@{}", address.domain())
}

/// GET on a link: the question, and the button that unsubscribes.
pub fn confirm(p: &Page, address: &Address) -> String {
    let who = escape_html(&masked(address));
    page(
        p,
        &text(
            p.look,
            "page_unsubscribe_title",
            &[("newsletter", p.newsletter)],
        ),
        &format!(
            "<p>{}</p>\n{}",
            words(p.look, "page_unsubscribe_text", &[("address", &who)]),
            button(None, p.look.word("unsubscribe"), "")
        ),
    )
}

/// After the page's button: done, and the way back, unless a bounce or complaint holds the
/// address (then what that means, and whom to write to).
pub fn unsubscribed(
    p: &Page,
    address: &Address,
    token: &str,
    held: Option<Kind>,
    contact: &Address,
) -> String {
    let who = escape_html(&masked(address));
    let newsletter = escape_html(p.newsletter);
    let done = words(
        p.look,
        "page_unsubscribed_text",
        &[("address", &who), ("newsletter", &newsletter)],
    );
    let after = match held {
        Some(kind) => held_text(p, &who, kind, contact),
        None => button(
            Some(&format!("{token}/resubscribe")),
            p.look.word("page_mistake_button"),
            "secondary",
        ),
    };
    page(
        p,
        &text(p.look, "page_unsubscribed_title", &[]),
        &format!("<p>{done}</p>\n{after}"),
    )
}

/// GET on the resubscribe link: the question, and its button.
pub fn offer_resubscribe(p: &Page, address: &Address) -> String {
    let who = escape_html(&masked(address));
    page(
        p,
        &text(
            p.look,
            "page_resubscribe_title",
            &[("newsletter", p.newsletter)],
        ),
        &format!(
            "<p>{}</p>\n{}",
            words(p.look, "page_resubscribe_text", &[("address", &who)]),
            button(None, p.look.word("page_resubscribe_button"), "")
        ),
    )
}

/// After resubscribing: done, and the way out again.
pub fn resubscribed(p: &Page, address: &Address, token: &str) -> String {
    let who = escape_html(&masked(address));
    let newsletter = escape_html(p.newsletter);
    page(
        p,
        &text(p.look, "page_resubscribed_title", &[]),
        &format!(
            "<p>{}</p>\n{}",
            words(
                p.look,
                "page_resubscribed_text",
                &[("address", &who), ("newsletter", &newsletter)]
            ),
            button(
                Some(&format!("../{token}")),
                p.look.word("unsubscribe"),
                "secondary"
            )
        ),
    )
}

/// The resubscribe page of an address a bounce or complaint holds: a click cannot lift
/// either, so the page says why nothing is sent there and whom to write to, and offers no
/// button.
pub fn held(p: &Page, address: &Address, kind: Kind, contact: &Address) -> String {
    let who = escape_html(&masked(address));
    page(
        p,
        &text(p.look, "page_held_title", &[]),
        &held_text(p, &who, kind, contact),
    )
}

/// Why nothing is sent to the address (`who`, HTML), and whom to write to.
fn held_text(p: &Page, who: &str, kind: Kind, contact: &Address) -> String {
    let why = match kind {
        Kind::Complaint => "page_held_complaint",
        _ => "page_held_bounce",
    };
    let contact = escape_html(contact.as_ref());
    let link = format!("<a href=\"mailto:{contact}\">{contact}</a>");
    format!(
        "<p>{}</p>\n<p>{}</p>",
        words(p.look, why, &[("address", who)]),
        words(p.look, "page_held_contact", &[("contact", &link)])
    )
}

/// A token that does not open: the same page whatever was wrong with it.
pub fn invalid(p: &Page) -> String {
    page(
        p,
        &text(p.look, "page_invalid_title", &[]),
        &format!(
            "<p>{}</p>\n<p>{}</p>",
            words(p.look, "page_invalid_text", &[]),
            words(p.look, "page_invalid_help", &[])
        ),
    )
}

/// Something failed on our side (the event could not be recorded, the request took too
/// long, too many requests): nothing was lost but the request.
pub fn try_again(p: &Page) -> String {
    page(
        p,
        &text(p.look, "page_try_again_title", &[]),
        &format!("<p>{}</p>", words(p.look, "page_try_again_text", &[])),
    )
}

/// The plain English page of a path nobody serves.
pub fn not_found() -> String {
    english("Page not found", "<p>There is nothing at this address.</p>")
}

/// A path under the site with nothing published at it: the way to the archive's index
/// (`index`, the site's path). In English, like the site's other answers of its own.
pub fn site_not_found(newsletter: &str, index: &str) -> String {
    english(
        "Page not found",
        &format!(
            "<p>There is nothing at this address. The page may have moved, or not be published \
             yet.</p>\n<p><a href=\"{}\">All issues of {}</a></p>",
            escape_html(index),
            escape_html(newsletter)
        ),
    )
}

/// The site could not read a file: `why`, in English.
pub fn site_try_again(why: &str) -> String {
    english(
        "Please try again",
        &format!("<p>{} Please try again in a minute.</p>", escape_html(why)),
    )
}

/// A page in the built-in look, in English.
fn english(title: &str, body: &str) -> String {
    let look = Look::english();
    let p = Page {
        look: &look,
        up: "",
        newsletter: "",
    };
    page(&p, title, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_in<'a>(look: &'a Look) -> Page<'a> {
        Page {
            look,
            up: "",
            newsletter: "Efus <news>",
        }
    }

    #[test]
    fn pages_have_one_h1_a_language_and_no_address_or_script() {
        let ana: Address = "ana.martin@example.org".parse().unwrap();
        let contact: Address = "contact@example.org".parse().unwrap();
        let look = Look::english();
        let p = page_in(&look);
        for html in [
            confirm(&p, &ana),
            unsubscribed(&p, &ana, "TOKEN", None, &contact),
            unsubscribed(&p, &ana, "TOKEN", Some(Kind::Bounce), &contact),
            resubscribed(&p, &ana, "TOKEN"),
            offer_resubscribe(&p, &ana),
            held(&p, &ana, Kind::Complaint, &contact),
            invalid(&p),
            try_again(&p),
            site_not_found("Efus <news>", "/newsletter/"),
        ] {
            assert_eq!(html.matches("<h1>").count(), 1, "{html}");
            assert!(html.contains("<html lang=\"en\" dir=\"ltr\">"));
            assert!(html.contains(":focus-visible"));
            assert!(!html.contains("<script") && !html.contains("ana.martin"));
            assert!(!html.contains("<news>"));
        }
        assert!(confirm(&p, &ana).contains("a\u{2022}\u{2022}\u{2022}@example.org"));
        assert!(
            unsubscribed(&p, &ana, "TOKEN", None, &contact)
                .contains("action=\"TOKEN/resubscribe\"")
        );
        // Held: no way back by a click, and whom to write to.
        let bounced = unsubscribed(&p, &ana, "TOKEN", Some(Kind::Bounce), &contact);
        assert!(!bounced.contains("resubscribe") && bounced.contains("mailto:contact@example.org"));
        let held = held(&p, &ana, Kind::Bounce, &contact);
        assert!(
            !held.contains("<form") && held.contains("refused"),
            "{held}"
        );
        assert!(
            site_not_found("Efus", "/newsletter/")
                .contains("<a href=\"/newsletter/\">All issues of Efus</a>")
        );
    }
}
