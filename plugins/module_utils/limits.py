# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one home of every numeric limit: the range of each module option the roles fill (OPTIONS, checked by the
module itself with option_problems) and of each redis_* variable (VARIABLES: the option it fills; SETTINGS: the
variables no module checks). The roles check their variables against the same table, with the relations between
them, through the shardwise.redis.input_problems filter (plugins/filter/checks.py): in each role's preflight
before any host changes, and in each runbook before its lock. A message names the variable and its range:
"redis_memory_threshold_percent must be in (0, 100], got 150". Pure Python, no I/O."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class Range(object):
    """A closed range [low, high] (None: unbounded), open at low with low_open; integer: whole numbers only."""

    def __init__(self, low=None, high=None, low_open=False, integer=False, why=""):
        self.low, self.high, self.low_open, self.integer, self.why = low, high, low_open, integer, why

    def text(self):
        if self.high is None:
            return "above %s" % self.low if self.low_open else "at least %s" % self.low
        return "in %s%s, %s]" % ("(" if self.low_open else "[", self.low, self.high)

    def problem(self, name, value):
        """None when value fits, else the message naming `name`."""
        kind = "a whole number" if self.integer else "a number"
        try:
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
        except (TypeError, ValueError):
            return "%s must be %s %s, got %r" % (name, kind, self.text(), value)
        wrong = (self.integer and number != int(number)) \
            or (self.low is not None and (number <= self.low if self.low_open else number < self.low)) \
            or (self.high is not None and number > self.high)
        if not wrong:
            return None
        return "%s must be %s %s, got %s%s" % (name, kind, self.text(), value, " (%s)" % self.why if self.why else "")


def _r(low, high=None, **kw):
    return Range(low, high, **kw)


def _i(low, high=None, **kw):
    return Range(low, high, integer=True, **kw)


# The range of each numeric option of the modules the runbooks call (each module checks its own parameters).
OPTIONS = {
    "redis_cluster_reshard": dict(
        atomic_slot_keys=_i(0, 10000000), batch_bytes=_i(1024, 1073741824), parallel=_i(1, 64),
        max_keys_per_second=_i(0, 100000000), batch_size=_i(1, 10000), slots_per_round=_i(1, 16384),
        pause_ms=_i(0, 60000), migrate_timeout=_i(100, 600000), wait_timeout=_i(1, 3600), replicas=_i(0, 5),
        max_memory_percent=_r(0, 100, low_open=True), threshold=_r(0, 100)),
    "redis_bullmq_cleanup": dict(
        threshold=_r(0, 100, low_open=True), completed_max_age_hours=_r(0), failed_max_age_days=_r(0),
        events_maxlen=_i(0), batch_size=_i(1, 1000), pause_ms=_i(0, 10000)),
    "redis_cluster_recover": dict(
        node_timeout=_i(100, 600000), failover_window=_i(0, 3600), replica_validity_factor=_i(0, 1000),
        wait_timeout=_i(1, 3600), replicas=_i(0, 5)),
    "redis_cluster_backup": dict(wait_timeout=_i(1, 86400)),
    "redis_cluster_handover": dict(wait_timeout=_i(1, 86400)),
    "redis_cluster_info": dict(memory_samples=_i(0, 1000)),
}

# Role variables that fill a module option: checked against that option's range, named as the variable.
VARIABLES = {
    "redis_reshard_atomic_slot_keys": ("redis_cluster_reshard", "atomic_slot_keys"),
    "redis_reshard_batch_bytes": ("redis_cluster_reshard", "batch_bytes"),
    "redis_reshard_parallel": ("redis_cluster_reshard", "parallel"),
    "redis_reshard_max_keys_per_second": ("redis_cluster_reshard", "max_keys_per_second"),
    "redis_reshard_batch_size": ("redis_cluster_reshard", "batch_size"),
    "redis_reshard_slots_per_round": ("redis_cluster_reshard", "slots_per_round"),
    "redis_reshard_pause_ms": ("redis_cluster_reshard", "pause_ms"),
    "redis_reshard_max_memory_percent": ("redis_cluster_reshard", "max_memory_percent"),
    "redis_reshard_threshold": ("redis_cluster_reshard", "threshold"),
    "redis_cluster_wait_timeout_seconds": ("redis_cluster_reshard", "wait_timeout"),
    "redis_cluster_replicas": ("redis_cluster_reshard", "replicas"),
    "redis_memory_threshold_percent": ("redis_bullmq_cleanup", "threshold"),
    "redis_memory_batch_size": ("redis_bullmq_cleanup", "batch_size"),
    "redis_memory_pause_ms": ("redis_bullmq_cleanup", "pause_ms"),
    "redis_bullmq_completed_max_age_hours": ("redis_bullmq_cleanup", "completed_max_age_hours"),
    "redis_bullmq_failed_max_age_days": ("redis_bullmq_cleanup", "failed_max_age_days"),
    "redis_bullmq_events_maxlen": ("redis_bullmq_cleanup", "events_maxlen"),
    "redis_failover_window_seconds": ("redis_cluster_recover", "failover_window"),
    "redis_node_replica_validity_factor": ("redis_cluster_recover", "replica_validity_factor"),
    "redis_backup_wait_seconds": ("redis_cluster_backup", "wait_timeout"),
}

