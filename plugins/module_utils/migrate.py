# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving hash slots between primaries online, the way Redis Cluster expects: CLUSTER SETSLOT
IMPORTING on the target and MIGRATING on the source, keys with MIGRATE, then SETSLOT NODE on the
target, the source and every other primary. Clients only ever see MOVED/ASK.

What makes it fast (docs/benchmarks.md): a window of many slots is open at once and each step is one
pipelined batch (RedisCli.pipe over resp.py), whole slots share MIGRATE calls sized by bytes, and
source/target pairs move in parallel. What keeps it safe: a slot with at most atomic_keys keys moves in
one MIGRATE, an interrupted run leaves open slots that the next run finishes (reshard.open_slot_work),
and pause_ms / max_keys_per_second throttle it for production."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading
import time

from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError
from ansible_collections.shardwise.redis.plugins.module_utils.topology import parse_info


class Progress:
    """Slots done / total, keys moved, rate and ETA after each round of moves: kept as a list and, when
    `path` is set, appended to that file one JSON line at a time (an operator follows it with tail -f)."""

    def __init__(self, total, path=None, clock=time.time):
        self.total, self.path, self.clock = total, path, clock
        self.entries = []
        self.started = None
        self.error = None  # a progress file that cannot be written never stops the move
        self._write("w", "")

    def begin(self):
        if self.started is None:
            self.started = self.clock()

    def __call__(self, slots_done, keys_moved):
        self.begin()
        elapsed = max(self.clock() - self.started, 1e-6)
        rate = slots_done / elapsed
        entry = dict(t=round(elapsed, 3), slots_done=slots_done, slots_total=self.total, keys_moved=keys_moved,
                     keys_per_second=int(keys_moved / elapsed),
                     eta_seconds=round((self.total - slots_done) / rate, 1) if rate else None)
        self.entries.append(entry)
        self._write("a", json.dumps(entry, sort_keys=True) + "\n")

    def _write(self, mode, text):
        if not self.path or self.error:
            return
        try:
            with open(self.path, mode) as fh:
                fh.write(text)
        except (IOError, OSError) as exc:
            self.error = "progress file %s: %s" % (self.path, exc)


