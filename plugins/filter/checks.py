# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Semantic checks of the inputs, run by the preflight play before any host changes. Each returns one line per
problem, naming the variable and the fix (never a password); an empty list means the input is fine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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


TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
POSITIVE = ("redis_node_timeout_ms", "redis_restart_wait_seconds", "redis_stop_timeout_seconds",
            "redis_min_replicas_max_lag_seconds", "redis_maxclients", "redis_maxmemory_mb")
NOT_NEGATIVE = ("redis_client_idle_timeout_seconds", "redis_tcp_keepalive_seconds", "redis_node_ping_interval_ms",
                "redis_min_replicas_to_write")


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def server_input_problems(v):
    """v: the server role's variables (one host). Classes a well-typed value can still get wrong."""
    problems = []
    if v.get("redis_maxmemory_policy") != "noeviction":
        problems.append("redis_maxmemory_policy is %s: BullMQ needs noeviction (any other policy drops job keys "
                        "silently when memory is full); set it to noeviction" % v.get("redis_maxmemory_policy"))
    port = _number(v.get("redis_port"))
    if port is None or port != int(port) or not 1 <= port <= 65535 - 10000:
        problems.append("redis_port is %s: it must be 1-55535, because the cluster bus listens on port + 10000"
                        % v.get("redis_port"))
    for name in POSITIVE:
        value = _number(v.get(name))
        if name in v and (value is None or value <= 0):
            problems.append("%s is %s: it must be a number above 0" % (name, v.get(name)))
    for name in NOT_NEGATIVE:
        value = _number(v.get(name))
        if name in v and (value is None or value < 0):
            problems.append("%s is %s: it must be 0 or more" % (name, v.get(name)))
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
    try:
        ipaddress.ip_address(str(v.get("redis_announce_ip")))
    except ValueError:
        problems.append("redis_announce_ip is %r: it must be an IP address (the cluster bus announces it; a DNS "
                        "name does not work there)" % v.get("redis_announce_ip"))
    files = [("redis_tls_%s_src" % k, v.get("redis_tls_%s_src" % k)) for k in ("ca_cert", "cert", "key")]
    for user, pair in sorted((v.get("redis_tls_client_certs_src") or {}).items()):
        for part in ("cert", "key"):
            files.append(("redis_tls_client_certs_src.%s.%s" % (user, part), (pair or {}).get(part)))
    if v.get("redis_tls_ca_cert_src"):
        for name, path in files:
            if not path or not os.path.isfile(str(path)):
                problems.append("%s is %r: no such file on the controller; with redis_tls_ca_cert_src set, every "
                                "certificate and key must be given" % (name, path))
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


class FilterModule(object):
    def filters(self):
        return {"acl_password_problems": acl_password_problems, "server_input_problems": server_input_problems,
                "cluster_input_problems": cluster_input_problems}
