#!/usr/bin/env bash
# Builds the CoreDNS that test/dnsbench compares kdnsd with, into a cache outside
# git: ${KDNSD_BENCH_DIR:-$HOME/.cache/kdnsd-bench}/coredns-<version>/coredns.
# It is built once per version (10–15 minutes on 2 cores) and reused after that;
# no CoreDNS code enters this repository. Prints the binary's path as the last line.
set -euo pipefail

version="${COREDNS_VERSION:-v1.15.0}"
cache="${KDNSD_BENCH_DIR:-${HOME:?}/.cache/kdnsd-bench}"
dir="$cache/coredns-$version"
out="$dir/coredns"

log() { printf 'build-coredns: %s\n' "$*" >&2; }

if [[ -x "$out" ]]; then
	log "up to date: $out"
	echo "$out"
	exit 0
fi

command -v go >/dev/null 2>&1 || { log "error: go not found on PATH"; exit 1; }
log "building CoreDNS $version into $dir (10–15 minutes on 2 cores)…"
mkdir -p "$dir"
tmp="$(mktemp -d "$dir/.gobin.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# Outside the repository (and with GOWORK off) so kdnsd's go.mod plays no part.
(cd "$tmp" && GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0 GOBIN="$tmp" nice -n 10 go install -trimpath "github.com/coredns/coredns@$version")
"$tmp/coredns" -version >/dev/null
mv -f "$tmp/coredns" "$out"
log "built $out in $((SECONDS - start))s"
echo "$out"
