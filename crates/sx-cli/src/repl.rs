//! The interactive read-eval-print loop of `sx` (`sx repl`, or `sx` with no file).
//!
//! * On a terminal the line editor is rustyline: line editing, persistent history in
//!   `$SX_HISTORY` or `~/.sx_history` (failures to read or write it are ignored), tab completion
//!   of bound names (see [`complete_at`]) and of file names after `:load`, and highlighting of the
//!   bracket matching the one under the cursor.
//! * When stdin is not a terminal the REPL reads it line by line and prints no prompts at all,
//!   so stdout holds only values and program output (errors go to stderr). History is neither
//!   read nor written then.
//! * Input is read until its brackets balance (see [`input_complete`]), with the continuation
//!   prompt `... `. Ctrl-C clears the pending input, Ctrl-D (or end of input) leaves.
//! * Values print in their readable `inspect` form; an error is printed to stderr as the engine
//!   formats it ([`Engine::render_error`]: location, source line, backtrace) and the session
//!   goes on.
//! * Commands (only at the start of an input): `:help`, `:load FILE`, `:time EXPR`, `:jit`,
//!   `:quit`. Any other input starting with `:` is SX (a keyword evaluates to its name).

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter, MatchingBracketHighlighter};
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::borrow::Cow;
use std::cell::Cell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;
use sx::Engine;

/// The prompt for a new input.
pub const PROMPT: &str = "sx> ";
/// The prompt while an input waits for its closing brackets.
pub const CONTINUATION_PROMPT: &str = "... ";

/// The REPL commands, as completed and as listed by `:help`.
pub const COMMANDS: [(&str, &str); 5] = [
    (":help", "list these commands"),
    (":load FILE", "run FILE and print its last value"),
    (":time EXPR", "evaluate EXPR, print its value and the elapsed time"),
    (":jit", "show the JIT report of this build"),
    (":quit", "leave the REPL (Ctrl-D does too)"),
];

const HISTORY_SIZE: usize = 1000;

/// Runs the REPL on `eng` until `:quit` or end of input. `backend` names the execution
/// backend (shown by `:jit` when the build has no JIT).
pub fn run(eng: &mut Engine, backend: &str) -> ExitCode {
    let at_line_start = Rc::new(Cell::new(true));
    eng.set_output(Box::new(TrackingStdout { at_line_start: at_line_start.clone() }));
    let mut session = Session { eng, backend: backend.to_string(), at_line_start };
    if std::io::stdin().is_terminal() {
        // Ctrl-C while a program runs interrupts it (the line editor
        // handles Ctrl-C itself while reading).
        let flag = session.eng.interrupt_handle();
        let _ = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed));
        match TerminalInput::new(&session) {
            Ok(mut input) => session.run_loop(&mut input, true),
            Err(e) => {
                eprintln!("sx: cannot start the line editor: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        session.run_loop(&mut PipedInput, false);
    }
    ExitCode::SUCCESS
}

/// What reading one line gave.
enum ReadResult {
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D or end of input.
    Eof,
}

/// Where the lines of the REPL come from.
trait LineSource {
    /// Reads one line; `pending` is the incomplete input read so far (empty for a new input).
    fn read(&mut self, pending: &str) -> ReadResult;
    /// Records a complete input in the history.
    fn add_history(&mut self, entry: &str);
    /// The bound names changed (after an evaluation).
    fn names_changed(&mut self, names: Vec<String>);
}

/// Stdin when it is not a terminal: no prompts, no history, no completion.
struct PipedInput;

impl LineSource for PipedInput {
    fn read(&mut self, _pending: &str) -> ReadResult {
        let mut bytes = Vec::new();
        match std::io::stdin().lock().read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => ReadResult::Eof,
            Ok(_) => {
                // Invalid UTF-8 becomes U+FFFD rather than ending the session.
                let mut line = String::from_utf8_lossy(&bytes).into_owned();
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                ReadResult::Line(line)
            }
        }
    }
    fn add_history(&mut self, _entry: &str) {}
    fn names_changed(&mut self, _names: Vec<String>) {}
}

