# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cluster looks like: INFO and CLUSTER NODES parsers, the Topology built from every
inventory node's own view, gather() that reads it through RedisCli, and health_problems(), the
one definition of "healthy" that the modules, site.yml and the runbooks share."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import ThreadPoolExecutor

from ansible_collections.shardwise.redis.plugins.module_utils import availability
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCliError
from ansible_collections.shardwise.redis.plugins.module_utils.placement import PlacementError, shared_replica_zones, zone_violations
from ansible_collections.shardwise.redis.plugins.module_utils.slots import (
    CLUSTER_SLOTS, count as count_slots, render as render_slots, to_set)


# ---------------------------------------------------------------- parsers

def parse_info(text):
    """INFO output -> dict (numbers stay strings; sections are flattened)."""
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        key, value = line.split(":", 1)
        result[key] = value
    return result


def _parse_slots(fields):
    slots, migrating, importing = [], {}, {}
    for field in fields:
        if field.startswith("["):
            body = field.strip("[]")
            if "->-" in body:
                slot, node = body.split("->-")
                migrating[int(slot)] = node
            elif "-<-" in body:
                slot, node = body.split("-<-")
                importing[int(slot)] = node
            continue
        if "-" in field:
            first, last = field.split("-")
            slots.append((int(first), int(last)))
        else:
            slots.append((int(field), int(field)))
    return slots, migrating, importing


def parse_cluster_nodes(text):
    """CLUSTER NODES output -> list of node dicts (one per line), as seen by the queried node."""
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, address, flags, primary, ping, pong, epoch, link = parts[:8]
        hostname = ""
        if "," in address:
            address, hostname = address.split(",", 1)
        hostport, _unused, bus = address.partition("@")
        host, _unused, port = hostport.rpartition(":")
        flag_set = set(flags.split(","))
        slots, migrating, importing = _parse_slots(parts[8:])
        nodes.append(dict(
            id=node_id, host=host, port=int(port) if port else 0,
            bus_port=int(bus) if bus else 0, hostname=hostname,
            flags=sorted(flag_set - {"myself"}), myself="myself" in flag_set,
            role="primary" if "master" in flag_set else ("replica" if "slave" in flag_set else "unknown"),
            primary_id=None if primary == "-" else primary,
            config_epoch=int(epoch), link=link, pong_recv=int(pong) if pong.isdigit() else 0,
            failed="fail" in flag_set, pfail="fail?" in flag_set,
            handshake="handshake" in flag_set or "noaddr" in flag_set,
            slots=slots, slot_count=count_slots(slots),
            migrating=migrating, importing=importing,
        ))
    return nodes


def in_sync(info):
    """A replica's INFO replication says its link is up and no full sync is running."""
    return info.get("master_link_status") == "up" and info.get("master_sync_in_progress", "0") == "0"


def myself_id(text):
    """The node id on the 'myself' line of CLUSTER NODES."""
    for node in parse_cluster_nodes(text):
        if node["myself"]:
            return node["id"]
    raise RedisCliError("CLUSTER NODES has no 'myself' line")


# ---------------------------------------------------------------- topology

