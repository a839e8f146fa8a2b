"""Feast feature store, pure layer: config defaults and errors, feature_store.yaml per cloud,
and every Kubernetes object valid for the pinned Kubernetes version."""

import pytest
import yaml
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import kube, versions
from mlops_platform.components.feast import model
from mlops_platform.components.feast.model import FeastConfig
from mlops_platform.components.identity.model import WorkloadIdentityConfig

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
ADDRESSES = {
    "aws": ("s3://mlops-test-features", "master.feast.abc.euw1.cache.amazonaws.com", 6379),
    "gcp": ("gs://mlops-test-features", "10.20.0.3", 6378),
    "local": ("s3://mlops-test-features", "feast-redis.feast.svc.cluster.local", 6379),
}


def _render(config=None, cloud="aws"):
    bucket, host, port = ADDRESSES[cloud]
    return model.render(
        config or FeastConfig(),
        cloud,
        bucket,
        host,
        port,
        "eu-west-1" if cloud == "aws" else None,
        CA if cloud == "gcp" else None,
    )


def _store_config(rendered):
    return yaml.safe_load(rendered.config_map["data"][model.FEATURE_STORE_YAML_KEY])


def _container(rendered):
    return rendered.deployment["spec"]["template"]["spec"]["containers"][0]


def test_defaults_are_the_documented_ones():
    config = FeastConfig()
    assert (config.namespace, config.service_account, config.project) == ("feast", "feast", "mlops")
    assert config.client_namespaces == ["kubeflow", "serving"]
    assert config.registry.model_dump() == {
        "bucket": "features",
        "path": "feast/registry.db",
        "cache_ttl_seconds": 60,
    }
    assert config.offline_store.model_dump() == {"type": "file", "data_prefix": "feast/data"}
    # the online store's `type:` block comes from the cloud (the root config fills it in)
    assert config.online_store is None
    assert config.elasticache.replicas == config.memorystore.replicas == 1
    assert config.elasticache.node_type == "cache.t4g.small"
    assert config.memorystore.memory_size_gb == 1 and config.memorystore.persistence is True
    assert config.memorystore.identifier is None and config.memorystore.deletion_protection is None
    assert (config.redis.memory_limit, config.redis.storage_gb) == ("1Gi", 5)
    server = config.server
    assert server.image == versions.FEAST_IMAGE
    assert server.image == "ghcr.io/mlops-platform/feast:0.1.0"
    assert (server.replicas, server.workers) == (2, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"namespace": "Feast"}, "namespace 'Feast' must be a DNS label"),
        ({"service_account": "feast_sa"}, "service_account 'feast_sa' must be a DNS label"),
        ({"project": "my-project"}, "project 'my-project' must be 1-63 lowercase letters"),
        ({"project": "_x"}, "project '_x' must be"),
        ({"client_namespaces": ["serving", "serving"]}, "has duplicates"),
        ({"client_namespaces": ["Serving"]}, "client_namespaces entry 'Serving'"),
        ({"registry": {"path": "/feast/registry.db"}}, "path '/feast/registry.db' must be"),
        ({"registry": {"path": "feast/registry.pb"}}, "ending in .db"),
        ({"registry": {"bucket": "Features"}}, "bucket 'Features' must be a DNS label"),
        ({"registry": {"cache_ttl_seconds": -1}}, "registry.cache_ttl_seconds"),
        ({"offline_store": {"type": "bigquery"}}, "offline_store.type"),
        ({"offline_store": {"data_prefix": "data/"}}, "data_prefix 'data/' must be"),
        (
            {"online_store": {"type": "elasticache", "replicas": 6}},
            "online_store.elasticache.replicas",
        ),
        (
            {"online_store": {"type": "elasticache", "node_type": "t4g.small"}},
            "node_type 't4g.small'",
        ),
        (
            {"online_store": {"type": "elasticache", "kms_key_arn": "alias/x"}},
            "kms_key_arn 'alias/x'",
        ),
        (
            {"online_store": {"type": "memorystore", "memory_size_gb": 0}},
            "online_store.memorystore.memory_size_gb",
        ),
        ({"online_store": {"type": "redis", "memory_limit": "32Mi"}}, "at least 64Mi"),
        ({"online_store": {"type": "redis", "memory_limit": "lots"}}, "memory_limit 'lots'"),
        (
            {"online_store": {"type": "memorystore", "identifier": "Feast"}},
            "identifier 'Feast' must be 1-40",
        ),
        ({"online_store": {"type": "elasticache", "identifier": "a--b"}}, "without '--'"),
        ({"online_store": {"type": "memorystore", "identifier": "x" * 41}}, "must be 1-40"),
        (
            {"online_store": {"type": "redis", "key_ttl_seconds": 0}},
            "online_store.redis.key_ttl_seconds",
        ),
        # only the chosen backend's settings
        ({"online_store": {"type": "redis", "replicas": 2}}, "online_store.redis.replicas"),
        (
            {"online_store": {"type": "elasticache", "persistence": False}},
            "online_store.elasticache.persistence",
        ),
        ({"online_store": {"type": "dynamodb"}}, "online_store"),
        ({"server": {"image": "quay.io/feastdev/feature-server"}}, "must be pinned"),
        ({"server": {"image": "quay.io/feastdev/feature-server:latest"}}, "must be pinned"),
        ({"server": {"memory_request": "2Gi", "memory_limit": "1Gi"}}, "memory_limit (1Gi)"),
        ({"server": {"cpu_request": "lots"}}, "cpu_request 'lots' is not a Kubernetes quantity"),
        ({"server": {"replicas": 0}}, "server.replicas"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_config_names_the_field(data, message):
    with pytest.raises(ValidationError) as error:
        FeastConfig.model_validate(data)
    assert message in str(error.value)


def _identity(namespace="feast", account="feast", access="read_write"):
    return WorkloadIdentityConfig(
        namespace=namespace, service_account=account, buckets={"features": access}
    )


@pytest.mark.parametrize(
    ("config", "identities", "problems"),
    [
        (FeastConfig(), {"feast": _identity()}, []),
        (
            FeastConfig(registry={"bucket": "nope"}),
            {"feast": _identity()},
            [("feast.registry.bucket", "unknown bucket 'nope'; storage.buckets has 'features'")],
        ),
        (
            FeastConfig(),
            {"other": _identity(namespace="serving")},
            [
                (
                    "feast.service_account",
                    "no workload_identities entry for feast/feast; declare one with buckets: "
                    "{features: read_write}",
                )
            ],
        ),
        (
            FeastConfig(),
            {"feast": _identity(access="read")},
            [
                (
                    "workload_identities.feast.buckets",
                    "the feature store writes its registry: 'features' must be read_write",
                )
            ],
        ),
    ],
)
def test_config_problems(config, identities, problems):
    assert model.config_problems(config, ["features"], identities) == problems


def test_default_identifier_is_checked():
    assert model.default_identifier("mlops-prod") == "mlops-prod-feast"
    with pytest.raises(ValueError, match=r"feast\.online_store\.identifier"):
        model.default_identifier("x" * 40)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "local"])
