"""BullMQ benchmarks (PyPI bullmq over redis-py).

throughput(): jobs/s end to end (added by the producer -> completed by the worker) on 6 queues, through the
lab cluster (mutual TLS, api and worker ACL users, RedisCluster) and through one plain Redis on this
machine (same binary, no TLS, no ACL, AOF everysec like the cluster) as the reference.

cleanup(): the memory emergency clean-up against BullMQ's own Queue.clean on the same data (finished
jobs with 8 KiB payloads, two thirds of them aged three days), with a BullMQ producer adding jobs to the
same queue the whole time: bytes freed per second and the producer's p99 add latency during each."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import redis.asyncio as aredis
from bullmq import Queue, Worker
from shardwise_harness.tls_client import async_cluster

QUEUES = ["critical", "high", "normal", "low", "batch", "scheduled"]
AGE_MS = 3 * 24 * 3600 * 1000


def prefix(queue):
    return "bull:{%s}" % queue


async def _throughput(make_conn, jobs_per_queue, concurrency):
    api, worker_conn = make_conn("api"), make_conn("worker")
    done = {"n": 0}
    total = jobs_per_queue * len(QUEUES)

    async def process(job, token):
        done["n"] += 1
        return "ok"  # PyPI bullmq 3.4 stalls a worker whose processor returns None

    queues = [Queue(q, {"connection": api, "prefix": prefix(q)}) for q in QUEUES]
    for queue in queues:
        await queue.obliterate(force=True)
    workers = [Worker(q, process, {"connection": worker_conn, "prefix": prefix(q), "concurrency": concurrency})
               for q in QUEUES]
    started = time.time()

    async def produce(queue):
        for start in range(0, jobs_per_queue, 50):
            await asyncio.gather(*[queue.add("bench", {"n": n}, {"removeOnComplete": True, "removeOnFail": True})
                                   for n in range(start, min(jobs_per_queue, start + 50))])
    try:
        await asyncio.gather(*[produce(q) for q in queues])
        added = time.time() - started
        deadline = time.time() + 600
        while time.time() < deadline:
            counts = [await q.getJobCounts("waiting", "active", "delayed", "prioritized") for q in queues]
            if not any(sum(c.values()) for c in counts) and done["n"] >= total:
                break
            await asyncio.sleep(0.05)
        seconds = time.time() - started
    finally:
        for worker in workers:
            await worker.close()
    for queue in queues:
        await queue.obliterate(force=True)
        await queue.close()
    return dict(jobs=total, processed=done["n"], seconds=round(seconds, 2), add_seconds=round(added, 2),
                jobs_per_second=round(done["n"] / seconds))


def plain_redis(top, port=6391):
    """One plain Redis on 127.0.0.1 from the lab's archive (no TLS, no ACL, AOF everysec), in a temp dir."""
    binary = os.path.join(top, ".cache", "redis-7.2.4-linux-x86_64", "bin", "redis-server")
    workdir = tempfile.mkdtemp(prefix="shardwise-bench-")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir, "--appendonly", "yes",
                             "--appendfsync", "everysec", "--save", "", "--protected-mode", "yes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, workdir


def throughput(config, top, jobs_per_queue=1000, concurrency=20):
    hosts = list(config["hosts"].values())
    cluster = asyncio.run(_throughput(lambda user: async_cluster(config["pki"], hosts, user, max_connections=1000),
                                      jobs_per_queue, concurrency))
    proc, workdir = plain_redis(top)
    try:
        plain = dict(host="127.0.0.1", port=6391, decode_responses=True, max_connections=1000)
        single = asyncio.run(_throughput(lambda user: aredis.Redis(**plain), jobs_per_queue, concurrency))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
    print("  BullMQ 6 queues: cluster (TLS+ACL) %d jobs/s, plain single Redis %d jobs/s"
          % (cluster["jobs_per_second"], single["jobs_per_second"]))
    return dict(cluster=cluster, single_plain_redis=single,
                ratio=round(cluster["jobs_per_second"] / float(single["jobs_per_second"]), 2))


# ---------------------------------------------------------------- clean-up

CLEAN_QUEUE = "batch"


async def _fill(config, finished):
    hosts = list(config["hosts"].values())
    api, worker_conn = async_cluster(config["pki"], hosts, "api"), async_cluster(config["pki"], hosts, "worker")
    queue = Queue(CLEAN_QUEUE, {"connection": api, "prefix": prefix(CLEAN_QUEUE)})
    await queue.obliterate(force=True)
    payload = "p" * 8192
    for start in range(0, finished, 100):
        await asyncio.gather(*[queue.add("old", {"n": n, "blob": payload}, {"removeOnComplete": False, "removeOnFail": False})
                               for n in range(start, min(finished, start + 100))])

    async def process(job, token):
        return {"ok": job.data["n"]}
    worker = Worker(CLEAN_QUEUE, process, {"connection": worker_conn, "prefix": prefix(CLEAN_QUEUE), "concurrency": 100})
    deadline = time.time() + 600
    while time.time() < deadline and (await queue.getJobCounts("completed"))["completed"] < finished:
        await asyncio.sleep(0.5)
    await worker.close()
    base = "%s:%s:" % (prefix(CLEAN_QUEUE), CLEAN_QUEUE)
    ids = sorted(await api.zrange(base + "completed", 0, -1), key=int)
    aged = 0
    for i, job_id in enumerate(ids):  # two thirds aged three days, as if BullMQ had finished them then
        if i % 3 == 2:
            continue
        finished_on = int(await api.hget(base + job_id, "finishedOn")) - AGE_MS
        await api.hset(base + job_id, "finishedOn", finished_on)
        await api.zadd(base + "completed", {job_id: finished_on}, xx=True)
        aged += 1
    await queue.close()
    return dict(completed=len(ids), aged=aged)


