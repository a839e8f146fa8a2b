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


def _adapted(command: list[str], repo_dir: Path, feast_bin: Path) -> list[str]:
    """A pod's command with the repository at `repo_dir` and this venv's feast."""
    adapted = [part.replace(model.REPO_DIR, str(repo_dir)) for part in command]
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
    applied_out = _run(_adapted(apply, repo_dir, feast_bin), env)
    _run(_adapted(materialize, repo_dir, feast_bin), env)
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
