//! Elaboration: the checker runs a model's body symbolically. Every expression evaluates to a
//! `Value`; tensor values are nodes of the model's forward graph, added only after their shapes
//! are proven compatible, so the graph the checker hands on is well typed by construction. User
//! `fn`s and `layer`s are expanded at each use (the compiler sees through them: their bodies are
//! checked against the shapes they are used with, then differentiated and fused like built-ins).

use super::Checker;
use super::args::{Aliases, bind_slots};
use super::types::{self, DimEnv, DimError, type_text};
use super::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::{Graph, ValueId};
use crate::ir::op::{BinaryOp, Op, UnaryOp, infer_type};
use crate::ir::shape::{DType, Dim, Shape, TensorType};
use crate::program::SummaryRow;
use crate::suggest;
use crate::syntax::ast::{self, ExprKind};
use std::collections::HashMap;
use std::rc::Rc;

/// How deep user functions and layers may call each other before the checker calls it recursion.
const MAX_DEPTH: usize = 64;

pub(super) struct Elab<'a> {
    pub ck: &'a mut Checker,
    pub graph: Graph,
    /// The model's name for its batch dimension (`B`), for messages.
    pub batch: String,
    scopes: Vec<Scope>,
    /// Keras-style layer names: `dense`, `dense_1`, …
    counters: HashMap<String, usize>,
    pub rows: Vec<SummaryRow>,
    /// Every tensor-valued expression and binding with its type (`Model::types`).
    pub types: Vec<(Span, TensorType)>,
    depth: usize,
    /// The step-counter input, created when a layer needs it (dropout's mask).
    step: Option<ValueId>,
    /// Layer parameters a `forward` never read, handed from `expand` to the layer.
    pending_unused: Vec<(String, Span)>,
    /// At the REPL prompt only: its tensor variables and the tensor constants of the entry.
    pub prompt: Option<super::prompt::Prompt>,
    /// Keras's masks: a tensor `[B, T, ..]` masked by `embedding(mask_zero: true)` maps to its
    /// mask `f32[B, T]` (1 keeps a step, 0 is padding). Layers that honour a mask read it, those
    /// that keep the time axis pass it on (`carry_mask`), the rest drop it, as Keras's do.
    masks: HashMap<ValueId, ValueId>,
    /// How many times a layer has read a mask (`mask_of`): a built-in that drops its input's
    /// mask without reading it is one that does not support masking (W0108).
    mask_reads: std::cell::Cell<usize>,
}

struct Scope {
    vars: Vec<(String, Binding)>,
    /// A function or layer body: names outside it (but inside the model) are not visible.
    barrier: bool,
}

struct Binding {
    value: Value,
    span: Span,
    used: bool,
    /// What to call it in an "unused" warning; `None` for names that may go unused.
    unused_warning: Option<(&'static str, &'static str)>,
}

impl<'a> Elab<'a> {
    pub fn new(ck: &'a mut Checker, name: &str) -> Elab<'a> {
        Elab {
            ck,
            graph: Graph::new(name),
            batch: "B".into(),
            scopes: vec![Scope {
                vars: Vec::new(),
                barrier: true,
            }],
            counters: HashMap::new(),
            rows: Vec::new(),
            types: Vec::new(),
            depth: 0,
            step: None,
            pending_unused: Vec::new(),
            prompt: None,
            masks: HashMap::new(),
            mask_reads: Default::default(),
        }
    }

    // ----- masks -----

    /// The mask `f32[B, T]` of a masked tensor, read by a layer that honours it.
    pub fn mask_of(&self, x: ValueId) -> Option<ValueId> {
        let mask = self.masks.get(&x).copied();
        if mask.is_some() {
            self.mask_reads.set(self.mask_reads.get() + 1);
        }
        mask
    }

    /// The mask a tensor carries, without reading it for a layer (passing it on, or W0108).
    pub fn carried_mask(&self, x: ValueId) -> Option<ValueId> {
        self.masks.get(&x).copied()
    }

    /// How many masks layers have read so far (see `dropped_mask`).
    pub fn mask_reads(&self) -> usize {
        self.mask_reads.get()
    }

    /// W0108, Keras's warning for a layer that does not support masking: built-in `name`
    /// applied at `span` to `x`, which carries a mask, gave `result` without one and read no
    /// mask since `reads` (`mask_reads()` before it ran).
    pub fn dropped_mask(
        &mut self,
        name: &str,
        x: ValueId,
        result: &Value,
        reads: usize,
        span: Span,
    ) {
        let Some(mask) = self.carried_mask(x) else {
            return;
        };
        let Value::Tensor(out) = result else {
            return;
        };
        if self.carried_mask(out.id).is_some() || self.mask_reads() != reads {
            return;
        }
        // Once per call site: a user layer's body is checked at each of its uses.
        let reported = self
            .ck
            .diags
            .iter()
            .any(|d| d.code == "W0108" && d.labels.iter().any(|l| l.primary && l.span == span));
        if reported {
            return;
        }
        let mut d = Diagnostic::warning(
            "W0108",
            format!("`{name}` does not support masking and drops its input's padding mask"),
        )
        .primary(span, "padded steps count as data here and after");
        if let Some(origin) = self.graph.node(mask).span {
            d = d.secondary(origin, "the mask comes from here");
        }
        self.ck.diags.push(d.help(
            "read the mask before it (an `lstm` or `gru`, `global_average_pooling1d`, attention), \
             or leave out `mask_zero` if the padding should count",
        ));
    }

    pub fn set_mask(&mut self, x: ValueId, mask: ValueId) {
        self.masks.insert(x, mask);
    }

    /// `to` keeps `from`'s mask, if it has one and `to` still has its batch and time axes.
    pub fn carry_mask(&mut self, from: ValueId, to: ValueId) {
        if let Some(mask) = self.carried_mask(from) {
            self.carry_mask_id(mask, to);
        }
    }

    /// `to` carries `mask` if it still has the mask's batch and time axes.
    fn carry_mask_id(&mut self, mask: ValueId, to: ValueId) {
        if self
            .graph
            .shape(to)
            .0
            .starts_with(&self.graph.shape(mask).0)
        {
            self.masks.insert(to, mask);
        }
    }

    pub fn error(&mut self, d: Diagnostic) {
        self.ck.error(d);
    }

    // ----- scopes -----

    pub fn push_scope(&mut self, barrier: bool) {
        self.scopes.push(Scope {
            vars: Vec::new(),
            barrier,
        });
    }

    /// Leaves a scope, warning about bindings nobody read.
    pub fn pop_scope(&mut self) {
        let Some(scope) = self.scopes.pop() else {
            return;
        };
        for (name, binding) in scope.vars {
            if let (false, Some((code, what))) = (binding.used, binding.unused_warning)
                && !name.starts_with('_')
            {
                self.ck.diags.push(
                    Diagnostic::warning(code, format!("{what} `{name}` is never used"))
                        .primary(binding.span, "defined here")
                        .help(format!(
                            "remove it, or name it `_{name}` to keep it without this warning"
                        )),
                );
            }
        }
    }

    pub fn bind(
        &mut self,
        name: &str,
        value: Value,
        span: Span,
        warn: Option<(&'static str, &'static str)>,
    ) {
        self.record(&value, span);
        if let Some(scope) = self.scopes.last_mut() {
            scope.vars.push((
                name.to_string(),
                Binding {
                    value,
                    span,
                    used: false,
                    unused_warning: warn,
                },
            ));
        }
    }

    fn lookup_local(&mut self, name: &str) -> Option<Value> {
        for scope in self.scopes.iter_mut().rev() {
            if let Some((_, binding)) = scope.vars.iter_mut().rev().find(|(n, _)| n == name) {
                binding.used = true;
                return Some(binding.value.clone());
            }
            if scope.barrier {
                break;
            }
        }
        None
    }

    /// A number named `name` in scope (layer configuration, top-level `let`), for dimensions.
    pub fn number_in_scope(&mut self, name: &str) -> Option<i64> {
        match self
            .lookup_local(name)
            .or_else(|| self.ck.consts.get(name).cloned())
        {
            Some(Value::Int(n)) => Some(n),
            _ => None,
        }
    }

    fn visible_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for scope in self.scopes.iter().rev() {
            names.extend(scope.vars.iter().map(|(n, _)| n.clone()));
            if scope.barrier {
                break;
            }
        }
        names.extend(self.ck.consts.keys().cloned());
        names.extend(self.ck.fns.keys().cloned());
        names.extend(self.ck.user_layers.keys().cloned());
        names.extend(super::builtins::names().into_iter().map(str::to_string));
        names.sort();
        names.dedup();
        names
    }

