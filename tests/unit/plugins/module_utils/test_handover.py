"""handover.py: which replica takes a primary's slots before it restarts, the refusal to touch a node of
an unhealthy cluster, check mode, and the wait for a restarted node (loaded, cluster ok, synced), on the
captured lab topology (a1 -> b2, b1 -> c2, c1 -> a2)."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import handover
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, Waiter
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import ADDR, INVENTORY, fixture, healthy_views
from test_availability import REPLICA_OF, primary_info

HOST = {h: n for n, h in ADDR.items()}


def replica_info(link="up", offset=140):
    return "role:slave\r\nmaster_link_status:%s\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:%d\r\n" % (link, offset)


def lab(views=None, link="up"):
    infos = {p: primary_info((r, "online")) for p, r in REPLICA_OF.items()}
    for r in REPLICA_OF.values():
        infos[r] = replica_info(link)
    views = views or healthy_views()
    ok = {n: fixture("cluster-info-ok.txt") for n in ADDR if views.get(n)}
    return Topology(INVENTORY, views, ok, server_info=infos)


def test_a_primary_hands_its_slots_to_its_in_sync_replica_and_a_replica_needs_nothing():
    topo = lab()
    assert handover.restart_problems(topo) == []
    actions = handover.plan_release(topo, "redis-a1")
    assert [(a["op"], a["node"], a["primary"]) for a in actions] == [("handover", "redis-b2", "redis-a1")]
    assert str(actions[0]) == ("CLUSTER FAILOVER on redis-b2 (takes over from redis-a1 before it restarts; "
                               "no acknowledged write lost)")
    assert handover.plan_release(topo, "redis-a2") == []


def test_no_replica_in_sync_refuses_naming_the_slots_and_the_runbook():
    with pytest.raises(PlacementError, match=r"primary redis-a1 has no replica .*redis-b2.*0-5460.*failover_recovery"):
        handover.plan_release(lab(link="down"), "redis-a1")


def run_release(monkeypatch, topo, check_mode=False):
    ran = []

    class Executor:
        def __init__(self, cli, waiter, topology):
            pass

        def run(self, actions):
            ran.extend(actions)
            return [str(a) for a in actions]
    monkeypatch.setattr(handover, "gather", lambda cli, inventory: topo)
    monkeypatch.setattr(handover, "Executor", Executor)
    clock = iter([10.0, 10.25])
    try:
        return handover.release(None, INVENTORY, "redis-a1", Waiter(5), check_mode, lambda: next(clock)), ran
    except Stopped as exc:
        return exc, ran


def test_release_runs_the_handover_and_reports_its_duration(monkeypatch):
    result, ran = run_release(monkeypatch, lab())
    assert [a["node"] for a in ran] == ["redis-b2"] and result["changed"] and result["handover_to"] == "redis-b2"
    assert result["role"] == "replica" and result["handover_seconds"] == 0.25


def test_check_mode_plans_without_acting(monkeypatch):
    result, ran = run_release(monkeypatch, lab(), check_mode=True)
    assert ran == [] and result["changed"] and result["plan"] == [
        "CLUSTER FAILOVER on redis-b2 (takes over from redis-a1 before it restarts; no acknowledged write lost)"]


def test_an_unhealthy_cluster_stops_the_roll_before_any_action(monkeypatch):
    views = healthy_views()
    views["redis-c2"] = None
    exc, ran = run_release(monkeypatch, lab(views))
    assert isinstance(exc, Stopped) and ran == []
    assert "redis-a1 is not restarted" in str(exc) and "node redis-c2 unreachable" in str(exc)
    assert exc.result["problems"]


class Node:
    """A restarting node: refuses connections, then loads, then syncs."""

    def __init__(self, replies):
        self.replies = replies  # command tuple -> list of replies (the last one repeats)

    def run(self, host, port, *args):
        queue = self.replies[args[:2] if args[:2] in self.replies else args[:1]]
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(reply, Exception):
            raise reply
        return reply


def test_rejoin_waits_for_the_load_the_cluster_and_the_sync():
    node = Node({("INFO",): [RedisCliError("Could not connect"), "redis_version:7.2.4\r\nloading:1\r\n",
                             "redis_version:7.2.4\r\nloading:0\r\nrun_id:abc\r\nexecutable:/opt/redis/bin/redis-server\r\n"],
                 ("CLUSTER", "INFO"): ["cluster_state:fail\r\ncluster_slots_assigned:16384\r\n",
                                       "cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"],
                 ("INFO", "replication"): [replica_info("down"), replica_info("up")]})
    clock = iter(range(100))
    result = handover.rejoin(node, INVENTORY, "redis-a1", Waiter(50, lambda s: None, lambda: next(clock)))
    assert result == dict(changed=False, node="redis-a1", role="replica", version="7.2.4", run_id="abc",
                          executable="/opt/redis/bin/redis-server")


def test_rejoin_timeout_stops_naming_the_step():
    node = Node({("INFO",): ["redis_version:7.2.4\r\nloading:1\r\n"]})
    clock = iter(range(100))
    with pytest.raises(Stopped, match="redis-a1 did not come back: .*redis-a1 to load its data"):
        handover.rejoin(node, INVENTORY, "redis-a1", Waiter(3, lambda s: None, lambda: next(clock)))


def test_a_node_outside_a_formed_cluster_or_down_is_restarted_without_a_handover(monkeypatch):
    views = healthy_views()
    views["redis-a1"] = None
    result, ran = run_release(monkeypatch, lab(views))
    assert ran == [] and not result["changed"] and "does not answer" in result["note"]
    views = healthy_views()
    views["redis-a1"] = "\n".join(x for x in views["redis-a1"].splitlines() if "myself" in x).rsplit(" 0-5460", 1)[0] + "\n"
    result, ran = run_release(monkeypatch, lab(views))
    assert ran == [] and "not in a formed cluster" in result["note"] and result["problems"] == []
