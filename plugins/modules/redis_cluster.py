#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_cluster
short_description: Form a zone-aware Redis 7.2 Cluster, or finish a half-formed one
version_added: 0.1.0
description:
  - Reads every node's C(CLUSTER NODES) and plans the actions (C(CLUSTER MEET), C(CLUSTER
    ADDSLOTSRANGE), C(CLUSTER REPLICATE)) that make the inventory nodes one cluster with all 16384
    slots covered and O(replicas) replicas per primary, no replica in its primary's zone.
  - Check mode returns the plan without touching any node; diff mode shows the topology before and
    after.
  - Idempotent and resumable. A half-formed cluster (an interrupted run) is finished, not re-created.
    An existing cluster keeps its roles, so primaries moved by failover are accepted; replicas that
    share their primary's zone are reported in C(zone_violations) of RV(topology), not moved (the failover runbook
    repairs them).
  - It never migrates slots or removes nodes; nodes left over once every slot is covered are
    reported for C(playbooks/add_shard.yml).
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
  - shardwise.redis.attributes.diff
options:
  replicas:
    description: Replicas per primary.
    type: int
    default: 1
  min_primaries:
    description: Fewest primaries a new cluster may have (failover elections need a majority).
    type: int
    default: 3
  allow_zone_majority:
    description:
      - Accept a layout in which one zone holds half or more of the primaries. Losing that zone then
        leaves no majority to elect replacements and the whole cluster stops taking writes, so this is
        refused by default.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for gossip between phases and for C(cluster_state:ok) at the end.
    type: int
    default: 180
  slot_layout:
    description:
      - A restore (C(playbooks/restore.yml)) gives the slot map of the backup, inventory name of a primary to its slot
        ranges (C(first-last)). Those nodes become the primaries of exactly those slots, and may already hold keys
        (a node restored from a backup claims the slots it has keys for at start); every other node replicates one of
        them, never in its zone. The map must cover the 16384 slots exactly once; a node holding a slot outside its
        ranges is refused before anything is sent.
      - Empty (the default) lets the planner choose, zone-aware, with an even split of the slots.
    type: dict
    default: {}
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Form the cluster from the inventory's zone labels (run on one node)
  shardwise.redis.redis_cluster:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    replicas: 1
    login_password: "{{ redis_admin_password }}"
  run_once: true

- name: Show what would be done
  shardwise.redis.redis_cluster:
    nodes:
      - {name: redis-a1, host: 10.0.1.11, zone: zone-a}
      - {name: redis-a2, host: 10.0.1.12, zone: zone-a}
      - {name: redis-b1, host: 10.0.2.11, zone: zone-b}
      - {name: redis-b2, host: 10.0.2.12, zone: zone-b}
      - {name: redis-c1, host: 10.0.3.11, zone: zone-c}
      - {name: redis-c2, host: 10.0.3.12, zone: zone-c}
    login_password: "{{ redis_admin_password }}"
  check_mode: true
  register: plan
"""

RETURN = r"""
plan:
  description: The actions, one line each, in the order they run (or would run in check mode).
  returned: always
  type: list
  elements: str
  sample: ["CLUSTER MEET 10.0.2.11 6379 (redis-b1 joins, via redis-a1)", "CLUSTER ADDSLOTSRANGE 0 5460 on redis-a1",
           "CLUSTER REPLICATE redis-a1 on redis-b2"]
notes:
  description: Things that need a person or another playbook.
  returned: always
  type: list
  elements: str
  sample: ["nodes redis-a3, redis-b3 are not part of any shard: playbooks/add_shard.yml adds them as new shards"]
topology:
  description:
    - The cluster after the run (before it, in check mode), in the form RV(shardwise.redis.redis_cluster_info#module:cluster)
      returns it.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    Stopped, Waiter, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.formation import converge


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), replicas=dict(type="int", default=1),
                min_primaries=dict(type="int", default=3), allow_zone_majority=dict(type="bool", default=False),
                wait_timeout=dict(type="int", default=180), slot_layout=dict(type="dict", default={}))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    names = [n["name"] for n in p["nodes"]]
    if len(set(names)) != len(names):
        module.fail_json(msg="nodes: names must be unique, got %s" % ", ".join(names))
    try:
        result = converge(make_cli(module), p["nodes"], Waiter(p["wait_timeout"]), check_mode=module.check_mode,
                          diff=module._diff, replicas=p["replicas"], min_primaries=p["min_primaries"],
                          allow_zone_majority=p["allow_zone_majority"], slot_layout=p["slot_layout"] or None)
    except Stopped as exc:
        module.fail_json(msg=str(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
