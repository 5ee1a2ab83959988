#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_cluster_reshard
short_description: Add or remove Redis Cluster shards and balance slots online
version_added: 0.1.0
description:
  - O(mode=add) turns inventory nodes that hold no slots and follow no primary into new shards
    (primary plus O(replicas) replicas, never in the primary's zone), joins them and moves slots
    so every primary holds its share (by O(weights)).
  - O(mode=remove) drains the slots of the shards named in O(remove) to the other primaries, then
    forgets their nodes on every node and resets them. Whole shards only.
  - O(mode=balance) only moves slots.
  - O(mode=move) moves the slots listed in O(slots) to the primary O(target), from whichever primaries
    own them (for example to place a BullMQ queue's slot, or to benchmark the mover).
  - O(mode=queues) places the BullMQ queues O(bullmq_queues) (most important first) by O(queue_placement)
    - each queue's one slot moves to the primary chosen for it, then, only if the slot balance would leave
    O(threshold), slots without a queue move back. A queue stays where it is whenever the rule allows, so a placed
    cluster plans nothing.
  - Slots move online with C(CLUSTER SETSLOT IMPORTING/MIGRATING), keys with C(MIGRATE ... REPLACE KEYS),
    one call per slot, then C(CLUSTER SETSLOT NODE) on the target, the source and every other primary,
    a window of O(slots_per_round) slots at a time with every step pipelined over the module's own TLS
    connections, and O(parallel) source/target pairs at once. Clients see C(MOVED)/C(ASK) redirects only (multi-key commands on a slot half
    moved get C(TRYAGAIN), which cluster clients retry).
  - Migrations left open by an interrupted run are finished first. The MIGRATE password goes to
    server inside the module's TLS connection, never on a command line.
  - Before anything changes, every node must answer over TLS, no node may be flagged failing, all
    slots must be covered and no receiving primary may exceed O(max_memory_percent) of its
    maxmemory with the slots it receives. A balanced cluster with no free node gets no action.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.connection.nodes
  - shardwise.redis.attributes
  - shardwise.redis.attributes.diff
options:
  mode:
    description: What to do.
    type: str
    choices: [add, remove, balance, move, queues]
    default: add
  bullmq_queues:
    description:
      - BullMQ queue names for O(mode=queues), most important first. A plain name C(q) keeps its keys under
        C(<bullmq_prefix>:{q}:q:), a name with braces under C(<bullmq_prefix>:<name>:).
    type: list
    elements: str
  queue_placement:
    description:
      - Where each queue of O(bullmq_queues) goes with O(mode=queues). V(spread) (every queue not listed) - no
        primary holds more than its share (queues divided by primaries, rounded up), and the first queues of
        the list (one per primary) sit on different primaries. V(stay) - never moved, but counted. An inventory
        hostname - the shard of that node (primary or replica, so the pin survives a failover).
    type: dict
    default: {}
  slots:
    description: Slots to move with O(mode=move), as numbers or ranges (V(0-999)).
    type: list
    elements: str
    default: []
  target:
    description: Inventory name of the primary that receives O(slots) with O(mode=move).
    type: str
  progress_path:
    description:
      - File on the host running the module where each round of moved slots appends one JSON line (time, slots
        done and total, keys moved, keys/s, ETA), so an operator can follow a long move with C(tail -f).
        The same lines are returned in RV(progress). Not written in check mode.
    type: path
  remove:
    description: Inventory names of the nodes to remove (O(mode=remove)); a primary needs all its replicas listed.
    type: list
    elements: str
    default: []
  weights:
    description: Relative slot share per primary (default 1 each); 0 empties a primary.
    type: dict
    default: {}
  threshold:
    description: Move slots only when some primary is off its share by more than this many percent.
    type: float
    default: 2.0
  replicas:
    description: Replicas per new primary.
    type: int
    default: 1
  batch_size:
    description:
      - Keys per C(MIGRATE) call for slots larger than O(atomic_slot_keys), which move in pieces; inside the
        script run that moves a smaller slot whole, at most 1000.
    type: int
    default: 1000
  batch_bytes:
    description: Bytes per C(MIGRATE) call for slots that move in pieces, estimated from the source's average key size.
    type: int
    default: 4194304
  slots_per_round:
    description:
      - Slots opened at once between one source and one target (a window). Each step of a window (importing,
        migrating, the C(MIGRATE) calls, the new owner on every primary) is one pipelined batch.
      - A window also holds at most 100,000 keys.
    type: int
    default: 1024
  parallel:
    description: Source/target pairs that move slots at the same time.
    type: int
    default: 4
  max_keys_per_second:
    description: Cap on the keys moved per second over the whole run (0 - no cap).
    type: int
    default: 0
  pause_ms:
    description: Pause after each batch of MIGRATE calls, to give the shard room for clients.
    type: int
    default: 0
  migrate_timeout:
    description: Milliseconds C(MIGRATE) may wait for the target.
    type: int
    default: 10000
  max_memory_percent:
    description: Highest used_memory/maxmemory a receiving primary may reach, estimated before moving.
    type: float
    default: 80.0
  wait_timeout:
    description: Seconds to wait for nodes to join, replicas to attach and C(cluster_state:ok).
    type: int
    default: 180
  allow_zone_majority:
    description:
      - Accept a run after which one zone holds half or more of the primaries (for example a fourth shard
        in three zones). Losing that zone would then leave no majority to elect replacements, so such a run
        is refused by default.
    type: bool
    default: false
  atomic_slot_keys:
    description:
      - A slot with at most this many keys moves in one Lua script run on the source (C(SETSLOT MIGRATING)
        and all its C(MIGRATE) calls), so no client command ever sees it half moved or C(MIGRATING) with
        keys still on the source, where Redis aborts BullMQ's Lua scripts half way (they create and read
        job keys they were not given). Larger slots move in batches of O(batch_size); a run that would
        move a BullMQ queue's slot that way is refused. The source serves nothing else while a slot moves
        (about 1 s per 100,000 small keys). 0 moves every slot in batches.
      - C(MIGRATE) logs in to the target as C(shardwise-migrate), a user created on the target primaries
        for the run with a random password and deleted afterwards; the admin password is never sent in
        a command.
    type: int
    default: 10000
  bullmq_prefix:
    description: BullMQ key prefix, to recognize the slots that hold a queue.
    type: str
    default: bull
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Add the inventory's new hosts as shards and balance slots
  shardwise.redis.redis_cluster_reshard:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    batch_size: 200
  run_once: true

- name: Drain and remove one shard
  shardwise.redis.redis_cluster_reshard:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    mode: remove
    remove: [redis-a3, redis-b3]
  run_once: true

- name: Move slots 0-999 to redis-b1
  shardwise.redis.redis_cluster_reshard:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    mode: move
    slots: ["0-999"]
    target: redis-b1
    progress_path: /var/log/shardwise-redis-reshard.jsonl
  run_once: true

- name: Spread the BullMQ queues, critical pinned to the shard of redis-a1
  shardwise.redis.redis_cluster_reshard:
    nodes: "{{ groups['redis'] | shardwise.redis.cluster_nodes(hostvars) }}"
    login_password: "{{ redis_admin_password }}"
    mode: queues
    bullmq_queues: [critical, high, normal, low, batch, scheduled]
    queue_placement: {critical: redis-a1}
  run_once: true
"""

RETURN = r"""
plan:
  description: What the run does (in check mode, would do) in the order it happens, one action a line.
  returned: always
  type: list
  elements: str
  sample: ["CLUSTER MEET 10.0.1.13 6379 (redis-a3 joins, via redis-a1)", "CLUSTER REPLICATE redis-a3 on redis-b3",
           "NEW SHARD primary redis-a3@zone-a replicas redis-b3@zone-b", "MOVE 1365 slot(s) redis-a1 -> redis-a3: 4096-5460"]
queues:
  description: With O(mode=queues), per queue its slot, the primary holding it before the run, the primary it goes to, and
    the rule that chose it (pinned, spread or stay).
  returned: when O(mode=queues)
  type: dict
  sample: {critical: {slot: 8090, primary: redis-b1, target: redis-b1, rule: spread},
           high: {slot: 9976, primary: redis-b1, target: redis-c1, rule: spread}}
targets:
  description: Slots each primary holds once the plan is done.
  returned: always
  type: dict
  sample: {redis-a1: 4096, redis-a3: 4096, redis-b1: 4096, redis-c1: 4096}
memory:
  description: Estimated memory of each receiving primary once its slots arrive.
  returned: always
  type: list
  elements: dict
  sample: [{node: redis-a3, used: 1048576, incoming: 52428800, maxmemory: 30064771072, percent: 0.2}]
moved:
  description: Slots and keys moved, the seconds the moves took and the resulting keys per second.
  returned: always
  type: dict
  sample: {slots_moved: 4096, keys_moved: 10240, seconds: 2.1, keys_per_second: 4876}
progress:
  description: One entry per round of moved slots (as written to O(progress_path)).
  returned: always
  type: list
  elements: dict
  sample: [{t: 0.42, slots_done: 1024, slots_total: 4096, keys_moved: 2560, keys_per_second: 6095, eta_seconds: 1.3}]
before:
  description: Topology summary before the run (as in M(shardwise.redis.redis_cluster_info)).
  returned: always
  type: dict
after:
  description: Topology summary after the run (same as RV(before) in check mode).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    Stopped, Waiter, connection_argument_spec, make_cli, node_argument_spec)
