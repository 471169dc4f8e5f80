#!/usr/bin/env bash
# Benchmark: the service proxy's data paths under wrk. One backend (Debian's
# nginx, one worker, a fixed 200 answer) in a network namespace on a bridge
# of the benchmark's own; wrk from the host, keep-alive, straight to the
# pod's address, through a ClusterIP and through a loopback NodePort, for
# each data path: the kernel (driftless-proxy's nftables DNAT) and the
# userspace candidate (tokio + splice(2), proxy/examples/dataplane.rs),
# interleaved in rounds within one run.
# Then how long Proxy::apply takes for tables of 10 to 5000 service ports.
#
# Usage (root): bench/proxy.sh [SECONDS] [CONNECTIONS] [ROUNDS]
#   (default 10 s per wrk run, 32 connections, 3 rounds)
# Installs wrk and nginx-light (Debian) if missing. Results go to stdout;
# copy them to docs/benchmarks.md.
#
# Network rule: wrk sends only to the namespace's address (10.245.249.10),
# the ClusterIPs (10.98.249.10, and .12 for the floor, routed local on lo
# before anything starts)
# and 127.0.0.1; every wrk run is bounded by SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
connections="${2:-32}"
rounds="${3:-3}"
[ "$(id -u)" = 0 ] || { echo "bench/proxy.sh needs root" >&2; exit 1; }

./scripts/setup.sh
need=()
command -v wrk >/dev/null || need+=(wrk)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q -p driftless-proxy --example dataplane
dataplane="$PWD/target/release/examples/dataplane"

# Other work on the machine (builds) would land in the latency tail of
# whichever target it meets: the measured processes run at a higher
# priority, all alike.
fast="nice -n -15"
bridge=dlp249 netns=dlpb249 veth=dlpbv249
pod_cidr=10.245.249.0/25 gateway=10.245.249.1 backend=10.245.249.10
service_cidr=10.98.249.0/24 cluster_ip=10.98.249.10 node_port=30249
work="$(mktemp -d)"
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  ip netns pids "$netns" 2>/dev/null | xargs -r kill 2>/dev/null
  ip link del "$veth" 2>/dev/null
  ip netns del "$netns" 2>/dev/null
  ip link del "$bridge" 2>/dev/null
  ip route del local "$service_cidr" dev lo table local 2>/dev/null
  nft delete table ip driftless_bench 2>/dev/null
  nft delete table ip driftless_bench_apply 2>/dev/null
  nft delete table ip driftless_bench_floor 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The routes that keep everything on the machine come first.
ip link add "$bridge" type bridge
ip addr add "$gateway/25" dev "$bridge"
ip link set "$bridge" up
ip route add local "$service_cidr" dev lo table local
# (Read whole, then matched: `grep -q` closing a pipe early would fail
# the pipeline under pipefail.)
routes=$(ip route show dev "$bridge"); local_routes=$(ip route show table local)
grep -q "^10.245.249.0/25" <<<"$routes" || { echo "pod CIDR not routed to $bridge" >&2; exit 1; }
grep -q "^local $service_cidr dev lo" <<<"$local_routes" || { echo "service CIDR not local" >&2; exit 1; }

ip netns add "$netns"
ip link add "$veth" type veth peer name eth0 netns "$netns"
ip link set "$veth" master "$bridge" up
ip -n "$netns" addr add "$backend/25" dev eth0
ip -n "$netns" link set eth0 up
ip -n "$netns" link set lo up
ip -n "$netns" route add default via "$gateway"
cat > "$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 80; location / { return 200 "driftless\n"; } }
}
NGINX
$fast ip netns exec "$netns" nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "http://$backend/" && break; sleep 0.1; done

results="$work/results"
measure() { # NAME URL
  local out rps p50 p99
  out=$($fast wrk -t1 -c"$connections" -d"${seconds}s" --latency "$2")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "$1 $rps $p50 $p99" | tee -a "$results" >&2
}

