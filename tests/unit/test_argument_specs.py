"""Every role's argument_specs matches its defaults (PROM's CI check) and has descriptions."""
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(d for d in os.listdir(os.path.join(ROOT, "roles")) if not d.startswith("_"))


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_spec_keys_match(role):
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as fh:
        defaults = yaml.safe_load(fh) or {}
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as fh:
        spec = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(spec)
    for name, option in spec.items():
        assert option.get("description"), name
        assert name.startswith("redis_"), name
        if "default" in option:
            assert option["default"] == defaults[name], name
