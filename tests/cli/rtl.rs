//! The default layout in right-to-left languages, measured in a real headless Chromium at a
//! desktop width (600 px, the email's width) and a phone width (375 px): headings, paragraphs
//! and buttons start on the right, two-column rows start on the right, the events' accent
//! bar is on the right. The English issue of the same shape is measured the same way and
//! found left to right, so that the measurements are known to tell the two apart.
//!
//! `BULLETIN_LAYOUT_SCREENSHOTS=DIR` keeps a screenshot of the Arabic issue at each width
//! (`arabic-600.png`, `arabic-375.png`): how `docs/arabic-*.png` are made.

use fantoccini::Client;
use serde_json::{Value, json};

use crate::browser::{ChromeDriver, eval, set_width};
use crate::common::{Workspace, repo};

/// Where every measured element of the page starts and ends, as JSON:
/// `text`: for each heading (h1–h3), paragraph and list item of the content (not the centred
/// footer), "right" when each of its lines ends at the right edge of its box and one at least
/// stops well short of the left one (it starts on the right), "left" the other way round,
/// "full" when every line fills the box (it says nothing), "right?" or "left?" when the
/// lines end on one side but none is short enough to tell; with the box and the lines. `buttons`: the same for each
/// button's box. `columns`: for each row of two news items, "first-right" or "first-left".
/// `bars`: for each event, the side of its 4 px accent bar and whether the text is on the
/// other side of it.
const MEASURE: &str = r#"
const TOLERANCE = 2, WELL_AWAY = 20;
function contentBox(el) {
  const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
  return {
    left: r.left + parseFloat(cs.paddingLeft) + parseFloat(cs.borderLeftWidth),
    right: r.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth),
  };
}
function lines(el) {
  const range = document.createRange();
  range.selectNodeContents(el);
  const out = [];
  for (const r of range.getClientRects()) {
    if (r.width < 1) continue;
    const middle = (r.top + r.bottom) / 2;
    const line = out.find(l => Math.abs(l.middle - middle) < 6);
    if (line) { line.left = Math.min(line.left, r.left); line.right = Math.max(line.right, r.right); }
    else out.push({ middle, left: r.left, right: r.right });
  }
  return out;
}
function side(lineBoxes, box) {
  if (lineBoxes.length === 0) return 'empty';
  const atRight = lineBoxes.every(l => Math.abs(l.right - box.right) <= TOLERANCE);
  const atLeft = lineBoxes.every(l => Math.abs(l.left - box.left) <= TOLERANCE);
  const shortOfLeft = lineBoxes.some(l => l.left - box.left > WELL_AWAY);
  const shortOfRight = lineBoxes.some(l => box.right - l.right > WELL_AWAY);
  if (atRight && shortOfLeft) return 'right';
  if (atLeft && shortOfRight) return 'left';
  if (atRight && atLeft) return 'full';
  if (atRight) return 'right?';
  if (atLeft) return 'left?';
  return 'neither';
}
const text = [], buttons = [], columns = [], bars = [];
for (const el of document.querySelectorAll('h1, h2, h3, p, li')) {
  const td = el.closest('td[align]');
  if (!td || td.getAttribute('align') === 'center' || !el.textContent.trim()) continue;
  const box = contentBox(el), found = lines(el);
  text.push({ what: el.tagName + ' ' + el.textContent.trim().slice(0, 30), side: side(found, box),
              box: [box.left, box.right].map(Math.round), lines: found.map(l => [l.left, l.right].map(Math.round)) });
}
for (const a of document.querySelectorAll('td[bgcolor] > a')) {
  const button = a.closest('table');
  const td = button.parentElement.closest('td[align]');
  const r = button.getBoundingClientRect();
  buttons.push({ what: a.textContent.trim(), side: side([{ left: r.left, right: r.right }], contentBox(td)) });
}
for (const row of document.querySelectorAll('td')) {
  const cols = [...row.querySelectorAll(':scope > div[class*="mj-column-per-50"]')];
  if (cols.length !== 2) continue;
  const [a, b] = cols.map(c => c.getBoundingClientRect());
  columns.push(a.top !== b.top ? 'stacked' : a.left > b.left ? 'first-right' : 'first-left');
}
for (const h of document.querySelectorAll('h3')) {
  let t = h.parentElement;
  while (t && parseFloat(getComputedStyle(t).borderLeftWidth) < 4 && parseFloat(getComputedStyle(t).borderRightWidth) < 4) t = t.parentElement;
  if (!t || t === document.body) continue;
  const cs = getComputedStyle(t), r = t.getBoundingClientRect(), words = lines(h);
  if (parseFloat(cs.borderRightWidth) >= 4) {
    bars.push({ side: 'right', clear: words.every(l => l.right <= r.right - 4) });
  } else {
    bars.push({ side: 'left', clear: words.every(l => l.left >= r.left + 4) });
  }
}
return { text, buttons, columns, bars, width: window.innerWidth };
"#;

