#!/usr/bin/env bash
# Measures Kiln on the `seed` workload the way ../shared/bench/peers measure the peers:
# steady samples/s = median over epochs 2..5 of samples / epoch time (shuffle included), and
# µs/step = batch / samples/s. Prints one JSON line. Usage: bench/seed_step.sh [repeats]
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
cargo build --release --quiet
for _ in $(seq "$repeats"); do
  # taskset: one core, like the peers' `--threads 1`.
  taskset -c 0 target/release/kiln run programs/seed.model \
    | awk -v samples=60000 -v batch=32 '
        /^[0-9]+\/[0-9]+ - / { sub("s", "", $3); t[n++] = $3 }
        END {
          # median of epochs 2..n
          m = 0; for (i = 1; i < n; i++) s[m++] = t[i]
          for (i = 0; i < m; i++) for (j = i + 1; j < m; j++) if (s[j] < s[i]) { x = s[i]; s[i] = s[j]; s[j] = x }
          med = (m % 2) ? s[int(m / 2)] : (s[m / 2 - 1] + s[m / 2]) / 2
          sps = samples / med
          printf "{\"framework\": \"kiln\", \"workload\": \"seed\", \"threads\": 1, \"steady_samples_per_s\": %.1f, \"steady_step_us\": %.2f, \"epoch_times_s\": [", sps, batch / sps * 1e6
          for (i = 0; i < n; i++) printf "%s%s", (i ? ", " : ""), t[i]
          print "]}"
        }'
done
