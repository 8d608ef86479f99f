#!/usr/bin/env bash
# Kiln next to the peer frameworks on the `seed`, `mnist`, `wide` and `mnist_cnn` workloads, interleaved in
# one run so that all see the same machine load. Prints each run's JSON line, then a table of
# medians: samples/s, µs per step, Kiln's ratio to each peer, GFLOP/s and its share of the
# cores' 256-bit FMA peak, peak RSS, final training loss, test accuracy, and Kiln's compile time
# (source to ready-to-train native code, as `kiln run` reports it).
#
#   PY=$HOME/.peers/bin/python bench/compare.sh [repeats] [workloads...]
#   THREADS=2 bench/compare.sh 3 wide              # every framework pinned to two cores
#   PEERS="torch_eager jax_scan keras_jax" bench/compare.sh 3 seed
#   PEERS=torch_eager bench/compare.sh 3 mnist_cnn   # the Keras MNIST convnet (cnn_bench.py)
#   PEERS=torch_eager bench/compare.sh 3 seq_lstm seq_gru  # the LSTM/GRU text classifier
#                                                            # (seq_bench.py, 3 epochs)
#
# `mnist_cnn` runs `cnn_bench.py --framework torch|jax|jax_scan` for the peers `torch_eager`,
# `jax` and `jax_scan`, for the program's 15 epochs (XLA's CPU convolutions train it at ~55
# samples/s, so a JAX run takes over half an hour: name it in PEERS to include it).
# PEERS names scripts of ../shared/bench/peers as its run_all.sh does (`NAME_bench.py`;
# `jax_scan` is `jax_bench.py --scan`, which trains `wide` step by step, as the reference
# figures do). The default pits Kiln against PyTorch eager (how most people run these models)
# and JAX with the epoch in one `lax.scan` (the fastest peer on this machine class). The peers
# need a Python environment (see ../shared/bench/README.md); it is for benchmarking only, never
# a dependency of Kiln or its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
shift || true
workloads=${*:-seed mnist wide}
threads=${THREADS:-1}
py=${PY:-$HOME/.peers/bin/python}
peers_dir=${PEERS_DIR:-../shared/bench/peers}
peers=${PEERS:-torch_eager jax_scan}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo build --release --quiet
for workload in $workloads; do
  for _ in $(seq "$repeats"); do
    bench/kiln_bench.sh "$workload" 1 "$threads" | tee -a "$out/kiln-$workload.jsonl"
    for peer in $peers; do
      script=${peer}_bench.py
      extra=(--workload "$workload")
      if [ "$peer" = jax_scan ]; then
        script=jax_bench.py
        extra+=(--scan)
      fi
      if [ "$workload" = mnist_cnn ]; then
        [ "$peer" = jax_scan ] && [ -z "${PEERS:-}" ] && continue
        script=cnn_bench.py
        case "$peer" in
          torch_eager) extra=(--framework torch) ;;
          *) extra=(--framework "$peer") ;;
        esac
        extra+=(--epochs 15)
      fi
      case "$workload" in
        seq_lstm | seq_gru)
          [ "$peer" = jax_scan ] && [ -z "${PEERS:-}" ] && continue
          script=seq_bench.py
          case "$peer" in
            torch_eager) extra=(--framework torch) ;;
            *) extra=(--framework "$peer") ;;
          esac
          extra+=(--epochs 3 --cell "${workload#seq_}") ;;
      esac
      # A peer that fails (not installed, crashed) leaves no line: its rows say "failed".
      (cd "$peers_dir" && env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" "$script" \
          --threads "$threads" "${extra[@]}" 2>/dev/null) \
        | tail -n 1 | tee -a "$out/$peer-$workload.jsonl" || true
    done
  done
done
"$py" - "$out" "$threads" "$peers" $workloads <<'PYEOF'
import json, statistics, sys, os
out, threads, peers, workloads = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4:]
batch = {"seed": 32, "mnist": 64, "wide": 256, "mnist_cnn": 128, "seq_lstm": 64, "seq_gru": 64}
peak = 117.4 * threads  # GFLOP/s, one Zen 4 core's 256-bit FMA peak (../shared/bench/README.md)

def runs(name, w):
    path = os.path.join(out, f"{name}-{w}.jsonl")
    lines = []
    for line in open(path):
        try:
            lines.append(json.loads(line))
        except ValueError:
            pass
    return lines

def median(lines, key):
    values = [l[key] for l in lines if l.get(key) is not None]
    return statistics.median(values) if values else None

def text(x, fmt):
    return "n/a" if x is None else format(x, fmt)

print(f"\n| workload | threads | framework | samples/s | µs/step | Kiln / it | GFLOP/s (% of peak) | peak RSS | final loss | test acc | compile |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for w in workloads:
    kiln = runs("kiln", w)
    k = median(kiln, "steady_samples_per_s")
    for name in ["kiln"] + peers:
        lines = kiln if name == "kiln" else runs(name, w)
        if not lines:
            print(f"| {w} | {threads} | {name} | failed | | | | | | | |")
            continue
        s = median(lines, "steady_samples_per_s")
        g = median(lines, "gflops")
        label = name if name == "kiln" else lines[0].get("framework", name)
        ratio = "" if name == "kiln" else f"**{k / s:.2f}x**"
        compile_ms = median(lines, "compile_ms") if name == "kiln" else None
        print(f"| {w} | {threads} | {label} | {s:,.0f} | {batch[w] * 1e6 / s:,.1f} | {ratio}"
              f" | {text(g, '.1f')} ({text(g and 100 * g / peak, '.0f')}%)"
              f" | {text(median(lines, 'peak_rss_mb'), '.0f')} MB"
              f" | {text(median(lines, 'final_train_loss'), '.4f')} | {text(median(lines, 'test_acc'), '.4f')}"
              f" | {'' if compile_ms is None else f'{compile_ms:.1f} ms'} |")
PYEOF
