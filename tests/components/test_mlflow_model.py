"""MLflow tracking server, pure layer: config defaults and errors, rendered objects, strings."""

import configparser
import json

import pytest
from pydantic import ValidationError

from components import versions
from components.identity.model import WorkloadIdentityConfig
from components.mlflow import model
from components.mlflow.model import MlflowConfig
from mlops import manifests

ARTIFACTS = "s3://acme-dev-artifacts/mlflow"
CLOUDS = ["aws", "gcp", "local"]


def _render(config=None, cloud="aws"):
    return model.render(
        config or MlflowConfig(), cloud, ARTIFACTS, "eu-west-1" if cloud == "aws" else None
    )


def _container(rendered):
    return rendered.deployment["spec"]["template"]["spec"]["containers"][0]


# --- config -----------------------------------------------------------------------------------


def test_defaults_are_the_documented_ones():
    config = MlflowConfig()
    assert config.model_dump() == {
        "namespace": "mlflow",
        "service_account": "mlflow",
        "artifact_bucket": "artifacts",
        "artifact_prefix": "mlflow",
        "image": "ghcr.io/mlflow/mlflow:v3.17.0-full",
        "replicas": 2,
        "workers": 2,
        "allowed_hosts": [],
        "resources": {
            "cpu_request": "250m",
            "memory_request": "1Gi",
            "memory_limit": "2Gi",
            "tmp_size_limit": "1Gi",
        },
        "database": {
            "aws_instance_class": "db.t4g.medium",
            "gcp_tier": "db-custom-1-3840",
            "storage_gb": 20,
            "max_storage_gb": 100,
            "high_availability": False,
            "backup_retention_days": 7,
            "deletion_protection": None,
            "iam_authentication": False,
            "aws_kms_key_arn": None,
            "identifier": None,
            "storage_class": None,
        },
        "auth": {"enabled": True, "admin_username": "admin", "default_permission": "READ"},
    }
    assert config.image == versions.MLFLOW_IMAGE


def test_the_image_matches_the_locked_mlflow_minor():
    import mlflow

    tag = versions.MLFLOW_IMAGE.rsplit(":", 1)[1]
    assert tag.endswith("-full"), "only the -full image has psycopg2, boto3, google-cloud-storage"
    image_minor = tag.removeprefix("v").split(".")[:2]
    assert image_minor == mlflow.__version__.split(".")[:2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"namespace": "ML"}, "namespace 'ML' must be a DNS label"),
        ({"service_account": "a_b"}, "service_account 'a_b' must be a DNS label"),
        ({"artifact_bucket": "Art"}, "artifact_bucket 'Art' must be a logical bucket key"),
        ({"artifact_prefix": "/mlflow"}, "artifact_prefix '/mlflow' must be a relative path"),
        ({"artifact_prefix": "a//b"}, "artifact_prefix 'a//b' must be a relative path"),
        ({"image": "ghcr.io/mlflow/mlflow"}, "image 'ghcr.io/mlflow/mlflow' must be pinned"),
        ({"image": "ghcr.io/mlflow/mlflow:latest"}, "must be pinned to a tag other than latest"),
        ({"replicas": 0}, "replicas\n  Input should be greater than or equal to 1"),
        ({"workers": 17}, "workers\n  Input should be less than or equal to 16"),
        ({"allowed_hosts": ["*"]}, "allowed_hosts: '*' must be a DNS name"),
        ({"allowed_hosts": ["*.example.com"]}, "allowed_hosts: '*.example.com' must be a DNS"),
        ({"resources": {"cpu_request": "lots"}}, "cpu_request 'lots' is not a Kubernetes quantity"),
        (
            {"resources": {"memory_request": "2Gi", "memory_limit": "1Gi"}},
            "memory_limit (1Gi) must be at least memory_request (2Gi)",
        ),
        ({"database": {"storage_gb": 10}}, "database.storage_gb\n  Input should be greater"),
        (
            {"database": {"storage_gb": 200}},
            "max_storage_gb (100) must be at least storage_gb (200)",
        ),
        ({"database": {"backup_retention_days": 36}}, "database.backup_retention_days"),
        ({"database": {"aws_instance_class": "t4g.medium"}}, "aws_instance_class 't4g.medium'"),
        ({"database": {"gcp_tier": "db-perf-optimized-N-2"}}, "gcp_tier 'db-perf-optimized-N-2'"),
        (
            {"database": {"aws_kms_key_arn": "alias/aws/rds"}},
            "aws_kms_key_arn 'alias/aws/rds' must be a KMS key ARN",
        ),
        ({"database": {"identifier": "1mlflow"}}, "identifier '1mlflow' must be 1-63"),
        ({"database": {"identifier": "ml--flow"}}, "identifier 'ml--flow' must be 1-63"),
        ({"database": {"engine": "mysql"}}, "database.engine\n  Extra inputs are not permitted"),
        ({"auth": {"default_permission": "ALL"}}, "auth.default_permission"),
        ({"auth": {"admin_username": "a b"}}, "admin_username 'a b' must be 1-63"),
        ({"tracking_uri": "http://x"}, "tracking_uri\n  Extra inputs are not permitted"),
    ],
)
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ValidationError) as error:
        MlflowConfig.model_validate(data)
    assert message in str(error.value)


