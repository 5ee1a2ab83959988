"""Two Redis 7.2 cluster primaries on loopback (the redis-server of `make archive`), shared by
tests/unit/plugins/module_utils/test_migrate_live.py and tools/dev/bullmq_slot_moves.py."""
import glob
import os
import socket
import subprocess
import tarfile
import time

import redis

from ansible_collections.shardwise.redis.plugins.module_utils import resp
from shardwise_harness import TOP


def free_port():
    """A port p with p + 10000 (the cluster bus) free as well."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 55000:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


class Plain(resp.Connection):
    """resp.Connection without TLS (the loopback nodes have none)."""

    def __init__(self, host, port, user, password, *files, **kwargs):  # pylint: disable=super-init-not-called
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.reader = self.sock.makefile("rb")
        assert self.pipeline([["AUTH", user, password]])[0] == "OK"


def server_binary(work):
    """Unpack the archive of `make archive` in `work`; the path of its redis-server 7.2. Raises RuntimeError
    without an archive."""
    archives = glob.glob(os.path.join(TOP, ".cache", "redis-7.2.*-linux-x86_64.tar.gz"))
    if not archives:
        raise RuntimeError("no Redis 7.2 archive in .cache: run `make archive` (make unit does)")
    with tarfile.open(archives[0]) as tar:
        tar.extractall(work)
    return glob.glob(os.path.join(work, "*", "bin", "redis-server"))[0]


def start(work, password, extra=()):
    """Unpack the archive in `work`, start nodes a (slots 0-8191) and b (8192-16383) with user admin
    (`password`, every command) and wait for cluster_state:ok. Returns ({name: port}, [processes]); the
    caller kills the processes. Raises RuntimeError without an archive."""
    server = server_binary(work)
    ports, procs = {}, []
    for name in ("a", "b"):
        ports[name] = free_port()
        node_dir = os.path.join(work, name)
        os.makedirs(node_dir)
        procs.append(subprocess.Popen(
            [server, "--port", str(ports[name]), "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--save", "",
             "--appendonly", "no", "--cluster-config-file", "nodes.conf", "--dir", node_dir, "--logfile", "log"]
            + list(extra), cwd=node_dir))
    try:
        conns = {}
        for name, port in ports.items():
            for _attempt in range(100):
                try:
                    conns[name] = redis.Redis(port=port, decode_responses=True)
                    conns[name].ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            conns[name].acl_setuser("admin", enabled=True, passwords=["+" + password], keys=["*"], channels=["*"],
                                    commands=["+@all"])
        conns["a"].execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 8191)
        conns["b"].execute_command("CLUSTER", "ADDSLOTSRANGE", 8192, 16383)
        conns["a"].execute_command("CLUSTER", "MEET", "127.0.0.1", ports["b"])
        for _attempt in range(100):
            if all("cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in conns.values()):
                break
            time.sleep(0.1)
    except Exception:
        for proc in procs:
            proc.kill()
            proc.wait()
        raise
    return ports, procs


def fixture(tmp_path_factory, password, extra=()):
    """A pytest fixture's body: start() in a fresh folder, yield {name: port}, kill the nodes afterwards. Fails the
    test (pytest.fail) without an archive."""
    import pytest  # pylint: disable=import-outside-toplevel

    try:
        ports, procs = start(str(tmp_path_factory.mktemp("redis")), password, extra)
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
