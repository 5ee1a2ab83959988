# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups of a Redis 7.2 Cluster (playbooks/backup.yml) and their restore (playbooks/restore.yml).

plan_sources(): which node saves each shard: its replica with the sync done (it spares the primary the fork),
  else the primary. A cluster whose slots are not all served, or are migrating, is refused: its backup could not
  rebuild it.
snapshot(): what redis_cluster_backup runs: BGSAVE on every source at once, then wait until each save finished
  (rdb_saves grew, none in progress, last status ok). Returns per shard what the manifest records.
manifest_problems(): why a backup's manifest cannot rebuild a cluster (slot map not covering the 16384 slots
  exactly once, another series than 7.2, a file or checksum missing). One line each, naming the fix.
restore_plan(): which inventory node becomes each shard's primary (the same name, else the same address, else
  the zone holding the fewest primaries) and which nodes replicate whom, zone rule kept; raises PlacementError
  before anything is touched when the inventory cannot hold the backup.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, WaitTimeout
from ansible_collections.shardwise.redis.plugins.module_utils.formation import assign_free
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.slots import CLUSTER_SLOTS, parse, to_ranges
from ansible_collections.shardwise.redis.plugins.module_utils.slots import count as count_slots
from ansible_collections.shardwise.redis.plugins.module_utils.slots import render as render_slots
from ansible_collections.shardwise.redis.plugins.module_utils.topology import gather, in_sync, parse_info

FORMAT = 1
SERIES = "7.2"
SAVE_BUSY = ("ERR Background save already in progress",)
SHA256 = re.compile(r"^[0-9a-f]{64}$")


# ---------------------------------------------------------------- backup

def plan_sources(topology, prefer="replica"):
    """([shard], notes): per shard (ordered by first slot) its primary, zone, replicas, slots and the node
    that saves it. PlacementError when the cluster's slots are not all served or some are migrating."""
    if topology.open_slots():
        raise PlacementError("slots are migrating (%s): a backup now would split their keys over two shards. Let "
                             "playbooks/add_shard.yml or remove_shard.yml finish, then back up"
                             % ", ".join("%s %s on %s" % (o["slot"], o["state"], o["node"])
                                         for o in topology.open_slots()[:5]))
    covered = topology.covered_slots()
    if len(covered) != CLUSTER_SLOTS:
        missing = render_slots(to_ranges(set(range(CLUSTER_SLOTS)) - covered))
        raise PlacementError("only %d of %d slots are served (missing %s%s): a backup of this cluster could not "
                             "rebuild it. Heal it first (playbooks/failover_recovery.yml)"
                             % (len(covered), CLUSTER_SLOTS, ",".join(missing[:5]), ",..." if len(missing) > 5 else ""))
    offsets = topology.replica_offsets()
    shards, notes = [], []
    for index, shard in enumerate(sorted(topology.shards(), key=lambda s: s["slots"][0][0])):
        primary = shard["primary"]
        ready = [r for r in shard["replicas"] if r in topology.myself and in_sync(topology.server_info.get(r, {}))]
        if prefer == "replica" and ready:
            source = sorted(ready, key=lambda r: (-offsets.get(r, -1), r))[0]
        else:
            source = primary
            if prefer == "replica":
                notes.append("shard %d: no replica of %s answers with its sync done, the primary saves it (a fork on "
                             "the primary)" % (index, primary))
        info = topology.server_info.get(source, {})
        shards.append(dict(index=index, primary=primary, zone=shard["zone"], replicas=shard["replicas"],
                           slots=render_slots(shard["slots"]), slot_count=count_slots(shard["slots"]),
                           source=source, source_role="primary" if source == primary else "replica",
                           source_zone=topology.zone_of[source], redis_version=info.get("redis_version")))
    return shards, notes


FILES = ("dir", "dbfilename", "appendonly", "appenddirname", "appendfilename", "aclfile")


def _files(cli, node):
    """Where the running server keeps its RDB, AOF folder and ACL file (CONFIG GET, read-only)."""
    found = {}
    for reply in cli.pipe(node["host"], node["port"], [["CONFIG", "GET", name] for name in FILES]):
        pairs = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2])
        found.update((str(k), str(v)) for k, v in pairs)
    return found


def _persistence(cli, node):
    return parse_info(cli.run(node["host"], node["port"], "INFO", "persistence"))


