# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantic checks of the inputs, run by the preflight play before any host changes. Each returns one line per
problem, naming the variable and the fix (never a password); an empty list means the input is fine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import os
import re

MIN_LENGTH = 16
# Passwords end up unquoted in redis.conf (masterauth) and in a systemd EnvironmentFile (the exporter):
# whitespace, quotes, backslashes and control or non-ASCII characters would be cut or rewritten there.
SAFE = re.compile(r"^[!#-&(-\[\]-~]+$")
PLACEHOLDER = re.compile(r"change.?me|changeit|placeholder|^(password|secret|redis)\d*$", re.IGNORECASE)


def acl_password_problems(users):
    """users: [{name, password, var}] (var: the variable that sets it). One line per problem."""
    problems, seen = [], {}
    for user in users:
        name, password, var = user.get("name"), user.get("password"), user.get("var") or "the password"
        who = name if str(name).startswith("the ") else "user %s" % name
        if not name or name == "default":
            problems.append("%s: an ACL user needs a name other than 'default' (the default user stays off)" % var)
        if not isinstance(password, str) or len(password) < MIN_LENGTH:
            problems.append("%s (%s) is empty or shorter than %d characters: set it from ansible-vault"
                            % (var, who, MIN_LENGTH))
            continue
        if not SAFE.match(password):
            problems.append("%s (%s) contains a space, a quote, a backslash or a non-printable or non-ASCII "
                            "character, which redis.conf and systemd would alter: use letters, digits and "
                            "punctuation such as - _ . : ! (openssl rand -hex 24)" % (var, who))
        if PLACEHOLDER.search(password):
            problems.append("%s (%s) is still the example placeholder: generate a real one "
                            "(openssl rand -hex 24)" % (var, who))
        if password in seen and seen[password] != name:
            problems.append("%s (%s) is the same as the password of %s: every ACL user (and the CA key) needs its own"
                            % (var, who, seen[password]))
        seen.setdefault(password, who)
    names = [u.get("name") for u in users if not str(u.get("name")).startswith("the ")]
    for dup in sorted(set(n for n in names if n and names.count(n) > 1)):
        problems.append("ACL user %s is defined twice: rename the extra user in redis_acl_extra_users" % dup)
    return problems


def previous_password_problems(previous, users):
    """redis_acl_previous_passwords ({user: previous password}, accepted next to the current one during a rotation)
    against the ACL users ([{name, password, var}]). One line per problem, never a password."""
    if previous in (None, ""):
        return []
    if not isinstance(previous, dict):
        return ["redis_acl_previous_passwords must be a map of ACL user to its previous password, e.g. {worker: <old>}"]
    current = dict((u.get("name"), u.get("password")) for u in users if not str(u.get("name")).startswith("the "))
    problems = []
    for name, password in sorted(previous.items(), key=lambda item: str(item[0])):
        if name not in current:
            problems.append("redis_acl_previous_passwords names %s, which is not an ACL user (%s)"
                            % (name, ", ".join(sorted(str(n) for n in current))))
        elif not isinstance(password, str) or not password:
            problems.append("redis_acl_previous_passwords.%s is empty: give the password %s had before, or remove the entry"
                            % (name, name))
        elif password == current[name]:
            problems.append("redis_acl_previous_passwords.%s equals the current password of %s: set the new password first "
                            "(the previous one stays accepted while it is listed here)" % (name, name))
        elif not SAFE.match(password):
            problems.append("redis_acl_previous_passwords.%s contains characters an ACL file cannot carry" % name)
    return problems


def acl_rotation_problems(acl_list, users, previous=None):
    """Users (names only) whose password hashes on a node (ACL LIST lines) are not exactly the sha256 of their
    current password plus, while listed in `previous`, of their previous one."""
    previous = previous or {}
    held = {}
    for line in acl_list:
        words = str(line).split()
        if len(words) > 1 and words[0] == "user":
            held[words[1]] = sorted(w[1:] for w in words[2:] if w.startswith("#") and len(w) == 65)
    wrong = []
    for user in users:
        want = [hashlib.sha256(user["password"].encode("utf-8")).hexdigest()]
        if user["name"] in previous:
            want.append(hashlib.sha256(previous[user["name"]].encode("utf-8")).hexdigest())
        if held.get(user["name"]) != sorted(want):
            wrong.append(user["name"])
    return wrong


