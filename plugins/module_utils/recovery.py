# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Failover recovery: plan_recovery() decides what heals a cluster after failures (promote a replica of
a failed primary, re-attach nodes that came back, keep every replica out of its primary's zone,
restore the primary zone spread, forget dead nodes), and recover() runs it the way the
redis_cluster_recover module does: Redis' own failover window first, then up to three rounds of
apply and re-plan (a promotion reveals the next step)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action, render_all
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, WaitTimeout
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError, fill_seats, spread_replicas
from ansible_collections.shardwise.redis.plugins.module_utils.topology import gather, health_problems, in_sync, join_refusals

ROUNDS = 3


def failover_window(node_timeout_ms):
    """Seconds to leave Redis to promote a replica itself before the runbook forces one: a replica
    starts its election after the failure is agreed (node timeout) and a rank delay, and the election
    may take up to twice the node timeout (failover_auth_timeout); plus 5 s of margin."""
    return -(-2 * int(node_timeout_ms) // 1000) + 5


def _spread_replicas(primaries, replicas, current, zone_of, per_primary):
    """With two or more replicas per primary: each primary's replicas in zones of their own (spread_replicas),
    keeping the current links that obey that; replicas beyond the seats follow below. None when the nodes
    cannot fill every primary's seats that way (then the plain zone rule applies)."""
    seed, zones = {}, {}
    for rep in replicas:
        primary = current.get(rep)
        if primary in primaries and zone_of.get(rep) != zone_of.get(primary) \
                and zone_of.get(rep) not in zones.setdefault(primary, set()) and len(zones[primary]) < per_primary:
            seed[rep] = primary
            zones[primary].add(zone_of.get(rep))
    placed = spread_replicas(dict((p, per_primary) for p in primaries), replicas, zone_of,
                             lambda primary, rep: (current.get(rep) != primary, replicas.index(rep)), seed)
    if len(placed) < per_primary * len(primaries):
        return None
    return placed


def _rebalance_replicas(primaries, replicas, current, zone_of, per_primary):
    """Assign replicas to primaries so none shares its primary's zone (and, with two or more per primary, no two
    share a zone where the zones allow it), keeping current links where they are valid. Returns {replica: primary}
    or raises PlacementError."""
    spread = _spread_replicas(primaries, replicas, current, zone_of, per_primary) if per_primary >= 2 else None
    if spread is not None and len(spread) < len(replicas):  # more replicas than seats: the rest by the plain rule
        rest = [r for r in replicas if r not in spread]
        extra = _rebalance_replicas(primaries, rest, current, zone_of, 0)
        spread.update(extra)
    if spread is not None:
        return spread
    seats = [(p, k) for p in primaries for k in range(per_primary)]
    extra = len(replicas) - len(seats)
    if extra > 0:  # more replicas than seats: give the extra ones more seats round-robin
        seats += [(primaries[i % len(primaries)], per_primary + i // len(primaries)) for i in range(extra)]

    def allowed(seat, rep):
        return zone_of.get(rep) != zone_of.get(seat[0])

    seed, kept = {}, set()
    for seat in seats:  # keep valid current links first
        for rep in replicas:
            if rep not in kept and current.get(rep) == seat[0] and allowed(seat, rep):
                seed[seat] = rep
                kept.add(rep)
                break
    match = fill_seats(seats, replicas, allowed, lambda seat, r: (current.get(r) != seat[0], replicas.index(r)), seed)
    placed = {rep: seat[0] for seat, rep in match.items()}
    unplaced = [r for r in replicas if r not in placed]
    if unplaced:
        raise PlacementError("replicas %s cannot be placed outside their primary's zone: the primaries "
                             "live in %s; add hosts in other zones or restore primary zones"
                             % (", ".join(unplaced), ", ".join(sorted({zone_of[p] for p in primaries}))))
    return placed


def copy_gap_ms(topology, replica, primary_id):
    """How many milliseconds of the failed primary's writes the replica may lack: from the moment its link
    went down (its INFO: server time minus master_link_down_since_seconds) to the last moment any node
    heard from the primary (the newest pong-recv in the views). None when unknown (no INFO, or the link was
    never up since the replica started)."""
    info = topology.server_info.get(replica, {})
    since, now_us = info.get("master_link_down_since_seconds"), info.get("server_time_usec")
    if since is None or now_us is None or int(since) < 0:
        return None
    down_at_ms = int(now_us) // 1000 - int(since) * 1000
    last_seen_ms = max([n["pong_recv"] for view in topology.views.values() for n in view if n["id"] == primary_id] or [0])
    return max(0, last_seen_ms - down_at_ms)


def _refuse_partitioned_primaries(topology):
    """A primary that answers this runbook while most other nodes flag it failed is cut off from them, not
    dead: promoting its replica would give two primaries for the same slots."""
    for name, me in sorted(topology.myself.items()):
        if me["role"] != "primary" or not me["slot_count"]:
            continue
        others = [view for other, view in topology.views.items() if other != name]
        flagging = sum(1 for view in others if any(n["id"] == me["id"] and n["failed"] for n in view))
        if others and 2 * flagging > len(others):
            raise PlacementError("primary %s is flagged failed by %d of %d other nodes but answers this runbook: they "
                                 "cannot reach each other (a partition), and promoting a replica now would give two "
                                 "primaries for slots %s. Repair the network between the nodes, or stop redis-server "
                                 "on %s first" % (name, flagging, len(others), ",".join("%d-%d" % r for r in me["slots"]),
                                                  name))


def plan_recovery(topology, replicas=1, takeover=(), restore_primary_zones=True, forget_dead=False,
                  max_copy_gap_ms=None):
    """Actions that heal a cluster after failures. Healthy cluster -> no action.

    Promotion guards: no FORCE while the failed primary still answers us (a partition: two primaries for the
    same slots), nor when the best replica's copy stopped more than max_copy_gap_ms before the primary was
    last heard of (its promotion would drop those writes). TAKEOVER (no primary majority) only for the
    replicas named in `takeover`, an explicit one-off.

    Actions: failover (FORCE or TAKEOVER on the best replica of a failed primary that holds slots),
    replicate (move replicas so none shares its primary's zone; re-attach free nodes),
    meet (a node that came back empty), failover_zone (coordinated CLUSTER FAILOVER to restore a
    zone spread of primaries), forget (dead nodes, only with forget_dead).
    Returns (actions, notes). Raises PlacementError when it cannot act safely.
    """
    actions, notes = [], []
    if not topology.anchor:
        raise PlacementError("no node answered: nothing can be inspected")
    anchor_view = topology.views[topology.anchor]
    name = topology.name_of_id.get
    failed_ids = {n["id"] for n in anchor_view if n["failed"]}
    reachable = [n["name"] for n in topology.inventory if n["name"] in topology.myself]
    _refuse_partitioned_primaries(topology)
    # 1. Primaries that failed while still holding slots (no replica was promoted).
    stuck = [n for n in anchor_view if n["role"] == "primary" and n["failed"] and n["slot_count"]]
    live_primaries = [n for n in anchor_view if n["role"] == "primary" and not n["failed"] and n["slot_count"]]
    for dead in stuck:
        candidates = [n for n in anchor_view if n["primary_id"] == dead["id"] and not n["failed"]
                      and name(n["id"]) in reachable]
        if not candidates:
            raise PlacementError("primary %s (%s) failed and none of its replicas answers: its slots %s "
                                 "are down; bring the host back (it rejoins) or restore from backup"
                                 % (name(dead["id"]) or dead["id"], dead["host"],
                                    ",".join("%d-%d" % r for r in dead["slots"])))
        dead_name = name(dead["id"]) or dead["id"]
        offsets = topology.replica_offsets()
        best = max(candidates, key=lambda n: (offsets.get(name(n["id"]), -1),
                                              n["config_epoch"], name(n["id"]) or ""))
        best_name = name(best["id"])
        if max_copy_gap_ms is not None:
            gap = copy_gap_ms(topology, best_name, dead["id"])
            if gap is None or gap > max_copy_gap_ms:
                raise PlacementError(
                    "primary %s failed, but the copy of its best replica %s %s (limit %d s: node timeout x "
                    "replica validity factor + 10 s, the age Redis itself accepts): promoting it would drop the "
                    "writes since. Bring %s back; if it is lost for good, promote %s by hand knowing those "
                    "writes are gone" % (dead_name, best_name,
                                         "has an unknown age (its link was never up since it started)" if gap is None
                                         else "stopped %.1f s before the primary was last heard of" % (gap / 1000.0),
                                         max_copy_gap_ms // 1000, dead_name, best_name))
        majority = len(live_primaries) > (len(live_primaries) + len(stuck)) // 2
        if majority:
            actions.append(Action("failover", best_name, mode="FORCE", failed=dead_name))
        elif best_name in (takeover or ()):
            actions.append(Action("failover", best_name, mode="TAKEOVER", failed=dead_name))
        else:
            raise PlacementError("primary %s failed and the surviving primaries (%d of %d) cannot elect a "
                                 "replacement. If the failed primaries are really down (TAKEOVER ignores the "
                                 "majority: two primaries for the same slots lose writes), run this once with "
                                 "-e '{\"redis_failover_takeover_nodes\": [\"%s\"]}' to promote it with CLUSTER FAILOVER "
                                 "TAKEOVER%s" % (dead_name, len(live_primaries), len(live_primaries) + len(stuck), best_name,
                                                 " (named: %s)" % ", ".join(takeover) if takeover else ""))
    if actions:
        return actions, notes  # replicas and zones are planned again once the promotion is done
    if topology.open_slots():
        # A migration is under way (or was interrupted): moving replicas or primaries now would race it.
        notes.append("slots are migrating (%d): nothing else is changed until playbooks/add_shard.yml (or "
                     "remove_shard.yml) has finished them" % len(topology.open_slots()))
        return actions, notes
    # 2. Nodes that came back empty or were never re-met: free nodes join as replicas. A host the cluster
    #    has never known (no node at its address) is a new host waiting for add_shard.yml: left alone.
    members = set(topology.members())
    known = set((n["host"], n["port"]) for n in anchor_view)
    primaries = [n["name"] for n in topology.inventory if topology.role(n["name"]) == "primary"
                 and topology.slots_of(n["name"]) and n["name"] in reachable]
    replicas_now = [n for n in reachable if topology.role(n) == "replica"]
    free = [n for n in reachable if n not in primaries and n not in replicas_now]
    for node in list(free):
        if node in members:
            continue
        if (topology.by_name[node]["host"], int(topology.by_name[node]["port"])) not in known:
            notes.append("node %s is a new host outside the cluster: playbooks/add_shard.yml adds it" % node)
            free.remove(node)
            continue
        refused = join_refusals(topology, node)
        if refused:  # never merge another cluster or a node with data: it stays out, named in the notes
            notes.append("node %s is not met: %s; check what it holds, then FLUSHALL and CLUSTER RESET HARD on it "
                         "(or take it out of the inventory)" % (node, "; ".join(refused)))
            free.remove(node)
            continue
        actions.append(Action("meet", node, via=topology.anchor, host=topology.by_name[node]["host"],
                              port=topology.by_name[node]["port"]))
    # 3. Zone rule: place replicas (current + free) so none shares its primary's zone.
    current = {r: topology.primary_of(r) for r in replicas_now}
    if primaries:
        wanted = _rebalance_replicas(primaries, replicas_now + free, current, topology.zone_of, replicas)
        for rep in replicas_now + free:
            if wanted[rep] != current.get(rep):
                actions.append(Action("replicate", rep, primary=wanted[rep], was=current.get(rep)))
    # 4. Put primaries back into an even zone spread (coordinated failovers: the replica first
    #    catches up with its primary, so no acknowledged write is lost).
    if restore_primary_zones and not actions and primaries:
        zones = sorted(set(topology.zone_of.values()))
        most = -(-len(primaries) // len(zones))  # ceil: no zone should hold more primaries than this
        count = dict.fromkeys(zones, 0)
        for p in primaries:
            count[topology.zone_of[p]] += 1
        handed = set()
        for zone in zones:
            while count[zone] > most:
                crowded = sorted(p for p in primaries if topology.zone_of[p] == zone and p not in handed)
                options = [(r, p) for p in crowded for r in sorted(current) if current[r] == p
                           and r in reachable and count[topology.zone_of[r]] < most]
                ready = [(r, p) for r, p in options if in_sync(topology.server_info.get(r, {}))]
                if ready:
                    replica, primary = ready[0]
                    actions.append(Action("failover_zone", replica, primary=primary))
                    handed.add(primary)
                    count[zone] -= 1
                    count[topology.zone_of[replica]] += 1
                    continue
                if options:
                    notes.append("zone %s holds %d primaries; %s takes over from %s once it has caught up "
                                 "(its sync is still running): the next run does it"
                                 % (zone, count[zone], options[0][0], options[0][1]))
                else:
                    notes.append("zone %s holds %d primaries (%s) and none has a replica in a zone short of "
                                 "primaries: bring their old hosts back (they rejoin as replicas) or add hosts "
                                 "in other zones; the next run restores the spread"
                                 % (zone, count[zone], ", ".join(crowded)))
                break
    # 5. Dead nodes: forget them everywhere (only when asked).
    dead = [n for n in anchor_view if n["id"] in failed_ids and not n["slot_count"]]
    for node in dead:
        if forget_dead:
            actions.append(Action("forget", name(node["id"]) or node["id"], node_id=node["id"]))
        else:
            notes.append("node %s (%s) is flagged failed; set redis_failover_forget_dead=true to forget it "
                         "cluster-wide" % (name(node["id"]) or node["id"], node["host"]))
    return actions, notes


def recover(cli, inventory, waiter, window_seconds, check_mode=False, diff=False, allow_zone_majority=False,
            **planning):
    """What redis_cluster_recover does. planning: plan_recovery keyword arguments. When a failed primary
    still holds slots, Redis gets `window_seconds` to promote a replica itself before the plan is made
    again (only outside check mode). Then up to ROUNDS rounds of apply and re-plan. Returns the module
    result (plan, notes, before, after, problems); raises Stopped with the result so far."""

    def health(topology, summary=None):
        return health_problems(topology, summary, allow_zone_majority=allow_zone_majority)

    topology = gather(cli, inventory)
    before = topology.summary()
    try:
        actions, notes = plan_recovery(topology, **planning)
        if any(a["op"] == "failover" for a in actions) and not check_mode:
            waiter.pause(window_seconds)
            topology = gather(cli, inventory)
            actions, notes = plan_recovery(topology, **planning)
    except PlacementError as exc:
        raise Stopped(str(exc), dict(before=before, plan=[], notes=[], problems=health(topology)))
    result = dict(changed=bool(actions), plan=render_all(actions), notes=notes, before=before, after=before,
                  problems=health(topology))
    if diff:
        result["diff"] = dict(before=before, after=dict(plan=result["plan"]))
    if check_mode or not actions:
        return result
    try:
        for _round in range(ROUNDS):
            Executor(cli, waiter, topology).run(actions)
            topology = gather(cli, inventory)
            actions, result["notes"] = plan_recovery(topology, **planning)
            if not actions:
                break
            result["plan"] += render_all(actions)
    except (RedisCliError, WaitTimeout, PlacementError) as exc:
        raise Stopped("%s (re-run to continue: the plan is recomputed from the cluster's state)" % exc, result)
    topology = gather(cli, inventory)
    result["after"] = topology.summary()
    result["problems"] = health(topology, result["after"])
    return result
