#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_cluster_backup
short_description: Save a consistent RDB snapshot of every shard of a Redis 7.2 Cluster
version_added: 0.3.0
description:
  - The first half of C(playbooks/backup.yml), which then copies the files and writes the manifest.
  - Picks the node that saves each shard, by default its replica with the sync done (the primary is spared the fork
    and its copy-on-write memory), else the primary. Refuses, before anything is sent, a cluster whose slots are
    not all served or are migrating, because its backup could not rebuild it.
  - Sends C(BGSAVE SCHEDULE) to every chosen node at once (a running AOF rewrite delays the save instead of failing
    it) and waits until each save finished with status ok. Each file is a point-in-time snapshot of its shard; the
    shards are saved at about the same moment, not at one instant.
  - Returns per shard its slots, primary and zone, the node that saved it, the save time and the replication
    offset, for the manifest. Check mode returns the plan and saves nothing.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
options:
  prefer:
    description: Which node of a shard saves it, C(replica) (falls back to the primary) or C(primary).
    type: str
    choices: [replica, primary]
    default: replica
  wait_timeout:
    description: Seconds to wait for the saves (a 28 GB dataset takes minutes).
    type: int
    default: 3600
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Save every shard on a replica
  shardwise.redis.redis_cluster_backup:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
  run_once: true
  register: snapshot

- name: Show which node saved which slots
  ansible.builtin.debug:
    msg: "{{ snapshot.plan }}"
"""

RETURN = r"""
plan:
  description: One C(BGSAVE) line per shard.
  returned: always
  type: list
  elements: str
  sample: ["BGSAVE on replica redis-b2 (shard 0, slots 0-5460)"]
notes:
  description: Shards saved on their primary for want of a replica in sync, and saves that were already running.
  returned: always
  type: list
  elements: str
shards:
  description:
    - Per shard, ordered by first slot, C(index), C(primary), C(zone), C(replicas), C(slots), C(slot_count),
      C(source) (the node that saved it), C(source_role), C(source_zone), C(redis_version).
    - After a real run also C(saved_at) (Unix time of the save), C(save_seconds) and C(repl_offset).
  returned: always
  type: list
  elements: dict
seconds:
  description: How long the saves took, all shards together.
  returned: when saves ran
  type: float
topology:
  description: The cluster as RV(shardwise.redis.redis_cluster_info#module:cluster) returns it.
  returned: always
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.backup import snapshot
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    Stopped, Waiter, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.limits import option_problems


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), prefer=dict(type="str", choices=["replica", "primary"], default="replica"),
                wait_timeout=dict(type="int", default=3600))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    problems = option_problems("redis_cluster_backup", p)
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        result = snapshot(make_cli(module), p["nodes"], Waiter(p["wait_timeout"], interval=1.0), prefer=p["prefer"],
                          check_mode=module.check_mode, clock=time.time)
    except Stopped as exc:
        module.fail_json(msg=str(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
