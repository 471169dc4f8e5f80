#!/usr/bin/env bash
# Cluster DNS throughput: driftless-dns against Knot DNS (and hickory's own
# generic Catalog), side by side, in one run, on the same zone and the same
# query file (docs/benchmarks.md).
#
# Builds the serve_zone example (1,000 ClusterIP services, 100 headless
# services with 3 endpoints each and their pods), which writes the zone as
# a master file and a dnsperf query file (a quarter each of service A,
# headless A, SRV and pod-hostname A), loads the same zone file into knotd
# and into hickory's Catalog + InMemoryAuthority (the example's `catalog`
# mode), and into a second knotd (the control), then runs dnsperf against
# each in turn, twice, for RUN_SECONDS each, noting each server's CPU time
# per query. Everything listens on 127.0.0.53 to .56 only, and every
# process started here has a time limit and is stopped on exit.
#
# Root (installs dnsperf, knot and dig with apt when missing).
# Usage: bench/dns.sh [RUN_SECONDS]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."

run_seconds=${1:-10}
ours_addr=127.0.0.53
knot_addr=127.0.0.54
control_addr=127.0.0.56
catalog_addr=127.0.0.55
port=5300
# dnsperf: 16 sockets (so that SO_REUSEPORT spreads them evenly over both
# servers' receive loops), up to 200 queries outstanding, UDP, no EDNS.
dnsperf_args=(-p "$port" -l "$run_seconds" -c 16 -q 200)

need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v knotd >/dev/null 2>&1 || need+=(knot)
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --locked -p driftless-dns --example serve_zone >&2
# SERVE_ZONE: another build of the example to measure instead (an older
# commit's, for a before/after pair in one sitting).
serve_zone=${SERVE_ZONE:-target/release/examples/serve_zone}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Long enough for eight runs and the start-up; the servers stop by themselves.
lifetime=$((run_seconds * 8 + 60))

answers() { # addr: whether something answers there
  dig +short +time=1 +tries=1 @"$1" -p "$port" svc-0.ns-0.svc.cluster.local A 2>/dev/null | grep -E "^[0-9.]+$" >/dev/null
}
wait_for() { # addr pid
  local deadline=$((SECONDS + 30))
  until answers "$1"; do
    if ! kill -0 "$2" 2>/dev/null; then echo "bench: the server for $1 exited" >&2; exit 1; fi
    if [ $SECONDS -ge $deadline ]; then echo "bench: $1 does not answer" >&2; exit 1; fi
    sleep 0.1
  done
}
for addr in "$ours_addr" "$knot_addr" "$catalog_addr" "$control_addr"; do
  if answers "$addr"; then echo "bench: something already answers on $addr:$port" >&2; exit 1; fi
done

# driftless-dns, two tokio workers (the machine has 2 cores).
"$serve_zone" "$ours_addr:$port" "$work/zone.txt" "$work/queries.txt" "$lifetime" 2 \
  >"$work/ours.log" 2>&1 &
pids+=($!)
ours_pid=$!
wait_for "$ours_addr" $!

# hickory's generic path on the same zone file, same sockets.
"$serve_zone" "$catalog_addr:$port" "$work/zone2.txt" "$work/queries2.txt" "$lifetime" 2 catalog \
  >"$work/catalog.log" 2>&1 &
pids+=($!)
catalog_pid=$!
wait_for "$catalog_addr" $!

# Knot DNS on the same records, with two UDP workers. An NS at the apex
# keeps its semantic check quiet; no query asks for it. A second knotd,
# the control, answers the same zone: how far one knotd's QPS is from the
# other's in the same run is how finely this method can tell two servers
# apart on this machine.
start_knot() { # addr dir: sets knot_pid
  mkdir -p "$2"
  {
    cat "$work/zone.txt"
    echo "cluster.local. 5 IN NS ns.dns.cluster.local."
    echo "ns.dns.cluster.local. 5 IN A $1"
  } >"$2/cluster.local.zone"
  cat >"$2/knot.conf" <<EOF
server:
    rundir: "$2"
    listen: $1@$port
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$2/db"
zone:
  - domain: cluster.local
    storage: "$2"
    file: "cluster.local.zone"
EOF
  timeout "$lifetime" knotd -c "$2/knot.conf" >"$2.log" 2>&1 &
  pids+=($!)
  wait_for "$1" $!
  knot_pid=$(pgrep -P $! knotd)
}
start_knot "$control_addr" "$work/control"
control_pid=$knot_pid
start_knot "$knot_addr" "$work/knot"

