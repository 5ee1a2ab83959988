"""Run the snippets of docs/connect.md, unchanged, against the TLS cluster.

Usage: connect_snippets.py PKI_DIR WORK_DIR HOST [HOST ...]
Passwords come from REDIS_API_PASSWORD and REDIS_WORKER_PASSWORD. The snippets are the fenced blocks that
follow a `<!-- snippet: PATH -->` line; they are written to WORK_DIR/PATH. For Node.js (BullMQ 5 on ioredis,
tests/harness/shardwise_harness/node/package.json) and then Python (bullmq on redis-py): a worker runs as user worker, a
producer adds JOBS jobs as user api, and every job must complete, none fail. Counts are read from the
queue's completed set with the api user. Exits 1 on any failure; never prints a secret.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

from shardwise_harness import NODE_DIR, TOP
from shardwise_harness.tls_client import sync_cluster

JOBS = 40
QUEUE_KEY = "bull:{critical}:"
CONNECTION_SETTINGS = ("REDIS_NODES", "REDIS_CA_FILE", "REDIS_CERT_FILE", "REDIS_KEY_FILE", "REDIS_USER", "REDIS_PASSWORD")
_ENVIRONMENT = threading.Lock()  # docs_cluster: one connection() call at a time sees its own settings


def snippets(path):
    with open(path) as fh:
        text = fh.read()
    found = re.findall(r"<!-- snippet: (\S+) -->\n```[a-z]*\n(.*?)\n```", text, re.S)
    if len(found) < 4:
        sys.exit("FAIL docs/connect.md: expected 4 snippets, found %d" % len(found))
    return found


def npm_ci(node_dir):
    """Install the pinned BullMQ 5 and ioredis (tests/harness/shardwise_harness/node/package-lock.json) in NODE_DIR."""
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(NODE_DIR, name), node_dir)
    return subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--cache", os.path.join(TOP, ".cache", "npm")],
                          cwd=node_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)


def node_workload(work, scripts, connection=None):
    """A fresh WORK/node for a Node.js workload: docs/connect.md's redis.mjs (the documented connection;
    CONNECTION, the text of another redis.mjs, replaces it), SCRIPTS from tests/harness/shardwise_harness/node, and
    `npm ci`. Exits on an npm failure. Returns the folder."""
    if os.path.isdir(work):
        shutil.rmtree(work)
    node_dir = os.path.join(work, "node")
    os.makedirs(node_dir)
    if connection is None:
        connection = dict(snippets(os.path.join(TOP, "docs", "connect.md")))["node/redis.mjs"] + "\n"
    with open(os.path.join(node_dir, "redis.mjs"), "w") as fh:
        fh.write(connection)
    for name in scripts:
        shutil.copy(os.path.join(NODE_DIR, name), node_dir)
    npm = npm_ci(node_dir)
    if npm.returncode != 0:
        sys.exit("FAIL npm ci: %s" % npm.stdout[-2000:])
    return node_dir


def docs_cluster(pki, hosts, user):
    """The asyncio RedisCluster that docs/connect.md's Python snippet (python/app.py) builds with its connection(),
    for USER with the certificates of PKI and HOSTS as seed nodes: the test clients connect exactly as the docs
    tell applications to. connection() reads its settings from the environment when called; they are set for
    that call only."""
    namespace = {"__name__": "shardwise_docs_app"}
    exec(compile(dict(snippets(os.path.join(TOP, "docs", "connect.md")))["python/app.py"], "docs/connect.md", "exec"),
         namespace)
    settings = environment(pki, hosts, user)
    with _ENVIRONMENT:
        saved = {k: os.environ.get(k) for k in CONNECTION_SETTINGS}
        os.environ.update({k: settings[k] for k in CONNECTION_SETTINGS})
        try:
            return namespace["connection"]()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def environment(pki, hosts, user):
    env = dict(os.environ, REDIS_NODES=",".join("%s:6379" % h for h in hosts), REDIS_CA_FILE=os.path.join(pki, "ca.crt"),
               REDIS_CERT_FILE=os.path.join(pki, "clients", user + ".crt"),
               REDIS_KEY_FILE=os.path.join(pki, "clients", user + ".key"), REDIS_USER=user,
               REDIS_PASSWORD=os.environ["REDIS_%s_PASSWORD" % user.upper()], JOBS=str(JOBS))
    return env


def finished(reader):
    return reader.zcard(QUEUE_KEY + "completed"), reader.zcard(QUEUE_KEY + "failed")


def wait_for(reader, before, label):
    deadline = time.time() + 90
    while time.time() < deadline:
        done, failed = finished(reader)
        if done - before[0] >= JOBS or failed > before[1]:
            break
        time.sleep(0.5)
    done, failed = finished(reader)
    waiting = reader.llen(QUEUE_KEY + "wait")
    ok = done - before[0] == JOBS and failed == before[1]
    print("%s %s: %d jobs added, %d completed, %d failed, %d waiting"
          % ("PASS" if ok else "FAIL", label, JOBS, done - before[0], failed - before[1], waiting))
    return ok


def run(label, worker_argv, producer_argv, cwd, pki, hosts, reader, worker_env=None):
    before = finished(reader)
    worker = subprocess.Popen(worker_argv, cwd=cwd, env=dict(environment(pki, hosts, "worker"), **(worker_env or {})),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            producer = subprocess.run(producer_argv, cwd=cwd, env=environment(pki, hosts, "api"), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, timeout=120, check=False)
            said, ok = producer.stdout, producer.returncode == 0
        except subprocess.TimeoutExpired as exc:
            said, ok = "TIMEOUT after 120 s: %s" % (exc.output or ""), False
        print("  producer: %s" % said.strip().replace("\n", " | ")[-600:])
        ok = ok and wait_for(reader, before, label)
        if not ok:
            print("FAIL %s: the producer did not finish" % label)
    finally:
        worker.terminate()
        try:
            out, _unused = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            out, _unused = worker.communicate()
    lines = out.strip().splitlines()
    print("  worker: %d lines, last: %s" % (len(lines), lines[-1][-200:] if lines else "-"))
    return ok


def main(pki, work, hosts):
    pki, work = os.path.abspath(pki), os.path.abspath(work)
    if os.path.isdir(work):
        shutil.rmtree(work)
    for path, body in snippets(os.path.join(TOP, "docs", "connect.md")):
        target = os.path.join(work, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as fh:
            fh.write(body + "\n")
    node_dir = os.path.join(work, "node")
    npm = npm_ci(node_dir)
    if npm.returncode != 0:
        print(npm.stdout[-2000:])
        return 1
    reader = sync_cluster(pki, hosts, "api")
    node_ok = run("Node.js BullMQ 5 + ioredis (docs/connect.md)", ["node", "worker.mjs"], ["node", "producer.mjs"],
                  node_dir, pki, hosts, reader)
    python_dir = os.path.join(work, "python")
    python_ok = run("Python bullmq + redis-py (docs/connect.md)", [sys.executable, "app.py"], [sys.executable, "app.py"],
                    python_dir, pki, hosts, reader, worker_env=dict(ROLE="worker", SECONDS="60"))
    return 0 if node_ok and python_ok else 1


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
