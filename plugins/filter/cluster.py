# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn inventory into the planner's input and check a zone layout before any change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError, plan_layout


def cluster_nodes(hosts, hostvars):
    """Inventory host names -> [{name, host, port, zone}] for the cluster modules."""
    nodes = []
    for name in hosts:
        hv = hostvars[name]
        nodes.append(dict(name=name, host=str(hv.get("redis_announce_ip") or hv.get("ansible_host") or name),
                          port=int(hv.get("redis_port", 6379)), zone=hv.get("redis_zone")))
    return nodes


def zone_layout(nodes, replicas=1, min_primaries=3, allow_zone_majority=False):
    """The planned shards for nodes ([{name, zone}]), or a filter error saying why none exists."""
    try:
        return plan_layout({n["name"]: n["zone"] for n in nodes}, replicas=int(replicas),
                           min_primaries=int(min_primaries), allow_zone_majority=bool(allow_zone_majority))
    except PlacementError as exc:
        raise AnsibleFilterError("zone layout impossible: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"cluster_nodes": cluster_nodes, "zone_layout": zone_layout}
