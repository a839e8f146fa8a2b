"""The platform's Feast image (images/feast), run as the cluster runs it.

The rendered local stack's pods, not hand-copied commands: the apply Job's, the materialization
CronJob's and the feature server Deployment's pod specs are turned into `docker run` options by
`images.containers.pod_run_args` (their user and fsGroup, environment, ConfigMap and Secret
volumes with their modes, `subPath` mounts, command), and run read-only with every capability
dropped. Against moto S3 (the MinIO of a local stack, reached through the identity's AWS config
file, as the pods reach it) and a real Redis with a password, on loopback:

- `feast apply` registers the churn repository in the bucket;
- `feast materialize-incremental` reads the offline Parquet from `s3://` (s3fs, which the
  official feature-server image lacks) into Redis;
- the training step's script builds the point-in-time frame from the same bucket;
- `feast serve` answers the online features materialization wrote.
"""

from __future__ import annotations

import json
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from images.containers import run_pod_detached, run_pod_to_completion, run_to_completion
from mlops_platform.components.feast import FeastConfig, model, repo
from mlops_platform.components.identity import model as identity
from mlops_platform.components.versions import FEAST_VERSION
from mlops_platform.pipelines.data import churn
from tests.feast.test_feast_real import (  # noqa: F401  (module-scoped fixtures)
    ACCESS_KEY,
    BUCKET,
    redis,
    s3,
)
from tests.feast.test_feast_repo_real import NOW, SNAPSHOTS, _s3_client, _snapshots

REPO = Path(__file__).resolve().parents[2]
FEAST_PROJECT = REPO / "images" / "feast"


