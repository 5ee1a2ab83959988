# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Online resharding: add shards from free inventory hosts, drain shards for removal, balance
slots (optionally weighted), finish migrations an interrupted run left open.

Slots move the way Redis Cluster expects (CLUSTER SETSLOT IMPORTING / MIGRATING, keys with MIGRATE
in batches, then SETSLOT NODE on the target, the source and every other primary), so a client
only ever sees MOVED/ASK redirects. The planner is pure; the executor talks through RedisCli.pipe
(many commands per redis-cli process, secrets on stdin).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.availability import zone_majorities
from ansible_collections.shardwise.redis.plugins.module_utils.placement import (
    CLUSTER_SLOTS, PlacementError, plan_layout)
from ansible_collections.shardwise.redis.plugins.module_utils.redis_cluster import (
    RedisCliError, _ranges, _slot_set, meet, parse_info, replicate, wait_until)


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


def group_moves(moves):
    """[(slot, src, dst)] -> [{source, target, ranges, slots}] per pair, for the plan text."""
    pairs = {}
    for slot, src, dst in moves:
        pairs.setdefault((src, dst), []).append(slot)
    return [dict(source=src, target=dst, slots=len(slots), ranges=["%d-%d" % r for r in _ranges(slots)])
            for (src, dst), slots in sorted(pairs.items())]


def open_slot_work(topology):
    """Migrations an interrupted run left open -> [(slot, source, target)], or PlacementError when
    one cannot be finished safely (a peer outside the inventory or not answering)."""
    owner = {}
    for name in topology.myself:
        for slot in _slot_set(topology.slots_of(name)):
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


