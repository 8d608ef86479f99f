#!/usr/bin/env bash
# Measures Kiln on a workload the way ../shared/bench/peers measure the peers: steady samples/s =
# median over epochs 2..N of training samples / epoch time (reshuffling included, validation not),
# and µs/step = batch / samples/s. Prints one JSON line per run.
#
#   bench/kiln_bench.sh WORKLOAD [repeats]      WORKLOAD: seed (programs/seed.model) or
#                                               mnist (programs/mnist.model)
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:?usage: bench/kiln_bench.sh seed|mnist [repeats]}
repeats=${2:-3}
case "$workload" in
  seed) program=programs/seed.model; samples=60000; batch=32 ;;
  mnist) program=programs/mnist.model; samples=8000; batch=64 ;;
  *) echo "unknown workload: $workload (seed or mnist)" >&2; exit 2 ;;
esac
cargo build --release --quiet
for _ in $(seq "$repeats"); do
  # taskset: one core, like the peers' `--threads 1`.
  taskset -c 0 target/release/kiln run "$program" \
    | awk -v samples="$samples" -v batch="$batch" -v workload="$workload" '
        /^[0-9]+\/[0-9]+ - / { sub("s", "", $3); t[n++] = $3 }
        /^[0-9]+\/[0-9]+ - / && / val_accuracy: / { acc = $NF }
        END {
          m = 0; for (i = 1; i < n; i++) s[m++] = t[i]
          for (i = 0; i < m; i++) for (j = i + 1; j < m; j++) if (s[j] < s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
          med = (m % 2) ? s[int(m / 2)] : (s[m / 2 - 1] + s[m / 2]) / 2
          sps = samples / med
          printf "{\"framework\": \"kiln\", \"workload\": \"%s\", \"threads\": 1, \"steady_samples_per_s\": %.1f, \"steady_step_us\": %.2f, \"test_acc\": %s, \"epoch_times_s\": [", workload, sps, batch / sps * 1e6, (acc == "" ? "null" : acc)
          for (i = 0; i < n; i++) printf "%s%s", (i ? ", " : ""), t[i]
          print "]}"
        }'
done
