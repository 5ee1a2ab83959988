# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one executor: carries out a list of Action (actions.py) in order, each step waiting until it
has taken effect before the next starts, whichever planner made the list (formation, recovery,
resharding, BullMQ clean-up). Consecutive meets (and forgets) run as one batch, so gossip is awaited
once; so do consecutive replicates of free nodes (no slots, no primary: a new cluster's or a new shard's replicas),
whose syncs then run side by side instead of one after another (each waits repl-diskless-sync-delay, 5 s, so 45
replicas took 4 minutes in turn). Waits read the nodes in parallel. Results of a step (keys moved, jobs removed)
are stored in the action under "result".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.shardwise.redis.plugins.module_utils.actions import render
from ansible_collections.shardwise.redis.plugins.module_utils.availability import good_replicas
from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import clean_set, trim_events
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError, WaitTimeout, Waiter
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import Migrator
from ansible_collections.shardwise.redis.plugins.module_utils.slots import CLUSTER_SLOTS
from ansible_collections.shardwise.redis.plugins.module_utils.topology import (
    GATHER_THREADS, in_sync, myself_id, parse_cluster_nodes, parse_info)

BATCHED = ("meet", "forget")


def parallel(read, names, threads=GATHER_THREADS):
    """name -> read(name) for each of `names`, up to `threads` at once; the first error is raised."""
    names = list(names)
    if len(names) < 2:
        return dict((name, read(name)) for name in names)
    with ThreadPoolExecutor(max_workers=min(threads, len(names))) as pool:
        return dict(zip(names, pool.map(read, names)))


