# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving hash slots between primaries online, the way Redis Cluster expects: CLUSTER SETSLOT
IMPORTING on the target and MIGRATING on the source, keys with MIGRATE, then SETSLOT NODE on the
target, the source and every other primary. Clients only ever see MOVED/ASK.

What makes it fast (docs/benchmarks.md): a window of many slots is open at once and each step is one
pipelined batch (RedisCli.pipe over resp.py), and source/target pairs move in parallel. What keeps it
safe: a slot with at most atomic_keys keys moves in one Lua script on the source (MOVE_SLOT), so no
client command ever runs while the slot is MIGRATING and still holds keys (in that state Redis 7.2 fails
a script that creates a key it was not given, e.g. BullMQ's job lock, half way through); an interrupted
run leaves open slots that the next run finishes (reshard.open_slot_work); pause_ms / max_keys_per_second
throttle it for production."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hashlib
import json
import os
import threading
import time

from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError
from ansible_collections.shardwise.redis.plugins.module_utils.topology import parse_info


# Run on the source with EVALSHA, so that nothing else runs in between: mark the slot MIGRATING and move
# all its keys (MIGRATE calls of ARGV[9] keys; Lua unpacks at most ~8000 values). A slot with more than
# ARGV[3] keys is left alone ({-1, count}) for the piecewise path. MIGRATING goes first so that a MIGRATE
# error leaves an open slot the next run finishes, never keys on the target of a slot still stable here.
# ARGV: slot, target id, max keys, target host, port, timeout ms, user, password, keys per MIGRATE.
# Returns {keys moved, keys counted} or the error reply of SETSLOT / MIGRATE.
MOVE_SLOT = """-- shardwise.redis migrate.py: move one hash slot atomically
local slot = tonumber(ARGV[1])
local count = redis.call('CLUSTER', 'COUNTKEYSINSLOT', slot)
if count > tonumber(ARGV[3]) then
  return {-1, count}
end
local set = redis.pcall('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ARGV[2])
if type(set) == 'table' and set.err then
  if count == 0 and string.find(set.err, "not the owner", 1, true) then
    return {0, 0}
  end
  return set
end
local moved, per_call = 0, tonumber(ARGV[9])
for _ = 0, math.ceil(count / per_call) do
  local keys = redis.call('CLUSTER', 'GETKEYSINSLOT', slot, per_call)
  if #keys == 0 then
    break
  end
  local reply = redis.pcall('MIGRATE', ARGV[4], ARGV[5], '', 0, ARGV[6], 'REPLACE', 'AUTH2', ARGV[7], ARGV[8],
                            'KEYS', unpack(keys))
  if type(reply) == 'table' and reply.err then
    return reply
  end
  moved = moved + #keys
end
return {moved, count}
"""
MOVE_SLOT_SHA = hashlib.sha1(MOVE_SLOT.encode("utf-8")).hexdigest()
SCRIPT_KEYS_PER_MIGRATE = 1000
# The script authenticates to the target as this user, created on the targets for one move() with a
# random password that exists nowhere else and deleted afterwards: the admin password never appears in
# an EVALSHA argument (SLOWLOG and MONITOR show those). It may only RESTORE-ASKING (what MIGRATE sends).
MIGRATE_USER = "shardwise-migrate"


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
        self._secret = None  # MIGRATE_USER's password during move()

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
        targets = sorted(set(dst for _unused, dst in pairs))
        self._started = self.clock()
        if self.progress:
            self.progress.begin()
        try:
            self._open_targets(targets)
            if self.parallel == 1 or len(work) == 1:
                for (src, dst), slots in work:
                    self._move_pair(src, dst, sorted(slots), primaries, set(owned_by_target))
            else:
                self._in_parallel(work, primaries, set(owned_by_target))
        finally:
            self._close_targets(targets)
            self.seconds += self.clock() - self._started

    def _open_targets(self, targets):
        """MIGRATE_USER on every target, with a password made for this move only (stored hashed)."""
        self._secret = binascii.hexlify(os.urandom(24)).decode("ascii")
        digest = hashlib.sha256(self._secret.encode("ascii")).hexdigest()
        for name in targets:
            self._pipe(name, [["ACL", "SETUSER", MIGRATE_USER, "reset", "on", "#" + digest, "~*",
                               "+select", "+restore-asking"]])

    def _close_targets(self, targets):
        """Delete MIGRATE_USER again. A target that cannot be reached keeps it until site.yml applies the
        ACL file (which deletes users it does not list) or the next move replaces its password."""
        self._secret = None
        for name in targets:
            try:
                self._pipe(name, [["ACL", "DELUSER", MIGRATE_USER]])
            except RedisCliError:
                pass

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
        target = self.nodes[dst]
        # 1. Target imports (skipped where an earlier run got past this step).
        self._pipe(dst, [(["CLUSTER", "SETSLOT", s, "IMPORTING", src_id], ("ERR I'm already the owner",))
                         for s in slots if s not in owned_by_target])
        # 2. Each slot with at most atomic_keys keys: MIGRATING and all its keys moved in one script run,
        #    one EVALSHA per slot, all of a window's pipelined. While the slot is MIGRATING with keys still
        #    here, Redis refuses any command of a script (BullMQ's) that touches a key of that slot it
        #    does not hold, a new one included: that state never exists between two client commands.
        per_call = max(1, min(self.batch_size, SCRIPT_KEYS_PER_MIGRATE))
        replies = self._pipe(src, [["SCRIPT", "LOAD", MOVE_SLOT]] + [
            ["EVALSHA", MOVE_SLOT_SHA, 0, s, dst_id, self.atomic_keys, target["host"], target["port"],
             self.migrate_timeout, MIGRATE_USER, self._secret, per_call] for s in slots])[1:]
        moved = sum(int(r[0]) for r in replies if int(r[0]) > 0)
        if moved:
            self._account(moved)
        # 3. Larger slots (plan time made sure they hold no BullMQ queue): MIGRATING, then pieces of at
        #    most batch_size keys and about batch_bytes. Once MIGRATING, plain commands create new keys on
        #    the target (ASK): the key set here only shrinks.
        pending = [s for s, r in zip(slots, replies) if int(r[0]) < 0]
        if pending:
            self._pipe(src, [(["CLUSTER", "SETSLOT", s, "MIGRATING", dst_id], ("ERR I'm not the owner",))
                             for s in pending])
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
        # 4. Ownership: target first, then source, then every other primary (faster than gossip).
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
        """One MIGRATE per key list, pipelined, as MIGRATE_USER; then the pause and the keys/s cap."""
        commands = [["MIGRATE", target["host"], target["port"], "", 0, self.migrate_timeout, "REPLACE",
                     "AUTH2", MIGRATE_USER, self._secret, "KEYS"] + keys for keys in key_lists]
        for reply in self._pipe(src, commands):
            if reply not in ("OK", "NOKEY"):
                raise RedisCliError("MIGRATE to %s answered %r" % (dst, reply))
        self._account(sum(len(keys) for keys in key_lists))

    def _account(self, keys):
        """Count moved keys; then the pause and the keys/s cap."""
        with self._lock:
            self.keys_moved += keys
            moved = self.keys_moved
        self.pause()
        if self.max_keys_per_second:
            ahead = self._started + moved / float(self.max_keys_per_second) - self.clock()
            if ahead > 0:
                self.sleep(ahead)
