"""Table-driven policy cases: a planned resource that passes, and the same resource with one
field changed, failing with an exact message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness import edited, entry, load_plan, resource_args, stack_args, violations
from pulumi_policy import Policy, StackValidationPolicy

PLANS = {stack: load_plan(stack) for stack in ("local", "dev", "staging", "prod", "prod-gcp")}


@dataclass
class Case:
    """`policy` over resource `name` (of `type`) in `stack`, with `path` set to `value`.

    `edits` change the starting resource so that it passes under `config` (both runs).
    """

    policy: Policy
    stack: str
    name: str
    path: str | None = None
    value: Any = None
    messages: list[str] = field(default_factory=list)
    type: str | None = None
    config: dict[str, Any] | None = None
    edits: dict[str, Any] = field(default_factory=dict)

    def id(self) -> str:
        return f"{self.policy.name}:{self.name}:{self.path}"


def run(case: Case, apply_edit: bool = True) -> list[str]:
    plan = PLANS[case.stack]
    resource = entry(plan, case.name, case.type)
    inputs = resource["inputs"]
    # `edits` adjust the starting resource (both runs); `path` is the one change that fails it.
    changes = list(case.edits.items())
    if apply_edit and case.path:
        changes.append((case.path, case.value))
    for path, value in changes:
        inputs = edited(inputs, path, value)
    if isinstance(case.policy, StackValidationPolicy):
        args = stack_args(plan, case.config, replace={(resource["type"], case.name): inputs})
    else:
        args = resource_args(plan, resource, inputs, config=case.config)
    return violations(case.policy, args)


def check(case: Case) -> None:
    """The planned resource passes; the changed one fails with exactly `messages`."""
    assert run(case, apply_edit=False) == [], case.id()
    assert run(case) == case.messages, case.id()
