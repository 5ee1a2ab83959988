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
    O(allow_takeover) is set.
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
  - shardwise.redis.attributes
  - shardwise.redis.attributes.diff
options:
  replicas:
    description: Replicas each primary should have.
    type: int
    default: 1
  failover_window:
    description: Seconds to let Redis promote a replica itself before forcing a failover.
    type: int
    default: 15
  allow_takeover:
    description: Allow C(CLUSTER FAILOVER TAKEOVER) when the surviving primaries are no majority.
    type: bool
    default: false
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
    default: 120
  allow_zone_majority:
    description: Do not report a zone holding half or more of the primaries as a problem (the operator
      accepted such a layout, C(redis_cluster_allow_zone_majority)).
    type: bool
    default: false
author:
  - shardwise.redis developers
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

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError
from ansible_collections.shardwise.redis.plugins.module_utils.redis_cluster import (
    RedisCliError, WaitTimeout, apply_recovery, connection_argument_spec, describe_recovery, gather,
    health_problems, make_cli, node_argument_spec, plan_recovery)


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), replicas=dict(type="int", default=1),
                failover_window=dict(type="int", default=15), allow_takeover=dict(type="bool", default=False),
                restore_primary_zones=dict(type="bool", default=True), forget_dead=dict(type="bool", default=False),
                wait_timeout=dict(type="int", default=120), allow_zone_majority=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    cli = make_cli(module)

    def plan(topology):
        return plan_recovery(topology, replicas=p["replicas"], allow_takeover=p["allow_takeover"],
                             restore_primary_zones=p["restore_primary_zones"], forget_dead=p["forget_dead"])

    topology = gather(cli, p["nodes"])
    before = topology.summary()
    try:
        actions, notes = plan(topology)
        if any(a["op"] == "failover" for a in actions) and not module.check_mode:
            # Give Redis its own failover window first, then decide again.
            time.sleep(p["failover_window"])
            topology = gather(cli, p["nodes"])
            actions, notes = plan(topology)
    except PlacementError as exc:
        module.fail_json(msg=str(exc), before=before, plan=[], notes=[],
                         problems=health_problems(topology, allow_zone_majority=p["allow_zone_majority"]))
    result = dict(changed=bool(actions), plan=[describe_recovery(a) for a in actions], notes=notes,
                  before=before, after=before, problems=health_problems(topology, allow_zone_majority=p["allow_zone_majority"]))
    if module._diff:
        result["diff"] = dict(before=before, after=dict(plan=result["plan"]))
    if module.check_mode or not actions:
        module.exit_json(**result)
    try:
        # Each round can reveal the next step (a promotion, then replicas and zones): at most 3 rounds.
        for _round in range(3):
            apply_recovery(cli, topology, actions, p["wait_timeout"], time.sleep, time.time)
            topology = gather(cli, p["nodes"])
            actions, notes = plan(topology)
            result["notes"] = notes
            if not actions:
                break
            result["plan"] += [describe_recovery(a) for a in actions]
    except (RedisCliError, WaitTimeout, PlacementError) as exc:
        module.fail_json(msg="%s (re-run to continue: the plan is recomputed from the cluster's state)" % exc,
                         **result)
    topology = gather(cli, p["nodes"])
    result["after"] = topology.summary()
    result["problems"] = health_problems(topology, result["after"], allow_zone_majority=p["allow_zone_majority"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
