"""`mlops plan`: what `pulumi up` would register for a stack, with no CLI, cloud or cluster.

The real program (`mlops_platform.program.main`) runs under recording mocks with the stack file's config
handed over exactly as the engine would (structured values as JSON, secure values as secrets).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACK_TYPE = "pulumi:pulumi:Stack"
# Resources that are not Kubernetes objects even though their token starts with `kubernetes:`.
NOT_MANIFESTS = ("kubernetes:helm.sh/", "kubernetes:yaml:", "kubernetes:kustomize:")


# One Pulumi project per layer, `deploy/<layer>/Pulumi.yaml`; they share the stack files.
DEPLOY_DIR = "deploy"


def project_root(start: Path | None = None) -> Path:
    """The checkout holding deploy/infra/Pulumi.yaml: the working directory or a parent (also
    from inside deploy/<layer>), else this checkout."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DEPLOY_DIR / "infra" / "Pulumi.yaml").is_file():
            return folder
    return Path(__file__).resolve().parents[1]


def stack_file_path(stack: str, root: Path | None = None) -> Path:
    """`stacks/Pulumi.<stack>.yaml`, where every layer's project keeps its stack config."""
    import yaml

    project_dir = (root or project_root()) / DEPLOY_DIR / "infra"
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    return (project_dir / project.get("stackConfigDir", ".")).resolve() / f"Pulumi.{stack}.yaml"


@dataclass
class PlannedResource:
    type: str
    name: str
    parent: str | None
    component: str
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    depends_on: list[str] = field(default_factory=list)
    layer: str = ""
    urn: str = ""
    aliases: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "component": self.component,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "dependsOn": self.depends_on,
            "inputs": self.inputs,
        }


@dataclass
class Plan:
    stack: str
    stack_file: str
    resources: list[PlannedResource]
    layers: list[str] = field(default_factory=list)

    @property
    def counts_by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    @property
    def counts_by_component(self) -> dict[str, int]:
        return dict(Counter(r.component for r in self.resources))

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "layers": self.layers,
            "stackFile": self.stack_file,
            "total": len(self.resources),
            "countsByComponent": self.counts_by_component,
            "countsByType": self.counts_by_type,
            "resources": [r.as_json() for r in self.resources],
        }


