#!/usr/bin/env bash
# Kiln next to PyTorch eager on the `seed`, `mnist` and `wide` workloads, interleaved in one run,
# so both see the same machine load. Prints each run's JSON line and a table of medians with the
# ratio, GFLOP/s, each process's peak RSS and Kiln's compile time (source to ready-to-train
# native code, as `kiln run` reports it).
#
#   PY=$HOME/.peers/bin/python bench/compare.sh [repeats] [workloads...]
#   THREADS=2 bench/compare.sh 3 wide          # both pinned to two cores
#
# The peer needs a Python environment with torch (see ../shared/bench/README.md); it is for
# benchmarking only, never a dependency of Kiln or its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
shift || true
workloads=${*:-seed mnist wide}
threads=${THREADS:-1}
py=${PY:-$HOME/.peers/bin/python}
peers=${PEERS:-../shared/bench/peers}
out=$(mktemp -d)
cargo build --release --quiet
for workload in $workloads; do
  for _ in $(seq "$repeats"); do
    bench/kiln_bench.sh "$workload" 1 "$threads" | tee -a "$out/kiln-$workload.jsonl"
    (cd "$peers" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" torch_eager_bench.py --workload "$workload" --threads "$threads") \
      | tee -a "$out/torch-$workload.jsonl"
  done
done
"$py" - "$out" "$threads" $workloads <<'PYEOF'
import json, statistics, sys, os
out, threads, workloads = sys.argv[1], sys.argv[2], sys.argv[3:]
batch = {"seed": 32, "mnist": 64, "wide": 256}
print("\n| workload | threads | Kiln samples/s (µs/step) | PyTorch eager samples/s (µs/step) | Kiln / PyTorch | Kiln GFLOP/s | PyTorch GFLOP/s | Kiln peak RSS | PyTorch peak RSS | Kiln compile |")
print("|---|---|---|---|---|---|---|---|---|---|")
for w in workloads:
    med = {}
    for name in ("kiln", "torch"):
        lines = [json.loads(l) for l in open(os.path.join(out, f"{name}-{w}.jsonl")) if l.strip()]
        med[name] = {key: statistics.median(l[key] for l in lines) for key in ("steady_samples_per_s", "gflops", "peak_rss_mb")}
    kiln_lines = [json.loads(l) for l in open(os.path.join(out, f"kiln-{w}.jsonl")) if l.strip()]
    compile_ms = [l["compile_ms"] for l in kiln_lines if l.get("compile_ms") is not None]
    compile_text = f"{statistics.median(compile_ms):.1f} ms" if compile_ms else "n/a"
    k, t, b = med["kiln"]["steady_samples_per_s"], med["torch"]["steady_samples_per_s"], batch[w]
    print(f"| {w} | {threads} | {k:,.0f} ({b * 1e6 / k:.1f}) | {t:,.0f} ({b * 1e6 / t:.1f}) | {k / t:.2f}x"
          f" | {med['kiln']['gflops']:.1f} | {med['torch']['gflops']:.1f}"
          f" | {med['kiln']['peak_rss_mb']:.0f} MB | {med['torch']['peak_rss_mb']:.0f} MB | {compile_text} |")
PYEOF
