"""fence.py, the partition fence beside every node: when it fences (fewer than a majority of the primaries serving
slots answered their pings within after_ms in the node's own view), when it lifts (demoted, or a majority has
answered again for after_ms with pongs since), and what it writes to its node (only the two min-replicas settings,
back to the configured values whenever it is not fencing, also after a restart while fenced and on stop)."""
import json
import time

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import fence, resp

ME, P2, P3, R1 = "a" * 40, "b" * 40, "c" * 40, "d" * 40


def view(me_primary=True, ping=0, pong=1000, link="connected", flags2="master", flags3="master", extra=""):
    """A three-shard view from ME (10.0.0.1); peers P2, P3 (oldest unanswered ping `ping`) and ME's replica R1."""
    mine = "myself,master - 0 0 1 connected 0-5460" if me_primary else "myself,slave %s 0 0 1 connected" % P2
    lines = [
        "%s 10.0.0.1:6379@16379 %s" % (ME, mine),
        "%s 10.0.0.2:6379@16379 %s - %d %d 2 %s 5461-10922%s" % (
            P2, flags2, ping, pong, link, " 0-5460" if not me_primary else ""),
        "%s 10.0.0.3:6379@16379 %s - %d %d 3 %s 10923-16383" % (P3, flags3, ping, pong, link),
        "%s 10.0.0.4:6379@16379 slave %s %d %d 1 connected" % (R1, ME, ping, pong),
    ]
    return "\n".join(lines) + extra + "\n"


def test_parse_nodes_reads_roles_slots_links_pings_and_pongs():
    nodes = {node["id"]: node for node in fence.parse_nodes(view(ping=99, pong=1234, flags3="master,fail?"))}
    assert nodes[ME]["myself"] and nodes[ME]["primary"] and nodes[ME]["serving"]
    assert (nodes[P2]["host"], nodes[P2]["port"], nodes[P2]["ping_ms"], nodes[P2]["pong_ms"]) == (
        "10.0.0.2", 6379, 99, 1234)
    assert nodes[P3]["pfail"] and not nodes[P3]["failed"]
    assert not nodes[R1]["primary"] and not nodes[R1]["serving"]
    # a primary with only an importing/migrating marker serves nothing
    only_marker = fence.parse_nodes("%s 10.0.0.5:6379@16379 master - 0 0 4 connected [5-<-%s]\n" % ("e" * 40, P2))
    assert not only_marker[0]["serving"]


def test_fences_without_a_majority_and_not_with_one():
    nodes = fence.parse_nodes(view(ping=9000))
    # pings pending for 1000 ms: still answering; for 1001 ms: not
    assert fence.Fence(after_ms=1000).step(nodes, 10000)[0] is False
    fenced, reason = fence.Fence(after_ms=1000).step(nodes, 10001)
    assert fenced is True and "1 of 3 primaries" in reason and "a majority is 2" in reason
    # one of two peers answers (the other is flagged failing): 2 of 3 primaries, a majority
    one = fence.parse_nodes(view(flags3="master,fail?"))
    assert fence.Fence(after_ms=1000).step(one, 10000)[0] is False
    both = fence.parse_nodes(view(flags2="master,fail", flags3="master,fail?"))
    assert fence.Fence(after_ms=1000).step(both, 10000)[0] is True


def test_a_replica_or_a_primary_without_slots_is_never_fenced():
    decide = fence.Fence(after_ms=1000)
    assert decide.step(fence.parse_nodes(view(me_primary=False, ping=1)), 10000) == (
        False, "not a primary serving slots")
    empty = "%s 10.0.0.1:6379@16379 myself,master - 0 0 1 connected\n" % ME
    assert decide.step(fence.parse_nodes(empty), 10000)[0] is False


def test_five_primaries_need_three():
    extra = "".join("\n%s 10.0.0.%d:6379@16379 master - 1 0 %d connected %d" % (c * 40, n, n, 16000 + n)
                    for c, n in (("e", 5), ("f", 6)))
    assert fence.Fence(after_ms=1000).step(fence.parse_nodes(view(flags3="master,fail?", extra=extra)), 10000)[0]
    assert not fence.Fence(after_ms=1000).step(fence.parse_nodes(view(extra=extra)), 10000)[0]


def test_lifts_only_once_a_majority_has_answered_again_for_after_ms_with_pongs_since():
    decide = fence.Fence(after_ms=1000)
    cut = fence.parse_nodes(view(ping=5000, pong=4900, link="disconnected", flags2="master,fail?"))
    assert decide.step(cut, 10000)[0] is True
    healed = fence.parse_nodes(view(ping=0, pong=10200))
    fenced, reason = decide.step(healed, 10200)
    assert fenced is True and "holding the fence" in reason
    assert decide.step(healed, 11100)[0] is True  # answered for 900 ms only
    # a pong older than the moment the majority answered again does not count
    assert decide.step(fence.parse_nodes(view(ping=0, pong=10100)), 11300)[0] is True
    assert decide.step(fence.parse_nodes(view(ping=0, pong=10200, link="disconnected")), 11300)[0] is True
    assert decide.step(healed, 11300)[0] is False
    # and a new cut fences again
    assert decide.step(fence.parse_nodes(view(ping=11500)), 12600)[0] is True


def test_lifts_at_once_when_the_majority_demoted_the_node():
    decide = fence.Fence(after_ms=1000, fenced=True)
    assert decide.step(fence.parse_nodes(view(me_primary=False, ping=1)), 10000)[0] is False


