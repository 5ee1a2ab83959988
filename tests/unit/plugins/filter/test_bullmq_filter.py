"""bullmq_slot: which slot, primary and zone a queue would use, before it is deployed."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.shardwise.redis.plugins.filter.bullmq import bullmq_slot
from ansible_collections.shardwise.redis.plugins.module_utils.topology import Topology

from lab_capture import INVENTORY, healthy_views


def test_slot_without_a_cluster():
    assert bullmq_slot("critical") == dict(queue="critical", prefix="bull", key_base="bull:{critical}:critical:",
                                           hash_tag="critical", slot=8090)
    assert bullmq_slot("{critical}")["key_base"] == "bull:{critical}:" and bullmq_slot("{critical}")["slot"] == 8090


def test_shard_zone_and_replicas_from_the_info_result():
    summary = Topology(INVENTORY, healthy_views()).summary()
    for info in ({"cluster": summary}, summary):
        where = bullmq_slot("low", "bull", info)
        assert (where["slot"], where["primary"], where["zone"]) == (15214, "redis-c1", "zone-c")
        assert where["replicas"] and all(r["zone"] != "zone-c" for r in where["replicas"])


@pytest.mark.parametrize("args, message", [
    (("tasks:critical",), "BullMQ refuses ':' in queue names"),
    (("critical", "bull", ["not", "a", "dict"]), "cluster must be what shardwise.redis.redis_cluster_info returns"),
])
def test_bad_input_names_the_fix(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        bullmq_slot(*args)
