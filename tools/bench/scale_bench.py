"""make bench-scale (issue 34): what the collection costs from 6 to 90 nodes, beside redis-cli.

The nodes are local Redis 7.2 processes on one privileged host container (the lab image, on the lab network at
SCALE_IP): each has its own loopback address, zone by zone (127.0.1.x zone-a, 127.0.2.x zone-b, 127.0.3.x zone-c),
its own folders, and the redis.conf and ACL file the server role renders for it (tools/bench/scale_render.yml:
mutual TLS, the ACL users, RDB+AOF, the cluster settings). The inventory lists every node as a host of its own whose
ansible_host is the container, so the collection's playbooks and modules run against them unchanged.

Measured at each size (each step of the issue adds its rows), every playbook run end to end with the controller
CPU it cost and the most connections it opened on one node:
  - formation: the collection (the cluster role's formation, end to end) vs `redis-cli --cluster create
    --cluster-replicas 1` on the same fresh nodes;
  - the idle cluster: CPU per node and bus messages per node per second (the ping interval's cost);
  - `redis_cluster_info` (gather + health);
  - a healthy `failover_recovery.yml` run (it must change nothing);
  - `failover_recovery.yml` after zone-c's processes are killed (it waits for Redis's failovers and places
    what it can; the cluster stays degraded, so it exits non-zero), then after they are started again (they
    rejoin as replicas and the run restores the zone spread), then `redis_cluster_info` (healthy again).

Usage: make bench-scale [SCALE_SIZES=6,30,60,90], or .venv/bin/python tools/bench/scale_bench.py [--sizes ...] [--keep]
Results: bench/results/scale-<date>.json. Not part of make test.
"""
import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(TOP, ".venv", "bin")
NAME = "shardwise-scale"
NETWORK, SUBNET = "shardwise-lab", "10.89.20.0/24"
SCALE_IP = "10.89.20.90"
KEY = os.path.join(TOP, ".cache", "lab", "id_ed25519")
WORK = os.path.join(TOP, ".cache", "scale")
ZONES = ["zone-a", "zone-b", "zone-c"]
ARCHIVE = os.path.join(TOP, ".cache", "redis-7.2.4-linux-x86_64")
SIZES = [6, 30, 60, 90]


def say(message):
    print("scale: %s" % message, flush=True)


def run(argv, check=True, **kwargs):
    return subprocess.run(argv, check=check, text=True, **kwargs)


def on_host(script, check=True):
    """Run a bash script on the scale host (podman exec); its stdout."""
    done = run(["podman", "exec", "-i", NAME, "bash", "-euo", "pipefail", "-s"], input=script, check=False,
               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check and done.returncode != 0:
        raise SystemExit("scale host: script failed (%d): %s" % (done.returncode, done.stderr[-2000:]))
    return done.stdout


def nodes(size):
    """[(name, zone, address)]: round-robin over the zones, so each zone holds a third."""
    found = []
    for i in range(size):
        zone = i % len(ZONES)
        k = i // len(ZONES) + 1
        found.append(("n%s%02d" % ("abc"[zone], k), ZONES[zone], "127.0.%d.%d" % (zone + 1, k)))
    return found


def host_up():
    image = run([os.path.join(TOP, "tools", "lab", "image.sh"), "bookworm"], stdout=subprocess.PIPE).stdout.strip()
    if run(["podman", "network", "exists", NETWORK], check=False).returncode != 0:
        run(["podman", "network", "create", "--subnet", SUBNET, "--label", "shardwise=lab", NETWORK],
            stdout=subprocess.DEVNULL)
    if run(["podman", "container", "exists", NAME], check=False).returncode != 0:
        os.makedirs(os.path.dirname(KEY), exist_ok=True)
        if not os.path.exists(KEY):
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "shardwise-lab", "-f", KEY])
        run(["podman", "run", "-d", "--name", NAME, "--hostname", NAME, "--privileged", "--network", NETWORK,
             "--ip", SCALE_IP, "--label", "shardwise=lab", "-v", KEY + ".pub:/root/.ssh/authorized_keys:ro", image],
            stdout=subprocess.DEVNULL)
    for _unused in range(60):
        if run(["ssh", "-i", KEY, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR", "root@" + SCALE_IP,
                "true"], check=False, stderr=subprocess.DEVNULL).returncode == 0:
            break
        time.sleep(1)
    else:
        raise SystemExit("scale host: no SSH within 60 s ('podman logs %s' shows why)" % NAME)
    if not os.path.isdir(ARCHIVE):
        raise SystemExit("scale: %s is missing: run make archive first" % ARCHIVE)
    run(["podman", "cp", ARCHIVE, NAME + ":/opt/redis"])
    on_host(_INSTALL)