def snapshot(cli, inventory, waiter, prefer="replica", check_mode=False, clock=None):
    """What redis_cluster_backup runs. Returns the module result (shards with the source's save time, offset and
    version); raises Stopped when the cluster cannot be backed up or a save fails."""
    topology = gather(cli, inventory)
    try:
        shards, notes = plan_sources(topology, prefer)
    except PlacementError as exc:
        raise Stopped("%s. No backup was taken" % exc, dict(topology=topology.summary(), errors=topology.errors))
    plan = ["BGSAVE on %s %s (shard %d, slots %s)" % (s["source_role"], s["source"], s["index"], ",".join(s["slots"]))
            for s in shards]
    result = dict(changed=False, plan=plan, notes=notes, shards=shards, topology=topology.summary())
    node = dict((n["name"], n) for n in inventory)
    try:
        for shard in shards:
            shard["files"] = _files(cli, node[shard["source"]])
    except RedisCliError as exc:
        raise Stopped("%s. No backup was taken" % exc, result)
    if check_mode:
        return result
    before, saving = {}, {}
    started = clock() if clock else None
    try:
        for shard in shards:
            source = node[shard["source"]]
            before[shard["source"]] = int(_persistence(cli, source).get("rdb_saves", 0))
            # SCHEDULE: while an AOF rewrite runs, the save starts right after it instead of failing. A save
            # already running (a `save` rule) finishes after this point: it is as recent as ours would be.
            reply = cli.pipe(source["host"], source["port"], [(["BGSAVE", "SCHEDULE"], SAVE_BUSY)])[0]
            if str(reply).startswith(SAVE_BUSY[0]):
                notes.append("%s was already saving: that save is taken" % shard["source"])

        def saved():
            for shard in shards:
                info = _persistence(cli, node[shard["source"]])
                saving[shard["source"]] = info
                if info.get("rdb_bgsave_in_progress") != "0":
                    return False
                if info.get("rdb_last_bgsave_status") != "ok" and info.get("aof_rewrite_in_progress") == "0":
                    raise Stopped("the save on %s failed (rdb_last_bgsave_status:%s): read its log (disk full? "
                                  "fork refused?). No backup was taken" % (shard["source"], info.get("rdb_last_bgsave_status")),
                                  result)
                if int(info.get("rdb_saves", 0)) <= before[shard["source"]]:
                    return False
            return True
        waiter.until(saved, "the saves on %s to finish" % ", ".join(sorted(before)))
    except (RedisCliError, WaitTimeout) as exc:
        raise Stopped("%s. No backup was taken; run it again" % exc, result)
    for shard in shards:
        info = saving[shard["source"]]
        shard.update(saved_at=int(info.get("rdb_last_save_time", 0)),
                     save_seconds=int(info.get("rdb_last_bgsave_time_sec", -1)))
        repl = topology.server_info.get(shard["source"], {})
        shard["repl_offset"] = int(repl.get("slave_repl_offset", repl.get("master_repl_offset", -1)))
    result.update(changed=True, shards=shards, notes=notes)
    if clock:
        result["seconds"] = round(clock() - started, 3)
    return result


# ---------------------------------------------------------------- restore

def manifest_problems(manifest, series=SERIES):
    """Why `manifest` (a backup's manifest.json) cannot rebuild a cluster; [] when it can."""
    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object: this folder is not a shardwise.redis backup"]
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append("manifest format %r is not %d: restore it with the collection version that wrote it"
                        % (manifest.get("format"), FORMAT))
    if manifest.get("complete") is not True:
        problems.append("the backup is not marked complete (its run did not finish): take a new backup or pick another")
    version = str(manifest.get("redis_version") or "")
    if not version.startswith(series + "."):
        problems.append("the backup was saved by Redis %s, not %s.x: restore it onto that series"
                        % (version or "(unknown)", series))
    shards = manifest.get("shards")
    if not isinstance(shards, list) or not shards:
        return problems + ["the manifest lists no shards"]
    owner = {}
    for i, shard in enumerate(shards):
        where = "shard %s" % (shard.get("index", i) if isinstance(shard, dict) else i)
        if not isinstance(shard, dict):
            problems.append("%s is not an object" % where)
            continue
        if not isinstance(shard.get("file"), str) or not shard["file"] or "/" in shard["file"]:
            problems.append("%s names no file in the backup folder" % where)
        if not SHA256.match(str(shard.get("sha256", ""))):
            problems.append("%s has no sha256 of its file" % where)
        if not isinstance(shard.get("keys"), int) or shard["keys"] < 0:
            problems.append("%s has no key count" % where)
        elif not isinstance(shard.get("expires", 0), int) or not 0 <= shard.get("expires", 0) <= shard["keys"]:
            problems.append("%s has a count of keys with a time to live outside 0-%d" % (where, shard["keys"]))
        try:
            slots = parse(shard.get("slots") or [])
        except ValueError as exc:
            problems.append("%s: %s" % (where, exc))
            continue
        if not slots:
            problems.append("%s holds no slots" % where)
        for slot in slots:
            if slot in owner:
                problems.append("slot %d is in %s and %s: the slot map overlaps, this backup cannot be restored"
                                % (slot, owner[slot], where))
                break
            owner[slot] = where
    missing = sorted(set(range(CLUSTER_SLOTS)) - set(owner))
    if missing:
        ranges = render_slots(to_ranges(missing))
        problems.append("the slot map covers %d of %d slots (missing %s%s): this backup cannot rebuild the cluster; "
                        "restore a complete backup" % (len(owner), CLUSTER_SLOTS, ",".join(ranges[:5]),
                                                       ",..." if len(ranges) > 5 else ""))
    return problems


