#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_bullmq_cleanup
short_description: Free memory on Redis Cluster primaries by cleaning old finished BullMQ jobs
version_added: 0.1.0
description:
  - Reads used_memory/maxmemory of every primary. On primaries at or above O(threshold) percent (all
    of them with O(force)), finds the BullMQ queues stored there (C(SCAN) for C(<prefix>:*:meta)) and
    removes completed jobs older than O(completed_max_age_hours) and failed jobs older than
    O(failed_max_age_days) (per queue in O(queues)), the way BullMQ's own clean does it (the job hash,
    its logs, dependency keys, deduplication key and its entry in the finished set go together).
  - Works in batches of O(batch_size) jobs (one short Lua script each) with O(pause_ms) between them,
    so the shard keeps answering. Trims each queue's event stream to O(events_maxlen) entries.
  - Waiting, active, delayed, prioritized and waiting-children jobs are never read or touched. A
    finished job its parent still waits on, whose parent is in another slot, or that is locked, is kept.
  - Then runs C(MEMORY PURGE) and turns C(activedefrag) on where it is off.
  - Check mode reports what would be removed per queue. Primaries below the threshold get no action.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
  - shardwise.redis.attributes.no_diff
options:
  threshold:
    description: Clean primaries whose used_memory is at least this percent of maxmemory.
    type: float
    default: 80.0
  force:
    description: Clean every primary, whatever its memory use.
    type: bool
    default: false
  completed_max_age_hours:
    description: Completed jobs finished longer ago than this are removed.
    type: float
    default: 24
  failed_max_age_days:
    description: Failed jobs finished longer ago than this are removed.
    type: float
    default: 7
  events_maxlen:
    description: Event streams are trimmed to this many entries.
    type: int
    default: 10000
  queues:
    description:
      - Per-queue overrides, by queue name; each may set C(completed_max_age_hours),
        C(failed_max_age_days) and C(events_maxlen).
    type: dict
    default: {}
  prefix:
    description: BullMQ key prefix before the hash tag (queues use C(<prefix>:{name})).
    type: str
    default: bull
  batch_size:
    description: Jobs per Lua call.
    type: int
    default: 100
  pause_ms:
    description: Pause between batches, in milliseconds.
    type: int
    default: 20
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Clean primaries above 80 % (completed > 24 h, failed > 7 d; the critical queue keeps failures 30 d)
  shardwise.redis.redis_bullmq_cleanup:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    queues:
      critical: {failed_max_age_days: 30}
  run_once: true
"""

RETURN = r"""
plan:
  description: One line per action, in the order they run (or would run in check mode).
  returned: always
  type: list
  elements: str
  sample: ["redis-a1: queue batch: remove 1200 completed job(s) older than 24.0 h",
           "redis-a1: queue batch: remove 30 failed job(s) older than 7.0 d", "redis-a1: MEMORY PURGE"]
nodes:
  description: Per primary memory before/after and per queue counts (candidates, removed, kept, events trimmed).
  returned: always
  type: list
  elements: dict
memory:
  description:
    - One line per primary, memory use before and after the clean-up, or why it was left alone (below the
      threshold, no finished job old enough).
  returned: always
  type: list
  elements: str
  sample: ["redis-a1 used_memory 73398728 -> 30145536 bytes (27.343% -> 11.230% of maxmemory)",
           "redis-b1 at 12.000% of maxmemory: below the threshold, nothing to do"]
still_critical:
  description: Primaries still at or above the threshold after the clean-up (add shards).
  returned: always
  type: list
  elements: str
  sample: []
seconds:
  description: Seconds the clean-up took (0 in check mode or when nothing was to be done).
  returned: always
  type: float
  sample: 1.42
started:
  description:
    - When the clean-up started (seconds since the epoch, on the host running the module), to line it up with
      client latency graphs; null when nothing ran.
  returned: always
  type: float
  sample: 1796100568.42
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.bullmq_cleanup import RULES, cleanup
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    RedisCliError, WaitTimeout, Waiter, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.limits import option_problems
from ansible_collections.shardwise.redis.plugins.module_utils.topology import gather


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(), threshold=dict(type="float", default=80.0),
                force=dict(type="bool", default=False), completed_max_age_hours=dict(type="float", default=24),
                failed_max_age_days=dict(type="float", default=7), events_maxlen=dict(type="int", default=10000),
                queues=dict(type="dict", default={}), prefix=dict(type="str", default="bull"),
                batch_size=dict(type="int", default=100), pause_ms=dict(type="int", default=20))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    problems = option_problems("redis_bullmq_cleanup", p)
    overrides = {}
    for queue, rules in p["queues"].items():
        if not isinstance(rules, dict) or set(rules) - set(RULES):
            problems.append("queues.%s may only set %s" % (queue, ", ".join(RULES)))
            continue
        try:
            overrides[queue] = dict((k, float(v)) for k, v in rules.items())
        except (TypeError, ValueError):
            problems.append("queues.%s: values must be numbers" % queue)
    if problems:
        module.fail_json(msg="; ".join(problems))
    cli = make_cli(module)
    topology = gather(cli, p["nodes"])
    if topology.unreachable:
        module.fail_json(msg="nodes %s did not answer over TLS with the admin user; heal the cluster first "
                             "(playbooks/failover_recovery.yml)" % ", ".join(topology.unreachable))
    primaries = [topology.by_name[n] for n in topology.primaries_with_slots()]
    options = dict(threshold=p["threshold"], force=p["force"], prefix=p["prefix"], overrides=overrides,
                   defaults=dict((k, p[k]) for k in RULES), batch_size=p["batch_size"], pause_ms=p["pause_ms"])
    try:
        result = cleanup(cli, primaries, Waiter(60), options, check_mode=module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    except (RedisCliError, WaitTimeout) as exc:
        module.fail_json(msg="%s (re-run to continue: every batch is complete on its own)" % exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
