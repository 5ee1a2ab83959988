"""Every runbook runs on the one skeleton (roles/cluster/tasks/runbook.yml, DEVELOPERS.md "Add a runbook"): its entry
point only names it, its body sets the three facts the skeleton reads, and nothing else takes the lock, writes a
report or refuses renamed variables on its own."""
import os

import pytest
import yaml
from task_files import ROOT, load, walk

TASKS = os.path.join(ROOT, "roles", "cluster", "tasks")
SKELETON_PARTS = {"lock.yml", "unlock.yml", "report_file.yml"}
FACTS = {"_redis_runbook_report", "_redis_runbook_summary", "_redis_runbook_failure"}


def entry_points():
    """The cluster role's entry points that are runbooks: a playbook of the same name runs each."""
    with open(os.path.join(ROOT, "roles", "cluster", "meta", "argument_specs.yml")) as fh:
        points = yaml.safe_load(fh)["argument_specs"]
    return sorted(p for p in points if os.path.exists(os.path.join(ROOT, "playbooks", p + ".yml")))


def includes(tasks):
    return [t.get("ansible.builtin.include_tasks") for t in walk(tasks) if "ansible.builtin.include_tasks" in t]


def body_of(point):
    """The runbooks/ file an entry point runs (through reshard.yml for the slot-moving runbooks)."""
    tasks = load(os.path.join(TASKS, point + ".yml"))
    task = tasks[0]
    if task.get("ansible.builtin.include_tasks") == "reshard.yml":
        task = load(os.path.join(TASKS, "reshard.yml"))[0]
    return task["vars"].get("_redis_runbook_body", task["vars"]["_redis_runbook"])


def test_every_runbook_is_an_entry_point():
    assert set(entry_points()) >= {"add_shard", "remove_shard", "queue_placement", "failover_recovery",
                                   "memory_emergency", "rolling_upgrade", "backup", "restore", "rotate_secrets"}


@pytest.mark.parametrize("point", entry_points())
def test_entry_point_only_names_its_runbook(point):
    tasks = load(os.path.join(TASKS, point + ".yml"))
    assert len(tasks) == 1, "%s.yml: one task, the include of the skeleton" % point
    assert tasks[0].get("ansible.builtin.include_tasks") in ("runbook.yml", "reshard.yml")
    if tasks[0]["ansible.builtin.include_tasks"] == "reshard.yml":
        assert includes(load(os.path.join(TASKS, "reshard.yml"))) == ["runbook.yml"]


@pytest.mark.parametrize("point", [p for p in entry_points() if p != "rolling_upgrade"])
def test_body_sets_what_the_skeleton_reads(point):
    body = load(os.path.join(TASKS, "runbooks", body_of(point) + ".yml"))
    facts = set()
    for task in walk(body):
        facts |= set((task.get("ansible.builtin.set_fact") or {}).keys())
    assert FACTS <= facts, "%s: runbooks/%s.yml sets %s" % (point, body_of(point), sorted(facts & FACTS))


def test_rolling_upgrade_parts_run_on_the_skeleton():
    """Its first play holds the lock for the next; the serial plays and the last one continue it."""
    for name in ("rolling_upgrade", "rolling_restart", "rolling_finish"):
        tasks = load(os.path.join(TASKS, name + ".yml"))
        assert len(tasks) == 1 and tasks[0]["ansible.builtin.include_tasks"] == "runbook.yml", name
        assert tasks[0]["vars"]["_redis_runbook"] == "rolling_upgrade"
    finish = load(os.path.join(TASKS, "runbooks", "rolling_upgrade_finish.yml"))
    assert FACTS <= {k for t in walk(finish) for k in (t.get("ansible.builtin.set_fact") or {})}


def test_only_the_skeleton_locks_and_reports():
    others = []
    for top, _dirs, files in os.walk(os.path.join(ROOT, "roles")):
        for name in files:
            path = os.path.join(top, name)
            if not name.endswith(".yml") or "/tasks" not in path or path == os.path.join(TASKS, "runbook.yml"):
                continue
            used = {i for i in includes(load(path)) if i} & SKELETON_PARTS
            if used:
                others.append("%s: %s" % (os.path.relpath(path, ROOT), sorted(used)))
    assert not others, others


def test_runbook_playbooks_call_an_entry_point():
    """Each runbook playbook runs the cluster role's entry point of its own name (the skeleton with its report)."""
    points = set(entry_points())
    for point in points - {"rolling_upgrade"}:
        plays = load(os.path.join(ROOT, "playbooks", point + ".yml"))
        calls = [t["ansible.builtin.include_role"] for p in plays for t in walk(p.get("tasks"))
                 if "ansible.builtin.include_role" in t]
        assert calls == [{"name": "shardwise.redis.cluster", "tasks_from": point}], (point, calls)