/// A terminal: rustyline with history and completion.
struct TerminalInput {
    rl: Editor<ReplHelper, DefaultHistory>,
    history: Option<PathBuf>,
}

impl TerminalInput {
    fn new(session: &Session<'_>) -> rustyline::Result<TerminalInput> {
        let config = Config::builder()
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .history_ignore_space(true)
            .max_history_size(HISTORY_SIZE)?
            .history_ignore_dups(true)?
            .build();
        let mut rl = Editor::with_config(config)?;
        rl.set_helper(Some(ReplHelper::new(session.eng.global_names())));
        let history = history_path();
        if let Some(p) = &history {
            // A missing or unreadable history file is not an error.
            let _ = rl.load_history(p);
        }
        Ok(TerminalInput { rl, history })
    }
}

impl LineSource for TerminalInput {
    fn read(&mut self, pending: &str) -> ReadResult {
        if let Some(h) = self.rl.helper_mut() {
            h.pending = pending.to_string();
        }
        let prompt = if pending.is_empty() { PROMPT } else { CONTINUATION_PROMPT };
        match self.rl.readline(prompt) {
            Ok(line) => ReadResult::Line(line),
            Err(ReadlineError::Interrupted) => ReadResult::Interrupted,
            Err(ReadlineError::WindowResized) => ReadResult::Line(String::new()),
            Err(_) => ReadResult::Eof,
        }
    }

    fn add_history(&mut self, entry: &str) {
        if self.rl.add_history_entry(entry).unwrap_or(false) {
            if let Some(p) = &self.history {
                // Failing to write the history is not an error either.
                let _ = self.rl.append_history(p);
            }
        }
    }

    fn names_changed(&mut self, names: Vec<String>) {
        if let Some(h) = self.rl.helper_mut() {
            h.names = names;
        }
    }
}

/// `$SX_HISTORY` if set and non-empty, else `~/.sx_history`, else no history.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SX_HISTORY").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| Path::new(&h).join(".sx_history"))
}

/// Stdout for the program's own output, remembering whether it ended a line (so a value is
/// never printed right after `(display "x")` on the same line).
struct TrackingStdout {
    at_line_start: Rc<Cell<bool>>,
}

impl Write for TrackingStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = std::io::stdout().write(buf)?;
        if n > 0 {
            self.at_line_start.set(buf[n - 1] == b'\n');
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

struct Session<'e> {
    eng: &'e mut Engine,
    backend: String,
    at_line_start: Rc<Cell<bool>>,
}

enum Flow {
    Continue,
    Quit,
}

