"""RedisCli (argv, secrets, errors, timeouts) and Waiter, with a fake command runner."""
import json

import pytest

from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    RedisCli, RedisCliError, RedisReplyError, WaitTimeout, Waiter, quote_arg)


class FakeRunner:
    """Records redis-cli calls; answers from a function of the argv. Commands piped on stdin (RedisCli.pipe
    without the native connection) are answered one line at a time, as redis-cli --json does, and recorded as
    if each had been its own call."""

    def __init__(self, answer):
        self.calls = []
        self.answer = answer

    def __call__(self, argv, data=None, environ_update=None):
        if data is None:
            self.calls.append((argv, environ_update))
            return self.answer(argv)
        base = [a for a in argv if a != "--json"]
        replies = []
        for line in data.split("\n"):
            call = base + json.loads("[" + line.replace('" "', '", "') + "]")
            self.calls.append((call, environ_update))
            rc, out, err = self.answer(call)
            if rc != 0:
                return rc, "", err
            replies.append(json.dumps(out.strip()))
        return 0, "\n".join(replies) + "\n", ""


def test_runner_passes_password_by_environment_and_names_errors():
    runner = FakeRunner(lambda argv: (1, "", "ERR Unknown node abc"))
    cli = RedisCli(runner, "/usr/bin/redis-cli", "admin", "s3cret-pass", "/ca", "/crt", "/key", timeout=7)
    with pytest.raises(RedisCliError) as err:
        cli.run("10.0.0.4", 6379, "CLUSTER", "REPLICATE", "abc")
    assert str(err.value) == "CLUSTER REPLICATE abc on 10.0.0.4:6379 failed: ERR Unknown node abc"
    argv, env = runner.calls[0]
    assert "s3cret-pass" not in " ".join(argv) and env == {"REDISCLI_AUTH": "s3cret-pass"}
    assert argv[:4] == ["timeout", "7", "/usr/bin/redis-cli", "-e"] and "--tls" in argv
    assert argv[argv.index("--user") + 1] == "admin"


def test_runner_reports_timeouts():
    cli = RedisCli(FakeRunner(lambda argv: (124, "", "")), "redis-cli", "admin", "p", "/ca", "/c", "/k", timeout=3)
    with pytest.raises(RedisCliError, match="no answer within 3 s"):
        cli.run("h", 1, "PING")


def test_wait_until_times_out_with_the_reason():
    clock = iter(range(100))
    slept = []
    with pytest.raises(WaitTimeout, match="timed out after 5 s waiting for gossip: PING on h:1 failed: down"):
        Waiter(5, slept.append, lambda: next(clock)).until(raise_down, "gossip")
    assert slept and all(s == 0.5 for s in slept)


def raise_down():
    raise RedisCliError("PING on h:1 failed: down")


def test_waiter_returns_as_soon_as_the_check_holds():
    answers = iter([False, False, True])
    clock = iter(range(100))
    slept = []
    Waiter(60, slept.append, lambda: next(clock)).until(lambda: next(answers), "it")
    assert len(slept) == 2


def test_pipe_reports_errors_by_command_and_allows_expected_ones():
    def run(argv, data=None, environ_update=None):
        return 0, 'error:"ERR I\'m not the owner of hash slot 5"\n"OK"\n', ""
    cli = RedisCli(run, "redis-cli", "admin", "pw", "ca", "crt", "key")
    replies = cli.pipe("h", 1, [(["CLUSTER", "SETSLOT", 5, "MIGRATING", "x"], ("ERR I'm not the owner",)), ["PING"]])
    assert isinstance(replies[0], RedisReplyError) and replies[1] == "OK"
    with pytest.raises(RedisCliError, match="CLUSTER SETSLOT 5 MIGRATING on h:1 failed: ERR I'm not the owner"):
        cli.pipe("h", 1, [["CLUSTER", "SETSLOT", 5, "MIGRATING"], ["PING"]])

    def short(argv, data=None, environ_update=None):
        return 0, '"OK"\n', ""
    with pytest.raises(RedisCliError, match="1 replies to 2 commands"):
        RedisCli(short, "redis-cli", "admin", "pw", "ca", "crt", "key").pipe("h", 1, [["PING"], ["PING"]])


def test_quote_arg_round_trips_redis_cli_line_syntax():
    assert quote_arg('a b"c\\d') == '"a b\\"c\\\\d"'
    assert quote_arg("x\ny\x01") == '"x\\ny\\x01"'
    assert quote_arg(7) == '"7"'