class Producer(threading.Thread):
    """Adds a small job to the clean-up queue every 5 ms and records each add's latency."""

    def __init__(self, config):
        super().__init__(daemon=True)
        self.config = config
        self.stop = threading.Event()
        self.samples = []  # (time, seconds)
        self.errors = 0

    def run(self):
        asyncio.run(self.main())

    async def main(self):
        api = async_cluster(self.config["pki"], list(self.config["hosts"].values()), "api")
        queue = Queue(CLEAN_QUEUE, {"connection": api, "prefix": prefix(CLEAN_QUEUE)})
        while not self.stop.is_set():
            started = time.time()
            try:
                await queue.add("live", {"t": started}, {"removeOnComplete": True})
                self.samples.append((started, time.time() - started))
            except Exception:
                self.errors += 1
            await asyncio.sleep(max(0.0, 0.005 - (time.time() - started)))
        await queue.close()

    def p99_ms(self, since, until):
        values = sorted(s for t, s in self.samples if since <= t <= until)
        if not values:
            return None
        return round(values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, 2)

    def max_ms(self, since, until):
        values = [s for t, s in self.samples if since <= t <= until]
        return round(max(values) * 1000, 2) if values else None


def used_memory(config, name):
    from drill import admin
    return int(admin(config).conn(config["hosts"][name]).info("memory")["used_memory"])


def owner_of_queue(config):
    from drill import owner_of
    from drill_clients import crc16
    return owner_of(config, crc16(CLEAN_QUEUE))


def clean_with_collection(config, top, out):
    argv = [top + "/.venv/bin/ansible-playbook", "-i", top + "/inventories/lab", top + "/playbooks/memory_emergency.yml",
            "-e", "redis_memory_force=true", "-e", "redis_runbook_report_dir=" + out]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit("memory_emergency.yml failed: %s" % proc.stdout[-1500:])
    with open(os.path.join(out, "memory_emergency-latest.json")) as fh:
        report = json.load(fh)
    removed = sum(q["removed_completed"] for row in report["details"]["nodes"] for q in row.get("queues", {}).values())
    details = report["details"]
    return float(details["seconds"]), removed, float(details["started"])


async def _clean_with_bullmq(config):
    api = async_cluster(config["pki"], list(config["hosts"].values()), "api")
    queue = Queue(CLEAN_QUEUE, {"connection": api, "prefix": prefix(CLEAN_QUEUE)})
    started = time.time()
    removed = await queue.clean(24 * 3600 * 1000, 0, "completed")  # grace 24 h, no limit: as the runbook's retention
    seconds = time.time() - started
    await queue.close()
    return seconds, len(removed)


def cleanup(config, top, out, finished=6000):
    owner = owner_of_queue(config)
    results = {}
    for label in ("shardwise.redis memory_emergency", "BullMQ Queue.clean"):
        fill = asyncio.run(_fill(config, finished))
        time.sleep(1)
        before = used_memory(config, owner)
        producer = Producer(config)
        producer.start()
        time.sleep(1)
        mark = time.time()
        if label.startswith("shardwise"):
            seconds, removed, mark = clean_with_collection(config, top, out)  # the module's own start and duration
        else:
            seconds, removed = asyncio.run(_clean_with_bullmq(config))
        end = mark + seconds
        time.sleep(0.5)
        producer.stop.set()
        producer.join()
        after = used_memory(config, owner)
        freed = before - after
        results[label] = dict(fill=fill, removed=removed, seconds=round(seconds, 3), freed_bytes=freed,
                              bytes_per_second=round(freed / seconds) if seconds else None,
                              producer_p99_ms=producer.p99_ms(mark, end), producer_max_ms=producer.max_ms(mark, end),
                              producer_adds=len([1 for t, _unused in producer.samples if mark <= t <= end]),
                              producer_errors=producer.errors)
        print("  %-34s removed %d jobs, freed %.1f MB in %.2f s (%.1f MB/s), producer p99 %s ms, max %s ms"
              % (label, removed, freed / 1e6, seconds, freed / 1e6 / seconds if seconds else 0,
                 results[label]["producer_p99_ms"], results[label]["producer_max_ms"]))
    asyncio.run(_obliterate(config))
    return results


async def _obliterate(config):
    api = async_cluster(config["pki"], list(config["hosts"].values()), "api")
    queue = Queue(CLEAN_QUEUE, {"connection": api, "prefix": prefix(CLEAN_QUEUE)})
    await queue.obliterate(force=True)
    await queue.close()
