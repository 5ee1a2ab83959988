"""input_problems: every variable's range (module_utils/limits.py) and the relations between them, each refusal
naming the variable; the defaults of every role pass."""
import os

import pytest
import yaml

from ansible_collections.shardwise.redis.plugins.filter.inputs import UNDEFINED, input_names, input_problems
from ansible_collections.shardwise.redis.plugins.module_utils.limits import OPTIONS, VARIABLES, option_problems

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
HOSTS = ["redis-a1", "redis-a2", "redis-b1", "redis-b2", "redis-c1", "redis-c2"]


def defaults():
    """Every role's literal defaults, as a role sees them (templated ones are left out)."""
    values = {}
    for role in os.listdir(os.path.join(ROOT, "roles")):
        path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
        if os.path.exists(path):
            with open(path) as fh:
                for name, value in (yaml.safe_load(fh) or {}).items():
                    if not (isinstance(value, str) and "{{" in value):
                        values[name] = value
    return values


GOOD = dict(defaults(), redis_bullmq_queues=["{critical}", "{default}", "reports"],
            redis_bullmq_queue_placement={"{critical}": "redis-a1", "reports": "stay"},
            redis_backup_dir="/srv/backups/redis", redis_runbook_report_dir="/var/lib/shardwise/reports",
            redis_tls_pki_dir="/srv/ansible/inventories/prod/pki", redis_backup_stage_dir="/var/lib/shardwise-redis-backup")


def test_the_defaults_pass():
    assert input_problems(GOOD, inventory=HOSTS) == []


def test_undefined_values_are_not_checked():
    assert input_problems({"redis_port": UNDEFINED, "redis_data_dir": UNDEFINED}) == []
    assert set(input_names()) >= {"redis_port", "redis_data_dir", "redis_memory_threshold_percent",
                                  "redis_bullmq_queues", "redis_metrics_exporter_listen_address"}


