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

# The fuzz workspace builds under the main target folder (already ignored).
fuzz=(--fuzz-dir fuzz --target-dir target/fuzz)
cargo +nightly fuzz build "${fuzz[@]}" -O
total=0; failed=0
echo "== $(nproc) cores, $(uname -r); ${secs} s a target"
for t in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
  log=$(mktemp)
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