class Topology:
    """What the cluster looks like, built from every inventory node's own CLUSTER NODES.

    inventory: list of {name, host, port, zone}. views: name -> CLUSTER NODES text (or None when
    the node did not answer). infos: name -> CLUSTER INFO text (optional). server_info: name -> INFO
    text (replication, memory; optional). min_replicas: name -> min-replicas-to-write (primaries
    that enforce it).
    """

    def __init__(self, inventory, views, infos=None, server_info=None, min_replicas=None):
        self.inventory = inventory
        self.errors = {}  # name -> why the node did not answer (set by gather())
        self.by_name = {n["name"]: n for n in inventory}
        self.zone_of = {n["name"]: n["zone"] for n in inventory}
        self.unreachable = sorted(name for name, text in views.items() if text is None)
        self.views = {name: parse_cluster_nodes(text) for name, text in views.items() if text is not None}
        self.infos = {name: parse_info(text) for name, text in (infos or {}).items() if text}
        self.server_info = {name: parse_info(text) for name, text in (server_info or {}).items() if text}
        self.min_replicas = dict(min_replicas or {})
        self.myself = {}
        for name, view in self.views.items():
            me = [n for n in view if n["myself"]]
            if me:
                self.myself[name] = me[0]
        self.name_of_id = {node["id"]: name for name, node in self.myself.items()}
        self.id_of = {name: node["id"] for name, node in self.myself.items()}
        # Nodes that did not answer (or answer with a new id) are named by their address.
        by_addr = {(n["host"], int(n["port"])): n["name"] for n in inventory}
        for view in self.views.values():
            for node in view:
                if node["id"] not in self.name_of_id and (node["host"], node["port"]) in by_addr:
                    self.name_of_id[node["id"]] = by_addr[(node["host"], node["port"])]
        # Cluster-wide truth: the view of the node that knows most nodes (ties: most slots).
        self.anchor = None
        if self.myself:
            self.anchor = max(sorted(self.views), key=lambda n: (
                len(self.views[n]), sum(x["slot_count"] for x in self.views[n] if x["role"] == "primary")))

    # -- node facts, from the node's own view
    def role(self, name):
        return self.myself[name]["role"] if name in self.myself else "unknown"

    def primary_of(self, name):
        node = self.myself.get(name)
        if not node or not node["primary_id"]:
            return None
        return self.name_of_id.get(node["primary_id"], node["primary_id"])

    def slots_of(self, name):
        return self.myself[name]["slots"] if name in self.myself else []

    def knows(self, name, other):
        """Does node `name` know node `other` (and not only in handshake)?"""
        other_id = self.id_of.get(other)
        return any(n["id"] == other_id and not n["handshake"] for n in self.views.get(name, []))

    def members(self):
        """Inventory nodes that the anchor knows (the anchor included)."""
        if not self.anchor:
            return []
        known = {n["id"] for n in self.views[self.anchor] if not n["handshake"]}
        return [n["name"] for n in self.inventory if self.id_of.get(n["name"]) in known]

    def keys_of(self, name):
        """Keys the node holds (INFO keyspace, every db); 0 when unknown."""
        return sum(int(dict(part.split("=", 1) for part in value.split(",") if "=" in part).get("keys", 0))
                   for key, value in self.server_info.get(name, {}).items() if key.startswith("db") and key[2:].isdigit())

    def free_nodes(self):
        """Reachable inventory nodes that hold no slots and follow no primary."""
        return [n["name"] for n in self.inventory if n["name"] in self.myself
                and not self.slots_of(n["name"]) and not self.primary_of(n["name"])]

    def primaries_with_slots(self):
        return [n["name"] for n in self.inventory if self.role(n["name"]) == "primary" and self.slots_of(n["name"])]

    def covered_slots(self):
        covered = set()
        for name in self.primaries_with_slots():
            covered |= to_set(self.slots_of(name))
        return covered

    def open_slots(self):
        found = []
        for name, node in sorted(self.myself.items()):
            for slot, target in sorted(node["migrating"].items()):
                found.append(dict(node=name, slot=slot, state="migrating", peer=self.name_of_id.get(target, target)))
            for slot, source in sorted(node["importing"].items()):
                found.append(dict(node=name, slot=slot, state="importing", peer=self.name_of_id.get(source, source)))
        return found

    def shards(self):
        result = []
        for primary in self.primaries_with_slots():
            replicas = [n["name"] for n in self.inventory if self.primary_of(n["name"]) == primary]
            result.append(dict(primary=primary, zone=self.zone_of[primary], replicas=replicas,
                               slots=self.slots_of(primary),
                               slot_count=count_slots(self.slots_of(primary))))
        return result

    def replica_offsets(self):
        """name -> replication offset a replica has processed (INFO replication)."""
        return {name: int(info.get("slave_repl_offset", info.get("master_repl_offset", -1)))
                for name, info in self.server_info.items()}

    def failed_nodes(self):
        if not self.anchor:
            return []
        return sorted(self.name_of_id.get(n["id"], n["id"]) for n in self.views[self.anchor] if n["failed"] or n["pfail"])

    def cluster_states(self):
        return {name: info.get("cluster_state", "unknown") for name, info in self.infos.items()}

    def summary(self):
        """Plain data for module results and diffs."""
        shards = self.shards()
        return dict(
            nodes={n["name"]: dict(
                id=self.id_of.get(n["name"]), host=n["host"], port=n["port"], zone=n["zone"],
                role=self.role(n["name"]), primary=self.primary_of(n["name"]),
                slots=render_slots(self.slots_of(n["name"])),
                reachable=n["name"] not in self.unreachable, dbsize=self.keys_of(n["name"]),
                cluster_state=self.cluster_states().get(n["name"])) for n in self.inventory},
            shards=[dict(s, slots=render_slots(s["slots"])) for s in shards],
            slots_covered=len(self.covered_slots()),
            open_slots=self.open_slots(),
            zone_violations=[dict(replica=r, primary=p, zone=z) for r, p, z in zone_violations(shards, self.zone_of)],
            shared_replica_zones=[dict(primary=p, zone=z, replicas=r) for p, z, r in shared_replica_zones(shards, self.zone_of)],
            failed_nodes=self.failed_nodes(),
            unreachable=self.unreachable,
            availability=availability.report(self),
        )


