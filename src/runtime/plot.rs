//! `kiln run --plot FILE.svg`: the training curves as an SVG image drawn with plotters — one
//! panel per quantity (loss, then each metric), training in blue and validation in red, against
//! the epoch, as a Keras user would plot `history.history`. The library draws into a string; the
//! CLI writes the file.

use plotters::prelude::*;

use super::train::EpochReport;

/// The series of one fit: `name` → (training values, validation values), by epoch.
struct Panel {
    title: String,
    train: Vec<(f64, f64)>,
    validation: Vec<(f64, f64)>,
}

fn panels(model: &str, history: &[EpochReport]) -> Vec<Panel> {
    let mut panels = vec![Panel {
        title: format!("{model}: loss"),
        train: history.iter().map(|r| (r.epoch as f64, r.loss)).collect(),
        validation: history
            .iter()
            .filter_map(|r| Some((r.epoch as f64, r.validation.as_ref()?.loss)))
            .collect(),
    }];
    let names: Vec<&str> = history
        .first()
        .map(|r| r.metrics.iter().map(|(n, _)| *n).collect())
        .unwrap_or_default();
    for (index, name) in names.into_iter().enumerate() {
        panels.push(Panel {
            title: format!("{model}: {name}"),
            train: history
                .iter()
                .filter_map(|r| Some((r.epoch as f64, r.metrics.get(index)?.1)))
                .collect(),
            validation: history
                .iter()
                .filter_map(|r| {
                    Some((r.epoch as f64, r.validation.as_ref()?.metrics.get(index)?.1))
                })
                .collect(),
        });
    }
    panels
}

/// The SVG text for the fits' histories.
pub fn svg(fits: &[(&str, &[EpochReport])]) -> Result<String, String> {
    let all: Vec<Panel> = fits
        .iter()
        .filter(|(_, history)| !history.is_empty())
        .flat_map(|(model, history)| panels(model, history))
        .collect();
    if all.is_empty() {
        return Err("nothing to plot: no epochs were trained".to_string());
    }
    let height = 300 * all.len() as u32;
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (720, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, panel) in root.split_evenly((all.len(), 1)).iter().zip(&all) {
            draw(area, panel).map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(text)
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let points = panel.train.iter().chain(&panel.validation);
    let (mut low, mut high) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut last_epoch = 1.0f64;
    for &(epoch, value) in points {
        if value.is_finite() {
            low = low.min(value);
            high = high.max(value);
        }
        last_epoch = last_epoch.max(epoch);
    }
    if !low.is_finite() {
        (low, high) = (0.0, 1.0);
    }
    let margin = ((high - low) * 0.08).max(1e-6);
    let first_epoch = panel.train.first().map_or(1.0, |&(e, _)| e);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(
            first_epoch..last_epoch.max(first_epoch + 1.0),
            (low - margin)..(high + margin),
        )?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    chart
        .draw_series(LineSeries::new(
            panel.train.iter().copied(),
            BLUE.stroke_width(2),
        ))?
        .label("training")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    if !panel.validation.is_empty() {
        chart
            .draw_series(LineSeries::new(
                panel.validation.iter().copied(),
                RED.stroke_width(2),
            ))?
            .label("validation")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::evaluate::Evaluation;

    #[test]
    fn draws_a_panel_per_quantity_with_both_curves() {
        let history: Vec<EpochReport> = (1..=4)
            .map(|epoch| EpochReport {
                epoch,
                epochs: 4,
                loss: 1.0 / epoch as f64,
                metrics: vec![("accuracy", 0.5 + 0.1 * epoch as f64)],
                per_class: Vec::new(),
                seconds: 0.1,
                steps: 3,
                learning_rate: None,
                validation: Some(Evaluation {
                    loss: 1.2 / epoch as f64,
                    metrics: vec![("accuracy", 0.4 + 0.1 * epoch as f64)],
                    per_class: Vec::new(),
                    samples: 10,
                }),
            })
            .collect();
        let text = svg(&[("m", &history)]).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..80]);
        assert!(text.contains("m: loss") && text.contains("m: accuracy"));
        assert!(text.contains("validation") && text.contains("training"));
        // A training (blue) and a validation (red) curve in each of the two panels.
        assert_eq!(
            text.matches(r##"stroke="#0000FF" stroke-width="2""##)
                .count(),
            2
        );
        assert_eq!(
            text.matches(r##"stroke="#FF0000" stroke-width="2""##)
                .count(),
            2
        );
        assert!(svg(&[("m", &[])]).is_err());
    }
}
