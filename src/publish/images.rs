//! The images an issue's page shows that are files, and where their copies go beside the page.
//!
//! The web edition keeps every relative image as written ([`crate::edition::Images::Site`]),
//! so `images/a.png` on the page `2020-06/index.html` is read at `2020-06/images/a.png`: the
//! place a sent email reads it at too when its `images_url` is the page's address (what
//! `[archive]` gives an issue that has none). [`site_path`] is that rule, for `publish` to
//! copy and for `check` to look.

use std::path::PathBuf;

use super::IssueFailure;
use crate::edition::Edition;

/// An image file of the issue or of its layout, and where its copy goes, relative to the
/// page's folder (`images/a.png`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Copy {
    pub from: PathBuf,
    pub to: String,
}

/// Where the site keeps the image `src` (a path relative to the page, as written in the issue
/// or the layout), relative to the page's folder, '/'-separated: `src` resolved as a browser
/// resolves it from the page (`./a/../b.png` is `b.png`, `my%20photo.png` is
/// `my photo.png`). `None` when it is not a file below the page's folder (`../shared/a.png`,
/// `/a.png`, `//host/a.png`, a folder).
pub fn site_path(src: &str) -> Option<String> {
    let base = url::Url::parse("http://site.invalid/page/").ok()?;
    let resolved = base.join(src.trim()).ok()?;
    if resolved.host_str() != Some("site.invalid") {
        return None;
    }
    let rest = resolved.path().strip_prefix("/page/")?;
    let decoded = percent_encoding::percent_decode_str(rest)
        .decode_utf8()
        .ok()?
        .into_owned();
    safe_relative(&decoded).then_some(decoded)
}

/// A '/'-separated path that stays below its folder and names a file: no empty, `.` or `..`
/// part, no backslash, no colon (a Windows drive), not hidden.
pub(super) fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.starts_with('.')
                && !part.contains(['\\', ':', '\0'])
        })
}

/// The images of the page's HTML (the values of `src` and `background` attributes),
/// unescaped, in the order they appear, each once.
pub(super) fn sources(html: &str) -> Vec<String> {
    let mut found: Vec<(usize, String)> = Vec::new();
    for attr in ["src=\"", "background=\""] {
        for (at, _) in html.match_indices(attr) {
            let standalone = html[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
            let start = at + attr.len();
            let Some(len) = html[start..].find('"') else {
                continue;
            };
            let value = crate::check::html::unescape(&html[start..start + len]);
            let value = value.trim();
            if standalone && !value.is_empty() && !value.starts_with('#') {
                found.push((at, value.to_string()));
            }
        }
    }
    found.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, src) in found {
        if !out.contains(&src) {
            out.push(src);
        }
    }
    out
}

/// The relative images of the page's HTML: [`sources`] that are not URLs.
pub(super) fn relative_sources(html: &str) -> Vec<String> {
    sources(html)
        .into_iter()
        .filter(|s| crate::issue::is_relative_reference(s))
        .collect()
}

/// The copies the page needs: each relative image of `html` (the page's content), from the
/// layout folder when it is one of the layout's images, else from the issue's folder.
pub(super) fn copies(edition: &Edition, html: &str) -> Result<Vec<Copy>, IssueFailure> {
    let layout_images: Vec<String> = edition
        .layout
        .images()
        .into_iter()
        .map(|i| i.src.trim().to_string())
        .collect();
    let mut out: Vec<Copy> = Vec::new();
    for src in relative_sources(html) {
        let to = site_path(&src).ok_or_else(|| IssueFailure::ImageOutside {
            file: edition.issue.path.clone(),
            src: src.clone(),
        })?;
        let from = match edition.layout.dir() {
            Some(dir) if layout_images.contains(&src) => dir.join(&src),
            _ => edition.issue.dir.join(&src),
        };
        match out.iter().find(|c| c.to == to) {
            Some(c) if c.from != from => {
                return Err(IssueFailure::Clash {
                    file: edition.issue.path.clone(),
                    to,
                    first: c.from.clone(),
                    second: from,
                });
            }
            Some(_) => {}
            None => out.push(Copy { from, to }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_go_where_a_browser_reads_them_from_the_page() {
        assert_eq!(site_path("images/a.png").as_deref(), Some("images/a.png"));
        assert_eq!(site_path("./a/../b.png").as_deref(), Some("b.png"));
        assert_eq!(site_path("my%20photo.png").as_deref(), Some("my photo.png"));
        assert_eq!(site_path("my photo.png").as_deref(), Some("my photo.png"));
        assert_eq!(site_path("photo été.png").as_deref(), Some("photo été.png"));
        for outside in [
            "../shared/a.png",
            "/a.png",
            "//host/a.png",
            "images/",
            "",
            ".hidden.png",
            "a/%2e%2e/%2e%2e/b.png",
            "a%2F..%2F..%2Fb.png",
        ] {
            assert_eq!(site_path(outside), None, "{outside}");
        }
    }

    #[test]
    fn relative_sources_are_unescaped_in_order_each_once() {
        let html = r##"<img src="logo.png"><img data-src="x.png"><td background="bg.png">
<img src="https://example.org/a.png"><img src="images/a&amp;b.png"><img src="logo.png">
<img src="data:image/png;base64,AAAA"><img src="#top">"##;
        assert_eq!(
            relative_sources(html),
            ["logo.png", "bg.png", "images/a&b.png"]
        );
    }
}