impl Session<'_> {
    fn run_loop(&mut self, input: &mut dyn LineSource, interactive: bool) {
        let mut buf = String::new();
        loop {
            match input.read(&buf) {
                ReadResult::Line(line) => {
                    buf.push_str(&line);
                    buf.push('\n');
                    if !input_complete(&buf) {
                        continue;
                    }
                    let src = std::mem::take(&mut buf);
                    if src.trim().is_empty() {
                        continue;
                    }
                    input.add_history(src.trim_end());
                    let flow = self.handle(&src);
                    input.names_changed(self.eng.global_names());
                    if let Flow::Quit = flow {
                        return;
                    }
                }
                ReadResult::Interrupted => {
                    if buf.is_empty() && interactive {
                        eprintln!("(Ctrl-D or :quit to leave)");
                    }
                    buf.clear();
                }
                ReadResult::Eof => {
                    // Piped input that ends inside a form: evaluate it, so the reader reports
                    // what is missing. On a terminal, Ctrl-D just leaves.
                    if !interactive && !buf.trim().is_empty() {
                        self.handle(&buf);
                    }
                    return;
                }
            }
        }
    }

    /// Handles one complete input: a command or SX source.
    fn handle(&mut self, src: &str) -> Flow {
        match parse_command(src) {
            Some((Command::Help, _)) => {
                self.print_line(&help_text());
                Flow::Continue
            }
            Some((Command::Quit, _)) => Flow::Quit,
            Some((Command::Load, arg)) => {
                let file = unquote(arg.trim());
                if file.is_empty() {
                    self.print_error("usage: :load FILE");
                } else {
                    let r = self.eng.run_file(Path::new(file));
                    self.print_result(r);
                }
                Flow::Continue
            }
            Some((Command::Time, arg)) => {
                if arg.trim().is_empty() {
                    self.print_error("usage: :time EXPR");
                } else {
                    let start = Instant::now();
                    let r = self.eng.eval_str(arg, "<repl>");
                    let elapsed = start.elapsed();
                    let ok = r.is_ok();
                    self.print_result(r);
                    if ok {
                        self.print_line(&format!(";; {:.3} ms", elapsed.as_secs_f64() * 1000.0));
                    }
                }
                Flow::Continue
            }
            Some((Command::Jit, _)) => {
                self.jit();
                Flow::Continue
            }
            None => {
                let r = self.eng.eval_str(src, "<repl>");
                self.print_result(r);
                Flow::Continue
            }
        }
    }

    fn jit(&mut self) {
        if !self.eng.is_defined("jit-report") {
            self.print_line(&format!("JIT not available in this build (backend: {})", self.backend));
            return;
        }
        match self.eng.call("jit-report", &[]) {
            Ok(v) => {
                // A report string prints as text; any other value readably.
                let s = self.eng.inspect(v);
                let s = if s.starts_with('"') { self.eng.display(v) } else { s };
                self.print_line(s.trim_end_matches('\n'));
            }
            Err(e) => {
                let msg = self.eng.render_error(&e);
                self.print_error(msg.trim_end_matches('\n'));
            }
        }
    }

    fn print_result(&mut self, r: Result<sx::Value, sx::SxError>) {
        match r {
            Ok(v) => {
                let s = self.eng.inspect(v);
                self.print_line(&s);
            }
            Err(e) => {
                let msg = self.eng.render_error(&e);
                self.print_error(msg.trim_end_matches('\n'));
            }
        }
    }

    /// Ends a line the program left open, so what follows starts on its own line.
    fn fresh_line(&self) {
        let mut out = std::io::stdout().lock();
        if !self.at_line_start.get() {
            let _ = out.write_all(b"\n");
            self.at_line_start.set(true);
        }
        let _ = out.flush();
    }

    fn print_line(&self, s: &str) {
        self.fresh_line();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    }

    fn print_error(&self, s: &str) {
        self.fresh_line();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{s}");
        let _ = err.flush();
    }
}

fn help_text() -> String {
    let mut s = String::from("Commands:\n");
    for (c, what) in COMMANDS {
        s.push_str(&format!("  {c:<12} {what}\n"));
    }
    s.push_str("Anything else is SX; its value is printed readably. An input spanning several lines\n");
    s.push_str("is read until its brackets balance. Tab completes bound names; Ctrl-C clears the input.");
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Help,
    Load,
    Time,
    Jit,
    Quit,
}

/// Recognizes a REPL command at the start of `src`: the command and the rest of the input.
fn parse_command(src: &str) -> Option<(Command, &str)> {
    let s = src.trim_start();
    let rest = s.strip_prefix(':')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let cmd = match &rest[..end] {
        "help" | "h" | "?" => Command::Help,
        "load" | "l" => Command::Load,
        "time" => Command::Time,
        "jit" => Command::Jit,
        "quit" | "q" | "exit" => Command::Quit,
        _ => return None,
    };
    Some((cmd, &rest[end..]))
}

/// `"a b"` → `a b`; anything else unchanged.
fn unquote(s: &str) -> &str {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// True when `src` (the lines read so far, each ending in a newline) is a complete input:
/// a command line other than `:time` (complete at once), or source whose brackets balance
/// (see [`balanced`]).
pub fn input_complete(src: &str) -> bool {
    match parse_command(src) {
        Some((Command::Time, _)) | None => balanced(src),
        Some(_) => true,
    }
}

/// Where a scan of SX source ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanState {
    /// Outside strings and comments.
    Code,
    /// Inside a `"..."` string.
    Str,
    /// Inside a `#|...|` raw string.
    RawStr,
    /// Inside a `;` comment.
    Comment,
}

