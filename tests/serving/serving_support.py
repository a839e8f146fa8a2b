"""Helpers for the model-server tests: a churn-like model, `mlops serve` processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ["tenure", "orders", "spend", "plan"]
PROFILE = {
    "version": 1,
    "features": {
        "tenure": {
            "kind": "numeric",
            "edges": [25.0, 50.0, 75.0],
            "fractions": [0.25, 0.25, 0.25, 0.25],
        },
        "plan": {
            "kind": "categorical",
            "fractions": {"basic": 0.5, "gold": 0.5, "__other__": 0.0},
        },
    },
}


def training_frame(n: int = 400, seed: int = 0) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    spend = rng.normal(50, 10, n)
    spend[rng.random(n) < 0.1] = np.nan  # makes `spend` optional in the signature
    return pd.DataFrame(
        {
            "tenure": rng.uniform(0, 100, n),
            "orders": rng.integers(0, 20, n).astype("int64"),
            "spend": spend,
            "plan": rng.choice(["basic", "gold"], n),
        }
    )


def build_churn_model(target: Path) -> dict[str, Any]:
    """Fit + save a Pipeline with the training contract (signature, example, profile)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    df = training_frame()
    y = (df["tenure"] < 30).astype(int)
    numeric = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    pre = ColumnTransformer(
        [
            ("num", numeric, ["tenure", "orders", "spend"]),
            # handle_unknown="error": an unseen plan makes the model itself raise.
            ("cat", OneHotEncoder(handle_unknown="error"), ["plan"]),
        ]
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression())]).fit(df, y)
    path = target / "churn"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(df, model.predict_proba(df)[:, 1]),
        input_example=df.head(3),
        metadata={"reference_profile": PROFILE},
        skops_trusted_types=["numpy.dtype"],  # skops, as the training pipeline logs it
        pip_requirements=["scikit-learn"],
    )
    return {"path": str(path), "model": model, "frame": df}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Response:
    status: int
    body: Any
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerProcess:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | list[Any] | None = None,
        content_type: str = "application/json",
    ) -> Response:
        data = None
        if isinstance(body, dict | list):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        headers = {"Content-Type": content_type} if data is not None else {}
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                status = r.status
                headers = {k.lower(): v for k, v in r.headers.items()}
        except urllib.error.HTTPError as err:
            raw = err.read()
            status = err.code
            headers = {k.lower(): v for k, v in err.headers.items()}
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode()
        return Response(status, parsed, raw, headers)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, body: Any, content_type: str = "application/json") -> Response:
        return self.request("POST", path, body, content_type)

    def metrics(self) -> str:
        return self.get("/metrics").body

    def log(self) -> str:
        return self.log_path.read_text()


def start_server(
    model_uri: str, tmp_path: Path, env: dict[str, str] | None = None, wait: bool = True
) -> ServerProcess:
    port = free_port()
    log_path = tmp_path / f"server-{port}.log"
    full_env = {
        **os.environ,
        "MLOPS_SERVE_PREDICTION_FILE": str(tmp_path / "predictions.jsonl"),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)]),
        **(env or {}),
    }
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlops_platform.cli",
                "serve",
                "--model-uri",
                model_uri,
                "--port",
                str(port),
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", proc, log_path)
    if wait:
        wait_ready(server)
    return server


