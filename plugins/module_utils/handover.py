# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restarting one node without an unplanned failover (rolling upgrades, configuration restarts).

release(): before a node is stopped, check the cluster is healthy (else stop: the roll must not go
on), and when the node is a primary holding slots, hand its slots to its best replica with a
coordinated CLUSTER FAILOVER (the replica first catches up with the primary's offset, so no
acknowledged write is lost; clients see a pause of a few milliseconds instead of node-timeout).
rejoin(): after the start, wait until the node has loaded its data, sees cluster_state:ok, and, as a
replica, has finished its sync: only then does it protect its shard again, and the next node may go.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action, render_all
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, WaitTimeout
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.slots import render as render_slots
from ansible_collections.shardwise.redis.plugins.module_utils.topology import (
    gather, health_problems, in_sync, parse_info)


def restart_problems(topology):
    """Why no node may be stopped now (empty: it may). A zone holding half the primaries is allowed:
    each handover moves a primary into its replica's zone until the roll restores the spread. New hosts
    waiting outside the cluster (spare: they hold no slots and follow no primary) are allowed too: the
    site.yml run that installs them may also change the members' redis.conf."""
    return health_problems(topology, allow_spare=True, allow_zone_majority=True)


def plan_release(topology, node):
    """Actions after which `node` holds no slots as a primary: [] for a replica (or a primary without
    slots), else one coordinated failover to its best replica: reachable, link up and sync done, in
    the zone holding the fewest primaries, then the highest offset. PlacementError when none can."""
    if topology.role(node) != "primary" or not topology.slots_of(node):
        return []
    offsets = topology.replica_offsets()
    replicas = [n["name"] for n in topology.inventory if topology.primary_of(n["name"]) == node]
    ready = [r for r in replicas if r in topology.myself and in_sync(topology.server_info.get(r, {}))]
    if not ready:
        raise PlacementError(
            "primary %s has no replica that answers with its sync done (replicas: %s): restarting it would stop "
            "writes to slots %s for the whole restart. Run playbooks/failover_recovery.yml to restore its replica, "
            "then run this again" % (node, ", ".join(replicas) or "none", ",".join(render_slots(topology.slots_of(node)))))
    crowd = {}
    for primary in topology.primaries_with_slots():
        crowd[topology.zone_of[primary]] = crowd.get(topology.zone_of[primary], 0) + 1
    best = min(ready, key=lambda r: (crowd.get(topology.zone_of[r], 0), -offsets.get(r, -1), r))
    return [Action("handover", best, primary=node)]


def data_bytes(info):
    """What a start has to load: the larger of the AOF and the dataset in memory (bytes)."""
    return max(int(info.get("aof_current_size", 0) or 0), int(info.get("used_memory_dataset", 0) or 0))


def release(cli, inventory, node, waiter, check_mode=False, clock=None):
    """What redis_cluster_handover state=released does. Returns the module result; raises Stopped."""
    topology = gather(cli, inventory)
    info = topology.server_info.get(node, {})
    result = dict(changed=False, node=node, plan=[], role=topology.role(node), version=info.get("redis_version"),
                  data_bytes=data_bytes(info), problems=restart_problems(topology), before=topology.summary())
    if node not in topology.by_name:
        raise Stopped("node %s is not in the inventory given to the module" % node, result)
    if node not in topology.views:  # down already: its restart cannot make anything worse
        result.update(problems=[], note="%s does not answer (%s): restarted without a handover"
                      % (node, topology.errors.get(node, "no answer")))
        return result
    if not any(n["slot_count"] for n in topology.views[node] if n["role"] == "primary"):
        result.update(problems=[], note="%s is not in a formed cluster (it sees no slot assigned): restarted without "
                      "a handover" % node)
        return result
    if result["problems"]:
        raise Stopped("%s is not restarted: the cluster is not healthy: %s. Nothing was changed; heal the cluster "
                      "(playbooks/failover_recovery.yml) and run again" % (node, "; ".join(result["problems"])), result)
    try:
        actions = plan_release(topology, node)
    except PlacementError as exc:
        raise Stopped(str(exc), result)
    result.update(changed=bool(actions), plan=render_all(actions), handover_to=actions[0]["node"] if actions else None)
    if check_mode or not actions:
        return result
    started = clock() if clock else None
    try:
        Executor(cli, waiter, topology).run(actions)
    except (RedisCliError, WaitTimeout) as exc:
        raise Stopped("the handover of %s's slots failed: %s. %s was not restarted; run "
                      "playbooks/failover_recovery.yml, then this again" % (node, exc, node), result)
    if clock:
        result["handover_seconds"] = round(clock() - started, 3)
    result["role"] = "replica"
    return result


def rejoin(cli, inventory, node, waiter):
    """What redis_cluster_handover state=rejoined does: wait until the restarted node serves again.
    Returns {role, version, run_id, changed: False}; raises Stopped naming what it waited for."""
    target = [n for n in inventory if n["name"] == node]
    if not target:
        raise Stopped("node %s is not in the inventory given to the module" % node, {})
    host, port = target[0]["host"], target[0]["port"]
    seen = {}

    def loaded():
        seen.update(parse_info(cli.run(host, port, "INFO")))
        return "redis_version" in seen and seen.get("loading") == "0"

    def cluster_ok():
        state = parse_info(cli.run(host, port, "CLUSTER", "INFO"))
        return state.get("cluster_state") == "ok" or state.get("cluster_slots_assigned") == "0"

    def synced():
        repl = parse_info(cli.run(host, port, "INFO", "replication"))
        seen.update(repl)
        return repl.get("role") == "master" or in_sync(repl)

    try:
        waiter.until(loaded, "%s to load its data and answer" % node)
        waiter.until(cluster_ok, "%s to see cluster_state:ok" % node)
        waiter.until(synced, "%s to finish its sync as a replica" % node)
    except WaitTimeout as exc:
        raise Stopped("%s did not come back: %s. The roll stops here; look at the node's log, then run "
                      "playbooks/failover_recovery.yml" % (node, exc), dict(node=node))
    return dict(changed=False, node=node, role="primary" if seen.get("role") == "master" else "replica",
                version=seen.get("redis_version"), run_id=seen.get("run_id"),
                executable=seen.get("executable"))
