"""`mlops` command line: one subcommand per module, each with `add_arguments` and `main`.

Only the chosen subcommand's module is imported, and those modules keep heavy imports (pulumi,
mlflow, kfp, sklearn) inside `main`, so `mlops --help` and argument errors stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("mlops_platform.plan", "show every resource `pulumi up` would register, offline"),
    "demo": (
        "mlops_platform.pipelines.demo",
        "train, serve, detect drift and retrain on one machine",
    ),
    "serve": ("mlops_platform.model_server.cli", "serve one MLflow model over HTTP"),
    "teardown-check": (
        "mlops_platform.teardown",
        "before destroying the infra layer: wait until the cloud resources Kubernetes made "
        "(load balancers, volumes) are gone",
    ),
    "schema": (
        "mlops_platform.schema",
        "write the JSON Schema of stack files (stacks/stack.schema.json)",
    ),
    "docs": (
        "mlops_platform.docs",
        "write the generated reference sections: component READMEs' inputs and outputs, "
        "stacks/REFERENCE.md, the provider README (--check: only say which are stale)",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of `command` (the others only listed)."""
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="mlops-platform: plan a stack offline, run the ML demo, serve a model.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    return int(args._main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
