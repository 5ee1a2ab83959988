"""backup.py: which node saves each shard, the saves themselves (all at once, waited for, a failed save stops the
backup), the manifest checks a restore relies on (a slot map not covering 16384 is refused), and the restore plan;
formation.plan_with_layout: a restore's cluster gets exactly the backup's slot map."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import backup
from ansible_collections.shardwise.redis.plugins.module_utils.actions import render_all
from ansible_collections.shardwise.redis.plugins.module_utils.cli import Stopped, Waiter
from ansible_collections.shardwise.redis.plugins.module_utils.formation import plan_cluster
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import ADDR, INVENTORY, healthy_views
from test_formation import fresh_views
from test_handover import lab


def test_each_shard_is_saved_on_its_in_sync_replica_in_slot_order():
    shards, notes = backup.plan_sources(lab())
    assert [(s["index"], s["primary"], s["source"], s["source_role"], s["slots"]) for s in shards] == [
        (0, "redis-a1", "redis-b2", "replica", ["0-5460"]), (1, "redis-b1", "redis-c2", "replica", ["5461-10922"]),
        (2, "redis-c1", "redis-a2", "replica", ["10923-16383"])]
    assert notes == [] and sum(s["slot_count"] for s in shards) == 16384


def test_without_a_replica_in_sync_the_primary_saves_and_says_so():
    shards, notes = backup.plan_sources(lab(link="down"))
    assert [s["source"] for s in shards] == ["redis-a1", "redis-b1", "redis-c1"]
    assert len(notes) == 3 and "no replica of redis-a1" in notes[0]
    assert [s["source"] for s in backup.plan_sources(lab(), prefer="primary")[0]] == ["redis-a1", "redis-b1", "redis-c1"]


def test_a_cluster_with_unserved_slots_is_not_backed_up():
    views = healthy_views()
    views["redis-a1"] = None
    views["redis-b2"] = None  # the shard 0-5460 has nobody left
    topo = Topology(INVENTORY, views, server_info={})
    with pytest.raises(PlacementError, match=r"only 10923 of 16384 slots are served \(missing 0-5460\).*failover_recovery"):
        backup.plan_sources(topo)


class Saves:
    """A fake RedisCli: INFO persistence counts saves; BGSAVE SCHEDULE starts one that ends after `takes` polls."""

    def __init__(self, fail=None, busy=None, takes=2):
        self.saves = dict((n, 5) for n in ADDR)
        self.running = {}
        self.sent = []
        self.fail, self.busy, self.takes = fail, busy, takes

    def run(self, host, port, *args):
        name = [n for n, a in ADDR.items() if a == host][0]
        self.sent.append((name, args))
        if name in self.running:
            self.running[name] -= 1
            if self.running[name] <= 0:
                del self.running[name]
                if name != self.fail:
                    self.saves[name] += 1
        status = "err" if name == self.fail and name not in self.running and self.saves[name] == 5 and \
            any(s == (name, ("BGSAVE", "SCHEDULE")) for s in self.sent) else "ok"
        return ("rdb_bgsave_in_progress:%d\r\nrdb_saves:%d\r\nrdb_last_save_time:1796216770\r\nrdb_last_bgsave_status:%s\r\n"
                "rdb_last_bgsave_time_sec:1\r\naof_rewrite_in_progress:0\r\n" % (name in self.running, self.saves[name], status))

    def pipe(self, host, port, commands):
        name = [n for n, a in ADDR.items() if a == host][0]
        if commands[0][0] == "CONFIG":
            return [[c[2], {"dir": "/var/lib/redis", "dbfilename": "dump.rdb"}.get(c[2], "x")] for c in commands]
        self.sent.append((name, tuple(commands[0][0])))
        if name == self.busy:
            self.running[name] = self.takes
            return ["ERR Background save already in progress"]
        self.running[name] = self.takes
        return ["Background saving started"]


def run_snapshot(monkeypatch, cli, topo=None, check_mode=False):
    monkeypatch.setattr(backup, "gather", lambda c, inventory: topo or lab())
    clock = iter([100.0, 102.5])
    return backup.snapshot(cli, INVENTORY, Waiter(30, lambda s: None, iter(range(1000)).__next__), check_mode=check_mode,
                           clock=lambda: next(clock))


def test_saves_start_on_every_source_at_once_and_are_waited_for(monkeypatch):
    cli = Saves(busy="redis-c2")
    result = run_snapshot(monkeypatch, cli)
    starts = [n for n, args in cli.sent if args == ("BGSAVE", "SCHEDULE")]
    assert starts == ["redis-b2", "redis-c2", "redis-a2"]
    first_poll_after_starts = max(i for i, (n, args) in enumerate(cli.sent) if args == ("BGSAVE", "SCHEDULE"))
    assert all(args == ("INFO", "persistence") for _n, args in cli.sent[first_poll_after_starts + 1:])
    assert result["changed"] and result["seconds"] == 2.5
    assert [s["saved_at"] for s in result["shards"]] == [1796216770] * 3
    assert result["notes"] == ["redis-c2 was already saving: that save is taken"]
    assert all(cli.saves[n] == 6 for n in ("redis-b2", "redis-c2", "redis-a2"))


def test_a_failed_save_stops_the_backup_naming_the_node(monkeypatch):
    with pytest.raises(Stopped, match=r"the save on redis-c2 failed \(rdb_last_bgsave_status:err\).*No backup was taken"):
        run_snapshot(monkeypatch, Saves(fail="redis-c2"))


def test_check_mode_plans_and_sends_nothing(monkeypatch):
    cli = Saves()
    result = run_snapshot(monkeypatch, cli, check_mode=True)
    assert cli.sent == [] and not result["changed"]
    assert result["shards"][0]["files"]["dir"] == "/var/lib/redis" and result["shards"][0]["files"]["dbfilename"] == "dump.rdb"
    assert result["plan"][0] == "BGSAVE on replica redis-b2 (shard 0, slots 0-5460)"


def manifest():
    shards = []
    for i, (primary, slots) in enumerate([("redis-a1", ["0-5460"]), ("redis-b1", ["5461-10922"]),
                                          ("redis-c1", ["10923-16383"])]):
        shards.append(dict(index=i, primary=primary, primary_address="%s:6379" % ADDR[primary],
                           zone="zone-" + primary[6], slots=slots, file="shard-%d.rdb" % i, sha256="a" * 64, keys=10 + i))
    return dict(format=1, complete=True, redis_version="7.2.4", shards=shards)


def test_a_complete_manifest_has_no_problems_and_gaps_overlaps_and_versions_are_named():
    assert backup.manifest_problems(manifest()) == []
    gap = manifest()
    gap["shards"][1]["slots"] = ["5461-10000"]
    assert backup.manifest_problems(gap) == [
        "the slot map covers 15462 of 16384 slots (missing 10001-10922): this backup cannot rebuild the cluster; "
        "restore a complete backup"]
    overlap = manifest()
    overlap["shards"][1]["slots"] = ["5000-10922"]
    assert any("slot 5000 is in shard 0 and shard 1" in p for p in backup.manifest_problems(overlap))
    other = dict(manifest(), redis_version="7.4.1", complete=False)
    problems = backup.manifest_problems(other)
    assert any("Redis 7.4.1, not 7.2.x" in p for p in problems) and any("not marked complete" in p for p in problems)
    broken = manifest()
    broken["shards"][0].update(sha256="", file="../x", keys=None, slots=["99999"])
    problems = backup.manifest_problems(broken)
    assert any("shard 0 names no file" in p for p in problems) and any("no sha256" in p for p in problems)
    assert any("no key count" in p for p in problems) and any("outside 0-16383" in p for p in problems)
    assert backup.manifest_problems([]) and backup.manifest_problems(dict(manifest(), shards=[]))
    ttl = manifest()
    ttl["shards"][2]["expires"] = 13
    assert backup.manifest_problems(ttl) == ["shard 2 has a count of keys with a time to live outside 0-12"]


def test_restore_onto_the_same_hosts_keeps_each_shard_on_its_primary_with_zone_separated_replicas():
    plan = backup.restore_plan(manifest(), INVENTORY)
    assert [(s["primary"], s["reason"]) for s in plan["shards"]] == [
        ("redis-a1", "its primary at the backup"), ("redis-b1", "its primary at the backup"),
        ("redis-c1", "its primary at the backup")]
    assert plan["layout"] == {"redis-a1": ["0-5460"], "redis-b1": ["5461-10922"], "redis-c1": ["10923-16383"]}
    assert all(n[6] != p[6] for n, p in plan["replicas"].items()) and len(plan["replicas"]) == 3
    assert plan["notes"] == []


def test_restore_onto_new_hosts_spreads_the_primaries_over_the_zones():
    nodes = [dict(name="new-%s" % n[6:], host="10.9.0.%d" % i, port=6379, zone=z["zone"])
             for i, (n, z) in enumerate(zip(ADDR, INVENTORY))]
    plan = backup.restore_plan(manifest(), nodes)
    zones = [dict((n["name"], n["zone"]) for n in nodes)[s["primary"]] for s in plan["shards"]]
    assert sorted(zones) == ["zone-a", "zone-b", "zone-c"]
    assert set(s["reason"] for s in plan["shards"]) == {"a node in the zone with the fewest primaries"}
    by_address = [dict(n, name="x%d" % i) for i, n in enumerate(INVENTORY)]
    assert [s["reason"] for s in backup.restore_plan(manifest(), by_address)["shards"]] == [
        "the address of its primary at the backup"] * 3


def test_restore_refuses_too_few_nodes_and_a_bad_manifest_before_anything():
    with pytest.raises(PlacementError, match="3 shards and the inventory 2 nodes"):
        backup.restore_plan(manifest(), INVENTORY[:2])
    gap = manifest()
    gap["shards"].pop()
    with pytest.raises(PlacementError, match="covers 10923 of 16384"):
        backup.restore_plan(gap, INVENTORY)


def restored_views(claimed):
    """Nodes just started from a backup: alone, each primary claims the slots it has keys for."""
    views = fresh_views()
    for name, slots in claimed.items():
        views[name] = views[name].rstrip("\n") + " " + slots + "\n"
    return views


def test_formation_with_a_slot_layout_adds_only_the_missing_slots_and_meets_nodes_holding_data():
    layout = {"redis-a1": ["0-5460"], "redis-b1": ["5461-10922"], "redis-c1": ["10923-16383"]}
    views = restored_views({"redis-a1": "3300", "redis-b1": "8259 9000-9001"})
    infos = {"redis-a1": "db0:keys=7,expires=0\r\n", "redis-b1": "db0:keys=3,expires=0\r\n"}
    actions, notes = plan_cluster(Topology(INVENTORY, views, server_info=infos), slot_layout=layout)
    lines = render_all(actions)
    assert "CLUSTER ADDSLOTSRANGE 0 3299 on redis-a1" in lines and "CLUSTER ADDSLOTSRANGE 3301 5460 on redis-a1" in lines
    assert "CLUSTER ADDSLOTSRANGE 5461 8258 on redis-b1" in lines and "CLUSTER ADDSLOTSRANGE 9002 10922 on redis-b1" in lines
    assert "CLUSTER ADDSLOTSRANGE 10923 16383 on redis-c1" in lines
    assert sum(1 for line in lines if "MEET" in line) == 5
    replicas = dict((a["node"], a["primary"]) for a in actions if a["op"] == "replicate")
    assert len(replicas) == 3 and all(r[6] != p[6] for r, p in replicas.items()) and notes == []
    # what restore_plan predicts is what the formation builds
    assert backup.restore_plan(manifest(), INVENTORY)["replicas"] == replicas


def test_formation_with_a_slot_layout_refuses_foreign_slots_and_bad_maps():
    layout = {"redis-a1": ["0-5460"], "redis-b1": ["5461-10922"], "redis-c1": ["10923-16383"]}
    views = restored_views({"redis-a1": "6000"})
    with pytest.raises(PlacementError, match="redis-a1 holds slots 6000-6000 outside its slot_layout"):
        plan_cluster(Topology(INVENTORY, views), slot_layout=layout)
    with pytest.raises(PlacementError, match="covers 10923 of 16384"):
        plan_cluster(Topology(INVENTORY, fresh_views()), slot_layout=dict(list(layout.items())[:2]))
    with pytest.raises(PlacementError, match="slot_layout names redis-z9"):
        plan_cluster(Topology(INVENTORY, fresh_views()), slot_layout=dict(layout, **{"redis-z9": ["1"]}))
    with pytest.raises(PlacementError, match="slot 0 is in the slot_layout of both"):
        plan_cluster(Topology(INVENTORY, fresh_views()), slot_layout=dict(layout, **{"redis-a2": ["0"]}))
    # without a layout a node holding keys is still never met
    infos = {"redis-b1": "db0:keys=3,expires=0\r\n"}
    with pytest.raises(PlacementError, match="it holds 3 key"):
        plan_cluster(Topology(INVENTORY, restored_views({}), server_info=infos))