from ansible_collections.shardwise.redis.plugins.module_utils.limits import OPTIONS, option_problems
from ansible_collections.shardwise.redis.plugins.module_utils.reshard import run
from ansible_collections.shardwise.redis.plugins.module_utils.slots import parse as parse_slots


def main():
    spec = connection_argument_spec()
    spec.update(nodes=node_argument_spec(),
                mode=dict(type="str", choices=["add", "remove", "balance", "move", "queues"], default="add"),
                bullmq_queues=dict(type="list", elements="str"), queue_placement=dict(type="dict", default={}),
                slots=dict(type="list", elements="str", default=[]), target=dict(type="str"),
                progress_path=dict(type="path"),
                remove=dict(type="list", elements="str", default=[]), weights=dict(type="dict", default={}),
                threshold=dict(type="float", default=2.0), replicas=dict(type="int", default=1),
                batch_size=dict(type="int", default=1000), slots_per_round=dict(type="int", default=1024),
                batch_bytes=dict(type="int", default=4194304), parallel=dict(type="int", default=4),
                max_keys_per_second=dict(type="int", default=0, no_log=False),
                pause_ms=dict(type="int", default=0), migrate_timeout=dict(type="int", default=10000),
                max_memory_percent=dict(type="float", default=80.0), wait_timeout=dict(type="int", default=180),
                allow_zone_majority=dict(type="bool", default=False), atomic_slot_keys=dict(type="int", default=10000, no_log=False),
                bullmq_prefix=dict(type="str", default="bull"))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_if=[("mode", "remove", ("remove",)), ("mode", "move", ("slots", "target")),
                                        ("mode", "queues", ("bullmq_queues",))])
    p = module.params
    problems = option_problems("redis_cluster_reshard", dict((name, p[name]) for name in OPTIONS["redis_cluster_reshard"]))
    if problems:
        module.fail_json(msg="; ".join(problems))
    try:
        weights = dict((k, float(v)) for k, v in p["weights"].items())
    except (TypeError, ValueError):
        module.fail_json(msg="weights must map inventory names to numbers, got %r" % (p["weights"],))
    options = dict((k, p[k]) for k in ("mode", "remove", "threshold", "replicas", "allow_zone_majority", "batch_size",
                                       "migrate_timeout", "slots_per_round", "pause_ms", "max_memory_percent",
                                       "atomic_slot_keys", "bullmq_prefix", "batch_bytes", "parallel",
                                       "max_keys_per_second", "bullmq_queues", "queue_placement"))
    options["weights"] = weights
    options["bullmq_queues"] = options["bullmq_queues"] or []
    try:
        options.update(slots=parse_slots(p["slots"]), target=p["target"], progress_path=p["progress_path"])
    except ValueError as exc:
        module.fail_json(msg="slots: %s" % exc)
    try:
        result = run(make_cli(module), p["nodes"], Waiter(p["wait_timeout"]), options,
                     check_mode=module.check_mode, diff=module._diff)
    except Stopped as exc:
        module.fail_json(msg=str(exc), **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
