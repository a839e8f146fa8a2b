"""`mlops_platform.pipelines.sync` run for real through the kfp SDK (`kfp.Client`, kfp 2.16.1) against a
fake KFP API on loopback.

No KFP API server can run here (it needs MySQL, Argo and Kubernetes), so `FakeKfpApi` serves the
v2beta1 REST endpoints the SDK calls (healthz, pipelines, pipeline versions with the multipart
upload, experiments, recurring runs) with in-memory state and the server's checks that matter
here: unique display names, existing references, declared parameters. The SDK, its generated
client, its (de)serialisation and every HTTP request are real; the server is not. A real KFP was
never exercised.

The spec directory is what the pipelines component renders (`model.sync_files`), so these tests
also hold the two ends of the spec format together.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_platform.components.pipelines import model
from mlops_platform.components.pipelines.model import PipelinesConfig
from mlops_platform.pipelines import sync

REPO = Path(__file__).resolve().parents[2]
PREFIX = "/apis/v2beta1"
NOW = "2026-12-04T18:00:00Z"
DRIFT_PARAMETERS = {
    "data_uri": "s3://acme-datasets/churn/latest.parquet",
    "reference_uri": "s3://acme-datasets/churn/reference.parquet",
    "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class FakeKfpApi:
    """In-memory KFP v2beta1 API (single-user, as standalone KFP runs)."""

    def __init__(self, max_page_size: int = 100):
        self.max_page_size = max_page_size
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, dict[str, Any]] = {}
        self.experiments: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.refuse: tuple[str, str] | None = None  # (method, path) answered with a 500
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, method: str, url: str, headers, body: bytes) -> tuple[int, dict]:
        parsed = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = parsed.path.removeprefix(PREFIX)
        with self._lock:
            self.requests.append((method, path))
            if self.refuse == (method, path):
                return 500, {"error": "database is locked", "code": 13, "message": "boom"}
            try:
                return 200, self._route(method, path, query, headers, body)
            except ApiError as exc:
                return exc.status, {"error": str(exc), "message": str(exc), "code": exc.status}

    def _route(self, method, path, query, headers, body) -> dict:
        parts = path.strip("/").split("/")
        match method, parts:
            case "GET", ["healthz"]:
                return {"multi_user": False, "pipeline_store": "database"}
            case "GET", ["pipelines"]:
                return self._list(self.pipelines.values(), query, "pipelines")
            case "POST", ["pipelines"]:
                return self._create_pipeline(json.loads(body))
            case "POST", ["pipelines", "upload_version"]:
                return self._upload_version(query, headers, body)
            case "GET", ["pipelines", pipeline_id, "versions"]:
                self._get(self.pipelines, pipeline_id, "pipeline")
                versions = [v for v in self.versions.values() if v["pipeline_id"] == pipeline_id]
                return self._list(versions, query, "pipeline_versions")
            case "GET", ["experiments"]:
                return self._list(self.experiments.values(), query, "experiments")
            case "POST", ["experiments"]:
                return self._create_experiment(json.loads(body))
            case "POST", ["experiments", action] if action.endswith(":unarchive"):
                experiment_id = action.removesuffix(":unarchive")
                self._get(self.experiments, experiment_id, "experiment")["storage_state"] = (
                    "AVAILABLE"
                )
                return {}
            case "GET", ["recurringruns"]:
                runs = self.recurring_runs.values()
                if "experiment_id" in query:
                    runs = [r for r in runs if r["experiment_id"] == query["experiment_id"]]
                return self._list(runs, query, "recurringRuns")
            case "POST", ["recurringruns"]:
                return self._create_recurring_run(json.loads(body))
            case "DELETE", ["recurringruns", run_id]:
                self._get(self.recurring_runs, run_id, "recurring run")
                del self.recurring_runs[run_id]
                return {}
        raise ApiError(404, f"fake KFP API: no route for {method} {path}")

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _get(table, key, kind):
        if key not in table:
            raise ApiError(404, f"{kind} {key} not found")
        return table[key]

    def _list(self, items, query, field) -> dict:
        items = list(items)
        if query.get("filter"):
            for predicate in json.loads(query["filter"])["predicates"]:
                if predicate["operation"] not in (1, "EQUALS"):
                    raise ApiError(400, f"fake KFP API: unsupported filter {predicate}")
                items = [i for i in items if i.get(predicate["key"]) == predicate["stringValue"]]
        start = int(query.get("page_token") or 0)
        size = min(int(query.get("page_size") or 10), self.max_page_size)
        page = items[start : start + size]
        token = str(start + size) if start + size < len(items) else ""
        return {field: page, "total_size": len(items), "next_page_token": token}

    @staticmethod
    def _unique(table, name, kind, **scope):
        for item in table.values():
            if item["display_name"] == name and all(item[k] == v for k, v in scope.items()):
                raise ApiError(409, f"{kind} named {name!r} already exists")

    def _create_pipeline(self, body) -> dict:
        name = body.get("display_name") or body.get("name")
        if not name:
            raise ApiError(400, "pipeline name is required")
        self._unique(self.pipelines, name, "pipeline")
        # v2beta1 takes `name` and `display_name`; either stands for the other when missing
        pipeline = {
            "pipeline_id": self._id("pipeline"),
            "display_name": name,
            "name": body.get("name") or name,
            "description": body.get("description", ""),
            "created_at": NOW,
        }
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        return pipeline

    def _upload_version(self, query, headers, body) -> dict:
        pipeline = self._get(self.pipelines, query.get("pipelineid"), "pipeline")
        name = query.get("name")
        if not name:
            raise ApiError(400, "pipeline version name is required")
        self._unique(self.versions, name, "pipeline version", pipeline_id=pipeline["pipeline_id"])
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body
        )
        files = {
            part.get_param("name", header="content-disposition"): part.get_content()
            for part in message.iter_parts()
        }
        if "uploadfile" not in files:
            raise ApiError(400, "no uploadfile in the request")
        text = files["uploadfile"]
        text = text.decode() if isinstance(text, bytes) else text
        documents = list(yaml.safe_load_all(text))
        if "pipelineInfo" not in documents[0] or "root" not in documents[0]:
            raise ApiError(400, "not a compiled pipeline")
        version = {
            "pipeline_id": pipeline["pipeline_id"],
            "pipeline_version_id": self._id("version"),
            "display_name": query.get("display_name") or name,
            "name": name,
            "description": query.get("description", ""),
            "created_at": NOW,
            "pipeline_spec": documents[0],
        }
        self.versions[version["pipeline_version_id"]] = version
        return version

    def _create_experiment(self, body) -> dict:
        name = body.get("display_name")
        if not name:
            raise ApiError(400, "experiment display_name is required")
        self._unique(self.experiments, name, "experiment")
        experiment = {
            "experiment_id": self._id("experiment"),
            "display_name": name,
            "description": body.get("description", ""),
            "created_at": NOW,
            "storage_state": "AVAILABLE",
        }
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _create_recurring_run(self, body) -> dict:
        experiment = self._get(self.experiments, body.get("experiment_id"), "experiment")
        if experiment["storage_state"] == "ARCHIVED":
            raise ApiError(400, "cannot create a recurring run in an archived experiment")
        reference = body.get("pipeline_version_reference") or {}
        version = self._get(self.versions, reference.get("pipeline_version_id"), "version")
        if version["pipeline_id"] != reference.get("pipeline_id"):
            raise ApiError(400, "pipeline version does not belong to the pipeline")
        cron = (body.get("trigger") or {}).get("cron_schedule", {}).get("cron")
        if not cron or len(cron.split()) != 6:
            raise ApiError(400, f"invalid cron {cron!r}")
        declared = version["pipeline_spec"]["root"]["inputDefinitions"]["parameters"]
        parameters = (body.get("runtime_config") or {}).get("parameters") or {}
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise ApiError(400, f"parameters {unknown} are not inputs of the pipeline")
        run = {
            **body,
            "recurring_run_id": self._id("recurring"),
            "max_concurrency": str(body.get("max_concurrency", 1)),
            "status": "ENABLED" if body.get("mode") == "ENABLE" else "DISABLED",
            "created_at": NOW,
            "updated_at": NOW,
        }
        self.recurring_runs[run["recurring_run_id"]] = run
        return run

    # -- views for assertions --------------------------------------------------------------

    def runs_by_name(self) -> dict[str, dict[str, Any]]:
        runs: dict[str, dict[str, Any]] = {}
        for run in self.recurring_runs.values():
            assert run["display_name"] not in runs, f"two recurring runs {run['display_name']}"
            runs[run["display_name"]] = run
        return runs

    def versions_of(self, pipeline_name: str) -> list[dict[str, Any]]:
        (pipeline,) = [p for p in self.pipelines.values() if p["display_name"] == pipeline_name]
        return [v for v in self.versions.values() if v["pipeline_id"] == pipeline["pipeline_id"]]


def _handler(api: FakeKfpApi):
    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = api.handle(
                self.command, self.path, self.headers, self.rfile.read(length)
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args):  # keep pytest output clean
            pass

    return Handler


@pytest.fixture
def kfp_api():
    api = FakeKfpApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.host = f"http://127.0.0.1:{server.server_address[1]}"
    yield api
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_kfp_context(tmp_path, monkeypatch):
    # kfp.Client reads ~/.config/kfp/context.json: keep the developer's out of the test.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _config(**schedules) -> PipelinesConfig:
    return PipelinesConfig(schedules=schedules)


NIGHTLY_DRIFT = {"pipeline": "drift", "cron": "0 0 2 * * *", "parameters": DRIFT_PARAMETERS}
WEEKLY_TRAINING = {
    "pipeline": "training",
    "cron": "0 30 3 * * SUN",
    "parameters": {
        "data_uri": "s3://acme-datasets/churn/2023-2025.parquet",
        "tracking_uri": "http://mlflow.mlflow.svc.cluster.local:5000",
        "search_iterations": 8,
        "tolerance": 0.02,
    },
    "catchup": True,
    "max_concurrency": 2,
}


def _write(directory: Path, config: PipelinesConfig, texts=None) -> Path:
    """The ConfigMap as the Job sees it mounted: one file per key."""
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        old.unlink()
    for name, text in model.sync_files(config, texts).items():
        (directory / name).write_text(text)
    return directory


def _sync(kfp_api, directory: Path) -> sync.Changes:
    client = sync.connect(kfp_api.host, timeout_seconds=10)
    return sync.sync(client, sync.load_spec(directory), directory)


def _writes(kfp_api) -> list[tuple[str, str]]:
    return [(m, p) for m, p in kfp_api.requests if m != "GET"]


# --- the tests --------------------------------------------------------------------------------


def test_first_sync_creates_everything_and_a_second_changes_nothing(kfp_api, tmp_path):
    config = _config(**{"nightly-drift": NIGHTLY_DRIFT, "weekly-training": WEEKLY_TRAINING})
    directory = _write(tmp_path / "spec", config)

    changes = _sync(kfp_api, directory)
    texts = model.pipeline_texts()
    drift_version = sync.version_name("churn-drift", texts["drift"])
    training_version = sync.version_name("churn-training", texts["training"])
    # every shipped pipeline and its one version, the experiment and the two schedules
    shipped = [model.pipeline_info(texts[key])[0] for key in model.SHIPPED_PIPELINES]
    assert {"churn-drift", "churn-training", "churn-windows-drift", "churn-batch-scoring"} <= set(
        shipped
    )
    assert sorted(changes.created) == sorted(
        [
            "experiment churn",
            *(f"pipeline {name}" for name in shipped),
            *(
                f"pipeline version {sync.version_name(name, texts[key])}"
                for name, key in zip(shipped, model.SHIPPED_PIPELINES, strict=True)
            ),
            f"recurring run nightly-drift (0 0 2 * * *, {drift_version})",
            f"recurring run weekly-training (0 30 3 * * SUN, {training_version})",
        ]
    )
    assert changes.deleted == []

    (experiment,) = kfp_api.experiments.values()
    assert experiment["display_name"] == "churn"
    assert {(p["name"], p["description"]) for p in kfp_api.pipelines.values()} == {
        (model.pipeline_info(texts[key])[0], model.pipeline_info(texts[key])[1])
        for key in model.SHIPPED_PIPELINES
    }
    for key in model.SHIPPED_PIPELINES:
        name = model.pipeline_info(texts[key])[0]
        (version,) = kfp_api.versions_of(name)
        # the uploaded spec is exactly the committed compiled pipeline
        assert version["pipeline_spec"] == next(yaml.safe_load_all(texts[key]))
        assert version["display_name"] == sync.version_name(name, texts[key])

    runs = kfp_api.runs_by_name()
    assert sorted(runs) == ["nightly-drift", "weekly-training"]
    drift = runs["nightly-drift"]
    (drift_uploaded,) = kfp_api.versions_of("churn-drift")
    assert drift["pipeline_version_reference"] == {
        "pipeline_id": drift_uploaded["pipeline_id"],
        "pipeline_version_id": drift_uploaded["pipeline_version_id"],
    }
    assert drift["experiment_id"] == experiment["experiment_id"]
    assert drift["trigger"] == {"cron_schedule": {"cron": "0 0 2 * * *"}}
    assert drift["runtime_config"] == {"parameters": DRIFT_PARAMETERS}
    assert drift["mode"] == "ENABLE"
    assert drift["max_concurrency"] == "1"
    assert drift["no_catchup"] is True
    assert drift["service_account"] == "pipeline-runner"
    assert sync.owned(drift["description"])[0] == "nightly-drift"
    training = runs["weekly-training"]
    assert training["runtime_config"]["parameters"] == WEEKLY_TRAINING["parameters"]
    assert (training["no_catchup"], training["max_concurrency"]) == (False, "2")

    before = (dict(kfp_api.recurring_runs), dict(kfp_api.versions), len(_writes(kfp_api)))
    again = _sync(kfp_api, directory)
    assert not again and again.created == [] and again.deleted == []
    assert (dict(kfp_api.recurring_runs), dict(kfp_api.versions), len(_writes(kfp_api))) == before


def test_a_changed_pipeline_yaml_adds_one_version_and_moves_its_schedules(kfp_api, tmp_path):
    config = _config(**{"nightly-drift": NIGHTLY_DRIFT, "weekly-training": WEEKLY_TRAINING})
    directory = _write(tmp_path / "spec", config)
    _sync(kfp_api, directory)
    old_runs = kfp_api.runs_by_name()

    texts = model.pipeline_texts()
    # what a recompile after a change to the pipeline's docstring looks like
    changed = dict(texts, drift=texts["drift"].replace("drift is found", "drift is detected", 1))
    assert changed["drift"] != texts["drift"]
    assert model.sync_digest(config, changed) != model.sync_digest(config)
    _write(directory, config, changed)
    changes = _sync(kfp_api, directory)

    new_version = sync.version_name("churn-drift", changed["drift"])
    assert changes.created == [
        f"pipeline version {new_version}",
        f"recurring run nightly-drift (0 0 2 * * *, {new_version})",
    ]
    assert changes.deleted == [
        f"recurring run nightly-drift ({old_runs['nightly-drift']['recurring_run_id']})"
    ]
    assert len(kfp_api.versions_of("churn-drift")) == 2  # the old one stays for past runs
    assert len(kfp_api.versions_of("churn-training")) == 1
    runs = kfp_api.runs_by_name()
    assert runs["weekly-training"] == old_runs["weekly-training"]  # untouched
    (newest,) = [v for v in kfp_api.versions_of("churn-drift") if v["name"] == new_version]
    assert (
        runs["nightly-drift"]["pipeline_version_reference"]["pipeline_version_id"]
        == newest["pipeline_version_id"]
    )
    assert not _sync(kfp_api, directory)


def test_removed_and_changed_schedules_converge_and_hand_made_runs_stay(kfp_api, tmp_path):
    directory = _write(
        tmp_path / "spec",
        _config(**{"nightly-drift": NIGHTLY_DRIFT, "weekly-training": WEEKLY_TRAINING}),
    )
    _sync(kfp_api, directory)
    client = sync.connect(kfp_api.host, timeout_seconds=10)
    (version,) = kfp_api.versions_of("churn-drift")
    (experiment,) = kfp_api.experiments.values()
    by_hand = client.create_recurring_run(
        experiment_id=experiment["experiment_id"],
        job_name="nightly-drift",  # same name as ours, but no marker: not ours
        description="an analyst's own schedule",
        cron_expression="0 0 5 * * *",
        params=DRIFT_PARAMETERS,
        pipeline_id=version["pipeline_id"],
        version_id=version["pipeline_version_id"],
    ).recurring_run_id
    old = {
        r["display_name"]: r
        for r in kfp_api.recurring_runs.values()
        if r["recurring_run_id"] != by_hand
    }

    paused = dict(NIGHTLY_DRIFT, cron="0 15 1 * * MON-FRI", enabled=False)
    _write(directory, _config(**{"nightly-drift": paused}))
    changes = _sync(kfp_api, directory)

    assert [c.split(" (")[0] for c in changes.created] == ["recurring run nightly-drift"]
    assert sorted(changes.deleted) == sorted(
        [
            f"recurring run nightly-drift ({old['nightly-drift']['recurring_run_id']})",
            f"recurring run weekly-training ({old['weekly-training']['recurring_run_id']})",
        ]
    )
    ours = [r for r in kfp_api.recurring_runs.values() if sync.owned(r["description"])]
    assert len(ours) == 1
    assert ours[0]["trigger"]["cron_schedule"]["cron"] == "0 15 1 * * MON-FRI"
    assert (ours[0]["mode"], ours[0]["status"]) == ("DISABLE", "DISABLED")
    assert by_hand in kfp_api.recurring_runs
    assert not _sync(kfp_api, directory)

    _write(directory, _config())
    assert _sync(kfp_api, directory).deleted == [
        f"recurring run nightly-drift ({ours[0]['recurring_run_id']})"
    ]
    assert list(kfp_api.recurring_runs) == [by_hand]
    # pipelines and versions stay published
    assert len(kfp_api.pipelines) == len(model.SHIPPED_PIPELINES)


def test_an_archived_experiment_is_unarchived(kfp_api, tmp_path):
    directory = _write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT}))
    _sync(kfp_api, directory)
    (experiment,) = kfp_api.experiments.values()
    experiment["storage_state"] = "ARCHIVED"  # someone archived it in the UI
    _write(directory, _config(**{"nightly-drift": {**NIGHTLY_DRIFT, "cron": "0 0 4 * * *"}}))
    changes = _sync(kfp_api, directory)
    assert changes.created[0] == "experiment churn (unarchived)"
    assert experiment["storage_state"] == "AVAILABLE"
    assert len(kfp_api.experiments) == 1
    assert not _sync(kfp_api, directory)


def test_duplicates_of_an_owned_run_are_removed(kfp_api, tmp_path):
    directory = _write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT}))
    _sync(kfp_api, directory)
    (run,) = kfp_api.recurring_runs.values()
    copy = dict(run, recurring_run_id="recurring-copy")  # e.g. a sync killed between steps
    kfp_api.recurring_runs["recurring-copy"] = copy
    assert _sync(kfp_api, directory).deleted == ["recurring run nightly-drift (recurring-copy)"]
    assert list(kfp_api.recurring_runs) == [run["recurring_run_id"]]


def test_every_page_of_every_list_is_read(kfp_api, tmp_path):
    kfp_api.max_page_size = 1
    config = _config(**{"nightly-drift": NIGHTLY_DRIFT, "weekly-training": WEEKLY_TRAINING})
    directory = _write(tmp_path / "spec", config)
    _sync(kfp_api, directory)
    assert not _sync(kfp_api, directory)
    assert len(kfp_api.recurring_runs) == 2


def test_the_module_runs_as_the_job_runs_it(kfp_api, tmp_path):
    directory = _write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT}))
    command = [
        sys.executable,
        "-m",
        "mlops_platform.pipelines.sync",
        str(directory),
        "--host",
        kfp_api.host,
    ]
    env = {"HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "created recurring run nightly-drift" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.splitlines()[-1] == "KFP already matches the spec: nothing changed"


def test_a_refused_call_fails_with_the_answer_after_saying_what_was_done(kfp_api, tmp_path):
    kfp_api.refuse = ("POST", "/recurringruns")
    directory = _write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_platform.pipelines.sync",
            str(directory),
            "--host",
            kfp_api.host,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 1
    assert "created experiment churn" in result.stdout.splitlines()
    assert "created pipeline churn-drift" in result.stdout.splitlines()
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("kfp sync failed: the KFP API answered 500 Internal Server Error: ")
    )
    assert "Traceback" not in result.stderr
    assert kfp_api.recurring_runs == {}
    # the next attempt (the Job's retry) finishes the work without redoing the rest
    kfp_api.refuse = None
    changes = _sync(kfp_api, directory)
    assert [c.split(" (")[0] for c in changes.created] == ["recurring run nightly-drift"]


def test_an_unreachable_api_fails_with_one_line(tmp_path):
    directory = _write(tmp_path / "spec", _config())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_platform.pipelines.sync",
            str(directory),
            "--host",
            "http://127.0.0.1:9",
            "--timeout",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("kfp sync failed: the KFP API at http://127.0.0.1:9 did not answer within 0 s")
    )


def test_a_broken_spec_changes_nothing(kfp_api, tmp_path):
    directory = _write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT}))
    spec = json.loads((directory / "spec.json").read_text())
    spec["recurring_runs"]["nightly-drift"]["pipeline"] = "churn-nowcast"
    (directory / "spec.json").write_text(json.dumps(spec))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_platform.pipelines.sync",
            str(directory),
            "--host",
            kfp_api.host,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "kfp sync failed: spec.recurring_runs.nightly-drift.pipeline: 'churn-nowcast' is not in "
        "spec.pipelines"
    )
    assert kfp_api.requests == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(version=2), "expected a spec object with version 1"),
        (lambda s: s["experiment"].pop("name"), "spec.experiment.name: expected str, got None"),
        (
            lambda s: s["pipelines"][0].update(file="../etc/passwd"),
            "spec.pipelines[0].file: no file '../etc/passwd' in",
        ),
        (
            lambda s: s["pipelines"][1].update(name=s["pipelines"][0]["name"]),
            "spec.pipelines: pipeline names must be unique",
        ),
        (
            lambda s: s["recurring_runs"]["nightly-drift"].update(max_concurrency=True),
            "spec.recurring_runs.nightly-drift.max_concurrency: expected int, got True",
        ),
        (
            lambda s: s["recurring_runs"].update(Nightly=s["recurring_runs"]["nightly-drift"]),
            "spec.recurring_runs.Nightly: keys are lowercase letters, digits and '-'",
        ),
    ],
)
def test_load_spec_names_what_is_wrong(tmp_path, edit, message):
    directory = _write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT}))
    spec = json.loads((directory / "spec.json").read_text())
    edit(spec)
    (directory / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(sync.SpecError) as info:
        sync.load_spec(directory)
    assert message in str(info.value)


def test_fingerprint_covers_everything_a_recurring_run_is_made_of(tmp_path):
    spec = sync.load_spec(_write(tmp_path / "spec", _config(**{"nightly-drift": NIGHTLY_DRIFT})))
    (run,) = spec.recurring_runs
    base = sync.fingerprint(run, "churn", "v1")
    assert sync.fingerprint(run, "churn", "v1") == base
    variants = [
        sync.fingerprint(run, "other", "v1"),
        sync.fingerprint(run, "churn", "v2"),
        *(
            sync.fingerprint(type(run)(**{**run.__dict__, field: value}), "churn", "v1")
            for field, value in [
                ("cron", "0 0 3 * * *"),
                ("parameters", {**run.parameters, "psi_threshold": 0.3}),
                ("enabled", False),
                ("max_concurrency", 2),
                ("no_catchup", False),
                ("service_account", "someone-else"),
            ]
        ),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_descriptions_round_trip_and_foreign_ones_are_not_ours():
    text = sync.description("nightly-drift", "0123456789abcdef", "churn-drift")
    assert sync.owned(text) == ("nightly-drift", "0123456789abcdef")
    assert sync.owned("an analyst's own schedule") is None
    assert sync.owned(None) is None
    assert sync.owned(f"copied: {text}") is None
    # KFP keeps descriptions in MySQL; stay well inside a VARCHAR(255) even with a 40-char key
    assert len(sync.description("k" * 40, "0123456789abcdef", "churn-training")) <= 255
