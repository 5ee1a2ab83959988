"""Parsers, Topology and health on CLUSTER NODES / INFO captured from real Redis 7.2.4 nodes (the lab:
six TLS nodes in three zones; fixtures in tests/unit/fixtures)."""
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology, health_problems, parse_cluster_nodes, parse_info

from lab_capture import ADDR, INVENTORY, fixture, healthy_views


# ---------------------------------------------------------------- parsers

def test_parse_cluster_nodes_healthy():
    nodes = parse_cluster_nodes(fixture("nodes-healthy-11.txt"))
    assert len(nodes) == 6
    me = [n for n in nodes if n["myself"]][0]
    assert me["host"] == "10.89.20.11" and me["port"] == 6379 and me["bus_port"] == 16379
    assert me["hostname"] == "redis-a1" and me["role"] == "primary" and me["slots"] == [(0, 5460)]
    assert me["slot_count"] == 5461
    replicas = [n for n in nodes if n["role"] == "replica"]
    assert len(replicas) == 3 and all(r["primary_id"] for r in replicas)
    assert sum(n["slot_count"] for n in nodes) == 16384


def test_parse_migrating_and_importing():
    source = [n for n in parse_cluster_nodes(fixture("nodes-migrating-source.txt")) if n["myself"]][0]
    target = [n for n in parse_cluster_nodes(fixture("nodes-migrating-target.txt")) if n["myself"]][0]
    assert list(source["migrating"]) == [100] and source["slots"] == [(0, 5460)]
    assert list(target["importing"]) == [100] and target["slots"] == [(5461, 10922)]


def test_parse_handshake_and_failed_nodes():
    hand = parse_cluster_nodes(fixture("nodes-handshake.txt"))
    assert sum(1 for n in hand if n["handshake"]) == 1
    failed = parse_cluster_nodes(fixture("nodes-failed-promoted.txt"))
    dead = [n for n in failed if n["failed"]]
    assert len(dead) == 1 and dead[0]["host"] == "10.89.20.11" and dead[0]["slots"] == []


def test_parse_info_and_cluster_info():
    info = parse_info(fixture("info-all-primary.txt"))
    assert info["redis_version"].startswith("7.2.") and info["role"] == "master"
    assert info["maxmemory_policy"] == "noeviction"
    cinfo = parse_info(fixture("cluster-info-ok.txt"))
    assert cinfo["cluster_state"] == "ok" and cinfo["cluster_slots_ok"] == "16384"


# ---------------------------------------------------------------- topology and health

def test_healthy_topology_is_healthy():
    topo = Topology(INVENTORY, healthy_views(), {n: fixture("cluster-info-ok.txt") for n in ADDR})
    summary = topo.summary()
    assert summary["slots_covered"] == 16384 and summary["zone_violations"] == []
    assert [s["primary"] for s in summary["shards"]] == ["redis-a1", "redis-b1", "redis-c1"]
    assert health_problems(topo) == []


def test_zone_violation_is_reported():
    views = healthy_views()
    topo = Topology([dict(n, zone="zone-a" if n["name"] in ("redis-a1", "redis-b2") else n["zone"]) for n in INVENTORY], views)
    violations = topo.summary()["zone_violations"]
    assert violations == [dict(replica="redis-b2", primary="redis-a1", zone="zone-a")]
    assert any("shares zone" in p for p in health_problems(topo))


# ---------------------------------------------------------------- gather

def test_gather_reads_the_nodes_in_parallel_and_notes_the_silent_ones():
    """Every node's first command waits until all six are asked at once (a barrier that breaks after 5 s if they are
    asked in turn); two nodes time out. The topology keeps the inventory's order and each silent node's reason."""
    import threading

    from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli
    from ansible_collections.shardwise.redis.plugins.module_utils.topology import gather

    barrier = threading.Barrier(len(INVENTORY), timeout=5)
    silent = {"10.89.20.21", "10.89.20.32"}
    by_addr = dict((addr, name) for name, addr in ADDR.items())
    views = healthy_views()

    def run(argv, data=None, environ_update=None):
        host, args = argv[argv.index("-h") + 1], argv[argv.index("--no-auth-warning") + 1:]
        if args == ["CLUSTER", "NODES"]:
            barrier.wait()
            if host in silent:
                return 124, "", ""
            return 0, views[by_addr[host]], ""
        if args == ["CLUSTER", "INFO"]:
            return 0, fixture("cluster-info-ok.txt"), ""
        return 0, fixture("info-all-primary.txt"), ""

    cli = RedisCli(run, "redis-cli", "admin", "secret", "ca", "crt", "key")
    topology = gather(cli, INVENTORY)
    assert list(topology.views) == [n["name"] for n in INVENTORY if n["host"] not in silent]
    assert sorted(topology.errors) == ["redis-b1", "redis-c2"]
    assert "no answer within 10 s" in topology.errors["redis-b1"]
    assert "redis-b1" in topology.summary()["unreachable"]
    assert not barrier.broken
