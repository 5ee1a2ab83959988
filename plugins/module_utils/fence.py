# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The partition fence: shardwise-redis-fence.service, one beside every node (role server, tasks/fence.yml).

Why. A primary cut off from the rest of the cluster keeps acknowledging writes until it has had no pong from a
majority of the primaries for cluster-node-timeout (5 s by default), while the majority promotes its replica: every
write it acknowledged after the cut is lost when the cut heals (docs/failure-modes.md, measured by the drill's
partition phases). Redis 7.2's own lever, min-replicas-to-write with min-replicas-max-lag 1, stops it 1 to 3 s after
the cut (the lag is whole seconds, refreshed once a second), and only with replicas to spare.

How. The agent reads its node's cluster view (CLUSTER NODES, every tick). Each node pings every other node every
redis_node_ping_interval_ms (250 ms) and the view shows, per node, when the oldest ping it has not answered was sent.
When its node is a primary serving slots and fewer than a majority of the primaries serving slots (itself included:
Redis' own failover quorum) answered every ping older than `after_ms` (none flagged failing), the agent fences the
node: min-replicas-to-write is set higher than any node has replicas, so every write is refused at once with
NOREPLICAS (clients retry, as on any refused write) and nothing is acknowledged that a failover would lose. Redis
itself makes the same judgement (PFAIL) only after cluster-node-timeout.

It lifts the fence (the configured values come back) when its node no longer serves slots as a primary (the
majority failed it over: it rejoins as a replica), or when a majority of the primaries have answered again for
`after_ms` with pongs received since: a majority that had failed the node over would have demoted it in that time
(an UPDATE message).

Safety. The agent only ever sets min-replicas-to-write and min-replicas-max-lag, back to the configured values (its
configuration file, rendered from the same variables as redis.conf) whenever it is not fencing, also after a
restart of Redis or a CONFIG SET by hand. On SIGTERM it lifts its fence before it exits. Started while its node is
fenced (it died fencing: systemd restarts it within a second) it keeps the fence until it decides otherwise. Its
state is in /run/shardwise-redis-fence/state.json (what the drill and `systemctl status` show).

This file runs on the hosts with Python 3 and resp.py beside it (no Ansible there), and in the unit tests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import sys
import threading
import time

try:
    from ansible_collections.shardwise.redis.plugins.module_utils import resp
except ImportError:  # on the host: resp.py is copied beside this file
    import resp  # pylint: disable=import-error

# More replicas than a node can have: every write is refused (NOREPLICAS) while this is set.
FENCE_REPLICAS = 1000000
FENCE_SETTINGS = ("min-replicas-to-write", "min-replicas-max-lag")


def parse_nodes(text):
    """CLUSTER NODES -> [{id, host, port, myself, primary, serving, link, pfail, failed, ping_ms, pong_ms}]: ping_ms
    is when the oldest unanswered ping was sent (0: none pending), pong_ms when the last pong came (unix ms)."""
    nodes = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        flags = set(parts[2].split(","))
        hostport = parts[1].split(",", 1)[0].split("@", 1)[0]
        host, _sep, port = hostport.rpartition(":")
        nodes.append(dict(
            id=parts[0], host=host, port=int(port) if port.isdigit() else 0, myself="myself" in flags,
            primary="master" in flags, serving=len(parts) > 8 and any(not p.startswith("[") for p in parts[8:]),
            link=parts[7], pfail="fail?" in flags, failed="fail" in flags and "fail?" not in flags,
            ping_ms=int(parts[4]) if parts[4].isdigit() else 0, pong_ms=int(parts[5]) if parts[5].isdigit() else 0,
        ))
    return nodes


class Fence:
    """The decision, without I/O: step() is given the node's parsed view and the time (unix ms, the view's clock)."""

    def __init__(self, after_ms, fenced=False):
        self.after_ms = after_ms
        self.fenced = fenced
        self.majority_since = None  # unix ms when a majority answered again

    def answers(self, node, now_ms):
        """The peer answered every ping sent more than after_ms ago and is not flagged failing."""
        if node["pfail"] or node["failed"]:
            return False
        return node["ping_ms"] == 0 or now_ms - node["ping_ms"] <= self.after_ms

    def step(self, nodes, now_ms):
        """(fence, why): whether the node must be fenced now."""
        me = [node for node in nodes if node["myself"]]
        if not me or not (me[0]["primary"] and me[0]["serving"]):
            self.majority_since = None
            return self._set(False, "not a primary serving slots")
        primaries = [node for node in nodes if node["primary"] and node["serving"]]
        peers = [node for node in primaries if not node["myself"]]
        need = len(primaries) // 2 + 1
        reached = 1 + sum(1 for node in peers if self.answers(node, now_ms))
        if reached < need:
            self.majority_since = None
            return self._set(True, "%d of %d primaries answer pings within %d ms, a majority is %d" % (
                reached, len(primaries), self.after_ms, need))
        if self.majority_since is None:
            self.majority_since = now_ms
        if not self.fenced:
            return self._set(False, "%d of %d primaries answer" % (reached, len(primaries)))
        heard = 1 + sum(1 for node in peers if self.answers(node, now_ms) and node["link"] == "connected"
                        and node["pong_ms"] >= self.majority_since)
        if now_ms - self.majority_since >= self.after_ms and heard >= need:
            return self._set(False, "%d of %d primaries answer again, %d with pongs for %d ms" % (
                reached, len(primaries), heard, now_ms - self.majority_since))
        return self._set(True, "%d of %d primaries answer again; holding the fence until a majority has answered "
                               "for %d ms" % (reached, len(primaries), self.after_ms))

    def _set(self, fenced, reason):
        self.fenced = fenced
        return fenced, reason


class Agent:
    """The loop: read the view and the two settings, decide, set the settings where they differ from the decision."""

    def __init__(self, settings, connect=resp.Connection, clock=time.monotonic, wall=time.time, log=None):
        self.settings = settings
        self.connect, self.clock, self.wall = connect, clock, wall
        self.log = log or _stderr
        self.fence = None
        self.local = None
        self.halt = threading.Event()
        self.reason = ""
        self.last_state = 0.0
        self.state_fenced = None
        self.fences = 0  # times the agent fenced its node since it started
        self.local_error = None
        configured_lag = int(settings["min_replicas_max_lag"])
        self.configured = {"min-replicas-to-write": str(settings["min_replicas_to_write"]),
                           "min-replicas-max-lag": str(configured_lag)}
        # min-replicas-max-lag 0 turns the replica check off: the fence needs it on.
        self.fenced_values = {"min-replicas-to-write": str(FENCE_REPLICAS),
                              "min-replicas-max-lag": str(configured_lag or 10)}

    def _command(self, commands):
        try:
            if self.local is None:
                settings = self.settings
                self.local = self.connect(settings["host"], settings["port"], settings["user"], settings["password"],
                                          settings["ca_cert"], settings["cert"], settings["key"], timeout=2)
            return self.local.pipeline(commands)
        except resp.RespError:
            if self.local is not None:
                self.local.close()
            self.local = None
            raise

    def _live(self, replies):
        live = {}
        for reply in replies:
            if isinstance(reply, list) and len(reply) == 2:
                live[reply[0]] = reply[1]
        return live

    def tick(self):
        """One decision. Returns whether the node is fenced now (None: its node did not answer)."""
        try:
            replies = self._command([["CLUSTER", "NODES"]] + [["CONFIG", "GET", name] for name in FENCE_SETTINGS])
        except resp.RespError as exc:
            if str(exc) != self.local_error:
                self.log("cannot read the node at %s:%s: %s" % (self.settings["host"], self.settings["port"], exc))
                self.local_error = str(exc)
            return None
        self.local_error = None
        live = self._live(replies[1:])
        if self.fence is None:  # the first view: a node still fenced (the agent died fencing) stays fenced
            self.fence = Fence(self.settings["after_ms"],
                               fenced=live.get(FENCE_SETTINGS[0]) == self.fenced_values[FENCE_SETTINGS[0]])
        view = replies[0]
        nodes = parse_nodes(view) if isinstance(view, str) and not isinstance(view, resp.ReplyError) else []
        was = self.fence.fenced
        fenced, reason = self.fence.step(nodes, int(self.wall() * 1000))
        if fenced and not was:
            self.fences += 1
        if fenced != was or (fenced and reason != self.reason):
            self.log("%s: %s" % ("fenced (writes refused)" if fenced else "fence lifted", reason))
        self.reason = reason
        self._apply(self.fenced_values if fenced else self.configured, live)
        self._state(nodes)
        return fenced

    def _apply(self, wanted, live):
        args = []
        for name in FENCE_SETTINGS:
            if live.get(name) != wanted[name]:
                args += [name, wanted[name]]
        if not args:
            return
        try:
            reply = self._command([["CONFIG", "SET"] + args])[0]
        except resp.RespError:
            return  # logged by the next tick's read
        if isinstance(reply, resp.ReplyError):
            self.log("CONFIG SET %s refused: %s" % (" ".join(args), reply))

    def _state(self, nodes, force=False):
        """Write the state file on a change of state and at least once a second."""
        now = self.wall()
        fenced = self.fence.fenced if self.fence is not None else False
        if not force and now - self.last_state < 1.0 and fenced == self.state_fenced:
            return
        self.last_state, self.state_fenced = now, fenced
        path = self.settings.get("state_file")
        if not path:
            return
        state = dict(fenced=fenced, reason=self.reason, updated=round(now, 3), fences=self.fences,
                     primaries=sum(1 for node in nodes if node["primary"] and node["serving"]))
        try:
            with open(path + ".tmp", "w") as handle:
                handle.write(json.dumps(state, sort_keys=True) + "\n")
            os.rename(path + ".tmp", path)
        except OSError as exc:
            self.log("cannot write %s: %s" % (path, exc))

    def lift(self):
        """Give the node its configured values back (on stop)."""
        try:
            self._apply(self.configured, self._live(self._command([["CONFIG", "GET", name] for name in FENCE_SETTINGS])))
        except resp.RespError as exc:
            self.log("stopping: cannot give the node its configured values back: %s" % exc)
        if self.fence is not None and self.fence.fenced:
            self.log("stopping: fence lifted")
            self.fence.fenced = False
        self.reason = "stopped"
        self._state([], force=True)

    def run(self):
        tick = self.settings.get("tick_ms", 100) / 1000.0
        self.log("watching %s:%s: writes refused once fewer than a majority of the primaries answered pings within "
                 "%d ms" % (self.settings["host"], self.settings["port"], self.settings["after_ms"]))
        while not self.halt.is_set():
            started = self.clock()
            self.tick()
            self.halt.wait(max(0.0, tick - (self.clock() - started)))
        self.lift()


def _stderr(message):
    """The journal's line (systemd reads the agent's stderr)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        _stderr("usage: fence.py <settings.json>")
        return 2
    with open(argv[0]) as handle:
        settings = json.load(handle)
    agent = Agent(settings)

    def stop(_signum, _frame):
        agent.halt.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
