#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_cluster_handover
short_description: Make one Redis 7.2 Cluster node safe to restart, and wait until it serves again
version_added: 0.3.0
description:
  - With O(state=released), before a node is stopped, it refuses when the cluster is not healthy (a node not
    answering or flagged failed, slots not covered or migrating, a primary without a connected replica outside its
    zone, writes refused), so a rolling restart stops before touching the next node. A zone holding half or more of
    the primaries is allowed, because each handover moves a primary into its replica's zone until the roll ends.
  - When the node is a primary holding slots, its replica that answers with its sync done (in the zone with the
    fewest primaries, then the highest offset) takes over with a coordinated C(CLUSTER FAILOVER), which waits for the
    primary's offset first, so no acknowledged write is lost and clients see a pause of milliseconds instead of a
    failover after C(cluster-node-timeout). It then waits until the old primary follows it as a replica.
  - With O(state=rejoined), after the node was started, it waits until it has loaded its data, reports
    C(cluster_state:ok) and, as a replica, has finished its sync. Size O(wait_timeout) from the data (RV(data_bytes)).
  - Check mode returns the plan (the handover) without touching any node. A replica needs no action.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
options:
  node:
    description: Inventory name of the node that is about to restart (O(state=released)) or was restarted (O(state=rejoined)).
    type: str
    required: true
  state:
    description: C(released) before the stop, C(rejoined) after the start.
    type: str
    choices: [released, rejoined]
    default: released
  wait_timeout:
    description: Seconds to wait for each step (the takeover, the load of the data, the sync).
    type: int
    default: 120
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Hand the node's slots to its replica before the restart
  shardwise.redis.redis_cluster_handover:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    node: "{{ inventory_hostname }}"
    login_password: "{{ redis_admin_password }}"

- name: Restart
  ansible.builtin.systemd_service:
    name: redis-server
    state: restarted

- name: Wait until it serves again
  shardwise.redis.redis_cluster_handover:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    node: "{{ inventory_hostname }}"
    state: rejoined
    wait_timeout: 600
    login_password: "{{ redis_admin_password }}"
"""

RETURN = r"""
plan:
  description: The handover, one line (empty for a replica, and with O(state=rejoined)).
  returned: always
  type: list
  elements: str
  sample: ["CLUSTER FAILOVER on redis-b2 (takes over from redis-a1 before it restarts; no acknowledged write lost)"]
role:
  description: The node's role after the module (C(primary) or C(replica)).
  returned: always
  type: str
version:
  description: The C(redis_version) the node runs (before the restart with C(released), after it with C(rejoined)).
  returned: always
  type: str
handover_to:
  description: The replica that took over (O(state=released)), or null.
  returned: when state is released
  type: str
handover_seconds:
  description: How long the coordinated failover took, the write pause clients of that shard may see at most.
  returned: when a handover ran
  type: float
data_bytes:
  description: What a start of the node loads, the larger of its AOF and its dataset (bytes), to size the wait.
  returned: when state is released
  type: int
problems:
  description: Why the cluster is not healthy (the module fails when this is not empty).
  returned: when state is released
  type: list
  elements: str
run_id:
  description: The node's run id after the start (changes with every start).
  returned: when state is rejoined
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    Stopped, Waiter, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.handover import rejoin, release
from ansible_collections.shardwise.redis.plugins.module_utils.limits import option_problems


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), node=dict(type="str", required=True),
                state=dict(type="str", choices=["released", "rejoined"], default="released"),
                wait_timeout=dict(type="int", default=120))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    problems = option_problems("redis_cluster_handover", p)
    if problems:
        module.fail_json(msg="; ".join(problems))
    names = [n["name"] for n in p["nodes"]]
    if p["node"] not in names:
        module.fail_json(msg="node %s is not in nodes (%s): name the node by its inventory name" % (p["node"], ", ".join(names)))
    waiter = Waiter(p["wait_timeout"])
    try:
        if p["state"] == "released":
            result = release(make_cli(module), p["nodes"], p["node"], waiter, check_mode=module.check_mode, clock=time.time)
        elif module.check_mode:
            result = dict(changed=False, node=p["node"], plan=[])
        else:
            result = rejoin(make_cli(module), p["nodes"], p["node"], waiter)
    except Stopped as exc:
        module.fail_json(msg=str(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
