//! Primitives that need the machine (their callbacks run through it, or they
//! inspect the continuation), and record support.

use crate::code::Code;
use crate::frames::{Frame, HoOp};
use crate::machine::{Ctl, Machine, Protocol, ResumePoint};
use hashbrown::HashMap;
use std::rc::Rc;
use sx_core::error::{type_error, Error, Result};
use sx_core::heap::{ExternObj, Obj, Shape, Tracer};
use sx_core::prims::PrimDef;
use sx_core::{Rt, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MOp {
    Apply,
    Ho(HoOp),
    CallCC,
    DynamicWind,
    TryCall,
    Eval,
    RaiseContinuable,
    Raise,
    WithExceptionHandler,
    Context,
    Emit,
    Emitted,
    ProtocolDefine,
    ProtocolImplement,
    ProtocolMethod,
    Satisfies,
    RegisterReaderMacro,
    IsContinuation,
    IsCallable,
    SxParse,
    MakeCoroutine,
    CoResume,
    CoYield,
    CoStatus,
}

const V: Option<usize> = None;

pub(crate) fn machine_primitives() -> Vec<(&'static str, usize, Option<usize>, MOp)> {
    use MOp::*;
    vec![
        ("apply", 1, V, Apply),
        ("map", 2, V, Ho(HoOp::Map)),
        ("map-indexed", 2, Some(2), Ho(HoOp::MapIndexed)),
        ("filter", 2, Some(2), Ho(HoOp::Filter)),
        ("reduce", 2, Some(3), Ho(HoOp::Reduce)),
        ("some", 2, Some(2), Ho(HoOp::Some)),
        ("every?", 2, Some(2), Ho(HoOp::Every)),
        ("for-each", 2, V, Ho(HoOp::ForEach)),
        ("call/cc", 1, Some(1), CallCC),
        ("call-with-current-continuation", 1, Some(1), CallCC),
        ("dynamic-wind", 3, Some(3), DynamicWind),
        ("try-call", 1, Some(1), TryCall),
        ("eval", 1, Some(2), Eval),
        ("raise-continuable", 1, Some(1), RaiseContinuable),
        ("%reraise", 1, Some(1), Raise),
        ("with-exception-handler", 2, Some(2), WithExceptionHandler),
        ("context", 1, Some(2), Context),
        ("emit!", 2, Some(2), Emit),
        ("emitted", 1, Some(1), Emitted),
        ("%protocol-define", 2, Some(2), ProtocolDefine),
        ("%protocol-implement!", 4, Some(4), ProtocolImplement),
        ("%protocol-method", 3, Some(3), ProtocolMethod),
        ("satisfies?", 2, Some(2), Satisfies),
        ("register-reader-macro!", 2, Some(2), RegisterReaderMacro),
        ("continuation?", 1, Some(1), IsContinuation),
        ("callable?", 1, Some(1), IsCallable),
        ("procedure?", 1, Some(1), IsCallable),
        ("sx-parse", 1, Some(1), SxParse),
        ("make-coroutine", 1, Some(1), MakeCoroutine),
        ("coroutine-resume", 1, None, CoResume),
        ("coroutine-yield", 0, Some(1), CoYield),
        ("coroutine-status", 1, Some(1), CoStatus),
    ]
}

// ---- coroutines ----

pub enum CoState {
    /// Not started: the function to call on the first resume.
    Ready(Value),
    /// Stopped at a yield: the rest of its computation.
    Suspended(Value),
    Running,
    Dead,
}

pub struct Coroutine {
    pub state: CoState,
}

impl ExternObj for Coroutine {
    fn trace(&self, t: &mut Tracer) {
        match self.state {
            CoState::Ready(v) | CoState::Suspended(v) => t.mark(v),
            CoState::Running | CoState::Dead => {}
        }
    }
    fn type_name(&self) -> &str {
        "coroutine"
    }
    sx_core::extern_any!();
}

fn coroutine_mut(rt: &mut Rt, v: Value) -> Option<&mut Coroutine> {
    match rt.heap.get_mut(v) {
        Some(Obj::Extern(e)) => e.as_any_mut().downcast_mut::<Coroutine>(),
        _ => None,
    }
}

pub(crate) fn set_coroutine_dead(rt: &mut Rt, co: Value) {
    if let Some(c) = coroutine_mut(rt, co) {
        c.state = CoState::Dead;
    }
}

fn coroutine_status(rt: &Rt, v: Value) -> Option<&'static str> {
    match rt.heap.get(v) {
        Some(Obj::Extern(e)) => e.as_any().downcast_ref::<Coroutine>().map(|c| match c.state {
            CoState::Ready(_) => "ready",
            CoState::Suspended(_) => "suspended",
            CoState::Running => "running",
            CoState::Dead => "dead",
        }),
        _ => None,
    }
}

