"""Benchmark: `mlops plan --stack prod` as a whole process — wall time and peak memory.

Runs the installed `mlops` console script several times (first run included, so import and
bytecode costs count) and writes bench/results/plan.json and bench/results/plan.md.
Usage: uv run python bench/plan/run.py [--stack prod] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
TARGET_SECONDS = 10.0
TARGET_MB = 500.0


def run_once(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process, measured by the OS."""
    started = time.perf_counter()
    pid = os.posix_spawn(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed with {os.waitstatus_to_exitcode(status)}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    mlops = shutil.which("mlops") or str(Path(sys.executable).with_name("mlops"))
    command = [mlops, "plan", "--stack", args.stack, "--format", "json"]
    # Count resources once, outside the timed runs.
    plan = json.loads(subprocess.run(command, check=True, capture_output=True, cwd=ROOT).stdout)
    os.chdir(ROOT)
    samples = [
        run_once([*command, "--render-manifests", str(RESULTS / ".manifests")])
        for _ in range(args.runs)
    ]
    shutil.rmtree(RESULTS / ".manifests", ignore_errors=True)
    walls = [s[0] for s in samples]
    peaks = [s[1] for s in samples]
    result = {
        "benchmark": "mlops plan (whole process)",
        "command": " ".join(["mlops", *command[1:], "--render-manifests", "DIR"]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "resources": plan["total"],
        "runs": args.runs,
        "wall_seconds": {"median": statistics.median(walls), "max": max(walls), "all": walls},
        "peak_rss_mb": {"median": statistics.median(peaks), "max": max(peaks)},
        "targets": {"wall_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_MB},
        "met": max(walls) < TARGET_SECONDS and max(peaks) < TARGET_MB,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "plan.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "plan.md").write_text(
        "\n".join(
            [
                f"# `mlops plan --stack {args.stack}` benchmark",
                "",
                f"- date: {result['date']}",
                f"- machine: {result['machine']}",
                f"- command: `{result['command']}` ({args.runs} runs, first included)",
                f"- resources planned: {result['resources']}",
                f"- wall time: median {result['wall_seconds']['median']:.2f} s, "
                f"max {result['wall_seconds']['max']:.2f} s (target < {TARGET_SECONDS:.0f} s)",
                f"- peak RSS: median {result['peak_rss_mb']['median']:.0f} MB, "
                f"max {result['peak_rss_mb']['max']:.0f} MB (target < {TARGET_MB:.0f} MB)",
                f"- targets met: {'yes' if result['met'] else 'no'}",
                "",
                "The environment is the one `make venv` builds (bytecode compiled at install);",
                "most of the time is importing the provider SDKs, not running the program.",
                "",
                "Reproduce: `make bench-plan` (or `uv run python bench/plan/run.py`).",
                "",
            ]
        )
    )
    print((RESULTS / "plan.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
