#!/usr/bin/env python3
"""Writes the convnet parity fixture read by `tests/parity_cnn.rs` (issue 16).

Two small convnets are trained for STEPS steps on 512 MNIST digits, each from its own fixed
initial weights on one fixed batch order, and each peer's per-step batch loss (the loss of the
forward pass of that step, before its update) is recorded, with the final weights. Python runs
once to produce the fixture; the Rust test only reads it.

Networks (channels last, as Keras and Kiln; Keras's layer names):
  cnn     conv2d(8, 3x3, valid, relu) -> max_pooling2d(2) -> conv2d(16, 3x3, valid, relu)
          -> max_pooling2d(2) -> flatten (5*5*16 = 400, in (h, w, c) order) -> dense(10, softmax)
  cnn_bn  conv2d(8, 3x3, valid, no bias) -> batch_normalization (Keras's defaults: momentum 0.99,
          epsilon 1e-3, center, scale) -> relu -> max_pooling2d(2)
          -> conv2d(16, 3x3, valid, relu) -> global_average_pooling2d -> dense(10, softmax)
Both: sparse categorical cross-entropy, Adam (lr 0.001) in Keras's form, batch 32.

Weights are drawn and stored in Kiln's (Keras's) layouts: conv kernels [kh, kw, cin, filters],
dense kernels [in, out], biases [n]; glorot-uniform kernels with Keras's fans (for a convolution
fan_in = kh*kw*cin, fan_out = kh*kw*filters), zero biases, gamma 1, beta 0, moving mean 0, moving
variance 1. The PyTorch runs keep the parameters in those layouts and convert inside the forward
pass (kernels permuted to PyTorch's [out, in, kh, kw], images to NCHW, the last convolution's
output back to NHWC before flattening), so gradients and Adam's moments are in Kiln's layouts too.

Batch normalization trains on the batch's statistics (biased variance, as both frameworks
normalize). Its moving statistics are recorded after the last step in two forms: Keras's
(moving = moving*momentum + batch_stat*(1-momentum), with the *biased* batch variance; computed
here by hand from the batch statistics) and PyTorch's own running_mean/running_var (whose
variance is the *unbiased* one), labelled as such. Kiln follows Keras's.

Peers:
  torch_keras_adam      PyTorch, float32, Adam written by hand in Keras's form (what Kiln's `adam`
                        follows): alpha = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1);
                        v += (g^2-v)(1-b2); p -= m*alpha / (sqrt(v)+eps).
  torch_keras_adam_f64  the same in float64: how far float32 rounding alone moves the losses
                        (not a peer; the test reports it, the docs quote it).
  torch_keras_adam_unfold  the first, float32, with every convolution written as unfold + matmul
                        (im2col) instead of F.conv2d: a second float32 implementation of the same
                        arithmetic, to show how far two correct float32 runs drift apart (not a
                        peer; reported).

usage: $HOME/.peers/bin/python bench/parity/make_cnn_fixtures.py [OUT_DIR]
       (default OUT_DIR: tests/fixtures/parity_cnn next to this script's project root)
"""
import gzip
import json
import os
import sys

import numpy as np

SEED = 20261203
SAMPLES = 512           # the first 512 training digits, reused: 16 batches per pass
SIDE, CHANNELS, CLASSES = 28, 1, 10
BATCH = 32
STEPS = 100
LR, BETA1, BETA2, EPS = 0.001, 0.9, 0.999, 1e-7
BN_MOMENTUM, BN_EPSILON = 0.99, 1e-3
MNIST = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")

# Each network's Kiln program (docs/language.md's syntax; Keras's layer names and arguments).
PROGRAMS = {
    "cnn": """\
# The convnet parity fixture's `cnn` (bench/parity/make_cnn_fixtures.py).
data digits = idx(images: "data/mnist/train-images-idx3-ubyte.gz",
                  labels: "data/mnist/train-labels-idx1-ubyte.gz", scale: 255)

model cnn(x: f32[B, 28, 28, 1]) -> f32[B, 10] {
    conv2d(8, 3, relu)
    max_pooling2d(2)
    conv2d(16, 3, relu)
    max_pooling2d(2)
    flatten()
    dense(10, softmax)
}

fit cnn on digits {
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.001)
    batch     32
}
""",
    "cnn_bn": """\
# The convnet parity fixture's `cnn_bn` (bench/parity/make_cnn_fixtures.py).
data digits = idx(images: "data/mnist/train-images-idx3-ubyte.gz",
                  labels: "data/mnist/train-labels-idx1-ubyte.gz", scale: 255)

model cnn_bn(x: f32[B, 28, 28, 1]) -> f32[B, 10] {
    conv2d(8, 3, use_bias: false)
    batch_normalization()
    relu
    max_pooling2d(2)
    conv2d(16, 3, relu)
    global_average_pooling2d()
    dense(10, softmax)
}

fit cnn_bn on digits {
    loss      sparse_categorical_crossentropy
    optimizer adam(lr: 0.001)
    batch     32
}
""",
}


