#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_cluster_recover
short_description: Heal a Redis 7.2 Cluster after failures, keeping replicas out of their primary's zone
version_added: 0.1.0
description:
  - Inspects every reachable node. A primary that failed while still holding slots (no replica was
    promoted within O(failover_window) seconds) is replaced by its most up-to-date replica with
    C(CLUSTER FAILOVER FORCE), or C(TAKEOVER) when the surviving primaries are no majority and
    O(takeover_nodes) names that replica. It is never promoted while the failed primary still answers the
    module (a partition), nor when its copy stopped long before the primary was last heard of.
  - Nodes that came back empty rejoin as replicas. Replicas are moved with C(CLUSTER REPLICATE) so
    that none shares its primary's zone, keeping every valid link as it is.
  - With O(restore_primary_zones) (the default), primaries crowded into one zone hand over to a replica
    in a zone short of primaries with a coordinated C(CLUSTER FAILOVER), once that replica has finished
    its sync, so that no zone's loss takes a majority of the primaries. With O(forget_dead), nodes the
    cluster flags as failed and that hold no slots are forgotten on every node.
  - After acting it reports in RV(problems) what clients would still see, namely hosts not answering,
    primaries without a connected replica outside their zone, primaries refusing writes (C(NOREPLICAS),
    C(OOM)) and zones holding half or more of the primaries. The runbook fails on them with what to do.
  - A healthy cluster gets no action. Check mode returns the plan without touching any node.
  - Unlike M(shardwise.redis.redis_cluster), unreachable nodes are expected here.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
  - shardwise.redis.attributes.diff
options:
  node_timeout:
    description:
      - The cluster's C(cluster-node-timeout) in milliseconds. Unless O(failover_window) is set, Redis gets
        twice this (its election timeout) plus 5 seconds to promote a replica itself before the module
        forces one (15 s at the default 5000 ms).
    type: int
    default: 5000
  failover_window:
    description:
      - Seconds to let Redis promote a replica itself before forcing a failover. Derived from
        O(node_timeout) when not set.
    type: int
  replicas:
    description: Replicas each primary should have.
    type: int
    default: 1
  takeover_nodes:
    description:
      - Replicas that may be promoted with C(CLUSTER FAILOVER TAKEOVER) when the surviving primaries are no majority
        (TAKEOVER ignores the majority, so be sure the failed primaries are really down). An explicit one-off, pass it
        for one run, never from a schedule. Each must be the replica the module picks for its failed primary.
    type: list
    elements: str
    default: []
  replica_validity_factor:
    description:
      - The cluster's C(cluster-replica-validity-factor). A replica whose copy stopped more than O(node_timeout) x
        this + 10 s before its failed primary was last heard of is not promoted (Redis itself would not); 0 turns
        the check off.
    type: int
    default: 10
  restore_primary_zones:
    description: Spread primaries over the zones again with coordinated failovers.
    type: bool
    default: true
  forget_dead:
    description: Forget failed nodes that hold no slots on every reachable node.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for each action to take effect.
    type: int
    default: 180
  allow_zone_majority:
    description:
      - Leave a zone that holds half or more of the primaries out of RV(problems), because the operator accepted such a
        layout (C(redis_cluster_allow_zone_majority)).
    type: bool
    default: false
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Heal the cluster (from any node that answers)
  shardwise.redis.redis_cluster_recover:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    restore_primary_zones: true
  delegate_to: "{{ alive_hosts | first }}"
  run_once: true
"""

RETURN = r"""
plan:
  description: The actions, one line each, in order.
  returned: always
  type: list
  elements: str
  sample: ["CLUSTER FAILOVER FORCE on redis-b2 (replaces failed primary redis-a1)",
           "CLUSTER REPLICATE redis-b1 on redis-c2 (was redis-c1)"]
notes:
  description: Findings that need a person or another runbook.
  returned: always
  type: list
  elements: str
  sample: ["node redis-a1 (10.0.1.11) is flagged failed; set redis_failover_forget_dead=true to forget it cluster-wide"]
before:
  description: Topology summary before the run (as in M(shardwise.redis.redis_cluster_info)).
  returned: always
  type: dict
  sample: {slots_covered: 16384, zone_violations: [], failed_nodes: [redis-a1], unreachable: [redis-a1]}
after:
  description: Topology summary after the run (same as RV(before) in check mode).
  returned: always
  type: dict
  sample: {slots_covered: 16384, zone_violations: [], failed_nodes: [], unreachable: []}
problems:
  description: What still keeps the cluster from the write-availability contract after the run (in
    check mode, before it), as M(shardwise.redis.redis_cluster_info) reports it. Empty when healthy.
  returned: always
  type: list
  elements: str
  sample: ["node redis-a1 unreachable: no answer",
           "primary redis-b2 (zone zone-b) has no connected replica: losing its host stops writes to slots 0-5460"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    Stopped, Waiter, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.limits import option_problems
from ansible_collections.shardwise.redis.plugins.module_utils.recovery import failover_window, recover


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), replicas=dict(type="int", default=1),
                node_timeout=dict(type="int", default=5000), failover_window=dict(type="int"),
                takeover_nodes=dict(type="list", elements="str", default=[]), replica_validity_factor=dict(type="int", default=10),
                restore_primary_zones=dict(type="bool", default=True), forget_dead=dict(type="bool", default=False),
                wait_timeout=dict(type="int", default=180), allow_zone_majority=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    problems = option_problems("redis_cluster_recover", p)
    if problems:
        module.fail_json(msg="; ".join(problems))
    window = failover_window(p["node_timeout"]) if p["failover_window"] is None else p["failover_window"]
    try:
        result = recover(make_cli(module), p["nodes"], Waiter(p["wait_timeout"]), window,
                         check_mode=module.check_mode, diff=module._diff, allow_zone_majority=p["allow_zone_majority"],
                         replicas=p["replicas"], takeover=p["takeover_nodes"],
                         max_copy_gap_ms=(p["node_timeout"] * p["replica_validity_factor"] + 10000
                                          if p["replica_validity_factor"] else None),
                         restore_primary_zones=p["restore_primary_zones"], forget_dead=p["forget_dead"])
    except Stopped as exc:
        module.fail_json(msg=str(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
