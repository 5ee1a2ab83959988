"""The formation planner and its execution, on views captured from the lab (fixtures) and a fake
redis-cli for the executor."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.actions import render_all
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli, RedisCliError, Waiter
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor
from ansible_collections.shardwise.redis.plugins.module_utils.formation import plan_cluster, predict
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology, parse_cluster_nodes

from lab_capture import ADDR, INVENTORY, fixture, healthy_views
from test_cli import FakeRunner


def fresh_view(node_id, host):
    return "%s %s:6379@16379,x myself,master - 0 0 0 connected\n" % (node_id, host)


def fresh_views():
    return {n: fresh_view("%040x" % (i + 1), ADDR[n]) for i, n in enumerate(ADDR)}


def test_healthy_cluster_plans_nothing():
    assert plan_cluster(Topology(INVENTORY, healthy_views())) == ([], [])


def test_failover_is_accepted_as_is():
    views = healthy_views()
    views["redis-a1"] = fixture("nodes-after-rejoin.txt")
    # b2 now holds a1's slots (its own view says so after the failover)
    views["redis-b2"] = fixture("nodes-failed-promoted.txt").replace("myself,", "")
    b2_line = [x for x in views["redis-b2"].splitlines() if "10.89.20.22" in x][0]
    views["redis-b2"] = views["redis-b2"].replace(b2_line, b2_line.replace(" master ", " myself,master ", 1))
    topo = Topology(INVENTORY, views)
    assert topo.role("redis-a1") == "replica" and topo.primary_of("redis-a1") == "redis-b2"
    actions, notes = plan_cluster(topo)
    assert actions == []


def test_open_slots_block_planning():
    views = healthy_views()
    views["redis-a1"] = fixture("nodes-migrating-source.txt")
    topo = Topology(INVENTORY, views)
    assert topo.open_slots()[0]["slot"] == 100
    with pytest.raises(PlacementError, match="migrating"):
        plan_cluster(topo)


def test_unreachable_node_blocks_planning():
    views = healthy_views()
    views["redis-c2"] = None
    with pytest.raises(RedisCliError, match="redis-c2"):
        plan_cluster(Topology(INVENTORY, views))


def test_fresh_nodes_get_the_full_zone_aware_plan():
    topo = Topology(INVENTORY, fresh_views())
    actions, notes = plan_cluster(topo)
    lines = render_all(actions)
    assert lines == [
        "CLUSTER MEET 10.89.20.12 6379 (redis-a2 joins, via redis-a1)",
        "CLUSTER MEET 10.89.20.21 6379 (redis-b1 joins, via redis-a1)",
        "CLUSTER MEET 10.89.20.22 6379 (redis-b2 joins, via redis-a1)",
        "CLUSTER MEET 10.89.20.31 6379 (redis-c1 joins, via redis-a1)",
        "CLUSTER MEET 10.89.20.32 6379 (redis-c2 joins, via redis-a1)",
        "CLUSTER ADDSLOTSRANGE 0 5460 on redis-a1",
        "CLUSTER ADDSLOTSRANGE 5461 10922 on redis-b1",
        "CLUSTER ADDSLOTSRANGE 10923 16383 on redis-c1",
        "CLUSTER REPLICATE redis-a1 on redis-b2",
        "CLUSTER REPLICATE redis-b1 on redis-c2",
        "CLUSTER REPLICATE redis-c1 on redis-a2",
    ]
    after = predict(topo, actions)
    assert after["nodes"]["redis-b2"]["primary"] == "redis-a1"


def test_half_formed_cluster_is_finished_not_recreated():
    # Interrupted after the meets and the first ADDSLOTSRANGE: a1 holds 0-5460, everybody knows everybody.
    ids = {n: "%040x" % (i + 1) for i, n in enumerate(ADDR)}

    def view(me):
        lines = []
        for n, host in ADDR.items():
            flags = ("myself," if n == me else "") + "master"
            slots = " 0-5460" if n == "redis-a1" else ""
            lines.append("%s %s:6379@16379,%s %s - 0 0 1 connected%s" % (ids[n], host, n, flags, slots))
        return "\n".join(lines) + "\n"
    topo = Topology(INVENTORY, {n: view(n) for n in ADDR})
    actions, _unused = plan_cluster(topo)
    lines = render_all(actions)
    assert not any("MEET" in line for line in lines)
    assert "CLUSTER ADDSLOTSRANGE 0 5460 on redis-a1" not in lines
    assert "CLUSTER ADDSLOTSRANGE 5461 10922 on redis-b1" in lines
    assert "CLUSTER ADDSLOTSRANGE 10923 16383 on redis-c1" in lines
    assert sum(1 for line in lines if "REPLICATE" in line) == 3


def test_complete_cluster_with_extra_hosts_leaves_them_for_add_shard():
    inventory = INVENTORY + [dict(name="redis-a3", host="10.89.20.13", port=6379, zone="zone-a"),
                             dict(name="redis-b3", host="10.89.20.23", port=6379, zone="zone-b")]
    views = healthy_views()
    views["redis-a3"] = fresh_view("%040x" % 77, "10.89.20.13")
    views["redis-b3"] = fresh_view("%040x" % 78, "10.89.20.23")
    actions, notes = plan_cluster(Topology(inventory, views))
    assert actions == []
    assert "add_shard.yml" in notes[0]


def test_lost_replica_is_replaced_from_a_free_node_in_another_zone():
    views = healthy_views()
    # c2 (replica of b1, zone-c) was reset: it is a free empty primary now, still known.
    c2_id = [n for n in parse_cluster_nodes(views["redis-c2"]) if n["myself"]][0]["id"]
    views["redis-c2"] = fresh_view(c2_id, ADDR["redis-c2"])
    for name in views:
        if name != "redis-c2":
            lines = []
            for line in views[name].splitlines():
                if line.startswith(c2_id):
                    parts = line.split()
                    parts[2], parts[3] = parts[2].replace("slave", "master"), "-"
                    line = " ".join(parts)
                lines.append(line)
            views[name] = "\n".join(lines)
    actions, _unused = plan_cluster(Topology(INVENTORY, views))
    assert render_all(actions) == ["CLUSTER REPLICATE redis-b1 on redis-c2"]


def test_infeasible_zones_are_refused_before_any_action():
    inventory = [dict(n, zone="zone-a") for n in INVENTORY]
    with pytest.raises(PlacementError, match="all 6 nodes are in zone zone-a"):
        plan_cluster(Topology(inventory, fresh_views()))


class FormingLab:
    """A scripted redis-cli for formation: MEET, ADDSLOTSRANGE and REPLICATE change what CLUSTER NODES says next
    (`slots`: address -> the slots its node gets); a replica's sync is done at its `syncs`-th INFO replication."""

    def __init__(self, slots, syncs):
        self.ids = {h: "%040x" % (i + 1) for i, h in enumerate(ADDR.values())}
        self.slots, self.needed = slots, syncs
        self.met = self.slotted = False
        self.replica_of, self.syncs, self.log = {}, {}, []

    def __call__(self, argv):
        host = argv[argv.index("-h") + 1]
        cmd = argv[argv.index("--no-auth-warning") + 1:]
        self.log.append((host, cmd[:2]))
        if cmd[:2] == ["CLUSTER", "MEET"]:
            self.met = True
            return 0, "OK\n", ""
        if cmd[:2] == ["CLUSTER", "ADDSLOTSRANGE"]:
            self.slotted = True
            return 0, "OK\n", ""
        if cmd[:2] == ["CLUSTER", "REPLICATE"]:
            assert self.met and self.slotted
            self.replica_of[host] = cmd[2]
            return 0, "OK\n", ""
        if cmd[:2] == ["CLUSTER", "NODES"]:
            lines = []
            for h, node_id in self.ids.items():
                if not self.met and h != host:
                    continue
                following = self.replica_of.get(h)
                flags = ("myself," if h == host else "") + ("slave" if following else "master")
                slots = self.slots.get(h, "") if self.slotted else ""
                lines.append("%s %s:6379@16379 %s %s 0 0 0 connected%s" % (node_id, h, flags, following or "-", slots))
            return 0, "\n".join(lines) + "\n", ""
        if cmd[:2] == ["CLUSTER", "INFO"]:
            return 0, "cluster_state:ok\r\n", ""
        if cmd == ["INFO", "replication"] and host in self.replica_of:
            self.syncs[host] = self.syncs.get(host, 0) + 1
            done = self.syncs[host] >= self.needed
            return 0, "role:slave\r\nmaster_link_status:%s\r\nmaster_sync_in_progress:%d\r\n" % (
                "up" if done else "down", 0 if done else 1), ""
        raise AssertionError(cmd)


