#!/usr/bin/env python3
"""Writes the masked recurrent parity fixture read by `tests/parity_mask_seq.rs` (issue 17).

One masked token network is trained for STEPS steps on 512 padded token sequences from fixed
initial weights on one fixed batch order, and each peer's per-step batch loss (the loss of that
step's forward pass, before its update) is recorded, with the final weights. Python runs once to
produce the fixture; the Rust test only reads it.

Network (Keras's layer names and layouts; input i32[B, 20] token ids, 0 the padding):
  embedding(50, 8, mask_zero: true) -> lstm(16) -> dense(3, softmax)
Sparse categorical cross-entropy, Adam (lr 0.003) in Keras's form, batch 32.

Data: each sequence has 3 to 20 real tokens (uniform in 1..50), padded with 0 after them
(PyTorch's `pack_padded_sequence` needs the padding at the end; Kiln's mask works anywhere). The
label is the most frequent of three token ranges ([1, 17), [17, 34), [34, 50)) among the real
tokens, ties to the lower range, so every real step matters and padding must not. The padded
embedding row 0 is trained like any other row by the peers' dense Adam (its gradient is 0, so
only Adam's moments move it: both sides do the same).

Initial weights in Kiln's (Keras's) layouts: the embedding uniform(-0.05, 0.05) (Keras's
default), kernel glorot-uniform, recurrent kernel orthogonal, the LSTM bias Keras's (the forget
block 1) plus uniform(-0.1, 0.1) noise, the dense kernel glorot-uniform and its bias 0.

Peers (the LSTM in PyTorch's gate order i, f, g, o, the same as Keras's i, f, c, o:
weight_ih = kernel^T, weight_hh = recurrent_kernel^T, bias_ih = bias, bias_hh = 0):
  torch_keras_adam      PyTorch, float32: nn.Embedding's lookup (F.embedding), nn.LSTM over
                        `pack_padded_sequence` (so a sequence's last state is that of its last
                        real token: the padded steps are never run), the dense layer,
                        log-softmax + NLL, and Adam written by hand in Keras's form.
  torch_keras_adam_f64  the same in float64: the arithmetic without float32 rounding.
  torch_keras_adam_cell the first with the cell written out step by step and an explicit mask
                        (a padded step keeps the state and the cell state, Keras's rule): a
                        second float32 implementation (reported).

usage: $HOME/.peers/bin/python bench/parity/make_mask_seq_fixtures.py [OUT_DIR]
       (default OUT_DIR: tests/fixtures/parity_mask_seq next to this script's project root)
"""
import json
import os
import sys

import numpy as np

SEED = 20261219
SAMPLES, STEPS_T, VOCAB, WIDTH, UNITS, CLASSES = 512, 20, 50, 8, 16, 3
BATCH = 32
STEPS = 100
LR, BETA1, BETA2, EPS = 0.003, 0.9, 0.999, 1e-7
BIAS_NOISE = 0.1
NET = "masked_lstm"

PROGRAM = f"""\
# The masked recurrent parity fixture (bench/parity/make_mask_seq_fixtures.py).
data tokens = npy(features: "ids.npy", labels: "labels.npy")

model {NET}(x: i32[B, {STEPS_T}]) -> f32[B, {CLASSES}] {{
    embedding({VOCAB}, {WIDTH}, mask_zero: true)
    lstm({UNITS})
    dense({CLASSES}, softmax)
}}

fit {NET} on tokens {{
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: {LR})
    batch     {BATCH}
}}
"""

PARAMETERS = [
    ("embedding.embeddings", "embedding", (VOCAB, WIDTH)),
    ("lstm.kernel", "glorot", (WIDTH, 4 * UNITS)),
    ("lstm.recurrent_kernel", "orthogonal", (UNITS, 4 * UNITS)),
    ("lstm.bias", "lstm_bias", (4 * UNITS,)),
    ("dense.kernel", "glorot", (UNITS, CLASSES)),
    ("dense.bias", "zeros", (CLASSES,)),
]


