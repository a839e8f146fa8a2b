"""`mlops demo`: train, serve, detect drift and retrain on one machine, with no cloud or cluster.

1. start an embedded MLflow tracking server (sqlite + local artifacts, 127.0.0.1, free port);
2. generate three years of churn data and run `training_pipeline` with kfp's local runner;
3. promote the first version to `champion` and serve it with the model server on loopback;
4. send it traffic: a normal batch, then a drifted one (the server's live PSI moves);
5. run `drift_pipeline` on the drifted window: it finds the drift and registers a `challenger`;
6. print a report (metrics, drift per feature, versions and aliases, timings), also written to
   `<workdir>/report.md`.

The pipelines are the compiled ones a cluster runs; only the runner differs. Every process the
demo starts is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# stdlib-only module: keeps `mlops --help` instant
from kfp_pipelines.components.common import (
    CHAMPION_ALIAS,
    REGISTERED_MODEL_NAME,
    ComponentError,
    connect_mlflow,
)

# Measured: 154 s on the 2-core dev machine at load average 6 (1M rows: 276 s), so the default
# stays under 5 minutes with headroom on a shared CPU (kfp_pipelines/README.md).
DEFAULT_ROWS = 200_000
STARTUP_TIMEOUT_SECONDS = 120


class DemoError(Exception):
    """A failure explained in one line; printed without a stack trace."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help=f"training rows (default {DEFAULT_ROWS})"
    )
    parser.add_argument(
        "--drift-rows",
        type=int,
        help="rows of the drifted window the drift pipeline checks and retrains on "
        "(default: rows / 2, at least 5000)",
    )
    parser.add_argument(
        "--drift-magnitude",
        type=float,
        default=1.0,
        help="size of the injected drift in standard deviations (default 1.0; 0 = no drift)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    parser.add_argument(
        "--requests", type=int, default=40, help="requests sent per traffic batch (default 40)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where data, MLflow, pipeline outputs and the report go (kept); "
        "default: a temporary directory, removed at the end",
    )
    parser.add_argument(
        "--tracking-uri",
        help="use this MLflow tracking server instead of starting an embedded one",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the full kfp and component logs"
    )


