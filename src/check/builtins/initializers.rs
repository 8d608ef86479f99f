//! Keras's initializers, each defined once: the name `param w: f32[…] = NAME` and a layer's
//! `ParamDef` use, its arguments with Keras's defaults, a documentation line, and the
//! distribution it picks for a parameter of a given shape.

use super::{ArgDef, ArgDefault, ArgKind, number_arg};
use crate::check::args::Aliases;
use crate::check::elab::Elab;
use crate::diag::Diagnostic;
use crate::ir::graph::Init;
use crate::settings::def::{self, AliasOf};
use crate::syntax::ast;

/// Every initializer, in the order the docs (and E0116's note) list them.
pub static INITIALIZERS: &[&InitializerDef] = &[
    &GLOROT_UNIFORM,
    &GLOROT_NORMAL,
    &HE_UNIFORM,
    &HE_NORMAL,
    &LECUN_UNIFORM,
    &LECUN_NORMAL,
    &ZEROS,
    &ONES,
    &NORMAL,
    &UNIFORM,
    &CONSTANT,
    &ORTHOGONAL,
];

/// The initializer called `name` (a name or an alias, `settings::def::ALIASES`).
pub fn find(name: &str) -> Option<&'static InitializerDef> {
    let name = def::canonical(AliasOf::Initializer, name);
    INITIALIZERS.iter().copied().find(|d| d.name == name)
}

pub struct InitializerDef {
    pub name: &'static str,
    /// One line for the docs' table.
    pub doc: &'static str,
    /// In positional order; all numbers.
    pub args: &'static [ArgDef],
    /// The distribution for a parameter with these fans (`fans`), given the arguments in the
    /// order of `args`, defaults filled in.
    pub init: fn(fans: (usize, usize), args: &[f32]) -> Init,
}

const fn number(name: &'static str, default: f64) -> ArgDef {
    ArgDef {
        name,
        kind: ArgKind::Number,
        default: ArgDefault::Number(default),
        doc: "",
    }
}

pub static GLOROT_UNIFORM: InitializerDef = InitializerDef {
    name: "glorot_uniform",
    doc: "U(−limit, limit), limit = √(6 / (fan_in + fan_out)); the default",
    args: &[],
    init: |(fan_in, fan_out), _| Init::GlorotUniform { fan_in, fan_out },
};
pub static GLOROT_NORMAL: InitializerDef = InitializerDef {
    name: "glorot_normal",
    doc: "normal with variance 2 / (fan_in + fan_out), truncated at two standard deviations",
    args: &[],
    init: |(fan_in, fan_out), _| Init::GlorotNormal { fan_in, fan_out },
};
pub static HE_UNIFORM: InitializerDef = InitializerDef {
    name: "he_uniform",
    doc: "U(−limit, limit), limit = √(6 / fan_in)",
    args: &[],
    init: |(fan_in, _), _| Init::HeUniform { fan_in },
};
pub static HE_NORMAL: InitializerDef = InitializerDef {
    name: "he_normal",
    doc: "normal with variance 2 / fan_in, truncated at two standard deviations",
    args: &[],
    init: |(fan_in, _), _| Init::HeNormal { fan_in },
};
pub static LECUN_UNIFORM: InitializerDef = InitializerDef {
    name: "lecun_uniform",
    doc: "U(−limit, limit), limit = √(3 / fan_in)",
    args: &[],
    init: |(fan_in, _), _| Init::LecunUniform { fan_in },
};
pub static LECUN_NORMAL: InitializerDef = InitializerDef {
    name: "lecun_normal",
    doc: "normal with variance 1 / fan_in, truncated at two standard deviations",
    args: &[],
    init: |(fan_in, _), _| Init::LecunNormal { fan_in },
};
pub static ZEROS: InitializerDef = InitializerDef {
    name: "zeros",
    doc: "all 0",
    args: &[],
    init: |_, _| Init::Zeros,
};
pub static ONES: InitializerDef = InitializerDef {
    name: "ones",
    doc: "all 1",
    args: &[],
    init: |_, _| Init::Constant { value: 1.0 },
};
pub static NORMAL: InitializerDef = InitializerDef {
    name: "normal",
    doc: "N(mean, std²), not truncated (Keras's `RandomNormal`)",
    args: &[number("std", 0.05), number("mean", 0.0)],
    init: |_, args| Init::Normal {
        mean: args[1],
        std: args[0],
    },
};
pub static UNIFORM: InitializerDef = InitializerDef {
    name: "uniform",
    doc: "U(−limit, limit) (Keras's `RandomUniform`)",
    args: &[number("limit", 0.05)],
    init: |_, args| Init::Uniform {
        min: -args[0],
        max: args[0],
    },
};
pub static CONSTANT: InitializerDef = InitializerDef {
    name: "constant",
    doc: "all `value` (a number on its own, `= 0.5`, means the same)",
    args: &[number("value", 0.0)],
    init: |_, args| Init::Constant { value: args[0] },
};

pub static ORTHOGONAL: InitializerDef = InitializerDef {
    name: "orthogonal",
    doc: "`gain` times a random orthogonal matrix over the last axis (Keras's `Orthogonal`: the QR decomposition of a normal matrix); a recurrent kernel's default",
    args: &[number("gain", 1.0)],
    init: |_, args| Init::Orthogonal { gain: args[0] },
};

