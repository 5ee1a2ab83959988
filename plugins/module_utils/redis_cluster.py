# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""redis-cli runner, CLUSTER NODES / CLUSTER SHARDS / INFO parsers, topology model and the
declarative cluster planner used by the shardwise.redis modules.

Everything that decides lives here and is unit-tested; the modules only wire parameters to it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.shardwise.redis.plugins.module_utils import availability
from ansible_collections.shardwise.redis.plugins.module_utils.placement import (
    CLUSTER_SLOTS, PlacementError, match_slots, plan_layout, slot_ranges, zone_violations)


# ---------------------------------------------------------------- connection options

def connection_argument_spec():
    """Options every module shares: how redis-cli reaches the nodes (doc fragment: connection)."""
    return dict(
        login_user=dict(type="str", default="admin"),
        login_password=dict(type="str", required=True, no_log=True),
        tls_ca_cert=dict(type="path", default="/etc/redis/tls/ca.crt"),
        tls_cert=dict(type="path", default="/etc/redis/tls/client-admin.crt"),
        tls_key=dict(type="path", default="/etc/redis/tls/client-admin.key"),
        cli_path=dict(type="path", default=None),
        command_timeout=dict(type="int", default=10),
    )


def node_argument_spec():
    """The nodes option: inventory nodes with their zones."""
    return dict(
        type="list", elements="dict", required=True,
        options=dict(
            name=dict(type="str", required=True),
            host=dict(type="str", required=True),
            port=dict(type="int", default=6379),
            zone=dict(type="str", required=True),
        ),
    )


class RedisCliError(Exception):
    """A redis-cli call failed; the message names the node, the command and the cause."""


class RedisCli:
    """Run redis-cli over TLS as one ACL user. The password goes through REDISCLI_AUTH, never argv.

    `run_command` is AnsibleModule.run_command (or a test double with the same signature).
    """

    def __init__(self, run_command, cli_path, user, password, ca_cert, cert, key, timeout=10):
        self._run = run_command
        self.cli_path = cli_path
        self.user = user
        self._password = password
        self.tls = ["--tls", "--cacert", ca_cert, "--cert", cert, "--key", key]
        self.timeout = timeout

    def argv(self, host, port, args, json_output=False):
        argv = ["timeout", str(self.timeout), self.cli_path, "-e"] + self.tls + [
            "-h", host, "-p", str(port), "--user", self.user, "--no-auth-warning"]
        if json_output:
            argv.append("--json")
        return argv + [str(a) for a in args]

    def run(self, host, port, *args, **kwargs):
        json_output = kwargs.pop("json_output", False)
        rc, out, err = self._run(self.argv(host, port, args, json_output),
                                 environ_update={"REDISCLI_AUTH": self._password})
        if rc != 0:
            cause = (err or out or "").strip() or "exit code %d" % rc
            if rc == 124:
                cause = "no answer within %d s" % self.timeout
            raise RedisCliError("%s on %s:%s failed: %s" % (" ".join(str(a) for a in args[:4]), host, port, cause))
        return out

    def auth_args(self):
        """AUTH2 arguments for MIGRATE (send them through pipe(), never argv)."""
        return ["AUTH2", self.user, self._password]

    def pipe(self, host, port, commands):
        """Send many commands through one redis-cli process (stdin, one line each) and return
        one reply per command (decoded JSON). Arguments may hold secrets: stdin keeps them out of
        the process list. An error reply raises RedisCliError naming the command, unless its
        prefix is in the `allow` set given as a command's second element: (args, allow).
        redis-cli prints INFO, CLUSTER NODES / INFO and a few others raw, not as JSON: use run()."""
        if not commands:
            return []
        lines, allows = [], []
        for command in commands:
            args, allow = command if isinstance(command, tuple) else (command, ())
            lines.append(" ".join(quote_arg(a) for a in args))
            allows.append((args, allow))
        argv = self.argv(host, port, [], json_output=True)
        rc, out, err = self._run(argv, data="\n".join(lines), environ_update={"REDISCLI_AUTH": self._password})
        replies = out.splitlines()
        if rc != 0 or len(replies) != len(lines):
            cause = (err or "").strip() or ("exit code %d" % rc if rc else "%d replies to %d commands"
                                           % (len(replies), len(lines)))
            if rc == 124:
                cause = "no answer within %d s" % self.timeout
            raise RedisCliError("%d piped command(s) (%s ...) on %s:%s failed: %s"
                                % (len(lines), " ".join(str(a) for a in allows[0][0][:3]), host, port, cause))
        result = []
        for reply, (args, allow) in zip(replies, allows):
            if reply.startswith("error:"):
                message = json.loads(reply[len("error:"):])
                if not any(message.startswith(prefix) for prefix in allow):
                    raise RedisCliError("%s on %s:%s failed: %s" % (" ".join(str(a) for a in args[:4]), host, port, message))
                result.append(RedisReplyError(message))
            else:
                result.append(json.loads(reply))
        return result


