"""The clients drill.py runs during the failure drills: one write probe per shard (plain redis-py
connections, what the server acknowledged is what counts) and a real BullMQ producer and worker
(PyPI bullmq over redis-py RedisCluster). See drill.py for how their figures are judged."""
import asyncio
import binascii
import bisect
import json
import os
import subprocess
import threading
import time

import redis
from bullmq import Queue, Worker
from redis.backoff import NoBackoff
from redis.retry import Retry
from shardwise_harness.connect_snippets import docs_cluster, node_workload

CLUSTER_SLOTS = 16384
PROBE_INTERVAL = 0.05
CLIENT_TIMEOUT = 0.25
REPLICATION_WINDOW = 1.0  # seconds before a kill -9 whose acknowledged writes it may take with it
# A BullMQ add that has not returned after this long counts as an error and is sent again. A safety bound only:
# redis-py retries and redirects by itself, and cancelling an add sooner (it was 3 s) cancels the very connect
# whose failure would make the client read the new slot map, so the client never recovered until the host did.
ADD_TIMEOUT_S = 60
# What a planned handover (a coordinated failover) may cost a client's queue at most: no job processed for this
# long. It tells a client that rode through (the bench measures 0.2-0.4 s) from one that stalled (ioredis' 10 s
# connect timeout, a wedged worker); it is no speed target, and a loaded 2-core host adds its share.
HANDOVER_GAP_S = 2.0


def crc16(data):
    """Slot of a hash tag: CRC16-XMODEM is binascii's CRC-CCITT with initial value 0 (an implementation
    independent of the collection's slots.slot_of)."""
    return binascii.crc_hqx(data.encode("utf-8"), 0) % CLUSTER_SLOTS


def tag_in(first, last, stem):
    """A hash tag `stem-N` whose slot lies in [first, last]."""
    n = 0
    while not first <= crc16("%s-%d" % (stem, n)) <= last:
        n += 1
    return "%s-%d" % (stem, n)


class Nodes:
    """Connections to every node (api user, short timeouts) and the slot map they report."""

    def __init__(self, config, user="api", timeout=CLIENT_TIMEOUT):
        self.config = config
        self.user = user
        self.timeout = timeout
        self.lock = threading.Lock()
        self.conns = {}
        self.failed_at = {}  # ip -> when it last failed: refresh asks those last
        self.ranges = []  # [(first, last, ip)]

    def conn(self, ip):
        with self.lock:
            if ip not in self.conns:
                pki = self.config["pki"]
                self.conns[ip] = redis.Redis(
                    host=ip, port=6379, username=self.user, password=os.environ["REDIS_%s_PASSWORD" % self.user.upper()],
                    ssl=True, ssl_ca_certs=os.path.join(pki, "ca.crt"),
                    ssl_certfile=os.path.join(pki, "clients", self.user + ".crt"),
                    ssl_keyfile=os.path.join(pki, "clients", self.user + ".key"),
                    socket_timeout=self.timeout, socket_connect_timeout=self.timeout, decode_responses=True,
                    retry=Retry(NoBackoff(), 0))  # one try: the probe itself retries 20 times a second
            return self.conns[ip]

    def drop(self, ip):
        with self.lock:
            self.failed_at[ip] = time.time()
            conn = self.conns.pop(ip, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def refresh(self, prefer=None):
        """Slot map from CLUSTER SLOTS of the first node that answers (prefer first)."""
        ips = sorted(self.config["hosts"].values(), key=lambda ip: self.failed_at.get(ip, 0))
        if prefer in ips:
            ips.remove(prefer)
            ips.insert(0, prefer)
        for ip in ips:
            try:
                reply = self.conn(ip).execute_command("CLUSTER", "SLOTS")
            except Exception:
                self.drop(ip)
                continue
            ranges = []
            for entry in reply:
                ranges.append((int(entry[0]), int(entry[1]), entry[2][0]))
            if ranges:
                self.ranges = ranges
                return True
        return False

    def owner(self, slot):
        for first, last, ip in self.ranges:
            if first <= slot <= last:
                return ip
        return None


# redis-py turns these replies into exception classes and drops the code from the message.
ERROR_CODES = {"MovedError": "MOVED", "AskError": "ASK", "ClusterDownError": "CLUSTERDOWN",
               "TryAgainError": "TRYAGAIN", "MasterDownError": "MASTERDOWN", "ReadOnlyError": "READONLY",
               "OutOfMemoryError": "OOM", "NoPermissionError": "NOPERM", "BusyLoadingError": "LOADING"}


def error_code(exc):
    """The Redis error code of an error reply (NOREPLICAS, MOVED, CLUSTERDOWN, ...)."""
    name = type(exc).__name__
    if name in ERROR_CODES:
        return ERROR_CODES[name]
    words = str(exc).split()
    return words[0] if words and words[0].isupper() else "ERR"


def event_gap(times, window):
    """Longest stretch of `window` (start, end) between two events (sorted epoch seconds), each stretch clipped to
    the window, so that a stall which began just before it or ends just after it (a kill that follows a
    handover) is not charged to it."""
    start, end = window
    longest = 0.0
    for before, after in zip(times, times[1:]):
        if before < end and after > start:
            longest = max(longest, min(after, end) - max(before, start))
    return longest


def stall(events, at, until, lag=3.0):
    """How long a client went without each kind of event (processed, acked: sorted epoch seconds) because of
    something done at `at` (a kill): the longest stretch between two events whose first lies between 1 s before
    `at` and `lag` s after it (a kill takes effect within that), or from such an event to `until` (when the
    client stopped) if none came after it."""
    figures = {}
    for kind, times in events.items():
        first, last = bisect.bisect_left(times, at - 1.0), bisect.bisect_right(times, at + lag)
        longest = 0.0
        for i in range(first, last):
            longest = max(longest, (times[i + 1] if i + 1 < len(times) else until) - times[i])
        figures[kind] = round(longest if first < last else until - at, 2)
    return figures


def queue_base(tag, name):
    """The start of every key of BullMQ queue `name` under prefix bull:{<tag>}: bull:{<tag>}:<name>:."""
    return "bull:{%s}:%s:" % (tag, name)


def job_state(nodes, tag, base, job_id):
    """Where BullMQ job job_id (keys <base><id>, hash tag tag) is in Redis: its hash, failedReason,
    attemptsMade, stalled counter, the lists and sets that hold it and its lock's TTL (a worker still
    owns it). nodes: a refreshed Nodes. Diagnostics only: an error is reported in "error"."""
    state = dict(id=job_id)
    try:
        conn = nodes.conn(nodes.owner(crc16(tag)))
        state["hash"] = bool(conn.exists(base + job_id))
        for field in ("failedReason", "attemptsMade", "stc", "ats", "processedOn", "finishedOn"):
            value = conn.hget(base + job_id, field)
            if value is not None:
                state[field] = str(value)[:200]
        state["in"] = [k for k in ("wait", "active", "paused") if conn.lpos(base + k, job_id) is not None] + \
            [k for k in ("completed", "failed", "delayed", "prioritized") if conn.zscore(base + k, job_id) is not None]
        if conn.sismember(base + "stalled", job_id):  # marked by the stalled-job check, not yet moved back
            state["in"].append("stalled")
        state["lock_ttl_ms"] = conn.pttl(base + job_id + ":lock")
    except Exception as exc:  # diagnostics only
        state["error"] = "%s: %s" % (type(exc).__name__, str(exc)[:100])
    return state


class Probe(threading.Thread):
    """RPUSH n to one key of a shard, 20 times a second; records accepted writes and errors."""

    def __init__(self, config, shard, first, last, stop, run_id):
        super().__init__(daemon=True)
        self.nodes = Nodes(config)
        self.shard, self.stop = shard, stop
        self.key = "bull:{%s}:drill-probe-%s" % (tag_in(first, last, "probe%d" % shard), run_id)
        self.slot = crc16(self.key[self.key.index("{") + 1:self.key.index("}")])
        self.accepted = []  # (time, n)
        self.errors = []  # (time, kind)
        self.seq = 0

    def run(self):
        self.nodes.refresh()
        while not self.stop.is_set():
            started = time.time()
            ip = self.nodes.owner(self.slot)
            self.seq += 1
            try:
                if ip is None:
                    raise redis.ConnectionError("no owner known")
                self.nodes.conn(ip).rpush(self.key, self.seq)
                self.accepted.append((time.time(), self.seq))
            except redis.AuthenticationError:  # a (re)connection whose password the node refuses
                self.errors.append((time.time(), "WRONGPASS"))
                self.nodes.drop(ip)
                self.nodes.refresh()
            except redis.ResponseError as exc:
                self.errors.append((time.time(), error_code(exc)))
                self.nodes.refresh(prefer=getattr(exc, "host", None))  # MOVED names the new owner
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.errors.append((time.time(), "TIMEOUT" if isinstance(exc, redis.TimeoutError) else "CONNECTION"))
                self.nodes.drop(ip)
                self.nodes.refresh()
            pause = PROBE_INTERVAL - (time.time() - started)
            if pause > 0:
                time.sleep(pause)

    def last_ok(self):
        return self.accepted[-1][0] if self.accepted else 0


def describe(exc):
    """An exception as "<type>: <message>" (the message cut to 160 characters), what the results report."""
    return "%s: %s" % (type(exc).__name__, str(exc)[:160])


class Jobs(threading.Thread):
    """A BullMQ producer and worker in their own event loop."""

    def __init__(self, config, queues, stop, run_id, connect=None, pause=0.1, suffix="", drain_s=180):
        """queues: hash tags; each queue is named <tag><suffix> under prefix bull:{<tag>} (a suffix puts a
        second queue beside an application's queue of that name, in its slot). connect(user, **timeouts) -> an
        asyncio RedisCluster; by default the connection docs/connect.md's Python snippet builds, with the
        certificates and hosts of config (connect_snippets.docs_cluster), which ignores the timeouts. pause: seconds
        between two adds of one queue. drain_s: after stop, how long the worker may take to process what
        was acknowledged before the figures are taken."""
        super().__init__(daemon=True)
        self.config, self.queues, self.stop, self.run_id = config, queues, stop, run_id
        self.connect = connect or (lambda user, **_timeouts: docs_cluster(config["pki"], list(config["hosts"].values()), user))
        self.pause, self.suffix, self.drain_s = pause, suffix, drain_s
        self.acked = {}  # job id -> (time acknowledged, queue)
        self.add_errors = []  # (time, queue, "<exception type>: <message>")
        self.processed = {}  # job id -> times processed
        self.processed_at = {q: [] for q in queues}  # queue -> when each job was first processed
        self.worker_restarts = []  # (time, queue, why): a Worker.run() that ended while the worker was open
        self.drained = threading.Event()
        self.failure = None

    def error_kinds(self, limit=5):
        """The most frequent add errors: {"<type>: <message>": count}, at most limit of them."""
        counts = {}
        for _unused1, _unused2, kind in list(self.add_errors):
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1])[:limit])

    def acked_at(self, queue):
        """When each add of a queue was acknowledged (sorted epoch seconds)."""
        return sorted(t for t, q in list(self.acked.values()) if q == queue)

    def prefix(self, queue):
        """The BullMQ prefix of a queue (its hash tag)."""
        return "bull:{%s}" % queue

    def base(self, queue):
        """The start of every key of a queue: <prefix>:<name>:."""
        return queue_base(queue, queue + self.suffix)

    def run(self):
        try:
            asyncio.run(self.main())
        except Exception as exc:  # reported in the result, never swallowed
            self.failure = "%s: %s" % (type(exc).__name__, str(exc)[:300])
            self.drained.set()

    def state_of(self, nodes, job_id, since=0.0):
        """Where an unprocessed job is in Redis (or that it is gone) and why BullMQ gave up on it (a stalled
        job, an error from a script), to tell a client from a server cause. nodes: a Nodes (refreshed)."""
        acked_at, queue = self.acked[job_id]
        return dict(job_state(nodes, queue, self.base(queue), job_id), acked_s=round(acked_at - since, 2))

    def failed_reasons(self, nodes):
        """{failedReason: jobs} over the queues' failed sets (a processed job may still end there when
        its completion was refused)."""
        reasons = {}
        for queue in self.queues:
            base = self.base(queue)
            try:
                conn = nodes.conn(nodes.owner(crc16(queue)))
                for job_id in conn.zrange(base + "failed", 0, 49):
                    reason = str(conn.hget(base + job_id, "failedReason"))[:120]
                    reasons[reason] = reasons.get(reason, 0) + 1
            except Exception as exc:  # diagnostics only
                reasons["(%s: %s)" % (type(exc).__name__, str(exc)[:80])] = 1
        return reasons

    def finished(self, nodes):
        """How many jobs the queues' completed and failed sets hold now (removeOnComplete is off: every
        processed job stays until something deletes it)."""
        held = dict(completed=0, failed=0)
        try:
            for queue in self.queues:
                base = self.base(queue)
                conn = nodes.conn(nodes.owner(crc16(queue)))
                for state in ("completed", "failed"):
                    held[state] += conn.zcard(base + state)
        except Exception as exc:  # reported: a test that reads these figures then fails on the missing count
            held = dict(error="%s: %s" % (type(exc).__name__, str(exc)[:100]))
        return held

    async def produce(self, queue, name):
        n = 0
        while not self.stop.is_set():
            n += 1
            job_id = "%s-%s-%d" % (name, self.run_id, n)  # unique per run: BullMQ ignores a known id
            while True:  # retry the same id until Redis acknowledges the add
                try:
                    await asyncio.wait_for(queue.add("drill", {"n": n}, {"jobId": job_id, "removeOnComplete": False}),
                                           ADD_TIMEOUT_S)
                    self.acked[job_id] = (time.time(), name)
                    break
                except Exception as exc:
                    self.add_errors.append((time.time(), name, describe(exc)))
                    if self.stop.is_set():
                        break
                    await asyncio.sleep(0.2)
            await asyncio.sleep(self.pause)

    async def main(self):
        # connect timeout 5 s: with 1 s a worker's first TLS connect timed out on a loaded 2-core CI host and
        # Python BullMQ's Worker.run() ended for good (all jobs of that queue left in wait)
        timeouts = dict(socket_timeout=2, socket_connect_timeout=5)
        api = self.connect("api", **timeouts)
        workers_conn = self.connect("worker", **timeouts)

        def processor(queue):
            async def process(job, token):
                self.processed[job.id] = self.processed.get(job.id, 0) + 1
                if self.processed[job.id] == 1:
                    self.processed_at[queue].append(time.time())
                return "ok"
            return process

        opts = {"connection": workers_conn, "concurrency": 10, "drainDelay": 1, "runRetryDelay": 500}
        queues = {q: Queue(q + self.suffix, {"connection": api, "prefix": self.prefix(q)}) for q in self.queues}
        workers = {q: Worker(q + self.suffix, processor(q), dict(opts, prefix=self.prefix(q), autorun=False))
                   for q in self.queues}
        runs = {q: asyncio.ensure_future(worker.run()) for q, worker in workers.items()}

        async def supervise():
            # Python BullMQ's Worker.run() ends for good on an error outside a job (a connect that timed out
            # in its CLIENT SETNAME, say) and nothing restarts it: the application has to, as it would in
            # production. Each restart is counted and reported.
            while not self.drained.is_set():
                for queue, run in list(runs.items()):
                    if run.done():
                        exc = None if run.cancelled() else run.exception()
                        self.worker_restarts.append((time.time(), queue, describe(exc) if exc else "ended"))
                        await asyncio.sleep(0.5)
                        runs[queue] = asyncio.ensure_future(workers[queue].run())
                await asyncio.sleep(0.5)

        supervisor = asyncio.ensure_future(supervise())
        await asyncio.gather(*[self.produce(queue, name) for name, queue in queues.items()])
        deadline = time.time() + self.drain_s
        while time.time() < deadline and any(j not in self.processed for j in list(self.acked)):
            await asyncio.sleep(0.5)
        self.drained.set()
        await supervisor
        for worker in workers.values():
            await worker.close()
        for queue in queues.values():
            await queue.close()


