"""The testinfra host checks (tests/testinfra/test_node.py) fail when a host is wrong.

Each check runs against a fake testinfra host built from a correct node's state: it passes there, then
one thing is broken (a sysctl, a mode, a listener, a plaintext port, a hardening property ...) and the
check meant to catch it must fail.
"""
import copy
import importlib.util
import os
import re
from types import SimpleNamespace

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
spec = importlib.util.spec_from_file_location("test_node", os.path.join(ROOT, "tests", "testinfra", "test_node.py"))
node = importlib.util.module_from_spec(spec)
spec.loader.exec_module(node)

WANT = node.expected()


def good_state():
    files = {path: {"mode": mode, "user": owner, "group": group, "content": ""}
             for path, mode, owner, group in node.files_wanted(WANT)}
    files[WANT["sysctl_file"]] = {"mode": 0o644, "user": "root", "group": "root",
                                  "content": "".join("%s=%s\n" % kv for kv in WANT["sysctl"].items())}
    files["/etc/redis/redis.conf"]["content"] = "port 0\ntls-port 6379\n"
    files["/etc/redis/users.acl"]["content"] = ("user default off resetpass ~* &* +@all\n"
                                                "user worker on #5e88489 ~bull:* -@all +@read\n")
    files["/sys/kernel/mm/transparent_hugepage/enabled"] = {"content": "always madvise [never]\n"}
    files["/sys/kernel/mm/transparent_hugepage/defrag"] = {"content": "always defer defer+madvise madvise [never]\n"}
    files["/etc/logrotate.d/shardwise-redis"] = {"mode": 0o644, "user": "root", "group": "root",
                                                 "content": "/var/log/redis/*.log {\n    daily\n}\n"}
    files["/proc/100/limits"] = {"content": "Max open files            %d                %d                files\n"
                                            % (WANT["nofile"], WANT["nofile"])}
    return {
        "sysctl": dict(WANT["sysctl"]),
        "files": files,
        "services": {"redis-server": (True, True), "redis-exporter": (True, True), "disable-thp": (True, False)},
        "pids": {"redis-server": "100", "redis-exporter": "200"},
        "process_user": {"100": "redis", "200": "redis-exporter"},
        "hardening": {"redis-server": dict(node.HARDENING), "redis-exporter": dict(node.HARDENING)},
        "listen": [("10.89.30.11", 6379, "redis-server"), ("10.89.30.11", 16379, "redis-server"),
                   ("127.0.0.1", 6379, "redis-server"), ("0.0.0.0", 9121, "redis_exporter"),
                   ("0.0.0.0", 22, "sshd")],
        "plaintext_reply": "b''",
        "version": "Redis server v=7.2.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=9b24e1b8ebc9fc59",
        "users": {"redis-exporter": ["redis-exporter"]},
        "exporter_sees": {"/etc/redis": "", "/var/lib/redis": ""},
        "exporter_reads": {"/etc/redis-exporter/tls/client-metrics.key"},
    }


class FakeFile:
    def __init__(self, data):
        self.exists = data is not None
        data = data or {}
        self.mode, self.user, self.group = data.get("mode"), data.get("user"), data.get("group")
        self.content_string = data.get("content", "")

    def contains(self, pattern):
        return any(re.search(pattern, line) for line in self.content_string.splitlines())


class FakeHost:
    def __init__(self, state):
        self.state = state

    def sysctl(self, name):
        return self.state["sysctl"][name]

    def file(self, path):
        return FakeFile(self.state["files"].get(path))

    def service(self, name):
        enabled, running = self.state["services"][name]
        return SimpleNamespace(is_enabled=enabled, is_running=running)

    def user(self, name):
        groups = self.state["users"].get(name)
        return SimpleNamespace(exists=groups is not None, groups=groups or [])

    def run(self, command):
        rc, out = 0, ""
        if command.startswith("python3 -c"):
            out = self.state["plaintext_reply"]
        elif command.startswith("nsenter"):
            out = self.state["exporter_sees"][command.split()[-1]]
        elif command.startswith("setpriv"):
            rc = 0 if command.split()[-1] in self.state["exporter_reads"] else 1
        elif command.startswith("logrotate"):
            rc = 0 if command.split()[-1] in self.state["files"] else 1
        return SimpleNamespace(rc=rc, stdout=out, stderr="")

    def check_output(self, command):
        words = command.split()
        if command == "ss -Htlnp":
            return "\n".join('LISTEN 0 511 %s:%d 0.0.0.0:* users:(("%s",pid=1,fd=6))' % entry
                             for entry in self.state["listen"])
        if command.startswith("systemctl show -p MainPID"):
            return self.state["pids"][words[-1]]
        if command == "redis-server --version":
            return self.state["version"]
        if command.startswith("ps -o user="):
            return self.state["process_user"][words[-1]]
        if command.startswith("systemctl show "):
            props = self.state["hardening"][words[2]]
            asked = [words[i + 1] for i, word in enumerate(words) if word == "-p"]
            return "\n".join("%s=%s" % (name, props.get(name, "")) for name in asked)
        raise AssertionError("unexpected command " + command)