# Both data paths serve at once, on frontends of their own, for as long
# as their standard input (a fifo held open here) stays open.
start_path() { # MODE ARGS...
  mkfifo "$work/stdin-$1"
  $fast "$dataplane" "$@" < "$work/stdin-$1" > "$work/out-$1" &
  pids+=($!)
  exec {hold}>"$work/stdin-$1"
  holds+=("$hold")
  for _ in $(seq 200); do grep -q ready "$work/out-$1" 2>/dev/null && return; sleep 0.05; done
  echo "$1 did not start" >&2; exit 1
}
holds=()
start_path kernel service_cidr="$service_cidr" pod_cidr="$pod_cidr" bridge="$bridge" table=driftless_bench node_addresses="$gateway" \
  frontends="$cluster_ip:80,127.0.0.1:$node_port,$gateway:$node_port" backends="$backend:80"
start_path userspace frontends="10.98.249.11:80,127.0.0.1:$((node_port - 1))" backends="$backend:80"

# The floors: the least the kernel can do for a loopback NodePort and for
# a ClusterIP (a spare address of the service range), one DNAT rule each
# and one masquerade, in a table of their own (route_localnet is on, as
# the kernel path set it; the proxy masquerades a ClusterIP's traffic from
# the node too). Their packets pass the proxy's filter chains too, as
# every target's do; the difference to kernel-nodeport and
# kernel-clusterip is what the proxy's own rules cost.
floor_port=$((node_port + 1))
floor_ip=10.98.249.12
nft -f - <<NFT
table ip driftless_bench_floor {
  chain output {
    type nat hook output priority -100;
    ip daddr 127.0.0.1 tcp dport $floor_port dnat to $backend:80
    ip daddr $floor_ip tcp dport 80 dnat to $backend:80
  }
  chain postrouting { type nat hook postrouting priority 100; ip daddr $backend tcp dport 80 fib saddr type local masquerade; }
}
NFT

# Rounds interleave the targets, so that whatever else the machine does
# falls on all of them alike; the table shows each target's median round.
for round in $(seq "$rounds"); do
  measure direct "http://$backend/"
  measure kernel-clusterip "http://$cluster_ip/"
  measure kernel-nodeport "http://127.0.0.1:$node_port/"
  measure floor-nodeport "http://127.0.0.1:$floor_port/"
  measure floor-clusterip "http://$floor_ip/"
  measure userspace-clusterip "http://10.98.249.11/"
  measure userspace-nodeport "http://127.0.0.1:$((node_port - 1))/"
done
for hold in "${holds[@]}"; do exec {hold}>&-; done
for pid in "${pids[@]:1}"; do wait "$pid"; done
pids=("${pids[0]}")

python3 - "$results" <<'PY'
import sys
def us(t):
    for unit, f in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if t.endswith(unit) and not (unit == "s" and t.endswith(("us", "ms"))):
            return float(t[: -len(unit)]) * f
    raise ValueError(t)
from statistics import median
# Rounds are paired: each target is compared with direct in its own round
# (the machine's other load moves whole rounds), then the median is taken.
rounds, current = [], {}
for name, rps, p50, p99 in (l.split() for l in open(sys.argv[1])):
    if name == "direct" and current:
        rounds.append(current)
        current = {}
    current[name] = (float(rps), us(p50), us(p99))
rounds.append(current)
print(f"| target ({len(rounds)} rounds, medians) | requests/s | p50 | p99 | throughput vs direct (min–max) | added p99 (min–max) |")
print("|---|---|---|---|---|---|")
for name in rounds[0]:
    rps, p50, p99 = (median(r[name][i] for r in rounds) for i in range(3))
    ratios = [r[name][0] / r["direct"][0] for r in rounds]
    added = [r[name][2] - r["direct"][2] for r in rounds]
    print(f"| {name} | {rps:,.0f} | {p50:.0f} µs | {p99:.0f} µs | {median(ratios):.1%} ({min(ratios):.0%}–{max(ratios):.0%}) | {median(added):+.0f} µs ({min(added):+.0f}…{max(added):+.0f}) |")
PY

echo >&2
"$dataplane" apply-latency service_cidr="$service_cidr" pod_cidr="$pod_cidr" bridge="$bridge"
