//! Small pieces every stage's errors share: a byte offset as line:column, and an I/O error
//! in plain words, an error message laid out as people read it. Only formatting lives here;
//! each stage keeps its own error type.

/// 1-based line and column (in characters) of a byte offset in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// An I/O error in plain words, without the "(os error 2)" noise.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "the file is not valid UTF-8 text".into(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// An error message as bulletin shows it (on the terminal, and over a preview): `error: `
/// before each problem, hint lines (indented) as they are.
pub fn error_lines(message: &str) -> String {
    let mut out = String::new();
    for line in message.lines() {
        if !line.starts_with("  ") {
            out.push_str("error: ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A size as people read it: "850 B", "54.2 KB".
pub fn kilobytes(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}
