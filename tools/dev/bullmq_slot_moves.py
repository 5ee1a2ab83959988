"""Python BullMQ (redis-py asyncio RedisCluster) while the collection's slot mover moves the six queues'
slots back and forth between two local Redis 7.2 nodes: how many jobs end failed or run twice.

Usage (from the repository root, after `make venv archive`):
  .venv/bin/python tools/dev/bullmq_slot_moves.py [--rounds 20] [--reinitialize-steps 0]
Prints one JSON line: moves, jobs acknowledged, processed, lost, duplicated, add errors and the
failedReason counts of the failed sets. Loopback only (two nodes on free ports, no TLS), removed at
the end. docs/failure-modes.md quotes its figures for --reinitialize-steps 5 (redis-py's default) and 0.
"""
import argparse
import asyncio
import binascii
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import redis
from bullmq import Queue, Worker
from redis.asyncio.cluster import ClusterNode as AsyncNode, RedisCluster as AsyncCluster

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path[:0] = [os.path.join(TOP, ".cache", "collections"), os.path.join(TOP, "tests", "unit")]
import local_nodes  # noqa: E402
from ansible_collections.shardwise.redis.plugins.module_utils import cli as climod  # noqa: E402
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import Migrator  # noqa: E402

PASSWORD = "slot-moves-local-only-0123456789"
QUEUES = ["critical", "high", "normal", "low", "batch", "scheduled"]


class Client(threading.Thread):
    """A producer per queue and a worker per queue (concurrency 10), one RedisCluster each side."""

    def __init__(self, ports, steps):
        super().__init__(daemon=True)
        self.ports, self.steps = ports, steps
        self.stop = threading.Event()
        self.acked, self.processed, self.add_errors = set(), {}, {}

    def run(self):
        asyncio.run(self.main())

    def cluster(self):
        return AsyncCluster(startup_nodes=[AsyncNode("127.0.0.1", self.ports["a"])], username="admin",
                            password=PASSWORD, decode_responses=True, socket_timeout=2, socket_connect_timeout=1,
                            reinitialize_steps=self.steps)

    async def produce(self, name, queue):
        n = 0
        while not self.stop.is_set():
            n += 1
            job_id = "%s-%d" % (name, n)
            while True:
                try:
                    await asyncio.wait_for(queue.add("move", {"n": n}, {"jobId": job_id, "removeOnComplete": False}), 3)
                    self.acked.add(job_id)
                    break
                except Exception as exc:  # counted, then the same id again
                    kind = type(exc).__name__
                    self.add_errors[kind] = self.add_errors.get(kind, 0) + 1
                    if self.stop.is_set():
                        break
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.02)

    async def main(self):
        api, work = self.cluster(), self.cluster()

        async def process(job, token):
            self.processed[job.id] = self.processed.get(job.id, 0) + 1
            return "ok"

        queues = dict((q, Queue(q, {"connection": api, "prefix": "bull:{%s}" % q})) for q in QUEUES)
        workers = [Worker(q, process, {"connection": work, "concurrency": 10, "drainDelay": 1, "runRetryDelay": 500,
                                       "prefix": "bull:{%s}" % q}) for q in QUEUES]
        await asyncio.gather(*[self.produce(name, queue) for name, queue in queues.items()])
        deadline = time.time() + 60
        while time.time() < deadline and any(j not in self.processed for j in list(self.acked)):
            await asyncio.sleep(0.5)
        for worker in workers:
            await worker.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--reinitialize-steps", type=int, default=0)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="slot-moves-")
    try:
        ports, procs = local_nodes.start(work, PASSWORD)
    except RuntimeError as exc:
        sys.exit(str(exc))
    time.sleep(1)
    try:
        climod.Connection = local_nodes.Plain
        cli = climod.RedisCli(None, "redis-cli", "admin", PASSWORD, "ca", "crt", "key", native=True)
        nodes = dict((n, dict(host="127.0.0.1", port=p)) for n, p in ports.items())
        ids = dict((n, cli.pipe("127.0.0.1", p, [["CLUSTER", "MYID"]])[0]) for n, p in ports.items())
        admin = redis.RedisCluster(startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", ports["a"])],
                                   username="admin", password=PASSWORD, decode_responses=True)
        client = Client(ports, args.reinitialize_steps)
        client.start()
        time.sleep(3)
        moves = 0
        for _round in range(args.rounds):
            for queue in QUEUES:
                slot = binascii.crc_hqx(queue.encode(), 0) % 16384
                src = admin.nodes_manager.get_node_from_slot(slot).port == ports["a"] and "a" or "b"
                dst = "b" if src == "a" else "a"
                Migrator(cli, nodes, ids).move([(slot, src, dst)], [src, dst])
                admin.nodes_manager.initialize()
                moves += 1
                time.sleep(0.1)
            time.sleep(0.3)
        client.stop.set()
        client.join()
        failed = {}
        for queue in QUEUES:
            base = "bull:{%s}:%s:" % (queue, queue)
            for job_id in admin.zrange(base + "failed", 0, -1):
                reason = str(admin.hget(base + job_id, "failedReason"))[:80]
                failed[reason] = failed.get(reason, 0) + 1
        print(json.dumps(dict(reinitialize_steps=args.reinitialize_steps, moves=moves, acknowledged=len(client.acked),
                              processed=len(client.processed), lost=len(client.acked - set(client.processed)),
                              duplicated=sum(1 for n in client.processed.values() if n > 1),
                              add_errors=client.add_errors, failed=failed)))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
