# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster formation: the declarative planner that makes the inventory nodes one cluster with every
slot covered and zone-separated replicas, or finishes a half-formed one, and converge(), what the
redis_cluster module runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action, render_all
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, WaitTimeout
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor, wait_healthy
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError, fill_seats, plan_layout, spread_replicas
from ansible_collections.shardwise.redis.plugins.module_utils.slots import CLUSTER_SLOTS, even_split, parse, to_ranges, to_set
from ansible_collections.shardwise.redis.plugins.module_utils.slots import render as render_slots
from ansible_collections.shardwise.redis.plugins.module_utils.topology import check_meets, gather


def plan_cluster(topology, replicas=1, min_primaries=3, allow_zone_majority=False, slot_layout=None):
    """Actions that bring the inventory nodes to one cluster with every slot covered and
    `replicas` zone-separated replicas per primary. Existing roles are kept (a failover is
    accepted as is); a half-formed cluster is finished, not re-created. With slot_layout
    ({primary: ["first-last", ...]}, a restore), those nodes become the primaries of exactly those slots.

    Returns (actions, notes): Action meet, addslots, replicate, in the order they run.
    Raises PlacementError (or RedisCliError for unreachable nodes) when it cannot act safely.
    """
    if topology.unreachable:
        raise RedisCliError("nodes %s did not answer: every inventory node must be reachable over "
                            "TLS with the admin user before the cluster is changed"
                            % ", ".join(topology.unreachable))
    if topology.open_slots():
        raise PlacementError("slots are migrating or importing (%s): finish the migration "
                             "(playbooks/add_shard.yml resumes it) before forming the cluster"
                             % ", ".join("%s %s on %s" % (o["slot"], o["state"], o["node"])
                                         for o in topology.open_slots()[:5]))
    if slot_layout:
        return plan_with_layout(topology, slot_layout, replicas)
    names = [n["name"] for n in topology.inventory]
    actions, notes = [], []
    holders = topology.primaries_with_slots()
    covered = topology.covered_slots()
    replicating = [n for n in names if topology.role(n) == "replica"]
    free = [n for n in names if n not in holders and n not in replicating]

    if not holders:
        # New cluster: the planner chooses everything.
        shards = plan_layout(topology.zone_of, replicas=replicas, min_primaries=min_primaries,
                             allow_zone_majority=allow_zone_majority)
        anchor = shards[0]["primary"]
        actions += _meets(topology, anchor, names)
        for shard, (first, last) in zip(shards, even_split(len(shards))):
            actions.append(Action("addslots", shard["primary"], first=first, last=last))
        for shard in shards:
            for replica in shard["replicas"]:
                actions.append(Action("replicate", replica, primary=shard["primary"]))
        return check_meets(topology, actions), notes

    anchor = holders[0]
    joining = [n for n in names if n not in topology.members()]
    complete = len(covered) == CLUSTER_SLOTS
    primaries = list(holders)
    if not complete:
        # Interrupted formation: finish it with the same deterministic plan.
        shards = plan_layout(topology.zone_of, replicas=replicas, min_primaries=min_primaries,
                             preferred_primaries=holders, allow_zone_majority=allow_zone_majority)
        planned = [s["primary"] for s in shards]
        stray = [h for h in holders if h not in planned]
        if stray:
            raise PlacementError("slots are only partly covered (%d of %d) and primaries %s do not fit "
                                 "the zone layout: cover the missing slots by hand or with add_shard.yml"
                                 % (len(covered), CLUSTER_SLOTS, ", ".join(stray)))
        actions += _meets(topology, anchor, names)
        for shard, (first, last) in zip(shards, even_split(len(shards))):
            missing = to_ranges(set(range(first, last + 1)) - covered)
            primary = shard["primary"]
            if not missing:
                continue
            if primary not in holders and primary not in free:
                raise PlacementError("slots %d-%d are uncovered and planned primary %s is a replica: "
                                     "cover them by hand" % (first, last, primary))
            for a, b in missing:
                actions.append(Action("addslots", primary, first=a, last=b))
        primaries = planned
        free = [n for n in free if n not in planned]
    else:
        actions += _meets(topology, anchor, [n for n in names if n in topology.members() or n in free])
    # Give primaries that lack replicas some from the free nodes, zone rule kept.
    have = {p: [n for n in replicating if topology.primary_of(n) == p] for p in primaries}
    need = {p: max(0, replicas - len(have[p])) for p in primaries}
    wanted = sum(need.values())
    if wanted and free:
        chosen = assign_free(primaries, need, free, topology.zone_of, have)
        for primary, new in chosen.items():
            for replica in new:
                actions.append(Action("replicate", replica, primary=primary))
        free = [n for n in free if not any(n in v for v in chosen.values())]
    elif wanted:
        notes.append("primaries %s have fewer than %d replica(s) and no free node is left"
                     % (", ".join(p for p in primaries if need[p]), replicas))
    if free and complete:
        notes.append("nodes %s are not part of any shard: playbooks/add_shard.yml adds them as new shards"
                     % ", ".join(free))
        # Nodes already met stay as empty primaries; nodes not yet met are left alone.
        actions = [a for a in actions if not (a["op"] == "meet" and a["node"] in free and a["node"] in joining)]
    return check_meets(topology, actions), notes


