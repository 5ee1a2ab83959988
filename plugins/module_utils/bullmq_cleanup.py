# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory emergency: find primaries above a memory threshold and clean finished BullMQ jobs there
the way BullMQ's own clean does (job hash, logs, dependency keys, deduplication key and the index
entry go together), in small batches with a pause, then trim event streams, MEMORY PURGE and make
sure active defragmentation is on.

Only the `completed` and `failed` sorted sets are read; waiting, active, delayed, prioritized and
waiting-children jobs are never touched. A finished job that its parent still counts as a pending
dependency, whose parent lives in another slot, or that holds a lock is kept (BullMQ would move the
parent on removal; that is a queue operation, not a clean-up).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.redis_cluster import RedisCliError, parse_info

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

HOUR_MS = 3600 * 1000


def memory_of(info_text):
    """INFO memory -> {used, maxmemory, percent} (maxmemory 0 -> the host's memory)."""
    info = parse_info(info_text)
    used = int(info.get("used_memory", 0))
    limit = int(info.get("maxmemory", 0)) or int(info.get("total_system_memory", 0))
    return dict(used=used, maxmemory=limit, percent=round(100.0 * used / limit, 3) if limit else 0.0,
                allocator=info.get("mem_allocator", ""))


def queue_rules(queue, defaults, overrides):
    """Retention for one queue: defaults, then the queue's overrides."""
    rules = dict(defaults)
    rules.update(dict((k, v) for k, v in (overrides.get(queue) or {}).items() if v is not None))
    return rules


def queue_name(base, prefix):
    """'bull:{critical}:critical:' -> 'critical' (the name after the prefix and hash tag)."""
    return base[:-1].rsplit(":", 1)[-1] if base.endswith(":") else base


def discover_queues(cli, node, prefix, count=1000):
    """Job-key bases (`<prefix>:{q}:q:`) of the BullMQ queues stored on `node`, found by SCAN of
    `<prefix>:*:meta` hashes that carry BullMQ's meta fields."""
    bases, cursor = [], "0"
    while True:
        reply = cli.pipe(node["host"], node["port"], [["SCAN", cursor, "MATCH", prefix + ":*:meta", "COUNT", count,
                                                        "TYPE", "hash"]])[0]
        cursor, keys = reply[0], reply[1]
        for key in keys:
            bases.append(key[:-len("meta")])
        if cursor == "0":
            break
    bases = sorted(set(bases))
    if not bases:
        return []
    checks = cli.pipe(node["host"], node["port"], [["HMGET", b + "meta", "version", "opts.maxLenEvents"] for b in bases])
    return [b for b, fields in zip(bases, checks) if any(fields)]


def survey(cli, node, bases, rules_of, now_ms):
    """What a clean-up would remove per queue: {name: {base, completed, failed, events, events_over, rules}}."""
    result = {}
    for base in bases:
        rules = rules_of(base)
        completed_cut = now_ms - int(rules["completed_max_age_hours"] * HOUR_MS)
        failed_cut = now_ms - int(rules["failed_max_age_days"] * 24 * HOUR_MS)
        completed, failed, events = cli.pipe(node["host"], node["port"], [
            ["ZCOUNT", base + "completed", "-inf", completed_cut], ["ZCOUNT", base + "failed", "-inf", failed_cut],
            ["XLEN", base + "events"]])
        result[base] = dict(completed=int(completed), failed=int(failed), events=int(events),
                            events_over=max(0, int(events) - int(rules["events_maxlen"])), rules=rules,
                            completed_cut=completed_cut, failed_cut=failed_cut)
    return result


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


def server_time_ms(cli, node):
    seconds, micros = cli.pipe(node["host"], node["port"], [["TIME"]])[0]
    return int(seconds) * 1000 + int(micros) // 1000