# The two servers must agree before their speed means anything.
while read -r name type; do
  a=$(dig +short +time=1 +tries=1 @"$ours_addr" -p "$port" "$name" "$type" | sort)
  for other in "$knot_addr" "$catalog_addr" "$control_addr"; do
    b=$(dig +short +time=1 +tries=1 @"$other" -p "$port" "$name" "$type" | sort)
    if [ "$a" != "$b" ] || [ -z "$a" ]; then
      echo "bench: answers differ for $name $type ($other):" >&2; echo "$a" >&2; echo "$b" >&2; exit 1
    fi
  done
done < <(head -8 "$work/queries.txt")

echo "zone: $(grep -c ' IN ' "$work/zone.txt") records; queries: $(wc -l <"$work/queries.txt") lines, $(cut -d' ' -f2 "$work/queries.txt" | sort | uniq -c | tr '\n' ' ')"
echo "dnsperf ${dnsperf_args[*]}"
echo
# A server's CPU time so far (user + system, in clock ticks). dnsperf and
# the server share the two cores, so the QPS of a run is about 2 cores
# over their two CPU times per query: both are shown.
# (Fields counted after the command name, which may hold spaces.)
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo "| server | run | QPS | avg latency | latency stddev | max latency | lost | server CPU per query | dnsperf CPU per query |"
echo "|---|---|---|---|---|---|---|---|---|"
for run in 1 2; do
  for server in ours catalog knot control; do
    case $server in
      ours) addr=$ours_addr; pid=$ours_pid; label=driftless-dns ;;
      catalog) addr=$catalog_addr; pid=$catalog_pid; label="hickory Catalog" ;;
      knot) addr=$knot_addr; pid=$knot_pid; label="knotd $(knotd --version | awk '{print $NF}')" ;;
      control) addr=$control_addr; pid=$control_pid; label="knotd, control" ;;
    esac
    before=$(ticks "$pid")
    /usr/bin/time -f "%U %S" -o "$work/dnsperf-cpu" dnsperf -s "$addr" "${dnsperf_args[@]}" -d "$work/queries.txt" >"$work/perf.txt" 2>&1
    qps=$(awk '/Queries per second/ {printf "%.0f", $4}' "$work/perf.txt")
    avg=$(awk '/Average Latency/ {printf "%.3f ms", $4 * 1000}' "$work/perf.txt")
    max=$(awk '/Average Latency/ {gsub(/\)/, "", $8); printf "%.1f ms", $8 * 1000}' "$work/perf.txt")
    dev=$(awk '/Latency StdDev/ {printf "%.3f ms", $4 * 1000}' "$work/perf.txt")
    lost=$(awk '/Queries lost/ {print $3}' "$work/perf.txt")
    completed=$(awk '/Queries completed/ {print $3}' "$work/perf.txt")
    cpu=$(awk -v t=$(( $(ticks "$pid") - before )) -v hz="$hz" -v n="$completed" 'BEGIN {printf "%.2f µs", t / hz / n * 1e6}')
    client=$(awk -v n="$completed" '{printf "%.2f µs", ($1 + $2) / n * 1e6}' "$work/dnsperf-cpu")
    noerror=$(grep -c "NOERROR [0-9]* (100.00%)" "$work/perf.txt" || true)
    if [ "$noerror" -eq 0 ]; then echo "bench: $label answered with errors:" >&2; cat "$work/perf.txt" >&2; exit 1; fi
    echo "| $label | $run | $qps | $avg | $dev | $max | $lost | $cpu | $client |"
  done
done