def test_allowed_hosts_may_carry_a_port():
    config = MlflowConfig(allowed_hosts=["mlflow.example.com", "mlflow.example.com:443"])
    assert config.allowed_hosts == ["mlflow.example.com", "mlflow.example.com:443"]


# --- cross-field checks -----------------------------------------------------------------------

BUCKETS = ["artifacts", "datasets"]


def _identity(namespace="mlflow", account="mlflow", access="read_write"):
    return WorkloadIdentityConfig(
        namespace=namespace, service_account=account, buckets={"artifacts": access}
    )


@pytest.mark.parametrize(
    ("config", "identities", "problems"),
    [
        (MlflowConfig(), {"mlflow": _identity()}, []),
        (
            MlflowConfig(artifact_bucket="models"),
            {"mlflow": _identity()},
            [
                (
                    "mlflow.artifact_bucket",
                    "unknown bucket 'models'; storage.buckets has 'artifacts', 'datasets'",
                )
            ],
        ),
        (
            MlflowConfig(),
            {"other": _identity(namespace="serving")},
            [
                (
                    "mlflow.service_account",
                    "no workload_identities entry for mlflow/mlflow; declare one with "
                    "buckets: {artifacts: read_write}",
                )
            ],
        ),
        (
            MlflowConfig(),
            {"tracking": _identity(access="read")},
            [
                (
                    "workload_identities.tracking.buckets",
                    "the MLflow server writes artifacts: 'artifacts' must be read_write",
                )
            ],
        ),
    ],
)
def test_config_problems(config, identities, problems):
    assert model.config_problems(config, BUCKETS, identities) == problems


def test_default_identifier_is_checked():
    assert model.default_identifier("mlops-prod") == "mlops-prod-mlflow"
    with pytest.raises(ValueError, match=r"mlflow.database.identifier \(set it to choose"):
        model.default_identifier("42-prod")


# --- rendered objects -------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("auth", [True, False])
def test_every_rendered_object_is_valid(cloud, auth):
    rendered = _render(MlflowConfig(auth={"enabled": auth}), cloud)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in rendered.objects()]
    expected = [("Deployment", "mlflow"), ("Service", "mlflow"), ("PodDisruptionBudget", "mlflow")]
    if cloud == "local":
        expected += [
            ("StatefulSet", "mlflow-postgres"),
            ("Service", "mlflow-postgres"),
            ("NetworkPolicy", "mlflow-postgres"),
        ]
    assert kinds == expected
    for obj in rendered.objects():
        manifests.validate(obj)
        assert obj["metadata"]["namespace"] == "mlflow"


def test_an_invalid_object_is_caught_by_validation():
    deployment = _render().deployment
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(manifests.ManifestError, match="volumeMount"):
        manifests.validate(deployment)


def test_server_command_and_flags():
    container = _container(_render())
    assert container["command"] == ["mlflow"]
    hosts = ",".join(model.allowed_hosts(MlflowConfig()))
    assert container["args"] == [
        "server",
        "--host",
        "0.0.0.0",
        "--port",
        "5000",
        "--workers",
        "2",
        "--serve-artifacts",
        "--artifacts-destination",
        ARTIFACTS,
        "--allowed-hosts",
        hosts,
        "--app-name",
        "basic-auth",
    ]
    assert "--backend-store-uri" not in container["args"]


