"""The policy pack's test fixtures are today's plans, and its list of taggable types is current.

`policies/` is its own environment (pulumi-policy pins protobuf 5.29, kfp here needs 6.x), so its
tests read plans captured from this environment as JSON. These tests fail when a fixture no
longer matches a fresh `mlops plan`; regenerate with the command in the failure message.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pulumi_aws
import pytest

from mlops_platform import plan

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FIXTURES = POLICIES / "tests" / "fixtures"
STACKS = ["local", "dev", "staging", "prod", "prod-gcp"]
REGENERATE = (
    "for s in {stacks}; do uv run mlops plan --stack $s --format json "
    "> policies/tests/fixtures/$s.json; done"
)


def test_every_stack_has_a_fixture():
    shipped = sorted(
        path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for path in (POLICIES.parent / "stacks").glob("Pulumi.*.yaml")
    )
    assert sorted(path.stem for path in FIXTURES.glob("*.json")) == sorted(STACKS) == shipped


@pytest.mark.parametrize("stack", STACKS)
def test_policy_fixture_matches_a_fresh_plan(stack):
    fresh = json.loads(json.dumps(plan.build_plan(stack, plan.stack_file_path(stack)).as_json()))
    fixture = json.loads((FIXTURES / f"{stack}.json").read_text())
    stale = f"policies/tests/fixtures/{stack}.json is stale; run: " + REGENERATE.format(
        stacks=stack
    )
    # The stack file's path depends on the working directory, and the SDK collects a resource's
    # dependencies in a set, so their order changes between runs; everything else must be equal.
    for document in (fresh, fixture):
        for resource in document["resources"]:
            resource["dependsOn"] = sorted(resource["dependsOn"])
    for key in ("stack", "total", "countsByType", "countsByComponent", "resources"):
        assert fixture[key] == fresh[key], f"{stale} (field {key} differs)"


def test_taggable_types_match_the_installed_provider():
    spec = importlib.util.spec_from_file_location(
        "aws_taggable_types", POLICIES / "tools" / "aws_taggable_types.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render(Path(pulumi_aws.__file__).parent)
    shipped = (POLICIES / "crossguard" / "aws_taggable_types.txt").read_text()
    assert shipped == expected, "run: uv run python policies/tools/aws_taggable_types.py"
    assert "aws:s3/bucket:Bucket" in shipped.split()


def test_main_environment_keeps_kfp_2_and_protobuf_6():
    # The policy pack lives in its own environment precisely so that this one keeps these.
    from importlib import metadata

    assert metadata.version("kfp") == "2.16.1"
    assert int(metadata.version("protobuf").split(".")[0]) >= 6


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_fixture_matches_a_fresh_rendering(stack):
    """The objects of the stack's releases and kustomize trees, as `--policies` hands them to
    the pack (fixtures/rendered/<stack>.json), are today's."""
    from mlops_platform import governance

    fixture = json.loads((FIXTURES / "rendered" / f"{stack}.json").read_text())
    fresh = json.loads(json.dumps(governance.rendered_fixture(stack)))
    assert fixture == fresh, (
        f"policies/tests/fixtures/rendered/{stack}.json is stale; run: uv run python -m "
        f"mlops_platform.governance rendered-fixture {stack} > policies/tests/fixtures/rendered/{stack}.json"
    )
