#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_command
short_description: Run one Redis command on one node as an ACL user, the password kept out of sight
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
    type: list
    elements: str
    required: true
  secret:
    description:
      - A last argument that is a secret (C(CONFIG SET masterauth)), sent through the module's own TLS connection,
        never on a command line. Its reply is RV(stdout).
    type: str
  login_password_previous:
    description:
      - The user's previous password, tried once when O(login_password) is refused with C(WRONGPASS). During a
        password rotation the node may still hold the old ACL file until this very command (C(ACL LOAD)) loads the
        new one.
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

- name: Reload the ACL file
  shardwise.redis.redis_command:
    command: [ACL, LOAD]
    login_password: "{{ redis_admin_password }}"
  changed_when: true
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
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shardwise.redis.plugins.module_utils.cli import (
    RedisCliError, connection_argument_spec, make_cli, read_only)


def main():
    spec = connection_argument_spec()
    spec.update(host=dict(type="str", default="127.0.0.1"), port=dict(type="int", default=6379),
                command=dict(type="list", elements="str", required=True), secret=dict(type="str", no_log=True),
                login_password_previous=dict(type="str", no_log=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not p["command"] or not all(p["command"]):
        module.fail_json(msg="command must be a non-empty list of non-empty words, e.g. [INFO, replication]")
    secrets = [x for x in (p["login_password"], p["login_password_previous"], p["secret"]) if x]
    if any(secret in word for secret in secrets for word in p["command"]):
        module.fail_json(msg="command must not carry a password: arguments show in the process list (put it in secret)")
    if module.check_mode and not read_only(p["command"]):
        module.exit_json(changed=True, sent=False)
    used = "current"
    try:
        out = send(make_cli(module), p)
    except RedisCliError as exc:
        if not (p["login_password_previous"] and "WRONGPASS" in str(exc)):
            module.fail_json(msg=str(exc), sent=True)
        module.params["login_password"], used = p["login_password_previous"], "previous"
        try:
            out = send(make_cli(module), p)
        except RedisCliError as again:
            module.fail_json(msg="%s (the previous password was refused too)" % again, sent=True)
    out = out[:-1] if out.endswith("\n") else out
    module.exit_json(changed=False, sent=True, stdout=out, stdout_lines=out.splitlines(), authenticated_with=used)


def send(cli, p):
    """The reply text: redis-cli's for a plain command; with a secret, the reply of the module's own connection
    (RESP: the secret never reaches a command line)."""
    if p["secret"] is None:
        return cli.run(p["host"], p["port"], *p["command"])
    reply = cli.pipe(p["host"], p["port"], [list(p["command"]) + [p["secret"]]])[0]
    return reply if isinstance(reply, str) else str(reply)


if __name__ == "__main__":
    main()
