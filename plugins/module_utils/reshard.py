# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Online resharding: add shards from free inventory hosts, drain shards for removal, balance
slots (optionally weighted), finish migrations an interrupted run left open. The planner is pure
and returns Action lists; the executor moves slots with migrate.Migrator (clients only ever see
MOVED/ASK redirects). run() is what the redis_cluster_reshard module does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action, render_all
from ansible_collections.shardwise.redis.plugins.module_utils.availability import zone_majorities
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, Stopped, WaitTimeout
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor, wait_healthy
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import Progress
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError, plan_layout
from ansible_collections.shardwise.redis.plugins.module_utils.queue_placement import compensation_moves, plan_on_topology
from ansible_collections.shardwise.redis.plugins.module_utils.slots import CLUSTER_SLOTS, to_set
from ansible_collections.shardwise.redis.plugins.module_utils.topology import check_meets, gather, parse_info


# ---------------------------------------------------------------- planning

def balance_targets(primaries, counts, weights=None):
    """Slots each primary should hold: 16384 split by weight (default 1; 0 = drain), remainders
    to the largest fractions, ties to the primary that holds more now, then by name (stable:
    a balanced cluster gets the same targets again)."""
    weights = dict(weights or {})
    for name, weight in weights.items():
        if weight < 0:
            raise PlacementError("weight of %s is %s: weights must be >= 0" % (name, weight))
    w = {p: float(weights.get(p, 1.0)) for p in primaries}
    total = sum(w.values())
    if total <= 0:
        raise PlacementError("every primary has weight 0: at least one must keep slots")
    exact = {p: CLUSTER_SLOTS * w[p] / total for p in primaries}
    targets = {p: int(exact[p]) for p in primaries}
    left = CLUSTER_SLOTS - sum(targets.values())
    order = sorted(primaries, key=lambda p: (-(exact[p] - targets[p]), -counts.get(p, 0), p))
    for p in order[:left]:
        targets[p] += 1
    return targets


def out_of_balance(counts, targets, threshold):
    """Primaries whose slot count is off its target by more than `threshold` percent (any node
    that must be emptied or that holds nothing yet always counts)."""
    off = []
    for p, target in sorted(targets.items()):
        have = counts.get(p, 0)
        if have == target:
            continue
        if target == 0 or have == 0 or abs(have - target) * 100.0 / target > threshold:
            off.append(p)
    return off


def plan_moves(owned, targets):
    """[(slot, source, target)] that bring each primary to its target slot count. Donors give
    their highest slots (ranges stay contiguous); receivers are filled in order of need."""
    counts = {p: len(s) for p, s in owned.items()}
    donors = sorted((p for p in owned if counts[p] > targets.get(p, 0)),
                    key=lambda p: (-(counts[p] - targets.get(p, 0)), p))
    receivers = sorted((p for p in targets if targets[p] > counts.get(p, 0)),
                       key=lambda p: (-(targets[p] - counts.get(p, 0)), p))
    give = []
    for donor in donors:
        surplus = counts[donor] - targets.get(donor, 0)
        give += [(slot, donor) for slot in sorted(owned[donor])[-surplus:]]
    moves = []
    for receiver in receivers:
        need = targets[receiver] - counts.get(receiver, 0)
        taken, give = give[:need], give[need:]
        moves += [(slot, donor, receiver) for slot, donor in sorted(taken)]
    return moves


def open_slot_work(topology):
    """Migrations an interrupted run left open -> [(slot, source, target)], or PlacementError when
    one cannot be finished safely (a peer outside the inventory or not answering)."""
    owner = {}
    for name in topology.myself:
        for slot in to_set(topology.slots_of(name)):
            owner.setdefault(slot, name)
    work = {}
    for item in topology.open_slots():
        slot, node, peer = item["slot"], item["node"], item["peer"]
        if peer not in topology.by_name:
            raise PlacementError("slot %d is %s on %s with peer %s, which is not an inventory node: put it "
                                 "back in the inventory or run CLUSTER SETSLOT %d STABLE on %s after checking "
                                 "where its keys are" % (slot, item["state"], node, peer, slot, node))
        source, target = (node, peer) if item["state"] == "migrating" else (peer, node)
        if owner.get(slot) not in (source, target):
            raise PlacementError("slot %d is %s on %s but owned by %s: resolve it by hand (CLUSTER SETSLOT %d "
                                 "STABLE on %s, then move its keys)" % (slot, item["state"], node,
                                                                        owner.get(slot), slot, node))
        if target not in topology.myself or source not in topology.myself:
            raise PlacementError("slot %d is migrating between %s and %s and one of them does not answer: "
                                 "bring it back first (failover_recovery.yml)" % (slot, source, target))
        work[slot] = (slot, source, target)
    return [work[s] for s in sorted(work)]


