"""plan_recovery on views derived from real Redis 7.2.4 CLUSTER NODES captures."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.actions import render
from ansible_collections.shardwise.redis.plugins.module_utils.recovery import plan_recovery
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology, health_problems, parse_cluster_nodes

from lab_capture import ADDR, INVENTORY, fixture as read, healthy_views as healthy


def ids():
    return {n["host"]: n["id"] for n in parse_cluster_nodes(read("nodes-healthy-11.txt"))}


def rewrite(views, host, flags=None, primary=None, slots=None):
    """Change what every view says about node `host` (flags without myself, primary id, slots)."""
    node_id = ids()[host]
    out = {}
    for name, text in views.items():
        if text is None:
            out[name] = None
            continue
        lines = []
        for line in text.splitlines():
            parts = line.split()
            if parts and parts[0] == node_id:
                myself = "myself," if "myself" in parts[2] else ""
                if flags is not None:
                    parts[2] = myself + flags
                if primary is not None:
                    parts[3] = primary
                if slots is not None:
                    parts = parts[:8] + slots
            lines.append(" ".join(parts))
        out[name] = "\n".join(lines) + "\n"
    return out


def down(views, *names):
    """Nodes `names` died: every view flags them failed (role kept) and they answer nothing."""
    roles = {n["host"]: n["role"] for n in parse_cluster_nodes(read("nodes-healthy-11.txt"))}
    for name in names:
        views = rewrite(views, ADDR[name], flags=("master" if roles[ADDR[name]] == "primary" else "slave") + ",fail")
        views[name] = None
    return views


def lines(actions):
    return [render(a) for a in actions]


def test_healthy_cluster_needs_nothing():
    actions, notes = plan_recovery(Topology(INVENTORY, healthy()))
    assert actions == [] and notes == []


def test_failed_primary_still_holding_slots_gets_its_replica_forced():
    views = down(healthy(), "redis-a1")
    repl = {n: "slave_repl_offset:%d\r\n" % (100 if n == "redis-b2" else 5) for n in ADDR if n != "redis-a1"}
    actions, notes = plan_recovery(Topology(INVENTORY, views, server_info=repl))
    assert lines(actions) == ["CLUSTER FAILOVER FORCE on redis-b2 (replaces failed primary redis-a1)"]


def test_no_majority_needs_takeover_explicitly():
    views = down(healthy(), "redis-a1", "redis-b1")
    with pytest.raises(PlacementError, match=r"""redis_failover_takeover_nodes": \["redis-(b2|c2)"\]"""):
        plan_recovery(Topology(INVENTORY, views))
    with pytest.raises(PlacementError, match=r"redis_failover_takeover_nodes.*redis-c2.*TAKEOVER \(named: redis-b2\)"):
        plan_recovery(Topology(INVENTORY, views), takeover=["redis-b2"])
    actions, _unused = plan_recovery(Topology(INVENTORY, views), takeover=["redis-b2", "redis-c2"])
    assert sorted((a["node"], a["mode"]) for a in actions) == [("redis-b2", "TAKEOVER"), ("redis-c2", "TAKEOVER")]


def test_failed_primary_without_live_replica_stops_with_a_reason():
    views = down(healthy(), "redis-a1", "redis-b2")
    with pytest.raises(PlacementError, match="none of its replicas answers"):
        plan_recovery(Topology(INVENTORY, views))


def test_after_promotion_the_old_primary_as_replica_is_fine_and_dead_nodes_are_only_noted():
    views = healthy()
    views["redis-a1"] = None
    b2 = ids()["10.89.20.22"]
    views = rewrite(views, "10.89.20.22", flags="master", primary="-", slots=["0-5460"])
    views = rewrite(views, "10.89.20.11", flags="master,fail", primary="-", slots=[])
    actions, notes = plan_recovery(Topology(INVENTORY, views))
    assert actions == []
    assert "zone zone-b holds 2 primaries" in notes[0]  # a1 is gone: no replica can take over
    assert "redis_failover_forget_dead" in notes[1]
    actions, _unused = plan_recovery(Topology(INVENTORY, views), forget_dead=True)
    assert lines(actions) == ["CLUSTER FORGET redis-a1 on every node"]
    assert b2


def test_replica_in_its_primarys_zone_is_moved():
    c1 = ids()["10.89.20.31"]
    views = rewrite(healthy(), "10.89.20.32", primary=c1)   # c2 now replicates c1: same zone, b1 has none
    topo = Topology(INVENTORY, views)
    assert topo.summary()["zone_violations"] == [dict(replica="redis-c2", primary="redis-c1", zone="zone-c")]
    actions, _unused = plan_recovery(topo)
    assert lines(actions) == ["CLUSTER REPLICATE redis-b1 on redis-c2 (was redis-c1)"]


IN_SYNC = "role:slave\r\nmaster_link_status:up\r\nmaster_sync_in_progress:0\r\n"
SYNCING = "role:slave\r\nmaster_link_status:down\r\nmaster_sync_in_progress:1\r\n"


