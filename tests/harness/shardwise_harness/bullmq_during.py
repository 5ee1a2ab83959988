"""A real BullMQ producer and worker (PyPI bullmq over RedisCluster, api and worker users) on queues whose
slots a runbook is about to move or whose nodes it restarts, running until a stop file appears.

  bullmq_during.py CONFIG_JSON STOP_FILE RESULT_JSON

CONFIG_JSON: {"pki": dir, "hosts": {name: ip}, "ranges": [[first, last], ...], "probes": [[first, last], ...]}:
one queue per slot range (its name is a hash tag in that range), or the queues named in "queues" (prefix
bull:{name}, the collection's layout; with "suffix": queue <name><suffix> under that prefix, a second queue in
the slot of an application's queue); optional "probes": one write probe per range
(RPUSH 20 times a second, as in drill.py), whose figures per shard go to RESULT_JSON "probes": writes
acknowledged, acknowledged writes missing from the list afterwards (lost), errors by kind, and the longest
time between two acknowledged writes (max_gap_s, measured, not judged here).
Every job gets a unique id and is added until Redis acknowledges it; the worker counts what it processes.
RESULT_JSON.started appears once the clients run. After the stop file: the producer stops, the worker
drains (up to DRAIN_S; the whole stop, Node.js included, takes at most STOP_S), and RESULT_JSON gets {summary
(one line of the figures below), queues, acknowledged, processed, lost, lost_jobs (where each unprocessed job is
and why BullMQ gave up on it), duplicated, duplicated_jobs (the same for each job processed twice: its stalled
counter "stc" says whether BullMQ's stalled check moved it back), add_errors, add_error_kinds (the most frequent "<type>: <message>" and
their counts), failure, worker_restarts ([seconds, queue, why] of each Worker.run() that ended and was started
again), failed_reasons (failedReason -> jobs in the failed sets), finished (jobs the completed and failed sets hold
after the drain), probes, node}.
With "node": true in CONFIG_JSON, Node.js BullMQ + ioredis (tests/harness/shardwise_harness/node/during.mjs, configured as
docs/connect.md says, no watchdog) runs beside it on queues <name>-node in the same slots, and "node" holds
what it saw (acknowledged, processed, lost and where each lost job is, duplicated, failed and why, add and worker
errors).
Exits 1 when an acknowledged job was never processed, an acknowledged probe write is missing, or the
clients failed. Passwords come from REDIS_API_PASSWORD and REDIS_WORKER_PASSWORD and are never printed.
"""
import json
import os
import sys
import threading
import time

from shardwise_harness.connect_snippets import environment
from shardwise_harness.drill_clients import HANDOVER_GAP_S, Jobs, NodeJobs, Nodes, Probe, event_gap, job_state, queue_base, tag_in

DRAIN_S = 150  # after the stop file, each client's worker may take this long to process what was acknowledged
STOP_S = 210  # the result is written within this many seconds of the stop file (molecule waits 300 s for it)


def probe_figures(config, probes):
    """Per probe: what the server acknowledged, what the list holds now, errors by kind, longest gap."""
    nodes = Nodes(config, timeout=5)
    figures = []
    for probe in probes:
        times = [t for t, _unused in probe.accepted]
        acked = set(n for _unused, n in probe.accepted)
        held = None
        for _attempt in range(20):
            nodes.refresh()
            try:
                held = set(int(x) for x in nodes.conn(nodes.owner(probe.slot)).lrange(probe.key, 0, -1))
                break
            except Exception:  # a redirect right after a zone move: ask again
                time.sleep(0.5)
        kinds = {}
        for _unused, kind in probe.errors:
            kinds[kind] = kinds.get(kind, 0) + 1
        figures.append(dict(shard=probe.shard, slot=probe.slot, acknowledged=len(acked),
                            lost=len(acked - held) if held is not None else None, errors=kinds,
                            max_gap_s=round(max([b - a for a, b in zip(times, times[1:])] or [0.0]), 3)))
    return figures


def top(counts, limit=3):
    """The most frequent entries of {kind: count}, as "kind x count" strings."""
    return ["%s x %d" % (kind, n) for kind, n in sorted(counts.items(), key=lambda item: -item[1])[:limit]]


