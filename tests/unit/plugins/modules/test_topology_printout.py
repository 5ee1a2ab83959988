"""site.yml's topology printout (roles/cluster/templates/topology.j2) rendered by ansible-playbook from a
redis_cluster_info result (mocked redis-cli): the queue table, and the line that names queues not spread
the default way."""
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
    result, _unused = run_module(redis_cluster_info, dict(nodes=NODES, bullmq_queues=queues), healthy_answer)
    (tmp_path / "play.yml").write_text(PLAY)
    (tmp_path / "vars.json").write_text(json.dumps({"__redis_cluster_info": result, "out": str(tmp_path / "out"),
                                                    "redis_bullmq_queue_placement": placement}))
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    run = subprocess.run([playbook, "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                          "-e", "@" + str(tmp_path / "vars.json"), "-e", "ansible_python_interpreter=" + sys.executable],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-2000:]
    return (tmp_path / "out").read_text().splitlines()


@pytest.mark.parametrize("queues, placement, hint", [
    (SIX, {}, "queues critical, high, scheduled on redis-b1: not the default spread (at most 2 of 6 per primary, "
              "the first 3 on different primaries); playbooks/queue_placement.yml spreads them online"),
    (SIX, {"critical": "redis-b1"}, None),  # an operator's placement: no advice
    (["normal", "low", "critical"], {}, None),  # one queue per primary: spread
    (["critical", "high", "low"], {}, "queues critical, high on redis-b1: not the default spread (at most 1 of 3 "
                                      "per primary, the first 3 on different primaries); playbooks/queue_placement.yml "
                                      "spreads them online"),
])
def test_the_printout_names_queues_not_spread_the_default_way(tmp_path, queues, placement, hint):
    lines = printout(tmp_path, queues, placement)
    assert [line.split()[:2] for line in lines if line.startswith("critical ")] == [["critical", "8090"]]
    assert [line for line in lines if line.startswith("queues ")] == ([hint] if hint else [])
