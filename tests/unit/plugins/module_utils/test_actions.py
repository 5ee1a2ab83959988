"""The plan vocabulary: every action renders to the one line operators read, and half-described
actions are refused when they are built."""
import json

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.actions import FIELDS, Action, render, render_all

EXAMPLES = [
    (Action("meet", "a2", via="a1", host="10.0.0.2", port=6379), "CLUSTER MEET 10.0.0.2 6379 (a2 joins, via a1)"),
    (Action("addslots", "a1", first=0, last=5460), "CLUSTER ADDSLOTSRANGE 0 5460 on a1"),
    (Action("replicate", "b2", primary="a1"), "CLUSTER REPLICATE a1 on b2"),
    (Action("replicate", "b2", primary="a1", was=None), "CLUSTER REPLICATE a1 on b2 (was free)"),
    (Action("replicate", "b2", primary="a1", was="c1"), "CLUSTER REPLICATE a1 on b2 (was c1)"),
    (Action("failover", "b2", mode="FORCE", failed="a1"), "CLUSTER FAILOVER FORCE on b2 (replaces failed primary a1)"),
    (Action("handover", "b2", primary="a1"),
     "CLUSTER FAILOVER on b2 (takes over from a1 before it restarts; no acknowledged write lost)"),
    (Action("failover_zone", "c1", primary="a2"),
     "CLUSTER FAILOVER on c1 (takes over from a2 to restore the zone spread)"),
    (Action("forget", "a3", node_id="x" * 40), "CLUSTER FORGET a3 on every node"),
    (Action("forget", "a3", node_id="x" * 40, reset=True), "CLUSTER FORGET a3 on every node, then CLUSTER RESET on it"),
    (Action("new_shard", "a3", replicas=["b3"], zones={"a3": "zone-a", "b3": "zone-b"}),
     "NEW SHARD primary a3@zone-a replicas b3@zone-b"),
    (Action("new_shard", "a3", replicas=[], zones={"a3": "zone-a"}, resumed=True),
     "NEW SHARD primary a3@zone-a replicas none (formed by an earlier run)"),
    (Action("move", "a1", target="a3", slots=[5, 3, 4, 9]), "MOVE 4 slot(s) a1 -> a3: 3-5 9-9"),
    (Action("move", "a1", target="b1", slots=[7], resume=True),
     "FINISH 1 open slot(s) a1 -> b1: 7-7 (left open by an interrupted run)"),
    (Action("clean", "a1", queue="batch", set="failed", count=3, cutoff=0, older_than="7 d", base="bull:{batch}:batch:"),
     "a1: queue batch: remove 3 failed job(s) older than 7 d"),
    (Action("trim", "a1", queue="batch", key="bull:{batch}:batch:events", length=150, maxlen=100),
     "a1: queue batch: trim events 150 -> 100"),
    (Action("purge", "a1"), "a1: MEMORY PURGE"),
    (Action("defrag", "a1"), "a1: CONFIG SET activedefrag yes"),
]


@pytest.mark.parametrize("action,line", EXAMPLES, ids=[a["op"] + str(i) for i, (a, _unused) in enumerate(EXAMPLES)])
def test_each_action_renders_to_one_line(action, line):
    assert render(action) == str(action) == line


def test_every_op_has_an_example_and_actions_are_plain_data():
    assert {a["op"] for a, _unused in EXAMPLES} == set(FIELDS)
    actions = [a for a, _unused in EXAMPLES]
    assert json.loads(json.dumps(actions))[0] == dict(op="meet", node="a2", via="a1", host="10.0.0.2", port=6379)
    assert render_all(actions) == [line for _unused, line in EXAMPLES]


def test_half_described_or_unknown_actions_are_refused():
    with pytest.raises(ValueError, match="action replicate on b2 lacks primary"):
        Action("replicate", "b2")
    with pytest.raises(ValueError, match="unknown action"):
        Action("reshard", "a1")
