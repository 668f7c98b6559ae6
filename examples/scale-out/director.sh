#!/usr/bin/env bash
# A director for several xferproxy nodes behind one address (docs/scale-out.md).
#
# Clients connect to VIP; nftables sends each client address, by a hash of it, to one healthy
# node, for SSH (TCP 22) and FASP (UDP) alike, so a session's SSH leg and its UDP flow meet the
# same node, the one that installed its forwarding. The director only rewrites the destination:
# nodes see the client's own address (their default route must point back at the director).
# Every INTERVAL seconds it asks every node at once for GET /healthz and whether TCP 22 answers
# (/healthz does not look at sshd); the nodes that pass both share the hash. A node drained
# (xferproxy dnat drain), stopped or unreachable leaves it within INTERVAL + 1 s; its established
# flows keep going (conntrack remembers them). When no node is healthy, all of them stay in (fail
# open: a node that cannot answer may still carry sessions). A table that cannot be written (nft
# busy) is tried again the next round; the one in place stays. On exit (SIGTERM, SIGINT) it
# removes its table: run it under systemd with Restart=always.
#
# Usage (root): director.sh VIP NODE [NODE ...]
# Environment: HEALTH_PORT (9094, the nodes' <metrics_address> port), INTERVAL (1),
#   UDP_PORTS (33001-33999, the rules' UDP ranges), TCP_PORTS (22), TABLE (xferproxy_director),
#   ONCE=1 (one health round, then exit, leaving the table: for a test or a cron job),
#   CHECK=1 (one health round, no table, no root: exit 0 when a node is healthy, 1 when none; the
#   health check of keepalived.conf, which moves VIP between two directors).
# Needs: bash, curl, nft (not for CHECK=1).
set -euo pipefail

usage() {
  echo "usage: $0 VIP NODE [NODE ...]   (IPv4 addresses; see docs/scale-out.md)" >&2
  exit 2
}
[ $# -ge 2 ] || usage
# Strict dotted quads: no leading zeros (curl would read 010 as octal, nft as decimal).
octet='(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
ipv4="^($octet\.){3}$octet\$"
for a in "$@"; do [[ $a =~ $ipv4 ]] || { echo "$0: not an IPv4 address: $a" >&2; exit 2; }; done
vip=$1
shift
nodes=("$@")
health_port=${HEALTH_PORT:-9094}
interval=${INTERVAL:-1}
udp_ports=${UDP_PORTS:-33001-33999}
tcp_ports=${TCP_PORTS:-22}
table=${TABLE:-xferproxy_director}
for v in "$health_port" "$interval"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "$0: not a number: $v" >&2; exit 2; }
done
[[ $table =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "$0: bad table name: $table" >&2; exit 2; }
for p in "$udp_ports" "$tcp_ports"; do
  [[ $p =~ ^[0-9]+(-[0-9]+)?(,\ ?[0-9]+(-[0-9]+)?)*$ ]] || { echo "$0: bad ports: $p" >&2; exit 2; }
done

log() { echo "director: $*" >&2; }

# Writes the table for the given nodes, in one atomic nft transaction. The hash seed is fixed, so
# the same set of nodes always maps a client address to the same node.
apply() {
  local n=$# map="" i=0 node
  for node in "$@"; do
    map+="${map:+, }$i : $node"
    i=$((i + 1))
  done
  nft -f - <<EOF
table ip $table {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
}
flush chain ip $table prerouting
table ip $table {
  chain prerouting {
    ip daddr $vip tcp dport { $tcp_ports } dnat to jhash ip saddr mod $n seed 0x78707279 map { $map }
    ip daddr $vip udp dport { $udp_ports } dnat to jhash ip saddr mod $n seed 0x78707279 map { $map }
  }
}
EOF
}

healthy() {
  local code
  # -q: no ~/.curlrc; no proxy from the environment between the director and its nodes.
  code=$(curl -q -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://$1:$health_port/healthz") || true
  [ "$code" = 200 ] && timeout 1 bash -c "exec 3<>/dev/tcp/$1/22" 2>/dev/null
}

cleanup() {
  nft delete table ip "$table" 2>/dev/null || true
  log "removed table $table"
}

# Sets up=(the healthy nodes). Every node at once: a round takes at most 1 s however many nodes
# do not answer.
up=()
healthy_nodes() {
  local i pids=()
  up=()
  for i in "${!nodes[@]}"; do
    healthy "${nodes[$i]}" &
    pids[$i]=$!
  done
  for i in "${!nodes[@]}"; do
    if wait "${pids[$i]}"; then up+=("${nodes[$i]}"); fi
  done
}

current=""
round() {
  healthy_nodes
  # Fail open: with no healthy node, keep them all rather than drop every client.
  [ ${#up[@]} -gt 0 ] || up=("${nodes[@]}")
  if [ "${up[*]}" != "$current" ]; then
    if apply "${up[@]}"; then
      log "$vip -> ${up[*]}"
      current="${up[*]}"
    else
      log "cannot write table $table (kept the one in place); trying again"
    fi
  fi
}

if [ "${CHECK:-}" = 1 ]; then
  healthy_nodes
  [ ${#up[@]} -gt 0 ] || { log "no node is healthy"; exit 1; }
  exit 0
fi
if [ "${ONCE:-}" = 1 ]; then
  round
  exit 0
fi
trap cleanup EXIT
trap 'exit 0' TERM INT
while :; do
  round
  sleep "$interval" &
  wait $! || true
done
