#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_cluster_info
short_description: Read a Redis 7.2 Cluster's health, topology, zones and BullMQ queue depths
version_added: 0.1.0
description:
  - Asks every inventory node for C(CLUSTER NODES) and C(CLUSTER INFO) and reports cluster state,
    every node's role, zone, slots and health, slot coverage, open (migrating/importing) slots,
    replicas that share a zone with their primary, and per-queue BullMQ depths when asked.
  - Read-only. RV(healthy) and RV(problems) make it a health check for runbooks and schedulers.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
  - shardwise.redis.attributes.no_diff
options:
  bullmq_queues:
    description:
      - BullMQ queue names to report (RV(queues), RV(queue_placement)). Queue C(q) uses the hash-tagged prefix
        C(<bullmq_prefix>:{q}), so its keys look like C(bull:{critical}:critical:wait); a name with braces
        (C({critical})) keeps its keys under C(<bullmq_prefix>:{critical}:).
    type: list
    elements: str
  bullmq_queue_placement:
    description:
      - Where the queues of O(bullmq_queues) should live (C(redis_bullmq_queue_placement)), queue to C(spread)
        (the default for a queue not listed), C(stay) or a node name (its shard). RV(queue_placement) then tells
        per queue the primary C(playbooks/queue_placement.yml) would move it to (C(target)), from the same
        plan that playbook runs; RV(queue_placement_problem) says why there is no plan.
    type: dict
    default: {}
  bullmq_prefix:
    description: BullMQ key prefix (before the hash tag).
    type: str
    default: bull
  memory_samples:
    description:
      - Keys of each queue's slot whose C(MEMORY USAGE) is read to estimate the queue's memory (0 - none).
    type: int
    default: 10
  allow_spare:
    description:
      - Do not count new hosts outside the cluster (no slots, no primary) as a problem; they are
        listed in RV(spare_nodes) for C(playbooks/add_shard.yml).
    type: bool
    default: false
  allow_zone_majority:
    description: Do not report a zone holding half or more of the primaries as a problem (the operator
      accepted such a layout, C(redis_cluster_allow_zone_majority)).
    type: bool
    default: false
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Health check
  shardwise.redis.redis_cluster_info:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    bullmq_queues: [critical, high, normal, low, batch, scheduled]
  run_once: true
  register: cluster

- name: Stop when the cluster is not healthy
  ansible.builtin.assert:
    that: cluster.healthy
    fail_msg: "{{ cluster.problems }}"
"""

RETURN = r"""
spare_nodes:
  description: Reachable nodes outside the cluster that hold no slots and follow no primary.
  returned: always
  type: list
  elements: str
  sample: [redis-a3, redis-b3]
healthy:
  description: Every node reachable and C(cluster_state:ok), all slots covered, no open slots, no failed
    node, no replica in its primary's zone, and what clients need to keep writing after the loss of a
    host or a zone (RV(cluster.availability)) - every primary with a connected replica in another zone,
    no primary refusing writes (C(NOREPLICAS), C(OOM)), no zone holding half or more of the primaries.
  returned: always
  type: bool
  sample: true
problems:
  description: What keeps RV(healthy) false, one line each.
  returned: always
  type: list
  elements: str
  sample: ["replica redis-a2 shares zone zone-a with its primary redis-a1"]
cluster:
  description: Topology summary.
  returned: always
  type: dict
  sample:
    nodes: {redis-a1: {id: 3f1c..., host: 10.0.1.11, port: 6379, zone: zone-a, role: primary, primary: null,
                       slots: ["0-5460"], reachable: true, dbsize: 1200, cluster_state: ok}}
    shards: [{primary: redis-a1, zone: zone-a, replicas: [redis-b2], slots: ["0-5460"], slot_count: 5461}]
    slots_covered: 16384
    open_slots: []
    zone_violations: []
    shared_replica_zones: []
    failed_nodes: []
    unreachable: []
    availability: {refusing: [], unprotected: [], zone_majority: []}
  contains:
    nodes:
      description: Every inventory node by name, with its id, address, zone, role and primary.
      type: dict
    shards:
      description: One entry per primary, with its zone, replicas and slot ranges.
      type: list
      elements: dict
    slots_covered:
      description: How many of the 16384 slots a primary serves.
      type: int
    open_slots:
      description: Slots left C(MIGRATING) or C(IMPORTING) by an interrupted move.
      type: list
    zone_violations:
      description: Replicas in their primary's zone.
      type: list
    shared_replica_zones:
      description:
        - Primaries two of whose replicas share a zone although the other zones could keep them apart (with two
          replicas per shard, losing that zone would leave the primary without a replica).
        - Each item has V(primary), V(zone) and V(replicas).
      type: list
      version_added: 0.4.0
    failed_nodes:
      description: Nodes the cluster flags C(fail).
      type: list
    unreachable:
      description: Inventory nodes that did not answer.
      type: list
    availability:
      description:
        - What clients see after the loss of one host or zone. V(refusing) lists primaries that refuse
          writes now, V(unprotected) primaries without a connected replica in another zone, V(zone_majority)
          zones holding half or more of the primaries.
      type: dict
