# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan vocabulary: every planner (formation, recovery, resharding, BullMQ clean-up) returns a
list of Action, and render() is the one place that turns an action into the words an operator
reads, in check mode, in the module result, in the runbook report and in the summary. The
Executor (executor.py) is the one place that carries actions out. Pure, no I/O.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.slots import render as render_slots, to_ranges

# op -> fields it needs (besides op and node). Planners build actions only through Action(), which
# checks them, so an executor never meets a half-described step.
FIELDS = {
    "meet": ("via", "host", "port"),              # CLUSTER MEET sent to `via`: `node` joins
    "addslots": ("first", "last"),                # CLUSTER ADDSLOTSRANGE on a primary
    "replicate": ("primary",),                    # CLUSTER REPLICATE; optional was, require_slots
    "failover": ("mode", "failed"),               # FORCE/TAKEOVER for a failed primary that holds slots
    "failover_zone": ("primary",),                # coordinated CLUSTER FAILOVER: restore the zone spread
    "handover": ("primary",),                     # coordinated CLUSTER FAILOVER before `primary` restarts
    "forget": ("node_id",),                       # CLUSTER FORGET everywhere; optional reset (RESET SOFT)
    "new_shard": ("replicas", "zones"),           # a new primary with its replicas is ready for slots
    "move": ("target", "slots"),                  # slots `node` -> target with MIGRATE; optional resume
    "clean": ("queue", "set", "count", "cutoff", "older_than", "base"),  # finished BullMQ jobs
    "trim": ("queue", "key", "length", "maxlen"),  # a BullMQ event stream
    "purge": (),                                  # MEMORY PURGE
    "defrag": (),                                 # CONFIG SET activedefrag yes
}


class Action(dict):
    """One step of a plan: {op, node, ...fields}. A plain dict, so it travels as module result data;
    str(action) is its rendered line."""

    def __init__(self, op, node, **fields):
        if op not in FIELDS:
            raise ValueError("unknown action %r" % op)
        missing = [f for f in FIELDS[op] if f not in fields]
        if missing:
            raise ValueError("action %s on %s lacks %s" % (op, node, ", ".join(missing)))
        super(Action, self).__init__(op=op, node=node, **fields)

    @property
    def op(self):
        return self["op"]

    @property
    def node(self):
        return self["node"]

    def __str__(self):
        return render(self)


def render(action):
    """The one line an operator reads for an action."""
    a = action
    op = a["op"]
    if op == "meet":
        return "CLUSTER MEET %s %s (%s joins, via %s)" % (a["host"], a["port"], a["node"], a["via"])
    if op == "addslots":
        return "CLUSTER ADDSLOTSRANGE %d %d on %s" % (a["first"], a["last"], a["node"])
    if op == "replicate":
        was = (" (was %s)" % (a["was"] or "free")) if "was" in a else ""
        return "CLUSTER REPLICATE %s on %s%s" % (a["primary"], a["node"], was)
    if op == "failover":
        return "CLUSTER FAILOVER %s on %s (replaces failed primary %s)" % (a["mode"], a["node"], a["failed"])
    if op == "failover_zone":
        return "CLUSTER FAILOVER on %s (takes over from %s to restore the zone spread)" % (a["node"], a["primary"])
    if op == "handover":
        return "CLUSTER FAILOVER on %s (takes over from %s before it restarts; no acknowledged write lost)" % (
            a["node"], a["primary"])
    if op == "forget":
        return "CLUSTER FORGET %s on every node%s" % (a["node"], ", then CLUSTER RESET on it" if a.get("reset") else "")
    if op == "new_shard":
        return "NEW SHARD primary %s@%s replicas %s%s" % (
            a["node"], a["zones"][a["node"]], ", ".join("%s@%s" % (r, a["zones"][r]) for r in a["replicas"]) or "none",
            " (formed by an earlier run)" if a.get("resumed") else "")
    if op == "move":
        ranges = " ".join(render_slots(to_ranges(a["slots"])))
        if a.get("resume"):
            return "FINISH %d open slot(s) %s -> %s: %s (left open by an interrupted run)" % (
                len(a["slots"]), a["node"], a["target"], ranges)
        return "MOVE %d slot(s) %s -> %s: %s" % (len(a["slots"]), a["node"], a["target"], ranges)
    if op == "clean":
        return "%s: queue %s: remove %d %s job(s) older than %s" % (a["node"], a["queue"], a["count"], a["set"],
                                                                    a["older_than"])
    if op == "trim":
        return "%s: queue %s: trim events %d -> %d" % (a["node"], a["queue"], a["length"], a["maxlen"])
    if op == "purge":
        return "%s: MEMORY PURGE" % a["node"]
    return "%s: CONFIG SET activedefrag yes" % a["node"]  # defrag


def render_all(actions):
    return [render(a) for a in actions]
