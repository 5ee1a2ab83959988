"""redis_command: the reply, the password only in redis-cli's environment, error replies fail, check mode
sends only read-only commands, and a command carrying the password is refused."""
import json

from ansible_collections.shardwise.redis.plugins.module_utils import cli
from ansible_collections.shardwise.redis.plugins.modules import redis_command

from test_modules import SECRET, command_of, run_module


def answer(argv):
    cmd = command_of(argv)
    if cmd == ["INFO", "persistence"]:
        return 0, "# Persistence\r\nloading:0\r\n", ""
    if cmd == ["ACL", "LOAD"]:
        return 0, "OK\n", ""
    if cmd[:1] == ["BOGUS"]:
        return 1, "", "ERR unknown command 'BOGUS'"
    raise AssertionError(cmd)


def test_reply_and_the_password_only_in_the_environment():
    result, calls = run_module(redis_command, dict(command=["INFO", "persistence"], port=7000), answer)
    assert not result["failed"] and not result["changed"] and result["sent"]
    assert result["stdout_lines"] == ["# Persistence", "loading:0"]
    argv, env = calls[0]
    assert env == {"REDISCLI_AUTH": SECRET} and SECRET not in " ".join(argv) and SECRET not in json.dumps(result)
    assert argv[argv.index("-h") + 1] == "127.0.0.1" and argv[argv.index("-p") + 1] == "7000" and "-e" in argv


def test_error_replies_fail_naming_the_command():
    result, _unused = run_module(redis_command, dict(command=["BOGUS", "x"]), answer)
    assert result["failed"] and "BOGUS x on 127.0.0.1:6379 failed: ERR unknown command" in result["msg"]


def test_check_mode_sends_only_what_reads():
    result, calls = run_module(redis_command, dict(command=["acl", "load"]), answer, check_mode=True)
    assert result["changed"] and not result["sent"] and calls == []
    result, calls = run_module(redis_command, dict(command=["INFO", "persistence"]), answer, check_mode=True)
    assert result["sent"] and len(calls) == 1


def test_a_secret_as_argument_is_refused_before_anything_runs():
    result, calls = run_module(redis_command, dict(command=["AUTH", "admin", SECRET]), answer)
    assert result["failed"] and "process list" in result["msg"] and calls == []
    assert SECRET not in json.dumps(result)


OLD = "unit-test-Previous-41"


def acl_answer(accepted):
    """A node that accepts only `accepted` (the ACL file it holds)."""
    def answer(argv, env):
        if env["REDISCLI_AUTH"] != accepted:
            return 1, "", "AUTH failed: WRONGPASS invalid username-password pair or user is disabled.\nNOAUTH Authentication required."
        return 0, "OK\n", ""
    return answer


def run_acl_load(accepted, previous):
    seen = []

    def answer(argv):
        return acl_answer(accepted)(argv, seen[-1])
    result, calls = run_module(redis_command, dict(command=["ACL", "LOAD"], login_password_previous=previous),
                               answer, env_log=seen)
    return result, calls


def test_an_admin_rotation_reloads_the_acl_with_the_previous_password_when_the_new_one_is_refused():
    result, calls = run_acl_load(accepted=OLD, previous=OLD)
    assert not result["failed"] and result["stdout"] == "OK" and result["authenticated_with"] == "previous"
    assert [env["REDISCLI_AUTH"] for _argv, env in calls] == [SECRET, OLD]
    assert OLD not in json.dumps(result) and all(OLD not in " ".join(argv) for argv, _env in calls)
    result, calls = run_acl_load(accepted=SECRET, previous=OLD)
    assert result["authenticated_with"] == "current" and len(calls) == 1
    result, calls = run_acl_load(accepted="something-else-entirely", previous=OLD)
    assert result["failed"] and "the previous password was refused too" in result["msg"]
    result, calls = run_acl_load(accepted=OLD, previous=None)  # without a previous password: the trap, named
    assert result["failed"] and "WRONGPASS" in result["msg"] and len(calls) == 1


def test_a_secret_argument_travels_on_stdin_never_in_argv(monkeypatch):
    monkeypatch.setattr(cli, "NATIVE_PIPE", False)
    sent = []

    def answer(argv):
        sent.append(argv)
        return 0, "OK\n", ""
    result, calls = run_module(redis_command, dict(command=["CONFIG", "SET", "masterauth"], secret=OLD), answer)
    assert not result["failed"] and result["stdout"] == "OK"
    assert all(OLD not in " ".join(argv) for argv, _env in calls) and OLD not in json.dumps(result)
    assert sent[0][-4:] == ["CONFIG", "SET", "masterauth", OLD]  # what redis-cli read from its stdin
    result, calls = run_module(redis_command, dict(command=["CONFIG", "SET", "masterauth", OLD], secret=OLD), answer)
    assert result["failed"] and "process list" in result["msg"] and calls == []


def acl_node(users, accepted=SECRET):
    """A node's ACL users for acl_file, reached through redis-cli's stdin (one JSON reply per line)."""
    def answer(argv, env):
        if env["REDISCLI_AUTH"] != accepted:
            return 1, "", "AUTH failed: WRONGPASS invalid username-password pair or user is disabled."
        cmd = command_of(argv)
        if cmd == ["ACL", "LIST"]:
            return 0, json.dumps(["user %s %s" % (n, " ".join(r)) for n, r in sorted(users.items())]), ""
        if cmd[:2] == ["ACL", "SETUSER"]:
            if "bogus" in cmd:
                return 0, 'error:"ERR Error in ACL SETUSER modifier \'bogus\': Syntax error"', ""
            users[cmd[2]] = cmd[4:]
            return 0, "OK", ""
        if cmd[:2] == ["ACL", "DELUSER"]:
            return 0, str(int(users.pop(cmd[2], None) is not None)), ""
        raise AssertionError(cmd)
    return answer


