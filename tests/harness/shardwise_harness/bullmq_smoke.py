"""BullMQ smoke test against the TLS cluster with the real `bullmq` client (PyPI).

Usage: bullmq_smoke.py PKI_DIR HOST [HOST ...]
Passwords come from REDIS_API_PASSWORD and REDIS_WORKER_PASSWORD. For each of the six queues of the
spec (hash-tagged prefixes bull:{<queue>}), the `api` user adds jobs and the `worker` user completes
them. A queue outside the allowed key prefix must be refused (proves the ACL is enforced).
Exits 1 on any failure. Never prints a secret.
"""
import asyncio
import sys
import time

from bullmq import Queue, Worker
from shardwise_harness.tls_client import async_cluster as cluster
from redis.exceptions import NoPermissionError, ResponseError

QUEUES = ["critical", "high", "normal", "low", "batch", "scheduled"]
JOBS_PER_QUEUE = 5


async def run(pki, hosts):
    failures = 0
    api, worker_conn = cluster(pki, hosts, "api"), cluster(pki, hosts, "worker")
    processed = {q: 0 for q in QUEUES}

    def processor_for(queue):
        async def process(job, token):
            processed[queue] += 1
            return {"echo": job.data["n"]}
        return process

    queues, workers = {}, {}
    for name in QUEUES:
        prefix = "bull:{%s}" % name
        queues[name] = Queue(name, {"connection": api, "prefix": prefix})
        workers[name] = Worker(name, processor_for(name), {"connection": worker_conn, "prefix": prefix})
    try:
        before = {q: (await queues[q].getJobCounts("completed")).get("completed", 0) for q in QUEUES}
        for name, queue in queues.items():
            for n in range(JOBS_PER_QUEUE):
                await queue.add("smoke", {"n": n}, {"removeOnComplete": False})
        deadline = time.time() + 90
        while time.time() < deadline:
            counts = [await queues[q].getJobCounts("completed") for q in QUEUES]
            if all(c.get("completed", 0) - before[q] >= JOBS_PER_QUEUE for q, c in zip(QUEUES, counts)):
                break
            await asyncio.sleep(0.5)
        for name in QUEUES:
            counts = await queues[name].getJobCounts("completed", "failed", "wait", "active")
            done = counts.get("completed", 0) - before[name]
            ok = done == JOBS_PER_QUEUE and processed[name] == JOBS_PER_QUEUE and counts.get("failed") == 0
            failures += not ok
            print("%s queue %-9s completed=%s failed=%s wait=%s processed=%d"
                  % ("PASS" if ok else "FAIL", name, done, counts.get("failed"),
                     counts.get("wait"), processed[name]))
        # Negative control: a prefix the ACL does not cover must be refused.
        outside = Queue("intruder", {"connection": api, "prefix": "other:{intruder}"})
        try:
            await outside.add("x", {"n": 0})
            print("FAIL api user could write outside its key prefix")
            failures += 1
        except (NoPermissionError, ResponseError) as exc:
            print("PASS api user refused outside its key prefix (%s)" % str(exc).split(".", maxsplit=1)[0][:60])
        finally:
            await outside.close()
    finally:
        for w in workers.values():
            await w.close()
        for q in queues.values():
            await q.close()
        await api.aclose()
        await worker_conn.aclose()
    total = len(QUEUES) + 1
    print("%d passed, %d failed" % (total - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv[1], sys.argv[2:])))