def failed_over_to_b2():
    """a1 failed, b2 (zone-b) took its slots, a1 came back as b2's replica: zone-b holds 2 primaries."""
    b2 = ids()["10.89.20.22"]
    views = rewrite(healthy(), "10.89.20.22", flags="master", primary="-", slots=["0-5460"])
    return rewrite(views, "10.89.20.11", flags="slave", primary=b2, slots=[])


def test_restore_primary_zones_is_the_default_once_the_replica_caught_up():
    topo = Topology(INVENTORY, failed_over_to_b2(), server_info={"redis-a1": IN_SYNC})
    actions, notes = plan_recovery(topo)
    assert lines(actions) == ["CLUSTER FAILOVER on redis-a1 (takes over from redis-b2 to restore the zone spread)"]
    assert notes == []
    assert plan_recovery(topo, restore_primary_zones=False) == ([], [])


def test_restore_primary_zones_waits_for_a_replica_still_syncing():
    topo = Topology(INVENTORY, failed_over_to_b2(), server_info={"redis-a1": SYNCING})
    actions, notes = plan_recovery(topo)
    assert actions == []
    assert notes == ["zone zone-b holds 2 primaries; redis-a1 takes over from redis-b2 once it has caught up "
                     "(its sync is still running): the next run does it"]


def test_restore_primary_zones_names_what_to_do_when_no_replica_can_take_over():
    views = failed_over_to_b2()
    views["redis-a1"] = None
    views = rewrite(views, "10.89.20.11", flags="slave,fail")
    actions, notes = plan_recovery(Topology(INVENTORY, views))
    assert actions == []
    assert any(n.startswith("zone zone-b holds 2 primaries (redis-b1, redis-b2) and none has a replica in a zone "
                            "short of primaries") for n in notes), notes


def test_node_back_empty_rejoins_as_replica():
    views = healthy()
    b2_id = ids()["10.89.20.22"]
    views["redis-b2"] = "%s 10.89.20.22:6379@16379 myself,master - 0 0 0 connected\n" % ("f" * 40)
    views = rewrite(views, "10.89.20.22", flags="slave,fail")  # the others still know the old b2 id
    topo = Topology(INVENTORY, views)
    actions, _unused = plan_recovery(topo)
    assert [a["op"] for a in actions] == ["meet", "replicate"]
    assert actions[1]["node"] == "redis-b2" and actions[1]["primary"] == "redis-a1"
    assert b2_id


def test_a_returning_node_with_data_or_another_cluster_is_not_met():
    """b2 came back under a new id but holds keys (or knows a foreign cluster): merging it could mix data."""
    views = healthy()
    views["redis-b2"] = "%s 10.89.20.22:6379@16379 myself,master - 0 0 0 connected\n" % ("f" * 40)
    views = rewrite(views, "10.89.20.22", flags="slave,fail")
    with_keys = {"redis-b2": "# Keyspace\r\ndb0:keys=12,expires=0,avg_ttl=0\r\n"}
    actions, notes = plan_recovery(Topology(INVENTORY, views, server_info=with_keys))
    assert not [a for a in actions if a["node"] == "redis-b2"]
    assert any(n.startswith("node redis-b2 is not met: it holds 12 key(s)") and "CLUSTER RESET HARD" in n for n in notes)
    views["redis-b2"] += "%s 192.0.2.7:6379@16379 master - 0 0 0 connected 0-16383\n" % ("e" * 40)
    actions, notes = plan_recovery(Topology(INVENTORY, views))
    assert not [a for a in actions if a["node"] == "redis-b2"]
    assert any("knows 1 node(s) outside the inventory (192.0.2.7:6379): it belongs to another cluster" in n for n in notes)


def test_new_hosts_waiting_for_add_shard_are_left_alone():
    inventory = INVENTORY + [dict(name="redis-a3", host="10.89.20.13", port=6379, zone="zone-a")]
    views = dict(healthy(), **{"redis-a3": "%s 10.89.20.13:6379@16379 myself,master - 0 0 0 connected\n" % ("3" * 40)})
    actions, notes = plan_recovery(Topology(inventory, views))
    assert actions == []
    assert notes == ["node redis-a3 is a new host outside the cluster: playbooks/add_shard.yml adds it"]


def test_open_slots_freeze_everything_but_a_promotion():
    views = healthy()
    node_ids = ids()
    views["redis-a1"] = views["redis-a1"].replace("connected 0-5460", "connected 0-5460 [5460->-%s]" % node_ids["10.89.20.21"])
    # b2 sits in a1's zone: normally a replica move, but a migration is open
    moved = Topology([dict(n, zone="zone-a") if n["name"] == "redis-b2" else n for n in INVENTORY], views)
    actions, notes = plan_recovery(moved)
    assert actions == [] and notes[0].startswith("slots are migrating (1): nothing else is changed until")


def test_no_promotion_while_the_failed_primary_still_answers():
    """The others flag a1 failed but a1 answers the runbook: a partition, FORCE would make two primaries."""
    views = rewrite(healthy(), ADDR["redis-a1"], flags="master,fail")
    views["redis-a1"] = healthy()["redis-a1"]
    with pytest.raises(PlacementError, match="redis-a1 is flagged failed by 5 of 5 other nodes but answers this runbook"):
        plan_recovery(Topology(INVENTORY, views))