class Migrator:
    """Moves slots between primaries with MIGRATE. `cli` is a RedisCli; `nodes` name -> {host, port, ...};
    `ids` name -> cluster node id.

    slots_per_round and window_keys bound a window (slots open at once per pair, keys they hold);
    slots larger than atomic_keys move in pieces of at most batch_size keys and about batch_bytes (by the
    source's average key size); parallel is the number of source/target
    pairs that move at once; pause (a function) runs after each MIGRATE batch; max_keys_per_second
    (0: no cap) throttles; progress (a Progress) hears after each window."""

    def __init__(self, cli, nodes, ids, batch_size=1000, migrate_timeout=10000, slots_per_round=1024,
                 pause=None, atomic_keys=10000, progress=None, clock=time.time, sleep=time.sleep,
                 batch_bytes=4 * 1024 * 1024, window_keys=100000, parallel=4, max_keys_per_second=0):
        self.cli = cli
        self.nodes = nodes
        self.ids = ids  # name -> cluster node id
        self.batch_size = batch_size
        self.migrate_timeout = migrate_timeout
        self.slots_per_round = slots_per_round
        self.pause = pause or (lambda: None)
        self.atomic_keys = atomic_keys  # slots with at most this many keys move in one MIGRATE
        self.batch_bytes = batch_bytes
        self.window_keys = window_keys
        self.parallel = max(1, parallel)
        self.max_keys_per_second = max_keys_per_second
        self.progress = progress
        self.clock, self.sleep = clock, sleep
        self.keys_moved = 0
        self.slots_moved = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._started = None

    def _pipe(self, name, commands):
        node = self.nodes[name]
        return self.cli.pipe(node["host"], node["port"], commands)

    def move(self, moves, primaries, owned_by_target=()):
        """Move [(slot, src, dst)]: up to `parallel` source/target pairs at once, each in windows.
        owned_by_target: slots the target already owns (resume after SETSLOT NODE on the target)."""
        pairs = {}
        for slot, src, dst in moves:
            pairs.setdefault((src, dst), []).append(slot)
        work = sorted(pairs.items())
        self._started = self.clock()
        if self.progress:
            self.progress.begin()
        try:
            if self.parallel == 1 or len(work) == 1:
                for (src, dst), slots in work:
                    self._move_pair(src, dst, sorted(slots), primaries, set(owned_by_target))
            else:
                self._in_parallel(work, primaries, set(owned_by_target))
        finally:
            self.seconds += self.clock() - self._started

    def _in_parallel(self, work, primaries, owned_by_target):
        queue, errors = list(work), []

        def worker():
            while not errors:
                with self._lock:
                    if not queue:
                        return
                    (src, dst), slots = queue.pop(0)
                try:
                    self._move_pair(src, dst, sorted(slots), primaries, owned_by_target)
                except Exception as exc:  # noqa: BLE001 - handed to the caller's thread below
                    errors.append(exc)
        threads = [threading.Thread(target=worker) for _unused in range(min(self.parallel, len(work)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _move_pair(self, src, dst, slots, primaries, owned_by_target):
        counts = self._pipe(src, [["CLUSTER", "COUNTKEYSINSLOT", s] for s in slots])
        for window in self._windows(slots, counts):
            self._move_window(src, dst, window, primaries, owned_by_target)
            if self.progress:
                with self._lock:
                    self.progress(self.slots_moved, self.keys_moved)

    def _windows(self, slots, counts):
        window, keys = [], 0
        for slot, n in zip(slots, counts):
            n = min(int(n), self.atomic_keys + 1)
            if window and (len(window) >= self.slots_per_round or keys + n > self.window_keys):
                yield window
                window, keys = [], 0
            window.append(slot)
            keys += n
        if window:
            yield window

    def _bytes_per_key(self, src):
        """Average bytes per key on the source (dataset memory / keys), to size MIGRATE calls by bytes."""
        info = self._pipe(src, [["INFO", "memory"], ["DBSIZE"]])
        keys = int(info[1] or 0)
        dataset = int(parse_info(str(info[0])).get("used_memory_dataset") or 0)
        return max(1, dataset // keys) if keys else 1

    def _move_window(self, src, dst, slots, primaries, owned_by_target):
        src_id, dst_id = self.ids[src], self.ids[dst]
        # 1. Target imports, source migrates (skipped where an earlier run got past this step). Once a
        #    slot is MIGRATING, new keys are created on the target (ASK): its key set on the source only
        #    shrinks, so the count taken now bounds it.
        self._pipe(dst, [(["CLUSTER", "SETSLOT", s, "IMPORTING", src_id], ("ERR I'm already the owner",))
                         for s in slots if s not in owned_by_target])
        replies = self._pipe(src, [(["CLUSTER", "SETSLOT", s, "MIGRATING", dst_id], ("ERR I'm not the owner",))
                                   for s in slots] + [["CLUSTER", "COUNTKEYSINSLOT", s] for s in slots])
        counts = [int(n) for n in replies[len(slots):]]
        # 2. Keys move. A slot with at most atomic_keys keys moves in one MIGRATE: while it runs the source
        #    serves nothing else, so no script (BullMQ's Lua reads job keys it was not given) ever sees the
        #    slot half moved. MIGRATE refuses keys of several slots (CROSSSLOT): one call per slot, all of a
        #    window's calls pipelined. Larger slots (plan time made sure they hold no BullMQ queue) move in
        #    pieces of at most batch_size keys and about batch_bytes.
        target = self.nodes[dst]
        whole = [(s, n) for s, n in zip(slots, counts) if 0 < n <= self.atomic_keys]
        if whole:
            found = self._pipe(src, [["CLUSTER", "GETKEYSINSLOT", s, n] for s, n in whole])
            self._migrate(src, dst, target, [keys for keys in found if keys])
        pending = [s for s, n in zip(slots, counts) if n > self.atomic_keys]
        piece = max(1, min(self.batch_size, self.batch_bytes // self._bytes_per_key(src))) if pending else 0
        while pending:
            found = self._pipe(src, [["CLUSTER", "GETKEYSINSLOT", s, piece] for s in pending])
            batch = [(s, keys) for s, keys in zip(pending, found) if keys]
            if not batch:
                break
            self._migrate(src, dst, target, [keys for _unused, keys in batch])
            pending = [s for s, keys in batch if len(keys) >= piece]
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
        with self._lock:
            self.slots_moved += len(slots)

    def _migrate(self, src, dst, target, key_lists):
        """One MIGRATE per key list, pipelined, the AUTH2 secret inside the connection; then the pause and
        the keys/s cap."""
        commands = [["MIGRATE", target["host"], target["port"], "", 0, self.migrate_timeout, "REPLACE"]
                    + self.cli.auth_args() + ["KEYS"] + keys for keys in key_lists]
        for reply in self._pipe(src, commands):
            if reply not in ("OK", "NOKEY"):
                raise RedisCliError("MIGRATE to %s answered %r" % (dst, reply))
        with self._lock:
            self.keys_moved += sum(len(keys) for keys in key_lists)
            moved = self.keys_moved
        self.pause()
        if self.max_keys_per_second:
            ahead = self._started + moved / float(self.max_keys_per_second) - self.clock()
            if ahead > 0:
                self.sleep(ahead)
