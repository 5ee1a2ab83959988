"""roles/server/files/redis-conf-check.sh: Redis 7.2 itself (the redis-server of `make archive`) reads a candidate
redis.conf before the server role lets it replace the live one. An unknown directive or a bad value is refused, naming
the directive and Redis' reason but never the value; a good file passes; nothing is started, bound or written."""
import os
import subprocess

import pytest

from shardwise_harness.local_nodes import TOP, server_binary

SCRIPT = os.path.join(TOP, "roles", "server", "files", "redis-conf-check.sh")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    return server_binary(str(tmp_path_factory.mktemp("redis")))


def check(server, text):
    proc = subprocess.run(["bash", SCRIPT], input=text, env=dict(os.environ, SERVER=server), capture_output=True,
                          text=True, timeout=60, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def conf(tmp_path, *extra):
    """A redis.conf like the role's (TLS, cluster, AOF, the log file in a folder that does not exist)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    lines = ["port 0", "tls-port 6390", "cluster-enabled yes", "cluster-config-file %s/nodes.conf" % data,
             "cluster-node-timeout 5000", "appendonly yes", 'save "900 1"', "dir %s" % data,
             "logfile %s/missing-folder/redis-server.log" % tmp_path, "maxmemory 1gb", "maxmemory-policy noeviction",
             "tls-protocols \"TLSv1.2 TLSv1.3\"", "notify-keyspace-events Ex"]
    return "\n".join(lines + list(extra)) + "\n"


def test_a_good_file_passes_and_nothing_is_written(server, tmp_path):
    rc, out = check(server, conf(tmp_path))
    assert rc == 0, out
    assert os.listdir(str(tmp_path / "data")) == [] and not (tmp_path / "missing-folder").exists()


@pytest.mark.parametrize("line, said", [
    ("no-such-directive yes", "Redis refuses the new redis.conf at its no-such-directive directive: Bad directive or wrong "
                              "number of arguments"),
    ("maxmemory-clients banana", "Redis refuses the new redis.conf at its maxmemory-clients directive: argument must be "
                                 "a memory or percent value"),
    ("maxmemory-policy secret-lru", "at its maxmemory-policy directive: argument(s) must be one of the following"),
])
def test_redis_refuses_by_directive_never_showing_the_value(server, tmp_path, line, said):
    rc, out = check(server, conf(tmp_path, line))
    assert rc == 1 and said in out, out
    assert line.split()[1] not in out  # the value (it may be a secret) is never printed
