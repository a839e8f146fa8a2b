"""Policy arguments built from `mlops plan --format json` fixtures, the way the engine builds them.

The plan records, for every resource, its type, name, parent, `protect`, dependencies (by name)
and inputs as the provider receives them (camelCase). From that this module builds what the
policy SDK's analyzer would: `ResourceValidationArgs` (inputs, options, provider) and
`StackValidationArgs` (every resource with parent, dependencies and property dependencies),
with values only known after apply turned back into the SDK's unknown sentinels.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossguard.offline import PLAN_UNKNOWN as PLAN_UNKNOWN  # re-exported for the tests
from crossguard.offline import engine_value as _engine_value
from crossguard.offline import is_custom as _is_custom
from crossguard.offline import urn
from crossguard.pack import POLICIES
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

FIXTURES = Path(__file__).parent / "fixtures"
STACKS = ("local", "dev", "staging", "prod", "prod-gcp")
DELETE = object()


def load_plan(stack: str, rendered: bool = False) -> dict[str, Any]:
    """A stack's plan; with `rendered`, plus every object of its Helm releases and kustomize
    trees as `mlops plan --policies` hands them over (`fixtures/rendered/<stack>.json`, made by
    `python -m mlops_platform.governance rendered-fixture <stack>`)."""
    plan = json.loads((FIXTURES / f"{stack}.json").read_text())
    if rendered:
        plan["resources"] += load_rendered(stack)
    return plan


def load_rendered(stack: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "rendered" / f"{stack}.json").read_text())


def entry(plan: dict[str, Any], name: str, resource_type: str | None = None) -> dict[str, Any]:
    """The one plan resource called `name` (of `resource_type` when names are shared)."""
    matches = [
        r
        for r in plan["resources"]
        if r["name"] == name and (resource_type is None or r["type"] == resource_type)
    ]
    if len(matches) != 1:
        raise KeyError(f"{len(matches)} resources named {name!r} in plan {plan['stack']}")
    return matches[0]


def of_type(plan: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] == resource_type]


def edited(inputs: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `inputs` with the dotted `path` set to `value` (or removed with DELETE)."""
    result = copy.deepcopy(inputs)
    *parents, last = path.split(".")
    target: Any = result
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    if isinstance(target, list):
        target[int(last)] = value
    elif value is DELETE:
        target.pop(last, None)
    else:
        target[last] = value
    return result


def engine_props(inputs: dict[str, Any]) -> Any:
    return unknown_checking_proxy(_engine_value(copy.deepcopy(inputs)))


def _options(plan: dict[str, Any], resource: dict[str, Any]) -> PolicyResourceOptions:
    parent = resource["parent"]
    parents = [r for r in plan["resources"] if r["name"] == parent and not _is_custom(r)]
    return PolicyResourceOptions(
        protect=resource["protect"],
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=urn(plan, parents[0]) if parents else None,
    )


def _provider(plan: dict[str, Any], resource: dict[str, Any]) -> PolicyProviderResource | None:
    """The explicit provider for the resource's package (each layer's program makes one)."""
    package = resource["type"].split(":")[0]
    providers = [
        p
        for p in of_type(plan, f"pulumi:providers:{package}")
        if p.get("layer") == resource.get("layer")
    ]
    if not providers:
        return None
    provider = providers[0]
    return PolicyProviderResource(
        provider["type"], engine_props(provider["inputs"]), urn(plan, provider), provider["name"]
    )


def resource_args(
    plan: dict[str, Any],
    resource: dict[str, Any],
    inputs: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    protect: bool | None = None,
) -> ResourceValidationArgs:
    """Args for a resource policy; `inputs`/`protect` replace the planned ones when given."""
    resource = dict(resource)
    if protect is not None:
        resource["protect"] = protect
    return ResourceValidationArgs(
        resource_type=resource["type"],
        props=engine_props(resource["inputs"] if inputs is None else inputs),
        urn=urn(plan, resource),
        name=resource["name"],
        opts=_options(plan, resource),
        provider=_provider(plan, resource),
        config=config,
    )


