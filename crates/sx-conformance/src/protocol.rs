//! Parsing of the `sx test --jsonl` protocol (one JSON object per line on stdout).
//!
//! ```text
//! {"event":"test","file":F,"suite":"outer > inner","name":N,"ok":true}
//! {"event":"test","file":F,"suite":"...","name":N,"ok":false,"message":M}
//! {"event":"file-error","file":F,"message":M}
//! {"event":"file-done","file":F,"jit":{...}}
//! {"event":"done"}
//! ```
//!
//! Test code may print to stdout too, so a line is classified rather than
//! rejected outright: blank lines and lines that are clearly not JSON are
//! [`Line::Noise`]; a line with a JSON event glued after some printed text
//! (`hello{"event":...}`) still yields its event; a line that looks like an
//! event but does not parse or lacks required fields is [`Line::Invalid`].

use serde_json::Value;

/// One event of the protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Test {
        file: String,
        suite: String,
        name: String,
        ok: bool,
        message: Option<String>,
    },
    FileError {
        file: String,
        message: String,
    },
    FileDone {
        file: String,
        jit: Option<Value>,
    },
    Done,
}

/// What one line of child stdout turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A protocol event; `noise` is text printed before it on the same line, if any.
    Event { event: Event, noise: Option<String> },
    /// A well-formed event object of a kind this runner does not know (ignored).
    Unknown(String),
    /// Empty or whitespace-only.
    Blank,
    /// Text that is not part of the protocol (e.g. a test's `print`).
    Noise(String),
    /// Looked like an event but could not be understood.
    Invalid { line: String, error: String },
}

const EVENT_MARKER: &str = "{\"event\"";

/// Classify one line of output.
pub fn parse_line(raw: &str) -> Line {
    let line = raw.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Blank;
    }
    if trimmed.starts_with('{') {
        return match parse_event_json(trimmed) {
            Ok(Some(event)) => Line::Event { event, noise: None },
            Ok(None) => Line::Unknown(trimmed.to_string()),
            Err(error) => {
                // `{"event"` might still appear later, after a printed `{...}`.
                if let Some(l) = try_embedded(line) {
                    return l;
                }
                Line::Invalid {
                    line: trimmed.to_string(),
                    error,
                }
            }
        };
    }
    try_embedded(line).unwrap_or_else(|| Line::Noise(line.to_string()))
}

/// Look for `{"event"` after some leading text and parse from there.
fn try_embedded(line: &str) -> Option<Line> {
    let mut search_from = 0;
    while let Some(pos) = line[search_from..].find(EVENT_MARKER) {
        let at = search_from + pos;
        if at > 0 {
            let candidate = line[at..].trim();
            match parse_event_json(candidate) {
                Ok(Some(event)) => {
                    return Some(Line::Event {
                        event,
                        noise: Some(line[..at].to_string()),
                    })
                }
                Ok(None) => return Some(Line::Unknown(candidate.to_string())),
                Err(_) => {}
            }
        }
        search_from = at + 1;
    }
    None
}

fn str_field(obj: &serde_json::Map<String, Value>, key: &str) -> Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("field \"{key}\" is not a string: {other}")),
        None => Err(format!("missing field \"{key}\"")),
    }
}

fn opt_str_field(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    }
}

