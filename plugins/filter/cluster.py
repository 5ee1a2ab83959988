# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn inventory into the planner's input and check a zone layout before any change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket

from ansible.errors import AnsibleFilterError
from ansible_collections.shardwise.redis.plugins.module_utils.backup import restore_plan
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError, plan_layout


def node_address(name, hostvars_of_node, resolve=socket.getaddrinfo):
    """The address a node is announced on: redis_announce_ip, else ansible_host, else the inventory name; a DNS
    name is resolved here (IPv4 first), because CLUSTER MEET and cluster-announce-ip take IP addresses only."""
    if hostvars_of_node.get("redis_announce_ip"):
        source, value = "redis_announce_ip", str(hostvars_of_node.get("redis_announce_ip"))
    elif hostvars_of_node.get("ansible_host"):
        source, value = "ansible_host", str(hostvars_of_node.get("ansible_host"))
    else:
        source, value = "its inventory name", name
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if source == "redis_announce_ip":
        raise AnsibleFilterError("%s: redis_announce_ip is %r, not an IP address: the cluster bus announces IP "
                                 "addresses only; set it to the node's address" % (name, value))
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            found = resolve(value, None, family, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            continue
        if found:
            return str(found[0][4][0])
    raise AnsibleFilterError("%s: %s %r is not an IP address and does not resolve on the controller; set "
                             "redis_announce_ip (host_vars) to the address the other nodes reach it on"
                             % (name, source, value))


def cluster_nodes(hosts, hostvars):
    """Inventory host names -> [{name, host, port, zone}] for the cluster modules (host: an IP address)."""
    nodes = []
    for name in hosts:
        hv = hostvars[name]
        nodes.append(dict(name=name, host=node_address(name, hv), port=int(hv.get("redis_port", 6379)),
                          zone=hv.get("redis_zone")))
    return nodes


def zone_layout(nodes, replicas=1, min_primaries=3, allow_zone_majority=False, min_replicas_to_write=0):
    """The planned shards for nodes ([{name, zone}]), or a filter error saying why none exists. With
    min_replicas_to_write, every primary must keep that many replicas after the loss of any one zone."""
    zone_of = dict((n["name"], n["zone"]) for n in nodes)
    try:
        shards = plan_layout(zone_of, replicas=int(replicas), min_primaries=int(min_primaries),
                             allow_zone_majority=bool(allow_zone_majority))
    except PlacementError as exc:
        raise AnsibleFilterError("zone layout impossible: %s" % exc)
    wanted = int(min_replicas_to_write or 0)
    for shard in shards if wanted > 0 else []:
        by_zone = {}
        for replica in shard["replicas"]:
            by_zone.setdefault(zone_of[replica], []).append(replica)
        zone, crowded = max(sorted(by_zone.items()), key=lambda item: len(item[1]))
        if len(shard["replicas"]) - len(crowded) < wanted:
            sizes = {}
            for name in zone_of:
                sizes[zone_of[name]] = sizes.get(zone_of[name], 0) + 1
            raise AnsibleFilterError(
                "zone layout cannot carry redis_min_replicas_to_write %d: primary %s would keep %d replica(s) after "
                "zone %s is lost (its replicas %s are there), so its shard would refuse every write until the zone "
                "returns. Spread the hosts so each replica of a shard has a zone of its own (zones now: %s; two "
                "replicas per shard need three zones holding a third of the hosts each), lower "
                "redis_min_replicas_to_write, or set redis_cluster_accept_write_stalls: true"
                % (wanted, shard["primary"], len(shard["replicas"]) - len(crowded), zone, " and ".join(crowded),
                   ", ".join("%s=%d" % item for item in sorted(sizes.items()))))
    return shards


def backup_restore_plan(manifest, nodes, replicas=1):
    """Where each shard of a backup goes on the inventory nodes; `problems` (empty: it can be restored) says why
    not, so that the playbook stops before any host is changed."""
    try:
        plan = restore_plan(manifest, nodes, replicas=int(replicas))
    except PlacementError as exc:
        return dict(problems=[str(exc)], shards=[], layout={}, replicas={}, notes=[])
    plan["problems"] = []
    return plan


class FilterModule(object):
    def filters(self):
        return {"cluster_nodes": cluster_nodes, "zone_layout": zone_layout, "backup_restore_plan": backup_restore_plan}
