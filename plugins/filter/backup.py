# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/backup.yml: which files each saving node sends, the manifest.json of a backup (checked
with the same rules a restore applies), and one summary line per shard."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.shardwise.redis.plugins.module_utils.backup import FORMAT, SERIES, manifest_problems

KEYS = re.compile(r"\[info\] (\d+) keys read")
EXPIRES = re.compile(r"\[info\] (\d+) expires")
AUX = re.compile(r"AUX FIELD ([\w-]+) = '([^']*)'")


def backup_files(pair):
    """(shard, staging result) -> [(shard, file)] the saving node sends: its RDB, its AOF manifest when it has
    one, and the ACL file from the first shard's node."""
    shard, staged = pair
    files = ["shard-%d.rdb" % shard["index"]]
    if "aof-manifest" in (staged.get("stdout") or ""):
        files.append("shard-%d.aof.manifest" % shard["index"])
    if shard["index"] == 0 and shard.get("files", {}).get("aclfile"):
        files.append("users.acl")
    return [[shard, name] for name in files]


def _checksum(result):
    return (result or {}).get("stat", {}).get("checksum")


def backup_manifest(shards, id, nodes, checks, sums, local_sums, staged):
    """{manifest, problems}: the manifest.json of a backup from the module's shards, redis-check-rdb's output,
    the host and controller sha256 of each RDB; problems (empty: usable) also holds what a restore would refuse."""
    address = dict((n["name"], "%s:%s" % (n["host"], n.get("port", 6379))) for n in nodes)
    problems, out, versions = [], [], []
    for shard, check, remote, local, stage in zip(shards, checks, sums, local_sums, staged):
        text = check.get("stdout") or ""
        aux = dict(AUX.findall(text))
        keys = KEYS.search(text)
        expires = EXPIRES.search(text)
        if not keys:
            problems.append("redis-check-rdb did not report the keys of shard %d (%s)" % (shard["index"], shard["source"]))
        if _checksum(remote) is None or _checksum(remote) != _checksum(local):
            problems.append("the RDB of shard %d differs between %s and the controller (sha256 %s / %s): fetch again"
                            % (shard["index"], shard["source"], _checksum(remote), _checksum(local)))
        versions.append(aux.get("redis-ver", shard.get("redis_version") or ""))
        item = dict(index=shard["index"], slots=shard["slots"], slot_count=shard["slot_count"], primary=shard["primary"],
                    primary_address=address.get(shard["primary"]), zone=shard["zone"], replicas=shard["replicas"],
                    source=shard["source"], source_role=shard["source_role"], file="shard-%d.rdb" % shard["index"],
                    bytes=(local or {}).get("stat", {}).get("size"), sha256=_checksum(local),
                    keys=int(keys.group(1)) if keys else None, expires=int(expires.group(1)) if expires else 0,
                    redis_version=versions[-1],
                    saved_at=int(aux["ctime"]) if aux.get("ctime", "").isdigit() else shard.get("saved_at"),
                    save_seconds=shard.get("save_seconds"), repl_offset=shard.get("repl_offset"),
                    aof_manifest=("shard-%d.aof.manifest" % shard["index"]) if "aof-manifest" in (stage.get("stdout") or "") else None)
        out.append(item)
    manifest = dict(format=FORMAT, complete=True, id=id, created_at=id,
                    redis_version=sorted(versions)[0] if versions else None,
                    nodes=nodes, shards=out,
                    acl_file="users.acl" if shards and shards[0].get("files", {}).get("aclfile") else None)
    if len(set(versions)) > 1:
        problems.append("the shards were saved by different Redis versions (%s): finish the rolling upgrade, then back up"
                        % ", ".join(sorted(set(versions))))
    if versions and not all(v.startswith(SERIES + ".") for v in versions):
        problems.append("a shard was saved by Redis %s, not %s.x" % (", ".join(sorted(set(versions))), SERIES))
    return dict(manifest=manifest, problems=problems + [p for p in manifest_problems(manifest) if p not in problems])


def backup_shard_line(shard):
    """One summary line of a manifest shard."""
    return "shard %d: slots %s, %s keys, %s bytes, saved on %s %s" % (
        shard["index"], ",".join(shard["slots"]), shard.get("keys"), shard.get("bytes"), shard.get("source_role"),
        shard.get("source"))


def restore_shard_line(shard):
    """One line of a restore plan's shard."""
    return "shard %d: slots %s, %s keys -> primary %s (%s)" % (
        shard["index"], ",".join(shard["slots"]), shard.get("keys"), shard["primary"], shard.get("reason"))


class FilterModule(object):
    def filters(self):
        return {"backup_files": backup_files, "backup_manifest": backup_manifest, "backup_shard_line": backup_shard_line,
                "restore_shard_line": restore_shard_line}
