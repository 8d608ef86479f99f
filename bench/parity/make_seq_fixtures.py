#!/usr/bin/env python3
"""Writes the recurrent parity fixture read by `tests/parity_seq.rs` (issue 17).

Three small recurrent networks are trained for STEPS steps on 512 synthetic f32 sequences, each
from its own fixed initial weights on one fixed batch order, and each peer's per-step batch loss
(the loss of that step's forward pass, before its update) is recorded, with the final weights.
Python runs once to produce the fixture; the Rust test only reads it.

Networks (Keras's layer names and layouts; input f32[B, 20, 8]):
  lstm          lstm(16) -> dense(3, softmax)
  gru           gru(16) -> dense(3, softmax)
  lstm_gru      lstm(16, return_sequences: true) -> gru(8) -> dense(3, softmax)
All: sparse categorical cross-entropy, Adam (lr 0.001) in Keras's form, batch 32.

Data: x ~ N(0, 1), [512, 20, 8] float32. The label is the argmax over k in 0..3 of
sum over the last 10 steps of x[t, k] minus that over the first 10 steps of x[t, k + 3]: it
depends on both ends of the sequence, so the state must carry information across steps.

Weights are drawn and stored in Kiln's (Keras's) layouts: kernel [features, gates*units],
recurrent_kernel [units, gates*units], LSTM bias [4*units] (gates i, f, c, o), GRU bias
[2, 3*units] (gates z, r, h; row 0 the input bias, row 1 the recurrent bias), dense kernel
[in, out]. Kernels glorot-uniform with Keras's fans, recurrent kernels orthogonal (the Q of a
normal matrix's QR, sign-corrected, as Keras's Orthogonal). The biases are deliberately NOT
Keras's initial values (zeros, the LSTM forget block ones) but those plus uniform(-0.1, 0.1)
noise: so every gate's bias, and both GRU bias rows separately, shape the loss from step 1, and
a block or row mixed up in a layout shows at once.

PyTorch's layouts differ; the runs keep the parameters (and so Adam's moments) in Kiln's layouts
and map them inside the forward pass:
  LSTM  gates i, f, g, o (Keras's i, f, c, o): weight_ih = kernel^T [4U, F],
        weight_hh = recurrent_kernel^T, bias_ih = bias, bias_hh = 0 (PyTorch adds the two).
  GRU   gates r, z, n (Keras's z, r, h: the first two blocks swap), reset_after with b_hn inside
        r * (W_hn h + b_hn), as Keras's reset_after: weight_ih = swap(kernel^T),
        weight_hh = swap(recurrent_kernel^T), bias_ih = swap(bias[0]), bias_hh = swap(bias[1]).

Peers:
  torch_keras_adam      PyTorch, float32, nn.LSTM / nn.GRU (PyTorch's own recurrent kernels,
                        called through torch.func.functional_call with the mapped weights), the
                        dense layer, log-softmax + NLL, and Adam written by hand in Keras's form
                        (what Kiln's `adam` follows): alpha = lr*sqrt(1-b2^t)/(1-b1^t);
                        m += (g-m)(1-b1); v += (g^2-v)(1-b2); p -= m*alpha / (sqrt(v)+eps).
  torch_keras_adam_f64  the same in float64: the arithmetic without float32 rounding.
  torch_keras_adam_cell the first with the cells written out step by step in Kiln's layouts and
                        gate order (no nn.LSTM/nn.GRU, no layout mapping): a second float32
                        implementation, which also checks the mapping above (reported).

usage: $HOME/.peers/bin/python bench/parity/make_seq_fixtures.py [OUT_DIR]
       (default OUT_DIR: tests/fixtures/parity_seq next to this script's project root)
"""
import json
import os
import sys

import numpy as np

SEED = 20261217
SAMPLES, STEPS_T, FEATURES, CLASSES = 512, 20, 8, 3
BATCH = 32
STEPS = 100
LR, BETA1, BETA2, EPS = 0.001, 0.9, 0.999, 1e-7
BIAS_NOISE = 0.1


def program(net, body):
    return f"""\
# The recurrent parity fixture's `{net}` (bench/parity/make_seq_fixtures.py).
data seqs = npy(features: "seq_x.npy", labels: "seq_y.npy")

model {net}(x: f32[B, {STEPS_T}, {FEATURES}]) -> f32[B, {CLASSES}] {{
{body}
}}

fit {net} on seqs {{
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.001)
    batch     {BATCH}
}}
"""


# Each network: its Kiln program and its layers as (kind, Kiln layer name, units).
NETWORKS = {
    "lstm": (program("lstm", "    lstm(16)\n    dense(3, softmax)"),
             [("lstm", "lstm", 16), ("dense", "dense", 3)]),
    "gru": (program("gru", "    gru(16)\n    dense(3, softmax)"),
            [("gru", "gru", 16), ("dense", "dense", 3)]),
    "lstm_gru": (program("lstm_gru",
                         "    lstm(16, return_sequences: true)\n    gru(8)\n    dense(3, softmax)"),
                 [("lstm", "lstm", 16), ("gru", "gru", 8), ("dense", "dense", 3)]),
}
GATES = {"lstm": 4, "gru": 3}