def main(args: argparse.Namespace) -> int:
    if args.rows < 5000:
        print("mlops demo: --rows must be at least 5000", file=sys.stderr)
        return 2
    drift_rows = args.drift_rows or max(5000, args.rows // 2)
    if drift_rows < 5000:
        print("mlops demo: --drift-rows must be at least 5000", file=sys.stderr)
        return 2
    if not 0 <= args.drift_magnitude <= 10:
        print("mlops demo: --drift-magnitude must be between 0 and 10", file=sys.stderr)
        return 2
    # SIGTERM (e.g. a CI timeout) takes the same path as Ctrl-C, so the servers are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.ExitStack() as stack:
        if args.workdir:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-demo-")))
        demo = Demo(
            workdir=workdir,
            rows=args.rows,
            drift_rows=drift_rows,
            drift_magnitude=args.drift_magnitude,
            seed=args.seed,
            requests=args.requests,
            verbose=args.verbose,
        )
        try:
            report = demo.run(stack, tracking_uri=args.tracking_uri)
        except DemoError as error:
            print(f"\nmlops demo: {error}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("\nmlops demo: interrupted; stopping the processes it started", file=sys.stderr)
            return 130
    print(report)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_ready(url: str, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise DemoError(f"{what} exited with status {process.returncode}: {' | '.join(tail)}")
        with contextlib.suppress(OSError):
            if http_get(url, timeout=2)[0] == 200:
                return
        time.sleep(0.3)
    raise DemoError(f"{what} did not become ready within {STARTUP_TIMEOUT_SECONDS}s ({url})")


@contextlib.contextmanager
def background_process(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run `command` in its own process group; stop the whole group on exit (its workers too)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


@contextlib.contextmanager
def mlflow_server(workdir: Path, wait: bool = True) -> Iterator[tuple[str, Callable[[], None]]]:
    """An MLflow tracking server with model registry (sqlite) and served artifacts, on loopback.

    Yields (tracking URI, wait-until-ready); with `wait=False` the caller does other work while
    the server boots (it takes seconds to tens of seconds) and calls wait-until-ready later.
    The server is stopped when the context exits.
    """
    port = free_port()
    store = workdir / "mlflow"
    (store / "artifacts").mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination",
        str(store / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = workdir / "logs" / "mlflow.log"
    with background_process(command, log) as process:
        uri = f"http://127.0.0.1:{port}"

        def ready() -> None:
            wait_until_ready(f"{uri}/health", process, "MLflow server", log)

        if wait:
            ready()
        yield uri, ready


@contextlib.contextmanager
def model_server(workdir: Path, tracking_uri: str, model_uri: str) -> Iterator[str]:
    """The platform's model server (`mlops serve`) on loopback; yields its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlops.cli",
        "serve",
        "--model-uri",
        model_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = workdir / "logs" / "model-server.log"
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        # each demo run keeps its own prediction log, beside its other outputs
        "MLOPS_SERVE_PREDICTION_SINK": "file",
        "MLOPS_SERVE_PREDICTION_FILE": str(workdir / "predictions.jsonl"),
    }
    with background_process(command, log, env=env) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/v2/health/ready", process, "model server", log)
        yield url


# --------------------------------------------------------------------------- pipeline runs

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK_START = re.compile(r"Executing task '([^']+)'")
_TASK_END = re.compile(r"Task '([^']+)' finished with status (\w+)")


class ProgressLog:
    """Where kfp's local runner writes while a pipeline runs: the full log goes to a file, and
    one line per step start/end (plus component ERROR lines) goes to `emit`."""

    def __init__(self, path: Path, emit: Callable[[str], None]) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.emit = emit
        self.buffer_text = ""
        self.started: dict[str, float] = {}
        self.steps: dict[str, float] = {}
        self.errors: list[str] = []

    def write(self, text: str) -> int:
        self.file.write(text)
        self.buffer_text += text
        *lines, self.buffer_text = self.buffer_text.split("\n")
        for line in lines:
            self._line(_ANSI.sub("", line))
        return len(text)

    def _line(self, line: str) -> None:
        if match := _TASK_START.search(line):
            self.started[match[1]] = time.perf_counter()
        elif match := _TASK_END.search(line):
            name, status = match[1], match[2]
            seconds = time.perf_counter() - self.started.get(name, time.perf_counter())
            self.steps[name] = round(seconds, 2)
            self.emit(f"    {name:<16} {status:<8} {seconds:6.1f}s")
        elif "ERROR: " in line and "Task '" not in line:
            message = line.split("ERROR: ", 1)[1].strip()
            self.errors.append(message)
            self.emit(f"    ! {message}")
        elif self.errors and line.startswith("      ") and line.strip().startswith("- "):
            # continuation lines of a multi-line component error (validation report)
            self.errors.append(line.strip())
            self.emit(f"      {line.strip()}")

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


@dataclass
class PipelineRun:
    name: str
    seconds: float
    steps: dict[str, float]
    output: str
    root: Path


def run_pipeline(
    pipeline: Any,
    name: str,
    arguments: dict[str, Any],
    pipeline_root: Path,
    log_path: Path,
    verbose: bool = False,
) -> PipelineRun:
    """Run a compiled-equivalent pipeline with kfp's local SubprocessRunner in this venv."""
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
    before = set(pipeline_root.glob("*"))
    started = time.perf_counter()
    # kfp prints to sys.stdout, which is redirected below; progress goes to the real one.
    terminal = sys.stdout
    progress = ProgressLog(log_path, lambda line: print(line, file=terminal, flush=True))
    try:
        if verbose:
            task = pipeline(**arguments)
        else:
            with contextlib.redirect_stdout(progress), contextlib.redirect_stderr(progress):
                task = pipeline(**arguments)
    except RuntimeError as error:
        failed = re.search(r"Inner task failed: '?([\w-]+)", _ANSI.sub("", str(error)))
        step = failed[1] if failed else "a step"
        detail = f": {' '.join(progress.errors)}" if progress.errors else ""
        raise DemoError(
            f"{name} pipeline failed at {step}{detail} (full log: {log_path})"
        ) from None
    finally:
        progress.close()
    runs = sorted(set(pipeline_root.glob("*")) - before)
    return PipelineRun(
        name=name,
        seconds=round(time.perf_counter() - started, 2),
        steps=progress.steps,
        output=str(task.outputs["Output"]),
        root=runs[-1] if runs else pipeline_root,
    )


def connect(tracking_uri: str) -> Any:
    """An MLflow client, or DemoError with the one-line reason the server is unusable."""
    try:
        return connect_mlflow(tracking_uri)
    except ComponentError as error:
        raise DemoError(str(error)) from None


# --------------------------------------------------------------------------- traffic


def send_traffic(url: str, frame: Any, requests: int, batch: int = 50) -> dict[str, float]:
    """POST `requests` batches of `batch` rows to /invocations; latency percentiles in ms."""
    import numpy as np

    from kfp_pipelines.data import churn

    latencies = []
    errors = 0
    features = frame[churn.FEATURE_NAMES]
    for index in range(requests):
        start = (index * batch) % max(1, len(features) - batch)
        chunk = features.iloc[start : start + batch]
        body = json.dumps(
            {"dataframe_split": json.loads(chunk.to_json(orient="split", index=False))}
        ).encode()
        request = urllib.request.Request(
            f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except (urllib.error.URLError, OSError):
            errors += 1
            continue
        latencies.append((time.perf_counter() - began) * 1000)
    if not latencies:
        raise DemoError(f"the model server at {url} answered none of {requests} requests")
    return {
        "requests": requests,
        "errors": errors,
        "rows": requests * batch,
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p95_ms": round(float(np.percentile(latencies, 95)), 1),
    }


def live_psi(url: str) -> dict[str, float]:
    """Per-feature PSI the model server computes over its recent requests (from /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(f"{url}/metrics")
    if status != 200:
        return {}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "model_server_feature_psi":
            for sample in family.samples:
                values[sample.labels["feature"]] = round(sample.value, 4)
    return values


# --------------------------------------------------------------------------- the demo


@dataclass
class Demo:
    workdir: Path
    rows: int
    drift_rows: int
    drift_magnitude: float
    seed: int
    requests: int
    verbose: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    began: float = field(default_factory=time.perf_counter)

    def say(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.began:6.1f}s] {message}", flush=True)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 2)

    def run(self, stack: contextlib.ExitStack, tracking_uri: str | None = None) -> str:
        self.say(f"work directory {self.workdir}")
        started = time.perf_counter()
        if tracking_uri:
            self.say(f"using MLflow at {tracking_uri}")
            connect(tracking_uri)  # fail before any work when it is unreachable
            ready: Callable[[], None] = lambda: None  # noqa: E731
        else:
            self.say("starting MLflow (sqlite registry, local artifacts) on 127.0.0.1")
            tracking_uri, ready = stack.enter_context(mlflow_server(self.workdir, wait=False))
        with self.phase("generate data"):
            # while MLflow boots
            train_path, drifted_path, normal, drifted = self.generate_data()
        ready()
        client = connect(tracking_uri)
        self.timings["start MLflow (overlaps data)"] = round(time.perf_counter() - started, 2)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        self.say(f"MLflow ready at {tracking_uri}")

        from kfp_pipelines.pipelines.drift import drift_pipeline
        from kfp_pipelines.pipelines.training import training_pipeline

        self.say(f"training pipeline on {self.rows} rows (kfp local runner)")
        with self.phase("training pipeline"):
            training = self.pipeline(
                training_pipeline,
                "training",
                {"data_uri": str(train_path), "tracking_uri": tracking_uri, "seed": self.seed},
            )
        first_version = training.output
        if not first_version:
            raise DemoError("the training pipeline registered no model version")
        client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHAMPION_ALIAS, first_version)
        self.say(f"promoted churn version {first_version} to champion")

        with self.phase("serve and send traffic"):
            self.say("starting the model server for models:/churn@champion on 127.0.0.1")
            with model_server(self.workdir, tracking_uri, "models:/churn@champion") as url:
                self.say(f"model server ready at {url}; sending normal traffic")
                normal_traffic = send_traffic(url, normal, self.requests)
                psi_normal = live_psi(url)
                self.say(
                    f"normal traffic: {normal_traffic['rows']} rows, "
                    f"p50 {normal_traffic['p50_ms']} ms, p95 {normal_traffic['p95_ms']} ms"
                )
                self.say("sending drifted traffic")
                drifted_traffic = send_traffic(url, drifted, self.requests)
                psi_drifted = live_psi(url)
                top = sorted(psi_drifted.items(), key=lambda item: -item[1])[:3]
                self.say(f"live PSI on the server (top 3): {dict(top)}")

        self.say(f"drift pipeline on {self.drift_rows} recent rows")
        with self.phase("drift pipeline"):
            drift = self.pipeline(
                drift_pipeline,
                "drift",
                {
                    "data_uri": str(drifted_path),
                    "reference_uri": str(train_path),
                    "tracking_uri": tracking_uri,
                    "seed": self.seed,
                },
            )
        details = drift.root / "check-drift" / "details"
        drift_summary = json.loads(details.read_text()) if details.exists() else None
        new_version = drift.output
        if new_version:
            self.say(f"drift found; retrained and registered churn version {new_version}")
        else:
            self.say("no drift found; nothing retrained")

        text = self.report(
            client,
            training,
            drift,
            drift_summary,
            {"normal": normal_traffic, "drifted": drifted_traffic},
            {"normal": psi_normal, "drifted": psi_drifted},
        )
        (self.workdir / "report.md").write_text(text)
        return text

    def generate_data(self) -> tuple[Path, Path, Any, Any]:
        from kfp_pipelines.data import churn

        data = self.workdir / "data"
        self.say(f"generating {self.rows} churn snapshots (2023-01-01, three years)")
        train = churn.generate(self.rows, seed=self.seed, start="2023-01-01", days=1095)
        train_path = churn.write_parquet(train, data / "churn-2023-2025.parquet")
        scenario = churn.DriftScenario(
            kind="sudden" if self.drift_magnitude > 0 else "none",
            magnitude=self.drift_magnitude,
            start_day=0,
        )
        self.say(
            f"generating {self.drift_rows} recent snapshots (2026-01..03) with "
            f"{scenario.kind} drift of {self.drift_magnitude} std on {', '.join(scenario.features)}"
        )
        recent = churn.generate(
            self.drift_rows, seed=self.seed + 1, start="2026-01-01", days=90, drift=scenario
        )
        drifted_path = churn.write_parquet(recent, data / "churn-2026q1.parquet")
        return train_path, drifted_path, train.tail(self.requests * 50), recent

    def pipeline(self, pipeline: Any, name: str, arguments: dict[str, Any]) -> PipelineRun:
        root = self.workdir / "pipeline-root"
        root.mkdir(parents=True, exist_ok=True)
        log = self.workdir / "logs" / f"{name}-pipeline.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        run = run_pipeline(pipeline, name, arguments, root, log, self.verbose)
        self.say(f"{name} pipeline finished in {run.seconds:.1f}s")
        return run

    def report(
        self,
        client: Any,
        training: PipelineRun,
        drift: PipelineRun,
        drift_summary: dict[str, Any] | None,
        traffic: dict[str, dict[str, float]],
        psi_live: dict[str, dict[str, float]],
    ) -> str:
        versions = sorted(
            client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'"),
            key=lambda v: int(v.version),
        )
        registered = client.get_registered_model(REGISTERED_MODEL_NAME)
        aliases = dict(registered.aliases)
        lines = ["", "# mlops demo report", "", "## Model versions", ""]
        lines += [
            "| version | aliases | pipeline | roc_auc | pr_auc | f1 | promotion |",
            "|---|---|---|---|---|---|---|",
        ]
        for version in versions:
            run = client.get_run(version.run_id)
            metric = run.data.metrics
            names = [alias for alias, v in aliases.items() if str(v) == str(version.version)]
            lines.append(
                f"| {version.version} | {', '.join(sorted(names)) or '-'} | "
                f"{version.tags.get('pipeline', '?')} | "
                f"{metric.get('golden_roc_auc', float('nan')):.4f} | "
                f"{metric.get('golden_pr_auc', float('nan')):.4f} | "
                f"{metric.get('golden_f1', float('nan')):.4f} | "
                f"{version.tags.get('promotion', '?')} |"
            )
        lines += ["", "Golden-set metrics of each version on its own pipeline's golden set."]
        if drift.output:
            card = client.get_run(
                client.get_model_version(REGISTERED_MODEL_NAME, drift.output).run_id
            ).data.metrics
            if "champion_golden_roc_auc" in card:
                lines.append(
                    f"On the drifted golden set the champion scores ROC AUC "
                    f"{card['champion_golden_roc_auc']:.4f} and the new challenger "
                    f"{card['golden_roc_auc']:.4f}."
                )
        lines += ["", "## Drift (drift pipeline, recent window vs. training data)", ""]
        if drift_summary:
            features = sorted(
                drift_summary["features"].items(),
                key=lambda item: (not item[1]["drifted"], -item[1]["psi"]),
            )
            lines.append(
                f"Drift {'FOUND' if drift_summary['drifted'] else 'not found'}: "
                f"{drift_summary['n_drifted']} of {len(features)} features drifted "
                f"(seasonal reference: {drift_summary['seasonal_reference']})."
            )
            lines += [
                "",
                "| feature | psi | test | p-value | drifted | live psi (server) |",
                "|---|---|---|---|---|---|",
            ]
            shown = [item for item in features if item[1]["drifted"]] + [
                item for item in features if not item[1]["drifted"]
            ][:5]
            for name, values in shown:
                live = psi_live["drifted"].get(name)
                lines.append(
                    f"| {name} | {values['psi']:.4f} | {values['test']} | "
                    f"{values['pvalue']:.2g} | {'yes' if values['drifted'] else 'no'} | "
                    f"{'n/a' if live is None else f'{live:.4f}'} |"
                )
            lines += [
                "",
                f"Drifted features and the top 5 others; all {len(features)} in {drift.root}. "
                "The live PSI is the model server's: its recent requests against the whole "
                "training profile, without the pipeline's same-season reference, so seasonal "
                "features (ad_impressions_30d, promo_emails_30d) read higher there.",
            ]
        else:
            lines.append("The drift step wrote no details.")
        lines += ["", "## Traffic to the model server", ""]
        for kind, stats in traffic.items():
            lines.append(
                f"- {kind}: {stats['requests']} requests / {stats['rows']} rows, "
                f"{stats['errors']} errors, p50 {stats['p50_ms']} ms, p95 {stats['p95_ms']} ms"
            )
        lines += ["", "## Timings", "", "| phase | seconds |", "|---|---|"]
        lines += [f"| {name} | {seconds:.1f} |" for name, seconds in self.timings.items()]
        lines.append(f"| total | {time.perf_counter() - self.began:.1f} |")
        for run in (training, drift):
            steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in run.steps.items())
            lines.append(f"\n{run.name} pipeline steps: {steps}")
        return "\n".join(lines) + "\n"