def plan_reshard(topology, mode="add", remove=(), weights=None, threshold=2.0, replicas=1, allow_zone_majority=False,
                 slots=(), target=None, queues=None):
    """What an add/remove/balance run does. Returns {actions, targets {primary: slots}}; the actions, in
    order: move (resume: open slots an interrupted run left), meet (new hosts), replicate (their
    replicas), new_shard (ready for slots), move, forget (drained hosts, then CLUSTER RESET).
    Raises PlacementError (or RedisCliError for unreachable nodes) when it cannot act safely, also when
    the run would leave a zone holding half or more of the primaries (unless allow_zone_majority)."""
    if topology.unreachable:
        raise RedisCliError("nodes %s did not answer over TLS with the admin user: every inventory node must "
                            "answer before slots move (new hosts: run playbooks/site.yml first, it installs "
                            "them and leaves them out of the cluster)" % ", ".join(topology.unreachable))
    failed = topology.failed_nodes()
    if failed:
        raise PlacementError("nodes %s are flagged failing: heal the cluster first (playbooks/failover_recovery.yml)"
                             % ", ".join(failed))
    plan = dict(resume=open_slot_work(topology), meet=[], shards=[], replicate=[], moves=[], forget=[],
                targets={})
    covered = topology.covered_slots() | {s for s, _unused1, _unused2 in plan["resume"]}
    if len(covered) != CLUSTER_SLOTS:
        raise PlacementError("%d of %d slots are covered: finish forming the cluster (playbooks/site.yml) "
                             "before resharding" % (len(covered), CLUSTER_SLOTS))
    holders = topology.primaries_with_slots()
    members = set(topology.members())
    unknown = [n for n in remove if n not in topology.by_name]
    if unknown:
        raise PlacementError("redis_remove_hosts names %s, which are not in the inventory group: list "
                             "inventory hostnames" % ", ".join(unknown))
    primaries = list(holders)
    if mode == "add":
        free = topology.free_nodes()
        # Shards an interrupted run already formed: an empty primary that has its replicas.
        followers = dict((n, [r["name"] for r in topology.inventory if topology.primary_of(r["name"]) == n])
                         for n in free)
        for name in [n for n in free if followers[n] and n in members]:
            plan["shards"].append(dict(primary=name, replicas=followers[name], resumed=True))
            primaries.append(name)
            free.remove(name)
        if free:
            zones = {n: topology.zone_of[n] for n in free}
            try:
                # Pairs new hosts only: the cluster-wide primary spread is checked by the health report.
                shards = plan_layout(zones, replicas=replicas, min_primaries=1, allow_zone_majority=True)
            except PlacementError as exc:
                raise PlacementError("new hosts %s cannot form shards: %s" % (", ".join(free), exc))
            plan["shards"] += [dict(primary=s["primary"], replicas=list(s["replicas"])) for s in shards]
            _check_zone_spread(topology, holders, primaries + [s["primary"] for s in shards], allow_zone_majority)
            plan["meet"] = [n for n in free if n not in members]
            for shard in shards:
                primaries.append(shard["primary"])
                plan["replicate"] += [(r, shard["primary"]) for r in shard["replicas"]]
    elif mode == "remove":
        removed = set(remove)
        for name in remove:
            if name not in members and name not in topology.myself:
                continue
            if name in holders:
                keep = [n["name"] for n in topology.inventory if topology.primary_of(n["name"]) == name
                        and n["name"] not in removed]
                if keep:
                    raise PlacementError("%s is a primary and its replicas %s are not being removed: remove whole "
                                         "shards (add them to redis_remove_hosts) or move them first"
                                         % (name, ", ".join(keep)))
        primaries = [p for p in holders if p not in removed]
        if len(primaries) < 3:
            raise PlacementError("removing %s leaves %d primaries; a cluster needs at least 3 to elect "
                                 "failovers" % (", ".join(remove), len(primaries)))
        _check_zone_spread(topology, holders, primaries, allow_zone_majority)
        plan["forget"] = [n for n in remove if n in members]
        weights = dict(weights or {})
        weights.update((n, 0) for n in remove if n in holders)
        primaries = holders
    elif mode == "move":
        return _plan_slot_moves(topology, plan, slots, target)
    elif mode == "queues":
        return _plan_queue_moves(topology, plan, queues or {}, threshold)
    elif mode != "balance":
        raise PlacementError("mode must be add, remove, balance, move or queues, got %r" % mode)
    # Balance over the primaries as they will be once the resume work and the new shards are in.
    owned = {p: set(to_set(topology.slots_of(p))) for p in primaries}
    for slot, src, dst in plan["resume"]:
        for p in owned:
            owned[p].discard(slot)
        owned.setdefault(dst, set()).add(slot)
    counts = {p: len(s) for p, s in owned.items()}
    targets = balance_targets(primaries, counts, weights)
    plan["targets"] = targets
    if out_of_balance(counts, targets, threshold):
        plan["moves"] = plan_moves(owned, targets)
    return dict(actions=_actions(plan, topology), targets=targets)