// ---- records ----

pub struct RecordType {
    pub name: Rc<str>,
    pub fields: Vec<Rc<str>>,
    pub ctor: Rc<str>,
    /// A variant of a `define-type` ADT (errors name the constructor).
    pub adt: bool,
}

impl ExternObj for RecordType {
    fn trace(&self, _t: &mut Tracer) {}
    fn type_name(&self) -> &str {
        "record-type"
    }
    sx_core::extern_any!();
    fn shape(&self) -> Shape {
        Shape::Text(format!("<record-type {}>", self.name))
    }
}

pub struct Record {
    pub rtd: Value,
    pub type_name: Rc<str>,
    pub ctor: Rc<str>,
    pub fields: Vec<Value>,
    pub adt: bool,
}

impl ExternObj for Record {
    fn trace(&self, t: &mut Tracer) {
        t.mark(self.rtd);
        t.mark_all(&self.fields);
    }
    fn type_name(&self) -> &str {
        &self.type_name
    }
    sx_core::extern_any!();
    fn shape(&self) -> Shape {
        Shape::Ctor(self.ctor.to_string(), self.fields.clone())
    }
}

/// The constructor name and field values of a record value.
pub fn record_parts(rt: &Rt, v: Value) -> Option<(Rc<str>, Vec<Value>)> {
    match rt.heap.get(v) {
        Some(Obj::Extern(e)) => e.as_any().downcast_ref::<Record>().map(|r| (r.ctor.clone(), r.fields.clone())),
        _ => None,
    }
}

fn rtd_of(rt: &Rt, v: Value) -> Option<&RecordType> {
    match rt.heap.get(v) {
        Some(Obj::Extern(e)) => e.as_any().downcast_ref::<RecordType>(),
        _ => None,
    }
}

fn record_of(rt: &Rt, rtd: Value, v: Value) -> Option<&Record> {
    match rt.heap.get(v) {
        Some(Obj::Extern(e)) => e.as_any().downcast_ref::<Record>().filter(|r| r.rtd == rtd),
        _ => None,
    }
}

pub(crate) fn native_extras() -> Vec<PrimDef> {
    vec![
        PrimDef { name: "%record-type", min: 3, max: Some(4), pure: false, f: p_record_type },
        PrimDef { name: "%record-new", min: 1, max: None, pure: false, f: p_record_new },
        PrimDef { name: "%record-is?", min: 2, max: Some(2), pure: true, f: |rt, a| Ok(Value::bool(record_of(rt, a[0], a[1]).is_some())) },
        PrimDef { name: "%record-get", min: 4, max: Some(4), pure: true, f: p_record_get },
        PrimDef { name: "%record-set!", min: 5, max: Some(5), pure: false, f: p_record_set },
        PrimDef { name: "record?", min: 1, max: Some(1), pure: true, f: |rt, a| Ok(Value::bool(record_parts(rt, a[0]).is_some())) },
        PrimDef { name: "lambda?", min: 1, max: Some(1), pure: true, f: |rt, a| Ok(Value::bool(matches!(rt.heap.get(a[0]), Some(Obj::Lambda(_))))) },
        PrimDef { name: "macro?", min: 1, max: Some(1), pure: true, f: |rt, a| Ok(Value::bool(matches!(rt.heap.get(a[0]), Some(Obj::Macro(_))))) },
        PrimDef { name: "coroutine?", min: 1, max: Some(1), pure: true, f: |rt, a| Ok(Value::bool(coroutine_status(rt, a[0]).is_some())) },
        PrimDef { name: "coroutine-alive?", min: 1, max: Some(1), pure: true, f: |rt, a| match coroutine_status(rt, a[0]) { Some(s) => Ok(Value::bool(s != "dead")), None => Err(type_error("coroutine-alive?", "coroutine", rt.type_name(a[0]))) } },
        PrimDef { name: "%always-true", min: 0, max: None, pure: true, f: |_rt, _a| Ok(Value::TRUE) },
        PrimDef { name: "primitive?", min: 1, max: Some(1), pure: true, f: |_rt, a| Ok(Value::bool(a[0].as_prim().is_some())) },
    ]
}

