"""The README's reference tables, generated from the pack (`python -m crossguard.readme` rewrites
them; a test fails when README.md is stale). Prose around the tables stays hand-written."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pulumi_policy import StackValidationPolicy

from crossguard import aws, data, gcp, identity, kubernetes, ml, network, protection, supply_chain
from crossguard.pack import POLICIES

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
CONFIG = ROOT / "config"
STACKS = ("local", "dev", "staging", "prod", "prod-gcp")
AREAS = {
    policy.name: area
    for module, area in (
        (aws, "AWS storage and compute"),
        (gcp, "GCP storage and compute"),
        (kubernetes, "Kubernetes"),
        (protection, "protection"),
        (data, "data services"),
        (network, "network exposure"),
        (identity, "identity"),
        (supply_chain, "supply chain"),
        (ml, "ML workloads and cost"),
    )
    for policy in module.POLICIES
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def stack_configs() -> dict[str, dict]:
    return {s: json.loads((CONFIG / f"{s}.json").read_text()) for s in STACKS}


def policies_table() -> str:
    configs = stack_configs()
    rows = [
        "| policy | area | kind | default | " + " | ".join(STACKS) + " | enforces |",
        "|---|---|---|---|" + "---|" * len(STACKS) + "---|",
    ]
    for policy in POLICIES:
        kind = "stack" if isinstance(policy, StackValidationPolicy) else "resource"
        default = policy.enforcement_level.value
        levels = []
        for stack in STACKS:
            level = configs[stack].get(policy.name, {}).get("enforcementLevel", default)
            levels.append(level if level == default else f"**{level}**")
        area = AREAS[policy.name]
        rows.append(
            f"| `{policy.name}` | {area} | {kind} | {default} | "
            + " | ".join(levels)
            + f" | {_cell(policy.description)} |"
        )
    return "\n".join(rows)


def settings_table() -> str:
    rows = ["| policy | setting | default | meaning |", "|---|---|---|---|"]
    for policy in POLICIES:
        schema = policy.config_schema
        if schema is None:
            continue
        for index, (key, spec) in enumerate(schema.properties.items()):
            name = f"`{policy.name}`" if index == 0 else ""
            default = json.dumps(spec.get("default"))
            shown = "see the policy's module" if len(default) > 60 else f"`{_cell(default)}`"
            rows.append(f"| {name} | `{key}` | {shown} | {_cell(spec.get('description', ''))} |")
    return "\n".join(rows)


def stacks_table() -> str:
    """Every stack's settings but the exceptions (their own table)."""
    rows = ["| stack | policy | settings |", "|---|---|---|"]
    for stack, config in stack_configs().items():
        first = True
        for policy, settings in sorted(config.items()):
            shown = ", ".join(
                f"`{k}`: `{json.dumps(v)}`" for k, v in settings.items() if k != "exceptions"
            )
            if shown:
                rows.append(f"| {stack if first else ''} | `{policy}` | {shown} |")
                first = False
    return "\n".join(rows)


def exceptions_table() -> str:
    """Each declared exception once, with the stacks that declare it."""
    declared: dict[tuple[str, str, str, str], list[str]] = {}
    for stack, config in stack_configs().items():
        for policy, settings in sorted(config.items()):
            for entry in settings.get("exceptions", []):
                key = (
                    policy,
                    ", ".join(f"`{r}`" for r in entry["resources"]),
                    ", ".join(f"`{c}`" for c in entry["checks"]),
                    entry["reason"],
                )
                declared.setdefault(key, []).append(stack)
    rows = ["| policy | objects | checks | stacks | reason |", "|---|---|---|---|---|"]
    for (policy, resources, checks, reason), stacks in declared.items():
        rows.append(
            f"| `{policy}` | {resources} | {checks} | {', '.join(stacks)} | {_cell(reason)} |"
        )
    return "\n".join(rows)


TABLES = {
    "policies": policies_table,
    "settings": settings_table,
    "stacks": stacks_table,
    "exceptions": exceptions_table,
}


def render(text: str) -> str:
    for name, build in TABLES.items():
        pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", flags=re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"README.md has no <!-- {name}:begin/end --> markers")
        text = pattern.sub(lambda m, build=build: m.group(1) + build() + "\n" + m.group(2), text)
    return text


def main() -> int:
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