class NodeJobs:
    """tests/harness/shardwise_harness/node/during.mjs (Node.js BullMQ + ioredis configured as docs/connect.md says) in
    WORK/node, on queues <name><suffix> under prefix bull:{<name>}, until stop(). env: the connection's
    environment (REDIS_NODES, certificates, user, password); connection: another redis.mjs text (default:
    docs/connect.md's). result() is during.mjs' JSON, with its times in epoch seconds."""

    def __init__(self, work, env, queues, run_id, connection=None, suffix="-node", pause_ms=100, drain_ms=150000):
        node_dir = node_workload(work, ["during.mjs"], connection=connection)
        self.stop_file, self.result_file = os.path.join(work, "stop"), os.path.join(work, "result.json")
        self.queues = queues
        env = dict(env, QUEUES=",".join(queues), STOP_FILE=self.stop_file, RESULT_FILE=self.result_file, RUN_ID=run_id,
                   SUFFIX=suffix, PAUSE_MS=str(pause_ms), DRAIN_MS=str(drain_ms))
        self.log = os.path.join(work, "node.log")  # its output (DEBUG=ioredis:* traces go there too)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(["node", "during.mjs"], cwd=node_dir, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self):
        open(self.stop_file, "w").close()

    def result(self, timeout=300):
        """Stop the client and return what it saw (dict(failure=...) when it printed no result in time)."""
        self.stop()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with open(self.log, errors="replace") as fh:
            out = fh.read()[-2000:]
        try:
            with open(self.result_file) as fh:
                result = json.load(fh)
        except (OSError, ValueError):
            return dict(failure="no result within %d s of the stop, exit %s: %s" % (timeout, self.proc.returncode, out[-500:]))
        for events in result.get("timeline", {}).values():
            for kind in events:
                events[kind] = [ms / 1000.0 for ms in events[kind]]
        for key in ("lost_jobs_at", "duplicated_at"):
            result[key] = [[job_id, queue, ms / 1000.0] for job_id, queue, ms in result.get(key, [])]
        return result
