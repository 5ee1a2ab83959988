#!/usr/bin/env bash
# Start or remove the six lab hosts: privileged systemd containers with SSH on a podman network
# with fixed addresses. Usage: [LAB_PROFILE=durable] hosts.sh up|down|status
# Names, zones and addresses mirror inventories/lab/hosts.yml; LAB_PROFILE=durable adds a third host per
# zone (inventories/lab-durable: two replicas per shard, docs/failure-modes.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
network=${LAB_NETWORK:-shardwise-lab}
subnet=${LAB_SUBNET:-10.89.20.0/24}
prefix=${subnet%.*}
key="$top/.cache/lab/id_ed25519"
# name  zone  last-octet  Debian release (each zone mixes Debian 12 and 13, the two tested host platforms)
hosts=(
  "redis-a1 zone-a 11 bookworm" "redis-a2 zone-a 12 trixie"
  "redis-b1 zone-b 21 bookworm" "redis-b2 zone-b 22 trixie"
  "redis-c1 zone-c 31 bookworm" "redis-c2 zone-c 32 trixie"
)
durable=("redis-a3 zone-a 13 trixie" "redis-b3 zone-b 23 bookworm" "redis-c3 zone-c 33 trixie")
case "${LAB_PROFILE:-default}" in
  default) ;;
  durable) hosts+=("${durable[@]}") ;;
  *) echo "LAB_PROFILE must be default or durable, not '${LAB_PROFILE}'" >&2; exit 2 ;;
esac

up() {
  declare -A image=([bookworm]="$("$here/image.sh" bookworm)" [trixie]="$("$here/image.sh" trixie)")
  mkdir -p "$(dirname "$key")"
  [ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C shardwise-lab -f "$key"
  podman network exists "$network" \
    || podman network create --subnet "$subnet" --label shardwise=lab "$network" >/dev/null
  local spec name zone octet release
  for spec in "${hosts[@]}"; do
    read -r name zone octet release <<<"$spec"
    if podman container exists "$name"; then
      [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || podman start "$name" >/dev/null
      continue
    fi
    podman run -d --name "$name" --hostname "$name" --privileged \
      --network "$network" --ip "$prefix.$octet" \
      --label shardwise=lab --label "shardwise.zone=$zone" \
      -v "$key.pub:/root/.ssh/authorized_keys:ro" \
      "${image[$release]}" >/dev/null
  done
  for spec in "${hosts[@]}"; do
    read -r name zone octet _ <<<"$spec"
    wait_ssh "$prefix.$octet" "$name"
  done
}

wait_ssh() {
  local addr=$1 name=$2
  for _ in $(seq 1 60); do
    if ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o ConnectTimeout=2 -o LogLevel=ERROR "root@$addr" true 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "lab: $name ($addr) did not answer on SSH within 60 s; 'podman logs $name' shows why" >&2
  return 1
}

down() {
  local spec name
  for spec in "${hosts[@]}" "${durable[@]}"; do
    read -r name _ <<<"$spec"
    podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
  done
  podman rm -f -t 5 shardwise-scale >/dev/null 2>&1 || true  # make bench-scale's host (tools/bench/scale_bench.py)
  podman network rm "$network" >/dev/null 2>&1 || true
}

status() {
  podman ps -a --filter label=shardwise=lab --format '{{.Names}}\t{{.Status}}\t{{.Labels}}'
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
