#!/usr/bin/env bash
# Leader failover, N trials (default 20): each runs tests/daemon/ha.rs
# once (three control-plane instances on a 3-member etcd, the leader
# killed with SIGKILL mid-rollout; the rollout must then finish with no
# duplicate pod and the commit applied once) and records how long after
# the kill a new leader was elected. The time is the lease's TTL plus
# the campaign, not code speed, so the debug build is used.
#
# Usage (root): bench/ha.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
[ "$n" -ge 1 ] && [ "$n" -le 100 ] || { echo "N must be 1..100" >&2; exit 2; }
cargo build --locked -q --workspace --bins
times=()
failures=0
for i in $(seq "$n"); do
  out=$(timeout 300 cargo test --locked -q -p driftless --test daemon -- ha:: --nocapture 2>&1) || {
    failures=$((failures + 1))
    log="target/tmp/ha-trial-$i.log"
    mkdir -p target/tmp && printf '%s\n' "$out" > "$log"
    echo "trial $i FAILED (its output: $log)" >&2
    continue
  }
  t=$(printf '%s\n' "$out" | sed -n 's/^failover: a new leader \([0-9.]*\)s after the kill$/\1/p')
  echo "trial $i: new leader ${t}s after the kill"
  times+=("$t")
done
printf '%s\n' "${times[@]}" | sort -n | awk -v f="$failures" -v n="$n" '
  { v[NR] = $1 } END {
    if (NR == 0) { print "no trial passed"; exit 1 }
    p90 = int(NR * 0.9 + 0.5); if (p90 < 1) p90 = 1
    printf "trials %d, failed %d; failover min %.2f s, p50 %.2f s, p90 %.2f s, max %.2f s\n", n, f, v[1], v[int((NR + 1) / 2)], v[p90], v[NR]
  }'
