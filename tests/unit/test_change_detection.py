"""The change-detection layer (DEVELOPERS.md): a managed file is declared once, in its role's `_redis*_managed`
(path, kind, owner, group, mode); the task that writes it takes them from there and runs only where the host
differs; state.yml reads every declared path; and no template is rendered twice (a task that compares rendered text
with the host writes the text rendered once, by a set_fact before it)."""
import os
import re

import pytest
from task_files import ROOT, load, walk

# role -> (its declarations, the register of its state.yml)
LAYERED = {"server": ("_redis_managed", "__redis_state"),
           "exporter": ("_redis_exporter_managed", "__redis_exporter_state"),
           "kernel": ("_redis_kernel_managed", "__redis_kernel_state")}
# Paths a guard may name without a declaration: each is declared by a list the role keeps anyway.
LISTED = {"server": [],
          "exporter": ["_redis_exporter_tls_file"],  # the copies of _redis_exporter_tls_files
          "kernel": ["'/proc/sys/' ~ item.key", "redis_kernel_sysctl_file"]}  # the sysctls (_redis_kernel_sysctls)
WRITERS = ("ansible.builtin.copy", "ansible.builtin.template", "ansible.builtin.file")


def role_tasks(role):
    folder = os.path.join(ROOT, "roles", role, "tasks")
    for top, _dirs, files in sorted(os.walk(folder)):
        for name in sorted(files):
            for task in walk(load(top, name)):
                yield os.path.relpath(os.path.join(top, name), folder), task


@pytest.mark.parametrize("role", sorted(LAYERED))
def test_every_guard_names_a_declaration(role):
    managed, state = LAYERED[role]
    undeclared, guarded = [], 0
    for name, task in role_tasks(role):
        when = str(task.get("when", ""))
        for call in re.findall(r"%s \| shardwise\.redis\.file_differs\(([^,)]+)" % state, when):
            guarded += 1
            call = call.strip()
            if not (call.startswith(managed) or call == "item" or any(call.startswith(p) for p in LISTED[role])):
                undeclared.append("%s: %s: %s" % (name, task.get("name"), call))
    assert guarded >= 3, guarded  # the walk found the guards
    assert not undeclared, undeclared


@pytest.mark.parametrize("role", sorted(LAYERED))
def test_a_guarded_writer_takes_path_owner_group_mode_from_the_declaration(role):
    managed, state = LAYERED[role]
    loose = []
    for name, task in role_tasks(role):
        module = next((m for m in WRITERS if m in task), None)
        if not module or "file_differs" not in str(task.get("when", "")):
            continue
        args = task[module]
        for key in ("owner", "group", "mode"):
            if key == "mode" and args.get("state") == "link":
                continue  # a link has no mode of its own
            value = str(args.get(key, ""))
            if not re.search(r"\{\{ *(%s\w*|item|_redis_exporter_tls_file)[.\[]" % managed, value):
                loose.append("%s: %s: %s=%s" % (name, task.get("name"), key, value))
    assert not loose, loose


@pytest.mark.parametrize("role", sorted(LAYERED))
def test_state_reads_every_declaration(role):
    managed, _state = LAYERED[role]
    text = open(os.path.join(ROOT, "roles", role, "vars", "main.yml")).read() + \
        open(os.path.join(ROOT, "roles", role, "tasks", "state.yml")).read()
    assert re.search(r"%s\.values\(\) \| map\(attribute='path'\)" % managed, text), \
        "%s: the state paths must be derived from %s" % (role, managed)
    declared = load("roles", role, "vars", "main.yml")[managed]
    assert all("path" in entry for entry in declared.values())


def test_no_template_is_rendered_twice():
    """A rendered template is compared with the host and written: both must use the text rendered once."""
    twice = []
    for role in sorted(os.listdir(os.path.join(ROOT, "roles"))):
        folder = os.path.join(ROOT, "roles", role, "tasks")
        if not os.path.isdir(folder):
            continue
        for name, task in role_tasks(role):
            if "ansible.builtin.set_fact" in task:
                continue
            if "lookup('ansible.builtin.template'" in str(task.get("when", "")):
                twice.append("%s/%s: %s" % (role, name, task.get("name")))
    assert not twice, twice
