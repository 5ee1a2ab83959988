"""shardwise.redis test harness: the clients, probes and drills that molecule, tools/bench and tools/lab run
against a cluster, importable as `shardwise_harness` from the project's venv (`make venv` installs this
package editable, so a checkout's change is live). Programs run as `python -m shardwise_harness.<module>`.

  tls_client        redis-py cluster clients over mTLS (the scenarios' own connections)
  connect_snippets  runs docs/connect.md's snippets unchanged (Node.js and Python), its connection for others
  drill_clients     BullMQ producer/worker in Python (Jobs) and Node.js (NodeJobs, node/during.mjs), write
                    probes (Probe), per-node connections (Nodes), gaps and stalls
  drill             the failure drills (kills, zone loss, crash) and the cluster helpers the benchmarks share
  local_nodes       Redis 7.2 primaries on loopback for unit tests and tools/dev
  bullmq_*, auth_probe, security_checks, cluster_load: the programs the molecule scenarios run
"""
import asyncio
import os
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))  # the checkout
NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")  # Node.js BullMQ programs


def fill_or_check(argv, fill, check, usage):
    """The command line of a fill-then-check program: `fill|check PKI_DIR STATE_FILE HOST [HOST ...]` runs
    fill(pki, hosts, state) or check(...) and returns its exit code; anything else prints usage and exits."""
    if len(argv) < 4 or argv[0] not in ("fill", "check"):
        sys.exit(usage)
    action = fill if argv[0] == "fill" else check
    return asyncio.run(action(argv[1], argv[3:], argv[2]))