/// What an accessor expects: the record type, or the constructor of an ADT variant.
fn wanted(rt: &Rt, rtd: Value) -> String {
    match rtd_of(rt, rtd) {
        Some(t) if t.adt => t.ctor.to_string(),
        Some(t) => t.name.to_string(),
        None => "record".into(),
    }
}

/// What an accessor got: an ADT value's constructor, else its type.
fn got(rt: &Rt, v: Value) -> String {
    match rt.heap.get(v) {
        Some(Obj::Extern(e)) => match e.as_any().downcast_ref::<Record>() {
            Some(r) if r.adt => r.ctor.to_string(),
            _ => e.type_name().to_string(),
        },
        _ => rt.type_of(v),
    }
}

fn p_record_type(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let name = rt.expect_str("%record-type", a[0])?;
    let fields = rt.expect_list("%record-type", a[1])?.into_iter().map(|f| rt.dict_key(f)).collect();
    let ctor = rt.expect_str("%record-type", a[2])?;
    let adt = a.get(3).is_some_and(|v| v.truthy());
    Ok(rt.heap.alloc(Obj::Extern(Box::new(RecordType { name, fields, ctor, adt }))))
}

fn p_record_new(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let (type_name, ctor, adt) = match rtd_of(rt, a[0]) {
        Some(t) => (t.name.clone(), t.ctor.clone(), t.adt),
        None => return Err(type_error("%record-new", "record-type", rt.type_name(a[0]))),
    };
    let rec = Record { rtd: a[0], type_name, ctor, fields: a[1..].to_vec(), adt };
    Ok(rt.heap.alloc(Obj::Extern(Box::new(rec))))
}

fn p_record_get(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let i = rt.expect_int("%record-get", a[2])? as usize;
    match record_of(rt, a[0], a[1]) {
        Some(r) => Ok(r.fields.get(i).copied().unwrap_or(Value::NIL)),
        None => {
            let name = sx_core::print::display(rt, a[3]);
            Err(Error::Msg(format!("{name}: expected {}, got {}", wanted(rt, a[0]), got(rt, a[1]))))
        }
    }
}

fn p_record_set(rt: &mut Rt, a: &[Value]) -> Result<Value> {
    let i = rt.expect_int("%record-set!", a[2])? as usize;
    if record_of(rt, a[0], a[1]).is_none() {
        let name = sx_core::print::display(rt, a[4]);
        return Err(Error::Msg(format!("{name}: expected {}, got {}", wanted(rt, a[0]), got(rt, a[1]))));
    }
    if let Some(Obj::Extern(e)) = rt.heap.get_mut(a[1]) {
        if let Some(r) = e.as_any_mut().downcast_mut::<Record>() {
            if let Some(slot) = r.fields.get_mut(i) {
                *slot = a[3];
            }
        }
    }
    Ok(a[3])
}

// ---- machine operations ----

