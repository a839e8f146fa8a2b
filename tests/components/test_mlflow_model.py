"""MLflow tracking server, pure layer: config defaults and errors, rendered objects, strings."""

import configparser
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import kube, versions
from mlops_platform.components.identity.model import WorkloadIdentityConfig
from mlops_platform.components.mlflow import model
from mlops_platform.components.mlflow.model import MlflowConfig

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
        # the `type:` block comes from the cloud (the root config fills it in)
        "database": None,
        "auth": {"enabled": True, "admin_username": "admin", "default_permission": "READ"},
        "clients": {},
        "ingress_namespaces": [],
    }
    assert config.image == versions.MLFLOW_IMAGE
    managed = {
        "storage_gb": 20,
        "max_storage_gb": 100,
        "high_availability": False,
        "backup_retention_days": 7,
        "deletion_protection": None,
        "iam_authentication": False,
        "identifier": None,
    }
    assert config.rds.model_dump() == {
        **managed,
        "type": "rds",
        "instance_class": "db.t4g.medium",
        "kms_key_arn": None,
    }
    assert config.cloud_sql.model_dump() == {
        **managed,
        "type": "cloud_sql",
        "tier": "db-custom-1-3840",
    }
    assert config.postgres.model_dump() == {
        "type": "postgres",
        "storage_gb": 20,
        "storage_class": None,
    }


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
        (
            {"database": {"type": "postgres", "storage_gb": 10}},
            "database.postgres.storage_gb\n  Input should be greater",
        ),
        (
            {"database": {"type": "rds", "storage_gb": 200}},
            "max_storage_gb (100) must be at least storage_gb (200)",
        ),
        (
            {"database": {"type": "cloud_sql", "backup_retention_days": 36}},
            "database.cloud_sql.backup_retention_days",
        ),
        (
            {"database": {"type": "rds", "instance_class": "t4g.medium"}},
            "instance_class 't4g.medium'",
        ),
        (
            {"database": {"type": "cloud_sql", "tier": "db-perf-optimized-N-2"}},
            "tier 'db-perf-optimized-N-2'",
        ),
        # only the chosen backend's settings
        (
            {"database": {"type": "postgres", "high_availability": True}},
            "database.postgres.high_availability\n  Extra inputs",
        ),
        (
            {"database": {"type": "cloud_sql", "instance_class": "db.t4g.medium"}},
            "database.cloud_sql.instance_class",
        ),
        (
            {"database": {"type": "rds", "kms_key_arn": "alias/aws/rds"}},
            "kms_key_arn 'alias/aws/rds' must be a KMS key ARN",
        ),
        (
            {"database": {"type": "rds", "identifier": "1mlflow"}},
            "identifier '1mlflow' must be 1-63",
        ),
        (
            {"database": {"type": "cloud_sql", "identifier": "ml--flow"}},
            "identifier 'ml--flow' must be 1-63",
        ),
        (
            {"database": {"engine": "mysql"}},
            "database\n  Unable to extract tag using discriminator",
        ),
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
    expected = [
        ("Deployment", "mlflow"),
        ("Service", "mlflow"),
        ("PodDisruptionBudget", "mlflow"),
        ("NetworkPolicy", "mlflow"),
    ]
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
    assert container["command"] == kube.env_from_files_command(
        {
            "MLFLOW_BACKEND_STORE_URI": "/var/run/secrets/mlops/server-secrets/backend-store-uri",
            "MLFLOW_FLASK_SERVER_SECRET_KEY": (
                "/var/run/secrets/mlops/server-secrets/flask-secret-key"
            ),
        },
        ["mlflow"],
    )
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
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ]
    assert container["command"] == kube.env_from_files_command(
        {"MLFLOW_BACKEND_STORE_URI": "/var/run/secrets/mlops/server-secrets/backend-store-uri"},
        ["mlflow"],
    )
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "server-secrets", "mountPath": "/var/run/secrets/mlops/server-secrets",
         "readOnly": True},
    ]  # fmt: skip
    volumes = rendered.deployment["spec"]["template"]["spec"]["volumes"]
    assert [v["name"] for v in volumes] == ["tmp", "server-secrets"]
    assert volumes[1]["secret"]["items"] == [
        {"key": "backend-store-uri", "path": "backend-store-uri"}
    ]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "local"])
