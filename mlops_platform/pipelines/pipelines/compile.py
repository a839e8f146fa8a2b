"""Compile the pipelines to the committed YAML: `uv run python -m mlops_platform.pipelines.pipelines.compile`.

`--check` compiles to memory and exits 1 when a committed file differs (what the golden test
does), so CI can also run it directly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# pipeline function -> committed YAML beside the sources
TARGETS = {
    "training_pipeline": HERE / "training_pipeline.yaml",
    "drift_pipeline": HERE / "drift_pipeline.yaml",
    "windows_drift_pipeline": HERE / "windows_drift_pipeline.yaml",
    "batch_scoring_pipeline": HERE / "batch_scoring_pipeline.yaml",
    "feature_store_training_pipeline": HERE / "feature_store_training_pipeline.yaml",
}


def pipelines() -> dict:
    from mlops_platform.pipelines.pipelines.batch_scoring import batch_scoring_pipeline
    from mlops_platform.pipelines.pipelines.drift import drift_pipeline
    from mlops_platform.pipelines.pipelines.feature_store_training import (
        feature_store_training_pipeline,
    )
    from mlops_platform.pipelines.pipelines.training import training_pipeline
    from mlops_platform.pipelines.pipelines.windows_drift import windows_drift_pipeline

    return {
        "training_pipeline": training_pipeline,
        "drift_pipeline": drift_pipeline,
        "windows_drift_pipeline": windows_drift_pipeline,
        "batch_scoring_pipeline": batch_scoring_pipeline,
        "feature_store_training_pipeline": feature_store_training_pipeline,
    }


def compile_to_text(name: str) -> str:
    """The compiled YAML of one pipeline, normalised: the kfp SDK version line is dropped so
    that the golden files only change when the pipeline does."""
    from kfp import compiler

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"{name}.yaml"
        compiler.Compiler().compile(pipelines()[name], str(target))
        text = target.read_text()
    return normalise(text)


def normalise(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if "sdkVersion:" not in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, path in TARGETS.items():
        text = compile_to_text(name)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parents[2])}")
    if stale:
        print(
            f"stale compiled pipelines: {', '.join(stale)}; run "
            "`uv run python -m mlops_platform.pipelines.pipelines.compile`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
