#!/usr/bin/env bash
# A real single-node Kubernetes inside the private network namespace kdnsd-e2e,
# for `make e2e`:
#
#   etcd (Debian) + kube-apiserver + kube-controller-manager + kube-scheduler
#   + kubelet + kube-proxy (iptables), all built by build.sh, + a private
#   containerd with runc and the CNI bridge plugin (Debian).
#
# The namespace's only interfaces are lo, a bridge with no port (k8s0, the node
# IP 10.200.0.1 and the default route: a packet sent there reaches nothing) and
# the pods' bridge cni0 (10.244.0.0/24). Services are 10.96.0.0/16. No packet
# leaves the namespace. The daemons keep the host's mount namespace so that
# kubelet's volume mounts are the ones containerd and runc see.
#
# Pods' resolv.conf: kubelet's clusterDNS is 10.96.0.10, the kube-dns ClusterIP
# of deploy/statefulset; pods with dnsPolicy: Default (kdnsd itself) get
# $STATE/upstream-resolv.conf, whose nameserver, 10.200.0.1:53, is the test's
# own upstream DNS server.
#
# Usage (as root):
#   node.sh up                 tear down leftovers, then bring the node up
#   node.sh down               tear everything down (also what a crashed run left)
#   node.sh import IMAGE...    docker save IMAGE... | import into the node's containerd
#   node.sh apiserver stop|start
#   node.sh kubectl ARGS...    kubectl against the node, inside the namespace
#
# State lives in $KDNSD_E2E_STATE (default /var/lib/kdnsd-e2e); the binaries
# come from the directory build.sh recorded in $KDNSD_E2E_DIR/current.
set -euo pipefail

NETNS=kdnsd-e2e
NODE=kdnsd-e2e
NODE_IP=10.200.0.1
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS=10.96.0.10
# kubelet puts every pod's cgroup under this root, so teardown finds them all.
CGROUP_ROOT=kdnsd-e2e
# Local volumes the PersistentVolumeClaims bind to: 3 replicas, 2 more while
# scaled to 5, and fresh ones for every claim a test deletes.
PERSISTENT_VOLUMES=12

STATE=${KDNSD_E2E_STATE:-/var/lib/kdnsd-e2e}
CACHE=${KDNSD_E2E_DIR:-${HOME:-/root}/.cache/kdnsd-e2e}
T0=$SECONDS

log() { printf 'node [%3ds] %s\n' $((SECONDS - T0)) "$*" >&2; }
die() { printf 'node: error: %s\n' "$*" >&2; exit 1; }
in_netns() { nsenter --net=/run/netns/$NETNS "$@"; }

bin_dir() {
	[[ -f $CACHE/current ]] || die "the Kubernetes binaries are not built: run bash test/e2e/build.sh"
	cat "$CACHE/current"
}