class RedisReplyError(str):
    """An error reply that the caller allowed (see RedisCli.pipe)."""


def quote_arg(value):
    """One argument for redis-cli's line syntax: double-quoted, with \\, \" and control bytes escaped."""
    out = ['"']
    for char in str(value):
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 32 or ord(char) == 127:
            out.append("\\x%02x" % ord(char))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


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
        hostport, _, bus = address.partition("@")
        host, _, port = hostport.rpartition(":")
        flag_set = set(flags.split(","))
        slots, migrating, importing = _parse_slots(parts[8:])
        nodes.append(dict(
            id=node_id, host=host, port=int(port) if port else 0,
            bus_port=int(bus) if bus else 0, hostname=hostname,
            flags=sorted(flag_set - {"myself"}), myself="myself" in flag_set,
            role="primary" if "master" in flag_set else ("replica" if "slave" in flag_set else "unknown"),
            primary_id=None if primary == "-" else primary,
            config_epoch=int(epoch), link=link,
            failed="fail" in flag_set, pfail="fail?" in flag_set,
            handshake="handshake" in flag_set or "noaddr" in flag_set,
            slots=slots, slot_count=sum(b - a + 1 for a, b in slots),
            migrating=migrating, importing=importing,
        ))
    return nodes


def parse_cluster_shards(text):
    """`redis-cli --json CLUSTER SHARDS` -> list of {slots: [(a, b)], nodes: [...]}."""
    data = json.loads(text) if text.strip() else []
    shards = []
    for shard in data:
        flat = shard.get("slots", [])
        slots = [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
        shards.append(dict(slots=slots, nodes=[dict(
            id=n.get("id"), host=n.get("ip"), port=n.get("tls-port") or n.get("port"),
            role="primary" if n.get("role") == "master" else "replica",
            health=n.get("health"), offset=n.get("replication-offset"),
            hostname=n.get("hostname", "")) for n in shard.get("nodes", [])]))
    return shards


# ---------------------------------------------------------------- topology

def _ranges(slots):
    """Sorted slot numbers -> compact [(first, last)] ranges."""
    ranges = []
    for slot in sorted(slots):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1] = (ranges[-1][0], slot)
        else:
            ranges.append((slot, slot))
    return ranges


def _slot_set(ranges):
    covered = set()
    for first, last in ranges:
        covered.update(range(first, last + 1))
    return covered


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

    def foreign_nodes(self):
        """Nodes in the anchor's view that are not in the inventory."""
        if not self.anchor:
            return []
        return [n for n in self.views[self.anchor] if n["id"] not in self.name_of_id]

    def free_nodes(self):
        """Reachable inventory nodes that hold no slots and follow no primary."""
        return [n["name"] for n in self.inventory if n["name"] in self.myself
                and not self.slots_of(n["name"]) and not self.primary_of(n["name"])]

    def primaries_with_slots(self):
        return [n["name"] for n in self.inventory if self.role(n["name"]) == "primary" and self.slots_of(n["name"])]

    def covered_slots(self):
        covered = set()
        for name in self.primaries_with_slots():
            covered |= _slot_set(self.slots_of(name))
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
                               slot_count=sum(b - a + 1 for a, b in self.slots_of(primary))))
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
                slots=["%d-%d" % r for r in self.slots_of(n["name"])],
                reachable=n["name"] not in self.unreachable,
                cluster_state=self.cluster_states().get(n["name"])) for n in self.inventory},
            shards=[dict(s, slots=["%d-%d" % r for r in s["slots"]]) for s in shards],
            slots_covered=len(self.covered_slots()),
            open_slots=self.open_slots(),
            zone_violations=[dict(replica=r, primary=p, zone=z) for r, p, z in zone_violations(shards, self.zone_of)],
            failed_nodes=self.failed_nodes(),
            unreachable=self.unreachable,
            availability=availability.report(self),
        )


