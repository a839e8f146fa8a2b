"""`mlops demo`: the platform's loop on one machine, with no cloud or cluster.

1. start an embedded MLflow tracking server (sqlite + local artifacts, 127.0.0.1, free port),
   and the loop's processes: the retrain receiver (mlops_platform/pipelines/loop/receiver.py, kfp's local
   runner as its backend), Alertmanager with the platform's generated routing to it,
   Prometheus with the platform's rendered alert rules (drift must hold 3 s, not 15 min), and
   the drift monitor (mlops_platform/pipelines/loop/monitor.py) the drift alert fires on;
2. generate three years of churn data up to today and run `training_pipeline` with kfp's local
   runner;
3. promote the first version to `champion` and serve it (the primary) on loopback;
4. send it traffic: a normal batch, then a drifted one; the server's prediction file goes into
   hourly windows with the prediction-log consumer's code, the drift monitor checks them with
   the drift pipeline's detector against the champion's same-season training data, and
   Prometheus' `ModelFeatureDrift` fires on its verdict,
   Alertmanager delivers it to the receiver, which starts `drift_pipeline`: it finds the drift
   and registers a `challenger`;
5. release it as Flagger would analyse it: `reconcile` writes it into the release "ConfigMap"
   (a JSON file in the work directory), a canary model server serves it, the golden-set `gate`
   runs, then intervals of golden-set and live traffic to both sides, each judged by the
   serving component's checks through Prometheus; promotion moves `champion` (`settle`);
6. do the same with a model trained on shuffled labels, released by hand: it is rolled back and
   tagged rejected;
7. print a report (metrics, the alert, drift per feature, each canary's analysis, aliases,
   timings), also written to `<workdir>/report.md`.

The pipelines, rules, routing, receiver, checks and release steps are the platform's; only the
runner, the timings and the release store differ. Every process the demo starts is stopped at the
end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# stdlib-only module: keeps `mlops --help` instant
from mlops_platform.pipelines.components.common import (
    CHAMPION_ALIAS,
    REGISTERED_MODEL_NAME,
    ComponentError,
    connect_mlflow,
)

# Measured with the loop (alert path, two canary analyses): 245 s wall on the shared 2-core dev
# machine, so the default stays under 5 minutes (mlops_platform/pipelines/README.md); the training and drift
# pipelines are about 100 s of it, the loop's fixed intervals and process starts most of the rest.
DEFAULT_ROWS = 200_000
# `mlflow server` imports for minutes on a loaded shared 2-core machine (150 s measured).
STARTUP_TIMEOUT_SECONDS = 300
# From drifted traffic to the receiver starting a run: the window fills, PSI holds for 3 s, one
# Alertmanager group wait; ~10 s when quiet, so 120 s only trips on a broken path.
ALERT_TIMEOUT_SECONDS = 120
RETRAIN_TIMEOUT_SECONDS = 900
DRIFT_ALERT = "ModelFeatureDrift"
# Where the churn deployment would run, and its release ConfigMaps (mlops_platform/components/serving).
NAMESPACE = "serving"
DEPLOYMENT = REGISTERED_MODEL_NAME
PRIMARY_CONFIG_MAP = f"{DEPLOYMENT}-model-primary"  # Flagger's copy of `<name>-model`
# The gate's ROC AUC tolerance and the offline evaluation's: the platform's default (0.01).
GATE_TOLERANCE = 0.01
SCRAPE_SETTLE_SECONDS = 2.0
BATCH_ROWS = 50
# Enough rows for a model that has learnt nothing to look like a model, trained in seconds; its
# golden set (and the evaluation against the champion) at most as many recent rows.
SHUFFLED_ROWS = 5_000
# The drift monitor compares today's traffic with the training rows of the same season (+-7
# days of year, `DriftConfig.season_days`) and withholds its verdict under
# `min_reference_rows` (1,000) of them. The history is three years up to today; the training
# split is its oldest 80 % (the golden set is the latest 20 %), which holds ~38 of its 876 days
# in today's season (+-7 days in each earlier year): 36,000 rows give ~1,250 same-season rows,
# several standard deviations above 1,000 (the data is sized, not the detector's thresholds).
MIN_ROWS = 36_000
# The monitor reads complete hours; the demo cannot wait for the current one to end, so the
# monitor's clock runs this much ahead (the only difference from the cluster's monitor).
MONITOR_CLOCK_AHEAD_HOURS = 1


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
    if args.rows < MIN_ROWS:
        print(
            f"mlops demo: --rows must be at least {MIN_ROWS} (the drift check's same-season "
            "reference needs 1,000 training rows within 7 days of today's date)",
            file=sys.stderr,
        )
        return 2
    drift_rows = args.drift_rows or max(5000, args.rows // 2)
    if drift_rows < 5000:
        print("mlops demo: --drift-rows must be at least 5000", file=sys.stderr)
        return 2
    if not 0 <= args.drift_magnitude <= 10:
        print("mlops demo: --drift-magnitude must be between 0 and 10", file=sys.stderr)
        return 2
    try:
        binaries = require_monitoring_binaries()
    except DemoError as error:
        print(f"mlops demo: {error}", file=sys.stderr)
        return 1
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
            binaries=binaries,
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
def model_server(
    workdir: Path,
    tracking_uri: str,
    model_uri: str,
    label: str = "model-server",
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """The platform's model server (`mlops serve`) on loopback; yields its base URL. `label`
    names its log (and prediction log, beside the first server's `predictions.jsonl`)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlops_platform.cli",
        "serve",
        "--model-uri",
        model_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = workdir / "logs" / f"{label}.log"
    predictions = "predictions.jsonl" if label == "model-server" else f"predictions-{label}.jsonl"
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        # each demo run keeps its own prediction log, beside its other outputs
        "MLOPS_SERVE_PREDICTION_SINK": "file",
        "MLOPS_SERVE_PREDICTION_FILE": str(workdir / predictions),
        **(extra_env or {}),
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

    from mlops_platform.pipelines.data import churn

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


# --------------------------------------------------------------------------- the loop's processes

PROMETHEUS_PACKAGES = ("prometheus", "prometheus-alertmanager")


def require_monitoring_binaries() -> dict[str, str]:
    """Paths of Prometheus and Alertmanager (Debian's packages), or DemoError naming them."""
    found = {name: shutil.which(name) for name in PROMETHEUS_PACKAGES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DemoError(
            f"{' and '.join(missing)} not found on PATH: the demo's alert path and canary "
            f"analysis need them (apt-get install {' '.join(PROMETHEUS_PACKAGES)})"
        )
    return {name: str(path) for name, path in found.items()}


def _write_yaml(path: Path, data: dict[str, Any]) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Prometheus:
    """A running Prometheus: instant queries, alerts, and new scrape targets by config reload."""

    def __init__(self, url: str, config_path: Path, config: dict[str, Any]) -> None:
        self.url, self.config_path, self.config = url, config_path, config

    def query(self, promql: str) -> list[dict[str, Any]]:
        status, body = http_get(
            f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        )
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise DemoError(f"Prometheus rejected a query: {answer.get('error', status)}")
        return answer["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        """The query's single value, None without one: what Flagger reads from a MetricTemplate
        (no value fails the check)."""
        result = self.query(promql)
        if len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        return json.loads(http_get(f"{self.url}/api/v1/alerts")[1])["data"]["alerts"]

    def scrape(self, scrape_configs: list[dict[str, Any]]) -> None:
        """Replace the scrape targets (a new pod in a cluster) and reload."""
        self.config["scrape_configs"] = scrape_configs
        _write_yaml(self.config_path, self.config)
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise DemoError(f"Prometheus did not reload its config: HTTP {response.status}")


@contextlib.contextmanager
def prometheus_server(
    workdir: Path,
    binary: str,
    scrape_configs: list[dict[str, Any]],
    rule_groups: list[dict[str, Any]],
    alertmanager_url: str,
) -> Iterator[Prometheus]:
    """Prometheus on loopback, scraping and evaluating every second (a cluster's is slower; the
    demo has minutes, not hours)."""
    folder = workdir / "prometheus"
    rules = _write_yaml(folder / "rules.yaml", {"groups": rule_groups})
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}
            ]
        },
        "scrape_configs": scrape_configs,
    }
    path = _write_yaml(folder / "prometheus.yaml", config)
    port = free_port()
    command = [
        binary,
        f"--config.file={path}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        # firing alerts are re-sent every second (default 1 m), so none waits for a minute
        "--rules.alert.resend-delay=1s",
    ]
    log = workdir / "logs" / "prometheus.log"
    with background_process(command, log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/-/ready", process, "Prometheus", log)
        yield Prometheus(url, path, config)


@contextlib.contextmanager
def alertmanager_server(workdir: Path, binary: str, config: dict[str, Any]) -> Iterator[str]:
    """Alertmanager on loopback with `config` (the platform's generated one), no clustering."""
    folder = workdir / "alertmanager"
    path = _write_yaml(folder / "alertmanager.yaml", config)
    port = free_port()
    command = [
        binary,
        f"--config.file={path}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port
    ]
    log = workdir / "logs" / "alertmanager.log"
    with background_process(command, log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/-/ready", process, "Alertmanager", log)
        yield url


@contextlib.contextmanager
def retrain_receiver(
    workdir: Path, env: dict[str, str]
) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """The platform's retrain receiver (`python -m mlops_platform.pipelines.loop.receiver`) with kfp's local
    runner as its backend; yields (URL, its log, its process)."""
    port = free_port()
    log = workdir / "logs" / "receiver.log"
    command = [sys.executable, "-m", "mlops_platform.pipelines.loop.receiver"]
    settings = {"MLOPS_RECEIVER_HOST": "127.0.0.1", "MLOPS_RECEIVER_PORT": str(port), **env}
    with background_process(command, log, env=settings) as process:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/healthz", process, "retrain receiver", log)
        yield url, log, process


def receiver_events(log: Path) -> list[dict[str, Any]]:
    """The receiver's decisions: its JSON log lines (kfp's output shares the log)."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


class FileReleaseStore:
    """The release ConfigMaps (`mlops_platform.pipelines.loop.release.ReleaseStore`) as one JSON file in
    the work directory: what `kubectl get configmap` would show."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _all(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def read(self, namespace: str, name: str) -> str | None:
        return self._all().get(f"{namespace}/{name}")

    def write(self, namespace: str, name: str, model_uri: str) -> None:
        data = self._all()
        data[f"{namespace}/{name}"] = model_uri
        self.path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def progressive_config() -> Any:
    """The demo's Flagger analysis: intervals of 10 s (a cluster's default is 1 m), rollback at
    2 failed checks, 3 steps of 25% up to 75% (so 3 intervals to promotion), and the platform's
    default check thresholds."""
    from mlops_platform.components.serving.delivery import ProgressiveConfig

    return ProgressiveConfig.model_validate(
        {
            "interval": "10s",
            "threshold": 2,
            "step_weight": 25,
            "max_weight": 75,
        }
    )


def _print(line: str) -> None:
    print(line, flush=True)


def pod_name(deployment: str, model_uri: str, side: str) -> str:
    """A pod name as the PodMonitor labels it (`<name>-<rs>-<pod>`, primary
    `<name>-primary-<rs>-<pod>`): the analysis queries select the two sides by it. The
    replica-set part follows the release, as a new revision gets a new ReplicaSet."""
    rs = hashlib.sha256(model_uri.encode()).hexdigest()[:9]
    return f"{deployment}-primary-{rs}-0" if side == "primary" else f"{deployment}-{rs}-0"


@dataclass
class Interval:
    number: int
    gate: str
    checks: dict[str, Any]  # check -> mlops_platform.components.serving.analysis.CheckResult
    failed: bool


@dataclass
class Analysis:
    version: str
    why: str
    released: str
    gate: Any | None = None  # mlops_platform.pipelines.loop.release.GateResult
    gate_error: str | None = None
    intervals: list[Interval] = field(default_factory=list)
    failures: int = 0
    phase: str = ""
    settled: str = ""
    seconds: float = 0.0


def send_golden_set(
    url: str, examples: list[bytes], per_second: int, seconds: float, stop: threading.Event
) -> int:
    """What Flagger's load tester does for one side: the example requests of both sides in
    turn (so both sides score the same inputs) at `per_second`, marked synthetic so the server
    keeps them out of its drift window and prediction log."""
    from mlops_platform.components.serving import delivery

    sent = 0
    began = time.monotonic()
    while not stop.is_set() and time.monotonic() - began < seconds:
        request = urllib.request.Request(
            f"{url}/invocations",
            data=examples[sent % len(examples)],
            headers={"Content-Type": "application/json", delivery.SYNTHETIC_HEADER: "golden-set"},
        )
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(request, timeout=10) as response,
        ):
            response.read()
        sent += 1
        time.sleep(max(0.0, began + sent / per_second - time.monotonic()))
    return sent


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
    binaries: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    began: float = field(default_factory=time.perf_counter)
    # what the report tells about the alert: when it fired, the receiver's decision, the run
    alert: dict[str, Any] = field(default_factory=dict)
    primary_url: str | None = None
    primary_uri: str | None = None
    primary_stop: contextlib.ExitStack | None = None
    live: Any = None  # the recent (drifted) rows: live traffic during the canary analyses
    live_offset: int = 0
    # the drift monitor (started with the alert path)
    monitor: Any = None
    monitor_url: str | None = None

    @property
    def bucket(self) -> Path:
        """The datasets bucket of the demo: the prediction log's hourly windows."""
        return self.workdir / "bucket"

    @property
    def window_rows(self) -> int:
        """The server's drift window and the alert's minimum: one traffic batch's rows."""
        return self.requests * BATCH_ROWS

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
        self.live = drifted
        ready()
        client = connect(tracking_uri)
        self.timings["start MLflow (overlaps data)"] = round(time.perf_counter() - started, 2)
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        self.say(f"MLflow ready at {tracking_uri}")

        from mlops_platform.pipelines.loop import release
        from mlops_platform.pipelines.pipelines.training import training_pipeline

        # The loop's processes boot while the training pipeline runs.
        with self.phase("start receiver, Alertmanager, Prometheus"):
            prom, receiver = self.start_alert_path(
                stack,
                self.binaries or require_monitoring_binaries(),
                tracking_uri,
                drifted_path,
            )

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
        # The first release is Pulumi's (`stable.model_uri`); Flagger copies it for the primary.
        store = FileReleaseStore(self.workdir / "release-configmaps.json")
        first_uri = release.pinned_uri(REGISTERED_MODEL_NAME, first_version)
        store.write(NAMESPACE, release.release_config_map(DEPLOYMENT), first_uri)
        store.write(NAMESPACE, PRIMARY_CONFIG_MAP, first_uri)

        with self.phase("serve and send traffic"):
            self.say(f"starting the model server (primary) for {first_uri} on 127.0.0.1")
            self.serve_primary(stack, prom, tracking_uri, first_uri)
            url = self.primary_url
            assert url is not None  # serve_primary sets it
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
            records = self.log_windows()
            self.say(f"prediction log: {records} records written to hourly windows")
            top = sorted(psi_drifted.items(), key=lambda item: -item[1])[:3]
            self.say(f"live PSI on the server (top 3): {dict(top)}")

        with self.phase("alert to retrained model"):
            drift = self.await_retrain(prom, receiver)
        details = drift.root / "check-drift" / "details" if drift else None
        drift_summary = json.loads(details.read_text()) if details and details.exists() else None
        new_version = drift.output if drift else ""
        if new_version:
            self.say(f"drift found; retrained and registered churn version {new_version}")
        elif drift:
            self.say("no drift found; nothing retrained")

        analyses = []
        with self.phase("canary: retrained model"):
            released = release.reconcile(client, store, self.deployment())
            if released:
                self.say(
                    f"reconcile: challenger {released} released to "
                    f"{NAMESPACE}/{release.release_config_map(DEPLOYMENT)}"
                )
                analyses.append(
                    self.rollout(
                        stack, prom, client, store, tracking_uri, "the drift pipeline's challenger"
                    )
                )
        with self.phase("canary: shuffled-label model"):
            bad = self.register_shuffled_model(tracking_uri, drifted_path)
            # Its offline evaluation already rejected it, so it is no challenger and reconcile
            # leaves it alone: it is released by hand, as `kubectl patch configmap` would, to
            # show that the canary analysis stops what slips past the offline gate.
            store.write(
                NAMESPACE,
                release.release_config_map(DEPLOYMENT),
                release.pinned_uri(REGISTERED_MODEL_NAME, bad),
            )
            self.say(f"released shuffled-label version {bad} by hand (as kubectl patch would)")
            analyses.append(
                self.rollout(
                    stack,
                    prom,
                    client,
                    store,
                    tracking_uri,
                    "trained on shuffled labels: it has learnt nothing, so its scores do not "
                    "follow the champion's; released by hand past its failed offline evaluation",
                )
            )

        text = self.report(
            client,
            training,
            drift,
            drift_summary,
            {"normal": normal_traffic, "drifted": drifted_traffic},
            {"normal": psi_normal, "drifted": psi_drifted},
            analyses,
        )
        (self.workdir / "report.md").write_text(text)
        return text

    # ----------------------------------------------------------------------- the alert path

    def start_alert_path(
        self,
        stack: contextlib.ExitStack,
        binaries: dict[str, str],
        tracking_uri: str,
        drifted_path: Path,
    ) -> tuple[Prometheus, tuple[str, Path, subprocess.Popen]]:
        """The receiver, Alertmanager with the platform's routing to it, and Prometheus with the
        platform's rules (targets come when the model server runs)."""
        from mlops_platform.components.monitoring import model as monitoring

        # The platform's rules and routing from the same models the stack renders; only the
        # timings are the demo's (drift must hold 3 s, not 15 min), as config values.
        config = monitoring.MonitoringConfig.model_validate(
            {
                "alerts": {"drift_for_minutes": 0.05},
                "alerting": {
                    "group_wait_seconds": 1,
                    "group_interval_seconds": 1,
                    "repeat_interval_minutes": 1,
                },
            }
        )
        token = secrets.token_urlsafe(24)  # per run; Alertmanager reads it from a file
        secrets_dir = self.workdir / "secrets"
        token_file = secrets_dir / monitoring.RECEIVER_SECRET / monitoring.RETRAIN_TOKEN_KEY
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.touch(mode=0o600)
        token_file.write_text(token)
        receiver_env = {
            "MLOPS_RECEIVER_TOKEN": token,
            "MLOPS_RECEIVER_BACKEND": "local",
            "MLOPS_RECEIVER_PIPELINE_ROOT": str(self.workdir / "pipeline-root"),
            "MLOPS_RECEIVER_DATA_URI": str(drifted_path),
            "MLOPS_RECEIVER_TRACKING_URI": tracking_uri,
            "MLOPS_RECEIVER_PIPELINE_ARGUMENTS": json.dumps({"seed": self.seed}),
            "MLOPS_RECEIVER_MODELS": REGISTERED_MODEL_NAME,
        }
        url, log, process = stack.enter_context(retrain_receiver(self.workdir, receiver_env))
        self.say(f"retrain receiver ready at {url} (local runner backend)")
        am_url = stack.enter_context(
            alertmanager_server(
                self.workdir,
                binaries["prometheus-alertmanager"],
                monitoring.alertmanager_config(
                    config.alerting, f"{url}/alerts", secrets_dir=str(secrets_dir)
                ),
            )
        )
        self.say(f"Alertmanager ready at {am_url} (the platform's routing, retrain receiver)")
        self.monitor_url = stack.enter_context(self.drift_monitor(tracking_uri))
        self.say(f"drift monitor ready at {self.monitor_url} (the drift pipeline's detector)")
        self.alert["for_seconds"] = config.alerts.drift_for_minutes * 60
        rule = monitoring.prometheus_rule(config.alerts, config.namespace)
        prom = stack.enter_context(
            prometheus_server(
                self.workdir, binaries["prometheus"], [], rule["spec"]["groups"], am_url
            )
        )
        self.say(f"Prometheus ready at {prom.url} (the platform's alert rules)")
        return prom, (url, log, process)

    @contextlib.contextmanager
    def drift_monitor(self, tracking_uri: str) -> Iterator[str]:
        """The platform's drift monitor over the demo's prediction-log windows (its clock an
        hour ahead, MONITOR_CLOCK_AHEAD_HOURS); yields its metrics URL. It checks when the
        traffic has been logged (`log_windows`): on a cluster it re-checks every
        `interval_minutes`, which here would only repeat the verdict."""
        import datetime as dt

        from prometheus_client import start_http_server

        from mlops_platform.pipelines.lib.drift import DriftSettings
        from mlops_platform.pipelines.loop.monitor import DriftMonitor
        from mlops_platform.pipelines.loop.monitor_settings import MonitorSettings

        settings = MonitorSettings.from_env(
            {
                "MLOPS_DRIFT_MONITOR_BUCKET_URI": str(self.bucket),
                "MLOPS_DRIFT_MONITOR_TRACKING_URI": tracking_uri,
                "MLOPS_DRIFT_MONITOR_MODELS": REGISTERED_MODEL_NAME,
                # The platform's default detector; only the window and interval are the demo's.
                "MLOPS_DRIFT_MONITOR_SETTINGS": DriftSettings(window_hours=2).model_dump_json(),
            }
        )
        ahead = dt.timedelta(hours=MONITOR_CLOCK_AHEAD_HOURS)
        self.monitor = DriftMonitor(settings, now=lambda: dt.datetime.now(dt.UTC) + ahead)
        port = free_port()
        server, thread = start_http_server(port, "127.0.0.1", registry=self.monitor.registry)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.shutdown()
            thread.join(5)

    def log_windows(self) -> int:
        """The primary's prediction file into the bucket's hourly windows, as the platform's
        consumer writes them from Kafka; then the monitor checks them."""
        from mlops_platform.pipelines.loop.consumer import ingest_prediction_file

        records = ingest_prediction_file(str(self.workdir / "predictions.jsonl"), str(self.bucket))
        state = self.monitor.check(REGISTERED_MODEL_NAME)
        if state.report is not None:
            report = state.report
            self.alert["monitor"] = (
                f"{report.verdict} on {state.window_rows} logged rows against "
                f"{report.reference_rows} same-season training rows of version {state.version} "
                f"(drifted: {', '.join(report.drifted_features) or 'none'})."
            )
            self.say(
                f"drift monitor: {state.report.verdict} on {state.window_rows} logged rows "
                f"({state.report.message})"
            )
        return records

    def await_retrain(
        self, prom: Prometheus, receiver: tuple[str, Path, subprocess.Popen]
    ) -> PipelineRun | None:
        """Wait for the drift alert to fire, reach the receiver and for the run it starts to
        finish; None when no alert fired (no drift injected)."""
        _, log, process = receiver
        root = self.workdir / "pipeline-root"
        before = set(root.glob("*"))
        progress = ProgressLog(self.workdir / "logs" / "drift-pipeline.log", _print)
        alert_timeout = ALERT_TIMEOUT_SECONDS if self.drift_magnitude > 0 else 30
        self.say(f"waiting for {DRIFT_ALERT} to fire and reach the receiver")
        began = time.perf_counter()
        offset = 0
        started: dict[str, Any] | None = None
        try:
            while True:
                if process.poll() is not None:
                    raise DemoError(
                        f"the retrain receiver exited with status {process.returncode} (log: {log})"
                    )
                with open(log, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                if started:
                    progress.write(chunk.decode(errors="replace"))
                events = receiver_events(log)
                if self.alert.get("fired_at") is None:
                    firing = [
                        a
                        for a in prom.alerts()
                        if a["labels"].get("alertname") == DRIFT_ALERT and a["state"] == "firing"
                    ]
                    if firing:
                        self.alert["fired_at"] = time.perf_counter() - self.began
                        self.alert["active_at"] = min(a["activeAt"] for a in firing)
                        self.alert["features"] = sorted(a["labels"]["feature"] for a in firing)
                        self.say(
                            f"{DRIFT_ALERT} firing in Prometheus for "
                            f"{', '.join(self.alert['features'])}"
                        )
                if started is None:
                    started = next((e for e in events if e.get("event") == "retrain_started"), None)
                    if started:
                        self.alert["decision"] = json.dumps(started, sort_keys=True)
                        self.alert["started_at"] = time.perf_counter() - self.began
                        self.say(
                            f"receiver started drift pipeline run {started['run_id']} "
                            f"(episode {started['episode']}); its steps:"
                        )
                        progress.write(chunk.decode(errors="replace"))
                    elif time.perf_counter() - began > alert_timeout:
                        if self.drift_magnitude == 0 and self.alert.get("fired_at") is None:
                            self.say(
                                f"no {DRIFT_ALERT} within {alert_timeout}s: nothing to retrain"
                            )
                            return None
                        raise DemoError(
                            f"no {DRIFT_ALERT} alert started a retrain within {alert_timeout}s "
                            f"(firing in Prometheus: {self.alert.get('fired_at') is not None}; "
                            f"logs under {self.workdir / 'logs'})"
                        )
                else:
                    finished = next(
                        (
                            e
                            for e in events
                            if e.get("event") == "retrain_finished"
                            and e.get("run_id") == started["run_id"]
                        ),
                        None,
                    )
                    if finished:
                        break
                    if time.perf_counter() - began > RETRAIN_TIMEOUT_SECONDS:
                        raise DemoError(
                            f"drift pipeline run {started['run_id']} did not finish within "
                            f"{RETRAIN_TIMEOUT_SECONDS}s (log: {log})"
                        )
                time.sleep(0.5)
        finally:
            progress.close()
        self.alert["finished"] = finished
        if finished["state"] != "SUCCEEDED":
            detail = f": {' '.join(progress.errors)}" if progress.errors else ""
            raise DemoError(
                f"drift pipeline run {started['run_id']} started by the alert failed{detail} "
                f"(log: {log})"
            )
        runs = sorted(set(root.glob("*")) - before)
        seconds = time.perf_counter() - self.began - self.alert["started_at"]
        self.say(f"drift pipeline run {started['run_id']} finished in {seconds:.1f}s")
        return PipelineRun(
            name="drift",
            seconds=round(seconds, 2),
            steps=progress.steps,
            output=finished.get("output") or "",
            root=runs[-1] if runs else root,
        )

    # ----------------------------------------------------------------------- progressive delivery

    def deployment(self, canary_url: str | None = None) -> Any:
        from mlops_platform.pipelines.loop.release import Deployment

        assert self.primary_url is not None  # the primary is served first
        urls = {"primary": self.primary_url, "canary": canary_url or ""}
        return Deployment(REGISTERED_MODEL_NAME, NAMESPACE, DEPLOYMENT, urls=urls)

    def serve_primary(
        self, stack: contextlib.ExitStack, prom: Prometheus, tracking_uri: str, uri: str
    ) -> None:
        """(Re)start the primary on `uri`, as Flagger rolls the primary on promotion."""
        if self.primary_stop is not None:
            self.primary_stop.close()
        self.primary_stop = contextlib.ExitStack()
        stack.callback(self.primary_stop.close)
        label = "model-server" if self.primary_uri is None else f"primary-{uri.rsplit('/', 1)[1]}"
        self.primary_url = self.primary_stop.enter_context(
            model_server(self.workdir, tracking_uri, uri, label, self.server_env())
        )
        self.primary_uri = uri
        prom.scrape(self.scrape_configs())

    def server_env(self) -> dict[str, str]:
        return {
            # the golden-set request of the analysis is the model's own input example
            "MLOPS_SERVE_EXAMPLE_ENDPOINT": "true",
            # the alert looks at a window the drifted batch fills
            "MLOPS_SERVE_DRIFT_WINDOW_ROWS": str(self.window_rows),
        }

    def scrape_configs(self, canary: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """One target per pod, labelled as the PodMonitor labels them in a cluster."""
        assert self.primary_uri is not None and self.primary_url is not None
        pods = [(pod_name(DEPLOYMENT, self.primary_uri, "primary"), self.primary_url)]
        if canary:
            pods.append((pod_name(DEPLOYMENT, canary[0], "canary"), canary[1]))
        monitor = (
            [
                {
                    "job_name": "mlops-loop/drift-monitor",
                    "static_configs": [{"targets": [self.monitor_url.removeprefix("http://")]}],
                }
            ]
            if self.monitor_url
            else []
        )
        return [
            *monitor,
            {
                "job_name": "serving/model-server",
                "static_configs": [
                    {
                        "targets": [url.removeprefix("http://")],
                        "labels": {"namespace": NAMESPACE, "pod": pod},
                    }
                    for pod, url in pods
                ],
            },
        ]

    def rollout(
        self,
        stack: contextlib.ExitStack,
        prom: Prometheus,
        client: Any,
        store: FileReleaseStore,
        tracking_uri: str,
        why: str,
    ) -> Analysis:
        """Flagger's analysis of the release in the ConfigMap: the gate (pre-rollout webhook),
        then `iterations` intervals of golden-set and live traffic to both sides, each judged
        by the platform's checks; rollback at `threshold` failures, otherwise promotion; then
        `settle` (post-rollout webhook)."""
        from mlops_platform.components.serving import analysis as checks
        from mlops_platform.components.serving import delivery
        from mlops_platform.pipelines.loop import release

        began = time.perf_counter()
        config = progressive_config()
        iterations = config.max_weight // config.step_weight
        canary_uri = store.read(NAMESPACE, release.release_config_map(DEPLOYMENT))
        version = release.pinned_version(canary_uri)
        if canary_uri is None or version is None:
            raise DemoError(f"the release ConfigMap holds {canary_uri!r}, not a pinned version")
        result = Analysis(version=version, why=why, released=canary_uri)
        canary = contextlib.ExitStack()
        stack.callback(canary.close)
        with canary:
            self.say(f"canary: starting the model server for {canary_uri}")
            canary_url = canary.enter_context(
                model_server(
                    self.workdir, tracking_uri, canary_uri, f"canary-{version}", self.server_env()
                )
            )
            prom.scrape(self.scrape_configs((canary_uri, canary_url)))
            self.say(f"canary ready at {canary_url}")
            deployment = self.deployment(canary_url)
            assert self.primary_url is not None  # checked by deployment()
            examples = {
                side: http_get(f"{url}/v2/models/{REGISTERED_MODEL_NAME}/example")
                for side, url in (("primary", self.primary_url), ("canary", canary_url))
            }
            for side, (status, _) in examples.items():
                if status != 200:
                    raise DemoError(
                        f"the {side} model server serves no example request (HTTP {status})"
                    )
            seconds = delivery.interval_seconds(config)
            number, gate_passed = 0, False
            while result.failures < config.threshold and number < iterations:
                number += 1
                # Flagger calls a failing pre-rollout webhook again every interval, each failure
                # a failed check; the demo still runs the checks meanwhile, to show them.
                gate = "passed before"
                if not gate_passed:
                    gate_passed = self.run_gate(client, deployment, result)
                    gate = "passes" if gate_passed else "fails"
                self.analysis_traffic(
                    {"primary": self.primary_url, "canary": canary_url},
                    [body for _, body in examples.values()],
                    config.load_test.requests_per_second,
                    seconds,
                )
                time.sleep(SCRAPE_SETTLE_SECONDS)  # the interval's last scrapes
                found = checks.run_checks(prom.scalar, config, NAMESPACE, DEPLOYMENT)
                failed = not gate_passed or not all(check.passed for check in found.values())
                result.failures += failed
                result.intervals.append(Interval(number, gate, found, failed))
                self.say(
                    f"interval {number}: gate {gate}; "
                    + "; ".join(check.describe() for check in found.values())
                )
            result.phase = "Failed" if result.failures >= config.threshold else "Succeeded"
        # The canary is stopped (Flagger scales it to zero) before the primary changes.
        if result.phase == "Succeeded":
            # Promotion: Flagger copies the release to the primary's ConfigMap and rolls it.
            store.write(NAMESPACE, PRIMARY_CONFIG_MAP, canary_uri)
            self.say(f"promoting: the primary now serves {canary_uri}")
            self.serve_primary(stack, prom, tracking_uri, canary_uri)
            self.say(f"primary ready at {self.primary_url}")
        else:
            self.say(
                f"rolling back after {result.failures} failed checks: "
                f"the primary keeps {self.primary_uri}"
            )
            prom.scrape(self.scrape_configs())
        try:
            result.settled = release.settle(client, store, self.deployment(), result.phase)
        except release.ReleaseError as error:
            raise DemoError(f"settle after {result.phase}: {error}") from None
        self.say(f"settle ({result.phase}): {result.settled}")
        result.seconds = round(time.perf_counter() - began, 2)
        return result

    def run_gate(self, client: Any, deployment: Any, result: Analysis) -> bool:
        """The golden-set gate (release.gate, Flagger's pre-rollout webhook); whether it passed."""
        from mlops_platform.pipelines.loop import release

        try:
            result.gate = release.gate(client, deployment, tolerance=GATE_TOLERANCE)
        # requests' errors are OSErrors: a side that does not answer fails the gate, as a
        # webhook that cannot reach the canary fails in Flagger
        except (release.ReleaseError, OSError) as error:
            result.gate_error = str(error)
            self.say(f"gate: could not decide: {error}")
            return False
        self.say(f"gate: {result.gate.describe()}")
        return bool(result.gate.passed)

    def analysis_traffic(
        self, urls: dict[str, str], examples: list[bytes], per_second: int, seconds: int
    ) -> None:
        """One interval's traffic: the load tester's golden set to each side, and live rows (the
        drifted recent window: today's traffic) to both, spread over it; one drift window's
        worth, so the canary's feature-drift check reads this interval's traffic (and not the
        gate's golden set, which the gate sends unmarked)."""
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=send_golden_set,
                args=(urls[side], examples, per_second, seconds, stop),
                daemon=True,
            )
            for side in urls
        ]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        try:
            for batch in range(self.requests):
                start = (self.live_offset + batch * BATCH_ROWS) % (len(self.live) - BATCH_ROWS)
                for url in urls.values():
                    send_traffic(url, self.live.iloc[start : start + BATCH_ROWS], 1)
                pause = began + (batch + 1) * seconds / self.requests - 0.5
                time.sleep(max(0.0, pause - time.monotonic()))
            self.live_offset += self.window_rows
        except BaseException:
            stop.set()  # on an error or Ctrl-C the senders stop now, not at the interval's end
            raise
        finally:
            for thread in threads:
                thread.join(timeout=seconds + 15)

    def register_shuffled_model(self, tracking_uri: str, drifted_path: Path) -> str:
        """A model trained on the recent window with its labels shuffled, evaluated against the
        champion and registered with the platform's own steps (train, evaluate, register)."""
        import numpy as np
        import pandas as pd

        from mlops_platform.pipelines.components.train_model import logic as training
        from mlops_platform.pipelines.data import churn

        self.say("training a model on shuffled labels (the bad canary)")
        recent = pd.read_parquet(drifted_path).sort_values(churn.TIMESTAMP, kind="stable")
        cut = int(len(recent) * 0.8)
        golden = recent.iloc[cut:].tail(SHUFFLED_ROWS)
        train = recent.iloc[:cut].sample(n=min(SHUFFLED_ROWS, cut), random_state=self.seed)
        train[churn.LABEL] = np.random.default_rng(self.seed).permutation(
            train[churn.LABEL].to_numpy()
        )
        data = self.workdir / "data"
        train_path = churn.write_parquet(train, data / "churn-2026q1-shuffled-labels.parquet")
        golden_path = churn.write_parquet(golden, data / "churn-2026q1-golden.parquet")
        result = training.train(
            train, search_iterations=1, search_rows=5000, max_iter=50, seed=self.seed
        )
        model_dir = self.workdir / "shuffled-label-model"
        training.save(result, train, str(model_dir), self.seed)
        with self.quiet("shuffled-label-model"):
            version, reason, promote = self._evaluate_and_register(
                tracking_uri, result, model_dir, golden, golden_path, train_path
            )
        self.say(
            f"registered shuffled-label version {version} "
            f"({'promote' if promote else 'reject'}: {reason})"
        )
        return version

    @contextlib.contextmanager
    def quiet(self, name: str) -> Iterator[None]:
        """MLflow's chatter of in-process steps goes to `logs/<name>.log` (shown with
        --verbose), as the pipeline steps' does."""
        import logging

        if self.verbose:
            yield
            return
        mlflow_logger = logging.getLogger("mlflow")
        level = mlflow_logger.level
        mlflow_logger.setLevel(logging.ERROR)
        with (
            open(self.workdir / "logs" / f"{name}.log", "a", encoding="utf-8") as log,
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
        ):
            try:
                yield
            finally:
                mlflow_logger.setLevel(level)

    def _evaluate_and_register(
        self,
        tracking_uri: str,
        result: Any,
        model_dir: Path,
        golden: Any,
        golden_path: Path,
        train_path: Path,
    ) -> tuple[str, str, bool]:
        import mlflow.sklearn

        from mlops_platform.pipelines.components.evaluate_model.logic import decide, evaluate
        from mlops_platform.pipelines.components.register_model.logic import register

        candidate = evaluate(result.model, golden, [])
        champion = evaluate(
            mlflow.sklearn.load_model(f"models:/{REGISTERED_MODEL_NAME}@{CHAMPION_ALIAS}"),
            golden,
            [],
        )
        promote, reason = decide(candidate, champion, "roc_auc", GATE_TOLERANCE)
        evaluation = {
            "candidate": candidate,
            "champion": champion,
            "primary_metric": "roc_auc",
            "tolerance": GATE_TOLERANCE,
            "promote": promote,
            "reason": reason,
        }
        version, _ = register(
            tracking_uri=tracking_uri,
            model_dir=str(model_dir),
            evaluation=evaluation,
            dataset_sha256=hashlib.sha256(train_path.read_bytes()).hexdigest(),
            pipeline="demo-shuffled-labels",
            golden_path=str(golden_path),
            reference_path=str(train_path),
        )
        return version, reason, promote

    def generate_data(self) -> tuple[Path, Path, Any, Any]:
        import datetime as dt

        from mlops_platform.pipelines.data import churn

        data = self.workdir / "data"
        # History up to today: the traffic the server logs now is compared with the training
        # rows of today's season (the drift monitor), so the season must be in the history.
        today = dt.datetime.now(dt.UTC).date()
        first = today - dt.timedelta(days=1095)
        self.say(f"generating {self.rows} churn snapshots ({first} to {today}, three years)")
        train = churn.generate(self.rows, seed=self.seed, start=first.isoformat(), days=1095)
        train_path = churn.write_parquet(train, data / "churn-history.parquet")
        scenario = churn.DriftScenario(
            kind="sudden" if self.drift_magnitude > 0 else "none",
            magnitude=self.drift_magnitude,
            start_day=0,
        )
        self.say(
            f"generating {self.drift_rows} recent snapshots (the next 90 days) with "
            f"{scenario.kind} drift of {self.drift_magnitude} std on {', '.join(scenario.features)}"
        )
        recent = churn.generate(
            self.drift_rows, seed=self.seed + 1, start=today.isoformat(), days=90, drift=scenario
        )
        drifted_path = churn.write_parquet(recent, data / "churn-recent.parquet")
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
        drift: PipelineRun | None,
        drift_summary: dict[str, Any] | None,
        traffic: dict[str, dict[str, float]],
        psi_live: dict[str, dict[str, float]],
        analyses: list[Analysis],
    ) -> str:
        versions = sorted(
            client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'"),
            key=lambda v: int(v.version),
        )
        registered = client.get_registered_model(REGISTERED_MODEL_NAME)
        aliases = dict(registered.aliases)
        lines = ["", "# mlops demo report", "", "## Model versions", ""]
        lines += [
            "| version | aliases | pipeline | roc_auc | pr_auc | f1 | promotion | rollout |",
            "|---|---|---|---|---|---|---|---|",
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
                f"{version.tags.get('promotion', '?')} | "
                f"{version.tags.get('rollout', '-')} |"
            )
        lines += ["", "Golden-set metrics of each version on its own pipeline's golden set."]
        if drift and drift.output:
            card = client.get_run(
                client.get_model_version(REGISTERED_MODEL_NAME, drift.output).run_id
            ).data.metrics
            if "champion_golden_roc_auc" in card:
                lines.append(
                    f"On the drifted golden set the champion scores ROC AUC "
                    f"{card['champion_golden_roc_auc']:.4f} and the new challenger "
                    f"{card['golden_roc_auc']:.4f}."
                )
        lines += self.alert_section(drift)
        lines += ["", "## Drift (drift pipeline, recent window vs. training data)", ""]
        if drift is not None and drift_summary:  # the summary is the drift run's
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
        for analysis in analyses:
            lines += self.analysis_section(analysis)
        lines += ["", "## Final aliases", ""]
        lines += [f"- `{alias}`: version {v}" for alias, v in sorted(aliases.items())]
        rollout = {v.version: v.tags.get("rollout") for v in versions if v.tags.get("rollout")}
        lines += [f"- version {v}: rollout={tag}" for v, tag in sorted(rollout.items())]
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
            if run is None:
                continue
            steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in run.steps.items())
            lines.append(f"\n{run.name} pipeline steps: {steps}")
        return "\n".join(lines) + "\n"

    def alert_section(self, drift: PipelineRun | None) -> list[str]:
        lines = ["", "## The alert (Prometheus -> Alertmanager -> retrain receiver)", ""]
        if self.alert.get("monitor"):
            lines += [
                "The drift monitor (the drift pipeline's detector and settings on the prediction "
                f"log's window): {self.alert['monitor']}",
                "",
            ]
        if self.alert.get("fired_at") is None:
            return [*lines, f"No {DRIFT_ALERT} fired; the receiver started nothing."]
        lines.append(
            f"{DRIFT_ALERT} fired {self.alert['fired_at']:.1f}s into the demo (pending since "
            f"{self.alert['active_at']}, held {self.alert['for_seconds']:g} s) for features "
            f"{', '.join(self.alert['features'])}."
        )
        if "decision" in self.alert:
            finished = self.alert.get("finished") or {}
            lines += [
                f"The receiver's decision, {self.alert['started_at']:.1f}s in:",
                "",
                f"    {self.alert['decision']}",
                "",
                f"Run {finished.get('run_id', '?')} of the drift pipeline (kfp local runner) "
                f"ended {finished.get('state', '?')} in "
                f"{drift.seconds if drift else float('nan'):.1f}s with output "
                f"{finished.get('output') or 'none'!r}.",
            ]
        return lines

    def analysis_section(self, analysis: Analysis) -> list[str]:
        config = progressive_config()
        lines = [
            "",
            f"## Canary analysis: version {analysis.version}",
            "",
            f"{analysis.released} in the release ConfigMap: {analysis.why}. Intervals of "
            f"{config.interval}, rollback at {config.threshold} failures, promotion after "
            f"{config.max_weight // config.step_weight} intervals.",
            "",
        ]
        if analysis.gate is not None:
            lines.append(f"Gate (pre-rollout), last run: {analysis.gate.describe()}.")
        else:
            lines.append(f"Gate (pre-rollout): could not decide: {analysis.gate_error}.")
        limits = config.thresholds
        lines.append(
            f"Limits: success rate >= {limits.success_rate_min_percent:g}%, p99 <= "
            f"{limits.latency_p99_max_ms:g} ms, score divergence <= "
            f"{limits.score_divergence_max:g}, feature drift "
            f"PSI <= {limits.feature_drift_max_psi:g}."
        )
        checks = ("success-rate", "latency-p99", "score-divergence", "feature-drift")
        lines += [
            "",
            "| interval | gate | " + " | ".join(checks) + " | result |",
            "|---" * (len(checks) + 3) + "|",
        ]
        for interval in analysis.intervals:
            cells = []
            for name in checks:
                check = interval.checks[name]
                value = "no value" if check.value is None else f"{check.value:.4g}"
                cells.append(f"{value} {'ok' if check.passed else 'FAILED'}")
            lines.append(
                f"| {interval.number} | {interval.gate} | {' | '.join(cells)} | "
                f"{'failed' if interval.failed else 'passed'} |"
            )
        lines += [
            "",
            "The score-divergence limit is the demo's: a retrain on drifted data scores drifted "
            "traffic differently from the stale champion by design, so the platform's default "
            "(0.1, for retrains on unchanged data) would roll back every drift retrain.",
        ]
        verdict = "promoted" if analysis.phase == "Succeeded" else "rolled back"
        lines += [
            "",
            f"Result: {verdict} after {len(analysis.intervals)} intervals with "
            f"{analysis.failures} failed (rollback at {config.threshold}) in "
            f"{analysis.seconds:.1f}s; settle {analysis.phase}: {analysis.settled}.",
        ]
        return lines