def test_no_secret_reaches_the_environment_of_any_pod(cloud):
    """The backend store URI, the Flask key, the admin's and the clients' passwords, the
    database password and the MinIO keys are files only: a secretKeyRef or an envFrom
    coming back fails here."""
    rendered = _render(_with_clients(), cloud=cloud)
    pods = 0
    for obj in rendered.objects():
        spec = obj.get("spec", {})
        pod = spec.get("template", {}).get("spec")
        for container in (pod or {}).get("containers", []):
            pods += 1
            assert kube.secret_env_vars(container) == [], (obj["kind"], container["name"])
    assert pods == (3 if cloud == "local" else 2)


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
                    "name": "AWS_SHARED_CREDENTIALS_FILE",
                    "value": "/var/run/secrets/mlops/object-store-credentials/credentials",
                },
                {
                    "name": "AWS_CONFIG_FILE",
                    "value": "/var/run/secrets/mlops/object-store-credentials/config",
                },
            ],
        ),
    ],
)
def test_environment_per_cloud(cloud, extra):
    rendered = _render(cloud=cloud)
    container = _container(rendered)
    assert container["env"] == [
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": "/etc/mlflow/auth/basic-auth.ini"},
        *extra,
    ]
    assert "envFrom" not in container
    volumes = rendered.deployment["spec"]["template"]["spec"]["volumes"]
    if cloud == "local":  # the MinIO user's keys: the workload identity's Secret, as files
        assert volumes[-1] == {
            "name": "object-store-credentials",
            "secret": {
                "secretName": "mlflow-s3-credentials",
                "defaultMode": 0o440,
                "items": [
                    {"key": "credentials", "path": "credentials"},
                    {"key": "config", "path": "config"},
                ],
            },
        }
        assert container["volumeMounts"][-1] == {
            "name": "object-store-credentials",
            "mountPath": "/var/run/secrets/mlops/object-store-credentials",
            "readOnly": True,
        }
    else:  # IRSA / GKE Workload Identity: no key anywhere
        assert "object-store-credentials" not in [v["name"] for v in volumes]


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
            "name": "server-secrets",
            "secret": {
                "secretName": "mlflow-credentials",
                "items": [
                    {"key": "backend-store-uri", "path": "backend-store-uri"},
                    {"key": "flask-secret-key", "path": "flask-secret-key"},
                ],
                "defaultMode": 0o440,
            },
        },
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
        {
            "name": "server-secrets",
            "mountPath": "/var/run/secrets/mlops/server-secrets",
            "readOnly": True,
        },
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
                        # Only the path of a file holding it.
                        assert env["name"].endswith("_FILE"), (cloud, env)
                        assert env["value"].startswith("/var/run/secrets/mlops/"), (cloud, env)


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
        (
            "aws",
            True,
            [
                "backend-store-uri",
                "basic-auth.ini",
                "admin-username",
                "admin-password",
                "admin-credentials",
                "flask-secret-key",
            ],
        ),
        ("gcp", False, ["backend-store-uri"]),
        (
            "local",
            True,
            [
                "backend-store-uri",
                "basic-auth.ini",
                "admin-username",
                "admin-password",
                "admin-credentials",
                "flask-secret-key",
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
        MlflowConfig(database={"type": "postgres", "storage_gb": 30, "storage_class": "standard"}),
        "local",
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
        # The official image's own convention: the password from a file.
        {
            "name": "POSTGRES_PASSWORD_FILE",
            "value": "/var/run/secrets/mlops/database-password/database-password",
        },
        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
    ]
    assert pod["volumes"][-1] == {
        "name": "database-password",
        "secret": {
            "secretName": "mlflow-credentials",
            "defaultMode": 0o440,  # root-owned, group fsGroup 999: postgres reads it
            "items": [{"key": "database-password", "path": "database-password"}],
        },
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsUser"] == 999
    assert pod["securityContext"]["fsGroup"] == 999
    assert {m["mountPath"] for m in container["volumeMounts"]} == {
        "/var/lib/postgresql/data",
        "/var/run/postgresql",
        "/tmp",
        "/var/run/secrets/mlops/database-password",
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


# --- client users: config ---------------------------------------------------------------------

CLIENTS = {
    "serving": {"namespace": "serving"},
    "pipelines": {"namespace": "kubeflow", "permission": "EDIT"},
}


def _with_clients(**extra):
    return MlflowConfig(clients=CLIENTS, **extra)


def test_client_defaults():
    client = model.ClientConfig(namespace="serving")
    assert client.model_dump() == {
        "namespace": "serving",
        "permission": "READ",
        "secret_name": "mlflow-client-credentials",
        "password_version": 1,
    }
    assert model.client_username("pipelines") == "svc-pipelines"
    assert (
        model.client_password_file("batch-scoring")
        == "/var/run/secrets/mlops/client-passwords/batch-scoring"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"clients": {"Serving": {"namespace": "serving"}}}, "clients: key 'Serving' must be"),
        ({"clients": {"a" * 41: {"namespace": "serving"}}}, "must be at most 40 lowercase"),
        ({"clients": {"s": {"namespace": "Serving"}}}, "clients.s.namespace\n  Value error"),
        ({"clients": {"s": {}}}, "clients.s.namespace\n  Field required"),
        ({"clients": {"s": {"namespace": "x", "permission": "USE"}}}, "clients.s.permission"),
        (
            {"clients": {"s": {"namespace": "x", "permission": "NO_PERMISSIONS"}}},
            "clients.s.permission",
        ),
        ({"clients": {"s": {"namespace": "x", "secret_name": "a_b"}}}, "secret_name 'a_b' must"),
        ({"clients": {"s": {"namespace": "x", "password_version": 0}}}, "password_version"),
        ({"clients": {"s": {"namespace": "x", "token": "t"}}}, "clients.s.token\n  Extra inputs"),
        (
            {"auth": {"enabled": False}, "clients": {"s": {"namespace": "x"}}},
            "clients need auth.enabled",
        ),
        (
            {"auth": {"admin_username": "svc-ops"}, "clients": {"ops": {"namespace": "x"}}},
            "clients.ops: user 'svc-ops' is auth.admin_username",
        ),
        (
            {"clients": {"a": {"namespace": "x"}, "b": {"namespace": "x"}}},
            "clients.b.secret_name: x/mlflow-client-credentials is also clients.a's Secret",
        ),
        (
            {"clients": {"a": {"namespace": "mlflow", "secret_name": "mlflow-credentials"}}},
            "clients.a.secret_name: 'mlflow-credentials' is the tracking server's own Secret",
        ),
        (
            {"clients": {"a": {"namespace": "mlflow", "secret_name": "mlflow-client-passwords"}}},
            "'mlflow-client-passwords' is the tracking server's own Secret",
        ),
    ],
)
def test_bad_clients_name_the_field(data, message):
    with pytest.raises(ValidationError) as error:
        MlflowConfig.model_validate(data)
    assert message in str(error.value)


