"""What bench/serving and bench/tracing share around their measurements: the command line
(wrk durations, training rows, concurrency, seed, model kinds, --quick, --results), the
throw-away MLflow registry the model kinds are registered in, the machine's state at the start
and end, and writing the results. Each benchmark keeps its own scenarios and result tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SINGLE_ROW_BODIES = 200  # distinct single-row requests each wrk connection cycles through


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def split_body(frame: Any) -> str:
    records = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": {"columns": records["columns"], "data": records["data"]}})


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
        "load_generator": wrk_version.strip(),
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def arguments(
    prog: str, description: str, kinds: str, results: Path, results_name: str
) -> argparse.ArgumentParser:
    """The options both benchmarks take; `kinds` is the default comma-separated kind list."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rows", type=int, default=20_000, help="training rows per model")
    parser.add_argument("--concurrency", type=int, default=32, help="single-row connections")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kinds", default=kinds, help="comma-separated model kinds")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 s runs, 3000 rows, no warm-up runs"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=results,
        help=f"where {results_name}.json/.md are written",
    )
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """The parsed options (--quick applied), or the exit code when wrk is missing or a kind is
    unknown (the reason printed)."""
    from bench.serving.models import KINDS

    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rows = 3, 3000
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    wanted = args.kinds.split(",")
    unknown = sorted(set(wanted) - {k.name for k in KINDS})
    if unknown:
        print(f"unknown kind(s) {unknown}; known: {[k.name for k in KINDS]}", file=sys.stderr)
        return 2
    args.kind_list = [k for k in KINDS if k.name in wanted]
    return args


@dataclass
class Run:
    """One benchmark run: its scratch directory, registry and the machine's state."""

    workdir: Path
    tracking_uri: str
    started_at: str
    machine: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


def start(prefix: str, experiment: str) -> Run:
    """A scratch directory with a SQLite MLflow registry, set as this process's tracking URI;
    `env` is what the servers get (the registry, the prediction log in the scratch dir)."""
    import mlflow

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    info["uptime_at_start"] = uptime()
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLOPS_SERVE_PREDICTION_FILE": str(workdir / "predictions.jsonl"),
    }
    return Run(workdir, tracking_uri, started_at, info, env)


def request_pool(x: Any, seed: int) -> Any:
    """The rows requests are drawn from: up to 2000 of the kind's frame."""
    return x.sample(n=min(2000, len(x)), random_state=seed)


def single_row_bodies(pool: Any) -> list[str]:
    return [split_body(pool.iloc[i : i + 1]) for i in range(SINGLE_ROW_BODIES)]


def finish(run: Run, results: dict[str, Any], command: str) -> None:
    """The machine's state at the end, when the run started and its command, into `results`."""
    info = run.machine
    info["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    info["uptime_at_end"] = uptime()
    results["machine"] = info
    results["started_at"] = run.started_at
    results["command"] = command


def write(
    run: Run,
    directory: Path,
    name: str,
    results: dict[str, Any],
    render: Callable[[dict[str, Any]], str],
) -> None:
    """`name`.json and `name`.md in `directory`, the table printed; the scratch dir removed."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (directory / f"{name}.md").write_text(render(results))
    print((directory / f"{name}.md").read_text())
    shutil.rmtree(run.workdir, ignore_errors=True)


def markdown_head(r: dict[str, Any], title: str, machine_note: str = ".") -> list[str]:
    """The first lines of a results page: title, date, command, machine and its `uptime`."""
    m = r["machine"]
    return [
        f"# {title}",
        "",
        f"- Date: {r['started_at']}"
        + (" (--quick smoke run: not a measurement)" if r["quick"] else ""),
        f"- Command: `{r['command'].strip()}`",
        f"- Machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, {m['platform']}"
        + machine_note,
        f"- `uptime` at start: `{m['uptime_at_start']}`; at end: `{m['uptime_at_end']}`.",
    ]
