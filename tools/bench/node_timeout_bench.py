"""cluster-node-timeout: what a shorter one buys and what it risks, on the lab.

For each timeout (CONFIG SET on every node for the measurement, restored afterwards):
  - failover: `kills` kill -9 of a primary's host with the write probes and both BullMQ clients running
    (failover_bench.run): the server's write gap and the Node.js and Python clients' stalls;
  - false failovers: the primary of slot 0 is frozen (SIGSTOP, then SIGCONT) for each of STALLS seconds, as a
    long command, a slow disk under `appendfsync always` or a paused VM freeze it (TIME is frozen inside a
    Redis 7 script, so a timed Lua loop cannot make the stall); a stall that outlasts the timeout makes the
    other nodes fail it over although nothing died. Each trial
    records whether the primary lost its slots, and a false failover is healed by failover_recovery.yml;
  - fork: how long BGSAVE's fork blocked that primary holding FORK_MB of data (latest_fork_usec), the stall
    every RDB snapshot and AOF rewrite causes, which grows with the dataset (page tables).
"""
import subprocess
import time

import failover_bench
from shardwise_harness.drill import admin, owner_of, run_runbook, wait_replicas_in_sync
from shardwise_harness.drill_clients import crc16

STALLS = (1.0, 1.5, 2.5, 3.5, 4.5)  # seconds
FORK_MB = 1024


def stall_trial(config, timeout_ms, seconds):
    """Freeze the primary of slot 0 (SIGSTOP, then SIGCONT) for `seconds`: its one thread does nothing, as
    during a long command; whether the cluster failed it over."""
    primary = owner_of(config, 0)
    started = time.time()
    subprocess.run(["podman", "exec", config.get("container_prefix", "") + primary, "sh", "-c",
                    "p=$(pgrep -x redis-server); kill -STOP $p; sleep %s; kill -CONT $p" % seconds], check=True)
    frozen = time.time() - started
    time.sleep(timeout_ms / 1000.0 * 2 + 3)  # PFAIL, FAIL and an election would all be over by now
    after = owner_of(config, 0)
    failed_over = after != primary
    trial = dict(stall_s=seconds, measured_s=round(frozen, 2), failed_over=failed_over)
    if failed_over:
        if not wait_replicas_in_sync(config, [primary], 120):
            raise SystemExit("%s did not resync after a false failover" % primary)
        healed = run_runbook(config)
        if healed["rc"] != 0:
            raise SystemExit("failover_recovery.yml failed after a false failover: %s" % healed["problems"])
    return trial


def fork_ms(config):
    """BGSAVE's fork time on a primary holding FORK_MB more data (64 KB values in one hash tag's slot, on the
    primary that owns it, deleted after; its maxmemory is lifted meanwhile: the lab's is 512 MB)."""
    primary = owner_of(config, crc16("fork-bench"))
    conn = admin(config).conn(config["hosts"][primary])
    conn.connection_pool.connection_kwargs["socket_timeout"] = 60
    conn.connection_pool.disconnect()
    value = b"x" * 65536
    keys = ["bull:{fork-bench}:%d" % i for i in range(FORK_MB * 16)]
    maxmemory = conn.config_get("maxmemory")["maxmemory"]
    conn.config_set("maxmemory", 0)
    try:
        for start in range(0, len(keys), 256):
            pipe = conn.pipeline(transaction=False)
            for key in keys[start:start + 256]:
                pipe.set(key, value)
            pipe.execute()
        used_mb = conn.info("memory")["used_memory"] / 1048576.0
        while conn.info("persistence")["rdb_bgsave_in_progress"] or conn.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.5)
        conn.bgsave()
        time.sleep(1)
        while conn.info("persistence")["rdb_bgsave_in_progress"]:
            time.sleep(0.5)
        fork_us = conn.info("stats")["latest_fork_usec"]
    finally:
        for start in range(0, len(keys), 1000):
            conn.delete(*keys[start:start + 1000])
        conn.config_set("maxmemory", maxmemory)
    return dict(used_mb=round(used_mb), fork_ms=round(fork_us / 1000.0, 1),
                ms_per_gb=round(fork_us / 1000.0 / (used_mb / 1024.0), 1))


def run(config, timeouts=(5000, 3000, 2000), kills=3):
    original = failover_bench.node_timeout_of(config)
    rows = []
    try:
        for timeout_ms in timeouts:
            print("  cluster-node-timeout %d ms: %d kills" % (timeout_ms, kills), flush=True)
            failover = failover_bench.run(config, rounds=kills, node_timeout_ms=timeout_ms)
            failover_bench.set_node_timeout(config, timeout_ms)
            trials = [stall_trial(config, timeout_ms, seconds) for seconds in STALLS]
            print("  cluster-node-timeout %d ms: stalls that failed the primary over: %s"
                  % (timeout_ms, [t["stall_s"] for t in trials if t["failed_over"]]), flush=True)
            rows.append(dict(node_timeout_ms=timeout_ms, write_gap=failover["write_gap"], node_gap=failover["node_gap"],
                             python_gap=failover["python_gap"], node_add_gap=failover["node_add_gap"],
                             stalls=trials, drills=failover["drills"]))
    finally:
        failover_bench.set_node_timeout(config, original)
        run_runbook(config)  # a no-op on a healthy cluster; restores the zone spread if anything moved
    return dict(rows=rows, fork=fork_ms(config))
