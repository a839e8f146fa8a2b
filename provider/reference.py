"""The README's reference tables (inputs and outputs of every component), generated from the
package schema the analyzer infers. `uv run mlops docs` runs this in its own interpreter (as
`python provider/reference.py [--check]`: the provider host's protos clash with kfp's);
tests/provider fails when they are stale. The markers and table cells are `mlops_platform.docs`'s."""

import json
import sys
from pathlib import Path
from typing import Any

from platform_components import COMPONENTS, PACKAGE, package_version
from pulumi.provider.experimental.component import ComponentProvider

from mlops_platform.docs import cell, replace_section

README = Path(__file__).with_name("README.md")
SECTION = "reference"


def schema() -> dict[str, Any]:
    """The schema `component_provider_host` serves (the same class and analysis)."""
    return json.loads(ComponentProvider(COMPONENTS, PACKAGE, None, package_version()).schema)


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit(":", 1)[-1]
    if prop["type"] == "array":
        return f"{_type(prop['items'])}[]"
    if prop["type"] == "object":
        return f"map of {_type(prop['additionalProperties'])}"
    return prop["type"]


def reference(package: dict[str, Any]) -> str:
    lines: list[str] = []
    for token, resource in package["resources"].items():
        lines += ["", f"### `{token}`", "", cell(resource.get("description")), ""]
        lines += ["| input | type | required | plain | description |", "|---|---|---|---|---|"]
        required = set(resource.get("requiredInputs", []))
        for name, prop in resource["inputProperties"].items():
            lines.append(
                f"| `{name}` | {_type(prop)} | {'yes' if name in required else ''} | "
                f"{'yes' if prop.get('plain') else ''} | {cell(prop.get('description'))} |"
            )
        lines += ["", "| output | type | description |", "|---|---|---|"]
        for name, prop in resource["properties"].items():
            lines.append(f"| `{name}` | {_type(prop)} | {cell(prop.get('description'))} |")
    for token, typ in package.get("types", {}).items():
        values = ", ".join(f"`{v['value']}`" for v in typ.get("enum", []))
        lines += ["", f"`{token}`: {values}."]
    return "\n".join(lines)


def updated(readme: str, package: dict[str, Any]) -> str:
    return replace_section(readme, SECTION, reference(package), str(README))


if __name__ == "__main__":
    current = README.read_text()
    new = updated(current, schema())
    if "--check" in sys.argv[1:]:
        if new != current:
            print(README)
            sys.exit(1)
    elif new != current:
        README.write_text(new)
        print(f"wrote {README}")
