#!/usr/bin/env bash
# Benchmark: `driftless validate` and `driftless plan` over a generated repo
# of 10,000 objects in 1,000 files, wall time and peak memory, side by side
# with PyPI's kubernetes-validate (strict mode) on the same files.
#
# Usage: bench/validate.sh [FILES]   (default 1000 files = 10,000 objects)
# Installs hyperfine (Debian) and kubernetes-validate (PyPI, in a venv under
# target/) if missing. Results go to stdout; copy them to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
files="${1:-1000}"

./scripts/setup.sh
command -v hyperfine >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }
. bench/reference.sh
repo="$work/repo"
python3 bench/gen_repo.py "$repo" "$files"
git_id=(-c user.name=bench -c user.email=bench@localhost)
git -C "$repo" init -q -b main
git -C "$repo" add -A && git -C "$repo" "${git_id[@]}" commit -qm "generated"
python3 bench/gen_repo.py "$repo" "$files" 1.36
git -C "$repo" "${git_id[@]}" commit -qam "roll every tenth app to busybox 1.36"

objects=$("$bin" validate "$repo/apps" | tail -1)
echo "== $objects"
echo "== machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"

echo "== peak memory (GNU time, max RSS)"
for cmd in "validate $repo/apps" "validate --repo $repo --path apps" "plan --repo $repo --from HEAD~1 --path apps -o json"; do
  /usr/bin/time -f "driftless $cmd: %e s, %M KiB" "$bin" $cmd >/dev/null 2>"$work/time" || true
  tail -1 "$work/time" | sed "s|$repo|REPO|g"
done
/usr/bin/time -f "kubernetes-validate --strict: %e s, %M KiB" \
  "$venv/bin/kubernetes-validate" --strict --quiet -k 1.33.0 "$repo"/apps/*.yaml >/dev/null 2>"$work/time" || true
tail -1 "$work/time"

echo "== wall time (hyperfine)"
hyperfine --style basic --warmup 1 --runs 10 -N \
  -n "driftless validate (folder)" "$bin validate $repo/apps" \
  -n "driftless validate (git HEAD)" "$bin validate --repo $repo --path apps" \
  -n "driftless plan HEAD~1..HEAD" "$bin plan --repo $repo --from HEAD~1 --path apps -o json" \
  --ignore-failure 2>&1 | sed "s|$repo|REPO|g"
hyperfine --style basic --warmup 0 --runs 3 -N --ignore-failure \
  -n "kubernetes-validate --strict" "$venv/bin/kubernetes-validate --strict --quiet -k 1.33.0 $(ls "$repo"/apps/*.yaml | tr '\n' ' ')" 2>&1 \
  | sed "s|$repo/apps/[^ ]*||g" | grep -v '^ *$' | head -8
