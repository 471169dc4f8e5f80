#!/usr/bin/env bash
# Benchmark: how long Proxy::apply takes for service tables of SIZES ports
# (3 backends each): the first apply, a change of one port's backends and
# an unchanged apply, for one or more builds of the `dataplane` example,
# alternated in ROUNDS rounds so that builds are compared in the same
# minutes (this machine's speed drifts).
#
# Usage (root): bench/proxy_apply.sh [ROUNDS] [SIZES] [DATAPLANE...]
#   (default 3 rounds, sizes 1000,5000, this tree's release build; pass a
#   copy of an earlier build's target/release/examples/dataplane to pair)
#
# Nothing is sent anywhere: the bridge has no ports, and the service range
# is routed `local` on lo before the proxy starts (it refuses otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
sizes="${2:-1000,5000}"
shift $(( $# < 2 ? $# : 2 ))
[ "$(id -u)" = 0 ] || { echo "bench/proxy_apply.sh needs root" >&2; exit 1; }
if [ $# -eq 0 ]; then
  cargo build --release --locked -q -p driftless-proxy --example dataplane
  set -- "$PWD/target/release/examples/dataplane"
fi
bridge=dlp248 pod_cidr=10.245.248.0/22 gateway=10.245.248.1 service_cidr=10.98.248.0/21
cleanup() {
  set +e
  ip link del "$bridge" 2>/dev/null
  ip route del local "$service_cidr" dev lo table local 2>/dev/null
  nft delete table ip driftless_bench_apply 2>/dev/null
}
trap cleanup EXIT
ip link add "$bridge" type bridge
ip addr add "$gateway/22" dev "$bridge"
ip link set "$bridge" up
ip route add local "$service_cidr" dev lo table local
for round in $(seq "$rounds"); do
  for build in "$@"; do
    echo "== $build, round $round"
    nice -n -15 "$build" apply-latency service_cidr="$service_cidr" pod_cidr="$pod_cidr" bridge="$bridge" sizes="$sizes" | tail -n +3
  done
done
