//! Parsing of `define-primitive` / `define-special-form` declarations from read data.

use std::collections::HashMap;

use sx_syntax::{Datum, DatumKind, Span};

use crate::{Example, Location, PrimitiveSpec, SpecError, SpecialFormSpec};

/// Type names accepted in `:returns` (joined by `|`).
const RETURN_TYPES: &[&str] = &[
    "nil",
    "boolean",
    "number",
    "integer",
    "float",
    "string",
    "char",
    "symbol",
    "keyword",
    "list",
    "dict",
    "vector",
    "lambda",
    "macro",
    "primitive",
    "continuation",
    "record-type",
    "port",
    "eof",
    "string-buffer",
    "coroutine",
    "set",
    "any",
    "never",
];

fn loc(span: Span) -> Location {
    Location {
        line: span.line,
        col: span.col,
    }
}

/// Error builder bound to one file.
struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, at: Location, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            line: at.line,
            col: at.col,
            message: message.into(),
        }
    }

    fn err_at(&self, d: &Datum, message: impl Into<String>) -> SpecError {
        self.err(loc(d.span), message)
    }
}

fn describe(d: &Datum) -> &'static str {
    match &d.kind {
        DatumKind::Nil => "nil",
        DatumKind::Bool(_) => "a boolean",
        DatumKind::Int(_) | DatumKind::Float(_) | DatumKind::Rational(..) => "a number",
        DatumKind::Str(_) => "a string",
        DatumKind::Char(_) => "a character",
        DatumKind::Symbol(_) => "a symbol",
        DatumKind::Keyword(_) => "a keyword",
        DatumKind::List(_) => "a list",
        DatumKind::Dict(_) => "a dict",
        DatumKind::ReaderMacro(..) => "a reader macro",
    }
}

/// How often a key may appear in a declaration.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Occurs {
    /// Exactly once.
    Required,
    /// At most once.
    Optional,
    /// At least once.
    OneOrMore,
}

/// A declaration's name and its `:key value` entries, grouped by key.
struct Decl<'d> {
    name: String,
    location: Location,
    entries: HashMap<String, Vec<&'d Datum>>,
}

impl<'d> Decl<'d> {
    fn one(&self, key: &str) -> Option<&'d Datum> {
        self.entries.get(key).and_then(|v| v.first().copied())
    }

    fn all(&self, key: &str) -> &[&'d Datum] {
        self.entries.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Reads `(head "name" :key value ...)`, checking the head, the name, the key set and the
/// number of occurrences of each key.
fn read_decl<'d>(
    ctx: &Ctx<'_>,
    form: &'d Datum,
    head: &str,
    keys: &[(&str, Occurs)],
) -> Result<Decl<'d>, SpecError> {
    let items = match &form.kind {
        DatumKind::List(items) => items,
        _ => {
            return Err(ctx.err_at(
                form,
                format!(
                    "expected a ({head} \"name\" ...) form, found {}",
                    describe(form)
                ),
            ))
        }
    };
    match items.first() {
        Some(Datum {
            kind: DatumKind::Symbol(s),
            ..
        }) if s == head => {}
        Some(d) => {
            return Err(ctx.err_at(
                d,
                format!("expected the symbol {head} at the head of the form"),
            ))
        }
        None => return Err(ctx.err_at(form, format!("empty form; expected ({head} \"name\" ...)"))),
    }
    let name = match items.get(1) {
        Some(Datum {
            kind: DatumKind::Str(s),
            ..
        }) if !s.is_empty() => s.clone(),
        Some(
            d @ Datum {
                kind: DatumKind::Str(_),
                ..
            },
        ) => return Err(ctx.err_at(d, "the name must not be empty")),
        Some(d) => {
            return Err(ctx.err_at(
                d,
                format!("expected the name as a string, found {}", describe(d)),
            ))
        }
        None => return Err(ctx.err_at(form, format!("{head} without a name"))),
    };
    let mut entries: HashMap<String, Vec<&'d Datum>> = HashMap::new();
    let mut rest = items[2..].iter();
    while let Some(k) = rest.next() {
        let key = match &k.kind {
            DatumKind::Keyword(key) => key,
            _ => {
                return Err(ctx.err_at(k, format!("{name}: expected a :key, found {}", describe(k))))
            }
        };
        let Some((_, occurs)) = keys.iter().find(|(allowed, _)| allowed == key) else {
            let allowed: Vec<String> = keys.iter().map(|(k, _)| format!(":{k}")).collect();
            return Err(ctx.err_at(
                k,
                format!(
                    "{name}: unknown key :{key} (allowed: {})",
                    allowed.join(" ")
                ),
            ));
        };
        let Some(value) = rest.next() else {
            return Err(ctx.err_at(k, format!("{name}: :{key} without a value")));
        };
        let slot = entries.entry(key.clone()).or_default();
        if !slot.is_empty() && *occurs != Occurs::OneOrMore {
            return Err(ctx.err_at(k, format!("{name}: :{key} given more than once")));
        }
        slot.push(value);
    }
    for (key, occurs) in keys {
        if *occurs != Occurs::Optional && !entries.contains_key(*key) {
            let what = if *occurs == Occurs::OneOrMore {
                "at least one"
            } else {
                "a"
            };
            return Err(ctx.err_at(form, format!("{name}: missing {what} :{key}")));
        }
    }
    Ok(Decl {
        name,
        location: loc(form.span),
        entries,
    })
}

