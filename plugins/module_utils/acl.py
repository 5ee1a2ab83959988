# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make a node's ACL users those of its ACL file at runtime, without ACL LOAD.

Redis 7.2's ACL LOAD frees every user it replaces and with them every connection authenticated as one (measured
on 7.2.4: an unchanged file still drops them; redis/redis#12171 changed that only in a later series). Every BullMQ
client, exporter and replication link would reconnect at each password rotation step. ACL SETUSER changes a user
in place and keeps its connections, so the file is applied user by user: each line checked first on a scratch
user that stays off (a bad rule changes nothing, as ACL LOAD refuses a bad file whole), then
`ACL SETUSER <name> reset <rules>` (reset: the same blank user ACL LOAD starts each line from), then
`ACL DELUSER` for users the file no longer has (their connections close, as with ACL LOAD)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.shardwise.redis.plugins.module_utils.resp import ReplyError

CHECK_USER = "shardwise-acl-check"


class AclFileError(Exception):
    """The ACL file cannot be applied; the message names the line or user and what to fix."""


def parse_acl_file(text):
    """[(name, [rule, ...]), ...] from the text of an ACL file (one `user <name> <rules>` per line)."""
    users, seen = [], set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if words[0] != "user" or len(words) < 2:
            raise AclFileError("line %d of the ACL file is not 'user <name> <rules>': Redis would refuse the file; "
                               "fix the template or redis_acl_extra_users" % number)
        name = words[1]
        if name in seen or name == CHECK_USER:
            raise AclFileError("line %d of the ACL file: user '%s' %s" % (
                number, name, "is defined twice" if name in seen else "is a name the collection reserves"))
        seen.add(name)
        users.append((name, words[2:]))
    if "default" not in seen:
        raise AclFileError("the ACL file has no 'user default' line: the collection's template always writes one")
    return users


def live_users(acl_list):
    """User names from an ACL LIST reply."""
    return [entry.split()[1] for entry in acl_list if entry.startswith("user ") and len(entry.split()) > 1]


def check_commands(users):
    """Each user's rules tried on a scratch user that ends off (it can never authenticate), then removed."""
    commands = [(["ACL", "SETUSER", CHECK_USER, "reset"] + rules + ["off"], ("ERR",)) for _name, rules in users]
    return commands + [["ACL", "DELUSER", CHECK_USER]]


def check_errors(users, replies):
    """'user: error' for each line whose rules Redis refused (replies of check_commands)."""
    return ["%s: %s" % (name, reply) for (name, _rules), reply in zip(users, replies) if isinstance(reply, ReplyError)]


def apply_commands(users, live):
    """(commands, deleted): SETUSER reset + rules per file user, DELUSER for live users the file lacks."""
    names = set(name for name, _rules in users)
    deleted = sorted(name for name in live if name not in names and name != "default")
    commands = [["ACL", "SETUSER", name, "reset"] + rules for name, rules in users]
    return commands + [["ACL", "DELUSER", name] for name in deleted], deleted


def check_acl_rules(cli, host, port, users):
    """Have one node judge `users` (parse_acl_file) on the scratch user only: raises AclFileError naming each
    user whose rules Redis refuses; no real user changes."""
    errors = check_errors(users, cli.pipe(host, port, check_commands(users)))
    if errors:
        raise AclFileError("Redis refuses these ACL rules, nothing was changed on %s:%s: %s"
                           % (host, port, "; ".join(errors)))


def apply_acl_file(cli, host, port, users):
    """Apply `users` (parse_acl_file) to one node. Returns {changed, users, deleted}; raises AclFileError
    before any user changes when Redis refuses a line."""
    before = cli.pipe(host, port, [["ACL", "LIST"]])[0]
    check_acl_rules(cli, host, port, users)
    commands, deleted = apply_commands(users, live_users(before))
    cli.pipe(host, port, commands)
    after = cli.pipe(host, port, [["ACL", "LIST"]])[0]
    return dict(changed=sorted(before) != sorted(after), users=[name for name, _rules in users], deleted=deleted)
