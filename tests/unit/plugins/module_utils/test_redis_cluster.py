"""Parser, topology and planner tests on CLUSTER NODES / INFO captured from real Redis 7.2.4 nodes
(the lab: six TLS nodes in three zones; fixtures in tests/unit/fixtures)."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.redis_cluster import (
    RedisCli, RedisCliError, Topology, WaitTimeout, apply_actions, describe, health_problems,
    parse_cluster_nodes, parse_cluster_shards, parse_info, plan_cluster, predict, queue_key, slot_of,
    wait_until)

from lab_capture import ADDR, INVENTORY, fixture, healthy_views


def fresh_view(node_id, host):
    return "%s %s:6379@16379,x myself,master - 0 0 0 connected\n" % (node_id, host)


def fresh_views():
    return {n: fresh_view("%040x" % (i + 1), ADDR[n]) for i, n in enumerate(ADDR)}


# ---------------------------------------------------------------- parsers

def test_parse_cluster_nodes_healthy():
    nodes = parse_cluster_nodes(fixture("nodes-healthy-11.txt"))
    assert len(nodes) == 6
    me = [n for n in nodes if n["myself"]][0]
    assert me["host"] == "10.89.20.11" and me["port"] == 6379 and me["bus_port"] == 16379
    assert me["hostname"] == "redis-a1" and me["role"] == "primary" and me["slots"] == [(0, 5460)]
    assert me["slot_count"] == 5461
    replicas = [n for n in nodes if n["role"] == "replica"]
    assert len(replicas) == 3 and all(r["primary_id"] for r in replicas)
    assert sum(n["slot_count"] for n in nodes) == 16384


def test_parse_migrating_and_importing():
    source = [n for n in parse_cluster_nodes(fixture("nodes-migrating-source.txt")) if n["myself"]][0]
    target = [n for n in parse_cluster_nodes(fixture("nodes-migrating-target.txt")) if n["myself"]][0]
    assert list(source["migrating"]) == [100] and source["slots"] == [(0, 5460)]
    assert list(target["importing"]) == [100] and target["slots"] == [(5461, 10922)]


def test_parse_handshake_and_failed_nodes():
    hand = parse_cluster_nodes(fixture("nodes-handshake.txt"))
    assert sum(1 for n in hand if n["handshake"]) == 1
    failed = parse_cluster_nodes(fixture("nodes-failed-promoted.txt"))
    dead = [n for n in failed if n["failed"]]
    assert len(dead) == 1 and dead[0]["host"] == "10.89.20.11" and dead[0]["slots"] == []


def test_parse_info_and_cluster_info():
    info = parse_info(fixture("info-all-primary.txt"))
    assert info["redis_version"].startswith("7.2.") and info["role"] == "master"
    assert info["maxmemory_policy"] == "noeviction"
    cinfo = parse_info(fixture("cluster-info-ok.txt"))
    assert cinfo["cluster_state"] == "ok" and cinfo["cluster_slots_ok"] == "16384"


def test_parse_cluster_shards_json():
    shards = parse_cluster_shards(fixture("shards-healthy.json"))
    assert len(shards) == 3
    assert sum(b - a + 1 for s in shards for a, b in s["slots"]) == 16384
    assert all(len(s["nodes"]) == 2 for s in shards)


# ---------------------------------------------------------------- topology and health

def test_healthy_topology_is_healthy_and_plans_nothing():
    topo = Topology(INVENTORY, healthy_views(), {n: fixture("cluster-info-ok.txt") for n in ADDR})
    summary = topo.summary()
    assert summary["slots_covered"] == 16384 and summary["zone_violations"] == []
    assert [s["primary"] for s in summary["shards"]] == ["redis-a1", "redis-b1", "redis-c1"]
    assert health_problems(topo) == []
    assert plan_cluster(topo) == ([], [])


def test_failover_is_accepted_as_is():
    views = healthy_views()
    views["redis-a1"] = fixture("nodes-after-rejoin.txt")
    # b2 now holds a1's slots (its own view says so after the failover)
    views["redis-b2"] = fixture("nodes-failed-promoted.txt").replace("myself,", "")
    b2_line = [l for l in views["redis-b2"].splitlines() if "10.89.20.22" in l][0]
    views["redis-b2"] = views["redis-b2"].replace(b2_line, b2_line.replace(" master ", " myself,master ", 1))
    topo = Topology(INVENTORY, views)
    assert topo.role("redis-a1") == "replica" and topo.primary_of("redis-a1") == "redis-b2"
    actions, notes = plan_cluster(topo)
    assert actions == []


def test_zone_violation_is_reported():
    views = healthy_views()
    topo = Topology([dict(n, zone="zone-a" if n["name"] in ("redis-a1", "redis-b2") else n["zone"]) for n in INVENTORY], views)
    violations = topo.summary()["zone_violations"]
    assert violations == [dict(replica="redis-b2", primary="redis-a1", zone="zone-a")]
    assert any("shares zone" in p for p in health_problems(topo))


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


# ---------------------------------------------------------------- planner

def test_fresh_nodes_get_the_full_zone_aware_plan():
    topo = Topology(INVENTORY, fresh_views())
    actions, notes = plan_cluster(topo)
    lines = [describe(a) for a in actions]
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
    actions, _ = plan_cluster(topo)
    lines = [describe(a) for a in actions]
    assert not any("MEET" in l for l in lines)
    assert "CLUSTER ADDSLOTSRANGE 0 5460 on redis-a1" not in lines
    assert "CLUSTER ADDSLOTSRANGE 5461 10922 on redis-b1" in lines
    assert "CLUSTER ADDSLOTSRANGE 10923 16383 on redis-c1" in lines
    assert sum(1 for l in lines if "REPLICATE" in l) == 3


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
    actions, _ = plan_cluster(Topology(INVENTORY, views))
    assert [describe(a) for a in actions] == ["CLUSTER REPLICATE redis-b1 on redis-c2"]


def test_infeasible_zones_are_refused_before_any_action():
    inventory = [dict(n, zone="zone-a") for n in INVENTORY]
    with pytest.raises(PlacementError, match="all 6 nodes are in zone zone-a"):
        plan_cluster(Topology(inventory, fresh_views()))


# ---------------------------------------------------------------- runner and apply (mocked redis-cli)

class FakeRunner:
    """Records redis-cli calls; answers from a function of the argv."""

    def __init__(self, answer):
        self.calls = []
        self.answer = answer

    def __call__(self, argv, environ_update=None):
        self.calls.append((argv, environ_update))
        return self.answer(argv)


def test_runner_passes_password_by_environment_and_names_errors():
    runner = FakeRunner(lambda argv: (1, "", "ERR Unknown node abc"))
    cli = RedisCli(runner, "/usr/bin/redis-cli", "admin", "s3cret-pass", "/ca", "/crt", "/key", timeout=7)
    with pytest.raises(RedisCliError) as err:
        cli.run("10.0.0.4", 6379, "CLUSTER", "REPLICATE", "abc")
    assert str(err.value) == "CLUSTER REPLICATE abc on 10.0.0.4:6379 failed: ERR Unknown node abc"
    argv, env = runner.calls[0]
    assert "s3cret-pass" not in " ".join(argv) and env == {"REDISCLI_AUTH": "s3cret-pass"}
    assert argv[:4] == ["timeout", "7", "/usr/bin/redis-cli", "-e"] and "--tls" in argv
    assert argv[argv.index("--user") + 1] == "admin"


def test_runner_reports_timeouts():
    cli = RedisCli(FakeRunner(lambda argv: (124, "", "")), "redis-cli", "admin", "p", "/ca", "/c", "/k", timeout=3)
    with pytest.raises(RedisCliError, match="no answer within 3 s"):
        cli.run("h", 1, "PING")


def test_apply_runs_meet_addslots_then_replicate_in_order():
    state = {"met": False, "slots": False}
    ids = {h: "%040x" % (i + 1) for i, h in enumerate(ADDR.values())}

    def answer(argv):
        host = argv[argv.index("-h") + 1]
        cmd = argv[argv.index("--no-auth-warning") + 1:]
        if cmd[:2] == ["CLUSTER", "MEET"]:
            state["met"] = True
            return 0, "OK\n", ""
        if cmd[:2] == ["CLUSTER", "ADDSLOTSRANGE"]:
            state["slots"] = True
            return 0, "OK\n", ""
        if cmd[:2] == ["CLUSTER", "REPLICATE"]:
            assert state["met"] and state["slots"]
            state.setdefault("replica_of", {})[host] = cmd[2]
            return 0, "OK\n", ""
        if cmd[:2] == ["CLUSTER", "NODES"]:
            lines = []
            for h, node_id in ids.items():
                if not state["met"] and h != host:
                    continue
                following = state.get("replica_of", {}).get(h)
                flags = ("myself," if h == host else "") + ("slave" if following else "master")
                slots = " 0-5460" if state["slots"] and h == "10.89.20.11" else ""
                lines.append("%s %s:6379@16379 %s %s 0 0 0 connected%s" % (node_id, h, flags, following or "-", slots))
            return 0, "\n".join(lines) + "\n", ""
        if cmd == ["INFO", "replication"] and host in state.get("replica_of", {}):
            # the replica's sync: in progress on the first look, done on the next
            state["syncs"] = state.get("syncs", 0) + 1
            done = state["syncs"] > 1
            return 0, "role:slave\r\nmaster_link_status:%s\r\nmaster_sync_in_progress:%d\r\n" % (
                "up" if done else "down", 0 if done else 1), ""
        raise AssertionError(cmd)
    runner = FakeRunner(answer)
    cli = RedisCli(runner, "redis-cli", "admin", "p", "/ca", "/c", "/k")
    topo = Topology(INVENTORY, fresh_views())
    actions, _ = plan_cluster(topo)
    clock = iter(range(1000))
    subset = [a for a in actions if a["op"] == "meet" or a["node"] in ("redis-a1", "redis-b2")]
    done = apply_actions(cli, topo, subset, 30, lambda s: None, lambda: next(clock))
    sent = [c[0][c[0].index("--no-auth-warning") + 1:][:2] for c in runner.calls]
    assert sent.index(["CLUSTER", "MEET"]) < sent.index(["CLUSTER", "ADDSLOTSRANGE"]) < sent.index(["CLUSTER", "REPLICATE"])
    assert done[-1] == "CLUSTER REPLICATE redis-a1 on redis-b2"
    assert state["syncs"] == 2  # replicate() returned only once the replica's sync had finished


def test_wait_until_times_out_with_the_reason():
    clock = iter(range(100))
    with pytest.raises(WaitTimeout, match="gossip"):
        wait_until(lambda: False, 5, lambda s: None, lambda: next(clock), "gossip")


def test_queue_keys_and_slots():
    assert queue_key("bull", "critical", "wait") == "bull:{critical}:critical:wait"
    assert slot_of("bull:{critical}:critical:wait") == slot_of("critical")
    assert slot_of("123456789") == 12739  # the CRC16 check value from the cluster spec
    assert slot_of("foo{}bar") == slot_of("foo{}bar")  # empty tag hashes the whole key
