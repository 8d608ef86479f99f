//! `data NAME = SOURCE`: data sources and their arguments.

use super::args::{Aliases, found};
use super::*;
use crate::diag::Diagnostic;
use crate::program::*;
use crate::settings::data_source;
use crate::settings::*;
use crate::syntax::ast;

impl Checker {
    // ----- data -----

    pub(super) fn data(&mut self, decl: &ast::DataDecl) {
        let decl = &ast::DataDecl {
            value: self.with_constants(&decl.value),
            ..decl.clone()
        };
        let fresh = self.declare(&decl.name, Kind::Data);
        let Some((callee, call_args)) =
            self.call_parts(&decl.value, "a data source such as `csv(\"file.csv\")`")
        else {
            return;
        };
        let callee = &callee;
        let mut features_span = decl.value.span;
        let mut classes_span = decl.value.span;
        let mut scale_span = None;
        let Some(def) = data_source::find(&callee.name) else {
            let names = data_source::names();
            self.error(unknown(
                "E0106",
                "data source",
                callee,
                "not a data source",
                &names,
                format!("data sources: {}", names.join(", ")),
            ));
            return;
        };
        let b = self.bind(callee, call_args, &def.param_names(), Aliases::None);
        if let Some(at) = def.param_names().iter().position(|&p| p == "scale") {
            scale_span = b.get(at).map(|e| e.span);
        }
        let source = match def.name {
            "synthetic_classification" => {
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
                let path = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.string(e, "the csv path"));
                let header = match b.get(2) {
                    Some(e) => self.boolean(e, "`header`"),
                    None => Some(true),
                };
                let label = match b.get(1) {
                    None => Some(LabelColumn::Last),
                    // Unlabelled data, for `predict`.
                    Some(e) if matches!(&e.kind, ast::ExprKind::Name(n) if n == "none") => {
                        Some(LabelColumn::None)
                    }
                    Some(e) => self.label_column(e, "label"),
                };
                let scale = self.scale(b.get(3));
                let delimiter = match b.get(4) {
                    None => Some(','),
                    Some(e) => self.delimiter(e),
                };
                let features = match b.get(6) {
                    None => Some(None),
                    Some(e) => self.column_list(e, "features").map(Some),
                };
                let fill = match b.get(7) {
                    None => Some(Fill::Reject),
                    Some(e) => self.fill(e),
                };
                let categorical = match b.get(8) {
                    None => Some(Vec::new()),
                    Some(e) => self.column_list(e, "categorical"),
                };
                let encoding = match b.get(9) {
                    None => Some(CategoryEncoding::OneHot),
                    Some(e) => {
                        let names = CategoryEncoding::ALL.map(CategoryEncoding::name);
                        let encoding =
                            self.one_of(e, "`encoding`", CategoryEncoding::from_name, &names);
                        if encoding.is_some() && b.get(8).is_none() {
                            self.error(
                                Diagnostic::error(
                                    "E0869",
                                    "`encoding` is given, but no column is `categorical`",
                                )
                                .primary(e.span, "encodes categorical columns")
                                .help(
                                    "list the columns of categories: `categorical: [\"island\"]`",
                                ),
                            );
                            None
                        } else {
                            encoding
                        }
                    }
                };
                let mut weight = match b.get(5) {
                    None => Some(None),
                    Some(e) => self.label_column(e, "weight").map(Some),
                };
                if let (Some(Some(w)), Some(l), Some(e)) = (&weight, &label, b.get(5))
                    && (w == l || matches!(w, LabelColumn::Name(_)) && header == Some(false))
                {
                    let d = if w == l {
                        Diagnostic::error("E0864", "the weight column is the label column")
                            .primary(e.span, "weights")
                            .secondary(b.get(1).map_or(e.span, |l| l.span), "labels")
                            .help("name the column that holds each sample's weight")
                    } else {
                        Diagnostic::error(
                            "E0310",
                            "a weight column given by name needs a header row",
                        )
                        .primary(e.span, "a column name")
                        .help("give the weight as a zero-based column index, or set `header: true`")
                    };
                    self.error(d);
                    weight = None;
                }
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
                    let named = |c: &Option<Vec<LabelColumn>>| {
                        (c.iter().flatten()).any(|c| matches!(c, LabelColumn::Name(_)))
                    };
                    let features = match (features, header, b.get(6)) {
                        (Some(f), Some(false), Some(e)) if named(&f) => {
                            self.error(
                                Diagnostic::error(
                                    "E0310",
                                    "feature columns given by name need a header row",
                                )
                                .primary(e.span, "column names")
                                .help("give the features as zero-based column indices, or set `header: true`"),
                            );
                            None
                        }
                        (Some(Some(f)), _, Some(e)) => {
                            self.distinct_features(f, &label, &weight, e)
                        }
                        (f, _, _) => f,
                    };
                    let categorical = match (categorical, b.get(8)) {
                        (Some(c), Some(e)) => self.distinct_categorical(
                            c,
                            &label,
                            &weight,
                            features.as_ref(),
                            header,
                            e,
                        ),
                        (c, _) => c,
                    };
                    match (
                        b.ok,
                        path,
                        label,
                        header,
                        scale,
                        delimiter,
                        weight,
                        (features, fill, categorical, encoding),
                    ) {
                        (
                            true,
                            Some(path),
                            Some(label),
                            Some(header),
                            Some(scale),
                            Some(delimiter),
                            Some(weight),
                            (Some(features), Some(fill), Some(categorical), Some(encoding)),
                        ) => Some(DataSource::Csv {
                            path,
                            label,
                            header,
                            scale,
                            delimiter,
                            weight,
                            features,
                            fill,
                            categorical,
                            encoding,
                        }),
                        _ => None,
                    }
                }
            }
            "idx" => {
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
            "npy" => {
                let features = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.string(e, "the features .npy path"));
                let labels = self
                    .required(&b, 1, callee)
                    .and_then(|e| self.string(e, "the labels .npy path"));
                let scale = self.scale(b.get(2));
                let weights = match b.get(3) {
                    None => Some(None),
                    Some(e) => self.string(e, "the weights .npy path").map(Some),
                };
                match (b.ok, features, labels, scale, weights) {
                    (true, Some(features), Some(labels), Some(scale), Some(weights)) => {
                        Some(DataSource::Npy {
                            features,
                            labels,
                            scale,
                            weights,
                        })
                    }
                    _ => None,
                }
            }
            "npz" => {
                let path = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.string(e, "the .npz path"));
                let features = b
                    .get(1)
                    .map_or(Some("x".to_string()), |e| self.string(e, "`features`"));
                let labels = b
                    .get(2)
                    .map_or(Some("y".to_string()), |e| self.string(e, "`labels`"));
                let scale = self.scale(b.get(3));
                let weights = match b.get(4) {
                    None => Some(None),
                    Some(e) => self.string(e, "`weights`").map(Some),
                };
                match (b.ok, path, features, labels, scale, weights) {
                    (
                        true,
                        Some(path),
                        Some(features),
                        Some(labels),
                        Some(scale),
                        Some(weights),
                    ) => Some(DataSource::Npz {
                        path,
                        features,
                        labels,
                        scale,
                        weights,
                    }),
                    _ => None,
                }
            }
            "timeseries_csv" => {
                let path = self
                    .required(&b, 0, callee)
                    .and_then(|e| self.string(e, "the csv path"));
                let column = self
                    .required(&b, 1, callee)
                    .and_then(|e| self.label_column(e, "column"));
                let sequence_length = self
                    .required(&b, 2, callee)
                    .and_then(|e| self.positive_int(e, "`sequence_length`"));
                if let Some(e) = b.get(2) {
                    features_span = e.span;
                }
                let mut step = |at: usize, what: &str| match b.get(at) {
                    Some(e) => self.positive_int(e, what),
                    None => Some(1),
                };
                let target_offset = step(3, "`target_offset`");
                let sequence_stride = step(4, "`sequence_stride`");
                let sampling_rate = step(5, "`sampling_rate`");
                let missing = match b.get(6) {
                    None => Some(Missing::Reject),
                    Some(e) => self.missing_rule(e),
                };
                let delimiter = match b.get(7) {
                    None => Some(','),
                    Some(e) => self.delimiter(e),
                };
                let features = match b.get(8) {
                    None => column.clone().map(|c| vec![c]),
                    Some(e) => self.column_list(e, "features"),
                };
                match (
                    b.ok,
                    path,
                    column,
                    sequence_length,
                    target_offset,
                    sequence_stride,
                    sampling_rate,
                    missing,
                    delimiter,
                    features,
                ) {
                    (
                        true,
                        Some(path),
                        Some(column),
                        Some(sequence_length),
                        Some(target_offset),
                        Some(sequence_stride),
                        Some(sampling_rate),
                        Some(missing),
                        Some(delimiter),
                        Some(features),
                    ) => Some(DataSource::Timeseries {
                        path,
                        column,
                        sequence_length,
                        target_offset,
                        sequence_stride,
                        sampling_rate,
                        missing,
                        delimiter,
                        features,
                    }),
                    _ => None,
                }
            }
            "text_csv" => self.text_source(&b, callee),
            "text_windows" => self.text_windows(&b, callee),
            other => {
                self.error(
                    Diagnostic::error(
                        "E0900",
                        format!("internal compiler error: data source `{other}` is not checked"),
                    )
                    .primary(callee.span, "defined in settings::data_source but not here"),
                );
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
                scale_span,
                used: false,
            });
            self.set_index(&decl.name.name, self.data.len() - 1);
        }
    }

    /// `text_csv(...)`'s arguments, in `settings::data_source`'s order, with Keras's defaults.
    fn text_source(&mut self, b: &super::args::Bound, callee: &ast::Ident) -> Option<DataSource> {
        let path = self
            .required(b, 0, callee)
            .and_then(|e| self.string(e, "the text_csv path"));
        let text = b
            .get(1)
            .map_or(Some("text".to_string()), |e| self.string(e, "`text`"));
        let label = b
            .get(2)
            .map_or(Some("label".to_string()), |e| self.string(e, "`label`"));
        let max_tokens = self.max_tokens(b.get(3));
        let length = self
            .required(b, 4, callee)
            .and_then(|e| self.positive_int(e, "`output_sequence_length`"));
        let split = self.text_split(b.get(5), TextSplit::Whitespace);
        let standardize =
            self.text_standardize(b.get(6), TextStandardize::LowerAndStripPunctuation);
        match (
            b.ok,
            path,
            text,
            label,
            max_tokens,
            length,
            split,
            standardize,
        ) {
            (
                true,
                Some(path),
                Some(text),
                Some(label),
                Some(max_tokens),
                Some(output_sequence_length),
                Some(split),
                Some(standardize),
            ) => Some(DataSource::Text(TextSource {
                path,
                text,
                label,
                max_tokens,
                output_sequence_length,
                split,
                standardize,
                windows: None,
            })),
            _ => None,
        }
    }

    /// A text source's `max_tokens`: `Some(None)` when left out, `None` when reported.
    fn max_tokens(&mut self, given: Option<&ast::Expr>) -> Option<Option<usize>> {
        match given {
            None => Some(None),
            Some(e) => match self.positive_int(e, "`max_tokens`") {
                // Ids 0 and 1 are padding and `[UNK]`, so fewer than 2 leaves no valid vocabulary.
                Some(n) if n < 2 => {
                    self.error(
                        Diagnostic::error("E0303", "`max_tokens` must be at least 2")
                            .primary(
                                e.span,
                                format!("{n} leaves no room for padding and `[UNK]`"),
                            )
                            .help(
                                "max_tokens counts padding (id 0) and `[UNK]` (id 1) as Keras \
                                 does: `max_tokens: 5000` keeps the 4998 most frequent tokens",
                            ),
                    );
                    None
                }
                n => n.map(Some),
            },
        }
    }

    /// `text_windows(...)`'s arguments, in `settings::data_source`'s order.
    fn text_windows(&mut self, b: &super::args::Bound, callee: &ast::Ident) -> Option<DataSource> {
        let path = self
            .required(b, 0, callee)
            .and_then(|e| self.string(e, "the text_windows path"));
        let length = self
            .required(b, 1, callee)
            .and_then(|e| self.positive_int(e, "`sequence_length`"));
        let stride = match b.get(2) {
            None => Some(1),
            Some(e) => self.positive_int(e, "`sequence_stride`"),
        };
        let max_tokens = self.max_tokens(b.get(3));
        let split = self.text_split(b.get(4), TextSplit::Character);
        let standardize = self.text_standardize(b.get(5), TextStandardize::None);
        match (b.ok, path, length, stride, max_tokens, split, standardize) {
            (
                true,
                Some(path),
                Some(output_sequence_length),
                Some(stride),
                Some(max_tokens),
                Some(split),
                Some(standardize),
            ) => Some(DataSource::Text(TextSource {
                path,
                text: String::new(),
                label: String::new(),
                max_tokens,
                output_sequence_length,
                split,
                standardize,
                windows: Some(stride),
            })),
            _ => None,
        }
    }

    /// A text source's `split` argument, or its default.
    fn text_split(&mut self, arg: Option<&ast::Expr>, default: TextSplit) -> Option<TextSplit> {
        match arg {
            None => Some(default),
            Some(e) => self.one_of(
                e,
                "`split`",
                TextSplit::from_name,
                &TextSplit::ALL.map(TextSplit::name),
            ),
        }
    }

    /// A text source's `standardize` argument, or its default.
    fn text_standardize(
        &mut self,
        arg: Option<&ast::Expr>,
        default: TextStandardize,
    ) -> Option<TextStandardize> {
        match arg {
            None => Some(default),
            Some(e) => self.one_of(
                e,
                "`standardize`",
                TextStandardize::from_name,
                &TextStandardize::ALL.map(TextStandardize::name),
            ),
        }
    }

    /// A string argument that must be one of `names`.
    fn one_of<T>(
        &mut self,
        expr: &ast::Expr,
        what: &str,
        from_name: fn(&str) -> Option<T>,
        names: &[&str],
    ) -> Option<T> {
        let text = self.string(expr, what)?;
        let found = from_name(&text);
        if found.is_none() {
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            self.error(
                Diagnostic::error("E0303", format!("{what} must be {}", quoted.join(" or ")))
                    .primary(expr.span, format!("{text:?}")),
            );
        }
        found
    }

    /// A data source's `scale` (features are divided by it): a positive number, default 1.
    fn scale(&mut self, expr: Option<&ast::Expr>) -> Option<f32> {
        match expr {
            None => Some(1.0),
            Some(e) => self.positive_f32(e, "`scale`"),
        }
    }

    /// A CSV delimiter: one character, or `"tab"` (strings have no escapes).
    fn delimiter(&mut self, expr: &ast::Expr) -> Option<char> {
        let text = self.string(expr, "`delimiter`")?;
        let mut chars = text.chars();
        let delimiter = match (chars.next(), chars.next()) {
            _ if text == "tab" => '\t',
            (Some(c), None) if c != '"' && c != '\n' => c,
            _ => {
                self.error(
                    Diagnostic::error("E0303", "`delimiter` must be one character or \"tab\"")
                        .primary(expr.span, format!("{text:?}"))
                        .help("e.g. `delimiter: \";\"` or `delimiter: \"tab\"`"),
                );
                return None;
            }
        };
        Some(delimiter)
    }

    /// A csv's `missing`: `"reject"`, `"mean"`, or a number to put in each missing cell.
    fn fill(&mut self, expr: &ast::Expr) -> Option<Fill> {
        let signed = match &expr.kind {
            ast::ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            } => Self::number(operand).map(|x| -x),
            _ => Self::number(expr),
        };
        if let Some(x) = signed {
            return match x as f32 {
                x if x.is_finite() => Some(Fill::Constant(x)),
                _ => {
                    self.error(
                        Diagnostic::error("E0303", "`missing` must be a finite number")
                            .primary(expr.span, "outside f32's range"),
                    );
                    None
                }
            };
        }
        let text = self.string(expr, "`missing`")?;
        match text.as_str() {
            "reject" => Some(Fill::Reject),
            "mean" => Some(Fill::Mean),
            _ => {
                self.error(
                    Diagnostic::error("E0303", "`missing` must be \"reject\", \"mean\" or a number")
                        .primary(expr.span, format!("{text:?}"))
                        .help("\"reject\" stops at a missing feature, \"mean\" puts the column's mean in it, a number puts that number"),
                );
                None
            }
        }
    }

    /// A csv's `features` when they are given: none twice, and neither the label's nor the
    /// weight's column (E0865). `expr`: the list.
    fn distinct_features(
        &mut self,
        features: Vec<LabelColumn>,
        label: &Option<LabelColumn>,
        weight: &Option<Option<LabelColumn>>,
        expr: &ast::Expr,
    ) -> Option<Option<Vec<LabelColumn>>> {
        for i in 0..features.len() {
            if let Some(problem) = column_clash(&features, i, label, weight) {
                let name = column_text(&features[i]);
                self.error(
                    Diagnostic::error("E0865", format!("feature column {name} {problem}"))
                        .primary(list_item_span(expr, i), problem.to_string())
                        .help("list each feature column once, without the label or weight column"),
                );
                return None;
            }
        }
        Some(Some(features))
    }

    /// A csv's `categorical` columns: each a feature column listed once (E0868), named only
    /// when the file has a header (E0310). What cannot be told before the file is read (a
    /// name against an index) the loader checks.
    fn distinct_categorical(
        &mut self,
        columns: Vec<LabelColumn>,
        label: &Option<LabelColumn>,
        weight: &Option<Option<LabelColumn>>,
        features: Option<&Option<Vec<LabelColumn>>>,
        header: Option<bool>,
        expr: &ast::Expr,
    ) -> Option<Vec<LabelColumn>> {
        let span_of = |i: usize| list_item_span(expr, i);
        let listed = features.and_then(Option::as_ref);
        let same_kind = |a: &LabelColumn, b: &LabelColumn| {
            std::mem::discriminant(a) == std::mem::discriminant(b)
        };
        for (i, column) in columns.iter().enumerate() {
            if header == Some(false) && matches!(column, LabelColumn::Name(_)) {
                self.error(
                    Diagnostic::error(
                        "E0310",
                        "categorical columns given by name need a header row",
                    )
                    .primary(span_of(i), "a column name")
                    .help("give the columns as zero-based indices, or set `header: true`"),
                );
                return None;
            }
            let problem = column_clash(&columns, i, label, weight).or_else(|| {
                listed
                    .filter(|listed| {
                        !listed.contains(column) && listed.iter().all(|f| same_kind(f, column))
                    })
                    .map(|_| "is not one of the `features`")
            });
            if let Some(problem) = problem {
                let name = column_text(column);
                self.error(
                    Diagnostic::error("E0868", format!("categorical column {name} {problem}"))
                        .primary(span_of(i), problem)
                        .help(
                            "a categorical column is a feature column whose values are \
                             categories: list it once, among the `features` when they are \
                             listed, and not as the label or weight",
                        ),
                );
                return None;
            }
        }
        Some(columns)
    }

    /// A time series' `missing` rule: one of `Missing::NAMES`.
    fn missing_rule(&mut self, expr: &ast::Expr) -> Option<Missing> {
        let text = self.string(expr, "`missing`")?;
        let rule = Missing::from_name(&text);
        if rule.is_none() {
            self.error(
                Diagnostic::error(
                    "E0303",
                    "`missing` must be \"reject\", \"previous\" or \"interpolate\"",
                )
                .primary(expr.span, format!("{text:?}"))
                .help(
                    "\"reject\" stops at a missing value, \"previous\" repeats the value before \
                     it, \"interpolate\" draws a straight line across the gap",
                ),
            );
        }
        rule
    }

    /// A list of columns given as `what`: `features` (not empty) or `categorical` (maybe empty).
    fn column_list(&mut self, expr: &ast::Expr, what: &str) -> Option<Vec<LabelColumn>> {
        match &expr.kind {
            ast::ExprKind::List(items) if what != "features" || !items.is_empty() => {
                let columns: Vec<Option<LabelColumn>> =
                    items.iter().map(|e| self.label_column(e, what)).collect();
                columns.into_iter().collect()
            }
            ast::ExprKind::Error => None,
            _ => {
                self.error(
                    Diagnostic::error("E0303", format!("`{what}` must be a list of columns"))
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help(if what == "features" {
                            "write e.g. `features: [\"co2\", \"temperature\"]` or `features: [1, 2]`"
                        } else {
                            "write e.g. `categorical: [\"island\", \"sex\"]` or `categorical: [1]`"
                        }),
                );
                None
            }
        }
    }

    /// A column given by name or zero-based index: a csv's `label`, a time series' `column`.
    fn label_column(&mut self, expr: &ast::Expr, what: &str) -> Option<LabelColumn> {
        match &expr.kind {
            ast::ExprKind::Str(name) => Some(LabelColumn::Name(name.clone())),
            ast::ExprKind::Int(n) => match usize::try_from(*n) {
                Ok(index) => Some(LabelColumn::Index(index)),
                Err(_) => {
                    self.error(
                        Diagnostic::error("E0303", format!("`{what}` column index is too large"))
                            .primary(expr.span, "out of range"),
                    );
                    None
                }
            },
            ast::ExprKind::Error => None,
            _ => {
                self.error(
                    Diagnostic::error("E0303", format!("`{what}` must be a column name or index"))
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help(if what == "label" {
                            "write `label: \"species\"` or `label: 4`; omit it to use the last column"
                        } else if what == "weight" {
                            "write `weight: \"w\"` or `weight: 3`: the column of each sample's weight"
                        } else {
                            "write e.g. `column: \"co2\"` or `column: 1`"
                        }),
                );
                None
            }
        }
    }
}

/// Why the `i`th of a csv's listed `columns` cannot be there: listed before it, or the label's
/// or the weight's column.
fn column_clash(
    columns: &[LabelColumn],
    i: usize,
    label: &Option<LabelColumn>,
    weight: &Option<Option<LabelColumn>>,
) -> Option<&'static str> {
    let column = &columns[i];
    if columns[..i].contains(column) {
        Some("is listed twice")
    } else if label.as_ref() == Some(column) {
        Some("is the label column")
    } else if matches!(weight, Some(Some(w)) if w == column) {
        Some("is the weight column")
    } else {
        None
    }
}

/// A column as a message names it.
fn column_text(column: &LabelColumn) -> String {
    match column {
        LabelColumn::Name(n) => format!("{n:?}"),
        LabelColumn::Index(i) => i.to_string(),
        LabelColumn::Last => "the last column".into(),
        LabelColumn::None => "none".into(),
    }
}

/// The span of a list expression's `i`th item (the whole expression when it is no list).
fn list_item_span(expr: &ast::Expr, i: usize) -> Span {
    match &expr.kind {
        ast::ExprKind::List(items) => items.get(i).map_or(expr.span, |e| e.span),
        _ => expr.span,
    }
}
