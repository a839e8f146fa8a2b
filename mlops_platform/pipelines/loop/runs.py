"""Where the retrain receiver starts drift-pipeline runs, and what it reads back from there.

`RetrainRuns` is the small interface the receiver needs: the recent runs of a model, and
starting one. `KfpRuns` talks to the KFP API through the kfp SDK; `LocalRuns` runs the same
pipeline with kfp's local runner in this process (tests and demos: "the local runner stands in
for the KFP API").

The receiver keeps no state of its own: deduplication and the rate limit read the runs back
from here. With KFP that is KFP's run list, so a restarted receiver (or a second replica) sees
every run already started; `LocalRuns` keeps its list in memory, as its runs do.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("mlops_platform.pipelines.loop.receiver")

RUN_PREFIX = "retrain"
# KFP lists at most this many runs per page; more than one page of retrains of one experiment
# inside a rate-limit period would mean the limit is not doing its job anyway.
LIST_PAGE_SIZE = 100
PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
# The retrain pipelines a drift alert may start: on fixed data files, or on the prediction
# log's windows that the loop's consumer writes (with the labels that arrived).
COMPILED_PIPELINES = {
    "drift": PIPELINES / "drift_pipeline.yaml",
    "windows_drift": PIPELINES / "windows_drift_pipeline.yaml",
}
COMPILED_PIPELINE = COMPILED_PIPELINES["drift"]


def run_name(model: str, episode: str) -> str:
    """`retrain-<model>-<episode>`: the model and the alert episode that caused the run."""
    return f"{RUN_PREFIX}-{model}-{episode}"


_RUN_NAME = re.compile(rf"^{RUN_PREFIX}-(?P<model>.+)-(?P<episode>[0-9a-f]{{12}})$")


@dataclass
class RetrainRun:
    run_id: str
    model: str
    episode: str
    created_at: datetime
    state: str = "RUNNING"
    output: str | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)


class RetrainRuns(Protocol):
    def recent(self, model: str) -> list[RetrainRun]:
        """The model's retrain runs, newest first."""
        ...

    def start(self, model: str, episode: str, arguments: dict[str, Any]) -> RetrainRun: ...


def parse_run(run_id: str, display_name: str, created_at: datetime) -> RetrainRun | None:
    match = _RUN_NAME.match(display_name or "")
    if match is None:
        return None
    return RetrainRun(
        run_id=run_id,
        model=match["model"],
        episode=match["episode"],
        created_at=created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC),
    )


class KfpRuns:
    """Runs of the compiled drift pipeline in one KFP experiment."""

    def __init__(
        self,
        host: str,
        experiment: str,
        pipeline_root: str = "",
        client: Any = None,
        package: Path = COMPILED_PIPELINE,
    ):
        self._host = host
        self._client = client
        self._experiment = experiment
        self._pipeline_root = pipeline_root or None
        self._package = package
        self._experiment_id: str | None = None

    @property
    def client(self) -> Any:
        # kfp.Client checks KFP's health when built: built on first use, so the receiver starts
        # (and answers 503, which Alertmanager retries) while KFP is still coming up.
        if self._client is None:
            import kfp

            self._client = kfp.Client(host=self._host)
        return self._client

    def _experiment_id_or_create(self) -> str:
        if self._experiment_id is None:
            # kfp's create_experiment returns the existing experiment of that name.
            experiment = self.client.create_experiment(name=self._experiment)
            self._experiment_id = experiment.experiment_id
        return self._experiment_id

    def recent(self, model: str) -> list[RetrainRun]:
        response = self.client.list_runs(
            experiment_id=self._experiment_id_or_create(),
            page_size=LIST_PAGE_SIZE,
            sort_by="created_at desc",
        )
        runs = []
        for run in response.runs or []:
            parsed = parse_run(run.run_id, run.display_name, run.created_at)
            if parsed is not None and parsed.model == model:
                parsed.state = str(run.state)
                runs.append(parsed)
        return runs

    def start(self, model: str, episode: str, arguments: dict[str, Any]) -> RetrainRun:
        result = self.client.create_run_from_pipeline_package(
            str(self._package),
            arguments=arguments,
            run_name=run_name(model, episode),
            experiment_id=self._experiment_id_or_create(),
            pipeline_root=self._pipeline_root,
        )
        return RetrainRun(
            run_id=result.run_id, model=model, episode=episode, created_at=datetime.now(UTC)
        )


class LocalRuns:
    """The drift pipeline under kfp's local runner, one run at a time in a worker thread."""

    def __init__(self, pipeline_root: Path, pipeline: str = "drift"):
        from kfp import local

        self._pipeline = pipeline
        self._root = Path(pipeline_root)
        self._root.mkdir(parents=True, exist_ok=True)
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(self._root))
        self._runs: list[RetrainRun] = []
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrain")

    def recent(self, model: str) -> list[RetrainRun]:
        with self._lock:
            return [run for run in reversed(self._runs) if run.model == model]

    def all(self) -> list[RetrainRun]:
        with self._lock:
            return list(self._runs)

    def start(self, model: str, episode: str, arguments: dict[str, Any]) -> RetrainRun:
        with self._lock:
            run = RetrainRun(
                run_id=f"local-{len(self._runs) + 1}",
                model=model,
                episode=episode,
                created_at=datetime.now(UTC),
            )
            self._runs.append(run)
        future = self._worker.submit(_run_pipeline, self._pipeline, arguments)
        future.add_done_callback(lambda done: _finish(run, done))
        return run

    def close(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)


def _run_pipeline(pipeline: str, arguments: dict[str, Any]) -> str:
    if pipeline == "windows_drift":
        from mlops_platform.pipelines.pipelines.windows_drift import (
            windows_drift_pipeline as function,
        )
    else:
        from mlops_platform.pipelines.pipelines.drift import drift_pipeline as function
    return str(function(**arguments).outputs["Output"])


def _finish(run: RetrainRun, future: Future) -> None:
    error = future.exception()
    if error is None:
        run.state, run.output = "SUCCEEDED", future.result()
    else:
        run.state, run.error = "FAILED", str(error)
    # The KFP backend's runs report their end in KFP; local ones only here.
    log.info(
        json.dumps(
            {
                "event": "retrain_finished",
                "run_id": run.run_id,
                "model": run.model,
                "state": run.state,
                "output": run.output,
            },
            sort_keys=True,
        )
    )
    run.done.set()
