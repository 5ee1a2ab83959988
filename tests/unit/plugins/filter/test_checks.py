"""acl_password_problems: every class of bad password is named with its variable, never shown."""
import os
import re

import pytest

from ansible_collections.shardwise.redis.plugins.filter.checks import (
    OWNED_DIRECTIVES, acl_password_count, acl_password_problems, acl_rotation_problems, cluster_input_problems,
    previous_password_problems, config_extra_problems, runbook_timer_problems, series_problems,
    server_input_problems)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def users(**passwords):
    base = dict(admin="adm-7d1c9e2b4f6a8c0e", worker="wrk-1a2b3c4d5e6f7a8b", api="api-9f8e7d6c5b4a3928")
    base.update(passwords)
    return [dict(name=n, password=p, var="redis_%s_password" % n) for n, p in base.items()]


def test_good_passwords_pass():
    assert acl_password_problems(users()) == []
    assert acl_password_problems(users(admin="a-Z_0.9:!#$%&()*+,/;<=>?@[]^`{|}~xyz")) == []


def test_each_problem_names_the_variable_and_never_the_password():
    cases = {
        "x9q": "redis_admin_password (user admin) is empty or shorter than 16 characters",
        "with space 1234567890": "redis_admin_password (user admin) contains a space, a quote, a backslash",
        'with"quote1234567890': "contains a space, a quote",
        "back\\slash1234567890": "contains a space, a quote",
        "caf\u00e9-1234567890abcdef": "non-ASCII",
        "CHANGE-ME-admin-at-least-16-chars": "is still the example placeholder",
        "changeme-changeme-changeme": "is still the example placeholder",
        "wrk-1a2b3c4d5e6f7a8b": "redis_worker_password (user worker) is the same as the password of user admin",
    }
    for password, message in cases.items():
        problems = acl_password_problems(users(admin=password))
        assert any(message in p for p in problems), (password, problems)
        assert not any(password in p for p in problems)


def test_extra_users_named_default_or_twice_are_refused():
    extra = [dict(name="default", password="dfl-0a1b2c3d4e5f6a7b", var="redis_acl_extra_users[].password"),
             dict(name="api", password="ap2-0a1b2c3d4e5f6a7b", var="redis_acl_extra_users[].password")]
    problems = acl_password_problems(users() + extra)
    assert any("other than 'default'" in p for p in problems)
    assert any(p == "ACL user api is defined twice: rename the extra user in redis_acl_extra_users" for p in problems)


GOOD_SERVER = dict(redis_maxmemory_policy="noeviction", redis_port=6379, redis_node_timeout_ms=5000,
                   redis_restart_wait_seconds=120, redis_stop_timeout_seconds=300, redis_min_replicas_max_lag_seconds=10,
                   redis_maxclients=10000, redis_maxmemory_mb=28000, redis_client_idle_timeout_seconds=0,
                   redis_tcp_keepalive_seconds=300, redis_node_ping_interval_ms=250, redis_min_replicas_to_write=0,
                   redis_bullmq_prefix="bull", redis_tls_protocols="TLSv1.2 TLSv1.3", redis_save=["900 1", "300 10"],
                   redis_announce_ip="10.0.1.11", redis_tls_ca_cert_src="", redis_tls_cert_src="", redis_tls_key_src="",
                   redis_tls_client_certs_src={})


def test_good_server_inputs_pass():
    assert server_input_problems(GOOD_SERVER) == []
    assert server_input_problems(dict(GOOD_SERVER, redis_save=[], redis_tls_protocols="TLSv1.3",
                                      redis_announce_ip="fd00::11")) == []


