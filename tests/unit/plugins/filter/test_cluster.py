"""cluster_nodes: one IP address per node, whatever the inventory gives (CLUSTER MEET and cluster-announce-ip
take IP addresses only)."""
import socket

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.shardwise.redis.plugins.filter.cluster import cluster_nodes, node_address, zone_layout


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


# ---------------------------------------------------------------- zone_layout and min-replicas-to-write

def nodes_in(zones):
    return [dict(name="%s%d" % (zone, i), zone=zone) for zone, count in zones.items() for i in range(1, count + 1)]


def test_durable_profile_nine_hosts_in_three_zones_keeps_a_replica_after_any_zone_loss():
    shards = zone_layout(nodes_in({"a": 3, "b": 3, "c": 3}), replicas=2, min_replicas_to_write=1)
    assert len(shards) == 3
    for shard in shards:
        assert sorted(r[0] for r in shard["replicas"]) == sorted(set("abc") - {shard["primary"][0]})


def test_min_replicas_to_write_the_zones_cannot_carry_is_refused_naming_the_fix():
    # four zones of sizes 4/3/1/1: one primary's two replicas must share a zone (the spread is impossible)
    nodes = nodes_in({"a": 4, "b": 3, "c": 1, "d": 1})
    assert len(zone_layout(nodes, replicas=2)) == 3  # without min-replicas-to-write the layout is accepted
    with pytest.raises(AnsibleFilterError, match=r"cannot carry redis_min_replicas_to_write 1: primary \S+ would keep "
                                                 r"0 replica\(s\) after zone \S+ is lost.*a=4, b=3, c=1, d=1"):
        zone_layout(nodes, replicas=2, min_replicas_to_write=1)
