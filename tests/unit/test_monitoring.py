"""The Grafana dashboard and the Prometheus rules only use metrics the exporter really exposes.

Exposed metrics come from /metrics of the lab's redis_exporter (a primary and a replica, the exporter
role's configuration), saved in tests/unit/fixtures/exporter-metrics-*.txt.
"""
import json
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "unit", "fixtures")
DASHBOARD = os.path.join(ROOT, "roles", "exporter", "files", "grafana", "redis-cluster.json")
RULES = os.path.join(ROOT, "roles", "exporter", "files", "prometheus", "redis-rules.yml")

FUNCTIONS = {
    "sum", "min", "max", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "rate", "irate", "increase", "delta", "deriv", "label_replace", "clamp_min", "clamp_max", "and", "or",
    "unless", "offset", "bool", "abs", "absent", "histogram_quantile", "topk", "bottomk", "time", "vector",
    "timestamp",
}


def exposed():
    names = set()
    samples = {}
    for name in ("exporter-metrics-primary.txt", "exporter-metrics-replica.txt"):
        with open(os.path.join(FIX, name)) as fh:
            for line in fh:
                if line.strip() and not line.startswith("#"):
                    metric = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
                    names.add(metric)
                    samples.setdefault(metric, []).append(line)
    return names, samples


def rules():
    with open(RULES) as fh:
        return [r for g in yaml.safe_load(fh)["groups"] for r in g["rules"]]


def metric_names(expr):
    expr = re.sub(r'"[^"]*"', '""', expr)              # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)               # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)              # ranges
    expr = re.sub(r"\boffset\s+\d+[smhdwy]\b", "", expr)  # offsets
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\$\w+", "", expr)                   # grafana variables
    tokens = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
    return {t for t in tokens if t not in FUNCTIONS}


def test_fixtures_hold_the_collect_script_metrics():
    names, samples = exposed()
    assert {"redis_up", "redis_cluster_state", "redis_script_values", "redis_slave_info"} <= names
    keys = "".join(samples["redis_script_values"])
    assert 'key="cluster_open_slots"' in keys and 'key="bullmq_jobs:critical:completed"' in keys
    # Captured by tests/harness/shardwise_harness/bullmq_signals.py --capture after a workload with trimmed sets, failures,
    # a stalled job, kept jobs and a global concurrency.
    for key in ("aof_rewrites", "bullmq_events:high:failed", "bullmq_events:high:stalled", "bullmq_events_window_seconds:high",
                "bullmq_added_total:high", "bullmq_concurrency:scheduled", "bullmq_duration_p95_seconds:scheduled"):
        assert 'key="%s"' % key in keys, key


def test_every_rule_uses_exposed_metrics():
    names, _unused = exposed()
    recorded = {r["record"] for r in rules() if "record" in r}
    for rule in rules():
        unknown = metric_names(rule["expr"]) - names - recorded
        assert not unknown, "%s uses %s" % (rule.get("alert") or rule.get("record"), unknown)


def test_rules_have_severity_and_summary():
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_spec_alerts_are_all_there():
    alerts = {r["alert"] for r in rules() if "alert" in r}
    assert {"RedisMemoryHigh", "RedisMemoryCritical", "RedisClusterStateNotOk", "RedisClusterSlotsNotOk",
            "RedisTooManyConnections", "RedisRejectedConnections", "RedisEvictions", "RedisRdbSaveFailed",
            "RedisAofWriteFailed", "RedisSlowQueries", "RedisReplicationLag", "RedisHighCpu",
            "RedisReplicaInPrimaryZone", "RedisClusterOpenSlots", "BullMQWaitingBacklog",
            "BullMQFailedJobsRising", "BullMQStalledJobs"} <= alerts
    # What clients see (docs/failure-modes.md).
    assert {"RedisPrimaryWithoutReplica", "RedisWritesRejected", "RedisZoneHoldsPrimaryMajority",
            "RedisPrimaryCutOff"} <= alerts
    # The spec's signals that survive BullMQ's trimming, and its missing ones (issue 16).
    assert {"BullMQWorkersSaturated", "RedisMemoryFragmentationHigh", "RedisRdbSaveOverdue",
            "RedisAofRewriteOverdue"} <= alerts
    records = {r["record"] for r in rules() if "record" in r}
    assert {"bullmq:events:per_second", "bullmq:failed:ratio", "bullmq:added:per_second", "bullmq:concurrency",
            "bullmq:job_duration_seconds:p95", "redis:keyspace_hit_ratio", "redis:rdb_last_save_age_seconds",
            "redis:aof_last_rewrite_age_seconds"} <= records


def test_trimmed_sets_do_not_drive_the_failure_and_stalled_alerts():
    """removeOnComplete/removeOnFail shrink the completed and failed sets, and the stalled set only holds
    candidates: the failure, stalled and throughput signals read the event stream instead."""
    by_name = {r.get("alert") or r.get("record"): r["expr"] for r in rules()}
    for name in ("BullMQFailedJobsRising", "BullMQStalledJobs"):
        assert "bullmq:events" in by_name[name] and "bullmq:jobs" not in by_name[name], name
    throughput = [p for p in load_dashboard()["panels"] if "throughput" in p["title"].lower()][0]
    assert not any('state="completed"' in t["expr"] or 'state="failed"' in t["expr"] for t in throughput["targets"])


def load_dashboard():
    with open(DASHBOARD) as fh:
        return json.load(fh)


def test_dashboard_has_a_datasource_variable_and_uses_it():
    dash = load_dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize("panel", load_dashboard()["panels"], ids=lambda p: p["title"])
def test_every_panel_query_uses_exposed_metrics(panel):
    names, _unused = exposed()
    recorded = {r["record"] for r in rules() if "record" in r}
    for target in panel["targets"]:
        used = metric_names(target["expr"])
        assert used, target["expr"]
        assert not used - names - recorded, (panel["title"], used - names - recorded)


def test_dashboard_covers_the_asked_topics():
    titles = " ".join(p["title"].lower() for p in load_dashboard()["panels"])
    for topic in ("cluster state", "memory", "commands per second", "clients", "bullmq jobs waiting",
                  "throughput", "replication", "slots", "failure ratio", "marked stalled", "vs concurrency",
                  "duration p95", "fragmentation", "hit ratio", "rdb save", "aof rewrite"):
        assert topic in titles, topic


def test_metric_name_extraction():
    assert metric_names('max by (a) (label_replace(x{k="v"}, "q", "$1", "key", "(.*)")) > 3') == {"x"}
    assert metric_names("rate(a_total[5m]) + rate(b_total[$__rate_interval])") == {"a_total", "b_total"}
    assert metric_names("x - x offset 2m > 0") == {"x"}


def test_dashboard_file_is_the_generator_output():
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen_dashboard", os.path.join(ROOT, "tools", "dev", "gen_dashboard.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build() == load_dashboard(), "run tools/dev/gen_dashboard.py"


def test_every_script_value_the_rules_and_dashboard_read_is_exported():
    """redis_script_values keys (exact or regex matchers) used by rules and panels exist in the captures."""
    _unused, samples = exposed()
    keys = set(re.findall(r'key="([^"]+)"', "".join(samples["redis_script_values"])))
    text = open(RULES).read() + open(DASHBOARD).read().replace('\\"', '"')
    for op, wanted in re.findall(r'redis_script_values\{[^}]*?key(=~|=)"([^"]+)"', text):
        if op == "=":
            assert wanted in keys, wanted
        else:
            assert any(re.fullmatch(wanted, k) for k in keys), wanted
