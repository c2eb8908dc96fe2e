# kdnsd — see README.md. Every target works on a fresh machine after
# `make testenv` (which `make test` and `make run` call themselves).

GO        ?= go
BIN       := bin/kdnsd
IMAGE     ?= kdnsd:dev
# Where the real kube-apiserver of the tests is built (outside git).
export KDNSD_TESTENV_DIR ?= $(HOME)/.cache/kdnsd-testenv

.PHONY: build run test bench chaos chaos-short chaos-node e2e image lint testenv clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/kdnsd

# A local 3-replica cluster on loopback, fed by a real API server with sample
# services. Ctrl-C stops everything.
# Names outside the cluster go to $(UPSTREAM) (none by default).
UPSTREAM ?= 127.0.0.1:1
run: testenv build
	$(GO) run ./test/devcluster -kdnsd $(BIN) -upstream $(UPSTREAM)

# Unit, API-server and multi-process cluster tests. One API server per package.
# The packages whose behaviour differs in a build that also knows the command
# format after the newest real one (upgrade tests) run once more in such a build.
test: testenv
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -tags kdnsd_formatnext ./fsm ./raftnode ./membership

# Go benchmarks, then test/dnsbench at each of BENCH_SERVICES services:
# kdnsd and CoreDNS (with and without cache) fed by a real API server, NSD
# and a minimal miekg/dns server on the same records, in one run each
# (installs dnsperf and nsd if missing; the first run builds CoreDNS into
# ~/.cache/kdnsd-bench, 10–15 minutes on 2 cores). Writes bench-<n>.png.
# BENCH_SERVICES=100000 runs in ~8 minutes: a set of more than 20k ClusterIP
# services is written into the API server's etcd, not created through it
# (dnsbench -load; kube-apiserver's ClusterIP allocation slows with every one).
BENCH_SERVICES ?= 1000 10000
bench: testenv build
	@command -v dnsperf >/dev/null && command -v nsd >/dev/null || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y dnsperf nsd)
	test/dnsbench/build-coredns.sh
	$(GO) test -run '^$$' -bench . -benchmem ./fsm ./resolver
	for n in $(BENCH_SERVICES); do \
		$(GO) run ./test/dnsbench -kdnsd $(BIN) -coredns "$$(test/dnsbench/build-coredns.sh)" \
			-services $$n -chart bench-$$n.png || exit 1; \
	done

# The failover and restart tests of test/cluster, then the chaos suite
# (test/chaos; root: it runs in a private network namespace it makes):
# every scenario on CHAOS_VOTERS voters, checked from the recorded history.
# Writes the report of that voter count (CHAOS.md for 3, CHAOS-5.md for 5),
# and chaos.json + one PNG timeline per scenario in
# test/chaos/report/<voters>-voters; a property that fails fails the target.
# chaos-short is CI's: the five most telling scenarios on 3 voters, shorter
# faults, written to CHAOS-short.md and test/chaos/report/short (not kept in
# git, so a CI run leaves the committed full reports alone).
CHAOS_VOTERS ?= 3
chaos_args = -chaos -chaos.kdnsd $(CURDIR)/$(BIN) -chaos.voters $(1) \
	-chaos.md $(CURDIR)/$(2) -chaos.assets $(CURDIR)/test/chaos/report/$(3)
chaos: testenv build
	$(GO) test -count=1 -timeout 20m -run 'Failover|Restart' -v ./test/cluster
	$(GO) test -count=1 -timeout 60m -run TestChaos -v ./test/chaos -args $(call chaos_args,$(CHAOS_VOTERS),$(if $(filter 3,$(CHAOS_VOTERS)),CHAOS.md,CHAOS-$(CHAOS_VOTERS).md),$(CHAOS_VOTERS)-voters) -chaos.profile full

chaos-short: testenv build
	$(GO) test -count=1 -timeout 30m -run TestChaos -v ./test/chaos -args $(call chaos_args,3,CHAOS-short.md,short) -chaos.profile short

# kdnsd as the cluster DNS of a real single-node Kubernetes in a private
# network namespace (root; test/e2e/run.sh). The first run builds the node's
# components (~5 minutes of CPU on 2 cores, cached in ~/.cache/kdnsd-e2e).
# Figures go to test/e2e/figures.md.
e2e:
	bash test/e2e/run.sh

# The chaos suite on that node: the replicas are the pods of deploy/statefulset
# on a real kubelet (kill -9 and SIGSTOP of a pod's kdnsd process, iptables in
# the pod's network namespace, the node's kube-apiserver stopped). Writes
# CHAOS-node.md (CHAOS-node-full.md for CHAOS_NODE_PROFILE=full) and chaos.json
# + one PNG timeline per scenario in test/chaos/report/node(-full).
CHAOS_NODE_PROFILE ?= short
chaos_node_suffix = $(if $(filter full,$(CHAOS_NODE_PROFILE)),-full)
chaos-node:
	KDNSD_E2E_SUITE=./test/chaos bash test/e2e/run.sh -test.run TestChaos -chaos -chaos.node -chaos.voters 3 \
		-chaos.profile $(CHAOS_NODE_PROFILE) -chaos.md $(CURDIR)/CHAOS-node$(chaos_node_suffix).md \
		-chaos.assets $(CURDIR)/test/chaos/report/node$(chaos_node_suffix)

image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o deploy/statefulset/kdnsd ./cmd/kdnsd
	docker build -t $(IMAGE) -f deploy/statefulset/Dockerfile deploy/statefulset
	rm -f deploy/statefulset/kdnsd

lint:
	$(GO) build ./...
	$(GO) vet ./...
	$(GO) vet -tags kdnsd_formatnext ./fsm ./raftnode ./membership ./cmd/kdnsd
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Builds kube-apiserver from the pinned k8s.io/kubernetes (first time: ~5
# minutes on 2 cores) and installs etcd if missing.
testenv:
	bash test/testenv/build.sh

clean:
	rm -rf bin
