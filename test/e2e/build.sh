#!/usr/bin/env bash
# Builds and installs what `make e2e` needs to run a real Kubernetes node:
#
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
#       built from the pinned module test/e2e/tools into a cache outside git,
#       ${KDNSD_E2E_DIR:-$HOME/.cache/kdnsd-e2e}/<version>-<hash>/, where <hash>
#       covers the tools module's go.mod, go.sum, main.go files and the build
#       flags: they are rebuilt only when those change. The Go build cache is
#       shared with test/testenv, so kube-apiserver's packages compile once.
#   etcd, containerd, runc, CNI plugins, iptables, conntrack
#       Debian packages (etcd-server containerd runc containernetworking-plugins
#       iptables conntrack), installed with apt-get when missing and root.
#
# The binaries' directory is written to $KDNSD_E2E_DIR/current (where the Go
# package test/e2e looks) and printed as the last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/tools"
cache="${KDNSD_E2E_DIR:-${HOME:?HOME or KDNSD_E2E_DIR must be set}/.cache/kdnsd-e2e}"
components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf 'e2e build: %s\n' "$*" >&2; }
die() { printf 'e2e build: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------
declare -A package_of=(
	[etcd]=etcd-server [containerd]=containerd [runc]=runc
	[iptables]=iptables [conntrack]=conntrack
)
missing=()
for cmd in "${!package_of[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
if ((${#missing[@]})); then
	if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing Debian's ${missing[*]}"
		apt-get update </dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
	else
		die "missing ${missing[*]}; install them (Debian: apt-get install ${missing[*]}) as root"
	fi
fi

# --- Kubernetes components ---------------------------------------------------
command -v go >/dev/null 2>&1 || die "go not found on PATH"
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$tools/go.mod")"
[[ "$version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+ ]] || die "cannot read the k8s.io/kubernetes version from $tools/go.mod"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=${BASH_REMATCH[1]} -X k8s.io/component-base/version.gitMinor=${BASH_REMATCH[2]}"
recipe="CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags '$ldflags' ${components[*]}"

hash="$(
	{
		printf '%s\n' "$recipe"
		cat "$tools/go.mod" "$tools/go.sum"
		for c in "${components[@]}"; do cat "$tools/$c/main.go"; done
	} | sha256sum | cut -c1-16
)"
out="$cache/$version-$hash"

built=true
for c in "${components[@]}"; do [[ -x "$out/$c" ]] || built=false; done
if $built; then
	log "up to date: $out"
else
	log "building ${components[*]} $version: the first build takes 5 to 10 minutes on 2 cores…"
	mkdir -p "$cache"
	tmp="$(mktemp -d "$cache/.build.XXXXXX")"
	trap 'rm -rf "$tmp"' EXIT
	start=$SECONDS
	(
		cd "$tools"
		GOWORK=off CGO_ENABLED=0 nice -n "${KDNSD_E2E_NICE:-10}" \
			go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$tmp/" "${components[@]/#/./}"
	)
	for c in "${components[@]}"; do
		if [[ $c == kubectl ]]; then set -- version --client; else set -- --version; fi
		"$tmp/$c" "$@" >/dev/null || die "the built $c does not run"
	done
	rm -rf "$out"
	mv "$tmp" "$out"
	trap - EXIT
	log "built $out in $((SECONDS - start))s"
fi

printf '%s\n' "$out" >"$cache/current.tmp.$$"
mv -f "$cache/current.tmp.$$" "$cache/current"
echo "$out"