/// Renders the fixture `tests/fixtures/i18n/<name>.json` in `ws`; returns the HTML's URL.
fn render(ws: &Workspace, name: &str) -> String {
    let fixtures = repo().join("tests/fixtures/i18n");
    let read = |rel: &str| std::fs::read_to_string(fixtures.join(rel)).unwrap();
    ws.write(&format!("{name}.json"), &read(&format!("{name}.json")));
    // The Arabic issue names its organisation in Arabic, in a layout folder of its own.
    let theme = format!("{name}-layout/theme.toml");
    if fixtures.join(&theme).is_file() {
        ws.write(&theme, &read(&theme));
    }
    ws.run(&["render", &format!("{name}.json")]).ok();
    format!(
        "file://{}",
        ws.path().join(format!("out/{name}.html")).display()
    )
}

/// The sides found for every measured element, with the elements listed when they differ.
fn sides(found: &Value, key: &str) -> Vec<String> {
    found[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["side"].as_str().unwrap().to_string())
        .collect()
}

/// Whether everything measured starts on `start` ("right" or "left"): what differs, if not.
fn check_start(found: &Value, start: &str) -> Result<(), String> {
    let fail = |what: &str, key: &str| Err(format!("{what}: {:#}", found[key]));
    // Text that fills its lines says little; everything else starts on `start`, and enough
    // of it does to tell.
    let text = sides(found, "text");
    let unsure = format!("{start}?");
    if !text
        .iter()
        .all(|s| s == start || *s == unsure || s == "full")
    {
        return fail(&format!("text not on the {start}"), "text");
    }
    if text.iter().filter(|s| *s == start).count() < 10 {
        return fail("too little text measured", "text");
    }
    for tag in ["H1 ", "H2 ", "H3 ", "P ", "LI "] {
        let seen = found["text"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["what"].as_str().unwrap().starts_with(tag) && e["side"] == start);
        if !seen {
            return fail(&format!("no {tag}on the {start}"), "text");
        }
    }
    let buttons = sides(found, "buttons");
    if buttons.len() < 3 || !buttons.iter().all(|s| s == start) {
        return fail(&format!("buttons not on the {start}"), "buttons");
    }
    // The events' accent bars are on the side lines start from, the text inside them.
    let bars = found["bars"].as_array().unwrap();
    if bars.len() != 2
        || bars
            .iter()
            .any(|b| b != &json!({ "side": start, "clear": true }))
    {
        return fail(&format!("accent bars not on the {start}"), "bars");
    }
    Ok(())
}

/// Asserts that everything measured starts on `start`.
fn starts_on(found: &Value, start: &str, what: &str) {
    if let Err(e) = check_start(found, start) {
        panic!("{what} at {} px: {e}", found["width"]);
    }
}

/// Measures `url` at 600 and 375 px; returns what was found at each width.
async fn measure(c: &Client, url: &str, screenshots: Option<&str>) -> (Value, Value) {
    c.goto(url).await.unwrap();
    let mut found = Vec::new();
    for width in [600, 375] {
        set_width(c, width, 900).await;
        found.push(eval(c, MEASURE).await);
        if let Some(dir) = screenshots {
            // The whole email, without a scrollbar.
            let height = eval(c, "return document.documentElement.scrollHeight")
                .await
                .as_u64()
                .unwrap() as u32;
            set_width(c, width, height + 200).await;
            set_width(c, width, height + 200).await;
            let png = c.screenshot().await.unwrap();
            let path = std::path::Path::new(dir).join(format!("arabic-{width}.png"));
            std::fs::write(path, png).unwrap();
        }
    }
    let phone = found.pop().unwrap();
    (found.pop().unwrap(), phone)
}

#[test]
fn right_to_left_issues_are_laid_out_from_the_right_in_chromium() {
    let ws = Workspace::empty();
    let arabic = render(&ws, "ar");
    let hebrew = render(&ws, "he");
    let english = render(&ws, "en");
    let screenshots = std::env::var("BULLETIN_LAYOUT_SCREENSHOTS").ok();
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let c = driver.connect().await;
        for (what, url) in [("Arabic", &arabic), ("Hebrew", &hebrew)] {
            let shots = screenshots.as_deref().filter(|_| what == "Arabic");
            let (desktop, phone) = measure(&c, url, shots).await;
            for found in [&desktop, &phone] {
                starts_on(found, "right", what);
            }
            // Two news items side by side, the first on the right; stacked on a phone.
            assert_eq!(desktop["columns"], json!(["first-right"]), "{what}");
            assert_eq!(phone["columns"], json!(["stacked"]), "{what}");
        }

        // The same measurements tell an English issue apart: it starts on the left.
        let (desktop, phone) = measure(&c, &english, None).await;
        for found in [&desktop, &phone] {
            starts_on(found, "left", "English");
            assert!(
                check_start(found, "right").is_err(),
                "the right-to-left check passes an English issue"
            );
        }
        assert_eq!(desktop["columns"], json!(["first-left"]));
        c.close().await.unwrap();
    });
}
