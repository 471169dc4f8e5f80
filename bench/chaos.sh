#!/usr/bin/env bash
# The kill campaign (issue 20) on the release build: N trials (default 50),
# each an action (a sync, a rollout, a scale, a StatefulSet's ordered start,
# an image import) with the daemon killed by SIGKILL at a random instant
# during it, or one container's helper killed; after each, the checks of
# bench/chaos.py (converged to git's head within 30 s, one container, mount
# and veth per pod, each commit once in the ledger, the store opened).
# Pods run on a bridge of this script's own (10.246.251.0/24); all of it is
# removed on exit. Traffic stays on this machine.
#
# Usage (root): bench/chaos.sh [N] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-50}"
seed="${2:-$(date +%s)}"
[ "$trials" -ge 1 ] && [ "$trials" -le 1000 ] || { echo "N must be 1..1000" >&2; exit 2; }
exec 9>/tmp/driftless-bench-chaos.lock
flock -n 9 || { echo "another bench/chaos.sh is running" >&2; exit 2; }
cargo build --release --locked -q -p driftless -p driftless-runtime
./scripts/build-images.sh >/dev/null
bin="$PWD/target/release/driftless"
work=$(mktemp -d /tmp/driftless-chaos.XXXXXX)
keep="$PWD/target/tmp/chaos-bench"
cleanup() {
  set +e
  pkill -9 -f "$bin up --repo $work/repo" 2>/dev/null
  rm -rf "$keep" && mkdir -p "$keep" && cp "$work"/daemon.log "$work"/chaos.json "$keep/" 2>/dev/null
  [ -d "$work/data" ] && "$bin" reset --purge --data-dir "$work/data" >/dev/null 2>&1
  ip link del dlchaos0 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM
echo "bench/chaos.sh: $trials trials, seed $seed (logs kept in $keep)"
python3 bench/chaos.py "$bin" "$work" "$trials" "$seed"
