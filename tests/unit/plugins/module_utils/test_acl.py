"""acl: the ACL file applied user by user (ACL SETUSER reset + rules, ACL DELUSER for removed users), every
line checked on a scratch user that stays off first, and a file Redis would refuse named before anything runs."""
import pytest

from ansible_collections.shardwise.redis.plugins.module_utils import acl
from ansible_collections.shardwise.redis.plugins.module_utils.resp import ReplyError

FILE = """user default off resetpass resetkeys resetchannels ~* &* +@all
user admin on resetpass #aa resetkeys ~* &* +@all
user worker on resetpass #bb #cc resetkeys ~bull:* &* -@all +@read +@write

"""


class Node:
    """A fake node: users by name, SETUSER/DELUSER/LIST as Redis answers them; a rule 'bogus' is refused."""

    def __init__(self, users):
        self.users = dict(users)
        self.sent = []

    def pipe(self, host, port, commands):
        replies = []
        for command in commands:
            args, allow = command if isinstance(command, tuple) else (command, ())
            self.sent.append(args)
            if args[:2] == ["ACL", "LIST"]:
                replies.append(["user %s %s" % (name, " ".join(rules)) for name, rules in sorted(self.users.items())])
            elif args[:2] == ["ACL", "SETUSER"]:
                if "bogus" in args:
                    error = ReplyError("ERR Error in ACL SETUSER modifier 'bogus': Syntax error")
                    assert "ERR" in allow, "an error the caller did not allow would raise"
                    replies.append(error)
                    continue
                self.users[args[2]] = args[4:] if args[3] == "reset" else self.users.get(args[2], []) + args[3:]
                replies.append("OK")
            elif args[:2] == ["ACL", "DELUSER"]:
                replies.append(int(self.users.pop(args[2], None) is not None))
            else:
                raise AssertionError(args)
        return replies


def test_parse_reads_each_user_line_and_skips_blank_lines():
    users = acl.parse_acl_file(FILE)
    assert [name for name, _rules in users] == ["default", "admin", "worker"]
    assert users[2][1] == ["on", "resetpass", "#bb", "#cc", "resetkeys", "~bull:*", "&*", "-@all", "+@read", "+@write"]


@pytest.mark.parametrize("text, words", [
    ("user admin on\n# a comment\nuser default off", "line 2"),
    ("user default off\nuser admin on\nuser admin off", "defined twice"),
    ("user admin on +@all", "no 'user default' line"),
    ("user default off\nuser shardwise-acl-check on", "reserves"),
    ("user default off\nuser", "line 2"),
])
def test_parse_refuses_what_redis_would_refuse_naming_the_line(text, words):
    with pytest.raises(acl.AclFileError, match=words):
        acl.parse_acl_file(text)


def test_apply_sets_every_user_in_place_and_deletes_the_ones_the_file_lost():
    node = Node({"default": ["off"], "admin": ["on", "#old"], "worker": ["on", "#bb"], "auditor": ["on", "#dd"]})
    result = acl.apply_acl_file(node, "10.0.0.1", 6379, acl.parse_acl_file(FILE))
    assert result == dict(changed=True, users=["default", "admin", "worker"], deleted=["auditor"])
    assert node.users["worker"] == ["on", "resetpass", "#bb", "#cc", "resetkeys", "~bull:*", "&*", "-@all", "+@read",
                                    "+@write"]
    assert ["ACL", "LOAD"] not in node.sent and ["ACL", "DELUSER", "auditor"] in node.sent
    assert ["ACL", "SETUSER", "worker", "reset"] == node.sent[node.sent.index(["ACL", "DELUSER", acl.CHECK_USER]) + 3][:4]
    assert acl.CHECK_USER not in node.users  # the scratch user is gone again


def test_the_scratch_user_always_ends_off_and_never_holds_a_password_it_could_use():
    commands = acl.check_commands(acl.parse_acl_file(FILE))
    for args, allow in commands[:-1]:
        assert args[2] == acl.CHECK_USER and args[3] == "reset" and args[-1] == "off" and allow == ("ERR",)
    assert commands[-1] == ["ACL", "DELUSER", acl.CHECK_USER]


def test_a_second_apply_changes_nothing():
    node = Node({})
    acl.apply_acl_file(node, "h", 1, acl.parse_acl_file(FILE))
    assert acl.apply_acl_file(node, "h", 1, acl.parse_acl_file(FILE)) == dict(
        changed=False, users=["default", "admin", "worker"], deleted=[])


def test_a_rule_redis_refuses_changes_no_user():
    node = Node({"default": ["off"], "admin": ["on", "#old"], "auditor": ["on"]})
    before = dict(node.users)
    with pytest.raises(acl.AclFileError, match="nothing was changed on h:1: worker: ERR Error in ACL SETUSER modifier 'bogus'"):
        acl.apply_acl_file(node, "h", 1, acl.parse_acl_file(FILE.replace("+@write", "bogus")))
    assert {k: v for k, v in node.users.items() if k != acl.CHECK_USER} == before
    assert not any(args[:2] == ["ACL", "SETUSER"] and args[2] != acl.CHECK_USER for args in node.sent)