def test_auth_off_drops_the_app_its_config_and_mount():
    rendered = _render(MlflowConfig(auth={"enabled": False}))
    container = _container(rendered)
    assert "--app-name" not in container["args"]
    assert [e["name"] for e in container["env"]] == [
        "MLFLOW_BACKEND_STORE_URI",
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert [v["name"] for v in rendered.deployment["spec"]["template"]["spec"]["volumes"]] == [
        "tmp"
    ]


def test_backend_store_uri_comes_only_from_the_secret():
    env = _container(_render())["env"]
    assert env[0] == {
        "name": "MLFLOW_BACKEND_STORE_URI",
        "valueFrom": {"secretKeyRef": {"name": "mlflow-credentials", "key": "backend-store-uri"}},
    }


@pytest.mark.parametrize(
    ("cloud", "extra"),
    [
        (
            "aws",
            [
                {"name": "AWS_REGION", "value": "eu-west-1"},
                {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
            ],
        ),
        ("gcp", []),
        (
            "local",
            [
                {
                    "name": "MLFLOW_S3_ENDPOINT_URL",
                    "valueFrom": {
                        "secretKeyRef": {"name": "mlflow-s3-credentials", "key": "AWS_ENDPOINT_URL"}
                    },
                }
            ],
        ),
    ],
)
def test_environment_per_cloud(cloud, extra):
    container = _container(_render(cloud=cloud))
    assert container["env"][1:] == [
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": "/etc/mlflow/auth/basic-auth.ini"},
        *extra,
    ]
    if cloud == "local":  # the MinIO user's keys, from the workload identity's Secret
        assert container["envFrom"] == [{"secretRef": {"name": "mlflow-s3-credentials"}}]
    else:  # IRSA / GKE Workload Identity: no key anywhere
        assert "envFrom" not in container


def test_aws_needs_a_region():
    with pytest.raises(ValueError, match="aws_region is required on AWS"):
        model.render(MlflowConfig(), "aws", ARTIFACTS)


def test_pod_runs_unprivileged_on_a_read_only_root():
    rendered = _render()
    pod = rendered.deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mlflow"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["volumes"] == [
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {
            "name": "auth-config",
            "secret": {
                "secretName": "mlflow-credentials",
                "items": [{"key": "basic-auth.ini", "path": "basic-auth.ini"}],
                "defaultMode": 0o440,
            },
        },
    ]
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "auth-config", "mountPath": "/etc/mlflow/auth", "readOnly": True},
    ]


def test_probes_resources_service_and_budget():
    rendered = _render(MlflowConfig(replicas=3))
    container = _container(rendered)
    health = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 3}
    assert container["startupProbe"] == {**health, "periodSeconds": 5, "failureThreshold": 60}
    assert container["livenessProbe"] == {**health, "periodSeconds": 10, "failureThreshold": 3}
    assert container["readinessProbe"] == {**health, "periodSeconds": 5, "failureThreshold": 2}
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "1Gi"},
        "limits": {"memory": "2Gi"},
    }
    assert rendered.deployment["spec"]["replicas"] == 3
    selector = {
        "app.kubernetes.io/name": "mlflow",
        "app.kubernetes.io/component": "tracking-server",
    }
    assert rendered.deployment["spec"]["selector"] == {"matchLabels": selector}
    assert rendered.service["spec"] == {
        "type": "ClusterIP",
        "selector": selector,
        "ports": [
            {
                "name": "http",
                "port": 5000,
                "targetPort": "http",
                "protocol": "TCP",
                "appProtocol": "http",
            }
        ],
    }
    assert rendered.pod_disruption_budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": selector},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def test_no_secret_value_can_reach_a_rendered_object():
    """The render functions take no password; what the pod needs comes by reference."""
    for cloud in CLOUDS:
        text = json.dumps([o for o in _render(cloud=cloud).objects()])
        for needle in ("postgresql+psycopg2", "://mlflow:", "admin_password", "sslmode"):
            assert needle not in text, (cloud, needle)
        for obj in _render(cloud=cloud).objects():
            spec = obj["spec"].get("template", {}).get("spec", {})
            for container in spec.get("containers", []):
                for env in container["env"]:
                    if "PASSWORD" in env["name"] or "URI" in env["name"]:
                        assert "value" not in env, (cloud, env)


# --- connection strings and the auth config ---------------------------------------------------


def test_backend_store_uri():
    assert (
        model.backend_store_uri("db.internal", "s3cr3t", "require")
        == "postgresql+psycopg2://mlflow:s3cr3t@db.internal:5432/mlflow?sslmode=require"
    )
    # Any character a password may hold is escaped in the URL.
    assert "p%40ss%2Fw%25rd@" in model.backend_store_uri("h", "p@ss/w%rd", "disable")


