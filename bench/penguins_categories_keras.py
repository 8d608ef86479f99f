"""Keras 3 on programs/penguins_categories.model's setup, for comparison (not a test dependency).

The same columns and model: island and sex through StringLookup(output_mode="one_hot") adapted
to the training rows (a missing sex is [UNK]), the four measurements with gaps filled by the
column mean and standardized with the training statistics, species names as sorted classes;
dense(16, relu) -> dense(3, softmax), Adam(0.01), 30 epochs, batch 16, a stratified shuffled
80/20 split (NumPy's seeded shuffle, so not Kiln's rows). Prints each vocabulary, the encoded
width, the final val_accuracy and the fit's seconds.

    $HOME/.peers/bin/python bench/penguins_categories_keras.py
"""

import csv
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
records = list(csv.DictReader(open(os.path.join(HERE, "../programs/data/penguins.csv"))))


def column(name):
    return np.array([r[name] for r in records])


names = sorted(set(column("species")))
y = np.array([names.index(v) for v in column("species")])
rng = np.random.RandomState(1)
train, val = [], []
for c in range(len(names)):
    rows = np.where(y == c)[0]
    rng.shuffle(rows)
    k = int(np.floor(len(rows) * 0.8))
    train += list(rows[:k])
    val += list(rows[k:])

numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
x = np.array([[np.nan if r[c] == "NA" else float(r[c]) for c in numeric] for r in records])
x = np.where(np.isnan(x), np.nanmean(x, 0), x)
parts_train, parts_val = [x[train]], [x[val]]
for name in ["island", "sex"]:
    cells = np.array(["" if v == "NA" else v for v in column(name)])
    lookup = keras.layers.StringLookup(output_mode="one_hot")
    lookup.adapt(cells[train][cells[train] != ""])
    print(name, [str(v) for v in lookup.get_vocabulary()])
    parts_train.append(np.asarray(lookup(cells[train])))
    parts_val.append(np.asarray(lookup(cells[val])))
x_train = np.concatenate(parts_train, 1).astype("float32")
x_val = np.concatenate(parts_val, 1).astype("float32")
mean, std = x_train[:, :4].mean(0), x_train[:, :4].std(0)
x_train[:, :4] = (x_train[:, :4] - mean) / std
x_val[:, :4] = (x_val[:, :4] - mean) / std

keras.utils.set_random_seed(1)
model = keras.Sequential(
    [
        keras.Input((x_train.shape[1],)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(0.01),
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
start = time.time()
history = model.fit(
    x_train, y[train], validation_data=(x_val, y[val]), epochs=30, batch_size=16, verbose=0
)
print(
    f"width {x_train.shape[1]} val_accuracy {history.history['val_accuracy'][-1]:.4f} "
    f"fit {time.time() - start:.2f} s"
)
