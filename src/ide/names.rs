//! Names in the syntax tree: every definition (data sets, top-level `let`s, models, layers,
//! functions, and inside an item its parameters, `param`s and `let`s) and every use, resolved
//! as the checker scopes them — an item's own names first, the top level after — for go to
//! definition, references, and document symbols.

use crate::diag::Span;
use crate::syntax::ast::*;

/// What a definition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolKind {
    Data,
    Constant,
    Model,
    Layer,
    Function,
    Fit,
    Action,
    /// A `let` or parameter inside an item.
    Local,
}

/// An entry of the document's outline.
#[derive(Clone, Debug, PartialEq)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// The whole item.
    pub span: Span,
    /// Its name.
    pub name_span: Span,
    pub children: Vec<Symbol>,
}

struct Def {
    name: String,
    span: Span,
    /// The item it belongs to (`None`: the top level).
    item: Option<usize>,
}

struct Use {
    name: String,
    span: Span,
    item: Option<usize>,
}

pub(super) struct Names {
    defs: Vec<Def>,
    uses: Vec<Use>,
}

impl Names {
    pub fn new(program: &Program) -> Names {
        let mut names = Names {
            defs: Vec::new(),
            uses: Vec::new(),
        };
        for (index, item) in program.items.iter().enumerate() {
            names.item(item, index);
        }
        names
    }

    fn def(&mut self, ident: &Ident, item: Option<usize>) {
        self.defs.push(Def {
            name: ident.name.clone(),
            span: ident.span,
            item,
        });
    }

    fn use_(&mut self, name: &str, span: Span, item: Option<usize>) {
        self.uses.push(Use {
            name: name.to_string(),
            span,
            item,
        });
    }

    fn item(&mut self, item: &Item, index: usize) {
        let local = Some(index);
        match item {
            Item::Data(data) => {
                self.def(&data.name, None);
                self.expr(&data.value, local);
            }
            Item::Let(binding) => {
                self.def(&binding.name, None);
                self.expr(&binding.value, local);
            }
            Item::Model(model) => {
                self.def(&model.name, None);
                self.params(&model.params, local);
                for ty in &model.outputs {
                    self.ty(ty, local);
                }
                self.stmts(&model.body, local);
            }
            Item::Layer(layer) => {
                self.def(&layer.name, None);
                self.params(&layer.params, local);
                for member in &layer.members {
                    match member {
                        LayerMember::Param { name, ty, init, .. } => {
                            self.def(name, local);
                            self.ty(ty, local);
                            if let Some(init) = init {
                                self.expr(init, local);
                            }
                        }
                        LayerMember::Forward(body) => self.fn_body(body, local),
                        LayerMember::Error(_) => {}
                    }
                }
            }
            Item::Fn(function) => {
                self.def(&function.name, None);
                self.fn_body(&function.body, local);
            }
            Item::Fit(fit) => {
                self.use_(&fit.model.name, fit.model.span, None);
                self.use_(&fit.data.name, fit.data.span, None);
                for setting in &fit.settings {
                    if let Setting::Pair { value, .. } = setting {
                        self.expr(value, local);
                    }
                }
            }
            Item::Action(action) => {
                self.use_(&action.model.name, action.model.span, None);
                if let Some(data) = &action.data {
                    self.use_(&data.name, data.span, None);
                }
            }
            Item::Error(_) => {}
        }
    }

    fn fn_body(&mut self, body: &FnBody, item: Option<usize>) {
        self.params(&body.params, item);
        for ty in body.outputs.iter().flatten() {
            self.ty(ty, item);
        }
        self.stmts(&body.body, item);
    }

    fn params(&mut self, params: &[Param], item: Option<usize>) {
        for param in params {
            self.def(&param.name, item);
            if let Some(ty) = &param.ty {
                self.ty(ty, item);
            }
            if let Some(default) = &param.default {
                self.expr(default, item);
            }
        }
    }

    fn stmts(&mut self, stmts: &[Stmt], item: Option<usize>) {
        for stmt in stmts {
            match stmt {
                Stmt::Let(binding) => {
                    // The value first: `let x = f(x)` uses the `x` before it.
                    self.expr(&binding.value, item);
                    if let Some(ty) = &binding.ty {
                        self.ty(ty, item);
                    }
                    self.def(&binding.name, item);
                }
                Stmt::Expr(expr) => self.expr(expr, item),
                Stmt::Error(_) => {}
            }
        }
    }

    fn ty(&mut self, ty: &TypeExpr, item: Option<usize>) {
        for dim in ty.dims.iter().flatten() {
            self.dim(dim, item);
        }
    }

    fn dim(&mut self, dim: &Dim, item: Option<usize>) {
        match &dim.kind {
            DimKind::Symbol(name) => self.use_(name, dim.span, item),
            DimKind::Binary { lhs, rhs, .. } => {
                self.dim(lhs, item);
                self.dim(rhs, item);
            }
            DimKind::Literal(_) | DimKind::Error => {}
        }
    }

