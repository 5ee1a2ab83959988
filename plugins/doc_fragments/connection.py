# -*- coding: utf-8 -*-
# Copyright: shardwise.redis contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  login_user:
    description: ACL user redis-cli authenticates as; it needs the cluster commands, so the admin user.
    type: str
    default: admin
  login_password:
    description:
      - Password of O(login_user). Passed to redis-cli through the E(REDISCLI_AUTH) environment
        variable, never on the command line, and never returned.
    type: str
    required: true
  tls_ca_cert:
    description: CA certificate that signed the nodes' certificates (on the host running the module).
    type: path
    default: /etc/redis/tls/ca.crt
  tls_cert:
    description: Client certificate for mutual TLS.
    type: path
    default: /etc/redis/tls/client-admin.crt
  tls_key:
    description: Key of O(tls_cert).
    type: path
    default: /etc/redis/tls/client-admin.key
  cli_path:
    description: Path of redis-cli; found on E(PATH) when not given.
    type: path
  command_timeout:
    description: Seconds one redis-cli call may take before it counts as failed.
    type: int
    default: 10
requirements:
  - redis-cli 7.2 with TLS support and coreutils C(timeout) on the host running the module
    (every node installed by shardwise.redis.server has both).
"""

    # Modules that act on the whole cluster: the inventory's nodes and their zones.
    NODES = r"""
options:
  nodes:
    description: The inventory's Redis nodes, each with its failure zone.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Inventory name of the node.
        type: str
        required: true
      host:
        description: Address other nodes and clients reach it on.
        type: str
        required: true
      port:
        description: TLS port.
        type: int
        default: 6379
      zone:
        description: Failure zone (rack, availability zone) of the node.
        type: str
        required: true
"""
