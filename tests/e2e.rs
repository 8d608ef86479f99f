//! End to end: the example programs train through the whole pipeline (JIT-compiled step) to the
//! accuracy a Keras user would expect, and the same seed gives bit-identical weights.

use std::path::Path;

use kiln::driver::{self, FitOutcome};

fn train(program: &str) -> Vec<FitOutcome> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(program);
    let source = std::fs::read_to_string(&path).unwrap();
    match driver::run(&source, path.parent().unwrap(), &mut |_| {}) {
        Ok(outcomes) => outcomes,
        Err(driver::RunError::Program(d)) => panic!("{program}: {d:?}"),
        Err(driver::RunError::Data(e)) => panic!("{program}: {e}"),
    }
}

fn final_accuracy(outcome: &FitOutcome) -> f64 {
    let last = outcome.history.last().unwrap();
    last.metrics
        .iter()
        .find(|(name, _)| *name == "accuracy")
        .map(|&(_, value)| value)
        .unwrap()
}

#[test]
fn seed_model_reaches_90_percent_and_repeats_exactly() {
    let first = train("seed.model");
    let accuracy = final_accuracy(&first[0]);
    assert!(accuracy >= 0.9, "seed.model: training accuracy {accuracy}");
    let losses: Vec<f64> = first[0].history.iter().map(|r| r.loss).collect();
    assert!(
        losses.windows(2).all(|w| w[1] < w[0]),
        "loss falls every epoch: {losses:?}"
    );

    let second = train("seed.model");
    assert_eq!(first[0].weights_hash, second[0].weights_hash);
    assert_eq!(first[0].final_params, second[0].final_params);
}

#[test]
fn iris_reaches_90_percent() {
    let outcome = train("iris.model");
    let accuracy = final_accuracy(&outcome[0]);
    assert!(accuracy >= 0.9, "iris.model: training accuracy {accuracy}");
}

/// A small convnet with batch normalization trains for 2 epochs: the step moves the moving
/// statistics away from their initial 0 and 1, the checkpoint holds them under Keras's names,
/// and `evaluate` (inference) normalizes by them: it repeats exactly, matches the interpreter's
/// inference graph, and differs from the same weights' loss with batch statistics.
#[test]
fn batch_normalization_trains_saves_and_evaluates_with_moving_statistics() {
    use kiln::interp::{self, Bindings};
    use kiln::ir::lower;
    use ndarray::{ArrayD, IxDyn};

    let scratch = tempfile::Builder::new()
        .prefix("kiln-e2e-bn-")
        .tempdir()
        .unwrap();
    let dir = scratch.path();
    // 60 samples of 6x6 pixels, the class set by which third of the image is brightest.
    let (samples, pixels) = (60, 36);
    let mut x = Vec::new();
    let mut labels = Vec::new();
    let mut csv = String::new();
    for s in 0..samples {
        let class = s % 3;
        let row: Vec<f64> = (0..pixels)
            .map(|p| {
                let noise = ((s * 37 + p * 11) % 17) as f64 / 17.0;
                noise + if (p % 6) / 2 == class { 1.5 } else { 0.0 }
            })
            .collect();
        for v in &row {
            csv.push_str(&format!("{v},"));
        }
        csv.push_str(&format!("{class}\n"));
        x.extend(row);
        labels.push(class as f64);
    }
    std::fs::write(dir.join("images.csv"), csv).unwrap();
    let source = "
data images = csv(\"images.csv\", header: false)

model net(x: f32[B, 36]) -> f32[B, 3] {
    reshape([6, 6, 1])
    conv2d(4, 3)
    batch_normalization()
    relu
    flatten()
    dense(3, softmax)
}

fit net on images {
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.01)
    epochs    2
    batch     16
}
evaluate net on images
evaluate net on images
save net to \"bn.safetensors\"
";
    let mut evaluated = Vec::new();
    let outcomes = driver::run(source, dir, &mut |event| {
        if let driver::Event::Evaluated { evaluation, .. } = event {
            evaluated.push(evaluation.loss);
        }
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let params = &outcomes[0].final_params;

    let checked = driver::check_source(source).unwrap();
    let forward = &checked.program.models[0].forward;
    let index = |name: &str| forward.params.iter().position(|p| p.name == name).unwrap();
    let moving_mean = &params[index("batch_normalization.moving_mean")];
    let moving_variance = &params[index("batch_normalization.moving_variance")];
    assert!(moving_mean.iter().all(|&m| m != 0.0), "{moving_mean:?}");
    assert!(
        moving_variance.iter().all(|&v| v != 1.0 && v > 0.0),
        "{moving_variance:?}"
    );

    let bytes = std::fs::read(dir.join("bn.safetensors")).unwrap();
    let saved = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    for (name, values) in [
        ("batch_normalization.moving_mean", moving_mean),
        ("batch_normalization.moving_variance", moving_variance),
    ] {
        let tensor = saved.tensor(name).unwrap();
        assert_eq!(tensor.shape(), [4]);
        let floats: Vec<f32> = tensor
            .data()
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(&floats, values, "{name} in the checkpoint");
    }
    assert!(
        saved
            .tensor("optimizer.batch_normalization.moving_mean.m")
            .is_err()
    );

    assert_eq!(evaluated.len(), 2);
    assert_eq!(
        evaluated[0], evaluated[1],
        "inference does not move the statistics"
    );

    // The same weights on all samples at once in the interpreter, with either statistics.
    let fit = &checked.program.fits[0];
    let graph = lower::lower_training(forward, &fit.objective());
    let array = |shape: &[usize], v: Vec<f64>| ArrayD::from_shape_vec(IxDyn(shape), v).unwrap();
    let bindings = Bindings {
        inputs: graph
            .inputs
            .iter()
            .map(|i| match i.name.as_str() {
                "labels" => array(&[samples], labels.clone()),
                _ => array(&[samples, pixels], x.clone()),
            })
            .collect(),
        params: graph
            .params
            .iter()
            .zip(params)
            .map(|(p, v)| {
                array(
                    &p.shape.resolve(1),
                    v.iter().map(|&f| f64::from(f)).collect(),
                )
            })
            .collect(),
        states: vec![],
    };
    let loss = |graph: &kiln::ir::graph::Graph| {
        let values = interp::evaluate(graph, &bindings, samples).unwrap();
        values[graph.output("loss").unwrap().index()][IxDyn(&[])]
    };
    let inference = loss(&lower::for_inference(&graph));
    let training = loss(&graph);
    assert!(
        (inference - evaluated[0]).abs() < 1e-4 * inference.abs().max(1.0),
        "evaluate {}, the interpreter's inference graph {inference}",
        evaluated[0]
    );
    assert!(
        (inference - training).abs() > 1e-3,
        "inference {inference} and batch statistics {training} should differ"
    );
}