def test_each_bad_server_input_is_named():
    cases = [
        (dict(redis_maxmemory_policy="allkeys-lru"), "redis_maxmemory_policy is allkeys-lru: BullMQ needs noeviction"),
        (dict(redis_bullmq_prefix=""), "redis_bullmq_prefix is ''"),
        (dict(redis_bullmq_prefix="*"), "redis_bullmq_prefix is '*'"),
        (dict(redis_bullmq_prefix="bull{x}"), "braces"),
        (dict(redis_tls_protocols="TLSv1 TLSv1.2"), "redis_tls_protocols is 'TLSv1 TLSv1.2'"),
        (dict(redis_save=["900"]), "redis_save is ['900']"),
        (dict(redis_save="900 1"), "redis_save is '900 1'"),
        (dict(redis_save=["0 1"]), "whole numbers above 0"),
        (dict(redis_announce_ip="redis-a1.example.com"), "redis_announce_ip is 'redis-a1.example.com': it must be an IP"),
        (dict(redis_tls_ca_cert_src="/nonexistent/ca.crt"), "redis_tls_ca_cert_src is '/nonexistent/ca.crt': no such file"),
        (dict(redis_tls_ca_cert_src=__file__, redis_tls_cert_src=__file__, redis_tls_key_src=__file__,
              redis_tls_client_certs_src={"admin": {"cert": __file__}}), "redis_tls_client_certs_src.admin.key is not set"),
        (dict(redis_tls_ca_cert_src=__file__, redis_tls_cert_src=__file__, redis_tls_key_src=__file__),
         "redis_tls_client_certs_src.metrics.cert is not set"),
        (dict(redis_tls_ca_cert_src=__file__, redis_tls_cert_src=__file__, redis_tls_key_src=__file__,
              redis_tls_client_certs_src=["admin"]), "redis_tls_client_certs_src is ['admin']: it must be a mapping"),
        (dict(redis_tls_certs_on_host=True), "redis_tls_certs_on_host is true but redis_tls_ca_cert_src is empty"),
        (dict(redis_tls_auth_clients=True), "redis_tls_auth_clients is True: use \"yes\""),
        (dict(redis_config_extra={"appendfsync": "always"}), "redis_config_extra: appendfsync is set by the collection"),
        (dict(redis_config_extra={"include": "/tmp/x.conf"}), "redis_config_extra: include is set by the collection"),
        (dict(redis_config_extra={"Bad Name": 1}), "redis_config_extra: 'Bad Name' is not a redis.conf directive"),
        (dict(redis_config_extra={"no-such-directive": "yes"}),
         "redis_config_extra: no-such-directive is not a redis.conf directive of Redis 7.2 (Redis would refuse to start)"),
        (dict(redis_config_extra={"loadmodule": "/opt/redis/lib/rejson.so"}),
         "redis_config_extra: loadmodule is set by the collection"),
        (dict(redis_config_extra={"lfu-log-factor": {"a": 1}}), "redis_config_extra: lfu-log-factor has the value"),
        (dict(redis_config_extra="notify-keyspace-events Ex"), "redis_config_extra is 'notify-keyspace-events Ex'"),
        (dict(announce_address="10.9.9.9", announce_from="ansible_host '10.9.9.9'", host_addresses=["10.0.1.11"]),
         "the announce address 10.9.9.9 (from ansible_host '10.9.9.9') is not an address of this host (it has 10.0.1.11)"),
        (dict(announce_address="203.0.113.300", announce_from="x"), "the announce address '203.0.113.300' (from x) is not an IP"),
        (dict(announce_address="8.8.8.8", announce_from="ansible_host '8.8.8.8'", host_addresses=["8.8.8.8"]),
         "the announce address 8.8.8.8 (from ansible_host '8.8.8.8') is public"),
    ]
    for change, message in cases:
        problems = server_input_problems(dict(GOOD_SERVER, **change))
        assert any(message in p for p in problems), (change, problems)


def test_cluster_inputs_same_address_and_zone_spelling():
    nodes = [dict(name="a1", host="10.0.1.11", port=6379, zone="zone-a"),
             dict(name="a2", host="10.0.1.11", port=6379, zone="Zone-A"),
             dict(name="b1", host="10.0.2.11", port=6379, zone="zone-b")]
    problems = cluster_input_problems(nodes)
    assert "hosts a1, a2 share the address 10.0.1.11:6379" in problems[0]
    assert "redis_zone values Zone-A, zone-a differ only in case" in problems[1]
    assert cluster_input_problems([dict(n, host="10.0.%d.1" % i, zone="z%d" % i) for i, n in enumerate(nodes)]) == []


def test_addresses_accepted():
    """An announce address on the host, a NAT address with redis_bind, and an allowed public address pass."""
    ok = dict(GOOD_SERVER, announce_address="10.0.1.11", announce_from="ansible_host '10.0.1.11'",
              host_addresses=["10.0.1.11", "192.168.7.2"])
    assert server_input_problems(ok) == []
    assert server_input_problems(dict(ok, announce_address="10.9.9.9", redis_bind=["10.0.1.11"])) == []
    assert server_input_problems(dict(ok, announce_address="8.8.8.8", host_addresses=["8.8.8.8"],
                                      redis_allow_public_address=True)) == []


