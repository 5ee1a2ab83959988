"""Real BullMQ jobs for the backup/restore test (PyPI `bullmq`, RedisCluster over mutual TLS).

  bullmq_backup.py fill  PKI_DIR STATE_FILE HOST [HOST ...]
      three queues, each on another shard (hash tags chosen by slot): per queue 200 finished jobs (a worker
      processed them, results kept), then 300 waiting and 30 delayed (1 h) jobs with a payload whose sha256 is
      recorded. Ids, payload digests and per-queue counts go to STATE_FILE.
  bullmq_backup.py check PKI_DIR STATE_FILE HOST [HOST ...]
      after a restore: every job of STATE_FILE is back in its state with the same payload and counts, then a worker
      processes every waiting job exactly once (0 lost, 0 duplicated).
Uses the api user for producing, the worker user for processing; passwords from REDIS_API_PASSWORD and
REDIS_WORKER_PASSWORD. Prints one JSON line; exits 1 on any failure. Never prints a secret.
"""
import asyncio
import hashlib
import json
import sys
import time

from bullmq import Queue, Worker
from shardwise_harness.drill_clients import tag_in
from shardwise_harness.tls_client import async_cluster as cluster
from shardwise_harness import fill_or_check

SHARDS = [(0, 5460), (5461, 10922), (10923, 16383)]
FINISHED, WAITING, DELAYED = 200, 300, 30


def queues():
    """(name, prefix) per shard: the queue name carries the braces, as BullMQ users write it in cluster mode."""
    return [("{%s}" % tag_in(first, last, "bk"), "bull") for first, last in SHARDS]


def digest(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


async def fill(pki, hosts, state_file):
    state = {}
    for name, prefix in queues():
        # fresh connections per queue: a closed Worker leaves the shared cluster client unusable
        api, worker_conn = cluster(pki, hosts, "api"), cluster(pki, hosts, "worker")
        queue = Queue(name, {"connection": api, "prefix": prefix})
        await queue.obliterate(force=True)  # an earlier run's jobs
        for start in range(0, FINISHED, 50):
            await asyncio.gather(*[queue.add("done", {"n": n}, {"removeOnComplete": False})
                                   for n in range(start, min(FINISHED, start + 50))])

        async def process(job, token):
            return {"ok": job.data["n"]}
        worker = Worker(name, process, {"connection": worker_conn, "prefix": prefix, "concurrency": 50})
        deadline = time.time() + 300
        while time.time() < deadline and (await queue.getJobCounts("completed"))["completed"] < FINISHED:
            await asyncio.sleep(0.5)
        await worker.close()
        jobs = {}
        for n in range(WAITING):
            data = {"n": n, "blob": hashlib.sha1(str(n).encode()).hexdigest() * 20}
            jobs[(await queue.add("kept", data)).id] = dict(state="wait", digest=digest(data))
        for n in range(DELAYED):
            data = {"n": n, "later": True}
            jobs[(await queue.add("later", data, {"delay": 3600 * 1000})).id] = dict(state="delayed", digest=digest(data))
        counts = await queue.getJobCounts("waiting", "delayed", "completed")
        state[name] = dict(prefix=prefix, jobs=jobs, counts=counts)
        await queue.close()
        await api.aclose()
        await worker_conn.aclose()
    with open(state_file, "w") as fh:
        json.dump(state, fh)
    print(json.dumps(dict((name, q["counts"]) for name, q in state.items())))
    # At least FINISHED completed: a client retry after a timeout may add a job twice; check() compares with these counts.
    ok = all(q["counts"]["waiting"] == WAITING and q["counts"]["delayed"] == DELAYED and q["counts"]["completed"] >= FINISHED
             for q in state.values())
    return 0 if ok else 1


async def check(pki, hosts, state_file):
    state = json.load(open(state_file))
    report, problems = {}, []
    for name, q in state.items():
        api, worker_conn = cluster(pki, hosts, "api"), cluster(pki, hosts, "worker")
        queue = Queue(name, {"connection": api, "prefix": q["prefix"]})
        counts = await queue.getJobCounts("waiting", "delayed", "completed")
        if counts != q["counts"]:
            problems.append("%s: counts %s, before the backup %s" % (name, counts, q["counts"]))
        missing, changed = [], []
        for job_id, want in q["jobs"].items():
            job = await queue.getJob(job_id)
            if job is None:
                missing.append(job_id)
            elif digest(job.data) != want["digest"] or await job.getState() != ("waiting" if want["state"] == "wait" else want["state"]):
                changed.append(job_id)
        if missing or changed:
            problems.append("%s: %d jobs missing, %d with another payload or state" % (name, len(missing), len(changed)))
        seen = []

        async def process(job, token):
            seen.append(job.id)
            return "ok"
        worker = Worker(name, process, {"connection": worker_conn, "prefix": q["prefix"], "concurrency": 50})
        waiting = set(j for j, w in q["jobs"].items() if w["state"] == "wait")
        deadline = time.time() + 180
        while time.time() < deadline and len(set(seen) & waiting) < len(waiting):
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)
        await worker.close()
        await queue.close()
        lost = len(waiting - set(seen))
        duplicated = len(seen) - len(set(seen))
        if lost or duplicated:
            problems.append("%s: %d waiting jobs not processed, %d processed twice" % (name, lost, duplicated))
        await api.aclose()
        await worker_conn.aclose()
        report[name] = dict(counts=counts, missing=len(missing), changed=len(changed), processed=len(set(seen) & waiting),
                            lost=lost, duplicated=duplicated)
    print(json.dumps(dict(queues=report, problems=problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(fill_or_check(sys.argv[1:], fill, check, __doc__))
