"""Write crossguard/aws_taggable_types.txt: every pulumi-aws resource type that takes tags.

Run from the main environment (it has pulumi-aws; the policy pack's own environment does not):
    uv run python policies/tools/aws_taggable_types.py
The list is read from the generated SDK source (a resource with a `tags_all` property is
taggable) rather than by importing ~900 modules, which takes minutes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TOKEN = re.compile(r"__self__\)\.__init__\(\s*'(aws:[^']+)'")
OUTPUT = Path(__file__).resolve().parents[1] / "crossguard" / "aws_taggable_types.txt"


def taggable_types(sdk_dir: Path) -> list[str]:
    found = set()
    for path in sdk_dir.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "def tags_all(" in text:
            found.update(TOKEN.findall(text))
    return sorted(found)


def render(sdk_dir: Path) -> str:
    return "\n".join(taggable_types(sdk_dir)) + "\n"


def main() -> int:
    import pulumi_aws

    OUTPUT.write_text(render(Path(pulumi_aws.__file__).parent))
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
