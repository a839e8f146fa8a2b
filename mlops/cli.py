"""`mlops` command line: one subcommand per module, each with `add_arguments` and `main`.

Subcommand modules keep heavy imports (pulumi, mlflow, kfp, sklearn) inside `main`, so that
`mlops --help` and argument errors stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("mlops.plan", "show every resource `pulumi up` would register, offline"),
    "demo": ("kfp_pipelines.demo", "train, serve, detect drift and retrain on one machine"),
    "serve": ("serving_images.model_server.cli", "serve one MLflow model over HTTP"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_main=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