def test_every_rendered_object_is_valid(cloud):
    rendered = _render(cloud=cloud)
    kinds = [(obj["kind"], obj["metadata"]["name"]) for obj in rendered.objects()]
    expected = [
        ("ConfigMap", "feast-feature-store"),
        ("Deployment", "feast-feature-server"),
        ("Service", "feast-feature-server"),
        ("PodDisruptionBudget", "feast-feature-server"),
        ("NetworkPolicy", "feast-feature-server"),
    ]
    if cloud == "local":
        expected += [
            ("StatefulSet", "feast-redis"),
            ("Service", "feast-redis"),
            ("NetworkPolicy", "feast-redis"),
        ]
    assert kinds == expected
    for obj in rendered.objects():
        manifests.validate(obj)
        assert obj["metadata"]["namespace"] == "feast"


def test_an_invalid_object_is_caught_by_validation():
    deployment = _render().deployment
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(manifests.ManifestError):
        manifests.validate(deployment)


@pytest.mark.parametrize(
    ("cloud", "connection"),
    [
        (
            "aws",
            "master.feast.abc.euw1.cache.amazonaws.com:6379,ssl=true,"
            "password=${FEAST_REDIS_PASSWORD}",
        ),
        (
            "gcp",
            "10.20.0.3:6378,ssl=true,ssl_ca_certs=/etc/feast/redis-server-ca.pem,"
            "ssl_check_hostname=false,password=${FEAST_REDIS_PASSWORD}",
        ),
        ("local", "feast-redis.feast.svc.cluster.local:6379,password=${FEAST_REDIS_PASSWORD}"),
    ],
)
def test_feature_store_yaml_per_cloud(cloud, connection):
    rendered = _render(cloud=cloud)
    bucket = ADDRESSES[cloud][0]
    assert _store_config(rendered) == {
        "project": "mlops",
        "provider": "local",
        "registry": {
            "registry_type": "file",
            "path": f"{bucket}/feast/registry.db",
            "cache_ttl_seconds": 60,
        },
        "offline_store": {"type": "file"},
        "online_store": {"type": "redis", "redis_type": "redis", "connection_string": connection},
        "entity_key_serialization_version": 3,
    }
    data = rendered.config_map["data"]
    if cloud == "gcp":
        assert data[model.REDIS_CA_KEY] == CA
    else:
        assert set(data) == {model.FEATURE_STORE_YAML_KEY}


