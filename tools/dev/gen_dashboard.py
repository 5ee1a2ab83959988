"""Write roles/exporter/files/grafana/redis-cluster.json (Grafana dashboard, provisioning-ready).

Run after editing the panel table below; tests/unit/test_monitoring.py checks every query uses
metrics the exporter exposes.
"""
import json

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'redis_cluster=~"$cluster"'

# (title, type, unit, [(expr, legend)], description)
PANELS = [
    ("Cluster state per node", "stat", "none", [(f'min by (node) (redis_cluster_state{{{SEL}}})', "{{node}}")],
     "1 = cluster_state:ok as seen by each node, 0 = fail."),
    ("Slots ok (of 16384)", "stat", "none", [(f'min(redis_cluster_slots_ok{{{SEL}}})', "slots ok")],
     "Lowest slot coverage any node reports; anything under 16384 means part of the keyspace is down."),
    ("Open slots", "stat", "none", [(f'sum(redis_script_values{{{SEL}, key="cluster_open_slots"}})', "open")],
     "Slots migrating or importing (an interrupted reshard if it stays above 0)."),
    ("Nodes up", "stat", "none", [(f'sum(redis_up{{{SEL}}})', "up")], "Nodes the exporters can reach."),
    ("Primaries without a connected replica", "stat", "none",
     [(f'count((redis_connected_slaves{{{SEL}}} == 0) and on (instance) redis_instance_info{{{SEL}, role="master"}}'
       f' and on (instance) (redis_script_values{{{SEL}, key="cluster_myself_slots"}} > 0)) or vector(0)', "unprotected")],
     "Primaries serving slots with no replica: losing one of their hosts stops writes to its slots (alert "
     "RedisPrimaryWithoutReplica). 0 in steady state."),
    ("Primaries cut off from the majority", "stat", "none",
     [(f'count((2 * max by (instance) (redis_script_values{{{SEL}, key="cluster_primaries_unreachable"}})'
       f' >= max by (instance) (redis_script_values{{{SEL}, key="cluster_primaries"}}))'
       f' and on (instance) (max by (instance) (redis_script_values{{{SEL}, key="cluster_primaries_unreachable"}}) > 0)'
       f' and on (instance) redis_instance_info{{{SEL}, role="master"}}'
       f' and on (instance) (redis_script_values{{{SEL}, key="cluster_myself_slots"}} > 0)) or vector(0)', "cut off")],
     "Primaries serving slots that flag half or more of the primaries as failing: a partition cut them off, and "
     "what they acknowledged since is lost when they rejoin (alert RedisPrimaryCutOff). 0 in steady state."),
    ("Primaries per zone", "stat", "none",
     [(f'count by (zone) (redis_instance_info{{{SEL}, role="master"}} and on (instance) '
       f'(redis_script_values{{{SEL}, key="cluster_myself_slots"}} > 0))', "{{zone}}")],
     "A zone holding half or more of the primaries would take the cluster down with it (alert "
     "RedisZoneHoldsPrimaryMajority); failover_recovery.yml restores one per zone."),
    ("Writes rejected per second (NOREPLICAS, CLUSTERDOWN, OOM ...)", "timeseries", "ops",
     [(f'sum by (node, err) (rate(redis_errors_total{{{SEL}, '
       f'err=~"NOREPLICAS|CLUSTERDOWN|OOM|READONLY|MASTERDOWN|TRYAGAIN"}}[$__rate_interval]))', "{{node}} {{err}}")],
     "What clients get instead of a write (errorstats; alert RedisWritesRejected). MOVED/ASK redirects are not rejections."),
    ("Memory used / maxmemory by node", "timeseries", "percentunit",
     [(f'redis_memory_used_bytes{{{SEL}}} / (redis_memory_max_bytes{{{SEL}}} > 0)', "{{node}} ({{zone}})")],
     "Alerts fire at 80 % and 90 %; BullMQ needs noeviction, so 100 % means refused writes."),
    ("Memory used by node", "timeseries", "bytes", [(f'redis_memory_used_bytes{{{SEL}}}', "{{node}}"),
                                                    (f'redis_memory_used_rss_bytes{{{SEL}}}', "{{node}} rss")],
     "Dataset plus overhead; RSS shows fragmentation (active defrag works on it)."),
    ("Commands per second by node", "timeseries", "ops", [(f'rate(redis_commands_processed_total{{{SEL}}}[$__rate_interval])', "{{node}}")],
     "Throughput of each node (primaries take the writes)."),
    ("Connected clients", "timeseries", "short", [(f'redis_connected_clients{{{SEL}}}', "{{node}}"),
                                                  (f'max(redis_script_values{{{SEL}, key="maxclients"}})', "maxclients")],
     "BullMQ workers hold blocking connections; compare with maxclients."),
    ("Rejected connections / evicted keys", "timeseries", "short",
     [(f'increase(redis_rejected_connections_total{{{SEL}}}[$__rate_interval])', "rejected {{node}}"),
      (f'increase(redis_evicted_keys_total{{{SEL}}}[$__rate_interval])', "evicted {{node}}")],
     "Both should stay at zero."),
    ("BullMQ jobs waiting by queue", "timeseries", "short", [(f'bullmq:jobs:max{{{SEL}, state="wait"}}', "{{queue}}")],
     "Backlog per queue (recording rule bullmq:jobs:max from the exporter's collect script)."),
    ("BullMQ jobs by state", "table", "short", [(f'bullmq:jobs:max{{{SEL}}}', "{{queue}} {{state}}")],
     "Every queue and state: wait, active, delayed, prioritized, waiting-children, completed, failed, stalled."),
    ("BullMQ throughput (jobs per second)", "timeseries", "ops",
     [(f'bullmq:added:per_second{{{SEL}}}', "added {{queue}}"),
      (f'bullmq:events:per_second{{{SEL}, event="completed"}}', "completed {{queue}}"),
      (f'bullmq:events:per_second{{{SEL}, event="failed"}}', "failed {{queue}}")],
     "Added: the queue's job id counter. Completed and failed: events in the queue's event stream, which "
     "removeOnComplete/removeOnFail never trim (the job sets shrink, these do not)."),
    ("BullMQ failure ratio", "timeseries", "percentunit",
     [(f'bullmq:failed:ratio{{{SEL}}}', "{{queue}}")],
     "Failed / (completed + failed) over the collect script's event window (alert BullMQFailedJobsRising "
     "fires above 50 failures per 15 minutes)."),
    ("BullMQ jobs marked stalled", "timeseries", "short",
     [(f'bullmq:events:window{{{SEL}, event="stalled"}}', "{{queue}}")],
     "Jobs BullMQ found stalled (lock expired: a worker died or blocked its event loop) in the event window; "
     "alert BullMQStalledJobs."),
    ("BullMQ active jobs vs concurrency", "timeseries", "short",
     [(f'bullmq:jobs:max{{{SEL}, state="active"}}', "active {{queue}}"),
      (f'bullmq:concurrency{{{SEL}}}', "concurrency {{queue}}")],
     "Active jobs against the configured worker concurrency (redis_metrics_exporter_bullmq_concurrency or "
     "BullMQ's global concurrency); at the line with jobs waiting, alert BullMQWorkersSaturated."),
    ("BullMQ job duration p95", "timeseries", "s",
     [(f'bullmq:job_duration_seconds:p95{{{SEL}}}', "{{queue}}")],
     "finishedOn - processedOn of the newest jobs kept in each completed set (empty when removeOnComplete "
     "keeps none)."),
    ("Replication offsets", "timeseries", "bytes", [(f'redis_master_repl_offset{{{SEL}}}', "{{node}}")],
     "Primary and replica offsets per node; a replica's offset should track its primary's."),
    ("Replica lag (seconds)", "timeseries", "s", [(f'redis_connected_slave_lag_seconds{{{SEL}}}', "{{node}} -> {{slave_ip}}")],
     "Alert at 10 s (min-replicas-max-lag)."),
    ("Replica link up", "stat", "none", [(f'min by (node) (redis_master_link_up{{{SEL}}})', "{{node}}")],
     "1 = replica connected to its primary."),
    ("Memory fragmentation ratio", "timeseries", "short",
     [(f'redis_mem_fragmentation_ratio{{{SEL}}}', "{{node}}")],
     "RSS / used memory; alert RedisMemoryFragmentationHigh above 1.5 with over 1 GiB wasted (a nearly "
     "empty node shows a high ratio of little memory)."),
    ("Keyspace hit ratio", "timeseries", "percentunit",
     [(f'redis:keyspace_hit_ratio{{{SEL}}}', "{{node}}")],
     "Reads that found their key. BullMQ mostly reads keys it knows exist: a falling ratio points at "
     "clients polling removed jobs or a misnamed queue."),
    ("Time since last RDB save / AOF rewrite", "timeseries", "s",
     [(f'redis:rdb_last_save_age_seconds{{{SEL}}}', "rdb {{node}}"),
      (f'redis:aof_last_rewrite_age_seconds{{{SEL}}}', "aof rewrite {{node}}")],
     "Alerts RedisRdbSaveOverdue (over 1 h with changes) and RedisAofRewriteOverdue (over a day while the AOF "
     "doubled past 64 MiB)."),
    ("RDB / AOF status", "stat", "none", [(f'min(redis_rdb_last_bgsave_status{{{SEL}}})', "rdb ok"),
                                          (f'min(redis_aof_last_write_status{{{SEL}}})', "aof ok")],
     "1 = last save or write succeeded on every node."),
]


