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


def test_migrator_moves_every_key_in_batches_with_the_password_on_stdin_only():
    run = FakeRun({7001: {5: ["k%d" % i for i in range(250)], 6: ["x"]}, 7002: {}})
    cli = RedisCli(run, "redis-cli", "admin", "s3cret-password-123", "ca", "crt", "key")
    nodes = {"src": dict(host="h1", port=7001), "dst": dict(host="h2", port=7002), "other": dict(host="h3", port=7003)}
    migrator = Migrator(cli, nodes, {"src": "1" * 40, "dst": "2" * 40, "other": "3" * 40}, batch_size=100)
    migrator.move([(5, "src", "dst"), (6, "src", "dst")], ["src", "dst", "other"])
    assert migrator.keys_moved == 251 and migrator.slots_moved == 2
    assert run.keys[7001] == {5: [], 6: []}
    assert all("s3cret-password-123" not in " ".join(argv) for argv, _ in run.calls)
    migrates = [data for _, data in run.calls if data.startswith('"MIGRATE"')]
    assert len(migrates) == 3 and all('"AUTH2" "admin" "s3cret-password-123" "KEYS"' in d for d in migrates)
    order = [(argv[argv.index("-p") + 1], data.split("\n")[0].split(" ")[:4]) for argv, data in run.calls]
    assert order[0] == ("7002", ['"CLUSTER"', '"SETSLOT"', '"5"', '"IMPORTING"'])
    assert order[1] == ("7001", ['"CLUSTER"', '"SETSLOT"', '"5"', '"MIGRATING"'])
    assert [(p, c[3]) for p, c in order[-3:]] == [("7002", '"NODE"'), ("7001", '"NODE"'), ("7003", '"NODE"')]
