#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_command
short_description: Run one Redis command on one node as an ACL user, the password kept out of sight, or apply an ACL file
version_added: 0.2.0
description:
  - Sends one command with redis-cli over TLS and returns the reply text. The password reaches
    redis-cli through its environment from inside the module, so it never shows in the remote command
    line (C(ps)), in C(-vvv) output or in the result. Use it instead of M(ansible.builtin.command) with
    E(REDISCLI_AUTH) in C(environment:), which Ansible renders into the remote command line.
  - An error reply fails the task (redis-cli C(-e)); with C(until)/C(retries) the task polls.
  - In check mode only read-only commands are sent (C(INFO), C(PING), C(DBSIZE), C(CLUSTER INFO),
    C(CLUSTER NODES), C(CONFIG GET), C(ACL WHOAMI), C(ACL LIST)); others report a change without
    being sent.
  - With O(acl_file) instead of O(command), the node's users become those of its ACL file at runtime, user by
    user with C(ACL SETUSER) (and C(ACL DELUSER) for users the file no longer has), never C(ACL LOAD), which in
    Redis 7.2 closes every connection of every ACL user, changed or not. Every line is first checked on a scratch
    user that stays off, so a rule Redis refuses changes nothing.
  - With O(acl_rules), the text of an ACL file is only checked that way (each line on the scratch user), before
    the file is written; a rule Redis refuses fails the task, naming the user, and no user changes.
extends_documentation_fragment:
  - shardwise.redis.connection
  - shardwise.redis.attributes
  - shardwise.redis.attributes.no_diff
options:
  host:
    description: Node address.
    type: str
    default: 127.0.0.1
  port:
    description: TLS port.
    type: int
    default: 6379
  command:
    description:
      - The command and its arguments, one list element each (no shell quoting). Arguments are visible
        in the remote process list like any command line, so they must not carry a secret; a command
        containing O(login_password) is refused.
      - Exactly one of O(command), O(acl_file) and O(acl_rules).
    type: list
    elements: str
  acl_file:
    description:
      - Path of the ACL file on the node (the C(aclfile) Redis reads at start) to apply at runtime instead of a
        command. The reply RV(stdout) is C(OK); the task is changed when any user changed.
    type: path
    version_added: 0.3.0
  acl_rules:
    description:
      - The text of an ACL file to have the node check, line by line on a scratch user that stays off, without
        applying it (the server role runs this before it writes the file). Not sent in check mode.
    type: str
    version_added: 0.3.0
  secret:
    description:
      - A last argument that is a secret (C(CONFIG SET masterauth)), sent through the module's own TLS connection,
        never on a command line. Its reply is RV(stdout).
    type: str
  login_password_previous:
    description:
      - The user's previous password, tried once when O(login_password) is refused with C(WRONGPASS). During a
        password rotation the node may still hold the old users until this very task (O(acl_file)) applies the new
        ones.
    type: str
author:
  - shardwise.redis developers (@shardwise)
"""

EXAMPLES = r"""
- name: Wait until the node has loaded its dataset
  shardwise.redis.redis_command:
    command: [INFO, persistence]
    login_password: "{{ redis_admin_password }}"
  register: persistence
  until: persistence is succeeded and 'loading:0' in persistence.stdout
  retries: 30
  delay: 2

- name: Apply the ACL file at runtime (connections stay up)
  shardwise.redis.redis_command:
    acl_file: /etc/redis/users.acl
    login_password: "{{ redis_admin_password }}"
"""

RETURN = r"""
stdout:
  description: The reply as redis-cli prints it (trailing newline removed).
  returned: when the command was sent
  type: str
  sample: "# Persistence\r\nloading:0\r\n..."
stdout_lines:
  description: RV(stdout) split into lines.
  returned: when the command was sent
  type: list
  elements: str
sent:
  description: Whether the command was sent (false for a command that changes the node, in check mode).
  returned: always
  type: bool
authenticated_with:
  description: C(previous) when only O(login_password_previous) was accepted, else C(current).
  returned: when the command was sent
  type: str
users:
  description: With O(acl_file) or O(acl_rules), the users of the file, in its order.
  returned: with O(acl_file) or O(acl_rules)
  type: list
  elements: str
deleted:
  description: With O(acl_file), the users the node had and the file no longer has, now deleted (empty in check mode, which sends nothing).
  returned: with O(acl_file)
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.acl import AclFileError, apply_acl_file, check_acl_rules, parse_acl_file
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    RedisCliError, connection_argument_spec, make_cli, read_only)


