//! Training history as text for `kiln run --history FILE`: one row per epoch with the columns
//! Keras's `History` records (`loss`, metrics, `val_loss`, `val_…`), as CSV or as JSON. The
//! library formats; the CLI writes the file.

use serde_json::{Map, Value, json};

use super::train::EpochReport;

/// The named values of one epoch, in a stable order: epoch, loss, metrics, validation, seconds.
pub fn columns(report: &EpochReport) -> Vec<(String, f64)> {
    let mut columns = vec![
        ("epoch".to_string(), report.epoch as f64),
        ("loss".to_string(), report.loss),
    ];
    for (name, value) in &report.metrics {
        columns.push((name.to_string(), *value));
    }
    for (name, value) in &report.per_class {
        columns.push((name.clone(), *value));
    }
    if let Some(validation) = &report.validation {
        columns.push(("val_loss".to_string(), validation.loss));
        for (name, value) in &validation.metrics {
            columns.push((format!("val_{name}"), *value));
        }
        for (name, value) in &validation.per_class {
            columns.push((format!("val_{name}"), *value));
        }
    }
    if let Some(rate) = report.learning_rate {
        columns.push(("learning_rate".to_string(), rate));
    }
    columns.push(("seconds".to_string(), report.seconds));
    columns
}

/// CSV with a header row; `model` first, so several fits share one file.
pub fn to_csv(fits: &[(&str, &[EpochReport])]) -> String {
    let mut out = String::new();
    let mut header = None;
    for (model, history) in fits {
        for report in *history {
            let columns = columns(report);
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            let line = format!("model,{}\n", names.join(","));
            if header.as_ref() != Some(&line) {
                out.push_str(&line);
                header = Some(line);
            }
            let values: Vec<String> = columns.iter().map(|(_, v)| v.to_string()).collect();
            out.push_str(&format!("{model},{}\n", values.join(",")));
        }
    }
    out
}

/// A JSON array with one object per fit: `{"model": …, "loss": [...], "accuracy": [...], …}`,
/// the shape of Keras's `history.history` with the model's name added.
pub fn to_json(fits: &[(&str, &[EpochReport])]) -> String {
    let fits: Vec<Value> = fits
        .iter()
        .map(|(model, history)| {
            let mut object = Map::new();
            object.insert("model".to_string(), json!(model));
            for report in *history {
                for (name, value) in columns(report) {
                    let series = object.entry(name).or_insert_with(|| json!([]));
                    if let Value::Array(series) = series {
                        series.push(json!(value));
                    }
                }
            }
            Value::Object(object)
        })
        .collect();
    // Serializing plain numbers and strings cannot fail.
    serde_json::to_string_pretty(&fits).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::evaluate::Evaluation;

    fn report(epoch: usize, validation: bool) -> EpochReport {
        EpochReport {
            epoch,
            epochs: 2,
            loss: 0.5 / epoch as f64,
            metrics: vec![("accuracy", 0.25 * epoch as f64)],
            per_class: Vec::new(),
            seconds: 0.125,
            steps: 4,
            learning_rate: None,
            validation: validation.then(|| Evaluation {
                loss: 0.75,
                metrics: vec![("accuracy", 0.5)],
                per_class: Vec::new(),
                samples: 10,
            }),
        }
    }

    #[test]
    fn csv_has_one_header_and_a_row_per_epoch() {
        let history = [report(1, true), report(2, true)];
        let csv = to_csv(&[("m", &history)]);
        assert_eq!(
            csv,
            "model,epoch,loss,accuracy,val_loss,val_accuracy,seconds\n\
             m,1,0.5,0.25,0.75,0.5,0.125\n\
             m,2,0.25,0.5,0.75,0.5,0.125\n"
        );
    }

    #[test]
    fn json_holds_a_series_per_column() {
        let history = [report(1, false), report(2, false)];
        let parsed: Value = serde_json::from_str(&to_json(&[("m", &history)])).unwrap();
        assert_eq!(parsed[0]["model"], json!("m"));
        assert_eq!(parsed[0]["loss"], json!([0.5, 0.25]));
        assert_eq!(parsed[0]["accuracy"], json!([0.25, 0.5]));
        assert!(parsed[0].get("val_loss").is_none());
    }
}
