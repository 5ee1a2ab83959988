#!/usr/bin/env bash
# Failure drills on the lab (make lab-drill): kill -9 one primary host, then a whole zone, then all
# hosts, with a BullMQ producer/worker and per-shard write probes running; the failover runbook runs
# during each outage and after the hosts return. Prints the client-side figures and writes them to
# .cache/reports/lab-drill/drill.json (tests/harness/shardwise_harness/drill.py explains them).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=.cache/reports/lab-drill
mkdir -p "$out"
for user in admin api worker; do
  export "REDIS_${user^^}_PASSWORD=$(cat ".cache/lab/secrets/$user")"
done
.venv/bin/python - "$out/config.json" "$top" "$out" <<'PY'
import json, sys, yaml
config_path, top, out = sys.argv[1:]
hosts = yaml.safe_load(open(top + "/inventories/lab/hosts.yml"))["redis"]["hosts"]
json.dump(dict(
    pki=top + "/.cache/lab/pki", container_prefix="", node_timeout_ms=5000,
    hosts={n: h["ansible_host"] for n, h in hosts.items()}, zones={n: h["redis_zone"] for n, h in hosts.items()},
    runbook=[top + "/.venv/bin/ansible-playbook", "-i", top + "/inventories/lab", top + "/playbooks/failover_recovery.yml",
             "-e", "redis_runbook_report_dir=" + top + "/" + out],
    report=top + "/" + out + "/failover_recovery-latest.json"), open(config_path, "w"))
PY
exec .venv/bin/python -m shardwise_harness.drill "$out/config.json" "$out/drill.json"