impl Machine {
    pub(crate) fn machine_op(&mut self, op: MOp, args: Vec<Value>, code: &mut Rc<Code>, env: &mut Value) -> Result<Ctl> {
        let _ = (&code, &env);
        match op {
            MOp::Apply => {
                let (f, rest) = (args[0], &args[1..]);
                let base = self.vals.len();
                self.vals.push(f);
                if let Some((last, init)) = rest.split_last() {
                    self.vals.extend_from_slice(init);
                    let items = self.rt.expect_list("apply", *last)?;
                    self.vals.extend(items);
                }
                Ok(Ctl::Apply(base))
            }
            MOp::Ho(ho) => self.start_ho(ho, &args),
            MOp::CallCC => {
                if self.jit_barrier_before(|_| false) {
                    return Ok(self.request_deopt(ResumePoint::MachineOp { op, args }));
                }
                let k = self.capture(false)?;
                let base = self.vals.len();
                self.vals.push(args[0]);
                self.vals.push(k);
                Ok(Ctl::Apply(base))
            }
            MOp::DynamicWind => {
                let (before, thunk, after) = (args[0], args[1], args[2]);
                self.analysis_roots.extend([before, thunk, after]);
                let r = self.call_value(before, &[]);
                let n = self.analysis_roots.len();
                self.analysis_roots.truncate(n - 3);
                r?;
                self.wind_counter += 1;
                self.push_frame(Frame::Wind { id: self.wind_counter, before, after });
                let base = self.vals.len();
                self.vals.push(thunk);
                Ok(Ctl::Apply(base))
            }
            MOp::TryCall => {
                self.push_frame(Frame::TryCall);
                let base = self.vals.len();
                self.vals.push(args[0]);
                Ok(Ctl::Apply(base))
            }
            MOp::Eval => {
                let spans = crate::analyze::SpanMap::new();
                let file: Rc<str> = Rc::from("eval");
                let unit = self.analyze_toplevel(args[0], file, &spans)?;
                *env = Value::NIL;
                let root = unit.root;
                *code = unit;
                Ok(Ctl::eval(root))
            }
            MOp::RaiseContinuable => Ok(Ctl::RaiseContinuable(args[0])),
            MOp::Raise => Ok(Ctl::Raise(args[0])),
            MOp::WithExceptionHandler => {
                let t = self.lookup_global("%always-true").unwrap_or(Value::NIL);
                let preds = self.rt.list(vec![t]);
                let handlers = self.rt.list(vec![args[0]]);
                self.push_frame(Frame::Handlers { preds, handlers });
                let base = self.vals.len();
                self.vals.push(args[1]);
                Ok(Ctl::Apply(base))
            }
            MOp::Context => {
                let name = args[0];
                if self.find_scope(name).is_none_or(|i| self.entries[i..].iter().any(|e| matches!(e.frame, Frame::JitBarrier))) && self.jit_barrier_before(|_| false) {
                    return Ok(self.request_deopt(ResumePoint::MachineOp { op, args }));
                }
                match self.find_scope(name) {
                    Some(i) => match &self.entries[i].frame {
                        Frame::Scope { value, .. } => Ok(Ctl::Ret(*value)),
                        _ => Ok(Ctl::Ret(Value::NIL)),
                    },
                    None => Ok(Ctl::Ret(args.get(1).copied().unwrap_or(Value::NIL))),
                }
            }
            MOp::Emit => {
                let name = args[0];
                if self.find_scope(name).is_none_or(|i| self.entries[i..].iter().any(|e| matches!(e.frame, Frame::JitBarrier))) && self.jit_barrier_before(|_| false) {
                    return Ok(self.request_deopt(ResumePoint::MachineOp { op, args }));
                }
                match self.find_scope(name) {
                    Some(i) => {
                        let list = match &self.entries[i].frame {
                            Frame::Scope { emitted, .. } => *emitted,
                            _ => Value::NIL,
                        };
                        if let Some(Obj::List(l)) = self.rt.heap.get_mut(list) {
                            l.push_back(args[1]);
                        }
                        Ok(Ctl::Ret(Value::NIL))
                    }
                    None => Err(Error::Msg(format!("emit!: no scope named {}", sx_core::print::display(&self.rt, name)))),
                }
            }
            MOp::Emitted => {
                let name = args[0];
                if self.find_scope(name).is_none_or(|i| self.entries[i..].iter().any(|e| matches!(e.frame, Frame::JitBarrier))) && self.jit_barrier_before(|_| false) {
                    return Ok(self.request_deopt(ResumePoint::MachineOp { op, args }));
                }
                let list = match self.find_scope(name) {
                    Some(i) => match &self.entries[i].frame {
                        Frame::Scope { emitted, .. } => self.rt.list_items(*emitted).unwrap_or_default(),
                        _ => vec![],
                    },
                    None => vec![],
                };
                Ok(Ctl::Ret(self.rt.list(list)))
            }
            MOp::ProtocolDefine => {
                let name = self.rt.dict_key(args[0]);
                let methods = self.rt.expect_list("define-protocol", args[1])?.into_iter().map(|m| self.rt.dict_key(m)).collect();
                self.protocols.insert(name, Protocol { methods, impls: HashMap::new() });
                Ok(Ctl::Ret(Value::NIL))
            }
            MOp::ProtocolImplement => {
                let pname = self.rt.dict_key(args[0]);
                let tname = self.rt.dict_key(args[1]);
                let mname = self.rt.dict_key(args[2]);
                let Some(p) = self.protocols.get_mut(&pname) else {
                    return Err(Error::Msg(format!("implement: unknown protocol {pname}")));
                };
                if !p.methods.contains(&mname) {
                    return Err(Error::Msg(format!("implement: {mname} is not a method of {pname}")));
                }
                p.impls.entry(tname).or_default().insert(mname, args[3]);
                Ok(Ctl::Ret(Value::NIL))
            }
            MOp::ProtocolMethod => {
                let pname = self.rt.dict_key(args[0]);
                let mname = self.rt.dict_key(args[1]);
                let tname = self.rt.type_of(args[2]);
                let f = self.protocols.get(&pname).and_then(|p| p.impls.get(tname.as_str())).and_then(|i| i.get(&mname)).copied();
                match f {
                    Some(f) => Ok(Ctl::Ret(f)),
                    None => Err(Error::Msg(format!("{mname}: no implementation of {pname} for {tname}"))),
                }
            }
            MOp::Satisfies => {
                let pname = self.rt.dict_key(args[0]);
                let tname = self.rt.type_of(args[1]);
                let ok = self.protocols.get(&pname).is_some_and(|p| p.impls.contains_key(tname.as_str()));
                Ok(Ctl::Ret(Value::bool(ok)))
            }
            MOp::RegisterReaderMacro => {
                let name = self.rt.dict_key(args[0]);
                self.register_reader_macro(&name, args[1]);
                Ok(Ctl::Ret(Value::NIL))
            }
            MOp::SxParse => {
                let src = self.rt.expect_str("sx-parse", args[0])?;
                let forms = sx_syntax::parse(&src).map_err(|d| Error::Msg(format!("sx-parse: {}:{}: {}", d.span.line, d.span.col, d.message)))?;
                let mut spans = crate::analyze::SpanMap::new();
                let base = self.analysis_roots.len();
                for f in &forms {
                    match crate::analyze::datum_to_form(self, f, &mut spans) {
                        Ok(v) => self.analysis_roots.push(v),
                        Err(e) => {
                            self.analysis_roots.truncate(base);
                            return Err(e);
                        }
                    }
                }
                let items = self.analysis_roots.split_off(base);
                Ok(Ctl::Ret(self.rt.list(items)))
            }
            MOp::MakeCoroutine => {
                let f = args[0];
                let callable = f.as_prim().is_some() || matches!(self.rt.heap.get(f), Some(Obj::Lambda(_)));
                if !callable {
                    return Err(type_error("make-coroutine", "function", self.rt.type_name(f)));
                }
                let co = Coroutine { state: CoState::Ready(f) };
                Ok(Ctl::Ret(self.rt.heap.alloc(Obj::Extern(Box::new(co)))))
            }
            MOp::CoStatus => match coroutine_status(&self.rt, args[0]) {
                Some(s) => Ok(Ctl::Ret(self.rt.str(s))),
                None => Err(type_error("coroutine-status", "coroutine", self.rt.type_name(args[0]))),
            },
            MOp::CoResume => {
                let co = args[0];
                let v = args.get(1).copied();
                let extra = args.get(1..).map(|a| a.to_vec()).unwrap_or_default();
                let state = match coroutine_mut(&mut self.rt, co) {
                    Some(c) => std::mem::replace(&mut c.state, CoState::Running),
                    None => return Err(type_error("coroutine-resume", "coroutine", self.rt.type_name(co))),
                };
                match state {
                    CoState::Ready(f) => {
                        self.push_frame(Frame::Coroutine { co });
                        let base = self.vals.len();
                        self.vals.push(f);
                        self.vals.extend(extra);
                        Ok(Ctl::Apply(base))
                    }
                    CoState::Suspended(k) => {
                        let (entries, vals) = match self.rt.heap.get(k) {
                            Some(Obj::Extern(e)) => match e.as_any().downcast_ref::<crate::frames::ContinuationObj>() {
                                Some(c) => (c.entries.clone(), c.vals.clone()),
                                None => return Err(Error::msg("internal: bad coroutine continuation")),
                            },
                            _ => return Err(Error::msg("internal: bad coroutine continuation")),
                        };
                        self.push_frame(Frame::Coroutine { co });
                        self.reinstate(entries, &vals);
                        Ok(Ctl::Ret(v.unwrap_or(Value::NIL)))
                    }
                    CoState::Running => Err(Error::msg("coroutine-resume: coroutine is already running")),
                    CoState::Dead => {
                        set_coroutine_dead(&mut self.rt, co);
                        Err(Error::msg("coroutine-resume: coroutine is dead"))
                    }
                }
            }
            MOp::CoYield => {
                let v = args.first().copied().unwrap_or(Value::NIL);
                let mut idx = self.entries.len();
                let mut found = None;
                while idx > 0 {
                    idx -= 1;
                    match self.entries[idx].frame {
                        Frame::Coroutine { co } => {
                            found = Some((idx, co));
                            break;
                        }
                        Frame::Barrier | Frame::JitBarrier => break,
                        _ => {}
                    }
                }
                let Some((idx, co)) = found else {
                    if self.jit_barrier_before(|_| false) {
                        return Ok(self.request_deopt(ResumePoint::MachineOp { op, args }));
                    }
                    return Err(Error::msg("coroutine-yield: not inside a coroutine"));
                };
                self.analysis_roots.push(v);
                let k = self.capture_above(idx);
                self.analysis_roots.pop();
                if let Some(c) = coroutine_mut(&mut self.rt, co) {
                    c.state = CoState::Suspended(k);
                }
                Ok(Ctl::Ret(v))
            }
            MOp::IsContinuation => {
                let is = matches!(self.rt.heap.get(args[0]), Some(Obj::Extern(e)) if e.as_any().is::<crate::frames::ContinuationObj>());
                Ok(Ctl::Ret(Value::bool(is)))
            }
            MOp::IsCallable => {
                let v = args[0];
                let is = v.as_prim().is_some()
                    || matches!(self.rt.heap.get(v), Some(Obj::Lambda(_)))
                    || matches!(self.rt.heap.get(v), Some(Obj::Extern(e)) if e.as_any().is::<crate::frames::ContinuationObj>());
                Ok(Ctl::Ret(Value::bool(is)))
            }
        }
    }

