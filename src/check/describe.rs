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
        let _ = writeln!(out, "  loss      {}", fit.loss.text(fit.loss_options));
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
            let _ = writeln!(out, "  lr schedule {}", schedule.text());
        }
        if training.initial_epoch > 0 {
            let _ = writeln!(out, "  initial_epoch {}", training.initial_epoch);
        }
        if training.standardize {
            let _ = writeln!(out, "  standardize true");
        }
        if training.shuffle_split {
            let _ = writeln!(out, "  shuffle_split true");
        }
        if training.stratify {
            let _ = writeln!(out, "  stratify true");
        }
        if let Some(fraction) = training.test_split {
            let _ = writeln!(out, "  test_split {fraction:?}");
        }
        if let Some(weights) = &training.class_weight {
            let weights: Vec<String> = weights.iter().map(|w| format!("{w:?}")).collect();
            let _ = writeln!(out, "  class_weight [{}]", weights.join(", "));
        }
        if !training.callbacks.is_empty() {
            let callbacks: Vec<String> = training.callbacks.iter().map(Callback::text).collect();
            let _ = writeln!(out, "  callbacks [{}]", callbacks.join(", "));
        }
    }
    out
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
            weight,
            features,
            fill,
            categorical,
            encoding,
        } => {
            let mut delimiter = if *delimiter == ',' {
                String::new()
            } else {
                format!(", delimiter: {:?}", delimiter.to_string())
            };
            match weight {
                None | Some(LabelColumn::Last | LabelColumn::None) => {}
                Some(LabelColumn::Index(i)) => delimiter.push_str(&format!(", weight: {i}")),
                Some(LabelColumn::Name(name)) => delimiter.push_str(&format!(", weight: {name:?}")),
            }
            let listed = |columns: &[LabelColumn]| {
                let listed: Vec<String> = (columns.iter())
                    .map(|c| match c {
                        LabelColumn::Last => "last".to_string(),
                        LabelColumn::None => "none".to_string(),
                        LabelColumn::Index(i) => i.to_string(),
                        LabelColumn::Name(name) => format!("{name:?}"),
                    })
                    .collect();
                listed.join(", ")
            };
            if let Some(features) = features {
                delimiter.push_str(&format!(", features: [{}]", listed(features)));
            }
            if !categorical.is_empty() {
                delimiter.push_str(&format!(
                    ", categorical: [{}], encoding: {:?}",
                    listed(categorical),
                    encoding.name()
                ));
            }
            match fill {
                Fill::Reject => {}
                Fill::Mean => delimiter.push_str(", missing: \"mean\""),
                Fill::Constant(x) => delimiter.push_str(&format!(", missing: {x:?}")),
            }
            let label = match label {
                LabelColumn::Last => "last".to_string(),
                LabelColumn::None => "none".to_string(),
                LabelColumn::Index(i) => i.to_string(),
                LabelColumn::Name(name) => format!("{name:?}"),
            };
            format!(
                "csv({path:?}, label: {label}, header: {header}{}{delimiter})",
                scale_text(*scale)
            )
        }
        DataSource::Text(t) => {
            let max_tokens = t
                .max_tokens
                .map_or(String::new(), |n| format!(", max_tokens: {n}"));
            format!(
                "text_csv({:?}, text: {:?}, label: {:?}{max_tokens}, output_sequence_length: {}, \
                 split: {:?}, standardize: {:?})",
                t.path,
                t.text,
                t.label,
                t.output_sequence_length,
                t.split.name(),
                t.standardize.name()
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
            weights,
        } => format!(
            "npy(features: {features:?}, labels: {labels:?}{}{})",
            scale_text(*scale),
            weights
                .as_ref()
                .map_or(String::new(), |w| format!(", weights: {w:?}"))
        ),
        DataSource::Npz {
            path,
            features,
            labels,
            scale,
            weights,
        } => format!(
            "npz({path:?}, features: {features:?}, labels: {labels:?}{}{})",
            scale_text(*scale),
            weights
                .as_ref()
                .map_or(String::new(), |w| format!(", weights: {w:?}"))
        ),
        DataSource::Timeseries {
            path,
            column,
            sequence_length,
            target_offset,
            sequence_stride,
            sampling_rate,
            missing,
            delimiter,
            features,
        } => {
            let text = |column: &LabelColumn| match column {
                LabelColumn::Last => "last".to_string(),
                LabelColumn::None => "none".to_string(),
                LabelColumn::Index(i) => i.to_string(),
                LabelColumn::Name(name) => format!("{name:?}"),
            };
            let features = if features == std::slice::from_ref(column) {
                String::new()
            } else {
                let listed: Vec<String> = features.iter().map(text).collect();
                format!(", features: [{}]", listed.join(", "))
            };
            let column = text(column);
            let delimiter = if *delimiter == ',' {
                String::new()
            } else {
                format!(", delimiter: {:?}", delimiter.to_string())
            };
            format!(
                "timeseries_csv({path:?}, column: {column}, sequence_length: {sequence_length}, \
                 target_offset: {target_offset}, sequence_stride: {sequence_stride}, \
                 sampling_rate: {sampling_rate}, missing: {:?}{delimiter}{features})",
                missing.name()
            )
        }
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
