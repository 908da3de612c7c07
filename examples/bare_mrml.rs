//! The peer `benches/compare-mjml.sh` measures `bulletin render` against: a bare mrml
//! program that reads an MJML file, compiles it (parse, then render with mrml's default
//! options) and writes the HTML. It uses bulletin's own mrml dependency, so the crate and its
//! version are the ones bulletin compiles with, and does nothing else: what `bulletin render`
//! costs beyond it is bulletin's.
//!
//!   cargo run --release --example bare_mrml -- IN.mjml OUT.html

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: bare_mrml IN.mjml OUT.html");
        return ExitCode::from(2);
    };
    match compile(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bare_mrml: {message}");
            ExitCode::FAILURE
        }
    }
}

fn compile(input: &str, output: &str) -> Result<(), String> {
    let mjml = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let parsed = mrml::parse(&mjml).map_err(|e| format!("{input}: {e}"))?;
    let html = parsed
        .element
        .render(&mrml::prelude::render::RenderOptions::default())
        .map_err(|e| format!("{input}: {e}"))?;
    std::fs::write(output, html).map_err(|e| format!("{output}: {e}"))
}