def test_config_extra_accepted_and_owned_directives_cover_the_template():
    """Directives the collection does not own pass (lists and booleans too); every directive redis.conf.j2
    writes is owned, so redis_config_extra can never set one twice."""
    assert config_extra_problems({"notify-keyspace-events": "Ex", "lfu-log-factor": 10, "jemalloc-bg-thread": True,
                                  "latency-tracking-info-percentiles": ["50 99 99.9"]}) == []
    with open(os.path.join(ROOT, "roles", "server", "templates", "redis.conf.j2")) as fh:
        written = set(re.findall(r"(?m)^([a-z][a-z0-9-]+) ", fh.read()))
    assert len(written) > 80
    assert written <= OWNED_DIRECTIVES, sorted(written - OWNED_DIRECTIVES)


GIB = 1 << 30
DISK = dict(GOOD_SERVER, redis_data_dir="/var/lib/redis", redis_maxmemory_mb=28 * 1024, redis_data_disk_size_ratio=3,
            redis_data_disk_check=True)


def mounts(size_gib, free_gib, where="/var/lib/redis"):
    return [{"mount": "/", "size_total": 10 * GIB, "size_available": 5 * GIB},
            {"mount": where, "size_total": size_gib * GIB, "size_available": free_gib * GIB}]


def test_data_disk_of_the_reference_design_passes():
    # 100 GB for a 28 GB node (the reference sizing) and enough free.
    assert server_input_problems(dict(DISK, mounts=mounts(100, 60))) == []


def test_data_disk_too_small_for_maxmemory_is_refused_with_the_fix():
    problems = server_input_problems(dict(DISK, mounts=mounts(50, 49)))
    assert len(problems) == 1
    assert "/var/lib/redis (on /var/lib/redis) is 50.0 GiB" in problems[0] and "needs 84.0 GiB" in problems[0]
    assert "redis_maxmemory_mb" in problems[0] and "redis_data_disk_check: false" in problems[0]


def test_data_disk_is_the_longest_mount_above_the_data_dir():
    # No separate data mount: the root filesystem (10 GiB) holds /var/lib/redis.
    problems = server_input_problems(dict(DISK, mounts=mounts(500, 400, where="/srv")))
    assert len(problems) == 1 and "(on /) is 10.0 GiB" in problems[0]
    # A mount whose name only starts like the data dir does not count.
    problems = server_input_problems(dict(DISK, mounts=mounts(500, 400, where="/var/lib/red")))
    assert "(on /) is 10.0 GiB" in problems[0]


def test_data_disk_without_room_for_a_save_is_refused():
    problems = server_input_problems(dict(DISK, mounts=mounts(100, 20)))
    assert len(problems) == 1 and "has 20.0 GiB free" in problems[0] and "needs 28.0 GiB" in problems[0]


def test_data_disk_check_can_be_skipped_and_needs_facts():
    assert server_input_problems(dict(DISK, mounts=mounts(50, 1), redis_data_disk_check=False)) == []
    assert server_input_problems(dict(DISK, mounts=[])) == []


@pytest.mark.parametrize("inputs, problem", [
    ({"redis_install_method": "source", "redis_source_version": "7.2.15"}, None),
    ({"redis_install_method": "source", "redis_source_version": "7.4.0"}, "redis_source_version is '7.4.0'"),
    ({"redis_install_method": "source", "redis_source_version": "7.20.1"}, "redis_source_version is '7.20.1'"),
    ({"redis_install_method": "archive", "redis_archive_src": "/x/redis-7.2.4-linux-x86_64.tar.gz"}, None),
    ({"redis_install_method": "archive", "redis_archive_src": "/x/redis-7.2.4-build2-linux-x86_64.tar.gz"}, None),
    ({"redis_install_method": "archive", "redis_archive_src": "/x/redis.tar.gz"}, None),
    ({"redis_install_method": "archive", "redis_archive_src": "/x/redis-8.0.2.tar.gz"}, "a Redis 8.0 archive"),
    ({"redis_install_method": "repository", "redis_apt_pin": "6:7.2.*", "redis_apt_version": ""}, None),
    ({"redis_install_method": "repository", "redis_apt_pin": "6:7.2.*", "redis_apt_version": "latest"}, None),
    ({"redis_install_method": "repository", "redis_apt_pin": "6:7.2.*", "redis_apt_version": "6:7.2.15-1rl1~bookworm1"}, None),
    ({"redis_install_method": "repository", "redis_apt_pin": "6:7.4.*", "redis_apt_version": ""}, "redis_apt_pin is '6:7.4.*'"),
    ({"redis_install_method": "repository", "redis_apt_pin": "6:7.2.*", "redis_apt_version": "7.4.1"}, "redis_apt_version is '7.4.1'"),
])
def test_only_the_7_2_series_is_accepted(inputs, problem):
    found = series_problems(inputs)
    assert (found == []) if problem is None else (len(found) == 1 and problem in found[0])


