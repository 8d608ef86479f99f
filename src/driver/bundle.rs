//! Running a `.kiln` bundle without its program: `kiln predict`, `kiln evaluate` and
//! `kiln check --summary` on a bundle. The bundle's source is checked again (the same checker
//! builds the same forward graph), its weights installed as `load` installs a checkpoint's, and
//! the statement runs as it would in a program, on a data set read like the one the model was
//! trained on but from the file given.

use std::path::Path;

use crate::diag::{self, Diagnostic, Span};
use crate::program::{Action, CheckedProgram, DataSet};
use crate::runtime::bundle::{self, Bundle};
use crate::runtime::data::DataError;
use crate::settings::{DataSource, LabelColumn, PredictFormat};

use super::run::Runner;
use super::{Event, RunError, Workspace, check_source};

/// The source a bundle keeps: the program's `items`, in order, one blank line apart.
pub(super) fn source_of(source: &str, items: &[Span]) -> String {
    let mut text = String::new();
    for span in items {
        if let Some(item) = source.get(span.start..span.end) {
            text.push_str(item.trim_end());
            text.push_str("\n\n");
        }
    }
    text.truncate(text.trim_end().len());
    text.push('\n');
    text
}

/// A bundle, checked and with its weights installed, ready to run.
pub struct OpenBundle {
    /// The checked program of the bundle's source.
    pub program: CheckedProgram,
    /// The bundle's source, for messages about it.
    pub source: String,
    /// The Kiln version that wrote it.
    pub kiln_version: String,
    /// Index of the bundled model in `program.models`.
    pub model: usize,
    /// The fit whose loss and metrics `evaluate` uses (and whose loss decides how `predict`
    /// reads labels and scores), when the model was trained by one.
    pub fit: Option<usize>,
    workspace: Workspace,
}

impl OpenBundle {
    /// The model's summary table (without optimizer state: a bundle keeps none).
    pub fn summary(&self) -> String {
        crate::program::summary::summary(&self.program.models[self.model], None)
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.program.models[self.model].name
    }

    /// The bundled model's weights and preprocessing, as installed.
    pub(super) fn state(&self) -> &super::run::ModelState {
        let name = &self.program.models[self.model].name;
        (self.workspace.states.get(name)).expect("opening a bundle installs its model's weights")
    }
}

/// The layer an op with this span belongs to, for a message (`layer `dense_1` (dense)`): the
/// innermost summary row around it; else the model.
pub(super) fn layer_of(model: &crate::program::Model, span: Option<Span>) -> String {
    let layer = span.and_then(|span| {
        (model.summary.iter())
            .filter(|row| row.span.start <= span.start && span.end <= row.span.end)
            .min_by_key(|row| row.span.end - row.span.start)
    });
    match layer {
        Some(row) => format!("layer `{}` ({})", row.name, row.kind),
        None => format!("model '{}'", model.name),
    }
}

/// Reads a bundle file, checks its source and installs its weights.
pub fn open(path: &Path) -> Result<OpenBundle, RunError> {
    let bundle = bundle::read(path).map_err(RunError::Data)?;
    open_decoded(bundle, &path.display().to_string())
}

/// Checks a decoded bundle's source and installs its weights; `origin` names the file.
pub(super) fn open_decoded(bundle: Bundle, origin: &str) -> Result<OpenBundle, RunError> {
    let error = |message: String| RunError::Data(DataError::new(origin, message));
    let checked = check_source(&bundle.source).map_err(|diagnostics| {
        let rendered = diag::render(&diagnostics, "the bundled source", &bundle.source, false);
        error(format!(
            "the bundle's model source (written by Kiln {}) does not check with this Kiln:\n{}",
            bundle.kiln_version,
            rendered.trim_end()
        ))
    })?;
    let program = checked.program;
    let name = &bundle.weights.model;
    let Some(model) = program.models.iter().position(|m| &m.name == name) else {
        return Err(error(format!(
            "the bundle names model '{name}', but its source does not define it"
        )));
    };
    let fit = program.fits.iter().position(|f| f.model == model);
    let mut workspace = Workspace::default();
    Runner {
        program: &program,
        source: &bundle.source,
        base_dir: Path::new("."),
        states: &mut workspace.states,
        interrupt: None,
        on_event: &mut |_| {},
        threads: None,
        profile: false,
        check_numerics: false,
        collective: None,
    }
    .install(model, bundle.weights, origin, None, false)
    .map_err(|e| match e {
        // Diagnostics against the bundle's own source would point into text the user never
        // wrote; they become one message about the file.
        RunError::Program(diagnostics) => {
            let messages: Vec<String> = diagnostics.iter().map(|d| d.message.clone()).collect();
            error(format!(
                "the bundle's weights do not fit its model: {}",
                messages.join("; ")
            ))
        }
        data => data,
    })?;
    Ok(OpenBundle {
        program,
        source: bundle.source,
        kiln_version: bundle.kiln_version,
        model,
        fit,
        workspace,
    })
}

