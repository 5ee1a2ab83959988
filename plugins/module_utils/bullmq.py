# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BullMQ's key layout in cluster mode, shared by the queue report (redis_cluster_info), queue placement and the memory
clean-up (bullmq_cleanup.py plans it, executor.py runs clean_set and trim_events). A queue `q` under
prefix `p` keeps every key under `p:{q}:q:`: the queue name in braces is the hash tag, so all of a
queue's keys live in one slot, as BullMQ's Lua scripts need."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

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


def _tagged(text):
    return "{" in text and "}" in text.split("{", 1)[1][1:]


def queue_base(prefix, queue):
    """Key base of a queue (job ids and state names follow it). BullMQ keys are <prefix>:<queue name>:<type>,
    and in cluster mode the hash tag sits in one of the two:
    - in the queue name, as most Node.js apps do (prefix bull, queue '{critical}'): 'bull:{critical}:';
    - in the prefix (prefix 'bull:{critical}', queue 'critical', as the Python tests here do):
      'bull:{critical}:critical:'.
    A configured name with braces is taken as the first kind; with a plain name and a plain prefix (the
    collection's redis_bullmq_prefix) the name is the tag in the prefix, as in the second kind."""
    if _tagged(queue) or _tagged(prefix):
        return "%s:%s:" % (prefix, queue)
    return "%s:{%s}:%s:" % (prefix, queue, queue)


def hash_tag(key):
    """The part of `key` Redis hashes: the first non-empty {...}, else the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1:end] if start >= 0 and end > start + 1 else key


def queue_name_problems(prefix, queues):
    """What BullMQ or Redis Cluster would refuse in these names, each message naming the fix."""
    problems = []
    if not isinstance(prefix, str) or not prefix or prefix.endswith(":"):
        problems.append("the BullMQ prefix %r must be a non-empty string that does not end with ':'" % (prefix,))
    for queue in queues:
        if not isinstance(queue, str) or not queue:
            problems.append("queue name %r must be a non-empty string" % (queue,))
        elif ":" in queue:
            problems.append("queue %r: BullMQ refuses ':' in queue names (Queue name cannot contain :); put a "
                            "grouping in the prefix instead" % queue)
        elif not re.match(r"^[^{}]*(\{[^{}]+\}[^{}]*)?$", queue):
            problems.append("queue %r: an empty, unbalanced or second hash tag; write one {name} or a plain name" % queue)
        elif re.search(r"[\s*?\[\]]", queue):
            problems.append("queue %r: spaces and glob characters (* ? [ ]) break BullMQ's key patterns; use letters, "
                            "digits, '-', '_' or '.'" % queue)
    if isinstance(prefix, str) and _tagged(prefix) and len(queues) > 1:
        problems.append("the prefix %r holds a hash tag, so every queue under it lands in one slot: put the tag in "
                        "each queue's name or prefix instead" % prefix)
    return problems


def queue_where(prefix, queue, shards=None, zone_of=None):
    """Where queue `queue` under `prefix` lives: {queue, key_base, hash_tag, slot} and, given the cluster's
    shards ([{primary, zone, replicas, slots: [(first, last)]}]) , the primary, its zone and its replicas."""
    base = queue_base(prefix, queue)
    row = dict(queue=queue, prefix=prefix, key_base=base, hash_tag=hash_tag(base), slot=slot_of(base))
    if shards is not None:
        shard = next((s for s in shards if any(a <= row["slot"] <= b for a, b in s["slots"])), None)
        zone_of = zone_of or {}
        row.update(primary=shard["primary"] if shard else None, zone=shard["zone"] if shard else None,
                   replicas=[dict(name=r, zone=zone_of.get(r)) for r in (shard["replicas"] if shard else [])])
    return row


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


def queue_report(cli, topology, prefix, queues, samples=10):
    """Per queue: where it lives (queue_where) and what it holds, read from its primary in one pipe: jobs per
    state, the keys in its slot, and their memory estimated from MEMORY USAGE of up to `samples` of them."""
    shards = topology.shards()
    result = {}
    for queue in queues:
        row = queue_where(prefix, queue, shards, topology.zone_of)
        result[queue] = row
        if row["primary"] is None:
            row["problem"] = "slot %d is not served by any primary" % row["slot"]
            continue
        node = topology.by_name[row["primary"]]
        commands = [["LLEN", queue_key(prefix, queue, state)] for state in LIST_STATES]
        commands += [["ZCARD", queue_key(prefix, queue, state)] for state in ZSET_STATES]
        commands += [["CLUSTER", "COUNTKEYSINSLOT", row["slot"]], ["CLUSTER", "GETKEYSINSLOT", row["slot"], samples]]
        replies = cli.pipe(node["host"], node["port"], commands)
        row["depth"] = dict((state, int(n)) for state, n in zip(LIST_STATES + ZSET_STATES, replies))
        row["jobs"] = sum(row["depth"].values())
        row["keys_in_slot"] = int(replies[-2])
        sample = list(replies[-1] or [])
        sizes = [int(n) for n in cli.pipe(node["host"], node["port"], [["MEMORY", "USAGE", k, "SAMPLES", 5] for k in sample])
                 if n is not None] if sample else []
        row["memory_bytes"] = int(sum(sizes) * row["keys_in_slot"] / len(sizes)) if sizes else 0
        row["memory_sampled_keys"] = len(sizes)
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