def run_acl_file(monkeypatch, path, users, accepted=SECRET, check_mode=False, previous=None):
    monkeypatch.setattr(cli, "NATIVE_PIPE", False)
    seen = []
    node = acl_node(users, accepted)
    args = dict(acl_file=str(path), host="10.0.0.5")
    if previous:
        args["login_password_previous"] = previous
    return run_module(redis_command, args, lambda argv: node(argv, seen[-1]), check_mode=check_mode, env_log=seen)


def test_acl_file_sets_the_users_in_place_never_acl_load(monkeypatch, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user default off resetpass ~* +@all\nuser worker on resetpass #bb resetkeys ~bull:* +@all\n")
    users = {"default": ["off"], "worker": ["on", "#aa"], "auditor": ["on"]}
    result, calls = run_acl_file(monkeypatch, path, users)
    assert not result["failed"] and result["changed"] and result["stdout"] == "OK"
    assert result["users"] == ["default", "worker"] and result["deleted"] == ["auditor"]
    assert users == {"default": ["off", "resetpass", "~*", "+@all"], "worker": ["on", "resetpass", "#bb", "resetkeys", "~bull:*", "+@all"]}
    assert all("LOAD" not in argv for argv, _env in calls)
    result, calls = run_acl_file(monkeypatch, path, users)  # again: nothing changes
    assert not result["failed"] and not result["changed"] and result["deleted"] == []


def test_acl_file_in_check_mode_sends_nothing(monkeypatch, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user default off\n")
    result, calls = run_acl_file(monkeypatch, path, {}, check_mode=True)
    assert result["changed"] and not result["sent"] and calls == []


def test_acl_file_refused_rules_or_an_unreadable_file_change_nothing(monkeypatch, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user default off\nuser worker on bogus\n")
    users = {"default": ["off"], "worker": ["on", "#aa"]}
    result, _calls = run_acl_file(monkeypatch, path, users)
    assert result["failed"] and "worker: ERR Error in ACL SETUSER modifier 'bogus'" in result["msg"]
    assert users == {"default": ["off"], "worker": ["on", "#aa"]}
    result, calls = run_acl_file(monkeypatch, tmp_path / "missing.acl", users)
    assert result["failed"] and "cannot read the ACL file" in result["msg"] and calls == []
    path.write_text("user worker on\n")
    result, calls = run_acl_file(monkeypatch, path, users)
    assert result["failed"] and "no 'user default' line" in result["msg"] and calls == []


def test_acl_file_logs_in_with_the_previous_admin_password_when_the_node_holds_the_old_users(monkeypatch, tmp_path):
    path = tmp_path / "users.acl"
    path.write_text("user default off\nuser admin on #new\n")
    users = {"default": ["off"], "admin": ["on", "#old"]}
    result, calls = run_acl_file(monkeypatch, path, users, accepted=OLD, previous=OLD)
    assert not result["failed"] and result["authenticated_with"] == "previous" and users["admin"] == ["on", "#new"]
    assert OLD not in json.dumps(result) and all(OLD not in " ".join(argv) for argv, _env in calls)


def test_acl_file_and_command_are_exclusive():
    result, calls = run_module(redis_command, dict(acl_file="/etc/redis/users.acl", command=["PING"]), answer)
    assert result["failed"] and "mutually exclusive" in result["msg"] and calls == []


def run_acl_rules(monkeypatch, text, users, check_mode=False):
    monkeypatch.setattr(cli, "NATIVE_PIPE", False)
    seen = []
    node = acl_node(users)
    return run_module(redis_command, dict(acl_rules=text, host="10.0.0.5"), lambda argv: node(argv, seen[-1]),
                      check_mode=check_mode, env_log=seen)


def test_acl_rules_are_checked_on_the_scratch_user_only(monkeypatch):
    """Before the ACL file is written: each line judged by the node on a scratch user, no real user touched."""
    users = {"default": ["off"], "worker": ["on", "#aa"]}
    result, calls = run_acl_rules(monkeypatch, "user default off\nuser worker on #bb ~bull:* +@all\n", users)
    assert not result["failed"] and not result["changed"] and result["users"] == ["default", "worker"]
    assert users == {"default": ["off"], "worker": ["on", "#aa"]}  # the scratch user came and went
    assert all(command_of(argv)[2] == "shardwise-acl-check" for argv, _env in calls if command_of(argv)[:2] == ["ACL", "SETUSER"])
    result, _calls = run_acl_rules(monkeypatch, "user default off\nuser worker on bogus\n", users)
    assert result["failed"] and "worker: ERR Error in ACL SETUSER modifier 'bogus'" in result["msg"]
    assert users == {"default": ["off"], "worker": ["on", "#aa"]}
    result, calls = run_acl_rules(monkeypatch, "user worker on\n", users)
    assert result["failed"] and "no 'user default' line" in result["msg"] and calls == []
    result, calls = run_acl_rules(monkeypatch, "user default off\n", users, check_mode=True)
    assert not result["failed"] and not result["sent"] and calls == []
