"""programs/topics.model and programs/topics_transformer.model in Keras 3, for reference only
(not a dependency of Kiln or its tests): the same CSV, the same TextVectorization settings
(lower case without punctuation, words, 10,000 tokens from the training rows, 40 ids per text),
the same split (the last 20% of the rows held out, topics as classes 0-8 in sorted order), the
same layers, optimizer, batch and epochs. Prints each model's validation accuracy per epoch.

    KERAS_BACKEND=torch python programs/topics_keras.py

(TextVectorization needs TensorFlow installed, whichever backend trains.) Measured 2026-12-03 with
Keras 3 on the torch backend: topics.model 0.6126, topics_transformer.model 0.6266 after 8 epochs.
"""
import csv
import os

import numpy as np
import keras
from keras import layers

HERE = os.path.dirname(os.path.abspath(__file__))
rows = list(csv.DictReader(open(os.path.join(HERE, "data/fortunes-topics.csv"), newline="")))
texts = [r["text"] for r in rows]
names = sorted({r["topic"] for r in rows})
labels = np.array([names.index(r["topic"]) for r in rows], dtype="int32")
cut = len(rows) - int(round(len(rows) * 0.2))

vectorize = layers.TextVectorization(max_tokens=10000, output_sequence_length=40,
                                     standardize="lower_and_strip_punctuation")
vectorize.adapt(texts[:cut])
ids = np.asarray(vectorize(texts)).astype("int32")
x_train, y_train, x_val, y_val = ids[:cut], labels[:cut], ids[cut:], labels[cut:]


def bag_of_words():
    return keras.Sequential([
        keras.Input((40,), dtype="int32"),
        layers.Embedding(10000, 32),
        layers.GlobalAveragePooling1D(),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(9, activation="softmax"),
    ]), 0.005


class PositionEmbedding(layers.Layer):
    def build(self, shape):
        self.table = self.add_weight(shape=shape[1:], initializer="random_uniform")

    def call(self, x):
        return x + self.table


def transformer():
    inputs = keras.Input((40,), dtype="int32")
    x = PositionEmbedding()(layers.Embedding(10000, 32)(inputs))
    a = layers.MultiHeadAttention(num_heads=2, key_dim=32)(x, x)
    a = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(0.1)(a))
    f = layers.Dense(32)(layers.Dense(32, activation="relu")(a))
    x = layers.LayerNormalization(epsilon=1e-6)(a + layers.Dropout(0.1)(f))
    x = layers.Dropout(0.1)(layers.GlobalAveragePooling1D()(x))
    x = layers.Dropout(0.1)(layers.Dense(20, activation="relu")(x))
    return keras.Model(inputs, layers.Dense(9, activation="softmax")(x)), 0.001


for name, build in [("topics.model", bag_of_words), ("topics_transformer.model", transformer)]:
    keras.utils.set_random_seed(1)
    model, lr = build()
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, validation_data=(x_val, y_val), batch_size=32,
                        epochs=8, verbose=0)
    accuracy = history.history["val_accuracy"]
    print(f"{name}: val_accuracy per epoch {[round(a, 4) for a in accuracy]}, "
          f"last {accuracy[-1]:.4f}, best {max(accuracy):.4f}")
