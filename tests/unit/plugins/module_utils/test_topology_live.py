"""gather() over the native connection (resp.py) against two real Redis 7.2 cluster nodes on loopback: the four
reads of a node share one connection and one round trip (at 90 nodes, 90 handshakes instead of 360 redis-cli
processes), and the topology is the one the redis-cli path builds."""
import pytest

from shardwise_harness import local_nodes
from shardwise_harness.local_nodes import Plain
from ansible_collections.shardwise.redis.plugins.module_utils import cli as climod, resp
from ansible_collections.shardwise.redis.plugins.module_utils.topology import gather

PASSWORD = "live-admin-password-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from local_nodes.fixture(tmp_path_factory, PASSWORD, ["--min-replicas-to-write", "0"])


def test_gather_reads_each_node_over_one_connection(cluster, monkeypatch):
    opened, sent = [], []

    class Counted(Plain):
        def __init__(self, host, port, *args, **kwargs):
            opened.append(int(port))
            try:
                super(Counted, self).__init__(host, port, *args, **kwargs)
            except OSError as exc:  # as resp.Connection says it
                raise resp.RespError("cannot connect over TLS: %s" % exc)

        def pipeline(self, commands):
            sent.append(len(commands))
            return super(Counted, self).pipeline(commands)

    monkeypatch.setattr(climod, "Connection", Counted)
    cli = climod.RedisCli(None, "redis-cli", "admin", PASSWORD, "ca", "crt", "key", native=True)
    closed = local_nodes.free_port()  # nothing listens there: a node that does not answer
    inventory = [dict(name=name, host="127.0.0.1", port=port, zone="zone-" + name) for name, port in cluster.items()]
    inventory.append(dict(name="gone", host="127.0.0.1", port=closed, zone="zone-c"))
    topology = gather(cli, inventory)
    summary = topology.summary()
    assert sorted(opened) == sorted(list(cluster.values()) + [closed])  # one connection per node, the silent one tried once
    assert sent.count(4) == 2  # the four reads of each answering node in one pipeline (AUTH is the other)
    assert summary["slots_covered"] == 16384
    assert sorted(topology.primaries_with_slots()) == ["a", "b"]
    assert summary["unreachable"] == ["gone"]
    assert "cannot connect" in topology.errors["gone"]
    assert all(summary["nodes"][name]["cluster_state"] == "ok" for name in cluster)
