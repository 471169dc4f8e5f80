# Sourced by the benchmarks that measure `driftless validate` beside PyPI's
# kubernetes-validate (bench/validate.sh, bench/bombs.sh): installs the
# reference once in a venv under target/, builds the release binary, and
# makes a work folder removed on exit. Sets $venv, $bin and $work.
venv="$PWD/target/bench-venv"
[ -x "$venv/bin/kubernetes-validate" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q kubernetes-validate; }
cargo build --release --locked -q -p driftless
bin="$PWD/target/release/driftless"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
