//! Rebuilds when the default layout changes: it is compiled into the binary, and cargo does
//! not otherwise notice files added to or removed from that folder.
//!
//! Also reads the default layout's `labels.toml` once, here, into `$OUT_DIR/labels.rs`: a
//! sorted static list of (language tag, its sorted (key, word) pairs), which
//! `src/layout/mod.rs` includes. Parsing the whole 80 KB file at run time cost a render
//! about as much as all of mrml, for the two or three languages it reads.

use std::fmt::Write as _;
use std::path::Path;

const LABELS: &str = "layouts/default/labels.toml";

fn main() {
    println!("cargo:rerun-if-changed=layouts/default");
    println!("cargo:rerun-if-changed={LABELS}");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let source = std::fs::read_to_string(Path::new(&manifest).join(LABELS))
        .unwrap_or_else(|e| panic!("cannot read {LABELS}: {e}"));
    let code = labels_code(&source);
    std::fs::write(Path::new(&out_dir).join("labels.rs"), code)
        .unwrap_or_else(|e| panic!("cannot write labels.rs in OUT_DIR: {e}"));
}

/// The Rust text of `BUILTIN_LABELS` for the labels file `source`. Panics, naming the
/// place, when the file is not what the layout code reads: tables of strings, one per
/// language, no two tags differing only in case (a look-up ignores case, so one would hide
/// the other).
fn labels_code(source: &str) -> String {
    let table: toml::Table = source
        .parse()
        .unwrap_or_else(|e| panic!("{LABELS} is not valid TOML: {e}"));
    let mut out = String::from(
        "/// The default layout's `labels.toml`, read by build.rs: each language tag with its\n\
         /// words, both sorted as a `toml::Table` iterates.\n\
         pub(super) static BUILTIN_LABELS: &[(&str, &[(&str, &str)])] = &[\n",
    );
    let mut seen: Vec<String> = Vec::new();
    // toml::Table is a BTreeMap here (no preserve_order): the tags and keys come sorted.
    for (tag, words) in &table {
        let lower = tag.to_ascii_lowercase();
        assert!(
            !seen.contains(&lower),
            "{LABELS}: [{tag}] repeats another table's tag in a different case"
        );
        seen.push(lower);
        let words = words
            .as_table()
            .unwrap_or_else(|| panic!("{LABELS}: {tag} must be a table, [{tag}]"));
        writeln!(out, "    ({tag:?}, &[").expect("writing to a String");
        for (key, word) in words {
            let word = word
                .as_str()
                .unwrap_or_else(|| panic!("{LABELS}: [{tag}] {key} must be a string"));
            writeln!(out, "        ({key:?}, {word:?}),").expect("writing to a String");
        }
        out.push_str("    ]),\n");
    }
    out.push_str("];\n");
    out
}
