"""Migrator: one script run per slot (pieces for slots over the atomic limit, sized by bytes), windows of
slots with each step one batch, the order of SETSLOT on both ends and the other primaries, source/target
pairs in parallel, the keys/s cap, progress, and the admin password never in a command (MIGRATE
authenticates as a user made for the move). test_migrate_live.py runs the script on a real Redis 7.2."""
import hashlib
import json
import re
import threading

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli, RedisCliError
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import MIGRATE_USER, MOVE_SLOT, MOVE_SLOT_SHA, Migrator, Progress

SECRET = "s3cret-password-123"
PORTS = {"src": 7001, "dst": 7002, "other": 7003, "src2": 7004}


class FakeRun:
    """run_command double: answers piped commands from a tiny slot/key model of the nodes."""

    def __init__(self, keys, bytes_per_key=100):
        self.keys = keys  # port -> {slot: [keys]}
        self.bytes_per_key = bytes_per_key
        self.calls = []  # (port, [args, ...]) per batch
        self.lock = threading.Lock()

    def __call__(self, argv, data=None, environ_update=None):
        port = int(argv[argv.index("-p") + 1])
        batch = [json.loads("[" + line.replace('" "', '", "') + "]") for line in data.split("\n")]
        with self.lock:
            self.calls.append((port, batch))
        out = []
        for args in batch:
            if args[:2] == ["CLUSTER", "GETKEYSINSLOT"]:
                out.append(json.dumps(self.keys[port].get(int(args[2]), [])[:int(args[3])]))
            elif args[0] == "MIGRATE":
                self.move_keys(port, int(args[2]), args[args.index("KEYS") + 1:])
                out.append('"OK"')
            elif args[:2] == ["SCRIPT", "LOAD"]:
                out.append(json.dumps(hashlib.sha1(args[2].encode("utf-8")).hexdigest()))
            elif args[0] == "EVALSHA":  # MOVE_SLOT: ARGV slot, target id, max keys, host, port, ...
                held = list(self.keys[port].get(int(args[3]), []))
                if len(held) > int(args[5]):
                    out.append(json.dumps([-1, len(held)]))
                else:
                    self.move_keys(port, int(args[7]), held)
                    out.append(json.dumps([len(held), len(held)]))
            elif args[:2] == ["CLUSTER", "COUNTKEYSINSLOT"]:
                out.append(str(len(self.keys[port].get(int(args[2]), []))))
            elif args[0] == "INFO":
                out.append(json.dumps("# Memory\r\nused_memory_dataset:%d\r\n" % (self.bytes_per_key * self.total(port))))
            elif args[0] == "DBSIZE":
                out.append(str(self.total(port)))
            else:
                out.append('"OK"')
        return 0, "\n".join(out) + "\n", ""

    def move_keys(self, port, to, moved):
        target = self.keys.setdefault(to, {})
        for slot, keys in self.keys[port].items():
            gone = [k for k in keys if k in moved]
            target.setdefault(slot, []).extend(gone)
            self.keys[port][slot] = [k for k in keys if k not in moved]

    def total(self, port):
        return sum(len(k) for k in self.keys[port].values())

    def sent(self, port=None, word=None):
        return [args for p, batch in self.calls for args in batch
                if (port is None or p == port) and (word is None or word in args[:4])]


def migrator(run, **kwargs):
    cli = RedisCli(run, "redis-cli", "admin", SECRET, "ca", "crt", "key")
    nodes = dict((n, dict(host="h%d" % p, port=p)) for n, p in PORTS.items())
    ids = dict((n, str(i) * 40) for i, n in enumerate(PORTS, 1))
    return Migrator(cli, nodes, ids, **kwargs)


def keys(n, stem="k"):
    return ["%s%d" % (stem, i) for i in range(n)]


def migrate_sizes(run):
    return [len(args) - args.index("KEYS") - 1 for args in run.sent(word="MIGRATE")]


