# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters about BullMQ's key layout in a Redis Cluster: which slot and shard a queue would use."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import queue_name_problems, queue_where
from ansible_collections.shardwise.redis.plugins.module_utils.slots import parse, to_ranges


def _shards(cluster):
    """Shards with slot ranges from redis_cluster_info's result (or its `cluster` summary)."""
    summary = cluster.get("cluster", cluster) if isinstance(cluster, dict) else None
    if not isinstance(summary, dict) or not isinstance(summary.get("shards"), list):
        raise AnsibleFilterError("bullmq_slot: cluster must be what shardwise.redis.redis_cluster_info returns (or its "
                                 "cluster key), got %s" % type(cluster).__name__)
    zones = dict((name, node.get("zone")) for name, node in (summary.get("nodes") or {}).items())
    shards = []
    for shard in summary["shards"]:
        try:
            ranges = to_ranges(parse(shard.get("slots") or []))
        except ValueError as exc:
            raise AnsibleFilterError("bullmq_slot: shard of %s: %s" % (shard.get("primary"), exc))
        shards.append(dict(primary=shard.get("primary"), zone=shard.get("zone"), replicas=list(shard.get("replicas") or []),
                           slots=ranges))
    return shards, zones


def bullmq_slot(queue, prefix="bull", cluster=None):
    """Where BullMQ queue `queue` under `prefix` lives: its key base, hash tag and slot; given a cluster (the result of
    redis_cluster_info), also the primary serving that slot, its zone and its replicas."""
    problems = queue_name_problems(prefix, [queue])
    if problems:
        raise AnsibleFilterError("bullmq_slot: %s" % "; ".join(problems))
    if cluster is None:
        return queue_where(prefix, queue)
    shards, zones = _shards(cluster)
    return queue_where(prefix, queue, shards, zones)


class FilterModule(object):
    def filters(self):
        return {"bullmq_slot": bullmq_slot}
