#!/usr/bin/env bash
# Control-plane benchmarks (issue 4), as root: commit -> all pods Ready for
# 10 and 100 pods with the daemon's RSS (real containers, the real binary),
# on the embedded SQLite store and on a one-member etcd (Debian's), then the
# cost of an idle periodic resync with 1,000 objects.
# Usage: bench/daemon.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
./scripts/setup.sh
./scripts/build-images.sh >/dev/null
cargo build --release --locked -q -p driftless -p driftless-runtime --bins --examples
cargo build --release --locked -q -p driftless-sync --example idle_resync
echo "== commit to Ready (driftless up, $runs runs each), the store in SQLite, then on etcd"
target/release/examples/commit_to_ready "$runs" sqlite
target/release/examples/commit_to_ready "$runs" etcd
echo "== idle resync, 1,000 objects"
target/release/examples/idle_resync 20
