"""Network partitions for the drills and the bench (issue 32): cut hosts off from the other nodes of the cluster with
nftables inside each cut host, both directions, while the controller (the podman bridge's gateway, where the clients
run) still reaches them, as an application beside a cut-off primary would; then heal.

The figures are read from the write probes (drill_clients.Probe): what a shard acknowledged after the cut and no longer
holds after the heal is lost."""
import json
import subprocess

TABLE = "shardwise_drill_cut"
FENCE_STATE = "/run/shardwise-redis-fence/state.json"
NFT = """table inet %(table)s {
  chain input { type filter hook input priority -10; policy accept; ip saddr { %(peers)s } drop; }
  chain output { type filter hook output priority -10; policy accept; ip daddr { %(peers)s } drop; }
}
"""


def cut(config, hosts):
    """Drop everything between `hosts` and the other nodes, inside each of `hosts` (both directions)."""
    peers = ", ".join(ip for name, ip in sorted(config["hosts"].items()) if name not in hosts)
    for host in hosts:
        subprocess.run(["podman", "exec", "-i", config.get("container_prefix", "") + host, "nft", "-f", "-"],
                       input=NFT % dict(table=TABLE, peers=peers), text=True, check=True, stdout=subprocess.DEVNULL)


def heal(config, hosts):
    for host in hosts:
        subprocess.run(["podman", "exec", config.get("container_prefix", "") + host, "nft", "delete", "table", "inet", TABLE],
                       check=True, stdout=subprocess.DEVNULL)


def fence_service(config, action, hosts=None):
    """systemctl `action` (start, stop) the partition fence on `hosts` (default every host): a drill step or bench
    profile that sets min-replicas-* itself stops it first (the agent owns those settings: it would set them back to
    the configured values within a tick; stopped, it gives them back itself)."""
    for host in sorted(config["hosts"] if hosts is None else hosts):
        subprocess.run(["podman", "exec", config.get("container_prefix", "") + host, "systemctl", action,
                        "shardwise-redis-fence.service"], check=True, stdout=subprocess.DEVNULL)


def fence_states(config, hosts):
    """{host: the partition fence's state file (fenced, reason, fences, ...), or None where it has none}."""
    states = {}
    for host in hosts:
        done = subprocess.run(["podman", "exec", config.get("container_prefix", "") + host, "cat", FENCE_STATE],
                              capture_output=True, text=True, check=False)
        try:
            states[host] = json.loads(done.stdout) if done.returncode == 0 else None
        except ValueError:
            states[host] = None
    return states


def lost_after(probe, held, since):
    """Seconds after `since` of each write the probe saw acknowledged since then that `held` (the numbers the shard's
    list holds now) lacks."""
    return [round(t - since, 2) for t, n in probe.accepted if t >= since and n not in held]


def errors_in(probe, window):
    """The probe's errors inside `window`, by kind (CLUSTERDOWN, NOREPLICAS, TIMEOUT, ...)."""
    kinds = {}
    for t, kind in probe.errors:
        if window[0] <= t < window[1]:
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds
