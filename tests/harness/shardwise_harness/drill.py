"""Failure drills measured from the client side (docs/failure-modes.md).

  drill.py CONFIG_JSON RESULT_JSON

CONFIG_JSON: {"pki": dir, "hosts": {name: ip}, "zones": {name: zone}, "node_timeout_ms": 5000,
              "runbook": [argv of ansible-playbook failover_recovery.yml ...], "report": path of its
              latest JSON report, "container_prefix": "" (container name = prefix + host name)}

While the drill runs, three kinds of clients work against the cluster:
  - one write probe per shard (plain connections, 20 writes/s, 0.25 s timeouts, slot map refreshed
    with CLUSTER SLOTS after any error): RPUSH of a sequence number to a key in that shard's slots.
    What the server accepted is what the probe counts: the write gap is the longest time between
    two accepted writes, and every accepted number must still be in the list at the end.
  - real BullMQ producers and workers on one queue per shard, configured exactly as docs/connect.md tells
    applications to, with no watchdog: Node.js BullMQ on ioredis (tests/harness/shardwise_harness/node/during.mjs, queues
    <tag>-node) and Python bullmq on redis-py (drill_clients.Jobs, the docs' Python connection): jobs with
    unique ids, each add retried until Redis acknowledges it (a producer's at-least-once add; BullMQ ignores
    a second add of the same id), the time of every acknowledged add and first processing recorded.

Phases, in order (each waits until every shard accepts writes again, then runs the runbook):
  host     kill -9 the host of the primary of slot 0; runbook while it is down (it must fail and
           name the primary without a replica; one primary is set to min-replicas-to-write 1 for the
           run so that the refusal is seen and named too); host back; runbook (coordinated failover
           back to the zone spread, measured as the phase "coordinated").
  host-N   the same kill for the primary of each other shard in turn (no refusal), then "coordinated-N".
  partition       the host of the primary of slot 0 cut off from the other nodes for CUT_S (nftables inside it,
                  both directions; the clients still reach it); during the cut the exporters must show the cut
                  primary (alert RedisPrimaryCutOff) and the runbook must fail; heal; the cut primary rejoins as a
                  replica; runbook (partition-return). Writes and jobs the cut primary acknowledged and the heal
                  threw away are reported with their window (seconds after the cut), not asserted.
  partition-zone  the same for both hosts of the zone of the primary of the second shard.
  zone     kill -9 both hosts of the zone of the primary of the last slot; runbook; hosts back;
           runbook.
  crash    kill -9 all hosts, start them again; runbook.
Each killed shard must take writes again within the failover window (2 x node_timeout + 5 s: Redis promoted a
replica by itself). Per kill, the clients' stall on each queue whose primary died (from the last processed job, and
the last acknowledged add, before the kill to the first after it) must end within CLIENT_LAG_S (3 s) of the moment
the server took writes again (that phase's writable_after) for the Node.js client: the client follows the server,
however long the server took. The server's own time is a benchmark figure (docs/benchmarks.md). During each
planned handover (coordinated, zone-return) no queue of the Node.js client may wait more than HANDOVER_GAP_S (2 s)
for a job; no acknowledged Node.js job may be lost or fail.
During the refusal the exporters are scraped for what the availability alerts read (a primary
without a replica, NOREPLICAS errors, a zone with half the primaries): all three must show.
Then the producer stops, the worker drains, and the figures are written to RESULT_JSON:
per phase and shard the write gap, errors by kind, writes accepted and lost; per phase the jobs
acknowledged, lost and duplicated, and the producer's longest gap between acknowledged adds.
Passwords come from REDIS_API_PASSWORD, REDIS_WORKER_PASSWORD and REDIS_ADMIN_PASSWORD and are never
printed. Exits 1 when a contract check fails (the reasons are in the result's "violations").
"""
import bisect
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

from shardwise_harness.connect_snippets import environment
from shardwise_harness.drill_clients import (HANDOVER_GAP_S, REPLICATION_WINDOW, Jobs, NodeJobs, Nodes, Probe, crc16, event_gap,
                                             stall, tag_in)
from shardwise_harness.partition import cut, fence_service, fence_states, heal

SETTLE_S = 5  # after a killed shard is writable again, how long the hosts stay down before they return
CLIENT_LAG_S = 3  # a client may stall this much longer than the server's own write gap after a kill
CUT_S = 20  # a partition lasts longer than the node timeout plus the election: the majority promotes a replica
PARTITIONS = ("partition", "partition-zone")  # phases whose lost writes and jobs are reported, not asserted to be 0


def podman(*args):
    subprocess.run(["podman"] + list(args), check=True, stdout=subprocess.DEVNULL)


def admin(config):
    """The drill's own control connections (CONFIG SET, INFO): patient, unlike the probes."""
    return Nodes(config, user="admin", timeout=2)


def wait_writable(probes, since, timeout):
    """Seconds until every probe has an accepted write after `since` (None on timeout). Call it
    once the kill has returned: a write accepted before that proves nothing."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(p.last_ok() > since for p in probes):
            return max(p.last_ok() for p in probes) - since
        time.sleep(0.1)
    return None


def wait_replicas_in_sync(config, names, timeout):
    """Every host in `names` answers as a replica whose link is up and whose sync is done."""
    nodes = admin(config)
    deadline = time.time() + timeout
    while time.time() < deadline:
        ok = 0
        for name in names:
            try:
                info = nodes.conn(config["hosts"][name]).info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") == "up" \
                        and not info.get("master_sync_in_progress"):
                    ok += 1
            except Exception:
                nodes.drop(config["hosts"][name])
        if ok == len(names):
            return True
        time.sleep(0.5)
    return False


def run_runbook(config):
    started = time.time()
    proc = subprocess.run(config["runbook"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    report = {}
    try:
        if os.path.getmtime(config["report"]) >= started - 1:  # an older one is another run's (this one wrote none)
            with open(config["report"]) as fh:
                report = json.load(fh)
    except (OSError, ValueError):
        pass
    failed = [line.strip() for line in proc.stdout.splitlines() if "still degraded" in line][:3]
    if proc.returncode != 0 and not report:
        failed += [line.strip()[:300] for line in proc.stdout.splitlines() if line.startswith(("fatal:", "[ERROR]"))][:3]
    return dict(rc=proc.returncode, seconds=round(time.time() - started, 1), plan=report.get("plan", []),
                problems=report.get("problems", []), notes=report.get("notes", []), report_written=bool(report),
                failed_msg=failed)


SCRIPT_VALUES = {"cluster_myself_slots": "slots", "cluster_primaries": "primaries",
                 "cluster_primaries_unreachable": "unreachable"}  # collect.lua's keys the alerts read


def alert_inputs(config):
    """What the alerts RedisPrimaryWithoutReplica, RedisWritesRejected, RedisZoneHoldsPrimaryMajority and
    RedisPrimaryCutOff read, scraped from every exporter that answers (redis_exporter on port 9121 of each host)."""
    nodes = {}
    for name, ip in config["hosts"].items():
        try:
            with urllib.request.urlopen("http://%s:%d/metrics" % (ip, config.get("exporter_port", 9121)), timeout=3) as reply:
                text = reply.read().decode()
        except OSError:
            continue
        values = dict(role=None, replicas=None, slots=0, noreplicas=0, primaries=0, unreachable=0)
        for line in text.splitlines():
            script = re.match(r'redis_script_values\{(?:filename="[^"]*",)?key="(cluster_[a-z_]+)"\} ', line)
            if line.startswith("redis_instance_info{"):
                values["role"] = line.split('role="', 1)[1].split('"', 1)[0]
            elif line.startswith("redis_connected_slaves "):
                values["replicas"] = float(line.split()[-1])
            elif script and script.group(1) in SCRIPT_VALUES:
                values[SCRIPT_VALUES[script.group(1)]] = float(line.split()[-1])
            elif line.startswith('redis_errors_total{err="NOREPLICAS"}'):
                values["noreplicas"] = float(line.split()[-1])
        nodes[name] = values
    primaries = [n for n, v in nodes.items() if v["role"] == "master" and v["slots"] > 0]
    # RedisPrimaryCutOff: a primary serving slots that cannot reach a majority of the primaries it knows
    cut_off = sorted(n for n in primaries if 2 * (nodes[n]["primaries"] - nodes[n]["unreachable"]) <= nodes[n]["primaries"])
    zones = {}
    for name in primaries:
        zones[config["zones"][name]] = zones.get(config["zones"][name], 0) + 1
    return dict(scraped=sorted(nodes), primaries_without_replica=sorted(n for n in primaries if nodes[n]["replicas"] == 0),
                noreplicas_errors={n: v["noreplicas"] for n, v in nodes.items() if v["noreplicas"]},
                zones_with_half_the_primaries=sorted(z for z, c in zones.items() if 2 * c >= len(primaries)),
                cut_off_primaries=cut_off)


def owner_of(config, slot):
    nodes = admin(config)
    nodes.refresh()
    ip = nodes.owner(slot)
    return next(name for name, addr in config["hosts"].items() if addr == ip)


class Drill:
    def __init__(self, config):
        self.config = config
        self.stop = threading.Event()
        self.phases = []
        self.violations = []
        nodes = admin(config)
        if not nodes.refresh():
            raise SystemExit("no node answers CLUSTER SLOTS")
        self.initial = sorted((first, last) for first, last, _unused in nodes.ranges)
        run_id = time.strftime("%Y%m%dT%H%M%S")
        self.probes = [Probe(config, i + 1, first, last, self.stop, run_id) for i, (first, last) in enumerate(self.initial)]
        self.queues = [tag_in(first, last, "drill%d" % (i + 1)) for i, (first, last) in enumerate(self.initial)]
        self.jobs = Jobs(config, self.queues, self.stop, run_id)
        # Node.js BullMQ on ioredis exactly as docs/connect.md configures it, on queues <tag>-node in the same slots
        self.node = NodeJobs(config.get("node_work") or os.path.join(os.path.dirname(config["report"]), "drill-node"),
                             environment(config["pki"], list(config["hosts"].values()), "worker"), self.queues, run_id)
        self.node_result = None
        self.kills = []  # dict(phase, at, hosts, queues): the queues whose primary was on a killed host
        self.partitions = []  # the same for the cut-off hosts of the partition phases
        # Redis promotes a replica by itself within the runbook's failover window (2 x node timeout + 5 s, the
        # redis_failover_window_seconds default), else the runbook would have forced one: the test's bound. How fast
        # (about node timeout + 1.5 s) is a benchmark figure (make bench, docs/benchmarks.md), not a test's.
        self.limit = 2 * config["node_timeout_ms"] / 1000.0 + 5
        # A client follows the server: its stall after a primary's host died ends within CLIENT_LAG_S of the moment
        # that shard took writes again (the phase's writable_after), whatever the server's own time was.
        self.client_lag = CLIENT_LAG_S

    def phase(self, name, killed, started, recovered, ended, runbooks, limit=None):
        self.phases.append(dict(name=name, killed=killed, start=started, writable_after=recovered,
                                end=ended, runbooks=runbooks, gap_limit=limit))

    def kill(self, phase, hosts):
        """kill -9 the hosts; remembers which queues' primaries they carried. Returns when it started."""
        nodes = admin(self.config)
        nodes.refresh()
        owners = {q: nodes.owner(crc16(q)) for q in self.queues}
        started = time.time()
        for host in hosts:
            podman("kill", "--signal", "KILL", self.config["container_prefix"] + host)
        ips = [self.config["hosts"][h] for h in hosts]
        self.kills.append(dict(phase=phase, at=started, hosts=hosts, queues=[q for q in self.queues if owners[q] in ips]))
        return started

    def host_phase(self):
        victim = owner_of(self.config, self.initial[0][0])
        started = self.kill("host", [victim])
        recovered = wait_writable(self.probes, time.time(), 60)
        time.sleep(SETTLE_S)
        self.phase("host", [victim], started, recovered, time.time(), [], self.limit)
        # While the host is down: make the promoted primary enforce one replica (it has none), as
        # an operator who accepted write stalls would, so that the runbook must report the refusal.
        started = time.time()
        probe = self.probes[0]  # the node that accepted its last write: the promoted primary
        promoted = next(n for n, ip in self.config["hosts"].items() if ip == probe.nodes.owner(probe.slot))
        nodes = admin(self.config)
        fence_service(self.config, "stop", [promoted])  # the partition fence would set the value back at once
        nodes.conn(self.config["hosts"][promoted]).config_set("min-replicas-to-write", 1)
        try:
            degraded = run_runbook(self.config)
            alerts = alert_inputs(self.config)
        finally:
            nodes.conn(self.config["hosts"][promoted]).config_set("min-replicas-to-write", 0)
            fence_service(self.config, "start", [promoted])
        self.phase("refusal", [], started, None, time.time(), [degraded])
        self.phases[-1]["alert_inputs"] = alerts
        self.expect(promoted in alerts["primaries_without_replica"] and alerts["noreplicas_errors"].get(promoted)
                    and alerts["zones_with_half_the_primaries"] == [self.config["zones"][promoted]],
                    "host: the exporters do not show what the alerts need (no replica, NOREPLICAS, zone "
                    "majority): %s" % alerts)
        self.expect(degraded["rc"] != 0, "host: the runbook passed while %s was down" % victim)
        self.expect(any("has no connected replica" in p and promoted in p for p in degraded["problems"]),
                    "host: the runbook did not name %s as a primary without a replica: %s" % (promoted, degraded["problems"]))
        self.expect(any("refuses writes" in p and "NOREPLICAS" in p for p in degraded["problems"]),
                    "host: the runbook did not name the NOREPLICAS refusal: %s" % degraded["problems"])
        self.return_hosts("coordinated", [victim])

    def other_hosts_phase(self, first=2):
        """kill -9 the host of each other shard's primary in turn (from shard `first`); each returns and gets its
        primary back."""
        for shard in range(first, len(self.initial) + 1):
            victim = owner_of(self.config, self.initial[shard - 1][0])
            started = self.kill("host-%d" % shard, [victim])
            recovered = wait_writable(self.probes, time.time(), 60)
            time.sleep(SETTLE_S)
            self.phase("host-%d" % shard, [victim], started, recovered, time.time(), [], self.limit)
            self.return_hosts("coordinated-%d" % shard, [victim])

    def return_hosts(self, name, hosts):
        """Start hosts again, wait until they are in-sync replicas, run the runbook (zone spread)."""
        for host in hosts:
            podman("start", self.config["container_prefix"] + host)
        synced = wait_replicas_in_sync(self.config, hosts, 120)
        self.expect(synced, "%s: %s did not come back as in-sync replicas" % (name, ", ".join(hosts)))
        started = time.time()
        healed = run_runbook(self.config)
        ended = time.time()
        self.phase(name, [], started, None, ended, [healed])
        self.expect(healed["rc"] == 0, "%s: the runbook failed after the hosts returned: %s" % (name, healed["problems"]))
        self.expect(not any("primaries: losing it" in p for p in healed["problems"]),
                    "%s: a zone still holds a majority of primaries" % name)

    def partition_phase(self, name, hosts):
        """Cut `hosts` off from the other nodes (partition.cut) for CUT_S; during the cut, scrape what the partition
        alert reads and run the runbook (it must fail: a shard lost its replica, and it must not act on the cut
        primary); heal; the cut primaries rejoin as replicas and resync; the runbook restores the zone spread
        (phase <name>-return, a planned handover). The writes the cut primaries acknowledged meanwhile are the
        phase's lost writes (reported with their window, not asserted)."""
        nodes = admin(self.config)
        nodes.refresh()
        owners = {q: nodes.owner(crc16(q)) for q in self.queues}
        ips = [self.config["hosts"][h] for h in hosts]
        primaries = sorted(h for h in hosts if self.config["hosts"][h] in owners.values())
        started = time.time()
        cut(self.config, hosts)
        self.partitions.append(dict(phase=name, at=started, hosts=hosts, queues=[q for q in self.queues if owners[q] in ips]))
        try:
            time.sleep(self.config["node_timeout_ms"] / 1000.0 + 3)
            alerts = alert_inputs(self.config)
            fences = fence_states(self.config, primaries)
            during = run_runbook(self.config)
            time.sleep(max(0, started + CUT_S - time.time()))
        finally:
            heal(self.config, hosts)
        healed = time.time()
        synced = wait_replicas_in_sync(self.config, primaries, 120)
        self.expect(synced, "%s: %s did not rejoin as in-sync replicas after the heal" % (name, ", ".join(primaries)))
        recovered = wait_writable(self.probes, time.time(), 60)
        self.phase(name, hosts, started, recovered, time.time(), [during])
        after = fence_states(self.config, sorted(self.config["hosts"]))
        self.phases[-1].update(alert_inputs=alerts, cut_s=round(healed - started, 1), cut_primaries=primaries,
                               fence_during=fences, fence_after=after)
        # The partition fence (redis_fence, on in every lab): each cut primary refuses writes during the cut, and no
        # node is left fenced once the cut has healed and the replicas resynced.
        for host, state in sorted(fences.items()):
            self.expect(state is not None and state["fenced"], "%s: the partition fence did not fence the cut primary "
                        "%s: %s" % (name, host, state or "no state file (is shardwise-redis-fence running?)"))
        stuck = sorted(host for host, state in after.items() if state and state["fenced"])
        self.expect(not stuck, "%s: %s still fenced after the heal" % (name, ", ".join(stuck)))
        self.expect(set(primaries) <= set(alerts["cut_off_primaries"]),
                    "%s: the exporters of %s do not show a primary that cannot reach a majority of the primaries: %s"
                    % (name, primaries, alerts))
        self.expect(during["rc"] != 0, "%s: the runbook passed while %s was cut off" % (name, ", ".join(hosts)))
        self.return_hosts(name + "-return", [])

    def primary_partition(self):
        self.partition_phase("partition", [owner_of(self.config, self.initial[0][0])])

    def zone_partition(self):
        zone = self.config["zones"][owner_of(self.config, self.initial[1][0])]
        self.partition_phase("partition-zone", sorted(n for n, z in self.config["zones"].items() if z == zone))

    def zone_phase(self):
        primary = owner_of(self.config, self.initial[-1][1])
        zone = self.config["zones"][primary]
        victims = sorted(n for n, z in self.config["zones"].items() if z == zone)
        started = self.kill("zone", victims)
        recovered = wait_writable(self.probes, time.time(), 60)
        time.sleep(SETTLE_S)
        during = run_runbook(self.config)
        self.phase("zone", victims, started, recovered, time.time(), [during], self.limit)
        self.expect(during["rc"] != 0, "zone: the runbook passed while zone %s was down" % zone)
        self.return_hosts("zone-return", victims)

    def crash_phase(self):
        hosts = sorted(self.config["hosts"])
        started = self.kill("crash", hosts)
        killed = time.time()
        time.sleep(2)
        for host in hosts:
            podman("start", self.config["container_prefix"] + host)
        recovered = wait_writable(self.probes, killed, 180)
        self.expect(recovered is not None, "crash: the cluster did not take writes again within 180 s")
        synced = wait_replicas_in_sync(self.config, [n for n in hosts if self.role(n) == "slave"], 120)
        self.expect(synced, "crash: replicas did not resync")
        after = run_runbook(self.config)
        self.phase("crash", hosts, started, recovered, time.time(), [after])
        self.expect(after["rc"] == 0, "crash: the runbook failed after the restart: %s" % after["problems"])

    def role(self, name):
        try:
            return admin(self.config).conn(self.config["hosts"][name]).info("replication").get("role")
        except Exception:
            return None

    def expect(self, condition, message):
        if not condition:
            self.violations.append(message)

    def steps(self):
        """The phases, in order (a subclass may choose others: tools/bench/durable_bench.py)."""
        return (self.host_phase, self.other_hosts_phase, self.primary_partition, self.zone_partition, self.zone_phase,
                self.crash_phase)

    def run(self):
        for probe in self.probes:
            probe.start()
        self.jobs.start()
        time.sleep(5)
        baseline_start = time.time()
        time.sleep(5)
        self.phase("baseline", [], baseline_start, None, time.time(), [])
        for step in self.steps():
            step()
            time.sleep(3)
        self.stopped = time.time()
        self.stop.set()
        for probe in self.probes:
            probe.join(5)
        self.node_result = self.node.result(timeout=240)
        self.jobs.drained.wait(240)
        return self.figures()

    # ------------------------------------------------------------ figures
    def figures(self):
        lists = {}
        nodes = Nodes(self.config)
        nodes.refresh()
        for probe in self.probes:
            conn = nodes.conn(nodes.owner(probe.slot))
            lists[probe.shard] = [int(x) for x in conn.lrange(probe.key, 0, -1)]
            conn.delete(probe.key)
        result = dict(node_timeout_ms=self.config["node_timeout_ms"], gap_limit_s=self.limit, phases=[],
                      bullmq_failure=self.jobs.failure)
        # Loss windows: a kill -9 can lose what the dead primary acknowledged just before it died and
        # had not yet sent to its replica (asynchronous replication), so a phase that kills hosts
        # owns the last REPLICATION_WINDOW seconds before its start too.
        starts = [p["start"] - (REPLICATION_WINDOW if p["killed"] else 0) for p in self.phases]
        bounds = starts[1:] + [time.time()]
        for phase, loss_start, loss_end, next_start in zip(self.phases, starts, bounds,
                                                           [p["start"] for p in self.phases[1:]] + [time.time()]):
            window = (phase["start"], max(phase["end"], next_start))
            shards = []
            for probe in self.probes:
                counts = {}
                for n in lists[probe.shard]:
                    counts[n] = counts.get(n, 0) + 1
                accepted = [(t, n) for t, n in probe.accepted if loss_start <= t < loss_end]
                errors = {}
                for t, kind in probe.errors:
                    if window[0] <= t < window[1]:
                        errors[kind] = errors.get(kind, 0) + 1
                lost_at = [round(t - phase["start"], 2) for t, n in accepted if n not in counts]
                shards.append(dict(shard=probe.shard, slots="%d-%d" % self.initial[probe.shard - 1],
                                   write_gap_s=round(gap(probe.accepted, probe.errors, window), 2),
                                   writes_accepted=len(accepted),
                                   writes_lost=len(lost_at), loss_window_s=lost_at and [lost_at[0], lost_at[-1]],
                                   writes_duplicated=sum(1 for _unused, n in accepted if counts.get(n, 0) > 1), errors=errors))
            acked = [j for j, (t, _unused) in self.jobs.acked.items() if loss_start <= t < loss_end]
            lost = [j for j in acked if j not in self.jobs.processed]
            adds = {}
            for j, (t, q) in self.jobs.acked.items():
                adds.setdefault(q, []).append((t, j))
            add_gap = max([gap(sorted(v), [], window) for v in adds.values()] or [0])
            entry = dict(name=phase["name"], killed=phase["killed"], seconds=round(window[1] - window[0], 1),
                         loss_window=[loss_start, loss_end],
                         writable_after_s=None if phase["writable_after"] is None else round(phase["writable_after"], 2),
                         shards=shards, max_write_gap_s=max(s["write_gap_s"] for s in shards),
                         jobs_acknowledged=len(acked), jobs_lost=len(lost),
                         jobs_duplicated=sum(1 for j in acked if self.jobs.processed.get(j, 0) > 1),
                         lost_jobs=[self.jobs.state_of(nodes, j, phase["start"]) for j in lost[:10]],
                         job_add_gap_s=round(add_gap, 2),
                         add_errors=sum(1 for t, _unused1, _unused2 in self.jobs.add_errors if window[0] <= t < window[1]),
                         runbooks=phase["runbooks"])
            result["phases"].append(entry)
            if phase["gap_limit"] is not None:
                self.expect(entry["writable_after_s"] is not None and entry["max_write_gap_s"] <= phase["gap_limit"],
                            "%s: write gap %s s above the failover window, 2 x node_timeout + 5 s (%s s)"
                            % (phase["name"], entry["max_write_gap_s"], phase["gap_limit"]))
            for key in ("alert_inputs", "cut_s", "cut_primaries", "fence_during", "fence_after"):
                if key in phase:
                    entry[key] = phase[key]
            # kill -9 of one host or zone may lose the replication window, and a cut-off primary what it acknowledged
            # until it gave up (about the node timeout): reported, not asserted.
            if phase["name"] not in ("host", "zone") + PARTITIONS:
                self.expect(entry["jobs_lost"] == 0 and sum(s["writes_lost"] for s in shards) == 0,
                            "%s: acknowledged writes or jobs lost: %s" % (phase["name"], entry["lost_jobs"]))
        self.expect(self.jobs.failure is None, "bullmq client failed: %s" % self.jobs.failure)
        self.expect(self.jobs.drained.is_set(), "the worker did not drain the queues in time")
        result["jobs_total"] = dict(acknowledged=len(self.jobs.acked),
                                    processed=sum(1 for j in self.jobs.acked if j in self.jobs.processed),
                                    duplicated=sum(1 for c in self.jobs.processed.values() if c > 1),
                                    add_errors=len(self.jobs.add_errors),
                                    worker_restarts=[[q, why] for _unused, q, why in self.jobs.worker_restarts],
                                    failed_reasons=self.jobs.failed_reasons(nodes))
        result["clients"] = self.client_figures(result["phases"])
        result["violations"] = self.violations
        return result

    def client_figures(self, phases):
        """What the Node.js client (configured as docs/connect.md says) and the Python client saw: per kill, on
        each queue whose primary died, how long each went without a processed job and without an acknowledged
        add (from the last one before the kill to the first after it); per planned handover (the runbook's
        coordinated failovers), the longest such gap on any queue; per phase, the Node.js jobs acknowledged and
        lost. Checks them against the contract (violations)."""
        node = self.node_result or dict(failure="no result")
        timeline = node.get("timeline", {})
        python = {q: dict(processed=sorted(self.jobs.processed_at[q]), acked=self.jobs.acked_at(q)) for q in self.queues}
        kills = []
        for kill in self.kills:
            entry = dict(phase=kill["phase"], hosts=kill["hosts"], queues={})
            for queue in kill["queues"]:
                gaps = dict(python=stall(python[queue], kill["at"], self.stopped))
                if queue in timeline:
                    gaps["node"] = stall(timeline[queue], kill["at"], self.stopped)
                entry["queues"][queue] = gaps
            kills.append(entry)
            writable = next((p["writable_after_s"] for p in phases if p["name"] == kill["phase"]), None)
            limit = (writable or 0) + self.client_lag  # the server's own recovery of that phase plus CLIENT_LAG_S
            entry["writable_after_s"] = writable
            entry["limit_s"] = round(limit, 2)
            for queue, gaps in entry["queues"].items():
                node_gaps = gaps.get("node")
                self.expect(node_gaps is not None and max(node_gaps.values()) <= limit,
                            "%s: the Node.js client stalled on %s longer than %s s: %s" % (kill["phase"], queue, limit, node_gaps))
        # After a cut the clients stall once the cut primary gives up (about the node timeout) until they find the
        # promoted replica: reported, not asserted (they may also keep working on the cut primary until then).
        cuts = []
        for part in self.partitions:
            lag = self.config["node_timeout_ms"] / 1000.0 + 3
            cuts.append(dict(phase=part["phase"], hosts=part["hosts"], queues=dict(
                (q, dict(python=stall(python[q], part["at"], self.stopped, lag),
                         node=q in timeline and stall(timeline[q], part["at"], self.stopped, lag) or None))
                for q in part["queues"])))
        handovers = []
        for phase in self.phases:
            if phase["name"].startswith("coordinated") or phase["name"].endswith("-return"):
                window = (phase["start"], phase["end"])
                worst = dict(node=max([event_gap(timeline[q]["processed"], window) for q in self.queues if q in timeline]
                                      or [None]),
                             python=max(event_gap(python[q]["processed"], window) for q in self.queues))
                handovers.append(dict(phase=phase["name"], node_s=worst["node"] and round(worst["node"], 2),
                                      python_s=round(worst["python"], 2)))
                self.expect(worst["node"] is not None and worst["node"] <= HANDOVER_GAP_S,
                            "%s: the Node.js client waited %s s for a job during a planned handover (at most %s s)"
                            % (phase["name"], worst["node"], HANDOVER_GAP_S))
        lost = node.get("lost_jobs_at", [])
        for entry in phases:
            window = (entry["loss_window"][0], entry["loss_window"][1])
            entry["node_jobs_acknowledged"] = sum(1 for q in timeline for t in timeline[q]["acked"] if window[0] <= t < window[1])
            entry["node_jobs_lost"] = sum(1 for _unused1, _unused2, t in lost if window[0] <= t < window[1])
        keys = ("client", "acknowledged", "processed", "lost", "lost_ids", "duplicated", "failed", "failed_reasons",
                "add_errors", "worker_errors", "failure")
        totals = dict((k, node.get(k)) for k in keys)
        totals["lost_in_partitions"] = sum(e["node_jobs_lost"] for e in phases if e["name"] in PARTITIONS)
        self.expect(not node.get("failure") and node.get("lost") == totals["lost_in_partitions"] and node.get("failed") == 0
                    and node.get("acknowledged", 0) > 0,
                    "the Node.js client lost or failed acknowledged jobs outside the partitions: %s" % totals)
        return dict(kills=kills, partitions=cuts, handovers=handovers, handover_limit_s=HANDOVER_GAP_S, node=totals)


def gap(accepted, errors, window):
    """Longest time without an accepted write caused inside `window`: a gap belongs to the phase of
    the first failed write in it (or of its start when no write failed), even when it lasts into the
    next phase."""
    times = [t for t, _unused in accepted]
    failures = sorted(t for t, _unused in errors)
    longest = 0.0
    for before, after in zip(times, times[1:]):
        i = bisect.bisect_right(failures, before)
        cause = failures[i] if i < len(failures) and failures[i] < after else before
        if window[0] <= cause < window[1]:
            longest = max(longest, after - before)
    return longest


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[0]) as fh:
        config = json.load(fh)
    result = Drill(config).run()
    with open(argv[1], "w") as fh:
        json.dump(result, fh, indent=1)
    for phase in result["phases"]:
        print("%-12s gap %5.2f s  writable after %-5s jobs acked %4d lost %d dup %d  runbook rc %s"
              % (phase["name"], phase["max_write_gap_s"], phase["writable_after_s"], phase["jobs_acknowledged"],
                 phase["jobs_lost"], phase["jobs_duplicated"], [r["rc"] for r in phase["runbooks"]]))
    for kill in result["clients"]["kills"]:
        for queue, gaps in kill["queues"].items():
            print("%-12s %-16s stall s (processed/acked): Node.js %s  Python %s  (limit %s s)"
                  % (kill["phase"], queue, "/".join(str(v) for v in gaps.get("node", {}).values()) or "-",
                     "/".join(str(v) for v in gaps["python"].values()), kill["limit_s"]))
    for phase in result["phases"]:
        if phase["name"] in PARTITIONS:
            print("%-14s cut %s s: lost %s of %s acknowledged writes, acknowledged %s s after the cut; jobs lost Python %d "
                  "Node.js %d" % (phase["name"], phase["cut_s"], [s["writes_lost"] for s in phase["shards"]],
                                  [s["writes_accepted"] for s in phase["shards"]],
                                  [s["loss_window_s"] for s in phase["shards"] if s["loss_window_s"]],
                                  phase["jobs_lost"], phase["node_jobs_lost"]))
    for part in result["clients"]["partitions"]:
        for queue, gaps in part["queues"].items():
            print("%-14s %-16s stall s (processed/acked): Node.js %s  Python %s  (reported)"
                  % (part["phase"], queue, "/".join(str(v) for v in (gaps["node"] or {}).values()) or "-",
                     "/".join(str(v) for v in gaps["python"].values())))
    for handover in result["clients"]["handovers"]:
        print("%-12s planned handover: longest wait for a job Node.js %s s, Python %s s"
              % (handover["phase"], handover["node_s"], handover["python_s"]))
    print(json.dumps(dict(jobs_total=result["jobs_total"], node=result["clients"]["node"])))
    for violation in result["violations"]:  # last, where a failed run's output is read
        print("VIOLATION: %s" % violation)
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