/// The result of [`scan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scan {
    /// Open brackets minus closed ones.
    pub depth: i64,
    /// True if a closing bracket ever had no opening one.
    pub underflow: bool,
    pub state: ScanState,
}

/// True for the characters that end a token (besides whitespace), as the reader defines them.
fn is_delimiter(c: char) -> bool {
    matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';' | '\'' | '`' | ',')
}

fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Scans SX source the way the reader tokenizes it, counting brackets outside strings
/// (`"..."` with escapes, `#|raw|`), character literals (`#\(`) and `;` comments.
pub fn scan(src: &str) -> Scan {
    let mut depth: i64 = 0;
    let mut underflow = false;
    let mut state = ScanState::Code;
    // True while inside a token, where `#` is an ordinary character.
    let mut in_token = false;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            ScanState::Comment => {
                if c == '\n' {
                    state = ScanState::Code;
                }
            }
            ScanState::Str => match c {
                '\\' => {
                    chars.next();
                }
                '"' => state = ScanState::Code,
                _ => {}
            },
            ScanState::RawStr => {
                if c == '|' {
                    state = ScanState::Code;
                }
            }
            ScanState::Code => {
                if is_space(c) || is_delimiter(c) {
                    in_token = false;
                }
                match c {
                    '"' => state = ScanState::Str,
                    ';' => state = ScanState::Comment,
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => {
                        depth -= 1;
                        if depth < 0 {
                            underflow = true;
                        }
                    }
                    '#' if !in_token => match chars.peek() {
                        Some('|') => {
                            chars.next();
                            state = ScanState::RawStr;
                        }
                        Some('\\') => {
                            // `#\` takes the next character whatever it is; a name may follow.
                            chars.next();
                            chars.next();
                            in_token = true;
                        }
                        // `#;` (datum comment) is followed by a datum: its brackets count.
                        Some(';') => {
                            chars.next();
                        }
                        // `#'x`: the quote is a delimiter, read as usual.
                        Some('\'') => {}
                        _ => in_token = true,
                    },
                    c if !is_space(c) && !is_delimiter(c) => in_token = true,
                    _ => {}
                }
            }
        }
    }
    Scan { depth, underflow, state }
}

/// True when every bracket opened outside strings, raw strings, character literals and comments
/// is closed, and no string is left open. An extra closing bracket also counts as complete (the
/// reader then reports it).
pub fn balanced(src: &str) -> bool {
    let s = scan(src);
    s.underflow || (s.depth <= 0 && matches!(s.state, ScanState::Code | ScanState::Comment))
}

/// Completion of the identifier that ends at byte `pos` of `line`: the byte offset where it
/// starts and the candidates (sorted), drawn from `names`. `pending` is the earlier lines of
/// the same input (empty for the first line): it decides whether `pos` is inside a string or a
/// comment (no completion there) and whether `line` may be a command (`:he` → `:help`).
pub fn complete_at(pending: &str, line: &str, pos: usize, names: &[String]) -> (usize, Vec<String>) {
    let none = (pos, Vec::new());
    let Some(before) = line.get(..pos) else { return none };
    if pending.is_empty() {
        let trimmed = before.trim_start();
        if trimmed.starts_with(':') && !trimmed.contains(char::is_whitespace) {
            let start = pos - trimmed.len();
            let mut v: Vec<String> = COMMANDS
                .iter()
                .filter_map(|(c, _)| c.split(' ').next())
                .filter(|c| c.starts_with(trimmed))
                .map(str::to_string)
                .collect();
            v.sort();
            return (start, v);
        }
    }
    let mut context = String::with_capacity(pending.len() + before.len());
    context.push_str(pending);
    context.push_str(before);
    if scan(&context).state != ScanState::Code {
        return none;
    }
    let mut start = pos;
    for (i, c) in before.char_indices().rev() {
        if is_space(c) || is_delimiter(c) {
            break;
        }
        start = i;
    }
    let mut word = &before[start..];
    // `,@name`: the `@` belongs to the splice sugar.
    if word.starts_with('@') && before[..start].ends_with(',') {
        start += 1;
        word = &before[start..];
    }
    if word.is_empty() || word.starts_with('#') || word.starts_with(':') {
        return none;
    }
    let mut v: Vec<String> = names.iter().filter(|n| n.starts_with(word)).cloned().collect();
    v.sort();
    v.dedup();
    (start, v)
}