# The binaries (the lab's archive, its private libssl), and one CA with a node certificate (server and client use;
# Redis checks the chain, not the name) and the admin client certificate where the modules look for them.
_INSTALL = r"""
for b in /opt/redis/bin/redis-*; do ln -sf "$b" /usr/local/bin/; done
mkdir -p /etc/redis/tls /etc/scale /var/lib/scale /var/log/scale /run/scale
cd /etc/redis/tls
if [ ! -f ca.crt ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -subj /CN=shardwise-scale-ca -days 30 -out ca.crt
  for name in redis client-admin; do
    openssl ecparam -name prime256v1 -genkey -noout -out $name.key 2>/dev/null
    openssl req -new -key $name.key -subj /CN=$name -out $name.csr
    printf 'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1\n' > $name.ext
    openssl x509 -req -in $name.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -extfile $name.ext -out $name.crt 2>/dev/null
  done
  chmod 0644 *.crt; chmod 0600 *.key
fi
"""


EXTRA_VARS = {}  # --set name=value: group vars of the generated inventory (a lever measured against the defaults)


def inventory(size, out):
    """The generated inventory: one host per node, all reached over SSH at the scale host."""
    hosts = dict((name, {"ansible_host": SCALE_IP, "redis_zone": zone, "redis_announce_ip": address,
                         "scale_address": address})
                 for name, zone, address in nodes(size))
    os.makedirs(os.path.join(out, "group_vars"), exist_ok=True)
    with open(os.path.join(out, "hosts.yml"), "w") as fh:
        json.dump({"redis": {"hosts": hosts}}, fh, indent=1)
    secrets = os.path.join(TOP, ".cache", "lab", "secrets")
    group = {
        "ansible_user": "root", "ansible_ssh_private_key_file": KEY,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        "_lab_secrets": secrets, "redis_tls_pki_dir": os.path.join(out, "pki"),
        "redis_runbook_report_dir": os.path.join(out, "reports"),
        "redis_link_dir": "/usr/local/bin",
    }
    with open(os.path.join(TOP, "inventories", "lab", "group_vars", "redis", "redis.yml")) as fh:
        lab = fh.read()
    with open(os.path.join(out, "group_vars", "redis.yml"), "w") as fh:
        fh.write(re.sub(r"(?m)^_lab_secrets:.*$", "", lab))
        fh.write("\n# bench-scale\n")
        for key, value in list(group.items()) + sorted(EXTRA_VARS.items()):
            fh.write("%s: %s\n" % (key, json.dumps(value)))
    return out


LAST = {}  # what the last playbook() cost: controller CPU seconds, return code


def playbook(inv, path, *extra, **kwargs):
    """Run a playbook; (seconds, output). Fails loudly unless allow_failure; LAST gets its controller CPU (user +
    system of ansible-playbook and everything it started on this machine) and its return code."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    done = run([os.path.join(BIN, "ansible-playbook"), "-i", inv, path] + list(extra), check=False, env=env, cwd=TOP,
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = round(time.time() - started, 2)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST.update(cpu_s=round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2), rc=done.returncode)
    log = os.path.join(os.path.dirname(inv), "%s.log" % os.path.splitext(os.path.basename(path))[0])
    with open(log, "a") as fh:  # each run's output (with ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks: its profile)
        fh.write(done.stdout)
    if done.returncode != 0 and not kwargs.get("allow_failure"):
        raise SystemExit("%s failed after %s s:\n%s" % (os.path.basename(path), seconds, done.stdout[-4000:]))
    return seconds, done.stdout


def render(inv, rendered):
    """Every node's redis.conf, ACL file and replication credentials, by the server role's templates."""
    if os.path.isdir(rendered):
        shutil.rmtree(rendered)
    playbook(inv, os.path.join(TOP, "tools", "bench", "scale_render.yml"), "-e", "scale_out=" + rendered,
             "-e", "_lab_secrets=" + os.path.join(TOP, ".cache", "lab", "secrets"),
             "-e", json.dumps(EXTRA_VARS))  # above the play's vars_files, as the inventory is not


def start_nodes(size, inv, rendered):
    """Copy the rendered files to the scale host and start fresh processes (no data, no cluster)."""
    stop_nodes()
    on_host("rm -rf /etc/scale/* /var/lib/scale/* /var/log/scale/*")
    run(["podman", "cp", rendered + "/.", NAME + ":/etc/scale/"])
    names = " ".join(name for name, _zone, _address in nodes(size))
    on_host(r"""
