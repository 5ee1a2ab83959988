# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Memory emergency: find primaries above a memory threshold and plan the clean-up of finished
BullMQ jobs there the way BullMQ's own clean does (job hash, logs, dependency keys, deduplication key
and the index entry go together, bullmq.CLEAN_BATCH), in small batches with a pause, then trim event
streams, MEMORY PURGE and make sure active defragmentation is on.

Only the `completed` and `failed` sorted sets are read; waiting, active, delayed, prioritized and
waiting-children jobs are never touched. A finished job that its parent still counts as a pending
dependency, whose parent lives in another slot, or that holds a lock is kept (BullMQ would move the
parent on removal; that is a queue operation, not a clean-up).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.shardwise.redis.plugins.module_utils.actions import Action, render_all
from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import discover_queues, queue_name
from ansible_collections.shardwise.redis.plugins.module_utils.executor import Executor
from ansible_collections.shardwise.redis.plugins.module_utils.topology import parse_info

HOUR_MS = 3600 * 1000
RULES = ("completed_max_age_hours", "failed_max_age_days", "events_maxlen")


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


def survey(cli, node, bases, rules_of, now_ms):
    """What a clean-up would remove per queue base: {base: {completed, failed, events, events_over, rules,
    completed_cut, failed_cut}}."""
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


def server_time_ms(cli, node):
    seconds, micros = cli.pipe(node["host"], node["port"], [["TIME"]])[0]
    return int(seconds) * 1000 + int(micros) // 1000


def queue_actions(node, base, q):
    """The clean-up actions of one queue on one primary (survey() row q)."""
    name, rules, actions = queue_name(base), q["rules"], []
    if q["completed"]:
        actions.append(Action("clean", node, queue=name, set="completed", count=q["completed"], base=base,
                              cutoff=q["completed_cut"], older_than="%s h" % rules["completed_max_age_hours"]))
    if q["failed"]:
        actions.append(Action("clean", node, queue=name, set="failed", count=q["failed"], base=base,
                              cutoff=q["failed_cut"], older_than="%s d" % rules["failed_max_age_days"]))
    if q["events_over"]:
        actions.append(Action("trim", node, queue=name, key=base + "events", length=q["events"],
                              maxlen=int(rules["events_maxlen"])))
    return actions


def plan_cleanup(cli, primaries, options):
    """Survey every primary (reads only). primaries: [{name, host, port}]. options: threshold, force,
    prefix, defaults, overrides. Returns (rows, actions): one row per primary {node, before, after,
    selected, queues} and the actions for those at or above the threshold (all of them with force).
    Raises ValueError when an override names a queue that exists on no primary (a typo would otherwise
    silently fall back to the defaults)."""
    rows, actions = [], []
    queues_on = dict((node["name"], discover_queues(cli, node, options["prefix"])) for node in primaries)
    existing = sorted(set(queue_name(b) for bases in queues_on.values() for b in bases))
    unknown = sorted(set(options["overrides"]) - set(existing))
    if unknown:
        raise ValueError("redis_bullmq_queue_retention names %s, but no BullMQ queue of that name exists under the "
                         "prefix %s (queues found: %s): correct the queue name or redis_bullmq_prefix"
                         % (", ".join(unknown), options["prefix"], ", ".join(existing) or "none"))
    for node in primaries:
        before = memory_of(cli.run(node["host"], node["port"], "INFO", "memory"))
        row = dict(node=node["name"], before=before, after=before, queues={}, selected=False)
        rows.append(row)
        if before["percent"] < options["threshold"] and not options["force"]:
            continue
        row["selected"] = True
        bases = queues_on[node["name"]]
        found = survey(cli, node, bases, lambda b: queue_rules(queue_name(b), options["defaults"], options["overrides"]),
                       server_time_ms(cli, node))
        row["queues"] = dict((queue_name(b), dict((k, v) for k, v in q.items() if not k.endswith("_cut")))
                             for b, q in found.items())
        work = [a for base, q in sorted(found.items()) for a in queue_actions(node["name"], base, q)]
        if work:
            work.append(Action("purge", node["name"]))
        defrag = cli.pipe(node["host"], node["port"], [["CONFIG", "GET", "activedefrag"]])[0]
        current = defrag.get("activedefrag") if isinstance(defrag, dict) else (defrag[1] if len(defrag) > 1 else None)
        if current != "yes":
            work.append(Action("defrag", node["name"]))
        actions += work
    return rows, actions


def record(rows, actions):
    """Fold the executor's results (jobs removed and kept, events trimmed, defrag errors) into the rows."""
    by_node = dict((r["node"], r) for r in rows)
    for row in rows:
        for q in row["queues"].values():
            for key in ("removed_completed", "kept_completed", "removed_failed", "kept_failed", "events_trimmed"):
                q.setdefault(key, 0)
    for a in actions:
        result, row = a.get("result"), by_node[a["node"]]
        if result is None:
            continue
        if a["op"] == "clean":
            q = row["queues"][a["queue"]]
            q["removed_" + a["set"]], q["kept_" + a["set"]] = result["removed"], result["kept"]
        elif a["op"] == "trim":
            row["queues"][a["queue"]]["events_trimmed"] = result["trimmed"]
        elif a["op"] == "defrag":
            row["defrag_error"] = result["error"]


def status_lines(rows, actions, applied):
    """One line per primary: below the threshold, nothing old enough, or memory before -> after."""
    busy = set(a["node"] for a in actions if a["op"] != "defrag")
    lines = []
    for r in rows:
        head = "%s at %.3f%% of maxmemory" % (r["node"], r["before"]["percent"])
        if not r["selected"]:
            lines.append("%s: below the threshold, nothing to do" % head)
        elif r["node"] not in busy:
            lines.append("%s: no finished job old enough" % head)
        elif applied:
            lines.append("%s used_memory %d -> %d bytes (%.3f%% -> %.3f%% of maxmemory)" % (
                r["node"], r["before"]["used"], r["after"]["used"], r["before"]["percent"], r["after"]["percent"]))
        else:
            lines.append("%s: clean-up planned" % head)
    return lines


def cleanup(cli, primaries, waiter, options, check_mode=False):
    """What redis_bullmq_cleanup does: plan, then (unless check_mode) run the actions with the executor
    and read memory again. options: plan_cleanup's plus batch_size and pause_ms. Returns the module
    result (changed, plan, memory, nodes, still_critical)."""
    rows, actions = plan_cleanup(cli, primaries, options)
    applied = bool(actions) and not check_mode
    seconds, started = 0.0, None
    if applied:
        nodes = dict((n["name"], n) for n in primaries)
        started = time.time()
        Executor(cli, waiter, nodes=nodes, batch_size=options["batch_size"], pause_ms=options["pause_ms"]).run(actions)
        seconds = time.time() - started
        record(rows, actions)
        for row in rows:
            if row["selected"]:
                node = nodes[row["node"]]
                row["after"] = memory_of(cli.run(node["host"], node["port"], "INFO", "memory"))
    still = [r["node"] for r in rows if r["after"]["percent"] >= options["threshold"]]
    return dict(changed=bool(actions), plan=render_all(actions), memory=status_lines(rows, actions, applied),
                nodes=rows, still_critical=still, seconds=round(seconds, 3), started=started)