/// The data source a file given on the command line is read with: the training data's, at
/// this path (same columns, delimiter, `scale`, text settings); for sources that are not CSV
/// files (synthetic, IDX, NumPy), a CSV file with a header and the label in the last column,
/// divided by the same `scale`.
pub(super) fn source_for(trained_on: Option<&DataSource>, path: &Path) -> DataSource {
    let path = path.display().to_string();
    match trained_on {
        // The same columns and gap filling; no sample weights (an unweighted evaluation).
        Some(DataSource::Csv {
            label,
            header,
            scale,
            delimiter,
            features,
            fill,
            categorical,
            encoding,
            ..
        }) => DataSource::Csv {
            path,
            label: label.clone(),
            header: *header,
            scale: *scale,
            delimiter: *delimiter,
            weight: None,
            features: features.clone(),
            fill: *fill,
            categorical: categorical.clone(),
            encoding: *encoding,
        },
        Some(DataSource::Text(text)) => DataSource::Text(crate::settings::TextSource {
            path,
            ..text.clone()
        }),
        Some(DataSource::Timeseries { .. }) => {
            let mut source = trained_on.cloned().expect("matched above");
            if let DataSource::Timeseries { path: p, .. } = &mut source {
                *p = path;
            }
            source
        }
        other => DataSource::Csv {
            path,
            label: LabelColumn::Last,
            header: true,
            scale: match other {
                Some(
                    DataSource::Idx { scale, .. }
                    | DataSource::Npy { scale, .. }
                    | DataSource::Npz { scale, .. },
                ) => *scale,
                _ => 1.0,
            },
            delimiter: ',',
            weight: None,
            features: None,
            fill: crate::settings::Fill::Reject,
            categorical: Vec::new(),
            encoding: Default::default(),
        },
    }
}

/// What to run on a bundle.
pub enum BundleAction<'a> {
    /// Write predictions to this path (CSV or NPY by its extension); an empty path writes
    /// nothing and leaves them to `Event::Predicted`.
    Predict(&'a Path),
    /// Loss and metrics of the bundled fit.
    Evaluate,
}

/// Runs `predict` or `evaluate` on the bundle's model with the data in `data`.
pub fn run_bundle(
    open: &mut OpenBundle,
    data: &Path,
    action: BundleAction,
    on_event: &mut dyn FnMut(Event),
) -> Result<(), RunError> {
    let mut program = open.program.clone();
    let model = &program.models[open.model];
    let span = model.span;
    let trained_on = open.fit.map(|f| &program.data[program.fits[f].data].source);
    let name = data
        .file_name()
        .map_or_else(|| "data".to_string(), |n| n.to_string_lossy().into_owned());
    let data_set = DataSet {
        name,
        span,
        source: source_for(trained_on, data),
    };
    let unfeedable = if model.inputs.len() != 1 {
        Some(format!("it has {} inputs", model.inputs.len()))
    } else if model.outputs.len() != 1 || model.outputs[0].shape.rank() != 2 {
        Some("its output is not one [batch, M] tensor".to_string())
    } else {
        None
    };
    if let Some(why) = unfeedable {
        return Err(RunError::Program(vec![
            Diagnostic::error("E0409", format!("the bundled model '{}' cannot run on a data file: {why}", model.name))
                .note("a data file supplies one f32 feature tensor per sample, and predictions are one row per sample"),
        ]));
    }
    program.data.push(data_set);
    let index = program.data.len() - 1;
    let action = match action {
        BundleAction::Predict(path) => Action::Predict {
            model: open.model,
            data: index,
            fit: open.fit,
            path: path.display().to_string(),
            format: if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
            {
                PredictFormat::Npy
            } else {
                PredictFormat::Csv
            },
            span,
        },
        BundleAction::Evaluate => {
            let Some(fit) = open.fit else {
                return Err(RunError::Data(DataError::new(
                    &data.display().to_string(),
                    format!(
                        "`evaluate` needs a loss, but the bundled model '{}' was saved without a \
                         `fit` (no loss or metrics); `kiln predict` runs it",
                        program.models[open.model].name
                    ),
                )));
            };
            Action::Evaluate {
                model: open.model,
                data: index,
                fit,
                span,
            }
        }
    };
    super::run_actions(
        &program,
        &open.source,
        &[action],
        Path::new(""),
        &mut open.workspace,
        on_event,
    )
    .map(|_| ())
}

/// `kiln export`: the bundled model's inference graph as ONNX bytes (`codegen::onnx`), with its
/// standardization statistics as the graph's first ops. An op with no ONNX form is E0820, naming
/// the layer it comes from.
pub fn export_onnx(open: &OpenBundle) -> Result<Vec<u8>, RunError> {
    let model = &open.program.models[open.model];
    let graph = crate::ir::lower::for_inference(&model.forward);
    let state = open
        .workspace
        .states
        .get(&model.name)
        .expect("opening a bundle installs its model's weights");
    let standardization =
        (state.standardization.as_ref()).map(|s| (s.mean.as_slice(), s.std.as_slice()));
    let export = crate::codegen::onnx::Export {
        name: &model.name,
        graph: &graph,
        params: &state.params,
        standardization,
        kiln_version: env!("CARGO_PKG_VERSION"),
    };
    crate::codegen::onnx::export(&export).map_err(|unsupported| {
        let what = layer_of(model, unsupported.span);
        let d = Diagnostic::error(
            "E0820",
            format!(
                "{what} has no ONNX form: it computes `{}`, which ONNX opset {} cannot express",
                unsupported.op,
                crate::codegen::onnx::OPSET
            ),
        )
        .note(
            "`kiln export` writes the inference graph op by op, and this op has no ONNX \
             equivalent (Kiln computes it with its own kernels); `kiln predict` still runs the \
             bundle",
        );
        let d = match unsupported.span {
            Some(span) => d.primary(span, "this has no ONNX form"),
            None => d,
        };
        RunError::Program(vec![d])
    })
}