def plan_lines(report):
    """Human lines for one node's report (check mode and applied)."""
    lines = []
    for row in report:
        head = "%s at %.3f%% of maxmemory" % (row["node"], row["before"]["percent"])
        if not row["selected"]:
            lines.append("%s: below the threshold, nothing to do" % head)
            continue
        work = []
        for name, q in sorted(row["queues"].items()):
            parts = []
            if q["completed"]:
                parts.append("%d completed (> %s h)" % (q["completed"], q["rules"]["completed_max_age_hours"]))
            if q["failed"]:
                parts.append("%d failed (> %s d)" % (q["failed"], q["rules"]["failed_max_age_days"]))
            if parts:
                parts = ["remove " + ", ".join(parts)]
            if q["events_over"]:
                parts.append("trim events %d -> %d" % (q["events"], q["rules"]["events_maxlen"]))
            if parts:
                work.append("queue %s: %s" % (name, ", ".join(parts)))
        if row.get("enable_defrag"):
            work.append("CONFIG SET activedefrag yes")
        lines.append("%s: %s" % (head, "; ".join(work) if work else "no finished job old enough"))
    return lines


def memory_lines(rows):
    """used_memory before -> after of the primaries that were cleaned."""
    return ["%s used_memory %d -> %d bytes (%.3f%% -> %.3f%% of maxmemory)"
            % (r["node"], r["before"]["used"], r["after"]["used"], r["before"]["percent"], r["after"]["percent"])
            for r in rows if r["selected"]]


def run_cleanup(cli, primaries, options, sleep, check_mode):
    """Survey every primary; on those at or above the threshold (or all with force) clean up.
    primaries: [{name, host, port}]. options: threshold, force, prefix, defaults, overrides, batch_size,
    pause_ms. Returns (report rows, changed)."""
    rows, changed = [], False
    pause_s = options["pause_ms"] / 1000.0

    def pause():
        if pause_s:
            sleep(pause_s)

    for node in primaries:
        before = memory_of(cli.run(node["host"], node["port"], "INFO", "memory"))
        row = dict(node=node["name"], before=before, after=before, queues={}, selected=False, enable_defrag=False)
        rows.append(row)
        if before["percent"] < options["threshold"] and not options["force"]:
            continue
        row["selected"] = True
        now_ms = server_time_ms(cli, node)
        bases = discover_queues(cli, node, options["prefix"])
        found = survey(cli, node, bases, lambda b: queue_rules(queue_name(b, options["prefix"]), options["defaults"],
                                                               options["overrides"]), now_ms)
        row["queues"] = dict((queue_name(b, options["prefix"]), q) for b, q in found.items())
        defrag = cli.pipe(node["host"], node["port"], [["CONFIG", "GET", "activedefrag"]])[0]
        current = defrag.get("activedefrag") if isinstance(defrag, dict) else (defrag[1] if len(defrag) > 1 else None)
        row["enable_defrag"] = current != "yes"
        work = any(q["completed"] or q["failed"] or q["events_over"] for q in found.values())
        changed = changed or work or row["enable_defrag"]
        if check_mode:
            continue
        for base, q in found.items():
            q["removed_completed"], q["kept_completed"] = clean_set(
                cli, node, base + "completed", base, q["completed_cut"], options["batch_size"], pause) \
                if q["completed"] else (0, 0)
            q["removed_failed"], q["kept_failed"] = clean_set(
                cli, node, base + "failed", base, q["failed_cut"], options["batch_size"], pause) \
                if q["failed"] else (0, 0)
            q["events_trimmed"] = trim_events(cli, node, base + "events", int(q["rules"]["events_maxlen"]),
                                              options["batch_size"] * 10) if q["events_over"] else 0
        if work:
            cli.pipe(node["host"], node["port"], [["MEMORY", "PURGE"]])
        if row["enable_defrag"]:
            try:
                cli.pipe(node["host"], node["port"], [["CONFIG", "SET", "activedefrag", "yes"]])
            except RedisCliError as exc:
                row["defrag_error"] = str(exc)
        row["after"] = memory_of(cli.run(node["host"], node["port"], "INFO", "memory"))
    return rows, changed
