# -*- coding: utf-8 -*-
"""host_firewall_problems: which cluster ports firewalld or ufw keep closed, read from what preflight gathered."""
from ansible_collections.shardwise.redis.plugins.filter.checks import host_firewall_problems

PORTS = {6379: "clients and replication", 16379: "cluster bus"}

UFW_HEAD = "Status: active\n\nTo                         Action      From\n--                         ------      ----\n"


def test_no_firewall_and_inactive_ones_pass():
    assert host_firewall_problems({}, PORTS) == []
    assert host_firewall_problems({"firewalld": "inactive", "ufw": ""}, PORTS) == []
    assert host_firewall_problems({"firewalld": "unknown", "ufw": "Status: inactive\n"}, PORTS) == []


def test_firewalld_names_the_closed_ports_and_the_command():
    got = host_firewall_problems({"firewalld": "active", "firewalld_rc": {"6379": 0, "16379": 1}}, PORTS)
    assert len(got) == 1
    assert "16379/tcp (cluster bus)" in got[0] and "6379/tcp (clients" not in got[0]
    assert "firewall-cmd --permanent --add-port=16379/tcp && firewall-cmd --reload" in got[0]
    assert host_firewall_problems({"firewalld": "active", "firewalld_rc": {6379: 0, 16379: "0"}}, PORTS) == []
    # nothing read (the query failed): every port counts as closed
    assert "--add-port=6379/tcp --add-port=16379/tcp" in host_firewall_problems({"firewalld": "active"}, PORTS)[0]


def test_ufw_rules_that_open_a_port():
    for rule in ("6379,16379/tcp             ALLOW       Anywhere",
                 "6379:16379/tcp             ALLOW IN    10.0.0.0/8",
                 "Anywhere                   ALLOW       10.0.0.5"):
        assert host_firewall_problems({"ufw": UFW_HEAD + rule + "\n"}, PORTS) == [], rule
    both = UFW_HEAD + "6379                       ALLOW       Anywhere\n16379/tcp (v6)             ALLOW       Anywhere (v6)\n"
    assert host_firewall_problems({"ufw": both}, PORTS) == []


def test_ufw_rules_that_do_not():
    status = UFW_HEAD + ("22/tcp                     ALLOW       Anywhere\n"
                         "6379/udp                   ALLOW       Anywhere\n"
                         "16379/tcp                  DENY        Anywhere\n"
                         "OpenSSH                    ALLOW       Anywhere\n")
    got = host_firewall_problems({"ufw": status}, PORTS)
    assert got == ["ufw filters this host's input and allows no TCP traffic to 6379 (clients and replication), 16379 "
                   "(cluster bus): run ufw allow 6379,16379/tcp (the collection does not edit ufw), then run site.yml "
                   "again"]


def test_both_firewalls_are_reported():
    got = host_firewall_problems({"firewalld": "active", "firewalld_rc": {}, "ufw": UFW_HEAD}, {9121: "metrics"})
    assert len(got) == 2 and "9121/tcp (metrics)" in got[0] and "ufw allow 9121/tcp" in got[1]