def _locked() -> dict[str, str]:
    lock = tomllib.loads((FEAST_PROJECT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def test_the_feast_image_installs_the_platforms_feast_version_with_s3fs_and_gcsfs() -> None:
    project = tomllib.loads((FEAST_PROJECT / "pyproject.toml").read_text())["project"]
    assert f"feast[redis,aws]=={FEAST_VERSION}" in project["dependencies"]
    locked = _locked()
    assert locked["feast"] == FEAST_VERSION
    # The filesystems the file offline store needs for s3:// and gs://, and Feast's pandas 2.
    assert {"s3fs", "gcsfs", "redis", "boto3"} <= set(locked)
    assert locked["pandas"].startswith("2.")


@pytest.mark.slow
def test_the_feast_image_has_every_store_the_platform_configures(built_images) -> None:
    """The registry stores (S3, GCS), the Redis online store and the fsspec filesystems for
    s3:// and gs:// import in the image, read-only, as uid 10001."""
    script = (
        "import fsspec, feast\n"
        "from feast.infra.registry.s3 import S3RegistryStore\n"
        "from feast.infra.registry.gcs import GCSRegistryStore\n"
        "from feast.infra.online_stores.redis import RedisOnlineStore\n"
        "import feast.feature_server\n"
        "print(feast.__version__, fsspec.get_filesystem_class('s3').__name__,"
        " fsspec.get_filesystem_class('gs').__name__)\n"
    )
    result = run_to_completion(built_images["feast"]["tag"], ["python", "-c", script])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == [FEAST_VERSION, "S3FileSystem", "ExtendedGcsFileSystem"]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


@pytest.fixture(scope="module")
def local_stack(built_images, redis, s3, tmp_path_factory):  # noqa: F811
    """The local stack's Feast objects rendered against loopback Redis and moto S3, the
    snapshots uploaded to the features bucket, and the objects the pods mount."""
    redis_port, password = redis
    config = FeastConfig()
    offline = f"s3://{BUCKET}/{config.offline_store.data_prefix}"
    rendered = model.render(config, "local", f"s3://{BUCKET}", "127.0.0.1", redis_port)
    store_data = rendered.config_map["data"]
    repo_objects = repo.render(config, "local", offline, store_data)
    tmp = tmp_path_factory.mktemp("feast-image")
    parquet = tmp / "customer_features.parquet"
    _snapshots().to_parquet(parquet, index=False)
    key = repo.offline_table_uri(offline).removeprefix(f"s3://{BUCKET}/")
    _s3_client(s3).upload_file(str(parquet), BUCKET, key)
    volumes = {v["name"]: v for v in _pod(repo_objects[1])["volumes"]}
    credentials = volumes[identity.CREDENTIALS_VOLUME]["secret"]["secretName"]
    objects = {
        model.CONFIG_MAP_NAME: store_data,
        repo.REPO_CONFIG_MAP: repo_objects[0]["data"],
        volumes[model.PASSWORD_VOLUME]["secret"]["secretName"]: {
            model.REDIS_PASSWORD_KEY: password
        },
        # The identity's local keys and the MinIO endpoint (moto here), as files.
        credentials: {
            identity.CREDENTIALS_FILE_KEY: identity.aws_credentials_file(ACCESS_KEY, ACCESS_KEY),
            identity.CONFIG_FILE_KEY: identity.aws_config_file(s3),
        },
    }
    return {
        "image": built_images["feast"]["tag"],
        "config": config,
        "deployment": rendered.deployment,
        "apply": repo_objects[1],
        "materialize": repo_objects[2],
        "objects": objects,
        "tmp": tmp,
        "password": password,
        "s3": s3,
    }


def _run_pod(stack: dict[str, Any], workload: dict[str, Any], name: str) -> str:
    result = run_pod_to_completion(
        stack["image"], _pod(workload), stack["objects"], stack["tmp"] / name, timeout=600
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert stack["password"] not in output
    return output


@pytest.fixture(scope="module")
def materialized(local_stack) -> dict[str, Any]:
    """The apply Job, then a materialization run of the CronJob, each in its own container."""
    _run_pod(local_stack, local_stack["apply"], "apply")
    output = _run_pod(local_stack, local_stack["materialize"], "materialize")
    return {**local_stack, "materialize_output": output}


@pytest.mark.slow
def test_apply_registers_the_repository_in_the_bucket(materialized) -> None:
    head = _s3_client(materialized["s3"]).head_object(
        Bucket=BUCKET, Key=materialized["config"].registry.path
    )
    assert head["ContentLength"] > 0


@pytest.mark.slow
def test_the_feature_server_pod_serves_what_materialization_read_from_the_bucket(
    materialized,
) -> None:
    server = run_pod_detached(
        materialized["image"],
        _pod(materialized["deployment"]),
        materialized["objects"],
        materialized["tmp"] / "server",
        name_prefix="mlops-feast-server",
    )
    url = f"http://127.0.0.1:{model.PORT}"
    try:
        _wait_healthy(server, url)
        request = urllib.request.Request(
            f"{url}/get-online-features",
            data=json.dumps(
                {
                    "feature_service": repo.FEATURE_SERVICE,
                    "entities": {repo.JOIN_KEY: [1, 2, 3, 4, 99]},
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
    finally:
        logs = server.logs()
        server.remove()
    assert materialized["password"] not in logs
    names = body["metadata"]["feature_names"]
    values = {name: body["results"][i]["values"] for i, name in enumerate(names)}
    # The latest snapshot inside the TTL per customer (customer 4's is too old, 99 unknown):
    # only a materialization that read the bucket's Parquet can have put these in Redis.
    latest = {c: snaps[-1][1] for c, snaps in SNAPSHOTS.items()}
    assert values["sessions_30d"] == [latest[1], latest[2], latest[3], None, None], (
        materialized["materialize_output"][-3000:],
        logs[-3000:],
    )
    assert len(names) == len(churn.FEATURE_NAMES) + 1


def _wait_healthy(server, url: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        state = server.state()
        if state and not state.get("Running", False):
            raise AssertionError(f"feast serve exited {state.get('ExitCode')}:\n{server.logs()}")
        try:
            with urllib.request.urlopen(f"{url}{model.HEALTH_PATH}", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"feast serve not healthy after {seconds} s:\n{server.logs()}")
        time.sleep(0.5)


def _compiled_frame_step() -> tuple[dict[str, Any], dict[str, Any]]:
    """The feature-store training pipeline's Feast step: its container and its Kubernetes
    platform config (the secret it mounts)."""
    compiled, platform = yaml.safe_load_all(
        (
            REPO / "mlops_platform/pipelines/pipelines/feature_store_training_pipeline.yaml"
        ).read_text()
    )
    name = "exec-feature-store-frame"
    return (
        compiled["deploymentSpec"]["executors"][name]["container"],
        platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][name],
    )


@pytest.mark.slow
def test_the_training_step_reads_the_offline_store_point_in_time_in_the_image(
    materialized,
) -> None:
    """The compiled step (`python -c <historical.py>`, its environment and the runner's
    object-store Secret where it mounts it) in the image, reading the snapshots from s3://
    through the registry the apply Job wrote, with no credential in its environment."""
    tmp = materialized["tmp"]
    data = tmp / "step"
    data.mkdir()
    data.chmod(0o777)
    entities = pd.DataFrame(
        {
            churn.ID: pd.array([1, 1, 2], dtype="int64"),
            churn.TIMESTAMP: pd.to_datetime(
                [NOW - pd.Timedelta(days=5), NOW - pd.Timedelta(days=1), NOW], utc=True
            ),
            churn.LABEL: pd.array([1, 0, 1], dtype="int64"),
        }
    )
    entities.to_parquet(data / "entities.parquet", index=False)
    container, platform = _compiled_frame_step()
    (secret,) = platform["secretAsVolume"]
    # The runner identity's Secret: the same MinIO (moto) files the Feast pods got.
    credentials = tmp / "runner-credentials"
    credentials.mkdir()
    feast_credentials = next(
        data for name, data in materialized["objects"].items() if name.endswith("-s3-credentials")
    )
    for key, text in feast_credentials.items():
        (credentials / key).write_text(text)
        (credentials / key).chmod(0o444)
    config = materialized["config"]
    arguments = {
        "--entities": "/data/entities.parquet",
        "--output": "/data/frame/frame.parquet",
        "--registry": f"s3://{BUCKET}/{config.registry.path}",
        "--project": config.project,
        "--feature-service": repo.FEATURE_SERVICE,
        "--offline-store": "file",
    }
    args = list(container["args"])
    for flag, value in arguments.items():
        args[args.index(flag) + 1] = value
    result = run_to_completion(
        materialized["image"],
        [*container["command"], *args],
        env={e["name"]: e["value"] for e in container["env"]},
        mounts=[(data, "/data", False), (credentials, secret["mountPath"], True)],
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    frame = pd.read_parquet(data / "frame" / "frame.parquet").sort_values(churn.TIMESTAMP)
    # Customer 1's label of five days ago sees the older snapshot, not the one written after.
    first, second = (snaps[1] for snaps in SNAPSHOTS[1])
    assert frame[churn.ID].tolist() == [1, 1, 2]
    assert frame["sessions_30d"].tolist() == [first, second, SNAPSHOTS[2][0][1]]
