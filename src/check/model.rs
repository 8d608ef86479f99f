//! `model NAME(INPUT) -> OUTPUT { LAYERS }`: layers, widths and the declared types.

use super::program::*;
use super::*;
use crate::diag::Diagnostic;
use crate::diag::Span;
use crate::syntax::ast;

impl Checker {
    // ----- models -----

    pub(super) fn model(&mut self, decl: &ast::ModelDecl) {
        let fresh = self.declare(&decl.name, Kind::Model);
        let mut ok = true;
        let input = match decl.params.as_slice() {
            [ast::Param { ty: Some(ty), .. }] => self.tensor_type(ty, "E0201", "input", None),
            _ => {
                let span = match (decl.params.first(), decl.params.last()) {
                    (Some(first), Some(last)) => first.span.join(last.span),
                    _ => decl.name.span,
                };
                let count = decl.params.len();
                self.error(
                    Diagnostic::error("E0202", "a model takes exactly one input")
                        .primary(span, format!("{count} inputs declared"))
                        .help("declare one input such as `(x: f32[B, 32])`"),
                );
                None
            }
        };
        let output = self.tensor_type(
            &decl.outputs[0],
            "E0203",
            "output",
            input.as_ref().map(|(symbol, _)| {
                (
                    symbol.as_str(),
                    decl.params[0].ty.as_ref().map_or(decl.span, |t| t.span),
                )
            }),
        );
        let input_features = input.as_ref().map(|(_, n)| *n);

        let mut layers = Vec::new();
        let mut width = input_features;
        let mut last_span = None;
        for stmt in &decl.body {
            let expr = match stmt {
                ast::Stmt::Expr(expr) => expr,
                ast::Stmt::Error(_) | ast::Stmt::Let(_) => {
                    ok = false;
                    continue;
                }
            };
            last_span = Some(expr.span);
            match self.layer(expr, layers.len(), width) {
                Some(layer) => {
                    width = match layer.kind {
                        LayerKind::Dense { units, .. } => Some(units),
                    };
                    layers.push(layer);
                }
                None => {
                    ok = false;
                    width = None;
                }
            }
        }
        if decl.body.is_empty() {
            ok = false;
            self.error(
                Diagnostic::error("E0205", format!("model `{}` has no layers", decl.name.name))
                    .primary(decl.name.span, "this model is empty")
                    .help("add a layer such as `dense(10, softmax)`"),
            );
        }
        let (Some((batch_symbol, input_features)), Some((_, output_features))) = (input, output)
        else {
            return;
        };
        if !ok {
            return;
        }
        if let (Some(produced), Some(span)) = (width, last_span)
            && produced != output_features
        {
            self.error(
                Diagnostic::error(
                    "E0204",
                    "the model's last layer does not produce its declared output",
                )
                .primary(
                    span,
                    format!("this layer produces f32[{batch_symbol}, {produced}]"),
                )
                .secondary(
                    decl.outputs[0].span,
                    format!("the model declares f32[{batch_symbol}, {output_features}]"),
                )
                .help(format!(
                    "change the units of the last dense layer to {output_features}"
                )),
            );
            return;
        }
        if !fresh {
            return;
        }
        self.models.push(Model {
            name: decl.name.name.clone(),
            span: decl.span,
            input_name: decl.params[0].name.name.clone(),
            input_features,
            output_features,
            layers,
        });
        self.model_info.push(ModelInfo {
            input_type_span: decl.params[0].ty.as_ref().map_or(decl.span, |t| t.span),
            output_type_span: decl.outputs[0].span,
            batch_symbol,
        });
        self.set_index(&decl.name.name, self.models.len() - 1);
    }

