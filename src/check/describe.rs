//! A short, stable text summary of a checked program (`kiln dump --stage check`).

use crate::program::*;
use crate::settings::*;
use std::fmt::Write;

pub fn describe(program: &CheckedProgram) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    for data in &program.data {
        let _ = writeln!(out, "data {} = {}", data.name, source(&data.source));
    }
    for (index, model) in program.models.iter().enumerate() {
        let optimizer = program
            .fits
            .iter()
            .find(|f| f.model == index)
            .map(|f| &f.optimizer);
        out.push_str(&crate::program::summary::summary(model, optimizer));
    }
    for fit in &program.fits {
        let model = program
            .models
            .get(fit.model)
            .map_or("?", |m| m.name.as_str());
        let data = program.data.get(fit.data).map_or("?", |d| d.name.as_str());
        let metrics: Vec<&str> = fit.metrics.iter().map(|m| m.display_name()).collect();
        let _ = writeln!(out, "fit {model} on {data}");
        let options = if fit.loss_options.from_logits {
            "(from_logits: true)".to_string()
        } else if fit.loss == Loss::Huber {
            format!("(delta: {:?})", fit.loss_options.delta)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  loss      {}{options}", fit.loss.name());
        let _ = writeln!(out, "  optimizer {}", fit.optimizer);
        let _ = writeln!(out, "  metrics   [{}]", metrics.join(", "));
        let _ = writeln!(out, "  epochs    {}", fit.epochs);
        let _ = writeln!(out, "  batch     {}", fit.batch);
        let _ = writeln!(out, "  seed      {}", fit.seed);
        let _ = writeln!(out, "  shuffle   {}", fit.shuffle);
        match fit.validation {
            None => {}
            Some(Validation::Data(index)) => {
                let name = program.data.get(index).map_or("?", |d| d.name.as_str());
                let _ = writeln!(out, "  validation {name}");
            }
            Some(Validation::Split(fraction)) => {
                let _ = writeln!(out, "  validation_split {fraction:?}");
            }
        }
        // Shown only when given, like `validation`.
        let training = &fit.training;
        if let Some(schedule) = &training.schedule {
            let _ = writeln!(out, "  lr schedule {}", schedule_text(schedule));
        }
        if training.initial_epoch > 0 {
            let _ = writeln!(out, "  initial_epoch {}", training.initial_epoch);
        }
        if training.standardize {
            let _ = writeln!(out, "  standardize true");
        }
        if !training.callbacks.is_empty() {
            let callbacks: Vec<String> = training.callbacks.iter().map(callback_text).collect();
            let _ = writeln!(out, "  callbacks [{}]", callbacks.join(", "));
        }
    }
    out
}

fn schedule_text(schedule: &Schedule) -> String {
    match schedule {
        Schedule::ExponentialDecay {
            initial,
            decay_steps,
            decay_rate,
            staircase,
        } => format!(
            "exponential_decay({:?}, decay_steps: {decay_steps}, decay_rate: {:?}, staircase: {staircase})",
            *initial as f32, *decay_rate as f32
        ),
        Schedule::PiecewiseConstant { boundaries, values } => {
            let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            format!("piecewise_constant_decay({boundaries:?}, {values:?})")
        }
        Schedule::CosineDecay {
            initial,
            decay_steps,
            alpha,
        } => format!(
            "cosine_decay({:?}, decay_steps: {decay_steps}, alpha: {:?})",
            *initial as f32, *alpha as f32
        ),
    }
}

/// Every argument, defaults included, so the resolved settings can be read off.
fn callback_text(callback: &Callback) -> String {
    match callback {
        Callback::EarlyStopping {
            monitor,
            min_delta,
            patience,
            restore_best_weights,
        } => format!(
            "early_stopping(monitor: {:?}, min_delta: {min_delta:?}, patience: {patience}, restore_best_weights: {restore_best_weights})",
            monitor.name
        ),
        Callback::Checkpoint {
            path,
            monitor,
            save_best_only,
        } => format!(
            "checkpoint({path:?}, monitor: {:?}, save_best_only: {save_best_only})",
            monitor.name
        ),
        Callback::ReduceLrOnPlateau {
            monitor,
            factor,
            patience,
            min_delta,
            min_lr,
        } => format!(
            "reduce_lr_on_plateau(monitor: {:?}, factor: {factor:?}, patience: {patience}, min_delta: {min_delta:?}, min_lr: {min_lr:?})",
            monitor.name
        ),
    }
}

fn source(source: &DataSource) -> String {
    match source {
        DataSource::Synthetic {
            samples,
            features,
            classes,
            seed,
        } => format!(
            "synthetic_classification(samples: {samples}, features: {features}, classes: {classes}, seed: {seed})"
        ),
        DataSource::Csv {
            path,
            label,
            header,
            scale,
            delimiter,
        } => {
            let delimiter = if *delimiter == ',' {
                String::new()
            } else {
                format!(", delimiter: {:?}", delimiter.to_string())
            };
            let label = match label {
                LabelColumn::Last => "last".to_string(),
                LabelColumn::Index(i) => i.to_string(),
                LabelColumn::Name(name) => format!("{name:?}"),
            };
            format!(
                "csv({path:?}, label: {label}, header: {header}{}{delimiter})",
                scale_text(*scale)
            )
        }
        DataSource::Idx {
            images,
            labels,
            scale,
        } => format!(
            "idx(images: {images:?}, labels: {labels:?}{})",
            scale_text(*scale)
        ),
        DataSource::Npy {
            features,
            labels,
            scale,
        } => format!(
            "npy(features: {features:?}, labels: {labels:?}{})",
            scale_text(*scale)
        ),
        DataSource::Npz {
            path,
            features,
            labels,
            scale,
        } => format!(
            "npz({path:?}, features: {features:?}, labels: {labels:?}{})",
            scale_text(*scale)
        ),
    }
}

/// `, scale: 255.0` when features are scaled; nothing for the default 1.
fn scale_text(scale: f32) -> String {
    if scale == 1.0 {
        String::new()
    } else {
        format!(", scale: {scale:?}")
    }
}
