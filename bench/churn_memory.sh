#!/usr/bin/env bash
# The daemon's memory across rounds of pod churn (issue 21), as root: the
# real `driftless up` (release build) on a repository of its own, each
# round committing 100 busybox replicas, waiting for 100 Ready with
# `driftless get pods`, printing VmRSS and RssAnon, then committing 0 and
# waiting for none. At the end, the daemon's CPU time (utime + stime, in
# clock ticks). Everything is removed with `driftless reset --purge`.
#
# Usage: bench/churn_memory.sh [ROUNDS]
#   BIN=path/to/driftless   another build (its driftless-shim beside it)
#   SMAPS=FILE              save the daemon's /proc/PID/smaps at the end
#   SMAPS_ROUNDS=DIR        save it as DIR/N with each round's 100 Ready
#   AFTER_ROUND="CMD"       run CMD PID ROUND with each round's 100 Ready
#                           (a diagnosis: gdb, perf, /proc)
#   RESIDENT=FILE           save which of the daemon's code is resident with
#                           the first 100 pods Ready, by crate
#                           (bench/resident_code.py)
#   ARENAS=1                after each round's line, glibc's own account of
#                           its arenas (malloc_info, called through gdb):
#                           bytes the arenas hold from the kernel, and how
#                           much of that is free
#   TRIM=1                  (a diagnosis, not what the daemon does) after
#                           each round's line, glibc's malloc_trim(0)
#                           called through gdb, and the memory again: how
#                           much of malloc's free space is whole pages it
#                           could give back
#   EVENTS=1                after each round's line, how many Events and
#                           other objects the store holds (they stay live
#                           in the daemon's copy of the store)
#   END_READY=1             end with the last round's 100 pods Ready (not
#                           scaled down): what a profiler reports as leaked
#                           is then what the daemon held with them
#   WRAP="heaptrack -o F"   run the daemon under a profiler; it is killed
#                           with SIGKILL at the end, so that what heaptrack
#                           reports as leaked is what the daemon held
# Network rule: the daemon's own bridge dlbench0 and 10.247.0.0/24, routed
# by the daemon before any pod starts; nothing is sent off the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-6}"
[ "$(id -u)" = 0 ] || { echo "bench/churn_memory.sh needs root" >&2; exit 1; }
bin="${BIN:-$PWD/target/release/driftless}"
if [ -z "${BIN:-}" ]; then
  ./scripts/setup.sh
  ./scripts/build-images.sh >/dev/null
  cargo build --release --locked -q -p driftless -p driftless-runtime --bins
fi
work="$(mktemp -d)"
daemon=""
cleanup() {
  set +e
  [ -n "$daemon" ] && kill -9 "$daemon" 2>/dev/null
  "$bin" reset --purge --data-dir "$work/data" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

deployment() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: bench}
spec:
  replicas: $1
  selector: {matchLabels: {app: bench}}
  template:
    metadata: {labels: {app: bench}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: c
        image: busybox:1.35
        imagePullPolicy: Never
        command: [sleep, '3600']
YAML
}
repo_git() { git -C "$work/repo" -c user.name=bench -c user.email=bench@localhost "$@" >/dev/null; }
mkdir -p "$work/repo/apps"
repo_git init -q -b main
deployment 0 >"$work/repo/apps/bench.yaml"
repo_git add -A
repo_git commit -qm "bench: 0 replicas"
"$bin" image import target/images/busybox-1.35 --name busybox --data-dir "$work/data" >/dev/null

# How much of the binary is resident depends on how the page cache holds
# it: a build just written stays cached in large folios, which the
# kernel's fault-around maps whole (2.2-2.5 MiB more VmRSS for the same
# code, measured 2026-12-07). Every run starts from a cold cache.
sync
echo 3 >/proc/sys/vm/drop_caches
# shellcheck disable=SC2086 # WRAP is a command line
${WRAP:-} "$bin" up --repo "$work/repo" --path apps --data-dir "$work/data" \
  --bridge dlbench0 --pod-cidr 10.247.0.0/24 --service-cidr 10.100.0.0/24 --cluster-dns 10.100.0.10 \
  --cgroup-root /driftless-bench --dns-upstream none >"$work/daemon.log" 2>&1 &
