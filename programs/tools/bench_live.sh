#!/usr/bin/env bash
# Throughput on veth (docs/performance.md, "Live ports"): packets per second through the
# gateway of docs/tutorial.md §7 between two namespaces, driven by tcpreplay --topspeed from a
# third, counted where they arrive (the sink's veth RX counter), for Sluice with 1 and 2
# workers and for the kernel forwarding the same traffic with nftables DNAT in the same
# topology. Needs root, tcpreplay, nft, ethtool and a release build.
#
#   python3 programs/tools/gen_live.py --packets 1000000 --out /tmp/live.pcap
#   programs/tools/bench_live.sh /tmp/live.pcap [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
PCAP=${1:?usage: bench_live.sh CAPTURE [ROUNDS]}
ROUNDS=${2:-3}
SLUICE=${SLUICE:-./target/release/sluice}
P=slb$$
SW=""
cleanup() {
  [ -n "$SW" ] && kill "$SW" 2>/dev/null && wait "$SW" 2>/dev/null || true
  for n in gen gw sink; do ip netns del $P$n 2>/dev/null || true; done
}
trap cleanup EXIT
for n in gen gw sink; do ip netns add $P$n; ip -n $P$n link set lo up; done
ip link add c0 netns ${P}gen address 02:00:00:00:01:01 type veth peer name g0 netns ${P}gw address 02:00:00:00:01:02
# The sink's address is not the one the gateway sends to, so that its kernel drops what
# arrives at once (no ICMP back): the veth counts the packets all the same.
ip link add s0 netns ${P}sink address 02:00:00:00:02:09 type veth peer name g1 netns ${P}gw address 02:00:00:00:02:02
for x in gen:c0 gw:g0 gw:g1 sink:s0; do
  ns=$P${x%%:*}; i=${x##*:}
  ip netns exec $ns sysctl -qw net.ipv6.conf.$i.disable_ipv6=1
  ip netns exec $ns ethtool -K $i rx off tx off tso off gso off gro off >/dev/null
  ip -n $ns link set $i up
done

rx() { ip -n ${P}sink -s -j link show s0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])'; }

# CPU seconds (user + system) of a process so far.
cpu() { awk '{print ($14 + $15) / 100}' /proc/"$1"/stat 2>/dev/null || echo 0; }

# One replay: prints "delivered/s sent/s delivered switch-CPU%".
replay() {
  local before after t0 t1 out c0 c1
  c0=$(cpu "${SW:-0}")
  before=$(rx)
  t0=$(date +%s.%N)
  out=$(ip netns exec ${P}gen tcpreplay -i c0 --topspeed --preload-pcap "$PCAP" 2>&1)
  t1=$(date +%s.%N)
  sleep 0.2
  after=$(rx)
  c1=$(cpu "${SW:-0}")
  local sent
  sent=$(echo "$out" | sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p')
  # The time tcpreplay took to send (without loading the capture into memory).
  local took
  took=$(echo "$out" | sed -n 's/.*packets ([0-9]* bytes) sent in \([0-9.]*\) seconds.*/\1/p')
  python3 -c "import sys; d=$after-$before; t=float('${took:-0}') or ($t1-$t0); print(f'{d/t:.0f} {float(\"$sent\" or 0):.0f} {d} {100*($c1-$c0)/t:.0f}%')"
}

run_sluice() {
  local workers=$1; shift
  ip netns exec ${P}gw "$SLUICE" serve programs/router_dnat.sluice --entries programs/router_dnat.entries \
    --port 0=g0 --port 1=g1 --workers "$workers" --control /tmp/$P.sock "$@" >/tmp/$P.out 2>/tmp/$P.err &
  SW=$!
  for _ in $(seq 100); do [ -S /tmp/$P.sock ] && break; sleep 0.05; done
  sleep 0.3
  for r in $(seq "$ROUNDS"); do echo "sluice workers=$workers $* round $r: $(replay)"; done
  "$SLUICE" ctl --control /tmp/$P.sock stats | grep -E "^port|overruns|workers" || true
  kill -TERM "$SW"; wait "$SW" || true; SW=""
}

run_kernel() {
  ip -n ${P}gw addr add 198.51.100.1/24 dev g0
  ip -n ${P}gw addr add 10.0.0.254/24 dev g1
  ip netns exec ${P}gw sysctl -qw net.ipv4.ip_forward=1
  ip -n ${P}gw neigh add 10.0.0.1 lladdr 02:00:00:00:02:01 dev g1 nud permanent
  ip -n ${P}gw neigh add 10.0.0.2 lladdr 02:00:00:00:02:01 dev g1 nud permanent
  ip netns exec ${P}gw nft -f - <<'NFT'
table ip nat {
  chain prerouting {
    type nat hook prerouting priority dstnat;
    ip daddr 203.0.113.10 udp dport 8000-8099 dnat to 10.0.0.1
    ip daddr 203.0.113.10 udp dport 8100-8199 dnat to 10.0.0.2
  }
}
NFT
  for r in $(seq "$ROUNDS"); do echo "kernel nftables round $r: $(replay)"; done
}

echo "# delivered pps, tcpreplay's sent pps, packets delivered, the switch's CPU use ($(nproc) CPUs)"
run_sluice 1
run_sluice 2
run_sluice 1 --af-xdp
grep AF_XDP /tmp/$P.err || true
run_kernel
