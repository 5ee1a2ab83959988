"""Real BullMQ jobs for the memory emergency scenario (PyPI `bullmq`, RedisCluster over mutual TLS).

  bullmq_jobs.py fill  PKI_DIR STATE_FILE HOST [HOST ...]
      queue `batch`: COUNT finished jobs with 8 KiB payloads and a log line each (every fourth fails),
      then 2/3 of them are aged 3 days (their score in completed/failed and finishedOn, exactly as
      BullMQ would have written them 3 days ago); then live jobs that must survive: 200 waiting,
      20 delayed (1 h), 20 prioritized. The job ids go to STATE_FILE.
  bullmq_jobs.py check PKI_DIR STATE_FILE HOST [HOST ...]
      aged jobs fully gone (hash, logs, index entry; no job hash left that no state lists), recent
      finished jobs intact, every live job intact; then a worker processes the 200 waiting jobs.
Uses the api user for producing, the worker user for processing, admin for SCAN; passwords from
REDIS_API_PASSWORD, REDIS_WORKER_PASSWORD and REDIS_ADMIN_PASSWORD. Prints one JSON line; exits 1 on any failure. Never prints a secret.
"""
import asyncio
import json
import os
import sys
import time

from bullmq import Queue, Worker
from shardwise_harness.tls_client import async_cluster as cluster
from shardwise_harness import fill_or_check

QUEUE = "batch"
PREFIX = "bull:{%s}" % QUEUE
BASE = "%s:%s:" % (PREFIX, QUEUE)
FINISHED = int(os.environ.get("BULLMQ_FINISHED_JOBS", "3000"))
WAITING = 200
AGE_MS = 3 * 24 * 3600 * 1000


async def fill(pki, hosts, state_file):
    api, worker_conn = cluster(pki, hosts, "api"), cluster(pki, hosts, "worker")
    queue = Queue(QUEUE, {"connection": api, "prefix": PREFIX})
    payload = "p" * 8192

    async def process(job, token):
        await job.log("processed %s" % job.id)
        if int(job.data["n"]) % 4 == 0:
            raise ValueError("planned failure %s" % job.data["n"])
        return {"ok": job.data["n"]}

    for start in range(0, FINISHED, 100):  # addBulk pipelines EVALSHA, which RedisCluster refuses
        await asyncio.gather(*[queue.add("old", {"n": n, "blob": payload},
                                         {"removeOnComplete": False, "removeOnFail": False, "attempts": 1})
                               for n in range(start, min(FINISHED, start + 100))])
    worker = Worker(QUEUE, process, {"connection": worker_conn, "prefix": PREFIX, "concurrency": 50})
    deadline = time.time() + 600
    while time.time() < deadline:
        counts = await queue.getJobCounts("completed", "failed")
        if counts["completed"] + counts["failed"] >= FINISHED:
            break
        await asyncio.sleep(1)
    await worker.close()
    completed = await api.zrange(BASE + "completed", 0, -1)
    failed = await api.zrange(BASE + "failed", 0, -1)
    # Age two thirds of the finished jobs by three days, as if BullMQ had finished them then.
    aged, recent = [], []
    for state, ids in (("completed", completed), ("failed", failed)):
        for i, job_id in enumerate(sorted(ids, key=int)):
            if i % 3 == 2:
                recent.append(job_id)
                continue
            finished_on = int(await api.hget(BASE + job_id, "finishedOn")) - AGE_MS
            await api.hset(BASE + job_id, "finishedOn", finished_on)
            await api.zadd(BASE + state, {job_id: finished_on}, xx=True)
            aged.append(job_id)
    live = []
    for n in range(WAITING):
        live.append((await queue.add("live", {"n": n, "blob": payload})).id)
    delayed = [(await queue.add("later", {"n": n}, {"delay": 3600 * 1000})).id for n in range(20)]
    prioritized = [(await queue.add("prio", {"n": n}, {"priority": 1 + n % 5})).id for n in range(20)]
    await queue.close()
    with open(state_file, "w") as fh:
        json.dump(dict(aged=aged, recent=recent, waiting=live, delayed=delayed, prioritized=prioritized), fh)
    print(json.dumps(dict(completed=len(completed), failed=len(failed), aged=len(aged), recent=len(recent),
                          waiting=len(live), delayed=len(delayed), prioritized=len(prioritized))))
    # At least FINISHED: a client retry after a timeout may add a job twice; the test works on the ids read back.
    return 0 if len(completed) + len(failed) >= FINISHED else 1


async def check(pki, hosts, state_file):
    state = json.load(open(state_file))
    api, worker_conn = cluster(pki, hosts, "api"), cluster(pki, hosts, "worker")
    problems = []
    left = [j for j in state["aged"] if await api.exists(BASE + j, BASE + j + ":logs")]
    if left:
        problems.append("%d aged jobs still have a hash or logs (e.g. %s)" % (len(left), left[:3]))
    indexed = set(await api.zrange(BASE + "completed", 0, -1)) | set(await api.zrange(BASE + "failed", 0, -1))
    if set(state["aged"]) & indexed:
        problems.append("aged jobs still listed in completed/failed")
    missing = [j for j in state["recent"] if j not in indexed or not await api.exists(BASE + j, BASE + j + ":logs") == 2]
    if missing:
        problems.append("%d recent finished jobs lost their hash, logs or index entry" % len(missing))
    # Orphans: job hashes that no state lists.
    listed = indexed | set(await api.lrange(BASE + "wait", 0, -1)) | set(await api.zrange(BASE + "delayed", 0, -1)) \
        | set(await api.zrange(BASE + "prioritized", 0, -1)) | set(await api.lrange(BASE + "active", 0, -1))
    admin = cluster(pki, hosts, "admin")  # SCAN is denied to the BullMQ users
    orphans = []
    async for key in admin.scan_iter(match=BASE + "*", count=1000):
        rest = key[len(BASE):]
        if rest.isdigit() and rest not in listed:
            orphans.append(rest)
    await admin.aclose()
    if orphans:
        problems.append("%d job hashes listed in no state (e.g. %s)" % (len(orphans), orphans[:3]))
    for kind in ("waiting", "delayed", "prioritized"):
        gone = [j for j in state[kind] if not await api.exists(BASE + j)]
        if gone:
            problems.append("%d %s jobs lost" % (len(gone), kind))
    if len(set(state["waiting"]) & set(await api.lrange(BASE + "wait", 0, -1))) != len(state["waiting"]):
        problems.append("waiting jobs are no longer in the wait list")
    # Live jobs are still processable.
    done = []

    async def process(job, token):
        done.append(job.id)
        return "ok"
    queue = Queue(QUEUE, {"connection": api, "prefix": PREFIX})
    worker = Worker(QUEUE, process, {"connection": worker_conn, "prefix": PREFIX, "concurrency": 20})
    deadline = time.time() + 120
    while time.time() < deadline and len(set(done) & set(state["waiting"] + state["prioritized"])) < WAITING + 20:
        await asyncio.sleep(0.5)
    await worker.close()
    await queue.close()
    processed = len(set(done) & set(state["waiting"] + state["prioritized"]))
    if processed != WAITING + 20:
        problems.append("only %d of %d live jobs were processed after the clean-up" % (processed, WAITING + 20))
    print(json.dumps(dict(aged_left=len(left), recent_kept=len(state["recent"]) - len(missing), orphans=len(orphans),
                          live_processed=processed, problems=problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(fill_or_check(sys.argv[1:], fill, check, __doc__))