def acl_password_count(name, previous=None):
    """'worker (2 passwords)' while a rotation overlaps, else 'worker (1 password)'."""
    return "%s (%s)" % (name, "2 passwords" if name in (previous or {}) else "1 password")


TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _address_problems(v):
    """The announce address: an IP of this host (unless redis_bind says where Redis listens), not public
    unless allowed."""
    if v.get("redis_announce_ip"):
        try:
            ipaddress.ip_address(str(v.get("redis_announce_ip")))
        except ValueError:
            return ["redis_announce_ip is %r: it must be an IP address (the cluster bus announces it; a DNS "
                    "name does not work there)" % v.get("redis_announce_ip")]
    if "announce_address" not in v:
        return []
    try:
        address = ipaddress.ip_address(str(v.get("announce_address")))
    except ValueError:
        return ["the announce address %r (from %s) is not an IP address: set redis_announce_ip"
                % (v.get("announce_address"), v.get("announce_from"))]
    problems = []
    local = [str(a) for a in v.get("host_addresses") or []]
    if local and not v.get("redis_bind") and str(address) not in local:
        problems.append("the announce address %s (from %s) is not an address of this host (it has %s): set "
                        "redis_announce_ip to the address the other nodes reach it on, or redis_bind to the "
                        "local addresses Redis listens on when %s is a NAT address"
                        % (address, v.get("announce_from"), ", ".join(local), address))
    if address.is_global and not v.get("redis_allow_public_address"):
        problems.append("the announce address %s (from %s) is public: Redis would listen and announce itself "
                        "there. Set redis_announce_ip to the host's private address (the network the nodes "
                        "share), or redis_allow_public_address: true if the nodes only reach each other over "
                        "public addresses (keep redis_firewall on)" % (address, v.get("announce_from")))
    return problems


def _disk_problems(v):
    """The filesystem holding redis_data_dir (the longest mount point above it, from ansible_facts.mounts) must hold
    the RDB, the AOF (up to twice the dataset before a rewrite) and the copy a BGSAVE or rewrite writes next
    to them: a size of redis_data_disk_size_ratio x maxmemory and at least maxmemory free."""
    if not v.get("redis_data_disk_check", True) or not v.get("mounts"):
        return []
    path = str(v.get("redis_data_dir") or "/").rstrip("/") + "/"
    mounts = [m for m in v["mounts"] if isinstance(m, dict) and m.get("size_total")
              and path.startswith(str(m.get("mount", "")).rstrip("/") + "/")]
    maxmemory = _number(v.get("redis_maxmemory_mb"))
    ratio = _number(v.get("redis_data_disk_size_ratio"))
    if not mounts or maxmemory is None or ratio is None:
        return []
    mount = max(mounts, key=lambda m: len(str(m["mount"])))
    need_total = ratio * maxmemory * 1024 * 1024
    gib = float(1 << 30)
    problems = []
    if mount["size_total"] < need_total:
        problems.append("%s (on %s) is %.1f GiB: with maxmemory %d MB it needs %.1f GiB (redis_data_disk_size_ratio %g "
                        "x maxmemory, for the RDB, the AOF and the copy a save or rewrite writes). Give %s a larger "
                        "disk, lower redis_maxmemory_mb, or set redis_data_disk_check: false to run anyway"
                        % (v.get("redis_data_dir"), mount["mount"], mount["size_total"] / gib, maxmemory,
                           need_total / gib, ratio, v.get("redis_data_dir")))
    elif mount.get("size_available", need_total) < maxmemory * 1024 * 1024:
        problems.append("%s (on %s) has %.1f GiB free: a save or AOF rewrite of a full node (maxmemory %d MB) needs "
                        "%.1f GiB. Free space on %s, lower redis_maxmemory_mb, or set redis_data_disk_check: false "
                        "to run anyway" % (v.get("redis_data_dir"), mount["mount"], mount["size_available"] / gib,
                                           maxmemory, maxmemory / 1024.0, mount["mount"]))
    return problems