def test_two_clients_may_share_a_namespace_with_distinct_secrets():
    config = MlflowConfig(
        clients={
            "serving": {"namespace": "serving"},
            "shadow": {"namespace": "serving", "secret_name": "mlflow-shadow-credentials"},
        }
    )
    names = [
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for o in _render(config).client_secrets.values()
    ]
    assert sorted(names) == [
        ("serving", "mlflow-client-credentials"),
        ("serving", "mlflow-shadow-credentials"),
    ]


# --- client users: rendered objects -----------------------------------------------------------


@pytest.mark.parametrize("cloud", CLOUDS)
def test_clients_add_the_provisioner_and_secrets_all_valid(cloud):
    config = _with_clients()
    rendered = _render(config, cloud)
    job_name = model.provisioner_name(config)
    assert job_name == f"mlflow-provision-users-{model.provisioner_digest(config)}"
    assert len(job_name) == len("mlflow-provision-users-") + 10
    added = [
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in rendered.objects()
    ]
    assert added[-6:] == [
        ("ConfigMap", "mlflow", job_name),
        ("Job", "mlflow", job_name),
        ("NetworkPolicy", "mlflow", "mlflow-provision-users"),
        ("Secret", "mlflow", "mlflow-client-passwords"),
        ("Secret", "kubeflow", "mlflow-client-credentials"),
        ("Secret", "serving", "mlflow-client-credentials"),
    ]
    for obj in rendered.objects():
        manifests.validate(obj)
    # Without clients none of it exists.
    plain = _render(MlflowConfig(), cloud)
    assert plain.provisioner_job is None and plain.provisioner_config_map is None
    assert plain.provisioner_network_policy is None
    assert plain.client_secrets == {} and plain.client_passwords_secret is None


