"""The one executor, on the lab topology with a scripted redis-cli: batches of meets and forgets, the
waits after failovers, where each action's commands go, and results kept in the action."""
import json

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli, WaitTimeout, Waiter
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import ADDR, INVENTORY, healthy_views

NAME = {h: n for n, h in ADDR.items()}


class Lab:
    """Answers redis-cli from the captured healthy views; `hooks` change what a node says next."""

    def __init__(self, views=None):
        self.views = dict(views or healthy_views())
        self.sent = []  # (node name, command)
        self.hooks = {}  # (name, first word(s)) -> function(args) -> reply text
        self.processes = []  # (node name, number of commands) of each redis-cli run

    def __call__(self, argv, data=None, environ_update=None):
        name = NAME[argv[argv.index("-h") + 1]]
        self.processes.append((name, 1 if data is None else len(data.split("\n"))))
        if data is not None:
            replies = []
            for line in data.split("\n"):
                args = json.loads("[" + line.replace('" "', '", "') + "]")
                self.sent.append((name, args))
                replies.append(json.dumps(self.answer(name, args)))
            return 0, "\n".join(replies) + "\n", ""
        args = argv[argv.index("--no-auth-warning") + 1:]
        self.sent.append((name, args))
        if self.views.get(name) is None:
            return 1, "", "Could not connect to Redis"
        return 0, self.answer(name, args), ""

    def answer(self, name, args):
        for key in (tuple(args[:2]), args[0]):
            if (name, key) in self.hooks:
                return self.hooks[(name, key)](args)
        if args[:2] == ["CLUSTER", "NODES"]:
            return self.views[name]
        return "OK"


def executor(lab, views=None, timeout=5):
    clock = iter(range(1000))
    topology = Topology(INVENTORY, views or healthy_views())
    cli = RedisCli(lab, "redis-cli", "admin", "pw", "ca", "crt", "key")
    return Executor(cli, Waiter(timeout, lambda s: None, lambda: next(clock)), topology)


def test_forgets_run_as_one_batch_and_never_on_the_nodes_being_forgotten():
    lab = Lab()
    forgets = [Action("forget", "redis-a1", node_id="1" * 40, reset=True),
               Action("forget", "redis-b2", node_id="2" * 40, reset=True)]
    done = executor(lab).run(forgets)
    assert done == [str(a) for a in forgets]
    forget_targets = sorted(n for n, args in lab.sent if args[:2] == ["CLUSTER", "FORGET"])
    # each of the four others forgets both; a1 and b2 (primary and its replica) are only reset
    assert forget_targets == sorted(["redis-a2", "redis-b1", "redis-c1", "redis-c2"] * 2)
    assert [n for n, args in lab.sent if args[:2] == ["CLUSTER", "RESET"]] == ["redis-a1", "redis-b2"]
    assert lab.sent.index(("redis-c2", ["CLUSTER", "FORGET", "2" * 40])) < lab.sent.index(
        ("redis-a1", ["CLUSTER", "RESET", "SOFT"]))


def test_failover_waits_until_the_replica_reports_itself_primary_with_slots():
    lab = Lab()
    promoted = {"after": 2}

    def nodes(args):
        promoted["after"] -= 1
        view = healthy_views()["redis-b2"]
        if promoted["after"] < 0:
            line = [x for x in view.splitlines() if "myself" in x][0]
            parts = line.split()
            view = view.replace(line, " ".join(parts[:2] + ["myself,master", "-"] + parts[4:] + ["0-5460"]))
        return view
    lab.hooks[("redis-b2", ("CLUSTER", "NODES"))] = nodes
    executor(lab).run([Action("failover", "redis-b2", mode="FORCE", failed="redis-a1")])
    assert ("redis-b2", ["CLUSTER", "FAILOVER", "FORCE"]) in lab.sent and promoted["after"] < 0
    lab2 = Lab()  # a replica that never takes over: the wait names it
    with pytest.raises(WaitTimeout, match="redis-a2 to become primary"):
        executor(lab2).run([Action("failover_zone", "redis-a2", primary="redis-c1")])


def test_meet_waits_for_reachable_members_only_and_for_the_new_node():
    views = healthy_views()
    views["redis-c2"] = None  # a member whose host is down must not block a rejoin
    lab = Lab(views)
    done = executor(lab, views).run([Action("meet", "redis-a2", via="redis-a1", host=ADDR["redis-a2"], port=6379)])
    assert done == ["CLUSTER MEET 10.89.20.12 6379 (redis-a2 joins, via redis-a1)"]
    assert ("redis-a1", ["CLUSTER", "MEET", ADDR["redis-a2"], "6379"]) in lab.sent
    assert not any(n == "redis-c2" for n, _unused in lab.sent)


