#!/usr/bin/env bash
# Builds what test/testenv needs to run a real Kubernetes API server:
#
#   kube-apiserver  built from the pinned module test/testenv/tools into a cache
#                   outside git, ${KDNSD_TESTENV_DIR:-$HOME/.cache/kdnsd-testenv}/<stamp>/,
#                   where <stamp> hashes the tools module's go.mod, go.sum and
#                   main.go plus the build flags: it is rebuilt only when those change.
#   etcd, dig       Debian's etcd-server and bind9-dnsutils packages; installed
#                   with apt-get when missing and running as root.
#
# The built binary's path is written to $KDNSD_TESTENV_DIR/current (that is
# where the Go package test/testenv looks) and printed as the last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"
repo="$(cd "$here/../.." && pwd)"

if [[ -n "${KDNSD_TESTENV_DIR:-}" ]]; then
	cache="$KDNSD_TESTENV_DIR"
elif [[ -n "${HOME:-}" ]]; then
	cache="$HOME/.cache/kdnsd-testenv"
else
	cache="$repo/.cache/kdnsd-testenv"
fi

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { printf 'testenv: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------
# etcd for the API server; dig, the real DNS client some tests query with.
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
if ((${#missing[@]})); then
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing Debian's ${missing[*]}"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
	else
		die "missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]}) or run this script as root"
	fi
fi
command -v etcd >/dev/null 2>&1 || die "etcd still not found on PATH after installing etcd-server"
command -v dig >/dev/null 2>&1 || die "dig still not found on PATH after installing bind9-dnsutils"
log "etcd: $(command -v etcd) ($(etcd --version 2>/dev/null | head -n1))"

# --- kube-apiserver ---------------------------------------------------------
command -v go >/dev/null 2>&1 || die "go not found on PATH"

version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$tools/go.mod")"
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+ ]] || die "cannot read the k8s.io/kubernetes version from $tools/go.mod"
major="${BASH_REMATCH[1]}"
minor="${BASH_REMATCH[2]}"

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
recipe="CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '$ldflags' ./kube-apiserver"

hash="$(
	{
		printf '%s\n' "$recipe"
		cat "$tools/go.mod" "$tools/go.sum" "$tools/kube-apiserver/main.go"
	} | sha256sum | cut -c1-16
)"
stamp="$version-$hash"
out="$cache/$stamp/kube-apiserver"

if [[ -x "$out" ]]; then
	log "up to date: $out"
else
	log "building kube-apiserver $version — first build takes ~8 minutes on 2 cores…"
	mkdir -p "$cache/$stamp"
	tmp="$(mktemp "$cache/$stamp/.kube-apiserver.XXXXXX")"
	trap 'rm -f "$tmp"' EXIT
	start=$SECONDS
	(
		cd "$tools"
		GOWORK=off CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp" ./kube-apiserver
	)
	chmod 0755 "$tmp"
	"$tmp" --version >/dev/null || die "the built kube-apiserver does not run"
	mv -f "$tmp" "$out"
	trap - EXIT
	log "built $out ($("$out" --version)) in $((SECONDS - start))s"
fi

current="$cache/current"
printf '%s\n' "$out" >"$current.tmp.$$"
mv -f "$current.tmp.$$" "$current"
echo "$out"
