# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BullMQ's key layout in cluster mode, shared by queue depths (redis_cluster_info) and the memory
clean-up (bullmq_cleanup.py plans it, executor.py runs clean_set and trim_events). A queue `q` under
prefix `p` keeps every key under `p:{q}:q:`: the queue name in braces is the hash tag, so all of a
queue's keys live in one slot, as BullMQ's Lua scripts need."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError
from ansible_collections.shardwise.redis.plugins.module_utils.slots import slot_of

# One batch: at most ARGV[3] jobs of KEYS[1] (a finished set) scored at or below ARGV[2] (ms), after
# skipping ARGV[4] kept ones. Returns {fetched, removed, kept}. Runs in milliseconds for 100 jobs.
CLEAN_BATCH = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', tonumber(ARGV[4]), tonumber(ARGV[3]))
local base = ARGV[1]
local tag = string.match(base, '{[^}]*}')
local removed, kept = {}, 0
for _, id in ipairs(ids) do
  local jobKey = base .. id
  local attrs = redis.call('HMGET', jobKey, 'parentKey', 'deid')
  local keep = redis.call('EXISTS', jobKey .. ':lock') == 1
  if attrs[1] and not keep then
    if tag == nil or string.match(attrs[1], '{[^}]*}') ~= tag then
      keep = true
    elseif redis.call('SISMEMBER', attrs[1] .. ':dependencies', jobKey) == 1 then
      keep = true
    end
  end
  if keep then
    kept = kept + 1
  else
    if attrs[2] and redis.call('GET', base .. 'de:' .. attrs[2]) == id then
      redis.call('DEL', base .. 'de:' .. attrs[2], base .. 'dn:' .. attrs[2])
    end
    redis.call('DEL', jobKey, jobKey .. ':logs', jobKey .. ':dependencies', jobKey .. ':processed',
      jobKey .. ':failed', jobKey .. ':unsuccessful')
    removed[#removed + 1] = id
  end
end
if #removed > 0 then
  redis.call('ZREM', KEYS[1], unpack(removed))
end
return {#ids, #removed, kept}
"""

# Job states and the key type holding them.
LIST_STATES = ("wait", "active", "paused")
ZSET_STATES = ("delayed", "prioritized", "waiting-children", "completed", "failed")
# The sets a clean-up may shrink: jobs that are finished.
FINISHED_STATES = ("completed", "failed")


def queue_base(prefix, queue):
    """Key base of a queue (job ids and state names follow it). BullMQ keys are <prefix>:<queue name>:<type>,
    and in cluster mode the hash tag sits in one of the two:
    - in the queue name, as most Node.js apps do (prefix bull, queue '{critical}'): 'bull:{critical}:';
    - in the prefix (prefix 'bull:{critical}', queue 'critical', as the Python tests here do):
      'bull:{critical}:critical:'.
    A configured name with braces is taken as the first kind, a plain name as the second."""
    if "{" in queue and "}" in queue.split("{", 1)[1]:
        return "%s:%s:" % (prefix, queue)
    return "%s:{%s}:%s:" % (prefix, queue, queue)


def queue_key(prefix, queue, suffix):
    """A BullMQ key of `queue`, e.g. queue_key('bull', 'critical', 'wait')."""
    return queue_base(prefix, queue) + suffix


def queue_name(base):
    """'bull:{critical}:critical:' -> 'critical', 'bull:{critical}:' -> '{critical}' (queue_base's inverse)."""
    return base[:-1].rsplit(":", 1)[-1] if base.endswith(":") else base


def queue_slot(prefix, queue):
    """The hash slot every key of the queue lives in."""
    return slot_of(queue_base(prefix, queue))


def discover_queues(cli, node, prefix, count=1000):
    """Key bases of the BullMQ queues stored on `node`, found by SCAN of `<prefix>:*:meta` hashes that
    carry BullMQ's meta fields."""
    bases, cursor = [], "0"
    while True:
        reply = cli.pipe(node["host"], node["port"], [["SCAN", cursor, "MATCH", prefix + ":*:meta", "COUNT", count,
                                                       "TYPE", "hash"]])[0]
        cursor, keys = reply[0], reply[1]
        bases += [key[:-len("meta")] for key in keys]
        if cursor == "0":
            break
    bases = sorted(set(bases))
    if not bases:
        return []
    checks = cli.pipe(node["host"], node["port"], [["HMGET", b + "meta", "version", "opts.maxLenEvents"] for b in bases])
    return [b for b, fields in zip(bases, checks) if any(fields)]


def queue_depths(cli, topology, prefix, queues):
    """Jobs per queue and state, read from the primary that owns the queue's slot (one pipe per queue)."""
    result = {}
    for queue in queues:
        slot = queue_slot(prefix, queue)
        owner = next((s["primary"] for s in topology.shards() if any(a <= slot <= b for a, b in s["slots"])), None)
        if owner is None:
            raise RedisCliError("slot %d of queue %s is not served by any primary" % (slot, queue))
        node = topology.by_name[owner]
        commands = [["LLEN", queue_key(prefix, queue, state)] for state in LIST_STATES]
        commands += [["ZCARD", queue_key(prefix, queue, state)] for state in ZSET_STATES]
        replies = cli.pipe(node["host"], node["port"], commands)
        result[queue] = dict((state, int(n)) for state, n in zip(LIST_STATES + ZSET_STATES, replies))
    return result


# ---------------------------------------------------------------- clean-up primitives (executor.py runs them)

def clean_set(cli, node, key, base, cutoff, batch, pause):
    """Remove finished jobs of `key` scored <= cutoff in batches. Returns (removed, kept)."""
    removed = kept = 0
    while True:
        fetched, gone, held = [int(x) for x in cli.pipe(node["host"], node["port"], [
            ["EVAL", CLEAN_BATCH, 1, key, base, cutoff, batch, kept]])[0]]
        removed += gone
        kept += held
        if fetched < batch:
            return removed, kept
        pause()


def trim_events(cli, node, key, maxlen, step):
    """Trim a stream to exactly `maxlen` entries, at most `step` entries per call. Returns trimmed."""
    trimmed = 0
    while True:
        length = int(cli.pipe(node["host"], node["port"], [["XLEN", key]])[0])
        if length <= maxlen:
            return trimmed
        trimmed += int(cli.pipe(node["host"], node["port"], [["XTRIM", key, "MAXLEN", max(maxlen, length - step)]])[0])
