"""Host state of a converged Redis node, asserted on the host itself (pytest-testinfra).

Run by molecule/default/verify.yml over SSH (any converged hosts the same way):

    pytest tests/testinfra --hosts=ssh://t-a1,ssh://t-a2 --ssh-config=FILE

The expected values come from the inventory's variables, written by the verify play into the JSON file
named by SHARDWISE_EXPECTED (so a scenario that overrides redis_limit_nofile expects its own value); with
no file, the roles' defaults below. tests/unit/test_testinfra_checks.py runs these checks against a fake
host to show each one fails when the host is wrong.
"""
import json
import os
import re

import pytest

DEFAULTS = {
    "sysctl": {"vm.overcommit_memory": 1, "vm.swappiness": 1, "net.core.somaxconn": 4096,
               "net.ipv4.tcp_max_syn_backlog": 4096, "fs.file-max": 1048576},
    "thp": "never",
    "sysctl_file": "/etc/sysctl.d/60-redis.conf",
    "port": 6379,
    "nofile": 65536,
    "user": "redis",
    "group": "redis",
    "conf_dir": "/etc/redis",
    "data_dir": "/var/lib/redis",
    "log_dir": "/var/log/redis",
    "service": "redis-server",
    "exporter_service": "redis-exporter",
    "fence_service": "shardwise-redis-fence",
    "exporter_user": "redis-exporter",
    "exporter_conf_dir": "/etc/redis-exporter",
    "exporter_port": 9121,
    "ssh_port": 22,
    # Source and archive installs get the collection's logrotate rule (the APT package has its own).
    "logrotate": True,
    "series": "7.2",
}

# (path relative to conf/data dirs, mode, owner, group); {user}/{group} are the Redis account.
FILES = [
    ("{conf_dir}", 0o750, "root", "{group}"),
    ("{conf_dir}/redis.conf", 0o640, "root", "{group}"),
    ("{conf_dir}/users.acl", 0o600, "{user}", "{group}"),
    ("{conf_dir}/replication-auth.conf", 0o640, "root", "{group}"),
    ("{conf_dir}/fence.json", 0o640, "root", "{group}"),
    ("{conf_dir}/tls", 0o750, "root", "{group}"),
    ("{conf_dir}/tls/redis.key", 0o640, "root", "{group}"),
    ("{conf_dir}/tls/redis.crt", 0o644, "root", "{group}"),
    ("{conf_dir}/tls/ca.crt", 0o644, "root", "{group}"),
    ("{conf_dir}/tls/client-admin.key", 0o600, "root", "root"),
    ("{conf_dir}/tls/client-metrics.key", 0o600, "root", "root"),
    ("{data_dir}", 0o750, "{user}", "{group}"),
    ("{log_dir}", 0o750, "{user}", "{group}"),
    ("{exporter_conf_dir}/tls/client-metrics.key", 0o640, "root", "{exporter_user}"),
    ("{exporter_conf_dir}/env", 0o600, "root", "root"),
]

# systemd properties every service must show (systemctl show), with the value expected.
HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
}


def expected():
    path = os.environ.get("SHARDWISE_EXPECTED")
    values = dict(DEFAULTS)
    if path:
        with open(path) as fh:
            given = json.load(fh)
        values.update({k: v for k, v in given.items() if k != "sysctl"})
        values["sysctl"] = dict(DEFAULTS["sysctl"], **{k: int(v) for k, v in given.get("sysctl", {}).items()})
    return values


@pytest.fixture(scope="module")
def want():
    return expected()


def files_wanted(want):
    return [(path.format(**want), mode, owner.format(**want), group.format(**want)) for path, mode, owner, group in FILES]


def listening_ports(host, process=None):
    """TCP ports listening on the host (or of one process name), from ss."""
    out = host.check_output("ss -Htlnp")
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4 or (process and '"%s"' % process not in line):
            continue
        ports.add(int(fields[3].rsplit(":", 1)[1]))
    return ports


# ------------------------------------------------------------------------------------------ kernel

def test_sysctls_are_applied(host, want):
    for name, value in want["sysctl"].items():
        assert host.sysctl(name) == value, name


def test_sysctls_are_persistent(host, want):
    conf = host.file(want["sysctl_file"])
    assert conf.exists and conf.user == "root" and not conf.mode & 0o022
    for name, value in want["sysctl"].items():
        assert conf.contains("^%s *= *%s$" % (name.replace(".", r"\."), value)), name


def test_transparent_hugepages_are_off(host, want):
    for knob in ("enabled", "defrag"):
        text = host.file("/sys/kernel/mm/transparent_hugepage/%s" % knob).content_string
        assert "[%s]" % want["thp"] in text, (knob, text)
    assert host.service("disable-thp").is_enabled


# ------------------------------------------------------------------------------------------ services