# preflight refuses to start where the node cannot run, saying why.
preflight() {
	[[ $(id -u) == 0 ]] || die "make e2e needs root (network namespaces, mounts, cgroups); run it as root"
	command -v ip >/dev/null && ip netns list >/dev/null 2>&1 ||
		die "network namespaces are unavailable here ('ip netns list' fails); make e2e cannot run"
	[[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || die "no cgroup filesystem at /sys/fs/cgroup"
	command -v docker >/dev/null && docker info >/dev/null 2>&1 || die "docker is needed to build the images (FROM scratch) and is not running"
	local b
	b=$(bin_dir)
	for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
		[[ -x $b/$c ]] || die "$b/$c missing: run bash test/e2e/build.sh"
	done
	for c in etcd containerd containerd-shim-runc-v2 runc iptables conntrack nsenter openssl; do
		command -v $c >/dev/null || die "$c missing: run bash test/e2e/build.sh (installs Debian's packages)"
	done
	[[ -x /usr/lib/cni/bridge ]] || die "CNI plugins missing: apt-get install containernetworking-plugins"
}

# daemon NAME CMD... starts CMD inside the namespace in its own session, its
# output in log/NAME.log and its PID in pid/NAME.
daemon() {
	local name=$1
	shift
	setsid nsenter --net=/run/netns/$NETNS "$@" </dev/null >>"$STATE/log/$name.log" 2>&1 &
	echo $! >"$STATE/pid/$name"
}

# stop NAME...: SIGTERM to each, then SIGKILL to those still there after 10 s.
stop() {
	local name p pids=()
	for name in "$@"; do
		[[ -f $STATE/pid/$name ]] || continue
		p=$(cat "$STATE/pid/$name")
		rm -f "$STATE/pid/$name"
		kill "$p" 2>/dev/null && pids+=("$p")
	done
	for _ in $(seq 40); do
		((${#pids[@]})) || break
		for i in "${!pids[@]}"; do kill -0 "${pids[$i]}" 2>/dev/null || unset "pids[$i]"; done
		sleep 0.25
	done
	((${#pids[@]} == 0)) || kill -9 "${pids[@]}" 2>/dev/null || true
	log "stopped $*"
}

# until_ok SECONDS WHAT CMD...: polls CMD every 0.25 s.
until_ok() {
	local secs=$1 what=$2
	shift 2
	for _ in $(seq $((secs * 4))); do
		"$@" >/dev/null 2>&1 && { log "$what"; return 0; }
		sleep 0.25
	done
	die "$what: not after ${secs}s (logs in $STATE/log)"
}

node_ready() {
	[[ $(kubectl_ get node $NODE -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

kubectl_() { in_netns "$(bin_dir)/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

start_apiserver() {
	daemon kube-apiserver "$(bin_dir)/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
		--bind-address 0.0.0.0 --secure-port 6443 --advertise-address $NODE_IP \
		--tls-cert-file "$STATE/pki/apiserver.crt" --tls-private-key-file "$STATE/pki/apiserver.key" \
		--client-ca-file "$STATE/pki/ca.crt" --token-auth-file "$STATE/pki/tokens.csv" \
		--kubelet-client-certificate "$STATE/pki/apiserver-kubelet.crt" \
		--kubelet-client-key "$STATE/pki/apiserver-kubelet.key" \
		--kubelet-preferred-address-types InternalIP \
		--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
		--service-account-key-file "$STATE/pki/sa.pub" \
		--service-account-signing-key-file "$STATE/pki/sa.key" \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range $SERVICE_CIDR --cert-dir "$STATE/pki/apiserver"
	until_ok 90 "kube-apiserver ready" in_netns curl -sf --cacert "$STATE/pki/ca.crt" \
		-H "Authorization: Bearer $(admin_token)" https://127.0.0.1:6443/readyz
}

admin_token() { awk -F, '$2 == "admin" { print $1 }' "$STATE/pki/tokens.csv"; }

pki() {
	local d=$STATE/pki
	mkdir -p "$d"
	(
		cd "$d"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=kdnsd-e2e-ca 2>/dev/null
		leaf() { # leaf NAME SUBJECT [SAN]
			openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
			if [[ -n ${3:-} ]]; then echo "subjectAltName=$3" >"$1.ext"; else : >"$1.ext"; fi
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
				-extfile "$1.ext" -out "$1.crt" 2>/dev/null
		}
		leaf apiserver /CN=kube-apiserver "IP:10.96.0.1,IP:$NODE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
		# how the API server authenticates to kubelet (logs, exec)
		leaf apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client"
		leaf kubelet "/CN=$NODE" "IP:$NODE_IP,DNS:$NODE"
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		# Static tokens, random per run. The control-plane components are
		# cluster admins; kdnsd's pods get only their ServiceAccount's rights.
		printf '%s,admin,admin,system:masters\n' "$(openssl rand -hex 16)" >tokens.csv
		printf '%s,system:node:%s,kubelet,"system:nodes,system:masters"\n' "$(openssl rand -hex 16)" "$NODE" >>tokens.csv
		chmod 0600 ./*.key tokens.csv
	)
	local user token
	for user in admin kubelet; do
		token=$(awk -F, -v u="$user" '$3 == u { print $1 }' "$d/tokens.csv")
		cat >"$STATE/$user.kubeconfig" <<-EOF
			apiVersion: v1
			kind: Config
			clusters: [{name: e2e, cluster: {server: "https://127.0.0.1:6443", certificate-authority: "$d/ca.crt"}}]
			users: [{name: $user, user: {token: "$token"}}]
			contexts: [{name: e2e, context: {cluster: e2e, user: $user}}]
			current-context: e2e
		EOF
		chmod 0600 "$STATE/$user.kubeconfig"
	done
}

network() {
	ip netns add $NETNS
	ip -n $NETNS link set lo up
	# This kernel has no dummy link type: a bridge without ports holds the node IP.
	ip -n $NETNS link add k8s0 type bridge
	ip -n $NETNS addr add $NODE_IP/24 dev k8s0
	ip -n $NETNS link set k8s0 up
	ip -n $NETNS route add default dev k8s0
	# The pods' bridge, made here (the CNI bridge plugin uses it as it finds it)
	# to give it a fixed MAC address: otherwise a bridge takes the lowest MAC of
	# its ports, which changes when a pod's veth goes, and every pod's ARP entry
	# for its gateway is stale for a moment: all ClusterIP traffic is lost then.
	ip -n $NETNS link add cni0 type bridge
	ip -n $NETNS link set cni0 address 02:00:0a:f4:00:01
	ip -n $NETNS link set cni0 up
	in_netns sysctl -qw net.ipv4.ip_forward=1
	in_netns sysctl -qw net.bridge.bridge-nf-call-iptables=1
}

containerd_() {
	mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam"
	cat >"$STATE/cni/net.d/10-e2e.conflist" <<-EOF
		{"cniVersion": "0.4.0", "name": "kdnsd-e2e", "plugins": [
		  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
		   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
		            "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
		  {"type": "portmap", "capabilities": {"portMappings": true}}]}
	EOF
	cat >"$STATE/containerd.toml" <<-EOF
		version = 2
		root = "$STATE/containerd/root"
		state = "$STATE/containerd/state"
		disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
		  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
		[grpc]
		  address = "$STATE/containerd.sock"
		[ttrpc]
		  address = "$STATE/containerd.sock.ttrpc"
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$STATE/containerd/opt"
		[plugins."io.containerd.grpc.v1.cri"]
		  sandbox_image = "kdnsd-e2e/pause:e2e"
		  enable_selinux = false
		  netns_mounts_under_state_dir = true
		  # Sandboxes here lack CAP_SYS_RESOURCE: runc cannot lower oom_score_adj
		  # to kubelet's -998 and every sandbox would fail to start.
		  restrict_oom_score_adj = true
		  [plugins."io.containerd.grpc.v1.cri".containerd]
		    snapshotter = "native"
		    default_runtime_name = "runc"
		    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
		      runtime_type = "io.containerd.runc.v2"
		      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
		        SystemdCgroup = false
		        Root = "$STATE/containerd/runc"
		  [plugins."io.containerd.grpc.v1.cri".cni]
		    bin_dir = "/usr/lib/cni"
		    conf_dir = "$STATE/cni/net.d"
		    max_conf_num = 1
	EOF
	daemon containerd containerd --config "$STATE/containerd.toml"
	until_ok 30 "containerd ready" ctr --address "$STATE/containerd.sock" version
}

import_images() {
	docker save "$@" | ctr --address "$STATE/containerd.sock" -n k8s.io images import --snapshotter native - >/dev/null
	log "imported $*"
}

kubelet_() {
	local c
	# kubelet's cgroupRoot must exist in every hierarchy (cgroup v1).
	for c in /sys/fs/cgroup/*/; do
		[[ -f $c/cgroup.procs && ! -L ${c%/} ]] && mkdir -p "$c$CGROUP_ROOT"
	done
	echo "nameserver $NODE_IP" >"$STATE/upstream-resolv.conf"
	cat >"$STATE/kubelet.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		# this machine kind has cgroup v1 and no systemd
		failCgroupV1: false
		cgroupDriver: cgroupfs
		cgroupRoot: /$CGROUP_ROOT
		containerRuntimeEndpoint: unix://$STATE/containerd.sock
		address: $NODE_IP
		readOnlyPort: 0
		healthzBindAddress: 127.0.0.1
		tlsCertFile: $STATE/pki/kubelet.crt
		tlsPrivateKeyFile: $STATE/pki/kubelet.key
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: true}
		  x509: {clientCAFile: $STATE/pki/ca.crt}
		authorization: {mode: Webhook}
		clusterDomain: cluster.local
		clusterDNS: [$CLUSTER_DNS]
		resolvConf: $STATE/upstream-resolv.conf
		podLogsDir: $STATE/pod-logs
		volumePluginDir: $STATE/kubelet-plugins
		failSwapOn: false
		maxPods: 40
		evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
		imageGCHighThresholdPercent: 100
	EOF
	daemon kubelet "$(bin_dir)/kubelet" --config "$STATE/kubelet.yaml" \
		--kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
		--hostname-override $NODE --node-ip $NODE_IP --v=1
}

kube_proxy() {
	cat >"$STATE/kube-proxy.yaml" <<-EOF
		apiVersion: kubeproxy.config.k8s.io/v1alpha1
		kind: KubeProxyConfiguration
		mode: iptables
		hostnameOverride: $NODE
		clusterCIDR: $CLUSTER_CIDR
		clientConnection: {kubeconfig: $STATE/admin.kubeconfig}
		metricsBindAddress: 127.0.0.1:10249
		healthzBindAddress: 127.0.0.1:10256
		conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
	EOF
	daemon kube-proxy "$(bin_dir)/kube-proxy" --config "$STATE/kube-proxy.yaml"
}

# storage gives the cluster a default StorageClass of local volumes, made
# beforehand as an administrator does for local disks. (kube-controller-manager's
# hostPath provisioner would not do: its directories are root's, mode 0750, and
# a hostPath volume gets no fsGroup, so kdnsd, not root, could not write them;
# local volumes are handed to the pod's fsGroup.)
storage() {
	local i manifest=$STATE/storage.yaml
	cat >"$manifest" <<-EOF
		apiVersion: storage.k8s.io/v1
		kind: StorageClass
		metadata:
		  name: local
		  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
		provisioner: kubernetes.io/no-provisioner
		volumeBindingMode: WaitForFirstConsumer
	EOF
	for i in $(seq -w 1 $PERSISTENT_VOLUMES); do
		mkdir -p "$STATE/volumes/pv$i"
		cat >>"$manifest" <<-EOF
			---
			apiVersion: v1
			kind: PersistentVolume
			metadata: {name: local-pv$i}
			spec:
			  capacity: {storage: 1Gi}
			  accessModes: [ReadWriteOnce]
			  persistentVolumeReclaimPolicy: Retain
			  storageClassName: local
			  local: {path: $STATE/volumes/pv$i}
			  nodeAffinity:
			    required:
			      nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [$NODE]}]}]
		EOF
	done
	kubectl_ apply -f "$manifest" >/dev/null
	log "$PERSISTENT_VOLUMES local persistent volumes"
}

up() {
	preflight
	down
	local b
	b=$(bin_dir)
	mkdir -p "$STATE"/{log,pid,pod-logs,kubelet,kubelet-plugins}
	for s in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
		kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
		echo "$s=$(sysctl -n $s)"
	done >"$STATE/sysctl.saved" # kubelet changes these; down restores them
	network
	pki
	log "network namespace $NETNS and certificates ready"

	daemon etcd etcd --name e2e --data-dir "$STATE/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster e2e=http://127.0.0.1:2380
	start_apiserver
	daemon kube-controller-manager "$b/kube-controller-manager" --kubeconfig "$STATE/admin.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
		--allocate-node-cidrs --cluster-cidr $CLUSTER_CIDR --node-cidr-mask-size 24 \
		--service-cluster-ip-range $SERVICE_CIDR --root-ca-file "$STATE/pki/ca.crt" \
		--service-account-private-key-file "$STATE/pki/sa.key"
	daemon kube-scheduler "$b/kube-scheduler" --kubeconfig "$STATE/admin.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false
	containerd_
	import_images kdnsd-e2e/pause:e2e
	kubelet_
	kube_proxy
	storage
	until_ok 120 "node $NODE Ready" node_ready
	until_ok 60 "default ServiceAccount" kubectl_ get serviceaccount default -n default
	log "node up"
}

# down is best effort: every step runs whatever an earlier one left.
down() (
	set +e
	local c p

	stop kube-proxy kubelet kube-scheduler kube-controller-manager kube-apiserver
	stop etcd

	# containers: through our containerd, then whatever is left in our cgroups
	if [[ -S $STATE/containerd.sock ]]; then
		c="ctr --address $STATE/containerd.sock -n k8s.io"
		for t in $($c tasks ls -q 2>/dev/null); do $c tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
	fi
	stop containerd
	# shims of our containerd carry its socket path on their command line
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- "-address $STATE/containerd.sock"; then
			kill -9 "${p#/proc/}" 2>/dev/null
		fi
	done
	for c in /sys/fs/cgroup/*/$CGROUP_ROOT; do
		[[ -d $c ]] || continue
		find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
	done
	for c in /sys/fs/cgroup/*/$CGROUP_ROOT; do
		[[ -d $c ]] || continue
		for _ in $(seq 20); do
			find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
			[[ -d $c ]] || break
			sleep 0.1
		done
	done

	# kubelet's and containerd's mounts, deepest first, then the namespace
	grep -o " $STATE/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	if [[ -e /run/netns/$NETNS ]]; then
		ip netns del $NETNS && log "deleted network namespace $NETNS"
	fi

	if [[ -f $STATE/sysctl.saved ]]; then
		while IFS== read -r k v; do sysctl -qw "$k=$v"; done <"$STATE/sysctl.saved"
	fi
	rm -rf "$STATE"
)

case ${1:-} in
up) up ;;
down)
	[[ $(id -u) == 0 ]] || die "run as root"
	down
	log "node down"
	;;
import)
	shift
	import_images "$@"
	;;
apiserver)
	case ${2:-} in
	stop) stop kube-apiserver ;;
	start) start_apiserver ;;
	*) die "usage: node.sh apiserver stop|start" ;;
	esac
	;;
kubectl)
	shift
	kubectl_ "$@"
	;;
*) die "usage: node.sh up|down|import IMAGE...|apiserver stop|start|kubectl ARGS..." ;;
esac
