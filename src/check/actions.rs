//! `evaluate MODEL on DATA`, `predict MODEL on DATA to PATH`, `save MODEL to PATH` and
//! `load MODEL from PATH` (and `generate`, in `generate.rs`): names, paths, and which `fit` supplies the loss and metrics. They run
//! in program order with the `fit`s (`CheckedProgram::actions`).

use super::args::found;
use super::*;
use crate::diag::Diagnostic;
use crate::program::*;
use crate::settings::*;
use crate::syntax::ast;

impl Checker {
    /// Checks every action and builds `self.actions` in program order, `fit`s included. Runs
    /// after the `fit`s are checked.
    pub(super) fn actions(&mut self, items: &[ast::Item]) {
        // A fit that failed to check has no index: then there are errors already, and actions
        // that depend on fits are checked only for their own problems.
        let fit_items = items
            .iter()
            .filter(|i| matches!(i, ast::Item::Fit(_)))
            .count();
        let fits_complete = fit_items == self.fits.len();
        // (position among the items, fit index), for "the model's nearest fit".
        let mut fit_order = Vec::new();
        let mut next_fit = 0;
        for (position, item) in items.iter().enumerate() {
            if let ast::Item::Fit(_) = item {
                if fits_complete {
                    fit_order.push((position, next_fit));
                }
                next_fit += 1;
            }
        }
        let mut next_fit = 0;
        for (position, item) in items.iter().enumerate() {
            match item {
                ast::Item::Fit(_) => {
                    if fits_complete {
                        self.actions.push(Action::Fit(next_fit));
                    }
                    next_fit += 1;
                }
                ast::Item::Action(decl) => {
                    let mut action = self.action(decl, position, &fit_order, fits_complete);
                    if let Some(Action::Save {
                        model,
                        path,
                        bundle,
                        ..
                    }) = &mut action
                        && is_bundle_path(path)
                    {
                        *bundle = Some(bundle_items(
                            items,
                            *model,
                            &self.models[*model].name,
                            position,
                            &fit_order,
                            &self.fits,
                        ));
                    }
                    if let Some(action) = action {
                        self.actions.push(action);
                    }
                }
                _ => {}
            }
        }
    }

    fn action(
        &mut self,
        decl: &ast::ActionDecl,
        position: usize,
        fit_order: &[(usize, usize)],
        fits_complete: bool,
    ) -> Option<Action> {
        let model = self.lookup(&decl.model, Kind::Model);
        let data = decl.data.as_ref().map(|name| self.lookup(name, Kind::Data));
        // The model's last fit before this statement, else its first one after.
        let fit = model.and_then(|model| {
            let of_model = |&&(_, fit): &&(usize, usize)| self.fits[fit].model == model;
            fit_order
                .iter()
                .filter(of_model)
                .rfind(|(at, _)| *at < position)
                .or_else(|| fit_order.iter().find(of_model))
                .map(|&(_, fit)| fit)
        });
        if decl.kind == ast::ActionKind::Generate {
            return self.generate(decl, model?, fit);
        }
        let path = match &decl.path {
            Some(expr) => Some(self.action_path(expr, decl.kind)?),
            None => None,
        };
        let model = model?;
        match decl.kind {
            ast::ActionKind::Evaluate => {
                let data = data.flatten()?;
                let Some(fit) = fit else {
                    if fits_complete {
                        let name = &decl.model.name;
                        self.error(
                            Diagnostic::error(
                                "E0403",
                                format!("`evaluate` needs a loss, but no `fit` trains `{name}`"),
                            )
                            .primary(decl.model.span, "this model has no `fit`")
                            .help(format!(
                                "the loss and metrics come from the model's `fit`; add \
                                 `fit {name} on DATA {{ loss ... }}`"
                            )),
                        );
                    }
                    return None;
                };
                if !self.data_fits_model(
                    model,
                    data,
                    decl.data.as_ref().map_or(decl.span, |d| d.span),
                    self.fits[fit].loss,
                    self.fits[fit].span,
                ) {
                    return None;
                }
                Some(Action::Evaluate {
                    model,
                    data,
                    fit,
                    span: decl.span,
                })
            }
            ast::ActionKind::Predict => {
                let data = data.flatten()?;
                let path = path?;
                if let Some((span, detail)) = self.unfeedable(model) {
                    let name = &self.models[model].name;
                    self.error(
                        Diagnostic::error("E0409", format!("`predict` cannot run `{name}`"))
                            .primary(decl.model.span, "this model")
                            .secondary(span, detail)
                            .note(format!(
                                "a data set supplies one f32 feature tensor per sample, and \
                                 predictions are one row per sample, so `predict` runs models \
                                 with one f32 input and one output of shape [{}, M]",
                                self.models[model].batch_symbol
                            )),
                    );
                    return None;
                }
                let use_span = decl.data.as_ref().map_or(decl.span, |d| d.span);
                if !self.sample_shape_fits(model, data, use_span)
                    || !self.integer_input_fits(model, data, use_span)
                {
                    return None;
                }
                let format = if path.to_ascii_lowercase().ends_with(".npy") {
                    PredictFormat::Npy
                } else {
                    PredictFormat::Csv
                };
                Some(Action::Predict {
                    model,
                    data,
                    fit,
                    path,
                    format,
                    span: decl.span,
                })
            }
            ast::ActionKind::Save => Some(Action::Save {
                model,
                path: path?,
                bundle: None,
                span: decl.span,
            }),
            ast::ActionKind::Load => Some(Action::Load {
                model,
                path: path?,
                span: decl.span,
            }),
            ast::ActionKind::Generate => None,
        }
    }