# cluster-node-timeout: the floor and ceiling docs/failure-modes.md justifies ("How long cluster-node-timeout should
# be"): a BGSAVE's fork freezes a full node 0.5-0.8 s, and a failover must end before BullMQ's 30 s job locks expire.
NODE_TIMEOUT_WHY = ("below 2 s a BGSAVE's fork or a short VM pause fails a healthy primary over; above 20 s a failover "
                    "outlasts BullMQ's 30 s job locks and active jobs run twice")
NODE_TIMEOUT = _i(2000, 20000, why=NODE_TIMEOUT_WHY)

# Role variables no module checks: their own range.
SETTINGS = {
    "redis_port": _i(1, 55535, why="the cluster bus listens on port + 10000"),
    "redis_node_timeout_ms": NODE_TIMEOUT,
    "redis_node_ping_interval_ms": _i(0, 30000),
    "redis_fence_after_ms": _i(100, 60000),
    "redis_node_migration_barrier": _i(0, 5),
    "redis_restart_wait_seconds": _i(1, 86400),
    "redis_restart_load_mb_per_second": _r(0, low_open=True),
    "redis_stop_timeout_seconds": _i(1, 3600),
    "redis_min_replicas_max_lag_seconds": _i(1, 3600),
    "redis_min_replicas_to_write": _i(0, 5),
    "redis_maxclients": _i(1, 10000000),
    "redis_client_idle_timeout_seconds": _i(0),
    "redis_tcp_keepalive_seconds": _i(0),
    "redis_tcp_backlog": _i(1, 65535),
    "redis_limit_nofile": _i(1024),
    "redis_latency_monitor_threshold_ms": _i(0),
    "redis_logrotate_keep": _i(1, 3650),
    "redis_data_disk_size_ratio": _r(0, low_open=True),
    "redis_tls_cert_days": _i(1, 3650),
    "redis_tls_ca_days": _i(1, 36500),
    "redis_tls_renew_days": _i(1, 3649),
    "redis_tls_session_cache_timeout_seconds": _i(0),
    "redis_cluster_min_primaries": _i(3, 1000, why="failover elections need a majority of at least 3 primaries"),
    "redis_runbook_lock_ttl_seconds": _i(60, 604800),
    "redis_backup_keep": _i(1, 10000),
    "redis_metrics_exporter_bullmq_events_window_seconds": _i(60, 86400),
    "redis_metrics_exporter_bullmq_events_scan": _i(100),
    "redis_metrics_exporter_bullmq_duration_samples": _i(0, 100000),
    "redis_kernel_somaxconn": _i(128, 1048576),
    "redis_kernel_swappiness": _i(0, 100),
    "redis_kernel_file_max": _i(65536),
    "redis_runbook_timer_keep_reports": _i(1, 100000),
    "redis_runbook_timer_timeout_seconds": _i(60, 604800),
    "redis_runbook_timer_randomized_delay_seconds": _i(0, 86400),
}


def option_problems(module, values):
    """One message per option of `module` in `values` outside its range. values: {option: value}; options
    without a limit (or None: not given) are skipped."""
    limits = OPTIONS[module]
    return [p for p in (limits[o].problem(o, v) for o, v in sorted(values.items()) if o in limits and v is not None) if p]


def limit_of(name):
    """The Range of a role variable, or None."""
    if name in SETTINGS:
        return SETTINGS[name]
    if name in VARIABLES:
        module, option = VARIABLES[name]
        return OPTIONS[module][option]
    return None


def variable_problems(values):
    """One message per role variable in `values` ({name: value}) outside its range; names without a limit, and
    None values (optional, not set), are skipped."""
    problems = []
    for name, value in sorted(values.items()):
        limit = limit_of(name)
        if limit is not None and value is not None and value != "":
            problem = limit.problem(name, value)
            if problem:
                problems.append(problem)
    return problems


def limited_names():
    """Every role variable with a range (for the roles' query of their values)."""
    return sorted(set(SETTINGS) | set(VARIABLES))
