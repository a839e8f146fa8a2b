"""Every shipped stack passes the whole pack, and the pack is what the engine will load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crossguard.pack import POLICIES
from harness import STACKS, load_plan, run_pack

CONFIG = Path(__file__).parents[1] / "config"


def stack_config(stack: str) -> dict:
    return json.loads((CONFIG / f"{stack}.json").read_text())


# Advisory findings the shipped stacks still have, each with its reason in README.md
# ("Per-stack exceptions"): images are pinned by tag until the image work pins digests.
KNOWN_ADVISORY = {"images-pinned-by-digest"}


@pytest.mark.parametrize("stack", STACKS)
def test_stack_complies_with_every_policy(stack):
    # The plan and every object its Helm releases and kustomize trees create.
    findings, deferred = run_pack(load_plan(stack, rendered=True), stack_config(stack))
    assert [f for f in findings if f.level.value == "mandatory"] == []
    assert {f.policy for f in findings} <= KNOWN_ADVISORY
    assert deferred == []


def test_every_stack_has_a_policy_config_naming_real_policies():
    names = {policy.name for policy in POLICIES}
    assert sorted(path.stem for path in CONFIG.glob("*.json")) == sorted(STACKS)
    for stack in STACKS:
        assert set(stack_config(stack)) <= names, stack


def test_production_stacks_require_protection():
    required = {
        stack: stack_config(stack)["stateful-resources-protected"]["requireProtect"]
        for stack in STACKS
    }
    assert required == {
        "local": False,
        "dev": False,
        "staging": True,
        "prod": True,
        "prod-gcp": True,
    }


def test_a_broken_stack_fails_the_pack():
    plan = load_plan("prod")
    for resource in plan["resources"]:
        if resource["name"] == "mlops-artifacts-public-access-block":
            resource["inputs"]["blockPublicPolicy"] = False
        if resource["name"] == "mlops-eks":
            resource["protect"] = False
    findings, _ = run_pack(plan, stack_config("prod"))
    assert [
        (f.policy, f.level.value, f.message) for f in findings if f.level.value == "mandatory"
    ] == [
        (
            "s3-public-access-block-all-true",
            "mandatory",
            "BucketPublicAccessBlock 'mlops-artifacts-public-access-block': blockPublicPolicy "
            "must be true, got false",
        ),
        (
            "stateful-resources-protected",
            "mandatory",
            "Cluster 'mlops-eks': resource option protect must be true on this stack "
            "(stateful resource) @ mlops-eks",
        ),
    ]


def test_policy_names_are_unique_and_levels_explicit():
    names = [policy.name for policy in POLICIES]
    assert len(names) == len(set(names))
    assert len(names) >= 45
    advisory = sorted(p.name for p in POLICIES if p.enforcement_level.value == "advisory")
    assert advisory == ["k8s-no-latest-image"]