def _plan_slot_moves(topology, plan, slots, target):
    """mode=move: the given slots go to `target` (a primary that holds slots), whoever owns them now."""
    holders = topology.primaries_with_slots()
    if target not in holders:
        raise PlacementError("target %s is not a primary holding slots (primaries: %s): name one of them, or add "
                             "a shard first (playbooks/add_shard.yml)" % (target, ", ".join(holders)))
    owned = dict((p, to_set(topology.slots_of(p))) for p in holders)
    owner = dict((slot, p) for p in holders for slot in owned[p])
    resumed = set(s for s, _unused1, _unused2 in plan["resume"])
    plan["moves"] = [(s, owner[s], target) for s in slots if s not in resumed and owner.get(s) not in (None, target)]
    for slot, src, dst in plan["resume"] + plan["moves"]:
        for held in owned.values():
            held.discard(slot)
        owned.setdefault(dst, set()).add(slot)
    return dict(actions=_actions(plan, topology), targets=dict((p, len(s)) for p, s in owned.items()))


def _plan_queue_moves(topology, plan, queues, threshold):
    """mode=queues: each BullMQ queue's slot to the primary queue_placement chooses (queues: {prefix, names,
    placement}), then slots without a queue moved back where the balance would leave the threshold."""
    holders = topology.primaries_with_slots()
    owned = dict((p, set(to_set(topology.slots_of(p)))) for p in holders)
    for slot, src, dst in plan["resume"]:
        for held in owned.values():
            held.discard(slot)
        owned.setdefault(dst, set()).add(slot)
    placed = plan_on_topology(topology, queues.get("prefix", "bull"), list(queues.get("names", [])),
                              queues.get("placement") or {}, owned)
    keep = set(row["slot"] for row in placed["queues"].values())
    counts = dict((p, len(held)) for p, held in owned.items())
    plan["moves"] = placed["moves"] + compensation_moves(placed["moves"], owned, keep, counts, threshold, out_of_balance)
    for slot, src, dst in plan["moves"]:
        owned[src].discard(slot)
        owned[dst].add(slot)
    return dict(actions=_actions(plan, topology), targets=dict((p, len(s)) for p, s in owned.items()),
                queues=placed["queues"])


def group_moves(moves):
    """[(slot, src, dst)] -> [(src, dst, [slots])] per pair, in a stable order."""
    pairs = {}
    for slot, src, dst in moves:
        pairs.setdefault((src, dst), []).append(slot)
    return [(src, dst, sorted(slots)) for (src, dst), slots in sorted(pairs.items())]