for n in %s; do
  ln -sfn /etc/redis/tls /etc/scale/$n/tls
  mkdir -p /var/lib/scale/$n /var/log/scale/$n
  redis-server /etc/scale/$n/redis.conf --daemonize yes --supervised no --pidfile /run/scale/$n.pid
done
""" % names)
    deadline = time.time() + 60
    while time.time() < deadline:
        up = int(on_host("ls /run/scale/*.pid 2>/dev/null | wc -l").strip() or 0)
        if up == size:
            return
        time.sleep(0.5)
    raise SystemExit("scale: only %d of %d nodes started (their logs are in /var/log/scale on %s)" % (up, size, NAME))


def stop_nodes():
    on_host("pkill -9 -x redis-server || true; rm -f /run/scale/*.pid", check=False)


def cli_create(size):
    """redis-cli --cluster create on the same fresh nodes; seconds until every node reports cluster_state ok."""
    addresses = " ".join("%s:6379" % address for _name, _zone, address in nodes(size))
    started = time.time()
    on_host(r"""
export REDISCLI_AUTH="$(cat /etc/redis/scale-admin.pass)"
redis-cli --tls --cacert /etc/redis/tls/ca.crt --cert /etc/redis/tls/client-admin.crt \
  --key /etc/redis/tls/client-admin.key --user admin --cluster create %s --cluster-replicas 1 --cluster-yes >/var/log/scale/create.log
for a in %s; do
  until redis-cli --tls --cacert /etc/redis/tls/ca.crt --cert /etc/redis/tls/client-admin.crt \
        --key /etc/redis/tls/client-admin.key --user admin -h ${a%%:*} cluster info | grep -q cluster_state:ok; do
    sleep 0.1
  done
done
""" % (addresses, addresses))
    return round(time.time() - started, 2)


def admin_password():
    with open(os.path.join(TOP, ".cache", "lab", "secrets", "admin")) as fh:
        return fh.read().strip()


_CLI = ("redis-cli --tls --cacert /etc/redis/tls/ca.crt --cert /etc/redis/tls/client-admin.crt "
        "--key /etc/redis/tls/client-admin.key --user admin --no-auth-warning")


def node_stats(size):
    """name -> (connections received, CPU seconds used) of every running node (INFO, /proc on the scale host)."""
    out = on_host(r"""
export REDISCLI_AUTH="$(cat /etc/redis/scale-admin.pass)"
for f in /run/scale/*.pid; do
  n=$(basename $f .pid); pid=$(cat $f)
  [ -d /proc/$pid ] || continue
  addr=$(sed -n 's/^bind \([0-9.]*\).*/\1/p' /etc/scale/$n/redis.conf)
  conns=$(%s -h $addr info stats | sed -n 's/^total_connections_received:\([0-9]*\).*/\1/p')
  ticks=$(awk '{print $14 + $15}' /proc/$pid/stat)
  echo "$n ${conns:-0} $ticks"