def wait_ready(server: ServerProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited {server.proc.returncode}:\n{server.log()}")
        try:
            if server.get("/v2/health/ready").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not ready after {timeout}s:\n{server.log()}")


def stop_server(server: ServerProcess) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            return server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
            raise
    return server.proc.returncode


def split_payload(frame: Any) -> dict[str, Any]:
    data = json.loads(frame.to_json(orient="split", index=False, double_precision=15))
    return {"dataframe_split": {"columns": data["columns"], "data": data["data"]}}


class SlowModel:
    """pyfunc model whose predict sleeps `sleep` seconds: an in-flight request on demand."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        time.sleep(float(model_input["sleep"].iloc[0]))
        return np.ones(len(model_input))


def build_slow_model(target: Path) -> str:
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    python_model = type("SlowPyfunc", (SlowModel, mlflow.pyfunc.PythonModel), {})()
    path = target / "slow"
    example = pd.DataFrame({"sleep": [0.0]})
    mlflow.pyfunc.save_model(
        str(path),
        python_model=python_model,
        signature=infer_signature(example, np.ones(1)),
        pip_requirements=["mlflow"],
    )
    return str(path)


class RejectingModel:
    """pyfunc model that raises ValueError quoting the value of `v` unless it is "ok" (or "",
    the warm-up row): input only the model itself knows to be bad (the schema takes any string)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        bad = [v for v in model_input["v"].tolist() if v not in ("ok", "")]
        if bad:
            raise ValueError(f"unknown values {bad}")
        return np.ones(len(model_input))


def build_rejecting_model(target: Path) -> str:
    import mlflow.pyfunc
    import pandas as pd
    from mlflow.models import infer_signature

    python_model = type("RejectingPyfunc", (RejectingModel, mlflow.pyfunc.PythonModel), {})()
    path = target / "rejecting"
    example = pd.DataFrame({"v": ["ok"]})
    mlflow.pyfunc.save_model(
        str(path),
        python_model=python_model,
        signature=infer_signature(example, np.ones(1)),
        pip_requirements=["mlflow"],
    )
    return str(path)


def rss_kib(pid: int) -> int:
    """Resident set size of a process (VmRSS of /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def register_churn(model_path: str, tracking_dir: Path) -> str:
    """Register the saved model as churn@champion in a SQLite tracking store; returns its URI."""
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tracking_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        version = mlflow.register_model(model_path, "churn")
        MlflowClient().set_registered_model_alias("churn", "champion", version.version)
    finally:
        mlflow.set_tracking_uri(None)
    return uri


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")) and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in metrics")


@dataclass
class TrackingServer:
    """`mlflow server` on loopback: SQLite backend, artifacts proxied (`mlflow-artifacts:`)."""

    uri: str
    proc: subprocess.Popen[bytes]
    folder: Path

    def log(self) -> str:
        return (self.folder / "server.log").read_text()


def start_tracking_server(
    folder: Path, port: int | None = None, timeout: float = 90
) -> TrackingServer:
    """Start the tracking server and wait up to `timeout` seconds for `/health` (the pattern
    of the MLflow tests)."""
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{folder / 'mlflow.db'}",
                "--artifacts-destination",
                str(folder / "artifacts"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group: `mlflow server` runs the app in a child (uvicorn).
            start_new_session=True,
        )
    server = TrackingServer(f"http://127.0.0.1:{port}", proc, folder)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"mlflow server exited {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.uri}/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_tracking_server(server)
            raise AssertionError(f"mlflow server not healthy after {timeout} s:\n{server.log()}")
        time.sleep(0.3)


def stop_tracking_server(server: TrackingServer) -> None:
    if server.proc.poll() is not None:
        return
    os.killpg(server.proc.pid, signal.SIGTERM)
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=15)


def register_version(tracking_uri: str, model_path: str, name: str, alias: str = "") -> str:
    """Upload a saved model into a run of the tracking server and register it as a version.

    The artifacts go through the server (`mlflow-artifacts:`), as a training pipeline's would;
    with `alias` set, the alias is moved to the new version. Returns the version.
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("serving-tests")
    )
    run = client.create_run(experiment_id)
    client.log_artifacts(run.info.run_id, model_path, "model")
    client.set_terminated(run.info.run_id)
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name)
    version = client.create_model_version(
        name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


V2_DATATYPES = {"tenure": "FP64", "orders": "INT64", "spend": "FP64", "plan": "BYTES"}


def v2_infer_body(frame: Any) -> dict[str, Any]:
    """An OIP v2 infer request with one typed tensor per column of the churn-like frame."""
    split = json.loads(frame.to_json(orient="split", index=False, double_precision=15))
    return {
        "inputs": [
            {
                "name": c,
                "shape": [len(split["data"])],
                "datatype": V2_DATATYPES[c],
                "data": [row[i] for row in split["data"]],
            }
            for i, c in enumerate(split["columns"])
        ]
    }


def build_tree_model(target: Path) -> dict[str, Any]:
    """The training pipeline's model shape (ordinal-encoded categorical + HGB) on the serving
    tests' frame, saved as the pipeline logs it."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from mlops_platform.pipelines.components.register_model.logic import SKOPS_TRUSTED_TYPES

    df = training_frame(n=600)
    y = ((df["tenure"] < 30) ^ (df["plan"] == "gold")).astype(int)
    pre = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                ["plan"],
            ),
            ("num", "passthrough", ["tenure", "orders", "spend"]),
        ],
        verbose_feature_names_out=False,
    )
    hgb = HistGradientBoostingClassifier(categorical_features=[0], max_iter=30, random_state=0)
    model = Pipeline([("pre", pre), ("clf", hgb)]).fit(df, y)
    path = target / "tree"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(df, model.predict_proba(df)[:, 1]),
        input_example=df.head(3),
        skops_trusted_types=[*SKOPS_TRUSTED_TYPES, "numpy.dtype"],
        pip_requirements=["scikit-learn"],
    )
    return {"path": str(path), "model": model, "frame": df}
