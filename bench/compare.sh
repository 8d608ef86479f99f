#!/usr/bin/env bash
# Kiln next to PyTorch eager on the `seed` and `mnist` workloads, interleaved in one run on one
# core, so both see the same machine load. Prints each run's JSON line and a table of medians
# with the ratio.
#
#   PY=$HOME/.peers/bin/python bench/compare.sh [repeats] [workloads...]
#
# The peer needs a Python environment with torch (see ../shared/bench/README.md); it is for
# benchmarking only, never a dependency of Kiln or its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
shift || true
workloads=${*:-seed mnist}
py=${PY:-$HOME/.peers/bin/python}
peers=${PEERS:-../shared/bench/peers}
out=$(mktemp -d)
cargo build --release --quiet
for workload in $workloads; do
  for _ in $(seq "$repeats"); do
    bench/kiln_bench.sh "$workload" 1 | tee -a "$out/kiln-$workload.jsonl"
    (cd "$peers" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" torch_eager_bench.py --workload "$workload" --threads 1) \
      | tee -a "$out/torch-$workload.jsonl"
  done
done
"$py" - "$out" $workloads <<'PYEOF'
import json, statistics, sys, os
out, workloads = sys.argv[1], sys.argv[2:]
batch = {"seed": 32, "mnist": 64}
print("\n| workload | threads | Kiln samples/s (µs/step) | PyTorch eager samples/s (µs/step) | Kiln / PyTorch |")
print("|---|---|---|---|---|")
for w in workloads:
    med = {}
    for name in ("kiln", "torch"):
        lines = [json.loads(l) for l in open(os.path.join(out, f"{name}-{w}.jsonl")) if l.strip()]
        med[name] = statistics.median(l["steady_samples_per_s"] for l in lines)
    k, t, b = med["kiln"], med["torch"], batch[w]
    print(f"| {w} | 1 | {k:,.0f} ({b * 1e6 / k:.1f}) | {t:,.0f} ({b * 1e6 / t:.1f}) | {k / t:.1f}x |")
PYEOF
