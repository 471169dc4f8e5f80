#!/usr/bin/env bash
# Several nodes on one machine (issue 19), measured on the release build:
#   1. commit -> PODS pods (default 300) Ready, spread over 3 agents;
#   2. each agent's memory (VmRSS) with PODS/3 pods;
#   3. pod-to-pod TCP throughput (iperf3, 5 s) on one node and across two,
#      beside the nodes' own link (node to node, no pod network) as the
#      reference;
#   4. node loss: one agent, its pods and its link killed at once (a power
#      loss); how long until its node is NotReady, and until all PODS pods
#      are Ready on the other two (grace 15 s, toleration 10 s: the
#      Kubernetes defaults are 40 s and 300 s).
# A pure control plane (`up --no-local-node --cluster-cidr`) on the host and
# three agents, each in a network namespace on a LAN bridge this script
# makes (10.214.250.0/24); all of it removed on exit. Traffic goes only to
# addresses assigned here.
#
# Usage (root): bench/nodes.sh [PODS]
set -euo pipefail
cd "$(dirname "$0")/.."
pods="${1:-300}"
[ "$pods" -ge 3 ] && [ "$pods" -le 600 ] || { echo "PODS must be 3..600" >&2; exit 2; }
# One run at a time: the LAN and namespaces have fixed names.
exec 9>/tmp/driftless-bench-nodes.lock
flock -n 9 || { echo "another bench/nodes.sh is running" >&2; exit 2; }
need=()
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
if [ "${#need[@]}" -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q -p driftless -p driftless-runtime
./scripts/build-images.sh >/dev/null
bin="$PWD/target/release/driftless"
# Nodes run the node binary (`driftless agent` alone).
agent_bin="$PWD/target/release/driftless-agent"
work=$(mktemp -d /tmp/driftless-nodes.XXXXXX)
lan=dlbench0
cluster_cidr=10.250.0.0/16
server=10.214.250.1:16443
names=(a b c)

keep="$PWD/target/tmp/nodes-bench"
cleanup() {
  set +e
  # The logs outlive the run (a failed one needs them).
  rm -rf "$keep" && mkdir -p "$keep" && cp "$work"/*.log "$keep/" 2>/dev/null
  for i in 0 1 2; do
    [ -f "$work/agent-$i.pid" ] && kill -9 "$(cat "$work/agent-$i.pid")" 2>/dev/null
  done
  [ -f "$work/cp.pid" ] && kill -9 "$(cat "$work/cp.pid")" 2>/dev/null
  pkill -9 iperf3 2>/dev/null
  sleep 0.5
  for i in 0 1 2; do
    [ -f "$work/agent-$i/config.json" ] && nsenter --net="/run/netns/dlbench-$i" "$bin" reset --purge --data-dir "$work/agent-$i" >/dev/null 2>&1
    ip netns del "dlbench-$i" 2>/dev/null
    ip link del "dlbv${i}h" 2>/dev/null
  done
  [ -f "$work/cp/config.json" ] && "$bin" reset --purge --data-dir "$work/cp" >/dev/null 2>&1
  ip link del "$lan" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# Seconds since boot: the wall clock of this VM may jump.
now() { cut -d' ' -f1 /proc/uptime; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }
api() { "$bin" get "$@" --data-dir "$work/cp"; }
# Pods of app=load: "ready TOTAL", or per node with "nodes".
count() {
  local listed
  listed=$(api pods -o json 2>/dev/null) || { [ "$1" = ready ] && echo 0; return 0; }
  python3 -c '
import json, sys
items = [p for p in json.load(sys.stdin)["items"] if p["metadata"].get("labels", {}).get("app") == "load" and not p["metadata"].get("deletionTimestamp")]
ready = [p for p in items if any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]
if sys.argv[1] == "ready":
    print(len(ready))
else:
    nodes = {}
    for p in ready:
        nodes[p["spec"].get("nodeName", "")] = nodes.get(p["spec"].get("nodeName", ""), 0) + 1
    print(" ".join(f"{n}={c}" for n, c in sorted(nodes.items())))
' "$1" <<<"$listed"
}
wait_for() { # what, seconds, command...
  local what=$1 limit=$2; shift 2
  local deadline
  deadline=$(python3 -c "import sys; print(float(sys.argv[1]) + float(sys.argv[2]))" "$(now)" "$limit")
  until "$@"; do
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$(now)" "$deadline" || {
      echo "timed out waiting for $what (the logs: $keep)" >&2
      exit 1
    }
    sleep 0.2
  done
}

# The LAN and the control plane (what a killed run left goes first).
for i in 0 1 2; do ip netns del "dlbench-$i" 2>/dev/null || true; ip link del "dlbv${i}h" 2>/dev/null || true; done
ip link del "$lan" 2>/dev/null || true
ip link add "$lan" type bridge
ip addr add 10.214.250.1/24 dev "$lan"
ip link set "$lan" up
mkdir -p "$work/repo/apps"
git -C "$work/repo" init -q -b main
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\ndata: {a: b}\n' > "$work/repo/apps/hello.yaml"
git -C "$work/repo" add -A && git -C "$work/repo" -c user.name=bench -c user.email=bench@example.invalid commit -qm initial
{
  echo "0f9e8d7c6b5a49382716051f2e3d4c5b,admin,admin@example.invalid"
  for i in 0 1 2; do echo "${names[$i]}1b2c3d4e5f60718293a4b5c6d7e8f90,system:node:node-${names[$i]},node-${names[$i]},\"system:nodes\""; done
} > "$work/tokens.csv"
DRIFTLESS_LOG=warn "$bin" up --repo "$work/repo" --path apps --interval 1s --data-dir "$work/cp" \
  --listen "$server" --token-file "$work/tokens.csv" --no-local-node --cluster-cidr "$cluster_cidr" \
  --node-monitor-grace-period 15s --bridge dlbcp0 --pod-cidr 10.250.255.0/24 --service-cidr 10.252.0.0/24 \
  --cluster-dns 10.252.0.10 --dns-upstream none --cgroup-root /driftless-bench-cp --node-name cp \
  >"$work/cp.log" 2>&1 &
echo $! > "$work/cp.pid"
wait_for "the control plane" 30 api nodes

# Three nodes, each a namespace on the LAN with an agent inside.
for i in 0 1 2; do
  ns="dlbench-$i"
  ip netns add "$ns"
  ip link add "dlbv${i}h" type veth peer name "dlbv${i}n"
  ip link set "dlbv${i}n" netns "$ns"
  ip link set "dlbv${i}h" master "$lan" up
  nsenter --net="/run/netns/$ns" ip addr add "10.214.250.$((i + 2))/24" dev "dlbv${i}n"
  nsenter --net="/run/netns/$ns" ip link set "dlbv${i}n" up
  nsenter --net="/run/netns/$ns" ip link set lo up
  nsenter --net="/run/netns/$ns" sysctl -qw net.ipv4.ip_forward=1
  if nsenter --net="/run/netns/$ns" ip route show | grep -q default; then echo "a node namespace has a default route" >&2; exit 1; fi
  "$bin" image import target/images/busybox-1.35 --name busybox --data-dir "$work/agent-$i" >/dev/null
  DRIFTLESS_LOG=warn nsenter --net="/run/netns/$ns" "$agent_bin" --server "https://$server" \
    --token "${names[$i]}1b2c3d4e5f60718293a4b5c6d7e8f90" --certificate-authority "$work/cp/pki/ca.crt" \
    --node-name "node-${names[$i]}" --node-ip "10.214.250.$((i + 2))" --cluster-cidr "$cluster_cidr" \
    --data-dir "$work/agent-$i" --bridge dlbnode0 --service-cidr 10.252.0.0/24 --cluster-dns 10.252.0.10 \
    --cgroup-root "/driftless-bench-$i" --dns-upstream none >"$work/agent-$i.log" 2>&1 &
  echo $! > "$work/agent-$i.pid"
done
three_ready() { [ "$(api nodes 2>/dev/null | grep -c ' Ready ')" = 3 ]; }
wait_for "three Ready nodes" 60 three_ready

# 1. Commit -> PODS Ready.
cat > "$work/repo/apps/load.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: load}
spec:
  replicas: $pods
  selector: {matchLabels: {app: load}}
  template:
    metadata: {labels: {app: load}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 10}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 10}
      containers:
      - {name: sleep, image: 'busybox:1.35', command: [sleep, '86400']}
EOF
git -C "$work/repo" add -A && git -C "$work/repo" -c user.name=bench -c user.email=bench@example.invalid commit -qm load
start=$(now)
all_ready() { [ "$(count ready)" = "$pods" ]; }
wait_for "$pods Ready pods" 600 all_ready
echo "commit -> $pods pods Ready on 3 nodes: $(since "$start") s ($(count nodes))"

# 2. Each agent's memory with its share of the pods: at once, with the
# ramp's threads and peaks still there, and after 15 s of steady state
# (what a node of 100 running pods costs).
memory() {
for i in 0 1 2; do
  status="/proc/$(cat "$work/agent-$i.pid")/status"
  kib() { awk -v k="$1:" '$1 == k {print $2}' "$status"; }
  echo "agent node-${names[$i]} ($1): VmRSS $(( $(kib VmRSS) / 1024 )) MiB (anonymous $(( $(kib RssAnon) / 1024 )) MiB, file $(( $(kib RssFile) / 1024 )) MiB), $(kib Threads) threads, with $(count nodes | tr ' ' '\n' | sed -n "s/^node-${names[$i]}=//p") pods"
done
}
memory "at Ready"
sleep 15
memory "15 s later"

# 3. Throughput: iperf3 between pods' network namespaces.
pod_on() { # node -> "uid ip" of one Ready load pod there
  api pods -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["spec"].get("nodeName") == sys.argv[1] and p.get("status", {}).get("podIP") and not p["metadata"].get("deletionTimestamp"):
        print(p["metadata"]["uid"], p["status"]["podIP"]); break
' "$1"
}
read -r uid_a1 ip_a1 < <(pod_on node-a)
read -r uid_a2 ip_a2 < <(api pods -o json | python3 -c '
import json, sys
ps = [p for p in json.load(sys.stdin)["items"] if p["spec"].get("nodeName") == "node-a" and p.get("status", {}).get("podIP")]
print(ps[1]["metadata"]["uid"], ps[1]["status"]["podIP"])')
read -r uid_b ip_b < <(pod_on node-b)
netns_of() { echo "$work/agent-$1/pods/$2/ns/net"; }
gbits() { # client netns, server netns, server ip
  nsenter --net="$2" iperf3 -s -1 -D -p 5201 >/dev/null
  sleep 0.3
  nsenter --net="$1" iperf3 -c "$3" -p 5201 -t 5 -J | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))'
}
same=$(gbits "$(netns_of 0 "$uid_a1")" "$(netns_of 0 "$uid_a2")" "$ip_a2")
across=$(gbits "$(netns_of 0 "$uid_a1")" "$(netns_of 1 "$uid_b")" "$ip_b")
link=$(gbits /run/netns/dlbench-0 /run/netns/dlbench-1 10.214.250.3)
echo "iperf3 TCP 5 s: pod to pod on one node ${same} Gbit/s; across nodes ${across} Gbit/s; node to node (the reference) ${link} Gbit/s"

# 4. Node loss: node-c's agent, its pods and its link, all at once. A node
# takes 110 pods (kubelet's --max-pods default), so the two left hold at
# most 220: the Deployment is first scaled to what they can take.
survivors=$(( pods < 200 ? pods : 200 ))
if [ "$survivors" != "$pods" ]; then
  sed -i "s/replicas: $pods/replicas: $survivors/" "$work/repo/apps/load.yaml"
  git -C "$work/repo" -c user.name=bench -c user.email=bench@example.invalid commit -qam "scale to $survivors"
  pods=$survivors
  scaled() { [ "$(count ready)" = "$pods" ] && [ "$(api pods 2>/dev/null | grep -c Terminating)" = 0 ]; }
  wait_for "$pods pods" 300 scaled
  echo "node loss: $pods pods, $(count nodes)"
fi
lost=$(now)
kill -9 "$(cat "$work/agent-2.pid")"
for pid in $(grep -l "$work/agent-2" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do kill -9 "$pid" 2>/dev/null || true; done
for h in /sys/fs/cgroup/*/driftless-bench-2; do
  [ -d "$h" ] && find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
done
ip link set dlbv2h down
c_not_ready() { api nodes 2>/dev/null | grep '^node-c ' | grep -q NotReady; }
wait_for "node-c NotReady" 120 c_not_ready
echo "node loss: node-c NotReady $(since "$lost") s after its power went"
# One snapshot: every pod Ready, none of them on node-c.
all_elsewhere() {
  local by_node total
  by_node=$(count nodes)
  total=$(tr ' ' '\n' <<<"$by_node" | awk -F= '{s += $2} END {print s + 0}')
  [ "$total" = "$pods" ] && ! grep -q node-c <<<"$by_node"
}
wait_for "$pods Ready on node-a and node-b" 600 all_elsewhere
echo "node loss: all $pods pods Ready on the other nodes $(since "$lost") s after ($(count nodes))"