@pytest.mark.parametrize("change, message", [
    # ranges, from the one table
    (dict(redis_node_timeout_ms=50), "redis_node_timeout_ms must be a whole number in [2000, 20000], got 50 (below 2 s"),
    (dict(redis_node_timeout_ms=30000), "redis_node_timeout_ms must be a whole number in [2000, 20000], got 30000"),
    (dict(redis_port=60000), "redis_port must be a whole number in [1, 55535], got 60000 (the cluster bus"),
    (dict(redis_tls_cert_days=0), "redis_tls_cert_days must be a whole number in [1, 3650], got 0"),
    (dict(redis_memory_threshold_percent=150), "redis_memory_threshold_percent must be a number in (0, 100], got 150"),
    (dict(redis_memory_threshold_percent=0), "redis_memory_threshold_percent must be a number in (0, 100], got 0"),
    (dict(redis_memory_batch_size=100000000), "redis_memory_batch_size must be a whole number in [1, 1000], got 100000000"),
    (dict(redis_failover_window_seconds=-1), "redis_failover_window_seconds must be a whole number in [0, 3600], got -1"),
    (dict(redis_reshard_batch_size=0), "redis_reshard_batch_size must be a whole number in [1, 10000], got 0"),
    (dict(redis_reshard_parallel="many"), "redis_reshard_parallel must be a whole number in [1, 64], got 'many'"),
    (dict(redis_restart_wait_seconds=-5), "redis_restart_wait_seconds must be a whole number in [1, 86400], got -5"),
    (dict(redis_stop_timeout_seconds="soon"), "redis_stop_timeout_seconds must be a whole number in [1, 3600], got 'soon'"),
    (dict(redis_node_ping_interval_ms=-1), "redis_node_ping_interval_ms must be a whole number in [0, 30000], got -1"),
    (dict(redis_backup_keep=0), "redis_backup_keep must be a whole number in [1, 10000], got 0"),
    (dict(redis_metrics_exporter_bullmq_events_window_seconds=10),
     "redis_metrics_exporter_bullmq_events_window_seconds must be a whole number in [60, 86400], got 10"),
    (dict(redis_runbook_timer_keep_reports=0), "redis_runbook_timer_keep_reports must be a whole number in [1, 100000], got 0"),
    # ports
    (dict(redis_port=9121, redis_metrics_exporter_listen_address=":9121"),
     "the exporter's port (redis_metrics_exporter_listen_address) is 9121, which is also redis_port"),
    (dict(redis_port=22), "the SSH port (ansible_port) is 22, which is also redis_port"),
    (dict(redis_port=6379, ansible_port=16379), "the SSH port (ansible_port) is 16379, which is also the cluster bus port"),
    (dict(redis_metrics_exporter_listen_address="0.0.0.0:http"), "redis_metrics_exporter_listen_address must end in :<port>"),
    # timings and limits in step
    (dict(redis_tls_renew_days=900), "redis_tls_renew_days (900) must be below redis_tls_cert_days (825)"),
    (dict(redis_tls_cert_days=3650, redis_tls_ca_days=1000), "redis_tls_cert_days (3650) must be at most redis_tls_ca_days"),
    (dict(redis_node_ping_interval_ms=3000), "redis_node_ping_interval_ms (3000) must be at most half of redis_node_timeout_ms"),
    (dict(redis_fence_after_ms=400), "redis_fence_after_ms (400) must be at least 2 x the ping interval (250 ms)"),
    (dict(redis_node_ping_interval_ms=0), "redis_fence_after_ms (1000) must be at least 2 x the ping interval (2500 ms, "
                                          "node timeout / 2 with redis_node_ping_interval_ms 0)"),
    (dict(redis_fence_after_ms=5000), "redis_fence_after_ms (5000) must be below redis_node_timeout_ms (5000)"),
    (dict(redis_fence_after_ms=50), "redis_fence_after_ms must be a whole number in [100, 60000], got 50"),
    (dict(redis_failover_window_seconds=2), "redis_failover_window_seconds (2) must be at least redis_node_timeout_ms in seconds (5)"),
    (dict(redis_limit_nofile=2048, redis_maxclients=10000), "redis_limit_nofile (2048) must be at least redis_maxclients + 32"),
    (dict(redis_tcp_backlog=8192), "redis_tcp_backlog (8192) must be at most redis_kernel_somaxconn (4096)"),
    # folders
    (dict(redis_data_dir="/"), "redis_data_dir is /, a directory of the operating system: the roles would chown it"),
    (dict(redis_data_dir="data"), "redis_data_dir must be an absolute path, got 'data'"),
    (dict(redis_conf_dir="/etc"), "redis_conf_dir is /etc, a directory of the operating system"),
    (dict(redis_log_dir="/var/log"), "redis_log_dir is /var/log, a directory of the operating system"),
    (dict(redis_install_root="/usr/local"), "redis_install_root is /usr/local, a directory of the operating system"),
    (dict(redis_backup_stage_dir="/var/tmp"), "redis_backup_stage_dir is /var/tmp, a directory of the operating system: "
                                              "the roles would delete it"),
    (dict(redis_data_dir="/proc/redis"), "redis_data_dir is /proc/redis, a directory of the operating system"),
    (dict(redis_data_dir="/var/lib/redis/"), "redis_data_dir is '/var/lib/redis/': write it normalised, as /var/lib/redis"),
    (dict(redis_data_dir="/srv/../var/lib/redis"), "write it normalised, as /var/lib/redis"),
    (dict(redis_log_dir="/var/lib/redis"), "redis_data_dir and redis_log_dir are both /var/lib/redis"),
    (dict(redis_log_dir="/var/lib/redis/log"), "redis_log_dir (/var/lib/redis/log) is inside redis_data_dir (/var/lib/redis)"),
    (dict(redis_backup_stage_dir="/var/lib/redis/stage"), "redis_backup_stage_dir (/var/lib/redis/stage) is inside redis_data_dir"),
    (dict(redis_backup_dir="backups"), "redis_backup_dir must be an absolute path, got 'backups'"),
    (dict(redis_tls_pki_dir="/root"), "redis_tls_pki_dir is /root, a directory of the operating system"),
    (dict(redis_conf_dir="/etc/redis-exporter"), "redis_conf_dir is /etc/redis-exporter, which holds or is the exporter "
                                                 "role's folder"),
    (dict(redis_link_dir="bin"), "redis_link_dir must be an absolute path, got 'bin'"),
    (dict(redis_reshard_progress_path="/var/log"), "redis_reshard_progress_path is /var/log, a directory of the operating"),
    (dict(redis_reshard_progress_path="progress.jsonl"), "redis_reshard_progress_path must be an absolute path"),
    # names
    (dict(redis_bullmq_queues=["{critical}", "{critical}"]), "redis_bullmq_queues lists {critical} more than once"),
    (dict(redis_bullmq_queues=["critical}"]), "redis_bullmq_queues: queue 'critical}': an empty, unbalanced or second hash tag"),
    (dict(redis_bullmq_queues=["a}b{c"]), "redis_bullmq_queues: queue 'a}b{c': an empty, unbalanced or second hash tag"),
    (dict(redis_bullmq_queues=["jobs:eu"]), "BullMQ refuses ':' in queue names"),
    (dict(redis_bullmq_queues=["jobs *"]), "spaces and glob characters"),
    (dict(redis_bullmq_queues="critical"), "redis_bullmq_queues must be a list of queue names"),
    (dict(redis_bullmq_queue_placement={"nope": "redis-a1"}), "redis_bullmq_queue_placement names nope, which are not in "
                                                              "redis_bullmq_queues"),
    (dict(redis_bullmq_queue_placement={"reports": "redis-z9"}), "redis_bullmq_queue_placement names redis-z9: use an "
                                                                 "inventory hostname"),
    (dict(redis_failover_takeover_nodes=["redis-a2", "redis-q1"]), "redis_failover_takeover_nodes names redis-q1, which are "
                                                                   "not in the cluster group"),
    (dict(redis_remove_hosts=["redis-x1"]), "redis_remove_hosts names redis-x1, which are not in the cluster group"),
])
def test_each_bad_input_is_named(change, message):
    found = input_problems(dict(GOOD, **change), inventory=HOSTS)
    assert any(message in p for p in found), found


def test_the_fence_timing_is_not_checked_when_the_fence_is_off():
    assert input_problems(dict(GOOD, redis_fence=False, redis_fence_after_ms=400), inventory=HOSTS) == []


def test_module_options_and_their_variables_share_one_range():
    """A module refuses what its role variable's check refuses, with the same bounds."""
    for name, (module, option) in VARIABLES.items():
        assert option in OPTIONS[module], (name, module, option)
    assert option_problems("redis_bullmq_cleanup", {"threshold": 150, "batch_size": 50}) == [
        "threshold must be a number in (0, 100], got 150"]
    assert input_problems({"redis_memory_threshold_percent": 150}) == [
        "redis_memory_threshold_percent must be a number in (0, 100], got 150"]
    assert option_problems("redis_cluster_recover", {"failover_window": None, "node_timeout": 5000}) == []
