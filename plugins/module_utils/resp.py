# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Redis connection over mutual TLS that really pipelines (Python's ssl, no extra package): every
command of a batch is written before the first reply is read. redis-cli reading commands from stdin
waits for each reply before it sends the next line, so a batch of 1000 CLUSTER SETSLOT costs 1000 round
trips (and 1000 config saves); written at once, the server handles them in a few event-loop turns.
Used by RedisCli.pipe (cli.py), which keeps redis-cli for everything else. Strings are exchanged as
UTF-8 with surrogateescape, so binary key names come back byte for byte."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl

ENCODING = "utf-8"
ERRORS = "surrogateescape"
CHUNK = 512  # commands written before their replies are read


class RespError(Exception):
    """The connection failed or the server sent something that is not RESP2."""


class ReplyError(str):
    """An error reply (-ERR ...), returned in place, not raised: the caller decides."""


def encode(args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode(ENCODING, ERRORS)
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Connection:
    """One TLS connection, authenticated as `user` (AUTH with the password: it never leaves the process)."""

    def __init__(self, host, port, user, password, ca_cert, cert, key, timeout=10):
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_cert)
        context.check_hostname = False  # as redis-cli: the chain is verified against the cluster CA, not the name
        context.load_cert_chain(cert, key)
        try:
            raw = socket.create_connection((host, int(port)), timeout=timeout)
            self.sock = context.wrap_socket(raw)
        except (OSError, ssl.SSLError) as exc:
            raise RespError("cannot connect over TLS: %s" % exc)
        self.reader = self.sock.makefile("rb")
        reply = self.pipeline([["AUTH", user, password]])[0]
        if isinstance(reply, ReplyError):
            self.close()
            raise RespError("AUTH as %s refused: %s" % (user, reply))

    def pipeline(self, commands):
        """Replies to `commands` (lists of arguments), in order; error replies as ReplyError."""
        replies = []
        try:
            for start in range(0, len(commands), CHUNK):
                chunk = commands[start:start + CHUNK]
                self.sock.sendall(b"".join(encode(c) for c in chunk))
                replies.extend(self._read() for _unused in chunk)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise RespError("connection lost: %s" % exc)
        return replies

    def _line(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise RespError("connection closed by the server")
        return line[:-2]

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode(ENCODING, ERRORS)
        if kind == b"-":
            return ReplyError(rest.decode(ENCODING, ERRORS))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            if len(data) != size + 2:
                raise RespError("connection closed by the server")
            return data[:-2].decode(ENCODING, ERRORS)
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read() for _unused in range(size)]
        raise RespError("unexpected reply %r" % line[:40])

    def close(self):
        for closing in (self.reader, self.sock):
            try:
                closing.close()
            except (OSError, ssl.SSLError):
                pass