def plan_with_layout(topology, slot_layout, replicas=1):
    """A restore's formation: the slot_layout primaries own exactly their slots (a node restored from a backup
    already claims the slots it has keys for; the others are added), and every other node replicates one of
    them, zone rule kept. A node holding slots outside its layout, or a layout not covering the 16384 slots
    exactly once, is refused before anything is sent."""
    names = [n["name"] for n in topology.inventory]
    wanted, owner = {}, {}
    for primary, ranges in slot_layout.items():
        if primary not in names:
            raise PlacementError("slot_layout names %s, which is not in the inventory" % primary)
        try:
            wanted[primary] = set(parse(ranges.split(",") if isinstance(ranges, str) else ranges))
        except ValueError as exc:
            raise PlacementError("slot_layout of %s: %s" % (primary, exc))
        for slot in wanted[primary]:
            if slot in owner:
                raise PlacementError("slot %d is in the slot_layout of both %s and %s" % (slot, owner[slot], primary))
            owner[slot] = primary
    if len(owner) != CLUSTER_SLOTS:
        raise PlacementError("slot_layout covers %d of %d slots: give every slot to one primary" % (len(owner), CLUSTER_SLOTS))
    primaries = sorted(wanted, key=lambda p: min(wanted[p]))
    for name in topology.primaries_with_slots():
        extra = to_set(topology.slots_of(name)) - wanted.get(name, set())
        if extra:
            raise PlacementError("%s holds slots %s outside its slot_layout: it holds other data (CLUSTER RESET it, or "
                                 "restore onto the nodes the backup names)" % (name, ",".join(render_slots(to_ranges(extra))[:5])))
    for name in primaries:
        if topology.role(name) == "replica":
            raise PlacementError("%s is a replica and slot_layout makes it a primary: CLUSTER RESET it first" % name)
    anchor = primaries[0]
    actions = _meets(topology, anchor, names)
    for name in primaries:
        for first, last in to_ranges(wanted[name] - to_set(topology.slots_of(name))):
            actions.append(Action("addslots", name, first=first, last=last))
    replicating = [n for n in names if topology.role(n) == "replica" and topology.primary_of(n) in wanted]
    have = dict((p, [n for n in replicating if topology.primary_of(n) == p]) for p in primaries)
    need = dict((p, max(0, replicas - len(have[p]))) for p in primaries)
    free = [n for n in names if n not in primaries and n not in replicating]
    notes = []
    if sum(need.values()) and free:
        for primary, new in assign_free(primaries, need, free, topology.zone_of, have).items():
            actions += [Action("replicate", replica, primary=primary) for replica in new]
    elif sum(need.values()):
        notes.append("primaries %s have fewer than %d replica(s) and no free node is left"
                     % (", ".join(p for p in primaries if need[p]), replicas))
    return check_meets(topology, actions, allow_data=primaries), notes


