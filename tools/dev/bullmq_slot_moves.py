"""Python BullMQ (redis-py asyncio RedisCluster), or Node.js BullMQ 5 on ioredis, while the collection's slot
mover moves the six queues' slots back and forth between two local Redis 7.2 nodes: how many jobs end
failed or run twice.

Usage (from the repository root, after `make venv archive`):
  .venv/bin/python tools/dev/bullmq_slot_moves.py [--rounds 20] [--reinitialize-steps 0] [--client node]
--client node runs tests/harness/shardwise_harness/node/during.mjs (the placement test's Node.js client) over a plain
ioredis Cluster instead of the Python client, and prints its figures.
Prints one JSON line: moves, jobs acknowledged, processed, lost, duplicated, add errors and the
failedReason counts of the failed sets. Loopback only (two nodes on free ports, no TLS), removed at
the end. docs/failure-modes.md quotes its figures for --reinitialize-steps 5 (redis-py's default) and 0.
"""
import argparse
import binascii
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import redis
from redis.asyncio.cluster import ClusterNode as AsyncNode, RedisCluster as AsyncCluster

from ansible_collections.shardwise.redis.plugins.module_utils import cli as climod
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import Migrator
from shardwise_harness import local_nodes
from shardwise_harness.drill_clients import Jobs, NodeJobs

PASSWORD = "slot-moves-local-only-0123456789"
QUEUES = ["critical", "high", "normal", "low", "batch", "scheduled"]
# The Node.js client's connection here: docs/connect.md's redis.mjs without TLS (the local nodes are plain).
PLAIN_MJS = """import { Cluster } from 'ioredis';
export function connection() {
  const nodes = process.env.REDIS_NODES.split(',').map((hostPort) => {
    const [host, port] = hostPort.split(':');
    return { host, port: Number(port) };
  });
  return new Cluster(nodes, { redisOptions: {
    username: process.env.REDIS_USER, password: process.env.REDIS_PASSWORD, maxRetriesPerRequest: null } });
}
"""


def node_client(work, ports):
    """tests/harness/shardwise_harness/node/during.mjs (drill_clients.NodeJobs) over a plain cluster, until result()."""
    env = dict(os.environ, REDIS_NODES=",".join("127.0.0.1:%d" % p for p in ports.values()), REDIS_USER="admin",
               REDIS_PASSWORD=PASSWORD)
    return NodeJobs(os.path.join(work, "nodejs"), env, QUEUES, "m%d" % int(time.time()), connection=PLAIN_MJS)


def python_client(ports, steps):
    """shardwise_harness.drill_clients.Jobs (the drill's and the placement test's Python BullMQ producer and
    worker per queue) over a plain RedisCluster with reinitialize_steps=STEPS, adds every 20 ms."""
    def connect(_user, **timeouts):
        return AsyncCluster(startup_nodes=[AsyncNode("127.0.0.1", ports["a"])], username="admin", password=PASSWORD,
                            decode_responses=True, reinitialize_steps=steps, **timeouts)
    return Jobs({}, QUEUES, threading.Event(), "m%d" % int(time.time()), connect=connect, pause=0.02)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--reinitialize-steps", type=int, default=0)
    parser.add_argument("--client", choices=["python", "node"], default="python")
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
        if args.client == "node":
            client = node_client(work, ports)
        else:
            client = python_client(ports, args.reinitialize_steps)
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
        if args.client == "node":
            result = client.result()
            result.pop("timeline", None)
            print(json.dumps(dict(result, moves=moves)))
            return
        client.stop.set()
        client.join()
        acked = set(client.acked)
        failed = {}
        for queue in QUEUES:
            base = "bull:{%s}:%s:" % (queue, queue)
            for job_id in admin.zrange(base + "failed", 0, -1):
                reason = str(admin.hget(base + job_id, "failedReason"))[:80]
                failed[reason] = failed.get(reason, 0) + 1
        print(json.dumps(dict(reinitialize_steps=args.reinitialize_steps, moves=moves, acknowledged=len(acked),
                              processed=len(client.processed), lost=len(acked - set(client.processed)),
                              duplicated=sum(1 for n in client.processed.values() if n > 1),
                              add_errors=len(client.add_errors), worker_restarts=len(client.worker_restarts),
                              failure=client.failure, failed=failed)))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
