//! What the site says about all its issues, built from the manifest alone: the list of issues
//! (`index.html`, then `page/2/index.html`… past [`PER_PAGE`] issues), the Atom feed
//! (`feed.xml`, RFC 4287) and the sitemap (`sitemap.xml`). The feed and the sitemap need the
//! site's address (`[archive] base_url`): without it they are not written.

use std::path::Path;

use atom_syndication as atom;
use chrono::{DateTime, Utc};
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde_json::{Value, json};

use super::manifest::{self, Entry, Manifest};
use super::page::{WebTemplates, labels};
use super::{PublishError, SiteFile, write_if_changed};
use crate::config::Archive;
use crate::issue::Language;
use crate::layout::{self, Layout};

/// Issues on one page of the list.
pub const PER_PAGE: usize = 50;
/// How many of the newest issues the feed carries, each whole.
pub const FEED_ENTRIES: usize = 10;

/// The list's page `number` (from 1), relative to the site folder.
fn page_file(number: usize) -> String {
    if number == 1 {
        "index.html".into()
    } else {
        format!("page/{number}/index.html")
    }
}

/// The address of the list's page `number` relative to the site's root (`""`, `page/2/`).
fn page_dir(number: usize) -> String {
    if number == 1 {
        String::new()
    } else {
        format!("page/{number}/")
    }
}

/// A slug as one segment of a URL path.
fn segment(slug: &str) -> String {
    percent_encoding::utf8_percent_encode(slug, SEGMENT).to_string()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Writes the list of issues, and with an address the feed and the sitemap; each only when
/// it differs from what the folder has. Pages of the list past its end (after `--prune`) are
/// taken away.
pub(super) fn write(
    site: &Path,
    manifest: &Manifest,
    layout: &Layout,
    archive: Option<&Archive>,
) -> Result<Vec<SiteFile>, PublishError> {
    let entries = manifest.newest_first();
    let language = entries
        .first()
        .and_then(|(_, e)| Language::try_from(e.lang.clone()).ok())
        .unwrap_or_default();
    let words = labels(layout, &language);
    let theme = serde_json::to_value(layout.theme()).unwrap_or(Value::Null);
    let templates = WebTemplates::new(layout).map_err(PublishError::Template)?;
    let base = archive.map(|a| a.base_url.as_str());
    let feed_url = base.map(|b| format!("{b}feed.xml"));

    let chunks: Vec<&[(&String, &Entry)]> = if entries.is_empty() {
        vec![&[]]
    } else {
        entries.chunks(PER_PAGE).collect()
    };
    let count = chunks.len();
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let number = i + 1;
        // From page 1 the site's root is here; from page/N/ it is two folders up.
        let root = if number == 1 { "" } else { "../../" };
        let href_of = |n: usize| match (number, n) {
            (1, n) => page_file(n),
            (_, 1) => format!("{root}index.html"),
            (_, n) => format!("../{n}/index.html"),
        };
        let issues: Vec<Value> = chunk
            .iter()
            .map(|(slug, e)| {
                json!({
                    "title": e.title,
                    "preheader": e.preheader,
                    "date": e.date_text,
                    "date_iso": e.date.to_string(),
                    "lang": e.lang,
                    "dir": e.dir,
                    "href": format!("{root}{}/index.html", segment(slug)),
                })
            })
            .collect();
        let data = json!({
            "lang": language.as_str(),
            "dir": language.direction(),
            "theme": theme,
            "labels": words,
            "page": { "number": number, "count": count },
            "issues": issues,
            "newer": (number > 1).then(|| href_of(number - 1)),
            "older": (number < count).then(|| href_of(number + 1)),
            "links": { "feed": feed_url.as_ref().map(|_| format!("{root}feed.xml")) },
            "url": base.map(|b| format!("{b}{}", page_dir(number))),
            "feed_url": feed_url,
        });
        let html = templates
            .render(layout::ARCHIVE, &data)
            .map_err(PublishError::Template)?;
        let path = site.join(page_file(number));
        let written = write_if_changed(&path, html.as_bytes())?;
        out.push(SiteFile { path, written });
    }
    remove_pages_after(site, count)?;

    if let Some(archive) = archive {
        let name = layout
            .theme()
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("Newsletter");
        let newsletter = words
            .get("newsletter")
            .and_then(|v| v.as_str())
            .unwrap_or("Newsletter");
        let feed = feed(
            site,
            manifest,
            archive,
            &format!("{name} · {newsletter}"),
            name,
        );
        let path = site.join("feed.xml");
        let written = write_if_changed(&path, &feed)?;
        out.push(SiteFile { path, written });
        let map = sitemap(manifest, archive, count).map_err(|e| PublishError::Xml {
            path: site.join("sitemap.xml"),
            reason: e.to_string(),
        })?;
        let path = site.join("sitemap.xml");
        let written = write_if_changed(&path, &map)?;
        out.push(SiteFile { path, written });
    }
    Ok(out)
}

/// Takes away `page/N/index.html` (and its folder, once empty) for every N past `count`.
fn remove_pages_after(site: &Path, count: usize) -> Result<(), PublishError> {
    let mut number = count.max(1) + 1;
    loop {
        let file = site.join(page_file(number));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(PublishError::Remove {
                    path: file,
                    reason: crate::diag::io_reason(&e),
                });
            }
        }
        if let Some(dir) = file.parent() {
            let _ = std::fs::remove_dir(dir); // only when empty: files of the user's stay
        }
        number += 1;
    }
}

