#!/usr/bin/env bash
# demo.sh up|down|status: a small topology with vswitchd forwarding real
# traffic between network namespaces.
#
#   ns vsdemo-a: eth0 10.213.0.1 --veth-- vsd-a ┐
#   ns vsdemo-b: eth0 10.213.0.2 --veth-- vsd-b ├─ vswitchd (root ns, AF_XDP ports)
#   ns vsdemo-c: eth0 10.213.0.3 --veth-- vsd-c ┘
#
# Everything lives under /run/vswitch-demo; `down` removes it and stops only
# the vswitchd it started (by PID).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$PWD/bin}
DIR=/run/vswitch-demo
NS=(vsdemo-a vsdemo-b vsdemo-c)
PORTS=(vsd-a vsd-b vsd-c)
SOCK=$DIR/vswitchd.sock
ctl() { "$BIN/vswitchctl" --socket "$SOCK" "$@"; }

down() {
  if [[ -f $DIR/vswitchd.pid ]]; then
    pid=$(cat "$DIR/vswitchd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  for p in "${PORTS[@]}"; do ip link del "$p" 2>/dev/null || true; done
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$DIR"
}

up() {
  down
  mkdir -p "$DIR"
  for i in 0 1 2; do
    n=${NS[$i]} p=${PORTS[$i]}
    ip netns add "$n"
    ip link add "$p" type veth peer name eth0 netns "$n"
    ip -n "$n" addr add "10.213.0.$((i + 1))/24" dev eth0
    ip -n "$n" link set lo up
    ip -n "$n" link set eth0 up
    # The namespace side computes full checksums: with TX checksum offload a
    # veth hands XDP frames whose TCP/UDP checksum is only the pseudo-header
    # sum (CHECKSUM_PARTIAL), and the far end would drop them.
    ip netns exec "$n" ethtool -K eth0 tx off >/dev/null
    ip link set "$p" up
  done
  mac_c=$(ip -n vsdemo-c -br link show eth0 | awk '{print $3}')
  cat >"$DIR/vswitchd.yaml" <<YAML
api_socket: $SOCK
state_file: $DIR/state.json
workers: {count: 1, poll_mode: adaptive}
ports:
  - {name: a, interface: vsd-a}
  - {name: b, interface: vsd-b}
  - {name: c, interface: vsd-c}
peephole:
  bindings:
    - {ip: 10.213.0.3, mac: "$mac_c", port: c}
  dns:
    zones: [{name: demo.vs}]
    records:
      - {name: a.demo.vs, type: A, value: 10.213.0.1}
      - {name: b.demo.vs, type: A, value: 10.213.0.2}
      - {name: c.demo.vs, type: A, value: 10.213.0.3}
YAML
  nohup "$BIN/vswitchd" --config "$DIR/vswitchd.yaml" >"$DIR/vswitchd.log" 2>&1 &
  echo $! >"$DIR/vswitchd.pid"
  for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
  ctl status
  echo; echo "== ping a -> b and a -> c through vswitchd"
  ip netns exec vsdemo-a ping -c 3 -i 0.2 -W 2 10.213.0.2
  ip netns exec vsdemo-a ping -c 3 -i 0.2 -W 2 10.213.0.3
  echo; echo "== DNS answered inside the switch (no DNS server runs in b)"
  ip netns exec vsdemo-a dig +short +time=2 +tries=1 @10.213.0.2 c.demo.vs A
  echo; echo "== ARP for c answered by the switch from its binding table"
  ip netns exec vsdemo-a arping -c 2 -w 3 -I eth0 10.213.0.3 || true
  echo; echo "== learned MACs"; ctl fdb show
  echo; echo "== counters"; ctl stats
  cat <<MSG

vswitchd is running (pid $(cat "$DIR/vswitchd.pid"), log $DIR/vswitchd.log).
Try:  ip netns exec vsdemo-a ping 10.213.0.3
      ip netns exec vsdemo-a dig @10.213.0.2 b.demo.vs
      $BIN/vswitchctl --socket $SOCK stats
      $BIN/vswitchctl --socket $SOCK dns list
Stop: make demo-stop
MSG
}

status() { ctl status && ctl port list && ctl stats; }

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