CHECKS = [
    node.test_sysctls_are_applied, node.test_sysctls_are_persistent, node.test_transparent_hugepages_are_off,
    node.test_redis_runs_as_its_account_with_its_limits, node.test_keys_acl_and_conf_owners_and_modes,
    node.test_redis_is_the_7_2_series,
    node.test_no_plaintext_password_in_the_acl_file, node.test_redis_listens_on_the_tls_and_bus_ports_only,
    node.test_nothing_else_listens, node.test_no_plaintext_redis_port, node.test_log_is_rotated,
    node.test_exporter_account_and_what_it_can_read,
]


def run(check, state):
    if check is node.test_services_are_hardened:
        for which in ("service", "exporter_service"):
            check(FakeHost(state), WANT, which)
    else:
        check(FakeHost(state), WANT)


@pytest.mark.parametrize("check", CHECKS + [node.test_services_are_hardened], ids=lambda c: c.__name__)
def test_every_check_passes_on_a_correct_node(check):
    run(check, good_state())


def _set(path, value):
    def apply(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return apply


BROKEN = {
    "swappiness left at 60": (node.test_sysctls_are_applied, _set(["sysctl", "vm.swappiness"], 60)),
    "sysctl file without somaxconn": (node.test_sysctls_are_persistent, _set(
        ["files", "/etc/sysctl.d/60-redis.conf", "content"], "vm.overcommit_memory=1\n")),
    "THP on": (node.test_transparent_hugepages_are_off, _set(
        ["files", "/sys/kernel/mm/transparent_hugepage/enabled", "content"], "[always] madvise never\n")),
    "redis as root": (node.test_redis_runs_as_its_account_with_its_limits, _set(["process_user", "100"], "root")),
    "nofile at 1024": (node.test_redis_runs_as_its_account_with_its_limits, _set(
        ["files", "/proc/100/limits", "content"], "Max open files 1024 1024 files\n")),
    "node key world-readable": (node.test_keys_acl_and_conf_owners_and_modes, _set(
        ["files", "/etc/redis/tls/redis.key", "mode"], 0o644)),
    "ACL file owned by root": (node.test_keys_acl_and_conf_owners_and_modes, _set(
        ["files", "/etc/redis/users.acl", "user"], "root")),
    "plaintext password in ACL": (node.test_no_plaintext_password_in_the_acl_file, _set(
        ["files", "/etc/redis/users.acl", "content"], "user default off\nuser worker on >secret ~bull:*\n")),
    "Redis 7.4 installed": (node.test_redis_is_the_7_2_series, _set(["version"], "Redis server v=7.4.1 sha=0 bits=64")),
    "no logrotate rule": (node.test_log_is_rotated, lambda s: s["files"].pop("/etc/logrotate.d/shardwise-redis")),
    "redis on a third port": (node.test_redis_listens_on_the_tls_and_bus_ports_only, lambda s: s["listen"].append(
        ("0.0.0.0", 6380, "redis-server"))),
    "a stray listener": (node.test_nothing_else_listens, lambda s: s["listen"].append(("0.0.0.0", 8080, "python3"))),
    "plaintext port answers": (node.test_no_plaintext_redis_port, _set(["plaintext_reply"], "b'+PONG\\r\\n'")),
    "exporter in group redis": (node.test_exporter_account_and_what_it_can_read, _set(
        ["users", "redis-exporter"], ["redis-exporter", "redis"])),
    "exporter sees the conf dir": (node.test_exporter_account_and_what_it_can_read, _set(
        ["exporter_sees", "/etc/redis"], "redis.conf\nusers.acl\n")),
    "exporter reads the node key": (node.test_exporter_account_and_what_it_can_read, lambda s: s["exporter_reads"].add(
        "/etc/redis/tls/redis.key")),
    "no ProtectSystem": (node.test_services_are_hardened, _set(["hardening", "redis-server", "ProtectSystem"], "no")),
    "exporter with capabilities": (node.test_services_are_hardened, _set(
        ["hardening", "redis-exporter", "CapabilityBoundingSet"], "cap_net_admin")),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_check_fails_on_the_broken_host_it_is_for(name):
    check, breaks = BROKEN[name]
    state = copy.deepcopy(good_state())
    breaks(state)
    with pytest.raises(AssertionError):
        run(check, state)


def test_expected_values_follow_the_inventory(tmp_path, monkeypatch):
    path = tmp_path / "expected.json"
    path.write_text('{"nofile": 16384, "sysctl": {"vm.swappiness": "10"}}')
    monkeypatch.setenv("SHARDWISE_EXPECTED", str(path))
    want = node.expected()
    assert want["nofile"] == 16384 and want["sysctl"]["vm.swappiness"] == 10
    assert want["sysctl"]["vm.overcommit_memory"] == 1 and want["port"] == 6379