/// Parse one JSON object. `Ok(None)` means a valid object with an unknown
/// `event` kind.
pub fn parse_event_json(text: &str) -> Result<Option<Event>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".to_string());
    };
    let kind = str_field(&obj, "event")?;
    let event = match kind.as_str() {
        "test" => {
            let ok = match obj.get("ok") {
                Some(Value::Bool(b)) => *b,
                Some(other) => return Err(format!("field \"ok\" is not a boolean: {other}")),
                None => return Err("missing field \"ok\"".to_string()),
            };
            Event::Test {
                file: str_field(&obj, "file")?,
                suite: opt_str_field(&obj, "suite").unwrap_or_default(),
                name: str_field(&obj, "name")?,
                ok,
                message: opt_str_field(&obj, "message"),
            }
        }
        "file-error" => Event::FileError {
            file: str_field(&obj, "file")?,
            message: opt_str_field(&obj, "message").unwrap_or_default(),
        },
        "file-done" => Event::FileDone {
            file: str_field(&obj, "file")?,
            jit: match obj.get("jit") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.clone()),
            },
        },
        "done" => Event::Done,
        _ => return Ok(None),
    };
    Ok(Some(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passing_test_event() {
        let l =
            parse_line(r#"{"event":"test","file":"a.sx","suite":"s > t","name":"n","ok":true}"#);
        assert_eq!(
            l,
            Line::Event {
                event: Event::Test {
                    file: "a.sx".into(),
                    suite: "s > t".into(),
                    name: "n".into(),
                    ok: true,
                    message: None
                },
                noise: None
            }
        );
    }

    #[test]
    fn failing_test_event_with_message_and_crlf() {
        let l = parse_line(
            "{\"event\":\"test\",\"file\":\"a.sx\",\"suite\":\"s\",\"name\":\"n\",\"ok\":false,\"message\":\"Expected 1, got 2\"}\r\n",
        );
        match l {
            Line::Event {
                event: Event::Test { ok, message, .. },
                ..
            } => {
                assert!(!ok);
                assert_eq!(message.as_deref(), Some("Expected 1, got 2"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn suite_may_be_missing() {
        let l = parse_line(r#"{"event":"test","file":"a.sx","name":"n","ok":true}"#);
        assert!(matches!(
            l,
            Line::Event { event: Event::Test { ref suite, .. }, .. } if suite.is_empty()
        ));
    }

    #[test]
    fn file_error_file_done_done() {
        assert_eq!(
            parse_line(
                r#"{"event":"file-error","file":"x.sx","message":"unterminated string starting at 3:7"}"#
            ),
            Line::Event {
                event: Event::FileError {
                    file: "x.sx".into(),
                    message: "unterminated string starting at 3:7".into()
                },
                noise: None
            }
        );
        assert_eq!(
            parse_line(
                r#"{"event":"file-done","file":"x.sx","jit":{"compiled":3,"backend":"cranelift"}}"#
            ),
            Line::Event {
                event: Event::FileDone {
                    file: "x.sx".into(),
                    jit: Some(json!({"compiled":3,"backend":"cranelift"}))
                },
                noise: None
            }
        );
        assert_eq!(
            parse_line(r#"{"event":"file-done","file":"x.sx"}"#),
            Line::Event {
                event: Event::FileDone {
                    file: "x.sx".into(),
                    jit: None
                },
                noise: None
            }
        );
        assert_eq!(
            parse_line(r#"{"event":"done"}"#),
            Line::Event {
                event: Event::Done,
                noise: None
            }
        );
    }

    #[test]
    fn noise_blank_unknown_invalid() {
        assert_eq!(parse_line("   "), Line::Blank);
        assert_eq!(parse_line("hello world"), Line::Noise("hello world".into()));
        assert!(matches!(
            parse_line(r#"{"event":"suite-start","name":"x"}"#),
            Line::Unknown(_)
        ));
        assert!(matches!(
            parse_line(r#"{"event":"test","file":"a"#),
            Line::Invalid { .. }
        ));
        assert!(matches!(
            parse_line(r#"{"event":"test","file":"a.sx","name":"n"}"#),
            Line::Invalid { ref error, .. } if error.contains("\"ok\"")
        ));
        assert!(matches!(parse_line(r#"{"x":1}"#), Line::Invalid { .. }));
    }

    #[test]
    fn event_glued_after_printed_text() {
        match parse_line(r#"printed{"event":"file-done","file":"a.sx"}"#) {
            Line::Event { event, noise } => {
                assert_eq!(noise.as_deref(), Some("printed"));
                assert!(matches!(event, Event::FileDone { .. }));
            }
            other => panic!("unexpected {other:?}"),
        }
        // A printed dict followed by an event on the same line.
        match parse_line(r#"{:a 1}{"event":"done"}"#) {
            Line::Event { event, .. } => assert_eq!(event, Event::Done),
            other => panic!("unexpected {other:?}"),
        }
    }
}