def summary(result):
    """One line of what each client saw, first in RESULT_JSON so that a cut failure message still shows it."""
    line = "python: %d acked, %d processed, %d lost, %d add errors %s, %d worker restarts %s" % (
        result["acknowledged"], result["processed"], result["lost"], result["add_errors"], top(result["add_error_kinds"]),
        len(result["worker_restarts"]), [why for _unused1, _unused2, why in result["worker_restarts"][:2]])
    node = result["node"]
    if node is not None:
        line += "; node: %s acked, %s processed, %s lost, %s failed, failure %s, add errors %s, worker errors %s" % (
            node.get("acknowledged"), node.get("processed"), node.get("lost"), node.get("failed"), node.get("failure"),
            top(node.get("add_errors") or {}), top(node.get("worker_errors") or {}))
    probes = result["probes"]
    return line + "; probes: acked %s, lost %s, errors %s" % (
        [p["acknowledged"] for p in probes], [p["lost"] for p in probes], [p["errors"] for p in probes])


def node_job_state(nodes, queues, job_id):
    """job_state of a job of during.mjs: id <name>-node-<run>-<n> in queue <name>-node, prefix bull:{<name>}."""
    for name in queues:
        if job_id.startswith(name + "-node-"):
            return job_state(nodes, name, queue_base(name, name + "-node"), job_id)
    return dict(id=job_id, error="no queue of this run")


def main(argv):
    with open(argv[1]) as fh:
        config = json.load(fh)
    stop_file, result_file = argv[2], argv[3]
    queues = config.get("queues") or [tag_in(first, last, "reshard") for first, last in config["ranges"]]
    stop = threading.Event()
    started = time.time()
    run_id = "r%d" % int(started)
    node = None
    if config.get("node"):
        # The same queues' slots through Node.js BullMQ + ioredis configured as docs/connect.md says
        # (tests/harness/shardwise_harness/node/during.mjs, queues <name>-node with prefix bull:{<name>}).
        node = NodeJobs(os.path.join(os.path.dirname(os.path.abspath(result_file)), "during-node"),
                        environment(config["pki"], list(config["hosts"].values()), "worker"), queues, run_id,
                        drain_ms=DRAIN_S * 1000)
    jobs = Jobs(config, queues, stop, run_id, suffix=config.get("suffix", ""), drain_s=DRAIN_S)
    probes = [Probe(config, i, first, last, stop, run_id) for i, (first, last) in enumerate(config.get("probes", []))]
    jobs.start()
    for probe in probes:
        probe.start()
    open(result_file + ".started", "w").close()  # the clients run (npm ci, when asked for, is done)
    while not os.path.exists(stop_file) and jobs.failure is None:
        time.sleep(0.5)
    stop.set()
    if node is not None:
        node.stop()
    stopped = time.time()
    for probe in probes:
        probe.join(10)
    jobs.drained.wait(DRAIN_S + 20)
    # The figures are read while the hosts still run (before the wait for Node.js).
    probe_result = probe_figures(config, probes)
    lost = sorted(j for j in list(jobs.acked) if j not in jobs.processed)
    duplicated = sorted(j for j, n in list(jobs.processed.items()) if n > 1)
    nodes = Nodes(config, timeout=5)
    nodes.refresh()
    result = dict(queues=queues, acknowledged=len(jobs.acked), processed=len(jobs.processed), lost=len(lost),
                  lost_jobs=[jobs.state_of(nodes, j, started) for j in lost[:10]], duplicated=len(duplicated),
                  duplicated_ids=duplicated[:10],
                  duplicated_jobs=[jobs.state_of(nodes, j, started) for j in duplicated[:10]],
                  add_errors=len(jobs.add_errors), add_error_kinds=jobs.error_kinds(), failure=jobs.failure,
                  worker_restarts=[[round(t - started, 1), q, why] for t, q, why in jobs.worker_restarts],
                  failed_reasons=jobs.failed_reasons(nodes), finished=jobs.finished(nodes), probes=probe_result,
                  node=None)
    if node is not None:
        result["node"] = node.result(timeout=max(5, stopped + STOP_S - time.time()))
        # per queue, the longest time without a processed job and without an acknowledged add while it ran
        timeline = result["node"].pop("timeline", {})
        result["node"]["max_gap_s"] = {q: dict((kind, round(event_gap(times, (started, stopped)), 2))
                                               for kind, times in events.items()) for q, events in timeline.items()}
        nodes.refresh()
        result["node"]["lost_jobs"] = [node_job_state(nodes, queues, j) for j in result["node"].get("lost_ids", [])]
        result["node"]["handover_limit_s"] = HANDOVER_GAP_S  # what clients_judge.yml allows through planned work
    result = dict(summary=summary(result), **result)
    with open(result_file, "w") as fh:
        json.dump(result, fh)
    print(json.dumps(result))
    node_result = result["node"]
    node_bad = node_result is not None and (node_result.get("failure") or node_result["lost"] != 0)
    return 1 if lost or jobs.failure or node_bad or any(p["lost"] != 0 for p in probe_result) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
