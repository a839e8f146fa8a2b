"""The churn feature repository for real: the platform's apply Job command registers
`mlops_platform/components/feast/repo/churn_features.py` (registry in S3: moto), the CronJob's command
materializes the offline Parquet from the features bucket into a real Redis, and the training
step's script builds a point-in-time correct frame with `get_historical_features`.

Runs in the throwaway feast venv of test_feast_real.py (Feast pins pandas 2).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from mlops_platform.components.feast import FeastConfig, model, repo
from mlops_platform.pipelines.components.feature_store_frame import component as frame_component
from mlops_platform.pipelines.data import churn
from tests.feast.test_feast_real import (  # noqa: F401  (module-scoped fixtures)
    ACCESS_KEY,
    BUCKET,
    feast_python,
    redis,
    s3,
)

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)
# customer -> [(snapshot time, sessions_30d)]; every other feature comes from churn.generate.
SNAPSHOTS = {
    1: [(NOW - timedelta(days=10), 3), (NOW - timedelta(days=2), 99)],
    2: [(NOW - timedelta(days=3), 11)],
    3: [(NOW - timedelta(days=3), 17)],
    # Older than the views' 90-day TTL at any label time below: never joined, never online.
    4: [(NOW - timedelta(days=200), 23)],
}


def _snapshots() -> pd.DataFrame:
    rows = [(c, t, s) for c, snaps in SNAPSHOTS.items() for t, s in snaps]
    frame = churn.generate(len(rows), seed=3).drop(columns=[churn.LABEL])
    frame[churn.ID] = pd.array([c for c, _, _ in rows], dtype="int64")
    frame[churn.TIMESTAMP] = pd.to_datetime([t for _, t, _ in rows], utc=True)
    frame["sessions_30d"] = pd.array([s for _, _, s in rows], dtype="int64")
    return frame


def _s3_client(endpoint):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=ACCESS_KEY,
    )


def _run(command, env, cwd=None, timeout=300):
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (command[:3], result.stdout[-2000:], result.stderr[-4000:])
    return result


def _adapted(command: list[str], repo_dir: Path, feast_bin: Path, password_file: Path) -> list[str]:
    """A pod's command with the repository at `repo_dir`, this venv's feast and the Redis
    password's Secret file at `password_file` (the command's own wrapper reads it)."""
    adapted = [
        part.replace(model.REPO_DIR, str(repo_dir)).replace(model.PASSWORD_FILE, str(password_file))
        for part in command
    ]
    return [
        str(feast_bin) if part == "feast" else part.replace("exec feast ", f"exec {feast_bin} ")
        for part in adapted
    ]


@pytest.fixture(scope="module")
def applied(feast_python, redis, s3, tmp_path_factory):  # noqa: F811
    """The repository applied and materialized as the platform's Job and CronJob do."""
    redis_port, password = redis
    tmp = tmp_path_factory.mktemp("churn-repo")
    config = FeastConfig()
    offline = f"s3://{BUCKET}/{config.offline_store.data_prefix}"
    store_data = model.render(
        config, "local", f"s3://{BUCKET}", "127.0.0.1", redis_port
    ).config_map["data"]
    objects = repo.render(config, "local", offline, store_data)
    repo_dir = tmp / "repo"
    repo_dir.mkdir()
    (repo_dir / model.FEATURE_STORE_YAML_KEY).write_text(store_data[model.FEATURE_STORE_YAML_KEY])
    (repo_dir / repo.DEFINITIONS_FILE).write_text(objects[0]["data"][repo.DEFINITIONS_FILE])

    parquet = tmp / "customer_features.parquet"
    _snapshots().to_parquet(parquet, index=False)
    key = repo.offline_table_uri(offline).removeprefix(f"s3://{BUCKET}/")
    _s3_client(s3).upload_file(str(parquet), BUCKET, key)

    # The pods' environment: the Secret's password, the identity's keys and MinIO endpoint,
    # the repo ConfigMap's offline URI.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp),
        "TMPDIR": str(tmp),
        "PYTHONDONTWRITEBYTECODE": "1",
        model.PASSWORD_ENV: password,
        "FEAST_S3_ENDPOINT_URL": s3,
        "AWS_ENDPOINT_URL": s3,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "FEAST_USAGE": "False",
        repo.OFFLINE_URI_ENV: objects[0]["data"][repo.OFFLINE_URI_KEY],
    }
    feast_bin = feast_python.parent / "feast"
    job, cron_job = objects[1], objects[2]
    apply = job["spec"]["template"]["spec"]["containers"][0]["command"]
    materialize = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    # The Job and CronJob get the password only as the mounted Secret file.
    password_file = tmp / "redis-password"
    password_file.write_text(password)
    job_env = {k: v for k, v in env.items() if k != model.PASSWORD_ENV}
    applied_out = _run(_adapted(apply, repo_dir, feast_bin, password_file), job_env)
    _run(_adapted(materialize, repo_dir, feast_bin, password_file), job_env)
    return {
        "env": env,
        "repo": repo_dir,
        "python": feast_python,
        "registry": f"s3://{BUCKET}/{config.registry.path}",
        "config": config,
        "apply_output": applied_out.stdout + applied_out.stderr,
        "password": password,
        "tmp": tmp,
    }