def build():
    panels = []
    for i, (title, kind, unit, targets, desc) in enumerate(PANELS):
        width = 6 if kind == "stat" else 12
        panels.append({
            "id": i + 1, "title": title, "type": kind, "description": desc, "datasource": DS,
            "gridPos": {"h": 4 if kind == "stat" else 8, "w": width, "x": 0, "y": i * 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + j), "datasource": DS, "expr": expr, "legendFormat": legend}
                        for j, (expr, legend) in enumerate(targets)],
        })
    # lay out: stats 4 per row, others 2 per row
    x = y = 0
    row_h = 0
    for p in panels:
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > 24:
            x, y = 0, y + row_h
            row_h = 0
        p["gridPos"].update(x=x, y=y)
        x += w
        row_h = max(row_h, h)
    return {
        "title": "shardwise.redis - Redis Cluster for BullMQ",
        "uid": "shardwise-redis",
        "tags": ["redis", "bullmq", "shardwise"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
             "current": {}, "hide": 0},
            {"name": "cluster", "type": "query", "datasource": DS, "label": "Cluster",
             "query": {"query": "label_values(redis_up, redis_cluster)", "refId": "cluster"},
             "definition": "label_values(redis_up, redis_cluster)", "includeAll": True, "multi": True,
             "current": {}, "refresh": 2, "hide": 0},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    with open("roles/exporter/files/grafana/redis-cluster.json", "w") as fh:
        json.dump(build(), fh, indent=2)
        fh.write("\n")