GATHER_THREADS = 16


def _read_node(cli, node):
    """(CLUSTER NODES, CLUSTER INFO, INFO, min-replicas-to-write or None) of one node, or RedisCliError.
    With a native cli, the four commands go down one TLS connection in one round trip; otherwise one
    redis-cli process each (at 90 nodes: 90 handshakes instead of 360 processes)."""
    if cli.native:
        view, info, repl, limit = cli.pipe(node["host"], node["port"], [
            ["CLUSTER", "NODES"], ["CLUSTER", "INFO"], ["INFO"], ["CONFIG", "GET", "min-replicas-to-write"]])
        min_replicas = None
        if "min_slaves_good_slaves:" in repl:
            min_replicas = int(limit[-1]) if limit and str(limit[-1]).isdigit() else 0
        return view, info, repl, min_replicas
    view = cli.run(node["host"], node["port"], "CLUSTER", "NODES")
    info = cli.run(node["host"], node["port"], "CLUSTER", "INFO")
    repl = cli.run(node["host"], node["port"], "INFO")
    min_replicas = None
    if "min_slaves_good_slaves:" in repl:
        reply = cli.run(node["host"], node["port"], "CONFIG", "GET", "min-replicas-to-write").split()
        min_replicas = int(reply[-1]) if reply and reply[-1].isdigit() else 0
    return view, info, repl, min_replicas


def gather(cli, inventory, threads=GATHER_THREADS):
    """Topology from every node's CLUSTER NODES, CLUSTER INFO and INFO (unreachable nodes noted):
    replication links and offsets, memory, and min-replicas-to-write where a primary enforces it,
    so that health sees what clients see (availability.report). The nodes are read in parallel (up to
    `threads` at once): nodes that do not answer cost one timeout together, not one each (a runner cut
    off from the others by a partition waited 58 s for five nodes when they were read in turn)."""
    views, infos, repl, min_replicas, errors = {}, {}, {}, {}, {}

    def read(node):
        try:
            return _read_node(cli, node)
        except RedisCliError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(inventory)))) as pool:
        replies = dict(zip([node["name"] for node in inventory], pool.map(read, inventory)))
    for node in inventory:  # in inventory order, as before
        reply = replies[node["name"]]
        if isinstance(reply, RedisCliError):
            views[node["name"]] = None
            errors[node["name"]] = str(reply)
            continue
        views[node["name"]], infos[node["name"]], repl[node["name"]], limit = reply
        if limit is not None:
            min_replicas[node["name"]] = limit
    topology = Topology(inventory, views, infos, repl, min_replicas)
    topology.errors = errors
    return topology


# ---------------------------------------------------------------- health

def spare_nodes(topology):
    """Reachable inventory nodes outside the cluster that hold no slots and follow no primary:
    new hosts waiting for playbooks/add_shard.yml."""
    members = set(topology.members())
    return [n for n in topology.free_nodes() if n not in members]