    /// Reads `f32[B, N]`: returns the batch symbol and N. `batch` is the symbol it must use.
    fn tensor_type(
        &mut self,
        ty: &ast::TypeExpr,
        code: &'static str,
        role: &str,
        batch: Option<(&str, Span)>,
    ) -> Option<(String, usize)> {
        let no_dims = Vec::new();
        let dims = ty.dims.as_ref().unwrap_or(&no_dims);
        if dims.iter().any(|d| d.kind == ast::DimKind::Error) {
            return None;
        }
        let shape_help = format!(
            "a model's {role} is written like `f32[B, 32]`: a symbolic batch dimension, then the number of features"
        );
        if ty.dtype.name != "f32" {
            self.error(
                Diagnostic::error(
                    code,
                    format!("the model's {role} must have element type f32"),
                )
                .primary(ty.dtype.span, format!("found `{}`", ty.dtype.name))
                .help(shape_help),
            );
            return None;
        }
        let [first, second] = dims.as_slice() else {
            self.error(
                Diagnostic::error(code, format!("the model's {role} must have two dimensions"))
                    .primary(ty.span, format!("this type has {} dimensions", dims.len()))
                    .help(shape_help),
            );
            return None;
        };
        let ast::DimKind::Symbol(symbol) = &first.kind else {
            self.error(
                Diagnostic::error(
                    code,
                    format!("the first dimension of the model's {role} must be symbolic"),
                )
                .primary(first.span, "a fixed batch size")
                .help(shape_help),
            );
            return None;
        };
        let width = match &second.kind {
            ast::DimKind::Literal(n) => match usize::try_from(*n) {
                Ok(n) if n > 0 => n,
                _ => {
                    self.error(
                        Diagnostic::error(
                            code,
                            format!("the model's {role} width must be a positive number"),
                        )
                        .primary(second.span, "not a usable width"),
                    );
                    return None;
                }
            },
            _ => {
                self.error(
                    Diagnostic::error(code, format!("the model's {role} width must be a number"))
                        .primary(second.span, "a symbolic width")
                        .help(shape_help),
                );
                return None;
            }
        };
        if let Some((batch, input_span)) = batch
            && batch != symbol
        {
            self.error(
                Diagnostic::error(
                    "E0208",
                    "the output's batch dimension differs from the input's",
                )
                .primary(first.span, format!("`{symbol}` here"))
                .secondary(
                    input_span,
                    format!("the input's batch dimension is `{batch}`"),
                )
                .help(format!("use `{batch}`, the batch dimension of the input")),
            );
            return None;
        }
        Some((symbol.clone(), width))
    }

    fn layer(&mut self, expr: &ast::Expr, index: usize, width: Option<usize>) -> Option<Layer> {
        let (callee, call_args) = self.call_parts(expr, "a layer such as `dense(64, relu)`")?;
        let callee = &callee;
        if callee.name != "dense" {
            let mut d = Diagnostic::error("E0104", format!("unknown layer `{}`", callee.name))
                .primary(callee.span, "not a layer");
            if ACTIVATIONS.contains(&callee.name.as_str()) {
                d = d.help(format!(
                    "activations are arguments of a layer: `dense(64, {})`",
                    callee.name
                ));
            } else {
                d = with_suggestion(d, &callee.name, LAYERS).note("layers: dense");
            }
            self.error(d);
            return None;
        }
        let b = self.bind(callee, call_args, &["units", "activation"]);
        let units = self
            .required(&b, 0, callee)
            .and_then(|e| self.positive_int(e, "`units`"));
        let activation = match b.get(1) {
            None => Some(Activation::Linear),
            Some(e) => self.activation(e),
        };
        let name = if index == 0 {
            "dense".to_string()
        } else {
            format!("dense_{index}")
        };
        match (b.ok, units, activation, width) {
            (true, Some(units), Some(activation), Some(in_features)) => Some(Layer {
                name,
                span: expr.span,
                kind: LayerKind::Dense {
                    in_features,
                    units,
                    activation,
                },
            }),
            _ => None,
        }
    }

    fn activation(&mut self, expr: &ast::Expr) -> Option<Activation> {
        let name = self.name_value(expr, "an activation such as `relu`")?;
        let activation = match name.as_str() {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            other => {
                let d = Diagnostic::error("E0105", format!("unknown activation `{other}`"))
                    .primary(expr.span, "not an activation");
                let d = with_suggestion(d, other, ACTIVATIONS)
                    .note("activations: linear, relu, sigmoid, tanh, softmax");
                self.error(d);
                return None;
            }
        };
        Some(activation)
    }
}
