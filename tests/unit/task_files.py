"""Reading the roles' task files for the structural tests (test_runbook_skeleton, test_change_detection)."""
import os

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def load(*path):
    """A YAML file of the repository (a path from its root, or absolute), [] when empty."""
    with open(os.path.join(ROOT, *path)) as fh:
        return yaml.safe_load(fh) or []


def walk(tasks):
    """Every task, with those inside blocks (block, rescue, always) after their block."""
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk(task.get(key))