def main():
    spec = connection_argument_spec()
    spec.update(host=dict(type="str", default="127.0.0.1"), port=dict(type="int", default=6379),
                command=dict(type="list", elements="str"), acl_file=dict(type="path"), acl_rules=dict(type="str", no_log=True),
                secret=dict(type="str", no_log=True), login_password_previous=dict(type="str", no_log=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           required_one_of=[("command", "acl_file", "acl_rules")],
                           mutually_exclusive=[("command", "acl_file", "acl_rules"), ("acl_file", "secret"),
                                               ("acl_rules", "secret")])
    p = module.params
    if p["acl_file"]:
        apply_file(module)
    if p["acl_rules"] is not None:
        check_rules(module)
    if not p["command"] or not all(p["command"]):
        module.fail_json(msg="command must be a non-empty list of non-empty words, e.g. [INFO, replication]")
    secrets = [x for x in (p["login_password"], p["login_password_previous"], p["secret"]) if x]
    if any(secret in word for secret in secrets for word in p["command"]):
        module.fail_json(msg="command must not carry a password: arguments show in the process list (put it in secret)")
    if module.check_mode and not read_only(p["command"]):
        module.exit_json(changed=True, sent=False)
    out, used = with_previous_password(module, lambda cli: send(cli, p))
    out = out[:-1] if out.endswith("\n") else out
    module.exit_json(changed=False, sent=True, stdout=out, stdout_lines=out.splitlines(), authenticated_with=used)


def apply_file(module):
    """acl_file: the node's users become the file's, in place (ACL SETUSER), connections kept."""
    p = module.params
    try:
        with open(p["acl_file"]) as handle:
            users = parse_acl_file(handle.read())
    except (IOError, OSError) as exc:
        module.fail_json(msg="cannot read the ACL file %s: %s" % (p["acl_file"], exc), sent=False)
    except AclFileError as exc:
        module.fail_json(msg="%s: %s" % (p["acl_file"], exc), sent=False)
    if module.check_mode:
        module.exit_json(changed=True, sent=False, users=[name for name, _rules in users], deleted=[])
    try:
        result, used = with_previous_password(module, lambda cli: apply_acl_file(cli, p["host"], p["port"], users))
    except AclFileError as exc:
        module.fail_json(msg=str(exc), sent=True)
    module.exit_json(sent=True, stdout="OK", stdout_lines=["OK"], authenticated_with=used, **result)


def check_rules(module):
    """acl_rules: the node judges each line on the scratch user; nothing else changes."""
    p = module.params
    try:
        users = parse_acl_file(p["acl_rules"])
    except AclFileError as exc:
        module.fail_json(msg=str(exc), sent=False)
    if module.check_mode:
        module.exit_json(changed=False, sent=False, users=[name for name, _rules in users])
    try:
        _unused, used = with_previous_password(module, lambda cli: check_acl_rules(cli, p["host"], p["port"], users))
    except AclFileError as exc:
        module.fail_json(msg=str(exc), sent=True)
    module.exit_json(changed=False, sent=True, stdout="OK", stdout_lines=["OK"], authenticated_with=used,
                     users=[name for name, _rules in users])


def with_previous_password(module, action):
    """(action(cli), "current"), or when the node refuses login_password with WRONGPASS and a previous password
    is given, (action(cli with it), "previous"); a refusal of both fails the module."""
    p = module.params
    try:
        return action(make_cli(module)), "current"
    except RedisCliError as exc:
        if not (p["login_password_previous"] and "WRONGPASS" in str(exc)):
            module.fail_json(msg=str(exc), sent=True)
    module.params["login_password"] = p["login_password_previous"]
    try:
        return action(make_cli(module)), "previous"
    except RedisCliError as again:
        module.fail_json(msg="%s (the previous password was refused too)" % again, sent=True)


def send(cli, p):
    """The reply text: redis-cli's for a plain command; with a secret, the reply of the module's own connection
    (RESP: the secret never reaches a command line)."""
    if p["secret"] is None:
        return cli.run(p["host"], p["port"], *p["command"])
    reply = cli.pipe(p["host"], p["port"], [list(p["command"]) + [p["secret"]]])[0]
    return reply if isinstance(reply, str) else str(reply)


if __name__ == "__main__":
    main()
