# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving hash slots between primaries online, the way Redis Cluster expects: CLUSTER SETSLOT
IMPORTING on the target and MIGRATING on the source, keys with MIGRATE in batches, then SETSLOT
NODE on the target, the source and every other primary. Clients only ever see MOVED/ASK. All
commands go through RedisCli.pipe (many per redis-cli process, the AUTH2 secret on stdin)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Migrator:
    """Moves slots between primaries with MIGRATE. `cli` is a RedisCli; `nodes` name -> {host, port, ...}."""

    def __init__(self, cli, nodes, ids, batch_size=100, migrate_timeout=10000, slots_per_round=128,
                 pause=None, atomic_keys=10000):
        self.cli = cli
        self.nodes = nodes
        self.ids = ids  # name -> cluster node id
        self.batch_size = batch_size
        self.migrate_timeout = migrate_timeout
        self.slots_per_round = slots_per_round
        self.pause = pause or (lambda: None)
        self.atomic_keys = atomic_keys  # slots with at most this many keys move in one MIGRATE
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
        # 2. Keys move. A slot with at most atomic_keys keys moves in one MIGRATE: while it runs the source
        #    serves nothing else, so no script (BullMQ's Lua reads job keys it was not given) ever sees the
        #    slot half moved. Once the slot is MIGRATING, new keys are created on the target (ASK), so the
        #    slot's key set only shrinks. Larger slots (plan time made sure they hold no BullMQ queue) and
        #    whatever is left move in batches of batch_size.
        target = self.nodes[dst]
        counts = self._pipe(src, [["CLUSTER", "COUNTKEYSINSLOT", s] for s in slots])
        whole = [(s, int(n)) for s, n in zip(slots, counts) if 0 < int(n) <= self.atomic_keys]
        if whole:
            found = self._pipe(src, [["CLUSTER", "GETKEYSINSLOT", s, n] for s, n in whole])
            self._migrate(src, dst, target, [keys for keys in found if keys])
            self.pause()
        pending = [s for s, n in zip(slots, counts) if int(n) > self.atomic_keys]
        while pending:
            found = self._pipe(src, [["CLUSTER", "GETKEYSINSLOT", s, self.batch_size] for s in pending])
            batch = [(s, keys) for s, keys in zip(pending, found) if keys]
            if not batch:
                break
            self._migrate(src, dst, target, [keys for _, keys in batch])
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

    def _migrate(self, src, dst, target, key_lists):
        """One MIGRATE per key list (pipelined), the AUTH2 secret on stdin."""
        commands = [["MIGRATE", target["host"], target["port"], "", 0, self.migrate_timeout, "REPLACE"]
                    + self.cli.auth_args() + ["KEYS"] + keys for keys in key_lists]
        for reply in self._pipe(src, commands):
            if reply not in ("OK", "NOKEY"):
                raise RedisCliError("MIGRATE to %s answered %r" % (dst, reply))
        self.keys_moved += sum(len(keys) for keys in key_lists)
