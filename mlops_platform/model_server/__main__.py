"""Entry point of the image: `python -m mlops_platform.model_server` (settings from env)."""

from __future__ import annotations

import argparse
import sys

from mlops_platform.model_server.cli import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="model-server", description="Serve one MLflow model.")
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