    // ----- expressions -----

    pub fn eval(&mut self, expr: &ast::Expr) -> Value {
        let value = self.eval_kind(expr);
        self.record(&value, expr.span);
        value
    }

    /// Notes a tensor value's type at `span` for editors (`Model::types`).
    fn record(&mut self, value: &Value, span: Span) {
        if let Value::Tensor(t) = value {
            let ty = self.graph.ty(t.id).clone();
            self.types.push((span, ty));
        }
    }

    fn eval_kind(&mut self, expr: &ast::Expr) -> Value {
        match &expr.kind {
            ExprKind::Int(n) => match i64::try_from(*n) {
                Ok(n) => Value::Int(n),
                Err(_) => {
                    self.error(
                        Diagnostic::error("E0303", "this number is too large")
                            .primary(expr.span, "out of range"),
                    );
                    Value::Error
                }
            },
            ExprKind::Float(x) => Value::Float(*x),
            ExprKind::Str(s) => Value::Str(s.clone()),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Error => Value::Error,
            ExprKind::List(items) => Value::List(items.iter().map(|e| self.eval(e)).collect()),
            ExprKind::Tuple(items) => Value::Tuple(items.iter().map(|e| self.eval(e)).collect()),
            ExprKind::Name(name) => self.name(name, expr.span),
            ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            } => {
                let value = self.eval(operand);
                self.negate(value, expr.span)
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let l = self.eval(lhs);
                let r = self.eval(rhs);
                self.binary(*op, (l, lhs.span), (r, rhs.span), expr.span)
            }
            ExprKind::Call { callee, args } => {
                let f = self.eval(callee);
                let args = match &f {
                    Value::Func(Func::Builtin(name)) => self.eval_builtin_args(name, args),
                    _ => self.eval_args(args),
                };
                self.call(f, callee.span, args, expr.span)
            }
        }
    }

    /// A built-in's arguments: as `eval_args`, but a layer's named `*_initializer` argument is
    /// kept as written, since an initializer's name is no value (`he_normal`) and its
    /// distribution needs the parameter's shape, known only when the layer is applied. So is
    /// a named argument the layer does not have, so that a misspelled `kernel_initialiser:
    /// zeros` is reported as the argument it is, not as an unknown name `zeros`.
    fn eval_builtin_args(&mut self, name: &str, args: &[ast::Arg]) -> Vec<ArgValue> {
        let Some(def) = super::builtins::find(name).filter(|d| !d.params.is_empty()) else {
            return self.eval_args(args);
        };
        let evaluated = |n: &str| def.args.iter().any(|a| a.name == n);
        args.iter()
            .map(|a| match &a.name {
                Some(n) if !evaluated(&n.name) => ArgValue {
                    name: a.name.clone(),
                    value: Value::Initializer(Rc::new(a.value.clone())),
                    span: a.span,
                },
                _ => ArgValue {
                    name: a.name.clone(),
                    value: self.eval(&a.value),
                    span: a.span,
                },
            })
            .collect()
    }

    /// Evaluates a call's arguments, left to right, keeping their names and spans.
    pub fn eval_args(&mut self, args: &[ast::Arg]) -> Vec<ArgValue> {
        args.iter()
            .map(|a| ArgValue {
                name: a.name.clone(),
                value: self.eval(&a.value),
                span: a.span,
            })
            .collect()
    }

    fn name(&mut self, name: &str, span: Span) -> Value {
        if let Some(value) = self.lookup_local(name) {
            return value;
        }
        if let Some(value) = self.prompt_name(name, span) {
            return value;
        }
        if let Some(value) = self.ck.consts.get(name) {
            self.ck.used_defs.insert(name.to_string());
            return value.clone();
        }
        if self.ck.fns.contains_key(name) {
            self.ck.used_defs.insert(name.to_string());
            return Value::Func(Func::UserFn(name.to_string()));
        }
        if self.ck.user_layers.contains_key(name) {
            self.ck.used_defs.insert(name.to_string());
            return Value::Func(Func::UserLayer(name.to_string()));
        }
        if let Some(builtin) = super::builtins::find(name) {
            return Value::Func(Func::Builtin(builtin.name));
        }
        if self.ck.lenient {
            return Value::Error;
        }
        let mut d = Diagnostic::error("E0113", format!("unknown name `{name}`"))
            .primary(span, "not defined here");
        if let Some(entry) = self.ck.names.get(name) {
            let place = if self.prompt.is_some() {
                "in an expression"
            } else {
                "inside a model"
            };
            d = d.note(format!(
                "`{name}` is {}, which cannot be used {place}",
                entry.kind.noun()
            ));
        } else {
            let names = self.visible_names();
            if let Some(best) = suggest::closest(name, names.iter().map(String::as_str)) {
                d = d.help(format!("did you mean `{best}`?"));
            }
        }
        self.error(d);
        Value::Error
    }

    fn negate(&mut self, value: Value, span: Span) -> Value {
        match value {
            Value::Int(n) => Value::Int(-n),
            Value::Float(x) => Value::Float(-x),
            Value::Tensor(t) => match self.float_tensor(t, span) {
                Some(t) => self.unary(UnaryOp::Neg, t, span),
                None => Value::Error,
            },
            Value::Error => Value::Error,
            other => {
                self.wrong_kind(&other, span, "a number or a tensor");
                Value::Error
            }
        }
    }

    pub fn wrong_kind(&mut self, value: &Value, span: Span, expected: &str) {
        if matches!(value, Value::Error) {
            return;
        }
        self.error(
            Diagnostic::error("E0303", format!("expected {expected}"))
                .primary(span, format!("found {}", value.kind_name())),
        );
    }

    /// Adds "where this shape came from" when an operand is a name for a value made elsewhere
    /// (a `let`, an input, a layer parameter).
    pub fn with_origin(&self, d: Diagnostic, t: Tensor, used_at: Span) -> Diagnostic {
        let disjoint = t.origin.end <= used_at.start || t.origin.start >= used_at.end;
        if !disjoint || t.origin == Span::default() {
            return d;
        }
        d.secondary(t.origin, format!("{} comes from here", self.text(t)))
    }

    pub fn ty(&self, t: Tensor) -> &TensorType {
        self.graph.ty(t.id)
    }

    pub fn text(&self, t: Tensor) -> String {
        type_text(self.ty(t), &self.batch)
    }

    /// Integer tensors only index (labels, embeddings); arithmetic needs f32.
    pub fn float_tensor(&mut self, t: Tensor, span: Span) -> Option<Tensor> {
        if self.ty(t).dtype == DType::F32 {
            return Some(t);
        }
        let text = self.text(t);
        self.error(
            Diagnostic::error("E0220", "arithmetic needs an f32 tensor")
                .primary(span, format!("this is {text}"))
                .help("integer tensors hold class indices; use them with `embedding` or as labels"),
        );
        None
    }

    pub fn tensor(&mut self, id: ValueId, origin: Span) -> Value {
        Value::Tensor(Tensor { id, origin })
    }

    /// Adds a node whose shape the caller has already checked; a rule that still fails is a
    /// checker bug, reported as E0900 rather than a panic.
    pub fn add(&mut self, op: Op, inputs: &[ValueId], span: Span) -> Option<ValueId> {
        let types: Vec<&TensorType> = inputs.iter().map(|&v| self.graph.ty(v)).collect();
        match infer_type(&op, &types) {
            Ok(ty) => Some(self.graph.push_node(crate::ir::graph::Node {
                op,
                inputs: inputs.to_vec(),
                ty,
                span: Some(span),
            })),
            Err(message) => {
                self.error(
                    Diagnostic::error("E0900", format!("internal compiler error: {message}"))
                        .primary(span, "while checking this")
                        .note("please report this: the checker accepted a shape the IR rejects"),
                );
                None
            }
        }
    }

    /// `reshape` of a value to `shape` (same element count, checked by the caller).
    pub fn add_reshape(&mut self, v: ValueId, shape: Shape, span: Span) -> Option<ValueId> {
        let ty = TensorType {
            dtype: self.graph.ty(v).dtype,
            shape,
        };
        Some(self.graph.push_node(crate::ir::graph::Node {
            op: Op::Reshape,
            inputs: vec![v],
            ty,
            span: Some(span),
        }))
    }

    /// `v` stretched to `shape` (NumPy rules); like `add`, a shape that does not broadcast is a
    /// checker bug, reported as E0900.
    pub fn add_broadcast(&mut self, v: ValueId, shape: Shape, span: Span) -> Option<ValueId> {
        let from = self.graph.shape(v).clone();
        if !from.broadcasts_to(&shape) {
            self.error(
                Diagnostic::error(
                    "E0900",
                    format!("internal compiler error: cannot broadcast {from} to {shape}"),
                )
                .primary(span, "while checking this")
                .note("please report this: the checker accepted a shape the IR rejects"),
            );
            return None;
        }
        Some(self.graph.broadcast(v, &shape, Some(span)))
    }

    pub fn unary(&mut self, op: UnaryOp, t: Tensor, span: Span) -> Value {
        match self.add(Op::Unary(op), &[t.id], span) {
            Some(id) => self.tensor(id, span),
            None => Value::Error,
        }
    }

    pub fn constant(&mut self, value: f64, span: Span) -> Tensor {
        Tensor {
            id: self.graph.constant(value as f32, Some(span)),
            origin: span,
        }
    }

    /// A number or tensor operand as a tensor (numbers become scalar constants).
    pub fn operand(&mut self, value: &Value, span: Span) -> Option<Tensor> {
        match value {
            Value::Tensor(t) => self.float_tensor(*t, span),
            Value::Int(_) | Value::Float(_) => Some(self.constant(value.as_number()?, span)),
            Value::List(_) if self.prompt.is_some() => self.literal(value, span),
            Value::Error => None,
            other => {
                self.wrong_kind(other, span, "a number or a tensor");
                None
            }
        }
    }

    pub fn binary(
        &mut self,
        op: ast::BinaryOp,
        (l, lspan): (Value, Span),
        (r, rspan): (Value, Span),
        span: Span,
    ) -> Value {
        if let (Some(a), Some(b), false) =
            (l.as_number(), r.as_number(), op == ast::BinaryOp::MatMul)
        {
            return numbers(op, &l, &r, a, b);
        }
        let (Some(a), Some(b)) = (self.operand(&l, lspan), self.operand(&r, rspan)) else {
            return Value::Error;
        };
        let ir_op = match op {
            ast::BinaryOp::Add => BinaryOp::Add,
            ast::BinaryOp::Sub => BinaryOp::Sub,
            ast::BinaryOp::Mul => BinaryOp::Mul,
            ast::BinaryOp::Div => BinaryOp::Div,
            ast::BinaryOp::MatMul => {
                return match self.matmul((a, lspan), (b, rspan), span) {
                    Some(id) => self.tensor(id, span),
                    None => Value::Error,
                };
            }
        };
        match self.elementwise(ir_op, &[(a, lspan), (b, rspan)], span, op.symbol()) {
            Some(id) => self.tensor(id, span),
            None => Value::Error,
        }
    }

    /// A NumPy-broadcasting elementwise op; a shape conflict labels both operands.
    pub fn elementwise(
        &mut self,
        op: BinaryOp,
        operands: &[(Tensor, Span); 2],
        span: Span,
        symbol: &str,
    ) -> Option<ValueId> {
        let [(a, aspan), (b, bspan)] = *operands;
        let (sa, sb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        let joined = sa.broadcast(&sb);
        if let Some(shape) = &joined
            && shape.dims().iter().skip(1).any(|d| *d == Dim::Batch)
        {
            let (ta, tb) = (self.text(a), self.text(b));
            self.error(
                Diagnostic::error(
                    "E0215",
                    format!("`{symbol}` of {ta} and {tb} would line the batch dimension up with another axis"),
                )
                .primary(span, "the batch dimension must stay first")
                .secondary(aspan, format!("this is {ta}"))
                .secondary(bspan, format!("this is {tb}"))
                .help("give both operands the same rank (e.g. `keepdims: true` on a reduction) so the batch dimensions line up"),
            );
            return None;
        }
        if joined.is_none() {
            let (ta, tb) = (self.text(a), self.text(b));
            let d = Diagnostic::error(
                "E0209",
                format!("`{symbol}` needs shapes that broadcast, found {ta} and {tb}"),
            )
            .primary(span, "these shapes do not broadcast")
            .secondary(aspan, format!("this is {ta}"))
            .secondary(bspan, format!("this is {tb}"))
            .note("broadcasting matches dimensions from the right; each pair must be equal or one of them 1");
            let d = self.with_origin(d, a, aspan);
            let d = self.with_origin(d, b, bspan);
            self.error(d);
            return None;
        }
        let out = self.add(Op::Binary(op), &[a.id, b.id], span)?;
        // Arithmetic on a masked sequence keeps its mask, as Keras's merge layers (`Add`, …)
        // do: a position table added to it, or a residual connection. Two different masks
        // would need their AND, which nothing makes yet: the result has none.
        match (self.carried_mask(a.id), self.carried_mask(b.id)) {
            (Some(m), None) | (None, Some(m)) => self.carry_mask_id(m, out),
            (Some(m), Some(n)) if m == n => self.carry_mask_id(m, out),
            _ => {}
        }
        Some(out)
    }

    /// `a @ b`: `[..., M, K] @ [K, N]`, or batched with equal leading dimensions.
    pub fn matmul(
        &mut self,
        (a, aspan): (Tensor, Span),
        (b, bspan): (Tensor, Span),
        span: Span,
    ) -> Option<ValueId> {
        let (sa, sb) = (self.ty(a).shape.clone(), self.ty(b).shape.clone());
        let (ta, tb) = (self.text(a), self.text(b));
        if sa.rank() < 2 || sb.rank() < 2 {
            let (which, wspan) = if sa.rank() < 2 {
                (&ta, aspan)
            } else {
                (&tb, bspan)
            };
            self.error(
                Diagnostic::error("E0210", "`@` needs operands with at least two dimensions")
                    .primary(wspan, format!("this is {which}"))
                    .help("for an elementwise product write `*`"),
            );
            return None;
        }
        let k_a = sa.dims()[sa.rank() - 1];
        let k_b = sb.dims()[sb.rank() - 2];
        if k_a != k_b {
            let mut d = Diagnostic::error(
                "E0210",
                format!("`@` needs the inner dimensions to agree, found {ta} @ {tb}"),
            )
            .primary(span, "inner dimensions differ")
            .secondary(aspan, format!("this is {ta}"))
            .secondary(bspan, format!("this is {tb}"));
            d = self.with_origin(d, a, aspan);
            d = self.with_origin(d, b, bspan);
            if sb.rank() == 2 && sb.dims()[1] == k_a {
                d = d.help("the right operand looks transposed: write `transpose(...)` around it");
            } else if sa.rank() == 2 && sa.dims()[0] == k_b && !sa.has_batch() {
                d = d.help("the left operand looks transposed: write `transpose(...)` around it");
            }
            self.error(d);
            return None;
        }
        if sb.rank() > 2 && sa.dims()[..sa.rank() - 2] != sb.dims()[..sb.rank() - 2] {
            self.error(
                Diagnostic::error(
                    "E0210",
                    format!("a batched `@` needs equal leading dimensions, found {ta} @ {tb}"),
                )
                .primary(span, "leading dimensions differ")
                .secondary(aspan, format!("this is {ta}"))
                .secondary(bspan, format!("this is {tb}")),
            );
            return None;
        }
        self.add(
            Op::MatMul {
                transpose_a: false,
                transpose_b: false,
            },
            &[a.id, b.id],
            span,
        )
    }

    // ----- calls -----

    pub fn call(&mut self, f: Value, fspan: Span, args: Vec<ArgValue>, span: Span) -> Value {
        if args.iter().any(|a| matches!(a.value, Value::Error)) {
            return Value::Error;
        }
        match f {
            Value::Func(Func::Builtin(name)) => super::builtins::call(self, name, args, span),
            Value::Func(Func::Layer(layer)) => {
                let inputs = self.positional_tensors(&args, &layer, span);
                match inputs {
                    Some(inputs) => self.apply_layer(&layer, inputs, span),
                    None => Value::Error,
                }
            }
            Value::Func(Func::UserFn(name)) => self.apply_fn(&name, args, span),
            Value::Func(Func::UserLayer(name)) => self.configure_user_layer(&name, args, span),
            Value::Func(Func::Grad(f, wrt)) => self.apply_grad(*f, wrt, fspan, args, span),
            Value::Error => Value::Error,
            other => {
                self.error(
                    Diagnostic::error("E0114", format!("{} cannot be called", other.kind_name()))
                        .primary(fspan, format!("this is {}", other.kind_name()))
                        .help("only functions and layers take arguments"),
                );
                Value::Error
            }
        }
    }

    /// A configured layer is applied to tensors only, by position.
    fn positional_tensors(
        &mut self,
        args: &[ArgValue],
        layer: &LayerInstance,
        span: Span,
    ) -> Option<Vec<(Tensor, Span)>> {
        let mut out = Vec::new();
        for arg in args {
            let value = self.tensor_literal(arg.value.clone(), arg.span);
            match (&arg.name, &value) {
                (None, Value::Tensor(t)) => out.push((*t, arg.span)),
                (Some(name), _) => {
                    self.error(
                        Diagnostic::error("E0111", "a configured layer takes only its inputs")
                            .primary(name.span, "a named argument")
                            .secondary(layer.span, "the layer was configured here")
                            .help("configure the layer first, then apply it: `dense(64, relu)(x)`"),
                    );
                    return None;
                }
                (None, other) => {
                    let kind = other.kind_name();
                    self.error(
                        Diagnostic::error("E0303", "a layer is applied to tensors")
                            .primary(arg.span, format!("found {kind}"))
                            .secondary(layer.span, "the layer was configured here"),
                    );
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.error(
                Diagnostic::error("E0304", "a layer needs an input")
                    .primary(span, "no tensor given")
                    .help("apply it to a tensor: `layer(x)`"),
            );
            return None;
        }
        Some(out)
    }

    /// `grad(f, wrt: i)(args…)`: runs `f`, then differentiates its scalar result with respect to
    /// argument `i` — the backward pass is built in the IR right here, so it is checked, fused
    /// and (inside a model) differentiated again like everything else.
    fn apply_grad(
        &mut self,
        f: Value,
        wrt: usize,
        fspan: Span,
        args: Vec<ArgValue>,
        span: Span,
    ) -> Value {
        let positional: Vec<&ArgValue> = args.iter().filter(|a| a.name.is_none()).collect();
        let target = positional
            .get(wrt)
            .map(|a| (self.tensor_literal(a.value.clone(), a.span), a.span));
        let Some(target) = target else {
            self.error(
                Diagnostic::error(
                    "E0304",
                    format!(
                        "`grad` differentiates with respect to argument {wrt}, which is not given"
                    ),
                )
                .primary(
                    span,
                    format!(
                        "{} positional argument{}",
                        positional.len(),
                        if positional.len() == 1 { "" } else { "s" }
                    ),
                )
                .help("pass the argument positionally, or choose another with `wrt:`"),
            );
            return Value::Error;
        };
        let x = match target {
            (Value::Tensor(t), tspan) => match self.float_tensor(t, tspan) {
                Some(t) => t,
                None => return Value::Error,
            },
            (other, tspan) => {
                self.wrong_kind(&other, tspan, "a tensor to differentiate with respect to");
                return Value::Error;
            }
        };
        // A fresh node for the argument, so the derivative is partial: other arguments computed
        // from the same value (`grad(f, wrt: 1)(x + 1, x)`) are held fixed, as in JAX.
        let ty = self.ty(x).clone();
        let fresh = self.graph.push_node(crate::ir::graph::Node {
            op: Op::Reshape,
            inputs: vec![x.id],
            ty,
            span: Some(span),
        });
        let mut args = args;
        if let Some(arg) = args.iter_mut().filter(|a| a.name.is_none()).nth(wrt) {
            arg.value = Value::Tensor(Tensor {
                id: fresh,
                origin: x.origin,
            });
        }
        let x = Tensor {
            id: fresh,
            origin: x.origin,
        };
        let result = self.call(f, fspan, args, span);
        let y = match result {
            Value::Tensor(y) => y,
            Value::Error => return Value::Error,
            other => {
                self.wrong_kind(&other, span, "a function returning a tensor");
                return Value::Error;
            }
        };
        if self.ty(y).shape.rank() != 0 {
            let text = self.text(y);
            self.error(
                Diagnostic::error(
                    "E0224",
                    format!(
                        "`grad` needs a function with a scalar result, this one returns {text}"
                    ),
                )
                .primary(span, format!("returns {text}"))
                .help("reduce it to one number first, e.g. `fn total(x) = sum(f(x))`"),
            );
            return Value::Error;
        }
        let gradient = crate::ir::autodiff::gradient(&mut self.graph, y.id, &[x.id]);
        self.tensor(gradient[0], span)
    }

    /// A fresh Keras-style name: `dense`, `dense_1`, …
    pub fn layer_name(&mut self, base: &str) -> String {
        let count = self.counters.entry(base.to_string()).or_insert(0);
        let name = if *count == 0 {
            base.to_string()
        } else {
            format!("{base}_{count}")
        };
        *count += 1;
        name
    }

    pub fn apply_layer(
        &mut self,
        layer: &Rc<LayerInstance>,
        inputs: Vec<(Tensor, Span)>,
        span: Span,
    ) -> Value {
        let params_before = self.graph.params.len();
        let first = layer.built.borrow().is_none();
        let (result, kind) = match &layer.kind {
            LayerKind::Builtin { name, args } => (
                super::builtins::apply_layer(self, layer, name, args, inputs, span),
                name.to_string(),
            ),
            LayerKind::User { name, config } => (
                self.apply_user_layer(layer, name, config, inputs, span),
                name.clone(),
            ),
        };
        if first && let Some(built) = layer.built.borrow().as_ref() {
            let params: usize = self.graph.params[params_before..]
                .iter()
                .map(|p| types::per_sample(&p.shape))
                .fold(0usize, usize::saturating_add);
            let outputs = match &result {
                Value::Tensor(t) => vec![self.ty(*t).clone()],
                Value::Tuple(items) => items
                    .iter()
                    .filter_map(|v| match v {
                        Value::Tensor(t) => Some(self.ty(*t).clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            self.rows.push(SummaryRow {
                name: built.name.clone(),
                kind,
                outputs,
                params,
                span,
            });
        }
        result
    }

    /// Binds evaluated arguments to parameter names: positional first, then named.
    pub fn bind_args(
        &mut self,
        callee: &str,
        args: Vec<ArgValue>,
        params: &[&str],
        aliases: Aliases,
    ) -> Option<Vec<Option<ArgValue>>> {
        self.bind_args_named(callee, args, params, 0, aliases)
    }

    /// `bind_args` where the last `named_only` parameters take named arguments only.
    pub fn bind_args_named(
        &mut self,
        callee: &str,
        args: Vec<ArgValue>,
        params: &[&str],
        named_only: usize,
        aliases: Aliases,
    ) -> Option<Vec<Option<ArgValue>>> {
        let binding = bind_slots(
            callee,
            args.iter().map(|a| (a.name.as_ref(), a.span)),
            params,
            named_only,
            aliases,
        );
        if !binding.errors.is_empty() {
            for d in binding.errors {
                self.error(d);
            }
            return None;
        }
        let mut args: Vec<Option<ArgValue>> = args.into_iter().map(Some).collect();
        Some(
            binding
                .slots
                .into_iter()
                .map(|i| i.and_then(|i| args[i].take()))
                .collect(),
        )
    }

    pub fn missing(&mut self, callee: &str, param: &str, span: Span) {
        self.error(
            Diagnostic::error("E0304", format!("`{callee}` needs `{param}`"))
                .primary(span, format!("missing `{param}`")),
        );
    }

    // ----- user functions and layers -----

    fn enter(&mut self, span: Span, what: &str) -> bool {
        if self.depth >= MAX_DEPTH {
            self.error(
                Diagnostic::error("E0115", format!("{what} calls itself without end"))
                    .primary(span, format!("{MAX_DEPTH} nested calls deep here"))
                    .note("functions and layers are expanded where they are used, so they cannot recurse"),
            );
            return false;
        }
        self.depth += 1;
        true
    }

    fn apply_fn(&mut self, name: &str, args: Vec<ArgValue>, span: Span) -> Value {
        let Some(decl) = self.ck.fns.get(name).cloned() else {
            return Value::Error;
        };
        if !self.enter(span, &format!("`{name}`")) {
            return Value::Error;
        }
        let result = self.expand(name, &decl.body, args, span, Vec::new());
        self.depth -= 1;
        result
    }

    /// Binds arguments to a body's parameters (checking declared types), runs the body, checks
    /// the declared result types. `extra` are bindings made visible inside (layer parameters).
    fn expand(
        &mut self,
        name: &str,
        body: &ast::FnBody,
        args: Vec<ArgValue>,
        span: Span,
        extra: Vec<(String, Value, Span, bool)>,
    ) -> Value {
        let names: Vec<&str> = body.params.iter().map(|p| p.name.name.as_str()).collect();
        let Some(slots) = self.bind_args(name, args, &names, Aliases::None) else {
            return Value::Error;
        };
        let mut env = DimEnv::default();
        let mut bound = Vec::new();
        let mut ok = true;
        for (param, slot) in body.params.iter().zip(slots) {
            let (value, vspan) = match slot {
                Some(arg) => (arg.value, arg.span),
                None => match &param.default {
                    Some(default) => (self.eval(default), default.span),
                    None => {
                        self.missing(name, &param.name.name, span);
                        ok = false;
                        continue;
                    }
                },
            };
            if let Some(ty) = &param.ty
                && !self.check_declared(
                    &value,
                    vspan,
                    ty,
                    &mut env,
                    &format!("the argument `{}` of `{name}`", param.name.name),
                )
            {
                ok = false;
            }
            bound.push((param.name.name.clone(), value, param.name.span));
        }
        if !ok {
            return Value::Error;
        }
        self.push_scope(true);
        for (n, v, s, warn) in extra {
            self.bind(&n, v, s, warn.then_some(("W0103", "parameter")));
        }
        for (n, v, s) in bound {
            self.bind(&n, v, s, None);
        }
        let result = self.block(&body.body, name);
        let result = match (&body.outputs, result) {
            (Some(outputs), Some(value)) => {
                let at = body.body.last().map_or(body.span, stmt_span);
                self.check_outputs(value, outputs, &mut env, at)
            }
            (None, Some(value)) => value,
            (_, None) => Value::Error,
        };
        // Parameter usage is read by the caller before the scope goes.
        self.pending_unused = self
            .scopes
            .last()
            .map(|s| {
                s.vars
                    .iter()
                    .filter(|(_, b)| !b.used && b.unused_warning.is_some())
                    .map(|(n, b)| (n.clone(), b.span))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(scope) = self.scopes.last_mut() {
            // Parameter warnings are the layer's business (issued once per layer, not per use).
            for (_, b) in &mut scope.vars {
                if b.unused_warning.is_some_and(|(code, _)| code == "W0103") {
                    b.unused_warning = None;
                }
            }
        }
        self.pop_scope();
        result
    }

    /// `let NAME = EXPR` (or `let NAME: TYPE = EXPR`, checked) in a body; returns whether the
    /// value is usable.
    pub fn let_stmt(&mut self, binding: &ast::LetStmt) -> bool {
        let mut value = self.eval(&binding.value);
        if let Some(ty) = &binding.ty {
            let mut env = DimEnv::default();
            env.symbols.insert(self.batch.clone(), Dim::Batch);
            let what = format!("`{}`", binding.name.name);
            if !self.check_declared(&value, binding.value.span, ty, &mut env, &what) {
                value = Value::Error;
            }
        }
        let ok = !matches!(value, Value::Error);
        self.bind(
            &binding.name.name,
            value,
            binding.name.span,
            Some(("W0102", "binding")),
        );
        ok
    }

    /// A function or layer body: `let`s, then the value of the last expression.
    fn block(&mut self, stmts: &[ast::Stmt], what: &str) -> Option<Value> {
        let mut last = None;
        for stmt in stmts {
            match stmt {
                ast::Stmt::Let(binding) => {
                    self.let_stmt(binding);
                    last = None;
                }
                ast::Stmt::Expr(expr) => last = Some((self.eval(expr), expr.span)),
                ast::Stmt::Error(_) => return None,
            }
        }
        match last {
            Some((value, _)) => Some(value),
            None => {
                let span = stmts.last().map(stmt_span);
                if let Some(span) = span {
                    self.error(
                        Diagnostic::error("E0221", format!("`{what}` ends without a result"))
                            .primary(span, "the last line must be the result, not a `let`")
                            .help("end the body with the expression it returns"),
                    );
                }
                None
            }
        }
    }

    /// Checks a value against a declared type, binding dimension symbols in `env`.
    pub fn check_declared(
        &mut self,
        value: &Value,
        span: Span,
        ty: &ast::TypeExpr,
        env: &mut DimEnv,
        what: &str,
    ) -> bool {
        let Some(dims) = &ty.dims else {
            let ok = match (ty.dtype.name.as_str(), value) {
                ("int", Value::Int(_)) | ("float", Value::Int(_) | Value::Float(_)) => true,
                ("bool", Value::Bool(_)) | ("str", Value::Str(_)) => true,
                (_, Value::Error) => return false,
                ("int" | "float" | "bool" | "str", _) => false,
                (other, _) => {
                    self.error(
                        Diagnostic::error("E0222", format!("unknown type `{other}`"))
                            .primary(ty.dtype.span, "not a type")
                            .help("types are `f32[...]`, `i32[...]`, `int`, `float`, `bool` and `str`"),
                    );
                    return false;
                }
            };
            if !ok {
                self.error(
                    Diagnostic::error("E0211", format!("{what} must be {}", ty.dtype.name))
                        .primary(span, format!("found {}", value.kind_name()))
                        .secondary(ty.span, "declared here"),
                );
            }
            return ok;
        };
        let Value::Tensor(t) = value else {
            if !matches!(value, Value::Error) {
                self.error(
                    Diagnostic::error("E0211", format!("{what} must be a tensor"))
                        .primary(span, format!("found {}", value.kind_name()))
                        .secondary(ty.span, "declared here"),
                );
            }
            return false;
        };
        let actual = self.ty(*t).clone();
        let text = type_text(&actual, &self.batch);
        let Some(dtype) = types::dtype_of(&ty.dtype.name) else {
            self.error(
                Diagnostic::error("E0222", format!("unknown element type `{}`", ty.dtype.name))
                    .primary(ty.dtype.span, "not an element type")
                    .help("element types are `f32` and `i32`"),
            );
            return false;
        };
        let mismatch = |this: &mut Self, detail: String| {
            this.error(
                Diagnostic::error(
                    "E0211",
                    format!("{what} has type {text}, not the declared type"),
                )
                .primary(span, format!("this is {text}"))
                .secondary(ty.span, detail),
            );
            false
        };
        if dtype != actual.dtype {
            return mismatch(
                self,
                format!("declared with element type {}", ty.dtype.name),
            );
        }
        if dims.len() != actual.shape.rank() {
            return mismatch(self, format!("declared with {} dimensions", dims.len()));
        }
        for (dim, &have) in dims.iter().zip(actual.shape.dims()) {
            self.mark_dim_names(dim);
            let number = |name: &str| self.number_in_scope_ro(name);
            match types::eval_dim(dim, env, &number, Some(have)) {
                Ok(want) if want == have => {}
                Ok(want) => {
                    let want = match want {
                        Dim::Batch => self.batch.clone(),
                        Dim::Fixed(n) => n.to_string(),
                    };
                    let shown = crate::syntax::print::dim_text(dim);
                    let detail = if shown == want {
                        format!("declared as {want} here")
                    } else {
                        format!("`{shown}` is {want} here")
                    };
                    self.error(
                        Diagnostic::error(
                            "E0211",
                            format!("{what} has type {text}, not the declared type"),
                        )
                        .primary(span, format!("this is {text}"))
                        .secondary(dim.span, detail),
                    );
                    return false;
                }
                Err(e) => {
                    self.dim_error(dim, e);
                    return false;
                }
            }
        }
        true
    }

    /// Marks the top-level constants a dimension names as used.
    fn mark_dim_names(&mut self, dim: &ast::Dim) {
        match &dim.kind {
            ast::DimKind::Symbol(s) => {
                if self.ck.consts.contains_key(s) {
                    self.ck.used_defs.insert(s.clone());
                }
                let _ = self.lookup_local(s);
            }
            ast::DimKind::Binary { lhs, rhs, .. } => {
                self.mark_dim_names(lhs);
                self.mark_dim_names(rhs);
            }
            _ => {}
        }
    }

    /// Read-only lookup for dimension evaluation (does not mark bindings used).
    fn number_in_scope_ro(&self, name: &str) -> Option<i64> {
        for scope in self.scopes.iter().rev() {
            if let Some((_, b)) = scope.vars.iter().rev().find(|(n, _)| n == name) {
                return match b.value {
                    Value::Int(n) => Some(n),
                    _ => None,
                };
            }
            if scope.barrier {
                break;
            }
        }
        match self.ck.consts.get(name) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    pub fn eval_dim(&mut self, dim: &ast::Dim, env: &mut DimEnv) -> Option<Dim> {
        self.mark_dim_names(dim);
        let result = {
            let number = |name: &str| self.number_in_scope_ro(name);
            types::eval_dim(dim, env, &number, None)
        };
        match result {
            Ok(d) => Some(d),
            Err(e) => {
                self.dim_error(dim, e);
                None
            }
        }
    }

    fn dim_error(&mut self, dim: &ast::Dim, e: DimError) {
        let d = match e {
            DimError::Unknown(name) => Diagnostic::error(
                "E0216",
                format!("the dimension `{name}` is not known here"),
            )
            .primary(dim.span, "cannot be inferred")
            .help(format!(
                "write a number, or declare `let {name} = ...` (or a layer argument `{name}: int`)"
            )),
            DimError::Arithmetic(message) => {
                Diagnostic::error("E0216", message).primary(dim.span, "in this dimension")
            }
        };
        self.error(d);
    }

    fn check_outputs(
        &mut self,
        value: Value,
        outputs: &[ast::TypeExpr],
        env: &mut DimEnv,
        span: Span,
    ) -> Value {
        match (outputs, &value) {
            ([single], _) => {
                if self.check_declared(&value, span, single, env, "the result") {
                    value
                } else {
                    Value::Error
                }
            }
            (many, Value::Tuple(items)) if many.len() == items.len() => {
                let mut ok = true;
                for (i, (ty, item)) in many.iter().zip(items).enumerate() {
                    ok &= self.check_declared(item, span, ty, env, &format!("result {}", i + 1));
                }
                if ok { value } else { Value::Error }
            }
            (many, other) => {
                let count = match other {
                    Value::Tuple(items) => items.len(),
                    _ => 1,
                };
                self.error(
                    Diagnostic::error(
                        "E0218",
                        format!("{} results are declared but {count} produced", many.len()),
                    )
                    .primary(span, format!("produces {count}")),
                );
                Value::Error
            }
        }
    }

    fn configure_user_layer(&mut self, name: &str, args: Vec<ArgValue>, span: Span) -> Value {
        let Some(decl) = self.ck.user_layers.get(name).cloned() else {
            return Value::Error;
        };
        let names: Vec<&str> = decl.params.iter().map(|p| p.name.name.as_str()).collect();
        let Some(slots) = self.bind_args(name, args, &names, Aliases::None) else {
            return Value::Error;
        };
        let mut config = Vec::new();
        let mut env = DimEnv::default();
        for (param, slot) in decl.params.iter().zip(slots) {
            let (value, vspan) = match slot {
                Some(arg) => (arg.value, arg.span),
                None => match &param.default {
                    Some(default) => (self.eval(default), default.span),
                    None => {
                        self.missing(name, &param.name.name, span);
                        return Value::Error;
                    }
                },
            };
            if let Some(ty) = &param.ty
                && !self.check_declared(
                    &value,
                    vspan,
                    ty,
                    &mut env,
                    &format!("`{}`", param.name.name),
                )
            {
                return Value::Error;
            }
            config.push((param.name.name.clone(), value));
        }
        Value::Func(Func::Layer(Rc::new(LayerInstance {
            kind: LayerKind::User {
                name: name.to_string(),
                config,
            },
            span,
            built: Default::default(),
        })))
    }

    fn apply_user_layer(
        &mut self,
        layer: &Rc<LayerInstance>,
        name: &str,
        config: &[(String, Value)],
        inputs: Vec<(Tensor, Span)>,
        span: Span,
    ) -> Value {
        let Some(decl) = self.ck.user_layers.get(name).cloned() else {
            return Value::Error;
        };
        let Some(forward) = decl.members.iter().find_map(|m| match m {
            ast::LayerMember::Forward(body) => Some(body.clone()),
            _ => None,
        }) else {
            return Value::Error;
        };
        if !self.enter(span, &format!("layer `{name}`")) {
            return Value::Error;
        }
        // The configuration is visible to parameter types and to the body.
        self.push_scope(true);
        for (n, v) in config {
            self.bind(n, v.clone(), decl.name.span, None);
        }
        // Bind dimension symbols from the inputs first: parameter shapes may use them.
        let mut env = DimEnv::default();
        let mut ok = inputs.len() == forward.params.len();
        if !ok {
            self.error(
                Diagnostic::error(
                    "E0305",
                    format!(
                        "layer `{name}` takes {} input{}, {} given",
                        forward.params.len(),
                        if forward.params.len() == 1 { "" } else { "s" },
                        inputs.len()
                    ),
                )
                .primary(span, "applied here")
                .secondary(forward.span, "its `forward` is declared here"),
            );
        }
        for (param, (t, tspan)) in forward.params.iter().zip(&inputs) {
            if let Some(ty) = &param.ty {
                ok &= self.check_declared(
                    &Value::Tensor(*t),
                    *tspan,
                    ty,
                    &mut env,
                    &format!("the input `{}` of `{name}`", param.name.name),
                );
            }
        }
        // The body sees the configuration and the parameters.
        let mut extra: Vec<(String, Value, Span, bool)> = config
            .iter()
            .map(|(n, v)| (n.clone(), v.clone(), decl.name.span, false))
            .collect();
        if ok {
            let built = layer.built.borrow().clone();
            let params = match built {
                Some(built) => Some(built.params),
                None => {
                    let layer_name = self.layer_name(name);
                    let params = self.create_params(&decl, &layer_name, &mut env);
                    if let Some(params) = &params {
                        *layer.built.borrow_mut() = Some(Built {
                            name: layer_name,
                            params: params.clone(),
                        });
                    }
                    params
                }
            };
            match params {
                Some(params) => {
                    let first_use = self
                        .rows
                        .iter()
                        .all(|r| Some(&r.name) != layer.built.borrow().as_ref().map(|b| &b.name));
                    let members = decl.members.iter().filter_map(|m| match m {
                        ast::LayerMember::Param { name, .. } => Some(name),
                        _ => None,
                    });
                    for (pname, id) in members.zip(params) {
                        extra.push((
                            pname.name.clone(),
                            Value::Tensor(Tensor {
                                id,
                                origin: pname.span,
                            }),
                            pname.span,
                            first_use,
                        ));
                    }
                }
                None => ok = false,
            }
        }
        let result = if ok {
            let args = inputs
                .iter()
                .map(|(t, s)| ArgValue {
                    name: None,
                    value: Value::Tensor(*t),
                    span: *s,
                })
                .collect();
            self.pending_unused.clear();
            let value = self.expand(name, &forward, args, span, extra);
            let unused = std::mem::take(&mut self.pending_unused);
            for (pname, pspan) in unused {
                self.ck.diags.push(
                    Diagnostic::warning("W0103", format!("parameter `{pname}` of layer `{name}` is never used"))
                        .primary(pspan, "declared here")
                        .secondary(span, "the layer is applied here")
                        .note("it does not reach the loss, so its gradient is zero and training never changes it"),
                );
            }
            value
        } else {
            Value::Error
        };
        self.pop_scope();
        self.depth -= 1;
        result
    }

    /// Creates a user layer's parameters with their shapes and initializers.
    fn create_params(
        &mut self,
        decl: &ast::LayerDecl,
        layer_name: &str,
        env: &mut DimEnv,
    ) -> Option<Vec<ValueId>> {
        let mut ids = Vec::new();
        for member in &decl.members {
            let ast::LayerMember::Param {
                name,
                ty,
                init,
                span,
            } = member
            else {
                continue;
            };
            if ty.dtype.name != "f32" {
                self.error(
                    Diagnostic::error("E0222", "parameters have element type f32")
                        .primary(ty.dtype.span, format!("found `{}`", ty.dtype.name)),
                );
                return None;
            }
            let Some(dims) = &ty.dims else {
                self.error(
                    Diagnostic::error("E0222", "a parameter is a tensor")
                        .primary(ty.span, "write its shape, e.g. `f32[units]`"),
                );
                return None;
            };
            let mut shape = Vec::new();
            for dim in dims {
                match self.eval_dim(dim, env)? {
                    Dim::Fixed(n) => shape.push(n),
                    Dim::Batch => {
                        self.error(
                            Diagnostic::error("E0215", "a parameter cannot depend on the batch size")
                                .primary(dim.span, format!("`{}` is the batch dimension", crate::syntax::print::dim_text(dim)))
                                .help("parameters have fixed shapes; broadcasting applies them to every sample"),
                        );
                        return None;
                    }
                }
            }
            let init = super::builtins::initializer(self, init.as_ref(), &shape)?;
            let id = self.graph.param(
                crate::ir::graph::ParamInfo {
                    regularizer: None,
                    trainable: true,
                    name: format!("{layer_name}.{}", name.name),
                    shape: Shape::fixed(&shape),
                    init,
                },
                Some(*span),
            );
            ids.push(id);
        }
        Some(ids)
    }

    /// The step counter (an f32 scalar input), created once per graph.
    pub fn step_input(&mut self, span: Span) -> ValueId {
        if let Some(step) = self.step {
            return step;
        }
        let step = self
            .graph
            .input_value(crate::ir::optimizer::STEP)
            .unwrap_or_else(|| {
                self.graph.input(
                    crate::ir::optimizer::STEP,
                    TensorType::f32(Shape::scalar()),
                    Some(span),
                )
            });
        self.step = Some(step);
        step
    }
}

fn stmt_span(stmt: &ast::Stmt) -> Span {
    match stmt {
        ast::Stmt::Let(binding) => binding.span,
        ast::Stmt::Expr(expr) => expr.span,
        ast::Stmt::Error(span) => *span,
    }
}

/// Arithmetic on plain numbers (layer configuration, dimensions): whole numbers stay whole
/// unless a division leaves a remainder.
fn numbers(op: ast::BinaryOp, l: &Value, r: &Value, a: f64, b: f64) -> Value {
    if let (Value::Int(x), Value::Int(y)) = (l, r) {
        let whole = match op {
            ast::BinaryOp::Add => x.checked_add(*y),
            ast::BinaryOp::Sub => x.checked_sub(*y),
            ast::BinaryOp::Mul => x.checked_mul(*y),
            ast::BinaryOp::Div => (*y != 0 && x % y == 0).then(|| x / y),
            ast::BinaryOp::MatMul => None,
        };
        if let Some(n) = whole {
            return Value::Int(n);
        }
    }
    Value::Float(match op {
        ast::BinaryOp::Add => a + b,
        ast::BinaryOp::Sub => a - b,
        ast::BinaryOp::Mul => a * b,
        ast::BinaryOp::Div => a / b,
        ast::BinaryOp::MatMul => f64::NAN,
    })
}
