"""Kubeflow Pipelines, pure layer: config, pins, the launcher config and the objects we render."""

import pytest
import yaml
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import versions
from mlops_platform.components.identity import WorkloadIdentityConfig
from mlops_platform.components.pipelines import model
from mlops_platform.components.pipelines.model import PipelinesConfig

MINIO = "http://minio.minio.svc.cluster.local:9000"
RUNNER = WorkloadIdentityConfig(
    namespace="kubeflow",
    service_account="pipeline-runner",
    buckets={"artifacts": "read_write", "datasets": "read"},
)
BUCKETS = ["artifacts", "datasets"]

# JSON field names of the provider config structs in the pinned backend
# (backend/src/v2/config/s3.go: S3ProviderDefault, S3Credentials, S3SecretRef).
S3_DEFAULT_FIELDS = {
    "endpoint",
    "credentials",
    "region",
    "disableSSL",
    "forcePathStyle",
    "maxRetries",
}
S3_CREDENTIAL_FIELDS = {"fromEnv", "secretRef"}
S3_SECRET_REF_FIELDS = {"secretName", "accessKeyKey", "secretKeyKey"}


def _error(data):
    with pytest.raises(ValidationError) as info:
        PipelinesConfig.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- config -----------------------------------------------------------------------------------


def test_defaults():
    assert PipelinesConfig().model_dump() == {
        "artifact_bucket": "artifacts",
        "pipeline_root_prefix": "pipelines",
        "publish": True,
        "experiment": "churn",
        "schedules": {},
        "sync_image": "ghcr.io/mlops-platform/platform:0.1.0",
    }


@pytest.mark.parametrize("prefix", ["kfp", "pipelines/v2", "team-a/kfp_runs/2.x"])
def test_valid_prefixes(prefix):
    assert PipelinesConfig(pipeline_root_prefix=prefix).pipeline_root_prefix == prefix


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"artifact_bucket": "Artifacts"},
            "artifact_bucket: Value error, artifact_bucket 'Artifacts' must be a key of "
            "storage.buckets (lowercase letters, digits or '-')",
        ),
        *(
            (
                {"pipeline_root_prefix": prefix},
                f"pipeline_root_prefix: Value error, pipeline_root_prefix {prefix!r} must be one "
                "or more '/'-separated folder names (letters, digits, '.', '_', '-'), without "
                "leading or trailing '/'",
            )
            for prefix in ("", "/pipelines", "pipelines/", "a//b", "a/../b", "runs?x=1")
        ),
        ({"namespace": "ml"}, "namespace: Extra inputs are not permitted"),
        ({"version": "2.17.0"}, "version: Extra inputs are not permitted"),
    ],
)
def test_invalid_config_names_the_field(data, message):
    assert _error(data) == message


def test_config_is_frozen():
    with pytest.raises(ValidationError):
        PipelinesConfig().artifact_bucket = "datasets"


# --- cross-field checks -----------------------------------------------------------------------


def test_no_problems_with_a_runner_that_writes_the_artifact_bucket():
    assert model.pipelines_problems(PipelinesConfig(), BUCKETS, {"pipelines": RUNNER}) == []
    assert model.runner_identity({"other": RUNNER}) == "other"


@pytest.mark.parametrize(
    ("config", "identities", "problem"),
    [
        (
            PipelinesConfig(artifact_bucket="models"),
            {"pipelines": RUNNER},
            (
                "pipelines.artifact_bucket",
                "unknown bucket 'models'; storage.buckets has 'artifacts', 'datasets'",
            ),
        ),
        (
            PipelinesConfig(),
            {
                "pipelines": RUNNER.model_copy(update={"namespace": "pipelines"}),
                "runner": RUNNER.model_copy(update={"service_account": "default"}),
            },
            (
                "pipelines",
                "pipeline steps run as kubeflow/pipeline-runner: add a workload_identities entry "
                "with namespace 'kubeflow' and service_account 'pipeline-runner' and read_write "
                "on 'artifacts'",
            ),
        ),
        (
            PipelinesConfig(artifact_bucket="datasets"),
            {"pipelines": RUNNER},
            (
                "workload_identities.pipelines.buckets",
                "the pipeline runner writes artifacts to 'datasets' (pipelines.artifact_bucket): "
                "it needs read_write",
            ),
        ),
    ],
)
def test_problems_name_the_field(config, identities, problem):
    assert model.pipelines_problems(config, BUCKETS, identities) == [problem]


# --- pins and upstream locations --------------------------------------------------------------


def test_release_pin_matches_the_sdk_in_the_lock_file():
    assert versions.KUBEFLOW_PIPELINES == ("https://github.com/kubeflow/pipelines", "2.16.1")
    lock = (model.OVERLAY_DIR.parents[3] / "uv.lock").read_text()
    assert '[[package]]\nname = "kfp"\nversion = "2.16.1"\n' in lock


def test_cluster_scoped_resources_come_from_the_pinned_tag():
    assert model.cluster_scoped_url() == (
        "https://github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources"
        "?ref=2.16.1"
    )


def _overlay():
    return yaml.safe_load((model.OVERLAY_DIR / "kustomization.yaml").read_text())