def test_client_secret_is_what_mlflow_clients_read():
    config = _with_clients()
    assert model.client_secret_data(config, "pipelines", "p%w") == {
        "MLFLOW_TRACKING_URI": "http://mlflow.mlflow.svc.cluster.local:5000",
        "MLFLOW_TRACKING_USERNAME": "svc-pipelines",
        "MLFLOW_TRACKING_PASSWORD": "p%w",
        "credentials": "[mlflow]\n"
        "mlflow_tracking_username = svc-pipelines\n"
        "mlflow_tracking_password = p%%w\n",
    }
    assert model.client_secret_metadata(config, "pipelines") == {
        "name": "mlflow-client-credentials",
        "namespace": "kubeflow",
        "labels": {
            "app.kubernetes.io/name": "mlflow",
            "app.kubernetes.io/component": "client-credentials",
            "app.kubernetes.io/part-of": "mlflow",
            "app.kubernetes.io/managed-by": "mlops-platform",
        },
        "annotations": {"mlops.platform/mlflow-user": "svc-pipelines"},
    }
    # MLflow's own client picks these variables up.
    from mlflow.environment_variables import (
        MLFLOW_TRACKING_PASSWORD,
        MLFLOW_TRACKING_URI,
        MLFLOW_TRACKING_USERNAME,
    )

    assert (
        MLFLOW_TRACKING_URI.name,
        MLFLOW_TRACKING_USERNAME.name,
        MLFLOW_TRACKING_PASSWORD.name,
        "credentials",
    ) == model.CLIENT_SECRET_KEYS


def test_mlflow_reads_the_mounted_credentials_file(tmp_path, monkeypatch):
    """What the pods mount at $HOME/.mlflow/credentials is what MLflow's client reads."""
    from mlflow.utils.credentials import read_mlflow_creds

    config = _with_clients()
    folder = tmp_path / ".mlflow"
    folder.mkdir()
    data = model.client_secret_data(config, "serving", "pa%ss-" + "w" * 20)
    (folder / "credentials").write_text(data["credentials"])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    creds = read_mlflow_creds()
    assert (creds.username, creds.password) == ("svc-serving", "pa%ss-" + "w" * 20)
    assert model.client_credentials_volume("creds") == {
        "name": "mlflow-credentials",
        "secret": {
            "secretName": "creds",
            "defaultMode": 0o440,
            "items": [{"key": "credentials", "path": "credentials"}],
        },
    }
    assert model.client_credentials_mount("/tmp") == {
        "name": "mlflow-credentials",
        "mountPath": "/tmp/.mlflow",
        "readOnly": True,
    }