/// The rustyline helper: completion and bracket highlighting.
struct ReplHelper {
    names: Vec<String>,
    pending: String,
    files: FilenameCompleter,
    brackets: MatchingBracketHighlighter,
}

impl ReplHelper {
    fn new(names: Vec<String>) -> ReplHelper {
        ReplHelper {
            names,
            pending: String::new(),
            files: FilenameCompleter::new(),
            brackets: MatchingBracketHighlighter::new(),
        }
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        if self.pending.is_empty() {
            if let Some((Command::Load, _)) = parse_command(line) {
                let trimmed = line.trim_start();
                let cmd_end = line.len() - trimmed.len() + trimmed.find(char::is_whitespace).unwrap_or(trimmed.len());
                if pos > cmd_end {
                    return self.files.complete_path(line, pos);
                }
            }
        }
        let (start, names) = complete_at(&self.pending, line, pos, &self.names);
        Ok((start, names.into_iter().map(|n| Pair { display: n.clone(), replacement: n }).collect()))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight<'l>(&self, line: &'l str, pos: usize) -> Cow<'l, str> {
        self.brackets.highlight(line, pos)
    }

    fn highlight_char(&self, line: &str, pos: usize, kind: CmdKind) -> bool {
        self.brackets.highlight_char(line, pos, kind)
    }
}