queues:
  description: Per-queue job counts by state (BullMQ key layout).
  returned: when O(bullmq_queues) is set
  type: dict
  sample: {critical: {wait: 3, active: 1, paused: 0, delayed: 0, prioritized: 0, waiting-children: 0, completed: 120, failed: 2}}
queue_placement:
  description:
    - Per queue where it lives and what it holds - its key base and hash tag, its slot, the primary serving it
      and that primary's zone, its replicas and their zones, jobs per state (RV(queues)) and in all, the keys in
      its slot and their memory in bytes, estimated from C(MEMORY USAGE) of O(memory_samples) of them.
    - A queue whose slot no primary serves carries C(problem) instead, and counts as a health problem.
    - C(target) is the primary C(playbooks/queue_placement.yml) would move the queue to (its C(primary) when
      it stays), C(rule) the placement that chose it (C(spread), C(stay) or C(pinned)); both are missing when
      RV(queue_placement_problem) is set.
  returned: when O(bullmq_queues) is set
  type: dict
  sample: {critical: {queue: critical, prefix: bull, key_base: "bull:{critical}:critical:", hash_tag: critical, slot: 8090,
           primary: redis-b1, zone: zone-b, replicas: [{name: redis-c2, zone: zone-c}], depth: {wait: 3, completed: 120},
           jobs: 123, keys_in_slot: 131, memory_bytes: 52400, memory_sampled_keys: 10, target: redis-b1, rule: spread}}
queue_placement_problem:
  description: Why no queue placement could be planned (a slot not served, a placement naming an unknown node).
  returned: when O(bullmq_queues) is set and no plan could be made
  type: str
  sample: "slot 8090 of queue critical is not served: heal the cluster first (playbooks/failover_recovery.yml)"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.bullmq import queue_name_problems, queue_report
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    RedisCliError, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.limits import option_problems
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.queue_placement import plan_on_topology
from ansible_collections.shardwise.redis.plugins.module_utils.topology import gather, health_problems, spare_nodes


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), bullmq_queues=dict(type="list", elements="str"),
                bullmq_prefix=dict(type="str", default="bull"), bullmq_queue_placement=dict(type="dict", default={}),
                allow_spare=dict(type="bool", default=False),
                allow_zone_majority=dict(type="bool", default=False), memory_samples=dict(type="int", default=10))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    bad = (queue_name_problems(p["bullmq_prefix"], p["bullmq_queues"]) if p["bullmq_queues"] else []) \
        + option_problems("redis_cluster_info", p)
    if bad:
        module.fail_json(msg="; ".join(bad))
    cli = make_cli(module)
    topology = gather(cli, p["nodes"])
    summary = topology.summary()
    problems = health_problems(topology, summary, p["allow_spare"], p["allow_zone_majority"])
    result = dict(changed=False, healthy=not problems, problems=problems, cluster=summary,
                  spare_nodes=spare_nodes(topology))
    if p["bullmq_queues"]:
        try:
            report = queue_report(cli, topology, p["bullmq_prefix"], p["bullmq_queues"], p["memory_samples"])
            result["queue_placement"] = report
            result["queues"] = dict((q, row.get("depth", {})) for q, row in report.items())
            result["problems"] = problems + ["queue %s: %s" % (q, row["problem"]) for q, row in report.items() if "problem" in row]
            result["healthy"] = not result["problems"]
            try:
                planned = plan_on_topology(topology, p["bullmq_prefix"], p["bullmq_queues"], p["bullmq_queue_placement"])
                for queue, row in planned["queues"].items():
                    report[queue].update(target=row["target"], rule=row["rule"])
            except PlacementError as exc:
                result["queue_placement_problem"] = str(exc)
        except RedisCliError as exc:
            result["problems"] = problems + ["queue depths: %s" % exc]
            result["healthy"] = False
    module.exit_json(**result)


if __name__ == "__main__":
    main()
