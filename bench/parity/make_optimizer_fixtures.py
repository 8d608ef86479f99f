#!/usr/bin/env python3
"""Writes the optimizer reference fixture read by `tests/optimizers.rs`.

Each optimizer's update is written out by hand from Keras 3's source (keras/src/optimizers/*.py,
`update_step`), and the seed model (32 -> 64 relu -> 64 relu -> 10 softmax, sparse categorical
cross-entropy, batch 32) is trained with it for 200 steps in NumPy, from the initial weights and
on the batches of the parity fixture (`tests/fixtures/parity/`, written by make_fixtures.py).
The forward and backward passes are written by hand too. Each step's loss (before its update) is
recorded in float64 — the reference the test asserts — and in float32 for comparison: see
docs/parity.md.

usage: python3 bench/parity/make_optimizer_fixtures.py   (needs numpy only)
"""
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "tests", "fixtures", "parity")


def load():
    meta = json.load(open(os.path.join(FIXTURE, "meta.json")))
    read = lambda name, dtype: np.fromfile(os.path.join(FIXTURE, name), dtype=dtype)  # noqa: E731
    x = read("features.f32", "<f4").reshape(meta["samples"], meta["features"])
    y = read("labels.i32", "<i4")
    order = read("order.i32", "<i4").reshape(meta["steps"], meta["batch"])
    flat = read("weights.f32", "<f4")
    weights, at = [], 0
    for fan_in, fan_out in zip(meta["widths"][:-1], meta["widths"][1:]):
        weights.append(flat[at:at + fan_in * fan_out].reshape(fan_in, fan_out))
        at += fan_in * fan_out
        weights.append(flat[at:at + fan_out])
        at += fan_out
    return x, y, order, weights


