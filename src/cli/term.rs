//! Talking with the person at the terminal: the yes/no question before a send, and progress
//! bars on stderr. Both stay quiet when stdin or stderr is not a terminal (scripts, CI).

use std::io::{BufRead, IsTerminal, Write};

use super::Error;

/// Asks `question` on stderr and reads the answer: true only for "yes". Without a terminal
/// there is nobody to ask: a usage error that says how to go on without asking.
pub fn confirm(question: &str) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "add --yes to send without being asked (no terminal to ask on)".into(),
        ));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{question} Type yes to send: ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(Error::Terminal)?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// A progress bar of `len` steps drawn with indicatif's `template`, when stderr is a
/// terminal; a hidden one otherwise.
pub fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
