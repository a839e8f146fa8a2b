"""Feast for real: the rendered feature_store.yaml, loaded by Feast itself, drives `feast apply`,
`materialize` and online reads against a real Redis (with a password) on loopback, with the
registry in S3 (moto on loopback, reached through FEAST_S3_ENDPOINT_URL as MinIO is in a local
stack); then `feast serve`, started with the Deployment's own command, answers /health and
/get-online-features.

Feast pins pandas 2 and cannot share the project's locked environment (pandas 3), so it runs
from a throwaway venv synced once with uv under .mlops/feast-venv from the Feast image's lock
(images/feast/uv.lock), so it holds exactly what the image holds. Skipped, with the reason,
when uv, the venv or redis-server is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlops_platform.components import kube
from mlops_platform.components.feast import FeastConfig, model
from mlops_platform.components.identity import model as identity
from tests.conftest import unavailable

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".mlops" / "feast-venv"
# The Feast image's own lock (Feast, its Redis and AWS extras, s3fs and gcsfs).
LOCK = REPO / "images" / "feast" / "uv.lock"
WORKER = Path(__file__).with_name("feast_worker.py")
BUCKET = "mlops-test-features"
ACCESS_KEY = "testing"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")


@pytest.fixture(scope="module")
def feast_python() -> Path:
    python = VENV / "bin" / "python"
    marker = VENV / "uv.lock.sha256"
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in UV
    if uv is None:
        unavailable("uv is needed to build the throwaway feast venv (.mlops/feast-venv)")
    # Exactly what the Feast image installs: its project's lock, into this venv.
    built = subprocess.run(
        [
            uv,
            "sync",
            "-q",
            "--locked",
            "--no-dev",
            "--project",
            str(LOCK.parent),
            "--python",
            "3.11",
        ],
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if built.returncode != 0:
        unavailable(f"cannot sync the feast venv from {LOCK}: {built.stderr.strip()[-500:]}")
    marker.write_text(wanted)
    return python


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = shutil.which("redis-server")
    if server is None:
        unavailable("redis-server is not installed (apt-get install -y redis-server)")
    folder = tmp_path_factory.mktemp("redis")
    port = _free_port()
    password = secrets.token_hex(16)
    conf = folder / "redis.conf"
    # Loopback only; the password is in a file, not on the command line.
    conf.write_text(
        f"bind 127.0.0.1\nport {port}\nrequirepass {password}\ndir {folder}\n"
        'appendonly no\nsave ""\nprotected-mode yes\n'
    )
    conf.chmod(0o600)
    process = subprocess.Popen(
        [server, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process, 20)
        yield port, password
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def s3():
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its buckets in the process, across servers: an earlier module's registry
    # (with its materialization intervals) would otherwise be this module's starting point.
    reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(reset, timeout=30) as response:
        assert response.status == 200
    try:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=ACCESS_KEY,
        ).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _parquet(path: Path) -> pd.DataFrame:
    now = datetime.now(UTC).replace(microsecond=0)
    frame = pd.DataFrame(
        {
            "customer_id": pd.array([1, 2, 1], dtype="int64"),
            "sessions": pd.array([3, 7, 5], dtype="int64"),
            "spend": [12.5, 80.0, 20.25],
            "event_timestamp": [now - timedelta(days=2), now - timedelta(days=1), now],
        }
    )
    frame.to_parquet(path, index=False)
    return frame


def test_rendered_feature_store_yaml_serves_features_from_real_redis(
    feast_python, redis, s3, tmp_path
):
    redis_port, password = redis
    config = FeastConfig(project="churn")
    rendered = model.render(config, "local", f"s3://{BUCKET}", "127.0.0.1", redis_port)
    repo = tmp_path / "repo"
    repo.mkdir()
    store_yaml = rendered.config_map["data"][model.FEATURE_STORE_YAML_KEY]
    assert password not in store_yaml
    (repo / "feature_store.yaml").write_text(store_yaml)
    parquet = tmp_path / "customer_activity.parquet"
    _parquet(parquet)

    # What the pod gets, as files only: the password (the online store's Secret key, which
    # the entrypoint exports for Feast's `${VAR}`), and the workload identity's boto3 files
    # with the S3 endpoint and keys (MinIO locally; moto here). HOME on the writable /tmp.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / model.REDIS_PASSWORD_KEY).write_text(password)
    (secrets_dir / identity.CREDENTIALS_FILE_KEY).write_text(
        identity.aws_credentials_file(ACCESS_KEY, ACCESS_KEY)
    )
    (secrets_dir / identity.CONFIG_FILE_KEY).write_text(identity.aws_config_file(s3))
    for path in secrets_dir.iterdir():
        path.chmod(0o440)
    files = {
        f["name"]: f["value"].replace(
            kube.secret_dir(identity.CREDENTIALS_VOLUME), str(secrets_dir)
        )
        for f in model.server_env(config, "local")
        if f["name"].startswith("AWS_")
    }
    assert sorted(files) == ["AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        **files,
        "AWS_DEFAULT_REGION": "us-east-1",
        "FEAST_USAGE": "False",
    }

    def entrypoint(program: list[str]) -> list[str]:
        """The Deployment's entrypoint with the password file where this test keeps it."""
        deployed = _container_command(rendered)
        assert deployed == kube.env_from_files_command(
            {model.PASSWORD_ENV: model.PASSWORD_FILE}, model.server_command(config)
        )
        return kube.env_from_files_command(
            {model.PASSWORD_ENV: str(secrets_dir / model.REDIS_PASSWORD_KEY)}, program
        )

    result = subprocess.run(
        entrypoint([str(feast_python), str(WORKER), str(repo), str(parquet)]),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert password not in result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["online_store"] == "RedisOnlineStoreConfig"
    assert report["offline_store"] == "DaskOfflineStoreConfig"
    assert report["registry_path"] == f"s3://{BUCKET}/feast/registry.db"
    assert report["password_expanded"] is True
    assert report["views"] == ["customer_activity"]
    # The latest row per customer inside the window; an unknown customer reads as nulls.
    assert report["online"] == {
        "customer_id": [1, 2, 99],
        "sessions": [5, 7, None],
        "spend": [20.25, 80.0, None],
    }

    # The registry is a real object in the bucket.
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=ACCESS_KEY,
    )
    head = client.head_object(Bucket=BUCKET, Key="feast/registry.db")
    assert head["ContentLength"] > 0

    # The feature server, with the Deployment's command (host, port and chdir adapted to
    # loopback and this temporary repo).
    command = model.server_command(config)
    port = _free_port()
    command[command.index("--chdir") + 1] = str(repo)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    command[command.index("--workers") + 1] = "1"
    command[0] = str(feast_python.parent / "feast")
    server = subprocess.Popen(
        entrypoint(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_port(port, server, 120)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/get-online-features",
            data=json.dumps(
                {
                    "features": ["customer_activity:sessions", "customer_activity:spend"],
                    "entities": {"customer_id": [2, 1]},
                }
            ).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        names = body["metadata"]["feature_names"]
        values = {name: body["results"][i]["values"] for i, name in enumerate(names)}
        assert values == {"customer_id": [2, 1], "sessions": [7, 5], "spend": [80.0, 20.25]}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        stderr = server.stderr.read() if server.stderr else ""
        assert password not in stderr


def _container_command(rendered: model.Rendered) -> list[str]:
    return rendered.deployment["spec"]["template"]["spec"]["containers"][0]["command"]


def test_rendered_yaml_parses_as_feast_repo_config_per_cloud(feast_python, tmp_path):
    """Every cloud's feature_store.yaml is accepted by Feast's RepoConfig (no connection)."""
    cases = {
        "aws": ("s3://b", "master.x.cache.amazonaws.com", 6379, "eu-west-1", None),
        "gcp": ("gs://b", "10.0.0.3", 6378, None, "CA"),
        "local": ("s3://b", "feast-redis.feast.svc.cluster.local", 6379, None, None),
    }
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from feast.repo_config import load_repo_config\n"
        "out = {}\n"
        "for d in sys.argv[1:]:\n"
        "    c = load_repo_config(Path(d), Path(d) / 'feature_store.yaml')\n"
        "    out[Path(d).name] = [c.registry.path, c.online_store.connection_string,"
        " type(c.offline_store).__name__]\n"
        "print(json.dumps(out))\n"
    )
    folders = []
    for cloud, (bucket, host, port, region, ca) in cases.items():
        rendered = model.render(FeastConfig(), cloud, bucket, host, port, region, ca)
        folder = tmp_path / cloud
        folder.mkdir()
        (folder / "feature_store.yaml").write_text(
            rendered.config_map["data"][model.FEATURE_STORE_YAML_KEY]
        )
        folders.append(str(folder))
    result = subprocess.run(
        [str(feast_python), "-c", script, *folders],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path),
            "FEAST_REDIS_PASSWORD": "pw",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["aws"] == [
        "s3://b/feast/registry.db",
        "master.x.cache.amazonaws.com:6379,ssl=true,password=pw",
        "DaskOfflineStoreConfig",
    ]
    assert loaded["gcp"][1] == (
        "10.0.0.3:6378,ssl=true,ssl_ca_certs=/etc/feast/redis-server-ca.pem,"
        "ssl_check_hostname=false,password=pw"
    )
    assert loaded["local"][0] == "s3://b/feast/registry.db"
    assert sys.version_info >= (3, 11)
    assert (
        yaml.safe_load((tmp_path / "gcp" / "feature_store.yaml").read_text())["project"] == "mlops"
    )


def test_the_redis_probe_authenticates_with_the_mounted_password(redis, tmp_path):
    """The StatefulSet's probe command against a real redis-server: REDISCLI_AUTH is set from
    the mounted `redis-password` key inside the probe's shell only; a wrong one fails."""
    if shutil.which("redis-cli") is None:
        unavailable("redis-cli is not installed (apt-get install -y redis-tools)")
    port, password = redis
    container = model.redis_statefulset(FeastConfig())["spec"]["template"]["spec"]["containers"][0]
    [shell, flag, script] = container["readinessProbe"]["exec"]["command"]
    assert "env" not in container
    mounted = tmp_path / model.REDIS_PASSWORD_KEY
    script = script.replace(f"{model.REDIS_CONF_DIR}/", f"{tmp_path}/").replace(
        f"-p {model.REDIS_PORT}", f"-p {port}"
    )
    environ = {"PATH": os.environ.get("PATH", "")}
    mounted.write_text(password)
    assert subprocess.run([shell, flag, script], env=environ, timeout=30).returncode == 0
    mounted.write_text("not-the-password")
    done = subprocess.run([shell, flag, script], env=environ, capture_output=True, timeout=30)
    assert done.returncode != 0