def server_input_problems(v):
    """v: the server role's variables and facts (one host). Classes a well-typed value can still get wrong beyond
    the ranges and relations (those are the input_problems filter's, from module_utils/limits.py)."""
    problems = []
    if v.get("redis_maxmemory_policy") != "noeviction":
        problems.append("redis_maxmemory_policy is %s: BullMQ needs noeviction (any other policy drops job keys "
                        "silently when memory is full); set it to noeviction" % v.get("redis_maxmemory_policy"))
    prefix = v.get("redis_bullmq_prefix")
    if not isinstance(prefix, str) or not prefix or re.search(r"[\s*?\[\]{}]", prefix):
        problems.append("redis_bullmq_prefix is %r: it must be a non-empty name without spaces, glob characters "
                        "(* ? [ ]) or braces (the ACL key patterns <prefix>:* and BullMQ's hash tags depend on "
                        "it); BullMQ's default is bull" % (prefix,))
    protocols = str(v.get("redis_tls_protocols", "")).split()
    if not protocols or any(p not in TLS_PROTOCOLS for p in protocols):
        problems.append("redis_tls_protocols is %r: use TLSv1.2 and/or TLSv1.3 (older versions are broken)"
                        % v.get("redis_tls_protocols"))
    save = v.get("redis_save")
    if not isinstance(save, list) or not all(
            isinstance(point, str) and re.match(r"^\s*[1-9][0-9]*\s+[1-9][0-9]*\s*$", point) for point in save):
        problems.append("redis_save is %r: it must be a list of \"<seconds> <changes>\" save points with whole "
                        "numbers above 0, e.g. [\"900 1\", \"300 10\"] ([] turns RDB snapshots off)" % (save,))
    problems.extend(series_problems(v))
    problems.extend(_address_problems(v))
    problems.extend(_disk_problems(v))
    problems.extend(_tls_problems(v))
    problems.extend(config_extra_problems(v.get("redis_config_extra")))
    return problems


SERIES = "7.2"


def series_problems(v):
    """The collection runs Redis 7.2 only: a version, archive or APT pin of another series is refused before
    anything is installed (a rolling upgrade must never leave 7.2). Checks only the chosen install method."""
    problems, method = [], v.get("redis_install_method")
    series = re.escape(SERIES)
    if method == "source" and not re.match(r"^%s\.\d+$" % series, str(v.get("redis_source_version", ""))):
        problems.append("redis_source_version is %r: this collection runs Redis %s only; use a %s.x release such as "
                        "7.2.15" % (v.get("redis_source_version"), SERIES, SERIES))
    if method == "archive" and v.get("redis_archive_src"):
        name = os.path.basename(str(v.get("redis_archive_src")))
        named = re.search(r"redis-(\d+\.\d+)\.\d+", name)  # a name without a version is checked once unpacked
        if named and named.group(1) != SERIES:
            problems.append("redis_archive_src is %r, a Redis %s archive: this collection runs Redis %s only; build a %s.x "
                            "archive (tools/redis-archive/build.sh)" % (name, named.group(1), SERIES, SERIES))
    if method == "repository":
        pin = str(v.get("redis_apt_pin", ""))
        if not re.match(r"^(\d+:)?%s\.(\*|\d+)" % series, pin):
            problems.append("redis_apt_pin is %r: pin the %s series, e.g. \"6:%s.*\"" % (pin, SERIES, SERIES))
        version = str(v.get("redis_apt_version", "") or "")
        if version not in ("", "latest") and not re.match(r"^(\d+:)?%s\.\d+" % series, version):
            problems.append("redis_apt_version is %r: leave it empty (keep what is installed), set latest (the newest "
                            "%s.x the pin allows) or name a %s.x package version such as 6:%s.15-1rl1~bookworm1"
                            % (version, SERIES, SERIES, SERIES))
    return problems


