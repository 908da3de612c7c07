//! Rebuilds when the default layout changes: it is compiled into the binary, and cargo does
//! not otherwise notice files added to or removed from that folder.
//!
//! Also reads the default layout's `labels.toml` once, here, into `$OUT_DIR/labels.rs`: its
//! text, and sorted tables of where each language tag and its sorted (key, word) pairs are
//! in it, which `src/layout/mod.rs` includes. Parsing the whole 80 KB file at run time cost
//! a render about as much as all of mrml, for the two or three languages it reads.
//!
//! And parses the default layout's Handlebars templates once, here, with the Handlebars
//! bulletin runs (the vendored one) and as `render` registers them, into
//! `$OUT_DIR/parsed_templates.rs`: each template's source beside its parsed form
//! (postcard, read back in about 0.6 of the instructions MessagePack took, itself 0.75
//! of JSON's), which
//! `src/render/prebuilt.rs` includes. Parsing them cost every run of bulletin more
//! than a third of a whole render. The footers are parsed a second time as `render`
//! registers them, their unsubscribe link marked as a merge field.

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
    let layout = Path::new(&manifest).join("layouts/default");
    let code = parsed_templates_code(&layout, Path::new(&out_dir));
    std::fs::write(Path::new(&out_dir).join("parsed_templates.rs"), code)
        .unwrap_or_else(|e| panic!("cannot write parsed_templates.rs in OUT_DIR: {e}"));
    if release_with_own_lld() {
        order_hot_functions(Path::new(&manifest));
        pack_relative_relocations();
    }
}

/// True for a release build linked by Rust's own lld (the default for x86_64 Linux since
/// Rust 1.90; `rust-version` is later): not when a linker is chosen through `RUSTFLAGS` or
/// Cargo's environment, whose options this script cannot know.
fn release_with_own_lld() -> bool {
    const LINKER_VAR: &str = "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER";
    println!("cargo:rerun-if-env-changed={LINKER_VAR}");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    var("TARGET") == "x86_64-unknown-linux-gnu"
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("link")
        && std::env::var_os(LINKER_VAR).is_none()
        && var("PROFILE") == "release"
}