ONLINE_READ = """
import json, sys
from feast import FeatureStore
store = FeatureStore(repo_path=sys.argv[1])
service = store.get_feature_service("churn_model")
rows = [{"customer_id": c} for c in (1, 2, 3, 4, 99)]
online = store.get_online_features(features=service, entity_rows=rows).to_dict()
print(json.dumps({
    "views": sorted(v.name for v in store.list_feature_views()),
    "entities": [e.name for e in store.list_entities()],
    "services": [s.name for s in store.list_feature_services()],
    "online": {k: online[k] for k in ("customer_id", "sessions_30d", "payment_method")},
    "features": len(online) - 1,
}))
"""


def test_apply_registers_the_churn_repository_and_materialization_fills_redis(applied):
    result = _run([str(applied["python"]), "-c", ONLINE_READ, str(applied["repo"])], applied["env"])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["views"] == [
        "customer_behaviour",
        "customer_demographics",
        "customer_marketing",
        "customer_temporal",
    ]
    assert report["entities"] == ["customer"]
    assert report["services"] == ["churn_model"]
    assert report["features"] == len(churn.FEATURE_NAMES)
    online = report["online"]
    # The latest snapshot of each customer inside the TTL; customer 4's is too old, 99 unknown.
    assert online["customer_id"] == [1, 2, 3, 4, 99]
    assert online["sessions_30d"] == [99, 11, 17, None, None]
    categories = set(churn.FEATURE_SPECS["payment_method"].categories)
    assert all(value in categories for value in online["payment_method"][:3])
    assert online["payment_method"][3:] == [None, None]
    assert applied["password"] not in applied["apply_output"]


def test_training_frame_is_point_in_time_correct(applied):
    tmp = applied["tmp"]
    entities = pd.DataFrame(
        {
            churn.ID: pd.array([1, 1, 2, 3, 4, 99], dtype="int64"),
            churn.TIMESTAMP: pd.to_datetime(
                [
                    NOW - timedelta(days=5),  # between customer 1's snapshots: the older one
                    NOW - timedelta(days=1),  # after both: the newer one
                    NOW - timedelta(days=4),  # before customer 2's only snapshot: nothing
                    NOW - timedelta(days=1),
                    NOW - timedelta(days=1),  # customer 4's snapshot is past the TTL
                    NOW - timedelta(days=1),  # unknown customer
                ],
                utc=True,
            ),
            churn.LABEL: pd.array([1, 0, 1, 0, 1, 0], dtype="int64"),
        }
    )
    entities_path = tmp / "entities.parquet"
    entities.to_parquet(entities_path, index=False)
    output = tmp / "frame" / "frame.parquet"
    report_path = tmp / "frame" / "report.json"
    # The component's own command and arguments, with local paths for the artifacts.
    result = _run(
        [
            str(applied["python"]),
            "-c",
            frame_component.SCRIPT,
            "--entities",
            str(entities_path),
            "--output",
            str(output),
            "--registry",
            applied["registry"],
            "--project",
            applied["config"].project,
            "--feature-service",
            repo.FEATURE_SERVICE,
            "--report",
            str(report_path),
        ],
        applied["env"],
    )
    report = json.loads(report_path.read_text())
    assert report == {
        "entity_rows": 6,
        "rows": 3,
        "dropped_without_features": 3,
        "features": 47,
        "feature_service": "churn_model",
    }
    assert json.loads(result.stdout.strip().splitlines()[-1]) == report
    frame = pd.read_parquet(output).sort_values([churn.ID, churn.TIMESTAMP]).reset_index(drop=True)
    # The churn dataset's layout: what validate_data and train_model read.
    assert list(frame.columns) == [churn.ID, churn.TIMESTAMP, *churn.FEATURE_NAMES, churn.LABEL]
    assert frame[churn.ID].tolist() == [1, 1, 3]
    # The value written after the label time (99, two days ago) is not used for the label of
    # five days ago; the label of yesterday sees it.
    assert frame["sessions_30d"].tolist() == [3, 99, 17]
    assert frame[churn.LABEL].tolist() == [1, 0, 0]
    snapshots = _snapshots().set_index([churn.ID, churn.TIMESTAMP])
    first = snapshots.loc[(1, pd.Timestamp(NOW - timedelta(days=10)))]
    assert frame.loc[0, "payment_method"] == first["payment_method"]
    assert frame.loc[0, "avg_order_value"] == pytest.approx(first["avg_order_value"])