def _tls_problems(v):
    """Bring-your-own certificates: every file given (on the controller, or on the host with
    redis_tls_certs_on_host), the admin and metrics client pairs included; tls-auth-clients yes|optional."""
    problems = []
    if "redis_tls_auth_clients" in v and v.get("redis_tls_auth_clients") not in ("yes", "optional"):
        problems.append("redis_tls_auth_clients is %r: use \"yes\" (every client presents a certificate) or "
                        "\"optional\" (quote both: a bare yes is a boolean in YAML)" % (v.get("redis_tls_auth_clients"),))
    byo, on_host = bool(v.get("redis_tls_ca_cert_src")), bool(v.get("redis_tls_certs_on_host"))
    if on_host and not byo:
        problems.append("redis_tls_certs_on_host is true but redis_tls_ca_cert_src is empty: name the host paths of "
                        "the CA certificate (redis_tls_ca_cert_src), the node's certificate and key "
                        "(redis_tls_cert_src, redis_tls_key_src) and the client pairs (redis_tls_client_certs_src)")
    if not byo:
        return problems
    clients = v.get("redis_tls_client_certs_src")
    if not isinstance(clients, dict):
        return problems + ["redis_tls_client_certs_src is %r: it must be a mapping of ACL user to {cert, key}"
                           % (clients,)]
    files = [("redis_tls_%s_src" % k, v.get("redis_tls_%s_src" % k)) for k in ("ca_cert", "cert", "key")]
    needed = [str(v.get("redis_admin_user") or "admin"), "metrics"]
    for user in needed + sorted(u for u in clients if u not in needed):
        pair = clients.get(user) if isinstance(clients.get(user), dict) else {}
        for part in ("cert", "key"):
            files.append(("redis_tls_client_certs_src.%s.%s" % (user, part), pair.get(part)))
    where = "on the hosts (redis_tls_certs_on_host)" if on_host else "on the controller"
    for name, path in files:
        if not path:
            problems.append("%s is not set: with redis_tls_ca_cert_src set, the node's certificate and key and the "
                            "client pairs of the %s and metrics users are needed too, e.g. redis_tls_client_certs_src: "
                            "{%s: {cert: ..., key: ...}, metrics: {cert: ..., key: ...}}" % (name, needed[0], needed[0]))
        elif not on_host and not os.path.isfile(str(path)):
            problems.append("%s is %r: no such file %s" % (name, path, where))
    return problems


