#!/usr/bin/env bash
# Builds the images Driftless ships for its examples and tests as OCI image
# layouts under target/images/, and prints the path of each. Today that is
# busybox:1.35, made by images/busybox/build.py from Debian's busybox-static.
# Safe to run again: it installs busybox-static only when /bin/busybox is
# missing and rebuilds a layout only when its index.json is missing or broken.
set -euo pipefail
cd "$(dirname "$0")/.."

out="target/images/busybox-1.35"

# A layout is valid when index.json parses and every blob it names (the
# manifests, and their configs and layers) is present with its size.
valid_layout() {
  python3 - "$1" <<'PY' 2>/dev/null
import json, os, sys
root = sys.argv[1]
def blob(desc):
    alg, hex_ = desc["digest"].split(":", 1)
    path = os.path.join(root, "blobs", alg, hex_)
    if os.path.getsize(path) != desc["size"]:
        raise SystemExit(1)
    return path
index = json.load(open(os.path.join(root, "index.json")))
if not index["manifests"]:
    raise SystemExit(1)
for desc in index["manifests"]:
    manifest = json.load(open(blob(desc)))
    blob(manifest["config"])
    for layer in manifest["layers"]:
        blob(layer)
PY
}

if [ ! -x /bin/busybox ]; then
  echo "build-images: installing busybox-static" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq busybox-static >/dev/null
fi

if ! valid_layout "$out"; then
  python3 images/busybox/build.py "$out"
fi
echo "$PWD/$out"
