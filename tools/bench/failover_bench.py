"""Failover benchmark: kill -9 the host of one primary at a time (each shard once) with a write probe per
shard running, and measure the longest time the killed shard's probe went without an acknowledged write,
against cluster-node-timeout (the floor: node timeout + election). After each drill the host returns,
its node resyncs as a replica and failover_recovery.yml restores the zone spread."""
import threading
import time

from drill import admin, gap, owner_of, podman, run_runbook, wait_replicas_in_sync, wait_writable
from drill_clients import Probe


def node_timeout_ms(config):
    nodes = admin(config)
    ip = next(iter(config["hosts"].values()))
    return int(nodes.conn(ip).config_get("cluster-node-timeout")["cluster-node-timeout"])


def run(config, rounds=3):
    timeout_ms = node_timeout_ms(config)
    nodes = admin(config)
    nodes.refresh()
    ranges = sorted((first, last) for first, last, _unused in nodes.ranges)
    stop = threading.Event()
    run_id = time.strftime("%Y%m%dT%H%M%S")
    probes = [Probe(config, i + 1, first, last, stop, run_id) for i, (first, last) in enumerate(ranges)]
    for probe in probes:
        probe.start()
    drills = []
    try:
        time.sleep(2)
        for i in range(min(rounds, len(probes))):
            probe = probes[i]
            victim = owner_of(config, probe.slot)
            started = time.time()
            podman("kill", "--signal", "KILL", victim)
            recovered = wait_writable([probe], time.time(), 60)
            time.sleep(1)
            window = (started, time.time())
            gaps = [round(gap(p.accepted, p.errors, window), 2) for p in probes]
            drills.append(dict(killed=victim, shard=i + 1, write_gap_s=gaps[i], other_shards_gap_s=gaps[:i] + gaps[i + 1:],
                               writable_after_s=round(recovered, 2) if recovered is not None else None))
            print("  drill %d: killed %s, shard %d write gap %.2f s (node timeout %.1f s)"
                  % (i + 1, victim, i + 1, gaps[i], timeout_ms / 1000.0))
            podman("start", victim)
            if not wait_replicas_in_sync(config, [victim], 120):
                raise SystemExit("%s did not come back as an in-sync replica" % victim)
            healed = run_runbook(config)
            if healed["rc"] != 0:
                raise SystemExit("failover_recovery.yml failed after drill %d: %s" % (i + 1, healed["problems"]))
            drills[-1]["runbook_seconds"] = healed["seconds"]
    finally:
        stop.set()
        for probe in probes:
            probe.join(5)
    worst = max(d["write_gap_s"] for d in drills)
    return dict(node_timeout_ms=timeout_ms, drills=drills, worst_gap_s=worst,
                mean_gap_s=round(sum(d["write_gap_s"] for d in drills) / len(drills), 2),
                gap_over_node_timeout=round(worst / (timeout_ms / 1000.0), 2))