/// A time as Atom writes it.
fn fixed(t: DateTime<Utc>) -> atom::FixedDateTime {
    t.fixed_offset()
}

/// The Atom feed of the newest [`FEED_ENTRIES`] issues: each with its page's address as its
/// id (an issue's address never changes), its title, when its page last changed, its date
/// as published, its preheader as summary and its whole web content (images and links
/// relative to its page, which `xml:base` names).
fn feed(site: &Path, manifest: &Manifest, archive: &Archive, title: &str, author: &str) -> Vec<u8> {
    let base = archive.base_url.as_str();
    let all = manifest.newest_first();
    let updated = all
        .iter()
        .map(|(_, e)| e.updated)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let entries = all
        .iter()
        .take(FEED_ENTRIES)
        .map(|(slug, e)| {
            let url = archive.issue_url(slug);
            let content = std::fs::read_to_string(manifest::content_path(site, slug)).ok();
            atom::Entry {
                title: atom::Text::plain(e.title.clone()),
                id: url.clone(),
                updated: fixed(e.updated),
                published: e.date.and_hms_opt(0, 0, 0).map(|d| fixed(d.and_utc())),
                links: vec![atom::Link {
                    href: url.clone(),
                    rel: "alternate".into(),
                    mime_type: Some("text/html".into()),
                    hreflang: Some(e.lang.clone()),
                    ..Default::default()
                }],
                summary: e.preheader.clone().map(atom::Text::plain),
                content: content.map(|html| atom::Content {
                    base: Some(url),
                    lang: Some(e.lang.clone()),
                    value: Some(html),
                    content_type: Some("html".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    let feed = atom::Feed {
        title: atom::Text::plain(title),
        id: base.to_string(),
        updated: fixed(updated),
        authors: vec![atom::Person {
            name: author.to_string(),
            uri: Some(base.to_string()),
            ..Default::default()
        }],
        links: vec![
            atom::Link {
                href: format!("{base}feed.xml"),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            atom::Link {
                href: base.to_string(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ],
        lang: all.first().map(|(_, e)| e.lang.clone()),
        entries,
        ..Default::default()
    };
    let config = atom::WriteConfig {
        write_document_declaration: true,
        indent_size: Some(2),
    };
    let mut out = feed
        .write_with_config(Vec::new(), config)
        .unwrap_or_default();
    out.push(b'\n');
    out
}

/// The sitemap (sitemaps.org 0.9): the list's pages and every issue's page, with when each
/// last changed.
fn sitemap(manifest: &Manifest, archive: &Archive, pages: usize) -> std::io::Result<Vec<u8>> {
    let base = archive.base_url.as_str();
    let all = manifest.newest_first();
    let newest = all.iter().map(|(_, e)| e.updated).max();
    let mut urls: Vec<(String, Option<DateTime<Utc>>)> = (1..=pages)
        .map(|n| (format!("{base}{}", page_dir(n)), newest))
        .collect();
    urls.extend(
        all.iter()
            .map(|(slug, e)| (archive.issue_url(slug), Some(e.updated))),
    );
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("urlset")
        .with_attribute(("xmlns", "http://www.sitemaps.org/schemas/sitemap/0.9"))
        .write_inner_content(|w| {
            for (loc, lastmod) in &urls {
                w.create_element("url").write_inner_content(|w| {
                    w.create_element("loc")
                        .write_text_content(BytesText::new(loc))?;
                    if let Some(t) = lastmod {
                        let t = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                        w.create_element("lastmod")
                            .write_text_content(BytesText::new(&t))?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_pages_are_index_then_page_n() {
        assert_eq!(page_file(1), "index.html");
        assert_eq!(page_file(3), "page/3/index.html");
        assert_eq!(page_dir(1), "");
        assert_eq!(page_dir(2), "page/2/");
        assert_eq!(segment("été 2020"), "%C3%A9t%C3%A9%202020");
    }

    #[test]
    fn the_sitemap_lists_every_page_with_absolute_addresses() {
        let mut m = Manifest::default();
        m.issues.insert(
            "2020-06".into(),
            Entry {
                source: "../issues/2020-06.json".into(),
                hash: "00".into(),
                files: vec![],
                title: "June".into(),
                preheader: None,
                date: "2020-06-03".parse().unwrap(),
                date_text: "3 June 2020".into(),
                lang: "en".into(),
                dir: "ltr".into(),
                layout: None,
                published: DateTime::UNIX_EPOCH,
                updated: DateTime::UNIX_EPOCH,
            },
        );
        let archive = Archive::new("https://example.org/news".parse().unwrap());
        let xml = String::from_utf8(sitemap(&m, &archive, 2).unwrap()).unwrap();
        assert!(
            xml.contains("<loc>https://example.org/news/</loc>"),
            "{xml}"
        );
        assert!(
            xml.contains("<loc>https://example.org/news/page/2/</loc>"),
            "{xml}"
        );
        assert!(
            xml.contains("<loc>https://example.org/news/2020-06/</loc>"),
            "{xml}"
        );
        assert!(
            xml.contains("<lastmod>1970-01-01T00:00:00Z</lastmod>"),
            "{xml}"
        );
    }
}
