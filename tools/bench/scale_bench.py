"""make bench-scale (issue 34): what the collection costs from 6 to 90 nodes, beside redis-cli.

The nodes are local Redis 7.2 processes on one privileged host container (the lab image, on the lab network at
SCALE_IP): each has its own loopback address, zone by zone (127.0.1.x zone-a, 127.0.2.x zone-b, 127.0.3.x zone-c),
its own folders, and the redis.conf and ACL file the server role renders for it (tools/bench/scale_render.yml:
mutual TLS, the ACL users, RDB+AOF, the cluster settings). The inventory lists every node as a host of its own whose
ansible_host is the container, so the collection's playbooks and modules run against them unchanged.

Measured at each size (step 1 of the issue; each step adds its rows):
  - formation: the collection (the cluster role's formation, end to end) vs `redis-cli --cluster create
    --cluster-replicas 1` on the same fresh nodes;
  - `redis_cluster_info` (gather + health), end to end;
  - a healthy `failover_recovery.yml` run, end to end (it must change nothing).

Usage: .venv/bin/python tools/bench/scale_bench.py [--sizes 6,30,60,90] [--keep]
Results: bench/results/scale-<date>.json. Not part of make test.
"""
import argparse
import json
import os
import re
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
        for key, value in group.items():
            fh.write("%s: %s\n" % (key, json.dumps(value)))
    return out


def playbook(inv, path, *extra):
    """Run a playbook; (seconds, output). Fails loudly."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    started = time.time()
    done = run([os.path.join(BIN, "ansible-playbook"), "-i", inv, path] + list(extra), check=False, env=env, cwd=TOP,
               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = round(time.time() - started, 2)
    if done.returncode != 0:
        raise SystemExit("%s failed after %s s:\n%s" % (os.path.basename(path), seconds, done.stdout[-4000:]))
    return seconds, done.stdout


def start_nodes(size, inv, rendered):
    """Render every node's files, copy them to the scale host and start fresh processes (no data, no cluster)."""
    if os.path.isdir(rendered):
        shutil.rmtree(rendered)
    playbook(inv, os.path.join(TOP, "tools", "bench", "scale_render.yml"), "-e", "scale_out=" + rendered,
             "-e", "_lab_secrets=" + os.path.join(TOP, ".cache", "lab", "secrets"))
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
export REDISCLI_AUTH="$(cat /etc/scale/admin.pass)"
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


def measure(size, keep):
    out = os.path.join(WORK, str(size))
    inv = inventory(size, os.path.join(out, "inventory"))
    rendered = os.path.join(out, "rendered")
    row = dict(nodes=size, primaries=size // 2)
    say("%d nodes: rendering with the server role's templates and starting them" % size)
    start_nodes(size, inv, rendered)
    run(["podman", "exec", "-i", NAME, "bash", "-c", "umask 077; cat > /etc/scale/admin.pass"], input=admin_password())
    row["redis_cli_create_s"] = cli_create(size)
    say("%d nodes: redis-cli --cluster create %.1f s" % (size, row["redis_cli_create_s"]))
    start_nodes(size, inv, rendered)
    seconds, output = playbook(inv, os.path.join(TOP, "tools", "bench", "scale_form.yml"))
    row["collection_form_s"] = seconds
    say("%d nodes: the collection's formation %.1f s" % (size, seconds))
    seconds, output = playbook(inv, os.path.join(TOP, "tools", "bench", "scale_info.yml"))
    row["cluster_info_s"] = seconds  # the play asserts the cluster healthy
    say("%d nodes: redis_cluster_info %.1f s (healthy)" % (size, seconds))
    seconds, output = playbook(inv, os.path.join(TOP, "playbooks", "failover_recovery.yml"))
    row["failover_recovery_healthy_s"] = seconds
    row["failover_recovery_changed"] = sum(int(n) for n in re.findall(r"changed=(\d+)", output))
    say("%d nodes: healthy failover_recovery.yml %.1f s, changed=%d" % (size, seconds, row["failover_recovery_changed"]))
    if not keep:
        stop_nodes()
    return row


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--keep", action="store_true", help="leave the last size's nodes running")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    say("starting the scale host %s (%s)" % (NAME, SCALE_IP))
    host_up()
    rows = [measure(size, args.keep and size == sizes[-1]) for size in sizes]
    results = dict(date=time.strftime("%Y-%m-%d"), sizes=sizes, rows=rows, cpus=os.cpu_count())
    os.makedirs(os.path.join(TOP, "bench", "results"), exist_ok=True)
    path = os.path.join(TOP, "bench", "results", "scale-%s.json" % results["date"])
    with open(path, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
    say("results in %s" % os.path.relpath(path, TOP))
    for row in rows:
        print(json.dumps(row, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