def test_feature_store_yaml_follows_the_config():
    config = FeastConfig(
        project="churn",
        registry={"path": "reg/prod.db", "cache_ttl_seconds": 0},
        offline_store={"type": "duckdb"},
        online_store={"type": "redis", "key_ttl_seconds": 86400},
    )
    store = _store_config(_render(config, "local"))
    assert store["project"] == "churn"
    assert store["registry"]["path"] == "s3://mlops-test-features/reg/prod.db"
    assert store["registry"]["cache_ttl_seconds"] == 0
    assert store["offline_store"] == {"type": "duckdb"}
    assert store["online_store"]["key_ttl_seconds"] == 86400


def test_gcp_needs_the_ca_and_aws_a_region():
    with pytest.raises(ValueError, match="redis_ca is required on GCP"):
        model.render(FeastConfig(), "gcp", "gs://b", "10.0.0.1", 6378)
    with pytest.raises(ValueError, match="aws_region is required on AWS"):
        model.render(FeastConfig(), "aws", "s3://b", "h", 6379)


def test_server_command_is_feast_serve_on_the_mounted_repo():
    container = _container(_render())
    assert container["image"] == "ghcr.io/mlops-platform/feast:0.1.0"
    # The password from its file (sh sets FEAST_REDIS_PASSWORD, then execs feast).
    assert container["command"] == kube.env_from_files_command(
        {"FEAST_REDIS_PASSWORD": "/var/run/secrets/mlops/online-store-password/redis-password"},
        model.server_command(FeastConfig()),
    )
    assert model.server_command(FeastConfig()) == [
        "feast",
        "--chdir",
        "/etc/feast",
        "--log-level",
        "info",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        "6566",
        "--workers",
        "2",
        "--registry_ttl_sec",
        "60",
    ]
    assert "args" not in container
    assert container["ports"] == [{"name": "http", "containerPort": 6566, "protocol": "TCP"}]
    assert {"name": "feature-store", "mountPath": "/etc/feast", "readOnly": True} in container[
        "volumeMounts"
    ]


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
        *extra,
    ]
    volumes = {v["name"]: v for v in rendered.deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert volumes["online-store-password"]["secret"] == {
        "secretName": "feast-online-store",
        "defaultMode": 0o440,
        "items": [{"key": "redis-password", "path": "redis-password"}],
    }
    assert mounts["online-store-password"] == "/var/run/secrets/mlops/online-store-password"
    if cloud == "local":  # the MinIO user's boto3 files, from the workload identity's Secret
        assert volumes["object-store-credentials"]["secret"]["secretName"] == (
            "feast-s3-credentials"
        )
        assert "object-store-credentials" in mounts
    else:
        assert "object-store-credentials" not in volumes


@pytest.mark.parametrize("cloud", ["aws", "gcp", "local"])
def test_no_secret_reaches_the_environment_of_any_pod(cloud):
    """A secretKeyRef or envFrom coming back (server or Redis) fails here."""
    pods = 0
    for obj in _render(cloud=cloud).objects():
        for container in (
            obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            pods += 1
            assert kube.secret_env_vars(container) == [], obj["metadata"]["name"]
    assert pods == (2 if cloud == "local" else 1)


def test_pods_run_unprivileged_on_a_read_only_root():
    rendered = _render(cloud="local")
    for workload, uid in ((rendered.deployment, 10001), (rendered.redis_statefulset, 999)):
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container = pod["containers"][0]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": uid,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    server_pod = rendered.deployment["spec"]["template"]["spec"]
    assert server_pod["serviceAccountName"] == "feast"
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}} in server_pod["volumes"]