def a1_last_pong_ms():
    return max(int(line.split()[5]) for line in read("nodes-healthy-21.txt").splitlines()
               if line.startswith(ids()["10.89.20.11"]))


def test_no_promotion_of_a_copy_that_stopped_long_before_the_primary_died():
    views = down(healthy(), "redis-a1")

    def replica(link_down_before_death_s):
        down_since = 30 + link_down_before_death_s  # a1 was last heard of 30 s ago
        return {"redis-b2": "slave_repl_offset:7\r\nmaster_link_down_since_seconds:%d\r\nserver_time_usec:%d\r\n"
                % (down_since, (a1_last_pong_ms() + 30000) * 1000)}
    limit = 5000 * 10 + 10000
    actions, _unused = plan_recovery(Topology(INVENTORY, views, server_info=replica(2)), max_copy_gap_ms=limit)
    assert lines(actions) == ["CLUSTER FAILOVER FORCE on redis-b2 (replaces failed primary redis-a1)"]
    with pytest.raises(PlacementError, match=r"best replica redis-b2 stopped 6\d\.\d s before the primary was last heard "
                                             r"of \(limit 60 s"):
        plan_recovery(Topology(INVENTORY, views, server_info=replica(61)), max_copy_gap_ms=limit)
    with pytest.raises(PlacementError, match="unknown age"):
        plan_recovery(Topology(INVENTORY, views, server_info={"redis-b2": "slave_repl_offset:7\r\n"}),
                      max_copy_gap_ms=limit)


# ---------------------------------------------------------------- two replicas per primary (the durable profile)

def nine_nodes(replicas_of):
    """Views of a nine-node cluster (three per zone; a1, b1, c1 primaries) where replicas_of says whose replica
    each other node is, as every node would print CLUSTER NODES."""
    names = ["redis-%s%d" % (z, i) for z in "abc" for i in (1, 2, 3)]
    inventory = [dict(name=n, host="10.0.%d.%s" % ("abc".index(n[6]) + 1, n[7]), port=6379, zone="zone-" + n[6])
                 for n in names]
    node_id = dict((n, ("%040x" % (k + 1))) for k, n in enumerate(names))
    slots = {"redis-a1": "0-5460", "redis-b1": "5461-10922", "redis-c1": "10923-16383"}
    lines = []
    for node in inventory:
        name = node["name"]
        role = "master" if name in slots else "slave"
        lines.append((name, "%s %s:6379@16379,%s %s %s 0 1 1 connected %s" % (
            node_id[name], node["host"], name, "%s", node_id[replicas_of[name]] if role == "slave" else "-",
            slots.get(name, ""))))
    views = {}
    for me in names:
        views[me] = "\n".join((line % ("myself," + ("master" if name in slots else "slave")) if name == me
                               else line % ("master" if name in slots else "slave")).rstrip() for name, line in lines)
    return inventory, views


def test_two_replicas_of_a_primary_in_one_zone_are_a_problem_and_recovery_moves_one():
    crowded = {"redis-b2": "redis-a1", "redis-b3": "redis-a1", "redis-c2": "redis-b1", "redis-c3": "redis-b1",
               "redis-a2": "redis-c1", "redis-a3": "redis-c1"}
    inventory, views = nine_nodes(crowded)
    topo = Topology(inventory, views)
    summary = topo.summary()
    assert summary["zone_violations"] == []
    assert [(i["primary"], i["zone"]) for i in summary["shared_replica_zones"]] == [
        ("redis-a1", "zone-b"), ("redis-b1", "zone-c"), ("redis-c1", "zone-a")]
    assert any("share zone zone-b" in p for p in health_problems(topo))
    actions, _notes = plan_recovery(topo, replicas=2)
    moves = dict((a["node"], a["primary"]) for a in actions if a["op"] == "replicate")
    assert len(moves) == 3  # one replica of each primary moves, the other stays
    after = dict(crowded, **moves)
    for primary in ("redis-a1", "redis-b1", "redis-c1"):
        zones = sorted(r[6] for r, p in after.items() if p == primary)
        assert len(zones) == 2 and len(set(zones)) == 2 and primary[6] not in zones, (primary, after)
    spread = nine_nodes(after)
    assert plan_recovery(Topology(*spread), replicas=2)[0] == []
    assert Topology(*spread).summary()["shared_replica_zones"] == []
    assert not [p for p in health_problems(Topology(*spread)) if "share zone" in p]


def test_one_replica_per_primary_keeps_the_plain_rule():
    crowded = {"redis-b2": "redis-a1", "redis-b3": "redis-a1", "redis-c2": "redis-b1", "redis-c3": "redis-b1",
               "redis-a2": "redis-c1", "redis-a3": "redis-c1"}
    topo = Topology(*nine_nodes(crowded))
    # with redis_cluster_replicas 1 the layout is valid (each replica outside its primary's zone): nothing moves
    assert [a for a in plan_recovery(topo, replicas=1)[0] if a["op"] == "replicate"] == []
