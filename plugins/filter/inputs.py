# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every redis_* variable checked as a whole before any host changes (roles/common/tasks/inputs.yml runs this in
each role's preflight and in each runbook before its lock): the range of each number (module_utils/limits.py, the
one table), the relations between them (ports, timings, connection limits), the directories the roles create,
chown or delete (absolute, normalised, not a system directory, not shared), and the names (queues, placements,
takeover nodes). One line per problem, naming the variable and the fix; an empty list means the input is fine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import queue_name_problems
from ansible_collections.shardwise.redis.plugins.module_utils.limits import limited_names, variable_problems

# What the vars lookup returns for a variable this role or runbook does not have (it is then not checked here).
UNDEFINED = "__shardwise_undefined__"

# Folders on the hosts that the roles create and chown (data, configuration, log, install root) or create and
# delete (the backup stage), and folders on the controller they create and write (backups, reports, the PKI).
HOST_DIRS = ("redis_data_dir", "redis_conf_dir", "redis_log_dir", "redis_install_root", "redis_backup_stage_dir")
CONTROLLER_DIRS = ("redis_backup_dir", "redis_runbook_report_dir", "redis_tls_pki_dir")
# Paths the roles write into or at but do not own: absolute and normalised, and not a folder of the system.
OTHER_PATHS = ("redis_link_dir", "redis_reshard_progress_path")
# Folders another role of the collection owns on the hosts.
OWNED_ELSEWHERE = {"/etc/redis-exporter": "the exporter role's folder"}
# Directories of the operating system: a role that chowns or deletes one breaks the host.
SYSTEM_DIRS = frozenset("""
/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run /sbin /srv /sys /tmp /usr
/var /usr/bin /usr/lib /usr/lib64 /usr/libexec /usr/local /usr/local/bin /usr/local/lib /usr/local/sbin /usr/sbin
/usr/share /usr/src /usr/include /var/backups /var/cache /var/lib /var/local /var/lock /var/log /var/mail /var/opt
/var/run /var/spool /var/tmp /etc/ssl /etc/systemd /etc/security /etc/sysctl.d /etc/default /etc/apt /etc/yum.repos.d
/etc/nftables.d /etc/logrotate.d /etc/systemd/system /etc/security/limits.d
""".split())
VIRTUAL_TREES = ("/proc", "/sys", "/dev", "/run")
OTHER = ("redis_fence", "redis_metrics_exporter_listen_address", "redis_bullmq_queues", "redis_bullmq_prefix",
         "redis_bullmq_queue_placement", "redis_failover_takeover_nodes", "redis_remove_hosts", "ansible_port")


def input_names(_unused=None):
    """The variables input_problems reads (for the vars lookup that gathers their values)."""
    return limited_names() + list(HOST_DIRS + CONTROLLER_DIRS + OTHER_PATHS + OTHER)


def _int(value):
    try:
        if isinstance(value, bool):
            return None
        number = float(value)
        return int(number) if number == int(number) else None
    except (TypeError, ValueError):
        return None


def port_problems(v):
    """Each host's ports in range and unique: the client port, the cluster bus (port + 10000), the exporter's
    listen port and SSH."""
    taken, problems = [], []
    port = _int(v.get("redis_port"))
    if port is not None and 1 <= port <= 55535:
        taken += [("redis_port", port), ("the cluster bus port (redis_port + 10000)", port + 10000)]
    listen = v.get("redis_metrics_exporter_listen_address")
    if listen is not None:
        exporter = _int(str(listen).rsplit(":", 1)[-1])
        if exporter is None or not 1 <= exporter <= 65535:
            problems.append("redis_metrics_exporter_listen_address must end in :<port> with a port in [1, 65535], got %r"
                            % (listen,))
        else:
            taken.append(("the exporter's port (redis_metrics_exporter_listen_address)", exporter))
    ssh = _int(v.get("ansible_port") if v.get("ansible_port") not in (None, "") else 22)
    if ssh is not None:
        taken.append(("the SSH port (ansible_port)", ssh))
    for i, (name, number) in enumerate(taken):
        for other, used in taken[:i]:
            if number == used:
                problems.append("%s is %d, which is also %s: give each its own port (redis_port %s takes %s and %s)"
                                % (name, number, other, port, port, (port or 0) + 10000))
    return problems


def _relation(v, smaller, larger, text, strict=True, scale=1.0):
    a, b = _int(v.get(smaller)), _int(v.get(larger))
    if a is None or b is None:
        return []
    if a < b * scale or (not strict and a == b * scale):
        return []
    return [text % dict(a=a, b=b, limit=b * scale)]


