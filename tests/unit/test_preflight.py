"""site.yml's preflight refuses bad input with a message naming the fix, before any host changes.

Runs the real playbook in check mode against six inventory hosts that all point at this machine
over the local connection (facts are read, nothing is written even if preflight let it through).
"""
import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOOD = {user: "unit-%s-Pw-4f9a2c77" % user for user in ("admin", "worker", "api", "metrics", "replication", "cakey")}


def inventory(tmp_path, zones=("a", "a", "b", "b", "c", "c"), address="127.0.0.%d", **overrides):
    """Six hosts on the local connection, each with its own address (ansible_host); Redis would listen on
    127.0.0.1 only (redis_bind), so the addresses need not be this machine's."""
    hosts = {"n%d" % i: dict({"redis_zone": "zone-" + z} if z else {}, ansible_host=address % (i + 1) if "%" in address else address)
             for i, z in enumerate(zones)}
    group_vars = {
        "redis_bind": ["127.0.0.1"],
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        "redis_install_method": "archive", "redis_archive_src": "/nonexistent.tar.gz",
        "redis_maxmemory_mb": 256,
        "redis_admin_password": GOOD["admin"], "redis_worker_password": GOOD["worker"],
        "redis_api_password": GOOD["api"], "redis_metrics_password": GOOD["metrics"],
        "redis_replication_password": GOOD["replication"], "redis_tls_ca_key_password": GOOD["cakey"]}
    group_vars.update(overrides)
    data = {"redis": {"hosts": hosts, "vars": group_vars}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run(inv, playbook="site.yml", extra=None):
    """The playbook in check mode on the inventory, with extra variables (-e JSON): (rc, output)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inv, "--check",
         os.path.join(ROOT, "playbooks", playbook)] + (["-e", json.dumps(extra)] if extra else []),
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("case, zones, overrides, message", [
    ("one zone", ("a",) * 6, {}, "all 6 nodes are in zone zone-a"),
    ("crowded zone", ("a", "a", "a", "a", "b", "c"), {}, "zone zone-a holds 4 of 6 nodes"),
    ("missing zone", ("a", "a", "b", "b", "c", None), {}, "n5 has no zone: set redis_zone"),
    ("odd count", ("a", "a", "b", "b", "c"), {}, "multiple of 2"),
    ("short password", ("a", "a", "b", "b", "c", "c"), {"redis_worker_password": "short"}, "redis_worker_password"),
    ("ca key password", ("a", "a", "b", "b", "c", "c"), {"redis_tls_ca_key_password": ""},
     "redis_tls_ca_key_password (the CA key) is empty or shorter than 16 characters"),
    ("password character", ("a", "a", "b", "b", "c", "c"), {"redis_replication_password": 'has "quotes" and spaces!'},
     "redis_replication_password (user replication) contains a space, a quote"),
    ("placeholder", ("a", "a", "b", "b", "c", "c"), {"redis_admin_password": "CHANGE-ME-admin-at-least-16-chars"},
     "redis_admin_password (user admin) is still the example placeholder"),
    ("shared password", ("a", "a", "b", "b", "c", "c"), {"redis_api_password": GOOD["worker"]},
     "redis_api_password (user api) is the same as the password of user worker"),
    ("renamed variable", ("a", "a", "b", "b", "c", "c"), {"redis_cluster_node_timeout": 5000},
     "redis_cluster_node_timeout -> redis_node_timeout_ms"),
    ("unpatched source", ("a", "a", "b", "b", "c", "c"), {"redis_install_method": "source", "redis_source_version": "7.2.4"},
     "redis_source_version is 7.2.4, which lacks the fixes for CVE-2024-31449, CVE-2024-46981 and CVE-2025-49844"),
    ("other series source", ("a", "a", "b", "b", "c", "c"), {"redis_install_method": "source", "redis_source_version": "7.4.2"},
     "redis_source_version is '7.4.2': this collection runs Redis 7.2 only"),
    ("other series archive", ("a", "a", "b", "b", "c", "c"), {"redis_archive_src": "/srv/redis-7.4.1-linux-x86_64.tar.gz"},
     "a Redis 7.4 archive: this collection runs Redis 7.2 only"),
    ("other series apt", ("a", "a", "b", "b", "c", "c"), {"redis_install_method": "repository", "redis_apt_version": "6:7.4.1-1"},
     "redis_apt_version is '6:7.4.1-1': leave it empty"),
    ("wrong type", ("a", "a", "b", "b", "c", "c"), {"redis_acl_extra_users": "auditor"},
     "Elements value for option 'redis_acl_extra_users' is of type str"),
    ("not a number", ("a", "a", "b", "b", "c", "c"), {"redis_maxclients": "lots"},
     "redis_maxclients must be a whole number in [1, 10000000], got 'lots'"),
    ("wrong choice", ("a", "a", "b", "b", "c", "c"), {"redis_metrics_exporter_install_method": "docker"},
     "redis_metrics_exporter_install_method"),
    ("eviction", ("a", "a", "b", "b", "c", "c"), {"redis_maxmemory_policy": "allkeys-lru"},
     "redis_maxmemory_policy is allkeys-lru: BullMQ needs noeviction"),
    ("same address", ("a", "a", "b", "b", "c", "c"), {"redis_announce_ip": "10.0.0.9"},
     "hosts n0, n1, n2, n3, n4, n5 share the address 10.0.0.9:6379"),
    ("owned directive", ("a", "a", "b", "b", "c", "c"), {"redis_config_extra": {"maxmemory": "1gb", "notify-keyspace-events": "Ex"}},
     "redis_config_extra: maxmemory is set by the collection"),
    ("unsafe directive", ("a", "a", "b", "b", "c", "c"), {"redis_config_extra": {"rename-command": "CONFIG x"}},
     "redis_config_extra: rename-command is set by the collection"),
    ("directive value", ("a", "a", "b", "b", "c", "c"), {"redis_config_extra": {"lfu-log-factor": "10\nport 6380"}},
     "redis_config_extra: lfu-log-factor has the value"),
    ("tls auth", ("a", "a", "b", "b", "c", "c"), {"redis_tls_auth_clients": "no"}, "redis_tls_auth_clients must be one of"),
    ("byo without client certs", ("a", "a", "b", "b", "c", "c"),
     {"redis_tls_ca_cert_src": "/etc/hostname", "redis_tls_cert_src": "/etc/hostname", "redis_tls_key_src": "/etc/hostname"},
     "redis_tls_client_certs_src.admin.cert is not set"),
    ("certs on host without sources", ("a", "a", "b", "b", "c", "c"), {"redis_tls_certs_on_host": True},
     "redis_tls_certs_on_host is true but redis_tls_ca_cert_src is empty"),
    ("zone spelling", ("a", "a", "b", "b", "c", "C"), {}, "redis_zone values zone-C, zone-c differ only in case"),
    ("bad method", ("a", "a", "b", "b", "c", "c"), {"redis_install_method": "docker"}, "redis_install_method must be one of"),
    ("memory", ("a", "a", "b", "b", "c", "c"), {"redis_maxmemory_mb": 10 ** 9}, "lower redis_maxmemory_mb"),
    ("data disk", ("a", "a", "b", "b", "c", "c"), {"redis_data_disk_size_ratio": 10 ** 6},
     "Give /var/lib/redis a larger disk, lower redis_maxmemory_mb, or set redis_data_disk_check: false"),
    ("concurrency map", ("a", "a", "b", "b", "c", "c"), {"redis_metrics_exporter_bullmq_concurrency": {"critical": 0, "nope": 4}},
     "unknown queues: nope; bad numbers: critical"),
    ("two zones", ("a", "a", "a", "b", "b", "b"), {}, "zone zone-a would hold 2 of 3 primaries"),
    ("write stalls", ("a", "a", "b", "b", "c", "c"), {"redis_min_replicas_to_write": 1},
     "redis_min_replicas_to_write (1) must be below redis_cluster_replicas (1)"),
    ("zone loss breaks min-replicas", ("a", "a", "a", "a", "b", "b", "b", "c", "d"),
     {"redis_cluster_replicas": 2, "redis_min_replicas_to_write": 1},
     "zone layout cannot carry redis_min_replicas_to_write 1"),
])
def test_preflight_refuses_bad_input(tmp_path, case, zones, overrides, message):
    rc, out = run(inventory(tmp_path, zones, **overrides))
    assert rc != 0, out[-2000:]
    assert message in out, out[-3000:]
    # Nothing past preflight ran.
    assert "shardwise.redis.kernel : Set Redis sysctls" not in out
    # The refused password itself is never printed.
    for secret in ("'short'", "has \"quotes\"", "CHANGE-ME-admin", GOOD["worker"]):
        assert secret not in out


# Issue 31: ranges, ports, timings, folders and names, from one table (plugins/module_utils/limits.py) and the
# relations (plugins/filter/inputs.py), and redis.conf directive names: each refused by a preflight of site.yml.
WHOLE_INPUT = {
    "data dir is /": (
        {"redis_data_dir": "/"},
        "redis_data_dir is /, a directory of the operating system: the roles would chown it"),
    "relative data dir": (
        {"redis_data_dir": "data"},
        "redis_data_dir must be an absolute path, got 'data'"),
    "conf dir is /etc": (
        {"redis_conf_dir": "/etc"},
        "redis_conf_dir is /etc, a directory of the operating system"),
    "log dir inside data dir": (
        {"redis_log_dir": "/var/lib/redis/log"},
        "redis_log_dir (/var/lib/redis/log) is inside redis_data_dir (/var/lib/redis)"),
    "unknown directive": (
        {"redis_config_extra": {"no-such-directive": "yes"}},
        "redis_config_extra: no-such-directive is not a redis.conf directive of Redis 7.2"),
    "exporter port": (
        {"redis_port": 9121},
        "the exporter's port (redis_metrics_exporter_listen_address) is 9121, which is also redis_port"),
    "node timeout": (
        {"redis_node_timeout_ms": 50},
        "redis_node_timeout_ms must be a whole number in [2000, 20000], got 50"),
    "certificate days": (
        {"redis_tls_cert_days": 0},
        "redis_tls_cert_days must be a whole number in [1, 3650], got 0"),
    "renewal after expiry": (
        {"redis_tls_renew_days": 900},
        "redis_tls_renew_days (900) must be below redis_tls_cert_days (825)"),
    "queue twice": (
        {"redis_bullmq_queues": ["{critical}", "{critical}"]},
        "redis_bullmq_queues lists {critical} more than once"),
    "queue brace": (
        {"redis_bullmq_queues": ["critical}"]},
        "redis_bullmq_queues: queue 'critical}': an empty, unbalanced or second hash tag"),
}


@pytest.mark.parametrize("case", sorted(WHOLE_INPUT))
def test_preflight_refuses_what_the_table_and_relations_refuse(tmp_path, case):
    extra, message = WHOLE_INPUT[case]
    rc, out = run(inventory(tmp_path, **extra))
    assert rc != 0, out[-2000:]
    assert message in " ".join(out.split()), out[-3000:]
    assert "shardwise.redis.kernel : Set Redis sysctls" not in out


@pytest.mark.parametrize("playbook, extra, messages", [
    ("memory_emergency.yml", {"redis_memory_threshold_percent": 150, "redis_memory_batch_size": 100000000},
     ["redis_memory_threshold_percent must be a number in (0, 100], got 150",
      "redis_memory_batch_size must be a whole number in [1, 1000], got 100000000"]),
    ("failover_recovery.yml", {"redis_failover_window_seconds": -1, "redis_failover_takeover_nodes": ["n1", "n9"]},
     ["redis_failover_window_seconds must be a whole number in [0, 3600], got -1",
      "redis_failover_takeover_nodes names n9, which are not in the cluster group"]),
    ("queue_placement.yml", {"redis_bullmq_queues": ["{critical}"], "redis_bullmq_queue_placement": {"nope": "n1",
                                                                                                     "{critical}": "n9"}},
     ["redis_bullmq_queue_placement names nope, which are not in redis_bullmq_queues",
      "redis_bullmq_queue_placement names n9: use an inventory hostname"]),
    ("add_shard.yml", {"redis_reshard_batch_size": 0, "redis_reshard_parallel": 65},
     ["redis_reshard_batch_size must be a whole number in [1, 10000], got 0",
      "redis_reshard_parallel must be a whole number in [1, 64], got 65"]),
    ("backup.yml", {"redis_backup_keep": 0, "redis_backup_dir": "backups", "redis_backup_stage_dir": "/var/tmp"},
     ["redis_backup_keep must be a whole number in [1, 10000], got 0", "redis_backup_dir must be an absolute path",
      "redis_backup_stage_dir is /var/tmp, a directory of the operating system: the roles would delete it"]),
])
def test_runbook_refuses_bad_input_before_its_lock(tmp_path, playbook, extra, messages):
    """Every runbook checks the whole of its variables (the skeleton's first step), naming each, before it talks to
    a node or takes its lock."""
    rc, out = run(inventory(tmp_path), playbook, extra)
    said = " ".join(out.split())
    assert rc != 0, out[-2000:]
    for message in messages:
        assert message in said, out[-3000:]
    assert "Take the runbook lock" not in out and "Check which hosts answer" not in out


def test_accepted_risks_pass_preflight(tmp_path):
    """The operator can accept a zone majority and write stalls explicitly (check mode goes on)."""
    rc, out = run(inventory(tmp_path, ("a", "a", "a", "b", "b", "b"), redis_cluster_allow_zone_majority=True,
                            redis_min_replicas_to_write=1, redis_cluster_accept_write_stalls=True))
    assert "would hold" not in out and "must be below redis_cluster_replicas" not in out, out[-3000:]
    assert "Check min-replicas-to-write leaves writes available" in out
    # These hosts have no Redis yet: check mode stops after preflight, says what a real run does, exits 0.
    assert rc == 0, out[-3000:]
    assert "Check mode: n0 has no Redis yet" in " ".join(out.split())
    assert "shardwise.redis.kernel : Set Redis sysctls" not in out


def test_dns_name_that_does_not_resolve(tmp_path):
    """ansible_host as a DNS name is resolved on the controller (CLUSTER MEET takes IP addresses only);
    one that does not resolve is refused naming redis_announce_ip."""
    rc, out = run(inventory(tmp_path, address="redis-%d.shardwise.invalid"))
    assert rc != 0, out[-2000:]
    assert "ansible_host 'redis-1.shardwise.invalid' is not an IP address and does not resolve on the controller" in out
    assert "set redis_announce_ip" in out
    assert "shardwise.redis.kernel : Set Redis sysctls" not in out


def test_dns_name_is_resolved(tmp_path):
    """A name that resolves (localhost here) becomes its IP address: the hosts then share it, and the shared
    address is what preflight reports, not the name."""
    rc, out = run(inventory(tmp_path, address="localhost"))
    assert rc != 0, out[-2000:]
    assert "share the address 127.0.0.1:6379" in out, out[-3000:]


def test_address_must_be_on_the_host_and_private(tmp_path):
    """Without redis_bind, Redis listens on the announce address: one this host does not have, or a public
    one, is refused before any change."""
    rc, out = run(inventory(tmp_path, address="198.51.100.%d", redis_bind=[]))
    assert rc != 0, out[-2000:]
    assert "the announce address 198.51.100.1 (from ansible_host '198.51.100.1') is not an address of this host" in out
    rc, out = run(inventory(tmp_path, address="8.8.4.%d", redis_bind=[]))
    assert rc != 0, out[-2000:]
    assert "the announce address 8.8.4.1 (from ansible_host '8.8.4.1') is public" in out
    assert "redis_allow_public_address" in out


def test_lost_pki_folder_is_refused(tmp_path):
    """A host that already runs with a CA, and a controller PKI folder without it (a scheduler's fresh
    checkout): preflight refuses to make a new CA unless redis_tls_pki_new_ca is set."""
    conf = tmp_path / "etc-redis"
    (conf / "tls").mkdir(parents=True)
    (conf / "tls" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nrunning CA\n-----END CERTIFICATE-----\n")
    pki = tmp_path / "empty-pki"
    rc, out = run(inventory(tmp_path, redis_conf_dir=str(conf), redis_tls_pki_dir=str(pki)))
    assert rc != 0, out[-2000:]
    assert "runs with a CA certificate (%s/tls/ca.crt) that is not in redis_tls_pki_dir" % conf in out, out[-3000:]
    assert "redis_tls_pki_new_ca=true" in out
    assert not pki.exists()
    rc, out = run(inventory(tmp_path, redis_conf_dir=str(conf), redis_tls_pki_dir=str(pki), redis_tls_pki_new_ca=True))
    assert "is not in redis_tls_pki_dir" not in out, out[-3000:]


@pytest.mark.parametrize("step, files, message", [
    ("rollback", [], "redis_tls_ca_rotation"),
    ("switch", [], "there is no next CA to switch to in"),
    ("finish", ["ca.crt", "ca-next.crt"], "the next CA is prepared but does not sign yet (ca-next.crt): run with "
                                          "redis_tls_ca_rotation=switch first"),
    ("prepare", ["ca.crt", "ca-previous.crt"], "the previous rotation is not finished (ca-previous.crt is still trusted): "
                                               "run with redis_tls_ca_rotation=finish first"),
])
def test_ca_rotation_step_out_of_order_is_refused(tmp_path, step, files, message):
    """A CA rotation step the PKI folder is not ready for is refused before any host changes, naming the step
    to run instead."""
    pki = tmp_path / "pki"
    pki.mkdir()
    for name in files:
        (pki / name).write_text("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" % name)
    rc, out = run(inventory(tmp_path, redis_tls_pki_dir=str(pki), redis_tls_ca_rotation=step))
    assert rc != 0, out[-2000:]
    assert message in " ".join(out.split()), out[-3000:]
    assert sorted(p.name for p in pki.iterdir()) == sorted(files)


def test_ca_rotation_with_own_ca_is_refused(tmp_path):
    """redis_tls_ca_rotation rotates the generated CA only: with redis_tls_ca_cert_src the bundle is the user's."""
    own = tmp_path / "own"
    own.mkdir()
    for name in ("ca.crt", "node.crt", "node.key", "admin.crt", "admin.key", "metrics.crt", "metrics.key"):
        (own / name).write_text("x\n")
    rc, out = run(inventory(tmp_path, redis_tls_ca_rotation="prepare", redis_tls_ca_cert_src=str(own / "ca.crt"),
                            redis_tls_cert_src=str(own / "node.crt"), redis_tls_key_src=str(own / "node.key"),
                            redis_tls_client_certs_src={"admin": {"cert": str(own / "admin.crt"), "key": str(own / "admin.key")},
                                                        "metrics": {"cert": str(own / "metrics.crt"),
                                                                    "key": str(own / "metrics.key")}}))
    assert rc != 0, out[-2000:]
    assert "put the old and the new CA in that file (a bundle)" in " ".join(out.split()), out[-3000:]
