"""The durable profile (issue 32) measured on the nine-host lab (make lab-durable, inventories/lab-durable): three
shards of a primary and two replicas, each in a zone of its own, min-replicas-to-write 1 with a 1 s max lag.

The failure drill of the drill scenario (tests/harness/shardwise_harness/drill.py: a write probe per shard and the
Node.js and Python BullMQ clients of docs/connect.md throughout) with these phases:
  host-1..3   kill -9 of each shard's primary's host in turn, back after the shard took writes again, then the
              runbook hands the primary back (coordinated-N)
  partition   the host of shard 1's primary cut off from every other node for 20 s (nftables), healed
  partition-zone  the three hosts of the zone of shard 2's primary cut off the same way
  zone        kill -9 of the three hosts of the zone of the last shard's primary, back, runbook
What the profile promises, checked here (violations; the drill's own contract checks too):
  - after each kill every shard took writes again within node timeout + 3 s, and no acknowledged write or BullMQ
    job was lost (the promoted replica still has a replica, so it takes writes at once);
  - a cut-off primary stopped taking writes within WINDOW_S of the cut: every write it acknowledged and the heal
    threw away was acknowledged at most WINDOW_S after the cut.
run(config) -> the drill's figures plus "durable": the per-phase summary and the violations.
"""
from shardwise_harness import drill

WINDOW_S = 2.0  # the durable profile's bound on what a cut-off primary may lose: writes from its first 2 s
KILLS = ("host-1", "host-2", "host-3", "zone")


class DurableDrill(drill.Drill):
    def steps(self):
        return (lambda: self.other_hosts_phase(first=1), self.primary_partition, self.zone_partition, self.zone_phase)


def check(figures, node_timeout_ms):
    """The profile's promises against the drill's figures: (summary rows, violations)."""
    rows, violations = [], []
    limit = node_timeout_ms / 1000.0 + 3
    for phase in figures["phases"]:
        lost_writes = sum(s["writes_lost"] for s in phase["shards"])
        row = dict(phase=phase["name"], writable_after_s=phase["writable_after_s"], writes_lost=lost_writes,
                   writes_acknowledged=sum(s["writes_accepted"] for s in phase["shards"]),
                   loss_window_s=[s["loss_window_s"] for s in phase["shards"] if s["loss_window_s"]],
                   python_jobs_lost=phase["jobs_lost"], node_jobs_lost=phase.get("node_jobs_lost"),
                   max_write_gap_s=phase["max_write_gap_s"])
        if phase["name"] in KILLS:
            rows.append(row)
            if phase["writable_after_s"] is None or phase["writable_after_s"] > limit:
                violations.append("%s: every shard took writes again after %s s (at most node timeout + 3 s = %s s)"
                                  % (phase["name"], phase["writable_after_s"], limit))
            if lost_writes or phase["jobs_lost"] or phase.get("node_jobs_lost"):
                violations.append("%s: lost %d acknowledged writes, %d Python and %s Node.js jobs"
                                  % (phase["name"], lost_writes, phase["jobs_lost"], phase.get("node_jobs_lost")))
        elif phase["name"] in drill.PARTITIONS:
            rows.append(row)
            late = [w for w in row["loss_window_s"] if w[1] > WINDOW_S]
            if late:
                violations.append("%s: the cut-off primary lost writes acknowledged up to %s s after the cut (at most "
                                  "%s s)" % (phase["name"], max(w[1] for w in late), WINDOW_S))
    return rows, violations


def run(config):
    figures = DurableDrill(config).run()
    rows, violations = check(figures, config["node_timeout_ms"])
    figures["durable"] = dict(window_s=WINDOW_S, phases=rows, violations=violations + figures["violations"])
    for row in rows:
        print("  durable %-14s writable after %-5s lost writes %d of %d %s; jobs lost Python %d Node.js %s"
              % (row["phase"], row["writable_after_s"], row["writes_lost"], row["writes_acknowledged"],
                 "(acknowledged %s s after the cut)" % row["loss_window_s"] if row["loss_window_s"] else "",
                 row["python_jobs_lost"], row["node_jobs_lost"]), flush=True)
    for violation in figures["durable"]["violations"]:
        print("  VIOLATION: %s" % violation, flush=True)
    return figures
