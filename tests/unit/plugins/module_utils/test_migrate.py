"""Migrator: MIGRATE in batches, the order of SETSLOT on both ends and the other primaries, and the
password only ever on stdin."""
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli
from ansible_collections.shardwise.redis.plugins.module_utils.migrate import Migrator


class FakeRun:
    """run_command double: answers piped commands from a tiny slot/key model of two nodes."""

    def __init__(self, keys):
        self.keys = keys  # (port) -> {slot: [keys]}
        self.calls = []

    def __call__(self, argv, data=None, environ_update=None):
        self.calls.append((argv, data))
        port = int(argv[argv.index("-p") + 1])
        out = []
        for line in data.split("\n"):
            args = [a.strip('"') for a in line.split(" ")]
            if args[:2] == ["CLUSTER", "GETKEYSINSLOT"]:
                keys = self.keys[port].get(int(args[2]), [])[:int(args[3])]
                out.append("[" + ",".join('"%s"' % k for k in keys) + "]")
            elif args[0] == "MIGRATE":
                moved = args[args.index("KEYS") + 1:]
                for slot, keys in self.keys[port].items():
                    self.keys[port][slot] = [k for k in keys if k not in moved]
                out.append('"OK"')
            elif args[:2] == ["CLUSTER", "COUNTKEYSINSLOT"]:
                out.append(str(len(self.keys[port].get(int(args[2]), []))))
            else:
                out.append('"OK"')
        return 0, "\n".join(out) + "\n", ""


def migrate(atomic_keys):
    run = FakeRun({7001: {5: ["k%d" % i for i in range(250)], 6: ["x"]}, 7002: {}})
    cli = RedisCli(run, "redis-cli", "admin", "s3cret-password-123", "ca", "crt", "key")
    nodes = {"src": dict(host="h1", port=7001), "dst": dict(host="h2", port=7002), "other": dict(host="h3", port=7003)}
    migrator = Migrator(cli, nodes, {"src": "1" * 40, "dst": "2" * 40, "other": "3" * 40}, batch_size=100,
                        atomic_keys=atomic_keys)
    migrator.move([(5, "src", "dst"), (6, "src", "dst")], ["src", "dst", "other"])
    assert migrator.keys_moved == 251 and migrator.slots_moved == 2
    assert run.keys[7001] == {5: [], 6: []}
    assert all("s3cret-password-123" not in " ".join(argv) for argv, _ in run.calls)
    migrates = [line for _, data in run.calls for line in data.split("\n") if line.startswith('"MIGRATE"')]
    assert all('"AUTH2" "admin" "s3cret-password-123" "KEYS"' in line for line in migrates)
    order = [(argv[argv.index("-p") + 1], data.split("\n")[0].split(" ")[:4]) for argv, data in run.calls]
    assert order[0] == ("7002", ['"CLUSTER"', '"SETSLOT"', '"5"', '"IMPORTING"'])
    assert order[1] == ("7001", ['"CLUSTER"', '"SETSLOT"', '"5"', '"MIGRATING"'])
    assert [(p, c[3]) for p, c in order[-3:]] == [("7002", '"NODE"'), ("7001", '"NODE"'), ("7003", '"NODE"')]
    return [line.count('"k') + line.count('"x"') for line in migrates]


def test_each_slot_moves_in_one_migrate_so_no_script_sees_it_half_moved():
    # slot 5 (250 keys) and slot 6 (1 key): one MIGRATE each, with the password on stdin only
    assert migrate(atomic_keys=10000) == [250, 1]


def test_slots_above_the_atomic_limit_move_in_batches():
    assert migrate(atomic_keys=100) == [1, 100, 100, 50]
