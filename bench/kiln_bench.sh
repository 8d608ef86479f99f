#!/usr/bin/env bash
# Measures Kiln on a workload the way ../shared/bench/peers measure the peers: steady samples/s =
# median over epochs 2..N of training samples / epoch time (reshuffling included, validation not),
# µs/step = batch / samples/s, GFLOP/s = samples/s × 6·Σ(in·out), and the whole process's peak
# RSS (GNU time's maximum resident set size), and the compile time: source to ready-to-train
# native code, the `(compiled in X ms)` that `kiln run` prints for the fit (`kiln run --timings`
# splits it by stage). Prints one JSON line per run.
#
#   bench/kiln_bench.sh WORKLOAD [repeats] [threads]
#
# WORKLOAD: seed (programs/seed.model), mnist (programs/mnist.model), mnist_cnn
# (programs/mnist_cnn.model, 15 epochs, steady over epochs 2–15), seq_lstm and seq_gru
# (programs/seq_{lstm,gru}.model, 3 epochs, accuracy on the test set) or wide (bench/wide.model,
# which trains 3 epochs so that epochs 2–3 give the steady state; the peers take the median step
# after the first 4 of their one epoch). threads: the process is pinned to that many cores
# (`taskset -c 0` or `0-1`), like the peers' `--threads N`; Kiln's default thread count follows
# the cores it may run on and the size of its matrix products.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:?usage: bench/kiln_bench.sh seed|mnist|wide|mnist_cnn [repeats] [threads]}
repeats=${2:-3}
threads=${3:-1}
case "$workload" in
  seed) program=programs/seed.model; samples=60000; batch=32; macs=6784 ;;
  mnist) program=programs/mnist.model; samples=8000; batch=64; macs=268800 ;;
  wide) program=bench/wide.model; samples=8192; batch=256; macs=2107392 ;;
  # Forward multiply-adds per sample: 26·26·32·9 + 11·11·64·32·9 + 1600·10 (the peers' count).
  mnist_cnn) program=programs/mnist_cnn.model; samples=8000; batch=128; macs=2440960 ;;
  # seq_bench.py's count: gates·(64 + 128)·128 per step × 80 steps + 128·2.
  seq_lstm) program=programs/seq_lstm.model; samples=8192; batch=64; macs=7864576 ;;
  seq_gru) program=programs/seq_gru.model; samples=8192; batch=64; macs=5898496 ;;
  *) echo "unknown workload: $workload (seed, mnist, wide, mnist_cnn, seq_lstm or seq_gru)" >&2; exit 2 ;;
esac
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/kiln
rss=$(mktemp)
log=$(mktemp)
trap 'rm -f "$rss" "$log"' EXIT
for _ in $(seq "$repeats"); do
  /usr/bin/time -f %M -o "$rss" taskset -c "0-$((threads - 1))" "$bin" run "$program" >"$log"
  awk -v samples="$samples" -v batch="$batch" -v macs="$macs" -v workload="$workload" \
      -v threads="$threads" -v rss_kb="$(tail -n 1 "$rss")" '
        /^[0-9]+\/[0-9]+ - / { sub("s", "", $3); t[n++] = $3 }
        /^[0-9]+\/[0-9]+ - / && / val_accuracy: / { acc = $NF }
        /^Evaluated .* accuracy: / { acc = $NF }
        /^[0-9]+\/[0-9]+ - / { for (i = 1; i < NF; i++) if ($i == "loss:") loss = $(i + 1) }
        compile == "" && match($0, /compiled in [0-9.]+ ms/) { compile = substr($0, RSTART + 12, RLENGTH - 15) }
        END {
          m = 0; for (i = 1; i < n; i++) s[m++] = t[i]
          for (i = 0; i < m; i++) for (j = i + 1; j < m; j++) if (s[j] < s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
          med = (m % 2) ? s[int(m / 2)] : (s[m / 2 - 1] + s[m / 2]) / 2
          sps = samples / med
          printf "{\"framework\": \"kiln\", \"workload\": \"%s\", \"threads\": %d, \"steady_samples_per_s\": %.1f, \"steady_step_us\": %.2f, \"gflops\": %.2f, \"final_train_loss\": %s, \"test_acc\": %s, \"peak_rss_mb\": %s, \"compile_ms\": %s, \"epoch_times_s\": [", workload, threads, sps, batch / sps * 1e6, sps * 6 * macs / 1e9, (loss == "" ? "null" : loss), (acc == "" ? "null" : acc), (rss_kb == "" ? "null" : sprintf("%.1f", rss_kb / 1024)), (compile == "" ? "null" : compile)
          for (i = 0; i < n; i++) printf "%s%s", (i ? ", " : ""), t[i]
          print "]}"
        }' "$log"
done
