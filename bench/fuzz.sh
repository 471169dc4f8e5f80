#!/usr/bin/env bash
# Fuzzing (issue 20): every target of fuzz/ (cargo-fuzz, libFuzzer, with
# AddressSanitizer) for SECONDS each, from a corpus seeded with inputs
# nobody here made (the forges' documented payloads, Kubernetes-shaped
# manifests of the repository template and the benchmark generator) and
# kept under target/fuzz-corpus between runs. A crash, a run over 1 s or
# over 2 GiB is a finding: its input is left in fuzz/artifacts/TARGET/ and
# the script fails. Prints executions and findings per target.
#
# Usage: bench/fuzz.sh [SECONDS]   (default 60; needs the nightly toolchain)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
rustup toolchain list | grep -q '^nightly' || { echo "bench/fuzz.sh needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || cargo install --locked -q cargo-fuzz
corpus="$PWD/target/fuzz-corpus"
seed() { # target, file name, content on stdin
  mkdir -p "$corpus/$1" && cat > "$corpus/$1/$2"
}

# Manifests: the repository template, the SOPS fixtures in the clear, and
# one generated file of ten kinds.
gen=$(mktemp -d) && trap 'rm -rf "$gen"' EXIT
python3 bench/gen_repo.py "$gen" 1 >/dev/null
for f in repo-template/apps/*/*.yaml secrets/tests/fixtures/*.plain.yaml "$gen"/apps/*.yaml; do
  for t in manifest validate; do seed "$t" "$(basename "$f")" < "$f"; done
done
# Deliveries as the forges document them, with the headers each sends.
for f in forge/tests/fixtures/*.json; do
  case "$(basename "$f")" in
    github-*) head="x-github-event: push\nx-hub-signature-256: sha256=00" ;;
    gitea-*) head="x-gitea-event: push\nx-gitea-signature: 00" ;;
    gitlab-*) head="x-gitlab-event: Push Hook\nx-gitlab-token: a shared secret" ;;
    bitbucket-cloud-*) head="x-event-key: repo:push\nx-hook-uuid: 1" ;;
    *) head="x-event-key: repo:refs_changed\nx-hub-signature: sha256=00" ;;
  esac
  { printf '%b\n\n' "$head"; cat "$f"; } | seed webhook "$(basename "$f")"
done
i=0; for q in 500m 1.5Gi 1e3 0.1 100Ki -1 1E 12345678901234567890 .5 1m1; do i=$((i + 1)); printf '%s' "$q" | seed quantity "q$i"; done
i=0; for s in 'app=web' 'tier in (a,b),!legacy' 'env notin (prod)' 'a!=b' 'x' 'a==b,c'; do i=$((i + 1)); printf '%s' "$s" | seed selector "s$i"; done
i=0; for c in '*/5 * * * *' '0 0 1 1 *' '@hourly' 'CRON_TZ=UTC 0 * * * *' $'0 9 * * MON-FRI\tEurope/Paris' '59 23 31 12 SUN'; do i=$((i + 1)); printf '%s' "$c" | seed cron "c$i"; done

# The change engine: a template file, then (after a NUL) the live
# snapshot a daemon would send for it, empty and with the same objects.
for f in repo-template/apps/*/*.yaml; do
  { cat "$f"; printf '\0{"declared": [], "objects": []}'; } | seed plan "$(basename "$f")"
done
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: "1"}\n\0{"declared": [{"kind": "ConfigMap", "namespace": "default", "name": "c"}], "objects": [{"ref": {"kind": "ConfigMap", "namespace": "default", "name": "c"}, "value": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default", "uid": "u", "resourceVersion": "7"}, "data": {"a": "2"}}, "finished": false}]}' | seed plan live-configmap
# Patches as kubectl sends them (Kubernetes' documentation's patch examples:
# a strategic merge of containers by name, a merge patch, a JSON patch).
dep='{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "patch-demo-ctr", "image": "nginx"}]}}}}'
printf 'application/strategic-merge-patch+json\0%s\0%s' "$dep" '{"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}' | seed patch strategic
printf 'application/merge-patch+json\0%s\0%s' "$dep" '{"spec": {"replicas": 3, "template": null}}' | seed patch merge
printf 'application/json-patch+json\0%s\0%s' "$dep" '[{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}}]' | seed patch json
# Ingress and DNS: the objects of Kubernetes' documentation examples
# (the minimal Ingress, a Service with its Endpoints, a Pod), as JSON.
printf '%s' '{"ingresses": [{"metadata": {"name": "minimal-ingress", "namespace": "default", "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/"}}, "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["foo.bar.com"], "secretName": "testsecret-tls"}], "rules": [{"host": "foo.bar.com", "http": {"paths": [{"path": "/testpath", "pathType": "Prefix", "backend": {"service": {"name": "test", "port": {"number": 80}}}}]}}]}}], "services": [{"metadata": {"name": "test", "namespace": "default"}, "spec": {"ports": [{"port": 80, "targetPort": 9376}]}}], "endpoints": [{"metadata": {"name": "test", "namespace": "default"}, "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 9376}]}]}], "secrets": [], "host": "foo.bar.com", "path": "/testpath/x"}' | seed ingress_table docs-minimal
printf '%s' '{"domain": "cluster.local", "services": [{"metadata": {"name": "my-service", "namespace": "default"}, "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}}, {"metadata": {"name": "headless", "namespace": "default"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}], "endpoints": [{"metadata": {"name": "headless", "namespace": "default"}, "subsets": [{"addresses": [{"ip": "10.244.1.5", "hostname": "web-0"}], "ports": [{"port": 80}]}]}], "pods": [{"metadata": {"name": "web-0", "namespace": "default"}, "spec": {"hostname": "web-0", "subdomain": "headless", "containers": [{"name": "c"}]}, "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]}}]}' | seed dns_zone docs-services
# DNS: the queries dig sends for the names of Kubernetes' DNS
# documentation (A, AAAA, SRV, PTR, ANY, with and without EDNS, cookies,
# DNSSEC OK), captured off a socket.
python3 bench/dns_queries.py "$corpus/dns_query"
# API requests as kubectl makes them (the paths and queries of its -v=8
# log for get, get -w, get -l, scale, patch, delete, logs, exec), from
# each caller: WHO, the request line, the content type, a blank line, the body.
i=0
while IFS= read -r request; do
  i=$((i + 1)); printf '%b' "$request" | seed api_request "k$i"
done <<'REQUESTS'
admin\nGET /api\n\n
viewer\nGET /apis/apps/v1\n\n
admin\nGET /api/v1/namespaces/default/pods?limit=500\n\n
viewer\nGET /api/v1/namespaces/default/pods?labelSelector=app%3Dweb%2Ctier+notin+%28db%29&limit=500\n\n
viewer\nGET /api/v1/pods?fieldSelector=spec.nodeName%3Dnode-1%2Cstatus.phase%21%3DFailed\n\n
admin\nGET /api/v1/namespaces/default/pods?resourceVersion=1&watch=true&allowWatchBookmarks=true&timeoutSeconds=300\n\n
viewer\nGET /api/v1/namespaces/default/secrets/db\n\n
viewer\nGET /api/v1/secrets?includeObject=Object\napplication/json;as=Table;v=v1;g=meta.k8s.io\n\n
admin\nGET /apis/apps/v1/namespaces/default/deployments/web\n\n
admin\nPATCH /apis/apps/v1/namespaces/default/deployments/web/scale\napplication/merge-patch+json\n\n{"spec":{"replicas":3}}
admin\nPATCH /apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl-patch\napplication/strategic-merge-patch+json\n\n{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}
admin\nDELETE /api/v1/namespaces/default/pods/web-1\napplication/json\n\n{"propagationPolicy":"Background"}
node\nPUT /api/v1/namespaces/default/pods/web-1/status\napplication/json\n\n{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-1","namespace":"default"},"status":{"phase":"Running"}}
node\nPUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1\napplication/json\n\n{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"node-1","namespace":"kube-node-lease"},"spec":{"holderIdentity":"node-1","leaseDurationSeconds":40}}
admin\nGET /api/v1/namespaces/default/pods/web-1/log?container=web&follow=true&tailLines=10\n\n
admin\nPOST /api/v1/namespaces/default/pods/web-1/exec?command=sh&command=-c&command=date&container=web&stdout=true\n\n
wrong-token\nGET /api/v1/namespaces/default/configmaps/settings\n\n
\nGET /version\n\n
REQUESTS
# Images: OCI layouts (as tars) whose layers Python's tarfile made, some
# climbing out of the store (tests/support/hostile_image.py); small, so
# libFuzzer's input bound (the largest seed) keeps each import small.
for kind in traversal absolute symlink hardlink devices; do
  python3 tests/support/hostile_image.py "$kind" "$gen/$kind" /tmp/driftless-fuzz-escape
  tar -C "$gen/$kind" -cf - . | seed image_import "$kind.tar"
done

# The fuzz workspace builds under the main target folder (already ignored).
fuzz=(--fuzz-dir fuzz --target-dir target/fuzz)
cargo +nightly fuzz build "${fuzz[@]}" -O
total=0; failed=0
echo "== $(nproc) cores, $(uname -r); ${secs} s a target"
for t in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
  log=$(mktemp)
  mkdir -p "$corpus/$t" # a target without seeds starts from nothing
  status=0
  cargo +nightly fuzz run "${fuzz[@]}" -O "$t" "$corpus/$t" -- \
    -max_total_time="$secs" -timeout=1 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -1)
  peak=$(awk '/stat::peak_rss_mb/ {print $2}' "$log" | tail -1)
  total=$((total + ${execs:-0}))
  if [ "$status" = 0 ]; then
    echo "$t: ${execs:-0} executions, peak ${peak:-?} MB, no finding"
  else
    failed=$((failed + 1))
    echo "$t: FINDING after ${execs:-?} executions (exit $status):"
    grep -E "ERROR|panicked|Test unit written|SUMMARY" "$log" | head -8
  fi
  rm -f "$log"
done
echo "== total: $total executions, $failed target(s) with a finding"
[ "$failed" = 0 ]
