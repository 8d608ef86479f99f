//! CSV data as it comes: feature columns chosen by name (other columns, strings among them, left
//! alone), and gaps (empty, `NA`, `NaN`) an error naming line and column unless the program says
//! how to fill them (`missing: "mean"` or a number).

mod common;

use kiln::diag::Span;
use kiln::ir::DType;
use kiln::program::DataSet;
use kiln::runtime::data::{self, Labels};
use kiln::settings::{DataSource, Fill, LabelColumn, Loss};

const PENGUINS: &str = "\
species,island,bill_length_mm,bill_depth_mm,body_mass_g,sex
0,Torgersen,39.1,18.7,3750,male
0,Torgersen,,17.4,3800,female
1,Dream,46.5,NA,3500,female
2,Biscoe,NaN,13.2,4500,
";

fn source(features: Option<Vec<&str>>, fill: Fill) -> DataSet {
    DataSet {
        name: "penguins".into(),
        span: Span::default(),
        source: DataSource::Csv {
            path: "penguins.csv".into(),
            label: LabelColumn::Name("species".into()),
            header: true,
            scale: 1.0,
            delimiter: ',',
            weight: None,
            features: features
                .map(|f| f.into_iter().map(|n| LabelColumn::Name(n.into())).collect()),
            fill,
            categorical: Vec::new(),
            encoding: Default::default(),
        },
    }
}

fn load(features: Option<Vec<&str>>, fill: Fill) -> Result<data::Dataset, String> {
    let dir = common::scratch("tabular", &[("penguins.csv", PENGUINS)]);
    data::load(
        &source(features, fill),
        &dir,
        Loss::SparseCategoricalCrossentropy,
        DType::F32,
    )
    .map_err(|e| e.to_string())
}

#[test]
fn features_by_name_skip_string_columns_and_keep_their_order() {
    let features = Some(vec!["body_mass_g", "bill_depth_mm"]);
    let d = load(features, Fill::Constant(-1.0)).unwrap();
    assert_eq!(d.features, 2);
    assert_eq!(
        d.x.as_f32().unwrap(),
        [3750.0, 18.7, 3800.0, 17.4, 3500.0, -1.0, 4500.0, 13.2]
    );
    assert_eq!(d.labels, Labels::Classes(vec![0, 0, 1, 2]));
}

#[test]
fn gaps_are_filled_with_the_column_mean_or_a_number() {
    let features = || Some(vec!["bill_length_mm", "bill_depth_mm"]);
    let d = load(features(), Fill::Mean).unwrap();
    let (length, depth) = ((39.1f64 + 46.5) / 2.0, (18.7f64 + 17.4 + 13.2) / 3.0);
    let want = [39.1, 18.7, length, 17.4, 46.5, depth, length, 13.2];
    for (got, want) in d.x.as_f32().unwrap().iter().zip(want) {
        assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
    }
    let d = load(features(), Fill::Constant(0.0)).unwrap();
    assert_eq!(
        d.x.as_f32().unwrap(),
        [39.1, 18.7, 0.0, 17.4, 46.5, 0.0, 0.0, 13.2]
    );
}

#[test]
fn unfilled_gaps_and_strings_are_errors_naming_line_and_column() {
    let features = || Some(vec!["bill_length_mm", "bill_depth_mm"]);
    let e = load(features(), Fill::Reject).unwrap_err();
    assert!(
        e.contains("line 3, column 3: empty cell (column 'bill_length_mm')"),
        "{e}"
    );
    let e = load(Some(vec!["bill_depth_mm"]), Fill::Reject).unwrap_err();
    assert!(
        e.contains("line 4, column 4: missing value 'NA'") && e.contains("missing: \"mean\""),
        "{e}"
    );
    // Every column a feature: the island's names are not numbers.
    let e = load(None, Fill::Mean).unwrap_err();
    assert!(
        e.contains("line 2, column 2") && e.contains("Torgersen"),
        "{e}"
    );
    let e = load(
        Some(vec!["bill_length_mm", "flipper_length_mm"]),
        Fill::Mean,
    )
    .unwrap_err();
    assert!(e.contains("flipper_length_mm"), "{e}");
}

/// `label: none`: every column a feature, for `predict` on new, unlabelled rows (here a single
/// column, which a labelled file could not have).
#[test]
fn unlabelled_data_predicts() {
    let train = "a,y\n1,0\n2,1\n3,0\n4,1\n";
    let fresh = "a\n1.5\n2.5\n3.5\n";
    let dir = common::scratch("unlabelled", &[("train.csv", train), ("fresh.csv", fresh)]);
    let source = "data train = csv(\"train.csv\")\n\
                  data fresh = csv(\"fresh.csv\", label: none)\n\
                  model m(x: f32[B, 1]) -> f32[B, 2] {\n    dense(2, softmax)\n}\n\
                  fit m on train {\n    loss sparse_categorical_crossentropy\n}\n\
                  predict m on fresh to \"out.csv\"\n";
    kiln::driver::run(source, &dir, &mut |_| {}).unwrap_or_else(|e| panic!("{e:?}"));
    let out = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert_eq!(lines[0], "prob_0,prob_1,class");
}