# ---------------------------------------------------------------- declarative planner

def plan_cluster(topology, replicas=1, min_primaries=3, allow_zone_majority=False):
    """Actions that bring the inventory nodes to one cluster with every slot covered and
    `replicas` zone-separated replicas per primary. Existing roles are kept (a failover is
    accepted as is); a half-formed cluster is finished, not re-created.

    Returns (actions, notes). Each action: {op, node, args, ...}; ops: meet, addslots, replicate.
    Raises PlacementError (or RedisCliError for unreachable nodes) when it cannot act safely.
    """
    if topology.unreachable:
        raise RedisCliError("nodes %s did not answer: every inventory node must be reachable over "
                            "TLS with the admin user before the cluster is changed"
                            % ", ".join(topology.unreachable))
    if topology.open_slots():
        raise PlacementError("slots are migrating or importing (%s): finish the migration "
                             "(playbooks/add_shard.yml resumes it) before forming the cluster"
                             % ", ".join("%s %s on %s" % (o["slot"], o["state"], o["node"])
                                         for o in topology.open_slots()[:5]))
    names = [n["name"] for n in topology.inventory]
    actions, notes = [], []
    holders = topology.primaries_with_slots()
    covered = topology.covered_slots()
    replicating = [n for n in names if topology.role(n) == "replica"]
    free = [n for n in names if n not in holders and n not in replicating]

    if not holders:
        # New cluster: the planner chooses everything.
        shards = plan_layout(topology.zone_of, replicas=replicas, min_primaries=min_primaries,
                             allow_zone_majority=allow_zone_majority)
        anchor = shards[0]["primary"]
        actions += _meets(topology, anchor, names)
        for shard, (first, last) in zip(shards, slot_ranges(len(shards))):
            actions.append(dict(op="addslots", node=shard["primary"], args=[first, last]))
        for shard in shards:
            for replica in shard["replicas"]:
                actions.append(dict(op="replicate", node=replica, primary=shard["primary"]))
        return actions, notes

    anchor = holders[0]
    joining = [n for n in names if n not in topology.members()]
    complete = len(covered) == CLUSTER_SLOTS
    primaries = list(holders)
    if not complete:
        # Interrupted formation: finish it with the same deterministic plan.
        shards = plan_layout(topology.zone_of, replicas=replicas, min_primaries=min_primaries,
                             preferred_primaries=holders, allow_zone_majority=allow_zone_majority)
        planned = [s["primary"] for s in shards]
        stray = [h for h in holders if h not in planned]
        if stray:
            raise PlacementError("slots are only partly covered (%d of %d) and primaries %s do not fit "
                                 "the zone layout: cover the missing slots by hand or with add_shard.yml"
                                 % (len(covered), CLUSTER_SLOTS, ", ".join(stray)))
        actions += _meets(topology, anchor, names)
        for shard, (first, last) in zip(shards, slot_ranges(len(shards))):
            missing = _ranges(set(range(first, last + 1)) - covered)
            primary = shard["primary"]
            if not missing:
                continue
            if primary not in holders and primary not in free:
                raise PlacementError("slots %d-%d are uncovered and planned primary %s is a replica: "
                                     "cover them by hand" % (first, last, primary))
            for a, b in missing:
                actions.append(dict(op="addslots", node=primary, args=[a, b]))
        primaries = planned
        free = [n for n in free if n not in planned]
    else:
        actions += _meets(topology, anchor, [n for n in names if n in topology.members() or n in free])
    # Give primaries that lack replicas some from the free nodes, zone rule kept.
    have = {p: [n for n in replicating if topology.primary_of(n) == p] for p in primaries}
    need = {p: max(0, replicas - len(have[p])) for p in primaries}
    wanted = sum(need.values())
    if wanted and free:
        chosen = _assign_free(primaries, need, free, topology.zone_of)
        for primary, new in chosen.items():
            for replica in new:
                actions.append(dict(op="replicate", node=replica, primary=primary))
        free = [n for n in free if not any(n in v for v in chosen.values())]
    elif wanted:
        notes.append("primaries %s have fewer than %d replica(s) and no free node is left"
                     % (", ".join(p for p in primaries if need[p]), replicas))
    if free and complete:
        notes.append("nodes %s are not part of any shard: playbooks/add_shard.yml adds them as new shards"
                     % ", ".join(free))
        # Nodes already met stay as empty primaries; nodes not yet met are left alone.
        actions = [a for a in actions if not (a["op"] == "meet" and a["node"] in free and a["node"] in joining)]
    return actions, notes


