//! Colour contrast of the theme, by WCAG 2's formula: text must stand out from its background
//! by at least 4.5:1 for readers with low vision (and for anyone reading on a phone outside).

use std::path::Path;

use super::{Finding, Severity};
use crate::layout::Layout;

/// The minimum contrast for body text (WCAG 2.1 AA).
pub const MIN_RATIO: f64 = 4.5;

/// Pairs of theme colours that are read together: (text, background).
const PAIRS: [(&str, &str); 8] = [
    ("text", "surface"),
    ("heading", "surface"),
    ("muted", "surface"),
    ("muted", "background"),
    ("link", "surface"),
    ("button_text", "button"),
    ("tag_text", "tag_background"),
    ("text", "highlight"),
];

pub fn check(layout: &Layout, theme_file: &Path, out: &mut Vec<Finding>) {
    let Some(colors) = layout.theme().get("colors").and_then(|c| c.as_table()) else {
        return;
    };
    let get = |k: &str| colors.get(k).and_then(|v| v.as_str());
    for (fg, bg) in PAIRS {
        let (Some(fg_value), Some(bg_value)) = (get(fg), get(bg)) else {
            continue;
        };
        let (Some(f), Some(b)) = (parse_hex(fg_value), parse_hex(bg_value)) else {
            continue;
        };
        let ratio = ratio(f, b);
        if ratio < MIN_RATIO {
            out.push(Finding::about(
                Severity::Warning,
                theme_file,
                &format!("colors.{fg}"),
                format!(
                    "colors.{fg} ({fg_value}) on colors.{bg} ({bg_value}) has a contrast of {ratio:.1}:1; \
                     make it at least {MIN_RATIO}:1 so everyone can read it"
                ),
            ));
        }
    }
}

/// "#1d4f91" or "#fff" as red, green and blue.
pub fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let hex = s.trim().strip_prefix('#')?;
    let full: String = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_string(),
        _ => return None,
    };
    let byte = |i: usize| u8::from_str_radix(&full[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

fn luminance(rgb: [u8; 3]) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
}

/// The WCAG contrast ratio of two colours, from 1 (none) to 21 (black on white).
pub fn ratio(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_ratios() {
        assert!((ratio([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 0.01);
        assert!((ratio([0x77, 0x77, 0x77], [255, 255, 255]) - 4.48).abs() < 0.01);
        assert_eq!(parse_hex("#fff"), Some([255, 255, 255]));
        assert_eq!(parse_hex("1d4f91"), None);
    }

    #[test]
    fn the_default_theme_passes() {
        let layout = Layout::load(None).unwrap();
        let mut out = Vec::new();
        check(&layout, Path::new("theme.toml"), &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
