"""site.yml's topology printout (roles/cluster/templates/topology.j2) rendered by ansible-playbook from a
redis_cluster_info result (mocked redis-cli): the queue table, and a line per queue that
playbooks/queue_placement.yml would move (the plan redis_cluster_info makes with redis_bullmq_queue_placement)."""
import json
import os
import subprocess
import sys

import pytest

from test_modules import NODES, healthy_answer, redis_cluster_info, run_module

from ansible_collections.shardwise.redis.plugins.module_utils import cli

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        content: "{{ lookup('ansible.builtin.template', '%s/roles/cluster/templates/topology.j2') }}"
        dest: "{{ out }}"
        mode: "0600"
""" % ROOT
SIX = ["critical", "high", "normal", "low", "batch", "scheduled"]


@pytest.fixture(autouse=True)
def scripted_redis_cli(monkeypatch):
    """redis-cli is scripted (test_modules.run_module), no TLS connection is opened."""
    monkeypatch.setattr(cli, "NATIVE_PIPE", False)


def printout(tmp_path, queues, placement):
    result, _unused = run_module(redis_cluster_info, dict(nodes=NODES, bullmq_queues=queues,
                                                          bullmq_queue_placement=placement), healthy_answer)
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "vars.json").write_text(json.dumps({"__redis_cluster_info": result, "out": str(tmp_path / "out")}))
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    run = subprocess.run([playbook, "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                          "-e", "@" + str(tmp_path / "vars.json"), "-e", "ansible_python_interpreter=" + sys.executable],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:]
    return (tmp_path / "out").read_text().splitlines()


SPREAD = "(spread: no primary above its share, the first queues on different primaries)"
PINNED = "(redis_bullmq_queue_placement pins it there)"


# The fixture cluster: redis-a1 0-5460, redis-b1 5461-10922, redis-c1 10923-16383 (replicas: redis-b2, redis-c2,
# redis-a2); critical 8090, high 9976,
# normal 136, low 15214, batch 1318, scheduled 10209.
@pytest.mark.parametrize("queues, placement, hints", [
    # six queues on three primaries: at most 2 each, critical/high/normal apart; high is the one to go
    (SIX, {}, ["queue high (slot 9976) on redis-b1: playbooks/queue_placement.yml moves it to redis-c1 online " + SPREAD]),
    # critical pinned where it is: high may stay beside it, scheduled is the third on redis-b1
    (SIX, {"critical": "redis-b1"},
     ["queue scheduled (slot 10209) on redis-b1: playbooks/queue_placement.yml moves it to redis-c1 online " + SPREAD]),
    # a pin by a replica's name means its shard (redis-a2 replicates redis-c1)
    (SIX, {"critical": "redis-a2"},
     ["queue critical (slot 8090) on redis-b1: playbooks/queue_placement.yml moves it to redis-c1 online " + PINNED]),
    (["normal", "low", "critical"], {}, []),  # one queue per primary: spread
    (["critical", "high", "low"], {},
     ["queue high (slot 9976) on redis-b1: playbooks/queue_placement.yml moves it to redis-a1 online " + SPREAD]),
    (SIX, {"critical": "redis-x9"},
     ["queue placement not planned: redis_bullmq_queue_placement: queue critical names 'redis-x9', which is not a "
      "cluster node holding or replicating slots: use an inventory hostname of a shard (redis-a1, redis-a2, redis-b1, "
      "redis-b2, redis-c1, redis-c2), 'spread' or 'stay'"]),
])
def test_the_printout_names_the_queues_queue_placement_would_move(tmp_path, queues, placement, hints):
    lines = printout(tmp_path, queues, placement)
    assert [line.split()[:2] for line in lines if line.startswith("critical ")] == [["critical", "8090"]]
    assert [line for line in lines if line.startswith("queue ")] == hints