fn string_value(ctx: &Ctx<'_>, name: &str, key: &str, d: &Datum) -> Result<String, SpecError> {
    match &d.kind {
        DatumKind::Str(s) if !s.trim().is_empty() => Ok(s.clone()),
        DatumKind::Str(_) => Err(ctx.err_at(d, format!("{name}: :{key} must not be empty"))),
        _ => Err(ctx.err_at(
            d,
            format!("{name}: :{key} must be a string, found {}", describe(d)),
        )),
    }
}

fn symbol_list<'d>(
    ctx: &Ctx<'_>,
    name: &str,
    key: &str,
    d: &'d Datum,
) -> Result<Vec<(&'d str, &'d Datum)>, SpecError> {
    let items = match &d.kind {
        DatumKind::List(items) => items,
        _ => {
            return Err(ctx.err_at(
                d,
                format!(
                    "{name}: :{key} must be a list of symbols, found {}",
                    describe(d)
                ),
            ))
        }
    };
    items
        .iter()
        .map(|item| match &item.kind {
            DatumKind::Symbol(s) => Ok((s.as_str(), item)),
            _ => Err(ctx.err_at(
                item,
                format!(
                    "{name}: :{key} must hold only symbols, found {}",
                    describe(item)
                ),
            )),
        })
        .collect()
}

struct Params {
    params: Vec<String>,
    optional: Vec<String>,
    rest: Option<String>,
}

fn parse_params(ctx: &Ctx<'_>, name: &str, d: &Datum) -> Result<Params, SpecError> {
    let symbols = symbol_list(ctx, name, "params", d)?;
    let mut out = Params {
        params: Vec::new(),
        optional: Vec::new(),
        rest: None,
    };
    let mut in_optional = false;
    let mut seen: Vec<&str> = Vec::new();
    let mut i = 0;
    while let Some(&(sym, at)) = symbols.get(i) {
        i += 1;
        match sym {
            "&optional" => {
                if in_optional {
                    return Err(ctx.err_at(at, format!("{name}: &optional given twice")));
                }
                in_optional = true;
                if !matches!(symbols.get(i), Some((s, _)) if !s.starts_with('&')) {
                    return Err(ctx.err_at(
                        at,
                        format!("{name}: &optional must be followed by a parameter name"),
                    ));
                }
            }
            "&rest" => {
                let Some(&(rest, rest_at)) = symbols.get(i) else {
                    return Err(ctx.err_at(
                        at,
                        format!("{name}: &rest must be followed by a parameter name"),
                    ));
                };
                if rest.starts_with('&') {
                    return Err(ctx.err_at(
                        rest_at,
                        format!("{name}: &rest must be followed by a parameter name"),
                    ));
                }
                if let Some(&(_, extra)) = symbols.get(i + 1) {
                    return Err(ctx.err_at(
                        extra,
                        format!("{name}: nothing may follow the &rest parameter"),
                    ));
                }
                if seen.contains(&rest) {
                    return Err(
                        ctx.err_at(rest_at, format!("{name}: parameter {rest} declared twice"))
                    );
                }
                out.rest = Some(rest.to_string());
                break;
            }
            s if s.starts_with('&') => {
                return Err(ctx.err_at(
                    at,
                    format!("{name}: unknown parameter marker {s} (use &optional or &rest)"),
                ));
            }
            s => {
                if seen.contains(&s) {
                    return Err(ctx.err_at(at, format!("{name}: parameter {s} declared twice")));
                }
                seen.push(s);
                if in_optional {
                    out.optional.push(s.to_string());
                } else {
                    out.params.push(s.to_string());
                }
            }
        }
    }
    Ok(out)
}

