"""The six-node lab whose CLUSTER NODES / INFO output was captured into tests/unit/fixtures
(real Redis 7.2.4, TLS, three zones), shared by the module_utils and module tests."""
import os

FIX = os.path.join(os.path.dirname(__file__), "fixtures")
ADDR = {"redis-a1": "10.89.20.11", "redis-a2": "10.89.20.12", "redis-b1": "10.89.20.21",
        "redis-b2": "10.89.20.22", "redis-c1": "10.89.20.31", "redis-c2": "10.89.20.32"}
INVENTORY = [dict(name=n, host=h, port=6379, zone="zone-" + n[6]) for n, h in ADDR.items()]


def fixture(name):
    """A captured reply; INFO and CLUSTER INFO come back with CRLF line ends, as Redis sends them (the
    files are stored with LF)."""
    with open(os.path.join(FIX, name)) as fh:
        text = fh.read()
    return text.replace("\n", "\r\n") if name.startswith(("info-", "cluster-info-")) else text


def healthy_views():
    """Every node's own CLUSTER NODES of the healthy lab cluster."""
    return {n: fixture("nodes-healthy-%s.txt" % h.rsplit(".", maxsplit=1)[-1]) for n, h in ADDR.items()}
