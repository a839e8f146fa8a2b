"""The retrain receiver's pure model: config errors name the field, every object is valid."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import kube
from mlops_platform.components.loop import LoopConfig, config_problems, model
from mlops_platform.pipelines.loop.receiver_settings import ReceiverSettings

DEFAULT = LoopConfig()
BUCKET = "s3://mlops-dev-datasets"
TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
KFP = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"namespace": "kube-system"},
            "namespace: Value error, namespace 'kube-system' is a Kubernetes system namespace",
        ),
        (
            {"image": "ghcr.io/mlops-platform/platform:latest"},
            "image: Value error, image 'ghcr.io/mlops-platform/platform:latest' must be pinned",
        ),
        (
            {"data_path": "/abs/x.parquet"},
            "data_path: Value error, data_path '/abs/x.parquet' must be a relative object path",
        ),
        (
            {"reference_path": "a/../b"},
            "reference_path: Value error, reference_path 'a/../b' must be a relative object path",
        ),
        ({"models": ["Churn"]}, "models: Value error, models: 'Churn' is not a model name"),
        (
            {"pipeline_arguments": {"season_days": 3, "hours": 24}},
            "pipeline_arguments: Value error, pipeline_arguments: hours, season_days belong to "
            "the drift check, whose settings are drift_monitor.settings",
        ),
        (
            {"drift_monitor": {"settings": {"detector": {"min_ks": 2}}}},
            "drift_monitor.settings.detector.min_ks: Input should be less than or equal to 1",
        ),
        (
            {"drift_monitor": {"models": ["Churn"]}},
            "drift_monitor.models: Value error, models: 'Churn' is not a model name",
        ),
        ({"retrain_interval_hours": 0}, "retrain_interval_hours: Input should be greater than 0"),
        ({"experiment": "a b"}, "experiment: Value error, experiment 'a b' must be a short name"),
        (
            {"resources": {"memory_limit": "1Mi"}},
            "resources: Value error, memory_limit (1Mi) must be at least memory_request (256Mi)",
        ),
        ({"token": "x"}, "token: Extra inputs are not permitted"),
    ],
)
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ValidationError) as info:
        LoopConfig.model_validate(data)
    [error] = info.value.errors()
    assert (".".join(str(p) for p in error["loc"]) + ": " + error["msg"]).startswith(message)


def test_unknown_bucket_is_a_cross_field_problem():
    assert config_problems(DEFAULT, {"datasets", "artifacts"}) == []
    assert config_problems(LoopConfig(bucket="drift"), {"datasets"}) == [
        ("loop.bucket", "unknown bucket 'drift'; storage.buckets has ['datasets']")
    ]


def test_every_object_is_valid_for_the_pinned_kubernetes():
    for obj in (
        model.service_account(DEFAULT),
        model.token_secret(DEFAULT),
        model.service(DEFAULT),
        model.network_policy(DEFAULT, "monitoring"),
        model.deployment(DEFAULT, BUCKET, TRACKING, KFP),
    ):
        manifests.validate(obj)


def test_receiver_settings_come_from_the_config_and_the_token_from_the_secret():
    config = LoopConfig(
        models=["churn"], retrain_interval_hours=0.5, pipeline_arguments={"search_iterations": 8}
    )
    env = model.deployment(config, BUCKET + "/", TRACKING, KFP)["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert {e["name"]: e.get("value", e.get("valueFrom")) for e in env} == {
        "MLOPS_RECEIVER_HOST": "0.0.0.0",
        "MLOPS_RECEIVER_PORT": "8080",
        "MLOPS_RECEIVER_BACKEND": "kfp",
        "MLOPS_RECEIVER_KFP_HOST": KFP,
        "MLOPS_RECEIVER_EXPERIMENT": "drift-retrain",
        "MLOPS_RECEIVER_PIPELINE": "drift",
        "MLOPS_RECEIVER_DATA_URI": f"{BUCKET}/drift/{{model}}/recent.parquet",
        "MLOPS_RECEIVER_REFERENCE_URI": "",  # the champion's training data, from its lineage
        "MLOPS_RECEIVER_TRACKING_URI": TRACKING,
        # The drift check's settings are the drift monitor's (one config for alert and run).
        "MLOPS_RECEIVER_PIPELINE_ARGUMENTS": json.dumps(
            {
                "drift_config": config.drift_monitor.settings.detector.model_dump_json(),
                "reference_alias": "champion",
                "search_iterations": 8,
            },
            sort_keys=True,
        ),
        "MLOPS_RECEIVER_RETRAIN_INTERVAL_SECONDS": "1800",
        "MLOPS_RECEIVER_MODELS": "churn",
        "HOME": "/tmp",
        # The token as a file: its Secret's key, mounted read-only.
        "MLOPS_RECEIVER_TOKEN_FILE": "/var/run/secrets/mlops/token/token",
    }
    pod = model.deployment(config, BUCKET, TRACKING, KFP)["spec"]["template"]["spec"]
    assert pod["volumes"][-1] == {
        "name": "token",
        "secret": {
            "secretName": "retrain-receiver-token",
            "defaultMode": 0o440,
            "items": [{"key": "token", "path": "token"}],
        },
    }
    assert pod["containers"][0]["volumeMounts"][-1] == {
        "name": "token",
        "mountPath": "/var/run/secrets/mlops/token",
        "readOnly": True,
    }
    assert pod["securityContext"]["fsGroup"] == 10001  # the image's user reads it


@pytest.mark.parametrize("with_releases", [False, True])
def test_no_secret_reaches_the_receivers_environment(with_releases):
    """A secretKeyRef or envFrom coming back (token, MLflow credentials) fails here."""
    releases = RELEASES if with_releases else None
    pod = model.deployment(DEFAULT, BUCKET, TRACKING, KFP, releases)["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert kube.secret_env_vars(container) == []


@pytest.fixture
def token_file(tmp_path):
    """The mounted token, where a test keeps it."""
    path = tmp_path / "token"
    path.write_text("x" * 48 + "\n")
    return str(path)


def test_the_env_is_what_the_receiver_accepts(token_file):
    """The rendered variables, with a token, are valid receiver settings."""
    from mlops_platform.pipelines.loop.receiver_settings import ReceiverSettings

    env = model.settings_env(DEFAULT, BUCKET, TRACKING, KFP)
    values = {e["name"]: e["value"] for e in env if "value" in e}
    assert values["MLOPS_RECEIVER_TOKEN_FILE"] == model.TOKEN_FILE
    settings = ReceiverSettings.from_env({**values, "MLOPS_RECEIVER_TOKEN_FILE": token_file})
    assert settings.token == "x" * 48
    assert settings.pipeline_arguments_for("churn")["data_uri"] == (
        f"{BUCKET}/drift/churn/recent.parquet"
    )
    assert settings.retrain_interval_seconds == 6 * 3600


def test_pod_is_restricted_and_only_alertmanager_may_connect():
    pod = model.deployment(DEFAULT, BUCKET, TRACKING, KFP)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["command"] == ["python", "-m", "mlops_platform.pipelines.loop.receiver"]
    assert model.network_policy(DEFAULT, "observability")["spec"]["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "observability"}
                    },
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}},
                }
            ],
            "ports": [{"port": 8080, "protocol": "TCP"}],
        }
    ]
    assert model.receiver_url("mlops-loop") == (
        "http://retrain-receiver.mlops-loop.svc.cluster.local:8080/alerts"
    )


# --- driving the releases of progressive deployments ------------------------------------------

RELEASES = model.ReleaseWiring(
    releases=(
        model.Release("churn", "serving", "churn"),
        model.Release("fraud", "serving", "fraud", 9000),
        model.Release("churn", "canaries", "churn-eu"),
    ),
    mlflow_credentials_secret="mlflow-client-credentials",
    flagger_namespace="flagger-system",
)


def test_release_objects_are_valid_for_kubernetes_and_istio(crds_dir):
    objects = [
        *model.release_roles(DEFAULT, RELEASES),
        model.release_role_binding(DEFAULT, "serving"),
        model.peer_authentication(DEFAULT),
        model.deployment(DEFAULT, BUCKET, TRACKING, KFP, RELEASES),
        model.network_policy(DEFAULT, "monitoring", "flagger-system"),
    ]
    for obj in objects:
        manifests.validate(obj)


def test_the_service_may_only_get_and_patch_the_release_config_maps():
    roles = {role["metadata"]["namespace"]: role for role in model.release_roles(DEFAULT, RELEASES)}
    assert sorted(roles) == ["canaries", "serving"]
    assert roles["serving"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["churn-model", "fraud-model"],
            "verbs": ["get", "patch"],
        }
    ]
    assert roles["canaries"]["rules"][0]["resourceNames"] == ["churn-eu-model"]
    binding = model.release_role_binding(DEFAULT, "serving")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "retrain-receiver", "namespace": "mlops-loop"}
    ]
    assert binding["roleRef"]["name"] == roles["serving"]["metadata"]["name"]


def test_with_releases_the_pod_talks_to_mlflow_kubernetes_and_the_mesh(token_file):
    plain = model.deployment(DEFAULT, BUCKET, TRACKING, KFP)["spec"]["template"]
    driving = model.deployment(DEFAULT, BUCKET, TRACKING, KFP, RELEASES)["spec"]["template"]
    assert plain["spec"]["automountServiceAccountToken"] is False
    assert "sidecar.istio.io/inject" not in plain["metadata"]["labels"]
    assert driving["spec"]["automountServiceAccountToken"] is True
    assert driving["metadata"]["labels"]["sidecar.istio.io/inject"] == "true"
    [container] = driving["spec"]["containers"]
    # MLflow's client reads its credentials file under HOME (/tmp), from the client Secret.
    assert "envFrom" not in container
    assert {"name": "mlflow-credentials", "mountPath": "/tmp/.mlflow", "readOnly": True} in (
        container["volumeMounts"]
    )
    assert driving["spec"]["volumes"][-1] == {
        "name": "mlflow-credentials",
        "secret": {
            "secretName": "mlflow-client-credentials",
            "defaultMode": 0o440,
            "items": [{"key": "credentials", "path": "credentials"}],
        },
    }
    env = {var["name"]: var.get("value") for var in container["env"]}
    assert json.loads(env["MLOPS_RECEIVER_RELEASES"]) == [
        {"model": "churn", "name": "churn", "namespace": "serving", "port": 8080},
        {"model": "fraud", "name": "fraud", "namespace": "serving", "port": 9000},
        {"model": "churn", "name": "churn-eu", "namespace": "canaries", "port": 8080},
    ]
    # What the deployment sets, the receiver accepts.
    settings = ReceiverSettings.from_env({**env, "MLOPS_RECEIVER_TOKEN_FILE": token_file})
    assert len(settings.release_deployments()) == 3


def test_flagger_may_call_in_plain_text_and_nobody_else():
    policy = model.network_policy(DEFAULT, "monitoring", "flagger-system")
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}},
        },
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "flagger-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "flagger"}},
        },
    ]
    spec = model.peer_authentication(DEFAULT)["spec"]
    assert spec["mtls"] == {"mode": "STRICT"}
    assert spec["portLevelMtls"] == {"8080": {"mode": "PERMISSIVE"}}
    assert model.service_url("mlops-loop") == (
        "http://retrain-receiver.mlops-loop.svc.cluster.local:8080"
    )


def test_with_the_consumer_a_drift_alert_retrains_on_its_windows(token_file):
    env = {
        var["name"]: var.get("value")
        for var in model.settings_env(DEFAULT, BUCKET, TRACKING, KFP, windows=True)
    }
    assert env["MLOPS_RECEIVER_PIPELINE"] == "windows_drift"
    assert env["MLOPS_RECEIVER_DATA_URI"] == BUCKET
    settings = ReceiverSettings.from_env({**env, "MLOPS_RECEIVER_TOKEN_FILE": token_file})
    arguments = settings.pipeline_arguments_for("churn")
    assert (arguments["bucket_uri"], arguments["model_name"]) == (BUCKET, "churn")
    assert "reference_uri" not in arguments  # the pipeline finds the champion's training data
    assert "data_uri" not in arguments
    # Exactly the windows pipeline's declared inputs.
    from mlops_platform.pipelines.pipelines.windows_drift import windows_drift_pipeline

    declared = set(windows_drift_pipeline.component_spec.inputs)
    assert set(arguments) <= declared
    # The drift check runs with the drift monitor's settings: the run decides as the alert.
    drift = DEFAULT.drift_monitor.settings
    assert arguments["hours"] == drift.window_hours
    assert arguments["drift_config"] == drift.detector.model_dump_json()


def test_without_windows_the_file_pipeline_gets_the_same_detector(token_file):
    env = {
        var["name"]: var.get("value") for var in model.settings_env(DEFAULT, BUCKET, TRACKING, KFP)
    }
    settings = ReceiverSettings.from_env({**env, "MLOPS_RECEIVER_TOKEN_FILE": token_file})
    arguments = settings.pipeline_arguments_for("churn")
    from mlops_platform.pipelines.pipelines.drift import drift_pipeline

    assert set(arguments) <= set(drift_pipeline.component_spec.inputs)
    assert arguments["drift_config"] == DEFAULT.drift_monitor.settings.detector.model_dump_json()


def test_an_explicit_reference_path_overrides_the_lineage(token_file):
    config = LoopConfig(reference_path="drift/{model}/reference.parquet")
    env = {
        var["name"]: var.get("value")
        for var in model.settings_env(config, BUCKET, TRACKING, KFP, windows=True)
    }
    settings = ReceiverSettings.from_env({**env, "MLOPS_RECEIVER_TOKEN_FILE": token_file})
    arguments = settings.pipeline_arguments_for("churn")
    assert arguments["reference_uri"] == f"{BUCKET}/drift/churn/reference.parquet"