fn parse_returns(ctx: &Ctx<'_>, name: &str, d: &Datum) -> Result<String, SpecError> {
    let text = string_value(ctx, name, "returns", d)?;
    for part in text.split('|') {
        if !RETURN_TYPES.contains(&part) {
            return Err(ctx.err_at(
                d,
                format!(
                    "{name}: unknown return type {part:?} (known: {})",
                    RETURN_TYPES.join(" ")
                ),
            ));
        }
    }
    Ok(text)
}

fn parse_example(ctx: &Ctx<'_>, name: &str, d: &Datum) -> Result<Example, SpecError> {
    let pair = match &d.kind {
        DatumKind::List(items) if items.len() == 2 => items,
        _ => {
            return Err(ctx.err_at(
                d,
                format!("{name}: an :example must be a list of two strings (source expected)"),
            ))
        }
    };
    let text = |item: &Datum, what: &str| match &item.kind {
        DatumKind::Str(s) if !s.trim().is_empty() => Ok(s.clone()),
        DatumKind::Str(_) => Err(ctx.err_at(
            item,
            format!("{name}: the example {what} must not be empty"),
        )),
        _ => Err(ctx.err_at(
            item,
            format!(
                "{name}: the example {what} must be a string, found {}",
                describe(item)
            ),
        )),
    };
    let source = text(&pair[0], "source")?;
    let expected = text(&pair[1], "expected value")?;
    match sx_syntax::parse(&source) {
        Ok(forms) if !forms.is_empty() => {}
        Ok(_) => {
            return Err(ctx.err_at(
                &pair[0],
                format!("{name}: the example source holds no form"),
            ))
        }
        Err(diag) => {
            return Err(ctx.err_at(
                &pair[0],
                format!("{name}: the example source does not read: {diag}"),
            ))
        }
    }
    match sx_syntax::parse(&expected) {
        Ok(forms) if forms.len() == 1 => {}
        Ok(forms) => {
            return Err(ctx.err_at(
                &pair[1],
                format!(
                    "{name}: the expected value must read as exactly one datum, not {}",
                    forms.len()
                ),
            ))
        }
        Err(diag) => {
            return Err(ctx.err_at(
                &pair[1],
                format!("{name}: the expected value does not read: {diag}"),
            ))
        }
    }
    Ok(Example {
        source,
        expected,
        location: loc(d.span),
    })
}

fn parse_examples(ctx: &Ctx<'_>, decl: &Decl<'_>) -> Result<Vec<Example>, SpecError> {
    decl.all("example")
        .iter()
        .map(|d| parse_example(ctx, &decl.name, d))
        .collect()
}

/// Reads `src` and checks that declaration names are unique.
fn read_all(ctx: &Ctx<'_>, src: &str) -> Result<Vec<Datum>, SpecError> {
    sx_syntax::parse(src).map_err(|diag| ctx.err(loc(diag.span), diag.message))
}

