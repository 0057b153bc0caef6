//! Analysis: source forms (heap values) to [`Code`]. Resolves lexical
//! variables to (depth, slot), expands macros, and desugars derived forms.
//!
//! Special forms are recognised only when their head symbol is not lexically
//! bound, so a local named `list`, `map` or `match` shadows correctly.
//! Desugarings use `%`-prefixed aliases of the core forms so that user
//! bindings cannot capture them.

use crate::code::{BinOp, Code, Leaf, MatchClause, Node, NodeId, Params, Pat};
use crate::machine::Machine;
use hashbrown::HashMap;
use std::cell::RefCell;
use std::rc::Rc;
use sx_core::error::{Error, Result};
use sx_core::heap::{DictMap, Obj};
use sx_core::Value;
use sx_syntax::{Datum, DatumKind, Span};

/// A lexical frame at analysis time; each corresponds to one runtime
/// environment frame.
#[derive(Debug)]
pub struct Scope {
    pub names: RefCell<Vec<u32>>,
    pub parent: Option<Rc<Scope>>,
}

impl Scope {
    pub fn new(names: Vec<u32>, parent: Option<Rc<Scope>>) -> Rc<Scope> {
        Rc::new(Scope { names: RefCell::new(names), parent })
    }
}

/// Source positions of list forms, keyed by heap index; valid while the
/// forms are alive (they are rooted during analysis).
pub type SpanMap = HashMap<u32, Span>;