def parameters(net):
    """(Kiln name, initializer, shape) in Kiln's parameter order: layer by layer, each layer's
    in Keras's order (kernel, recurrent_kernel, bias)."""
    out, width = [], FEATURES
    for kind, name, units in NETWORKS[net][1]:
        if kind == "dense":
            out += [(f"{name}.kernel", "glorot", (width, units)), (f"{name}.bias", "zeros", (units,))]
        else:
            gw = GATES[kind] * units
            bias = (2, gw) if kind == "gru" else (gw,)
            out += [(f"{name}.kernel", "glorot", (width, gw)),
                    (f"{name}.recurrent_kernel", "orthogonal", (units, gw)),
                    (f"{name}.bias", f"{kind}_bias", bias)]
        width = units
    return out


def make_data():
    """The sequences, their labels, the batch order (a fresh permutation per pass) and each
    network's initial weights."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((SAMPLES, STEPS_T, FEATURES)).astype(np.float32)
    half = STEPS_T // 2
    score = x[:, half:, :CLASSES].sum(axis=1) - x[:, :half, CLASSES:2 * CLASSES].sum(axis=1)
    y = score.argmax(axis=1).astype(np.int32)
    passes = -(-STEPS * BATCH // SAMPLES)
    order = np.concatenate([rng.permutation(SAMPLES) for _ in range(passes)])
    order = order[: STEPS * BATCH].reshape(STEPS, BATCH).astype(np.int32)
    weights = {}
    for net in NETWORKS:
        weights[net] = []
        for name, init, shape in parameters(net):
            if init == "glorot":
                limit = np.sqrt(6.0 / (shape[0] + shape[1]))
                w = rng.uniform(-limit, limit, shape)
            elif init == "orthogonal":
                # Keras's Orthogonal for [units, gates*units]: QR of a normal [cols, rows]
                # matrix, the signs of R's diagonal folded in, transposed.
                a = rng.standard_normal((shape[1], shape[0]))
                q, r = np.linalg.qr(a)
                w = (q * np.sign(np.diag(r))).T
            elif init == "lstm_bias":
                units = shape[0] // 4
                w = np.zeros(shape)
                w[units:2 * units] = 1.0  # unit_forget_bias
                w += rng.uniform(-BIAS_NOISE, BIAS_NOISE, shape)
            elif init == "gru_bias":
                w = rng.uniform(-BIAS_NOISE, BIAS_NOISE, shape)
            else:
                w = np.zeros(shape)
            weights[net].append((name, w.astype(np.float32)))
    return x, y, order, weights


def torch_run(net, x, y, order, weights, dtype_name, cells=False):
    """Trains `net` from `weights`: per-step losses and final weights (Kiln's order and
    layouts). `cells` writes the recurrences out step by step instead of nn.LSTM/nn.GRU."""
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    c = lambda value: torch.tensor(value, dtype=dtype)  # noqa: E731
    tensors = {name: torch.tensor(w, dtype=dtype, requires_grad=True) for name, w in weights}
    params = [tensors[name] for name, _ in weights]
    xs, ys = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=torch.int64)
    layers = NETWORKS[net][1]
    modules = {}
    width = FEATURES
    for kind, name, units in layers:
        if kind != "dense":
            cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
            modules[name] = cls(width, units, batch_first=True).to(dtype)
        width = units

    def swap_rz(m, units):
        # PyTorch's GRU blocks r, z, n from Kiln's z, r, h (rows of a [3U, ...] matrix).
        return torch.cat([m[units:2 * units], m[:units], m[2 * units:]])

    def torch_layer(kind, name, units, h):
        k, rk, b = (tensors[f"{name}.{p}"] for p in ("kernel", "recurrent_kernel", "bias"))
        if kind == "lstm":
            mapped = {"weight_ih_l0": k.T, "weight_hh_l0": rk.T, "bias_ih_l0": b,
                      "bias_hh_l0": torch.zeros_like(b)}
        else:
            mapped = {"weight_ih_l0": swap_rz(k.T, units), "weight_hh_l0": swap_rz(rk.T, units),
                      "bias_ih_l0": swap_rz(b[0], units), "bias_hh_l0": swap_rz(b[1], units)}
        out, _ = functional_call(modules[name], mapped, (h,))
        return out  # [B, T, units]

    def cell_layer(kind, name, units, h):
        # Kiln's gate order and layouts (src/ir/recurrence.rs), one step at a time.
        k, rk, b = (tensors[f"{name}.{p}"] for p in ("kernel", "recurrent_kernel", "bias"))
        u = units
        xw = h @ k + (b if kind == "lstm" else b[0])  # [B, T, gates*U]
        state = torch.zeros(h.shape[0], u, dtype=dtype)
        cell = torch.zeros_like(state)
        outs = []
        for t in range(h.shape[1]):
            if kind == "lstm":
                z = xw[:, t] + state @ rk
                i, f = torch.sigmoid(z[:, :u]), torch.sigmoid(z[:, u:2 * u])
                g, o = torch.tanh(z[:, 2 * u:3 * u]), torch.sigmoid(z[:, 3 * u:])
                cell = f * cell + i * g
                state = o * torch.tanh(cell)
            else:
                rec = state @ rk + b[1]
                zr = torch.sigmoid(xw[:, t, :2 * u] + rec[:, :2 * u])
                zg, r = zr[:, :u], zr[:, u:]
                n = torch.tanh(xw[:, t, 2 * u:] + r * rec[:, 2 * u:])
                state = zg * state + (1 - zg) * n
            outs.append(state)
        return torch.stack(outs, dim=1)

    def forward(batch):
        h = batch
        for index, (kind, name, units) in enumerate(layers):
            if kind == "dense":
                return h @ tensors[f"{name}.kernel"] + tensors[f"{name}.bias"]
            h = (cell_layer if cells else torch_layer)(kind, name, units, h)
            if layers[index + 1][0] == "dense":
                h = h[:, -1]  # return_sequences: false, the last state
        raise AssertionError("no dense layer")

    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    losses = []
    for t, rows in enumerate(order, start=1):
        rows = torch.tensor(rows, dtype=torch.int64)
        logits = forward(xs[rows])
        # softmax output + sparse categorical cross-entropy, computed from the logits
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
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "parity_seq")
    os.makedirs(out, exist_ok=True)
    x, y, order, weights = make_data()

    import torch

    # Little-endian raw arrays, row-major.
    x.astype("<f4").tofile(os.path.join(out, "sequences.f32"))
    y.astype("<i4").tofile(os.path.join(out, "labels.i32"))
    order.astype("<i4").tofile(os.path.join(out, "order.i32"))
    files = {
        "sequences.f32": f"f32 [{SAMPLES}, {STEPS_T}, {FEATURES}]: standard normal sequences",
        "labels.i32": f"i32 [{SAMPLES}]: their labels in [0, {CLASSES})",
        "order.i32": f"i32 [{STEPS}, {BATCH}]: row indices of each step's batch",
    }
    networks = {}
    for net, (source, _) in NETWORKS.items():
        params, offset = [], 0
        for (name, init, shape), (_, w) in zip(parameters(net), weights[net]):
            assert w.shape == tuple(shape), name
            params.append({"name": name, "shape": list(shape), "offset": offset, "len": w.size,
                           "init": init, "trainable": True})
            offset += w.size
        initial = f"{net}.initial.f32"
        np.concatenate([w.ravel() for _, w in weights[net]]).astype("<f4").tofile(os.path.join(out, initial))
        files[initial] = f"f32 [{offset}]: {net}'s initial weights, every parameter in order, row-major"
        runs = {
            "torch_keras_adam": torch_run(net, x, y, order, weights[net], "float32"),
            "torch_keras_adam_f64": torch_run(net, x, y, order, weights[net], "float64"),
            "torch_keras_adam_cell": torch_run(net, x, y, order, weights[net], "float32", cells=True),
        }
        peers = {}
        for peer, (losses, final) in runs.items():
            name = f"{net}.final.{peer}.f32"
            np.concatenate([w.ravel() for _, w in final]).astype("<f4").tofile(os.path.join(out, name))
            files[name] = (f"f32 [{offset}]: {net}'s weights after {STEPS} steps of {peer}"
                           + (" (rounded to f32)" if peer.endswith("f64") else ""))
            peers[peer] = {
                "losses": losses,
                "final_weights": name,
                "final_checksums": {
                    n: {"sum": float(w.sum()), "sum_abs": float(np.abs(w).sum())} for n, w in final
                },
            }
        networks[net] = {"program": source, "parameters": params, "weights": offset,
                         "initial_weights": initial, "peers": peers}

    meta = {
        "generator": "bench/parity/make_seq_fixtures.py",
        "seed": SEED,
        "samples": SAMPLES,
        "sequence": [STEPS_T, FEATURES],
        "classes": CLASSES,
        "batch": BATCH,
        "steps": STEPS,
        "adam": {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS},
        "bias_noise": BIAS_NOISE,
        "files": files,
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "networks": networks,
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")

    print(f"labels: {np.bincount(y, minlength=CLASSES).tolist()} per class")
    for net, info in networks.items():
        series = {peer: np.array(entry["losses"]) for peer, entry in info["peers"].items()}
        ref, f32 = series["torch_keras_adam_f64"], series["torch_keras_adam"]
        for peer, losses in series.items():
            rel = np.abs(losses - ref) / np.abs(ref)
            rel32 = np.abs(losses - f32) / np.abs(f32)
            print(f"{net:8s} {peer:22s} first {losses[0]:.6f} last {losses[-1]:.6f} "
                  f"max rel vs f64 {rel.max():.2e} (step {rel.argmax() + 1}), "
                  f"vs torch_keras_adam {rel32.max():.2e} (step {rel32.argmax() + 1})")
        a = np.fromfile(os.path.join(out, info["peers"]["torch_keras_adam"]["final_weights"]), "<f4")
        b = np.fromfile(os.path.join(out, info["peers"]["torch_keras_adam_f64"]["final_weights"]), "<f4")
        print(f"{net:8s} final weights f32 vs f64: max abs {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
    main()