def plan_reshard(topology, mode="add", remove=(), weights=None, threshold=2.0, replicas=1, allow_zone_majority=False):
    """What an add/remove/balance run does. Returns a dict:
    resume [(slot, src, dst)], meet [names], shards [{primary, replicas}], replicate [(replica, primary)],
    moves [(slot, src, dst)], forget [names], targets {primary: slots}, notes [str].
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
                targets={}, notes=[])
    covered = topology.covered_slots() | {s for s, _, _ in plan["resume"]}
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
        spare = topology.free_nodes()
        # Shards an interrupted run already formed: an empty primary that has its replicas.
        followers = dict((n, [r["name"] for r in topology.inventory if topology.primary_of(r["name"]) == n])
                         for n in spare)
        for name in [n for n in spare if followers[n] and n in members]:
            plan["shards"].append(dict(primary=name, replicas=followers[name], resumed=True))
            primaries.append(name)
            spare.remove(name)
        if spare:
            zones = {n: topology.zone_of[n] for n in spare}
            try:
                # Pairs new hosts only: the cluster-wide primary spread is checked by the health report.
                shards = plan_layout(zones, replicas=replicas, min_primaries=1, allow_zone_majority=True)
            except PlacementError as exc:
                raise PlacementError("new hosts %s cannot form shards: %s" % (", ".join(spare), exc))
            plan["shards"] += [dict(primary=s["primary"], replicas=list(s["replicas"])) for s in shards]
            _check_zone_spread(topology, holders, primaries + [s["primary"] for s in shards], allow_zone_majority)
            plan["meet"] = [n for n in spare if n not in members]
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
    elif mode != "balance":
        raise PlacementError("mode must be add, remove or balance, got %r" % mode)
    # Balance over the primaries as they will be once the resume work and the new shards are in.
    owned = {p: set(_slot_set(topology.slots_of(p))) for p in primaries}
    for slot, src, dst in plan["resume"]:
        for p in owned:
            owned[p].discard(slot)
        owned.setdefault(dst, set()).add(slot)
    counts = {p: len(s) for p, s in owned.items()}
    targets = balance_targets(primaries, counts, weights)
    plan["targets"] = targets
    if out_of_balance(counts, targets, threshold):
        plan["moves"] = plan_moves(owned, targets)
    return plan


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


def plan_lines(plan, topology):
    """The plan as the lines check mode prints."""
    lines = ["FINISH %d open slot(s) %s -> %s: %s (left open by an interrupted run)"
             % (g["slots"], g["source"], g["target"], " ".join(g["ranges"])) for g in group_moves(plan["resume"])]
    lines += ["CLUSTER MEET %s %s (%s joins)" % (topology.by_name[n]["host"], topology.by_name[n]["port"], n)
              for n in plan["meet"]]
    lines += ["NEW SHARD primary %s@%s replicas %s%s" % (
        s["primary"], topology.zone_of[s["primary"]],
        ", ".join("%s@%s" % (r, topology.zone_of[r]) for r in s["replicas"]) or "none",
        " (formed by an earlier run)" if s.get("resumed") else "") for s in plan["shards"]]
    lines += ["CLUSTER REPLICATE %s on %s" % (p, r) for r, p in plan["replicate"]]
    lines += ["MOVE %d slot(s) %s -> %s: %s" % (g["slots"], g["source"], g["target"], " ".join(g["ranges"]))
              for g in group_moves(plan["moves"])]
    lines += ["CLUSTER FORGET %s on every node, then CLUSTER RESET on it" % n for n in plan["forget"]]
    return lines


def memory_check(plan, topology, memory, limit_percent):
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
    for slot, src, dst in plan["resume"] + plan["moves"]:
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


# ---------------------------------------------------------------- applying

def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Migrator:
    """Moves slots between primaries with MIGRATE. `cli` is a RedisCli; `nodes` name -> {host, port, ...}."""

    def __init__(self, cli, nodes, ids, batch_size=100, migrate_timeout=10000, slots_per_round=128,
                 pause=None):
        self.cli = cli
        self.nodes = nodes
        self.ids = ids  # name -> cluster node id
        self.batch_size = batch_size
        self.migrate_timeout = migrate_timeout
        self.slots_per_round = slots_per_round
        self.pause = pause or (lambda: None)
        self.keys_moved = 0
        self.slots_moved = 0

    def _pipe(self, name, commands):
        node = self.nodes[name]
        return self.cli.pipe(node["host"], node["port"], commands)

    def move(self, moves, primaries, owned_by_target=()):
        """Move [(slot, src, dst)] in rounds of `slots_per_round` slots per source/target pair.
        owned_by_target: slots the target already owns (resume after SETSLOT NODE on the target)."""
        pairs = {}
        for slot, src, dst in moves:
            pairs.setdefault((src, dst), []).append(slot)
        for (src, dst), slots in sorted(pairs.items()):
            for chunk in _chunks(sorted(slots), self.slots_per_round):
                self._move_chunk(src, dst, chunk, primaries, set(owned_by_target))

    def _move_chunk(self, src, dst, slots, primaries, owned_by_target):
        src_id, dst_id = self.ids[src], self.ids[dst]
        # 1. Target imports, source migrates (skipped where an earlier run got past this step).
        self._pipe(dst, [(["CLUSTER", "SETSLOT", s, "IMPORTING", src_id], ("ERR I'm already the owner",))
                         for s in slots if s not in owned_by_target])
        self._pipe(src, [(["CLUSTER", "SETSLOT", s, "MIGRATING", dst_id], ("ERR I'm not the owner",))
                         for s in slots])
        # 2. Keys move in batches until the source has none left in these slots.
        pending = list(slots)
        target = self.nodes[dst]
        while pending:
            found = self._pipe(src, [["CLUSTER", "GETKEYSINSLOT", s, self.batch_size] for s in pending])
            batch = [(s, keys) for s, keys in zip(pending, found) if keys]
            if not batch:
                break
            commands = [["MIGRATE", target["host"], target["port"], "", 0, self.migrate_timeout, "REPLACE"]
                        + self.cli.auth_args() + ["KEYS"] + keys for _, keys in batch]
            for reply in self._pipe(src, commands):
                if reply not in ("OK", "NOKEY"):
                    raise RedisCliError("MIGRATE to %s answered %r" % (dst, reply))
            self.keys_moved += sum(len(keys) for _, keys in batch)
            pending = [s for s, keys in batch if len(keys) >= self.batch_size]
            self.pause()
        # Keys written through ASK during the move are on the target already; check none is left.
        left = self._pipe(src, [["CLUSTER", "COUNTKEYSINSLOT", s] for s in slots])
        if any(left):
            raise RedisCliError("%s still holds keys in slots %s after MIGRATE: re-run to continue"
                                % (src, ",".join(str(s) for s, n in zip(slots, left) if n)))
        # 3. Ownership: target first, then source, then every other primary (faster than gossip).
        setnode = [["CLUSTER", "SETSLOT", s, "NODE", dst_id] for s in slots]
        self._pipe(dst, setnode)
        # A source that gave away its last slot may already follow the target (replica migration on).
        self._pipe(src, [(c, ("ERR Please use SETSLOT only with masters",)) for c in setnode])
        for other in primaries:
            if other not in (src, dst):
                self._pipe(other, [(c, ("ERR",)) for c in setnode])
        self.slots_moved += len(slots)


def forget_nodes(cli, topology, names):
    """CLUSTER FORGET each node on every other reachable node, then CLUSTER RESET SOFT on the node
    itself so that it stops gossiping (both within the 60 s forget ban)."""
    for name in names:
        node_id = topology.id_of[name]
        for other in topology.inventory:
            if other["name"] in names or other["name"] not in topology.myself:
                continue
            cli.pipe(other["host"], other["port"], [(["CLUSTER", "FORGET", node_id], ("ERR Unknown node",))])
    for name in names:
        node = topology.by_name[name]
        cli.pipe(node["host"], node["port"], [["CLUSTER", "RESET", "SOFT"]])


def apply_reshard(cli, topology, plan, options, sleep, clock):
    """Carry out a plan_reshard() plan. options: batch_size, migrate_timeout, slots_per_round,
    pause_ms, wait_timeout. Returns a dict of counts."""
    inv = topology.by_name
    pause_s = options.get("pause_ms", 0) / 1000.0
    migrator = Migrator(cli, inv, topology.id_of, options["batch_size"], options["migrate_timeout"],
                        options["slots_per_round"], pause=(lambda: sleep(pause_s)) if pause_s else None)
    primaries = topology.primaries_with_slots()
    timeout = options["wait_timeout"]
    # 1. Finish open migrations.
    if plan["resume"]:
        owned = set()
        for slot, _, dst in plan["resume"]:
            if slot in _slot_set(topology.slots_of(dst)):
                owned.add(slot)
        migrator.move(plan["resume"], primaries, owned_by_target=owned)
    # 2. New nodes join (every node must know them before slots name them as owner).
    joins = [dict(op="meet", node=n, via=primaries[0], args=[inv[n]["host"], inv[n]["port"]]) for n in plan["meet"]]
    meet(cli, topology, joins, timeout, sleep, clock)
    for name in [n for s in plan["shards"] for n in [s["primary"]] + s["replicas"]]:
        # A node that just joined answers CLUSTERDOWN (also to MIGRATE) until it has the whole slot map.
        node = inv[name]
        wait_until(lambda n=node: parse_info(cli.run(n["host"], n["port"], "CLUSTER", "INFO")).get("cluster_state") == "ok",
                   timeout, sleep, clock, "%s to report cluster_state:ok" % name)
    # 3. New primaries get their replicas first (their slots arrive replicated), then slots move.
    for replica, primary in plan["replicate"]:
        replicate(cli, inv[replica], inv[primary], primary, timeout, sleep, clock, require_slots=False)
    for shard in plan["shards"]:
        # With min-replicas-to-write the new primary refuses writes (and MIGRATE into it) until its
        # replicas are in sync and acknowledging.
        wanted = len(shard["replicas"])
        node = inv[shard["primary"]]
        wait_until(lambda n=node, w=wanted: good_replicas(cli.run(n["host"], n["port"], "INFO", "replication")) >= w,
                   timeout, sleep, clock, "%d replica(s) of %s to be in sync" % (wanted, shard["primary"]))
    new_primaries = [s["primary"] for s in plan["shards"]]
    migrator.move(plan["moves"], primaries + new_primaries)
    # 4. Drained nodes leave.
    if plan["forget"]:
        forget_nodes(cli, topology, plan["forget"])
    return dict(slots_moved=migrator.slots_moved, keys_moved=migrator.keys_moved)


def good_replicas(info_text):
    """Replicas online per INFO replication (the min_slaves_good_slaves count when it is reported)."""
    info = parse_info(info_text)
    online = sum(1 for k, v in info.items() if k.startswith("slave") and k[5:].isdigit() and "state=online" in v)
    if "min_slaves_good_slaves" in info:
        return min(online, int(info["min_slaves_good_slaves"]))
    return online
