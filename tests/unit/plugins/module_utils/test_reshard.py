"""Resharding plans: balance targets, slot moves, new shards, removal rules, resume of open slots and
the memory headroom check, on views derived from the real lab captures."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.actions import render_all
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError
from ansible_collections.shardwise.redis.plugins.module_utils.reshard import (
    balance_targets, group_moves, memory_check, moves_of, open_slot_work, out_of_balance, plan_moves, plan_reshard)
from ansible_collections.shardwise.redis.plugins.module_utils.slots import to_ranges
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology, parse_cluster_nodes

from lab_capture import INVENTORY, fixture, healthy_views

NEW = [dict(name="redis-a3", host="10.89.20.13", port=6379, zone="zone-a"),
       dict(name="redis-b3", host="10.89.20.23", port=6379, zone="zone-b")]
NEW_IDS = {"redis-a3": "a3" * 20, "redis-b3": "b3" * 20}


def ops(plan, op):
    return [a for a in plan["actions"] if a["op"] == op]


def lab_ids():
    return {n["hostname"]: n["id"] for n in parse_cluster_nodes(fixture("nodes-healthy-11.txt"))}


def with_new_hosts(views=None):
    views = dict(views or healthy_views())
    for node in NEW:
        views[node["name"]] = "%s %s:6379@16379,%s myself,master - 0 0 0 connected\n" % (
            NEW_IDS[node["name"]], node["host"], node["name"])
    return Topology(INVENTORY + NEW, views)


def topology_with_slots(owned, zones=None):
    """A synthetic healthy cluster: owned = {name: [(first, last)]}, replicas none."""
    names = sorted(owned)
    ids = {n: ("%02d" % i) * 20 for i, n in enumerate(names)}
    lines = ["%s 10.0.0.%d:6379@16379 master - 0 0 1 connected %s" % (
        ids[n], i + 1, " ".join("%d-%d" % r for r in owned[n])) for i, n in enumerate(names)]
    views = {}
    for n in names:
        views[n] = "\n".join(line.replace(" master ", " myself,master ", 1) if line.startswith(ids[n]) else line
                             for line in lines) + "\n"
    inventory = [dict(name=n, host="10.0.0.%d" % (i + 1), port=6379, zone=(zones or {}).get(n, "z%d" % i))
                 for i, n in enumerate(names)]
    return Topology(inventory, views)


# ---------------------------------------------------------------- targets and moves

def test_targets_match_the_formation_split():
    counts = {"a": 5461, "b": 5462, "c": 5461}
    assert balance_targets(["a", "b", "c"], counts) == counts
    assert out_of_balance(counts, balance_targets(["a", "b", "c"], counts), 0) == []


def test_targets_four_primaries_and_weights():
    assert balance_targets(["a", "b", "c", "d"], {}) == dict.fromkeys("abcd", 4096)
    assert balance_targets(["a", "b", "c"], {}, {"a": 2}) == {"a": 8192, "b": 4096, "c": 4096}
    assert balance_targets(["a", "b", "c"], {"a": 1}, {"c": 0}) == {"a": 8192, "b": 8192, "c": 0}
    with pytest.raises(PlacementError, match="weights must be >= 0"):
        balance_targets(["a"], {}, {"a": -1})
    with pytest.raises(PlacementError, match="every primary has weight 0"):
        balance_targets(["a"], {}, {"a": 0})


def test_threshold_ignores_small_drift_but_never_an_empty_primary():
    targets = {"a": 5461, "b": 5462, "c": 5461}
    assert out_of_balance({"a": 5500, "b": 5423, "c": 5461}, targets, 2) == []
    assert out_of_balance({"a": 5700, "b": 5223, "c": 5461}, targets, 2) == ["a", "b"]
    assert out_of_balance({"a": 8192, "b": 8192, "d": 0}, {"a": 5461, "b": 5461, "d": 5462}, 60) == ["d"]


def test_moves_reach_the_targets_and_are_stable():
    owned = {"a": set(range(0, 5461)), "b": set(range(5461, 10923)), "c": set(range(10923, 16384)), "d": set()}
    targets = balance_targets(list(owned), {k: len(v) for k, v in owned.items()})
    moves = plan_moves(owned, targets)
    assert len(moves) == 4096 and all(dst == "d" for _unused1, _unused2, dst in moves)
    for slot, src, dst in moves:
        owned[src].remove(slot)
        owned[dst].add(slot)
    assert {k: len(v) for k, v in owned.items()} == dict.fromkeys("abcd", 4096)
    again = balance_targets(list(owned), {k: len(v) for k, v in owned.items()})
    assert plan_moves(owned, again) == []
    groups = group_moves(moves)
    assert [(src, len(slots)) for src, _unused, slots in groups] == [("a", 1365), ("b", 1366), ("c", 1365)]
    assert to_ranges(groups[0][2]) == [(4096, 5460)]  # donors give their highest slots: ranges stay whole


# ---------------------------------------------------------------- plans on the lab

def test_a_fourth_shard_in_three_zones_is_refused_unless_accepted():
    """Four primaries in three zones: one zone holds two of four, its loss leaves no majority."""
    with pytest.raises(PlacementError, match="after this run zone zone-a would hold 2 of 4 primaries.*"
                                             "redis_cluster_allow_zone_majority"):
        plan_reshard(with_new_hosts(), mode="add")


def test_removing_a_shard_may_not_crowd_a_zone_either():
    owned = {"p1": [(0, 4095)], "p2": [(4096, 8191)], "p3": [(8192, 12287)], "p4": [(12288, 16383)]}
    zones = {"p1": "a", "p2": "b", "p3": "c", "p4": "d", "p5": "a"}
    topology = topology_with_slots(owned, zones)
    assert [a["node"] for a in ops(plan_reshard(topology, mode="remove", remove=["p4"]), "forget")] == ["p4"]  # a, b, c: fine
    crowded = topology_with_slots(dict(owned, p4=[(12288, 14000)], p5=[(14001, 16383)]), zones)
    with pytest.raises(PlacementError, match="zone a would hold 2 of 4"):
        plan_reshard(crowded, mode="remove", remove=["p3"])


def test_add_plans_a_zone_separated_shard_and_4096_slots_each():
    topology = with_new_hosts()
    plan = plan_reshard(topology, mode="add", allow_zone_majority=True)
    assert [a["node"] for a in ops(plan, "meet")] == ["redis-a3", "redis-b3"]
    assert len(ops(plan, "new_shard")) == 1
    shard = ops(plan, "new_shard")[0]
    assert topology.zone_of[shard["node"]] != topology.zone_of[shard["replicas"][0]]
    assert [(a["node"], a["primary"], a["require_slots"]) for a in ops(plan, "replicate")] == [
        (shard["replicas"][0], shard["node"], False)]
    assert set(plan["targets"].values()) == {4096} and len(plan["targets"]) == 4
    moves = moves_of(plan["actions"])
    assert len(moves) == 4096 and {dst for _unused1, _unused2, dst in moves} == {shard["node"]}
    text = render_all(plan["actions"])
    assert text[0] == "CLUSTER MEET 10.89.20.13 6379 (redis-a3 joins, via redis-a1)"
    # new hosts join, their replicas attach and sync, the shard is ready, then slots move
    assert [a["op"] for a in plan["actions"]] == ["meet", "meet", "replicate", "new_shard", "move", "move", "move"]
    assert any(line.startswith("MOVE 1365 slot(s) redis-a1 -> ") and line.endswith("4096-5460") for line in text)


def test_healthy_balanced_cluster_gets_no_action():
    topology = Topology(INVENTORY, healthy_views())
    for mode in ("add", "balance"):
        assert plan_reshard(topology, mode=mode)["actions"] == []


def test_unreachable_or_failing_nodes_stop_the_plan():
    views = healthy_views()
    views["redis-c2"] = None
    with pytest.raises(RedisCliError, match="redis-c2 did not answer.*site.yml first"):
        plan_reshard(Topology(INVENTORY, views))
    ids = lab_ids()
    failing = {n: t.replace(ids["redis-c2"] + " 10.89.20.32:6379@16379,redis-c2 slave",
                            ids["redis-c2"] + " 10.89.20.32:6379@16379,redis-c2 slave,fail")
               for n, t in healthy_views().items()}
    with pytest.raises(PlacementError, match="failing: heal the cluster first"):
        plan_reshard(Topology(INVENTORY, failing))


def test_odd_number_of_new_hosts_is_refused_with_the_reason():
    views = dict(healthy_views())
    views["redis-a3"] = "%s 10.89.20.13:6379@16379 myself,master - 0 0 0 connected\n" % NEW_IDS["redis-a3"]
    topology = Topology(INVENTORY + NEW[:1], views)
    with pytest.raises(PlacementError, match="new hosts redis-a3 cannot form shards: 1 nodes"):
        plan_reshard(topology, mode="add")


def test_remove_needs_whole_shards_and_three_primaries_left():
    owned = {"p1": [(0, 4095)], "p2": [(4096, 8191)], "p3": [(8192, 12287)], "p4": [(12288, 16383)]}
    topology = topology_with_slots(owned)
    plan = plan_reshard(topology, mode="remove", remove=["p4"])
    assert plan["targets"]["p4"] == 0 and len(moves_of(plan["actions"])) == 4096
    assert {src for _unused1, src, _unused2 in moves_of(plan["actions"])} == {"p4"}
    assert ops(plan, "forget") == [dict(op="forget", node="p4", node_id=topology.id_of["p4"], reset=True)]
    with pytest.raises(PlacementError, match="leaves 2 primaries"):
        plan_reshard(topology, mode="remove", remove=["p3", "p4"])
    with pytest.raises(PlacementError, match="not in the inventory"):
        plan_reshard(topology, mode="remove", remove=["nope"])
    lab = Topology(INVENTORY, healthy_views())
    with pytest.raises(PlacementError, match="redis-a1 is a primary and its replicas redis-b2"):
        plan_reshard(lab, mode="remove", remove=["redis-a1"])


def test_open_slots_are_finished_first():
    ids = lab_ids()
    views = healthy_views()
    views["redis-a1"] = views["redis-a1"].replace("connected 0-5460", "connected 0-5460 [5460->-%s]" % ids["redis-b1"])
    views["redis-b1"] = views["redis-b1"].replace("connected 5461-10922",
                                                  "connected 5461-10922 [5460-<-%s]" % ids["redis-a1"])
    topology = Topology(INVENTORY, views)
    assert open_slot_work(topology) == [(5460, "redis-a1", "redis-b1")]
    plan = plan_reshard(topology, mode="balance")
    assert moves_of(plan["actions"], resume=True) == [(5460, "redis-a1", "redis-b1")]
    assert ops(plan, "move")[0]["owned"] == []  # b1 has not taken ownership yet: IMPORTING is still needed
    assert render_all(plan["actions"])[0] == ("FINISH 1 open slot(s) redis-a1 -> redis-b1: 5460-5460 "
                                              "(left open by an interrupted run)")
    # 5460 joins b1's count: 5460/5463/5461 is within the 2 % threshold, so nothing else moves.
    assert moves_of(plan["actions"], resume=False) == []


def test_open_slot_with_a_foreign_peer_is_refused():
    views = healthy_views()
    views["redis-a1"] = views["redis-a1"].replace("connected 0-5460", "connected 0-5460 [7->-%s]" % ("f" * 40))
    with pytest.raises(PlacementError, match="not an inventory node"):
        open_slot_work(Topology(INVENTORY, views))


def test_memory_headroom_is_checked_before_moving():
    topology = with_new_hosts()
    plan = plan_reshard(topology, mode="add", allow_zone_majority=True)
    new_primary = ops(plan, "new_shard")[0]["node"]
    gib = 1 << 30
    memory = {n: "used_memory:%d\r\nused_memory_dataset:%d\r\nmaxmemory:%d\r\n" % (2 * gib, 2 * gib, 4 * gib)
              for n in topology.primaries_with_slots()}
    memory[new_primary] = "used_memory:%d\r\nmaxmemory:%d\r\n" % (1 << 20, 4 * gib)
    rows = memory_check(plan["actions"], topology, memory, 80)
    assert rows[0]["node"] == new_primary and 35 < rows[0]["percent"] < 40  # 3 x 1365/5461 x 2 GiB arrive
    memory[new_primary] = "used_memory:%d\r\nmaxmemory:%d\r\n" % (int(2.5 * gib), 4 * gib)
    with pytest.raises(PlacementError, match="not enough memory headroom.*%s would reach" % new_primary):
        memory_check(plan["actions"], topology, memory, 80)


def test_a_shard_formed_by_an_interrupted_run_is_kept_and_filled():
    ids = lab_ids()
    views = dict(healthy_views())
    a3, b3 = NEW_IDS["redis-a3"], NEW_IDS["redis-b3"]
    members = "".join(views["redis-a1"])
    extra = ("%s 10.89.20.13:6379@16379,redis-a3 master - 0 0 0 connected\n" % a3
             + "%s 10.89.20.23:6379@16379,redis-b3 slave %s 0 0 0 connected\n" % (b3, a3))
    for name in list(views):
        views[name] = views[name] + extra
    views["redis-a1"] = views["redis-a1"].replace("connected 0-5460", "connected 0-5460 [5460->-%s]" % a3)
    views["redis-a3"] = (members.replace("myself,", "") + extra.replace(" master ", " myself,master ", 1)
                         .replace("connected\n", "connected [5460-<-%s]\n" % ids["redis-a1"], 1))
    views["redis-b3"] = members.replace("myself,", "") + extra.replace(" slave ", " myself,slave ", 1)
    topology = Topology(INVENTORY + NEW, views)
    plan = plan_reshard(topology, mode="add")
    assert moves_of(plan["actions"], resume=True) == [(5460, "redis-a1", "redis-a3")]
    assert ops(plan, "meet") == [] and ops(plan, "replicate") == []
    shard = ops(plan, "new_shard")[0]
    assert (shard["node"], shard["replicas"], shard["resumed"]) == ("redis-a3", ["redis-b3"], True)
    assert plan["targets"]["redis-a3"] == 4096 and len(moves_of(plan["actions"], resume=False)) == 4095
    assert ("NEW SHARD primary redis-a3@zone-a replicas redis-b3@zone-b (formed by an earlier run)"
            in render_all(plan["actions"]))


def test_a_new_host_that_belongs_to_another_cluster_is_refused():
    views = dict(healthy_views())
    for node in NEW:
        views[node["name"]] = "%s %s:6379@16379,%s myself,master - 0 0 0 connected\n" % (
            NEW_IDS[node["name"]], node["host"], node["name"])
    views["redis-a3"] += "%s 198.51.100.4:6379@16379 master - 0 0 0 connected 0-16383\n" % ("d" * 40)
    with pytest.raises(PlacementError, match="refusing to CLUSTER MEET redis-a3: it knows 1 node"):
        plan_reshard(Topology(INVENTORY + NEW, views), mode="add", allow_zone_majority=True)


def test_move_sends_the_named_slots_to_the_target_from_whoever_owns_them():
    topology = Topology(INVENTORY, healthy_views())
    owner = dict((s, p) for p in topology.primaries_with_slots() for first, last in topology.slots_of(p)
                 for s in range(first, last + 1))
    target = owner[16383]
    plan = plan_reshard(topology, mode="move", slots=[0, 1, 2, 5461, 16383], target=target)
    moves = moves_of(plan["actions"])
    assert sorted(moves) == sorted([(s, owner[s], target) for s in (0, 1, 2, 5461)])  # 16383 is there already
    assert plan["targets"][target] == len([s for s in owner if owner[s] == target]) + 4
    assert sum(plan["targets"].values()) == 16384
    assert plan_reshard(topology, mode="move", slots=[16383], target=target)["actions"] == []  # nothing to do
    with pytest.raises(PlacementError, match="not a primary holding slots"):
        plan_reshard(topology, mode="move", slots=[0], target="redis-a2")


def test_add_with_two_replicas_per_shard_gives_each_new_shard_three_zones():
    """The durable profile (redis_cluster_replicas 2): six new hosts, two per zone, become two shards whose primary and
    two replicas are each in a zone of their own."""
    new = [dict(name="redis-%s%d" % (z, i), host="10.89.20.%d%d" % ("abc".index(z) + 1, i), port=6379, zone="zone-" + z)
           for z in "abc" for i in (4, 5)]
    views = dict(healthy_views())
    for k, node in enumerate(new):
        views[node["name"]] = "%s %s:6379@16379,%s myself,master - 0 0 0 connected\n" % (
            "%040x" % (500 + k), node["host"], node["name"])
    topology = Topology(INVENTORY + new, views)
    plan = plan_reshard(topology, mode="add", replicas=2, allow_zone_majority=True)
    shards = ops(plan, "new_shard")
    assert len(shards) == 2
    for shard in shards:
        zones = [topology.zone_of[n] for n in [shard["node"]] + shard["replicas"]]
        assert len(shard["replicas"]) == 2 and sorted(zones) == ["zone-a", "zone-b", "zone-c"], shard
    assert sorted(a["node"] for a in ops(plan, "replicate")) == sorted(r for s in shards for r in s["replicas"])
