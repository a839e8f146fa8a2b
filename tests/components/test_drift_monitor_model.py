"""The drift monitor's pure model: config errors name the field, every object is valid against
the Kubernetes and prometheus-operator schemas, and the rendered env is what the monitor reads."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import kube
from mlops_platform.components.drift_monitor import model
from mlops_platform.components.drift_monitor.model import DriftMonitorConfig
from mlops_platform.pipelines.lib.drift import DriftSettings
from mlops_platform.pipelines.loop.monitor_settings import MonitorSettings

BUCKET = "s3://mlops-prod-datasets"
TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
IMAGE = "ghcr.io/mlops-platform/platform:1.0.0"


def _deployment(config: DriftMonitorConfig | None = None, **overrides) -> dict:
    config = config or DriftMonitorConfig()
    args = {
        "namespace": "mlops-loop",
        "image": IMAGE,
        "service_account": "prediction-log",
        "bucket_uri": BUCKET,
        "tracking_uri": TRACKING,
        "models": ["churn"],
        "mlflow_credentials_secret": "mlflow-client-credentials",
        **overrides,
    }
    return model.deployment(config, **args)


@pytest.mark.parametrize("local", [False, True])
def test_no_secret_reaches_the_monitors_environment(local):
    """MLflow's and MinIO's credentials are mounted files: a secretKeyRef or envFrom coming
    back fails here."""
    deployment = _deployment(object_store_secret="prediction-log-s3-credentials" if local else None)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert kube.secret_env_vars(container) == []
    secrets = sorted(v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v)
    expected = ["mlflow-client-credentials"]
    if local:
        expected.append("prediction-log-s3-credentials")
        env = {var["name"]: var["value"] for var in container["env"]}
        assert env["AWS_SHARED_CREDENTIALS_FILE"].startswith("/var/run/secrets/mlops/")
    assert secrets == expected
    assert pod["securityContext"]["fsGroup"] == 10001


def test_every_object_is_valid():
    config = DriftMonitorConfig()
    for obj in (
        _deployment(config),
        model.pod_monitor(config, "mlops-loop"),
        model.network_policy("mlops-loop", "monitoring"),
    ):
        manifests.validate(obj)


def test_the_env_is_what_the_monitor_reads_and_carries_the_shared_settings():
    config = DriftMonitorConfig(
        settings={"window_hours": 72, "interval_minutes": 5, "detector": {"min_ks": 0.05}}
    )
    container = _deployment(config, models=["churn", "fraud"])["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {var["name"]: var["value"] for var in container["env"]}
    settings = MonitorSettings.from_env(env)
    assert settings.models == ("churn", "fraud")
    assert (
        settings.drift
        == config.settings
        == DriftSettings.model_validate_json(env["MLOPS_DRIFT_MONITOR_SETTINGS"])
    )
    assert settings.drift.detector.min_ks == 0.05
    assert (settings.bucket_uri, settings.tracking_uri) == (BUCKET, TRACKING)
    assert container["command"] == ["python", "-m", "mlops_platform.pipelines.loop.monitor"]
    # MLflow's credentials file under HOME (/tmp), mounted from the loop's client Secret.
    assert {"name": "mlflow-credentials", "mountPath": "/tmp/.mlflow", "readOnly": True} in (
        container["volumeMounts"]
    )
    assert json.loads(env["MLOPS_DRIFT_MONITOR_SETTINGS"])["window_hours"] == 72


def test_pod_is_restricted_and_only_prometheus_may_connect():
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    [rule] = model.network_policy("mlops-loop", "monitoring")["spec"]["ingress"]
    assert rule["ports"] == [{"port": model.METRICS_PORT, "protocol": "TCP"}]
    [source] = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    monitor = model.pod_monitor(DriftMonitorConfig(), "mlops-loop")
    assert (
        monitor["spec"]["selector"]["matchLabels"]
        == (_deployment()["spec"]["selector"]["matchLabels"])
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"models": ["Churn"]}, "models: Value error, models: 'Churn' is not a model name"),
        (
            {"settings": {"window_hours": 0}},
            "settings.window_hours: Input should be greater than 0",
        ),
        (
            {"settings": {"detector": {"season_fallback": "yearly"}}},
            "settings.detector.season_fallback: Input should be 'inconclusive' or 'whole'",
        ),
        ({"settings": {"psi_threshold": 0.2}}, "settings.psi_threshold: Extra inputs"),
    ],
)
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ValidationError) as error:
        DriftMonitorConfig.model_validate(data)
    [problem] = error.value.errors()
    text = ".".join(str(p) for p in problem["loc"]) + ": " + problem["msg"]
    assert text.startswith(message), text


def test_models_default_to_the_served_ones_and_none_is_an_error():
    assert model.monitored_models(DriftMonitorConfig(), ["fraud", "churn"]) == ["churn", "fraud"]
    assert model.monitored_models(DriftMonitorConfig(models=["churn"]), ["fraud"]) == ["churn"]
    with pytest.raises(ValueError, match="no models to check"):
        _deployment(models=[])


def test_the_readme_settings_table_is_the_registry():
    from pathlib import Path

    from mlops_platform.model_server.settings import markdown_table
    from mlops_platform.pipelines.loop.monitor_settings import REGISTRY

    readme = Path(__file__).parents[2] / "mlops_platform" / "pipelines" / "loop" / "README.md"
    assert markdown_table(REGISTRY) in readme.read_text(), "run `uv run mlops docs`"
