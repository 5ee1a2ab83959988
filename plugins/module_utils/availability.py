# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write availability as clients see it: which slots refuse writes now, and which would stop
taking writes after the loss of one host or one zone. Pure functions over a Topology (no I/O).

The contract (docs/failure-modes.md): after the loss of any single host, or of every host in one
zone, all 16384 slots accept writes again within cluster-node-timeout + 2 s, with no operator
action. That needs, in steady state:
  - every primary holding slots has a connected replica in another zone (a replica to promote);
  - no zone holds half or more of the primaries (the survivors must be a majority to elect);
  - no primary refuses writes (min-replicas-to-write not met, maxmemory reached with noeviction).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.fence import FENCE_REPLICAS
from ansible_collections.shardwise.redis.plugins.module_utils.placement import crowded_zones


def online_replicas(info):
    """[(ip, port)] of the replicas a primary's INFO replication lists as state=online."""
    found = []
    for key, value in sorted(info.items()):
        if not (key.startswith("slave") and key[5:].isdigit()):
            continue
        fields = dict(part.split("=", 1) for part in value.split(",") if "=" in part)
        if fields.get("state") == "online":
            found.append((fields.get("ip"), int(fields.get("port", 0) or 0)))
    return found


def good_replicas(info):
    """Replicas a primary counts as good: online per INFO replication, capped by min_slaves_good_slaves
    when it enforces min-replicas-to-write (those are the ones that let it take writes)."""
    online = len(online_replicas(info))
    if "min_slaves_good_slaves" in info:
        return min(online, int(info["min_slaves_good_slaves"]))
    return online


def write_refusals(info, min_replicas_to_write):
    """Why a primary answers writes with an error right now (empty: it accepts them).
    info: the primary's parsed INFO; min_replicas_to_write: its CONFIG value (0 when off)."""
    reasons = []
    good = info.get("min_slaves_good_slaves")
    if min_replicas_to_write >= FENCE_REPLICAS:
        reasons.append("NOREPLICAS: fenced by the partition fence (it has not heard from a majority of the primaries; "
                       "its journal and /run/shardwise-redis-fence/state.json say why)")
    elif min_replicas_to_write and good is not None and int(good) < min_replicas_to_write:
        reasons.append("NOREPLICAS: min-replicas-to-write %d, %s good replica(s)" % (min_replicas_to_write, good))
    maxmemory = int(info.get("maxmemory", 0) or 0)
    if maxmemory and info.get("maxmemory_policy") == "noeviction" and int(info.get("used_memory", 0) or 0) >= maxmemory:
        reasons.append("OOM: used_memory %s of maxmemory %d with noeviction" % (info.get("used_memory"), maxmemory))
    return reasons


def zone_majorities(primaries, zone_of):
    """Zones whose loss takes half or more of the primaries (the rest could not elect replacements).
    primaries: names of the primaries holding slots. Returns [(zone, held, total)]."""
    counts = {}
    for name in primaries:
        counts[zone_of.get(name)] = counts.get(zone_of.get(name), 0) + 1
    return crowded_zones(counts)


def report(topology):
    """Plain data: refusing primaries, unprotected primaries, zone majorities (see the module doc)."""
    by_addr = {(n["host"], int(n["port"])): n["name"] for n in topology.inventory}
    primaries = topology.primaries_with_slots()
    refusing, unprotected = [], []
    for name in primaries:
        info = topology.server_info.get(name)
        if info is None:
            continue  # unreachable or not asked: reported as such elsewhere
        slots = ["%d-%d" % r for r in topology.slots_of(name)]
        for reason in write_refusals(info, topology.min_replicas.get(name, 0)):
            refusing.append(dict(primary=name, zone=topology.zone_of[name], slots=slots, reason=reason))
        replicas = [by_addr.get(addr, "%s:%d" % addr) for addr in online_replicas(info)]
        outside = [r for r in replicas if topology.zone_of.get(r) not in (None, topology.zone_of[name])]
        if not outside:
            unprotected.append(dict(primary=name, zone=topology.zone_of[name], slots=slots, replicas=replicas))
    majority = [dict(zone=z, primaries=held, total=total)
                for z, held, total in zone_majorities(primaries, topology.zone_of)]
    return dict(refusing=refusing, unprotected=unprotected, zone_majority=majority)


def problems(availability, allow_zone_majority=False):
    """One line per finding of report(), in the words an operator acts on. With allow_zone_majority
    (the operator accepted it: redis_cluster_allow_zone_majority) zone majorities are not problems."""
    lines = []
    for item in availability["refusing"]:
        lines.append("primary %s refuses writes to slots %s (%s)" % (item["primary"], ",".join(item["slots"]), item["reason"]))
    for item in availability["unprotected"]:
        if item["replicas"]:
            lines.append("primary %s has no connected replica outside zone %s (replicas %s): losing that zone stops "
                         "writes to slots %s" % (item["primary"], item["zone"], ", ".join(item["replicas"]),
                                                 ",".join(item["slots"])))
        else:
            lines.append("primary %s (zone %s) has no connected replica: losing its host stops writes to slots %s"
                         % (item["primary"], item["zone"], ",".join(item["slots"])))
    for item in [] if allow_zone_majority else availability["zone_majority"]:
        lines.append("zone %s holds %d of %d primaries: losing it leaves no majority to elect replacements"
                     % (item["zone"], item["primaries"], item["total"]))
    return lines