def form(lab, actions):
    runner = FakeRunner(lab)
    clock = iter(range(1000))
    executor = Executor(RedisCli(runner, "redis-cli", "admin", "p", "/ca", "/c", "/k"),
                        Waiter(30, lambda s: None, lambda: next(clock)), Topology(INVENTORY, fresh_views()))
    return runner, executor.run(actions)


def test_apply_runs_meet_addslots_then_replicate_in_order():
    lab = FormingLab({"10.89.20.11": " 0-5460"}, syncs=2)  # the sync in progress on the first look, done on the next
    actions, _unused = plan_cluster(Topology(INVENTORY, fresh_views()))
    subset = [a for a in actions if a["op"] == "meet" or a["node"] in ("redis-a1", "redis-b2")]
    runner, done = form(lab, subset)
    sent = [c[0][c[0].index("--no-auth-warning") + 1:][:2] for c in runner.calls]
    assert sent.index(["CLUSTER", "MEET"]) < sent.index(["CLUSTER", "ADDSLOTSRANGE"]) < sent.index(["CLUSTER", "REPLICATE"])
    assert done[-1] == "CLUSTER REPLICATE redis-a1 on redis-b2"
    assert list(lab.syncs.values()) == [2]  # replicate() returned only once the replica's sync had finished


def test_the_replicas_of_a_new_cluster_start_their_syncs_together():
    """The free nodes' REPLICATE are all sent before any sync is awaited (in turn, each waited for the
    primary's repl-diskless-sync-delay: 45 replicas took 4 minutes); each replica's sync is still awaited."""
    lab = FormingLab({"10.89.20.11": " 0-5460", "10.89.20.21": " 5461-10922", "10.89.20.31": " 10923-16383"}, syncs=3)
    actions, _unused = plan_cluster(Topology(INVENTORY, fresh_views()))
    _unused, done = form(lab, actions)
    assert sum(1 for line in done if "REPLICATE" in line) == 3
    first_sync = lab.log.index([x for x in lab.log if x[1] == ["INFO", "replication"]][0])
    replicates = [i for i, x in enumerate(lab.log) if x[1] == ["CLUSTER", "REPLICATE"]]
    assert len(replicates) == 3 and max(replicates) < first_sync
    assert sorted(lab.syncs.values()) == [3, 3, 3]  # each asked until done, and not once more


