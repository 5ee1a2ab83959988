import itertools
import random

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.placement import (
    PlacementError, plan_layout, primary_caps, shared_replica_zones, spread_replicas, zone_violations)


def feasible_brute_force(zone_of, replicas):
    """Exhaustive search: is there any primary set + replica assignment obeying the zone rule?"""
    names = list(zone_of)
    count = len(names) // (replicas + 1)
    for primaries in itertools.combinations(names, count):
        rest = [n for n in names if n not in primaries]
        slots = [p for p in primaries for _unused in range(replicas)]
        for perm in itertools.permutations(rest):
            if all(zone_of[r] != zone_of[p] for r, p in zip(perm, slots)):
                return True
    return False


def check_layout(shards, zone_of, replicas):
    used = [s["primary"] for s in shards] + [r for s in shards for r in s["replicas"]]
    assert sorted(used) == sorted(zone_of), "every node used exactly once"
    assert all(len(s["replicas"]) == replicas for s in shards)
    assert zone_violations(shards, zone_of) == []


def test_default_six_hosts_three_zones_rotates_a_b_c():
    nodes = {"a1": "zone-a", "a2": "zone-a", "b1": "zone-b", "b2": "zone-b", "c1": "zone-c", "c2": "zone-c"}
    shards = plan_layout(nodes, replicas=1)
    assert shards == [
        {"primary": "a1", "zone": "zone-a", "replicas": ["b2"]},
        {"primary": "b1", "zone": "zone-b", "replicas": ["c2"]},
        {"primary": "c1", "zone": "zone-c", "replicas": ["a2"]},
    ]


def test_preferred_primaries_are_kept():
    nodes = {"a1": "a", "a2": "a", "b1": "b", "b2": "b", "c1": "c", "c2": "c"}
    shards = plan_layout(nodes, replicas=1, preferred_primaries=["a2", "b2", "c2"])
    assert [s["primary"] for s in shards] == ["a2", "b2", "c2"]
    check_layout(shards, nodes, 1)


@pytest.mark.parametrize("nodes, replicas, message", [
    ({"a%d" % i: "a" for i in range(6)}, 1, "all 6 nodes are in zone a"),
    ({"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b1": "b", "c1": "c"}, 1, "zone a holds 4 of 6 nodes"),
    ({"a1": "a", "b1": "b", "c1": "c", "a2": "a", "b2": "b"}, 1, "multiple of 2"),
    ({"a1": "a", "b1": "b", "a2": "a", "b2": "b"}, 1, "at least 3 primaries"),
    ({}, 1, "no nodes"),
    ({"a1": "a", "b1": ""}, 0, "has no zone"),
    ({"a1": "a"}, -1, "whole number"),
])
def test_infeasible_layouts_are_refused_with_a_reason(nodes, replicas, message):
    with pytest.raises(PlacementError, match=message):
        plan_layout(nodes, replicas=replicas)


def test_two_zones_are_refused_unless_a_zone_majority_is_accepted():
    """With two zones one of them holds 2 of 3 primaries: losing it leaves no majority to elect."""
    nodes = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b", "b3": "b"}
    with pytest.raises(PlacementError, match="zone a would hold 2 of 3 primaries.*redis_cluster_allow_zone_majority"):
        plan_layout(nodes, replicas=1)
    shards = plan_layout(nodes, replicas=1, allow_zone_majority=True)
    check_layout(shards, nodes, 1)


def test_four_primaries_need_more_than_two_zones():
    nodes = {"a1": "a", "a2": "a", "b1": "b", "b2": "b", "c1": "c", "c2": "c", "d1": "d", "d2": "d"}
    shards = plan_layout(nodes, replicas=1)
    assert sorted(nodes[s["primary"]] for s in shards) == ["a", "b", "c", "d"]
    with pytest.raises(PlacementError, match="would hold 2 of 4 primaries"):
        plan_layout({"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b1": "b", "b2": "b", "b3": "b", "b4": "b"})


def test_two_replicas_go_to_two_other_zones():
    nodes = {n: n[0] for n in ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "c3"]}
    shards = plan_layout(nodes, replicas=2)
    check_layout(shards, nodes, 2)
    for shard in shards:
        assert len({nodes[r] for r in shard["replicas"]}) == 2


def test_no_replicas_means_all_primaries():
    nodes = {"a1": "a", "b1": "b", "c1": "c"}
    shards = plan_layout(nodes, replicas=0)
    assert [s["primary"] for s in shards] == ["a1", "b1", "c1"]


