//! What an expression at the REPL prompt may use beyond a model body: the session's tensor
//! variables, tensor literals (`[[1, 2], [3, 4]]`) and constructors (`zeros`, `ones`, `randn`,
//! `arange`). Each becomes an input of the expression's graph, fed with its values when the
//! compiled graph runs. A model has no such inputs (its constants are numbers), so these exist
//! only at the prompt.

use super::elab::Elab;
use super::expression::{Feed, Variable};
use super::value::*;
use crate::diag::{Diagnostic, Span};
use crate::ir::graph::ValueId;
use crate::ir::shape::{DType, Shape, TensorType};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::HashMap;

/// Functions that make tensor constants.
pub const CONSTRUCTORS: &[&str] = &["zeros", "ones", "randn", "arange"];

/// The most elements a tensor constant may have (64 MB of f32): a typo such as
/// `zeros(100000, 100000)` is an error, not an out-of-memory abort.
const MAX_ELEMENTS: usize = 1 << 24;

#[derive(Default)]
pub(super) struct Prompt {
    pub variables: Vec<Variable>,
    /// What to feed each input of the graph, by input index.
    pub feeds: Vec<Feed>,
    /// The input node of each variable used so far, by variable index.
    pub bound: HashMap<usize, ValueId>,
    /// The seed of the next `randn` without one.
    pub next_seed: u64,
}