@pytest.mark.parametrize("timers, inventory, problem", [
    ([{"runbook": "failover_recovery", "on_calendar": "*:0/5"}, {"runbook": "memory_emergency", "on_calendar": "hourly"}],
     "/etc/inv", None),
    ([], "/etc/inv", None),
    ([{"runbook": "add_shard", "on_calendar": "daily"}], "/etc/inv", "redis_runbook_timers[0].runbook is 'add_shard'"),
    ([{"runbook": "failover_recovery", "on_calendar": "daily"}, {"runbook": "failover_recovery", "on_calendar": "hourly"}],
     "/etc/inv", "failover_recovery is listed twice"),
    ([{"runbook": "failover_recovery", "on_calendar": ""}], "/etc/inv", "on_calendar is ''"),
    ([{"runbook": "failover_recovery", "when": "daily"}], "/etc/inv", "each entry is {runbook"),
    ("failover_recovery", "/etc/inv", "must be a list"),
    ([], "", "redis_runbook_timer_inventory is empty"),
])
def test_runbook_timer_inputs(timers, inventory, problem):
    found = runbook_timer_problems(timers, inventory)
    assert (found == []) if problem is None else (len(found) == 1 and problem in found[0]), found


def test_previous_passwords_name_known_users_differ_from_the_current_ones_and_are_never_shown():
    current = users()
    assert previous_password_problems({}, current) == [] and previous_password_problems(None, current) == []
    old = "an-old-worker-password-1"
    assert previous_password_problems({"worker": old}, current) == []
    problems = previous_password_problems({"wroker": old, "worker": "", "api": current[2]["password"],
                                           "admin": "with space inside it"}, current)
    assert any("names wroker, which is not an ACL user" in p for p in problems)
    assert any("previous_passwords.worker is empty" in p for p in problems)
    assert any("previous_passwords.api equals the current password of api" in p for p in problems)
    assert any("previous_passwords.admin contains characters" in p for p in problems)
    assert len(problems) == 4 and not any(old in p or current[2]["password"] in p for p in problems)
    assert previous_password_problems(["worker"], current) == [
        "redis_acl_previous_passwords must be a map of ACL user to its previous password, e.g. {worker: <old>}"]


def test_a_rotation_is_checked_against_the_hashes_each_node_holds():
    import hashlib

    def h(password):
        return "#" + hashlib.sha256(password.encode()).hexdigest()
    current = users()
    old = "an-old-worker-password-1"
    overlap = ["user default off resetpass ~* &* +@all",
               "user admin on %s ~* &* +@all" % h(current[0]["password"]),
               "user worker on %s %s ~bull:* -@all" % (h(old), h(current[1]["password"])),
               "user api on %s ~bull:* -@all" % h(current[2]["password"])]
    assert acl_rotation_problems(overlap, current, {"worker": old}) == []
    assert acl_rotation_problems(overlap, current, {}) == ["worker"]  # the old one must be gone after the rotation
    stale = [overlap[0], overlap[1], "user worker on %s ~bull:*" % h(old), overlap[3]]
    assert acl_rotation_problems(stale, current, {"worker": old}) == ["worker"]  # the reload did not take
    assert acl_rotation_problems(overlap[:2], current, {"worker": old}) == ["worker", "api"]
    assert acl_password_count("worker", {"worker": old}) == "worker (2 passwords)"
    assert acl_password_count("api", {"worker": old}) == "api (1 password)"
