"""BullMQ's key layout in cluster mode and queue depths read from the owning primary."""
import json

from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import queue_base, queue_key, queue_name, queue_report, queue_slot
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli
from ansible_collections.shardwise.redis.plugins.module_utils.slots import slot_of
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import ADDR, INVENTORY, healthy_views


def test_key_layout():
    assert queue_base("bull", "critical") == "bull:{critical}:critical:"
    assert queue_key("bull", "critical", "wait") == "bull:{critical}:critical:wait"
    assert queue_name("bull:{critical}:critical:") == "critical"
    # Node.js apps mostly put the hash tag in the queue name: new Queue('{critical}', {prefix: 'bull'})
    assert queue_base("bull", "{critical}") == "bull:{critical}:"
    assert queue_key("bull", "{critical}", "wait") == "bull:{critical}:wait"
    assert queue_name("bull:{critical}:") == "{critical}"
    assert queue_slot("bull", "{critical}") == queue_slot("bull", "critical") == slot_of("critical")
    assert queue_slot("bull", "critical") == 8090 and queue_slot("other", "critical") == 8090


def test_depths_are_read_from_the_owning_primary_in_one_pipe():
    calls = []

    def run(argv, data=None, environ_update=None):
        calls.append((argv[argv.index("-h") + 1], data))
        lines = data.split("\n")
        return 0, "\n".join(json.dumps(3 if ":wait" in line else 0) for line in lines) + "\n", ""
    cli = RedisCli(run, "redis-cli", "admin", "pw", "ca", "crt", "key")
    report = queue_report(cli, Topology(INVENTORY, healthy_views()), "bull", ["critical", "low"])
    depths = report["critical"]["depth"]
    assert depths["wait"] == 3 and depths["failed"] == 0 and len(depths) == 8 and report["critical"]["jobs"] == sum(depths.values())
    assert (report["critical"]["slot"], report["critical"]["primary"], report["low"]["primary"]) == (8090, "redis-b1", "redis-c1")
    # critical hashes to slot 8090 (b1: 5461-10922), low to 15214 (c1: 10923-16383); one redis-cli each
    assert [host for host, _unused in calls] == [ADDR["redis-b1"], ADDR["redis-c1"]]
    assert "bull:{low}:low:waiting-children" in calls[1][1]