done
""" % _CLI)
    ticks = os.sysconf("SC_CLK_TCK")
    return dict((n, (int(c), int(t) / float(ticks))) for n, c, t in (line.split() for line in out.splitlines()))


def timed_run(inv, path, size, label, row, key, *extra, **kwargs):
    """One playbook run with the connections it opened per node and the controller CPU it cost."""
    before = node_stats(size)
    seconds, output = playbook(inv, path, *extra, **kwargs)
    after = node_stats(size)
    opened = [after[n][0] - before[n][0] - 1 for n in after if n in before]  # less node_stats' own
    row[key + "_s"] = seconds
    row[key + "_controller_cpu_s"] = LAST["cpu_s"]
    row[key + "_connections_per_node_max"] = max(opened) if opened else 0
    row[key + "_rc"] = LAST["rc"]
    row[key + "_changed"] = sum(int(n) for n in re.findall(r"changed=(\d+)", output))
    say("%d nodes: %s %.1f s (controller CPU %.1f s, at most %d connections per node, changed=%d, rc=%d)"
        % (size, label, seconds, LAST["cpu_s"], row[key + "_connections_per_node_max"], row[key + "_changed"],
           LAST["rc"]))
    return output


def idle_cost(size, row, seconds=10):
    """What the idle cluster costs: CPU per node (the cluster bus pings every node every ping interval) and bus
    messages per second sent by one node."""
    def sent():
        return int(re.search(r"cluster_stats_messages_sent:(\d+)", on_host(
            'REDISCLI_AUTH="$(cat /etc/redis/scale-admin.pass)" %s -h 127.0.1.1 cluster info' % _CLI)).group(1))

    first = node_stats(size)
    messages = sent()
    time.sleep(seconds)
    messages = sent() - messages
    last = node_stats(size)
    cpu = [(last[n][1] - first[n][1]) / seconds for n in last if n in first]
    row["idle_cpu_per_node_pct"] = round(100 * sum(cpu) / len(cpu), 2)
    row["bus_messages_per_node_s"] = round(messages / float(seconds))
    say("%d nodes idle: %.2f %% of a core per node, %d bus messages/s sent per node"
        % (size, row["idle_cpu_per_node_pct"], row["bus_messages_per_node_s"]))


def kill_zone(zone_index):
    on_host("for f in /run/scale/n%s*.pid; do kill -9 $(cat $f) || true; rm -f $f; done" % "abc"[zone_index])


def restart_zone(size, zone_index):
    names = " ".join(name for name, zone, _address in nodes(size) if zone == ZONES[zone_index])
    on_host(r"""
for n in %s; do
  redis-server /etc/scale/$n/redis.conf --daemonize yes --supervised no --pidfile /run/scale/$n.pid
