//! Shape checking: resolves names, fills in defaults and checks every tensor shape.
//!
//! The checker reads the AST and produces a `program::CheckedProgram` or diagnostics. It reports
//! as many independent errors as it can, and stays quiet about anything that depends on a part
//! that already failed (a broken model is not also "unknown" to the `fit` that uses it).

mod args;
mod describe;
pub mod program;
mod suggest;

use crate::diag::{Diagnostic, Span};
use crate::syntax::ast;
use args::found;
use program::*;
use std::collections::HashMap;

pub use describe::describe;

pub const ACTIVATIONS: [&str; 5] = ["linear", "relu", "sigmoid", "tanh", "softmax"];
pub const LAYERS: [&str; 1] = ["dense"];
pub const DATA_SOURCES: [&str; 3] = ["synthetic_classification", "csv", "idx"];
pub const LOSSES: [&str; 2] = ["sparse_categorical_crossentropy", "mean_squared_error"];
pub const OPTIMIZERS: [&str; 2] = ["sgd", "adam"];
pub const METRICS: [&str; 1] = ["accuracy"];
pub const SETTINGS: [&str; 9] = [
    "loss",
    "optimizer",
    "metrics",
    "epochs",
    "batch",
    "seed",
    "shuffle",
    "validation",
    "validation_split",
];

/// Checks a parsed program. `None` iff any error was reported; warnings may accompany `Some`.
pub fn check(program: &ast::Program) -> (Option<CheckedProgram>, Vec<Diagnostic>) {
    let mut checker = Checker {
        lenient: program
            .items
            .iter()
            .any(|item| matches!(item, ast::Item::Error(_))),
        ..Checker::default()
    };
    for item in &program.items {
        match item {
            ast::Item::Data(data) => checker.data(data),
            ast::Item::Model(model) => checker.model(model),
            ast::Item::Fit(_) | ast::Item::Error(_) => {}
        }
    }
    for item in &program.items {
        if let ast::Item::Fit(fit) = item {
            checker.fit(fit);
        }
    }
    checker.unused_data();
    let failed = checker.diags.iter().any(Diagnostic::is_error);
    let checked = CheckedProgram {
        data: checker.data,
        models: checker.models,
        fits: checker.fits,
    };
    (if failed { None } else { Some(checked) }, checker.diags)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Model,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Data => "a data set",
            Kind::Model => "a model",
        }
    }
}

struct Entry {
    kind: Kind,
    span: Span,
    /// Index into the checked data or models; `None` when the declaration had errors.
    index: Option<usize>,
}

/// Source locations kept beside a checked data set, for errors that involve it later.
struct DataInfo {
    name_span: Span,
    features_span: Span,
    classes_span: Span,
    used: bool,
}

struct ModelInfo {
    input_type_span: Span,
    output_type_span: Span,
    batch_symbol: String,
}

#[derive(Default)]
struct Checker {
    diags: Vec<Diagnostic>,
    /// Some item failed to parse: a name it might have declared must not be called unknown.
    lenient: bool,
    names: HashMap<String, Entry>,
    data: Vec<DataSet>,
    data_info: Vec<DataInfo>,
    models: Vec<Model>,
    model_info: Vec<ModelInfo>,
    fits: Vec<Fit>,
}