def test_probes_service_budget_and_network_policy():
    rendered = _render()
    container = _container(rendered)
    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    selector = {"app.kubernetes.io/name": "feast", "app.kubernetes.io/component": "feature-server"}
    assert rendered.service["spec"]["selector"] == selector
    assert rendered.service["spec"]["ports"][0]["port"] == 6566
    assert rendered.pod_disruption_budget["spec"]["maxUnavailable"] == 1
    assert rendered.deployment["spec"]["replicas"] == 2
    policy = rendered.network_policy["spec"]
    assert policy["podSelector"] == {"matchLabels": selector}
    assert policy["ingress"] == [
        {
            "from": [
                {"podSelector": {}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}},
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "serving"}}},
            ],
            "ports": [{"protocol": "TCP", "port": 6566}],
        }
    ]


def test_config_change_rolls_the_pods():
    first = _render().deployment["spec"]["template"]["metadata"]["annotations"]
    other = _render(FeastConfig(project="other")).deployment["spec"]["template"]["metadata"]
    assert first[model.CHECKSUM_ANNOTATION] != other["annotations"][model.CHECKSUM_ANNOTATION]
    assert len(first[model.CHECKSUM_ANNOTATION]) == 64


def test_no_secret_value_can_reach_a_rendered_object():
    # Nothing that renders objects takes a password; the only reference is the variable.
    for cloud in ("aws", "gcp", "local"):
        text = str(_render(cloud=cloud).objects())
        assert "password=${FEAST_REDIS_PASSWORD}" in text
        assert "requirepass" not in text
    assert model.secret_keys("aws") == ["redis-password"]
    assert model.secret_keys("local") == ["redis-password", "redis.conf"]


def test_redis_conf():
    conf = model.redis_conf("s3cret", "1Gi").splitlines()
    assert "requirepass s3cret" in conf
    assert "appendonly yes" in conf
    assert f"maxmemory {int(2**30 * 0.7)}" in conf
    assert "maxmemory-policy noeviction" in conf
    assert "dir /data" in conf and "port 6379" in conf


def test_local_redis_is_the_pinned_official_image_with_a_retained_volume():
    rendered = _render(cloud="local")
    statefulset = rendered.redis_statefulset["spec"]
    assert statefulset["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    pod = statefulset["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == versions.REDIS_IMAGE == "redis:8.10.2-trixie"
    assert container["args"] == ["redis-server", "/etc/redis/redis.conf"]
    assert "env" not in container
    # redis-cli's REDISCLI_AUTH is set from the mounted file inside the probe's shell only.
    assert container["readinessProbe"]["exec"]["command"] == [
        "sh",
        "-c",
        'REDISCLI_AUTH="$(cat /etc/redis/redis-password)" && export REDISCLI_AUTH && '
        '[ "$(redis-cli -h 127.0.0.1 -p 6379 ping)" = PONG ]',
    ]
    assert pod["volumes"][0] == {
        "name": "config",
        "secret": {
            "secretName": "feast-online-store",
            "items": [
                {"key": "redis.conf", "path": "redis.conf"},
                {"key": "redis-password", "path": "redis-password"},
            ],
            "defaultMode": 0o440,
        },
    }
    claim = statefulset["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "5Gi"
    assert "storageClassName" not in claim
    assert rendered.redis_service["spec"]["clusterIP"] == "None"
    policy = rendered.redis_network_policy["spec"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "online-store"


def test_urls():
    assert (
        model.feature_server_url("feast")
        == "http://feast-feature-server.feast.svc.cluster.local:6566"
    )
    assert model.redis_host("feast") == "feast-redis.feast.svc.cluster.local"
    assert model.registry_uri("gs://b/", "feast/registry.db") == "gs://b/feast/registry.db"
    assert model.offline_data_uri("s3://b", "feast/data") == "s3://b/feast/data"
