#!/usr/bin/env bash
# Idle CPU of a 3-replica kdnsd cluster on loopback whose API server is
# unreachable: utime+stime of each replica over 30 s, after 15 s to elect
# and bootstrap (BENCHMARKS.md). Usage: idle-cpu.sh KDNSD_BINARY PORT_BASE
set -u
bin=$1; b=$2; dir=$(mktemp -d)
cat >"$dir/kc.yaml" <<'KC'
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
KC
peers="r0=127.0.0.1:$((b+0)),r1=127.0.0.1:$((b+1)),r2=127.0.0.1:$((b+2))"
ps="r0=127.0.0.1:$((b+10)),r1=127.0.0.1:$((b+11)),r2=127.0.0.1:$((b+12))"
pids=()
for i in 0 1 2; do
  $bin serve --id r$i --raft-addr 127.0.0.1:$((b+i)) --dns-addr 127.0.0.1:$((b+20+i)) --http-addr 127.0.0.1:$((b+10+i)) \
    --data-dir $dir/r$i --kubeconfig $dir/kc.yaml --peers $peers --peer-status $ps --upstream 127.0.0.1:1 --lameduck 0s >$dir/r$i.log 2>&1 &
  pids+=($!)
done
sleep 15 # let the election and bootstrap settle
# clock ticks (100 a second): ticks/30 s is the percentage of one core
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
declare -A t0; for p in ${pids[@]}; do t0[$p]=$(ticks $p); done
sleep 30 # the measured idle window
for i in 0 1 2; do p=${pids[$i]}; echo "r$i cpu% $(echo "scale=2; ($(ticks $p)-${t0[$p]})/30" | bc)"; done
kill ${pids[@]}; wait; rm -rf $dir