class FakeConn:
    def __init__(self, world, host, port, user):
        self.world, self.host, self.port, self.user = world, host, port, user
        self.closed = False

    def pipeline(self, commands):
        world = self.world
        if world.down:
            raise resp.RespError("connection lost: timed out")
        replies = []
        for command in commands:
            if command == ["CLUSTER", "NODES"]:
                replies.append(world.view)
            elif command[:2] == ["CONFIG", "GET"]:
                replies.append([command[2], world.config[command[2]]])
            elif command[:2] == ["CONFIG", "SET"]:
                pairs = command[2:]
                world.config.update(dict(zip(pairs[::2], pairs[1::2])))
                world.sets.append(pairs)
                replies.append("OK")
            else:
                replies.append(resp.ReplyError("ERR unknown"))
        return replies

    def close(self):
        self.closed = True


class World:
    """The node beside the agent: its view follows `cut_at` (unix ms of the cut, None when whole)."""

    def __init__(self, fenced=False):
        self.cut_at, self.healed_at = None, 0
        self.config = {"min-replicas-to-write": "1000000" if fenced else "0", "min-replicas-max-lag": "10"}
        self.sets, self.down, self.users = [], False, []

    @property
    def view(self):
        now = int(time.time() * 1000)
        if self.cut_at is not None:
            return view(ping=self.cut_at, pong=self.cut_at - 10, link="disconnected")
        return view(ping=0, pong=now)

    def connect(self, host, port, user, password, ca_cert, cert, key, timeout=10):
        self.users.append((host, user, password))
        if self.down:
            raise resp.RespError("cannot connect over TLS: timed out")
        return FakeConn(self, host, port, user)


SETTINGS = dict(host="10.0.0.1", port=6379, user="fence", password="local-secret", ca_cert="ca", cert="crt",
                key="key", after_ms=200, tick_ms=10, min_replicas_to_write=0, min_replicas_max_lag=10)


def settle(agent, world, until, seconds=2.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        agent.tick()
        if until():
            return True
        time.sleep(0.01)
    return False


def test_agent_fences_a_cut_primary_and_gives_the_configured_values_back_after_the_heal(tmp_path):
    world, logs = World(), []
    settings = dict(SETTINGS, state_file=str(tmp_path / "state.json"))
    agent = fence.Agent(settings, connect=world.connect, log=logs.append)
    assert agent.tick() is False and world.sets == []
    assert settle(agent, world, lambda: False, seconds=0.3) is False  # healthy: never fences
    assert world.sets == [] and agent.fences == 0
    world.cut_at = int(time.time() * 1000)
    assert settle(agent, world, lambda: world.config["min-replicas-to-write"] == "1000000")
    assert 200 <= int(time.time() * 1000) - world.cut_at < 1000
    assert any(line.startswith("fenced (writes refused): 1 of 3 primaries") for line in logs)
    assert json.loads((tmp_path / "state.json").read_text())["fenced"] is True
    assert (tmp_path / "state.json").read_text().endswith("}\n")  # one line: `cat` output stays line by line
    # someone sets the value back by hand (or Redis restarts): the fence is set again at the next tick
    world.config["min-replicas-to-write"] = "0"
    agent.tick()
    assert world.config["min-replicas-to-write"] == "1000000"
    world.cut_at, healed = None, time.monotonic()
    assert settle(agent, world, lambda: world.config["min-replicas-to-write"] == "0")
    assert time.monotonic() - healed >= 0.2  # held for after_ms
    assert world.config == {"min-replicas-to-write": "0", "min-replicas-max-lag": "10"} and agent.fences == 1
    assert all(set(pair[::2]) <= set(fence.FENCE_SETTINGS) for pair in world.sets)
    assert {user for _host, user, _password in world.users} == {"fence"}
    assert not any("local-secret" in line for line in logs)
    agent.lift()
    assert json.loads((tmp_path / "state.json").read_text()) == dict(
        fenced=False, fences=1, primaries=0, reason="stopped", updated=pytest.approx(time.time(), abs=5))


def test_agent_started_on_a_fenced_node_keeps_the_fence_while_cut_and_lifts_it_on_stop():
    world, logs = World(fenced=True), []
    world.cut_at = int(time.time() * 1000) - 5000
    agent = fence.Agent(dict(SETTINGS), connect=world.connect, log=logs.append)
    for _unused in range(20):
        assert agent.tick() is True
    assert world.config["min-replicas-to-write"] == "1000000" and world.sets == []
    agent.lift()
    assert world.config["min-replicas-to-write"] == "0" and "stopping: fence lifted" in logs


def test_the_fence_turns_a_zero_max_lag_on():
    agent = fence.Agent(dict(SETTINGS, min_replicas_max_lag=0), connect=World().connect, log=[].append)
    assert agent.fenced_values == {"min-replicas-to-write": "1000000", "min-replicas-max-lag": "10"}
    assert agent.configured == {"min-replicas-to-write": "0", "min-replicas-max-lag": "0"}


def test_an_unreachable_node_is_logged_once_and_left_alone():
    world, logs = World(), []
    world.down = True
    agent = fence.Agent(dict(SETTINGS), connect=world.connect, log=logs.append)
    assert agent.tick() is None and agent.tick() is None
    assert len(logs) == 1 and "cannot read the node" in logs[0]


@pytest.mark.parametrize("argv", [[], ["a", "b"]])
def test_main_wants_one_settings_file(argv):
    assert fence.main(argv) == 2