    /// The path of an action: a string with the extension of its format.
    fn action_path(&mut self, expr: &ast::Expr, kind: ast::ActionKind) -> Option<String> {
        let keyword = kind.keyword();
        let ast::ExprKind::Str(path) = &expr.kind else {
            if expr.kind != ast::ExprKind::Error {
                self.error(
                    Diagnostic::error("E0303", format!("`{keyword}` needs a file path"))
                        .primary(expr.span, format!("found {}", found(expr)))
                        .help("write the path in double quotes"),
                );
            }
            return None;
        };
        match kind {
            ast::ActionKind::Predict => {
                let lower = path.to_ascii_lowercase();
                if !(lower.ends_with(".csv") || lower.ends_with(".npy")) {
                    self.error(
                        Diagnostic::error(
                            "E0402",
                            "`predict` writes CSV or NPY: the path must end in .csv or .npy",
                        )
                        .primary(expr.span, "unknown extension")
                        .help("e.g. `predict m on test to \"predictions.csv\"`"),
                    );
                    return None;
                }
            }
            ast::ActionKind::Save if is_bundle_path(path) => {}
            _ => self.checkpoint_path(expr.span, path, &format!("`{keyword}`"))?,
        }
        Some(path.clone())
    }

    /// Checkpoints are safetensors files: their path must say so.
    pub(super) fn checkpoint_path(&mut self, span: Span, path: &str, what: &str) -> Option<()> {
        if path.to_ascii_lowercase().ends_with(".safetensors") {
            return Some(());
        }
        self.error(
            Diagnostic::error(
                "E0401",
                format!("{what} reads and writes safetensors: the path must end in .safetensors"),
            )
            .primary(span, "not a .safetensors path")
            .help("e.g. \"weights.safetensors\""),
        );
        None
    }
}

/// The items a bundle of `model` keeps, as spans in program order: every top-level definition
/// and data set (checking them reads no file, and a model may use any of them), the model, and
/// the `fit` an action at `position` would take its loss from (the last before, else the first
/// after). Other models, fits and actions are left out.
fn bundle_items(
    items: &[ast::Item],
    model: usize,
    name: &str,
    position: usize,
    fit_order: &[(usize, usize)],
    fits: &[Fit],
) -> Vec<Span> {
    let of_model = |&&(_, fit): &&(usize, usize)| fits[fit].model == model;
    let fit_at = fit_order
        .iter()
        .filter(of_model)
        .rfind(|(at, _)| *at < position)
        .or_else(|| fit_order.iter().find(of_model))
        .map(|&(at, _)| at);
    (items.iter().enumerate())
        .filter(|(at, item)| match item {
            ast::Item::Data(_) | ast::Item::Let(_) | ast::Item::Layer(_) | ast::Item::Fn(_) => true,
            ast::Item::Model(decl) => decl.name.name == name,
            ast::Item::Fit(_) => Some(*at) == fit_at,
            ast::Item::Action(_) | ast::Item::Error(_) => false,
        })
        .map(|(_, item)| item.span())
        .collect()
}