/// The functions a render runs (`benches/hot-functions.txt`, listed by
/// `benches/hot-functions.sh`), laid out together at the start of the release binary's code
/// by the linker: fewer pages of code for a run to fault in (38 fewer page faults a render,
/// 4.5% less time). A name the list has and the binary does not is skipped, without a
/// warning; the list going stale costs speed only.
fn order_hot_functions(manifest: &Path) {
    const LIST: &str = "benches/hot-functions.txt";
    println!("cargo:rerun-if-changed={LIST}");
    let list = manifest.join(LIST);
    println!(
        "cargo:rustc-link-arg-bin=bulletin=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    println!("cargo:rustc-link-arg-bin=bulletin=-Wl,--no-warn-symbol-ordering");
}

/// The addresses the loader writes into the binary at every start (about 21,900 of them:
/// tables of pointers in ICU4X's data, SQLite, the time zones' names, panic locations) packed
/// as a bitmap (`DT_RELR`, glibc 2.36 and later) rather than 24 bytes each: 526 KB less to
/// read at each start and a binary 0.5 MB smaller, 3.7% less time for a whole `bulletin
/// render`. Every program of the package gets it, `bare_mrml` too, so that benches compare
/// like with like.
fn pack_relative_relocations() {
    println!("cargo:rustc-link-arg=-Wl,-z,pack-relative-relocs");
}

/// The Rust text of `PARSED`: for each `.hbs` file under `layout`, its source and its
/// parsed form in postcard (written to a file of `out_dir`), both included by the code.
/// Parsed as `render` registers a template (`set_prevent_indent(true)`, not as a partial); a
/// template that does not parse is left out, for the run to report as it would. A template
/// with the unsubscribe link is there twice: as written, and as `render` marks it.
fn parsed_templates_code(layout: &Path, out_dir: &Path) -> String {
    let mut files = Vec::new();
    hbs_files(layout, &mut files);
    files.sort();
    let dir = out_dir.join("parsed_templates");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    let mut out = String::from(
        "/// The default layout's templates, parsed by build.rs: (source, parsed template in \
         postcard).\n\
         pub(super) static PARSED: &[(&str, &[u8])] = &[\n",
    );
    let mut n = 0;
    for file in &files {
        let source = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let Some(parsed) = parsed_bytes(&source) else {
            continue;
        };
        let name = |n: usize, what: &str| dir.join(format!("{n}.{what}"));
        std::fs::write(name(n, "msgpack"), parsed).expect("writing in OUT_DIR");
        writeln!(
            out,
            "    (include_str!({:?}), include_bytes!({:?})),",
            file.display(),
            name(n, "msgpack").display()
        )
        .expect("writing to a String");
        n += 1;
        // The footer as `render` registers it: its unsubscribe link marked as a merge field,
        // with the marker that is the same for every issue (`merge::UNSUBSCRIBE_MARKER`).
        let marked = mark_unsubscribe(&source);
        if marked == source {
            continue;
        }
        let Some(parsed) = parsed_bytes(&marked) else {
            continue;
        };
        std::fs::write(name(n, "hbs"), marked).expect("writing in OUT_DIR");
        std::fs::write(name(n, "msgpack"), parsed).expect("writing in OUT_DIR");
        writeln!(
            out,
            "    (include_str!({:?}), include_bytes!({:?})),",
            name(n, "hbs").display(),
            name(n, "msgpack").display()
        )
        .expect("writing to a String");
        n += 1;
    }
    out.push_str("];\n");
    out
}

/// The merge field of the unsubscribe link, and its marker in every issue: the value of
/// `merge::UNSUBSCRIBE_MARKER`, which a test of `render::prebuilt` holds to this.
const UNSUBSCRIBE_FIELD: &str = "{{unsubscribe_url}}";
const UNSUBSCRIBE_MARKER: &str = "xQbltn0Qx";

/// `source` with its unsubscribe link marked as `merge::FieldTable::mark_template` marks it
/// in a table where it comes first; passing over Handlebars comments as it does
/// (`{{!-- … --}}`, `{{! … }}`), which mention fields without using them.
fn mark_unsubscribe(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    loop {
        let field = rest.find(UNSUBSCRIBE_FIELD);
        let comment = rest.find("{{!").filter(|c| field.is_some_and(|f| *c < f));
        match (comment, field) {
            (Some(c), _) => {
                let body = &rest[c + "{{!".len()..];
                let len = match body.strip_prefix("--").and_then(|long| long.find("--}}")) {
                    Some(at) => "{{!--".len() + at + "--}}".len(),
                    None => body
                        .find("}}")
                        .map_or(rest.len() - c, |at| "{{!".len() + at + 2),
                };
                out.push_str(&rest[..c + len]);
                rest = &rest[c + len..];
            }
            (None, Some(f)) => {
                out.push_str(&rest[..f]);
                out.push_str(UNSUBSCRIBE_MARKER);
                rest = &rest[f + UNSUBSCRIBE_FIELD.len()..];
            }
            (None, None) => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// `source` parsed as `render` registers a template, in postcard (fields by position, lengths
/// and numbers as varints: reading it back is a walk along a slice); `None` if it does not
/// parse.
fn parsed_bytes(source: &str) -> Option<Vec<u8>> {
    let mut registry = handlebars::Handlebars::new();
    registry.set_prevent_indent(true);
    registry.register_template_string("t", source).ok()?;
    let parsed = registry.get_template("t").expect("just registered");
    Some(postcard::to_allocvec(parsed).expect("a template serializes"))
}

/// Every `.hbs` file under `dir`, at any depth.
fn hbs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {dir:?}: {e}"));
    for entry in entries {
        let path = entry.expect("reading the layout folder").path();
        if path.is_dir() {
            hbs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "hbs") {
            out.push(path);
        }
    }
}

/// The Rust text of the built-in labels for the labels file `source`: `TEXT`, every tag,
/// key and word one after another, and `LANGUAGES` and `WORDS`, where each is a (start,
/// end) pair of byte offsets into `TEXT`. Numbers rather than string references: the loader
/// fixes up every reference in a table at each start of the binary, page by page, and this
/// one would fill ten pages. Panics, naming the place, when the file is not what the layout
/// code reads: tables of strings, one per language, no two tags differing only in case (a
/// look-up ignores case, so one would hide the other).
fn labels_code(source: &str) -> String {
    let table: toml::Table = source
        .parse()
        .unwrap_or_else(|e| panic!("{LABELS} is not valid TOML: {e}"));
    let mut text = String::new();
    let mut place = |s: &str| -> (usize, usize) {
        let start = text.len();
        text.push_str(s);
        (start, text.len())
    };
    let mut languages = String::new();
    let mut words_code = String::new();
    let mut word_count = 0;
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
        let (tag_start, tag_end) = place(tag);
        writeln!(
            languages,
            "    ({tag_start}, {tag_end}, {word_count}, {}),",
            words.len()
        )
        .expect("writing to a String");
        for (key, word) in words {
            let word = word
                .as_str()
                .unwrap_or_else(|| panic!("{LABELS}: [{tag}] {key} must be a string"));
            let (key_start, key_end) = place(key);
            let (word_start, word_end) = place(word);
            writeln!(
                words_code,
                "    ({key_start}, {key_end}, {word_start}, {word_end}),"
            )
            .expect("writing to a String");
            word_count += 1;
        }
    }
    format!(
        "/// The default layout's `labels.toml`, read by build.rs: every tag, key and word, one\n\
         /// after another.\n\
         const TEXT: &str = {text:?};\n\
         /// Each language: its tag (start and end in `TEXT`), then its first pair in `WORDS` and\n\
         /// how many; tags and keys sorted as a `toml::Table` iterates them.\n\
         static LANGUAGES: [(u32, u32, u32, u32); {}] = [\n{languages}];\n\
         /// Each (key, word) pair, as start and end in `TEXT`.\n\
         static WORDS: [(u32, u32, u32, u32); {word_count}] = [\n{words_code}];\n",
        table.len()
    )
}