impl Checker {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diags.push(diagnostic);
    }

    /// Registers a top-level name; reports a duplicate and returns false if it is taken.
    fn declare(&mut self, name: &ast::Ident, kind: Kind) -> bool {
        if let Some(previous) = self.names.get(&name.name) {
            let first = previous.span;
            self.error(
                Diagnostic::error(
                    "E0101",
                    format!("the name `{}` is defined twice", name.name),
                )
                .primary(name.span, "defined again here")
                .secondary(first, "first defined here")
                .help("data sets and models share one namespace; rename one of them"),
            );
            return false;
        }
        self.names.insert(
            name.name.clone(),
            Entry {
                kind,
                span: name.span,
                index: None,
            },
        );
        true
    }

    fn set_index(&mut self, name: &str, index: usize) {
        if let Some(entry) = self.names.get_mut(name) {
            entry.index = Some(index);
        }
    }

    // ----- data -----

    fn data(&mut self, decl: &ast::DataDecl) {
        let fresh = self.declare(&decl.name, Kind::Data);
        let Some((callee, call_args)) =
            self.call_parts(&decl.value, "a data source such as `csv(\"file.csv\")`")
        else {
            return;
        };
        let callee = &callee;
        let mut features_span = decl.value.span;
        let mut classes_span = decl.value.span;
        let source = match callee.name.as_str() {
            "synthetic_classification" => {
                let b = self.bind(
                    callee,
                    call_args,
                    &["samples", "features", "classes", "seed"],
                );
                let samples = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.positive_int(e, "`samples`"));
                let features = self
                    .required(&b, 1, callee)
                    .and_then(|e| self.positive_int(e, "`features`"));
                let classes = self
                    .required(&b, 2, callee)
                    .and_then(|e| self.positive_int(e, "`classes`"));
                let seed = match b.get(3) {
                    Some(e) => self.seed_value(e, "`seed`"),
                    None => Some(0),
                };
                if let Some(e) = b.get(1) {
                    features_span = e.span;
                }
                if let Some(e) = b.get(2) {
                    classes_span = e.span;
                }
                match (b.ok, samples, features, classes, seed) {
                    (true, Some(samples), Some(features), Some(classes), Some(seed)) => {
                        Some(DataSource::Synthetic {
                            samples,
                            features,
                            classes,
                            seed,
                        })
                    }
                    _ => None,
                }
            }
            "csv" => {
                let b = self.bind(callee, call_args, &["path", "label", "header", "scale"]);
                let path = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.string(e, "the csv path"));
                let header = match b.get(2) {
                    Some(e) => self.boolean(e, "`header`"),
                    None => Some(true),
                };
                let label = match b.get(1) {
                    None => Some(LabelColumn::Last),
                    Some(e) => self.label_column(e),
                };
                let scale = self.scale(b.get(3));
                if let (Some(LabelColumn::Name(_)), Some(false), Some(label_expr)) =
                    (&label, header, b.get(1))
                {
                    let span = label_expr.span;
                    self.error(
                        Diagnostic::error(
                            "E0310",
                            "a label column given by name needs a header row",
                        )
                        .primary(span, "a column name")
                        .secondary(
                            b.get(2).map_or(span, |e| e.span),
                            "but the file has no header",
                        )
                        .help("give the label as a zero-based column index, or set `header: true`"),
                    );
                    None
                } else {
                    match (b.ok, path, label, header, scale) {
                        (true, Some(path), Some(label), Some(header), Some(scale)) => {
                            Some(DataSource::Csv {
                                path,
                                label,
                                header,
                                scale,
                            })
                        }
                        _ => None,
                    }
                }
            }
            "idx" => {
                let b = self.bind(callee, call_args, &["images", "labels", "scale"]);
                let images = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.string(e, "the idx images path"));
                let labels = self
                    .required(&b, 1, callee)
                    .and_then(|e| self.string(e, "the idx labels path"));
                let scale = self.scale(b.get(2));
                match (b.ok, images, labels, scale) {
                    (true, Some(images), Some(labels), Some(scale)) => Some(DataSource::Idx {
                        images,
                        labels,
                        scale,
                    }),
                    _ => None,
                }
            }
            other => {
                let mut d = Diagnostic::error("E0106", format!("unknown data source `{other}`"))
                    .primary(callee.span, "not a data source");
                d = with_suggestion(d, other, DATA_SOURCES);
                self.error(d.note("data sources: synthetic_classification, csv, idx"));
                None
            }
        };
        if let (true, Some(source)) = (fresh, source) {
            self.data.push(DataSet {
                name: decl.name.name.clone(),
                span: decl.span,
                source,
            });
            self.data_info.push(DataInfo {
                name_span: decl.name.span,
                features_span,
                classes_span,
                used: false,
            });
            self.set_index(&decl.name.name, self.data.len() - 1);
        }
    }

    /// A data source's `scale` (features are divided by it): a positive number, default 1.
    fn scale(&mut self, expr: Option<&ast::Expr>) -> Option<f32> {
        match expr {
            None => Some(1.0),
            Some(e) => self.positive_f32(e, "`scale`"),
        }
    }

    fn label_column(&mut self, expr: &ast::Expr) -> Option<LabelColumn> {
        match &expr.kind {
            ast::ExprKind::Str(name) => Some(LabelColumn::Name(name.clone())),
            ast::ExprKind::Int(n) => match usize::try_from(*n) {
                Ok(index) => Some(LabelColumn::Index(index)),
                Err(_) => {
                    self.error(
                        Diagnostic::error("E0303", "`label` column index is too large")
                            .primary(expr.span, "out of range"),
                    );
                    None
                }
            },
            ast::ExprKind::Error => None,
            _ => {
                self.error(
                    Diagnostic::error("E0303", "`label` must be a column name or index")
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("write `label: \"species\"` or `label: 4`; omit it to use the last column"),
                );
                None
            }
        }
    }

    // ----- models -----

    fn model(&mut self, decl: &ast::ModelDecl) {
        let fresh = self.declare(&decl.name, Kind::Model);
        let mut ok = true;
        let input = match decl.params.as_slice() {
            [param] => self.tensor_type(&param.ty, "E0201", "input", None),
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
            &decl.output,
            "E0203",
            "output",
            input
                .as_ref()
                .map(|(symbol, _)| (symbol.as_str(), decl.params[0].ty.span)),
        );
        let input_features = input.as_ref().map(|(_, n)| *n);

        let mut layers = Vec::new();
        let mut width = input_features;
        let mut last_span = None;
        for stmt in &decl.body {
            let expr = match stmt {
                ast::Stmt::Expr(expr) => expr,
                ast::Stmt::Error(_) => {
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
                    decl.output.span,
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
            input_type_span: decl.params[0].ty.span,
            output_type_span: decl.output.span,
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
        if ty.dims.iter().any(|d| d.kind == ast::DimKind::Error) {
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
        let [first, second] = ty.dims.as_slice() else {
            self.error(
                Diagnostic::error(code, format!("the model's {role} must have two dimensions"))
                    .primary(
                        ty.span,
                        format!("this type has {} dimensions", ty.dims.len()),
                    )
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

    // ----- fit -----

    fn fit(&mut self, decl: &ast::FitDecl) {
        let model = self.lookup(&decl.model, Kind::Model);
        let data = self.lookup(&decl.data, Kind::Data);
        let head = Span::new(decl.span.start, decl.data.span.end);

        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut broken = false;
        let mut loss = None;
        let mut loss_span = head;
        let mut optimizer = Some(Optimizer::Adam {
            lr: 0.001,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        });
        let mut metrics = Some(Vec::new());
        let mut metric_spans = Vec::new();
        let mut epochs = Some(1);
        let mut batch = Some(32);
        let mut seed = Some(0);
        let mut shuffle = Some(true);
        // (data set index or split fraction, span of the key); `None` after an error.
        let mut validation_data: Option<Option<(usize, Span, Span)>> = Some(None);
        let mut validation_split: Option<Option<(f64, Span)>> = Some(None);
        let mut loss_given = false;
        for setting in &decl.settings {
            let (key, value) = match setting {
                ast::Setting::Pair { key, value, .. } => (key, value),
                ast::Setting::Error(_) => {
                    broken = true;
                    continue;
                }
            };
            let Some(known) = SETTINGS.iter().find(|s| **s == key.name) else {
                let d = Diagnostic::error("E0110", format!("unknown setting `{}`", key.name))
                    .primary(key.span, "not a fit setting");
                let d = with_suggestion(d, &key.name, SETTINGS).note(
                    "settings: loss, optimizer, metrics, epochs, batch, seed, shuffle, \
                         validation, validation_split",
                );
                self.error(d);
                broken = true;
                continue;
            };
            if let Some(first) = seen.get(known) {
                let first = *first;
                self.error(
                    Diagnostic::error("E0302", format!("`{known}` is set twice"))
                        .primary(key.span, "set again here")
                        .secondary(first, "first set here")
                        .help("remove one of them"),
                );
                continue;
            }
            seen.insert(known, key.span);
            match *known {
                "loss" => {
                    loss_given = true;
                    loss_span = value.span;
                    loss = self.loss(value);
                }
                "optimizer" => optimizer = self.optimizer(value),
                "metrics" => metrics = self.metrics(value, &mut metric_spans),
                "epochs" => epochs = self.positive_int(value, "`epochs`"),
                "batch" => batch = self.positive_int(value, "`batch`"),
                "seed" => seed = self.seed_value(value, "`seed`"),
                "shuffle" => shuffle = self.boolean(value, "`shuffle`"),
                "validation" => {
                    validation_data = self
                        .validation_data(value)
                        .map(|i| Some((i, key.span, value.span)))
                }
                _ => {
                    validation_split = self
                        .split_fraction(value, "`validation_split`")
                        .map(|f| Some((f, key.span)))
                }
            }
        }
        if !loss_given && !broken {
            self.error(
                Diagnostic::error("E0301", "`fit` needs a loss")
                    .primary(head, "no `loss` setting")
                    .help("add a line such as `loss sparse_categorical_crossentropy`"),
            );
        }
        let validation = match (validation_data, validation_split) {
            (Some(Some((_, data_span, _))), Some(Some((_, split_span)))) => {
                self.error(
                    Diagnostic::error("E0311", "`validation` and `validation_split` are both set")
                        .primary(split_span, "a split of the training data")
                        .secondary(data_span, "and a separate validation data set")
                        .help("keep one of them"),
                );
                None
            }
            (Some(Some((index, _, span))), Some(None)) => {
                Some(Some((Validation::Data(index), span)))
            }
            (Some(None), Some(Some((fraction, span)))) => {
                Some(Some((Validation::Split(fraction), span)))
            }
            (Some(None), Some(None)) => Some(None),
            _ => None,
        };
        let (Some(model), Some(data), Some(loss), Some(validation)) =
            (model, data, loss, validation)
        else {
            return;
        };
        let (Some(optimizer), Some(metrics), Some(epochs), Some(batch), Some(seed), Some(shuffle)) =
            (optimizer, metrics, epochs, batch, seed, shuffle)
        else {
            return;
        };
        let mut ok = self.compatible(decl, model, data, loss, loss_span, &metrics, &metric_spans);
        if let Some((Validation::Data(index), span)) = validation {
            ok &= self.data_fits_model(model, index, span, loss, loss_span);
        }
        if !ok {
            return;
        }
        self.fits.push(Fit {
            span: decl.span,
            model,
            data,
            loss,
            optimizer,
            metrics,
            epochs,
            batch,
            seed,
            shuffle,
            validation: validation.map(|(v, _)| v),
        });
    }

    /// `validation NAME`: a data set, looked up like the one after `on`.
    fn validation_data(&mut self, expr: &ast::Expr) -> Option<usize> {
        match &expr.kind {
            ast::ExprKind::Name(name) => {
                let before = self.diags.len();
                let index = self.lookup(
                    &ast::Ident {
                        name: name.clone(),
                        span: expr.span,
                    },
                    Kind::Data,
                );
                // A model named here: the help for `fit MODEL on DATA` does not fit.
                for d in &mut self.diags[before..] {
                    if d.code == "E0112" {
                        d.help = Some("`validation` names the data set to evaluate on".into());
                    }
                }
                index
            }
            ast::ExprKind::Error => None,
            _ => {
                self.error(
                    Diagnostic::error("E0303", "`validation` must name a data set")
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("declare `data test = ...` and write `validation test`"),
                );
                None
            }
        }
    }

    /// Cross-checks the model, the data and the loss; reports every mismatch.
    #[allow(clippy::too_many_arguments)]
    fn compatible(
        &mut self,
        decl: &ast::FitDecl,
        model: usize,
        data: usize,
        loss: Loss,
        loss_span: Span,
        metrics: &[Metric],
        metric_spans: &[Span],
    ) -> bool {
        let mut ok = true;
        if loss == Loss::MeanSquaredError {
            for (metric, span) in metrics.iter().zip(metric_spans) {
                if *metric == Metric::SparseCategoricalAccuracy {
                    ok = false;
                    self.error(
                        Diagnostic::error("E0307", "`accuracy` needs class labels")
                            .primary(*span, "accuracy compares predicted and true classes")
                            .secondary(loss_span, "but this loss trains on real-valued targets")
                            .help("remove `accuracy`, or use `sparse_categorical_crossentropy`"),
                    );
                }
            }
        }
        ok &= self.data_fits_model(model, data, decl.data.span, loss, loss_span);
        ok
    }

    /// What the checker knows statically about a data set, against the model and the loss:
    /// synthetic data declares its features and classes; synthetic and IDX data have class
    /// labels. `use_span` is where the fit names the data set.
    fn data_fits_model(
        &mut self,
        model: usize,
        data: usize,
        use_span: Span,
        loss: Loss,
        loss_span: Span,
    ) -> bool {
        let mut ok = true;
        let m = &self.models[model];
        let info = &self.model_info[model];
        let (model_name, input, output, b) = (
            m.name.clone(),
            m.input_features,
            m.output_features,
            info.batch_symbol.clone(),
        );
        let (input_span, output_span) = (info.input_type_span, info.output_type_span);
        let data_name = self.data[data].name.clone();
        let d_info = &self.data_info[data];
        let (features_span, classes_span) = (d_info.features_span, d_info.classes_span);
        let has_classes = matches!(
            self.data[data].source,
            DataSource::Synthetic { .. } | DataSource::Idx { .. }
        );
        if has_classes && loss == Loss::MeanSquaredError {
            ok = false;
            self.error(
                Diagnostic::error("E0308", "`mean_squared_error` cannot train on class labels")
                    .primary(loss_span, "this loss needs real-valued targets")
                    .secondary(use_span, format!("`{data_name}` has integer class labels"))
                    .help("use `loss sparse_categorical_crossentropy` for classification data"),
            );
        }
        if let DataSource::Synthetic {
            features, classes, ..
        } = self.data[data].source
        {
            if features != input {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0206",
                        format!("`{data_name}` has {features} features but `{model_name}` takes {input}"),
                    )
                    .primary(use_span, format!("this data has {features} features per sample"))
                    .secondary(features_span, format!("`{data_name}` declares {features} features"))
                    .secondary(input_span, format!("`{model_name}` takes f32[{b}, {input}]"))
                    .help(format!(
                        "make `features` {input}, or change the model's input to f32[{b}, {features}]"
                    )),
                );
            }
            if loss == Loss::SparseCategoricalCrossentropy && classes != output {
                ok = false;
                self.error(
                    Diagnostic::error(
                        "E0207",
                        format!("`{data_name}` has {classes} classes but `{model_name}` outputs {output}"),
                    )
                    .primary(use_span, format!("this data has {classes} classes"))
                    .secondary(classes_span, format!("`{data_name}` declares {classes} classes"))
                    .secondary(output_span, format!("`{model_name}` outputs f32[{b}, {output}]"))
                    .help(format!(
                        "sparse_categorical_crossentropy needs one output per class: make the output f32[{b}, {classes}]"
                    )),
                );
            }
        }
        ok
    }

    fn lookup(&mut self, name: &ast::Ident, kind: Kind) -> Option<usize> {
        match self.names.get(&name.name) {
            Some(entry) if entry.kind == kind => {
                let index = entry.index;
                if let (Kind::Data, Some(i)) = (kind, index) {
                    self.data_info[i].used = true;
                }
                index
            }
            Some(entry) => {
                let span = entry.span;
                let found = entry.kind.noun();
                self.error(
                    Diagnostic::error(
                        "E0112",
                        format!("`{}` is {found}, not {}", name.name, kind.noun()),
                    )
                    .primary(name.span, format!("expected {}", kind.noun()))
                    .secondary(span, format!("`{}` is defined here", name.name))
                    .help("write `fit MODEL on DATA`"),
                );
                None
            }
            None => {
                if self.lenient {
                    return None;
                }
                let (code, what) = match kind {
                    Kind::Data => ("E0103", "data set"),
                    Kind::Model => ("E0102", "model"),
                };
                let candidates: Vec<&str> = self
                    .names
                    .iter()
                    .filter(|(_, e)| e.kind == kind)
                    .map(|(n, _)| n.as_str())
                    .collect();
                let mut sorted = candidates;
                sorted.sort_unstable();
                let d = Diagnostic::error(code, format!("unknown {what} `{}`", name.name))
                    .primary(name.span, format!("no {what} with this name"));
                let d = with_suggestion(d, &name.name, sorted);
                self.error(d);
                None
            }
        }
    }

    fn loss(&mut self, expr: &ast::Expr) -> Option<Loss> {
        let name = self.name_value(expr, "a loss such as `sparse_categorical_crossentropy`")?;
        match name.as_str() {
            "sparse_categorical_crossentropy" => Some(Loss::SparseCategoricalCrossentropy),
            "mean_squared_error" => Some(Loss::MeanSquaredError),
            other => {
                let d = Diagnostic::error("E0107", format!("unknown loss `{other}`"))
                    .primary(expr.span, "not a loss");
                let d = with_suggestion(d, other, LOSSES)
                    .note("losses: sparse_categorical_crossentropy, mean_squared_error");
                self.error(d);
                None
            }
        }
    }

    fn optimizer(&mut self, expr: &ast::Expr) -> Option<Optimizer> {
        let (callee, call_args): (ast::Ident, &[ast::Arg]) = match &expr.kind {
            ast::ExprKind::Name(name) => (
                ast::Ident {
                    name: name.clone(),
                    span: expr.span,
                },
                &[],
            ),
            _ => self.call_parts(expr, "an optimizer such as `adam(lr: 0.001)`")?,
        };
        match callee.name.as_str() {
            "sgd" => {
                let b = self.bind(&callee, call_args, &["lr"]);
                let lr = b
                    .get(0)
                    .map_or(Some(0.01), |e| self.positive_f32(e, "`lr`"));
                Some(Optimizer::Sgd { lr: lr? }).filter(|_| b.ok)
            }
            "adam" => {
                let b = self.bind(&callee, call_args, &["lr", "beta1", "beta2", "eps"]);
                let lr = b
                    .get(0)
                    .map_or(Some(0.001), |e| self.positive_f32(e, "`lr`"));
                let beta1 = b.get(1).map_or(Some(0.9), |e| self.fraction(e, "`beta1`"));
                let beta2 = b
                    .get(2)
                    .map_or(Some(0.999), |e| self.fraction(e, "`beta2`"));
                let eps = b
                    .get(3)
                    .map_or(Some(1e-7), |e| self.positive_f32(e, "`eps`"));
                match (b.ok, lr, beta1, beta2, eps) {
                    (true, Some(lr), Some(beta1), Some(beta2), Some(eps)) => {
                        Some(Optimizer::Adam {
                            lr,
                            beta1,
                            beta2,
                            eps,
                        })
                    }
                    _ => None,
                }
            }
            other => {
                let d = Diagnostic::error("E0108", format!("unknown optimizer `{other}`"))
                    .primary(callee.span, "not an optimizer");
                let d = with_suggestion(d, other, OPTIMIZERS).note("optimizers: sgd, adam");
                self.error(d);
                None
            }
        }
    }

    fn metrics(&mut self, expr: &ast::Expr, spans: &mut Vec<Span>) -> Option<Vec<Metric>> {
        let ast::ExprKind::List(items) = &expr.kind else {
            if expr.kind != ast::ExprKind::Error {
                self.error(
                    Diagnostic::error("E0303", "`metrics` must be a list")
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("write `metrics [accuracy]`"),
                );
            }
            return None;
        };
        let mut metrics = Some(Vec::new());
        for item in items {
            let metric = match self.name_value(item, "a metric such as `accuracy`") {
                Some(name) if name == "accuracy" => Some(Metric::SparseCategoricalAccuracy),
                Some(other) => {
                    let d = Diagnostic::error("E0109", format!("unknown metric `{other}`"))
                        .primary(item.span, "not a metric");
                    let d = with_suggestion(d, &other, METRICS).note("metrics: accuracy");
                    self.error(d);
                    None
                }
                None => None,
            };
            match (metric, metrics.as_mut()) {
                (Some(metric), Some(list)) => {
                    list.push(metric);
                    spans.push(item.span);
                }
                _ => metrics = None,
            }
        }
        metrics
    }

    fn unused_data(&mut self) {
        if self.lenient {
            return;
        }
        for (data, info) in self.data.iter().zip(&self.data_info) {
            if !info.used {
                self.diags.push(
                    Diagnostic::warning("W0101", format!("data set `{}` is never used", data.name))
                        .primary(info.name_span, "declared here")
                        .help(format!(
                            "train on it with `fit MODEL on {}`, or remove it",
                            data.name
                        )),
                );
            }
        }
    }
}

fn with_suggestion<'a>(
    d: Diagnostic,
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Diagnostic {
    match suggest::closest(name, candidates) {
        Some(best) => d.help(format!("did you mean `{best}`?")),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

    fn check_source(source: &str) -> (Option<CheckedProgram>, Vec<Diagnostic>) {
        let (ast, diagnostics) = parse(source);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        check(&ast)
    }

    #[test]
    fn seed_program_checks_with_keras_defaults() {
        let (checked, diagnostics) = check_source(include_str!("../../programs/seed.model"));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let checked = checked.expect("checks");
        let model = &checked.models[0];
        assert_eq!((model.input_features, model.output_features), (32, 10));
        let names: Vec<&str> = model.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["dense", "dense_1", "dense_2"]);
        assert_eq!(model.output_activation(), Activation::Softmax);
        let fit = &checked.fits[0];
        assert_eq!(
            fit.optimizer,
            Optimizer::Adam {
                lr: 0.001,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-7
            }
        );
        assert_eq!(
            (fit.epochs, fit.batch, fit.seed, fit.shuffle),
            (5, 32, 7, true)
        );
        assert_eq!(fit.metrics, [Metric::SparseCategoricalAccuracy]);
    }

    #[test]
    fn iris_program_checks() {
        let (checked, diagnostics) = check_source(include_str!("../../programs/iris.model"));
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let checked = checked.expect("checks");
        assert_eq!(
            checked.data[0].source,
            DataSource::Csv {
                path: "data/iris.csv".into(),
                label: LabelColumn::Name("species".into()),
                header: true,
                scale: 1.0
            }
        );
    }

    #[test]
    fn huge_values_are_errors_not_panics() {
        let source = "data d = synthetic_classification(18446744073709551615, 4, 2, 18446744073709551615)\n\
                      model m(x: f32[B, 18446744073709551615]) -> f32[B, 2] { dense(2) }\n\
                      fit m on d { loss sparse_categorical_crossentropy; epochs 18446744073709551615 }";
        let (_, diagnostics) = check_source(source);
        assert!(diagnostics.iter().all(|d| d.code.starts_with('E')));
    }
}
