#!/usr/bin/env bash
# Sets everything up and shows Driftless on a demo repository: creates it
# from the template with `driftless init`, validates it, makes a change as a
# commit and plans it (as text and as a pull-request comment), then shows a
# bad commit being refused.
#
# Usage: scripts/demo.sh [DIR]   (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cargo build --release --locked -q -p driftless
bin="$PWD/target/release/driftless"

dir="${1:-$(mktemp -d)/demo}"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
git_id=(-c user.name="Driftless Demo" -c user.email=demo@localhost)

step driftless init "$dir"
"$bin" init "$dir"

step driftless validate "$dir/apps"
"$bin" validate "$dir/apps"

step "scale hello to 3 and move it to busybox 1.36, as a commit"
sed -i 's/replicas: 2/replicas: 3/; s/busybox:1.35/busybox:1.36/' "$dir/apps/hello/deployment.yaml"
git -C "$dir" "${git_id[@]}" commit -q -am "hello: 3 replicas on busybox 1.36"
git -C "$dir" log --oneline

step driftless plan --repo "$dir" --from HEAD~1 --to HEAD --path apps
"$bin" plan --repo "$dir" --from HEAD~1 --to HEAD --path apps

step driftless plan --repo "$dir" --from HEAD~1 --path apps -o markdown
"$bin" plan --repo "$dir" --from HEAD~1 --path apps -o markdown

step "a commit with a typo is refused whole (exit 1)"
sed -i 's/targetPort: http/targetPort: http\n      nodePort: 30080/' "$dir/apps/hello/service.yaml"
git -C "$dir" "${git_id[@]}" commit -q -am "hello: try a node port on a ClusterIP service"
"$bin" plan --repo "$dir" --from HEAD~1 --path apps && status=0 || status=$?
echo "exit status: $status"

printf '\nThe demo repository is in %s\n' "$dir"
