//! Categories in CSV files: string feature columns as Keras's `StringLookup` encodes them (one-hot
//! or an index, `[UNK]` first, the vocabulary from the training rows only), string labels as
//! classes in sorted order, and both kept with the model: in checkpoints, in bundles, and for
//! `predict` on new files.

mod common;

use kiln::diag::Span;
use kiln::ir::DType;
use kiln::program::DataSet;
use kiln::runtime::checkpoint;
use kiln::runtime::data::{self, Labels, TableVocabulary, Tabular};
use kiln::settings::{CategoryEncoding, DataSource, Fill, LabelColumn, Loss};

const SCCE: Loss = Loss::SparseCategoricalCrossentropy;

/// Rows with a numeric column, two string columns (one with gaps) and species names.
const ANIMALS: &str = "\
mass,island,sex,species
10,Biscoe,male,Gentoo
20,Dream,female,Adelie
30,Biscoe,NA,Gentoo
40,Torgersen,female,Chinstrap
50,Biscoe,male,Adelie
60,Dream,,Adelie
";

fn source(
    categorical: &[&str],
    encoding: CategoryEncoding,
    fill: Fill,
    label: LabelColumn,
) -> DataSet {
    DataSet {
        name: "animals".into(),
        span: Span::default(),
        source: DataSource::Csv {
            path: "animals.csv".into(),
            label,
            header: true,
            scale: 1.0,
            delimiter: ',',
            weight: None,
            features: None,
            fill,
            categorical: (categorical.iter())
                .map(|c| LabelColumn::Name(c.to_string()))
                .collect(),
            encoding,
        },
    }
}

fn species() -> LabelColumn {
    LabelColumn::Name("species".into())
}

fn load(
    set: &DataSet,
    text: &str,
    input: DType,
    tabular: Tabular,
) -> Result<(data::Dataset, Option<TableVocabulary>), String> {
    let dir = common::scratch("categories", &[("animals.csv", text)]);
    data::load_tabular(set, &dir, SCCE, input, tabular, true).map_err(|e| e.to_string())
}