def test_each_slot_moves_in_one_script_run_as_a_user_made_for_the_move():
    run = FakeRun({7001: {5: keys(250), 6: ["x"]}, 7002: {}})
    m = migrator(run, atomic_keys=10000)
    m.move([(5, "src", "dst"), (6, "src", "dst")], ["src", "dst", "other"])
    assert (m.keys_moved, m.slots_moved) == (251, 2)
    assert run.keys[7001] == {5: [], 6: []} and sorted(run.keys[7002][5]) == sorted(keys(250))
    assert not run.sent(word="MIGRATE")  # the script's MIGRATE calls run inside Redis
    evals = run.sent(port=7001, word="EVALSHA")
    assert [e[3] for e in evals] == ["5", "6"] and all(e[1] == MOVE_SLOT_SHA for e in evals)
    assert all(e[4:12] == ["2" * 40, "10000", "h7002", "7002", "10000", MIGRATE_USER, evals[0][10], "1000"] for e in evals)
    secret = evals[0][10]
    assert re.match("^[0-9a-f]{48}$", secret)
    # the user exists on the target for the move only, its password stored hashed
    acl = [args for port, batch in run.calls for args in batch if args[0] == "ACL"]
    assert acl == [["ACL", "SETUSER", MIGRATE_USER, "reset", "on", "#" + hashlib.sha256(secret.encode()).hexdigest(), "~*",
                    "+select", "+restore-asking"], ["ACL", "DELUSER", MIGRATE_USER]]
    assert [port for port, batch in run.calls if batch[0][0] == "ACL"] == [7002, 7002]
    assert SECRET not in json.dumps(run.calls) and m._secret is None


def test_the_move_script_is_the_one_loaded():
    run = FakeRun({7001: {5: ["k"]}, 7002: {}})
    migrator(run).move([(5, "src", "dst")], ["src", "dst"])
    loads = run.sent(port=7001, word="LOAD")
    assert loads == [["SCRIPT", "LOAD", MOVE_SLOT]]
    assert hashlib.sha1(MOVE_SLOT.encode("utf-8")).hexdigest() == MOVE_SLOT_SHA


def test_the_steps_of_a_window_run_in_order_on_the_right_nodes_one_batch_each():
    run = FakeRun({7001: dict((s, ["k%d" % s]) for s in range(10)), 7002: {}})
    migrator(run).move([(s, "src", "dst") for s in range(10)], ["src", "dst", "other"])
    steps = [(port, batch[0][:4 if "SETSLOT" in batch[0] else 3] if batch[0][0] in ("CLUSTER", "ACL") else batch[0][:2],
              len(batch)) for port, batch in run.calls]
    assert steps == [
        (7002, ["ACL", "SETUSER", MIGRATE_USER], 1),  # the target lets the move's user restore keys
        (7001, ["CLUSTER", "COUNTKEYSINSLOT", "0"], 10),  # size the windows
        (7002, ["CLUSTER", "SETSLOT", "0", "IMPORTING"], 10),
        (7001, ["SCRIPT", "LOAD"], 11),  # + one EVALSHA per slot: MIGRATING and every key in one run
        (7001, ["CLUSTER", "COUNTKEYSINSLOT", "0"], 10),  # nothing left behind
        (7002, ["CLUSTER", "SETSLOT", "0", "NODE"], 10),  # target, source, then the other primaries
        (7001, ["CLUSTER", "SETSLOT", "0", "NODE"], 10),
        (7003, ["CLUSTER", "SETSLOT", "0", "NODE"], 10),
        (7002, ["ACL", "DELUSER", MIGRATE_USER], 1)]


def test_windows_are_bounded_by_slots_and_by_keys():
    run = FakeRun({7001: dict((s, keys(40, "s%d-" % s)) for s in range(10)), 7002: {}})
    progress = Progress(10)
    migrator(run, slots_per_round=4, window_keys=100, progress=progress).move(
        [(s, "src", "dst") for s in range(10)], ["src", "dst"])
    imports = [len(batch) for port, batch in run.calls if batch[0][3:4] == ["IMPORTING"]]
    assert imports == [2, 2, 2, 2, 2]  # 100 keys at most: two 40-key slots per window
    assert [e["slots_done"] for e in progress.entries] == [2, 4, 6, 8, 10]
    assert progress.entries[-1]["keys_moved"] == 400 and progress.entries[-1]["eta_seconds"] == 0