    fn find_scope(&self, name: Value) -> Option<usize> {
        (0..self.entries.len()).rev().find(|&i| match &self.entries[i].frame {
            Frame::Scope { name: n, .. } => sx_core::prims::values_equal(&self.rt, *n, name),
            _ => false,
        })
    }

    fn start_ho(&mut self, op: HoOp, args: &[Value]) -> Result<Ctl> {
        let name = match op {
            HoOp::Map => "map",
            HoOp::MapIndexed => "map-indexed",
            HoOp::Filter => "filter",
            HoOp::Reduce => "reduce",
            HoOp::Some => "some",
            HoOp::Every => "every?",
            HoOp::ForEach => "for-each",
        };
        let f = args[0];
        let (lists, acc): (Vec<Value>, Value) = match op {
            HoOp::Reduce => {
                if args.len() == 3 {
                    (vec![self.as_seq(name, args[2])?], args[1])
                } else {
                    let items = self.rt.expect_list(name, args[1]).or_else(|_| self.seq_items(name, args[1]))?;
                    if items.is_empty() {
                        return Ok(Ctl::Ret(Value::NIL));
                    }
                    let first = items[0];
                    let rest = self.rt.list(items[1..].to_vec());
                    (vec![rest], first)
                }
            }
            _ => {
                let mut ls = Vec::new();
                for l in &args[1..] {
                    ls.push(self.as_seq(name, *l)?);
                }
                let acc = self.rt.list(vec![]);
                (ls, acc)
            }
        };
        let n = lists.iter().map(|l| self.rt.as_list(*l).map_or(0, |x| x.len)).min().unwrap_or(0);
        let multi = lists.len() > 1;
        let lists_v = if multi { self.rt.list(lists) } else { lists[0] };
        if n == 0 {
            return self.finish_ho(op, acc);
        }
        self.ho_call(op, f, lists_v, multi, 0, n, acc)
    }

