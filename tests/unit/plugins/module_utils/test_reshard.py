"""Resharding: balance targets, slot moves, new shards, removal rules, resume of open slots, the
memory headroom check and the MIGRATE executor, on views derived from the real lab captures."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.redis_cluster import (
    RedisCli, RedisCliError, RedisReplyError, Topology, parse_cluster_nodes, quote_arg)
from ansible_collections.shardwise.redis.plugins.module_utils.reshard import (
    Migrator, balance_targets, group_moves, memory_check, open_slot_work, out_of_balance, plan_lines,
    plan_moves, plan_reshard)

from lab_capture import INVENTORY, fixture, healthy_views

NEW = [dict(name="redis-a3", host="10.89.20.13", port=6379, zone="zone-a"),
       dict(name="redis-b3", host="10.89.20.23", port=6379, zone="zone-b")]
NEW_IDS = {"redis-a3": "a3" * 20, "redis-b3": "b3" * 20}


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
    assert len(moves) == 4096 and all(dst == "d" for _, _, dst in moves)
    for slot, src, dst in moves:
        owned[src].remove(slot)
        owned[dst].add(slot)
    assert {k: len(v) for k, v in owned.items()} == dict.fromkeys("abcd", 4096)
    again = balance_targets(list(owned), {k: len(v) for k, v in owned.items()})
    assert plan_moves(owned, again) == []
    groups = group_moves(moves)
    assert [(g["source"], g["slots"]) for g in groups] == [("a", 1365), ("b", 1366), ("c", 1365)]
    assert groups[0]["ranges"] == ["4096-5460"]  # donors give their highest slots: ranges stay whole


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
    assert plan_reshard(topology, mode="remove", remove=["p4"])["forget"] == ["p4"]  # a, b, c: fine
    crowded = topology_with_slots(dict(owned, p4=[(12288, 14000)], p5=[(14001, 16383)]), zones)
    with pytest.raises(PlacementError, match="zone a would hold 2 of 4"):
        plan_reshard(crowded, mode="remove", remove=["p3"])


def test_add_plans_a_zone_separated_shard_and_4096_slots_each():
    topology = with_new_hosts()
    plan = plan_reshard(topology, mode="add", allow_zone_majority=True)
    assert plan["meet"] == ["redis-a3", "redis-b3"]
    assert len(plan["shards"]) == 1
    shard = plan["shards"][0]
    assert topology.zone_of[shard["primary"]] != topology.zone_of[shard["replicas"][0]]
    assert plan["replicate"] == [(shard["replicas"][0], shard["primary"])]
    assert set(plan["targets"].values()) == {4096} and len(plan["targets"]) == 4
    assert len(plan["moves"]) == 4096 and {dst for _, _, dst in plan["moves"]} == {shard["primary"]}
    text = plan_lines(plan, topology)
    assert text[0] == "CLUSTER MEET 10.89.20.13 6379 (redis-a3 joins)"
    assert any(line.startswith("MOVE 1365 slot(s) redis-a1 -> ") and line.endswith("4096-5460") for line in text)


def test_healthy_balanced_cluster_gets_no_action():
    topology = Topology(INVENTORY, healthy_views())
    for mode in ("add", "balance"):
        plan = plan_reshard(topology, mode=mode)
        assert plan_lines(plan, topology) == []


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
    assert plan["targets"]["p4"] == 0 and len(plan["moves"]) == 4096
    assert {src for _, src, _ in plan["moves"]} == {"p4"} and plan["forget"] == ["p4"]
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
    assert plan["resume"] == [(5460, "redis-a1", "redis-b1")]
    assert plan_lines(plan, topology)[0] == ("FINISH 1 open slot(s) redis-a1 -> redis-b1: 5460-5460 "
                                             "(left open by an interrupted run)")
    # 5460 joins b1's count: 5460/5463/5461 is within the 2 % threshold, so nothing else moves.
    assert plan["moves"] == []


def test_open_slot_with_a_foreign_peer_is_refused():
    views = healthy_views()
    views["redis-a1"] = views["redis-a1"].replace("connected 0-5460", "connected 0-5460 [7->-%s]" % ("f" * 40))
    with pytest.raises(PlacementError, match="not an inventory node"):
        open_slot_work(Topology(INVENTORY, views))


def test_memory_headroom_is_checked_before_moving():
    topology = with_new_hosts()
    plan = plan_reshard(topology, mode="add", allow_zone_majority=True)
    new_primary = plan["shards"][0]["primary"]
    gib = 1 << 30
    memory = {n: "used_memory:%d\r\nused_memory_dataset:%d\r\nmaxmemory:%d\r\n" % (2 * gib, 2 * gib, 4 * gib)
              for n in topology.primaries_with_slots()}
    memory[new_primary] = "used_memory:%d\r\nmaxmemory:%d\r\n" % (1 << 20, 4 * gib)
    rows = memory_check(plan, topology, memory, 80)
    assert rows[0]["node"] == new_primary and 35 < rows[0]["percent"] < 40  # 3 x 1365/5461 x 2 GiB arrive
    memory[new_primary] = "used_memory:%d\r\nmaxmemory:%d\r\n" % (int(2.5 * gib), 4 * gib)
    with pytest.raises(PlacementError, match="not enough memory headroom.*%s would reach" % new_primary):
        memory_check(plan, topology, memory, 80)


# ---------------------------------------------------------------- redis-cli pipe and the executor

class FakeRun:
    """run_command double: answers piped commands from a tiny slot/key model of two nodes."""

    def __init__(self, keys):
        self.keys = keys  # (port) -> {slot: [keys]}
        self.calls = []

    def __call__(self, argv, data=None, environ_update=None):
        self.calls.append((argv, data))
        port = int(argv[argv.index("-p") + 1])
        out = []
        for line in data.split("\n"):
            args = [a.strip('"') for a in line.split(" ")]
            if args[:2] == ["CLUSTER", "GETKEYSINSLOT"]:
                keys = self.keys[port].get(int(args[2]), [])[:int(args[3])]
                out.append("[" + ",".join('"%s"' % k for k in keys) + "]")
            elif args[0] == "MIGRATE":
                moved = args[args.index("KEYS") + 1:]
                for slot, keys in self.keys[port].items():
                    self.keys[port][slot] = [k for k in keys if k not in moved]
                out.append('"OK"')
            elif args[:2] == ["CLUSTER", "COUNTKEYSINSLOT"]:
                out.append(str(len(self.keys[port].get(int(args[2]), []))))
            else:
                out.append('"OK"')
        return 0, "\n".join(out) + "\n", ""


def test_migrator_moves_every_key_in_batches_with_the_password_on_stdin_only():
    run = FakeRun({7001: {5: ["k%d" % i for i in range(250)], 6: ["x"]}, 7002: {}})
    cli = RedisCli(run, "redis-cli", "admin", "s3cret-password-123", "ca", "crt", "key")
    nodes = {"src": dict(host="h1", port=7001), "dst": dict(host="h2", port=7002), "other": dict(host="h3", port=7003)}
    migrator = Migrator(cli, nodes, {"src": "1" * 40, "dst": "2" * 40, "other": "3" * 40}, batch_size=100)
    migrator.move([(5, "src", "dst"), (6, "src", "dst")], ["src", "dst", "other"])
    assert migrator.keys_moved == 251 and migrator.slots_moved == 2
    assert run.keys[7001] == {5: [], 6: []}
    assert all("s3cret-password-123" not in " ".join(argv) for argv, _ in run.calls)
    migrates = [data for _, data in run.calls if data.startswith('"MIGRATE"')]
    assert len(migrates) == 3 and all('"AUTH2" "admin" "s3cret-password-123" "KEYS"' in d for d in migrates)
    order = [(argv[argv.index("-p") + 1], data.split("\n")[0].split(" ")[:4]) for argv, data in run.calls]
    assert order[0] == ("7002", ['"CLUSTER"', '"SETSLOT"', '"5"', '"IMPORTING"'])
    assert order[1] == ("7001", ['"CLUSTER"', '"SETSLOT"', '"5"', '"MIGRATING"'])
    assert [(p, c[3]) for p, c in order[-3:]] == [("7002", '"NODE"'), ("7001", '"NODE"'), ("7003", '"NODE"')]


def test_pipe_reports_errors_by_command_and_allows_expected_ones():
    def run(argv, data=None, environ_update=None):
        return 0, 'error:"ERR I\'m not the owner of hash slot 5"\n"OK"\n', ""
    cli = RedisCli(run, "redis-cli", "admin", "pw", "ca", "crt", "key")
    replies = cli.pipe("h", 1, [(["CLUSTER", "SETSLOT", 5, "MIGRATING", "x"], ("ERR I'm not the owner",)), ["PING"]])
    assert isinstance(replies[0], RedisReplyError) and replies[1] == "OK"
    with pytest.raises(RedisCliError, match="CLUSTER SETSLOT 5 MIGRATING on h:1 failed: ERR I'm not the owner"):
        cli.pipe("h", 1, [["CLUSTER", "SETSLOT", 5, "MIGRATING"], ["PING"]])

    def short(argv, data=None, environ_update=None):
        return 0, '"OK"\n', ""
    with pytest.raises(RedisCliError, match="1 replies to 2 commands"):
        RedisCli(short, "redis-cli", "admin", "pw", "ca", "crt", "key").pipe("h", 1, [["PING"], ["PING"]])


def test_quote_arg_round_trips_redis_cli_line_syntax():
    assert quote_arg('a b"c\\d') == '"a b\\"c\\\\d"'
    assert quote_arg("x\ny\x01") == '"x\\ny\\x01"'
    assert quote_arg(7) == '"7"'


def test_good_replicas_counts_online_replicas_that_min_replicas_accepts():
    from ansible_collections.shardwise.redis.plugins.module_utils.reshard import good_replicas
    synced = "role:master\r\nconnected_slaves:1\r\nmin_slaves_good_slaves:1\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=154,lag=1\r\n"
    assert good_replicas(synced) == 1
    assert good_replicas(synced.replace("min_slaves_good_slaves:1", "min_slaves_good_slaves:0")) == 0
    assert good_replicas(synced.replace("state=online", "state=wait_bgsave")) == 0
    assert good_replicas("role:master\r\nconnected_slaves:0\r\n") == 0


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
    assert plan["resume"] == [(5460, "redis-a1", "redis-a3")]
    assert plan["meet"] == [] and plan["replicate"] == []
    assert plan["shards"] == [dict(primary="redis-a3", replicas=["redis-b3"], resumed=True)]
    assert plan["targets"]["redis-a3"] == 4096 and len(plan["moves"]) == 4095
    assert "NEW SHARD primary redis-a3@zone-a replicas redis-b3@zone-b (formed by an earlier run)" in plan_lines(plan, topology)