class Executor:
    """cli: RedisCli; waiter: cli.Waiter; topology: the Topology the plan was made from (addresses, ids,
    members; cluster actions need it); nodes: name -> {host, port} when there is no topology (clean-up).
    batch_size, migrate_timeout, slots_per_round, atomic_keys, migrate_options (batch_bytes, parallel,
    max_keys_per_second): MIGRATE tuning (migrate.Migrator); batch_size is also the jobs per clean-up call.
    progress: a migrate.Progress told after each window of moved slots. pause_ms: throttle after each MIGRATE round or clean-up batch."""

    def __init__(self, cli, waiter, topology=None, nodes=None, batch_size=100, migrate_timeout=10000,
                 slots_per_round=1024, pause_ms=0, atomic_keys=10000, progress=None, migrate_options=None):
        self.cli = cli
        self.topology = topology
        self.nodes = nodes if nodes is not None else topology.by_name
        self.waiter = waiter
        self.batch_size = batch_size
        self.pause = (lambda: waiter.pause(pause_ms / 1000.0)) if pause_ms else (lambda: None)
        self.primaries = topology.primaries_with_slots() if topology else []
        self.migrator = Migrator(cli, self.nodes, dict(topology.id_of) if topology else {}, batch_size,
                                 migrate_timeout, slots_per_round, self.pause, atomic_keys, progress,
                                 sleep=waiter.sleep, **(migrate_options or {}))

    # -- helpers
    def _run(self, name, *args):
        node = self.nodes[name]
        return self.cli.run(node["host"], node["port"], *args)

    def _pipe(self, name, commands):
        node = self.nodes[name]
        return self.cli.pipe(node["host"], node["port"], commands)

    def _read(self, name, *args):
        """A read whose reply is one text (CLUSTER NODES / INFO, INFO): native when the cli is."""
        node = self.nodes[name]
        return self.cli.read(node["host"], node["port"], *args)

    def view(self, name):
        return parse_cluster_nodes(self._read(name, "CLUSTER", "NODES"))

    def views(self, names):
        """name -> view, the nodes read in parallel."""
        return parallel(self.view, names)

    def me(self, name):
        return [n for n in self.view(name) if n["myself"]][0]

    # -- the loop
    def run(self, actions):
        """Carry out `actions` in order. Returns the rendered lines of the actions done."""
        done, i = [], 0
        while i < len(actions):
            op = actions[i]["op"]
            batch = [actions[i]]
            if op in BATCHED or (op == "replicate" and self._free(actions[i])):
                while i + len(batch) < len(actions) and actions[i + len(batch)]["op"] == op and (
                        op in BATCHED or self._free(actions[i + len(batch)])):
                    batch.append(actions[i + len(batch)])
                getattr(self, "_" + op + ("" if op in BATCHED else "_batch"))(batch)
            else:
                getattr(self, "_" + op)(actions[i])
            done += [render(a) for a in batch]
            i += len(batch)
        return done

    # -- cluster membership
    def _meet(self, meets):
        """CLUSTER MEET each node through its `via` (all of one via's in one pipeline), then wait until the new nodes, the nodes they were
        met through and every reachable member know each other (no handshake left)."""
        by_via = {}
        for a in meets:  # one pipeline per node met through (at 90 nodes: 89 redis-cli processes before)
            by_via.setdefault(a["via"], []).append(["CLUSTER", "MEET", a["host"], a["port"]])
        for via in sorted(by_via):
            self._pipe(via, by_via[via])
        members = [n for n in self.topology.members() if n in self.topology.myself]
        involved = sorted(set([a["via"] for a in meets] + [a["node"] for a in meets] + members))

        def all_know_each_other():
            views = self.views(involved)
            if any(n["handshake"] for view in views.values() for n in view):
                return False
            ids = set(n["id"] for view in views.values() for n in view if n["myself"])
            return all(set(n["id"] for n in view) >= ids for view in views.values())
        self.waiter.until(all_know_each_other, "nodes %s to know each other" % ", ".join(involved))

    def _forget(self, forgets):
        """CLUSTER FORGET each node on every other reachable node (not on the ones being forgotten:
        a replica refuses to forget its primary), then CLUSTER RESET SOFT on those that asked for it so
        that they stop gossiping, both within the 60 s forget ban."""
        names = set(a["node"] for a in forgets)
        for a in forgets:
            for other in self.topology.inventory:
                if other["name"] in names or other["name"] not in self.topology.myself:
                    continue
                self._pipe(other["name"], [(["CLUSTER", "FORGET", a["node_id"]], ("ERR Unknown node",))])
        for a in forgets:
            if a.get("reset"):
                self._pipe(a["node"], [["CLUSTER", "RESET", "SOFT"]])

    # -- slots and roles
    def _addslots(self, a):
        self._run(a["node"], "CLUSTER", "ADDSLOTSRANGE", a["first"], a["last"])

    def _free(self, a):
        """Does the action's node serve nobody (no slots, no primary) in the plan's topology? Replicating such
        nodes takes no replica away from any shard, so they may all start at once."""
        return bool(self.topology) and a["node"] in self.topology.free_nodes()

    def _replicate(self, a):
        self._replicate_batch([a])

    def _replicate_batch(self, batch):
        """CLUSTER REPLICATE once the node knows the primary as a primary (holding slots unless
        require_slots is false: a new shard's primary gets its replica before its slots); then wait
        until it follows it and its sync has finished (only then does it protect the shard). A batch
        (free nodes only, see run) does each step for all its nodes, then waits for all of them."""
        primaries = sorted(set(a["primary"] for a in batch))
        ids = parallel(lambda p: myself_id(self._read(p, "CLUSTER", "NODES")), primaries)
        want = dict((a["node"], (ids[a["primary"]], a.get("require_slots", True))) for a in batch)
        names = [a["node"] for a in batch]

        def knows(name, view):
            primary_id, require_slots = want[name]
            return any(n["id"] == primary_id and n["role"] == "primary" and not n["handshake"]
                       and (n["slot_count"] > 0 or not require_slots) for n in view)
        self._until_each(names, lambda name: knows(name, self.view(name)), lambda pending: (
            "%s to learn that %s is a primary%s" % (
                ", ".join(pending), ", ".join(sorted(set(a["primary"] for a in batch if a["node"] in pending))),
                " holding slots" if any(want[n][1] for n in pending) else "")))
        for a in batch:
            self._run(a["node"], "CLUSTER", "REPLICATE", want[a["node"]][0])
        self._until_each(names, lambda name: [n for n in self.view(name) if n["myself"]][0]["primary_id"] == want[name][0],
                         lambda pending: "%s to replicate %s" % (", ".join(pending), ", ".join(
                             a["primary"] for a in batch if a["node"] in pending)))
        self._until_each(names, lambda name: in_sync(parse_info(self._read(name, "INFO", "replication"))),
                         lambda pending: "%s to finish its sync from %s" % (", ".join(pending), ", ".join(
                             a["primary"] for a in batch if a["node"] in pending)))

    def _until_each(self, names, check, what):
        """Wait until check(name) holds for every one of `names` (read in parallel; the ones done are not
        asked again). what(pending) names the wait on timeout."""
        pending = list(names)

        def one(name):
            try:
                return bool(check(name))
            except RedisCliError:
                return False

        def done():
            answers = parallel(one, pending)
            pending[:] = [name for name in pending if not answers[name]]
            return not pending
        self.waiter.until(done, _Pending(what, pending))

    def _failover(self, a):
        self._run(a["node"], "CLUSTER", "FAILOVER", a["mode"])
        self._await_primary(a["node"])

    def _failover_zone(self, a):
        # Coordinated: the replica catches up with its primary first, so no acknowledged write is lost.
        self._run(a["node"], "CLUSTER", "FAILOVER")
        self._await_primary(a["node"])

    def _handover(self, a):
        """Coordinated CLUSTER FAILOVER so that `primary` can restart: the replica waits for the primary's
        offset and takes over (a manual failover gives up after 5 s, so it is asked again every 15 s);
        then the old primary must see itself as a replica, or its restart would still be a failover."""
        name, old = a["node"], a["primary"]
        retry = Waiter(min(15, self.waiter.timeout), self.waiter.sleep, self.waiter.clock, self.waiter.interval)
        deadline = self.waiter.clock() + self.waiter.timeout
        while True:
            self._run(name, "CLUSTER", "FAILOVER")
            try:
                retry.until(lambda: self.me(name)["role"] == "primary" and self.me(name)["slot_count"] > 0,
                            "%s to take over from %s" % (name, old))
                break
            except WaitTimeout:
                if self.waiter.clock() >= deadline:
                    raise
        self.waiter.until(lambda: self.me(old)["role"] == "replica", "%s to follow %s as a replica" % (old, name))

    def _await_primary(self, name):
        self.waiter.until(lambda: self.me(name)["role"] == "primary" and self.me(name)["slot_count"] > 0,
                          "%s to become primary" % name)

    def _new_shard(self, a):
        """A new shard takes slots only once its nodes have the whole slot map (before that they answer
        CLUSTERDOWN, also to MIGRATE) and, with min-replicas-to-write, once its primary counts its
        replicas as good (it refuses writes, and MIGRATE into it, until then)."""
        for name in [a["node"]] + list(a["replicas"]):
            self.waiter.until(lambda n=name: parse_info(self._run(n, "CLUSTER", "INFO")).get("cluster_state") == "ok",
                              "%s to report cluster_state:ok" % name)
        wanted = len(a["replicas"])
        self.waiter.until(lambda: good_replicas(parse_info(self._run(a["node"], "INFO", "replication"))) >= wanted,
                          "%d replica(s) of %s to be in sync" % (wanted, a["node"]))
        if a["node"] not in self.primaries:
            self.primaries.append(a["node"])

    def _move(self, a):
        before = (self.migrator.slots_moved, self.migrator.keys_moved)
        self.migrator.move([(s, a["node"], a["target"]) for s in a["slots"]], self.primaries,
                           owned_by_target=a.get("owned", ()))
        a["result"] = dict(slots=self.migrator.slots_moved - before[0], keys=self.migrator.keys_moved - before[1])

    # -- BullMQ clean-up
    def _clean(self, a):
        removed, kept = clean_set(self.cli, self.nodes[a["node"]], a["base"] + a["set"], a["base"], a["cutoff"],
                                  self.batch_size, self.pause)
        a["result"] = dict(removed=removed, kept=kept)

    def _trim(self, a):
        a["result"] = dict(trimmed=trim_events(self.cli, self.nodes[a["node"]], a["key"], a["maxlen"],
                                               self.batch_size * 10))

    def _purge(self, a):
        self._pipe(a["node"], [["MEMORY", "PURGE"]])

    def _defrag(self, a):
        # Builds without jemalloc refuse it: noted in the result, not fatal (the clean-up already freed memory).
        try:
            self._pipe(a["node"], [["CONFIG", "SET", "activedefrag", "yes"]])
        except RedisCliError as exc:
            a["result"] = dict(error=str(exc))

    def moved(self):
        m = self.migrator
        return dict(slots_moved=m.slots_moved, keys_moved=m.keys_moved, seconds=round(m.seconds, 3),
                    keys_per_second=int(m.keys_moved / m.seconds) if m.seconds else 0)


class _Pending:
    """The name of a wait over several nodes, made when it is printed: what(the nodes still pending)."""

    def __init__(self, what, pending):
        self.what, self.pending = what, pending

    def __str__(self):
        return self.what(self.pending)


def wait_healthy(cli, inventory, waiter):
    """Every node reports cluster_state:ok and sees all 16384 slots (the nodes read in parallel)."""
    def ok(node):
        info = parse_info(cli.read(node["host"], node["port"], "CLUSTER", "INFO"))
        return info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == str(CLUSTER_SLOTS)

    def healthy():
        by_name = dict((node["name"], node) for node in inventory)
        return all(parallel(lambda name: ok(by_name[name]), by_name).values())
    waiter.until(healthy, "cluster_state:ok on every node")
