# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which primary each BullMQ queue should live on (redis_bullmq_queue_placement). Pure Python, no I/O.

A queue lives in one slot (its hash tag), so a busy queue loads one primary. The plan pins queues to the shard
an operator names (any node of that shard: the pin survives a failover) and spreads the others: no primary holds
more than its share (ceil(queues / primaries)), and the first queues of the list (the most important: critical,
high, ... one per primary) sit on different primaries. A queue stays where it is whenever that is allowed, so a
placed cluster plans nothing. Each queue's slot moves with the reshard engine (reshard.py, mode queues)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import queue_base, queue_name_problems
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.slots import slot_of, to_set

SPREAD, STAY = "spread", "stay"


def _groups(prefix, queues):
    """Queues by slot, in list order: queues sharing a slot can only move together."""
    order, by_slot = [], {}
    for queue in queues:
        slot = slot_of(queue_base(prefix, queue))
        if slot not in by_slot:
            by_slot[slot] = []
            order.append(slot)
        by_slot[slot].append(queue)
    return [(slot, by_slot[slot]) for slot in order]


def plan_queue_placement(prefix, queues, placement, owner_of_slot, primaries, shard_of):
    """Where each queue goes.

    queues: configured queue names, most important first. placement: {queue: "spread" | "stay" | node name};
    a queue not listed is spread. owner_of_slot(slot) -> primary now. primaries: primaries holding slots.
    shard_of: node name -> the primary of its shard (a primary -> itself).
    Returns {"queues": {queue: {slot, primary (now), target, rule}}, "moves": [(slot, source, target)]}.
    Raises PlacementError naming the fix for unknown queues or nodes, and for queues that share a slot but are
    pinned apart."""
    problems = queue_name_problems(prefix, queues)
    if problems:
        raise PlacementError("; ".join(problems))
    if not isinstance(placement, dict):
        raise PlacementError("redis_bullmq_queue_placement must be a mapping of queue name to a node name, "
                             "'spread' or 'stay', got %r" % (placement,))
    unknown = sorted(set(placement) - set(queues))
    if unknown:
        raise PlacementError("redis_bullmq_queue_placement names %s, which are not in redis_bullmq_queues (%s): add "
                             "them there or remove them" % (", ".join(unknown), ", ".join(queues)))
    pins = {}
    for queue, where in placement.items():
        if where in (SPREAD, STAY):
            continue
        if not isinstance(where, str) or where not in shard_of:
            raise PlacementError("redis_bullmq_queue_placement: queue %s names %r, which is not a cluster node "
                                 "holding or replicating slots: use an inventory hostname of a shard (%s), 'spread' "
                                 "or 'stay'" % (queue, where, ", ".join(sorted(shard_of))))
        pins[queue] = shard_of[where]
    if not primaries:
        raise PlacementError("no primary holds slots: form the cluster first (playbooks/site.yml)")
    rows, load, target = {}, dict((p, 0) for p in primaries), {}
    groups = _groups(prefix, queues)
    for slot, members in groups:
        owner = owner_of_slot(slot)
        if owner is None:
            raise PlacementError("slot %d of queue %s is not served: heal the cluster first "
                                 "(playbooks/failover_recovery.yml)" % (slot, members[0]))
        wanted = set(pins.get(q) for q in members if q in pins)
        if len(wanted) > 1:
            raise PlacementError("queues %s share slot %d (the same hash tag), so they cannot be pinned to different "
                                 "shards: pin them together or rename one" % (", ".join(members), slot))
        rules = set(placement.get(q, SPREAD) for q in members if q not in pins)
        if wanted:
            target[slot] = wanted.pop()
        elif rules == set([STAY]):
            target[slot] = owner
        for q in members:
            rows[q] = dict(slot=slot, primary=owner, rule="pinned" if q in pins else placement.get(q, SPREAD))
    for slot in target:
        load[target[slot]] = load.get(target[slot], 0) + len(dict(groups)[slot])
    spread = [(slot, members) for slot, members in groups if slot not in target]
    cap = -(-(sum(len(m) for _unused, m in groups)) // len(primaries))
    first = set(slot for slot, _unused in spread[:len(primaries)])
    first_on = set(target[s] for s in target if s in first)

    def fits(slot, size, primary, strict=True):
        if strict and slot in first and primary in first_on:
            return False
        return load.get(primary, 0) + size <= cap

    # Pass 1: every spread queue that may stay where it is stays (in list order).
    for slot, members in spread:
        owner = owner_of_slot(slot)
        if owner in load and fits(slot, len(members), owner):
            target[slot] = owner
            load[owner] += len(members)
            if slot in first:
                first_on.add(owner)
    # Pass 2: the others go to the least loaded primary that fits (then relaxing the first-queues rule, then the cap).
    for slot, members in spread:
        if slot in target:
            continue
        owner = owner_of_slot(slot)
        order = sorted(primaries, key=lambda p: (load.get(p, 0), p == owner, p))
        choice = (next((p for p in order if fits(slot, len(members), p)), None)
                  or next((p for p in order if fits(slot, len(members), p, strict=False)), None) or order[0])
        target[slot] = choice
        load[choice] = load.get(choice, 0) + len(members)
        if slot in first:
            first_on.add(choice)
    moves = []
    for slot, members in groups:
        for q in members:
            rows[q]["target"] = target[slot]
        if target[slot] != owner_of_slot(slot):
            moves.append((slot, owner_of_slot(slot), target[slot]))
    return dict(queues=rows, moves=moves, cap=cap)


def plan_on_topology(topology, prefix, queues, placement, owned=None):
    """plan_queue_placement for a gathered cluster (topology.Topology): who serves each slot now (or `owned`:
    primary -> set of slots, when earlier moves are still to finish), the primaries holding slots, and each
    node's shard (a replica stands for its primary, so a pin survives a failover). The one wiring both
    queue_placement.yml (reshard.py, mode queues) and redis_cluster_info's report use."""
    holders = topology.primaries_with_slots()
    if owned is None:
        owned = dict((p, to_set(topology.slots_of(p))) for p in holders)
    owner = dict((slot, p) for p, held in owned.items() for slot in held)
    shard_of = dict((n["name"], topology.primary_of(n["name"])) for n in topology.inventory
                    if topology.primary_of(n["name"]) in holders)
    shard_of.update((p, p) for p in holders)
    return plan_queue_placement(prefix, queues, placement, owner.get, holders, shard_of)


def compensation_moves(moves, owned, keep, counts_before, threshold, out_of_balance):
    """Slots moved back so the queue moves leave the slot balance within `threshold` percent of what each primary
    held before: for each queue slot a primary received, it gives back its highest slot that holds no configured
    queue (`keep`), to the primary that lost one. owned: primary -> set of slots now. Returns [(slot, src, dst)]."""
    after = dict((p, set(s)) for p, s in owned.items())
    for slot, src, dst in moves:
        after[src].discard(slot)
        after.setdefault(dst, set()).add(slot)
    counts = dict((p, len(s)) for p, s in after.items())
    if not out_of_balance(counts, counts_before, threshold):
        return []
    back = []
    for slot, src, dst in moves:
        spare = sorted(s for s in after[dst] if s not in keep)
        if not spare:
            continue
        give = spare[-1]
        after[dst].discard(give)
        after[src].add(give)
        back.append((give, dst, src))
    return back
