//! The pages readers see: one question, one button, plain HTML. They work without
//! JavaScript (a `<form method="post">`), have one `<h1>`, a language, visible focus and
//! text well above WCAG AA contrast. English only for now.
//!
//! Forms post to relative URLs (the link's own, `{token}/resubscribe`, `../{token}`), so the
//! pages work under whatever prefix the reverse proxy puts in front. The address is shown
//! masked (`a•••@example.org`): enough for a reader with two addresses to know which one,
//! not enough for whoever the link is forwarded to.

use lettre::Address;

use crate::merge::escape_html;

const STYLE: &str = "body{margin:0;background:#fff;color:#1a1a1a;font:1.125rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
main{max-width:36rem;margin:0 auto;padding:3rem 1.25rem}\
h1{font-size:1.6rem;line-height:1.25;margin:0 0 1rem}\
button{font:inherit;font-weight:600;color:#fff;background:#0b4f9e;border:2px solid #0b4f9e;border-radius:.4rem;padding:.6rem 1.2rem;cursor:pointer}\
button.secondary{color:#0b4f9e;background:#fff}\
button:hover{background:#083b76;color:#fff}\
:focus-visible{outline:3px solid #1a1a1a;outline-offset:3px}\
p.small{font-size:1rem;color:#4a4a4a}\
a{color:#0b4f9e}";

/// A whole page: `title` is also its one `<h1>`.
fn page(title: &str, body: &str) -> String {
    let title = escape_html(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )
}

/// A form with one button that POSTs to `action` (the page's own URL when `None`).
fn button(action: Option<&str>, label: &str, class: &str) -> String {
    let action = action
        .map(|a| format!(" action=\"{}\"", escape_html(a)))
        .unwrap_or_default();
    format!(
        "<form method=\"post\"{action}>\n<input type=\"hidden\" name=\"via\" value=\"page\">\n\
         <button type=\"submit\"{class}>{}</button>\n</form>",
        escape_html(label),
        class = if class.is_empty() {
            String::new()
        } else {
            format!(" class=\"{class}\"")
        }
    )
}

/// `ana@example.org` as `a•••@example.org`.
pub fn masked(address: &Address) -> String {
    let first: String = address.user().chars().take(1).collect();
    format!("{first}\u{2022}\u{2022}\u{2022}@{}", address.domain())
}

/// GET on a link: the question, and the button that unsubscribes.
pub fn confirm(newsletter: &str, address: &Address) -> String {
    page(
        &format!("Unsubscribe from {newsletter}?"),
        &format!(
            "<p>{} will get no more issues.</p>\n{}",
            escape_html(&masked(address)),
            button(None, "Unsubscribe", "")
        ),
    )
}

/// After the page's button: done, and the way back.
pub fn unsubscribed(newsletter: &str, address: &Address, token: &str) -> String {
    page(
        "You are unsubscribed",
        &format!(
            "<p>{} will get no more issues of {}.</p>\n\
             <p class=\"small\">Clicked by mistake? You can undo it:</p>\n{}",
            escape_html(&masked(address)),
            escape_html(newsletter),
            button(
                Some(&format!("{token}/resubscribe")),
                "I clicked by mistake: subscribe me again",
                "secondary"
            )
        ),
    )
}

/// GET on the resubscribe link: the question, and its button.
pub fn offer_resubscribe(newsletter: &str, address: &Address) -> String {
    page(
        &format!("Subscribe again to {newsletter}?"),
        &format!(
            "<p>{} will get the next issues again.</p>\n{}",
            escape_html(&masked(address)),
            button(None, "Subscribe me again", "")
        ),
    )
}

/// After resubscribing: done, and the way out again.
pub fn resubscribed(newsletter: &str, address: &Address, token: &str) -> String {
    page(
        "You are subscribed again",
        &format!(
            "<p>{} will get the next issues of {}.</p>\n{}",
            escape_html(&masked(address)),
            escape_html(newsletter),
            button(Some(&format!("../{token}")), "Unsubscribe", "secondary")
        ),
    )
}

/// A token that does not open: the same page whatever was wrong with it.
pub fn invalid() -> String {
    page(
        "This link is not valid",
        "<p>The link may have been cut short or changed when it was copied.</p>\n\
         <p>Use the unsubscribe link at the end of the newsletter itself, or reply to the \
         newsletter and ask to be removed.</p>",
    )
}

pub fn not_found() -> String {
    page("Page not found", "<p>There is nothing at this address.</p>")
}

/// A path under the site with nothing published at it: the way to the archive's index
/// (`index`, the site's path).
pub fn site_not_found(newsletter: &str, index: &str) -> String {
    page(
        "Page not found",
        &format!(
            "<p>There is nothing at this address. The page may have moved, or not be published \
             yet.</p>\n<p><a href=\"{}\">All issues of {}</a></p>",
            escape_html(index),
            escape_html(newsletter)
        ),
    )
}

/// Something failed on our side; nothing was lost but the request.
pub fn try_again(why: &str) -> String {
    page(
        "Please try again",
        &format!("<p>{} Please try again in a minute.</p>", escape_html(why)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_have_one_h1_a_language_and_no_address_or_script() {
        let ana: Address = "ana.martin@example.org".parse().unwrap();
        for html in [
            confirm("Efus <news>", &ana),
            unsubscribed("Efus", &ana, "TOKEN"),
            resubscribed("Efus", &ana, "TOKEN"),
            offer_resubscribe("Efus", &ana),
            invalid(),
            site_not_found("Efus <news>", "/newsletter/"),
        ] {
            assert_eq!(html.matches("<h1>").count(), 1, "{html}");
            assert!(html.contains("<html lang=\"en\">"));
            assert!(html.contains(":focus-visible"));
            assert!(!html.contains("<script") && !html.contains("ana.martin"));
            assert!(!html.contains("<news>"));
        }
        assert!(confirm("Efus", &ana).contains("a\u{2022}\u{2022}\u{2022}@example.org"));
        assert!(unsubscribed("Efus", &ana, "TOKEN").contains("action=\"TOKEN/resubscribe\""));
        assert!(
            site_not_found("Efus", "/newsletter/")
                .contains("<a href=\"/newsletter/\">All issues of Efus</a>")
        );
    }
}
