"""The filters of playbooks/backup.yml and restore.yml: which files a node sends, the manifest built from
redis-check-rdb's output and the two sha256 (a file changed in transit, a missing key count, mixed versions and a
slot gap make the backup unusable), and the restore plan's refusals."""
from ansible_collections.shardwise.redis.plugins.filter.backup import (
    backup_files, backup_manifest, backup_shard_line, restore_shard_line)
from ansible_collections.shardwise.redis.plugins.filter.cluster import backup_restore_plan

NODES = [dict(name="a1", host="10.0.1.11", port=6379, zone="za"), dict(name="b1", host="10.0.2.11", port=6379, zone="zb"),
         dict(name="a2", host="10.0.1.12", port=6379, zone="za"), dict(name="b2", host="10.0.2.12", port=6379, zone="zb"),
         dict(name="c1", host="10.0.3.11", port=6379, zone="zc"), dict(name="c2", host="10.0.3.12", port=6379, zone="zc")]
SLOTS = [["0-5460"], ["5461-10922"], ["10923-16383"]]


def shards():
    return [dict(index=i, primary=p, zone=z, replicas=[r], slots=SLOTS[i], slot_count=[5461, 5462, 5461][i], source=r,
                 source_role="replica", redis_version="7.2.4", saved_at=1, save_seconds=0, repl_offset=9,
                 files=dict(aclfile="/etc/redis/users.acl", appendonly="yes"))
            for i, (p, r, z) in enumerate([("a1", "b2", "za"), ("b1", "c2", "zb"), ("c1", "a2", "zc")])]


def check(keys=100, version="7.2.4"):
    return dict(stdout="[offset 26] AUX FIELD redis-ver = '%s'\n[offset 52] AUX FIELD ctime = '1796216696'\n"
                       "\\o/ RDB looks OK! \\o/\n[info] %d keys read\n[info] 2 expires\n" % (version, keys))


def stat(sha, size=4096):
    return dict(stat=dict(checksum=sha, size=size))


def build(**change):
    args = dict(checks=[check(100), check(200), check(300)], sums=[stat(c * 64) for c in "abc"],
                local_sums=[stat(c * 64) for c in "abc"], staged=[dict(stdout="aof-manifest")] * 3)
    args.update(change)
    return backup_manifest(shards(), id="20261202T131500Z", nodes=NODES, **args)


def test_a_good_backup_gives_a_restorable_manifest():
    result = build()
    manifest = result["manifest"]
    assert result["problems"] == []
    assert [s["keys"] for s in manifest["shards"]] == [100, 200, 300] and manifest["shards"][0]["expires"] == 2
    assert manifest["shards"][0]["primary_address"] == "10.0.1.11:6379" and manifest["shards"][0]["saved_at"] == 1796216696
    assert manifest["shards"][2]["aof_manifest"] == "shard-2.aof.manifest" and manifest["acl_file"] == "users.acl"
    assert manifest["redis_version"] == "7.2.4" and manifest["complete"]
    plan = backup_restore_plan(manifest, NODES)
    assert plan["problems"] == [] and plan["layout"] == {"a1": ["0-5460"], "b1": ["5461-10922"], "c1": ["10923-16383"]}
    assert restore_shard_line(plan["shards"][0]) == "shard 0: slots 0-5460, 100 keys -> primary a1 (its primary at the backup)"
    assert backup_shard_line(manifest["shards"][1]) == "shard 1: slots 5461-10922, 200 keys, 4096 bytes, saved on replica c2"


def test_a_file_changed_in_transit_an_unread_key_count_and_mixed_versions_are_refused():
    changed = build(local_sums=[stat("a" * 64), stat("f" * 64), stat("c" * 64)])["problems"]
    assert changed == ["the RDB of shard 1 differs between c2 and the controller (sha256 %s / %s): fetch again"
                       % ("b" * 64, "f" * 64)]
    unread = build(checks=[check(100), dict(stdout="garbage"), check(300)])["problems"]
    assert "redis-check-rdb did not report the keys of shard 1 (c2)" in unread
    assert any("shard 1 has no key count" in p for p in unread)
    mixed = build(checks=[check(1), check(2, "7.2.5"), check(3)])["problems"]
    assert any("different Redis versions (7.2.4, 7.2.5)" in p for p in mixed)
    other = build(checks=[check(1, "7.4.0")] * 3)["problems"]
    assert any("not 7.2.x" in p for p in other)


def test_a_slot_gap_makes_the_backup_unusable_and_the_restore_refuses_it():
    gap = shards()
    gap[1]["slots"] = ["5461-9000"]
    result = backup_manifest(gap, id="x", nodes=NODES, checks=[check()] * 3, sums=[stat("a" * 64)] * 3,
                             local_sums=[stat("a" * 64)] * 3, staged=[dict(stdout="")] * 3)
    assert any("covers 14462 of 16384 slots (missing 9001-10922)" in p for p in result["problems"])
    plan = backup_restore_plan(result["manifest"], NODES)
    assert plan["layout"] == {} and any("covers 14462 of 16384" in p for p in plan["problems"])
    assert backup_restore_plan(build()["manifest"], NODES[:2])["problems"] == [
        "the backup has 3 shards and the inventory 2 nodes: add hosts (one per shard, plus their replicas in other zones)"]


def test_each_node_sends_its_rdb_its_aof_manifest_and_the_first_the_acl_file():
    first, second = shards()[:2]
    assert [f for _s, f in backup_files((first, dict(stdout="aof-manifest\n")))] == [
        "shard-0.rdb", "shard-0.aof.manifest", "users.acl"]
    assert [f for _s, f in backup_files((second, dict(stdout="")))] == ["shard-1.rdb"]
