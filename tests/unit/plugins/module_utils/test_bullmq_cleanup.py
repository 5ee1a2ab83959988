"""Memory emergency logic: threshold selection, retention rules, the plan text, check mode, and which
keys are read or written (only completed/failed sets, never the live states)."""
import json

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import CLEAN_BATCH, queue_name
from ansible_collections.shardwise.redis.plugins.module_utils.bullmq_cleanup import cleanup, memory_of, queue_rules
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli, Waiter

BASE = "bull:{batch}:batch:"
DEFAULTS = dict(completed_max_age_hours=24, failed_max_age_days=7, events_maxlen=100)


class FakeNode:
    """A primary with one queue: finished jobs as {id: score}, an event stream length, memory."""

    def __init__(self, used, completed=None, failed=None, events=0, defrag="yes"):
        self.used = used
        self.sets = {"completed": dict(completed or {}), "failed": dict(failed or {})}
        self.events = events
        self.defrag = defrag
        self.commands = []

    def answer(self, args):
        self.commands.append(args)
        name = args[0]
        if name == "INFO":
            return "# Memory\r\nused_memory:%d\r\nmaxmemory:1000\r\nmem_allocator:jemalloc-5.3.0\r\n" % self.used
        if name == "TIME":
            return ["1000000", "0"]  # 1e9 ms
        if name == "SCAN":
            return ["0", [BASE + "meta"] if self.sets["completed"] or self.sets["failed"] or self.events else []]
        if name == "HMGET":
            return ["bullmq:5.0.0", None]
        if name == "ZCOUNT":
            state = args[1][len(BASE):]
            return sum(1 for s in self.sets[state].values() if s <= int(args[3]))
        if name == "XLEN":
            return self.events
        if name == "XTRIM":
            cut = self.events - int(args[3])
            self.events = int(args[3])
            return cut
        if name == "EVAL":
            key, cutoff, batch, offset = args[3], int(args[5]), int(args[6]), int(args[7])
            state = key[len(BASE):]
            old = sorted((s, j) for j, s in self.sets[state].items() if s <= cutoff)[offset:offset + batch]
            for _unused, job in old:
                del self.sets[state][job]
            self.used -= 10 * len(old)
            return [len(old), len(old), 0]
        if args[:2] == ["CONFIG", "GET"]:
            return {"activedefrag": self.defrag}
        if args[:2] == ["CONFIG", "SET"]:
            self.defrag = args[3]
            return "OK"
        return "OK"


def fake_cli(nodes):
    def run(argv, data=None, environ_update=None):
        node = nodes[argv[argv.index("-h") + 1]]
        if data is None:
            return 0, node.answer(argv[argv.index("--no-auth-warning") + 1:]), ""
        replies = []
        for line in data.split("\n"):
            args = json.loads("[" + line.replace('" "', '", "') + "]")
            replies.append(json.dumps(node.answer(args)))
        return 0, "\n".join(replies) + "\n", ""
    return RedisCli(run, "redis-cli", "admin", "pw", "ca", "crt", "key")


DAY = 24 * 3600 * 1000
NOW = 10 ** 9


def options(**over):
    opts = dict(threshold=80.0, force=False, prefix="bull", defaults=DEFAULTS, overrides={}, batch_size=2, pause_ms=0)
    opts.update(over)
    return opts


def cluster():
    full = FakeNode(900, completed={str(i): NOW - 3 * DAY for i in range(5)} | {"10": NOW - 1000},
                    failed={"20": NOW - 8 * DAY, "21": NOW - 3 * DAY}, events=150, defrag="no")
    calm = FakeNode(100, completed={"1": NOW - 3 * DAY})
    return {"h1": full, "h2": calm}, [dict(name="a1", host="h1", port=6379), dict(name="b1", host="h2", port=6379)]


def run_cleanup(cli, primaries, opts, check_mode):
    """cleanup() without waiting: returns (rows, changed, result)."""
    result = cleanup(cli, primaries, Waiter(60, lambda s: None), opts, check_mode=check_mode)
    return result["nodes"], result["changed"], result