/// Convert read data to forms, recording the span of every list.
pub fn datum_to_form(m: &mut Machine, d: &Datum, spans: &mut SpanMap) -> Result<Value> {
    let rt = &mut m.rt;
    Ok(match &d.kind {
        DatumKind::List(items) => {
            let mut vs = Vec::with_capacity(items.len());
            for it in items {
                vs.push(datum_to_form(m, it, spans)?);
            }
            let v = m.rt.list(vs);
            if let Some(i) = v.heap_index() {
                spans.insert(i, d.span);
            }
            v
        }
        DatumKind::Dict(pairs) => {
            let mut map = DictMap::default();
            for (k, v) in pairs {
                let kv = datum_to_form(m, k, spans)?;
                let key = m.rt.dict_key(kv);
                let vv = datum_to_form(m, v, spans)?;
                map.insert(key, vv);
            }
            m.rt.dict(map)
        }
        DatumKind::ReaderMacro(name, inner) => {
            let handler = m.reader_macro(name);
            match handler {
                Some(h) => {
                    let arg = datum_to_form(m, inner, spans)?;
                    m.call_value(h, &[arg])?
                }
                None => {
                    return Err(Error::msg(format!(
                        "unknown reader macro #{name} at {}:{}",
                        d.span.line, d.span.col
                    )))
                }
            }
        }
        _ => sx_core::convert::datum_to_value(rt, d)?,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Sf {
    Quote,
    Quasiquote,
    If,
    When,
    Unless,
    Cond,
    Case,
    And,
    Or,
    Begin,
    Do,
    Define,
    Set,
    Fn,
    Let,
    LetStar,
    Letrec,
    DefineRecordType,
    DefineType,
    Defcomp,
    Defmacro,
    Match,
    LetMatch,
    DefineProtocol,
    Implement,
    Thread,
    ThreadLast,
    ThreadAs,
    Reset,
    Shift,
    Guard,
    HandlerBind,
    Scope,
    Provide,
    Unquote,
}

pub(crate) fn special_form_table() -> Vec<(&'static str, Sf)> {
    use Sf::*;
    let base = [
        ("quote", Quote),
        ("quasiquote", Quasiquote),
        ("if", If),
        ("when", When),
        ("unless", Unless),
        ("cond", Cond),
        ("case", Case),
        ("and", And),
        ("or", Or),
        ("begin", Begin),
        ("do", Do),
        ("define", Define),
        ("set!", Set),
        ("fn", Fn),
        ("lambda", Fn),
        ("let", Let),
        ("let*", LetStar),
        ("letrec", Letrec),
        ("letrec*", Letrec),
        ("define-record-type", DefineRecordType),
        ("define-type", DefineType),
        ("defcomp", Defcomp),
        ("defmacro", Defmacro),
        ("match", Match),
        ("let-match", LetMatch),
        ("define-protocol", DefineProtocol),
        ("implement", Implement),
        ("->", Thread),
        ("->>", ThreadLast),
        ("as->", ThreadAs),
        ("reset", Reset),
        ("shift", Shift),
        ("guard", Guard),
        ("handler-bind", HandlerBind),
        ("scope", Scope),
        ("provide", Provide),
        ("unquote", Unquote),
        ("splice-unquote", Unquote),
        ("unquote-splicing", Unquote),
    ];
    let mut out: Vec<(&'static str, Sf)> = base.to_vec();
    // Internal aliases used by desugarings.
    out.extend([
        ("%quote", Quote),
        ("%if", If),
        ("%begin", Begin),
        ("%define", Define),
        ("%set!", Set),
        ("%fn", Fn),
        ("%let", Let),
        ("%letrec", Letrec),
        ("%match", Match),
    ]);
    out
}

pub struct Analyzer<'m> {
    pub m: &'m mut Machine,
    nodes: Vec<Node>,
    spans: Vec<Span>,
    consts: Vec<Value>,
    scope: Option<Rc<Scope>>,
    span: Span,
    file: Rc<str>,
    span_map: &'m SpanMap,
    /// The analysis may not add slots to `scope` (runtime macro fragments).
    fixed_frame: bool,
    /// Nesting of `analyze` calls (bounded: analysis recurses on the Rust stack).
    depth: usize,
}

/// Deepest form nesting analysed (the reader allows 1000 levels).
const MAX_ANALYSIS_DEPTH: usize = 1500;

fn err_at(span: Span, msg: impl Into<String>) -> Error {
    let _ = span;
    Error::msg(msg)
}

impl<'m> Analyzer<'m> {
    pub fn new(m: &'m mut Machine, file: Rc<str>, span_map: &'m SpanMap, scope: Option<Rc<Scope>>) -> Self {
        Analyzer {
            m,
            nodes: Vec::new(),
            spans: Vec::new(),
            consts: Vec::new(),
            scope,
            span: Span::default(),
            file,
            span_map,
            fixed_frame: false,
            depth: 0,
        }
    }

    /// Analyse a top-level form (or a runtime fragment) into a unit.
    pub fn unit(mut self, form: Value, fixed_frame: bool) -> Result<Rc<Code>> {
        self.fixed_frame = fixed_frame;
        self.m.analysis_roots.push(form);
        let base = self.m.analysis_roots.len();
        let r = self.analyze(form);
        let root = match r {
            Ok(r) => r,
            Err(e) => {
                self.m.analysis_roots.truncate(base - 1);
                return Err(e);
            }
        };
        let code = self.finish(root, None, None);
        self.m.analysis_roots.truncate(base - 1);
        Ok(code)
    }

    fn finish(&mut self, root: NodeId, params: Option<Params>, name: Option<Rc<str>>) -> Rc<Code> {
        let consts = std::mem::take(&mut self.consts);
        let handle = if consts.is_empty() { None } else { Some(self.m.rt.heap.root(consts)) };
        self.m.next_code_id += 1;
        Rc::new(Code {
            nodes: std::mem::take(&mut self.nodes),
            spans: std::mem::take(&mut self.spans),
            root,
            fixed: crate::code::FixedArity::of(params.as_ref()),
            params,
            name,
            file: self.file.clone(),
            consts: handle,
            id: self.m.next_code_id,
            calls: std::cell::Cell::new(0),
            tier_quiet: std::cell::Cell::new(crate::code::TierQuiet::default()),
            expansions: RefCell::new(HashMap::new()),
        })
    }

    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        self.spans.push(self.span);
        (self.nodes.len() - 1) as NodeId
    }

    fn konst(&mut self, v: Value) -> NodeId {
        if v.is_heap() {
            self.consts.push(v);
            self.m.analysis_roots.push(v);
        }
        self.push(Node::Const(v))
    }

    fn sym(&mut self, name: &str) -> Value {
        self.m.rt.symbol(name)
    }

    fn items(&self, form: Value) -> Option<Vec<Value>> {
        self.m.rt.as_list(form).map(|l| l.to_vec())
    }

    fn lookup(&self, sym: u32) -> Option<(u16, u16)> {
        let mut depth = 0u16;
        let mut s = self.scope.clone();
        while let Some(sc) = s {
            if let Some(pos) = sc.names.borrow().iter().rposition(|&n| n == sym) {
                return Some((depth, pos as u16));
            }
            depth += 1;
            s = sc.parent.clone();
        }
        None
    }

    fn special(&self, head: Value) -> Option<Sf> {
        let id = head.as_symbol()?;
        let sf = *self.m.special_forms.get(&id)?;
        if self.lookup(id).is_some() {
            return None;
        }
        Some(sf)
    }

    fn name_of(&self, v: Value) -> String {
        sx_core::print::inspect(&self.m.rt, v)
    }

    fn expect_sym(&self, v: Value, what: &str) -> Result<u32> {
        v.as_symbol().ok_or_else(|| err_at(self.span, format!("{what}: expected a symbol, got {}", self.name_of(v))))
    }

    pub fn analyze(&mut self, form: Value) -> Result<NodeId> {
        self.depth += 1;
        let r = if self.depth > MAX_ANALYSIS_DEPTH {
            Err(err_at(self.span, "form nested too deeply (or cyclic)"))
        } else {
            self.analyze_inner(form)
        };
        self.depth -= 1;
        r
    }

    fn analyze_inner(&mut self, form: Value) -> Result<NodeId> {
        if let Some(id) = form.as_symbol() {
            return Ok(match self.lookup(id) {
                Some((0, slot)) => self.push(Node::Local0 { slot }),
                Some((depth, slot)) => self.push(Node::Local { depth, slot }),
                None => self.push(Node::Global { sym: id }),
            });
        }
        if let Some(id) = form.as_keyword() {
            let s = self.m.rt.syms.name_rc(id);
            let v = self.m.rt.str_rc(s);
            return Ok(self.konst(v));
        }
        match self.m.rt.heap.get(form) {
            Some(Obj::List(_)) => {}
            Some(Obj::Dict(d)) => {
                let pairs: Vec<(Rc<str>, Value)> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
                let mut keys = Vec::new();
                let mut vals = Vec::new();
                for (k, v) in pairs {
                    keys.push(k);
                    vals.push(self.analyze(v)?);
                }
                return Ok(self.push(Node::Dict { keys: keys.into(), vals: vals.into() }));
            }
            _ => return Ok(self.konst(form)),
        }
        let saved_span = self.span;
        if let Some(i) = form.heap_index() {
            if let Some(sp) = self.span_map.get(&i) {
                self.span = *sp;
            }
        }
        let r = self.analyze_list(form);
        self.span = saved_span;
        r
    }

    fn analyze_list(&mut self, form: Value) -> Result<NodeId> {
        let items = self.items(form).unwrap_or_default();
        if items.is_empty() {
            // `()` evaluates to a fresh empty list.
            let list_sym = self.m.list_prim_sym;
            let head = self.push(Node::Global { sym: list_sym });
            return Ok(self.push(plain_call(head, Box::new([]), form)));
        }
        let head = items[0];
        if let Some(sf) = self.special(head) {
            return self.special_form(sf, form, &items);
        }
        // Macro call?
        if let Some(id) = head.as_symbol() {
            if self.lookup(id).is_none() {
                let g = self.m.global(id);
                if let Some(Obj::Macro(_)) = self.m.rt.heap.get(g) {
                    let expanded = self.m.expand_macro(g, &items[1..])?;
                    self.m.analysis_roots.push(expanded);
                    return self.analyze(expanded);
                }
            }
        }
        self.call(form, &items)
    }

    fn is_simple(&self, n: NodeId) -> bool {
        match &self.nodes[n as usize] {
            Node::Const(_) | Node::Local { .. } | Node::Local0 { .. } | Node::Global { .. } => true,
            Node::Call { pure, .. } => *pure,
            _ => false,
        }
    }

    fn call(&mut self, form: Value, items: &[Value]) -> Result<NodeId> {
        let head = self.analyze(items[0])?;
        // Calls of components (`~name`) pass keyword arguments as keywords.
        let component = items[0].as_symbol().is_some_and(|s| self.m.rt.syms.name(s).starts_with('~'));
        let mut args = Vec::with_capacity(items.len() - 1);
        let mut value_next = false;
        for a in &items[1..] {
            if component && !value_next && a.as_keyword().is_some() {
                args.push(self.push(Node::Const(*a)));
                value_next = true;
            } else {
                args.push(self.analyze(*a)?);
                value_next = false;
            }
        }
        let mut prim = None;
        let mut pure = false;
        let all_simple = args.iter().all(|a| self.is_simple(*a));
        let mut scope = None;
        if let Some(sym) = items[0].as_symbol() {
            if self.lookup(sym).is_none() {
                scope = self.scope.clone();
                let g = self.m.global(sym);
                if let Some(p) = g.as_prim() {
                    if self.m.prim_is_native(p) {
                        prim = Some((p, sym));
                        pure = all_simple && self.m.prim_is_pure(p);
                    }
                }
            }
        }
        let direct = prim.is_some() && all_simple;
        let op = match prim {
            Some((p, _)) => BinOp::from_name(self.m.prim_name(p)).filter(|op| args.len() == if *op == BinOp::Not { 1 } else { 2 }),
            _ => None,
        };
        if form.is_heap() {
            self.consts.push(form);
        }
        let leaves = match (op, &args[..]) {
            (Some(_), [x, y]) => [Leaf::of(&self.nodes[*x as usize]), Leaf::of(&self.nodes[*y as usize])],
            _ => [Leaf::NONE; 2],
        };
        let mut inline = u64::MAX;
        for (k, sub) in std::iter::once(head).chain(args.iter().copied()).enumerate().take(64) {
            if !may_be_simple(&self.nodes[sub as usize]) {
                inline &= !(1 << k);
            }
        }
        Ok(self.push(Node::Call { head, args: args.into(), prim, direct, simple_args: all_simple, pure, op, leaves, inline, form, scope }))
    }

    fn body(&mut self, forms: &[Value]) -> Result<NodeId> {
        match forms.len() {
            0 => Ok(self.konst(Value::NIL)),
            1 => self.analyze(forms[0]),
            _ => {
                let mut ns = Vec::with_capacity(forms.len());
                for f in forms {
                    ns.push(self.analyze(*f)?);
                }
                Ok(self.push(Node::Seq(ns.into())))
            }
        }
    }

    /// Names introduced by `define` at the top of a body (also inside `begin`).
    fn scan_defines(&self, forms: &[Value], out: &mut Vec<u32>) {
        for f in forms {
            let Some(items) = self.items(*f) else { continue };
            let Some(head) = items.first() else { continue };
            match self.special(*head) {
                Some(Sf::Define) if items.len() >= 2 => {
                    let target = items[1];
                    let name = match self.items(target) {
                        Some(sig) => sig.first().and_then(|s| s.as_symbol()),
                        None => target.as_symbol(),
                    };
                    if let Some(n) = name {
                        if !out.contains(&n) {
                            out.push(n);
                        }
                    }
                }
                Some(Sf::Begin) => self.scan_defines(&items[1..], out),
                _ => {}
            }
        }
    }

    fn with_scope<T>(&mut self, names: Vec<u32>, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<(T, u16)> {
        let scope = Scope::new(names, self.scope.clone());
        let saved = self.scope.replace(scope.clone());
        let saved_fixed = std::mem::replace(&mut self.fixed_frame, false);
        let r = f(self);
        self.scope = saved;
        self.fixed_frame = saved_fixed;
        let size = scope.names.borrow().len() as u16;
        r.map(|t| (t, size))
    }

    /// A body in a new scope whose first names are `names`, with internal
    /// defines added to the same frame.
    fn scoped_body(&mut self, names: Vec<u32>, forms: &[Value]) -> Result<(NodeId, u16)> {
        let mut all = names;
        self.scan_defines(forms, &mut all);
        self.with_scope(all, |a| a.body(forms))
    }

    fn parse_params(&mut self, spec: Value, what: &str) -> Result<(Vec<u32>, Params)> {
        let items = match self.items(spec) {
            Some(i) => i,
            None if spec.is_nil() => Vec::new(),
            None => {
                // `(fn args body)`: all arguments as a list.
                if let Some(s) = spec.as_symbol() {
                    return Ok((vec![s], Params { required: 0, rest: true, keys: vec![], frame_size: 1 }));
                }
                return Err(err_at(self.span, format!("{what}: parameters must be a list")));
            }
        };
        let mut names = Vec::new();
        let mut required = 0u16;
        let mut rest = false;
        let mut keys = Vec::new();
        let mut mode = 0; // 0 positional, 1 rest, 2 key
        let amp_rest = self.sym("&rest");
        let amp = self.sym("&");
        let amp_key = self.sym("&key");
        let mut key_names = Vec::new();
        for p in items {
            if p == amp_rest || p == amp {
                mode = 1;
                continue;
            }
            if p == amp_key {
                mode = 2;
                continue;
            }
            let s = self.expect_sym(p, what)?;
            match mode {
                0 => {
                    names.push(s);
                    required += 1;
                }
                1 => {
                    if rest {
                        return Err(err_at(self.span, format!("{what}: only one &rest parameter allowed")));
                    }
                    rest = true;
                    names.push(s);
                }
                _ => {
                    key_names.push(s);
                    keys.push(self.m.rt.syms.name_rc(s));
                }
            }
        }
        if !keys.is_empty() && !rest {
            // &key without &rest: reserve a hidden rest slot for leftovers.
            let hidden = self.m.rt.syms.intern("%children");
            names.push(hidden);
            rest = true;
        }
        names.extend(key_names);
        let frame_size = names.len() as u16;
        Ok((names, Params { required, rest, keys, frame_size }))
    }

    /// Analyse `(fn params body...)` into a child unit.
    pub fn lambda(&mut self, params: Value, body: &[Value], name: Option<Rc<str>>, what: &str) -> Result<Rc<Code>> {
        let (names, mut p) = self.parse_params(params, what)?;
        let scope_parent = self.scope.clone();
        let mut child = Analyzer {
            m: &mut *self.m,
            nodes: Vec::new(),
            spans: Vec::new(),
            consts: Vec::new(),
            scope: scope_parent,
            span: self.span,
            file: self.file.clone(),
            span_map: self.span_map,
            fixed_frame: false,
            depth: self.depth,
        };
        let (root, size) = child.scoped_body(names, body)?;
        p.frame_size = size;
        Ok(child.finish(root, Some(p), name))
    }

    fn special_form(&mut self, sf: Sf, form: Value, items: &[Value]) -> Result<NodeId> {
        let args = &items[1..];
        let name = self.name_of(items[0]);
        let need = |n: usize, a: &Self| -> Result<()> {
            if args.len() < n {
                Err(err_at(a.span, format!("{name}: expected at least {n} argument{}, got {}", if n == 1 { "" } else { "s" }, args.len())))
            } else {
                Ok(())
            }
        };
        match sf {
            Sf::Quote => Ok(self.konst(args.first().copied().unwrap_or(Value::NIL))),
            Sf::Unquote => Err(err_at(self.span, format!("{name}: not inside quasiquote"))),
            Sf::Quasiquote => {
                need(1, self)?;
                self.quasi(args[0], 1)
            }
            Sf::If => {
                need(2, self)?;
                if args.len() > 3 {
                    return Err(err_at(self.span, format!("if: expected 2 or 3 arguments, got {}", args.len())));
                }
                let test = self.analyze(args[0])?;
                let then = self.analyze(args[1])?;
                let els = match args.get(2) {
                    Some(e) => self.analyze(*e)?,
                    None => self.konst(Value::NIL),
                };
                Ok(self.push(Node::If { test, then, els }))
            }
            Sf::When | Sf::Unless => {
                need(1, self)?;
                let test = self.analyze(args[0])?;
                let body = self.body(&args[1..])?;
                let nil = self.konst(Value::NIL);
                Ok(if sf == Sf::When {
                    self.push(Node::If { test, then: body, els: nil })
                } else {
                    self.push(Node::If { test, then: nil, els: body })
                })
            }
            Sf::Cond => self.cond(args),
            Sf::Case => self.case(args),
            Sf::And | Sf::Or => {
                if args.is_empty() {
                    return Ok(self.konst(Value::bool(sf == Sf::And)));
                }
                let mut ns = Vec::new();
                for a in args {
                    ns.push(self.analyze(*a)?);
                }
                Ok(self.push(if sf == Sf::And { Node::And(ns.into()) } else { Node::Or(ns.into()) }))
            }
            Sf::Begin => self.body(args),
            Sf::Do => self.do_form(args),
            Sf::Define => self.define(args),
            Sf::Set => {
                if args.len() != 2 {
                    return Err(err_at(self.span, format!("set!: expected 2 arguments, got {}", args.len())));
                }
                let s = self.expect_sym(args[0], "set!")?;
                let value = self.analyze(args[1])?;
                Ok(match self.lookup(s) {
                    Some((depth, slot)) => self.push(Node::SetLocal { depth, slot, value, define: false }),
                    None => self.push(Node::SetGlobal { sym: s, value, define: false }),
                })
            }
            Sf::Fn => {
                need(1, self)?;
                // `(fn name (params) body)` names the lambda.
                let (name, params, body) = match args[0].as_symbol() {
                    Some(s) if args.len() >= 2 && (self.items(args[1]).is_some() || args[1].is_nil()) => {
                        (Some(self.m.rt.syms.name_rc(s)), args[1], &args[2..])
                    }
                    _ => (None, args[0], &args[1..]),
                };
                let code = self.lambda(params, body, name, "fn")?;
                Ok(self.push(Node::Lambda(code)))
            }
            Sf::Let => self.let_form(args),
            Sf::LetStar => self.let_star(args),
            Sf::Letrec => self.letrec(args),
            Sf::Defmacro => {
                need(2, self)?;
                let s = self.expect_sym(args[0], "defmacro")?;
                let code = self.lambda(args[1], &args[2..], Some(self.m.rt.syms.name_rc(s)), "defmacro")?;
                let value = self.push(Node::Macro(code));
                Ok(self.define_node(s, value))
            }
            Sf::Match => {
                need(1, self)?;
                let subject = self.analyze(args[0])?;
                self.match_clauses(subject, &args[1..], true)
            }
            Sf::LetMatch => {
                need(2, self)?;
                let subject = self.analyze(args[1])?;
                let clause = {
                    let mut c = vec![args[0]];
                    c.extend_from_slice(&args[2..]);
                    self.m.rt.list(c)
                };
                self.m.analysis_roots.push(clause);
                self.match_clauses(subject, &[clause], true)
            }
            Sf::Reset => {
                let body = self.body(args)?;
                Ok(self.push(Node::Reset(body)))
            }
            Sf::Shift => {
                need(1, self)?;
                let k = self.expect_sym(args[0], "shift")?;
                let ((body, _), _) = self.with_scope(vec![k], |a| {
                    let b = a.body(&args[1..])?;
                    Ok((b, 0))
                })?;
                Ok(self.push(Node::Shift { body }))
            }
            Sf::Guard => self.guard(args),
            Sf::HandlerBind => {
                need(1, self)?;
                let clauses = self.items(args[0]).unwrap_or_default();
                let mut ns = Vec::new();
                for c in clauses {
                    let parts = self.items(c).unwrap_or_default();
                    if parts.len() != 2 {
                        return Err(err_at(self.span, "handler-bind: each clause must be (predicate handler)"));
                    }
                    ns.push((self.analyze(parts[0])?, self.analyze(parts[1])?));
                }
                let body = self.body(&args[1..])?;
                Ok(self.push(Node::HandlerBind { clauses: ns.into(), body }))
            }
            Sf::Scope | Sf::Provide => {
                need(1, self)?;
                let name = self.analyze(args[0])?;
                let (value, rest) = if sf == Sf::Provide {
                    need(2, self)?;
                    (Some(self.analyze(args[1])?), &args[2..])
                } else {
                    let kw_value = self.m.rt.keyword("value");
                    if args.len() >= 3 && args[1] == kw_value {
                        (Some(self.analyze(args[2])?), &args[3..])
                    } else {
                        (None, &args[1..])
                    }
                };
                let body = self.body(rest)?;
                Ok(self.push(Node::Scope { name, value, body }))
            }
            Sf::Thread | Sf::ThreadLast => {
                need(1, self)?;
                let mut acc = args[0];
                for step in &args[1..] {
                    let new_form = match self.items(*step) {
                        Some(parts) if !parts.is_empty() => {
                            let mut v = vec![parts[0]];
                            if sf == Sf::Thread {
                                v.push(acc);
                                v.extend_from_slice(&parts[1..]);
                            } else {
                                v.extend_from_slice(&parts[1..]);
                                v.push(acc);
                            }
                            v
                        }
                        _ => vec![*step, acc],
                    };
                    acc = self.m.rt.list(new_form);
                    self.m.analysis_roots.push(acc);
                }
                let _ = form;
                self.analyze(acc)
            }
            Sf::ThreadAs => {
                need(2, self)?;
                let name = args[1];
                self.expect_sym(name, "as->")?;
                let let_sym = self.sym("%let");
                let mut acc = args[0];
                for step in &args[2..] {
                    let binding = self.m.rt.list(vec![name, acc]);
                    let bindings = self.m.rt.list(vec![binding]);
                    acc = self.m.rt.list(vec![let_sym, bindings, *step]);
                    self.m.analysis_roots.push(acc);
                }
                self.analyze(acc)
            }
            Sf::DefineRecordType => self.define_record_type(args),
            Sf::DefineType => self.define_type(args),
            Sf::Defcomp => {
                // (defcomp ~name (params...) body...) = (define (~name params...) body...)
                need(2, self)?;
                let name = args[0];
                self.expect_sym(name, "defcomp")?;
                let mut sig = vec![name];
                match self.items(args[1]) {
                    Some(ps) => sig.extend(ps),
                    None if args[1].is_nil() => {}
                    None => return Err(err_at(self.span, "defcomp: parameters must be a list")),
                }
                let define_s = self.sym("%define");
                let sig = self.m.rt.list(sig);
                let mut f = vec![define_s, sig];
                f.extend_from_slice(&args[2..]);
                let form = self.m.rt.list(f);
                self.m.analysis_roots.push(form);
                self.analyze(form)
            }
            Sf::DefineProtocol => self.define_protocol(args),
            Sf::Implement => self.implement(args),
        }
    }

    fn define_node(&mut self, s: u32, value: NodeId) -> NodeId {
        match self.lookup(s) {
            Some((0, slot)) => self.push(Node::SetLocal { depth: 0, slot, value, define: true }),
            _ if self.scope.is_some() && !self.fixed_frame => {
                let slot = {
                    let sc = self.scope.clone();
                    match sc {
                        Some(sc) => {
                            let mut names = sc.names.borrow_mut();
                            names.push(s);
                            (names.len() - 1) as u16
                        }
                        None => 0,
                    }
                };
                self.push(Node::SetLocal { depth: 0, slot, value, define: true })
            }
            _ => self.push(Node::SetGlobal { sym: s, value, define: true }),
        }
    }

    fn define(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "define: expected a name"));
        }
        if let Some(sig) = self.items(args[0]) {
            // (define (name params...) body...)
            let Some(&name_v) = sig.first() else {
                return Err(err_at(self.span, "define: empty signature"));
            };
            let s = self.expect_sym(name_v, "define")?;
            let params = self.m.rt.list(sig[1..].to_vec());
            self.m.analysis_roots.push(params);
            // Make sure the slot exists before analysing the body (recursion).
            if self.scope.is_some() && self.lookup(s).is_none_or(|(d, _)| d != 0) && !self.fixed_frame {
                if let Some(sc) = &self.scope {
                    sc.names.borrow_mut().push(s);
                }
            }
            let code = self.lambda(params, &args[1..], Some(self.m.rt.syms.name_rc(s)), "define")?;
            let value = self.push(Node::Lambda(code));
            return Ok(self.define_node(s, value));
        }
        let s = self.expect_sym(args[0], "define")?;
        if args.len() > 2 {
            return Err(err_at(self.span, format!("define: expected 2 arguments, got {}", args.len())));
        }
        if self.scope.is_some() && self.lookup(s).is_none_or(|(d, _)| d != 0) && !self.fixed_frame {
            if let Some(sc) = &self.scope {
                sc.names.borrow_mut().push(s);
            }
        }
        let value = match args.get(1) {
            Some(v) => {
                // Name anonymous lambdas after the variable.
                let items = self.items(*v).unwrap_or_default();
                if items.len() >= 2 && self.special(items[0]) == Some(Sf::Fn) && (self.items(items[1]).is_some() || items[1].is_nil()) {
                    let code = self.lambda(items[1], &items[2..], Some(self.m.rt.syms.name_rc(s)), "fn")?;
                    self.push(Node::Lambda(code))
                } else {
                    self.analyze(*v)?
                }
            }
            None => self.konst(Value::NIL),
        };
        Ok(self.define_node(s, value))
    }

    fn bindings(&mut self, spec: Value, what: &str) -> Result<Vec<(u32, Value)>> {
        let items = match self.items(spec) {
            Some(i) => i,
            None if spec.is_nil() => vec![],
            None => return Err(err_at(self.span, format!("{what}: bindings must be a list"))),
        };
        let mut out = Vec::new();
        if items.first().is_some_and(|v| v.as_symbol().is_some()) {
            // Clojure style: (let (a 1 b 2) ...)
            if items.len() % 2 != 0 {
                return Err(err_at(self.span, format!("{what}: odd number of forms in binding list")));
            }
            for p in items.chunks(2) {
                out.push((self.expect_sym(p[0], what)?, p[1]));
            }
            return Ok(out);
        }
        for b in items {
            let parts = self.items(b).ok_or_else(|| err_at(self.span, format!("{what}: each binding must be (name value)")))?;
            match parts.len() {
                1 => out.push((self.expect_sym(parts[0], what)?, Value::NIL)),
                2 => out.push((self.expect_sym(parts[0], what)?, parts[1])),
                _ => return Err(err_at(self.span, format!("{what}: each binding must be (name value)"))),
            }
        }
        Ok(out)
    }

    fn let_form(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "let: expected bindings"));
        }
        if let Some(name) = args[0].as_symbol() {
            return self.named_let(name, &args[1..]);
        }
        let bs = self.bindings(args[0], "let")?;
        let mut inits = Vec::new();
        for (_, v) in &bs {
            inits.push(self.analyze(*v)?);
        }
        let names: Vec<u32> = bs.iter().map(|(n, _)| *n).collect();
        let (body, size) = self.scoped_body(names, &args[1..])?;
        Ok(self.push(Node::Let { inits: inits.into(), body, size, rec: false }))
    }

    fn named_let(&mut self, name: u32, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "let: named let needs bindings"));
        }
        let bs = self.bindings(args[0], "let")?;
        let params: Vec<Value> = bs.iter().map(|(n, _)| Value::symbol(*n)).collect();
        let params = self.m.rt.list(params);
        self.m.analysis_roots.push(params);
        let body = &args[1..];
        let lname = self.m.rt.syms.name_rc(name);
        // Inits are evaluated in the outer scope: analyse them first, then
        // bind them to hidden slots next to the loop function.
        let mut inits = Vec::new();
        for (_, v) in &bs {
            inits.push(self.analyze(*v)?);
        }
        let hidden = self.m.rt.syms.intern("%named-let-init");
        let n = inits.len();
        let ((inner, _), outer_size) = self.with_scope(vec![hidden; n], |a| {
            let ((call, _), size) = a.with_scope(vec![name], |a| {
                let code = a.lambda(params, body, Some(lname), "let")?;
                let lam = a.push(Node::Lambda(code));
                let set = a.push(Node::SetLocal { depth: 0, slot: 0, value: lam, define: true });
                let head = a.push(Node::Local { depth: 0, slot: 0 });
                let args: Vec<NodeId> = (0..n).map(|i| a.push(Node::Local { depth: 1, slot: i as u16 })).collect();
                let call = a.push(plain_call(head, args.into(), Value::NIL));
                let seq = a.push(Node::Seq(Box::new([set, call])));
                Ok((seq, 0))
            })?;
            Ok((a.push(Node::Let { inits: Box::new([]), body: call, size, rec: true }), 0))
        })?;
        Ok(self.push(Node::Let { inits: inits.into(), body: inner, size: outer_size, rec: false }))
    }

    fn let_star(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "let*: expected bindings"));
        }
        let bs = self.bindings(args[0], "let*")?;
        if bs.is_empty() {
            let (body, size) = self.scoped_body(vec![], &args[1..])?;
            return Ok(self.push(Node::Let { inits: Box::new([]), body, size, rec: false }));
        }
        // One frame per binding keeps shadowing exact.
        let (n, v) = bs[0];
        let init = self.analyze(v)?;
        let rest_bs = &bs[1..];
        let ((body, _), size) = self.with_scope(vec![n], |a| {
            if rest_bs.is_empty() {
                let mut names = vec![];
                a.scan_defines(&args[1..], &mut names);
                if let Some(sc) = &a.scope {
                    sc.names.borrow_mut().extend(names);
                }
                Ok((a.body(&args[1..])?, 0))
            } else {
                Ok((a.let_star_rest(rest_bs, &args[1..])?, 0))
            }
        })?;
        Ok(self.push(Node::Let { inits: Box::new([init]), body, size, rec: false }))
    }

    fn let_star_rest(&mut self, bs: &[(u32, Value)], body: &[Value]) -> Result<NodeId> {
        let (n, v) = bs[0];
        let init = self.analyze(v)?;
        let rest_bs = &bs[1..];
        let ((b, _), size) = self.with_scope(vec![n], |a| {
            if rest_bs.is_empty() {
                let mut names = vec![];
                a.scan_defines(body, &mut names);
                if let Some(sc) = &a.scope {
                    sc.names.borrow_mut().extend(names);
                }
                Ok((a.body(body)?, 0))
            } else {
                Ok((a.let_star_rest(rest_bs, body)?, 0))
            }
        })?;
        Ok(self.push(Node::Let { inits: Box::new([init]), body: b, size, rec: false }))
    }

    fn letrec(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "letrec: expected bindings"));
        }
        let bs = self.bindings(args[0], "letrec")?;
        let names: Vec<u32> = bs.iter().map(|(n, _)| *n).collect();
        let mut all = names.clone();
        self.scan_defines(&args[1..], &mut all);
        let ((inits, body), size) = self.with_scope(all, |a| {
            let mut inits = Vec::new();
            for (n, v) in &bs {
                let items = a.items(*v).unwrap_or_default();
                if items.len() >= 2 && a.special(items[0]) == Some(Sf::Fn) && (a.items(items[1]).is_some() || items[1].is_nil()) {
                    let code = a.lambda(items[1], &items[2..], Some(a.m.rt.syms.name_rc(*n)), "fn")?;
                    inits.push(a.push(Node::Lambda(code)));
                } else {
                    inits.push(a.analyze(*v)?);
                }
            }
            let body = a.body(&args[1..])?;
            Ok((inits, body))
        })?;
        Ok(self.push(Node::Let { inits: inits.into(), body, size, rec: true }))
    }

    fn cond(&mut self, args: &[Value]) -> Result<NodeId> {
        let else_sym = self.sym("else");
        let arrow = self.sym("=>");
        let clause_items: Vec<Option<Vec<Value>>> = args.iter().map(|a| self.items(*a)).collect();
        let all_lists = !args.is_empty() && clause_items.iter().all(|c| c.as_ref().is_some_and(|v| !v.is_empty()));
        let scheme = all_lists
            && (clause_items.iter().all(|c| c.as_ref().is_some_and(|v| v.len() == 2))
                || clause_items.last().and_then(|c| c.as_ref()).and_then(|v| v.first()).is_some_and(|h| *h == else_sym)
                || clause_items.iter().any(|c| c.as_ref().is_some_and(|v| v.len() == 3 && v[1] == arrow)));
        if scheme {
            let clauses: Vec<Vec<Value>> = clause_items.into_iter().flatten().collect();
            self.scheme_cond(&clauses, else_sym, arrow)
        } else {
            if !args.len().is_multiple_of(2) {
                return Err(err_at(self.span, "cond: odd number of forms (expected test/expression pairs)"));
            }
            self.clojure_cond(args)
        }
    }

    fn scheme_cond(&mut self, clauses: &[Vec<Value>], else_sym: Value, arrow: Value) -> Result<NodeId> {
        let Some(c) = clauses.first() else { return Ok(self.konst(Value::NIL)) };
        let kw_else = self.m.rt.keyword("else");
        if c[0] == else_sym || c[0] == kw_else {
            return self.body(&c[1..]);
        }
        let test = self.analyze(c[0])?;
        if c.len() == 1 {
            // (cond (x) ...) returns x when truthy.
            let rest = self.scheme_cond(&clauses[1..], else_sym, arrow)?;
            return Ok(self.push(Node::Or(Box::new([test, rest]))));
        }
        if c.len() == 3 && c[1] == arrow {
            // (test => f): (let ((t test)) (if t (f t) REST)).
            let t = self.m.rt.syms.intern("%cond-value");
            let f = c[2];
            let ((body2, _), size2) = self.with_scope(vec![t], |a| {
                let tv = a.push(Node::Local { depth: 0, slot: 0 });
                let fnode = a.analyze(f)?;
                let tv2 = a.push(Node::Local { depth: 0, slot: 0 });
                let call = a.push(plain_call(fnode, Box::new([tv2]), Value::NIL));
                let rest_in = a.scheme_cond(&clauses[1..], else_sym, arrow)?;
                Ok((a.push(Node::If { test: tv, then: call, els: rest_in }), 0))
            })?;
            return Ok(self.push(Node::Let { inits: Box::new([test]), body: body2, size: size2, rec: false }));
        }
        let then = self.body(&c[1..])?;
        let els = self.scheme_cond(&clauses[1..], else_sym, arrow)?;
        Ok(self.push(Node::If { test, then, els }))
    }

    fn clojure_cond(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Ok(self.konst(Value::NIL));
        }
        let else_kw = self.m.rt.keyword("else");
        let else_sym = self.sym("else");
        if args[0] == else_kw || args[0] == else_sym {
            return self.analyze(args[1]);
        }
        let test = self.analyze(args[0])?;
        let then = self.analyze(args[1])?;
        let els = self.clojure_cond(&args[2..])?;
        Ok(self.push(Node::If { test, then, els }))
    }

    fn case(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "case: expected a key"));
        }
        let key = self.analyze(args[0])?;
        let else_sym = self.sym("else");
        let else_kw = self.m.rt.keyword("else");
        let mut clauses = Vec::new();
        let mut els = None;
        for c in &args[1..] {
            let parts = self.items(*c).ok_or_else(|| err_at(self.span, "case: each clause must be a list"))?;
            if parts.is_empty() {
                return Err(err_at(self.span, "case: empty clause"));
            }
            if parts[0] == else_sym || parts[0] == else_kw {
                els = Some(self.body(&parts[1..])?);
                continue;
            }
            let datums = match self.items(parts[0]) {
                Some(ds) => ds,
                None => vec![parts[0]],
            };
            // Keywords in datum lists compare as their names.
            let datums: Vec<Value> = datums
                .into_iter()
                .map(|d| match d.as_keyword() {
                    Some(k) => {
                        let s = self.m.rt.syms.name_rc(k);
                        self.m.rt.str_rc(s)
                    }
                    None => d,
                })
                .collect();
            for d in &datums {
                if d.is_heap() {
                    self.consts.push(*d);
                    self.m.analysis_roots.push(*d);
                }
            }
            let body = self.body(&parts[1..])?;
            clauses.push((datums, body));
        }
        Ok(self.push(Node::Case { key, clauses: clauses.into(), els }))
    }

    fn do_form(&mut self, args: &[Value]) -> Result<NodeId> {
        // R7RS loop shape: (do ((var init step)...) (test result...) body...)
        let is_loop = args.len() >= 2
            && (self.items(args[0]).is_some_and(|specs| {
                specs.iter().all(|s| self.items(*s).is_some_and(|p| !p.is_empty() && p.len() <= 3 && p[0].as_symbol().is_some()))
            }))
            && self.items(args[1]).is_some_and(|t| !t.is_empty());
        if !is_loop {
            return self.body(args);
        }
        let specs = self.items(args[0]).unwrap_or_default();
        let test_clause = self.items(args[1]).unwrap_or_default();
        let loop_sym = self.m.rt.symbol("%do-loop");
        let (if_s, begin_s, fn_s, letrec_s) = (self.sym("%if"), self.sym("%begin"), self.sym("%fn"), self.sym("%letrec"));
        let mut vars = Vec::new();
        let mut inits = Vec::new();
        let mut steps = Vec::new();
        for s in &specs {
            let p = self.items(*s).unwrap_or_default();
            vars.push(p[0]);
            inits.push(p.get(1).copied().unwrap_or(Value::NIL));
            steps.push(p.get(2).copied().unwrap_or(p[0]));
        }
        let rt = &mut self.m.rt;
        let mut recur = vec![loop_sym];
        recur.extend(steps);
        let recur = rt.list(recur);
        let mut body_forms = vec![begin_s];
        body_forms.extend_from_slice(&args[2..]);
        body_forms.push(recur);
        let body = rt.list(body_forms);
        let mut result = vec![begin_s];
        result.extend_from_slice(&test_clause[1..]);
        let result = rt.list(result);
        let iff = rt.list(vec![if_s, test_clause[0], result, body]);
        let params = rt.list(vars);
        let lam = rt.list(vec![fn_s, params, iff]);
        let binding = rt.list(vec![loop_sym, lam]);
        let bindings = rt.list(vec![binding]);
        let mut call = vec![loop_sym];
        call.extend(inits);
        let call = rt.list(call);
        let form = rt.list(vec![letrec_s, bindings, call]);
        self.m.analysis_roots.push(form);
        self.analyze(form)
    }

    fn quasi(&mut self, x: Value, depth: u32) -> Result<NodeId> {
        let Some(items) = self.items(x) else {
            if let Some(Obj::Dict(d)) = self.m.rt.heap.get(x) {
                let pairs: Vec<(Rc<str>, Value)> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
                let mut keys = Vec::new();
                let mut vals = Vec::new();
                for (k, v) in pairs {
                    keys.push(k);
                    vals.push(self.quasi(v, depth)?);
                }
                return Ok(self.push(Node::Dict { keys: keys.into(), vals: vals.into() }));
            }
            return Ok(self.konst(x));
        };
        let unquote = self.sym("unquote");
        let splice = self.sym("splice-unquote");
        let splice2 = self.sym("unquote-splicing");
        let qq = self.sym("quasiquote");
        if items.len() == 2 && items[0] == unquote {
            if depth == 1 {
                return self.analyze(items[1]);
            }
            let inner = self.quasi(items[1], depth - 1)?;
            let h = self.konst(unquote);
            return Ok(self.push(Node::QList(Box::new([(h, false), (inner, false)]))));
        }
        if items.len() == 2 && items[0] == qq {
            let inner = self.quasi(items[1], depth + 1)?;
            let h = self.konst(qq);
            return Ok(self.push(Node::QList(Box::new([(h, false), (inner, false)]))));
        }
        let mut parts = Vec::new();
        for it in items {
            if let Some(sub) = self.items(it) {
                if sub.len() == 2 && (sub[0] == splice || sub[0] == splice2) {
                    if depth == 1 {
                        parts.push((self.analyze(sub[1])?, true));
                    } else {
                        let inner = self.quasi(sub[1], depth - 1)?;
                        let h = self.konst(sub[0]);
                        parts.push((self.push(Node::QList(Box::new([(h, false), (inner, false)]))), false));
                    }
                    continue;
                }
            }
            parts.push((self.quasi(it, depth)?, false));
        }
        Ok(self.push(Node::QList(parts.into())))
    }

    fn guard(&mut self, args: &[Value]) -> Result<NodeId> {
        if args.is_empty() {
            return Err(err_at(self.span, "guard: expected (var clause...)"));
        }
        let spec = self.items(args[0]).ok_or_else(|| err_at(self.span, "guard: expected (var clause...)"))?;
        let Some(&var) = spec.first() else {
            return Err(err_at(self.span, "guard: expected (var clause...)"));
        };
        let var = self.expect_sym(var, "guard")?;
        let body = self.body(&args[1..])?;
        let else_sym = self.sym("else");
        let arrow = self.sym("=>");
        let mut clauses: Vec<Vec<Value>> = Vec::new();
        for c in &spec[1..] {
            match self.items(*c) {
                Some(parts) if !parts.is_empty() => clauses.push(parts),
                _ => return Err(err_at(self.span, format!("guard: each clause must be (test body...), got {}", self.name_of(*c)))),
            }
        }
        let ((handler, _), _size) = self.with_scope(vec![var], |a| {
            let has_else = clauses.last().is_some_and(|c| c.first() == Some(&else_sym));
            let h = if has_else {
                a.scheme_cond(&clauses, else_sym, arrow)?
            } else {
                let mut cl = clauses.clone();
                let reraise = a.sym("%reraise");
                let v = Value::symbol(var);
                let rr = a.m.rt.list(vec![reraise, v]);
                a.m.analysis_roots.push(rr);
                cl.push(vec![else_sym, rr]);
                a.scheme_cond(&cl, else_sym, arrow)?
            };
            Ok((h, 0))
        })?;
        Ok(self.push(Node::Guard { body, handler }))
    }

    fn match_clauses(&mut self, subject: NodeId, clauses: &[Value], _error_if_none: bool) -> Result<NodeId> {
        let mut out = Vec::new();
        for c in clauses {
            let parts = self.items(*c).ok_or_else(|| err_at(self.span, "match: each clause must be (pattern body...)"))?;
            if parts.is_empty() {
                return Err(err_at(self.span, "match: empty clause"));
            }
            let mut names = Vec::new();
            let pat = self.pattern(parts[0], &mut names)?;
            let body_forms = &parts[1..];
            let ((body, _), size) = self.with_scope(names, |a| {
                let mut defs = vec![];
                a.scan_defines(body_forms, &mut defs);
                if let Some(sc) = &a.scope {
                    sc.names.borrow_mut().extend(defs);
                }
                Ok((a.body(body_forms)?, 0))
            })?;
            out.push(MatchClause { pat, body, size });
        }
        Ok(self.push(Node::Match { subject, clauses: out.into() }))
    }

    fn pattern(&mut self, p: Value, names: &mut Vec<u32>) -> Result<Pat> {
        if let Some(s) = p.as_symbol() {
            let name = self.m.rt.syms.name(s).to_string();
            if name == "_" {
                return Ok(Pat::Wild);
            }
            if let Some(pos) = names.iter().position(|n| *n == s) {
                return Ok(Pat::Bind(pos as u16));
            }
            names.push(s);
            return Ok(Pat::Bind((names.len() - 1) as u16));
        }
        if let Some(k) = p.as_keyword() {
            let s = self.m.rt.syms.name_rc(k);
            let v = self.m.rt.str_rc(s);
            self.consts.push(v);
            self.m.analysis_roots.push(v);
            return Ok(Pat::Lit(v));
        }
        if let Some(Obj::Dict(d)) = self.m.rt.heap.get(p) {
            let pairs: Vec<(Rc<str>, Value)> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
            let mut out = Vec::new();
            for (k, v) in pairs {
                out.push((k, self.pattern(v, names)?));
            }
            return Ok(Pat::Dict(out));
        }
        let Some(items) = self.items(p) else {
            if p.is_heap() {
                self.consts.push(p);
                self.m.analysis_roots.push(p);
            }
            return Ok(Pat::Lit(p));
        };
        if items.len() == 2 && (items[0] == self.sym("quote") || items[0] == self.sym("%quote")) {
            if items[1].is_heap() {
                self.consts.push(items[1]);
                self.m.analysis_roots.push(items[1]);
            }
            return Ok(Pat::Lit(items[1]));
        }
        if let Some(h) = items.first().and_then(|h| h.as_symbol()) {
            let name = self.m.rt.syms.name_rc(h);
            if name.chars().next().is_some_and(|c| c.is_uppercase()) {
                let mut fields = Vec::new();
                for f in &items[1..] {
                    fields.push(self.pattern(*f, names)?);
                }
                return Ok(Pat::Ctor { name, fields });
            }
            if &*name == "list" && self.lookup(h).is_none() {
                return self.list_pattern(&items[1..], names);
            }
        }
        self.list_pattern(&items, names)
    }

    fn list_pattern(&mut self, items: &[Value], names: &mut Vec<u32>) -> Result<Pat> {
        let amp_rest = self.sym("&rest");
        let amp = self.sym("&");
        let mut pats = Vec::new();
        let mut rest = None;
        let mut i = 0;
        while i < items.len() {
            if items[i] == amp_rest || items[i] == amp {
                let r = items.get(i + 1).copied().ok_or_else(|| err_at(self.span, "match: &rest needs a pattern"))?;
                rest = Some(Box::new(self.pattern(r, names)?));
                break;
            }
            pats.push(self.pattern(items[i], names)?);
            i += 1;
        }
        Ok(Pat::List { items: pats, rest })
    }

    fn define_record_type(&mut self, args: &[Value]) -> Result<NodeId> {
        // (define-record-type <point> (make-point x y) point? (x point-x [set-point-x!]) ...)
        if args.len() < 2 {
            return Err(err_at(self.span, "define-record-type: expected type name, constructor and fields"));
        }
        let type_sym = self.expect_sym(args[0], "define-record-type")?;
        let raw = self.m.rt.syms.name(type_sym).to_string();
        let tname = raw.trim_start_matches('<').trim_end_matches('>').to_string();
        let field_specs: Vec<Vec<Value>> = args.get(3..).map(|fs| fs.iter().map(|f| self.items(*f).unwrap_or_else(|| vec![*f])).collect()).unwrap_or_default();
        let field_names: Vec<Value> = field_specs.iter().filter_map(|f| f.first().copied()).collect();
        let ctor = self.items(args[1]);
        let (define_s, fn_s, quote_s, begin_s) = (self.sym("%define"), self.sym("%fn"), self.sym("%quote"), self.sym("%begin"));
        let (mk_type, mk_new, is_s, get_s, set_s) = (
            self.sym("%record-type"),
            self.sym("%record-new"),
            self.sym("%record-is?"),
            self.sym("%record-get"),
            self.sym("%record-set!"),
        );
        let rt = &mut self.m.rt;
        let mut forms = vec![begin_s];
        let tname_v = rt.string(tname);
        let fields_list = rt.list(field_names.clone());
        let qfields = rt.list(vec![quote_s, fields_list]);
        let ctor_name = match &ctor {
            Some(c) if !c.is_empty() => c[0],
            _ => args[1],
        };
        let ctor_str = rt.str(&sx_core::print::display(rt, ctor_name));
        let mk = rt.list(vec![mk_type, tname_v, qfields, ctor_str]);
        forms.push(rt.list(vec![define_s, args[0], mk]));
        if let Some(c) = &ctor {
            if let Some(&cname) = c.first() {
                // Constructor arguments map to fields by name.
                let params: Vec<Value> = c[1..].to_vec();
                let mut call = vec![mk_new, args[0]];
                for f in &field_names {
                    call.push(if params.contains(f) { *f } else { Value::NIL });
                }
                let call = rt.list(call);
                let ps = rt.list(params);
                let lam = rt.list(vec![fn_s, ps, call]);
                forms.push(rt.list(vec![define_s, cname, lam]));
            }
        } else if args[1].as_symbol().is_some() {
            let ps = rt.list(field_names.clone());
            let mut call = vec![mk_new, args[0]];
            call.extend(field_names.iter().copied());
            let call = rt.list(call);
            let lam = rt.list(vec![fn_s, ps, call]);
            forms.push(rt.list(vec![define_s, args[1], lam]));
        }
        let v = rt.symbol("v");
        let x = rt.symbol("x");
        if let Some(&pred) = args.get(2) {
            if pred.as_symbol().is_some() {
                let ps = rt.list(vec![v]);
                let call = rt.list(vec![is_s, args[0], v]);
                let lam = rt.list(vec![fn_s, ps, call]);
                forms.push(rt.list(vec![define_s, pred, lam]));
            }
        }
        for (i, spec) in field_specs.iter().enumerate() {
            let idx = Value::fixnum(i as i64).unwrap_or(Value::NIL);
            if let Some(&acc) = spec.get(1) {
                let ps = rt.list(vec![v]);
                let acc_name = rt.str(&sx_core::print::display(rt, acc));
                let call = rt.list(vec![get_s, args[0], v, idx, acc_name]);
                let lam = rt.list(vec![fn_s, ps, call]);
                forms.push(rt.list(vec![define_s, acc, lam]));
            }
            if let Some(&m) = spec.get(2) {
                let ps = rt.list(vec![v, x]);
                let m_name = rt.str(&sx_core::print::display(rt, m));
                let call = rt.list(vec![set_s, args[0], v, idx, x, m_name]);
                let lam = rt.list(vec![fn_s, ps, call]);
                forms.push(rt.list(vec![define_s, m, lam]));
            }
        }
        let form = rt.list(forms);
        self.m.analysis_roots.push(form);
        self.analyze(form)
    }

    fn define_type(&mut self, args: &[Value]) -> Result<NodeId> {
        // (define-type Maybe (Just value) (Nothing)) or bare `Nothing`.
        if args.is_empty() {
            return Err(err_at(self.span, "define-type: expected a type name and constructors"));
        }
        let tsym = self.expect_sym(args[0], "define-type")?;
        let tname = self.m.rt.syms.name(tsym).trim_start_matches('<').trim_end_matches('>').to_string();
        let (define_s, fn_s, quote_s, begin_s) = (self.sym("%define"), self.sym("%fn"), self.sym("%quote"), self.sym("%begin"));
        let (mk_type, mk_new, is_s, get_s) = (self.sym("%record-type"), self.sym("%record-new"), self.sym("%record-is?"), self.sym("%record-get"));
        let mut forms = vec![begin_s];
        let v = self.sym("v");
        for variant in &args[1..] {
            let parts = match self.items(*variant) {
                Some(p) if !p.is_empty() => p,
                _ if variant.as_symbol().is_some() => vec![*variant],
                _ => return Err(err_at(self.span, "define-type: each constructor must be (Name field...) or Name")),
            };
            let cname = self.expect_sym(parts[0], "define-type")?;
            let cname_s = self.m.rt.syms.name(cname).to_string();
            let fields = parts[1..].to_vec();
            for f in &fields {
                self.expect_sym(*f, "define-type")?;
            }
            let rt = &mut self.m.rt;
            let rtd_sym = rt.symbol(&format!("%adt-{tname}-{cname_s}"));
            let tname_v = rt.str(&tname);
            let fl = rt.list(fields.clone());
            let qfields = rt.list(vec![quote_s, fl]);
            let ctor_v = rt.str(&cname_s);
            let mk = rt.list(vec![mk_type, tname_v, qfields, ctor_v, Value::TRUE]);
            forms.push(rt.list(vec![define_s, rtd_sym, mk]));
            // Constructor.
            let mut call = vec![mk_new, rtd_sym];
            call.extend(fields.iter().copied());
            let call = rt.list(call);
            let mut sig = vec![parts[0]];
            sig.extend(fields.iter().copied());
            let sig = rt.list(sig);
            forms.push(rt.list(vec![define_s, sig, call]));
            // Predicate.
            let pred = rt.symbol(&format!("{cname_s}?"));
            let ps = rt.list(vec![v]);
            let test = rt.list(vec![is_s, rtd_sym, v]);
            let lam = rt.list(vec![fn_s, ps, test]);
            forms.push(rt.list(vec![define_s, pred, lam]));
            // Accessors.
            for (i, f) in fields.iter().enumerate() {
                let fname = sx_core::print::display(rt, *f);
                let acc_name = format!("{cname_s}-{fname}");
                let acc = rt.symbol(&acc_name);
                let acc_str = rt.str(&acc_name);
                let idx = Value::fixnum(i as i64).unwrap_or(Value::NIL);
                let ps = rt.list(vec![v]);
                let get = rt.list(vec![get_s, rtd_sym, v, idx, acc_str]);
                let lam = rt.list(vec![fn_s, ps, get]);
                forms.push(rt.list(vec![define_s, acc, lam]));
            }
        }
        let form = self.m.rt.list(forms);
        self.m.analysis_roots.push(form);
        self.analyze(form)
    }

    fn define_protocol(&mut self, args: &[Value]) -> Result<NodeId> {
        // (define-protocol Name (method self args...) ...)
        if args.is_empty() {
            return Err(err_at(self.span, "define-protocol: expected a name"));
        }
        let pname = self.m.rt.str(&sx_core::print::display(&self.m.rt, args[0]));
        let (define_s, fn_s, begin_s, quote_s) = (self.sym("%define"), self.sym("%fn"), self.sym("%begin"), self.sym("%quote"));
        let (reg, dispatch, apply_s) = (self.sym("%protocol-define"), self.sym("%protocol-method"), self.sym("apply"));
        let rest_sym = self.sym("&rest");
        let args_sym = self.sym("%args");
        let self_sym = self.sym("%self");
        let mut forms = vec![begin_s];
        let mut method_names = Vec::new();
        for m in &args[1..] {
            let sig = self.items(*m).unwrap_or_default();
            let Some(&mname) = sig.first() else { continue };
            self.expect_sym(mname, "define-protocol")?;
            method_names.push(mname);
            let rt = &mut self.m.rt;
            let mstr = rt.str(&sx_core::print::display(rt, mname));
            let ps = rt.list(vec![self_sym, rest_sym, args_sym]);
            let look = rt.list(vec![dispatch, pname, mstr, self_sym]);
            let call = rt.list(vec![apply_s, look, self_sym, args_sym]);
            let lam = rt.list(vec![fn_s, ps, call]);
            forms.push(rt.list(vec![define_s, mname, lam]));
        }
        let rt = &mut self.m.rt;
        let ml = rt.list(method_names);
        let qml = rt.list(vec![quote_s, ml]);
        forms.push(rt.list(vec![reg, pname, qml]));
        let form = rt.list(forms);
        self.m.analysis_roots.push(form);
        self.analyze(form)
    }

    fn implement(&mut self, args: &[Value]) -> Result<NodeId> {
        // (implement Name <type> (method self body...) ...)
        if args.len() < 2 {
            return Err(err_at(self.span, "implement: expected protocol name and type"));
        }
        let pname = self.m.rt.str(&sx_core::print::display(&self.m.rt, args[0]));
        let traw = if self.m.rt.as_str(args[1]).is_some() { sx_core::print::display(&self.m.rt, args[1]) } else { sx_core::print::inspect(&self.m.rt, args[1]) };
        let tname = self.m.rt.str(traw.trim_start_matches('<').trim_end_matches('>'));
        let (fn_s, begin_s) = (self.sym("%fn"), self.sym("%begin"));
        let reg = self.sym("%protocol-implement!");
        let mut forms = vec![begin_s];
        for m in &args[2..] {
            let parts = self.items(*m).unwrap_or_default();
            if parts.len() < 2 {
                return Err(err_at(self.span, "implement: each method must be (name params body...)"));
            }
            let rt = &mut self.m.rt;
            let mstr = rt.str(&sx_core::print::display(rt, parts[0]));
            // (method self args... body) or (method (self args...) body...)
            let lam = if rt.as_list(parts[1]).is_some() {
                let mut l = vec![fn_s, parts[1]];
                l.extend_from_slice(&parts[2..]);
                rt.list(l)
            } else {
                // Parameters given flat up to the first non-symbol.
                let n = parts[1..].iter().take_while(|p| p.as_symbol().is_some()).count();
                let n = if n == parts.len() - 1 { n.saturating_sub(1) } else { n };
                let ps = rt.list(parts[1..1 + n].to_vec());
                let mut l = vec![fn_s, ps];
                l.extend_from_slice(&parts[1 + n..]);
                rt.list(l)
            };
            forms.push(rt.list(vec![reg, pname, tname, mstr, lam]));
        }
        let form = self.m.rt.list(forms);
        self.m.analysis_roots.push(form);
        self.analyze(form)
    }
}

/// Whether the interpreter's simple evaluation (`Machine::eval_simple`) can
/// evaluate a node without frames; for other nodes it always falls back.
fn may_be_simple(node: &Node) -> bool {
    matches!(node, Node::Const(_) | Node::Local { .. } | Node::Local0 { .. } | Node::Global { .. } | Node::Call { prim: Some(_), .. })
}

/// A call the analyser builds itself, of arguments that are variables:
/// no primitive head to apply directly, nothing known about its operands.
fn plain_call(head: NodeId, args: Box<[NodeId]>, form: Value) -> Node {
    Node::Call { head, args, prim: None, direct: false, simple_args: true, pure: false, op: None, leaves: [Leaf::NONE; 2], inline: u64::MAX, form, scope: None }
}