# redis.conf directives the server role writes itself (each from its redis_* variable), and those that would
# undo what it guarantees: include (anything), rename-command (the runbooks' commands), user (ACL users live
# in the aclfile), loadmodule (the collection runs the BSD core only), enable-*-command and enable-protected-configs
# (closed on purpose).
OWNED_DIRECTIVES = frozenset("""
aclfile active-defrag-cycle-max active-defrag-cycle-min active-defrag-ignore-bytes active-defrag-threshold-lower
active-defrag-threshold-upper activedefrag always-show-logo aof-load-truncated aof-timestamp-enabled
aof-use-rdb-preamble appenddirname appendfilename appendfsync appendonly auto-aof-rewrite-min-size
auto-aof-rewrite-percentage bind client-output-buffer-limit cluster-allow-reads-when-down
cluster-allow-replica-migration cluster-announce-hostname cluster-announce-ip cluster-config-file cluster-enabled
cluster-migration-barrier cluster-node-timeout cluster-ping-interval cluster-preferred-endpoint-type
cluster-replica-validity-factor cluster-require-full-coverage daemonize databases dbfilename dir disable-thp
hash-max-listpack-entries hash-max-listpack-value io-threads latency-monitor-threshold lazyfree-lazy-eviction
lazyfree-lazy-expire lazyfree-lazy-server-del lazyfree-lazy-user-del list-max-listpack-size logfile loglevel
masterauth masteruser maxclients maxmemory maxmemory-policy min-replicas-max-lag min-replicas-to-write pidfile port
protected-mode rdbchecksum rdbcompression repl-backlog-size repl-diskless-sync replica-announce-ip
replica-lazy-flush replica-read-only replica-serve-stale-data save set-max-listpack-entries set-max-listpack-value
set-proc-title slowlog-log-slower-than slowlog-max-len stop-writes-on-bgsave-error supervised tcp-backlog
tcp-keepalive timeout tls-auth-clients tls-ca-cert-file tls-cert-file tls-ciphers tls-ciphersuites tls-cluster
tls-key-file tls-port tls-prefer-server-ciphers tls-protocols tls-replication tls-session-cache-timeout
tls-session-caching zset-max-listpack-entries zset-max-listpack-value
cluster-announce-port cluster-announce-tls-port cluster-announce-bus-port cluster-port replica-announce-port
tls-ca-cert-dir tls-client-cert-file tls-client-key-file tls-key-file-pass tls-client-key-file-pass
tls-dh-params-file unixsocket unixsocketperm requirepass masterauth replicaof slaveof
include rename-command user loadmodule enable-debug-command enable-module-command enable-protected-configs
""".split())
DIRECTIVE = re.compile(r"^[a-z][a-z0-9_-]*$")
# Every directive Redis 7.2 reads from redis.conf (CONFIG GET * of redis-server 7.2.4, aliases included; the file-only
# include, rename-command, user and loadmodule are refused above or unknown here): any other name makes Redis refuse
# to start, so it is refused before any host changes. Values are Redis' to judge: the server role has Redis check
# the rendered file before it replaces the live one (tasks/configure.yml).
REDIS_DIRECTIVES = frozenset("""
acl-pubsub-default aclfile acllog-max-len active-defrag-cycle-max active-defrag-cycle-min active-defrag-ignore-bytes
active-defrag-max-scan-fields active-defrag-threshold-lower active-defrag-threshold-upper active-expire-effort
activedefrag activerehashing always-show-logo aof-load-truncated aof-rewrite-incremental-fsync aof-timestamp-enabled
aof-use-rdb-preamble aof_rewrite_cpulist appenddirname appendfilename appendfsync appendonly
auto-aof-rewrite-min-size auto-aof-rewrite-percentage bgsave_cpulist bind bind-source-addr bio_cpulist
busy-reply-threshold client-output-buffer-limit client-query-buffer-limit cluster-allow-pubsubshard-when-down
cluster-allow-reads-when-down cluster-allow-replica-migration cluster-announce-bus-port cluster-announce-hostname
cluster-announce-human-nodename cluster-announce-ip cluster-announce-port cluster-announce-tls-port
cluster-config-file cluster-enabled cluster-link-sendbuf-limit cluster-migration-barrier cluster-node-timeout
cluster-port cluster-preferred-endpoint-type cluster-replica-no-failover cluster-replica-validity-factor
cluster-require-full-coverage cluster-slave-no-failover cluster-slave-validity-factor crash-log-enabled
crash-memcheck-enabled daemonize databases dbfilename dir disable-thp dynamic-hz enable-debug-command
enable-module-command enable-protected-configs hash-max-listpack-entries hash-max-listpack-value
hash-max-ziplist-entries hash-max-ziplist-value hll-sparse-max-bytes hz ignore-warnings io-threads
io-threads-do-reads jemalloc-bg-thread latency-monitor-threshold latency-tracking latency-tracking-info-percentiles
lazyfree-lazy-eviction lazyfree-lazy-expire lazyfree-lazy-server-del lazyfree-lazy-user-del lazyfree-lazy-user-flush
lfu-decay-time lfu-log-factor list-compress-depth list-max-listpack-size list-max-ziplist-size locale-collate
logfile loglevel lua-time-limit masterauth masteruser maxclients maxmemory maxmemory-clients
maxmemory-eviction-tenacity maxmemory-policy maxmemory-samples min-replicas-max-lag min-replicas-to-write
min-slaves-max-lag min-slaves-to-write no-appendfsync-on-rewrite notify-keyspace-events oom-score-adj
oom-score-adj-values pidfile port proc-title-template propagation-error-behavior protected-mode proto-max-bulk-len
rdb-del-sync-files rdb-save-incremental-fsync rdbchecksum rdbcompression repl-backlog-size repl-backlog-ttl
repl-disable-tcp-nodelay repl-diskless-load repl-diskless-sync repl-diskless-sync-delay
repl-diskless-sync-max-replicas repl-ping-replica-period repl-ping-slave-period repl-timeout replica-announce-ip
replica-announce-port replica-announced replica-ignore-disk-write-errors replica-ignore-maxmemory replica-lazy-flush
replica-priority replica-read-only replica-serve-stale-data replicaof requirepass sanitize-dump-payload save
server_cpulist set-max-intset-entries set-max-listpack-entries set-max-listpack-value set-proc-title
shutdown-on-sigint shutdown-on-sigterm shutdown-timeout slave-announce-ip slave-announce-port slave-ignore-maxmemory
slave-lazy-flush slave-priority slave-read-only slave-serve-stale-data slaveof slowlog-log-slower-than
slowlog-max-len socket-mark-id stop-writes-on-bgsave-error stream-node-max-bytes stream-node-max-entries supervised
syslog-enabled syslog-facility syslog-ident tcp-backlog tcp-keepalive timeout tls-auth-clients tls-ca-cert-dir
tls-ca-cert-file tls-cert-file tls-ciphers tls-ciphersuites tls-client-cert-file tls-client-key-file
tls-client-key-file-pass tls-cluster tls-dh-params-file tls-key-file tls-key-file-pass tls-port
tls-prefer-server-ciphers tls-protocols tls-replication tls-session-cache-size tls-session-cache-timeout
tls-session-caching tracking-table-max-keys unixsocket unixsocketperm zset-max-listpack-entries
zset-max-listpack-value zset-max-ziplist-entries zset-max-ziplist-value
""".split())


