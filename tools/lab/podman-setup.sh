#!/usr/bin/env bash
# Configure rootful podman so it can run systemd containers on this kind of machine:
# runc (crun fails on the hybrid cgroup layout), cgroupfs, file events, and ulimits the
# machine can grant without CAP_SYS_RESOURCE. Idempotent: rewrites the file only when it differs.
set -euo pipefail
conf=/etc/containers/containers.conf
hard_nofile=$(ulimit -Hn)
want=$(cat <<CONF
# Managed by shardwise.redis tools/lab/podman-setup.sh
[containers]
default_ulimits = [
  "nofile=${hard_nofile}:${hard_nofile}",
  "nproc=32768:32768",
]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
CONF
)
mkdir -p /etc/containers
if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
  printf '%s\n' "$want" > "$conf"
  echo "podman-setup: wrote $conf"
fi