def timing_problems(v):
    """Timings ordered: a certificate renewed before it expires and not outliving its CA, nodes pinging each
    other within the node timeout, the runbook's failover window no shorter than the node timeout, and the
    connection limits (file descriptors, backlog) in step."""
    problems = []
    problems += _relation(v, "redis_tls_renew_days", "redis_tls_cert_days",
                          "redis_tls_renew_days (%(a)s) must be below redis_tls_cert_days (%(b)s): a certificate is "
                          "renewed that many days before it expires, so it would be renewed at every run")
    problems += _relation(v, "redis_tls_cert_days", "redis_tls_ca_days",
                          "redis_tls_cert_days (%(a)s) must be at most redis_tls_ca_days (%(b)s): a certificate "
                          "cannot outlive the CA that signs it", strict=False)
    ping = _int(v.get("redis_node_ping_interval_ms"))
    if ping:  # 0: Redis' own node_timeout / 2
        problems += _relation(v, "redis_node_ping_interval_ms", "redis_node_timeout_ms",
                              "redis_node_ping_interval_ms (%(a)s) must be at most half of redis_node_timeout_ms "
                              "(%(limit)g): each node must ping the others at least twice within the timeout, or "
                              "healthy nodes are reported failing", strict=False, scale=0.5)
    problems += fence_problems(v)
    window, timeout = _int(v.get("redis_failover_window_seconds")), _int(v.get("redis_node_timeout_ms"))
    if window is not None and timeout is not None and window * 1000 < timeout:
        problems.append("redis_failover_window_seconds (%d) must be at least redis_node_timeout_ms in seconds (%g): "
                        "Redis cannot notice a failure sooner, so the runbook would force failovers Redis was about "
                        "to make itself; leave it unset for 2 x node timeout + 5 s" % (window, timeout / 1000.0))
    nofile, clients = _int(v.get("redis_limit_nofile")), _int(v.get("redis_maxclients"))
    if nofile is not None and clients is not None and nofile < clients + 32:
        problems.append("redis_limit_nofile (%d) must be at least redis_maxclients + 32 (%d): Redis needs a file "
                        "descriptor per client plus its own" % (nofile, clients + 32))
    problems += _relation(v, "redis_tcp_backlog", "redis_kernel_somaxconn",
                          "redis_tcp_backlog (%(a)s) must be at most redis_kernel_somaxconn (%(b)s): the kernel "
                          "caps the listen backlog there", strict=False)
    return problems


def fence_problems(v):
    """The fence judges a peer on a ping it had time to answer, sooner than Redis itself would."""
    if v.get("redis_fence") in (False, "false", "False", "no") or _int(v.get("redis_fence_after_ms")) is None:
        return []
    after, timeout = _int(v.get("redis_fence_after_ms")), _int(v.get("redis_node_timeout_ms"))
    ping = _int(v.get("redis_node_ping_interval_ms"))
    problems = []
    if ping is not None and timeout is not None:
        interval = ping or timeout // 2
        if after < 2 * interval:
            problems.append("redis_fence_after_ms (%d) must be at least 2 x the ping interval (%d ms%s): a peer "
                            "must have had time to answer a ping before the fence counts it as gone; raise "
                            "redis_fence_after_ms or lower redis_node_ping_interval_ms"
                            % (after, interval, "" if ping else ", node timeout / 2 with redis_node_ping_interval_ms 0"))
    if timeout is not None and after >= timeout:
        problems.append("redis_fence_after_ms (%d) must be below redis_node_timeout_ms (%d): Redis itself refuses "
                        "writes on a cut-off primary after the node timeout, so the fence would add nothing"
                        % (after, timeout))
    return problems


