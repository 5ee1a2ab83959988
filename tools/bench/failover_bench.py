"""Failover benchmark: kill -9 the host of one primary at a time (shard after shard, `rounds` kills) while a write
probe per shard and real BullMQ clients run: Node.js BullMQ + ioredis configured as docs/connect.md says
(tests/harness/shardwise_harness/node/during.mjs) and Python bullmq + redis-py (drill_clients.Jobs), one queue per shard each.
Per kill it measures, on the killed shard: the probe's write gap (the server's side, against
cluster-node-timeout) and each client's longest gap between processed jobs and between acknowledged adds. After
each kill the host returns, resyncs as a replica and failover_recovery.yml hands the primary back with a
coordinated failover: the clients' gaps during that run are the planned-handover figures.

run(config, rounds, node_timeout_ms=None, connection=None): node_timeout_ms sets cluster-node-timeout on every
node for the run (CONFIG SET, restored afterwards); connection is another redis.mjs text for the Node.js client
(default: the one of docs/connect.md)."""
import os
import statistics
import threading
import time

from shardwise_harness.connect_snippets import environment
from shardwise_harness.drill import admin, gap, owner_of, podman, run_runbook, wait_replicas_in_sync, wait_writable
from shardwise_harness.drill_clients import Jobs, NodeJobs, Probe, event_gap, stall, tag_in

SETTLE_S = 25  # after a kill, how long the clients get before the host returns (well above any gap allowed)


def node_timeout_of(config):
    nodes = admin(config)
    ip = next(iter(config["hosts"].values()))
    return int(nodes.conn(ip).config_get("cluster-node-timeout")["cluster-node-timeout"])


def set_node_timeout(config, timeout_ms):
    nodes = admin(config)
    for ip in config["hosts"].values():
        nodes.conn(ip).config_set("cluster-node-timeout", timeout_ms)


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return dict(median=None, worst=None, n=0)
    return dict(median=round(statistics.median(values), 2), worst=round(max(values), 2), n=len(values))


def handover_gap(events, window):
    """Longest time without a processed job of one queue inside `window`."""
    return round(event_gap(events["processed"], window), 2)


def start_clients(config, name, work, drain_s=120, connection=None):
    """A write probe per shard and both BullMQ clients of docs/connect.md, one queue per shard named <name><n>; the
    probes and the Python client are started by the caller, the Node.js client runs from here."""
    nodes = admin(config)
    nodes.refresh()
    ranges = sorted((first, last) for first, last, _unused in nodes.ranges)
    stop = threading.Event()
    run_id = time.strftime(name[0] + "%Y%m%dT%H%M%S")
    probes = [Probe(config, i + 1, first, last, stop, run_id) for i, (first, last) in enumerate(ranges)]
    queues = [tag_in(first, last, "%s%d" % (name, i + 1)) for i, (first, last) in enumerate(ranges)]
    python = Jobs(config, queues, stop, run_id, drain_s=drain_s)
    node = NodeJobs(work, environment(config["pki"], list(config["hosts"].values()), "worker"), queues, run_id,
                    connection=connection, drain_ms=drain_s * 1000)
    return stop, probes, queues, python, node


