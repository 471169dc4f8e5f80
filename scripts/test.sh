#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: unit tests next to the
# code, property tests of the loader, and the end-to-end tests that drive the
# built binary against real git repositories.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# The busybox image tests and the demo run (reproducible, built locally).
./scripts/build-images.sh >/dev/null
cargo test --workspace --locked