def test_training_frame_names_an_unknown_feature_service(applied):
    entities = pd.DataFrame(
        {churn.ID: [1], churn.TIMESTAMP: pd.to_datetime([NOW], utc=True), churn.LABEL: [0]}
    )
    path = applied["tmp"] / "one.parquet"
    entities.to_parquet(path, index=False)
    result = subprocess.run(
        [
            str(applied["python"]),
            "-c",
            frame_component.SCRIPT,
            "--entities",
            str(path),
            "--output",
            str(applied["tmp"] / "never.parquet"),
            "--registry",
            applied["registry"],
            "--project",
            "mlops",
            "--feature-service",
            "fraud_model",
        ],
        env=applied["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert (
        "feature service 'fraud_model' is not in project 'mlops' "
        f"(registry {applied['registry']}); it has ['churn_model']" in result.stderr
    )
    assert not (applied["tmp"] / "never.parquet").exists()


SERVED = ["sessions_30d", "avg_order_value", "payment_method"]


def _feature_server(applied):
    """`feast serve` with the Deployment's command, on loopback, over the applied registry."""
    from tests.feast.test_feast_real import _free_port, _wait_for_port

    command = model.server_command(applied["config"])
    port = _free_port()
    command[command.index("--chdir") + 1] = str(applied["repo"])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    command[command.index("--workers") + 1] = "1"
    command[0] = str(applied["python"].parent / "feast")
    server = subprocess.Popen(
        command, env=applied["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_for_port(port, server, 120)
    return server, f"http://127.0.0.1:{port}"


def _small_churn_model(folder: Path) -> tuple[str, object]:
    """A model whose inputs are three of the churn features (view:feature references)."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = churn.generate(600, seed=5)
    frame = data[SERVED].astype({"payment_method": "object", "sessions_30d": "int64"})
    fitted = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), ["sessions_30d", "avg_order_value"]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["payment_method"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, data[churn.LABEL])
    path = folder / "small-churn"
    mlflow.sklearn.save_model(
        fitted,
        str(path),
        signature=infer_signature(frame, fitted.predict_proba(frame)[:, 1]),
        input_example=frame.head(2),
        skops_trusted_types=["numpy.dtype"],
        pip_requirements=["scikit-learn"],
    )
    return str(path), fitted


def test_model_server_fetches_online_features_by_key_from_feast_serve(applied):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
    from serving_support import start_server, stop_server

    feast_server, feast_url = _feature_server(applied)
    model_server = None
    try:
        model_path, fitted = _small_churn_model(applied["tmp"])
        refs = ",".join(f"customer_behaviour:{name}" for name in SERVED)
        model_server = start_server(
            model_path,
            applied["tmp"],
            env={
                "MLOPS_SERVE_FEAST_URL": feast_url,
                "MLOPS_SERVE_FEAST_FEATURES": refs,
                "MLOPS_SERVE_FEAST_TIMEOUT_SECONDS": "30",
            },
        )
        keys = {"name": "customer_id", "shape": [2], "datatype": "INT64", "data": [3, 1]}
        answer = model_server.post("/v2/models/small-churn/infer", {"id": "k", "inputs": [keys]})
        assert answer.status == 200, answer.body
        # The online values are the latest materialized snapshots (test above): customer 1's
        # 99 sessions, customer 3's 17; the score is the model's on exactly those features.
        snapshots = _snapshots()
        latest = snapshots.sort_values(churn.TIMESTAMP).groupby(churn.ID).tail(1)
        rows = latest.set_index(churn.ID).loc[[3, 1], SERVED].reset_index(drop=True)
        rows = rows.astype({"payment_method": "object"})
        assert rows["sessions_30d"].tolist() == [17, 99]
        expected = fitted.predict_proba(rows)[:, 1]
        scores = next(o for o in answer.body["outputs"] if o["name"] == "scores")["data"]
        assert scores == pytest.approx(list(expected), rel=1e-9)
        assert answer.body["id"] == "k"

        # An unknown key, and a key whose only snapshot is past the views' TTL: 404 naming them.
        missing = {"name": "customer_id", "shape": [3], "datatype": "INT64", "data": [1, 99, 4]}
        refused = model_server.post("/v2/models/small-churn/infer", {"inputs": [missing]})
        assert refused.status == 404
        assert refused.body["error"] == (
            "no online features for customer_id 99, 4: unknown, or not materialized within "
            "the feature views' TTL"
        )
        # A null key is the request's fault.
        null = {"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [None]}
        bad = model_server.post("/v2/models/small-churn/infer", {"inputs": [null]})
        assert bad.status == 400
        assert "each row needs the entity key" in bad.body["error"]
        # A request that carries its features is served as before, without Feast.
        direct = model_server.post(
            "/v2/models/small-churn/infer",
            {
                "inputs": [
                    {"name": "sessions_30d", "shape": [1], "datatype": "INT64", "data": [17]},
                    {
                        "name": "avg_order_value",
                        "shape": [1],
                        "datatype": "FP64",
                        "data": [float(rows.loc[0, "avg_order_value"])],
                    },
                    {
                        "name": "payment_method",
                        "shape": [1],
                        "datatype": "BYTES",
                        "data": [rows.loc[0, "payment_method"]],
                    },
                ]
            },
        )
        assert direct.status == 200, direct.body
        direct_score = next(o for o in direct.body["outputs"] if o["name"] == "scores")["data"]
        assert direct_score == pytest.approx([expected[0]], rel=1e-9)
    finally:
        if model_server is not None:
            stop_server(model_server)
        feast_server.terminate()
        try:
            feast_server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            feast_server.kill()
            feast_server.wait()