def test_slots_above_the_atomic_limit_move_in_pieces_sized_by_bytes():
    run = FakeRun({7001: {5: keys(250), 6: ["x"]}, 7002: {}}, bytes_per_key=1000)
    migrator(run, atomic_keys=100, batch_size=1000, batch_bytes=100 * 1000).move(
        [(5, "src", "dst"), (6, "src", "dst")], ["src", "dst"])
    assert migrate_sizes(run) == [100, 100, 50]  # slot 6 whole in its script run, slot 5 in 100-key (100 kB) pieces
    assert [args[2] for args in run.sent(port=7001, word="MIGRATING")] == ["5"]  # MIGRATING before the pieces
    pieces = run.sent(word="MIGRATE")
    assert all(args[7:11] == ["AUTH2", MIGRATE_USER, run.sent(word="EVALSHA")[0][10], "KEYS"] for args in pieces)
    run = FakeRun({7001: {5: keys(250)}, 7002: {}}, bytes_per_key=1000)
    migrator(run, atomic_keys=100, batch_size=60, batch_bytes=100 * 1000).move([(5, "src", "dst")], ["src", "dst"])
    assert migrate_sizes(run) == [60, 60, 60, 60, 10]  # batch_size caps the count
    assert SECRET not in json.dumps(run.calls)


def test_resumed_slots_the_target_already_owns_are_not_imported_again():
    run = FakeRun({7001: {5: [], 6: ["x"]}, 7002: {}})
    migrator(run).move([(5, "src", "dst"), (6, "src", "dst")], ["src", "dst"], owned_by_target=[5])
    assert [args[2] for args in run.sent(port=7002, word="IMPORTING")] == ["6"]
    assert [args[2] for args in run.sent(port=7001, word="NODE")] == ["5", "6"]


def test_keys_left_on_the_source_stop_the_run_before_ownership_changes():
    class Stubborn(FakeRun):
        def move_keys(self, port, to, moved):
            pass  # claims to have moved them, moves nothing
    run = Stubborn({7001: {5: ["k"]}, 7002: {}})
    with pytest.raises(RedisCliError, match="still holds keys in slots 5"):
        migrator(run).move([(5, "src", "dst")], ["src", "dst"])
    assert not run.sent(word="NODE")


def test_source_target_pairs_move_in_parallel_and_all_arrive():
    run = FakeRun({7001: dict((s, keys(3, "a%d-" % s)) for s in range(0, 50)),
                   7004: dict((s, keys(3, "b%d-" % s)) for s in range(50, 100)), 7002: {}})
    m = migrator(run, parallel=2)
    m.move([(s, "src", "dst") for s in range(50)] + [(s, "src2", "dst") for s in range(50, 100)], ["src", "src2", "dst"])
    assert (m.slots_moved, m.keys_moved) == (100, 300)
    assert sum(len(v) for v in run.keys[7002].values()) == 300


def test_an_error_in_one_pair_reaches_the_caller():
    run = FakeRun({7001: {5: ["k"]}, 7004: {6: ["j"]}, 7002: {}})

    def broken(argv, data=None, environ_update=None):
        if int(argv[argv.index("-p") + 1]) == 7004:
            return 1, "", "Could not connect to Redis"
        return run(argv, data, environ_update)
    with pytest.raises(RedisCliError, match="Could not connect"):
        migrator(broken, parallel=2).move([(5, "src", "dst"), (6, "src2", "dst")], ["src", "src2", "dst"])


def test_the_keys_per_second_cap_sleeps_the_run_down_to_it():
    run = FakeRun({7001: dict((s, keys(100, "s%d-" % s)) for s in range(4)), 7002: {}})
    slept, now = [], [1000.0]
    m = migrator(run, slots_per_round=1, max_keys_per_second=100, clock=lambda: now[0],
                 sleep=lambda s: (slept.append(s), now.__setitem__(0, now[0] + s)))
    m.move([(s, "src", "dst") for s in range(4)], ["src", "dst"])
    assert slept == [1.0, 1.0, 1.0, 1.0] and now[0] == 1004.0  # 400 keys at 100 keys/s


def test_progress_lines_go_to_the_file_as_they_happen(tmp_path):
    path = tmp_path / "progress.jsonl"
    ticks = iter([10.0, 12.0, 14.0])
    progress = Progress(4, str(path), clock=lambda: next(ticks))
    progress.begin()
    progress(2, 500)
    progress(4, 1000)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == progress.entries
    assert lines[0] == dict(t=2.0, slots_done=2, slots_total=4, keys_moved=500, keys_per_second=250, eta_seconds=2.0)
    assert lines[1]["eta_seconds"] == 0 and lines[1]["keys_per_second"] == 250


def test_an_unwritable_progress_file_is_reported_not_fatal(tmp_path):
    progress = Progress(1, str(tmp_path / "missing" / "progress.jsonl"))
    progress(1, 10)
    assert progress.entries and "progress file" in progress.error