/// An LSTM's bias with `unit_forget_bias` (not a name programs use): zeros, the forget gate's
/// block ones.
pub static UNIT_FORGET_BIAS: InitializerDef = InitializerDef {
    name: "unit_forget_bias",
    doc: "zeros, the forget gate's block ones",
    args: &[],
    init: |(len, _), _| Init::UnitForgetBias { units: len / 4 },
};

impl InitializerDef {
    /// The distribution for a parameter of `shape`, with `args` (one per `self.args`, `None`
    /// for a default).
    fn init_of(&self, shape: &[usize], args: &[Option<f32>]) -> Init {
        let values: Vec<f32> = self
            .args
            .iter()
            .zip(args.iter().chain(std::iter::repeat(&None)))
            .map(|(def, given)| match (given, def.default) {
                (Some(x), _) => *x,
                (None, ArgDefault::Number(x)) => x as f32,
                (None, _) => 0.0,
            })
            .collect();
        (self.init)(fans(shape), &values)
    }

    /// With its defaults, as a built-in layer's parameter uses it.
    pub fn with_defaults(&self, shape: &[usize]) -> Init {
        self.init_of(shape, &[])
    }

    /// `glorot_uniform`, `uniform(limit: 0.05)`: for the layers' table.
    pub fn doc_with_defaults(&self) -> String {
        match self.args {
            [] => self.name.to_string(),
            args => format!("{}({})", self.name, super::arg_docs(args).replace('`', "")),
        }
    }
}

/// The initializers' table in docs/language.md, written from the definitions (`tests/docs.rs`
/// checks that the page holds exactly this).
pub fn docs_table() -> String {
    let mut out = String::from(
        "| Initializer | What it is | Arguments in positional order, with Keras's defaults |\n\
         |---|---|---|\n",
    );
    for def in INITIALIZERS {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            def::name_doc(AliasOf::Initializer, def.name),
            def.doc,
            match def.args {
                [] => "none".to_string(),
                args => super::arg_docs(args),
            }
        ));
    }
    out
}

/// `param w: f32[...] = INIT`: Keras's initializers; the default is glorot_uniform.
pub fn initializer(el: &mut Elab, expr: Option<&ast::Expr>, shape: &[usize]) -> Option<Init> {
    let Some(expr) = expr else {
        return Some(GLOROT_UNIFORM.with_defaults(shape));
    };
    let (name, args): (&str, &[ast::Arg]) = match &expr.kind {
        // A string names one too, as in Keras (`kernel_initializer: "he_normal"`).
        ast::ExprKind::Name(name) | ast::ExprKind::Str(name) => (name, &[]),
        ast::ExprKind::Call { callee, args } => match &callee.kind {
            ast::ExprKind::Name(name) => (name, args.as_slice()),
            _ => ("", &[]),
        },
        ast::ExprKind::Int(_) | ast::ExprKind::Float(_) | ast::ExprKind::Unary { .. } => {
            let value = el.eval(expr);
            return match value.as_number() {
                Some(v) => Some(Init::Constant { value: v as f32 }),
                None => {
                    el.wrong_kind(&value, expr.span, "an initializer");
                    None
                }
            };
        }
        _ => ("", &[]),
    };
    if name.is_empty() {
        el.error(
            Diagnostic::error("E0116", "expected an initializer")
                .primary(expr.span, format!("found {}", crate::check::args::found(expr)))
                .help("write an initializer's name, such as `he_normal`, or call one, such as `normal(std: 0.01)`"),
        );
        return None;
    }
    let Some(def) = find(name) else {
        let names: Vec<&str> = INITIALIZERS.iter().map(|d| d.name).collect();
        let mut d = Diagnostic::error("E0116", format!("unknown initializer `{name}`"))
            .primary(expr.span, "not an initializer")
            .note(format!("initializers: {}", names.join(", ")));
        if let Some(best) =
            crate::suggest::closest(name, def::with_aliases(AliasOf::Initializer, &names))
        {
            d = d.help(format!("did you mean `{best}`?"));
        }
        el.error(d);
        return None;
    };
    let params: Vec<&str> = def.args.iter().map(|a| a.name).collect();
    let evaluated = el.eval_args(args);
    let slots = el.bind_args(name, evaluated, &params, Aliases::Keras)?;
    let mut numbers = Vec::new();
    for slot in slots {
        numbers.push(match slot {
            None => None,
            Some(arg) => {
                let span = arg.span;
                let x = number_arg(el, Some(arg), 0.0)? as f32;
                if !x.is_finite() {
                    el.error(
                        Diagnostic::error(
                            "E0303",
                            format!("`{name}`'s arguments must lie within f32's range (±3.4e38)"),
                        )
                        .primary(span, "too large for f32"),
                    );
                    return None;
                }
                Some(x)
            }
        });
    }
    Some(def.init_of(shape, &numbers))
}

/// Keras's fan computation: a matrix `[in, out]`; a vector is its own fan in and out; higher
/// ranks multiply the receptive field (all but the last two axes) in.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [i, o] => (*i, *o),
        _ => {
            let receptive: usize = shape[..shape.len() - 2]
                .iter()
                .fold(1usize, |a, &b| a.saturating_mul(b));
            (
                shape[shape.len() - 2].saturating_mul(receptive),
                shape[shape.len() - 1].saturating_mul(receptive),
            )
        }
    }
}
