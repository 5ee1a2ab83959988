"""Partition benchmark (issue 32): what a primary cut off from the other nodes loses, from the client side.

A trial cuts one primary's host (or both hosts of a zone) off from every other node of the cluster with nftables
inside the host, both directions, for CUT_S seconds; the controller (the podman bridge's gateway) still reaches it, so
the clients keep talking to it as an application beside it would. Then the cut is healed, the cut nodes resync as
replicas, and failover_recovery.yml restores the zone spread. Throughout, a write probe per shard (RPUSH of sequence
numbers, drill_clients.Probe) and real BullMQ clients configured as docs/connect.md says (Node.js BullMQ on ioredis,
Python bullmq on redis-py; a producer and a worker per shard's queue) run. Per trial, on the cut shards:
  - writes_lost: numbers the probe saw acknowledged after the cut that the shard's list no longer holds;
  - loss_window_s: the first and last lost acknowledgement, in seconds after the cut;
  - refused_s: the probe's longest time without an acknowledged write (the shard refusing or unreachable);
  - errors: what the probe was told, by kind (CLUSTERDOWN, NOREPLICAS, TIMEOUT, ...);
  - node_jobs_lost / python_jobs_lost: BullMQ jobs whose add was acknowledged in the trial and that were never
    processed (their job was on the cut primary's side).

Levers (PROFILES), each CONFIG SET on every node for its trials and restored afterwards, with the partition fence
(shardwise-redis-fence.service, redis_fence) running or stopped on every node:
  default         the collection's defaults: the fence on (min-replicas-to-write 0, cluster-node-timeout 5000)
  no-fence        the defaults with the fence stopped: what Redis alone loses
  min-replicas    min-replicas-to-write 1, min-replicas-max-lag 1: a primary whose replica's acknowledgement is older
                  than 1 s refuses writes. Its cost with one replica per shard is measured too: after a kill -9 of a
                  primary's host the promoted replica has no replica of its own and refuses every write until the
                  host is back (host_kill_cost).
  node-timeout-3s cluster-node-timeout 3000
The last two run with the fence stopped (it would set min-replicas-* back, and each measures one lever alone).

run(config, trials=2) -> dict(trials=[...], profiles={name: summary}).
"""
import time

from failover_bench import start_clients, summary
from shardwise_harness.drill import admin, gap, owner_of, podman, run_runbook, wait_replicas_in_sync, wait_writable
from shardwise_harness.partition import cut, errors_in, fence_service, heal, lost_after

CUT_S = 20  # longer than the node timeout plus the election: the majority promotes the cut primary's replica
PROFILES = [  # (name, CONFIG SET on every node, fence running); run(profiles=[...]) picks some by name
    ("default", {}, True),
    ("no-fence", {}, False),
    ("min-replicas", {"min-replicas-to-write": 1, "min-replicas-max-lag": 1}, False),
    ("node-timeout-3s", {"cluster-node-timeout": 3000}, False),
]


def current(config):
    """The settings the profiles change, as the nodes have them now (what each trial restores)."""
    conn = admin(config).conn(next(iter(config["hosts"].values())))
    names = ("min-replicas-to-write", "min-replicas-max-lag", "cluster-node-timeout")
    return dict((name, int(conn.config_get(name)[name])) for name in names)


def apply(config, settings):
    nodes = admin(config)
    for ip in config["hosts"].values():
        for name, value in settings.items():
            nodes.conn(ip).config_set(name, value)


def lost_writes(config, probe, since):
    """(acknowledged after `since`, [seconds after `since` of each acknowledged write the list no longer holds])."""
    nodes = admin(config)
    nodes.refresh()
    held = set(int(x) for x in nodes.conn(nodes.owner(probe.slot)).lrange(probe.key, 0, -1))
    return sum(1 for t, _n in probe.accepted if t >= since), lost_after(probe, held, since)


def partition_trial(config, probes, queues, profile, hosts, label):
    """Cut `hosts`, wait CUT_S, heal, resync, restore the spread; the figures of the shards whose primary was cut."""
    nodes = admin(config)
    nodes.refresh()
    cut_ips = [config["hosts"][h] for h in hosts]
    shards = [i for i, probe in enumerate(probes) if nodes.owner(probe.slot) in cut_ips]
    started = time.time()
    cut(config, hosts)
    time.sleep(CUT_S)
    heal(config, hosts)
    healed = time.time()
    former = [h for h in hosts if config["hosts"][h] in [nodes.owner(probes[i].slot) for i in shards]]
    synced = wait_replicas_in_sync(config, former, 120)
    wait_writable(probes, time.time(), 60)
    time.sleep(2)
    ended = time.time()
    entry = dict(trial=label, profile=profile, cut=hosts, seconds=CUT_S, resynced=synced, shards=[])
    for i in shards:
        acked, lost = lost_writes(config, probes[i], started)
        entry["shards"].append(dict(shard=i + 1, queue=queues[i], writes_acknowledged=acked, writes_lost=len(lost),
                                    loss_window_s=[lost[0], lost[-1]] if lost else None, lost_at_s=lost[:60],
                                    refused_s=round(gap(probes[i].accepted, probes[i].errors, (started, ended)), 2),
                                    errors=errors_in(probes[i], (started, ended))))
    entry["window"] = (started, ended)
    entry["heal_after_s"] = round(healed - started, 2)
    return entry


