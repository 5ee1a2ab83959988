"""Every role's argument_specs matches its defaults, every entry point has its tasks file, shared inputs
have one home (the common role), and the specs and role READMEs are what tools/dev/gen_specs.py writes."""
import importlib.util
import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(d for d in os.listdir(os.path.join(ROOT, "roles")) if not d.startswith("_"))


def load(*path):
    with open(os.path.join(ROOT, *path)) as fh:
        return yaml.safe_load(fh) or {}


def specs(role):
    return load("roles", role, "meta", "argument_specs.yml")["argument_specs"]


COMMON = load("roles", "common", "defaults", "main.yml")


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_spec_keys_match(role):
    defaults = load("roles", role, "defaults", "main.yml")
    declared = {}
    for point, spec in specs(role).items():
        assert spec.get("short_description"), point
        for name, option in spec["options"].items():
            assert option.get("description"), name
            assert name.startswith("redis_"), name
            declared[name] = option
            home = defaults if name in defaults else COMMON
            assert name in home, "%s (entry point %s) is neither a default of %s nor a common input" % (name, point, role)
            if "default" in option:
                assert option["default"] == home[name], name
    assert set(defaults) <= set(declared), sorted(set(defaults) - set(declared))


@pytest.mark.parametrize("role", ROLES)
def test_every_entry_point_has_its_tasks_file(role):
    for point in specs(role):
        assert os.path.exists(os.path.join(ROOT, "roles", role, "tasks", point + ".yml")) or (
            point == "main" and role == "common"), point


def test_shared_inputs_have_one_home():
    """No role re-defines a common input, and nothing outside the common role re-defaults it inline."""
    for role in ROLES:
        if role != "common":
            assert not set(load("roles", role, "defaults", "main.yml")) & set(COMMON), role
    pattern = re.compile(r"\b(%s)\s*\|\s*default\(" % "|".join(COMMON))
    for folder in ("roles", "playbooks"):
        for base, _unused, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                # cluster_hosts.yml runs before any role (so before the common role's defaults): it
                # defaults the group where it reads it, as a hosts: line would.
                if name.endswith((".yml", ".j2")) and name != "cluster_hosts.yml":
                    with open(os.path.join(base, name)) as fh:
                        # hosts: is read before any role default exists: a play may default the group there
                        body = "\n".join(line for line in fh.read().splitlines() if not line.lstrip().startswith("hosts:"))
                    assert not pattern.search(body), os.path.join(base, name)


MODULES = {"redis_cluster_recover", "redis_bullmq_cleanup", "redis_cluster_reshard"}


def test_runbook_variables_are_typed_in_an_entry_point():
    """Every redis_* variable a runbook playbook or entry point reads is declared by that entry point."""
    points = specs("cluster")
    for point in ("add_shard", "remove_shard", "failover_recovery", "memory_emergency"):
        files = ["roles/cluster/tasks/%s.yml" % point, "playbooks/%s.yml" % point]
        if point in ("add_shard", "remove_shard"):
            files.append("roles/cluster/tasks/reshard.yml")
        used = set()
        for path in files:
            with open(os.path.join(ROOT, path)) as fh:
                body = "\n".join(line for line in fh.read().splitlines() if not line.lstrip().startswith("#"))
            # expressions only: {{ ... }}, when/that conditions and bare list items (assert conditions)
            code = re.findall(r"{{(.*?)}}", body, re.S)
            code += re.findall(r"^\s*(?:when|that|failed_when|changed_when):\s*(.+)$", body, re.M)
            code += re.findall(r"^\s*-\s+([^:]+)$", body, re.M)
            used |= set(re.findall(r"\b(redis_[a-z_]+)\b", " ".join(code))) - MODULES
        undeclared = sorted(used - set(points[point]["options"]))
        assert not undeclared, (point, undeclared)


def test_generated_specs_and_readmes_are_current():
    spec = importlib.util.spec_from_file_location("gen_specs", os.path.join(ROOT, "tools", "dev", "gen_specs.py"))
    gen = importlib.util.module_from_spec(spec)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        spec.loader.exec_module(gen)
        for role in ROLES:
            built, readme = gen.build(role)
            assert built == load("roles", role, "meta", "argument_specs.yml"), "%s: run tools/dev/gen_specs.py" % role
            with open(os.path.join(ROOT, "roles", role, "README.md")) as fh:
                assert fh.read() == gen.render_readme(role, built, readme), "%s README: run tools/dev/gen_specs.py" % role
            with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as fh:
                text = fh.read()
            assert text == gen.render_defaults(role, text), (
                "%s defaults: a variable is described in tools/dev/%s-vars.yml only; run tools/dev/gen_specs.py" % (role, role))
        all_specs = dict((role, gen.build(role)[0]) for role in ROLES)
        for path in gen.DOCS:
            with open(os.path.join(ROOT, path)) as fh:
                text = fh.read()
            assert text == gen.render_docs(text, all_specs), "%s: its variable tables are generated; run tools/dev/gen_specs.py" % path
    finally:
        os.chdir(cwd)


