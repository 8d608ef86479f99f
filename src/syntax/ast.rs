//! The syntax tree: exactly what was written, with a span on every node. Nothing is resolved
//! here; names, kinds of values and shapes are the checker's business.

use crate::diag::Span;

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Data(DataDecl),
    /// A top-level `let NAME = EXPR`: a constant usable everywhere after it.
    Let(LetStmt),
    Model(ModelDecl),
    Layer(LayerDecl),
    Fn(FnDecl),
    Fit(FitDecl),
    Action(ActionDecl),
    /// An item the parser could not read; already reported.
    Error(Span),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Data(data) => data.span,
            Item::Let(binding) => binding.span,
            Item::Model(model) => model.span,
            Item::Layer(layer) => layer.span,
            Item::Fn(function) => function.span,
            Item::Fit(fit) => fit.span,
            Item::Action(action) => action.span,
            Item::Error(span) => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `data NAME = EXPR`
#[derive(Clone, Debug, PartialEq)]
pub struct DataDecl {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

/// `model NAME(PARAM: TYPE, ...) -> TYPE { STMT* }`; several outputs are written
/// `-> (TYPE, TYPE)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub outputs: Vec<TypeExpr>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `layer NAME(CONFIG, ...) { param ...; forward(...) -> TYPE { ... } }`
#[derive(Clone, Debug, PartialEq)]
pub struct LayerDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub members: Vec<LayerMember>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum LayerMember {
    /// `param NAME: TYPE = INITIALIZER`
    Param {
        name: Ident,
        ty: TypeExpr,
        init: Option<Expr>,
        span: Span,
    },
    /// `forward(PARAM, ...) -> TYPE { STMT* }`
    Forward(FnBody),
    /// A member the parser could not read; already reported.
    Error(Span),
}

/// `fn NAME(PARAM, ...) -> TYPE = EXPR` or `fn NAME(PARAM, ...) -> TYPE { STMT* }`.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDecl {
    pub name: Ident,
    pub body: FnBody,
    pub span: Span,
}

/// Parameters, optional declared result types and a body whose last statement is the result.
#[derive(Clone, Debug, PartialEq)]
pub struct FnBody {
    pub params: Vec<Param>,
    pub outputs: Option<Vec<TypeExpr>>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// `NAME`, `NAME: TYPE` or `NAME: TYPE = DEFAULT` (a layer's configuration may have defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub default: Option<Expr>,
    pub span: Span,
}

/// A tensor type such as `f32[B, 32]`, or a scalar kind such as `int` (no brackets).
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub dtype: Ident,
    pub dims: Option<Vec<Dim>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dim {
    pub kind: DimKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum DimKind {
    Literal(u64),
    Symbol(String),
    /// Dimension arithmetic such as `7 * 7 * 64` or `units * 2`.
    Binary {
        op: BinaryOp,
        lhs: Box<Dim>,
        rhs: Box<Dim>,
    },
    /// A dimension literal that was out of range; already reported.
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `let NAME = EXPR` or `let NAME: TYPE = EXPR`
    Let(LetStmt),
    Expr(Expr),
    /// A statement the parser could not read; already reported.
    Error(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct LetStmt {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Expr,
    pub span: Span,
}

/// `evaluate MODEL on DATA`, `predict MODEL on DATA to PATH`, `save MODEL to PATH`,
/// `load MODEL from PATH`, `generate MODEL from TEXT (OPTION VALUE)*`: run in program order
/// with the `fit`s.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionDecl {
    pub kind: ActionKind,
    pub model: Ident,
    pub data: Option<Ident>,
    /// The file (`predict`, `save`, `load`), or the text `generate` starts from.
    pub path: Option<Expr>,
    /// `generate`'s options (`length 200`, `temperature 0.8`, `seed 1`); empty for the rest.
    pub options: Vec<(Ident, Expr)>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    Evaluate,
    Predict,
    Generate,
    Save,
    Load,
}

impl ActionKind {
    pub fn keyword(self) -> &'static str {
        match self {
            ActionKind::Evaluate => "evaluate",
            ActionKind::Predict => "predict",
            ActionKind::Generate => "generate",
            ActionKind::Save => "save",
            ActionKind::Load => "load",
        }
    }
}

/// `fit MODEL on DATA { KEY VALUE* }`
#[derive(Clone, Debug, PartialEq)]
pub struct FitDecl {
    pub model: Ident,
    pub data: Ident,
    pub settings: Vec<Setting>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Setting {
    /// `KEY VALUE`, e.g. `epochs 5`.
    Pair { key: Ident, value: Expr, span: Span },
    /// A setting line the parser could not read; already reported.
    Error(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// How many expressions deep this one is, itself included (a number is 1, `-x` is 2): the
    /// parser refuses nesting past `parser::MAX_NESTING`, which every later stage relies on, as
    /// they walk expressions recursively.
    pub depth: u32,
}

impl Expr {
    /// An expression of `kind` one level above the deepest of its sub-expressions.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        let below = match &kind {
            ExprKind::List(items) | ExprKind::Tuple(items) => {
                items.iter().map(|e| e.depth).max().unwrap_or(0)
            }
            ExprKind::Call { callee, args } => args
                .iter()
                .map(|a| a.value.depth)
                .chain([callee.depth])
                .max()
                .unwrap_or(0),
            ExprKind::Unary { operand, .. } => operand.depth,
            ExprKind::Binary { lhs, rhs, .. } => lhs.depth.max(rhs.depth),
            _ => 0,
        };
        Expr {
            kind,
            span,
            depth: below + 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(u64),
    Float(f64),
    Str(String),
    Bool(bool),
    Name(String),
    List(Vec<Expr>),
    /// `(a, b)`: several values, e.g. a model's several outputs.
    Tuple(Vec<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// An expression that could not be read (e.g. an out-of-range number); already reported.
    Error,
}

/// A call argument: positional (`64`) or named (`activation: relu`).
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    MatMul,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::MatMul => "@",
        }
    }
}
