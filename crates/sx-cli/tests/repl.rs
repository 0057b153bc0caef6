//! The `sx repl` command end to end: scripted through a pipe (no prompts on stdout), and
//! driven through a pseudo-terminal (line editing, completion, Ctrl-C, history).

use std::io::Write;
use std::process::{Command, Stdio};

/// A fresh directory under the temp dir, removed when dropped.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("sx-repl-test-").tempdir().expect("temp dir")
}

/// Runs `sx repl` with `stdin` piped in; returns (stdout, stderr, exit code).
fn repl(stdin: &str) -> (String, String, i32) {
    let dir = scratch();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sx"))
        .arg("repl")
        .env("SX_HISTORY", dir.path().join("piped-history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sx");
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait sx");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn piped_input_prints_only_values_without_prompts() {
    let (out, err, code) = repl("(+ 1 2)\n\"hi\"\n(list 1 \"a\" #\\b)\n{:x 1}\n");
    assert_eq!(code, 0);
    assert_eq!(out, "3\n\"hi\"\n(1 \"a\" #\\b)\n{:x 1}\n");
    assert_eq!(err, "");
}

#[test]
fn multi_line_input_waits_for_balanced_brackets() {
    let (out, err, code) = repl(concat!(
        "(define (sq x)\n",
        "  (* x x))\n",
        "(sq\n",
        "  7)\n",
        "(str \"(\"\n",
        "     \")\")\n",
        "(list #\\( ; a comment (\n",
        "  #|[|)\n",
        "[+ 1\n",
        " 2\n",
        " ]\n",
        "{:a (list 1\n",
        "          2)}\n",
    ));
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[1], "49");
    assert_eq!(lines[2], "\"()\"");
    assert_eq!(lines[3], "(#\\( \"[\")");
    assert_eq!(lines[4], "3");
    assert_eq!(lines[5], "{:a (1 2)}");
}

#[test]
fn multi_line_strings_keep_their_newlines() {
    let (out, _, _) = repl("(len \"a\nb\")\n");
    assert_eq!(out, "3\n");
}

#[test]
fn an_error_does_not_end_the_session() {
    let (out, err, code) = repl("(car 1 2 3)\nundefined-thing\n(error \"boom\")\n(/ 1 0)\n(+ 40 2)\n");
    assert_eq!(code, 0);
    assert_eq!(out, "42\n");
    assert!(err.contains("Undefined symbol: undefined-thing"), "{err}");
    assert!(err.contains("boom"), "{err}");
    assert!(err.contains("Division by zero"), "{err}");
}

#[test]
fn a_reader_error_is_reported_and_the_session_goes_on() {
    let (out, err, code) = repl(")\n(+ 1 1)\n");
    assert_eq!(code, 0);
    assert_eq!(out, "2\n");
    assert!(!err.is_empty());
}

#[test]
fn input_ending_inside_a_form_is_reported() {
    let (out, err, code) = repl("(+ 1 1)\n(+ 1\n");
    assert_eq!(code, 0);
    assert_eq!(out, "2\n");
    assert!(err.contains("<repl>"), "the reader's error is shown: {err}");
}

#[test]
fn program_output_and_values_do_not_share_a_line() {
    let (out, _, _) = repl("(display \"hello\")\n(do (print \"x\") 5)\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hello");
    assert!(lines.contains(&"x"), "{out}");
    assert_eq!(lines.last(), Some(&"5"), "{out}");
}

#[test]
fn help_lists_the_commands() {
    let (out, err, code) = repl(":help\n");
    assert_eq!(code, 0, "{err}");
    for c in [":help", ":load FILE", ":time EXPR", ":jit", ":quit"] {
        assert!(out.contains(c), "{c} missing from {out}");
    }
}