def test_overlay_builds_the_pinned_platform_agnostic_env_only():
    overlay = _overlay()
    assert overlay["kind"] == "Kustomization"
    assert overlay["resources"] == [model.env_url()]
    assert model.env_url() == (
        "https://github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=2.16.1"
    )
    assert sorted(overlay) == ["apiVersion", "kind", "patches", "resources"]


def test_overlay_deletes_only_what_the_platform_owns_and_keeps_the_runner_binding():
    patches = _overlay()["patches"]
    deleted = []
    for patch in patches:
        body = yaml.safe_load(patch["patch"])
        if isinstance(body, dict) and body.get("$patch") == "delete":
            target = patch["target"]
            assert (target["kind"], target["name"]) == (body["kind"], body["metadata"]["name"])
            deleted.append((body["kind"], body["metadata"]["name"]))
    assert deleted == [
        ("ServiceAccount", model.RUNNER_SERVICE_ACCOUNT),
        ("ConfigMap", model.LAUNCHER_CONFIGMAP),
    ]
    binding = patches[2]
    assert binding["target"]["kind"] == "RoleBinding"
    assert yaml.safe_load(binding["patch"]) == [
        {
            "op": "replace",
            "path": "/subjects/0",
            "value": {
                "kind": "ServiceAccount",
                "name": model.RUNNER_SERVICE_ACCOUNT,
                "namespace": model.NAMESPACE,
            },
        }
    ]
    assert len(patches) == 3


def test_endpoints():
    assert model.api_endpoint() == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert model.UI_SERVICE == "ml-pipeline-ui"


# --- pipeline root and launcher config --------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "root"),
    [
        ("aws", "s3://acme-dev-artifacts/pipelines"),
        ("gcp", "gs://acme-dev-artifacts/pipelines"),
        ("local", "minio://acme-dev-artifacts/pipelines"),
    ],
)
def test_pipeline_root_per_cloud(cloud, root):
    assert model.pipeline_root(cloud, "acme-dev-artifacts", "pipelines") == root


@pytest.mark.parametrize(("cloud", "scheme"), [("aws", "s3"), ("gcp", "gs")])
def test_clouds_use_the_runner_identity_and_no_keys(cloud, scheme):
    configmap = model.launcher_configmap(cloud, "acme-dev-artifacts", "kfp/v2")
    manifests.validate(configmap)
    assert configmap == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "kfp-launcher",
            "namespace": "kubeflow",
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "data": {"defaultPipelineRoot": f"{scheme}://acme-dev-artifacts/kfp/v2"},
    }


def test_local_launcher_reaches_minio_with_the_runner_secret():
    configmap = model.launcher_configmap("local", "acme-dev-artifacts", "pipelines", MINIO)
    manifests.validate(configmap)
    assert set(configmap["data"]) == {"defaultPipelineRoot", "providers"}
    assert configmap["data"]["defaultPipelineRoot"] == "minio://acme-dev-artifacts/pipelines"
    assert "&" not in configmap["data"]["providers"]  # no YAML anchors
    providers = yaml.safe_load(configmap["data"]["providers"])
    expected = {
        "endpoint": MINIO,
        "region": "us-east-1",
        "disableSSL": True,
        "forcePathStyle": True,
        "credentials": {
            "fromEnv": False,
            "secretRef": {
                "secretName": "pipeline-runner-s3-credentials",
                "accessKeyKey": "AWS_ACCESS_KEY_ID",
                "secretKeyKey": "AWS_SECRET_ACCESS_KEY",
            },
        },
    }
    assert providers == {"minio": {"default": expected}, "s3": {"default": expected}}
    # Only keys the backend's provider structs define.
    for provider in providers.values():
        default = provider["default"]
        assert set(default) <= S3_DEFAULT_FIELDS
        assert set(default["credentials"]) <= S3_CREDENTIAL_FIELDS
        assert set(default["credentials"]["secretRef"]) == S3_SECRET_REF_FIELDS


def test_tls_endpoint_keeps_ssl_on():
    providers = model.launcher_providers("local", "https://minio.example:9000")
    assert providers["minio"]["default"]["disableSSL"] is False


@pytest.mark.parametrize("endpoint", [None, ""])
def test_local_needs_the_minio_endpoint(endpoint):
    with pytest.raises(ValueError) as info:
        model.launcher_configmap("local", "b-artifacts", "pipelines", endpoint)
    assert str(info.value) == ("pipelines: locally the object store must report its MinIO endpoint")


# --- MySQL network policy ---------------------------------------------------------------------


def test_mysql_is_reachable_only_from_the_kfp_namespace():
    policy = model.mysql_network_policy()
    manifests.validate(policy)
    assert policy["metadata"] == {
        "name": "platform-mysql-ingress",
        "namespace": "kubeflow",
        "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
    }
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"app": "mysql"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 3306}]}],
    }


def test_rendered_objects_fail_validation_when_broken():
    policy = model.mysql_network_policy()
    policy["spec"]["ingress"][0]["ports"][0]["prot"] = "TCP"
    with pytest.raises(manifests.ManifestError):
        manifests.validate(policy)
