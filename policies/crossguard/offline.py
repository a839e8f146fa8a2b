"""Run the pack against a saved plan exactly as `pulumi preview --policy-pack` would, offline.

    python -m crossguard.offline PLAN.json --config config/<stack>.json [--format markdown]

`mlops plan --stack S --policies` calls this in the pack's own environment (pulumi-policy pins
protobuf 5.x, the main project needs 6.x). It plays the Pulumi CLI's part of the analyzer
protocol: it starts the pack's `__main__.py` (the program the CLI starts), sends the stack's
policy config (`Configure`), every resource (`Analyze`) and the whole stack (`AnalyzeStack`),
and reports the diagnostics the pack's own code returns. So the policy code, the config
handling and the enforcement levels are the real ones; only the engine is not.

Exit status: 0 when no mandatory policy is violated, 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACK_DIR = Path(__file__).resolve().parents[1]
# How `mlops plan` prints a value only the provider will know (mlops_platform/mocks.py UNKNOWN_MASK).
PLAN_UNKNOWN = "(known after apply)"


def engine_value(value: Any) -> Any:
    """A plan value as the engine sends it: values known only after apply become unknowns."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

    if value == PLAN_UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, dict):
        return {k: engine_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [engine_value(v) for v in value]
    return value


def urn(plan: dict[str, Any], resource: dict[str, Any]) -> str:
    # Each layer is its own Pulumi project (mlops-infra, mlops-platform, mlops-ml).
    project = f"mlops-{resource['layer']}" if resource.get("layer") else "mlops"
    return f"urn:pulumi:{plan['stack']}::{project}::{resource['type']}::{resource['name']}"


def is_custom(resource: dict[str, Any]) -> bool:
    """A resource the providers create (not a component, which policies never see)."""
    return not resource["type"].startswith("mlops:")


def property_dependencies(
    resource: dict[str, Any], plan: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Which dependency each input came from, as the engine's propertyDependencies say.

    The plan lists dependencies per resource, not per input; an input holding a dependency's id
    (the mocks return `<name>-id`) or its bucket/name came from that dependency.
    """
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in plan["resources"]:
        if is_custom(r):
            by_name.setdefault(r["name"], []).append(r)
    found: dict[str, list[dict[str, Any]]] = {}
    for key, value in resource["inputs"].items():
        if not isinstance(value, str):
            continue
        for dependency in dict.fromkeys(resource["dependsOn"]):
            for dep in by_name.get(dependency, []):
                inputs = dep["inputs"]
                if value in (f"{dependency}-id", inputs.get("bucket"), inputs.get("name")):
                    found.setdefault(key, []).append(dep)
    return found


def policy_config(config: dict[str, Any], levels: dict[str, str]) -> dict[str, Any]:
    """The `ConfigureAnalyzerRequest.policyConfig` the CLI builds from a config file: a policy
    without `enforcementLevel` there keeps its own."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2

    out = {}
    for name, settings in config.items():
        if name not in levels:
            raise ValueError(f"config names no policy of the pack: {name!r}")
        settings = dict(settings)
        level = settings.pop("enforcementLevel", levels[name])
        properties = struct_pb2.Struct()
        properties.update(settings)
        out[name] = analyzer_pb2.PolicyConfig(
            enforcementLevel=analyzer_pb2.EnforcementLevel.Value(level.upper()),
            properties=properties,
        )
    return out


@contextmanager
def analyzer_server() -> Iterator[Any]:
    """The pack's `__main__.py` serving the analyzer protocol, as the CLI starts it."""
    import grpc
    from pulumi.runtime.proto import analyzer_pb2_grpc

    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        try:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
        finally:
            channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str  # mandatory | advisory
    resource: str  # type::name, or "" for the stack
    message: str
    # The Helm release or kustomize tree that creates the object (its resource name), or "".
    source: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "policy": self.policy,
            "level": self.level,
            "resource": self.resource,
            "message": self.message,
            "source": self.source,
        }


def analyze(plan: dict[str, Any], config: dict[str, Any]) -> list[Diagnostic]:
    """Every diagnostic of the pack for `plan` with `config` (a policy config file's content)."""
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2, plugin_pb2

    def struct(values: dict[str, Any]) -> struct_pb2.Struct:
        message = struct_pb2.Struct()
        message.update(engine_value(values))
        return message

    resources = [r for r in plan["resources"] if is_custom(r)]
    # Each layer's program makes its own explicit provider per package.
    providers = {
        (r["type"].split(":")[-1], r.get("layer")): r
        for r in resources
        if r["type"].startswith("pulumi:providers:")
    }
    by_urn = {urn(plan, r): r for r in resources}
    raw: list[tuple[Any, str]] = []
    with analyzer_server() as analyzer:
        info = analyzer.GetAnalyzerInfo(plugin_pb2.PluginInfo())
        levels = {
            p.name: analyzer_pb2.EnforcementLevel.Name(p.enforcementLevel).lower()
            for p in info.policies
        }
        analyzer.Configure(
            analyzer_pb2.ConfigureAnalyzerRequest(policyConfig=policy_config(config, levels))
        )
        stack_resources = []
        for resource in resources:
            if resource["type"].startswith("pulumi:providers:"):
                continue
            provider = providers.get((resource["type"].split(":")[0], resource.get("layer")))
            provider_message = (
                analyzer_pb2.AnalyzerProviderResource(
                    type=provider["type"],
                    properties=struct(provider["inputs"]),
                    urn=urn(plan, provider),
                    name=provider["name"],
                )
                if provider
                else None
            )
            common = {
                "type": resource["type"],
                "name": resource["name"],
                "urn": urn(plan, resource),
                "properties": struct(resource["inputs"]),
                "options": analyzer_pb2.AnalyzerResourceOptions(protect=resource["protect"]),
                "provider": provider_message,
            }
            # A resource policy's diagnostic is about the resource asked about (the CLI
            # attributes it so; the response may leave its urn empty).
            raw += [
                (d, d.urn or common["urn"])
                for d in analyzer.Analyze(analyzer_pb2.AnalyzeRequest(**common)).diagnostics
            ]
            dependencies = [
                urn(plan, r)
                for name in dict.fromkeys(resource["dependsOn"])
                for r in resources
                if r["name"] == name
            ]
            stack_resources.append(
                analyzer_pb2.AnalyzerResource(
                    **common,
                    dependencies=dependencies,
                    propertyDependencies={
                        key: analyzer_pb2.AnalyzerPropertyDependencies(
                            urns=[urn(plan, d) for d in deps]
                        )
                        for key, deps in property_dependencies(resource, plan).items()
                    },
                )
            )
        raw += [
            (d, d.urn)
            for d in analyzer.AnalyzeStack(
                analyzer_pb2.AnalyzeStackRequest(resources=stack_resources)
            ).diagnostics
        ]
    diagnostics = []
    for d, about in raw:
        target = by_urn.get(about)
        diagnostics.append(
            Diagnostic(
                policy=d.policyName,
                level=analyzer_pb2.EnforcementLevel.Name(d.enforcementLevel).lower(),
                resource=f"{target['type']}::{target['name']}" if target else "",
                # The analyzer prefixes the policy's description; the finding is the rest.
                message=d.message.split("\n", 1)[-1],
                source=(target or {}).get("renderedBy", ""),
            )
        )
    return sorted(
        diagnostics, key=lambda d: (d.level != "mandatory", d.policy, d.resource, d.message)
    )


def render_markdown(stack: str, diagnostics: list[Diagnostic], policies: int) -> str:
    mandatory = [d for d in diagnostics if d.level == "mandatory"]
    advisory = [d for d in diagnostics if d.level == "advisory"]
    verdict = "❌ blocked" if mandatory else "✅ passes"
    lines = [
        f"### Policy pack on `{stack}`: {verdict}",
        "",
        f"{policies} policies; {len(mandatory)} mandatory violation(s), {len(advisory)} "
        "advisory finding(s).",
    ]
    for title, group in (("Mandatory", mandatory), ("Advisory", advisory)):
        if not group:
            continue
        lines += ["", f"#### {title}", "", "| policy | resource | finding |", "|---|---|---|"]
        for d in group:
            message = d.message.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{d.policy}` | `{d.resource or '(stack)'}` | {message} |")
    return "\n".join(lines) + "\n"


def render_text(stack: str, diagnostics: list[Diagnostic], policies: int) -> str:
    lines = []
    for d in diagnostics:
        where = d.resource or "(stack)"
        lines.append(f"{d.level.upper()} {d.policy} @ {where}: {d.message}")
    mandatory = sum(d.level == "mandatory" for d in diagnostics)
    lines.append(
        f"{stack}: {policies} policies, {mandatory} mandatory violation(s), "
        f"{len(diagnostics) - mandatory} advisory finding(s)"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from crossguard.pack import POLICIES

    parser = argparse.ArgumentParser(prog="python -m crossguard.offline")
    parser.add_argument("plan", type=Path, help="`mlops plan --format json` output")
    parser.add_argument("--config", type=Path, help="policy config file (config/<stack>.json)")
    parser.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    args = parser.parse_args(argv)
    try:
        plan = json.loads(args.plan.read_text())
        config = json.loads(args.config.read_text()) if args.config else {}
        diagnostics = analyze(plan, config)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stack = plan.get("stack", "?")
    if args.format == "json":
        print(json.dumps([d.as_json() for d in diagnostics], indent=2))
    else:
        render = render_markdown if args.format == "markdown" else render_text
        print(render(stack, diagnostics, len(POLICIES)), end="")
    return 1 if any(d.level == "mandatory" for d in diagnostics) else 0


if __name__ == "__main__":
    raise SystemExit(main())
