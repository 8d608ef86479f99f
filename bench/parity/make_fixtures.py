#!/usr/bin/env python3
"""Writes the numerical-parity fixture read by `tests/parity.rs` (issue 7).

The seed model (32 -> 64 relu -> 64 relu -> 10 softmax, sparse categorical cross-entropy,
Adam lr 0.001, batch 32) is trained for STEPS steps from fixed initial weights on a fixed batch
order, in every peer available, and each peer's per-step batch loss (the loss of the forward pass
of that step, before its update) is recorded. Python runs once to produce the fixture; the Rust
test only reads it.

Peers:
  torch_keras_adam      PyTorch, float32, Adam written by hand in Keras's form (what Kiln's `adam`
                        follows): alpha = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1);
                        v += (g^2-v)(1-b2); p -= m*alpha / (sqrt(v)+eps).
  torch_keras_adam_f64  the same in float64: a reference for how far float32 rounding alone moves
                        the losses (not a peer; the test reports it, the docs quote it).
  torch_native_adam     PyTorch, float32, torch.optim.Adam(lr, betas, eps=1e-7): its own form
                        (eps added after bias correction), for comparison only.
  keras_jax             Keras 3 on JAX (if `import keras` works), Adam() defaults, a custom loop
                        of train_on_batch calls with the metrics reset before each.

usage: $HOME/.peers/bin/python bench/parity/make_fixtures.py [OUT_DIR]
       (default OUT_DIR: tests/fixtures/parity next to this script's project root)
"""
import json
import os
import sys

import numpy as np

SEED = 20261128
SAMPLES = 1024          # reused across steps: 32 batches per pass, reshuffled each pass
FEATURES = 32
CLASSES = 10
WIDTHS = [32, 64, 64, 10]
BATCH = 32
STEPS = 200
LR, BETA1, BETA2, EPS = 0.001, 0.9, 0.999, 1e-7


def make_data():
    """x ~ N(0, 1); y = argmax(x @ W) for a fixed random W (learnable, as the peers' seed data);
    the batch order is a fresh permutation per pass; glorot-uniform kernels, zero biases."""
    rng = np.random.default_rng(SEED)
    w_true = rng.standard_normal((FEATURES, CLASSES)).astype(np.float32)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    y = np.argmax(x @ w_true, axis=1).astype(np.int32)
    passes = -(-STEPS * BATCH // SAMPLES)
    order = np.concatenate([rng.permutation(SAMPLES) for _ in range(passes)])
    order = order[: STEPS * BATCH].reshape(STEPS, BATCH).astype(np.int32)
    weights = []
    for fan_in, fan_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, np.float32))
    return x, y, order, weights


def torch_losses(x, y, order, weights, optimizer, dtype_name):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    params = [torch.tensor(w, dtype=dtype, requires_grad=True) for w in weights]
    xs, ys = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=torch.int64)

    if optimizer == "native":
        opt = torch.optim.Adam(params, lr=LR, betas=(BETA1, BETA2), eps=EPS)
    else:
        m = [torch.zeros_like(p) for p in params]
        v = [torch.zeros_like(p) for p in params]
        c = lambda value: torch.tensor(value, dtype=dtype)  # noqa: E731

    losses = []
    for t, rows in enumerate(order, start=1):
        rows = torch.tensor(rows, dtype=torch.int64)
        h = xs[rows]
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i + 2 < len(params):
                h = torch.relu(h)
        # softmax output + sparse categorical cross-entropy, computed from the logits
        loss = F.nll_loss(F.log_softmax(h, dim=1), ys[rows])
        losses.append(float(loss.detach()))
        if optimizer == "native":
            opt.zero_grad()
            loss.backward()
            opt.step()
            continue
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            step = c(float(t))
            alpha = c(LR) * torch.sqrt(c(1.0) - c(BETA2) ** step) / (c(1.0) - c(BETA1) ** step)
            for p, g, mi, vi in zip(params, grads, m, v):
                mi += (g - mi) * c(1.0 - BETA1)
                vi += (g * g - vi) * c(1.0 - BETA2)
                p -= (mi * alpha) / (torch.sqrt(vi) + c(EPS))
    return losses


def keras_losses(x, y, order, weights):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax

    jax.config.update("jax_platforms", "cpu")
    import keras
    from keras import layers

    model = keras.Sequential(
        [keras.Input((WIDTHS[0],))]
        + [layers.Dense(u, activation="relu") for u in WIDTHS[1:-1]]
        + [layers.Dense(WIDTHS[-1], activation="softmax")]
    )
    model.set_weights(weights)
    opt = keras.optimizers.Adam()  # defaults: 0.001, 0.9, 0.999, 1e-7 (Kiln's `adam` defaults)
    assert (opt.beta_1, opt.beta_2, opt.epsilon) == (BETA1, BETA2, EPS)
    assert abs(float(opt.learning_rate) - LR) < 1e-10  # a float32 variable
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    scce = keras.losses.SparseCategoricalCrossentropy()
    losses = []
    for t, rows in enumerate(order, start=1):
        xb, yb = x[rows], y[rows]
        # The loss of this batch before the update, computed independently, checks that
        # train_on_batch reports this batch's loss and not a running mean.
        before = float(scce(yb, model(xb, training=False)))
        model.reset_metrics()
        loss = float(model.train_on_batch(xb, yb))
        assert abs(loss - before) <= 1e-5 * abs(before), (t, loss, before)
        losses.append(loss)
    return losses, "keras " + keras.__version__ + " / jax " + jax.__version__


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "fixtures", "parity")
    os.makedirs(out, exist_ok=True)
    x, y, order, weights = make_data()

    import torch

    peers = {
        "torch_keras_adam": torch_losses(x, y, order, weights, "keras", "float32"),
        "torch_keras_adam_f64": torch_losses(x, y, order, weights, "keras", "float64"),
        "torch_native_adam": torch_losses(x, y, order, weights, "native", "float32"),
    }
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    try:
        peers["keras_jax"], versions["keras_jax"] = keras_losses(x, y, order, weights)
    except ImportError as e:
        print(f"keras_jax skipped: {e}", file=sys.stderr)

    # Little-endian raw arrays, row-major.
    x.astype("<f4").tofile(os.path.join(out, "features.f32"))
    y.astype("<i4").tofile(os.path.join(out, "labels.i32"))
    order.astype("<i4").tofile(os.path.join(out, "order.i32"))
    np.concatenate([w.ravel() for w in weights]).astype("<f4").tofile(os.path.join(out, "weights.f32"))
    meta = {
        "generator": "bench/parity/make_fixtures.py",
        "seed": SEED,
        "samples": SAMPLES,
        "features": FEATURES,
        "classes": CLASSES,
        "widths": WIDTHS,
        "batch": BATCH,
        "steps": STEPS,
        "adam": {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS},
        "files": {
            "features.f32": f"f32 [{SAMPLES}, {FEATURES}]",
            "labels.i32": f"i32 [{SAMPLES}]",
            "order.i32": f"i32 [{STEPS}, {BATCH}]: row indices of each step's batch",
            "weights.f32": "f32: kernel [in, out] then bias [out] for each dense layer in order",
        },
        "versions": versions,
        "losses": peers,
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    for name, losses in peers.items():
        ref = np.array(peers["torch_keras_adam_f64"])
        rel = np.abs(np.array(losses) - ref) / np.abs(ref)
        print(f"{name:22s} first {losses[0]:.6f} last {losses[-1]:.6f} "
              f"max rel vs f64 {rel.max():.2e} mean {np.mean(losses):.6f}")


if __name__ == "__main__":
    main()
