# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Zone-aware placement of Redis Cluster primaries and replicas. Pure Python, no I/O.

The rule: a replica never lives in the same zone as its primary. Primaries are spread over the
zones as evenly as the rule allows, and each primary's replicas come from other zones (preferring
the next zone in rotation, so six hosts in zones a/b/c give a->b, b->c, c->a).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PlacementError(ValueError):
    """The requested layout cannot satisfy the zone rule; the message says why and what to change."""


def _group_by_zone(nodes):
    zones = {}
    for name, zone in nodes.items():
        if not isinstance(zone, str) or not zone:
            raise PlacementError("node %s has no zone: set redis_zone for it" % name)
        zones.setdefault(zone, []).append(name)
    return zones


def crowded_zones(primaries_per_zone):
    """Zones holding half or more of the primaries: losing one leaves no majority of primaries to
    elect replacements. primaries_per_zone: {zone: count}. Returns [(zone, held, total)]."""
    total = sum(primaries_per_zone.values())
    return [(zone, held, total) for zone, held in sorted(primaries_per_zone.items(), key=lambda kv: str(kv[0]))
            if total > 1 and 2 * held >= total]


def primary_caps(zone_sizes, replicas, primaries):
    """Most primaries each zone may hold so that all its other nodes can replicate out-of-zone.

    Replicas living in zone z (n_z - p_z of them) must attach to primaries elsewhere, which offer
    replicas * (P - p_z) places: n_z - p_z <= r * (P - p_z).
    """
    caps = {}
    for zone, size in zone_sizes.items():
        if replicas == 1:
            caps[zone] = min(size, primaries) if size <= primaries else -1
        else:
            room = replicas * primaries - size
            caps[zone] = min(size, room // (replicas - 1)) if room >= 0 else -1
    return caps


def plan_layout(nodes, replicas=1, min_primaries=3, preferred_primaries=(), allow_zone_majority=False):
    """Choose primaries and replicas for a new cluster.

    nodes: mapping node name -> zone, in inventory order.
    replicas: replicas per primary. preferred_primaries: names to pick first as primaries.
    allow_zone_majority: accept a layout where one zone holds half or more of the primaries (its
    loss would leave no majority to elect replacements: the whole cluster stops taking writes).
    Returns a list of shards: {"primary": name, "zone": zone, "replicas": [names]}.
    Raises PlacementError when no layout satisfies the zone rule.
    """
    if not isinstance(replicas, int) or replicas < 0:
        raise PlacementError("replicas per primary must be a whole number >= 0, got %r" % (replicas,))
    zones = _group_by_zone(nodes)
    total = len(nodes)
    group = replicas + 1
    if total == 0:
        raise PlacementError("no nodes given: put the Redis hosts in the inventory group")
    if total % group:
        raise PlacementError(
            "%d nodes cannot form shards of 1 primary + %d replica(s): the node count must be a "
            "multiple of %d (add %d or remove %d hosts, or change redis_cluster_replicas)"
            % (total, replicas, group, group - total % group, total % group))
    count = total // group
    if count < min_primaries:
        raise PlacementError(
            "%d nodes with %d replica(s) each give %d primaries; a cluster needs at least %d "
            "primaries to elect failovers (need %d hosts)"
            % (total, replicas, count, min_primaries, min_primaries * group))
    order = sorted(zones, key=lambda z: (-len(zones[z]), z))
    if replicas == 0:
        chosen = list(nodes)
        return _shards(chosen, {}, nodes, sorted(zones))
    if len(zones) < 2:
        raise PlacementError(
            "all %d nodes are in zone %s: a replica must live in another zone than its primary, so "
            "spread the hosts over at least 2 zones (redis_zone)" % (total, order[0]))
    sizes = {z: len(members) for z, members in zones.items()}
    caps = primary_caps(sizes, replicas, count)
    for zone in order:
        if caps[zone] < 0:
            limit = count if replicas == 1 else replicas * count
            raise PlacementError(
                "zone %s holds %d of %d nodes; with %d replica(s) per primary a zone may hold at "
                "most %d (%s), or some replica would share its primary's zone: move hosts to other "
                "zones" % (zone, sizes[zone], total, replicas, limit,
                           "half the nodes" if replicas == 1 else "replicas x primaries"))
    if sum(caps.values()) < count:
        raise PlacementError(
            "zones %s cannot host %d primaries so that every replica has its primary in another "
            "zone (at most %s primaries per zone): spread the hosts more evenly"
            % (", ".join("%s=%d" % (z, sizes[z]) for z in sorted(zones)), count,
               ", ".join("%s=%d" % (z, caps[z]) for z in sorted(zones))))
    # Spread primaries round-robin over the zones, largest zone first.
    per_zone = dict.fromkeys(zones, 0)
    placed = 0
    while placed < count:
        progressed = False
        for zone in order:
            if placed < count and per_zone[zone] < caps[zone]:
                per_zone[zone] += 1
                placed += 1
                progressed = True
        if not progressed:  # pragma: no cover - excluded by the caps check above
            raise PlacementError("internal: could not place %d primaries" % count)
    crowded = crowded_zones(per_zone)
    if crowded and not allow_zone_majority:
        raise PlacementError(
            "zone %s would hold %d of %d primaries: losing that zone would leave no majority of primaries "
            "to elect replacements, so the whole cluster would stop taking writes. Spread the hosts over "
            "at least 3 zones (redis_zone), or set redis_cluster_allow_zone_majority: true to accept that"
            % crowded[0])
    preferred = [n for n in preferred_primaries if n in nodes]
    primaries = []
    for zone in sorted(zones):
        members = sorted(zones[zone], key=lambda n: (n not in preferred, list(nodes).index(n)))
        primaries.extend(members[:per_zone[zone]])
    assignment = assign_replicas(primaries, [n for n in nodes if n not in primaries], nodes, replicas)
    return _shards(primaries, assignment, nodes, sorted(zones))


def fill_seats(seats, candidates, allowed, rank, seed=None):
    """Fill replica `seats` (e.g. (primary, k) pairs) with distinct candidates: a maximum bipartite
    matching (Kuhn's augmenting paths).

    allowed(seat, cand) says whether cand may fill seat; rank(seat, cand) orders the choices (lowest
    first); seed is an initial {seat: cand} that is kept unless re-routing needs it. A free candidate
    is always tried before re-routing an assigned one, so seeded links move as little as possible.
    Returns {seat: cand} for every seat that could be filled.
    """
    match = dict(seed or {})
    owner = {cand: seat for seat, cand in match.items()}

    def choices(seat):
        return sorted((c for c in candidates if allowed(seat, c)), key=lambda c: rank(seat, c))

    def augment(seat, seen):
        options = choices(seat)
        for cand in options:
            if cand not in owner:
                match[seat], owner[cand] = cand, seat
                return True
        for cand in options:
            if cand in seen:
                continue
            seen.add(cand)
            if augment(owner[cand], seen):
                match[seat], owner[cand] = cand, seat
                return True
        return False

    for seat in seats:
        if seat not in match:
            augment(seat, set())
    return match


def spread_replicas(need, candidates, zone_of, rank, seed=None):
    """Give each primary p up to need[p] replicas from `candidates`, none in p's zone and no two in one zone, so
    that losing any one zone costs a primary at most one replica (what min-replicas-to-write 1 with two replicas
    per shard relies on). An augmenting-path search (a small max flow: primary -> zone -> candidate): a free
    candidate is always tried before taking one from another primary, which then looks for a replacement.

    rank(primary, cand) orders the choices (lowest first); seed is an initial {cand: primary} (links kept unless
    re-routing needs them; the caller passes only valid ones). Returns {cand: primary} for every seat it could
    fill; the caller compares the count with sum(need)."""
    owner = dict(seed or {})
    held = {}
    for cand, primary in owner.items():
        held.setdefault(primary, []).append(cand)

    def choices(primary, seen):
        zones = set(zone_of[c] for c in held.get(primary, []))
        return sorted((c for c in candidates if c not in seen and zone_of[c] != zone_of[primary] and zone_of[c] not in zones),
                      key=lambda c: rank(primary, c))

    def take(primary, cand):
        previous = owner.get(cand)
        if previous is not None:
            held[previous].remove(cand)
        owner[cand] = primary
        held.setdefault(primary, []).append(cand)
        return previous

    def augment(primary, seen):
        options = choices(primary, seen)
        for cand in options:
            if cand not in owner:
                take(primary, cand)
                return True
        for cand in options:
            if cand in seen:
                continue
            seen.add(cand)
            previous = take(primary, cand)
            if augment(previous, seen):
                return True
            take(previous, cand)  # undo: the other primary found no replacement
        return False

    for primary in need:
        while len(held.get(primary, [])) < need[primary] and augment(primary, set()):
            pass
    return owner


def assign_replicas(primaries, candidates, zone_of, replicas):
    """Give each primary `replicas` replicas from other zones (perfect matching or PlacementError).
    Seat k of a primary prefers the zone k+1 steps after the primary's in rotation. With two or more
    replicas, each replica of a primary goes to its own zone when the zones allow it (spread_replicas)."""
    zone_list = sorted(set(zone_of.values()))
    if replicas >= 2:
        def order(primary, cand):
            start = zone_list.index(zone_of[primary])
            rotation = [zone_list[(start + 1 + i) % len(zone_list)] for i in range(len(zone_list))]
            return rotation.index(zone_of[cand]), candidates.index(cand)

        spread = spread_replicas(dict((p, replicas) for p in primaries), candidates, zone_of, order)
        if len(spread) == replicas * len(primaries):
            result = {p: [] for p in primaries}
            for cand in candidates:
                if cand in spread:
                    result[spread[cand]].append(cand)
            for primary in primaries:
                result[primary].sort(key=lambda c: order(primary, c))
            return result
    seats = [(p, k) for p in primaries for k in range(replicas)]

    def rank(seat, cand):
        primary, k = seat
        start = zone_list.index(zone_of[primary])
        rotation = [zone_list[(start + 1 + k + i) % len(zone_list)] for i in range(len(zone_list))]
        return rotation.index(zone_of[cand]), candidates.index(cand)

    match = fill_seats(seats, candidates, lambda seat, c: zone_of[c] != zone_of[seat[0]], rank)
    for seat in seats:
        if seat not in match:
            raise PlacementError(
                "no replica outside zone %s is left for primary %s: spread the hosts more evenly"
                % (zone_of[seat[0]], seat[0]))
    result = {p: [] for p in primaries}
    for (primary, k) in seats:
        result[primary].append(match[(primary, k)])
    return result


def _shards(primaries, assignment, zone_of, zone_list):
    ordered = sorted(primaries, key=lambda p: (zone_list.index(zone_of[p]), list(zone_of).index(p)))
    return [{"primary": p, "zone": zone_of[p], "replicas": list(assignment.get(p, []))} for p in ordered]


def shared_replica_zones(shards, zone_of):
    """Primaries two of whose replicas share a zone although the other zones could hold them apart (each
    replica in its own zone other than the primary's): losing that zone would cost the primary two replicas.
    List of (primary, zone, [replicas])."""
    zones = set(zone_of.values())
    found = []
    for shard in shards:
        by_zone = {}
        for replica in shard["replicas"]:
            by_zone.setdefault(zone_of.get(replica), []).append(replica)
        if len(zones) - 1 < len(shard["replicas"]):
            continue  # too few zones to keep them apart
        for zone, members in sorted(by_zone.items(), key=lambda item: str(item[0])):
            if zone is not None and len(members) > 1:
                found.append((shard["primary"], zone, sorted(members)))
    return found


def zone_violations(shards, zone_of):
    """Replicas that share their primary's zone: list of (replica, primary, zone)."""
    found = []
    for shard in shards:
        pzone = zone_of.get(shard["primary"])
        for replica in shard["replicas"]:
            if pzone is not None and zone_of.get(replica) == pzone:
                found.append((replica, shard["primary"], pzone))
    return found
