"""Every module's DOCUMENTATION, EXAMPLES and RETURN are valid YAML, and the documented options
are exactly the options the module accepts (besides the shared connection fragment)."""
import ast
import glob
import os
import re

import pytest
import yaml

MODULES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "modules", "*.py")))
FRAGMENT = {"login_user", "login_password", "tls_ca_cert", "tls_cert", "tls_key", "cli_path", "command_timeout", "nodes"}


def blocks(path):
    tree = ast.parse(open(path).read())
    return {n.targets[0].id: n.value.value for n in tree.body
            if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") in ("DOCUMENTATION", "EXAMPLES", "RETURN")}


@pytest.mark.parametrize("path", MODULES, ids=os.path.basename)
def test_docs_parse_and_match_the_argument_spec(path):
    docs = blocks(path)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    parsed = {name: yaml.safe_load(text) for name, text in docs.items()}
    documented = set(parsed["DOCUMENTATION"].get("options") or {})
    source = open(path).read()
    accepted = set(re.findall(r"\b(\w+)=dict\(type=", source)) - {"options"}
    assert documented == accepted - FRAGMENT, (documented, accepted)
