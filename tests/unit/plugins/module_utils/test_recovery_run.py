"""recover(): Redis' own failover window first (never in check mode), then at most three rounds of
apply and re-plan, and a stop that keeps the result so far. Planner and executor are stand-ins: their
own tests are test_recovery.py and test_executor.py."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import recovery
from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, Waiter
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import INVENTORY, healthy_views

FAILOVER = Action("failover", "redis-b2", mode="FORCE", failed="redis-a1")
REPLICATE = Action("replicate", "redis-a1", primary="redis-b2", was=None)


def run(monkeypatch, plans, check_mode=False, fail_on=None):
    """plans: what plan_recovery returns on each call. Returns (result or exception, pauses, executed)."""
    plans, pauses, executed = list(plans), [], []
    monkeypatch.setattr(recovery, "gather", lambda cli, inventory: Topology(INVENTORY, healthy_views()))
    monkeypatch.setattr(recovery, "plan_recovery", lambda topology, **kw: (plans.pop(0), []))

    class Executor:
        def __init__(self, cli, waiter, topology):
            pass

        def run(self, actions):
            if fail_on in actions:
                raise RedisCliError("CLUSTER REPLICATE on redis-a1 failed: LOADING")
            executed.extend(actions)
    monkeypatch.setattr(recovery, "Executor", Executor)
    waiter = Waiter(10, pauses.append, lambda: 0)
    try:
        return recovery.recover(None, INVENTORY, waiter, 15, check_mode=check_mode), pauses, executed
    except Stopped as exc:
        return exc, pauses, executed


def test_a_failed_primary_gets_redis_own_window_then_the_plan_is_made_again(monkeypatch):
    result, pauses, executed = run(monkeypatch, [[FAILOVER], [], []])
    assert pauses == [15] and executed == [] and result["plan"] == [] and not result["changed"]


def test_rounds_continue_while_each_reveals_the_next_step_at_most_three(monkeypatch):
    result, pauses, executed = run(monkeypatch, [[FAILOVER], [FAILOVER], [REPLICATE], [], []])
    assert pauses == [15] and executed == [FAILOVER, REPLICATE]
    assert result["plan"] == [str(FAILOVER), str(REPLICATE)]
    endless = [[REPLICATE]] * 5
    result, _unused, executed = run(monkeypatch, endless)
    assert len(executed) == 3 and len(result["plan"]) == 4  # the 4th is planned, left for the next run


def test_check_mode_never_waits_nor_acts(monkeypatch):
    result, pauses, executed = run(monkeypatch, [[FAILOVER]], check_mode=True)
    assert pauses == [] and executed == [] and result["plan"] == [str(FAILOVER)] and result["changed"]


def test_a_failing_step_stops_with_the_plan_so_far(monkeypatch):
    exc, _unused, executed = run(monkeypatch, [[REPLICATE]], fail_on=REPLICATE)
    assert isinstance(exc, Stopped) and "LOADING (re-run to continue" in str(exc)
    assert exc.result["plan"] == [str(REPLICATE)] and executed == []


@pytest.mark.parametrize("node_timeout_ms,window", [(5000, 15), (15000, 35), (1000, 7), (2500, 10)])
def test_failover_window_follows_the_node_timeout(node_timeout_ms, window):
    assert recovery.failover_window(node_timeout_ms) == window