def test_only_primaries_over_the_threshold_are_cleaned():
    nodes, primaries = cluster()
    rows, changed, result = run_cleanup(fake_cli(nodes), primaries, options(), check_mode=False)
    assert changed
    full = rows[0]["queues"]["batch"]
    assert (full["removed_completed"], full["removed_failed"], full["events_trimmed"]) == (5, 1, 50)
    assert set(nodes["h1"].sets["completed"]) == {"10"} and set(nodes["h1"].sets["failed"]) == {"21"}
    assert nodes["h1"].defrag == "yes" and ["MEMORY", "PURGE"] in nodes["h1"].commands
    assert rows[0]["after"]["used"] == 840 and not rows[1]["selected"]
    assert nodes["h2"].sets["completed"] == {"1": NOW - 3 * DAY}  # below the threshold: untouched
    touched = {a[1] for n in nodes.values() for a in n.commands if a[0] in ("ZCOUNT", "XLEN", "XTRIM")}
    touched |= {a[3] for n in nodes.values() for a in n.commands if a[0] == "EVAL"}
    assert touched <= {BASE + "completed", BASE + "failed", BASE + "events"}  # never wait/active/delayed/...


def test_check_mode_plans_without_writing_and_force_selects_all():
    nodes, primaries = cluster()
    rows, changed, result = run_cleanup(fake_cli(nodes), primaries, options(force=True), check_mode=True)
    assert changed and len(nodes["h1"].sets["completed"]) == 6 and nodes["h1"].events == 150
    assert not any(a[0] in ("EVAL", "XTRIM", "MEMORY") or a[:2] == ["CONFIG", "SET"]
                   for n in nodes.values() for a in n.commands)
    assert result["plan"] == [
        "a1: queue batch: remove 5 completed job(s) older than 24 h",
        "a1: queue batch: remove 1 failed job(s) older than 7 d",
        "a1: queue batch: trim events 150 -> 100",
        "a1: MEMORY PURGE",
        "a1: CONFIG SET activedefrag yes",
        "b1: queue batch: remove 1 completed job(s) older than 24 h",
        "b1: MEMORY PURGE"]
    assert result["memory"] == ["a1 at 90.000% of maxmemory: clean-up planned", "b1 at 10.000% of maxmemory: clean-up planned"]


def test_per_queue_overrides_and_a_clean_rerun():
    nodes, primaries = cluster()
    opts = options(overrides={"batch": {"failed_max_age_days": 2}})
    run_cleanup(fake_cli(nodes), primaries, opts, check_mode=False)
    assert nodes["h1"].sets["failed"] == {}
    rows, changed, result = run_cleanup(fake_cli(nodes), primaries, opts, check_mode=False)
    assert not changed and result["plan"] == []
    assert result["memory"] == ["a1 at 83.000% of maxmemory: no finished job old enough",
                                "b1 at 10.000% of maxmemory: below the threshold, nothing to do"]


def test_helpers():
    assert queue_name(BASE) == "batch"
    assert queue_rules("critical", DEFAULTS, {"critical": {"failed_max_age_days": 30}})["failed_max_age_days"] == 30
    assert memory_of("used_memory:50\r\nmaxmemory:0\r\ntotal_system_memory:200\r\n")["percent"] == 25.0
    # The batch script only reads the finished set it is given and never lists live states.
    for live in ("wait", "active", "delayed", "prioritized", "paused"):
        assert "'" + live + "'" not in CLEAN_BATCH and ":" + live not in CLEAN_BATCH


def test_an_override_for_a_queue_that_does_not_exist_stops_before_any_change():
    nodes, primaries = cluster()
    with pytest.raises(ValueError, match="redis_bullmq_queue_retention names bacth, but no BullMQ queue of that name "
                                         "exists under the prefix bull \\(queues found: batch\\)"):
        run_cleanup(fake_cli(nodes), primaries, options(overrides={"bacth": {"failed_max_age_days": 2}}), check_mode=False)
    assert not any(a[0] in ("EVAL", "XTRIM", "MEMORY") for n in nodes.values() for a in n.commands)
