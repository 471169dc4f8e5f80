#!/usr/bin/env bash
# Resource bombs (issue 20): each hostile revision committed to a git
# repository of its own and judged by `driftless validate --repo` (the
# daemon's load and validation path, release build): wall time and peak
# memory, side by side with PyPI's kubernetes-validate on the same files
# (bounded here by `timeout 60` and a 4 GiB address-space limit, so a
# reference that does not bound itself cannot take the machine).
#
# Usage: bench/bombs.sh   (installs kubernetes-validate as bench/validate.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/reference.sh

python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
def cm(name, extra=""):
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n{extra}"
def write(bomb, path, text):
    full = os.path.join(work, bomb, "apps", path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)
levels = ["  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
levels += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i-1}"] * 9) + "]" for i in range(1, 9)]
write("alias-bomb", "laughs.yaml", cm("laughs", "binaryData:\n" + "\n".join(levels) + "\n"))
line = "# " + "x" * 98 + "\n"
write("file-200mb", "huge.yaml", cm("huge") + line * 2_000_000)
for f in range(5):
    write("revision-70mb", f"f{f}.yaml", cm(f"big-{f}") + line * 140_000)
write("list-100k", "list.yaml", "apiVersion: v1\nkind: List\nitems:\n" + "".join(
    f"- {{apiVersion: v1, kind: ConfigMap, metadata: {{name: c{i}}}}}\n" for i in range(100_000)))
for f in range(100):
    write("objects-100k", f"f{f:03}.yaml", "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{f}-{i}}}\n" for i in range(1000)))
write("nested-10k", "deep.yaml", cm("deep", "x: " + "[" * 10_000 + "]" * 10_000 + "\n"))
write("key-twice", "twice.yaml", cm("twice", "  a: c\n"))
PY

echo "== machine: $(nproc) cores, $(uname -r); $("$bin" --version)"
for bomb in alias-bomb file-200mb revision-70mb list-100k objects-100k nested-10k key-twice; do
  repo="$work/$bomb"
  git -C "$repo" init -q -b main && git -C "$repo" add -A
  git -C "$repo" -c user.name=bench -c user.email=bench@localhost commit -qm "$bomb"
  /usr/bin/time -f "%e s, %M KiB" -o "$work/time" "$bin" validate --repo "$repo" --path apps >"$work/out" 2>&1 || true
  said=$(grep -m1 -E "error" "$work/out" | cut -c1-150 || true)
  echo "$bomb: driftless $(tail -1 "$work/time") -- ${said:-$(tail -1 "$work/out")}"
  (ulimit -v $((4 << 20)); /usr/bin/time -f "%e s, %M KiB" -o "$work/time" timeout 60 \
    "$venv/bin/kubernetes-validate" --strict --quiet -k 1.33.0 $(find "$repo/apps" -name '*.yaml' | sort | head -200) >"$work/out" 2>&1) || true
  said=$(grep -m1 -iE "error|exception|killed|memory" "$work/out" | cut -c1-120 || true)
  echo "$bomb: kubernetes-validate $(tail -1 "$work/time") -- ${said:-$(tail -1 "$work/out" | cut -c1-120)}"
done