def loss_and_grads(params, x, y):
    """Forward pass, mean sparse categorical cross-entropy from the logits, and its gradients."""
    acts, pre = [x], []
    h = x
    for i in range(0, len(params), 2):
        z = h @ params[i] + params[i + 1]
        pre.append(z)
        h = np.maximum(z, 0) if i + 2 < len(params) else z
        acts.append(h)
    logits = acts[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    batch = len(y)
    loss = -log_softmax[np.arange(batch), y].mean()
    d = np.exp(log_softmax)
    d[np.arange(batch), y] -= 1
    d /= batch
    grads = [None] * len(params)
    for layer in reversed(range(len(params) // 2)):
        grads[2 * layer] = acts[layer].T @ d
        grads[2 * layer + 1] = d.sum(axis=0)
        if layer > 0:
            d = (d @ params[2 * layer].T) * (pre[layer - 1] > 0)
    return loss, grads


# Each optimizer: (its line in a Kiln program, hyperparameters, init(params) -> state,
# update(params, grads, state, t, c) applying Keras's formulas in place; `c` casts a Python
# number to the run's dtype, as Keras casts hyperparameters to the variable's dtype.

def sgd_momentum():
    lr, momentum = 0.01, 0.9

    def init(params):
        return {"v": [np.zeros_like(p) for p in params]}

    def update(params, grads, s, t, c):
        for p, g, v in zip(params, grads, s["v"]):
            v[...] = c(momentum) * v - c(lr) * g
            p += v

    return "sgd(lr: 0.01, momentum: 0.9)", init, update


def adam():
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7

    def init(params):
        return {"m": [np.zeros_like(p) for p in params], "v": [np.zeros_like(p) for p in params]}

    def update(params, grads, s, t, c):
        alpha = c(lr) * np.sqrt(c(1) - c(b2) ** c(t)) / (c(1) - c(b1) ** c(t))
        for p, g, m, v in zip(params, grads, s["m"], s["v"]):
            m += (g - m) * c(1 - b1)
            v += (g * g - v) * c(1 - b2)
            p -= (m * alpha) / (np.sqrt(v) + c(eps))

    return "adam", init, update


def rmsprop(momentum=0.0, centered=False, line="rmsprop"):
    lr, rho, eps = 0.001, 0.9, 1e-7

    def init(params):
        zeros = lambda: [np.zeros_like(p) for p in params]  # noqa: E731
        return {"velocity": zeros(), "momentum": zeros(), "average": zeros()}

    def update(params, grads, s, t, c):
        for i, (p, g) in enumerate(zip(params, grads)):
            velocity = s["velocity"][i]
            velocity[...] = c(rho) * velocity + c(1 - rho) * (g * g)
            if centered:
                average = s["average"][i]
                average[...] = c(rho) * average + c(1 - rho) * g
                denominator = velocity - average * average + c(eps)
            else:
                denominator = velocity + c(eps)
            increment = c(lr) * g / np.sqrt(denominator)
            if momentum > 0:
                buffer = s["momentum"][i]
                buffer[...] = c(momentum) * buffer + increment
                p -= buffer
            else:
                p -= increment

    return line, init, update


def rmsprop_centered_momentum():
    return rmsprop(0.9, True, "rmsprop(momentum: 0.9, centered: true)")


def adamw(wd=0.004, line="adamw"):
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7

    def init(params):
        return {"m": [np.zeros_like(p) for p in params], "v": [np.zeros_like(p) for p in params]}

    def update(params, grads, s, t, c):
        # Keras's `_apply_weight_decay` on every variable, then Adam's `update_step`.
        for p in params:
            p -= p * c(wd) * c(lr)
        alpha = c(lr) * np.sqrt(c(1) - c(b2) ** c(t)) / (c(1) - c(b1) ** c(t))
        for p, g, m, v in zip(params, grads, s["m"], s["v"]):
            m += (g - m) * c(1 - b1)
            v += (g * g - v) * c(1 - b2)
            p -= (m * alpha) / (np.sqrt(v) + c(eps))

    return line, init, update


def adamw_strong_decay():
    # A decay large enough to move the losses, so the test sees it.
    return adamw(2.0, "adamw(weight_decay: 2.0)")


def adagrad(lr=0.001, start=0.1, line="adagrad"):
    eps = 1e-7

    def init(params):
        return {"accumulator": [np.full_like(p, np.float32(start)) for p in params]}

    def update(params, grads, s, t, c):
        for p, g, a in zip(params, grads, s["accumulator"]):
            a += g * g
            p -= c(lr) * g / np.sqrt(a + c(eps))

    return line, init, update


def adagrad_faster():
    # Keras's default rate barely moves the seed model in 200 steps; this one does.
    return adagrad(0.05, 0.5, "adagrad(lr: 0.05, initial_accumulator_value: 0.5)")


def nadam():
    lr, b1, b2, eps = 0.001, 0.9, 0.999, 1e-7

    def init(params):
        return {"m": [np.zeros_like(p) for p in params], "v": [np.zeros_like(p) for p in params],
                "u_product": None}

    def update(params, grads, s, t, c):
        # Keras's `_backend_update_step`: u_product *= beta_1 * (1 - 0.5 * 0.96^(iterations+1)),
        # once per step, before `update_step` for each variable.
        if s["u_product"] is None:
            s["u_product"] = c(1.0)
        s["u_product"] = s["u_product"] * c(b1) * (c(1.0) - c(0.5) * c(0.96) ** c(t))
        decay = c(0.96)
        u_t = c(b1) * (c(1.0) - c(0.5) * decay ** c(t))
        u_t_1 = c(b1) * (c(1.0) - c(0.5) * decay ** c(t + 1))
        u_product_t = s["u_product"]
        u_product_t_1 = u_product_t * u_t_1
        beta_2_power = c(b2) ** c(t)
        for p, g, m, v in zip(params, grads, s["m"], s["v"]):
            # Nadam casts the betas to the variable's dtype first: 1 - beta in that dtype.
            m += (g - m) * (c(1) - c(b1))
            v += (g * g - v) * (c(1) - c(b2))
            m_hat = (u_t_1 * m) / (c(1) - u_product_t_1) + ((c(1) - u_t) * g) / (c(1) - u_product_t)
            v_hat = v / (c(1) - beta_2_power)
            p -= (m_hat * c(lr)) / (np.sqrt(v_hat) + c(eps))

    return "nadam", init, update


OPTIMIZERS = [sgd_momentum, adam, rmsprop, rmsprop_centered_momentum, adamw, adamw_strong_decay,
              adagrad, adagrad_faster, nadam]


def train(x, y, order, weights, make, dtype):
    line, init, update = make()
    c = lambda value: np.asarray(np.float32(value), dtype=dtype)  # noqa: E731
    params = [w.astype(dtype) for w in weights]
    state = init(params)
    xs = x.astype(dtype)
    losses = []
    for t, rows in enumerate(order, start=1):
        loss, grads = loss_and_grads(params, xs[rows], y[rows])
        losses.append(float(loss))
        update(params, grads, state, t, c)
    return line, losses


def main():
    x, y, order, weights = load()
    out = {"generator": "bench/parity/make_optimizer_fixtures.py", "numpy": np.__version__,
           "optimizers": []}
    for make in OPTIMIZERS:
        line, f64 = train(x, y, order, weights, make, np.float64)
        _, f32 = train(x, y, order, weights, make, np.float32)
        rel = np.abs(np.array(f32) - np.array(f64)) / np.abs(np.array(f64))
        print(f"{line:45s} first {f64[0]:.6f} last {f64[-1]:.6f} f32 vs f64 max {rel.max():.2e}")
        out["optimizers"].append({"optimizer": line, "float64": f64, "float32": f32})
    with open(os.path.join(FIXTURE, "optimizers.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
