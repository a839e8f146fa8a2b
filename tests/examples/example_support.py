"""Run an example program (`examples/<name>/__main__.py`) as `pulumi preview` would, under the
project's recording mocks, with the project name its own Pulumi.yaml gives."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import runpy
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlops_platform import mocks

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def project_file(example: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / example / "Pulumi.yaml").read_text())


class ExampleMocks(mocks.RecordingMocks):
    """The project's mocks, answering some invokes with `answers` (token -> result) and
    recording every invoke's token and arguments."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None, stacks=None):
        super().__init__(stacks)
        self.answers = answers or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append((args.token, dict(args.args)))
        if args.token in self.answers:
            return self.answers[args.token]
        return super().call(args)


def run_example(
    example: str,
    config: dict[str, Any],
    *,
    program_dir: str | None = None,
    answers: dict[str, dict[str, Any]] | None = None,
    stack: str = "example",
    stacks: dict[str, mocks.Exports] | None = None,
    project: str | None = None,
) -> tuple[mocks.RecordingMonitor, ExampleMocks]:
    """`config`: full keys (`aws:region`) to values (structured ones are passed as JSON, as the
    engine does). `program_dir`: the folder of the Pulumi.yaml when it is not the example's;
    `project`: another project name than the Pulumi.yaml's."""
    folder = EXAMPLES / example / (program_dir or "")
    settings = yaml.safe_load((folder / "Pulumi.yaml").read_text())
    main = (folder / settings.get("main", ".") / "__main__.py").resolve()
    asyncio.set_event_loop(asyncio.new_event_loop())
    # `set_mocks` keeps the root stack of a program run earlier in this process: without a new
    # one, this program's `pulumi.export`s would land beside the earlier program's outputs.
    pulumi.runtime.settings.set_root_resource(None)  # type: ignore[arg-type]
    example_mocks = ExampleMocks(answers, stacks)
    monitor = mocks.RecordingMonitor(example_mocks)
    pulumi.runtime.set_mocks(
        example_mocks,
        project=project or settings["name"],
        stack=stack,
        preview=True,
        monitor=monitor,
        organization=mocks.ORGANIZATION,
    )
    engine_config = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()
    }
    pulumi.runtime.set_all_config(engine_config, [])
    _sync_await(run_pulumi_func(lambda: runpy.run_path(str(main), run_name="__main__")))
    monitor.exports = mocks._collect_exports()
    return monitor, example_mocks


def types_of(monitor: mocks.RecordingMonitor) -> set[str]:
    return {r.type for r in monitor.recorded}


def single(monitor: mocks.RecordingMonitor, typ: str) -> mocks.Recorded:
    found = monitor.of_type(typ)
    assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
    return found[0]


def module_of(example: str) -> ModuleType:
    """The example's program as a module, without running it (its last line calls `main()`)."""
    path = EXAMPLES / example / "__main__.py"
    source = path.read_text()
    assert source.endswith("\nmain()\n"), f"{path} should end by calling main()"
    name = f"example_{example.replace('-', '_')}"
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, None))
    sys.modules[name] = module  # dataclasses look their module up there
    exec(compile(source.removesuffix("main()\n"), str(path), "exec"), module.__dict__)
    return module


def readme_config_keys(example: str) -> set[str]:
    """The keys of the README's config table (rows starting with a `key`)."""
    readme = (EXAMPLES / example / "README.md").read_text()
    config = readme.split("## Config", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", config, flags=re.MULTILINE))