def _meets(topology, anchor, names):
    """CLUSTER MEET, sent to the anchor, for every node the anchor does not know yet."""
    actions = []
    for name in names:
        if name == anchor or (topology.anchor and topology.knows(anchor, name)):
            continue
        node = topology.by_name[name]
        actions.append(dict(op="meet", node=name, via=anchor, args=[node["host"], node["port"]]))
    return actions


def _assign_free(primaries, need, free, zone_of):
    """Pick replicas for primaries short of them from the free nodes, never in the same zone."""
    slots = [(p, k) for p in primaries for k in range(need[p])]
    match = match_slots(slots, free, lambda slot, c: zone_of[c] != zone_of[slot[0]],
                        lambda slot, c: free.index(c))
    if len(match) < min(len(slots), len(free)):
        raise PlacementError("no free node outside the primary's zone is left for %s: add a host in "
                             "another zone or fix redis_zone labels"
                             % ", ".join(sorted({slot[0] for slot in slots if slot not in match})))
    result = {}
    for (primary, _), node in sorted(match.items()):
        result.setdefault(primary, []).append(node)
    return result


def describe(action, topology=None):
    """One human line per action, as shown in check mode and the plan."""
    if action["op"] == "meet":
        return "CLUSTER MEET %s %s (%s joins, via %s)" % (action["args"][0], action["args"][1], action["node"], action["via"])
    if action["op"] == "addslots":
        return "CLUSTER ADDSLOTSRANGE %d %d on %s" % (action["args"][0], action["args"][1], action["node"])
    if action["op"] == "replicate":
        return "CLUSTER REPLICATE %s on %s" % (action["primary"], action["node"])
    return repr(action)


def predict(topology, actions):
    """The summary after `actions`, for diff mode."""
    after = topology.summary()
    for action in actions:
        node = after["nodes"][action["node"]]
        if action["op"] == "addslots":
            node["role"] = "primary"
            node["slots"] = node["slots"] + ["%d-%d" % tuple(action["args"])]
        elif action["op"] == "replicate":
            node["role"] = "replica"
            node["primary"] = action["primary"]
            node["slots"] = []
    return after


# ---------------------------------------------------------------- gathering and applying

def make_cli(module):
    """RedisCli from the shared connection options of an AnsibleModule."""
    params = module.params
    cli_path = params["cli_path"] or module.get_bin_path("redis-cli", required=True)
    return RedisCli(module.run_command, cli_path, params["login_user"], params["login_password"],
                    params["tls_ca_cert"], params["tls_cert"], params["tls_key"], params["command_timeout"])


def gather(cli, inventory):
    """Topology from every node's CLUSTER NODES, CLUSTER INFO and INFO (unreachable nodes noted):
    replication links and offsets, memory, and min-replicas-to-write where a primary enforces it,
    so that health sees what clients see (availability.report)."""
    views, infos, repl, min_replicas, errors = {}, {}, {}, {}, {}
    for node in inventory:
        try:
            views[node["name"]] = cli.run(node["host"], node["port"], "CLUSTER", "NODES")
            infos[node["name"]] = cli.run(node["host"], node["port"], "CLUSTER", "INFO")
            repl[node["name"]] = cli.run(node["host"], node["port"], "INFO")
            if "min_slaves_good_slaves:" in repl[node["name"]]:
                reply = cli.run(node["host"], node["port"], "CONFIG", "GET", "min-replicas-to-write").split()
                min_replicas[node["name"]] = int(reply[-1]) if reply and reply[-1].isdigit() else 0
        except RedisCliError as exc:
            views[node["name"]] = None
            errors[node["name"]] = str(exc)
    topology = Topology(inventory, views, infos, repl, min_replicas)
    topology.errors = errors
    return topology


