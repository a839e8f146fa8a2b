"""`mlops schema`: write the JSON Schema of stack files, for editor completion and CI checks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "stacks" / "stack.schema.json"


def render() -> str:
    from mlops_platform.config import json_schema

    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH, help="where to write it")


def main(args: argparse.Namespace) -> int:
    args.output.write_text(render())
    print(f"wrote {args.output}")
    return 0