def restore_plan(manifest, nodes, replicas=1):
    """Where each shard of `manifest` goes on the inventory `nodes` ([{name, host, port, zone}]).
    Returns {shards: [{index, primary, reason, slots, file, keys}], layout: {primary: [ranges]},
    replicas: {replica: primary}, notes}. PlacementError when the nodes cannot hold the backup."""
    problems = manifest_problems(manifest)
    if problems:
        raise PlacementError("; ".join(problems))
    shards = sorted(manifest["shards"], key=lambda s: parse(s["slots"])[0])
    if len(nodes) < len(shards):
        raise PlacementError("the backup has %d shards and the inventory %d nodes: add hosts (one per shard, plus "
                             "their replicas in other zones)" % (len(shards), len(nodes)))
    by_name = dict((n["name"], n) for n in nodes)
    by_address = dict(("%s:%s" % (n["host"], n.get("port", 6379)), n["name"]) for n in nodes)
    chosen, reasons = {}, {}
    for shard in shards:
        name = shard.get("primary")
        address = shard.get("primary_address")
        if name in by_name and name not in chosen.values():
            chosen[shard["index"]], reasons[shard["index"]] = name, "its primary at the backup"
        elif address in by_address and by_address[address] not in chosen.values():
            chosen[shard["index"]], reasons[shard["index"]] = by_address[address], "the address of its primary at the backup"
    zones = sorted(set(n["zone"] for n in nodes))
    for shard in shards:
        if shard["index"] in chosen:
            continue
        load = dict((z, 0) for z in zones)
        for name in chosen.values():
            load[by_name[name]["zone"]] += 1
        free = [n for n in nodes if n["name"] not in chosen.values()]
        pick = min(free, key=lambda n: (load[n["zone"]], n["zone"] != shard.get("zone"), n["name"]))
        chosen[shard["index"]], reasons[shard["index"]] = pick["name"], "a node in the zone with the fewest primaries"
    primaries = [chosen[s["index"]] for s in shards]
    free = [n["name"] for n in nodes if n["name"] not in primaries]
    zone_of = dict((n["name"], n["zone"]) for n in nodes)
    # The same choice redis_cluster makes with slot_layout: what this plan shows is what the restore builds.
    chosen_replicas = assign_free(primaries, dict((p, replicas) for p in primaries), free, zone_of) if free else {}
    notes = []
    short = [p for p in primaries if len(chosen_replicas.get(p, [])) < replicas]
    if short:
        notes.append("primaries %s get fewer than %d replica(s): not enough nodes" % (", ".join(short), replicas))
    crowd = {}
    for name in primaries:
        crowd[zone_of[name]] = crowd.get(zone_of[name], 0) + 1
    if len(primaries) > 1 and max(crowd.values()) * 2 >= len(primaries):
        notes.append("zone %s holds %d of the %d primaries: losing it stops writes until failover_recovery runs; "
                     "playbooks/failover_recovery.yml spreads them once replicas are in sync"
                     % (max(crowd, key=crowd.get), max(crowd.values()), len(primaries)))
    return dict(
        shards=[dict(index=s["index"], primary=chosen[s["index"]], reason=reasons[s["index"]], slots=s["slots"],
                     file=s["file"], keys=s["keys"], expires=s.get("expires") or 0, sha256=s["sha256"]) for s in shards],
        layout=dict((chosen[s["index"]], list(s["slots"])) for s in shards),
        replicas=dict((node, primary) for primary, new in chosen_replicas.items() for node in new),
        notes=notes)
