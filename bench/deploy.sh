#!/usr/bin/env bash
# Inference latency of the `seed` model, the MNIST MLP and the MNIST convnet deployed three ways, in one run:
# the C library `kiln build` makes (timed from C, bench/deploy/latency.c, and through Python's
# ctypes), ONNX Runtime running the file `kiln export` writes, and PyTorch eager. Each round
# runs every runner at batch 1 and 64 (medians over CALLS calls each); rounds interleave the
# runners so all see the same machine load. Also the libraries' sizes and load times.
#
#   PY=$HOME/.peers/bin/python bench/deploy.sh [rounds] [calls]
#
# Needs `cc`, and onnxruntime and torch in $PY (`$PY -m pip install onnxruntime`); both are for
# benchmarking only. The models are trained for one epoch (latency does not depend on the
# weights): `seed` is programs/seed.model's 32 → 64 → 64 → 10, the MNIST MLP
# programs/mnist.model's 784 → 256 → 256 → 10, `cnn` programs/mnist_cnn.model's convnet.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
calls=${2:-2000}
py=${PY:-$HOME/.peers/bin/python}
# The library's code does not depend on how `kiln` itself was compiled (KILN=target/debug/kiln
# gives the same libraries); by default a release build, brought up to date.
kiln=${KILN:-target/release/kiln}
[ -n "${KILN:-}" ] || cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/models.model" <<'MODEL'
data seed_data = synthetic_classification(samples: 2048, features: 32, classes: 10, seed: 7)
data mnist_data = synthetic_classification(samples: 2048, features: 784, classes: 10, seed: 7)
data cnn_data = synthetic_classification(samples: 256, features: 784, classes: 10, seed: 7)

model classifier(x: f32[B, 32]) -> f32[B, 10] {
    dense(64, relu)
    dense(64, relu)
    dense(10, softmax)
}

model mlp(x: f32[B, 784]) -> f32[B, 10] {
    dense(256, relu)
    dense(256, relu)
    dense(10, softmax)
}

model convnet(x: f32[B, 28, 28, 1]) -> f32[B, 10] {
    conv2d(32, 3, relu)
    max_pooling2d(2)
    conv2d(64, 3, relu)
    max_pooling2d(2)
    flatten()
    dropout(0.5)
    dense(10, softmax)
}

fit classifier on seed_data {
    loss sparse_categorical_crossentropy
    epochs 1
}

fit mlp on mnist_data {
    loss sparse_categorical_crossentropy
    epochs 1
}

fit convnet on cnn_data {
    loss sparse_categorical_crossentropy
    epochs 1
}

save classifier to "seed.kiln"
save mlp to "mnist.kiln"
save convnet to "cnn.kiln"
MODEL
(cd "$work" && "$OLDPWD/$kiln" run -q models.model)
cc -O2 bench/deploy/latency.c -ldl -o "$work/latency"
for m in seed mnist cnn; do
    "$kiln" build "$work/$m.kiln" -o "$work/$m" --name "$m" > /dev/null
    "$kiln" export "$work/$m.kiln" -o "$work/$m.onnx" > /dev/null
    echo "{\"model\": \"$m\", \"so_bytes\": $(stat -c %s "$work/$m/lib$m.so"), \"a_bytes\": $(stat -c %s "$work/$m/lib$m.a"), \"onnx_bytes\": $(stat -c %s "$work/$m.onnx")}"
done
for round in $(seq "$rounds"); do
    for m in seed mnist cnn; do
        case $m in
            seed) features=32; widths=32,64,64,10 ;;
            mnist) features=784; widths=784,256,256,10 ;;
            cnn) features=784; widths=cnn ;;
        esac
        "$work/latency" "$work/$m/lib$m.so" "$m" "$features" "$calls" 1 64
        "$py" bench/deploy/peers.py "$work/$m.onnx" "$work/$m/lib$m.so" "$m" "$widths" "$calls" 1 64
    done
done | tee "$work/results.jsonl"

"$py" - "$work/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
load = {}
lat = {}
for r in rows:
    if "load_us" in r:
        load.setdefault(r["model"], []).append(r["load_us"])
    elif "batch" in r:
        lat.setdefault((r["model"], r["batch"], r["runner"]), []).append(r["median_us"])
print()
print("| model | batch | library (C) µs | library (ctypes) µs | ORT 1 thread µs | ORT default µs | PyTorch eager µs | ORT 1 thread / library | PyTorch / library |")
print("|---|---|---|---|---|---|---|---|---|")
for model in ("seed", "mnist", "cnn"):
    for batch in (1, 64):
        m = {k[2]: statistics.median(v) for k, v in lat.items() if k[:2] == (model, batch)}
        lib = m["library"]
        print(f"| {model} | {batch} | {lib:.2f} | {m['library_via_ctypes']:.2f} | {m['ort_1_thread']:.2f} | "
              f"{m['ort_default_threads']:.2f} | {m['torch_eager_1_thread']:.2f} | "
              f"{m['ort_1_thread'] / lib:.2f}x | {m['torch_eager_1_thread'] / lib:.2f}x |")
for model, v in load.items():
    print(f"load (dlopen + init) {model}: median {statistics.median(v):.0f} µs")
PY
