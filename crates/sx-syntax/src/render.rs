//! Human-readable rendering of a [`Diagnostic`] against its source text.

use std::fmt::Write as _;

use crate::Diagnostic;

/// Lines longer than this many code points are shown as a window around the column.
const MAX_SHOWN: usize = 120;
/// Code points shown on each side of the column in a window.
const CONTEXT: usize = 50;

impl Diagnostic {
    /// Renders the diagnostic with the offending source line and carets, rustc-style:
    ///
    /// ```text
    /// error: unclosed '(' opened at 1:1
    ///  --> file.sx:1:1
    ///   |
    /// 1 | (a b
    ///   | ^
    /// ```
    ///
    /// `origin` names the source (a file name); pass `""` to omit it. `src` must be the text
    /// the diagnostic was produced from; if the span does not fit it, only the header is shown.
    /// Tabs and control characters in the shown line are replaced by one space / `�` each, so
    /// the carets line up (columns count code points); a line longer than 120 code points is
    /// cut to a window around the column, with `...` marking the cuts.
    #[must_use]
    pub fn render(&self, origin: &str, src: &str) -> String {
        let span = self.span;
        let mut out = format!("error: {}\n", self.message);
        let location = if origin.is_empty() {
            format!("{}:{}", span.line, span.col)
        } else {
            format!("{origin}:{}:{}", span.line, span.col)
        };
        let line_index = usize::try_from(span.line.saturating_sub(1)).unwrap_or(usize::MAX);
        let Some(line) = src.split('\n').nth(line_index) else {
            let _ = writeln!(out, " --> {location}");
            return out;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        let shown: String = line
            .chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() => '\u{fffd}',
                c => c,
            })
            .collect();
        let width = shown.chars().count();
        let mut col0 = usize::try_from(span.col.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(width);
        // Underline the span's part on this line, at least one caret.
        let span_chars = src
            .get(span.start as usize..span.end as usize)
            .map_or(1, |s| s.split('\n').next().unwrap_or("").chars().count());
        let mut carets = span_chars.clamp(1, (width - col0).max(1));
        // Show at most a window of the line around the column, marking cuts with "...".
        let shown = if width > MAX_SHOWN {
            let from = col0.saturating_sub(CONTEXT);
            let to = (col0 + CONTEXT).min(width);
            let mut w = String::new();
            if from > 0 {
                w.push_str("...");
            }
            w.extend(shown.chars().skip(from).take(to - from));
            if to < width {
                w.push_str("...");
            }
            carets = carets.min(to.saturating_sub(col0).max(1));
            col0 = col0 - from + if from > 0 { 3 } else { 0 };
            w
        } else {
            shown
        };
        let gutter = span.line.to_string();
        let pad = " ".repeat(gutter.len());
        let _ = writeln!(out, "{pad}--> {location}");
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{gutter} | {shown}");
        let _ = writeln!(out, "{pad} | {}{}", " ".repeat(col0), "^".repeat(carets));
        out
    }
}