fn check_unique(
    ctx: &Ctx<'_>,
    seen: &mut HashMap<String, Location>,
    name: &str,
    at: Location,
) -> Result<(), SpecError> {
    if let Some(first) = seen.get(name) {
        return Err(ctx.err(at, format!("{name:?} is declared twice (first at {first})")));
    }
    seen.insert(name.to_string(), at);
    Ok(())
}

pub(crate) fn parse_primitives(src: &str, file: &str) -> Result<Vec<PrimitiveSpec>, SpecError> {
    const KEYS: &[(&str, Occurs)] = &[
        ("params", Occurs::Required),
        ("returns", Occurs::Required),
        ("doc", Occurs::Required),
        ("example", Occurs::OneOrMore),
    ];
    let ctx = Ctx { file };
    let forms = read_all(&ctx, src)?;
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(forms.len());
    for form in &forms {
        let decl = read_decl(&ctx, form, "define-primitive", KEYS)?;
        check_unique(&ctx, &mut seen, &decl.name, decl.location)?;
        let missing = |key: &str| ctx.err(decl.location, format!("{}: missing :{key}", decl.name));
        let params = parse_params(
            &ctx,
            &decl.name,
            decl.one("params").ok_or_else(|| missing("params"))?,
        )?;
        let returns = parse_returns(
            &ctx,
            &decl.name,
            decl.one("returns").ok_or_else(|| missing("returns"))?,
        )?;
        let doc = string_value(
            &ctx,
            &decl.name,
            "doc",
            decl.one("doc").ok_or_else(|| missing("doc"))?,
        )?;
        let examples = parse_examples(&ctx, &decl)?;
        out.push(PrimitiveSpec {
            name: decl.name,
            params: params.params,
            optional: params.optional,
            rest: params.rest,
            returns,
            doc,
            examples,
            location: decl.location,
        });
    }
    Ok(out)
}

/// The identifier-like words of a syntax string, e.g. `(if test then [else])` → if test then else.
fn syntax_words(syntax: &str) -> Vec<&str> {
    syntax
        .split(|c: char| c.is_whitespace() || "()[]{}|.,`'\"".contains(c))
        .filter(|w| !w.is_empty())
        .collect()
}

pub(crate) fn parse_special_forms(
    src: &str,
    file: &str,
) -> Result<Vec<SpecialFormSpec>, SpecError> {
    const KEYS: &[(&str, Occurs)] = &[
        ("syntax", Occurs::Required),
        ("tail", Occurs::Optional),
        ("doc", Occurs::Required),
        ("example", Occurs::OneOrMore),
    ];
    let ctx = Ctx { file };
    let forms = read_all(&ctx, src)?;
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(forms.len());
    for form in &forms {
        let decl = read_decl(&ctx, form, "define-special-form", KEYS)?;
        check_unique(&ctx, &mut seen, &decl.name, decl.location)?;
        let missing = |key: &str| ctx.err(decl.location, format!("{}: missing :{key}", decl.name));
        let syntax = string_value(
            &ctx,
            &decl.name,
            "syntax",
            decl.one("syntax").ok_or_else(|| missing("syntax"))?,
        )?;
        let words = syntax_words(&syntax);
        let mut tail = Vec::new();
        if let Some(d) = decl.one("tail") {
            for (sym, at) in symbol_list(&ctx, &decl.name, "tail", d)? {
                if !words.contains(&sym) {
                    return Err(ctx.err_at(
                        at,
                        format!("{}: tail part {sym} does not occur in :syntax", decl.name),
                    ));
                }
                if tail.iter().any(|t| t == sym) {
                    return Err(
                        ctx.err_at(at, format!("{}: tail part {sym} listed twice", decl.name))
                    );
                }
                tail.push(sym.to_string());
            }
        }
        let doc = string_value(
            &ctx,
            &decl.name,
            "doc",
            decl.one("doc").ok_or_else(|| missing("doc"))?,
        )?;
        let examples = parse_examples(&ctx, &decl)?;
        out.push(SpecialFormSpec {
            name: decl.name,
            syntax,
            tail,
            doc,
            examples,
            location: decl.location,
        });
    }
    Ok(out)
}