def make_data():
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(3, STEPS_T + 1, SAMPLES)
    ids = np.zeros((SAMPLES, STEPS_T), dtype=np.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, VOCAB, n)
    bins = np.stack(
        [((ids >= lo) & (ids < hi)).sum(axis=1) for lo, hi in [(1, 17), (17, 34), (34, 50)]],
        axis=1,
    )
    y = bins.argmax(axis=1).astype(np.int32)
    passes = -(-STEPS * BATCH // SAMPLES)
    order = np.concatenate([rng.permutation(SAMPLES) for _ in range(passes)])
    order = order[: STEPS * BATCH].reshape(STEPS, BATCH).astype(np.int32)
    weights = []
    for name, init, shape in PARAMETERS:
        if init == "embedding":
            w = rng.uniform(-0.05, 0.05, shape)
        elif init == "glorot":
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            w = rng.uniform(-limit, limit, shape)
        elif init == "orthogonal":
            a = rng.standard_normal((shape[1], shape[0]))
            q, r = np.linalg.qr(a)
            w = (q * np.sign(np.diag(r))).T
        elif init == "lstm_bias":
            w = np.zeros(shape)
            w[UNITS:2 * UNITS] = 1.0  # unit_forget_bias
            w += rng.uniform(-BIAS_NOISE, BIAS_NOISE, shape)
        else:
            w = np.zeros(shape)
        weights.append((name, w.astype(np.float32)))
    return ids, lengths, y, order, weights


def torch_run(ids, lengths, y, order, weights, dtype_name, cells=False):
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    c = lambda value: torch.tensor(value, dtype=dtype)  # noqa: E731
    tensors = {name: torch.tensor(w, dtype=dtype, requires_grad=True) for name, w in weights}
    params = [tensors[name] for name, _ in weights]
    ids_t = torch.tensor(ids, dtype=torch.int64)
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    ys = torch.tensor(y, dtype=torch.int64)
    lstm = torch.nn.LSTM(WIDTH, UNITS, batch_first=True).to(dtype)

    def last_state(x, n):
        k, rk, b = (tensors[f"lstm.{p}"] for p in ("kernel", "recurrent_kernel", "bias"))
        if not cells:
            mapped = {"weight_ih_l0": k.T, "weight_hh_l0": rk.T, "bias_ih_l0": b,
                      "bias_hh_l0": torch.zeros_like(b)}
            packed = pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
            _, (h, _) = functional_call(lstm, mapped, (packed,))
            return h[0]
        u = UNITS
        xw = x @ k + b
        state = torch.zeros(x.shape[0], u, dtype=dtype)
        cell = torch.zeros_like(state)
        for t in range(x.shape[1]):
            keep = (t < n).to(dtype).unsqueeze(1)
            z = xw[:, t] + state @ rk
            i, f = torch.sigmoid(z[:, :u]), torch.sigmoid(z[:, u:2 * u])
            g, o = torch.tanh(z[:, 2 * u:3 * u]), torch.sigmoid(z[:, 3 * u:])
            new_cell = f * cell + i * g
            new_state = o * torch.tanh(new_cell)
            cell = keep * new_cell + (1 - keep) * cell
            state = keep * new_state + (1 - keep) * state
        return state

    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    losses = []
    for t, rows in enumerate(order, start=1):
        rows = torch.tensor(rows, dtype=torch.int64)
        x = F.embedding(ids_t[rows], tensors["embedding.embeddings"])
        h = last_state(x, lengths_t[rows])
        logits = h @ tensors["dense.kernel"] + tensors["dense.bias"]
        loss = F.nll_loss(F.log_softmax(logits, dim=1), ys[rows])
        losses.append(float(loss.detach()))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            step = c(float(t))
            alpha = c(LR) * torch.sqrt(c(1.0) - c(BETA2) ** step) / (c(1.0) - c(BETA1) ** step)
            for p, g, mi, vi in zip(params, grads, m, v):
                mi += (g - mi) * c(1.0 - BETA1)
                vi += (g * g - vi) * c(1.0 - BETA2)
                p -= (mi * alpha) / (torch.sqrt(vi) + c(EPS))
    final = [(name, tensors[name].detach().numpy().astype(np.float64)) for name, _ in weights]
    return losses, final


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "parity_mask_seq")
    os.makedirs(out, exist_ok=True)
    ids, lengths, y, order, weights = make_data()

    import torch

    ids.astype("<i4").tofile(os.path.join(out, "ids.i32"))
    y.astype("<i4").tofile(os.path.join(out, "labels.i32"))
    order.astype("<i4").tofile(os.path.join(out, "order.i32"))
    files = {
        "ids.i32": f"i32 [{SAMPLES}, {STEPS_T}]: token ids, each row's real tokens then 0s",
        "labels.i32": f"i32 [{SAMPLES}]: their labels in [0, {CLASSES})",
        "order.i32": f"i32 [{STEPS}, {BATCH}]: row indices of each step's batch",
    }
    params, offset = [], 0
    for (name, init, shape), (_, w) in zip(PARAMETERS, weights):
        assert w.shape == tuple(shape), name
        params.append({"name": name, "shape": list(shape), "offset": offset, "len": w.size,
                       "init": init, "trainable": True})
        offset += w.size
    initial = f"{NET}.initial.f32"
    np.concatenate([w.ravel() for _, w in weights]).astype("<f4").tofile(os.path.join(out, initial))
    files[initial] = f"f32 [{offset}]: the initial weights, every parameter in order, row-major"
    runs = {
        "torch_keras_adam": torch_run(ids, lengths, y, order, weights, "float32"),
        "torch_keras_adam_f64": torch_run(ids, lengths, y, order, weights, "float64"),
        "torch_keras_adam_cell": torch_run(ids, lengths, y, order, weights, "float32", cells=True),
    }
    peers = {}
    for peer, (losses, final) in runs.items():
        name = f"{NET}.final.{peer}.f32"
        np.concatenate([w.ravel() for _, w in final]).astype("<f4").tofile(os.path.join(out, name))
        files[name] = (f"f32 [{offset}]: the weights after {STEPS} steps of {peer}"
                       + (" (rounded to f32)" if peer.endswith("f64") else ""))
        peers[peer] = {"losses": losses, "final_weights": name}
    meta = {
        "generator": "bench/parity/make_mask_seq_fixtures.py",
        "seed": SEED,
        "samples": SAMPLES,
        "sequence": [STEPS_T],
        "classes": CLASSES,
        "batch": BATCH,
        "steps": STEPS,
        "adam": {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS},
        "bias_noise": BIAS_NOISE,
        "files": files,
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "networks": {NET: {"program": PROGRAM, "parameters": params, "weights": offset,
                           "initial_weights": initial, "peers": peers}},
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")

    print(f"labels: {np.bincount(y, minlength=CLASSES).tolist()} per class; "
          f"real tokens per row {lengths.min()}..{lengths.max()}, mean {lengths.mean():.1f}")
    series = {peer: np.array(entry["losses"]) for peer, entry in peers.items()}
    ref, f32 = series["torch_keras_adam_f64"], series["torch_keras_adam"]
    for peer, losses in series.items():
        rel = np.abs(losses - ref) / np.abs(ref)
        rel32 = np.abs(losses - f32) / np.abs(f32)
        print(f"{peer:22s} first {losses[0]:.6f} last {losses[-1]:.6f} "
              f"max rel vs f64 {rel.max():.2e} (step {rel.argmax() + 1}), "
              f"vs torch_keras_adam {rel32.max():.2e} (step {rel32.argmax() + 1})")


if __name__ == "__main__":
    main()