def test_redis_runs_as_its_account_with_its_limits(host, want):
    service = host.service(want["service"])
    assert service.is_enabled and service.is_running
    pid = host.check_output("systemctl show -p MainPID --value %s" % want["service"])
    assert host.check_output("ps -o user= -p %s" % pid) == want["user"]
    limits = host.file("/proc/%s/limits" % pid).content_string
    assert any(line.startswith("Max open files") and line.split()[3] == str(want["nofile"])
               for line in limits.splitlines()), limits


def test_redis_is_the_7_2_series(host, want):
    version = re.search(r"\bv=(\S+)", host.check_output("redis-server --version"))
    assert version and version.group(1).startswith(want["series"] + "."), version and version.group(1)


@pytest.mark.parametrize("which", ["service", "exporter_service", "fence_service"])
def test_services_are_hardened(host, want, which):
    unit = want[which]
    assert host.service(unit).is_enabled and host.service(unit).is_running
    shown = host.check_output("systemctl show %s %s" % (unit, " ".join("-p " + p for p in HARDENING)))
    props = dict(line.split("=", 1) for line in shown.splitlines())
    for name, value in HARDENING.items():
        assert props.get(name) == value, (unit, name, props.get(name))


# ------------------------------------------------------------------------------------------ files

def test_keys_acl_and_conf_owners_and_modes(host, want):
    for path, mode, owner, group in files_wanted(want):
        f = host.file(path)
        assert f.exists, path
        assert (f.mode, f.user, f.group) == (mode, owner, group), (path, oct(f.mode), f.user, f.group)


def test_no_plaintext_password_in_the_acl_file(host, want):
    # Counts only: a failure must not print the file (it holds password hashes).
    acl = host.file("%s/users.acl" % want["conf_dir"]).content_string
    users = [line for line in acl.splitlines() if line.startswith("user ")]
    plaintext = sum(1 for line in users if re.search(r"(^|\s)>", line))
    default_off = sum(1 for line in users if line.startswith("user default ") and " off" in line)
    assert (len(users) > 0, plaintext, default_off) == (True, 0, 1)


def test_log_is_rotated(host, want):
    if not want["logrotate"]:
        pytest.skip("the APT package's own logrotate rule rotates the log")
    rule = host.file("/etc/logrotate.d/shardwise-redis")
    assert rule.exists and rule.user == "root" and rule.mode == 0o644
    assert rule.contains("^%s/\\*\\.log {$" % want["log_dir"])
    # logrotate parses it and would rotate the log as the Redis account.
    dry = host.run("logrotate --debug /etc/logrotate.d/shardwise-redis")
    assert dry.rc == 0 and "error" not in dry.stderr.lower(), dry.stderr[-500:]


# ------------------------------------------------------------------------------------------ network

def test_redis_listens_on_the_tls_and_bus_ports_only(host, want):
    assert listening_ports(host, "redis-server") == {want["port"], want["port"] + 10000}


def test_nothing_else_listens(host, want):
    allowed = {want["port"], want["port"] + 10000, want["exporter_port"], want["ssh_port"]}
    assert listening_ports(host) <= allowed, listening_ports(host) - allowed


def test_no_plaintext_redis_port(host, want):
    conf = host.file("%s/redis.conf" % want["conf_dir"])
    assert conf.contains("^port 0$") and conf.contains("^tls-port %d$" % want["port"])
    # Plain RESP on the TLS port gets no answer (the TLS handshake fails and the server drops the connection).
    reply = host.run(
        "python3 -c 'import socket; s = socket.create_connection((\"127.0.0.1\", %d), 3); s.settimeout(3);"
        " s.sendall(b\"PING\\r\\n\"); print(repr(s.recv(64)))'" % want["port"])
    assert "PONG" not in reply.stdout, reply.stdout


# ------------------------------------------------------------------------------------------ exporter

def test_exporter_account_and_what_it_can_read(host, want):
    user = host.user(want["exporter_user"])
    assert user.exists and want["group"] not in user.groups
    pid = host.check_output("systemctl show -p MainPID --value %s" % want["exporter_service"])
    assert host.check_output("ps -o user= -p %s" % pid) == want["exporter_user"]
    # In its mount namespace the node's conf dir (key, ACL file, masterauth) and data are empty.
    for path in (want["conf_dir"], want["data_dir"]):
        seen = host.run("nsenter -t %s -m ls -A %s" % (pid, path))
        assert seen.rc == 0 and seen.stdout.strip() == "", (path, seen.stdout)
    # It can read its own client key (test -r: a key is never printed), not the node's key.
    as_exporter = "setpriv --reuid={0} --regid={0} --clear-groups test -r ".format(want["exporter_user"])
    assert host.run(as_exporter + "%s/tls/client-metrics.key" % want["exporter_conf_dir"]).rc == 0
    assert host.run(as_exporter + "%s/tls/redis.key" % want["conf_dir"]).rc != 0
    assert host.run(as_exporter + "%s/users.acl" % want["conf_dir"]).rc != 0