class WaitTimeout(Exception):
    pass


def wait_until(check, timeout, sleep, clock, what, interval=0.5):
    """Poll check() until it returns true; WaitTimeout naming `what` otherwise."""
    deadline = clock() + timeout
    last = None
    while True:
        try:
            if check():
                return
        except RedisCliError as exc:
            last = str(exc)
        if clock() >= deadline:
            raise WaitTimeout("timed out after %d s waiting for %s%s" % (timeout, what, (": " + last) if last else ""))
        sleep(interval)


def apply_actions(cli, topology, actions, timeout, sleep, clock):
    """Run planned actions in order, waiting for gossip between the phases. Returns lines done."""
    inv = topology.by_name
    done = []

    def node_view(name):
        node = inv[name]
        return parse_cluster_nodes(cli.run(node["host"], node["port"], "CLUSTER", "NODES"))

    def addr(name):
        return inv[name]["host"], inv[name]["port"]

    done += meet(cli, topology, [a for a in actions if a["op"] == "meet"], timeout, sleep, clock)
    for action in [a for a in actions if a["op"] == "addslots"]:
        cli.run(*(addr(action["node"]) + ("CLUSTER", "ADDSLOTSRANGE") + tuple(action["args"])))
        done.append(describe(action))
    for action in [a for a in actions if a["op"] == "replicate"]:
        replicate(cli, inv[action["node"]], inv[action["primary"]], action["primary"], timeout, sleep, clock)
        done.append(describe(action))
    return done


def meet(cli, topology, meets, timeout, sleep, clock):
    """Send CLUSTER MEET actions ({op: meet, node, via, args}), then wait until the new nodes, the nodes they
    were met through and every member know each other (no handshake left). Returns lines done."""
    inv = topology.by_name

    def node_view(name):
        return parse_cluster_nodes(cli.run(inv[name]["host"], inv[name]["port"], "CLUSTER", "NODES"))

    for action in meets:
        cli.run(inv[action["via"]]["host"], inv[action["via"]]["port"], "CLUSTER", "MEET", *action["args"])
    if meets:
        involved = sorted(set([a["via"] for a in meets] + [a["node"] for a in meets] + topology.members()))

        def all_know_each_other():
            ids = set()
            for name in involved:
                view = node_view(name)
                if any(n["handshake"] for n in view):
                    return False
                ids |= {n["id"] for n in view if n["myself"]}
            return all({n["id"] for n in node_view(name)} >= ids for name in involved)
        wait_until(all_know_each_other, timeout, sleep, clock, "nodes %s to know each other" % ", ".join(involved))
    return [describe(a) for a in meets]


def replicate(cli, node, primary, primary_name, timeout, sleep, clock, require_slots=True):
    """CLUSTER REPLICATE on `node` once it knows `primary` as a primary (holding slots unless
    require_slots is false: a new shard's primary gets its replica before its slots); wait until
    it follows it."""
    def view(target):
        return parse_cluster_nodes(cli.run(target["host"], target["port"], "CLUSTER", "NODES"))

    primary_id = parse_cluster_nodes_myself_id(cli.run(primary["host"], primary["port"], "CLUSTER", "NODES"))
    wait_until(lambda: any(n["id"] == primary_id and n["role"] == "primary" and not n["handshake"]
                           and (n["slot_count"] > 0 or not require_slots) for n in view(node)),
               timeout, sleep, clock, "%s to learn that %s is a primary%s"
               % (node["name"], primary_name, " holding slots" if require_slots else ""))
    cli.run(node["host"], node["port"], "CLUSTER", "REPLICATE", primary_id)
    wait_until(lambda: [n for n in view(node) if n["myself"]][0]["primary_id"] == primary_id,
               timeout, sleep, clock, "%s to replicate %s" % (node["name"], primary_name))
    # A replica protects its shard only once it holds the data: wait for the sync to finish.
    wait_until(lambda: in_sync(parse_info(cli.run(node["host"], node["port"], "INFO", "replication"))),
               timeout, sleep, clock, "%s to finish its sync from %s" % (node["name"], primary_name))


def in_sync(info):
    """A replica's INFO replication says its link is up and no full sync is running."""
    return info.get("master_link_status") == "up" and info.get("master_sync_in_progress", "0") == "0"