@pytest.mark.parametrize("seed", range(400))
def test_property_feasible_inputs_obey_the_rule_and_infeasible_are_refused(seed):
    rng = random.Random(seed)
    replicas = rng.choice([1, 1, 1, 2])
    group = replicas + 1
    count = rng.randint(3, 4 if replicas == 1 else 3)
    zones = ["z%d" % i for i in range(rng.randint(1, 4))]
    nodes = {"n%02d" % i: rng.choice(zones) for i in range(count * group)}
    expected = feasible_brute_force(nodes, replicas)
    try:
        shards = plan_layout(nodes, replicas=replicas, allow_zone_majority=True)
    except PlacementError:
        assert not expected, "planner refused a feasible layout %r" % nodes
        return
    # By default a layout is returned only if no zone holds half or more of the primaries.
    try:
        strict = plan_layout(nodes, replicas=replicas)
        per_zone = [[nodes[s["primary"]] for s in strict].count(z) for z in set(nodes.values())]
        assert 2 * max(per_zone) < count, strict
    except PlacementError as exc:
        assert "would hold" in str(exc)
    assert expected, "brute force found no layout but planner returned one"
    check_layout(shards, nodes, replicas)
    # Primaries are spread: a zone has two more primaries than another only if that one is full.
    sizes = {z: list(nodes.values()).count(z) for z in set(nodes.values())}
    caps = primary_caps(sizes, replicas, count)
    placed = {z: [nodes[s["primary"]] for s in shards].count(z) for z in sizes}
    for x in sizes:
        for y in sizes:
            if placed[x] > placed[y] + 1:
                assert placed[y] == caps[y], (placed, caps)


# ---------------------------------------------------------------- two replicas: each in its own zone

def spread_exists(primaries, rest, zone_of, replicas):
    """Exhaustive: can `rest` give each primary `replicas` replicas, none in its zone and no two in one zone?"""
    slots = [p for p in primaries for _unused in range(replicas)]
    for perm in itertools.permutations(rest):
        taken = {}
        ok = True
        for r, p in zip(perm, slots):
            if zone_of[r] == zone_of[p] or zone_of[r] in taken.setdefault(p, set()):
                ok = False
                break
            taken[p].add(zone_of[r])
        if ok:
            return True
    return False


@pytest.mark.parametrize("seed", range(150))
def test_property_two_replicas_take_distinct_zones_whenever_possible(seed):
    rng = random.Random(seed)
    zones = ["z%d" % i for i in range(rng.choice([3, 3, 4]))]
    nodes = {"n%02d" % i: rng.choice(zones) for i in range(9)}
    try:
        shards = plan_layout(nodes, replicas=2)
    except PlacementError:
        return
    check_layout(shards, nodes, 2)
    primaries = [s["primary"] for s in shards]
    rest = [n for n in nodes if n not in primaries]
    if spread_exists(primaries, rest, nodes, 2):
        assert shared_replica_zones(shards, nodes) == [], shards
        assert all(len({nodes[r] for r in s["replicas"]}) == 2 for s in shards)


def test_spread_takes_a_replica_from_another_primary_when_that_one_has_a_replacement():
    # p2 (zone b) needs two replicas: a1 is free, c1 and e1 are p1's. p1 (zone a) gives up c1 because it can
    # take b1 instead (b1 is in p2's own zone, useless to p2).
    zone_of = {"p1": "a", "p2": "b", "c1": "c", "e1": "e", "a1": "a", "b1": "b"}
    owner = spread_replicas({"p1": 2, "p2": 2}, ["c1", "e1", "a1", "b1"], zone_of, lambda p, c: 0,
                            seed={"c1": "p1", "e1": "p1"})
    assert sorted(c for c, p in owner.items() if p == "p2") == ["a1", "c1"]
    assert sorted(c for c, p in owner.items() if p == "p1") == ["b1", "e1"]


def test_two_replicas_in_one_zone_are_flagged_only_when_the_zones_could_keep_them_apart():
    zone_of = {"a1": "a", "b1": "b", "b2": "b", "c1": "c"}
    shards = [{"primary": "a1", "replicas": ["b1", "b2"]}]
    assert shared_replica_zones(shards, zone_of) == [("a1", "b", ["b1", "b2"])]
    two_zones = {"a1": "a", "b1": "b", "b2": "b"}
    assert shared_replica_zones(shards, two_zones) == []
    assert shared_replica_zones([{"primary": "a1", "replicas": ["b1", "c1"]}], zone_of) == []
