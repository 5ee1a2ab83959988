"""BullMQ monitoring signals, from a real workload to the exporters' /metrics.

Usage: bullmq_signals.py PKI_DIR WORK_DIR HOST [HOST ...] [--capture FIXTURE_DIR]

A Node.js BullMQ 5 workload (tests/harness/shardwise_harness/node/signals.mjs, over the connection of docs/connect.md)
runs as the worker user:
  - queue TRIMMED (high): 30 jobs with removeOnComplete/removeOnFail, every 5th fails, and one job whose
    worker died mid-job (its lock expires, BullMQ marks it stalled and runs it again);
  - queue KEPT (scheduled, on the same shard as high: one capture holds both): jobs of about 20 ms, the
    completed set keeps the newest 50, global concurrency 3.
Then every node's exporter is scraped (the collect script runs at each scrape) and the figures must match
what the clients saw: the trimmed queue's failed and completed sets are empty, yet the failed, completed
and stalled events and the added-jobs counter are all there. The kept queue gets a duration p95 and its
global concurrency. --capture writes the primary's and a replica's /metrics as the unit test fixtures
(tests/unit/fixtures/exporter-metrics-*.txt). Prints one line a check and exits 1 when one fails.
Passwords come from the environment (REDIS_WORKER_PASSWORD), never from argv.
"""
import json
import os
import re
import subprocess
import sys
import urllib.request

from shardwise_harness.connect_snippets import environment, node_workload

# JOBS stays small enough that the whole run fits in redis_metrics_exporter_bullmq_events_scan (200 entries;
# about 4 events a job): the counts must then equal what the clients saw. Past the cap they are the newest entries.
TRIMMED, KEPT, JOBS, FAIL_EVERY, KEPT_JOBS = "high", "scheduled", 30, 5, 30


def scrape(host):
    with urllib.request.urlopen("http://%s:9121/metrics" % host, timeout=30) as reply:
        return reply.read().decode()


def script_values(text):
    """The collect script's values from /metrics: redis_exporter 1.45 (Debian 12) writes redis_script_values{key=...},
    1.69 (Debian 13) adds the script's filename label first."""
    values = {}
    for key, value in re.findall(r'^redis_script_values\{(?:filename="[^"]*",)?key="([^"]+)"\} (\S+)$', text, re.M):
        values[key] = float(value)
    return values


def prepare(work):
    return node_workload(work, ["signals.mjs"])


def workload(node_dir, pki, hosts):
    env = dict(environment(pki, hosts, "worker"), TRIMMED=TRIMMED, KEPT=KEPT, JOBS=str(JOBS),
               FAIL_EVERY=str(FAIL_EVERY), KEPT_JOBS=str(KEPT_JOBS))
    hang = subprocess.run(["node", "signals.mjs", "hang"], cwd=node_dir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    print("  hang: %s" % hang.stdout.strip()[-300:])
    run = subprocess.run(["node", "signals.mjs", "run"], cwd=node_dir, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=180, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        sys.exit("FAIL workload: %s" % run.stdout[-2000:])
    return json.loads(lines[-1])


def main(pki, work, hosts, capture=None):
    pki, work = os.path.abspath(pki), os.path.abspath(work)
    seen = workload(prepare(work), pki, hosts)
    failed_jobs = JOBS // FAIL_EVERY
    print("clients: %(added)d added, %(completed)d completed, %(failed)d failed, %(stalled)d marked stalled, "
          "%(duplicates)d finished twice; kept queue %(keptCompleted)d/%(keptAdded)d completed" % seen)
    texts = {host: scrape(host) for host in hosts}
    per_node = {host: script_values(text) for host, text in texts.items()}
    merged = {}
    for values in per_node.values():
        for key, value in values.items():
            merged[key] = max(value, merged.get(key, value))
    q, k = TRIMMED, KEPT
    checks = [
        ("clients: every job finished once, the failures failed, one job stalled",
         seen["added"] == JOBS and seen["completed"] == JOBS - failed_jobs + 1 and seen["failed"] == failed_jobs
         and seen["stalled"] >= 1 and seen["duplicates"] == 0 and seen["keptCompleted"] == KEPT_JOBS),
        ("%s: removeOnComplete/removeOnFail left the completed and failed sets empty" % q,
         merged.get("bullmq_jobs:%s:completed" % q) == 0 and merged.get("bullmq_jobs:%s:failed" % q) == 0),
        ("%s: failed events = the %d failures" % (q, failed_jobs), merged.get("bullmq_events:%s:failed" % q) == failed_jobs),
        ("%s: completed events = the %d completions" % (q, seen["completed"]),
         merged.get("bullmq_events:%s:completed" % q) == seen["completed"]),
        ("%s: stalled events = what the worker saw (%d)" % (q, seen["stalled"]),
         merged.get("bullmq_events:%s:stalled" % q) == seen["stalled"]),
        ("%s: the events window spans the run" % q, 0 < merged.get("bullmq_events_window_seconds:%s" % q, 0) <= 300),
        ("%s: added counter = %d jobs + the stalled one" % (q, JOBS), merged.get("bullmq_added_total:%s" % q) == JOBS + 1),
        ("%s: no duration p95 (no completed job kept)" % q, "bullmq_duration_p95_seconds:%s" % q not in merged),
        ("%s: duration p95 from the kept jobs (~20 ms)" % k,
         0.015 <= merged.get("bullmq_duration_p95_seconds:%s" % k, 0) < 5
         and merged.get("bullmq_duration_samples:%s" % k) == KEPT_JOBS),
        ("%s: global concurrency 3" % k, merged.get("bullmq_concurrency:%s" % k) == 3),
        ("every node exports aof_rewrites", all("aof_rewrites" in values for values in per_node.values())),
        ("a queue is reported by the nodes that serve its slot only",
         sum(1 for values in per_node.values() if "bullmq_events:%s:failed" % q in values) in (1, 2)),
    ]
    print("exporter: " + ", ".join("%s=%g" % (key, merged[key]) for key in sorted(merged)
                                   if key.endswith((":" + q, ":" + k)) or (":%s:" % q) in key))
    bad = 0
    for what, ok in checks:
        print("%s %s" % ("PASS" if ok else "FAIL", what))
        bad += 0 if ok else 1
    if capture and not bad:
        primary = [h for h in hosts if "bullmq_events:%s:failed" % q in per_node[h]
                   and re.search(r'^redis_instance_info\{.*role="master"', texts[h], re.M)][0]
        replica = [h for h in hosts if re.search(r'^redis_instance_info\{.*role="slave"', texts[h], re.M)][0]
        for name, host in (("primary", primary), ("replica", replica)):
            with open(os.path.join(capture, "exporter-metrics-%s.txt" % name), "w") as fh:
                fh.write(texts[host])
        print("captured %s (primary) and %s (replica) into %s" % (primary, replica, capture))
    print("%d checks, %d failed" % (len(checks), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    capture_dir = None
    if "--capture" in args:
        i = args.index("--capture")
        capture_dir = args[i + 1]
        del args[i:i + 2]
    if len(args) < 3:
        sys.exit(__doc__)
    sys.exit(main(args[0], args[1], args[2:], capture_dir))
