"""Reshard benchmark: the same slots and keys moved by `redis-cli --cluster reshard` (default pipeline
and --cluster-pipeline 1000) and by the collection's mover (redis_cluster_reshard mode=move), both run
on the same lab host, each direction once, with a client reading and writing the moving slots the
whole time. Every key is checked afterwards."""
import json
import os
import random
import subprocess
import threading
import time

from shardwise_harness.drill_clients import Nodes, crc16
from shardwise_harness.tls_client import sync_cluster

KEY_VALUE = 100  # bytes per value


def tags_for(slots):
    """One hash tag per slot in `slots`."""
    wanted, found, n = set(slots), {}, 0
    while len(found) < len(wanted):
        tag = "b%d" % n
        slot = crc16(tag)
        if slot in wanted and slot not in found:
            found[slot] = tag
        n += 1
    return found


def value(key):
    return (key * (KEY_VALUE // len(key) + 1))[:KEY_VALUE]


LOAD_RATE = 200  # client operations per second during each move (paced: the movers get the same CPU)
LIVE_KEYS = 1000  # distinct live keys the client rewrites (the slots hold the same keys for every mover)


class Load(threading.Thread):
    """GET a fill key (check its value) and SET a live key in the moving slots, LOAD_RATE times a second."""

    def __init__(self, config, keys, tags):
        super().__init__(daemon=True)
        self.client = sync_cluster(config["pki"], list(config["hosts"].values()), "api", cluster_error_retry_attempts=3)
        self.keys, self.tags = keys, tags
        self.stop = threading.Event()
        self.ops = self.errors = self.wrong = 0
        self.samples = []

    def run(self):
        started = time.time()
        while not self.stop.is_set():
            key = random.choice(self.keys)
            n = self.ops % LIVE_KEYS
            live = "bull:{%s}:live-%d" % (self.tags[n % len(self.tags)], n)
            try:
                if self.client.get(key) != value(key):
                    self.wrong += 1
                self.client.set(live, value(live))
            except Exception as exc:  # every error that reaches the client counts; redirects never do
                self.errors += 1
                if len(self.samples) < 5:
                    self.samples.append("%s: %s" % (type(exc).__name__, str(exc)[:160]))
            self.ops += 1
            time.sleep(max(0.0, started + self.ops / float(LOAD_RATE) - time.time()))

    def finish(self):
        self.stop.set()
        self.join()
        return dict(ops=self.ops, errors=self.errors, wrong_values=self.wrong, error_samples=self.samples)


class ReshardBench:
    def __init__(self, config, slots=1000, keys=22400, top="."):
        self.config, self.top = config, top
        self.count, self.total_keys = slots, keys
        self.admin = Nodes(config, user="admin", timeout=10)
        self.admin.refresh()

    # -- topology
    def ids(self):
        out = {}
        for name, ip in self.config["hosts"].items():
            out[name] = self.admin.conn(ip).execute_command("CLUSTER", "MYID")
        return out

    def owners(self, slots):
        self.admin.refresh()
        ips = dict((ip, n) for n, ip in self.config["hosts"].items())
        return dict((s, ips.get(self.admin.owner(s))) for s in slots)

    # -- data
    def fill(self):
        """Slots: the first `count` slots of the primary owning slot 0; keys spread evenly over them."""
        first = min(f for f, _unused1, _unused2 in self.admin.ranges)
        self.slots = list(range(first, first + self.count))
        tags = tags_for(self.slots)
        self.tags = [tags[s] for s in self.slots]
        self.keys = []
        for i in range(self.total_keys):
            self.keys.append("bull:{%s}:k%d" % (self.tags[i % len(self.tags)], i))
        client = sync_cluster(self.config["pki"], list(self.config["hosts"].values()), "api")
        for start in range(0, len(self.keys), 2000):
            pipe = client.pipeline()
            for key in self.keys[start:start + 2000]:
                pipe.set(key, value(key))
            pipe.execute()
        client.close()
        owners = set(self.owners(self.slots).values())
        assert len(owners) == 1, owners
        self.source = owners.pop()

    def keys_in_slots(self, name):
        conn = self.admin.conn(self.config["hosts"][name])
        pipe = conn.pipeline(transaction=False)
        for slot in self.slots:
            pipe.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot)
        return sum(int(n) for n in pipe.execute())

    def drop_keys(self):
        """Remove the benchmark's keys (fill and live) from the lab."""
        client = sync_cluster(self.config["pki"], list(self.config["hosts"].values()), "api")
        live = ["bull:{%s}:live-%d" % (self.tags[n % len(self.tags)], n) for n in range(LIVE_KEYS)]
        for keys in (self.keys, live):
            for start in range(0, len(keys), 2000):
                for key in keys[start:start + 2000]:
                    client.delete(key)
        client.close()

    def lost(self):
        client = sync_cluster(self.config["pki"], list(self.config["hosts"].values()), "api")
        lost = 0
        for start in range(0, len(self.keys), 2000):
            batch = self.keys[start:start + 2000]
            lost += sum(1 for key, got in zip(batch, client.mget_nonatomic(batch)) if got != value(key))
        client.close()
        return lost

    # -- movers
    def redis_cli(self, src, dst, pipeline=None):
        ids, host = self.ids(), self.config["runner"]
        argv = ["podman", "exec", "-e", "REDISCLI_AUTH", host, "redis-cli", "--tls", "--cacert", "/etc/redis/tls/ca.crt",
                "--cert", "/etc/redis/tls/client-admin.crt", "--key", "/etc/redis/tls/client-admin.key",
                "--user", "admin", "--cluster", "reshard", "%s:6379" % self.config["hosts"][src],
                "--cluster-from", ids[src], "--cluster-to", ids[dst], "--cluster-slots", str(self.count),
                "--cluster-yes"]
        if pipeline:
            argv += ["--cluster-pipeline", str(pipeline)]
        env = dict(os.environ, REDISCLI_AUTH=os.environ["REDIS_ADMIN_PASSWORD"])
        started = time.time()
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        seconds = time.time() - started
        if proc.returncode != 0:
            raise SystemExit("redis-cli reshard failed: %s" % proc.stdout[-600:])
        return dict(seconds=round(seconds, 3))

    def collection(self, src, dst):
        report = os.path.join(self.config["out"], "move-%s.json" % dst)
        argv = [self.top + "/.venv/bin/ansible-playbook", "-i", self.top + "/inventories/lab",
                self.top + "/tools/bench/move.yml", "-e", "bench_target=%s" % dst,
                "-e", "bench_slots=%d-%d" % (self.slots[0], self.slots[-1]), "-e", "bench_report=%s" % report]
        started = time.time()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        wall = time.time() - started
        if proc.returncode != 0:
            raise SystemExit("collection move failed: %s" % proc.stdout[-1500:])
        with open(report) as fh:
            result = json.load(fh)
        moved = result["moved"]
        return dict(seconds=moved["seconds"], playbook_seconds=round(wall, 2), progress=result.get("progress", []),
                    keys_moved=moved["keys_moved"])

    def measure(self, label, src, dst, mover):
        keys = self.keys_in_slots(src)
        load = Load(self.config, self.keys, self.tags)
        load.start()
        time.sleep(0.5)
        try:
            figures = mover(src, dst)
        finally:
            client = load.finish()
        owners = set(self.owners(self.slots).values())
        if owners != {dst}:
            raise SystemExit("%s: slots not all on %s after the move: %s" % (label, dst, owners))
        figures.update(label=label, source=src, target=dst, client=client, keys=keys,
                       keys_per_second=round(keys / figures["seconds"]))
        print("  %-28s %s -> %s %6.2f s %7d keys/s  client ops %d errors %d"
              % (label, src, dst, figures["seconds"], figures["keys_per_second"], client["ops"], client["errors"]))
        return figures

    def run(self):
        self.fill()
        src = self.source
        dst = sorted(n for n in set(self.owners(range(0, 16384, 64)).values()) if n != src)[0]
        runs = []
        for label, mover in (("redis-cli (pipeline 10)", self.redis_cli),
                             ("redis-cli --cluster-pipeline 1000", lambda a, b: self.redis_cli(a, b, 1000)),
                             ("shardwise.redis", self.collection)):
            for there, back in ((src, dst), (dst, src)):  # both ways, so each mover starts from the same layout
                runs.append(self.measure(label, there, back, mover))
        lost = self.lost()
        self.drop_keys()
        movers = {}
        for r in runs:
            m = movers.setdefault(r["label"], dict(seconds=[], keys=[], client_errors=0, client_ops=0))
            m["seconds"].append(r["seconds"])
            m["keys"].append(r["keys"])
            m["client_errors"] += r["client"]["errors"] + r["client"]["wrong_values"]
            m["client_ops"] += r["client"]["ops"]
        for m in movers.values():
            m["keys_per_second"] = round(sum(m["keys"]) / sum(m["seconds"]))
        return dict(slots=self.count, keys=self.total_keys, value_bytes=KEY_VALUE, runs=runs, movers=movers,
                    lost_keys=lost)