def _mlflow_auth_config_module():
    """mlflow.server.auth.config on its own: the package's __init__ needs the [auth] extra
    (Flask-WTF), which the server image has and this environment does not."""
    import importlib.util
    from pathlib import Path

    import mlflow

    path = Path(mlflow.__file__).parent / "server" / "auth" / "config.py"
    spec = importlib.util.spec_from_file_location("mlflow_auth_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_auth_config_is_what_mlflow_reads(tmp_path, monkeypatch):
    read_auth_config = _mlflow_auth_config_module().read_auth_config

    uri = model.backend_store_uri("db.internal", "p%rd", "require")
    path = tmp_path / "basic-auth.ini"
    path.write_text(
        model.auth_config_ini(model.AuthConfig(default_permission="EDIT"), uri, "adm%n-pass")
    )
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(path))
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_USERNAME", raising=False)
    config = read_auth_config()
    assert config.default_permission == "EDIT"
    assert config.database_uri == uri
    assert config.admin_username == "admin"
    assert config.admin_password == "adm%n-pass"
    assert config.authorization_function == "mlflow.server.auth:authenticate_request_basic_auth"
    parser = configparser.ConfigParser()
    parser.read_string(path.read_text())
    assert sorted(parser["mlflow"]) == sorted(
        [
            "default_permission",
            "database_uri",
            "admin_username",
            "admin_password",
            "authorization_function",
        ]
    )


def test_allowed_hosts_pass_mlflows_own_host_check():
    from mlflow.server.security_utils import is_allowed_host_header

    config = MlflowConfig(allowed_hosts=["mlflow.example.com"])
    hosts = model.allowed_hosts(config)
    for host in (
        "mlflow.mlflow.svc.cluster.local:5000",
        "mlflow.mlflow.svc.cluster.local",
        "mlflow.mlflow:5000",
        "mlflow:5000",
        "localhost:5000",
        "mlflow.example.com",
    ):
        assert is_allowed_host_header(hosts, host), host
    for host in ("evil.example.com", "10.0.0.5:5000", "mlflow.other.svc.cluster.local:5000"):
        assert not is_allowed_host_header(hosts, host), host


def test_tracking_uri_and_artifacts_destination():
    assert model.tracking_uri("mlflow") == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert (
        model.artifacts_destination("gs://acme-artifacts", "mlflow") == "gs://acme-artifacts/mlflow"
    )
    assert model.artifacts_destination("s3://a/", "x/y") == "s3://a/x/y"


@pytest.mark.parametrize(
    ("cloud", "auth", "keys"),
    [
        ("aws", True, ["backend-store-uri", "basic-auth.ini", "admin-username", "admin-password"]),
        ("gcp", False, ["backend-store-uri"]),
        (
            "local",
            True,
            [
                "backend-store-uri",
                "basic-auth.ini",
                "admin-username",
                "admin-password",
                "database-password",
            ],
        ),
    ],
)
def test_credentials_secret_keys(cloud, auth, keys):
    assert model.credentials_secret_keys(cloud, auth) == keys


# --- local PostgreSQL -------------------------------------------------------------------------


def test_local_postgres_is_the_pinned_official_image_non_root_with_a_retained_volume():
    rendered = _render(
        MlflowConfig(database={"storage_gb": 30, "storage_class": "standard"}), "local"
    )
    statefulset = rendered.postgres_statefulset
    spec = statefulset["spec"]
    assert spec["serviceName"] == "mlflow-postgres" == rendered.postgres_service["metadata"]["name"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert spec["volumeClaimTemplates"] == [
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "30Gi"}},
                "storageClassName": "standard",
            },
        }
    ]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == versions.POSTGRES_IMAGE
    assert versions.POSTGRES_IMAGE.startswith(f"postgres:{versions.POSTGRES_MAJOR_VERSION}.")
    assert container["env"] == [
        {"name": "POSTGRES_USER", "value": "mlflow"},
        {"name": "POSTGRES_DB", "value": "mlflow"},
        {
            "name": "POSTGRES_PASSWORD",
            "valueFrom": {
                "secretKeyRef": {"name": "mlflow-credentials", "key": "database-password"}
            },
        },
        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
    ]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsUser"] == 999
    assert pod["securityContext"]["fsGroup"] == 999
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/var/lib/postgresql/data",
        "/var/run/postgresql",
        "/tmp",
    }
    assert container["readinessProbe"]["exec"]["command"] == [
        "pg_isready",
        "--host=127.0.0.1",
        "--port=5432",
        "--username=mlflow",
        "--dbname=mlflow",
    ]
    assert rendered.postgres_service["spec"]["clusterIP"] == "None"
    assert model.postgres_host("mlflow") == "mlflow-postgres.mlflow.svc.cluster.local"


def test_local_postgres_admits_only_the_tracking_server():
    policy = _render(cloud="local").postgres_network_policy
    assert policy["spec"] == {
        "podSelector": {
            "matchLabels": {
                "app.kubernetes.io/name": "mlflow",
                "app.kubernetes.io/component": "database",
            }
        },
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [
                    {
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "mlflow",
                                "app.kubernetes.io/component": "tracking-server",
                            }
                        }
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 5432}],
            }
        ],
    }