def test_replicas_moved_from_a_shard_go_one_at_a_time():
    """Replicates of nodes that already serve a shard (a replica moved to another primary) are not batched: each
    sync is awaited before the next replica leaves its primary, so no shard loses its last in-sync replica early."""
    lab = Lab()
    ids = dict((name, [x for x in view.splitlines() if "myself" in x][0].split()[0])
               for name, view in healthy_views().items())

    def replicate(name):
        def hook(args):
            view = lab.views[name]
            line = [x for x in view.splitlines() if "myself" in x][0]
            parts = line.split()
            lab.views[name] = view.replace(line, " ".join(parts[:3] + [args[2]] + parts[4:]))
            return "OK"
        return hook
    for name in ("redis-a2", "redis-b2"):
        lab.hooks[(name, ("CLUSTER", "REPLICATE"))] = replicate(name)
        lab.hooks[(name, ("INFO", "replication"))] = lambda args: "master_link_status:up\r\nmaster_sync_in_progress:0\r\n"
    moves = [Action("replicate", "redis-a2", primary="redis-b1"), Action("replicate", "redis-b2", primary="redis-c1")]
    done = executor(lab).run(moves)
    assert done == [str(a) for a in moves]
    order = [(n, args[:2]) for n, args in lab.sent if args[:2] in (["CLUSTER", "REPLICATE"], ["INFO", "replication"])]
    assert order == [("redis-a2", ["CLUSTER", "REPLICATE"]), ("redis-a2", ["INFO", "replication"]),
                     ("redis-b2", ["CLUSTER", "REPLICATE"]), ("redis-b2", ["INFO", "replication"])]
    assert ("redis-a2", ["CLUSTER", "REPLICATE", ids["redis-b1"]]) in lab.sent


def test_meets_through_one_node_share_one_pipeline():
    views = healthy_views()
    lab = Lab(views)
    meets = [Action("meet", name, via="redis-a1", host=ADDR[name], port=6379) for name in ("redis-a2", "redis-b1")]
    executor(lab, views).run(meets)
    assert [p for p in lab.processes if p[0] == "redis-a1" and p[1] > 1] == [("redis-a1", 2)]
    assert sum(1 for n, args in lab.sent if args[:2] == ["CLUSTER", "MEET"]) == 2


def test_clean_up_actions_keep_their_results():
    lab = Lab()
    stream = {"length": 120}

    def xtrim(args):
        cut, stream["length"] = stream["length"] - int(args[3]), int(args[3])
        return cut
    lab.hooks[("redis-a1", "EVAL")] = lambda args: [2, 2, 0]  # 2 fetched < batch 5: the last batch
    lab.hooks[("redis-a1", "XLEN")] = lambda args: stream["length"]
    lab.hooks[("redis-a1", "XTRIM")] = xtrim
    base = "bull:{batch}:batch:"
    actions = [Action("clean", "redis-a1", queue="batch", set="completed", count=2, cutoff=1, older_than="24 h",
                      base=base),
               Action("trim", "redis-a1", queue="batch", key=base + "events", length=120, maxlen=100),
               Action("purge", "redis-a1"), Action("defrag", "redis-a1")]
    ex = executor(lab)
    ex.batch_size = 5
    ex.run(actions)
    assert actions[0]["result"] == dict(removed=2, kept=0) and actions[1]["result"] == dict(trimmed=20)
    assert stream["length"] == 100
    assert [args[0] for n, args in lab.sent] == ["EVAL", "XLEN", "XTRIM", "XLEN", "MEMORY", "CONFIG"]


def test_handover_asks_again_until_the_replica_took_over_then_waits_for_the_old_primary_to_follow():
    lab = Lab()
    state = {"asked": 0, "nodes_seen": 0}

    def failover(args):
        state["asked"] += 1
        return "OK"

    def b2_nodes(args):
        view = healthy_views()["redis-b2"]
        if state["asked"] >= 2:  # the first CLUSTER FAILOVER timed out (the primary was busy)
            line = [x for x in view.splitlines() if "myself" in x][0]
            parts = line.split()
            view = view.replace(line, " ".join(parts[:2] + ["myself,master", "-"] + parts[4:] + ["0-5460"]))
        return view

    def a1_nodes(args):
        state["nodes_seen"] += 1
        view = healthy_views()["redis-a1"]
        if state["nodes_seen"] > 2:
            b2_id = [x.split()[0] for x in view.splitlines() if ADDR["redis-b2"] in x][0]
            line = [x for x in view.splitlines() if "myself" in x][0]
            parts = line.split()
            view = view.replace(line, " ".join(parts[:2] + ["myself,slave", b2_id] + parts[4:8]))
        return view
    lab.hooks[("redis-b2", ("CLUSTER", "FAILOVER"))] = failover
    lab.hooks[("redis-b2", ("CLUSTER", "NODES"))] = b2_nodes
    lab.hooks[("redis-a1", ("CLUSTER", "NODES"))] = a1_nodes
    done = executor(lab, timeout=60).run([Action("handover", "redis-b2", primary="redis-a1")])
    assert done == ["CLUSTER FAILOVER on redis-b2 (takes over from redis-a1 before it restarts; no acknowledged write lost)"]
    assert state["asked"] == 2 and state["nodes_seen"] > 2
    with pytest.raises(WaitTimeout, match="redis-a2 to take over from redis-c1"):
        executor(Lab(), timeout=20).run([Action("handover", "redis-a2", primary="redis-c1")])
