"""Write roles/<role>/meta/argument_specs.yml and roles/<role>/README.md from defaults/main.yml plus a
description table, for every role (or the roles named on the command line), and strip defaults/main.yml of
hand-written descriptions: the table is the one place a variable is described (defaults keep their values,
section headers "# ---- ..." and a line pointing to the spec).

Usage: python3 tools/dev/gen_specs.py [ROLE ...]      (run from the repository root)
The table is tools/dev/<role>-vars.yml. It maps each variable of defaults/main.yml to
{description, type?, elements?, choices?, no_log?, entry_points?} and holds:
  _meta:         short_description and description of the role (its main entry point);
  _entry_points: {name: {short_description, description}}: runbook entry points (tasks/<name>.yml);
  _inputs:       {entry point: [variables]}: inputs owned by the common role that it reads;
  _readme:       optional Markdown added to the README after the description.
A variable belongs to the main entry point unless its entry_points lists others (add `main` to keep
it there too). Literal defaults are copied into the spec; templated ones are described, not duplicated.
Variable tables in docs/*.md are generated too, between
  <!-- vars: ROLE ENTRY_POINT_OR_VARIABLES...[; ROLE ...] -->  and  <!-- /vars -->
(an entry point lists its options other than the common role's shared inputs; the variables named after it, or
instead of it, are added by name).
tests/unit/test_argument_specs.py checks that the results are current.
"""
import copy
import os
import re
import sys

import yaml


def typename(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "str"


def templated(value):
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, list):
        return any(templated(v) for v in value)
    return False


def load(path):
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def option(name, value, entry):
    spec = {"type": entry.get("type", typename(value) if value is not None else "str")}
    if spec["type"] == "list":
        spec["elements"] = entry.get("elements", "str")
    if value is not None and not templated(value):
        spec["default"] = copy.deepcopy(value)
    for key in ("choices", "no_log"):
        if key in entry:
            spec[key] = entry[key]
    desc = entry["description"]
    if templated(value):
        desc = "%s Default: C(%s)." % (desc, value)
    spec["description"] = desc
    return spec


def build(role):
    defaults = load("roles/%s/defaults/main.yml" % role)
    table = load("tools/dev/%s-vars.yml" % role)
    meta = table.pop("_meta")
    entry_points = table.pop("_entry_points", {})
    inputs = table.pop("_inputs", {})
    readme = table.pop("_readme", "")
    missing = sorted(set(defaults) - set(table))
    extra = sorted(set(table) - set(defaults))
    if missing or extra:
        sys.exit("%s: descriptions out of step: missing %s, extra %s" % (role, missing, extra))
    common_defaults = load("roles/common/defaults/main.yml") if role != "common" else {}
    common_table = load("tools/dev/common-vars.yml") if role != "common" else {}
    points = {"main": dict(short_description=meta["short_description"], description=meta["description"],
                           options={})}
    for name, point in entry_points.items():
        points[name] = dict(short_description=point["short_description"], description=point["description"],
                            options={})
    for name, value in defaults.items():
        entry = table[name] or {}
        for point in entry.get("entry_points", ["main"]):
            if point not in points:
                sys.exit("%s: %s names unknown entry point %s" % (role, name, point))
            points[point]["options"][name] = option(name, value, entry)
    for point, names in inputs.items():
        for name in names:
            if name not in common_defaults:
                sys.exit("%s: input %s is not a variable of the common role" % (role, name))
            spec = option(name, common_defaults[name], common_table[name])
            spec["description"] += " Shared input, owned by the common role."
            points[point]["options"][name] = spec
    for point in points.values():
        point["options"] = dict(sorted(point["options"].items()))
    if os.path.exists("roles/%s/tasks/preflight.yml" % role):
        # site.yml's preflight play includes tasks_from: preflight, so Ansible validates every variable of
        # the role (types, choices) before any host changes; the semantic checks follow in preflight.yml.
        points["preflight"] = dict(short_description=PREFLIGHT, description=[
            "The variables of the main entry point, validated before any host changes; then the semantic "
            "checks of tasks/preflight.yml."], options=copy.deepcopy(points["main"]["options"]))
    return dict(argument_specs=points), readme


DEFAULTS_POINTER = ("# Values only. What each variable means, its type and choices: meta/argument_specs.yml and README.md "
                    "(generated from tools/dev/%s-vars.yml).")


def render_defaults(role, text):
    """defaults/main.yml without descriptive comments: a top-level comment that is not a section header
    ("# ----") goes (indented comments, about a value's items, stay), the pointer line comes after "---"."""
    out = []
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("#") and not line.startswith("# ----"):
            continue
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
        if line == "---":
            out.append(DEFAULTS_POINTER % role)
    return "\n".join(out) + "\n"


PREFLIGHT = "Check every input of the role before any host changes (site.yml's preflight play)"


class Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_readme(role, specs, readme):
    points = specs["argument_specs"]
    main = points["main"]
    lines = ["# shardwise.redis.%s" % role, "", "<!-- Generated by tools/dev/gen_specs.py from meta/argument_specs.yml; "
             "edit tools/dev/%s-vars.yml. -->" % role, "", main["short_description"] + ".", ""]
    lines += [d for desc in main["description"] for d in (desc, "")]
    if readme:
        lines += [readme.rstrip(), ""]
    if role != "common":
        lines += ["Variables, types and defaults are checked when the role runs (`meta/argument_specs.yml`; "
                  "`ansible-doc -t role shardwise.redis.%s`)." % role, "", "```yaml"]
        lines += ["- hosts: redis", "  roles:", "    - role: shardwise.redis.%s" % role]
        for name in [n for n in points if n not in ("main", "preflight")]:
            lines += ["", "- hosts: redis", "  tasks:", "    - ansible.builtin.include_role:",
                      "        name: shardwise.redis.%s" % role, "        tasks_from: %s" % name]
        lines += ["```", ""]
    for name, point in points.items():
        if name == "preflight":
            lines += ["## Entry point `preflight` (`tasks_from: preflight`)", "",
                      PREFLIGHT + ": the variables above, then the semantic checks of `tasks/preflight.yml`.", ""]
            continue
        title = "Variables" if name == "main" else "Entry point `%s` (`tasks_from: %s`)" % (name, name)
        lines += ["## %s" % title, ""]
        if name != "main":
            lines += [point["short_description"] + ".", ""] + [d for desc in point["description"] for d in (desc, "")]
        if not point["options"]:
            lines += ["None.", ""]
            continue
        lines += ["| Variable | Type | Default | Description |", "|---|---|---|---|"]
        for var, spec in point["options"].items():
            desc = spec["description"]
            template = re.search(r" Default: C\((.*)\)\.$", desc)
            if template:
                desc = desc[:template.start()]
            if template:
                default = "`%s`" % cell(template.group(1))
            elif "default" in spec:
                literal = yaml.safe_dump(spec["default"], default_flow_style=True).strip().replace("\n...", "")
                default = "`%s`" % cell(literal)
            else:
                default = ""
            lines.append("| `%s` | %s | %s | %s |" % (var, spec["type"], default, cell(desc)))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


DOCS = ["docs/runbooks.md", "docs/scheduling.md", "docs/monitoring.md", "docs/security.md", "docs/bullmq.md"]
VARS_BLOCK = re.compile(r"(<!-- vars: (.*?) -->\n).*?(<!-- /vars -->)", re.S)


def default_cell(spec):
    """The default column of a variable: the literal default, or the template it is computed from."""
    template = re.search(r" Default: C\((.*)\)\.$", spec["description"])
    if template:
        return "`%s`" % cell(template.group(1))
    if "default" in spec:
        return "`%s`" % cell(yaml.safe_dump(spec["default"], default_flow_style=True).strip().replace("\n...", ""))
    return "unset"


def description_cell(spec):
    return cell(re.sub(r" Default: C\((.*)\)\.$", "", spec["description"]))


def vars_table(selector, all_specs):
    """The Markdown table a docs block asks for: "cluster backup; server redis_restart_wait_seconds ..."."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for group in selector.split(";"):
        role, *names = group.split()
        points = all_specs[role]["argument_specs"]
        options = dict((n, o) for p in points.values() for n, o in p["options"].items())
        chosen = []
        if names and names[0] in points:
            point = points[names.pop(0)]["options"]
            chosen = [n for n, o in point.items() if not o["description"].endswith("Shared input, owned by the common role.")]
        missing = [n for n in names if n not in options]
        if missing:
            sys.exit("docs vars block %r: %s not in the %s role's specs" % (selector, missing, role))
        chosen += [n for n in names if n not in chosen]
        rows += ["| `%s` | %s | %s |" % (n, default_cell(options[n]), description_cell(options[n])) for n in chosen]
    return "\n".join(rows) + "\n"


def render_docs(text, all_specs):
    """A docs page with every generated variable table brought up to date."""
    return VARS_BLOCK.sub(lambda m: m.group(1) + vars_table(m.group(2), all_specs) + m.group(3), text)


def main(roles):
    for role in roles:
        specs, readme = build(role)
        with open("roles/%s/meta/argument_specs.yml" % role, "w") as fh:
            fh.write("---\n# Generated by tools/dev/gen_specs.py from defaults/main.yml and "
                     "tools/dev/%s-vars.yml; edit those.\n" % role)
            yaml.dump(specs, fh, Dumper=Dumper, sort_keys=False, width=100, default_flow_style=False)
        with open("roles/%s/README.md" % role, "w") as fh:
            fh.write(render_readme(role, specs, readme))
        path = "roles/%s/defaults/main.yml" % role
        with open(path) as fh:
            text = fh.read()
        with open(path, "w") as fh:
            fh.write(render_defaults(role, text))
    all_specs = dict((role, build(role)[0]) for role in sorted(d for d in os.listdir("roles") if not d.startswith("_")))
    for path in DOCS:
        with open(path) as fh:
            text = fh.read()
        with open(path, "w") as fh:
            fh.write(render_docs(text, all_specs))


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(d for d in os.listdir("roles") if not d.startswith("_")))
