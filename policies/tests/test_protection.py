"""Stateful resources carry `protect` where the stack's policy config requires it."""

from __future__ import annotations

from crossguard import protection
from harness import load_plan, stack_args, violations

REQUIRED = {"requireProtect": True}


def protected(plan, config=None, **kwargs) -> list[str]:
    return violations(protection.stateful_resources_protected, stack_args(plan, config, **kwargs))


def test_production_stacks_protect_their_state():
    for stack in ("prod", "staging", "prod-gcp"):
        assert protected(load_plan(stack), REQUIRED) == []


def test_unprotected_bucket_in_production():
    assert protected(load_plan("prod"), REQUIRED, protect={"mlops-artifacts": False}) == [
        "Bucket 'mlops-artifacts': resource option protect must be true on this stack "
        "(stateful resource) @ mlops-artifacts"
    ]


def test_dev_is_unprotected_and_only_fails_when_required():
    dev = load_plan("dev")
    assert protected(dev) == []
    assert protected(dev, {"requireProtect": False}) == []
    assert protected(dev, REQUIRED) == [
        f"{kind} '{name}': resource option protect must be true on this stack "
        f"(stateful resource) @ {name}"
        for kind, name in [
            # the infra layer's, then the ml layer's (the plan lists layers in deploy order)
            ("Cluster", "mlops-eks"),
            ("Key", "mlops-secrets-key"),
            ("Key", "mlops-key"),
            ("Bucket", "mlops-access-logs"),
            ("Bucket", "mlops-artifacts"),
            ("Bucket", "mlops-datasets"),
            ("Bucket", "mlops-features"),
            ("Cluster", "mlops-kafka-msk"),
            ("Topic", "mlops-kafka-labels"),
            ("Topic", "mlops-kafka-predictions"),
            ("Instance", "mlops-mlflow-database"),
        ]
    ]


def test_configured_stateful_types():
    config = {**REQUIRED, "statefulTypes": ["aws:kms/key:Key"]}
    assert protected(load_plan("dev"), config) == [
        "Key 'mlops-secrets-key': resource option protect must be true on this stack "
        "(stateful resource) @ mlops-secrets-key",
        "Key 'mlops-key': resource option protect must be true on this stack "
        "(stateful resource) @ mlops-key",
    ]
