"""Migrator against two real Redis 7.2 cluster nodes on loopback (the redis-server of `make archive`),
with a BullMQ-shaped Lua script hammering the queue's slot while it moves back and forth.

In Redis 7.2, while a slot is MIGRATING and still holds keys, a script that creates a key it was not
given (BullMQ's job lock, set after the job moved from wait to active) fails half way: the job is left
in active without a lock, later stalls, and BullMQ fails it. test_the_hazard_is_real shows that state on
this very binary; the move must never let a client command see it."""
import binascii
import threading
import time

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from shardwise_harness import local_nodes
from shardwise_harness.local_nodes import Plain
from ansible_collections.shardwise.redis.plugins.module_utils import cli as climod
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import MIGRATE_USER, Migrator

PASSWORD = "live-admin-password-0123456789"
QUEUE = "bull:{live}"
# moveToActive in miniature: wait -> active, then the lock, a key the script was not given
TAKE = """
local id = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
if not id then return 0 end
redis.call('SET', ARGV[1] .. id .. ':lock', 'token', 'PX', 30000)
redis.call('LREM', KEYS[2], 1, id)
redis.call('DEL', ARGV[1] .. id .. ':lock')
redis.call('RPUSH', KEYS[1], id)
return 1
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two primaries (slots 0-8191, 8192-16383), user admin with PASSWORD; yields {name: port}."""
    yield from local_nodes.fixture(tmp_path_factory, PASSWORD, ["--slowlog-log-slower-than", "0", "--slowlog-max-len", "100000"])


@pytest.fixture
def migrator(cluster, monkeypatch):
    monkeypatch.setattr(climod, "Connection", Plain)
    cli = climod.RedisCli(None, "redis-cli", "admin", PASSWORD, "ca", "crt", "key", native=True)
    nodes = dict((name, dict(host="127.0.0.1", port=port)) for name, port in cluster.items())
    ids = dict((name, cli.pipe("127.0.0.1", port, [["CLUSTER", "MYID"]])[0]) for name, port in cluster.items())
    return lambda: Migrator(cli, nodes, ids)


def admin(port):
    return redis.Redis(port=port, username="admin", password=PASSWORD, decode_responses=True)


def owner(cluster, slot):
    """The node that serves `slot`, from CLUSTER SLOTS on node a (raw RESP: redis-py reshapes the reply)."""
    conn = Plain("127.0.0.1", cluster["a"], "admin", PASSWORD)
    try:
        ranges = conn.pipeline([["CLUSTER", "SLOTS"]])[0]
    finally:
        conn.close()
    for first, last, primary in ((int(r[0]), int(r[1]), r[2]) for r in ranges):
        if first <= slot <= last:
            return [name for name, port in cluster.items() if int(primary[1]) == port][0]
    return None


def fill(cluster, slot_range, per_slot):
    """per_slot keys in every slot of slot_range (other tenants moving in the same window)."""
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster["a"])], username="admin", password=PASSWORD)
    tags, n = {}, 0
    while len(tags) < len(slot_range):
        tag = "t%d" % n
        n += 1
        slot = binascii.crc_hqx(tag.encode(), 0) % 16384
        if slot in slot_range:
            tags.setdefault(slot, tag)
    pipe = client.pipeline()
    for tag in tags.values():
        for i in range(per_slot):
            pipe.set("{%s}:%d" % (tag, i), "v" * 100)
    pipe.execute()
    client.close()


def test_the_hazard_is_real(cluster):
    """A slot MIGRATING with its keys still on the source: the script moves the job, then fails on the lock."""
    slot = binascii.crc_hqx(b"hazard", 0) % 16384
    src = owner(cluster, slot)
    dst = "b" if src == "a" else "a"
    s, d = admin(cluster[src]), admin(cluster[dst])
    s.rpush("{hazard}:wait", "1")
    s.rpush("{hazard}:active", "sentinel")
    d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", s.execute_command("CLUSTER", "MYID"))
    s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", d.execute_command("CLUSTER", "MYID"))
    try:
        with pytest.raises(redis.ResponseError, match="non local key"):
            s.eval(TAKE, 2, "{hazard}:wait", "{hazard}:active", "{hazard}:")
        assert s.lrange("{hazard}:active", 0, -1) == ["1", "sentinel"]  # half done: in active, no lock
    finally:
        for node in (s, d):
            node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
        s.delete("{hazard}:wait", "{hazard}:active")


def test_a_queue_slot_moves_back_and_forth_under_load_without_a_script_error(cluster, migrator):
    slot = binascii.crc_hqx(b"live", 0) % 16384
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster["a"])], username="admin", password=PASSWORD,
                          decode_responses=True)
    client.rpush(QUEUE + ":wait", *range(200))
    client.rpush(QUEUE + ":active", "sentinel")
    pipe = client.pipeline()
    for i in range(3000):
        pipe.hset("%s:%d" % (QUEUE, i), mapping={"data": "x" * 100})
    pipe.execute()
    window = range(max(0, slot - 300), slot) if slot >= 300 else range(slot + 1, slot + 301)
    fill(cluster, set(window), 50)  # the slots moving in the same window hold keys too
    stop, seen = threading.Event(), dict(ok=0, errors={})

    def hammer():
        conn = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", cluster["a"])], username="admin", password=PASSWORD)
        take = conn.register_script(TAKE)
        while not stop.is_set():
            try:
                take(keys=[QUEUE + ":wait", QUEUE + ":active"], args=[QUEUE + ":"])
                seen["ok"] += 1
            except redis.RedisError as exc:
                seen["errors"][str(exc)[:60]] = seen["errors"].get(str(exc)[:60], 0) + 1
        conn.close()
    threads = [threading.Thread(target=hammer) for _unused in range(3)]
    for thread in threads:
        thread.start()
    try:
        moves = 0
        for _round in range(4):
            src = owner(cluster, slot)
            dst = "b" if src == "a" else "a"
            m = migrator()
            m.move([(s, src, dst) for s in sorted(set(window) | {slot})], [src, dst])
            assert m.slots_moved == len(window) + 1 and owner(cluster, slot) == dst
            moves += 1
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert seen["errors"] == {} and seen["ok"] > 100 and moves == 4
    assert sorted(int(x) for x in client.lrange(QUEUE + ":wait", 0, -1)) == list(range(200))
    assert client.lrange(QUEUE + ":active", 0, -1) == ["sentinel"]
    held = sum(admin(port).execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) for port in cluster.values())
    assert held == 3002  # wait, active and the 3000 job hashes, on one node
    client.close()


def test_the_move_user_is_gone_afterwards_and_the_admin_password_never_reached_redis_in_a_command(cluster, migrator):
    slot = binascii.crc_hqx(b"users", 0) % 16384
    src = owner(cluster, slot)
    dst = "b" if src == "a" else "a"
    admin(cluster[src]).set("{users}:k", "v")
    migrator().move([(slot, src, dst)], [src, dst])
    assert admin(cluster[dst]).get("{users}:k") == "v"
    for port in cluster.values():
        node = admin(port)
        assert MIGRATE_USER not in node.acl_users()
        logged = repr(node.slowlog_get(100000))
        assert "EVALSHA" in logged or port != cluster[src]
        assert PASSWORD not in logged