done
""" % names)


def settle(timeout=120):
    """Seconds until no node is flagged failed in zone-a's first node's view (returned nodes seen again; before
    that, failover_recovery refuses to act on a node some see failed and it answers, as in a partition)."""
    started = time.time()
    while time.time() - started < timeout:
        view = on_host('REDISCLI_AUTH="$(cat /etc/redis/scale-admin.pass)" %s -h 127.0.1.1 cluster nodes' % _CLI,
                       check=False)
        if view and not re.search(r"\bfail\??\b|,fail", view):
            return round(time.time() - started, 2)
        time.sleep(0.5)
    raise SystemExit("scale: nodes still flagged failed %d s after zone-c came back" % timeout)


def measure(size, keep):
    out = os.path.join(WORK, str(size))
    inv = inventory(size, os.path.join(out, "inventory"))
    rendered = os.path.join(out, "rendered")
    row = dict(nodes=size, primaries=size // 2)
    say("%d nodes: rendering with the server role's templates and starting them" % size)
    render(inv, rendered)
    start_nodes(size, inv, rendered)
    run(["podman", "exec", "-i", NAME, "bash", "-c", "umask 077; cat > /etc/redis/scale-admin.pass"], input=admin_password())
    row["redis_cli_create_s"] = cli_create(size)
    say("%d nodes: redis-cli --cluster create %.1f s" % (size, row["redis_cli_create_s"]))
    start_nodes(size, inv, rendered)
    form = os.path.join(TOP, "tools", "bench", "scale_form.yml")
    info = os.path.join(TOP, "tools", "bench", "scale_info.yml")
    recovery = os.path.join(TOP, "playbooks", "failover_recovery.yml")
    timed_run(inv, form, size, "the collection's formation", row, "collection_form")
    idle_cost(size, row)
    timed_run(inv, info, size, "redis_cluster_info (healthy)", row, "cluster_info")
    timed_run(inv, recovery, size, "healthy failover_recovery.yml", row, "failover_recovery_healthy")
    # A zone's processes killed (their hosts still answer SSH here: one host carries all nodes): the run waits for
    # Redis's own failovers, then places what it can; the cluster stays degraded (no replica for the shards whose
    # replica was in the dead zone), so the run reports it and exits non-zero.
    kill_zone(2)
    timed_run(inv, recovery, size, "failover_recovery.yml, zone-c killed", row, "failover_recovery_zone_down",
              allow_failure=True)
    restart_zone(size, 2)
    row["zone_back_settle_s"] = settle()
    say("%d nodes: zone-c back, no node flagged failed after %.1f s" % (size, row["zone_back_settle_s"]))
    timed_run(inv, recovery, size, "failover_recovery.yml, zone-c back", row, "failover_recovery_zone_back")
    timed_run(inv, info, size, "redis_cluster_info after the zone's return (healthy)", row, "cluster_info_after")
    if not keep:
        stop_nodes()
    return row


TABLE = [("redis_cli_create_s", "redis-cli --cluster create"), ("collection_form_s", "formation (collection)"),
         ("cluster_info_s", "redis_cluster_info"), ("failover_recovery_healthy_s", "failover_recovery, healthy"),
         ("failover_recovery_zone_down_s", "failover_recovery, zone-c killed"),
         ("failover_recovery_zone_back_s", "failover_recovery, zone-c back"),
         ("failover_recovery_healthy_controller_cpu_s", "healthy failover_recovery: controller CPU s"),
         ("failover_recovery_healthy_connections_per_node_max", "healthy failover_recovery: connections per node"),
         ("idle_cpu_per_node_pct", "idle CPU per node, % of a core"),
         ("bus_messages_per_node_s", "bus messages sent per node per s")]


def report(results, stem):
    """Plots (PNG beside the JSON), the fit of each timed series against the nodes, and a Markdown table."""
    import plots  # pylint: disable=import-outside-toplevel

    rows = results["rows"]
    plots.scaling(rows, plots.SCALE_FORMATION, "Forming the cluster: the collection and redis-cli", stem + "-formation.png")
    plots.scaling(rows, plots.SCALE_RUNBOOKS, "Runbooks against the number of nodes", stem + "-runbooks.png")
    results["fits"] = {}
    if len(rows) > 1:
        for key, _label in plots.SCALE_FORMATION + plots.SCALE_RUNBOOKS:
            points = [(r["nodes"], r[key]) for r in rows if r.get(key)]
            if len(points) > 1:
                slope, intercept, exponent = plots.fit([x for x, _u in points], [y for _u, y in points])
                results["fits"][key] = dict(seconds_per_node=round(slope, 4), intercept_s=round(intercept, 2),
                                            exponent=round(exponent, 2))
    lines = ["| | " + " | ".join(str(r["nodes"]) for r in rows) + " | s per node | exponent |",
             "|---|" + "---|" * (len(rows) + 2)]
    for key, label in TABLE:
        got = results["fits"].get(key)
        values = " | ".join(str(r.get(key, "-")) for r in rows)
        fitted = (got["seconds_per_node"], got["exponent"]) if got else ("", "")
        lines.append("| %s | %s | %s | %s |" % ((label, values) + fitted))
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=os.environ.get("SCALE_SIZES") or ",".join(str(s) for s in SIZES))
    parser.add_argument("--keep", action="store_true", help="leave the last size's nodes running")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for every node (a lever: e.g. redis_node_ping_interval_ms=1000)")
    parser.add_argument("--label", default="", help="suffix of the results' names")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    for item in args.set:
        name, _sep, value = item.partition("=")
        EXTRA_VARS[name] = int(value) if value.isdigit() else value
    say("starting the scale host %s (%s)" % (NAME, SCALE_IP))
    host_up()
    rows = [measure(size, args.keep and size == sizes[-1]) for size in sizes]
    results = dict(date=time.strftime("%Y-%m-%d"), sizes=sizes, rows=rows, cpus=os.cpu_count(), settings=EXTRA_VARS)
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    stem = os.path.join(TOP, "bench", "results", "scale-%s%s" % (results["date"], "-" + args.label if args.label else ""))
    table = report(results, stem)
    with open(stem + ".json", "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
    say("results in %s.json, plots %s-*.png" % (os.path.relpath(stem, TOP), os.path.relpath(stem, TOP)))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