def test_variables_are_described_once():
    """A variable is described in tools/dev/<role>-vars.yml only: playbook headers and docs point to the
    generated READMEs or carry generated tables, never a hand-written "redis_x (default)  meaning" list or row."""
    listing = re.compile(r"^#\s{2,}`?(redis_[a-z0-9_]+)`?\s+(\(|\s{2,})")
    for name in sorted(os.listdir(os.path.join(ROOT, "playbooks"))):
        with open(os.path.join(ROOT, "playbooks", name)) as fh:
            described = [m.group(1) for m in map(listing.match, fh.read().splitlines()) if m]
        assert not described, "playbooks/%s describes %s: point to the role README instead" % (name, described)
    row = re.compile(r"^\| `(redis_[a-z0-9_]+)`")
    generated = re.compile(r"<!-- vars: .*? -->.*?<!-- /vars -->", re.S)
    for name in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if name.endswith(".md"):
            with open(os.path.join(ROOT, "docs", name)) as fh:
                text = generated.sub("", fh.read())
            rows = [m.group(1) for m in map(row.match, text.splitlines()) if m]
            assert not rows, "docs/%s has hand-written rows for %s: use a <!-- vars: ... --> block" % (name, rows)


def test_playbooks_reach_entry_points_by_name():
    """Ansible validates an entry point only when tasks_from names it without .yml."""
    points = {p for role in ROLES for p in specs(role)}
    for name in os.listdir(os.path.join(ROOT, "playbooks")):
        with open(os.path.join(ROOT, "playbooks", name)) as fh:
            for found in re.findall(r"tasks_from:\s*(\S+)", fh.read()):
                assert not (found.endswith(".yml") and found[:-4] in points), (name, found)


def module_options():
    """{module: its documented options} for every module of the collection."""
    found = {}
    folder = os.path.join(ROOT, "plugins", "modules")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name)) as fh:
                doc = re.search(r'DOCUMENTATION = r?"""(.*?)"""', fh.read(), re.S)
            found[name[:-3]] = (yaml.safe_load(doc.group(1)) or {}).get("options", {})
    return found


def module_calls(node, calls):
    """Every (module, arguments) of the collection's modules in a task file's data."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.startswith("shardwise.redis.") and isinstance(value, dict):
                calls.append((key.rsplit(".", 1)[1], value))
            module_calls(value, calls)
    elif isinstance(node, list):
        for item in node:
            module_calls(item, calls)
    return calls


def test_module_and_role_defaults_agree():
    """A module option a role fills from a redis_* variable has no default of its own, or the variable's: the
    module used alone behaves as the role does."""
    defaults = dict(COMMON)
    for role in ROLES:
        defaults.update(load("roles", role, "defaults", "main.yml"))
    options = module_options()
    checked, drift = 0, []
    for role in ROLES:
        folder = os.path.join(ROOT, "roles", role, "tasks")
        names = [os.path.relpath(os.path.join(top, f), folder) for top, _dirs, files in os.walk(folder) for f in files]
        for name in sorted(names):
            for module, args in module_calls(load("roles", role, "tasks", name), []):
                for option, value in args.items():
                    var = re.fullmatch(r"\{\{\s*(redis_[a-z0-9_]+)\s*\}\}", str(value))
                    doc = options.get(module, {}).get(option, {})
                    if not var or "default" not in doc or var.group(1) not in defaults:
                        continue
                    role_default = defaults[var.group(1)]
                    if isinstance(role_default, str) and "{{" in role_default:
                        continue  # computed per host: nothing to compare
                    checked += 1
                    if doc["default"] != role_default:
                        drift.append("%s/%s: %s %s=%r, %s=%r"
                                     % (role, name, module, option, doc["default"], var.group(1), role_default))
    assert checked > 10, checked  # the walk found the module calls
    assert not drift, drift