for _ in $(seq 600); do [ -S "$work/data/driftless.sock" ] && break; sleep 0.05; done
[ -S "$work/data/driftless.sock" ] || { echo "the daemon did not come up" >&2; cat "$work/daemon.log" >&2; exit 1; }
daemon="$(pgrep -f "^$bin up --repo $work/repo" | head -1)"

pods() { "$bin" get pods --data-dir "$work/data" 2>/dev/null | tail -n +2; }
ready() { pods | grep -c ' 1/1 ' || true; }
left() { pods | wc -l; }
wait_for() { # COUNT-FUNCTION WANTED: polls for at most 120 s
  for _ in $(seq 1200); do [ "$($1)" = "$2" ] && return 0; sleep 0.1; done
  echo "timed out waiting for $2 ($1)" >&2; exit 1
}
memory() { # the kernel's kB are KiB: MiB = kB / 1024, printed beside them
  awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s %d kB (%.1f MiB) ", $1, $2, $2 / 1024 } /^Threads:/ { printf "threads %d ", $2 }' "/proc/$daemon/status"
}
arenas() { # malloc_info's XML goes to the daemon's stderr, its log
  local from
  from="$(wc -c <"$work/daemon.log")"
  # gdb's status says nothing here: it fails to restore a register on
  # detach after the call has worked. The XML in the log is the answer.
  gdb -p "$daemon" -batch -ex 'call (int)malloc_info(0, *(void**)&stderr)' >/dev/null 2>&1 || true
  tail -c +"$((from + 1))" "$work/daemon.log" | grep -q '</malloc>' || { echo "  arenas: gdb could not call malloc_info"; return; }
  tail -c +"$((from + 1))" "$work/daemon.log" | python3 -c '
import re, sys
xml = sys.stdin.read()
xml = xml[xml.rfind("<malloc version"):]
total = lambda body, kind: sum(int(s) for s in re.findall(r"<total type=\"%s\" count=\"\d+\" size=\"(\d+)\"" % kind, body))
heaps = re.findall(r"<heap nr=\"\d+\">(.*?)</heap>", xml, re.S)
held = [int(re.search(r"<system type=\"current\" size=\"(\d+)\"", h).group(1)) for h in heaps]
free = [total(h, "fast") + total(h, "rest") for h in heaps]
print("  arenas: %d, held %.1f MiB, free in them %.1f MiB, in use %.1f MiB" % (len(heaps), sum(held) / 2**20, sum(free) / 2**20, (sum(held) - sum(free)) / 2**20))
'
}
stored() { # objects of each kind the store holds, the largest counts first
  local kind out=""
  for kind in events replicasets pods endpointslices; do
    out="$out $kind $("$bin" get "$kind" -A --data-dir "$work/data" 2>/dev/null | tail -n +2 | wc -l)"
  done
  echo "$out"
}
for round in $(seq "$rounds"); do
  deployment 100 >"$work/repo/apps/bench.yaml"
  repo_git commit -qam "bench: 100 replicas, round $round"
  wait_for ready 100
  echo "round $round, 100 Ready: $(memory)"
  [ -n "${ARENAS:-}" ] && arenas
  [ -n "${SMAPS_ROUNDS:-}" ] && cp "/proc/$daemon/smaps" "$SMAPS_ROUNDS/$round"
  # shellcheck disable=SC2086 # AFTER_ROUND is a command line
  [ -n "${AFTER_ROUND:-}" ] && $AFTER_ROUND "$daemon" "$round"
  [ -n "${EVENTS:-}" ] && echo "  stored: $(stored)"
  if [ -n "${TRIM:-}" ]; then
    gdb -p "$daemon" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true
    echo "  after malloc_trim(0): $(memory)"
  fi
  if [ "$round" = 1 ] && [ -n "${RESIDENT:-}" ]; then bench/resident_code.py "$daemon" 40 >"$RESIDENT"; fi
  [ -n "${END_READY:-}" ] && [ "$round" = "$rounds" ] && break
  deployment 0 >"$work/repo/apps/bench.yaml"
  repo_git commit -qam "bench: 0 replicas, round $round"
  wait_for left 0
done
echo "after $rounds rounds: $(memory) cpu_ticks $(awk '{print $14 + $15}' "/proc/$daemon/stat")"
[ -n "${SMAPS:-}" ] && cp "/proc/$daemon/smaps" "$SMAPS"
true
