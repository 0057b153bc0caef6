//! Human-readable SX errors, rendered with `annotate-snippets`.
//!
//! The first line is always `file:line:col: message` (what tools grep for);
//! below it the offending source line with a caret under the span, and for
//! runtime errors the SX backtrace, innermost call first.
//!
//! Architecture invariant: pure formatting — no knowledge of the heap or
//! the machine; callers pass plain data.

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};
use sx_syntax::Span;

/// One line of a backtrace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    pub name: String,
    pub file: String,
    pub line: u32,
    pub col: u32,
}

/// Everything needed to render one error.
#[derive(Clone, Debug, Default)]
pub struct Report<'a> {
    pub message: &'a str,
    pub file: Option<&'a str>,
    pub span: Option<Span>,
    /// The text of `file`, when known, to show the offending line.
    pub source: Option<&'a str>,
    pub backtrace: &'a [TraceLine],
}

/// Frames shown at the start and end of a long backtrace.
const HEAD: usize = 12;
const TAIL: usize = 5;

/// Render a report as plain text (no colour codes).
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    match (r.file, r.span) {
        (Some(f), Some(sp)) if sp.line > 0 => out.push_str(&format!("{f}:{}:{}: {}\n", sp.line, sp.col, r.message)),
        (Some(f), _) => out.push_str(&format!("{f}: {}\n", r.message)),
        _ => out.push_str(&format!("{}\n", r.message)),
    }
    if let (Some(src), Some(sp), Some(file)) = (r.source, r.span, r.file) {
        if let Some(snippet) = snippet(src, sp, file) {
            out.push_str(&snippet);
            out.push('\n');
        }
    }
    if r.backtrace.len() > 1 || (r.backtrace.len() == 1 && r.backtrace[0].line > 0) {
        out.push_str("backtrace (most recent call first):\n");
        let n = r.backtrace.len();
        for (i, t) in r.backtrace.iter().enumerate() {
            if n > HEAD + TAIL && i == HEAD {
                out.push_str(&format!("  ... {} more frames ...\n", n - HEAD - TAIL));
            }
            if n > HEAD + TAIL && i >= HEAD && i < n - TAIL {
                continue;
            }
            out.push_str(&format!("  {} at {}:{}:{}\n", t.name, t.file, t.line, t.col));
        }
    }
    out
}

/// The source line(s) around `sp` with a caret under the span.
fn snippet(src: &str, sp: Span, file: &str) -> Option<String> {
    let start = sp.start as usize;
    if start > src.len() || !src.is_char_boundary(start) {
        return None;
    }
    // Show the first line of the span only: carets under a multi-line form
    // would cover the whole form.
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let end = (sp.end as usize).clamp(start, line_end);
    let end = if end == start { next_boundary(src, start).min(line_end.max(start)) } else { end };
    let end = if src.is_char_boundary(end) { end } else { start };
    let report = &[Level::NOTE.primary_title("raised here").element(
        Snippet::source(src).path(file).annotation(AnnotationKind::Primary.span(start..end.max(start))),
    )];
    Some(Renderer::plain().render(report).to_string())
}

fn next_boundary(src: &str, i: usize) -> usize {
    let mut j = i + 1;
    while j < src.len() && !src.is_char_boundary(j) {
        j += 1;
    }
    j.min(src.len())
}