def parse_cluster_nodes_myself_id(text):
    for node in parse_cluster_nodes(text):
        if node["myself"]:
            return node["id"]
    raise RedisCliError("CLUSTER NODES has no 'myself' line")


def wait_healthy(cli, inventory, timeout, sleep, clock):
    """Every node reports cluster_state:ok and sees all 16384 slots."""
    def healthy():
        for node in inventory:
            info = parse_info(cli.run(node["host"], node["port"], "CLUSTER", "INFO"))
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(CLUSTER_SLOTS):
                return False
        return True
    wait_until(healthy, timeout, sleep, clock, "cluster_state:ok on every node")


# ---------------------------------------------------------------- health and queues

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
    members = set(topology.members())
    for node in topology.inventory:
        if node["name"] not in members and node["name"] not in summary["unreachable"] and node["name"] not in spare:
            problems.append("node %s is not part of the cluster" % node["name"])
    return problems + availability.problems(summary["availability"], allow_zone_majority)


BULLMQ_LISTS = ("wait", "active", "paused")
BULLMQ_ZSETS = ("delayed", "prioritized", "waiting-children", "completed", "failed")


def queue_key(prefix, queue, suffix):
    """BullMQ key of `queue` under the hash-tagged prefix <prefix>:{<queue>}."""
    return "%s:{%s}:%s:%s" % (prefix, queue, queue, suffix)


def slot_of(key):
    """Cluster hash slot of a key (CRC16 XMODEM of the hash tag, as Redis computes it)."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    crc = 0
    for byte in bytearray(key.encode("utf-8")):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc % CLUSTER_SLOTS


def queue_depths(cli, inventory, prefix, queues):
    """Counts per queue and state, read from the primary that owns the queue's slot."""
    topology = gather(cli, inventory)
    owner = {}
    for shard in topology.shards():
        for first, last in shard["slots"]:
            owner[(first, last)] = topology.by_name[shard["primary"]]
    result = {}
    for queue in queues:
        slot = slot_of(queue_key(prefix, queue, "wait"))
        node = next((n for (a, b), n in owner.items() if a <= slot <= b), None)
        if node is None:
            raise RedisCliError("slot %d of queue %s is not served by any primary" % (slot, queue))
        counts = {}
        for suffix in BULLMQ_LISTS:
            counts[suffix] = int(cli.run(node["host"], node["port"], "LLEN", queue_key(prefix, queue, suffix)).strip() or 0)
        for suffix in BULLMQ_ZSETS:
            counts[suffix] = int(cli.run(node["host"], node["port"], "ZCARD", queue_key(prefix, queue, suffix)).strip() or 0)
        result[queue] = counts
    return result


# ---------------------------------------------------------------- failover recovery

