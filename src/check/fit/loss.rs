//! `loss NAME(...)`: the call bound against the loss's definition (`settings::loss`), and the
//! loss against what the model outputs.

use super::super::{Checker, unknown};
use crate::diag::{Diagnostic, Span};
use crate::settings::Activation;
use crate::settings::def::{AliasOf, with_aliases};
use crate::settings::loss::{self, Labels, Loss, LossCall, LossOptions};
use crate::syntax::ast;

impl Checker {
    /// `loss NAME` or `loss NAME(from_logits: true)`, `loss huber(delta: 2.0)`.
    pub(super) fn loss(&mut self, expr: &ast::Expr) -> Option<LossCall> {
        let (callee, args) =
            self.name_or_call(expr, "a loss such as `sparse_categorical_crossentropy`")?;
        let Some(def) = loss::find(&callee.name) else {
            let names = loss::names();
            self.error(unknown(
                "E0107",
                "loss",
                &callee,
                "not a loss",
                &with_aliases(AliasOf::Loss, &names),
                format!("losses: {}", names.join(", ")),
            ));
            return None;
        };
        self.bind_def(def, &callee, args, expr)
    }

    /// The loss against what the model's output is: probabilities (a softmax or sigmoid at the
    /// end) or raw scores, and its width.
    pub(super) fn loss_fits_output(
        &mut self,
        model: usize,
        loss: Loss,
        options: LossOptions,
        loss_span: Span,
    ) -> bool {
        let m = &self.models[model];
        if m.inputs.len() != 1 || m.outputs.len() != 1 || m.outputs[0].shape.rank() != 2 {
            // `fit` cannot train it at all (E0312, reported after this).
            return true;
        }
        let output_span = self.model_info[model].output_type_span;
        let ends_in = m.output_activation();
        let (name, b, width) = (m.name.clone(), m.batch_symbol.clone(), m.output_features);
        let Labels::Classes {
            activation: wanted,
            per_class,
        } = loss.def().facts.labels
        else {
            return true;
        };
        if !per_class && width != 1 {
            self.error(
                Diagnostic::error("E0322", format!("{} needs one output, but `{name}` has {width}", loss.name()))
                    .primary(loss_span, "this loss scores one probability per sample")
                    .secondary(output_span, format!("`{name}` outputs f32[{b}, {width}]"))
                    .help("end the model with `dense(1, sigmoid)`, or use `sparse_categorical_crossentropy` with one output per class"),
            );
            return false;
        }
        let other = if wanted == Activation::Softmax {
            Activation::Sigmoid
        } else {
            Activation::Softmax
        };
        if ends_in == other {
            self.error(
                Diagnostic::error(
                    "E0322",
                    format!(
                        "`{}` expects a {} output, but `{name}` ends in {}",
                        loss.name(),
                        wanted.name(),
                        other.name()
                    ),
                )
                .primary(
                    loss_span,
                    format!("this loss reads {} probabilities", wanted.name()),
                )
                .secondary(output_span, format!("`{name}` ends in {}", other.name()))
                .help(format!("end the model with `{}`", wanted.name())),
            );
            return false;
        }
        match (options.from_logits, ends_in == wanted) {
            (true, true) => {
                self.error(
                    Diagnostic::error(
                        "E0321",
                        format!(
                            "`{name}` ends in {} but the loss applies it again",
                            wanted.name()
                        ),
                    )
                    .primary(
                        loss_span,
                        format!(
                            "`from_logits: true` applies {} inside the loss",
                            wanted.name()
                        ),
                    )
                    .secondary(
                        output_span,
                        format!("`{name}` already ends in {}", wanted.name()),
                    )
                    .help(format!(
                        "remove `from_logits: true`, or end the model without {}",
                        wanted.name()
                    )),
                );
                false
            }
            (false, false) => {
                self.error(
                    Diagnostic::error(
                        "E0320",
                        format!(
                            "`{}` reads probabilities, but `{name}` outputs raw scores",
                            loss.name()
                        ),
                    )
                    .primary(loss_span, "this loss expects probabilities")
                    .secondary(
                        output_span,
                        format!("`{name}` does not end in {}", wanted.name()),
                    )
                    .help(format!(
                        "end the model with `{}`, or write `{}(from_logits: true)`",
                        wanted.name(),
                        loss.name()
                    )),
                );
                false
            }
            _ => true,
        }
    }
}