#[test]
fn load_runs_a_file_and_prints_its_last_value() {
    let dir = scratch();
    let f = dir.path().join("load-me.sx");
    std::fs::write(&f, "(define (triple x) (* 3 x))\n(triple 5)\n").expect("write temp file");
    let (out, err, code) = repl(&format!(":load {}\n(triple 7)\n", f.display()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "15\n21\n");
    // Quoted names work too.
    let (out, _, _) = repl(&format!(":load \"{}\"\n", f.display()));
    assert_eq!(out, "15\n");
}

#[test]
fn load_reports_errors_and_goes_on() {
    let dir = scratch();
    let bad = dir.path().join("bad.sx");
    std::fs::write(&bad, "(define ok 1)\n(undefined-fn 2)\n").expect("write temp file");
    let missing = dir.path().join("no-such-file.sx");
    let (out, err, code) = repl(&format!(":load {}\n:load {}\nok\n:load\n", missing.display(), bad.display()));
    assert_eq!(code, 0);
    assert!(err.contains("no-such-file.sx"), "{err}");
    assert!(err.contains("Undefined symbol: undefined-fn"), "{err}");
    assert!(err.contains("usage: :load FILE"), "{err}");
    assert_eq!(out, "1\n", "definitions before the error stay");
}

#[test]
fn time_prints_the_value_and_the_elapsed_time() {
    let (out, err, code) = repl(":time (+ 1 2)\n:time (define (fib n)\n  (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n:time (fib 15)\n");
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "3");
    assert_eq!(lines[4], "610");
    for t in [lines[1], lines[3], lines[5]] {
        let ms = t.strip_prefix(";; ").and_then(|r| r.strip_suffix(" ms")).unwrap_or_else(|| panic!("bad time line {t:?}"));
        let (whole, frac) = ms.split_once('.').unwrap_or_else(|| panic!("no decimals in {t:?}"));
        assert!(whole.parse::<u64>().is_ok() && frac.len() == 3, "{t:?}");
    }
}

#[test]
fn time_of_an_error_prints_the_error() {
    let (out, err, code) = repl(":time (car)\n:time\n");
    assert_eq!(code, 0);
    assert_eq!(out, "");
    assert!(err.contains("car"), "{err}");
    assert!(err.contains("usage: :time EXPR"), "{err}");
}

#[test]
fn jit_prints_the_cache_report_naming_the_backend() {
    let (out, _, code) = repl(":jit\n");
    assert_eq!(code, 0);
    assert!(out.starts_with("JIT cache (backend: cranelift)\n"), "{out}");
    assert!(out.contains("threshold:"), "{out}");
}

