#!/usr/bin/env bash
# `make e2e`: kdnsd as the cluster DNS of a real Kubernetes node.
#
#   1. build.sh: the Kubernetes binaries (cached) and Debian's packages
#   2. images, FROM scratch: kdnsd:dev (`make image`), the pod sandbox and the
#      DNS client (test/e2e/images)
#   3. node.sh up: the node in the network namespace kdnsd-e2e
#   4. the Go tests (build tag e2e), run inside that namespace; they install
#      deploy/statefulset with `kubectl apply -k` as an operator does
#   5. node.sh down, on every exit
#
# The tests are test/e2e's, or those of the package in $KDNSD_E2E_SUITE
# (`make chaos-node`: ./test/chaos, which runs its scenarios on the node's
# pods with -chaos.node). Extra arguments go to the test binary (e.g.
# -test.run 'TestKdnsd/rollout').
# Figures are written to $KDNSD_E2E_FIGURES (default test/e2e/figures.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
suite=${KDNSD_E2E_SUITE:-./test/e2e}
export KDNSD_E2E_STATE=${KDNSD_E2E_STATE:-/var/lib/kdnsd-e2e}
log() { printf 'e2e: %s\n' "$*" >&2; }
die() { printf 'e2e: error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "make e2e needs root (network namespaces, mounts, cgroups); run it as root"
probe=kdnsd-e2e-probe-$$
ip netns add $probe >/dev/null 2>&1 && ip netns del $probe ||
	die "network namespaces are unavailable here ('ip netns add' fails); make e2e cannot run"
docker info >/dev/null 2>&1 || die "docker is needed to build the FROM scratch images and is not running"

bash "$here/build.sh" >/dev/null

cd "$repo"
make --no-print-directory image >/dev/null
images=$(mktemp -d)
trap 'rm -rf "$images"; bash "$here/node.sh" down' EXIT
trap 'exit 130' INT TERM # runs the EXIT trap
for program in pause dnsclient; do
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$images/$program" "./test/e2e/images/$program"
	docker build -q -t "kdnsd-e2e/$program:e2e" --build-arg PROGRAM="$program" \
		-f test/e2e/images/Dockerfile "$images" >/dev/null
done
go test -c -tags e2e -o "$images/suite.test" "$suite"
CGO_ENABLED=0 go build -trimpath -o "$images/kdnsd" ./cmd/kdnsd # the operator's CLI (certs init)
log "images and test binary built"

bash "$here/node.sh" up
bash "$here/node.sh" import kdnsd:dev kdnsd-e2e/dnsclient:e2e

bin="$(cat "${KDNSD_E2E_DIR:-$HOME/.cache/kdnsd-e2e}/current")"
export KDNSD_E2E_KUBECTL="$bin/kubectl"
export KDNSD_E2E_KUBECONFIG="$KDNSD_E2E_STATE/admin.kubeconfig"
export KDNSD_E2E_NODE_SH="$here/node.sh"
export KDNSD_E2E_KDNSD="$images/kdnsd"
export KDNSD_E2E_FIGURES=${KDNSD_E2E_FIGURES:-$here/figures.md}
cd "$repo/$suite" # where go test would run the package's tests
nsenter --net=/run/netns/kdnsd-e2e "$images/suite.test" -test.v -test.count=1 -test.timeout 25m "$@"
