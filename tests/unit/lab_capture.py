"""The six-node lab whose CLUSTER NODES / INFO output was captured into tests/unit/fixtures
(real Redis 7.2.4, TLS, three zones), shared by the module_utils and module tests."""
import os

FIX = os.path.join(os.path.dirname(__file__), "fixtures")
ADDR = {"redis-a1": "10.89.20.11", "redis-a2": "10.89.20.12", "redis-b1": "10.89.20.21",
        "redis-b2": "10.89.20.22", "redis-c1": "10.89.20.31", "redis-c2": "10.89.20.32"}
INVENTORY = [dict(name=n, host=h, port=6379, zone="zone-" + n[6]) for n, h in ADDR.items()]


def fixture(name):
    with open(os.path.join(FIX, name)) as fh:
        return fh.read()


def healthy_views():
    """Every node's own CLUSTER NODES of the healthy lab cluster."""
    return {n: fixture("nodes-healthy-%s.txt" % h.split(".")[-1]) for n, h in ADDR.items()}
