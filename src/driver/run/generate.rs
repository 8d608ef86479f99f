//! `generate`: text from a language model, one token at a time. Each step feeds the model the
//! last window of ids (the prompt's tokens, then the generated ones; 0, the padding id, before
//! them while there are fewer), draws the next token from its scores at the temperature, and
//! appends it. The vocabulary is the model's own (kept from its `text_windows` fit, or from a
//! checkpoint or bundle), so the ids mean what they meant in training; the draw is seeded.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::buffer::Buffer;
use crate::runtime::data::text::{self, TextVocabulary};
use crate::runtime::data::{Features, Labels};
use crate::settings::TextSplit;

/// What `generate` reads besides the model.
pub(in crate::driver) struct Request<'a> {
    pub prompt: &'a str,
    pub length: usize,
    pub temperature: f64,
    pub seed: u64,
}

impl Runner<'_, '_> {
    /// The text `request` generates from `model`'s current weights: the prompt, then `length`
    /// tokens.
    pub(in crate::driver) fn generate(
        &mut self,
        model: usize,
        fit: Option<&Fit>,
        request: &Request,
    ) -> Result<String, RunError> {
        let fit = fit.cloned().unwrap_or_else(|| self.some_fit(model));
        let m = &self.program.models[model];
        let (window, classes) = (m.input_features, m.output_features);
        let scores_are_logits =
            m.output_activation() == Activation::Softmax && !fit.loss_options.from_logits;
        let graph = self.forward(&fit)?;
        let mut evaluator = self.evaluator(&graph, 1, &fit)?;
        let state = self.weights(model)?;
        let Some(vocabulary) = state.text.clone() else {
            return Err(RunError::Data(DataError::new(
                &m.name,
                format!(
                    "model '{}' has no text vocabulary to generate with: fit it on \
                     `text_windows` data first, or load a checkpoint or bundle that has one",
                    m.name
                ),
            )));
        };
        let params = state.params.clone();
        let params: Vec<&[f32]> = params.iter().map(Vec::as_slice).collect();
        let index = vocabulary.index();
        let mut ids: Vec<i32> =
            text::tokens(request.prompt, vocabulary.split, vocabulary.standardize)
                .iter()
                .map(|t| index.get(t.as_str()).copied().unwrap_or(text::UNKNOWN))
                .collect();
        let mut out = request.prompt.to_string();
        let mut rng = ChaCha8Rng::seed_from_u64(request.seed);
        let origin = format!("generate {}", m.name);
        for _ in 0..request.length {
            let mut x = Buffer::<i32>::zeroed(window)
                .map_err(|e| RunError::Data(DataError::new(&origin, format!("{e:?}"))))?;
            let kept = ids.len().min(window);
            x[window - kept..].copy_from_slice(&ids[ids.len() - kept..]);
            let set = Dataset {
                samples: 1,
                features: window,
                shape: None,
                x: Features::I32(x),
                labels: Labels::Classes(vec![0]),
                origin: origin.clone(),
                labels_origin: origin.clone(),
                last_values: None,
                weights: None,
            };
            let scores = evaluator.scores(&params, &set);
            let id = draw(
                &scores[..classes],
                scores_are_logits,
                request.temperature,
                &mut rng,
            );
            ids.push(id as i32);
            append(&mut out, &vocabulary, id);
        }
        Ok(out)
    }
}

/// A token id drawn from one row of scores (logits, or probabilities) at `temperature`:
/// softmax(log p / temperature), the likeliest at 0. Padding (id 0) is never drawn.
fn draw(scores: &[f32], logits: bool, temperature: f64, rng: &mut ChaCha8Rng) -> usize {
    let logit = |s: f32| {
        if logits {
            f64::from(s)
        } else {
            f64::from(s).max(1e-30).ln()
        }
    };
    let candidates = (1..scores.len()).map(|id| (id, logit(scores[id])));
    if temperature == 0.0 {
        return candidates
            .fold(
                (0, f64::NEG_INFINITY),
                |best, c| if c.1 > best.1 { c } else { best },
            )
            .0;
    }
    let top = candidates
        .clone()
        .map(|(_, l)| l)
        .fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<(usize, f64)> = candidates
        .map(|(id, l)| (id, ((l - top) / temperature).exp()))
        .collect();
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut target = rng.random::<f64>() * total;
    for &(id, w) in &weights {
        if target < w {
            return id;
        }
        target -= w;
    }
    weights.last().map_or(0, |&(id, _)| id)
}

/// Appends token `id` as text: characters as they are, words after a space.
fn append(out: &mut String, vocabulary: &TextVocabulary, id: usize) {
    if vocabulary.split == TextSplit::Whitespace && !out.is_empty() {
        out.push(' ');
    }
    out.push_str(vocabulary.token(id));
}