def test_provisioner_job_runs_the_program_unprivileged_with_secrets_by_reference():
    config = _with_clients()
    job = model.provisioner_job(config)
    name = model.provisioner_name(config)
    spec = job["spec"]
    assert (spec["backoffLimit"], spec["ttlSecondsAfterFinished"]) == (4, 86400)
    assert spec["activeDeadlineSeconds"] == 900
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["volumes"] == [
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "program", "configMap": {"name": name, "defaultMode": 0o444}},
        {
            "name": "mlflow-credentials",
            "secret": {
                "secretName": "mlflow-credentials",
                "defaultMode": 0o440,
                # The admin's credentials as MLflow's credentials file, under HOME.
                "items": [{"key": "admin-credentials", "path": "credentials"}],
            },
        },
        {
            "name": "client-passwords",
            "secret": {
                "secretName": "mlflow-client-passwords",
                "defaultMode": 0o440,
                "items": [
                    {"key": "pipelines", "path": "pipelines"},
                    {"key": "serving", "path": "serving"},
                ],
            },
        },
    ]
    [container] = pod["containers"]
    assert container["image"] == config.image == versions.MLFLOW_IMAGE
    assert container["command"] == ["python", "/etc/mlflow/provision/provision_users.py"]
    assert container["args"] == ["/etc/mlflow/provision/users.json"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "program", "mountPath": "/etc/mlflow/provision", "readOnly": True},
        {"name": "mlflow-credentials", "mountPath": "/tmp/.mlflow", "readOnly": True},
        {
            "name": "client-passwords",
            "mountPath": "/var/run/secrets/mlops/client-passwords",
            "readOnly": True,
        },
    ]
    assert container["env"] == [
        {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.mlflow.svc.cluster.local:5000"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def test_provisioner_reaches_only_the_tracking_server_and_dns():
    config = _with_clients()
    policy = model.provisioner_network_policy(config)
    manifests.validate(policy)
    job_labels = model.provisioner_job(config)["spec"]["template"]["metadata"]["labels"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= job_labels.items()
    server_labels = model.deployment(config, "gcp", ARTIFACTS)["spec"]["template"]["metadata"][
        "labels"
    ]
    assert not selector.items() <= server_labels.items()  # the server is not fenced in by it
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"] == []
    [server, dns] = policy["spec"]["egress"]
    [peer] = server["to"]
    assert peer["podSelector"]["matchLabels"].items() <= server_labels.items()
    assert server["ports"] == [{"protocol": "TCP", "port": 5000}]
    assert dns["to"] == [kube.DNS_PEER]
    # The server's own policy still admits the Job (a pod of its namespace).
    assert {"podSelector": {}} in model.tracking_network_policy(config)["spec"]["ingress"][0][
        "from"
    ]


def test_provisioner_config_map_carries_the_program_and_the_spec():
    from mlops_platform.components.mlflow import provision_users

    config = _with_clients()
    config_map = model.provisioner_config_map(config)
    assert config_map["immutable"] is True
    assert config_map["metadata"]["name"] == model.provisioner_name(config)
    data = config_map["data"]
    assert data["provision_users.py"] == Path(provision_users.__file__).read_text()
    spec = json.loads(data["users.json"])
    assert spec == {
        "users": [
            {
                "username": "svc-pipelines",
                "permission": "EDIT",
                "password_file": "/var/run/secrets/mlops/client-passwords/pipelines",
            },
            {
                "username": "svc-serving",
                "permission": "READ",
                "password_file": "/var/run/secrets/mlops/client-passwords/serving",
            },
        ]
    }
    # The program reads exactly what is rendered, and every file it needs is mounted.
    users = provision_users.parse_users(spec)
    pod = model.provisioner_job(config)["spec"]["template"]["spec"]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "client-passwords"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "client-passwords"]
    mounted = {f"{mount['mountPath']}/{item['path']}" for item in volume["secret"]["items"]}
    assert {u.password_file for u in users} == mounted


@pytest.mark.parametrize(
    ("change", "reruns"),
    [
        ({"clients": {**CLIENTS, "serving": {"namespace": "serving", "permission": "EDIT"}}}, True),
        ({"clients": {**CLIENTS, "batch": {"namespace": "batch"}}}, True),
        ({"clients": {"pipelines": CLIENTS["pipelines"]}}, True),
        (
            {"clients": {**CLIENTS, "serving": {"namespace": "serving", "password_version": 2}}},
            True,
        ),
        ({"image": "ghcr.io/mlflow/mlflow:v3.17.1-full"}, True),
        ({"namespace": "tracking"}, True),
        # Where a client's Secret lives does not change what the Job does.
        ({"clients": {**CLIENTS, "serving": {"namespace": "models"}}}, False),
        (
            {"clients": {**CLIENTS, "serving": {"namespace": "serving", "secret_name": "creds"}}},
            False,
        ),
        ({"replicas": 3}, False),
    ],
)
def test_the_job_name_changes_exactly_when_it_must_run_again(change, reruns):
    base = _with_clients()
    changed = MlflowConfig.model_validate({**base.model_dump(), **change})
    assert model.provisioner_digest(base) == model.provisioner_digest(_with_clients())
    assert (model.provisioner_name(changed) != model.provisioner_name(base)) is reruns
    # The program itself is part of what names the Job.
    assert model.provisioner_digest(base, script="print()") != model.provisioner_digest(base)


def test_no_client_password_can_reach_a_rendered_object():
    for cloud in CLOUDS:
        rendered = _render(_with_clients(), cloud)
        for obj in rendered.objects():
            if obj["kind"] == "Secret":
                # Checked with placeholders only; the resource layer fills secret Outputs.
                values = [
                    v for k, v in obj["stringData"].items() if "PASSWORD" in k or k in CLIENTS
                ]
                assert set(values) == {model.PLACEHOLDER_PASSWORD}, obj["metadata"]
                continue
            if obj["kind"] == "ConfigMap":
                # The spec names the files that hold passwords, never a password.
                for user in json.loads(obj["data"]["users.json"])["users"]:
                    assert sorted(user) == ["password_file", "permission", "username"]
                continue
            for container in obj["spec"].get("template", {}).get("spec", {}).get("containers", []):
                assert kube.secret_env_vars(container) == [], (cloud, obj["metadata"])
                for env in container["env"]:
                    if "PASSWORD" in env["name"] or "SECRET" in env["name"]:
                        assert env["name"].endswith("_FILE"), (cloud, env)


# --- the provisioning program -----------------------------------------------------------------


def test_program_refuses_a_bad_spec_or_missing_passwords(tmp_path):
    from mlops_platform.components.mlflow import provision_users as program

    path = tmp_path / "a"
    user = {"username": "svc-a", "permission": "READ", "password_file": str(path)}
    with pytest.raises(program.ProvisioningError, match="svc-a: permission 'USE' is not one of"):
        program.parse_users({"users": [{**user, "permission": "USE"}]})
    with pytest.raises(program.ProvisioningError, match="duplicate usernames"):
        program.parse_users({"users": [user, user]})
    users = program.parse_users({"users": [user]})
    with pytest.raises(program.ProvisioningError) as missing:
        program.read_passwords(users)
    assert str(missing.value) == (
        f"svc-a: password file {path} cannot be read (No such file or directory)"
    )
    for short in ("", "short\n"):
        path.write_text(short)
        with pytest.raises(program.ProvisioningError) as error:
            program.read_passwords(users)
        assert str(error.value) == (
            f"svc-a: password file {path} is empty or shorter than 12 characters"
        )
    path.write_text("x" * 32 + "\n")
    assert program.read_passwords(users) == {"svc-a": "x" * 32}


def test_program_exits_non_zero_without_its_environment(tmp_path, capsys):
    from mlops_platform.components.mlflow import provision_users as program

    mounted = tmp_path / "client-passwords"
    mounted.mkdir()
    spec = tmp_path / "users.json"
    spec.write_text(
        json.dumps(model.users_spec(_with_clients())).replace(
            model.PROVISIONER_PASSWORDS_DIR, str(mounted)
        )
    )
    assert program.main([]) == 2
    capsys.readouterr()
    assert program.main([str(spec)], {"MLFLOW_TRACKING_URI": "http://x"}) == 1
    err = capsys.readouterr().err
    assert f"svc-pipelines: password file {mounted}/pipelines cannot be read" in err
    (mounted / "serving").write_text("s" * 32)
    (mounted / "pipelines").write_text("p" * 32)
    assert program.main([str(spec)], {}) == 1
    assert "error: MLFLOW_TRACKING_URI is not set" in capsys.readouterr().err
    home = tmp_path / "home"
    environ = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "HOME": str(home)}
    assert program.main([str(spec)], environ) == 1
    err = capsys.readouterr().err
    assert "the admin's credentials are missing: neither $HOME/.mlflow/credentials nor" in err
    assert "s" * 32 not in err and "p" * 32 not in err
    assert program.admin_credentials_found(
        {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "x"}
    )
    (home / ".mlflow").mkdir(parents=True)
    (home / ".mlflow" / "credentials").write_text(model.mlflow_credentials_file("admin", "x"))
    assert program.admin_credentials_found(environ)


def test_program_waits_for_the_server_then_gives_up():
    from mlops_platform.components.mlflow import provision_users as program

    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    # Port 9 (discard) on loopback: refused at once.
    with pytest.raises(program.ProvisioningError, match=r"http://127.0.0.1:9/health not healthy"):
        program.wait_for_server(
            "http://127.0.0.1:9/", timeout=10, interval=2, clock=lambda: now[0], sleep=sleep
        )
    assert slept == [2, 2, 2, 2, 2]


# --- the provisioning program against a real basic-auth server --------------------------------

ADMIN_PASSWORD = "admin-" + "k3y" * 8


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """`mlflow server --app-name basic-auth` on loopback, configured by `auth_config_ini`."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    folder = tmp_path_factory.mktemp("mlflow-auth")
    config = folder / "basic-auth.ini"
    auth = model.AuthConfig()  # default_permission READ, admin `admin`
    # Each request re-hashes its password (PBKDF2) unless verified credentials are cached:
    # the cache only saves time here (one worker, so a password change invalidates it).
    config.write_text(
        model.auth_config_ini(auth, f"sqlite:///{folder / 'auth.db'}", ADMIN_PASSWORD)
        + "auth_cache_ttl_seconds = 60\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The Deployment's entrypoint: the backend store URI and the Flask key come from files
    # (the Secret's keys, mounted), set by `sh` for `mlflow`, never passed in the environment.
    secrets = folder / "server-secrets"
    secrets.mkdir()
    (secrets / model.BACKEND_STORE_URI_KEY).write_text(f"sqlite:///{folder / 'mlflow.db'}")
    (secrets / model.FLASK_SECRET_KEY_KEY).write_text("test-" + "f" * 32)
    entrypoint = [
        part.replace(model.SERVER_SECRETS_DIR, str(secrets))
        for part in model.server_command(model.MlflowConfig())
    ]
    entrypoint[-1] = str(Path(sys.executable).parent / "mlflow")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(
        [
            *entrypoint,
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--artifacts-destination",
            str(folder / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**environ, "MLFLOW_AUTH_CONFIG_PATH": str(config)},
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not become healthy in 90 s")
            time.sleep(0.3)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=3)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        log.close()


def _status(uri, path, username, password, body=None):
    """HTTP status of one REST call with basic auth (401/403 are answers, not errors)."""
    import base64
    import urllib.error
    import urllib.request

    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{uri}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.slow
def test_program_provisions_users_on_a_real_server_idempotently(
    auth_server, tmp_path, monkeypatch, capsys
):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    from mlops_platform.components.mlflow import provision_users as program

    uri = auth_server
    config = _with_clients()
    # The Job's files, as the Secret volumes hold them: the passwords under a folder that
    # stands for the mounted one, the admin's MLflow credentials file under HOME.
    mounted = tmp_path / "client-passwords"
    mounted.mkdir()
    spec = tmp_path / "users.json"

    def write_spec(rendered: str) -> None:
        spec.write_text(rendered.replace(model.PROVISIONER_PASSWORDS_DIR, str(mounted)))

    write_spec(model.provisioner_config_map(config)["data"]["users.json"])
    passwords = {"serving": "serving-" + "a1" * 12, "pipelines": "pipelines-" + "b2" * 12}
    for key, password in passwords.items():
        (mounted / key).write_text(password)
    admin_home = tmp_path / "admin-home"
    (admin_home / ".mlflow").mkdir(parents=True)
    (admin_home / ".mlflow" / "credentials").write_text(
        model.mlflow_credentials_file("admin", ADMIN_PASSWORD)
    )
    environ = {"MLFLOW_TRACKING_URI": uri, "HOME": str(admin_home)}
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    # Something the clients did not create: the admin's experiment and registered model.
    admin = MlflowClient(uri)
    experiment_id = admin.create_experiment("churn")
    admin.create_registered_model("churn-model")

    assert program.main([str(spec)], environ) == 0
    first = capsys.readouterr().out
    assert "svc-pipelines: created" in first and "svc-serving: created" in first
    assert "svc-serving: experiment * READ granted" in first
    assert "svc-pipelines: registered_model * EDIT granted" in first
    # Again: same users, same passwords, same grants (re-set, not duplicated).
    assert program.main([str(spec)], environ) == 0
    second = capsys.readouterr().out
    assert "svc-serving: password set" in second
    assert "svc-pipelines: experiment * EDIT re-granted" in second
    for output in (first, second):
        assert all(p not in output for p in [*passwords.values(), ADMIN_PASSWORD])

    users = AuthServiceClient(uri)
    for key in ("serving", "pipelines"):
        user = users.get_user(f"svc-{key}")
        assert user.is_admin is False
        grants = sorted(
            (p.resource_type, p.resource_pattern, p.permission)
            for role in users.list_user_roles(user.username)
            for p in role.permissions
        )
        permission = config.clients[key].permission
        assert grants == [
            ("experiment", "*", permission),
            ("registered_model", "*", permission),
        ], key

    get_experiment = f"/api/2.0/mlflow/experiments/get?experiment_id={experiment_id}"
    create_run = ("/api/2.0/mlflow/runs/create", {"experiment_id": experiment_id})
    tag_model = (
        "/api/2.0/mlflow/registered-models/set-tag",
        {"name": "churn-model", "key": "stage", "value": "x"},
    )
    # READ: logs in, reads, and is refused every write on what it was not given.
    serving = ("svc-serving", passwords["serving"])
    assert _status(uri, get_experiment, *serving) == 200
    assert _status(uri, "/api/2.0/mlflow/registered-models/get?name=churn-model", *serving) == 200
    assert _status(uri, *create_run[:1], *serving, body=create_run[1]) == 403
    assert _status(uri, *tag_model[:1], *serving, body=tag_model[1]) == 403
    assert _status(uri, get_experiment, "svc-serving", "wrong-password-123") == 401
    # EDIT: writes runs and model metadata, may not delete.
    pipelines = ("svc-pipelines", passwords["pipelines"])
    assert _status(uri, *create_run[:1], *pipelines, body=create_run[1]) == 200
    assert _status(uri, *tag_model[:1], *pipelines, body=tag_model[1]) == 200
    delete = ("/api/2.0/mlflow/experiments/delete", {"experiment_id": experiment_id})
    assert _status(uri, delete[0], *pipelines, body=delete[1]) == 403

    # Through MLflow's own client, as a pod that mounts its Secret's credentials file would.
    serving_home = tmp_path / "serving-home"
    (serving_home / ".mlflow").mkdir(parents=True)
    (serving_home / ".mlflow" / "credentials").write_text(
        model.client_secret_data(config, "serving", passwords["serving"])["credentials"]
    )
    monkeypatch.setenv("HOME", str(serving_home))
    as_serving = MlflowClient(uri)
    assert as_serving.get_registered_model("churn-model").name == "churn-model"
    with pytest.raises(MlflowException) as denied:
        as_serving.create_run(experiment_id)
    assert denied.value.error_code == "PERMISSION_DENIED"

    # A rotated password (password_version) and a changed permission converge on the next run.
    rotated = "serving-rotated-" + "c3" * 8
    (mounted / "serving").write_text(rotated + "\n")
    write_spec(
        json.dumps(
            model.users_spec(
                MlflowConfig(
                    clients={**CLIENTS, "serving": {"namespace": "serving", "permission": "EDIT"}}
                )
            )
        )
    )
    monkeypatch.setenv("HOME", str(admin_home))
    assert program.main([str(spec)], environ) == 0
    assert _status(uri, get_experiment, *serving) == 401
    new_serving = ("svc-serving", rotated)
    assert _status(uri, *create_run[:1], *new_serving, body=create_run[1]) == 200


@pytest.mark.parametrize(
    ("clients", "extra", "namespaces"),
    [
        ({}, [], None),  # its own namespace only
        (
            {"serving": {"namespace": "serving"}, "pipelines": {"namespace": "kubeflow"}},
            [],
            ["kubeflow", "serving"],
        ),
        # an ingress gateway's namespace; a client in MLflow's own namespace adds nothing
        ({"ops": {"namespace": "mlflow"}}, ["istio-ingress"], ["istio-ingress"]),
    ],
)
def test_only_its_namespace_and_its_clients_reach_the_tracking_server(clients, extra, namespaces):
    config = MlflowConfig(clients=clients, ingress_namespaces=extra)
    policy = model.tracking_network_policy(config)
    manifests.validate(policy)
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": model.selector_labels("tracking-server")}
    assert spec["policyTypes"] == ["Ingress"]
    [rule] = spec["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": model.PORT}]
    assert rule["from"][0] == {"podSelector": {}}
    if namespaces is None:
        assert len(rule["from"]) == 1
    else:
        [expression] = rule["from"][1]["namespaceSelector"]["matchExpressions"]
        assert expression == {
            "key": "kubernetes.io/metadata.name",
            "operator": "In",
            "values": namespaces,
        }


def test_ingress_namespaces_must_be_names():
    with pytest.raises(ValidationError, match="ingress_namespaces"):
        MlflowConfig(ingress_namespaces=["Not_A_Namespace"])
