# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the modules reach Redis: the shared connection options, RedisCli (redis-cli over TLS as one
ACL user, the password on the environment or stdin, never in argv), its errors, and Waiter (poll
until a condition holds or a deadline passes)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import threading
import time

from ansible_collections.shardwise.redis.plugins.module_utils.resp import Connection, ReplyError, RespError


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

    `run_command` is AnsibleModule.run_command (or a test double with the same signature). With
    native=True, pipe() talks RESP over its own TLS connections (resp.py: real pipelining, one connection
    per node and thread, kept for the run); otherwise it feeds redis-cli's stdin (one round trip per line).
    """

    def __init__(self, run_command, cli_path, user, password, ca_cert, cert, key, timeout=10, native=False):
        self._run = run_command
        self.cli_path = cli_path
        self.user = user
        self._password = password
        self._files = (ca_cert, cert, key)
        self.tls = ["--tls", "--cacert", ca_cert, "--cert", cert, "--key", key]
        self.timeout = timeout
        self.native = native
        self._connections = {}
        self._lock = threading.Lock()

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

    def read(self, host, port, *args):
        """The text of a command whose reply is one bulk string (CLUSTER NODES, CLUSTER INFO, INFO): over the
        native connection when there is one (kept for the run, no process, no new handshake), else redis-cli."""
        if self.native:
            return self._pipe_native(host, port, [list(args)])[0]
        return self.run(host, port, *args)

    def pipe(self, host, port, commands):
        """Send many commands through one redis-cli process (stdin, one line each) and return
        one reply per command (decoded JSON). Arguments may hold secrets: stdin keeps them out of
        the process list. An error reply raises RedisCliError naming the command, unless its
        prefix is in the `allow` set given as a command's second element: (args, allow).
        redis-cli prints INFO, CLUSTER NODES / INFO and a few others raw, not as JSON: use run()."""
        if not commands:
            return []
        if self.native:
            return self._pipe_native(host, port, commands)
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

    def _pipe_native(self, host, port, commands):
        key = (threading.current_thread().ident, host, int(port))
        pairs = [command if isinstance(command, tuple) else (command, ()) for command in commands]
        try:
            with self._lock:
                conn = self._connections.get(key)
            if conn is None:
                conn = Connection(host, port, self.user, self._password, *self._files, timeout=self.timeout)
                with self._lock:
                    self._connections[key] = conn
            replies = conn.pipeline([args for args, _unused in pairs])
        except RespError as exc:
            with self._lock:
                self._connections.pop(key, None)
            raise RedisCliError("%d piped command(s) (%s ...) on %s:%s failed: %s"
                                % (len(pairs), " ".join(str(a) for a in pairs[0][0][:3]), host, port, exc))
        result = []
        for reply, (args, allow) in zip(replies, pairs):
            if isinstance(reply, ReplyError) and not any(reply.startswith(prefix) for prefix in allow):
                raise RedisCliError("%s on %s:%s failed: %s" % (" ".join(str(a) for a in args[:4]), host, port, reply))
            result.append(reply)
        return result


# An error reply the caller allowed (see RedisCli.pipe): the same type whichever way pipe() went.
RedisReplyError = ReplyError


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


# Commands that only read: safe to send in check mode (upper-cased first one or two words).
READ_ONLY = frozenset([("INFO",), ("PING",), ("DBSIZE",), ("TIME",), ("CLUSTER", "INFO"), ("CLUSTER", "NODES"),
                       ("CLUSTER", "SHARDS"), ("CLUSTER", "MYID"), ("CONFIG", "GET"), ("ACL", "WHOAMI"),
                       ("ACL", "LIST"), ("ACL", "USERS")])


def read_only(command):
    """Does `command` ([word, ...]) only read?"""
    words = tuple(str(w).upper() for w in command[:2])
    return words[:1] in READ_ONLY or words in READ_ONLY


def make_cli(module):
    """RedisCli from the shared connection options of an AnsibleModule."""
    params = module.params
    cli_path = params["cli_path"] or module.get_bin_path("redis-cli", required=True)
    return RedisCli(module.run_command, cli_path, params["login_user"], params["login_password"],
                    params["tls_ca_cert"], params["tls_cert"], params["tls_key"], params["command_timeout"],
                    native=NATIVE_PIPE)


NATIVE_PIPE = True  # unit tests that script redis-cli turn it off


# ---------------------------------------------------------------- stopping and waiting

class Stopped(Exception):
    """A module's work stopped safely: the message says why and what to do; `result` is the module
    result so far (the plan, the topology), returned with fail_json."""

    def __init__(self, message, result=None):
        super(Stopped, self).__init__(message)
        self.result = result or {}


class WaitTimeout(Exception):
    """A Waiter's deadline passed; the message names what was awaited and the last error seen."""


class Waiter:
    """Polls a condition until it holds, at most `timeout` seconds per wait. A RedisCliError inside
    the check counts as "not yet" (a node restarting, a link coming up) and is quoted on timeout.
    sleep and clock are injectable so that tests run without waiting."""

    def __init__(self, timeout, sleep=time.sleep, clock=time.time, interval=0.5):
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self.interval = interval

    def until(self, check, what):
        """Return once check() is true; WaitTimeout naming `what` otherwise."""
        deadline = self.clock() + self.timeout
        last = None
        while True:
            try:
                if check():
                    return
            except RedisCliError as exc:
                last = str(exc)
            if self.clock() >= deadline:
                raise WaitTimeout("timed out after %d s waiting for %s%s"
                                  % (self.timeout, what, (": " + last) if last else ""))
            self.sleep(self.interval)

    def pause(self, seconds):
        """Sleep for a fixed time (a throttle or a window given to Redis)."""
        if seconds > 0:
            self.sleep(seconds)
