#!/usr/bin/env bash
# Ingress throughput: requests/s of a tiny HTTP backend through the
# ingress, against the same backend directly and behind nginx configured as
# ingress-nginx configures it (HTTP/1.1 upstream keep-alive, no access
# log), side by side (docs/benchmarks.md).
#
# Builds the serve_bench example (the backend and the ingress in one
# process, host bench.test routed to the backend), starts nginx, then runs
# wrk against the backend directly, through the ingress and through nginx,
# in turn, twice each, for RUN_SECONDS each. Everything listens on
# 127.0.0.61, .62 and .63 only; the servers stop by themselves and are
# killed on exit.
#
# Usage: bench/ingress.sh [RUN_SECONDS] [CONNECTIONS] [ROUNDS]
#   (defaults 10, 64, 3)
# SERVE_BENCH: another build of the example to measure instead (an older
# one, for a paired comparison in the same hour).
set -euo pipefail
cd "$(dirname "$0")/.."

run_seconds=${1:-10}
connections=${2:-64}
rounds=${3:-3}
ingress=127.0.0.61:18080
backend=127.0.0.62:18081
nginx=127.0.0.63:18082

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -z "${SERVE_BENCH:-}" ]; then
  cargo build --release --locked -p driftless-ingress --example serve_bench >&2
fi
serve_bench=${SERVE_BENCH:-target/release/examples/serve_bench}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

lifetime=$((run_seconds * 3 * rounds + 60))
# Two tokio workers and two nginx workers: the machine has two cores
# (shared with wrk and the backend).
"$serve_bench" "$ingress" "$backend" "$lifetime" 2 &
pids+=($!)

cat >"$work/nginx.conf" <<NGINX
user root;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  upstream bench { server $backend; keepalive 320; }
  server {
    listen $nginx reuseport;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
NGINX
timeout "$lifetime" nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)

for target in "$ingress" "$nginx"; do
  deadline=$((SECONDS + 30))
  until curl -sf -H 'Host: bench.test' "http://$target/" 2>/dev/null | grep -q ok; do
    if [ $SECONDS -ge $deadline ]; then echo "bench: $target does not answer" >&2; exit 1; fi
    sleep 0.1
  done
done

# CPU time (user + system, clock ticks) of the threads that proxy: the
# ingress's workers (threads ingress-N of serve_bench, which also runs the
# backend) and nginx's worker processes. Proxy and wrk share the two
# cores, so a proxy's CPU per request is what it leaves to the rest.
# Printed as the total, then user and system time apart.
ticks() { # label
  case $1 in
    ingress) for task in /proc/"${pids[0]}"/task/*; do
        if [[ $(cat "$task/comm") == ingress-* ]]; then cat "$task/stat"; fi
      done ;;
    nginx) for pid in $(pgrep -f "nginx: worker process" -P "$(pgrep -x nginx -P "${pids[1]}" | head -1)"); do cat "/proc/$pid/stat"; done ;;
  esac | awk '{ sub(/^.*\) /, ""); usr += $12; sys += $13 } END { print usr + 0, sys + 0 }'
}
hz=$(getconf CLK_TCK)

run() { # label url
  local out before
  before=$(ticks "$1")
  out=$(wrk -t2 -c"$connections" -d"${run_seconds}s" --latency -H 'Host: bench.test' "$2")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(grep -E "Non-2xx|Socket errors" <<<"$out" || true)
  local requests cpu=""
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  if [ "$1" != direct ]; then
    cpu=$(awk -v a="$before" -v b="$(ticks "$1")" -v hz="$hz" -v n="$requests" 'BEGIN {
      split(a, x, " "); split(b, y, " "); u = (y[1] - x[1]) / hz / n * 1e6; s = (y[2] - x[2]) / hz / n * 1e6
      printf "proxy CPU %.2f us/request (user %.2f, system %.2f)", u + s, u, s }')
  fi
  printf '%-8s %10s req/s  p50 %8s  p99 %8s  %s  %s\n' "$1" "$rps" "$p50" "$p99" "$cpu" "${errors:-no errors}"
}

for round in $(seq "$rounds"); do
  run direct "http://$backend/"
  run ingress "http://$ingress/"
  run nginx "http://$nginx/"
done