impl Elab<'_> {
    /// A session variable (an input of the graph, made on first use) or a constructor.
    pub(super) fn prompt_name(&mut self, name: &str, span: Span) -> Option<Value> {
        let prompt = self.prompt.as_mut()?;
        if let Some(index) = prompt.variables.iter().position(|v| v.name == name) {
            let id = match prompt.bound.get(&index) {
                Some(&id) => id,
                None => {
                    let ty = prompt.variables[index].ty.clone();
                    prompt.feeds.push(Feed::Variable(index));
                    let id = self.graph.input(name, ty, Some(span));
                    if let Some(prompt) = self.prompt.as_mut() {
                        prompt.bound.insert(index, id);
                    }
                    id
                }
            };
            // No origin: a variable's shape comes from an earlier entry, not this one.
            return Some(Value::Tensor(Tensor {
                id,
                origin: Span::default(),
            }));
        }
        let constructor = CONSTRUCTORS.iter().find(|c| **c == name)?;
        Some(Value::Func(Func::Builtin(constructor)))
    }

    /// A list of numbers where a tensor is expected, at the prompt: a tensor literal. Anything
    /// else is returned as it is, for the caller's own error.
    pub fn tensor_literal(&mut self, value: Value, span: Span) -> Value {
        match value {
            Value::List(_) if self.prompt.is_some() => match self.literal(&value, span) {
                Some(t) => Value::Tensor(t),
                None => Value::Error,
            },
            other => other,
        }
    }

    /// A nested list of numbers as an f32 tensor constant: `[[1, 2], [3, 4]]` is f32[2, 2].
    pub fn literal(&mut self, value: &Value, span: Span) -> Option<Tensor> {
        let mut shape = Vec::new();
        let mut probe = value;
        while let Value::List(items) = probe {
            shape.push(items.len());
            match items.first() {
                Some(first) => probe = first,
                None => break,
            }
        }
        let mut data = Vec::new();
        if let Err(problem) = flatten(value, &shape, &mut data) {
            if problem.is_empty() {
                return None; // an element that already failed
            }
            self.error(
                Diagnostic::error("E0303", format!("this is not a tensor literal: {problem}"))
                    .primary(span, "in this list")
                    .help("a tensor literal is a list of numbers, or of equal-length lists: `[[1, 2], [3, 4]]`"),
            );
            return None;
        }
        if data.is_empty() {
            self.error(
                Diagnostic::error("E0303", "a tensor literal needs at least one number")
                    .primary(span, "empty"),
            );
            return None;
        }
        Some(self.constant_tensor(&shape, data, span))
    }

    /// A tensor constant: an input of the graph, fed with `data`.
    pub fn constant_tensor(&mut self, shape: &[usize], data: Vec<f32>, span: Span) -> Tensor {
        let ty = TensorType {
            dtype: DType::F32,
            shape: Shape::fixed(shape),
        };
        let name = format!("const{}", self.graph.inputs.len());
        let id = self.graph.input(&name, ty, Some(span));
        if let Some(prompt) = self.prompt.as_mut() {
            prompt.feeds.push(Feed::Constant(data));
        }
        Tensor { id, origin: span }
    }

    /// `zeros(2, 3)`, `ones([2, 3])`, `randn(2, 3, seed: 7)`, `arange(5)`, `arange(1, 2, 0.25)`.
    pub fn construct(&mut self, name: &str, args: Vec<ArgValue>, span: Span) -> Value {
        let mut positional = Vec::new();
        let mut seed = None;
        for arg in args {
            match &arg.name {
                None => positional.push(arg),
                Some(n) if n.name == "seed" && name == "randn" => seed = Some(arg),
                Some(n) => {
                    let takes = if name == "randn" {
                        "dimensions and `seed`"
                    } else {
                        "only positional arguments"
                    };
                    self.error(
                        Diagnostic::error(
                            "E0111",
                            format!("`{name}` has no argument `{}`", n.name),
                        )
                        .primary(n.span, "unknown argument")
                        .note(format!("`{name}` takes {takes}")),
                    );
                    return Value::Error;
                }
            }
        }
        let made = if name == "arange" {
            self.arange_values(&positional, span)
                .map(|data| (vec![data.len()], data))
        } else {
            self.dims(&positional, span).and_then(|shape| {
                let count = shape.iter().product();
                let data = match name {
                    "zeros" => vec![0.0; count],
                    "ones" => vec![1.0; count],
                    _ => {
                        let seed = match seed {
                            Some(arg) => match arg.value {
                                Value::Int(n) if n >= 0 => n as u64,
                                other => {
                                    self.wrong_kind(&other, arg.span, "a whole number ≥ 0");
                                    return None;
                                }
                            },
                            None => {
                                let prompt = self.prompt.as_mut()?;
                                prompt.next_seed += 1;
                                prompt.next_seed - 1
                            }
                        };
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        (0..count)
                            .map(|_| {
                                let x: f64 = StandardNormal.sample(&mut rng);
                                x as f32
                            })
                            .collect()
                    }
                };
                Some((shape, data))
            })
        };
        match made {
            Some((shape, data)) => Value::Tensor(self.constant_tensor(&shape, data, span)),
            None => Value::Error,
        }
    }

    /// A constructor's dimensions: whole numbers (`zeros(2, 3)`) or one list or tuple of them.
    fn dims(&mut self, args: &[ArgValue], span: Span) -> Option<Vec<usize>> {
        let (values, at): (Vec<Value>, Vec<Span>) = match args {
            [
                ArgValue {
                    value: Value::List(items) | Value::Tuple(items),
                    span,
                    ..
                },
            ] => (items.clone(), vec![*span; items.len()]),
            _ => args.iter().map(|a| (a.value.clone(), a.span)).unzip(),
        };
        if values.is_empty() {
            self.error(
                Diagnostic::error("E0304", "a tensor constructor needs its dimensions")
                    .primary(span, "no dimensions given")
                    .help("e.g. `zeros(2, 3)` for f32[2, 3]"),
            );
            return None;
        }
        let mut shape = Vec::new();
        for (value, at) in values.iter().zip(at) {
            match value {
                Value::Int(n) if *n >= 1 => shape.push(*n as usize),
                Value::Int(n) => {
                    self.error(
                        Diagnostic::error("E0303", "a dimension must be at least 1")
                            .primary(at, format!("found {n}")),
                    );
                    return None;
                }
                other => {
                    self.wrong_kind(other, at, "a whole number ≥ 1 as a dimension");
                    return None;
                }
            }
        }
        let count = shape
            .iter()
            .try_fold(1usize, |total, &n| total.checked_mul(n));
        if count.is_none_or(|count| count > MAX_ELEMENTS) {
            self.error(
                Diagnostic::error("E0303", "this tensor is too large for the prompt")
                    .primary(span, format!("{shape:?} elements"))
                    .note(format!("at most {MAX_ELEMENTS} elements")),
            );
            return None;
        }
        Some(shape)
    }

    /// NumPy's `arange`: `arange(stop)`, `arange(start, stop)`, `arange(start, stop, step)`.
    fn arange_values(&mut self, args: &[ArgValue], span: Span) -> Option<Vec<f32>> {
        let mut numbers = Vec::new();
        for arg in args {
            match arg.value.as_number() {
                Some(x) if x.is_finite() => numbers.push(x),
                _ => {
                    self.wrong_kind(&arg.value, arg.span, "a number");
                    return None;
                }
            }
        }
        let (start, stop, step) = match numbers[..] {
            [stop] => (0.0, stop, 1.0),
            [start, stop] => (start, stop, 1.0),
            [start, stop, step] if step != 0.0 => (start, stop, step),
            [_, _, _] => {
                self.error(
                    Diagnostic::error("E0303", "`arange`'s step cannot be 0")
                        .primary(args[2].span, "zero step"),
                );
                return None;
            }
            _ => {
                self.error(
                    Diagnostic::error("E0305", "`arange` takes one to three numbers")
                        .primary(span, format!("{} given", numbers.len()))
                        .help(
                            "`arange(stop)`, `arange(start, stop)` or `arange(start, stop, step)`",
                        ),
                );
                return None;
            }
        };
        let count = ((stop - start) / step).ceil().max(0.0);
        if count < 1.0 || count > MAX_ELEMENTS as f64 {
            // `1e300` rather than its 301 digits.
            let count = if count < 1e16 {
                format!("{count}")
            } else {
                format!("{count:e}")
            };
            self.error(
                Diagnostic::error("E0303", format!("`arange` here gives {count} elements"))
                    .primary(span, "no elements, or too many")
                    .note(format!("it needs between 1 and {MAX_ELEMENTS}")),
            );
            return None;
        }
        Some(
            (0..count as usize)
                .map(|i| (start + i as f64 * step) as f32)
                .collect(),
        )
    }
}

/// Row-major values of a nested list of the given shape, or what is wrong with it.
fn flatten(value: &Value, shape: &[usize], out: &mut Vec<f32>) -> Result<(), String> {
    match (value, shape.split_first()) {
        (Value::List(items), Some((&len, rest))) => {
            if items.len() != len {
                return Err(format!(
                    "its rows have different lengths ({len} and {})",
                    items.len()
                ));
            }
            items.iter().try_for_each(|item| flatten(item, rest, out))
        }
        (Value::Int(_) | Value::Float(_), None) => {
            out.push(value.as_number().unwrap_or_default() as f32);
            Ok(())
        }
        (Value::List(_), None) | (Value::Int(_) | Value::Float(_), Some(_)) => {
            Err("its rows are nested to different depths".into())
        }
        (Value::Error, _) => Err(String::new()),
        (other, _) => Err(format!("it holds {}", other.kind_name())),
    }
}