def parameters(net):
    """(Kiln name, initializer, shape, trainable) in Kiln's parameter order: layer by layer, each
    layer's in Keras's order (kernel, bias; gamma, beta, moving_mean, moving_variance)."""
    if net == "cnn":
        return [
            ("conv2d.kernel", "glorot", (3, 3, 1, 8), True),
            ("conv2d.bias", "zeros", (8,), True),
            ("conv2d_1.kernel", "glorot", (3, 3, 8, 16), True),
            ("conv2d_1.bias", "zeros", (16,), True),
            ("dense.kernel", "glorot", (400, 10), True),
            ("dense.bias", "zeros", (10,), True),
        ]
    return [
        ("conv2d.kernel", "glorot", (3, 3, 1, 8), True),
        ("batch_normalization.gamma", "ones", (8,), True),
        ("batch_normalization.beta", "zeros", (8,), True),
        ("batch_normalization.moving_mean", "zeros", (8,), False),
        ("batch_normalization.moving_variance", "ones", (8,), False),
        ("conv2d_1.kernel", "glorot", (3, 3, 8, 16), True),
        ("conv2d_1.bias", "zeros", (16,), True),
        ("dense.kernel", "glorot", (16, 10), True),
        ("dense.bias", "zeros", (10,), True),
    ]


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    assert int.from_bytes(data[:4], "big") == magic, path
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def make_data(mnist_dir):
    """The first SAMPLES training digits (pixels / 255, f32, [N, 28, 28, 1]) and their labels;
    the batch order (a fresh permutation per pass); each network's initial weights."""
    images = read_idx(os.path.join(mnist_dir, MNIST[0]), 0x803)[:SAMPLES]
    labels = read_idx(os.path.join(mnist_dir, MNIST[1]), 0x801)[:SAMPLES]
    x = (images.astype(np.float32) / np.float32(255)).reshape(SAMPLES, SIDE, SIDE, CHANNELS)
    y = labels.astype(np.int32)
    rng = np.random.default_rng(SEED)
    passes = -(-STEPS * BATCH // SAMPLES)
    order = np.concatenate([rng.permutation(SAMPLES) for _ in range(passes)])
    order = order[: STEPS * BATCH].reshape(STEPS, BATCH).astype(np.int32)
    weights = {}
    for net in PROGRAMS:
        weights[net] = []
        for name, init, shape, _ in parameters(net):
            if init == "glorot":
                # Keras's fans: the receptive field times the input/output channels.
                receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
                fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                w = rng.uniform(-limit, limit, shape)
            elif init == "ones":
                w = np.ones(shape)
            else:
                w = np.zeros(shape)
            weights[net].append((name, w.astype(np.float32)))
    return x, y, order, weights


def torch_run(net, x, y, order, weights, dtype_name, unfold=False):
    """Trains `net` from `weights`: per-step losses, final weights (Kiln's order and layouts;
    batch normalization's moving statistics in Keras's form) and, for cnn_bn, PyTorch's own
    running statistics (with, under `after_step_1`, Keras's form after the first step). `unfold` computes the convolutions as im2col + matmul."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    c = lambda value: torch.tensor(value, dtype=dtype)  # noqa: E731
    trainable = {name: t for name, _, _, t in parameters(net)}
    tensors = {name: torch.tensor(w, dtype=dtype, requires_grad=trainable[name]) for name, w in weights}
    params = [tensors[name] for name, _ in weights if trainable[name]]
    # PyTorch's own running statistics (unbiased variance), for comparison only.
    torch_mean, torch_var = torch.zeros(8, dtype=dtype), torch.ones(8, dtype=dtype)
    xs, ys = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=torch.int64)
    kernel = lambda name: tensors[name].permute(3, 2, 0, 1)  # [kh, kw, cin, out] -> [out, cin, kh, kw]  # noqa: E731

    def conv2d(h, k, b=None):
        if not unfold:
            return F.conv2d(h, k, b)
        n, _, rows, cols = h.shape
        out = k.reshape(k.shape[0], -1) @ F.unfold(h, k.shape[2:])  # [N, out, positions]
        if b is not None:
            out = out + b[:, None]
        return out.reshape(n, k.shape[0], rows - k.shape[2] + 1, cols - k.shape[3] + 1)

    def forward(images):
        h = images.permute(0, 3, 1, 2)  # NHWC -> NCHW
        if net == "cnn":
            h = F.max_pool2d(F.relu(conv2d(h, kernel("conv2d.kernel"), tensors["conv2d.bias"])), 2)
            h = F.max_pool2d(F.relu(conv2d(h, kernel("conv2d_1.kernel"), tensors["conv2d_1.bias"])), 2)
            h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # Keras's flatten: (h, w, c)
            return h @ tensors["dense.kernel"] + tensors["dense.bias"], None
        h = conv2d(h, kernel("conv2d.kernel"))
        with torch.no_grad():
            stats = (h.mean(dim=(0, 2, 3)), h.var(dim=(0, 2, 3), unbiased=False))
        h = F.batch_norm(h, torch_mean, torch_var, tensors["batch_normalization.gamma"],
                         tensors["batch_normalization.beta"], training=True,
                         momentum=1.0 - BN_MOMENTUM, eps=BN_EPSILON)
        h = F.max_pool2d(F.relu(h), 2)
        h = F.relu(conv2d(h, kernel("conv2d_1.kernel"), tensors["conv2d_1.bias"]))
        h = h.mean(dim=(2, 3))  # global average pooling
        return h @ tensors["dense.kernel"] + tensors["dense.bias"], stats

    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    first = {}  # the moving statistics after the first step (Keras's form)
    losses = []
    for t, rows in enumerate(order, start=1):
        rows = torch.tensor(rows, dtype=torch.int64)
        logits, stats = forward(xs[rows])
        # softmax output + sparse categorical cross-entropy, computed from the logits
        loss = F.nll_loss(F.log_softmax(logits, dim=1), ys[rows])
        losses.append(float(loss.detach()))
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            if stats is not None:
                # Keras: moving = moving*momentum + batch_stat*(1-momentum), biased variance.
                for name, stat in zip(("moving_mean", "moving_variance"), stats):
                    moving = tensors["batch_normalization." + name]
                    moving.copy_(moving * c(BN_MOMENTUM) + stat * c(1.0 - BN_MOMENTUM))
                    if t == 1:
                        first[name] = moving.numpy().tolist()
            step = c(float(t))
            alpha = c(LR) * torch.sqrt(c(1.0) - c(BETA2) ** step) / (c(1.0) - c(BETA1) ** step)
            for p, g, mi, vi in zip(params, grads, m, v):
                mi += (g - mi) * c(1.0 - BETA1)
                vi += (g * g - vi) * c(1.0 - BETA2)
                p -= (mi * alpha) / (torch.sqrt(vi) + c(EPS))
    final = [(name, tensors[name].detach().numpy().astype(np.float64)) for name, _ in weights]
    running = None
    if net == "cnn_bn":
        running = {"moving_mean": torch_mean.numpy().tolist(),
                   "moving_variance": torch_var.numpy().tolist(), "after_step_1": first}
    return losses, final, running


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "parity_cnn")
    os.makedirs(out, exist_ok=True)
    x, y, order, weights = make_data(os.path.join(root, "programs", "data", "mnist"))

    import torch

    # Little-endian raw arrays, row-major.
    x.astype("<f4").tofile(os.path.join(out, "images.f32"))
    y.astype("<i4").tofile(os.path.join(out, "labels.i32"))
    order.astype("<i4").tofile(os.path.join(out, "order.i32"))
    files = {
        "images.f32": f"f32 [{SAMPLES}, {SIDE}, {SIDE}, {CHANNELS}]: the first {SAMPLES} digits of "
                      f"{MNIST[0]}, pixels / 255, channels last",
        "labels.i32": f"i32 [{SAMPLES}]: their labels ({MNIST[1]})",
        "order.i32": f"i32 [{STEPS}, {BATCH}]: row indices of each step's batch",
    }
    networks = {}
    for net, program in PROGRAMS.items():
        spec = parameters(net)
        params, offset = [], 0
        for (name, init, shape, trainable), (_, w) in zip(spec, weights[net]):
            assert w.shape == tuple(shape), name
            params.append({"name": name, "shape": list(shape), "offset": offset, "len": w.size,
                           "init": init, "trainable": trainable})
            offset += w.size
        initial = f"{net}.initial.f32"
        np.concatenate([w.ravel() for _, w in weights[net]]).astype("<f4").tofile(os.path.join(out, initial))
        files[initial] = f"f32 [{offset}]: {net}'s initial weights, every parameter in order, row-major"
        runs = {
            "torch_keras_adam": torch_run(net, x, y, order, weights[net], "float32"),
            "torch_keras_adam_f64": torch_run(net, x, y, order, weights[net], "float64"),
            "torch_keras_adam_unfold": torch_run(net, x, y, order, weights[net], "float32", unfold=True),
        }
        peers = {}
        for peer, (losses, final, running) in runs.items():
            name = f"{net}.final.{peer}.f32"
            np.concatenate([w.ravel() for _, w in final]).astype("<f4").tofile(os.path.join(out, name))
            files[name] = (f"f32 [{offset}]: {net}'s weights after {STEPS} steps of {peer}"
                           + (" (rounded to f32)" if peer.endswith("f64") else "")
                           + (", moving statistics in Keras's form" if running else ""))
            entry = {
                "losses": losses,
                "final_weights": name,
                "final_checksums": {
                    n: {"sum": float(w.sum()), "sum_abs": float(np.abs(w).sum())} for n, w in final
                },
            }
            if running is not None:
                finals = dict(final)
                entry["moving_statistics"] = {
                    "keras": {
                        "note": "moving = moving*0.99 + batch_stat*0.01, biased batch variance "
                                "(Keras's form, what Kiln follows; computed by hand)",
                        "moving_mean": finals["batch_normalization.moving_mean"].tolist(),
                        "moving_variance": finals["batch_normalization.moving_variance"].tolist(),
                        "after_step_1": running.pop("after_step_1"),
                    },
                    "torch": {
                        "note": "PyTorch's own running_mean/running_var (momentum 0.01; "
                                "unbiased batch variance), for comparison only",
                        **running,
                    },
                }
            peers[peer] = entry
        networks[net] = {"program": program, "parameters": params, "weights": offset,
                         "initial_weights": initial, "peers": peers}

    meta = {
        "generator": "bench/parity/make_cnn_fixtures.py",
        "seed": SEED,
        "samples": SAMPLES,
        "image": [SIDE, SIDE, CHANNELS],
        "classes": CLASSES,
        "batch": BATCH,
        "steps": STEPS,
        "adam": {"lr": LR, "beta1": BETA1, "beta2": BETA2, "eps": EPS},
        "batch_normalization": {"momentum": BN_MOMENTUM, "epsilon": BN_EPSILON},
        "files": files,
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "networks": networks,
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")

    for net, info in networks.items():
        series = {peer: np.array(entry["losses"]) for peer, entry in info["peers"].items()}
        ref, f32 = series["torch_keras_adam_f64"], series["torch_keras_adam"]
        for peer, losses in series.items():
            rel = np.abs(losses - ref) / np.abs(ref)
            rel32 = np.abs(losses - f32) / np.abs(f32)
            print(f"{net:7s} {peer:24s} first {losses[0]:.6f} last {losses[-1]:.6f} "
                  f"max rel vs f64 {rel.max():.2e} (step {rel.argmax() + 1}), "
                  f"vs torch_keras_adam {rel32.max():.2e} (step {rel32.argmax() + 1})")
        a = np.fromfile(os.path.join(out, info["peers"]["torch_keras_adam"]["final_weights"]), "<f4")
        b = np.fromfile(os.path.join(out, info["peers"]["torch_keras_adam_f64"]["final_weights"]), "<f4")
        print(f"{net:7s} final weights f32 vs f64: max abs {np.abs(a - b).max():.2e}")
        if net == "cnn_bn":
            k = info["peers"]["torch_keras_adam"]["moving_statistics"]
            k64 = info["peers"]["torch_keras_adam_f64"]["moving_statistics"]
            for s in ("moving_mean", "moving_variance"):
                ka, kb, tt = np.array(k["keras"][s]), np.array(k64["keras"][s]), np.array(k["torch"][s])
                print(f"{net:7s} {s}: keras form f32 vs f64 max rel {np.max(np.abs(ka - kb) / np.abs(kb)):.2e}; "
                      f"torch running vs keras form max rel {np.max(np.abs(tt - ka) / np.abs(ka)):.2e}")


if __name__ == "__main__":
    main()
