"""redis-py RedisCluster clients for the integration scripts: mutual TLS with the lab/test PKI
(<pki>/ca.crt, <pki>/clients/<user>.crt|key), the ACL user's password from REDIS_<USER>_PASSWORD."""
import os

from redis.asyncio.cluster import ClusterNode as AsyncNode, RedisCluster as AsyncCluster
from redis.cluster import PRIMARY, ClusterNode, RedisCluster


def _options(pki, user):
    return dict(username=user, password=os.environ["REDIS_%s_PASSWORD" % user.upper()], ssl=True,
                ssl_ca_certs=os.path.join(pki, "ca.crt"), ssl_certfile=os.path.join(pki, "clients", user + ".crt"),
                ssl_keyfile=os.path.join(pki, "clients", user + ".key"), decode_responses=True)


def async_cluster(pki, hosts, user, **extra):
    """reinitialize_steps=0: by default (5) redis-py's asyncio RedisCluster answers every fifth MOVED with
    aclose(), which closes every connection of the client, also those other coroutines are using; with
    BullMQ's concurrent worker that fails jobs it has processed ('NoneType' object has no attribute
    'writelines') and runs others twice. With 0 each MOVED patches the slot map instead (what ioredis
    does). Measured with 120 queue slot moves under load: 68 failed and 5 duplicated jobs with the
    default, none with 0 (docs/failure-modes.md)."""
    options = dict(_options(pki, user), reinitialize_steps=0)
    return AsyncCluster(startup_nodes=[AsyncNode(h, 6379) for h in hosts], **dict(options, **extra))


class AskSafeCluster(RedisCluster):
    """redis-py 8.1 looks an ASK target up only among the nodes CLUSTER SLOTS listed, so an ASK to a
    new primary that holds no slot yet ends in AttributeError (redis/redis-py#4015, fix proposed in
    PR #4214; ioredis, BullMQ's Node client, has handled it since 2016). This adds the unknown ASK
    target as a primary, the way redis-py already does for MOVED. Nothing else changes: every other
    error still reaches the caller."""

    def get_node(self, host=None, port=None, node_name=None):
        node = super().get_node(host, port, node_name)
        if node is None and node_name:
            address, _unused, number = node_name.rpartition(":")
            node = ClusterNode(address, int(number), server_type=PRIMARY)
            self.nodes_manager.nodes_cache[node.name] = node
        return node


def sync_cluster(pki, hosts, user, **extra):
    return AskSafeCluster(startup_nodes=[ClusterNode(h, 6379) for h in hosts], **dict(_options(pki, user), **extra))