def host_kill_cost(config, probes, settle_s=25):
    """kill -9 of the host of shard 1's primary under the current profile; how long that shard refused writes
    (the host returns after settle_s and resyncs)."""
    probe = probes[0]
    victim = owner_of(config, probe.slot)
    started = time.time()
    podman("kill", "--signal", "KILL", config.get("container_prefix", "") + victim)
    time.sleep(settle_s)
    podman("start", config.get("container_prefix", "") + victim)
    wait_replicas_in_sync(config, [victim], 120)
    wait_writable([probe], time.time(), 60)
    ended = time.time()
    return dict(killed=victim, host_back_after_s=settle_s, refused_s=round(gap(probe.accepted, probe.errors, (started, ended)), 2),
                errors=errors_in(probe, (started, ended)), window=(started, ended))


def run(config, trials=2, work=None, profiles=None):
    restore = current(config)
    stop, probes, queues, python, node = start_clients(config, "partition", work or "/tmp/partition-node", drain_s=60)
    for probe in probes:
        probe.start()
    python.start()
    results, costs, runbooks = [], [], []
    try:
        time.sleep(8)
        for profile, settings, fenced in [p for p in PROFILES if profiles is None or p[0] in profiles]:
            fence_service(config, "start" if fenced else "stop")
            for k in range(trials):
                apply(config, settings)
                shard = k % len(probes)
                victim = owner_of(config, probes[shard].slot)
                entry = partition_trial(config, probes, queues, profile, [victim], "%s host %d" % (profile, k + 1))
                results.append(entry)
                print("  partition %s: %s" % (entry["trial"], [(s["shard"], s["writes_lost"], s["loss_window_s"],
                                                                s["refused_s"]) for s in entry["shards"]]), flush=True)
                apply(config, restore)
                healed = run_runbook(config)
                runbooks.append(dict(after=entry["trial"], rc=healed["rc"], problems=healed["problems"]))
            if profile == "default":
                apply(config, settings)
                zone = config["zones"][owner_of(config, probes[-1].slot)]
                hosts = sorted(n for n, z in config["zones"].items() if z == zone)
                entry = partition_trial(config, probes, queues, profile, hosts, "%s zone %s" % (profile, zone))
                results.append(entry)
                print("  partition %s: %s" % (entry["trial"], [(s["shard"], s["writes_lost"], s["loss_window_s"])
                                                               for s in entry["shards"]]), flush=True)
                apply(config, restore)
                runbooks.append(dict(after=entry["trial"], rc=run_runbook(config)["rc"]))
            if profile == "min-replicas":
                apply(config, settings)
                cost = host_kill_cost(config, probes)
                apply(config, restore)  # the restarted node read its redis.conf; the others still carry the profile
                cost["profile"] = profile
                costs.append(cost)
                print("  host kill under %s: shard 1 refused writes %.2f s (host back after 25 s)" % (profile, cost["refused_s"]),
                      flush=True)
                runbooks.append(dict(after="host kill", rc=run_runbook(config)["rc"]))
        time.sleep(3)
    finally:
        apply(config, restore)
        fence_service(config, "start")
        stop.set()
        for probe in probes:
            probe.join(5)
        node_result = node.result(timeout=120)
        python.drained.wait(80)
    lost_node = node_result.get("lost_jobs_at", [])
    for entry in results:
        window = entry.pop("window")
        cut_queues = [s["queue"] for s in entry["shards"]]
        entry["node_jobs_lost"] = sum(1 for _id, q, t in lost_node if window[0] <= t < window[1]
                                      and any(q.startswith(c) for c in cut_queues))
        entry["python_jobs_lost"] = sum(1 for j, (t, q) in list(python.acked.items()) if window[0] <= t < window[1]
                                        and q in cut_queues and j not in python.processed)
    for cost in costs:
        cost.pop("window")
    profiles = {}
    for profile, _settings, _fenced in PROFILES:
        mine = [e for e in results if e["profile"] == profile and " host " in e["trial"]]
        shards = [s for e in mine for s in e["shards"]]
        profiles[profile] = dict(writes_lost=summary([s["writes_lost"] for s in shards]),
                                 loss_window_s=summary([s["loss_window_s"][1] - s["loss_window_s"][0]
                                                        if s["loss_window_s"] else 0 for s in shards]),
                                 last_loss_after_cut_s=summary([s["loss_window_s"][1] if s["loss_window_s"] else None
                                                                for s in shards]),
                                 node_jobs_lost=sum(e["node_jobs_lost"] for e in mine),
                                 python_jobs_lost=sum(e["python_jobs_lost"] for e in mine))
    totals = dict(node=dict((k, node_result.get(k)) for k in ("acknowledged", "processed", "lost", "duplicated", "failed",
                                                              "failure")),
                  python=dict(acknowledged=len(python.acked), processed=len(python.processed),
                              lost=sum(1 for j in list(python.acked) if j not in python.processed)))
    return dict(cut_s=CUT_S, trials=results, host_kill_cost=costs, profiles=profiles, runbooks=runbooks, totals=totals)