def test_a_node_from_another_cluster_or_with_data_is_refused_at_meet():
    views = fresh_views()
    # c2 still knows the three nodes of another cluster and holds its slots
    views["redis-c2"] += "".join("%s 192.0.2.%d:6379@16379 master - 0 0 0 connected\n" % (str(i) * 40, i) for i in (1, 2, 3))
    views["redis-c2"] = views["redis-c2"].replace("connected\n", "connected 0-100\n", 1)
    # c2 holds slots, so it would be the node the others are met through: that merges them into its cluster
    with pytest.raises(PlacementError, match=r"refusing to CLUSTER MEET through redis-c2: it knows 3 node\(s\) outside the "
                                             r"inventory \(192.0.2.1:6379, 192.0.2.2:6379, 192.0.2.3:6379\): it belongs to "
                                             r"another cluster"):
        plan_cluster(Topology(INVENTORY, views))
    views = fresh_views()
    views["redis-c2"] += "%s 192.0.2.1:6379@16379 master - 0 0 0 connected 0-16383\n" % ("1" * 40)
    with pytest.raises(PlacementError, match=r"refusing to CLUSTER MEET redis-c2: it knows 1 node\(s\) outside"):
        plan_cluster(Topology(INVENTORY, views))
    info = {"redis-b1": "# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\n"}
    with pytest.raises(PlacementError, match=r"redis-b1: it holds 5 key\(s\).*FLUSHALL and CLUSTER RESET HARD"):
        plan_cluster(Topology(INVENTORY, fresh_views(), server_info=info))
    # nodes that know only inventory nodes (an interrupted formation) may still be met
    views = fresh_views()
    views["redis-c2"] += "%040x %s:6379@16379 master - 0 0 0 connected\n" % (1, ADDR["redis-a1"])
    actions, _unused = plan_cluster(Topology(INVENTORY, views))
    assert "meet" in [a["op"] for a in actions]


def test_a_second_replica_per_primary_comes_from_a_zone_of_its_own():
    """redis_cluster_replicas raised from 1 to 2 on the six-node lab with a third host per zone: each primary's new
    replica is in the zone that neither the primary nor its first replica is in (the first fit in inventory order
    would give redis-a1 a second replica in zone-b, beside redis-b2)."""
    extra = [("redis-a3", "10.89.20.13", "zone-a"), ("redis-b3", "10.89.20.23", "zone-b"),
             ("redis-c3", "10.89.20.33", "zone-c")]
    inventory = INVENTORY + [dict(name=n, host=h, port=6379, zone=z) for n, h, z in extra]
    views = healthy_views()
    for k, (name, host, _zone) in enumerate(extra):
        views[name] = fresh_view("%040x" % (90 + k), host)
    topology = Topology(inventory, views)
    actions, _unused = plan_cluster(topology, replicas=2)
    added = dict((a["node"], a["primary"]) for a in actions if a["op"] == "replicate")
    assert sorted(added) == ["redis-a3", "redis-b3", "redis-c3"]
    for new, primary in added.items():
        first = [n for n in ADDR if topology.primary_of(n) == primary]
        zones = {topology.zone_of[primary], topology.zone_of[new]} | {topology.zone_of[n] for n in first}
        assert len(zones) == 3, (new, primary, first)