def health_problems(topology, summary=None, allow_spare=False, allow_zone_majority=False):
    """Why the cluster is not healthy, one line each (empty list: healthy). With allow_spare, new
    hosts waiting for add_shard.yml (see spare_nodes) are not a problem; with allow_zone_majority, a
    zone holding half or more of the primaries is not either (the operator accepted it)."""
    summary = summary or topology.summary()
    problems = ["node %s unreachable: %s" % (n, topology.errors.get(n, "no answer")) for n in summary["unreachable"]]
    spare = set(spare_nodes(topology)) if allow_spare else set()
    for name, node in sorted(summary["nodes"].items()):
        if node["reachable"] and node["cluster_state"] != "ok" and name not in spare:
            problems.append("node %s reports cluster_state:%s" % (name, node["cluster_state"]))
    if summary["slots_covered"] != CLUSTER_SLOTS:
        problems.append("%d of %d slots covered" % (summary["slots_covered"], CLUSTER_SLOTS))
    for item in summary["open_slots"]:
        problems.append("slot %d is %s on %s (peer %s)" % (item["slot"], item["state"], item["node"], item["peer"]))
    for name in summary["failed_nodes"]:
        problems.append("node %s is flagged failing by the cluster" % name)
    for item in summary["zone_violations"]:
        problems.append("replica %s shares zone %s with its primary %s" % (item["replica"], item["zone"], item["primary"]))
    for item in summary.get("shared_replica_zones", []):
        problems.append("replicas %s of primary %s share zone %s: losing it would leave the primary without a replica; "
                        "run playbooks/failover_recovery.yml (it moves one to another zone)"
                        % (" and ".join(item["replicas"]), item["primary"], item["zone"]))
    members = set(topology.members())
    for node in topology.inventory:
        if node["name"] not in members and node["name"] not in summary["unreachable"] and node["name"] not in spare:
            problems.append("node %s is not part of the cluster" % node["name"])
    return problems + availability.problems(summary["availability"], allow_zone_majority)


# ---------------------------------------------------------------- joining

def strangers(topology, name):
    """Addresses of the nodes `name` knows that are not inventory nodes (a foreign cluster)."""
    inventory = set((n["host"], int(n["port"])) for n in topology.inventory)
    return sorted("%s:%d" % (n["host"], n["port"]) for n in topology.views.get(name, [])
                  if not n["myself"] and (n["host"], n["port"]) not in inventory)


def _foreign(found):
    return "it knows %d node(s) outside the inventory (%s%s): it belongs to another cluster" % (
        len(found), ", ".join(found[:3]), ", ..." if len(found) > 3 else "")


def join_refusals(topology, name, allow_data=False):
    """Why node `name` must not be met into the cluster (empty: it may join). A node joins only when it is
    alone or knows inventory nodes only (an interrupted formation), holds no slots and no keys: anything
    else belongs to another cluster or holds data, and a MEET would merge the two."""
    reasons = []
    node = topology.myself.get(name)
    if node is None:
        return ["it does not answer"]
    found = strangers(topology, name)
    if found:
        reasons.append(_foreign(found))
    if allow_data:  # a node restored from a backup: its slots and keys are meant to join
        return reasons
    if node["slot_count"]:
        reasons.append("it holds %d slot(s)" % node["slot_count"])
    keys = topology.keys_of(name)
    if keys:
        reasons.append("it holds %d key(s)" % keys)
    return reasons


def check_meets(topology, actions, allow_data=()):
    """Refuse (PlacementError) a plan that would CLUSTER MEET a node from another cluster or with data, or
    send a MEET through a node that knows another cluster (that would merge our nodes into it). Nodes in
    allow_data (restored from a backup) may hold slots and keys."""
    refused = []
    for action in actions:
        if action["op"] == "meet":
            reasons = join_refusals(topology, action["node"], action["node"] in allow_data)
            if reasons:
                refused.append("%s: %s" % (action["node"], "; ".join(reasons)))
    for via in sorted(set(a["via"] for a in actions if a["op"] == "meet")):
        found = strangers(topology, via)
        if found:
            refused.append("through %s: %s" % (via, _foreign(found)))
    if refused:
        raise PlacementError("refusing to CLUSTER MEET %s. A node joins only when it is empty and alone. Check what "
                             "it holds; if it may be wiped, run FLUSHALL and CLUSTER RESET HARD on it, or take it out "
                             "of the inventory group" % " | ".join(refused))
    return actions