def _actions(plan, topology):
    inv, zones = topology.by_name, topology.zone_of
    actions = [Action("move", src, target=dst, slots=slots, resume=True,
                      owned=sorted(set(slots) & to_set(topology.slots_of(dst))))
               for src, dst, slots in group_moves(plan["resume"])]
    via = topology.primaries_with_slots()[0]
    actions += [Action("meet", n, via=via, host=inv[n]["host"], port=inv[n]["port"]) for n in plan["meet"]]
    actions += [Action("replicate", r, primary=p, require_slots=False) for r, p in plan["replicate"]]
    actions += [Action("new_shard", s["primary"], replicas=list(s["replicas"]), resumed=bool(s.get("resumed")),
                       zones=dict((n, zones[n]) for n in [s["primary"]] + list(s["replicas"])))
                for s in plan["shards"]]
    actions += [Action("move", src, target=dst, slots=slots) for src, dst, slots in group_moves(plan["moves"])]
    actions += [Action("forget", n, node_id=topology.id_of[n], reset=True) for n in plan["forget"]]
    return check_meets(topology, actions)


def moves_of(actions, resume=None):
    """[(slot, src, dst)] of the move actions (only resumed ones, or only new ones, with resume=True/False)."""
    return [(slot, a["node"], a["target"]) for a in actions if a["op"] == "move"
            and (resume is None or bool(a.get("resume")) == resume) for slot in a["slots"]]


def _check_zone_spread(topology, before, after, allow_zone_majority):
    """Refuse a run that leaves a zone holding half or more of the primaries (it was not so before)."""
    crowded = zone_majorities(after, topology.zone_of)
    if crowded and not allow_zone_majority and not zone_majorities(before, topology.zone_of):
        zone, held, total = crowded[0]
        raise PlacementError(
            "after this run zone %s would hold %d of %d primaries: losing that zone would leave no majority "
            "to elect replacements. Add or remove shards in groups that keep every zone below half of the "
            "primaries (with three zones: three shards at a time, one primary per zone), or set "
            "redis_cluster_allow_zone_majority: true to accept that" % (zone, held, total))


def memory_check(actions, topology, memory, limit_percent):
    """Receiving primaries must stay under `limit_percent` of maxmemory once their slots arrive.
    memory: name -> INFO memory text. Estimate: the donor's dataset bytes per slot x slots moved.
    Returns [{node, used, incoming, maxmemory, percent}] and raises PlacementError when over."""
    info = {n: parse_info(t) for n, t in memory.items()}
    per_slot = {}
    for name, data in info.items():
        slots = sum(b - a + 1 for a, b in topology.slots_of(name))
        used = int(data.get("used_memory_dataset", data.get("used_memory", 0)))
        per_slot[name] = used / float(slots) if slots else 0.0
    incoming = {}
    for slot, src, dst in moves_of(actions):
        incoming[dst] = incoming.get(dst, 0.0) + per_slot.get(src, 0.0)
    rows, over = [], []
    for dst, extra in sorted(incoming.items()):
        data = info.get(dst, {})
        limit = int(data.get("maxmemory", 0)) or int(data.get("total_system_memory", 0))
        used = int(data.get("used_memory", 0))
        percent = round(100.0 * (used + extra) / limit, 1) if limit else 0.0
        rows.append(dict(node=dst, used=used, incoming=int(extra), maxmemory=limit, percent=percent))
        if limit and percent > limit_percent:
            over.append("%s would reach %.1f%% of %d bytes (%d used + ~%d incoming)"
                        % (dst, percent, limit, used, extra))
    if over:
        raise PlacementError("not enough memory headroom on the receiving side (limit %s%%): %s; add more "
                             "shards, free memory (playbooks/memory_emergency.yml) or raise "
                             "redis_reshard_max_memory_percent" % (limit_percent, "; ".join(over)))
    return rows


def split_queue_slots(cli, topology, actions, atomic_keys, prefix):
    """Slots the moves would have to split over several MIGRATE calls (more than atomic_keys keys) that hold
    BullMQ keys (<prefix>:...): BullMQ's scripts read job keys they were not given, and one running while
    its queue is half moved aborts half done. Returns ["slot S (N keys, queue Q, on NODE)"]."""
    found = []
    for source in sorted(set(a["node"] for a in actions if a["op"] == "move")):
        slots = sorted(s for a in actions if a["op"] == "move" and a["node"] == source for s in a["slots"])
        node = topology.by_name[source]
        counts = cli.pipe(node["host"], node["port"], [["CLUSTER", "COUNTKEYSINSLOT", s] for s in slots])
        big = [(s, int(n)) for s, n in zip(slots, counts) if int(n) > atomic_keys]
        samples = cli.pipe(node["host"], node["port"], [["CLUSTER", "GETKEYSINSLOT", s, 20] for s, _unused in big])
        for (slot, n), keys in zip(big, samples):
            queues = sorted(set(k.split("{", 1)[1].split("}", 1)[0] for k in keys if k.startswith(prefix + ":{")))
            if queues:
                found.append("slot %d (%d keys, queue %s, on %s)" % (slot, n, ", ".join(queues), source))
    return found