def _name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _type_of(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def build_plan(stack: str, stack_file_path: Path, layers: Sequence[str] | None = None) -> Plan:
    """Validate the stack file, run each layer's program under mocks in deploy order, and
    collect what it registered: all layers, or those named in `layers` (the earlier layers are
    still run, unshown, so their exports feed the `StackReference`s of the later ones).

    Raises `config.ConfigError` before anything runs when the config is invalid.
    """
    from mlops_platform import config
    from mlops_platform.wiring import LAYERS

    wanted: list[str] = (
        list(LAYERS) if not layers else [layer for layer in LAYERS if layer in layers]
    )
    stack_file = config.read_stack_file(stack_file_path)
    config.validate(stack_file.values, stack_file.path, stack_file.secret_keys)
    resources: list[PlannedResource] = []
    for layer, monitor in run_layers(
        stack, stack_file.engine_config(), sorted(stack_file.secret_keys), until=wanted[-1]
    ):
        if layer in wanted:
            resources += _planned(monitor, layer)
    # Registration order depends on output resolution; a plan must read the same every run.
    rank: dict[str, int] = {layer: index for index, layer in enumerate(LAYERS)}
    resources.sort(
        key=lambda r: (
            rank[r.layer],
            r.component != "(stack)",
            r.component,
            r.parent is not None,
            r.type,
            r.name,
        )
    )
    return Plan(stack=stack, stack_file=_shown(stack_file_path), resources=resources, layers=wanted)


def _shown(path: Path) -> str:
    """The stack file as its user names it: relative to the working directory when it is
    under it, so a plan (and the policy pack's fixtures) reads the same in every checkout."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_layers(
    stack: str,
    config: dict[str, str],
    secret_keys: Sequence[str] = (),
    until: str | None = None,
) -> list[tuple[str, Any]]:
    """Run the layers' programs under mocks in deploy order (up to `until`), each layer's
    exports answering the next layers' `StackReference`s: [(layer, RecordingMonitor)]."""
    from mlops_platform import handoff, mocks, program
    from mlops_platform.wiring import LAYERS

    layers = LAYERS if until is None else LAYERS[: LAYERS.index(until) + 1]
    exported: dict[str, mocks.Exports] = {}
    monitors: list[tuple[str, Any]] = []
    for layer in layers:
        monitor = mocks.run(
            program.main,
            project=handoff.project_of(layer),
            stack=stack,
            config=config,
            secret_keys=list(secret_keys),
            stacks=exported,
        )
        exported[handoff.reference_name(mocks.ORGANIZATION, layer, stack)] = monitor.exports
        for record in monitor.recorded:
            record.layer = layer
        monitors.append((layer, monitor))
    return monitors


def _planned(monitor: Any, layer: str) -> list[PlannedResource]:
    by_urn = {r.urn: r for r in monitor.recorded}

    def top_component(record: Any) -> str:
        top = record
        while top.parent in by_urn:
            top = by_urn[top.parent]
        if top is record and record.custom:
            return "(stack)"
        return f"{top.type} {top.name}"

    return [
        PlannedResource(
            type=r.type,
            name=r.name,
            parent=None if not r.parent or _type_of(r.parent) == STACK_TYPE else _name_of(r.parent),
            component=top_component(r),
            inputs=r.masked_inputs,
            protect=r.protect,
            retain_on_delete=r.retain_on_delete,
            depends_on=sorted(_name_of(d) for d in r.depends_on),
            layer=layer,
            urn=r.urn,
            aliases=list(r.aliases),
        )
        for r in monitor.recorded
    ]


def _summary(inputs: dict[str, Any], width: int = 90) -> str:
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _groups(plan: Plan) -> dict[tuple[str, str], list[PlannedResource]]:
    groups: dict[tuple[str, str], list[PlannedResource]] = {}
    for resource in plan.resources:
        groups.setdefault((resource.layer, resource.component), []).append(resource)
    return groups


def render_table(plan: Plan) -> str:
    lines = [
        f"Stack {plan.stack} ({plan.stack_file}): {len(plan.resources)} resources in layers "
        + ", ".join(
            f"{layer} [{sum(r.layer == layer for r in plan.resources)}]" for layer in plan.layers
        )
    ]
    for (layer, component), resources in _groups(plan).items():
        lines.append("")
        lines.append(f"{layer}: {component}  [{len(resources)}]")
        for r in resources:
            flags = " protected" if r.protect else ""
            lines.append(f"  {r.type:<55} {r.name:<40} parent={r.parent or '-'}{flags}")
            lines.append(f"      {_summary(r.inputs)}")
    lines.append("")
    lines.append("Counts by type:")
    lines += [f"  {count:>4}  {typ}" for typ, count in plan.counts_by_type.items()]
    return "\n".join(lines)


def render_markdown(plan: Plan) -> str:
    lines = [
        f"# Plan for stack `{plan.stack}`",
        "",
        f"{len(plan.resources)} resources from `{plan.stack_file}`, layers "
        f"{', '.join(plan.layers)}.",
    ]
    for (layer, component), resources in _groups(plan).items():
        lines += ["", f"## {layer}: `{component}` ({len(resources)})", ""]
        lines += ["| type | name | parent | key inputs |", "|---|---|---|---|"]
        for r in resources:
            summary = _summary(r.inputs, 120).replace("|", "\\|")
            lines.append(f"| `{r.type}` | `{r.name}` | {r.parent or '-'} | `{summary}` |")
    lines += ["", "## Counts by type", "", "| type | count |", "|---|---|"]
    lines += [f"| `{typ}` | {count} |" for typ, count in plan.counts_by_type.items()]
    return "\n".join(lines)


def kubernetes_objects(plan: Plan) -> list[dict[str, Any]]:
    """Every Kubernetes object the stack creates directly, as the API server would receive it."""
    objects = []
    for r in plan.resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith(NOT_MANIFESTS):
            continue
        obj = dict(r.inputs)
        if "apiVersion" not in obj or "kind" not in obj:
            continue
        metadata = dict(obj.get("metadata") or {})
        # The provider auto-names objects without a name (name plus a random suffix).
        metadata.setdefault("name", r.name)
        obj["metadata"] = metadata
        objects.append(obj)
    return objects


def _file_stem(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    parts = [obj.get("kind", "").lower(), meta.get("namespace"), meta.get("name")]
    return "-".join(str(p) for p in parts if p).replace("/", "_")


def write_manifests(plan: Plan, directory: Path, rendered: Sequence[Any] = ()) -> list[Path]:
    """One YAML file per object: those the program creates directly, then those of every
    rendered Helm release or kustomize tree (`mlops_platform.render.Rendered`, written as the renderer
    printed them), named by release."""
    import yaml

    # libyaml's emitter when present: the charts' CRDs alone are megabytes of YAML.
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    directory.mkdir(parents=True, exist_ok=True)
    named = [("", obj, None) for obj in kubernetes_objects(plan)]
    for source in rendered:
        texts = source.texts or [None] * len(source.objects)
        named += [(f"{source.source}-", o, t) for o, t in zip(source.objects, texts, strict=True)]
    written = []
    for index, (prefix, obj, text) in enumerate(named):
        path = directory / f"{index:03d}-{prefix}{_file_stem(obj)}.yaml"
        path.write_text(text or yaml.dump(obj, Dumper=dumper, sort_keys=False))
        written.append(path)
    return written


RENDERERS = {
    "table": render_table,
    "markdown": render_markdown,
    "json": lambda plan: json.dumps(plan.as_json(), indent=2, sort_keys=True),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name, e.g. local, dev, prod")
    parser.add_argument(
        "--stack-file",
        type=Path,
        help="plan this stack file instead of stacks/Pulumi.<stack>.yaml",
    )
    parser.add_argument(
        "--layer",
        action="append",
        choices=["infra", "platform", "ml"],
        help="plan only this layer (repeatable); the earlier layers still run, unshown, to feed "
        "its stack references. Default: every layer, in deploy order",
    )
    parser.add_argument("--format", choices=sorted(RENDERERS), default="table")
    parser.add_argument(
        "--render-manifests",
        type=Path,
        metavar="DIR",
        help="write every Kubernetes object the stack creates (directly, and inside its Helm "
        "releases and kustomize trees) as YAML into DIR, one file per object",
    )
    parser.add_argument(
        "--no-render",
        action="store_true",
        help="skip rendering and validating the objects of Helm releases and kustomize trees "
        "(needs MLOPS_CHARTS_DIR, MLOPS_CRDS_DIR and the helm/kubectl dev dependency)",
    )
    parser.add_argument(
        "--policies",
        action="store_true",
        help="run the policy pack (policies/) on the plan with the stack's policy config; "
        "exit 1 on a mandatory violation",
    )
    parser.add_argument(
        "--diff",
        type=Path,
        metavar="BASE.json",
        help="show what changes against a saved `--format json` plan (e.g. main's)",
    )


def main(args: argparse.Namespace) -> int:
    from mlops_platform import cost
    from mlops_platform.config import ConfigError

    path = args.stack_file or stack_file_path(args.stack)
    try:
        plan = build_plan(args.stack, path, args.layer)
        estimate, cost_change = cost.report(plan.as_json(), args.diff)
    except (ConfigError, cost.CostError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        # The plan document with its cost estimate beside the resources (`cost`).
        document = {**plan.as_json(), "cost": cost.as_json(estimate, cost_change)}
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(RENDERERS[args.format](plan))
    report = None
    if not args.no_render:
        from mlops_platform import render
        from mlops_platform.binaries import ToolMissing

        try:
            report = render.check(plan.resources, kubernetes_objects(plan))
        except (render.RenderError, ToolMissing) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        # The JSON document stays the plan alone (the policy pack's fixtures are that document)
        # and stderr stays quiet when every object is valid; invalid ones are listed below.
        if args.format != "json":
            print("\n".join(report.lines()))
    if args.format != "json":
        from mlops_platform.components.images import image_lock_advisory

        print(image_lock_advisory())
        # Right before the diff and policies: the PR comment shows from here on.
        render_cost = cost.render_markdown if args.format == "markdown" else cost.render_text
        print(render_cost(estimate, cost_change))
    if args.render_manifests:
        written = write_manifests(plan, args.render_manifests, report.sources[1:] if report else ())
        print(
            f"wrote {len(written)} Kubernetes manifests to {args.render_manifests}", file=sys.stderr
        )
    invalid = bool(report and report.problems)
    if report and invalid:
        print(f"error: {len(report.problems)} invalid Kubernetes objects:", file=sys.stderr)
        for problem in report.problems:
            print(f"  - {problem}", file=sys.stderr)
    # an invalid object exits 1 like a mandatory policy violation; a usage error (2) wins
    return max(governance(args, plan, report.sources[1:] if report else ()), int(invalid))


def governance(args: argparse.Namespace, plan: Plan, rendered: Sequence[Any] = ()) -> int:
    """`--diff` and `--policies`, after the plan: reports in markdown with `--format markdown`
    (for a PR comment), else text; on stderr when the plan itself is JSON on stdout."""
    from mlops_platform import governance as gov

    if not (args.diff or args.policies):
        return 0
    markdown = args.format == "markdown"
    out = sys.stderr if args.format == "json" else sys.stdout
    status = 0
    try:
        if args.diff:
            diff = gov.diff_plans(gov.read_base(args.diff), plan.as_json(), str(args.diff))
            print(gov.render_diff(diff, markdown), file=out)
        if args.policies:
            status, report = gov.run_policy_pack(
                plan.as_json(),
                plan.stack,
                project_root(),
                "markdown" if markdown else "text",
                rendered,
            )
            print(report, file=out, end="")
    except gov.GovernanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status