/// A file sorted by class: Keras's `validation_split` holds out the last class only;
/// `stratify` keeps each class's share on both sides, `shuffle_split` draws the held-out rows
/// from the fit's seed (the same rows for the same seed).
#[test]
fn stratified_and_shuffled_splits_of_a_sorted_file() {
    let mut text = String::from("a,y\n");
    for i in 0..30 {
        text.push_str(&format!("{i},{}\n", i / 10));
    }
    let dir = common::scratch("splits", &[("sorted.csv", &text)]);
    let set = DataSet {
        name: "sorted".into(),
        span: Span::default(),
        source: DataSource::Csv {
            path: "sorted.csv".into(),
            label: LabelColumn::Last,
            header: true,
            scale: 1.0,
            delimiter: ',',
            weight: None,
            features: None,
            fill: Fill::Reject,
            categorical: Vec::new(),
            encoding: Default::default(),
        },
    };
    let loaded = data::load(&set, &dir, Loss::SparseCategoricalCrossentropy, DType::F32).unwrap();
    let classes = |d: &data::Dataset| match &d.labels {
        Labels::Classes(c) => c.clone(),
        _ => unreachable!(),
    };
    let (_, keras) = loaded.clone().split_off_validation(0.2).unwrap();
    assert_eq!(classes(&keras), [2; 6]);
    let (train, held) = (loaded.clone())
        .split_off_validation_reordered(0.2, 7, false, true)
        .unwrap();
    assert_eq!(classes(&held), [0, 0, 1, 1, 2, 2]);
    assert_eq!(train.samples, 24);
    // Features follow their labels: row i holds feature i, class i / 10.
    for (x, c) in held.x.as_f32().unwrap().iter().zip(classes(&held)) {
        assert_eq!(*x as i32 / 10, c);
    }
    let shuffled = |seed| {
        let (_, held) = (loaded.clone())
            .split_off_validation_reordered(0.2, seed, true, true)
            .unwrap();
        held.x.as_f32().unwrap().to_vec()
    };
    assert_eq!(shuffled(7), shuffled(7));
    assert_ne!(shuffled(7), shuffled(8));
    let (_, held) = (loaded.clone())
        .split_off_validation_reordered(0.2, 7, true, true)
        .unwrap();
    let mut per_class = classes(&held);
    per_class.sort();
    assert_eq!(per_class, [0, 0, 1, 1, 2, 2]);
}

/// `programs/penguins.model` on the Palmer penguins as shipped (strings, `NA` gaps, sorted by
/// species): a stratified, shuffled split validates on every species, above 95%.
#[test]
fn penguins_program_validates_on_every_species() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/penguins.model");
    let source = std::fs::read_to_string(&path).unwrap();
    let outcomes = kiln::driver::run(&source, path.parent().unwrap(), &mut |_| {})
        .unwrap_or_else(|e| panic!("{e:?}"));
    let last = outcomes[0].history.last().unwrap();
    let validation = last.validation.as_ref().unwrap();
    assert_eq!(validation.samples, 70);
    let accuracy = validation
        .metrics
        .iter()
        .find(|(n, _)| *n == "accuracy")
        .unwrap()
        .1;
    assert!(accuracy > 0.95, "val_accuracy {accuracy}");
}

/// `test_split`: samples held out before training and validation (per class with `stratify`),
/// evaluated once training ends and reported after the fit's line.
#[test]
fn test_split_is_held_out_and_evaluated_after_training() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/penguins.model");
    let source = std::fs::read_to_string(&path).unwrap().replace(
        "    seed             1",
        "    test_split       0.1\n    seed             1",
    );
    assert!(
        source.contains("test_split"),
        "the program's seed line moved"
    );
    let mut events = Vec::new();
    let outcomes = kiln::driver::run(&source, path.parent().unwrap(), &mut |event| match event {
        kiln::driver::Event::Trained(_) => events.push("trained".to_string()),
        kiln::driver::Event::Evaluated {
            data, evaluation, ..
        } => events.push(format!("{data} {}", evaluation.samples)),
        _ => {}
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    // Per species: 152, 68 and 124 penguins leave 16, 7 and 13 for the test.
    assert_eq!(events, ["trained", "test_split 36"]);
    let test = outcomes[0].test.as_ref().unwrap();
    let validation = outcomes[0].history[0].validation.as_ref().unwrap();
    // Then 20% of each species' remaining 136, 61 and 111 validate: 28 + 13 + 23.
    assert_eq!(validation.samples, 64);
    assert!(test.loss.is_finite());
}
