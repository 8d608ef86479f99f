#!/usr/bin/env python3
"""Writes the masking fixture read by `tests/parity_mask.rs` (issue 17): Keras 3 is the
reference for `embedding(mask_zero: true)` through the recurrent layers, `bidirectional`,
`multi_head_attention` and `global_average_pooling1d`, and for `bidirectional`'s merge modes and
weight names.

Each network's Kiln program, its weights (Keras's initial values, the biases plus uniform noise
so that every bias block shapes the output), a batch of padded token sequences, and what Keras
computes from them: the model's output, the mean sparse categorical cross-entropy and its
gradient with respect to every weight (`tf.GradientTape`). Python runs once to produce the
fixture; the Rust test only reads `fixture.json`.

usage: $HOME/.peers/bin/python bench/parity/make_mask_fixture.py [OUT_DIR]
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import keras
import tensorflow as tf

SEED = 20261203
VOCAB, STEPS, CLASSES = 12, 7, 3

# Padding at the end (Keras's default `pad_sequences(padding: "post")`), at the start, in the
# middle, none, and a single kept step; no wholly padded row (Keras's masked mean is 0/0 there).
IDS = np.array(
    [
        [3, 5, 7, 0, 0, 0, 0],
        [0, 0, 0, 4, 9, 2, 11],
        [1, 2, 0, 0, 3, 4, 5],
        [6, 7, 8, 9, 10, 11, 1],
        [0, 0, 0, 0, 0, 0, 8],
        [2, 0, 2, 0, 2, 0, 2],
    ],
    dtype=np.int32,
)
LABELS = np.array([0, 1, 2, 1, 0, 2], dtype=np.int32)


def networks():
    """(name, Kiln model body, Keras layers) — the same layers in the same order."""
    L = keras.layers
    return [
        (
            "lstm_gru",
            [
                "embedding(12, 4, mask_zero: true)",
                "lstm(5, return_sequences: true)",
                "gru(4, go_backwards: true)",
                "dense(3, softmax)",
            ],
            [
                L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                L.LSTM(5, return_sequences=True, name="lstm"),
                L.GRU(4, go_backwards=True, name="gru"),
                L.Dense(CLASSES, activation="softmax", name="dense"),
            ],
        ),
        (
            "rnn_pool",
            [
                "embedding(12, 4, mask_zero: true)",
                "dropout(0.0)",
                "simple_rnn(6, return_sequences: true, go_backwards: true)",
                "dense(5, relu)",
                "global_average_pooling1d",
                "dense(3, softmax)",
            ],
            [
                L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                L.Dropout(0.0, name="dropout"),
                L.SimpleRNN(6, return_sequences=True, go_backwards=True, name="simple_rnn"),
                L.Dense(5, activation="relu", name="dense"),
                L.GlobalAveragePooling1D(name="global_average_pooling1d"),
                L.Dense(CLASSES, activation="softmax", name="dense_1"),
            ],
        ),
        (
            "bi_mask",
            [
                "embedding(12, 4, mask_zero: true)",
                "bidirectional(lstm(5, return_sequences: true))",
                "bidirectional(gru(4), merge_mode: \"sum\")",
                "dense(3, softmax)",
            ],
            [
                L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                L.Bidirectional(L.LSTM(5, return_sequences=True, name="lstm"), name="bidirectional"),
                L.Bidirectional(L.GRU(4, name="gru"), merge_mode="sum", name="bidirectional_1"),
                L.Dense(CLASSES, activation="softmax", name="dense"),
            ],
        ),
        (
            "bi_modes",
            [
                "embedding(12, 4)",
                "bidirectional(simple_rnn(3, return_sequences: true), merge_mode: \"mul\")",
                "bidirectional(lstm(4), merge_mode: \"ave\")",
                "dense(3, softmax)",
            ],
            [
                L.Embedding(VOCAB, 4, name="embedding"),
                L.Bidirectional(
                    L.SimpleRNN(3, return_sequences=True, name="simple_rnn"),
                    merge_mode="mul",
                    name="bidirectional",
                ),
                L.Bidirectional(L.LSTM(4, name="lstm"), merge_mode="ave", name="bidirectional_1"),
                L.Dense(CLASSES, activation="softmax", name="dense"),
            ],
        ),
        (
            "attention_mask",
            [
                "embedding(12, 4, mask_zero: true)",
                "multi_head_attention(2, 3)",
                "global_average_pooling1d",
                "dense(3, softmax)",
            ],
            [
                L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                L.MultiHeadAttention(2, 3, name="multi_head_attention"),
                L.GlobalAveragePooling1D(name="global_average_pooling1d"),
                L.Dense(CLASSES, activation="softmax", name="dense"),
            ],
        ),
        (
            "attention_causal",
            [
                "embedding(12, 4, mask_zero: true)",
                "multi_head_attention(2, 3, use_causal_mask: true)",
                "lstm(4)",
                "dense(3, softmax)",
            ],
            [
                L.Embedding(VOCAB, 4, mask_zero=True, name="embedding"),
                (L.MultiHeadAttention(2, 3, name="multi_head_attention"), {"use_causal_mask": True}),
                L.LSTM(4, name="lstm"),
                L.Dense(CLASSES, activation="softmax", name="dense"),
            ],
        ),
    ]


# The cross-attention networks read rows of 17 ids. A masked sequence is an embedding of the
# whole row; a shorter, unmasked one is a slice of another embedding (a slice drops the mask).
CROSS_IDS = np.concatenate(
    [
        IDS,
        np.array(
            [
                [4, 4, 0, 0, 0],
                [0, 0, 5, 6, 7],
                [1, 0, 2, 0, 3],
                [9, 8, 7, 6, 5],
                [3, 0, 0, 0, 0],
                [0, 11, 0, 10, 0],
            ],
            dtype=np.int32,
        ),
        np.array(
            [
                [1, 2, 3, 0, 0],
                [0, 4, 5, 6, 7],
                [8, 0, 9, 0, 10],
                [0, 0, 0, 0, 2],
                [5, 5, 5, 5, 5],
                [6, 0, 7, 0, 8],
            ],
            dtype=np.int32,
        ),
    ],
    axis=1,
)


def cross_networks():
    """(name, Kiln model body, Keras graph builder, its layers): attention between two or three
    sequences, each cut from the same row of ids and embedded on its own.

    Attention is called with `return_attention_scores=True` (the scores are dropped), which
    makes Keras 3 take its masked-softmax path, the one it always takes with `dropout > 0`: a
    real query whose every visible key is masked (padding before it under the causal mask) gets
    weights 0 there, as Kiln gives. Without it and without dropout, Keras 3.15 calls its fused
    `dot_product_attention`, which leaves such a row the average of every value, padded and
    future ones included."""
    L = keras.layers

    def attend(mha, *args, **kwargs):
        result, _ = mha(*args, return_attention_scores=True, **kwargs)
        return result

    def cross(inp):
        e_q = L.Embedding(VOCAB, 4, name="embedding")
        e_v = L.Embedding(VOCAB, 6, mask_zero=True, name="embedding_1")
        mha = L.MultiHeadAttention(2, 3, name="multi_head_attention")
        pool = L.GlobalAveragePooling1D(name="global_average_pooling1d")
        dense = L.Dense(CLASSES, activation="softmax", name="dense")
        q, v = e_q(inp)[:, 0:7], e_v(inp)
        return dense(pool(attend(mha, q, v))), [e_q, e_v, mha, pool, dense]

    def cross_key_causal(inp):
        e_q = L.Embedding(VOCAB, 4, name="embedding")
        e_v = L.Embedding(VOCAB, 6, name="embedding_1")
        e_k = L.Embedding(VOCAB, 5, mask_zero=True, name="embedding_2")
        mha = L.MultiHeadAttention(2, 3, value_dim=2, name="multi_head_attention")
        lstm = L.LSTM(4, name="lstm")
        dense = L.Dense(CLASSES, activation="softmax", name="dense")
        q, v, k = e_q(inp)[:, 0:7], e_v(inp), e_k(inp)
        return dense(lstm(attend(mha, q, v, k, use_causal_mask=True))), [
            e_q, e_v, e_k, mha, lstm, dense
        ]

    def causal_fewer_keys(inp):
        e_q = L.Embedding(VOCAB, 4, mask_zero=True, name="embedding")
        e_v = L.Embedding(VOCAB, 6, name="embedding_1")
        mha = L.MultiHeadAttention(3, 2, name="multi_head_attention")
        flat = L.Flatten(name="flatten")
        dense = L.Dense(CLASSES, activation="softmax", name="dense")
        q, v = e_q(inp), e_v(inp)[:, 12:17]
        return dense(flat(attend(mha, q, v, use_causal_mask=True))), [e_q, e_v, mha, flat, dense]

    return [
        (
            "cross",
            [
                "let q = slice(embedding(12, 4)(x), axis: 1, start: 0, end: 7)",
                "let v = embedding(12, 6, mask_zero: true)(x)",
                "let a = multi_head_attention(2, 3)(q, v)",
                "dense(3, softmax)(global_average_pooling1d(a))",
            ],
            cross,
        ),
        (
            "cross_key_causal",
            [
                "let q = slice(embedding(12, 4)(x), axis: 1, start: 0, end: 7)",
                "let v = embedding(12, 6)(x)",
                "let k = embedding(12, 5, mask_zero: true)(x)",
                "let a = multi_head_attention(2, 3, value_dim: 2, use_causal_mask: true)(q, v, k)",
                "dense(3, softmax)(lstm(4)(a))",
            ],
            cross_key_causal,
        ),
        (
            "causal_fewer_keys",
            [
                "let q = embedding(12, 4, mask_zero: true)(x)",
                "let v = slice(embedding(12, 6)(x), axis: 1, start: 12, end: 17)",
                "let a = multi_head_attention(3, 2, use_causal_mask: true)(q, v)",
                "dense(3, softmax)(flatten(a))",
            ],
            causal_fewer_keys,
        ),
    ]


def kiln_names(layer):
    """Kiln's checkpoint names of a Keras layer's weights, in Keras's order: the variable's path
    without the cell's level (`bidirectional/forward_lstm/lstm_cell/kernel` is
    `bidirectional.forward_lstm.kernel`)."""
    return [
        ".".join(p for p in w.path.split("/") if not p.endswith("_cell")) for w in layer.weights
    ]


def record(fixture, name, body, model, layers, ids, rng):
    """Perturbs the biases, then stores the network's program, weights, output, loss and
    gradients in the fixture."""
    for w in model.weights:
        if "bias" in w.path:
            w.assign(w.numpy() + rng.uniform(-0.1, 0.1, w.shape).astype(np.float32))
    weights = []
    for layer in layers:
        for key, w in zip(kiln_names(layer), layer.weights):
            weights.append({"name": key, "shape": list(w.shape), "values": w.numpy().ravel().tolist()})
    with tf.GradientTape() as tape:
        probs = model(ids, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(LABELS, probs))
    grads = tape.gradient(loss, [l for layer in layers for l in layer.weights])
    for entry, g in zip(weights, grads):
        g = tf.convert_to_tensor(g)  # the embedding's arrives as IndexedSlices
        entry["gradient"] = g.numpy().ravel().tolist()
    program = (
        f"# The masking fixture's `{name}` (bench/parity/make_mask_fixture.py).\n"
        f"model {name}(x: i32[B, {ids.shape[1]}]) -> f32[B, {CLASSES}] {{\n"
        + "".join(f"    {line}\n" for line in body)
        + "}\n"
    )
    fixture["networks"][name] = {
        "program": program,
        "weights": weights,
        "output": np.asarray(probs).tolist(),
        "loss": float(loss),
    }
    print(name, "loss", float(loss))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "tests", "fixtures", "parity_mask"
    )
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    fixture = {
        "generator": "bench/parity/make_mask_fixture.py",
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__},
        "ids": IDS.tolist(),
        "labels": LABELS.tolist(),
        "networks": {},
    }
    for name, body, layers in networks():
        inp = keras.Input((STEPS,), dtype="int32")
        x = inp
        calls = [item if isinstance(item, tuple) else (item, {}) for item in layers]
        layers = [layer for layer, _ in calls]
        for layer, kwargs in calls:
            # Attention is self-attention: the sequence is query and value.
            if isinstance(layer, keras.layers.MultiHeadAttention):
                x = layer(x, x, **kwargs)
            else:
                x = layer(x)
        model = keras.Model(inp, x)
        record(fixture, name, body, model, layers, IDS, rng)
    for name, body, build in cross_networks():
        steps = CROSS_IDS.shape[1]
        inp = keras.Input((steps,), dtype="int32")
        result, layers = build(inp)
        model = keras.Model(inp, result)
        record(fixture, name, body, model, layers, CROSS_IDS, rng)
        fixture["networks"][name]["ids"] = CROSS_IDS.tolist()
    with open(os.path.join(out, "fixture.json"), "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
