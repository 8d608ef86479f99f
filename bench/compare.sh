#!/usr/bin/env bash
# Kiln next to PyTorch eager on the `seed` workload, interleaved in one run on one core, so both
# see the same machine load. Prints each run's JSON line and a table of medians with the ratio.
#
#   PY=$HOME/.peers/bin/python bench/compare.sh [repeats]
#
# The peer needs a Python environment with torch (see ../shared/bench/README.md); it is for
# benchmarking only, never a dependency of Kiln or its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
py=${PY:-$HOME/.peers/bin/python}
peers=${PEERS:-../shared/bench/peers}
out=$(mktemp -d)
cargo build --release --quiet
for _ in $(seq "$repeats"); do
  bench/seed_step.sh 1 | tee -a "$out/kiln.jsonl"
  (cd "$peers" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" torch_eager_bench.py --workload seed --threads 1) \
    | tee -a "$out/torch.jsonl"
done
"$py" - "$out" <<'PYEOF'
import json, statistics, sys, os
out = sys.argv[1]
rows = {}
for name in ("kiln", "torch"):
    lines = [json.loads(l) for l in open(os.path.join(out, name + ".jsonl")) if l.strip()]
    rows[name] = statistics.median(l["steady_samples_per_s"] for l in lines)
print("\n| workload | threads | Kiln samples/s (µs/step) | PyTorch eager samples/s (µs/step) | Kiln / PyTorch |")
print("|---|---|---|---|---|")
k, t = rows["kiln"], rows["torch"]
print(f"| seed | 1 | {k:,.0f} ({32e6 / k:.1f}) | {t:,.0f} ({32e6 / t:.1f}) | {k / t:.1f}x |")
PYEOF