def path_problems(v):
    """The folders the roles create, chown or delete: absolute, normalised, not a system directory (nor under
    /proc, /sys, /dev, /run), and on the hosts none equal to or inside another or another role's folder. The link
    folder and the progress file: absolute and normalised (the file not a system path either)."""
    problems, seen = [], []
    for name in HOST_DIRS + CONTROLLER_DIRS + OTHER_PATHS:
        if name not in v or v[name] in (None, ""):
            continue
        path = v[name]
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append("%s must be an absolute path, got %r" % (name, path))
            continue
        normal = posixpath.normpath(path)
        if normal.startswith("//"):
            normal = normal[1:]
        if path != normal:
            problems.append("%s is %r: write it normalised, as %s (no '..', '.', '//' or trailing '/')" % (name, path, normal))
            continue
        if name == "redis_link_dir":
            continue  # links go into a folder of the system (/usr/local/bin) on purpose
        if path in SYSTEM_DIRS or any(path == tree or path.startswith(tree + "/") for tree in VIRTUAL_TREES):
            verb = dict(redis_backup_stage_dir="delete", redis_reshard_progress_path="write over").get(name, "chown")
            problems.append("%s is %s, a directory of the operating system: the roles would %s it. Use a path of its "
                            "own, such as the default" % (name, path, verb))
            continue
        if name in HOST_DIRS:
            for owned, whose in sorted(OWNED_ELSEWHERE.items()):
                if path == owned or path.startswith(owned + "/") or owned.startswith(path + "/"):
                    problems.append("%s is %s, which holds or is %s (%s): use a folder of its own"
                                    % (name, path, whose, owned))
            seen.append((name, path))
    for i, (name, path) in enumerate(seen):
        for other, used in seen[:i]:
            if path == used:
                problems.append("%s and %s are both %s: each needs a folder of its own (their owners and modes "
                                "differ, and a restore or backup would take the other's files)" % (other, name, path))
            elif path.startswith(used + "/") or used.startswith(path + "/"):
                inner, outer = (name, other) if path.startswith(used + "/") else (other, name)
                problems.append("%s (%s) is inside %s (%s): keep them apart (a restore moves everything in the data "
                                "folder aside, a backup deletes its stage folder)" % (inner, v[inner], outer, v[outer]))
    return problems


def name_problems(v, inventory=None):
    """Queue names valid for BullMQ in cluster mode and listed once; a placement naming only listed queues and
    inventory hosts; takeover nodes and hosts to remove in the inventory."""
    problems = []
    queues = v.get("redis_bullmq_queues")
    if queues is not None:
        if not isinstance(queues, list):
            return ["redis_bullmq_queues must be a list of queue names, got %r" % (queues,)]
        prefix = v.get("redis_bullmq_prefix")
        prefix = prefix if isinstance(prefix, str) and prefix and not prefix.endswith(":") else "bull"  # checked apart
        problems += ["redis_bullmq_queues: %s" % p for p in queue_name_problems(prefix, queues)]
        twice = sorted(set(q for q in queues if isinstance(q, str) and queues.count(q) > 1))
        if twice:
            problems.append("redis_bullmq_queues lists %s more than once: list each queue once" % ", ".join(twice))
    hosts = set(inventory or [])
    placement = v.get("redis_bullmq_queue_placement")
    if isinstance(placement, dict) and isinstance(queues, list):
        unknown = sorted(str(q) for q in placement if q not in queues)
        if unknown:
            problems.append("redis_bullmq_queue_placement names %s, which are not in redis_bullmq_queues: add them there "
                            "or remove them" % ", ".join(unknown))
        if hosts:
            where = sorted(set(str(w) for w in placement.values() if w not in ("spread", "stay") and w not in hosts))
            if where:
                problems.append("redis_bullmq_queue_placement names %s: use an inventory hostname of the cluster group, "
                                "spread or stay" % ", ".join(where))
    elif placement not in (None, {}) and not isinstance(placement, dict):
        problems.append("redis_bullmq_queue_placement must be a mapping of queue name to an inventory hostname, spread "
                        "or stay, got %r" % (placement,))
    for name, what in (("redis_failover_takeover_nodes", "the replicas to promote"),
                       ("redis_remove_hosts", "the whole shards to drain")):
        listed = v.get(name)
        if listed and hosts:
            unknown = sorted(set(str(n) for n in listed) - hosts)
            if unknown:
                problems.append("%s names %s, which are not in the cluster group: use the inventory hostnames of %s"
                                % (name, ", ".join(unknown), what))
    return problems


def input_problems(values, inventory=None):
    """values: {variable: value} (UNDEFINED: not a variable here, skipped); inventory: the cluster group's
    hostnames. Every problem of ranges, ports, timings, paths and names."""
    v = dict((k, val) for k, val in (values or {}).items() if not (isinstance(val, str) and val == UNDEFINED))
    return (variable_problems(v) + port_problems(v) + timing_problems(v) + path_problems(v)
            + name_problems(v, inventory))


class FilterModule(object):
    def filters(self):
        return {"input_problems": input_problems, "input_names": input_names}