    /// Lists as they are; strings as lists of characters; dicts as (key value) pairs; nil as ().
    fn as_seq(&mut self, name: &str, v: Value) -> Result<Value> {
        if self.rt.as_list(v).is_some() {
            return Ok(v);
        }
        let items = self.seq_items(name, v)?;
        Ok(self.rt.list(items))
    }

    fn seq_items(&mut self, name: &str, v: Value) -> Result<Vec<Value>> {
        if v.is_nil() {
            return Ok(vec![]);
        }
        if let Some(s) = self.rt.as_str(v) {
            let chars: Vec<String> = s.s.chars().map(|c| c.to_string()).collect();
            return Ok(chars.into_iter().map(|c| self.rt.string(c)).collect());
        }
        if let Some(Obj::Extern(e)) = self.rt.heap.get(v) {
            if let Some(items) = e.elements() {
                return Ok(items);
            }
        }
        if let Some(d) = self.rt.as_dict(v) {
            let pairs: Vec<(Rc<str>, Value)> = d.iter().map(|(k, v)| (k.clone(), *v)).collect();
            return Ok(pairs
                .into_iter()
                .map(|(k, x)| {
                    let kv = self.rt.str_rc(k);
                    self.rt.list(vec![kv, x])
                })
                .collect());
        }
        Err(type_error(name, "list", self.rt.type_name(v)))
    }