#[test]
fn string_columns_become_one_hot_features_with_unk_first() {
    let set = source(
        &["island", "sex"],
        CategoryEncoding::OneHot,
        Fill::Mean,
        species(),
    );
    let (d, vocabulary) = load(&set, ANIMALS, DType::F32, Tabular::ALL_ROWS).unwrap();
    let vocabulary = vocabulary.unwrap();
    // Most frequent first, equal counts in byte order; index 0 is [UNK].
    assert_eq!(
        vocabulary.columns[0].values,
        ["Biscoe", "Dream", "Torgersen"]
    );
    assert_eq!(vocabulary.columns[1].values, ["female", "male"]);
    // mass, then island as [UNK, Biscoe, Dream, Torgersen], then sex as [UNK, female, male].
    assert_eq!(d.features, 1 + 4 + 3);
    let x = d.x.as_f32().unwrap();
    assert_eq!(&x[..8], [10.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    // A gap in a categorical column, filled: [UNK].
    assert_eq!(&x[16..24], [30.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(&x[40..48], [60.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    // Names become classes in sorted order: Adelie 0, Chinstrap 1, Gentoo 2.
    assert_eq!(d.labels, Labels::Classes(vec![2, 0, 2, 1, 0, 0]));
    let (column, classes) = vocabulary.classes.as_ref().unwrap();
    assert_eq!((column.as_str(), classes.len()), ("species", 3));
    assert_eq!(vocabulary.category_features(), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        vocabulary.describe(),
        "1 numeric, 'island' one-hot as 4 (3 values and [UNK]), 'sex' one-hot as 3 (2 values \
         and [UNK])"
    );
}

#[test]
fn index_encoding_feeds_token_ids() {
    let set = source(&["island"], CategoryEncoding::Index, Fill::Mean, species());
    let text = "island,species\nDream,a\nBiscoe,b\nDream,a\nMars,b\n";
    // Only the first three rows train: "Mars" is [UNK], 0.
    let first_three = |_: &Labels, _: usize| Ok(vec![0, 1, 2]);
    let (d, _) = load(&set, text, DType::I32, Tabular::Adapt(&first_three)).unwrap();
    match &d.x {
        data::Features::I32(ids) => assert_eq!(ids.to_vec(), [1, 2, 1, 0]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gaps_words_and_unknown_classes_are_errors_naming_line_and_column() {
    let set = source(
        &["island"],
        CategoryEncoding::OneHot,
        Fill::Reject,
        species(),
    );
    let e = load(&set, ANIMALS, DType::F32, Tabular::ALL_ROWS).unwrap_err();
    // `sex` is not categorical here: its words are not numbers, and the message says what to do.
    assert!(
        e.contains("line 2, column 3: cannot read 'male' as a number (column 'sex'); a column of categories? list it in `categorical: [...]`"),
        "{e}"
    );
    let set = source(
        &["island", "sex"],
        CategoryEncoding::OneHot,
        Fill::Reject,
        species(),
    );
    let e = load(&set, ANIMALS, DType::F32, Tabular::ALL_ROWS).unwrap_err();
    assert!(
        e.contains("line 4, column 3: missing category 'NA' (column 'sex')"),
        "{e}"
    );
    // With the model's classes, a name it does not know is an error.
    let set = source(&[], CategoryEncoding::OneHot, Fill::Reject, species());
    let kept = TableVocabulary {
        features: 1,
        columns: Vec::new(),
        encoding: CategoryEncoding::OneHot,
        classes: Some(("species".into(), vec!["Adelie".into(), "Gentoo".into()])),
    };
    let text = "mass,species\n1,Adelie\n2,Chinstrap\n";
    let e = load(&set, text, DType::F32, Tabular::Keep(Some(&kept))).unwrap_err();
    assert!(
        e.contains("line 3, column 2: class 'Chinstrap' is not one of the model's classes ('Adelie', 'Gentoo')"),
        "{e}"
    );
    // Categories need the model's vocabulary once it has been trained without one.
    let set = source(&["island"], CategoryEncoding::OneHot, Fill::Mean, species());
    let e = load(&set, ANIMALS, DType::F32, Tabular::Keep(None)).unwrap_err();
    assert!(e.contains("no vocabulary of categories yet"), "{e}");
    // A column of numbers and names is neither.
    let set = source(&[], CategoryEncoding::OneHot, Fill::Reject, species());
    let e = load(
        &set,
        "mass,species\n1,2\n2,cat\n",
        DType::F32,
        Tabular::ALL_ROWS,
    )
    .unwrap_err();
    assert!(
        e.contains("line 3, column 2: cannot read class label 'cat'"),
        "{e}"
    );
}

/// The vocabulary comes from the training rows only: a value seen only in the held-out rows
/// is [UNK] everywhere, as Keras's `adapt` on the training split would make it. Class names
/// come from every row. Checkpoints and bundles keep both, and `predict` writes the names.
#[test]
fn the_vocabulary_is_the_training_rows_and_stays_with_the_model() {
    // 8 training rows (A or B), 2 validation rows (island C only there).
    let mut text = String::from("mass,island,species\n");
    for i in 0..8 {
        let (island, species) = if i % 2 == 0 { ("A", "x") } else { ("B", "y") };
        text.push_str(&format!("{i},{island},{species}\n"));
    }
    text.push_str("8,C,x\n9,C,y\n");
    let fresh = "mass,island\n1,A\n2,C\n3,B\n";
    let program = "\
data train = csv(\"train.csv\", label: \"species\", categorical: [\"island\"])
data fresh = csv(\"fresh.csv\", label: none, categorical: [\"island\"])
model m(x: f32[B, 4]) -> f32[B, 2] {
    dense(2, softmax)
}
fit m on train {
    loss             sparse_categorical_crossentropy
    epochs           2
    validation_split 0.2
}
save m to \"m.safetensors\"
save m to \"m.kiln\"
predict m on fresh to \"out.csv\"
";
    let dir = common::scratch(
        "kept",
        &[
            ("train.csv", &text),
            ("fresh.csv", fresh),
            ("p.model", program),
        ],
    );
    kiln::driver::run(program, &dir, &mut |_| {}).unwrap_or_else(|e| panic!("{e:?}"));
    let saved = checkpoint::read(&dir.join("m.safetensors")).unwrap();
    let table = saved.table.unwrap();
    assert_eq!(table.columns[0].name, "island");
    assert_eq!(table.columns[0].values, ["A", "B"]);
    assert_eq!(
        table.classes,
        Some((
            "species".to_string(),
            vec!["x".to_string(), "y".to_string()]
        ))
    );
    let out = std::fs::read_to_string(dir.join("out.csv")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "prob_0,prob_1,class,species");
    assert_eq!(lines.len(), 4, "{out}");
    for line in &lines[1..] {
        assert!(line.ends_with(",x") || line.ends_with(",y"), "{line}");
    }
    // The bundle predicts the same from the file alone, reading it without its label column.
    let bundled = common::kiln(&[
        "predict",
        dir.join("m.kiln").to_str().unwrap(),
        dir.join("fresh.csv").to_str().unwrap(),
        "-o",
        dir.join("bundled.csv").to_str().unwrap(),
    ]);
    assert!(
        bundled.status.success(),
        "{}",
        common::text(&bundled.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("bundled.csv")).unwrap(),
        out
    );
    // The encoded width is known once the vocabulary is: a model of another width is told it.
    let wrong = program.replace("f32[B, 4]", "f32[B, 5]");
    let Err(kiln::driver::RunError::Data(e)) = kiln::driver::run(&wrong, &dir, &mut |_| {}) else {
        panic!("a 5-wide model trained on 4 features");
    };
    assert!(
        e.message.ends_with(
            "the data has 4 features per sample, but model 'm' takes input x: f32[B, 5] (the \
             data's features: 1 numeric, 'island' one-hot as 3 (2 values and [UNK]))"
        ),
        "{e}"
    );
}

/// `scale` divides numbers, not categories; `standardize` leaves one-hot features as they are.
#[test]
fn categories_are_not_scaled() {
    let mut set = source(&["island"], CategoryEncoding::OneHot, Fill::Mean, species());
    if let DataSource::Csv {
        scale, features, ..
    } = &mut set.source
    {
        *scale = 10.0;
        *features = Some(vec![
            LabelColumn::Name("island".into()),
            LabelColumn::Name("mass".into()),
        ]);
    }
    let (d, _) = load(&set, ANIMALS, DType::F32, Tabular::ALL_ROWS).unwrap();
    // island first ([UNK], Biscoe, Dream, Torgersen), then mass / 10.
    assert_eq!(&d.x.as_f32().unwrap()[..5], [0.0, 1.0, 0.0, 0.0, 1.0]);
}

/// `programs/penguins_categories.model`: island and sex as categories, species names as
/// classes, on the Palmer penguins as shipped.
#[test]
fn penguins_with_categories_validate_above_95_percent() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/penguins_categories.model");
    let source = std::fs::read_to_string(&path).unwrap();
    let dir = common::scratch("penguins", &[]);
    // The program writes its predictions beside itself; run it from a copy.
    let data = path.parent().unwrap().join("data");
    let source = source.replace("\"data/", &format!("\"{}/", data.display()));
    let outcomes =
        kiln::driver::run(&source, &dir, &mut |_| {}).unwrap_or_else(|e| panic!("{e:?}"));
    let validation = outcomes[0]
        .history
        .last()
        .unwrap()
        .validation
        .clone()
        .unwrap();
    let accuracy = (validation.metrics.iter())
        .find(|(n, _)| *n == "accuracy")
        .unwrap()
        .1;
    assert!(accuracy > 0.95, "val_accuracy {accuracy}");
    let out = std::fs::read_to_string(dir.join("penguin_species.csv")).unwrap();
    assert!(
        out.starts_with("prob_0,prob_1,prob_2,class,species\n"),
        "{out}"
    );
}