def config_extra_problems(extra):
    """redis_config_extra: {directive: value or [values]}; owned or unsafe directives and values that would
    break the file (line breaks, control characters) are refused."""
    if extra is None or extra == {}:
        return []
    if not isinstance(extra, dict):
        return ["redis_config_extra is %r: it must be a mapping of redis.conf directive to value" % (extra,)]
    problems = []
    for directive, value in sorted(extra.items(), key=lambda item: str(item[0])):
        name = str(directive)
        if not DIRECTIVE.match(name):
            problems.append("redis_config_extra: %r is not a redis.conf directive name (lower case, digits and -)"
                            % (directive,))
        elif name in OWNED_DIRECTIVES:
            problems.append("redis_config_extra: %s is set by the collection (use its redis_* variable; see the "
                            "server role's README) or is refused on purpose; remove it from redis_config_extra"
                            % name)
        elif name not in REDIS_DIRECTIVES:
            problems.append("redis_config_extra: %s is not a redis.conf directive of Redis 7.2 (Redis would refuse to "
                            "start): check its spelling in the redis.conf of 7.2, or remove it" % name)
        values = value if isinstance(value, list) else [value]
        for one in values:
            if one is None or isinstance(one, (dict, list)) or re.search(r"[\x00-\x1f\x7f]", str(one)):
                problems.append("redis_config_extra: %s has the value %r: use a string, number or boolean on one "
                                "line (a list repeats the directive)" % (name, one))
    return problems


def cluster_input_problems(nodes):
    """nodes: [{name, host, port, zone}] of the cluster group. Addresses and zone labels."""
    problems = []
    sharing = {}
    for node in nodes:
        sharing.setdefault((str(node.get("host")), int(node.get("port") or 0)), []).append(node["name"])
    for (host, port), names in sorted(sharing.items()):
        if len(names) > 1:
            problems.append("hosts %s share the address %s:%d: give every host its own redis_announce_ip (or "
                            "ansible_host)" % (", ".join(names), host, port))
    zones = {}
    for node in nodes:
        zones.setdefault(str(node.get("zone")).strip().lower(), set()).add(str(node.get("zone")))
    for variants in zones.values():
        if len(variants) > 1:
            problems.append("redis_zone values %s differ only in case or spaces: they would count as different "
                            "zones; spell each zone one way" % ", ".join(sorted(variants)))
    return problems


SCHEDULABLE = ("failover_recovery", "memory_emergency", "rolling_upgrade", "backup", "queue_placement")