#[test]
fn jit_prints_the_report_when_jit_report_is_bound() {
    let (out, _, _) = repl("(define (jit-report) \"compiled: 0\")\n:jit\n(define (jit-report) {:compiled 3})\n:jit\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "compiled: 0");
    assert_eq!(lines[3], "{:compiled 3}");
}

#[test]
fn quit_ends_the_session() {
    let (out, _, code) = repl("1\n:quit\n2\n");
    assert_eq!(code, 0);
    assert_eq!(out, "1\n");
    let (out, _, _) = repl("1\n:q\n2\n");
    assert_eq!(out, "1\n");
}

#[test]
fn other_colon_words_are_keywords() {
    let (out, _, _) = repl(":foo\n");
    assert_eq!(out, "\"foo\"\n");
}

#[test]
fn bare_sx_without_subcommand_is_the_repl() {
    let out = Command::new(env!("CARGO_BIN_EXE_sx"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            if let Some(mut i) = c.stdin.take() {
                i.write_all(b"(* 6 7)\n")?;
            }
            c.wait_with_output()
        })
        .expect("run sx");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}

/// Drives `sx repl` through a pseudo-terminal, so rustyline is really in charge.
#[cfg(unix)]
mod pty {
    use nix::pty::{openpty, Winsize};
    use std::fs::File;
    use std::io::{Read, Write};
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc::{channel, Receiver};
    use std::time::{Duration, Instant};

    struct Pty {
        child: Child,
        input: File,
        output: Receiver<Vec<u8>>,
        /// Output not yet consumed by `expect`.
        seen: String,
        /// Everything, for failure messages.
        transcript: String,
    }

    impl Pty {
        fn spawn(history: &std::path::Path) -> Pty {
            let ws = Winsize { ws_row: 24, ws_col: 200, ws_xpixel: 0, ws_ypixel: 0 };
            let pty = openpty(Some(&ws), None).expect("openpty");
            let slave = |fd: &std::os::fd::OwnedFd| Stdio::from(fd.try_clone().expect("dup pty"));
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_sx"));
            cmd.arg("repl")
                .env("TERM", "xterm")
                .env("SX_HISTORY", history)
                .stdin(slave(&pty.slave))
                .stdout(slave(&pty.slave))
                .stderr(slave(&pty.slave));
            let child = cmd.spawn().expect("spawn sx in a pty");
            // Only the child keeps the slave end open, so reads end when it exits.
            drop(cmd);
            drop(pty.slave);
            let mut reader = File::from(pty.master.try_clone().expect("dup master"));
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                // On Linux, reading the master fails with EIO once the child is gone.
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            });
            Pty { child, input: File::from(pty.master), output: rx, seen: String::new(), transcript: String::new() }
        }

        fn send(&mut self, s: &str) {
            self.input.write_all(s.as_bytes()).expect("write to pty");
            self.input.flush().expect("flush pty");
        }

        /// Waits until the output contains `pat` and consumes it and what came before.
        fn expect(&mut self, pat: &str) {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(i) = self.seen.find(pat) {
                    self.seen.drain(..i + pat.len());
                    return;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                match self.output.recv_timeout(left) {
                    Ok(bytes) => {
                        let s = String::from_utf8_lossy(&bytes);
                        self.seen.push_str(&s);
                        self.transcript.push_str(&s);
                    }
                    Err(_) => panic!("timed out waiting for {pat:?}; transcript:\n{:?}", self.transcript),
                }
            }
        }

        fn wait_exit(&mut self) -> i32 {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = self.child.try_wait().expect("wait sx") {
                    return status.code().unwrap_or(-1);
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("sx did not exit; transcript:\n{:?}", self.transcript);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    impl Drop for Pty {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    #[test]
    fn terminal_session_with_completion_ctrl_c_history_and_ctrl_d() {
        let dir = super::scratch();
        let history = dir.path().join("pty-history");
        let mut t = Pty::spawn(&history);
        t.expect("sx> ");
        t.send("(define zebra-unique-name 41)\r");
        t.expect("41\r\n");
        t.expect("sx> ");
        // Multi-line input shows the continuation prompt; Tab completes a bound name.
        t.send("(+ 1\r");
        t.expect("... ");
        t.send("zebra-uni\t");
        t.expect("zebra-unique-name");
        t.send(")\r");
        t.expect("42\r\n");
        t.expect("sx> ");
        // Ctrl-C drops the pending input.
        t.send("(+ 100\r");
        t.expect("... ");
        t.send("\x03");
        t.expect("sx> ");
        t.send("(* 6 7)\r");
        t.expect("42\r\n");
        t.expect("sx> ");
        // Errors go on; commands work.
        t.send("nope-undefined\r");
        t.expect("Undefined symbol: nope-undefined");
        t.expect("sx> ");
        t.send(":jit\r");
        t.expect("JIT cache (backend: cranelift)");
        t.expect("sx> ");
        // Ctrl-D leaves.
        t.send("\x04");
        assert_eq!(t.wait_exit(), 0);
        let saved = std::fs::read_to_string(&history).expect("history file written");
        assert!(saved.contains("(define zebra-unique-name 41)"), "{saved}");
        assert!(saved.contains("(* 6 7)"), "{saved}");
        assert!(!saved.contains("(+ 100"), "interrupted input is not history: {saved}");
    }

    #[test]
    fn history_is_loaded_and_unwritable_history_is_ignored() {
        let dir = super::scratch();
        let history = dir.path().join("pty-history-recall");
        std::fs::write(&history, "#V2\n(+ 20 22)\n").expect("write history");
        let mut t = Pty::spawn(&history);
        t.expect("sx> ");
        // Up arrow recalls the saved entry.
        t.send("\x1b[A\r");
        t.expect("42\r\n");
        t.expect("sx> ");
        t.send(":quit\r");
        assert_eq!(t.wait_exit(), 0);

        // A history path in a missing directory: nothing is read or written, no error.
        let bad = dir.path().join("no-such-dir").join("history");
        let mut t = Pty::spawn(&bad);
        t.expect("sx> ");
        t.send("(+ 1 1)\r");
        t.expect("2\r\n");
        t.expect("sx> ");
        t.send(":quit\r");
        assert_eq!(t.wait_exit(), 0);
        assert!(!t.transcript.to_lowercase().contains("history"), "{:?}", t.transcript);
    }
}