def run(cli, inventory, waiter, options, check_mode=False, diff=False):
    """What redis_cluster_reshard does: gather, plan (options: mode, remove, weights, threshold, replicas,
    allow_zone_majority), check the receivers' memory headroom (max_memory_percent) and that no BullMQ
    queue's slot would move in pieces (atomic_slot_keys, bullmq_prefix), then unless check_mode move
    (batch_size, migrate_timeout, slots_per_round, pause_ms) and wait for cluster_state:ok. Returns the
    module result; raises Stopped with the result so far."""
    topology = gather(cli, inventory)
    before = topology.summary()
    result = dict(changed=False, plan=[], targets={}, memory=[], progress=[],
                  moved=dict(slots_moved=0, keys_moved=0, seconds=0, keys_per_second=0),
                  before=before, after=before)
    try:
        unknown = sorted(set(options["weights"]) - set(topology.by_name))
        if unknown:
            raise PlacementError("weights name %s, which are not inventory nodes" % ", ".join(unknown))
        plan = plan_reshard(topology, mode=options["mode"], remove=options["remove"], weights=options["weights"],
                            threshold=options["threshold"], replicas=options["replicas"],
                            allow_zone_majority=options["allow_zone_majority"],
                            slots=options.get("slots", ()), target=options.get("target"),
                            queues=dict(prefix=options["bullmq_prefix"], names=options.get("bullmq_queues") or [],
                                        placement=options.get("queue_placement") or {}))
        actions = plan["actions"]
        result.update(plan=render_all(actions), targets=plan["targets"], changed=bool(actions))
        if "queues" in plan:
            result["queues"] = plan["queues"]
        receivers = set(dst for _unused1, _unused2, dst in moves_of(actions))
        memory = dict((n, cli.run(topology.by_name[n]["host"], topology.by_name[n]["port"], "INFO", "memory"))
                      for n in receivers | set(topology.primaries_with_slots()))
        result["memory"] = memory_check(actions, topology, memory, options["max_memory_percent"])
        split = split_queue_slots(cli, topology, actions, options["atomic_slot_keys"], options["bullmq_prefix"])
        if split:
            raise PlacementError(
                "%s would move in several MIGRATE calls, and a BullMQ script running in between could see its queue "
                "half moved and stop half done. Set redis_reshard_atomic_slot_keys to at least the largest count "
                "(the source serves nothing else while such a slot moves: about 1 s per 100,000 small keys), or "
                "run this when those queues are smaller (memory_emergency.yml cleans finished jobs)" % "; ".join(split))
    except (PlacementError, RedisCliError) as exc:
        raise Stopped(str(exc), result)
    if diff:
        result["diff"] = dict(before=dict((k, v["slots"]) for k, v in before["nodes"].items()),
                              after=dict(targets=plan["targets"], plan=result["plan"]))
    if check_mode or not actions:
        return result
    forgotten = set(a["node"] for a in actions if a["op"] == "forget")
    progress = Progress(len(moves_of(actions)), options.get("progress_path"))
    executor = Executor(cli, waiter, topology, batch_size=options["batch_size"], pause_ms=options["pause_ms"],
                        migrate_timeout=options["migrate_timeout"], slots_per_round=options["slots_per_round"],
                        atomic_keys=options["atomic_slot_keys"], progress=progress,
                        migrate_options=dict((k, options[k]) for k in ("batch_bytes", "parallel", "max_keys_per_second")
                                             if k in options))
    try:
        executor.run(actions)
        wait_healthy(cli, [n for n in inventory if n["name"] not in forgotten], waiter)
    except (RedisCliError, WaitTimeout, PlacementError) as exc:
        result.update(moved=executor.moved(), progress=progress.entries)
        raise Stopped("%s (re-run to continue: open slots are finished and the plan is recomputed)" % exc, result)
    result.update(moved=executor.moved(), progress=progress.entries)
    if progress.error:
        result["warnings"] = [progress.error]
    result["after"] = gather(cli, inventory).summary()
    return result
