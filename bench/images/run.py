"""Benchmark: image sizes and cold start to ready of the model server container.

Sizes are those of every image images/build.py builds (model-server, model-server-explain,
platform, feast); the cold start is the default model server's.

Builds the images if needed (images/build.py: local Debian base, layer cache), then, for
`--runs` rounds, measures the time from `docker run` to the first 200 on `/v2/health/ready` of
the model server container run as its Deployment runs it (read-only root, tmpfs /tmp, UID 10001,
images/containers.py), loading the model two ways:
- `registry`: `models:/churn@champion` from a real `mlflow server` on loopback (download + load),
- `mounted`: the same model folder bind-mounted read-only (no download),
and the plain `mlops serve` process on the same registry model, for reference (no container).
Writes bench/results/images.json and bench/results/images.md.
Usage: uv run python bench/images/run.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from images.build import IMAGES, build, image_size  # noqa: E402
from images.containers import start_model_server, wait_ready  # noqa: E402
from tests.serving.serving_support import (  # noqa: E402
    build_churn_model,
    free_port,
    register_version,
    start_server,
    start_tracking_server,
    stop_server,
    stop_tracking_server,
)
from tests.serving.serving_support import wait_ready as wait_process_ready  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MB = 1_000_000


def cold_start(image: str, model_uri: str, env: dict[str, str], mounts: list) -> dict:
    started = time.perf_counter()
    container = start_model_server(image, free_port(), model_uri, env=env, mounts=mounts)
    try:
        wait_ready(container, timeout=180)
        ready = time.perf_counter() - started
        exit_code, stop_seconds = container.stop(timeout=30)
    finally:
        container.remove()
    if exit_code != 0:
        raise SystemExit(f"{image} exited {exit_code} on docker stop")
    return {"ready_s": ready, "stop_s": stop_seconds}


def plain_start(model_uri: str, env: dict[str, str], folder: Path) -> float:
    started = time.perf_counter()
    server = start_server(model_uri, folder, env=env, wait=False)
    try:
        wait_process_ready(server, timeout=180)
        return time.perf_counter() - started
    finally:
        stop_server(server)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    report = build()
    server_image = str(report["model-server"]["tag"])
    sizes = {
        "base (local Debian bookworm + python3)": image_size(str(report["bases"]["base"])),
        **{name: image_size(str(report[name]["tag"])) for name in IMAGES},
    }
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        folder = Path(tmp)
        tracking = start_tracking_server(folder / "mlflow")
        try:
            model = build_churn_model(folder)
            register_version(tracking.uri, model["path"], "churn", alias="champion")
            env = {"MLFLOW_TRACKING_URI": tracking.uri}
            rounds: dict[str, list[dict]] = {"registry": [], "mounted": [], "plain": []}
            for i in range(args.runs):
                rounds["registry"].append(
                    cold_start(server_image, "models:/churn@champion", env, [])
                )
                rounds["mounted"].append(
                    cold_start(
                        server_image,
                        "/models/churn",
                        {},
                        [(Path(model["path"]), "/models/churn", True)],
                    )
                )
                plain_folder = folder / f"plain-{i}"
                plain_folder.mkdir()
                ready = plain_start("models:/churn@champion", env, plain_folder)
                rounds["plain"].append({"ready_s": ready})
        finally:
            stop_tracking_server(tracking)
    load_after = os.getloadavg()

    result = {
        "benchmark": "model server image: sizes and cold start to ready",
        "command": f"uv run python bench/images/run.py --runs {args.runs}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "load_average": {
            "start": [round(x, 2) for x in load_before],
            "end": [round(x, 2) for x in load_after],
        },
        "sizes_bytes": sizes,
        "cold_start_ready_s": {k: summary([r["ready_s"] for r in v]) for k, v in rounds.items()},
        "docker_stop_idle_s": summary(
            [r["stop_s"] for r in rounds["registry"] + rounds["mounted"]]
        ),
        "runs": rounds,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "images.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "images.md").write_text(markdown(result, args.runs))
    print((RESULTS / "images.md").read_text())
    return 0


def markdown(result: dict, runs: int) -> str:
    sizes = result["sizes_bytes"]
    base = sizes["base (local Debian bookworm + python3)"]
    cold = result["cold_start_ready_s"]
    lines = [
        "# Images: sizes and model server cold start",
        "",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}; load average at start {result['load_average']['start']},"
        f" at end {result['load_average']['end']} (2 cores shared with other engineers' jobs)",
        f"- command: `{result['command']}` ({runs} rounds, first included)",
        "- images: built by `images/build.py` on the local Debian bookworm base (debootstrap +"
        " `docker import`; no registry is reachable here); the release workflow builds the same"
        " Dockerfiles on the pinned official `python:3.11-slim-bookworm`",
        "",
        "| image | size (uncompressed) | over the base |",
        "| --- | ---: | ---: |",
    ]
    for name, size in sizes.items():
        over = "" if size == base else f"{(size - base) / MB:.0f} MB"
        lines.append(f"| {name} | {size / MB:.0f} MB | {over} |")
    if "model-server-explain" in sizes:
        extra = sizes["model-server-explain"] - sizes["model-server"]
        lines += [
            "",
            f"`model-server-explain` is `model-server` plus one layer of {extra / MB:.0f} MB (shap,"
            " numba, llvmlite): a node running both stores and pulls that layer only.",
        ]
    lines += [
        "",
        "Cold start: from `docker run` to the first 200 on `/v2/health/ready` (container read-only,"
        " tmpfs /tmp, UID 10001, all capabilities dropped, host network on loopback); model:"
        " the serving tests' churn pipeline (scikit-learn, 4 columns, 400 rows).",
        "",
        "| start | median s | min s | max s |",
        "| --- | ---: | ---: | ---: |",
    ]
    labels = {
        "registry": "container, `models:/churn@champion` from MLflow on loopback",
        "mounted": "container, model folder mounted read-only",
        "plain": "plain `mlops serve` process (no container), from MLflow",
    }
    for key, label in labels.items():
        s = cold[key]
        lines.append(f"| {label} | {s['median']} | {s['min']} | {s['max']} |")
    stop = result["docker_stop_idle_s"]
    lines += [
        "",
        f"`docker stop` of an idle container (SIGTERM, drain, exit 0): median {stop['median']} s,"
        f" max {stop['max']} s.",
        "",
        "Reproduce: `make bench-images` (or `uv run python bench/images/run.py`); needs a running"
        " Docker engine (`.ci/run` shows how to start one).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
