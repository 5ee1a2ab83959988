"""BullMQ queue placement: where each queue's slot should live, on the real lab topology and synthetic ones."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import (
    hash_tag, queue_base, queue_name_problems, queue_where)
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.queue_placement import (
    compensation_moves, plan_queue_placement)
from ansible_collections.shardwise.redis.plugins.module_utils.reshard import moves_of, out_of_balance, plan_reshard
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import INVENTORY, healthy_views

SPEC = ["critical", "high", "normal", "low", "batch", "scheduled"]
# The spec's queues hash to these slots (CRC16 of the tag): 3 of them fall in the middle third of an even split.
SLOTS = {"critical": 8090, "high": 9976, "normal": 136, "low": 15214, "batch": 1318, "scheduled": 10209}
EVEN = [("p0", 0, 5460), ("p1", 5461, 10922), ("p2", 10923, 16383)]


def owner_even(slot):
    return next(p for p, a, b in EVEN if a <= slot <= b)


def plan(placement=None, owner=owner_even, queues=tuple(SPEC), primaries=("p0", "p1", "p2"), shard_of=None):
    shard_of = shard_of or dict([(p, p) for p in primaries] + [(p + "r", p) for p in primaries])
    return plan_queue_placement("bull", list(queues), placement or {}, owner, list(primaries), shard_of)


def per_primary(result):
    held = {}
    for queue, row in result["queues"].items():
        held.setdefault(row["target"], []).append(queue)
    return held


def test_key_layout_and_slots_of_the_spec_queues():
    assert queue_base("bull", "critical") == "bull:{critical}:critical:"
    assert queue_base("bull", "{critical}") == "bull:{critical}:"
    assert queue_base("bull:{critical}", "critical") == "bull:{critical}:critical:"
    assert hash_tag("bull:{critical}:critical:wait") == "critical"
    assert hash_tag("tasks:critical") == "tasks:critical"
    assert dict((q, queue_where("bull", q)["slot"]) for q in SPEC) == SLOTS
    assert queue_where("x", "{tasks:critical}")["slot"] == 8259  # the spec's table said 1842


def test_where_names_the_primary_its_zone_and_replicas():
    shards = [dict(primary="a1", zone="zone-a", replicas=["b2"], slots=[(0, 8191)]),
              dict(primary="b1", zone="zone-b", replicas=["a2"], slots=[(8192, 16383)])]
    row = queue_where("bull", "high", shards, {"b2": "zone-b", "a2": "zone-a"})
    assert (row["slot"], row["primary"], row["zone"], row["replicas"]) == (9976, "b1", "zone-b", [dict(name="a2", zone="zone-a")])
    assert queue_where("bull", "normal", [])["primary"] is None


@pytest.mark.parametrize("prefix, queues, message", [
    ("bull", ["tasks:critical"], "BullMQ refuses ':' in queue names"),
    ("bull", ["{}x"], "an empty, unbalanced or second hash tag"),
    ("bull", ["a}b{c"], "an empty, unbalanced or second hash tag"),
    ("bull", ["jobs *"], "spaces and glob characters"),
    ("bull:", ["a"], "must be a non-empty string that does not end with ':'"),
    ("bull:{all}", ["a", "b"], "every queue under it lands in one slot"),
])
def test_bad_names_are_named_with_the_fix(prefix, queues, message):
    assert any(message in p for p in queue_name_problems(prefix, queues))
    with pytest.raises(PlacementError, match="(?s).*" + message.split("(")[0][:20]):
        plan_queue_placement(prefix, queues, {}, owner_even, ["p0", "p1", "p2"], {"p0": "p0"})


def test_spread_moves_one_queue_on_the_even_split():
    result = plan()
    # critical, high and scheduled share p1; high (second most important) moves, the rest stays
    assert result["moves"] == [(9976, "p1", "p2")]
    held = per_primary(result)
    assert max(len(q) for q in held.values()) <= 2 and result["cap"] == 2
    assert result["queues"]["critical"]["target"] != result["queues"]["high"]["target"]
    assert len(set(result["queues"][q]["target"] for q in SPEC[:3])) == 3


def test_a_placed_cluster_plans_nothing():
    first = plan()
    moved = dict((slot, dst) for slot, _src, dst in first["moves"])
    again = plan(owner=lambda slot: moved.get(slot, owner_even(slot)))
    assert again["moves"] == []


def test_pins_follow_the_shard_of_a_replica_and_count_toward_the_share():
    result = plan({"critical": "p0r", "normal": "stay"})
    assert result["queues"]["critical"]["target"] == "p0" and result["queues"]["critical"]["rule"] == "pinned"
    assert result["queues"]["normal"]["target"] == "p0"
    assert (8090, "p1", "p0") in result["moves"]
    assert max(len(q) for q in per_primary(result).values()) <= 2


def test_everything_on_one_primary_spreads_two_each():
    result = plan(owner=lambda slot: "p0")
    assert sorted(len(q) for q in per_primary(result).values()) == [2, 2, 2]
    assert len(result["moves"]) == 4


@pytest.mark.parametrize("placement, message", [
    ({"urgent": "spread"}, "names urgent, which are not in redis_bullmq_queues"),
    ({"critical": "nowhere"}, "names 'nowhere', which is not a cluster node"),
    ([("critical", "p0")], "must be a mapping"),
])
def test_bad_placement_is_refused_naming_the_fix(placement, message):
    with pytest.raises(PlacementError, match=message):
        plan(placement)


def test_queues_in_one_slot_cannot_be_pinned_apart():
    with pytest.raises(PlacementError, match="share slot 8090"):
        plan({"critical": "p0", "{critical}": "p1"}, queues=["critical", "{critical}"])


def test_compensation_only_past_the_threshold():
    owned = {"a": set(range(0, 10)), "b": set(range(10, 20))}
    moves = [(3, "a", "b")]
    counts = {"a": 10, "b": 10}
    assert compensation_moves(moves, owned, {3}, counts, 50, out_of_balance) == []
    back = compensation_moves(moves, owned, {3, 19}, counts, 2, out_of_balance)
    assert back == [(18, "b", "a")]  # b's highest slot that holds no queue goes back


def test_reshard_mode_queues_on_the_lab_topology():
    topology = Topology(INVENTORY, healthy_views())
    result = plan_reshard(topology, mode="queues", queues=dict(prefix="bull", names=SPEC, placement={}))
    moves = moves_of(result["actions"])
    assert len(moves) == 1 and moves[0][0] == 9976
    assert result["queues"]["high"]["target"] == moves[0][2]
    assert sum(result["targets"].values()) == 16384
    # pinned by a replica's name: the queue goes to that replica's primary
    replica = next(n["name"] for n in INVENTORY if topology.role(n["name"]) == "replica")
    pinned = plan_reshard(topology, mode="queues",
                          queues=dict(prefix="bull", names=SPEC, placement={"critical": replica}))
    assert pinned["queues"]["critical"]["target"] == topology.primary_of(replica)
