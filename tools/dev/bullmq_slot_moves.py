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
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import redis
from bullmq import Queue, Worker
from redis.asyncio.cluster import ClusterNode as AsyncNode, RedisCluster as AsyncCluster

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(TOP, ".cache", "collections"))
from ansible_collections.shardwise.redis.plugins.module_utils import cli as climod  # noqa: E402
from ansible_collections.shardwise.redis.plugins.module_utils import resp  # noqa: E402
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import Migrator  # noqa: E402

PASSWORD = "slot-moves-local-only-0123456789"
QUEUES = ["critical", "high", "normal", "low", "batch", "scheduled"]


class Plain(resp.Connection):
    """resp.Connection without TLS (the loopback nodes have none)."""

    def __init__(self, host, port, user, password, *files, **kwargs):  # pylint: disable=super-init-not-called
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.reader = self.sock.makefile("rb")
        assert self.pipeline([["AUTH", user, password]])[0] == "OK"


def free_port():
    """A port p with p + 10000 (the cluster bus) free as well."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 55000:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


def start_nodes(work):
    archives = glob.glob(os.path.join(TOP, ".cache", "redis-7.2.*-linux-x86_64.tar.gz"))
    if not archives:
        sys.exit("no Redis 7.2 archive in .cache: run `make archive` first")
    subprocess.run(["tar", "-xzf", archives[0], "-C", work], check=True)
    server = glob.glob(os.path.join(work, "*", "bin", "redis-server"))[0]
    ports, procs = {}, []
    for name in ("a", "b"):
        ports[name] = free_port()
        os.makedirs(os.path.join(work, name))
        procs.append(subprocess.Popen([server, "--port", str(ports[name]), "--bind", "127.0.0.1", "--cluster-enabled",
                                       "yes", "--save", "", "--appendonly", "no", "--dir", os.path.join(work, name),
                                       "--logfile", "log"]))
    conns = {}
    for name, port in ports.items():
        conns[name] = redis.Redis(port=port, decode_responses=True)
        for _attempt in range(100):
            try:
                conns[name].ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        conns[name].acl_setuser("admin", enabled=True, passwords=["+" + PASSWORD], keys=["*"], channels=["*"],
                                commands=["+@all"])
    conns["a"].execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 8191)
    conns["b"].execute_command("CLUSTER", "ADDSLOTSRANGE", 8192, 16383)
    conns["a"].execute_command("CLUSTER", "MEET", "127.0.0.1", ports["b"])
    while not all("cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in conns.values()):
        time.sleep(0.1)
    time.sleep(1)
    return ports, procs


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
    ports, procs = start_nodes(work)
    try:
        climod.Connection = Plain
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