def runbook_timer_problems(timers, inventory):
    """The runbook_timers role's inputs: each entry {runbook, on_calendar} with a runbook that is safe to
    schedule (a run with nothing to do changes nothing), no runbook twice, an inventory (the numbers are the
    input_problems filter's).
    OnCalendar syntax is left to systemd-analyze on the operations host."""
    problems = []
    if not isinstance(timers, list):
        return ["redis_runbook_timers is %r: it must be a list of {runbook, on_calendar}" % (timers,)]
    seen = set()
    for i, timer in enumerate(timers):
        if not isinstance(timer, dict) or set(timer) - {"runbook", "on_calendar"}:
            problems.append("redis_runbook_timers[%d] is %r: each entry is {runbook: <name>, on_calendar: <systemd "
                            "OnCalendar>}" % (i, timer))
            continue
        name, when = timer.get("runbook"), timer.get("on_calendar")
        if name not in SCHEDULABLE:
            problems.append("redis_runbook_timers[%d].runbook is %r: schedule one of %s (the other playbooks change "
                            "the cluster on purpose and are run by a person)" % (i, name, ", ".join(SCHEDULABLE)))
        elif name in seen:
            problems.append("redis_runbook_timers: %s is listed twice; give it one on_calendar (systemd accepts a "
                            "list such as \"*:0/5\" or \"Mon..Fri 02:00\")" % name)
        seen.add(name)
        if not isinstance(when, str) or not when.strip():
            problems.append("redis_runbook_timers[%d].on_calendar is %r: set a systemd OnCalendar expression, e.g. "
                            "\"*:0/5\" (every 5 minutes)" % (i, when))
    if not isinstance(inventory, str) or not inventory.strip():
        problems.append("redis_runbook_timer_inventory is empty: set the path of the inventory the scheduled runs use "
                        "on the operations host")
    return problems


def _ufw_allows(status, port):
    """True when `ufw status` says ufw is not filtering, or an ALLOW rule covers TCP port `port` (from any source:
    the bus port's sources are narrowed by the collection's own nftables table)."""
    lines = (status or "").splitlines()
    if not lines or lines[0].strip() != "Status: active":
        return True
    for line in lines:
        fields = [f for f in line.split() if f != "(v6)"]  # IPv6 rules: "6379/tcp (v6)  ALLOW  Anywhere (v6)"
        if len(fields) < 3 or fields[1] != "ALLOW":
            continue
        to = fields[0]
        if to == "Anywhere":
            return True
        spec, dummy, proto = to.partition("/")
        if proto not in ("", "tcp"):
            continue
        for part in spec.split(","):
            low, dummy, high = part.partition(":")
            if low.isdigit() and (high or low).isdigit() and int(low) <= port <= int(high or low):
                return True
    return False


def host_firewall_problems(firewall, ports):
    """Ports a host firewall (firewalld or ufw) keeps closed. `firewall` holds what preflight read on the host:
    `firewalld` (systemctl is-active), `firewalld_rc` (port -> exit code of firewall-cmd --query-port, 0: open) and `ufw`
    (the output of `ufw status`, empty without ufw). `ports` maps each port to what it is for. One line per
    firewall, with the exact command that opens the closed ports."""
    firewall = firewall or {}
    wanted = sorted((int(p), what) for p, what in (ports or {}).items())
    problems = []
    if firewall.get("firewalld") == "active":
        codes = dict((int(p), rc) for p, rc in (firewall.get("firewalld_rc") or {}).items())
        closed = [(p, what) for p, what in wanted if str(codes.get(p)) != "0"]
        if closed:
            named = ", ".join("%d/tcp (%s)" % c for c in closed)
            adds = " ".join("--add-port=%d/tcp" % c[0] for c in closed)
            problems.append(
                "firewalld filters this host's input and its default zone does not open %s: run firewall-cmd "
                "--permanent %s && firewall-cmd --reload (the collection does not edit firewalld), then run site.yml "
                "again" % (named, adds))
    closed = [(p, what) for p, what in wanted if not _ufw_allows(firewall.get("ufw"), p)]
    if closed:
        named = ", ".join("%d (%s)" % c for c in closed)
        ports_list = ",".join(str(c[0]) for c in closed)
        problems.append(
            "ufw filters this host's input and allows no TCP traffic to %s: run ufw allow %s/tcp (the collection "
            "does not edit ufw), then run site.yml again" % (named, ports_list))
    return problems


class FilterModule(object):
    def filters(self):
        return {"acl_password_problems": acl_password_problems, "previous_password_problems": previous_password_problems,
                "acl_rotation_problems": acl_rotation_problems, "acl_password_count": acl_password_count,
                "server_input_problems": server_input_problems,
                "cluster_input_problems": cluster_input_problems, "runbook_timer_problems": runbook_timer_problems,
                "host_firewall_problems": host_firewall_problems}