def _property_dependencies(
    resource: dict[str, Any], by_name: dict[str, list[PolicyResource]], plan: dict[str, Any]
) -> dict[str, list[PolicyResource]]:
    """Which dependency each input came from, as the engine's propertyDependencies say.

    The plan lists dependencies per resource, not per input; an input holding a dependency's id
    (the mocks return `<name>-id`) or its bucket/name came from that dependency.
    """
    inputs_by_name = {r["name"]: r["inputs"] for r in plan["resources"] if _is_custom(r)}
    found: dict[str, list[PolicyResource]] = {}
    for key, value in resource["inputs"].items():
        if not isinstance(value, str):
            continue
        for dependency in dict.fromkeys(resource["dependsOn"]):
            dep_inputs = inputs_by_name.get(dependency, {})
            if value in (f"{dependency}-id", dep_inputs.get("bucket"), dep_inputs.get("name")):
                found.setdefault(key, []).extend(by_name.get(dependency, []))
    return found


def stack_args(
    plan: dict[str, Any],
    config: dict[str, Any] | None = None,
    replace: dict[str, dict[str, Any]] | None = None,
    drop: tuple[str, ...] = (),
    protect: dict[str, bool] | None = None,
) -> StackValidationArgs:
    """Args for a stack policy over the whole plan.

    `replace` maps resource names (or (type, name) where names are shared) to new inputs,
    `drop` removes resources, `protect` overrides the protect option by name.
    """
    replace = replace or {}
    protect = protect or {}
    planned = [r for r in plan["resources"] if r["name"] not in drop or not _is_custom(r)]
    planned = [
        {
            **r,
            "inputs": replace.get((r["type"], r["name"]), replace.get(r["name"], r["inputs"])),
            "protect": protect.get(r["name"], r["protect"]),
        }
        if _is_custom(r)
        else r
        for r in planned
    ]
    built: list[tuple[dict[str, Any], PolicyResource]] = []
    by_name: dict[str, list[PolicyResource]] = {}
    for r in planned:
        resource = PolicyResource(
            resource_type=r["type"],
            props=engine_props(r["inputs"]),
            urn=urn(plan, r),
            name=r["name"],
            opts=_options(plan, r),
            provider=_provider(plan, r) if _is_custom(r) else None,
            parent=None,
            dependencies=[],
            property_dependencies={},
        )
        built.append((r, resource))
        if _is_custom(r):
            by_name.setdefault(r["name"], []).append(resource)
    by_urn = {resource.urn: resource for _, resource in built}
    for r, resource in built:
        resource.parent = by_urn.get(resource.opts.parent or "")
        for dependency in dict.fromkeys(r["dependsOn"]):
            resource.dependencies.extend(by_name.get(dependency, []))
        resource.property_dependencies = _property_dependencies(r, by_name, plan)
    return StackValidationArgs(resources=[resource for _, resource in built], config=config)


def violations(policy: Policy, args: Any) -> list[str]:
    """Messages the policy reports for `args` (stack policies: `message @ resource name`)."""
    messages: list[str] = []

    def report(message: str, resource_urn: str | None = None) -> None:
        suffix = f" @ {resource_urn.rsplit('::', 1)[-1]}" if resource_urn else ""
        messages.append(message + suffix)

    policy.validate(args, report)
    return messages


@dataclass(frozen=True)
class Finding:
    policy: str
    level: EnforcementLevel
    message: str


def run_pack(plan: dict[str, Any], config: dict[str, dict[str, Any]] | None = None):
    """Every policy of the pack over the whole plan, as `pulumi preview` runs it.

    Returns (findings, deferred): a policy that reads a value only known after apply is deferred
    (the engine reports it as "can't run during preview") rather than failing.
    """
    config = config or {}
    findings: list[Finding] = []
    deferred: list[str] = []
    for policy in POLICIES:
        # The engine takes a policy's `enforcementLevel` from its config, over the pack's own.
        policy_config = dict(config.get(policy.name) or {})
        level = EnforcementLevel(policy_config.pop("enforcementLevel", policy.enforcement_level))
        if level == EnforcementLevel.DISABLED:
            continue
        policy_config = policy_config or None
        if isinstance(policy, StackValidationPolicy):
            for message in violations(policy, stack_args(plan, policy_config)):
                findings.append(Finding(policy.name, level, message))
            continue
        assert isinstance(policy, ResourceValidationPolicy)
        for resource in plan["resources"]:
            if not _is_custom(resource):
                continue
            try:
                messages = violations(policy, resource_args(plan, resource, config=policy_config))
            except UnknownValueError:
                deferred.append(f"{policy.name} @ {resource['name']}")
                continue
            findings += [Finding(policy.name, level, message) for message in messages]
    return findings, deferred
