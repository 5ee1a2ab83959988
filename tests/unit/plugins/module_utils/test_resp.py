"""resp.py and RedisCli's native pipe: RESP2 encoding and parsing, every command written before the first
reply is read, error replies returned in place, binary key names kept, and a lost connection dropped so
that the next call reconnects."""
import io

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import cli as cli_mod, resp
from ansible_collections.shardwise.redis.plugins.module_utils.cli import RedisCli, RedisCliError


class Sock:
    def __init__(self, replies, log):
        self.replies, self.log = replies, log

    def sendall(self, data):
        self.log.append(("send", data))

    def makefile(self, mode):
        return Reader(self.replies, self.log)

    def close(self):
        self.log.append(("close", None))


class Reader(io.BytesIO):
    def __init__(self, data, log):
        super().__init__(data)
        self.log = log

    def readline(self, *args):
        self.log.append(("read", None))
        return super().readline(*args)


def connection(replies):
    log = []
    conn = resp.Connection.__new__(resp.Connection)
    conn.sock = Sock(replies, log)
    conn.reader = conn.sock.makefile("rb")
    return conn, log


def test_encode_is_resp2_with_lengths_in_bytes():
    assert resp.encode(["SET", "k\u00e9", 5]) == b"*3\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$1\r\n5\r\n"


def test_replies_of_every_kind_are_parsed_in_order():
    conn, _unused = connection(b"+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:1\r\n*-1\r\n")
    replies = conn.pipeline([["A"]] * 7)
    assert replies == ["OK", "ERR wrong", 42, "hello", None, ["a", [1]], None]
    assert isinstance(replies[1], resp.ReplyError) and not isinstance(replies[0], resp.ReplyError)


def test_all_commands_are_written_before_the_first_reply_is_read():
    conn, log = connection(b"+OK\r\n" * 3)
    conn.pipeline([["CLUSTER", "SETSLOT", s, "STABLE"] for s in range(3)])
    assert [kind for kind, _unused in log][:2] == ["send", "read"] and log[0][1].count(b"SETSLOT") == 3


def test_big_batches_are_written_in_chunks():
    conn, log = connection(b"+OK\r\n" * (resp.CHUNK + 1))
    conn.pipeline([["PING"]] * (resp.CHUNK + 1))
    assert [d.count(b"PING") for kind, d in log if kind == "send"] == [resp.CHUNK, 1]


def test_binary_key_names_come_back_byte_for_byte():
    conn, log = connection(b"*1\r\n$3\r\n\xff\x00k\r\n+OK\r\n")
    key = conn.pipeline([["CLUSTER", "GETKEYSINSLOT", 1, 10]])[0][0]
    conn.pipeline([["DEL", key]])
    assert log[-2][1].endswith(b"$3\r\n\xff\x00k\r\n")


def test_a_closed_connection_is_an_error_not_a_hang():
    conn, _unused = connection(b"$10\r\nshort")
    with pytest.raises(resp.RespError, match="closed"):
        conn.pipeline([["GET", "k"]])


class FakeConnection:
    made = []

    def __init__(self, host, port, user, password, ca, cert, key, timeout=10):
        self.sent = []
        self.fail = False
        FakeConnection.made.append(self)

    def pipeline(self, commands):
        if self.fail:
            raise resp.RespError("connection lost: reset")
        self.sent.append(commands)
        return ["OK" if c[0] != "BAD" else resp.ReplyError("ERR I'm already the owner of hash slot 5") for c in commands]


def test_native_pipe_reuses_one_connection_allows_listed_errors_and_reconnects(monkeypatch):
    monkeypatch.setattr(cli_mod, "Connection", FakeConnection)
    FakeConnection.made = []
    cli = RedisCli(None, "redis-cli", "admin", "pw", "ca", "crt", "key", native=True)
    assert cli.pipe("h", 6379, [["PING"], (["BAD"], ("ERR I'm already the owner",))]) == ["OK", "ERR I'm already the owner of hash slot 5"]
    assert cli.pipe("h", 6379, [["PING"]]) == ["OK"] and len(FakeConnection.made) == 1
    with pytest.raises(RedisCliError, match="BAD on h:6379 failed: ERR I'm already"):
        cli.pipe("h", 6379, [["BAD"]])
    FakeConnection.made[0].fail = True
    with pytest.raises(RedisCliError, match="connection lost"):
        cli.pipe("h", 6379, [["PING"]])
    assert cli.pipe("h", 6379, [["PING"]]) == ["OK"] and len(FakeConnection.made) == 2
