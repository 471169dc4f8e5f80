#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: the formatting, lint and
# warning gates, unit tests next to the code, property tests, and the
# end-to-end tests that drive the built binary against real git
# repositories, containers, sockets and DNS.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
# The busybox image tests and the demo run (reproducible, built locally).
./scripts/build-images.sh >/dev/null
# Gates: formatting, and clippy over every target with every warning
# (rustc's `missing_docs` and `unreachable_pub` included) an error.
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Unit, property and end-to-end tests. Examples (benchmark programs) are
# compile-checked by clippy above rather than built again here; the two
# crates whose docs carry code examples have them compiled as doctests.
cargo test --workspace --locked --lib --bins --tests
cargo test --locked --doc -p driftless-dns -p driftless-ingress
# The daemon's end-to-end tests again, unchanged, with the store on etcd
# (each test starts its own member on loopback ports).
DRIFTLESS_TEST_STORE=etcd cargo test --locked -p driftless --test daemon
# The fuzz targets keep building and run a few seconds each from their
# seeds (bench/fuzz.sh SECONDS is the real budget; docs/benchmarks.md).
# They need the nightly toolchain, which this kind of machine ships.
if rustup toolchain list | grep -q '^nightly'; then
  bench/fuzz.sh 5
else
  echo "test.sh: no nightly toolchain, so the fuzz smoke (bench/fuzz.sh 5) did not run" >&2
fi