def run(config, rounds=3, node_timeout_ms=None, connection=None, work=None):
    original_ms = node_timeout_of(config)
    if node_timeout_ms:
        set_node_timeout(config, node_timeout_ms)
    timeout_ms = node_timeout_ms or original_ms
    stop, probes, queues, python, node = start_clients(
        config, "failover", work or os.path.join(config.get("out", "/tmp"), "failover-node"), connection=connection)
    for probe in probes:
        probe.start()
    python.start()
    kills, handovers = [], []
    try:
        time.sleep(8)  # the clients connect and settle
        for k in range(rounds):
            shard = k % len(probes)
            probe = probes[shard]
            victim = owner_of(config, probe.slot)
            started = time.time()
            podman("kill", "--signal", "KILL", config.get("container_prefix", "") + victim)
            recovered = wait_writable([probe], time.time(), 60)
            time.sleep(max(0.0, started + SETTLE_S - time.time()))
            kills.append(dict(killed=victim, shard=shard + 1, queue=queues[shard], window=(started, time.time()),
                              writable_after_s=round(recovered, 2) if recovered is not None else None,
                              write_gap_s=round(gap(probe.accepted, probe.errors, (started, time.time())), 2)))
            print("  kill %d: %s (shard %d) write gap %.2f s" % (k + 1, victim, shard + 1, kills[-1]["write_gap_s"]),
                  flush=True)
            podman("start", config.get("container_prefix", "") + victim)
            if not wait_replicas_in_sync(config, [victim], 120):
                raise SystemExit("%s did not come back as an in-sync replica" % victim)
            if node_timeout_ms:  # the restarted node read its redis.conf: the measured timeout again, on every node
                set_node_timeout(config, node_timeout_ms)
            begun = time.time()
            healed = run_runbook(config)
            if healed["rc"] != 0:
                raise SystemExit("failover_recovery.yml failed after kill %d: %s" % (k + 1, healed["problems"]))
            time.sleep(2)
            handovers.append(dict(after_kill=k + 1, window=(begun, time.time()), runbook_seconds=healed["seconds"],
                                  plan=healed["plan"]))
        time.sleep(3)
    finally:
        stopped = time.time()
        stop.set()
        for probe in probes:
            probe.join(5)
        node_result = node.result(timeout=200)
        python.drained.wait(140)
        if node_timeout_ms:
            set_node_timeout(config, original_ms)
    timeline = node_result.get("timeline", {})
    for entry in kills:
        queue = entry["queue"]
        entry["node"] = stall(timeline[queue], entry["window"][0], stopped) if queue in timeline else None
        entry["python"] = stall(dict(processed=sorted(python.processed_at[queue]), acked=python.acked_at(queue)),
                                entry["window"][0], stopped)
        print("  kill %d: %s gap %.2f s; Node.js processed/acked %s s, Python %s s"
              % (kills.index(entry) + 1, entry["killed"], entry["write_gap_s"],
                 "-" if entry["node"] is None else "%.2f/%.2f" % (entry["node"]["processed"], entry["node"]["acked"]),
                 "%.2f/%.2f" % (entry["python"]["processed"], entry["python"]["acked"])))
    for entry in handovers:
        entry["node"] = max([handover_gap(timeline[q], entry["window"]) for q in queues if q in timeline] or [None])
        entry["python"] = max(handover_gap(dict(processed=sorted(python.processed_at[q])), entry["window"]) for q in queues)
    python_lost = sum(1 for j in list(python.acked) if j not in python.processed)
    totals = dict(node=dict((k, node_result.get(k)) for k in ("acknowledged", "processed", "lost", "duplicated", "failed",
                                                              "worker_errors", "add_errors", "failure")),
                  python=dict(acknowledged=len(python.acked), processed=len(python.processed), lost=python_lost,
                              duplicated=sum(1 for n in python.processed.values() if n > 1),
                              worker_restarts=len(python.worker_restarts)))
    for entry in kills + handovers:
        entry["window"] = [round(entry["window"][0], 2), round(entry["window"][1], 2)]
    return dict(node_timeout_ms=timeout_ms, drills=kills, handovers=handovers, totals=totals,
                write_gap=summary([d["write_gap_s"] for d in kills]),
                node_gap=summary([d["node"]["processed"] if d["node"] else None for d in kills]),
                node_add_gap=summary([d["node"]["acked"] if d["node"] else None for d in kills]),
                python_gap=summary([d["python"]["processed"] for d in kills]),
                python_add_gap=summary([d["python"]["acked"] for d in kills]),
                node_handover_gap=summary([h["node"] for h in handovers]),
                python_handover_gap=summary([h["python"] for h in handovers]),
                worst_gap_s=max(d["write_gap_s"] for d in kills) if kills else None,
                mean_gap_s=round(sum(d["write_gap_s"] for d in kills) / len(kills), 2) if kills else None,
                gap_over_node_timeout=round(max(d["write_gap_s"] for d in kills) / (timeout_ms / 1000.0), 2) if kills else None)
