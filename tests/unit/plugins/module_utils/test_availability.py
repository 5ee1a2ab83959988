"""availability.py: write refusals, primaries without a replica outside their zone, zone majorities,
on topologies built from real Redis 7.2.4 CLUSTER NODES captures and INFO replication lines."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import availability
from ansible_collections.shardwise.redis.plugins.module_utils.availability import good_replicas
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology, health_problems, parse_info

from lab_capture import ADDR, INVENTORY, fixture, healthy_views
from test_recovery import down, failed_over_to_b2

# The healthy lab: a1 -> b2, b1 -> c2, c1 -> a2.
REPLICA_OF = {"redis-a1": "redis-b2", "redis-b1": "redis-c2", "redis-c1": "redis-a2"}


def primary_info(*replicas, good=None, used=1000, maxmemory=10 ** 9):
    lines = ["role:master", "connected_slaves:%d" % len(replicas), "used_memory:%d" % used,
             "maxmemory:%d" % maxmemory, "maxmemory_policy:noeviction"]
    if good is not None:
        lines.append("min_slaves_good_slaves:%d" % good)
    for i, (name, state) in enumerate(replicas):
        lines.append("slave%d:ip=%s,port=6379,state=%s,offset=140,lag=0" % (i, ADDR[name], state))
    return "\r\n".join(lines) + "\r\n"


def healthy_infos():
    return {p: primary_info((r, "online")) for p, r in REPLICA_OF.items()}


def test_the_captured_primary_info_parses_into_one_online_replica():
    info = parse_info(fixture("info-all-primary.txt"))
    assert availability.online_replicas(info) == [("10.89.20.22", 6379)]
    assert availability.write_refusals(info, 1) == []
    assert availability.write_refusals(info, 2) == ["NOREPLICAS: min-replicas-to-write 2, 1 good replica(s)"]
    assert availability.write_refusals(info, 1000000) == [
        "NOREPLICAS: fenced by the partition fence (it has not heard from a majority of the primaries; "
        "its journal and /run/shardwise-redis-fence/state.json say why)"]


def test_healthy_cluster_has_no_finding():
    ok = {n: fixture("cluster-info-ok.txt") for n in ADDR}
    topo = Topology(INVENTORY, healthy_views(), ok, server_info=healthy_infos())
    assert topo.summary()["availability"] == dict(refusing=[], unprotected=[], zone_majority=[])
    assert health_problems(topo) == []


def test_promoted_primary_without_replica_and_zone_majority_are_problems():
    """a1's host is down and b2 took over: writes work, but b2 has no replica and zone-b holds 2 of 3."""
    views = failed_over_to_b2()
    views["redis-a1"] = None
    infos = healthy_infos()
    del infos["redis-a1"]
    infos["redis-b2"] = primary_info()
    topo = Topology(INVENTORY, views, server_info=infos)
    report = topo.summary()["availability"]
    assert report["unprotected"] == [dict(primary="redis-b2", zone="zone-b", slots=["0-5460"], replicas=[])]
    assert report["zone_majority"] == [dict(zone="zone-b", primaries=2, total=3)]
    assert report["refusing"] == []
    problems = health_problems(topo)
    assert "primary redis-b2 (zone zone-b) has no connected replica: losing its host stops writes to slots 0-5460" in problems
    assert "zone zone-b holds 2 of 3 primaries: losing it leaves no majority to elect replacements" in problems


def test_noreplicas_refusal_is_reported_with_its_setting():
    infos = healthy_infos()
    infos["redis-b1"] = primary_info(("redis-c2", "wait_bgsave"), good=0)
    topo = Topology(INVENTORY, healthy_views(), server_info=infos, min_replicas={"redis-b1": 1})
    problems = health_problems(topo)
    assert "primary redis-b1 refuses writes to slots 5461-10922 (NOREPLICAS: min-replicas-to-write 1, 0 good replica(s))" \
        in problems
    # A replica still syncing does not protect the shard either.
    assert any(p.startswith("primary redis-b1 (zone zone-b) has no connected replica") for p in problems)


def test_oom_refusal():
    infos = healthy_infos()
    infos["redis-c1"] = primary_info(("redis-a2", "online"), used=600, maxmemory=500)
    report = Topology(INVENTORY, healthy_views(), server_info=infos).summary()["availability"]
    assert [(r["primary"], r["reason"]) for r in report["refusing"]] == [
        ("redis-c1", "OOM: used_memory 600 of maxmemory 500 with noeviction")]


def test_replica_only_in_the_primarys_zone_does_not_protect_against_a_zone_loss():
    infos = healthy_infos()
    infos["redis-c1"] = primary_info(("redis-c2", "online"))
    problems = health_problems(Topology(INVENTORY, healthy_views(), server_info=infos))
    assert any(p.startswith("primary redis-c1 has no connected replica outside zone zone-c (replicas redis-c2)")
               for p in problems), problems


@pytest.mark.parametrize("zones, expected", [
    (["a", "b", "c"], []),
    (["a", "a", "b"], [("a", 2, 3)]),
    (["a", "a", "b", "b"], [("a", 2, 4), ("b", 2, 4)]),
    (["a", "a", "b", "c"], [("a", 2, 4)]),
    (["a", "b", "c", "d"], []),
    (["a"], []),
])
def test_zone_majorities(zones, expected):
    primaries = ["p%d" % i for i in range(len(zones))]
    assert availability.zone_majorities(primaries, dict(zip(primaries, zones))) == expected


def test_unreachable_primary_is_left_to_the_unreachable_problem():
    views = down(healthy_views(), "redis-a1")
    infos = healthy_infos()
    del infos["redis-a1"]
    report = Topology(INVENTORY, views, server_info=infos).summary()["availability"]
    assert report["unprotected"] == []


def test_good_replicas_counts_online_replicas_that_min_replicas_accepts():
    synced = ("role:master\r\nconnected_slaves:1\r\nmin_slaves_good_slaves:1\r\n"
              "slave0:ip=10.0.0.2,port=6379,state=online,offset=154,lag=1\r\n")
    assert good_replicas(parse_info(synced)) == 1
    assert good_replicas(parse_info(synced.replace("min_slaves_good_slaves:1", "min_slaves_good_slaves:0"))) == 0
    assert good_replicas(parse_info(synced.replace("state=online", "state=wait_bgsave"))) == 0
    assert good_replicas(parse_info("role:master\r\nconnected_slaves:0\r\n")) == 0
