//! `bulletin render`: issue file → `<slug>.html` and `<slug>.txt` in the workspace's `out/`
//! (or `--out`), images pointing at their folders from the output folder. Glue only: the
//! edition is [`crate::edition`]'s.

use std::path::PathBuf;

use crate::cli::{Error, say, warn};
use crate::diag::kilobytes;
use crate::edition::{self, EditionError, Images};
use crate::issue;
use crate::merge::Recipient;
use crate::output::write_regenerable;
use crate::render::RenderError;

/// The help of every command's `--layout` (render, check, preview, send): they all choose the
/// layout the same way.
pub(crate) const LAYOUT_HELP: &str = "A layout folder to use instead of the issue's or the default one. It may hold only \
     some of the layout's files; the others come from the default layout.";

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
    /// Folder to write the outputs to (default: out/ in the workspace, found upward from the
    /// current folder; out/ here outside any workspace).
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    // The same layout choice as check, preview and send.
    #[arg(long, value_name = "DIR", help = LAYOUT_HELP)]
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
    let here = super::init::here()?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => here.folder("out"),
    };
    let prepared = edition::prepare(&edition::Options {
        issue: args.issue.clone(),
        layout: args.layout.clone(),
        images: Images::FromFolder(out.clone()),
        archive: here.archive()?,
    });
    let edition = match prepared {
        Ok(e) => e,
        Err(EditionError::Render(RenderError::Mjml {
            mjml,
            line,
            column,
            message,
            excerpt,
            ..
        })) => {
            // The generated document is what a layout editor needs to see: written when asked.
            let hint = if args.mjml {
                let mjml_path = out.join(format!("{}.mjml", issue::slug_of(&args.issue)));
                write_regenerable(&mjml_path, mjml.as_bytes())?;
                format!(
                    "the generated MJML is in {}",
                    here.shown(&mjml_path).display()
                )
            } else {
                "add --mjml to write the generated MJML to OUT/<slug>.mjml".to_string()
            };
            return Err(RenderError::Mjml {
                line,
                column,
                message,
                excerpt,
                hint: Some(hint),
                mjml: String::new(),
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let (loaded, rendered) = (&edition.issue, &edition.rendered);
    let email = rendered.fill(&sample_values(&args.subscriber));

    let html_path = out.join(format!("{}.html", loaded.slug));
    let text_path = out.join(format!("{}.txt", loaded.slug));
    write_regenerable(&html_path, email.html.as_bytes())?;
    write_regenerable(&text_path, email.text.as_bytes())?;
    let mut report = format!(
        "{}  {}\n{}  {}\n",
        here.shown(&html_path).display(),
        kilobytes(email.html.len()),
        here.shown(&text_path).display(),
        kilobytes(email.text.len())
    );
    if args.mjml {
        let mjml_path = out.join(format!("{}.mjml", loaded.slug));
        write_regenerable(&mjml_path, rendered.mjml.as_bytes())?;
        report.push_str(&format!(
            "{}  {}\n",
            here.shown(&mjml_path).display(),
            kilobytes(rendered.mjml.len())
        ));
    }
    say(&report);
    for w in &rendered.warnings {
        warn(&w.to_string());
    }
    // `check` calls these errors; the render goes out all the same, to be looked at.
    let markup = crate::check::markup::markdown_links(loaded)
        .into_iter()
        .chain(crate::check::markup::merge_fields(
            loaded,
            &edition.layout,
            &[],
        ));
    for p in markup {
        warn(&p.to_string());
    }
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
