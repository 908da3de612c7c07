//! `bulletin render`: issue file → `<slug>.html` and `<slug>.txt`.

use std::path::{Path, PathBuf};

use crate::cli::{Error, say, warn};
use crate::diag::kilobytes;
use crate::issue;
use crate::layout::Layout;
use crate::merge::Recipient;
use crate::output::write_atomic;
use crate::render::{self, AssetBase, RenderOptions};

/// Render an issue to HTML email and plain text.
///
/// Writes OUT/<slug>.html and OUT/<slug>.txt, where <slug> is the issue file's name, and
/// prints their paths and sizes. Merge fields such as {{subscriber.first_name}} show sample
/// values; --subscriber sets your own.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bulletin render issues/2020-06.json\n  bulletin render issues/2020-06.json --out public --subscriber first_name=Ada"
)]
pub struct Args {
    /// The issue file (JSON).
    pub issue: PathBuf,
    /// Folder to write the outputs to.
    #[arg(long, short, value_name = "DIR", default_value = "out")]
    pub out: PathBuf,
    /// A layout folder to use instead of the issue's or the default one. It may hold only
    /// some of the layout's files; the others come from the default layout.
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    /// A merge-field value to show, e.g. first_name=Ada (repeatable; an empty value shows the
    /// field's fallback).
    #[arg(long = "subscriber", value_name = "FIELD=VALUE", value_parser = parse_field)]
    pub subscriber: Vec<(String, String)>,
    /// Also write the MJML generated from the layout, before compilation, as OUT/<slug>.mjml.
    #[arg(long)]
    pub mjml: bool,
}

fn parse_field(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_ascii_lowercase(), v.to_string())),
        _ => Err(format!(
            "expected FIELD=VALUE, e.g. first_name=Ada, not \"{s}\""
        )),
    }
}

pub fn run(args: Args) -> Result<(), Error> {
    let loaded = issue::load(&args.issue)?;
    let layout = Layout::for_issue(args.layout.as_deref(), &loaded)?;
    let assets = AssetBase {
        issue: relative_url(&args.out, &loaded.dir),
        layout: layout
            .dir()
            .map(|d| relative_url(&args.out, d))
            .unwrap_or_default(),
    };
    let rendered = match render::render(&loaded, &layout, &RenderOptions { assets }) {
        Ok(r) => r,
        // The generated document is what a layout editor needs to see: write it when asked.
        Err(render::RenderError::Mjml {
            mjml,
            line,
            column,
            message,
            excerpt,
            ..
        }) if args.mjml => {
            let mjml_path = args.out.join(format!("{}.mjml", loaded.slug));
            write_atomic(&mjml_path, mjml.as_bytes())?;
            let hint = format!("the generated MJML is in {}", mjml_path.display());
            let mjml = String::new();
            return Err(render::RenderError::Mjml {
                line,
                column,
                message,
                excerpt,
                hint,
                mjml,
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let email = rendered.fill(&sample_values(&args.subscriber));

    let html_path = args.out.join(format!("{}.html", loaded.slug));
    let text_path = args.out.join(format!("{}.txt", loaded.slug));
    write_atomic(&html_path, email.html.as_bytes())?;
    write_atomic(&text_path, email.text.as_bytes())?;
    let mut report = format!(
        "{}  {}\n{}  {}\n",
        html_path.display(),
        kilobytes(email.html.len()),
        text_path.display(),
        kilobytes(email.text.len())
    );
    if args.mjml {
        let mjml_path = args.out.join(format!("{}.mjml", loaded.slug));
        write_atomic(&mjml_path, rendered.mjml.as_bytes())?;
        report.push_str(&format!(
            "{}  {}\n",
            mjml_path.display(),
            kilobytes(rendered.mjml.len())
        ));
    }
    say(&report);
    if email.html.len() > crate::check::CLIP_BYTES {
        warn(&format!(
            "the HTML is {}, over Gmail's 102 KB limit: Gmail will clip it",
            kilobytes(email.html.len())
        ));
    }
    Ok(())
}

fn sample_values(overrides: &[(String, String)]) -> Recipient {
    let mut values = Recipient::sample();
    for (k, v) in overrides {
        if k == "unsubscribe_url" {
            values.unsubscribe_url = Some(v.clone());
        } else {
            values.fields.insert(k.clone(), v.clone());
        }
    }
    values
}

/// The folder `to` as a URL prefix relative to the folder `from` ("../issues/").
fn relative_url(from: &Path, to: &Path) -> String {
    let (Ok(from), Ok(to)) = (std::path::absolute(from), std::path::absolute(to)) else {
        return String::new();
    };
    let Some(rel) = pathdiff::diff_paths(normalize(&to), normalize(&from)) else {
        return String::new();
    };
    let mut url: String = rel
        .components()
        .map(|c| {
            let part = c.as_os_str().to_string_lossy();
            percent_encoding::utf8_percent_encode(&part, PATH_PART).to_string()
        })
        .collect::<Vec<_>>()
        .join("/");
    if !url.is_empty() {
        url.push('/');
    }
    url
}

/// What a folder name may keep as it is in a relative URL.
const PATH_PART: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Removes `.` and resolves `..` lexically, so that `issues/../layouts/efus` compares well.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
