"""Latency of the same model in ONNX Runtime (running Kiln's exported ONNX file), PyTorch eager
and the Kiln library called from Python through ctypes, call by call, as JSON lines like
latency.c's: median, 10th and 90th percentiles in microseconds.

    python bench/deploy/peers.py MODEL.onnx LIB.so NAME SIZES CALLS BATCH...

SIZES: the dense stack's widths, e.g. 32,64,64,10; or `cnn` for programs/mnist_cnn.model's convnet
(conv 32·3×3 relu, max pool 2, conv 64·3×3 relu, max pool 2, dense 10 softmax, on 28×28×1).

ONNX Runtime and PyTorch run on one thread, as the library does (ONNX Runtime is also timed with
its default thread pool); the PyTorch model is the same dense stack (relu between the layers,
softmax at the end) with its own random weights, since the weights do not change the latency.
"""
import ctypes
import json
import sys
import time

import numpy as np
import onnxruntime as ort
import torch


def timed(run, calls):
    for _ in range(calls // 10 + 10):
        run()
    t = []
    for _ in range(calls):
        s = time.perf_counter()
        run()
        t.append((time.perf_counter() - s) * 1e6)
    t.sort()
    return {"median_us": round(t[len(t) // 2], 2), "p10_us": round(t[len(t) // 10], 2),
            "p90_us": round(t[len(t) * 9 // 10], 2), "calls": calls}


def main():
    onnx_path, lib_path, name = sys.argv[1], sys.argv[2], sys.argv[3]
    cnn = sys.argv[4] == "cnn"
    widths = [784, 10] if cnn else [int(w) for w in sys.argv[4].split(",")]
    calls = int(sys.argv[5])
    batches = [int(b) for b in sys.argv[6:]]
    sizes = list(zip(widths, widths[1:]))
    features, outputs = widths[0], widths[-1]

    sessions = {}
    for threads in (1, 0):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        sessions[threads] = ort.InferenceSession(onnx_path, options,
                                                 providers=["CPUExecutionProvider"])
    input_name = sessions[1].get_inputs()[0].name

    torch.set_num_threads(1)
    layers = []
    if cnn:
        nn = torch.nn
        layers = [nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 10), nn.Softmax(dim=1)]
    for i, (n_in, n_out) in enumerate([] if cnn else sizes):
        layers.append(torch.nn.Linear(n_in, n_out))
        layers.append(torch.nn.ReLU() if i + 1 < len(sizes) else torch.nn.Softmax(dim=1))
    net = torch.nn.Sequential(*layers).eval()

    lib = ctypes.CDLL(lib_path)
    init = getattr(lib, f"{name}_init")
    init.restype = ctypes.c_void_p
    predict = getattr(lib, f"{name}_predict")
    predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    ctx = init()

    rng = np.random.default_rng(0)
    for batch in batches:
        x = rng.random((batch, features), dtype=np.float32)
        y = np.empty((batch, outputs), dtype=np.float32)
        # Kiln's (and its ONNX file's) images are channels-last, PyTorch's channels-first.
        xt = torch.from_numpy(x.reshape(batch, 1, 28, 28) if cnn else x)
        feeds = {input_name: x.reshape(batch, 28, 28, 1) if cnn else x}
        xp, yp = x.ctypes.data, y.ctypes.data

        def torch_run():
            with torch.inference_mode():
                net(xt)

        runs = {
            "ort_1_thread": lambda: sessions[1].run(None, feeds),
            "ort_default_threads": lambda: sessions[0].run(None, feeds),
            "torch_eager_1_thread": torch_run,
            "library_via_ctypes": lambda: predict(ctx, xp, batch, yp),
        }
        for runner, run in runs.items():
            line = {"runner": runner, "model": name, "batch": batch}
            line.update(timed(run, calls))
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
