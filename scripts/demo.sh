#!/usr/bin/env bash
# Sets everything up and runs Driftless on a demo repository: builds the
# binaries and the busybox image, creates a repository with `driftless
# init`, imports the image into the default store (/var/lib/driftless) and
# starts `driftless up` on it. Then it shows the loop a user lives in: the
# app running and answering, a change planned and committed, the rollout,
# the audit trail, a bad commit refused, and `git revert`.
#
# Usage (root): scripts/demo.sh [DIR]   (default: a new temporary folder)
#   DRIFTLESS_DATA_DIR   the store (default /var/lib/driftless)
#   DEMO_KEEP=1          leave the daemon running at the end (Ctrl-C stops it)
#   DEMO_LISTEN          the API's and dashboard's address (default 127.0.0.1:6443)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# A debug build: a release build takes about 15 minutes on two cores.
cargo build --locked -q -p driftless -p driftless-runtime
./scripts/build-images.sh >/dev/null
bin="$PWD/target/debug/driftless"
data="${DRIFTLESS_DATA_DIR:-/var/lib/driftless}"
export DRIFTLESS_DATA_DIR="$data"

dir="${1:-$(mktemp -d)/demo}"
log="$(dirname "$dir")/driftless-up.log"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
commit() { git -C "$dir" -c user.name="Driftless Demo" -c user.email=demo@localhost commit -q "$@"; }

step driftless init "$dir"
"$bin" init "$dir"
step driftless image import target/images/busybox-1.35 --name busybox
"$bin" image import target/images/busybox-1.35 --name busybox --data-dir "$data"

listen="${DEMO_LISTEN:-127.0.0.1:6443}"
step "driftless up --repo $dir --path apps --listen $listen   (in the background; log: $log)"
"$bin" up --repo "$dir" --path apps --data-dir "$data" --listen "$listen" >"$log" 2>&1 &
daemon=$!
stop() {
  kill -TERM "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  printf '\nThe daemon stopped; its pods keep running. Stop them with: %s reset --data-dir %s\n' "$bin" "$data"
}
trap stop EXIT
for _ in $(seq 100); do "$bin" status >/dev/null 2>&1 && break; sleep 0.1; done

step driftless rollout status deployment/hello
"$bin" rollout status deployment/hello --timeout 120s
step driftless get pods,svc -o wide
"$bin" get pods -o wide
"$bin" get svc
ip=$("$bin" get svc hello -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["clusterIP"])')
step "curl http://$ip/   (the Service's ClusterIP, from this host)"
curl -s --max-time 5 "http://$ip/"

step "scale hello to 3 as a commit; plan it first, as a pull request would"
sed -i 's/replicas: 2/replicas: 3/' "$dir/apps/hello/deployment.yaml"
git -C "$dir" add -A
commit -m "hello: 3 replicas"
"$bin" plan --repo "$dir" --from HEAD~1 --to HEAD --path apps
step driftless rollout status deployment/hello
"$bin" rollout status deployment/hello --timeout 120s
"$bin" get pods

step "driftless scale deployment/hello --replicas 2   (the verb is a commit by you; only that line changes)"
"$bin" scale deployment/hello --replicas 2 --author "Driftless Demo <demo@localhost>"
git -C "$dir" show --stat --format='%h %s%n  author %an, committer %cn%n%(trailers:only,unfold)' HEAD

step "a commit with a mistake is refused whole; the running pods are untouched"
sed -i 's/targetPort: http/targetPort: http\n      nodePort: 30080/' "$dir/apps/hello/service.yaml"
commit -am "hello: try a node port on a ClusterIP service"
"$bin" sync || true
"$bin" status

step "git revert HEAD   (the refused commit goes; the running revision is the revert)"
git -C "$dir" -c user.name="Driftless Demo" -c user.email=demo@localhost revert --no-edit HEAD >/dev/null
"$bin" sync
step driftless history
"$bin" history

printf '\nThe demo repository is %s; try: %s get all, %s logs <pod>, %s exec <pod> -- hostname\n' "$dir" "$bin" "$bin" "$bin"
printf 'The dashboard: https://%s/ui/ (CA %s/pki/ca.crt), signed in with the token %s\n' "$listen" "$data" "$(grep -v '^#' "$data/tokens.csv" | head -1 | cut -d, -f1)"
if [ "${DEMO_KEEP:-0}" = 1 ]; then
  printf 'The daemon keeps running (Ctrl-C stops it).\n'
  wait "$daemon" || true
fi