def _meets(topology, anchor, names):
    """CLUSTER MEET, sent to the anchor, for every node the anchor does not know yet."""
    actions = []
    for name in names:
        if name == anchor or (topology.anchor and topology.knows(anchor, name)):
            continue
        node = topology.by_name[name]
        actions.append(Action("meet", name, via=anchor, host=node["host"], port=node["port"]))
    return actions


def assign_free(primaries, need, free, zone_of, have=None):
    """Pick replicas for primaries short of them from the free nodes, never in the same zone; with `have` (each
    primary's current replicas), and two or more replicas per primary in the end, each in a zone of its own
    where the free nodes allow it (spread_replicas; current replicas stay where they are)."""
    have = have or {}
    if any(len(have.get(p, [])) + need[p] >= 2 for p in primaries):
        seed = dict((r, p) for p in primaries for r in have.get(p, []))
        total = dict((p, len(have.get(p, [])) + need[p]) for p in primaries)
        spread = spread_replicas(total, free, zone_of, lambda p, c: free.index(c), seed)
        added = [(p, c) for c, p in spread.items() if c in free]
        if len(added) == min(sum(need.values()), len(free)):
            result = {}
            for primary, node in sorted(added, key=lambda item: (primaries.index(item[0]), free.index(item[1]))):
                result.setdefault(primary, []).append(node)
            return result
    seats = [(p, k) for p in primaries for k in range(need[p])]
    match = fill_seats(seats, free, lambda seat, c: zone_of[c] != zone_of[seat[0]],
                       lambda seat, c: free.index(c))
    if len(match) < min(len(seats), len(free)):
        raise PlacementError("no free node outside the primary's zone is left for %s: add a host in "
                             "another zone or fix redis_zone labels"
                             % ", ".join(sorted({seat[0] for seat in seats if seat not in match})))
    result = {}
    for (primary, _unused), node in sorted(match.items()):
        result.setdefault(primary, []).append(node)
    return result


def predict(topology, actions):
    """The summary after `actions`, for diff mode."""
    after = topology.summary()
    for action in actions:
        node = after["nodes"][action["node"]]
        if action["op"] == "addslots":
            node["role"] = "primary"
            node["slots"] = node["slots"] + ["%d-%d" % (action["first"], action["last"])]
        elif action["op"] == "replicate":
            node["role"] = "replica"
            node["primary"] = action["primary"]
            node["slots"] = []
    return after


def converge(cli, inventory, waiter, check_mode=False, diff=False, **planning):
    """Gather, plan (plan_cluster keyword arguments in `planning`) and, unless check_mode, apply and wait
    for cluster_state:ok. Returns the module result. Raises Stopped (with the result so far) when it cannot act safely or a step fails."""
    topology = gather(cli, inventory)
    try:
        actions, notes = plan_cluster(topology, **planning)
    except (PlacementError, RedisCliError) as exc:
        raise Stopped(str(exc), dict(topology=topology.summary(), errors=topology.errors))
    before = topology.summary()
    result = dict(changed=bool(actions), plan=render_all(actions), notes=notes, zone_violations=before["zone_violations"])
    if diff:
        result["diff"] = dict(before=before, after=predict(topology, actions))
    if check_mode or not actions:
        result["topology"] = before
        return result
    try:
        Executor(cli, waiter, topology).run(actions)
        wait_healthy(cli, inventory, waiter)
    except (RedisCliError, WaitTimeout) as exc:
        raise Stopped("%s (re-run to resume: the plan is recomputed from the cluster's state)" % exc, result)
    after = gather(cli, inventory).summary()
    result.update(topology=after, zone_violations=after["zone_violations"])
    return result
