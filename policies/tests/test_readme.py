"""The README's tables are generated from the pack and the stack files; stack files validate."""

from __future__ import annotations

import jsonschema
import pytest
from crossguard import readme
from crossguard.pack import POLICIES
from harness import STACKS

LEVELS = {"advisory", "mandatory", "disabled"}


def test_readme_tables_are_current():
    text = readme.README.read_text()
    assert readme.render(text) == text, (
        "README.md is stale: uv --directory policies run --locked python -m crossguard.readme"
    )


def test_readme_lists_every_policy():
    table = readme.policies_table()
    for policy in POLICIES:
        assert f"| `{policy.name}` |" in table


def test_render_needs_markers():
    with pytest.raises(ValueError, match="policies:begin"):
        readme.render("no markers")


@pytest.mark.parametrize("stack", STACKS)
def test_stack_config_validates_against_the_schemas(stack):
    """What the CLI checks before a preview: each policy's settings against its schema."""
    by_name = {p.name: p for p in POLICIES}
    for name, settings in readme.stack_configs()[stack].items():
        settings = dict(settings)
        assert settings.pop("enforcementLevel", "advisory") in LEVELS, (stack, name)
        schema = by_name[name].config_schema
        assert schema is not None or not settings, (stack, name)
        if schema is not None:
            jsonschema.validate(
                settings,
                {"type": "object", "properties": schema.properties, "additionalProperties": False},
            )


def test_a_wrong_setting_is_rejected():
    schema = next(p for p in POLICIES if p.name == "kafka-topic-replication").config_schema
    with pytest.raises(jsonschema.ValidationError, match="'three' is not of type 'integer'"):
        jsonschema.validate({"minReplicationFactor": "three"}, {"properties": schema.properties})