impl Validator for ReplHelper {}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn balanced_counts_brackets_of_all_kinds() {
        assert!(balanced("(+ 1 2)\n"));
        assert!(!balanced("(+ 1\n"));
        assert!(!balanced("(let [x 1\n"));
        assert!(!balanced("{:a (list 1\n"));
        assert!(balanced("{:a [1 (2)]}\n"));
        assert!(balanced("42\n"));
        assert!(balanced("\n"));
    }

    #[test]
    fn balanced_ignores_brackets_in_strings_chars_and_comments() {
        assert!(balanced("(str \"(\" \")\")\n"));
        assert!(balanced("(str \"\\\"(\")\n"), "escaped quote inside a string");
        assert!(balanced("(list #\\( #\\[ #\\{)\n"));
        assert!(balanced("(list #\\) 1)\n"));
        assert!(balanced("(str #|(|)\n"));
        assert!(balanced("(str #|\\|)\n"), "no escapes in raw strings");
        assert!(balanced("(+ 1 ; (\n 2)\n"));
        assert!(!balanced("(+ 1 ; )\n"));
        assert!(balanced("; just a comment ("));
    }

    #[test]
    fn balanced_waits_for_open_strings() {
        assert!(!balanced("\"abc\n"));
        assert!(!balanced("(str \"a)\n"));
        assert!(balanced("(str \"a\nb\")\n"));
        assert!(!balanced("#|raw (\n"));
        assert!(balanced("#|raw (\n|\n"));
    }

    #[test]
    fn hash_inside_a_token_is_ordinary() {
        // `a#|` is one symbol: no raw string starts there.
        assert!(balanced("(list a#| 1)\n"));
        // `#;` drops the next datum, whose brackets still count.
        assert!(!balanced("(list #;(1 2\n"));
        assert!(balanced("(list #;(1 2) 3)\n"));
        assert!(balanced("(list #'car)\n"));
    }

    #[test]
    fn extra_closing_brackets_complete_the_input() {
        assert!(balanced(")\n"));
        assert!(balanced(") (\n"));
    }

    #[test]
    fn scan_reports_the_state_at_the_end() {
        assert_eq!(scan("(a \"b").state, ScanState::Str);
        assert_eq!(scan("(a #|b").state, ScanState::RawStr);
        assert_eq!(scan("(a ; b").state, ScanState::Comment);
        assert_eq!(scan("(a (b").depth, 2);
    }

    #[test]
    fn commands_are_complete_at_once_except_time() {
        assert!(input_complete(":load \"my (file.sx\n"));
        assert!(input_complete(":help\n"));
        assert!(!input_complete(":time (fib\n"));
        assert!(input_complete(":time (fib\n 10)\n"));
        assert!(!input_complete("(:load\n"));
    }

    #[test]
    fn parse_command_recognizes_commands_and_leaves_keywords() {
        assert_eq!(parse_command(":help\n"), Some((Command::Help, "\n")));
        assert_eq!(parse_command("  :load a.sx\n"), Some((Command::Load, " a.sx\n")));
        assert_eq!(parse_command(":time (+ 1 2)").map(|c| c.0), Some(Command::Time));
        assert_eq!(parse_command(":q").map(|c| c.0), Some(Command::Quit));
        assert_eq!(parse_command(":jit").map(|c| c.0), Some(Command::Jit));
        assert_eq!(parse_command(":foo"), None);
        assert_eq!(parse_command("(+ 1 2)"), None);
    }

    #[test]
    fn completes_the_identifier_before_the_cursor() {
        let n = names(&["define", "define-record-type", "defmacro", "map", "max", "string->list"]);
        assert_eq!(complete_at("", "(def", 4, &n), (1, names(&["define", "define-record-type", "defmacro"])));
        assert_eq!(complete_at("", "(map (fn (x) x) (ma", 19, &n), (17, names(&["map", "max"])));
        assert_eq!(complete_at("", "(string-", 8, &n), (1, names(&["string->list"])));
        // The cursor in the middle of a word: the part before it is completed.
        assert_eq!(complete_at("", "(ma 1)", 3, &n), (1, names(&["map", "max"])));
        assert_eq!(complete_at("", "'(ma", 4, &n), (2, names(&["map", "max"])));
        assert_eq!(complete_at("", "`(,@ma", 6, &n), (4, names(&["map", "max"])));
        assert_eq!(complete_at("", "[ma", 3, &n), (1, names(&["map", "max"])));
    }

    #[test]
    fn no_completion_in_strings_comments_keywords_or_empty_words() {
        let n = names(&["map", "max"]);
        assert!(complete_at("", "(str \"ma", 8, &n).1.is_empty());
        assert!(complete_at("(str \"\n", "ma", 2, &n).1.is_empty(), "string opened on an earlier line");
        assert!(complete_at("", "(+ 1 ; ma", 9, &n).1.is_empty());
        assert!(complete_at("", "#|ma", 4, &n).1.is_empty());
        assert!(complete_at("", "(get d :ma", 10, &n).1.is_empty());
        assert!(complete_at("", "(f ", 3, &n).1.is_empty());
        assert!(complete_at("", "(zz", 3, &n).1.is_empty());
        assert!(complete_at("", "(ma", 99, &n).1.is_empty(), "position past the end");
    }

    #[test]
    fn completes_commands_at_the_start_of_an_input() {
        let n = names(&["map"]);
        assert_eq!(complete_at("", ":he", 3, &n), (0, names(&[":help"])));
        assert_eq!(complete_at("", "  :", 3, &n).0, 2);
        assert_eq!(complete_at("", ":", 1, &n).1.len(), COMMANDS.len());
        assert!(complete_at("(list\n", ":he", 3, &n).1.is_empty(), "not inside a pending form");
        assert_eq!(complete_at("", ":time (ma", 9, &n), (7, names(&["map"])));
    }

    #[test]
    fn helper_completes_engine_names() {
        let eng = Engine::new();
        let names = eng.global_names();
        let h = ReplHelper::new(names);
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, cands) = h.complete("(defin", 6, &ctx).unwrap_or((0, Vec::new()));
        assert_eq!(start, 1);
        assert!(cands.iter().any(|p| p.replacement == "define"), "special forms are offered");
        let (_, cands) = h.complete("(string-up", 10, &ctx).unwrap_or((0, Vec::new()));
        assert!(cands.iter().all(|p| p.replacement.starts_with("string-up")));
    }

    #[test]
    fn unquote_strips_one_pair_of_quotes() {
        assert_eq!(unquote("\"a b.sx\""), "a b.sx");
        assert_eq!(unquote("a.sx"), "a.sx");
        assert_eq!(unquote("\""), "\"");
    }
}