    fn expr(&mut self, expr: &Expr, item: Option<usize>) {
        match &expr.kind {
            ExprKind::Name(name) => self.use_(name, expr.span, item),
            ExprKind::List(items) | ExprKind::Tuple(items) => {
                for e in items {
                    self.expr(e, item);
                }
            }
            ExprKind::Call { callee, args } => {
                self.expr(callee, item);
                for arg in args {
                    self.expr(&arg.value, item);
                }
            }
            ExprKind::Unary { operand, .. } => self.expr(operand, item),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.expr(lhs, item);
                self.expr(rhs, item);
            }
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Str(_)
            | ExprKind::Bool(_)
            | ExprKind::Error => {}
        }
    }

    /// The definition a use resolves to: the latest of its item's own before it (or any of
    /// them, for parameters used in types before the `let`s), else the top level's.
    fn resolve(&self, name: &str, at: Span, item: Option<usize>) -> Option<&Def> {
        let same = |d: &&Def| d.name == name;
        let local = || {
            self.defs
                .iter()
                .filter(|d| item.is_some() && d.item == item)
                .filter(same)
        };
        local()
            .rfind(|d| d.span.start <= at.start)
            .or_else(|| local().next())
            .or_else(|| self.defs.iter().filter(|d| d.item.is_none()).find(same))
    }

    /// The definition named at `offset`: a use's, or the definition itself.
    fn target(&self, offset: usize) -> Option<&Def> {
        let touches = |span: Span| span.start <= offset && offset <= span.end;
        if let Some(def) = self.defs.iter().find(|d| touches(d.span)) {
            return Some(def);
        }
        let found = self.uses.iter().find(|u| touches(u.span))?;
        self.resolve(&found.name, found.span, found.item)
    }

    /// Whether the program defines `name` anywhere (it then hides a built-in of that name).
    pub fn is_defined(&self, name: &str) -> bool {
        self.defs.iter().any(|d| d.name == name)
    }

    /// The top-level definitions' names.
    pub fn top_level(&self) -> impl Iterator<Item = &str> {
        self.defs
            .iter()
            .filter(|d| d.item.is_none())
            .map(|d| d.name.as_str())
    }

    /// The names defined inside item `item` before `offset` (its parameters and `let`s).
    pub fn locals(&self, item: usize, offset: usize) -> impl Iterator<Item = &str> {
        self.defs
            .iter()
            .filter(move |d| d.item == Some(item) && d.span.end <= offset)
            .map(|d| d.name.as_str())
    }

    pub fn definition(&self, offset: usize) -> Option<Span> {
        self.target(offset).map(|d| d.span)
    }

    pub fn references(&self, offset: usize, declaration: bool) -> Vec<Span> {
        let Some(target) = self.target(offset) else {
            return Vec::new();
        };
        let mut out: Vec<Span> = self
            .uses
            .iter()
            .filter(|u| {
                u.name == target.name
                    && self
                        .resolve(&u.name, u.span, u.item)
                        .is_some_and(|d| d.span == target.span)
            })
            .map(|u| u.span)
            .collect();
        if declaration {
            out.push(target.span);
        }
        out.sort_by_key(|s| s.start);
        out
    }
}

/// The document's outline: each item, with a model's and a function's `let`s and a layer's
/// `param`s under it.
pub fn symbols(program: &Program) -> Vec<Symbol> {
    let leaf = |name: &Ident, kind, span| Symbol {
        name: name.name.clone(),
        kind,
        span,
        name_span: name.span,
        children: Vec::new(),
    };
    let lets = |stmts: &[Stmt]| -> Vec<Symbol> {
        stmts
            .iter()
            .filter_map(|s| match s {
                Stmt::Let(binding) => Some(leaf(&binding.name, SymbolKind::Local, binding.span)),
                _ => None,
            })
            .collect()
    };
    program
        .items
        .iter()
        .filter_map(|item| {
            Some(match item {
                Item::Data(data) => leaf(&data.name, SymbolKind::Data, data.span),
                Item::Let(binding) => leaf(&binding.name, SymbolKind::Constant, binding.span),
                Item::Model(model) => Symbol {
                    children: lets(&model.body),
                    ..leaf(&model.name, SymbolKind::Model, model.span)
                },
                Item::Layer(layer) => Symbol {
                    children: layer
                        .members
                        .iter()
                        .filter_map(|m| match m {
                            LayerMember::Param { name, span, .. } => {
                                Some(leaf(name, SymbolKind::Local, *span))
                            }
                            _ => None,
                        })
                        .collect(),
                    ..leaf(&layer.name, SymbolKind::Layer, layer.span)
                },
                Item::Fn(function) => Symbol {
                    children: lets(&function.body.body),
                    ..leaf(&function.name, SymbolKind::Function, function.span)
                },
                Item::Fit(fit) => Symbol {
                    name: format!("fit {} on {}", fit.model.name, fit.data.name),
                    kind: SymbolKind::Fit,
                    span: fit.span,
                    name_span: fit.model.span,
                    children: Vec::new(),
                },
                Item::Action(action) => Symbol {
                    name: format!("{} {}", action.kind.keyword(), action.model.name),
                    kind: SymbolKind::Action,
                    span: action.span,
                    name_span: action.model.span,
                    children: Vec::new(),
                },
                Item::Error(_) => return None,
            })
        })
        .collect()
}
