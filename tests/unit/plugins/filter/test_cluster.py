"""cluster_nodes: one IP address per node, whatever the inventory gives (CLUSTER MEET and cluster-announce-ip
take IP addresses only)."""
import socket

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.shardwise.redis.plugins.filter.cluster import cluster_nodes, node_address


def resolver(table):
    def resolve(name, port, family, kind):
        if (name, family) in table:
            return [(family, kind, 6, "", (table[(name, family)], 0))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return resolve


def test_addresses_in_order_of_preference():
    hostvars = {"a1": {"redis_announce_ip": "10.0.1.11", "ansible_host": "203.0.113.5", "redis_zone": "z1"},
                "b1": {"ansible_host": "10.0.2.11", "redis_zone": "z2", "redis_port": 6380},
                "c1": {"redis_zone": "z3"}}
    nodes = cluster_nodes(["a1", "b1"], hostvars)
    assert nodes == [dict(name="a1", host="10.0.1.11", port=6379, zone="z1"),
                     dict(name="b1", host="10.0.2.11", port=6380, zone="z2")]
    assert node_address("c1", hostvars["c1"], resolver({("c1", socket.AF_INET): "10.0.3.11"})) == "10.0.3.11"


def test_dns_name_resolved_ipv4_first_then_ipv6():
    table = {("redis-a1.example.com", socket.AF_INET): "10.0.1.11", ("v6only.example.com", socket.AF_INET6): "fd00::11"}
    assert node_address("a1", {"ansible_host": "redis-a1.example.com"}, resolver(table)) == "10.0.1.11"
    assert node_address("a1", {"ansible_host": "v6only.example.com"}, resolver(table)) == "fd00::11"
    assert node_address("a1", {"ansible_host": "fd00:0:0::11"}, resolver({})) == "fd00::11"


def test_unresolvable_name_and_dns_announce_ip_are_refused():
    with pytest.raises(AnsibleFilterError, match=r"a1: ansible_host 'gone.example.com' is not an IP address and does "
                                                 r"not resolve on the controller; set redis_announce_ip"):
        node_address("a1", {"ansible_host": "gone.example.com"}, resolver({}))
    with pytest.raises(AnsibleFilterError, match=r"a1: redis_announce_ip is 'redis-a1.example.com', not an IP address"):
        node_address("a1", {"redis_announce_ip": "redis-a1.example.com"},
                     resolver({("redis-a1.example.com", socket.AF_INET): "10.0.1.11"}))