    #[allow(clippy::too_many_arguments)]
    fn ho_call(&mut self, op: HoOp, f: Value, lists: Value, multi: bool, i: u32, n: u32, acc: Value) -> Result<Ctl> {
        self.push_frame(Frame::Ho { op, f, lists, i, n, acc, multi });
        let base = self.vals.len();
        self.vals.push(f);
        if op == HoOp::MapIndexed {
            let iv = self.rt.int(i as i64);
            self.vals.push(iv);
        }
        if op == HoOp::Reduce {
            self.vals.push(acc);
        }
        if multi {
            let ls = self.rt.list_items(lists).unwrap_or_default();
            for l in ls {
                let x = self.ho_elem(l, i);
                self.vals.push(x);
            }
        } else {
            let x = self.ho_elem(lists, i);
            self.vals.push(x);
        }
        Ok(Ctl::Apply(base))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ho_step(&mut self, op: HoOp, f: Value, lists: Value, i: u32, n: u32, acc: Value, multi: bool, v: Value) -> Ctl {
        let r = (|| -> Result<Ctl> {
            let acc = match op {
                HoOp::Map | HoOp::MapIndexed => self.rt.cons(v, acc)?,
                HoOp::Filter => {
                    if v.truthy() {
                        let elem = self.ho_elem(lists, i);
                        self.rt.cons(elem, acc)?
                    } else {
                        acc
                    }
                }
                HoOp::Reduce => v,
                HoOp::Some => {
                    if v.truthy() {
                        return Ok(Ctl::Ret(v));
                    }
                    acc
                }
                HoOp::Every => {
                    if !v.truthy() {
                        return Ok(Ctl::Ret(Value::FALSE));
                    }
                    acc
                }
                HoOp::ForEach => acc,
            };
            let next = i + 1;
            if next >= n {
                return self.finish_ho(op, acc);
            }
            self.ho_call(op, f, lists, multi, next, n, acc)
        })();
        match r {
            Ok(c) => c,
            Err(e) => {
                let ev = self.rt.error_value(&e);
                Ctl::Raise(ev)
            }
        }
    }

    fn ho_elem(&self, list: Value, i: u32) -> Value {
        self.rt.as_list(list).and_then(|x| x.get(i as usize)).unwrap_or(Value::NIL)
    }

    fn finish_ho(&mut self, op: HoOp, acc: Value) -> Result<Ctl> {
        Ok(Ctl::Ret(match op {
            HoOp::Map | HoOp::MapIndexed | HoOp::Filter => {
                let mut items = self.rt.list_items(acc).unwrap_or_default();
                items.reverse();
                self.rt.list(items)
            }
            HoOp::Reduce => acc,
            HoOp::Some => Value::NIL,
            HoOp::Every => Value::TRUE,
            HoOp::ForEach => Value::NIL,
        }))
    }
}