def _rebalance_replicas(primaries, replicas, current, zone_of, per_primary):
    """Assign replicas to primaries so none shares its primary's zone, keeping current links
    where they are valid. Returns {replica: primary} or raises PlacementError."""
    slots = [(p, k) for p in primaries for k in range(per_primary)]
    extra = len(replicas) - len(slots)
    if extra > 0:  # more replicas than places: give the spare ones extra places round-robin
        slots += [(primaries[i % len(primaries)], per_primary + i // len(primaries)) for i in range(extra)]

    def allowed(slot, rep):
        return zone_of.get(rep) != zone_of.get(slot[0])

    seed, kept = {}, set()
    for slot in slots:  # keep valid current links first
        for rep in replicas:
            if rep not in kept and current.get(rep) == slot[0] and allowed(slot, rep):
                seed[slot] = rep
                kept.add(rep)
                break
    match = match_slots(slots, replicas, allowed, lambda slot, r: (current.get(r) != slot[0], replicas.index(r)), seed)
    placed = {rep: slot[0] for slot, rep in match.items()}
    unplaced = [r for r in replicas if r not in placed]
    if unplaced:
        raise PlacementError("replicas %s cannot be placed outside their primary's zone: the primaries "
                             "live in %s; add hosts in other zones or restore primary zones"
                             % (", ".join(unplaced), ", ".join(sorted({zone_of[p] for p in primaries}))))
    return placed


def plan_recovery(topology, replicas=1, allow_takeover=False, restore_primary_zones=True, forget_dead=False):
    """Actions that heal a cluster after failures. Healthy cluster -> no action.

    ops: failover (FORCE or TAKEOVER on the best replica of a failed primary that holds slots),
    replicate (move replicas so none shares its primary's zone; re-attach free nodes),
    meet (a node that came back empty), failover_zone (coordinated CLUSTER FAILOVER to restore a
    zone spread of primaries), forget (dead nodes, only with forget_dead).
    Returns (actions, notes). Raises PlacementError when it cannot act safely.
    """
    actions, notes = [], []
    if not topology.anchor:
        raise PlacementError("no node answered: nothing can be inspected")
    if topology.open_slots():
        notes.append("slots are migrating (%d): playbooks/add_shard.yml finishes them"
                     % len(topology.open_slots()))
    anchor_view = topology.views[topology.anchor]
    by_id = {n["id"]: n for n in anchor_view}
    name = topology.name_of_id.get
    failed_ids = {n["id"] for n in anchor_view if n["failed"]}
    reachable = [n["name"] for n in topology.inventory if n["name"] in topology.myself]
    # 1. Primaries that failed while still holding slots (no replica was promoted).
    stuck = [n for n in anchor_view if n["role"] == "primary" and n["failed"] and n["slot_count"]]
    live_primaries = [n for n in anchor_view if n["role"] == "primary" and not n["failed"] and n["slot_count"]]
    for dead in stuck:
        candidates = [n for n in anchor_view if n["primary_id"] == dead["id"] and not n["failed"]
                      and name(n["id"]) in reachable]
        if not candidates:
            raise PlacementError("primary %s (%s) failed and none of its replicas answers: its slots %s "
                                 "are down; bring the host back (it rejoins) or restore from backup"
                                 % (name(dead["id"]) or dead["id"], dead["host"],
                                    ",".join("%d-%d" % r for r in dead["slots"])))
        offsets = topology.replica_offsets()
        best = max(candidates, key=lambda n: (offsets.get(name(n["id"]), -1),
                                              n["config_epoch"], name(n["id"]) or ""))
        majority = len(live_primaries) > (len(live_primaries) + len(stuck)) // 2
        if majority:
            actions.append(dict(op="failover", node=name(best["id"]), mode="FORCE", failed=name(dead["id"])))
        elif allow_takeover:
            actions.append(dict(op="failover", node=name(best["id"]), mode="TAKEOVER", failed=name(dead["id"])))
        else:
            raise PlacementError("primary %s failed and the surviving primaries (%d of %d) cannot elect a "
                                 "replacement: set redis_failover_allow_takeover=true to promote %s with "
                                 "CLUSTER FAILOVER TAKEOVER (it ignores the majority: be sure the failed "
                                 "primaries are really down)" % (name(dead["id"]), len(live_primaries),
                                                                 len(live_primaries) + len(stuck), name(best["id"])))
    if actions:
        return actions, notes  # replicas and zones are planned again once the promotion is done
    # 2. Nodes that came back empty or were never re-met: free nodes join as replicas.
    members = set(topology.members())
    primaries = [n["name"] for n in topology.inventory if topology.role(n["name"]) == "primary"
                 and topology.slots_of(n["name"]) and n["name"] in reachable]
    replicas_now = [n for n in reachable if topology.role(n) == "replica"]
    free = [n for n in reachable if n not in primaries and n not in replicas_now]
    for node in free:
        if node not in members:
            actions.append(dict(op="meet", node=node, via=topology.anchor,
                                args=[topology.by_name[node]["host"], topology.by_name[node]["port"]]))
    # 3. Zone rule: place replicas (current + free) so none shares its primary's zone.
    current = {r: topology.primary_of(r) for r in replicas_now}
    if primaries:
        wanted = _rebalance_replicas(primaries, replicas_now + free, current, topology.zone_of, replicas)
        for rep in replicas_now + free:
            if wanted[rep] != current.get(rep):
                actions.append(dict(op="replicate", node=rep, primary=wanted[rep], was=current.get(rep)))
    # 4. Put primaries back into an even zone spread (coordinated failovers: the replica first
    #    catches up with its primary, so no acknowledged write is lost).
    if restore_primary_zones and not actions and primaries:
        zones = sorted(set(topology.zone_of.values()))
        most = -(-len(primaries) // len(zones))  # ceil: no zone should hold more primaries than this
        count = dict.fromkeys(zones, 0)
        for p in primaries:
            count[topology.zone_of[p]] += 1
        handed = set()
        for zone in zones:
            while count[zone] > most:
                crowded = sorted(p for p in primaries if topology.zone_of[p] == zone and p not in handed)
                options = [(r, p) for p in crowded for r in sorted(current) if current[r] == p
                           and r in reachable and count[topology.zone_of[r]] < most]
                ready = [(r, p) for r, p in options if in_sync(topology.server_info.get(r, {}))]
                if ready:
                    replica, primary = ready[0]
                    actions.append(dict(op="failover_zone", node=replica, primary=primary))
                    handed.add(primary)
                    count[zone] -= 1
                    count[topology.zone_of[replica]] += 1
                    continue
                if options:
                    notes.append("zone %s holds %d primaries; %s takes over from %s once it has caught up "
                                 "(its sync is still running): the next run does it"
                                 % (zone, count[zone], options[0][0], options[0][1]))
                else:
                    notes.append("zone %s holds %d primaries (%s) and none has a replica in a zone short of "
                                 "primaries: bring their old hosts back (they rejoin as replicas) or add hosts "
                                 "in other zones; the next run restores the spread"
                                 % (zone, count[zone], ", ".join(crowded)))
                break
    # 5. Dead nodes: forget them everywhere (only when asked).
    dead = [n for n in anchor_view if n["id"] in failed_ids and not n["slot_count"]]
    for node in dead:
        if forget_dead:
            actions.append(dict(op="forget", node=name(node["id"]) or node["id"], node_id=node["id"]))
        else:
            notes.append("node %s (%s) is flagged failed; set redis_failover_forget_dead=true to forget it "
                         "cluster-wide" % (name(node["id"]) or node["id"], node["host"]))
    return actions, notes


def describe_recovery(action):
    if action["op"] == "failover":
        return "CLUSTER FAILOVER %s on %s (replaces failed primary %s)" % (action["mode"], action["node"], action["failed"])
    if action["op"] == "replicate":
        return "CLUSTER REPLICATE %s on %s (was %s)" % (action["primary"], action["node"], action["was"] or "free")
    if action["op"] == "failover_zone":
        return "CLUSTER FAILOVER on %s (takes over from %s to restore the zone spread)" % (action["node"], action["primary"])
    if action["op"] == "forget":
        return "CLUSTER FORGET %s on every node" % action["node"]
    return describe(action)


def apply_recovery(cli, topology, actions, timeout, sleep, clock):
    """Run recovery actions in order, waiting for each to take effect. Returns lines done."""
    inv = topology.by_name
    done = []

    def addr(name):
        return inv[name]["host"], inv[name]["port"]

    def me(name):
        return [n for n in parse_cluster_nodes(cli.run(*(addr(name) + ("CLUSTER", "NODES")))) if n["myself"]][0]

    for action in actions:
        node = action["node"]
        if action["op"] in ("failover", "failover_zone"):
            args = ("CLUSTER", "FAILOVER") + ((action["mode"],) if action["op"] == "failover" else ())
            cli.run(*(addr(node) + args))
            wait_until(lambda n=node: me(n)["role"] == "primary" and me(n)["slot_count"] > 0, timeout, sleep,
                       clock, "%s to become primary" % node)
        elif action["op"] == "meet":
            cli.run(*(addr(action["via"]) + ("CLUSTER", "MEET") + tuple(action["args"])))
            wait_until(lambda n=node: len(parse_cluster_nodes(cli.run(*(addr(n) + ("CLUSTER", "NODES"))))) > 1,
                       timeout, sleep, clock, "%s to join" % node)
        elif action["op"] == "replicate":
            replicate(cli, inv[node], inv[action["primary"]], action["primary"], timeout, sleep, clock)
        elif action["op"] == "forget":
            for other in topology.inventory:
                if other["name"] == node or other["name"] not in topology.myself:
                    continue
                try:
                    cli.run(other["host"], other["port"], "CLUSTER", "FORGET", action["node_id"])
                except RedisCliError as exc:
                    if "Unknown node" not in str(exc):
                        raise
        done.append(describe_recovery(action))
    return done
