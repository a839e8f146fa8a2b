"""Feast feature store, resource layer under recording mocks: exact types, names, inputs,
parents, outputs and secrets, on AWS, GCP and a local cluster."""

import hashlib
from types import SimpleNamespace

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from pulumi.runtime.sync_await import _sync_await

from mlops_platform import manifests, mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.feast import FeastConfig, FeatureStore, FeatureStoreArgs, model, repo
from mlops_platform.components.network import Network
from tests.components.component_support import (
    named,
    output_value,
    run_with_mocks,
    untranslated_keys,
)

AWS = AwsCloud(type="aws", region="eu-west-1", tags={"team": "ml"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4", labels={"team": "ml"})
LOCAL = LocalCloud(type="local")
CONFIG = FeastConfig()
ELASTICACHE_HOST = "master.mlops-test-feast.abc123.euw1.cache.amazonaws.com"
MEMORYSTORE_IP = "10.20.0.3"
MEMORYSTORE_CA = "-----BEGIN CERTIFICATE-----\nMIIBinstance\n-----END CERTIFICATE-----\n"
MEMORYSTORE_AUTH = "generated-by-memorystore"

SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PASSWORD = "random:index/randomPassword:RandomPassword"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
MEMORYSTORE = "gcp:redis/instance:Instance"


class _Mocks(mocks.RecordingMocks):
    """The shared mocks plus the addresses and secrets the providers compute."""

    def new_resource(self, args):
        resource_id, outputs = super().new_resource(args)
        if args.typ == REPLICATION_GROUP:
            outputs["primaryEndpointAddress"] = ELASTICACHE_HOST
        if args.typ == MEMORYSTORE:
            outputs.update(
                host=MEMORYSTORE_IP,
                port=6378,
                authString=MEMORYSTORE_AUTH,
                serverCaCerts=[{"cert": MEMORYSTORE_CA, "serialNumber": "1"}],
            )
        return resource_id, outputs


def _run_program(program):
    return run_with_mocks(program, _Mocks())


def _out(value):
    return pulumi.Output.from_input(value)


def _store(uri):
    return SimpleNamespace(bucket_uris={"features": _out(uri)})


def _networks():
    return {
        "aws": Network(
            cloud="aws",
            network_id=_out("vpc-0abc"),
            cidr="10.0.0.0/16",
            private_subnet_ids=[_out("subnet-a"), _out("subnet-b"), _out("subnet-c")],
            client_security_group_ids=[_out("sg-cluster")],
        ),
        "gcp": Network(
            cloud="gcp",
            network_id=_out("projects/acme-ml/global/networks/core"),
            cidr="10.40.0.0/20",
            private_subnet_ids=[_out("projects/acme-ml/regions/europe-west4/subnetworks/nodes")],
            project="acme-ml",
            region="europe-west4",
        ),
        "local": None,
    }


URIS = {"aws": "s3://mlops-test-features", "gcp": "gs://mlops-test-features", "local": "s3://f"}


def _run(cloud, config=CONFIG, protect=False):
    """Build one FeatureStore after its Namespace; return the monitor and the component."""
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        namespace = k8s.core.v1.Namespace(
            "feast-namespace",
            metadata={"name": config.namespace},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        built["store"] = FeatureStore(
            "features",
            FeatureStoreArgs(
                cloud=cloud,
                config=config,
                storage=_store(URIS[cloud.type]),
                kubernetes=provider,
                network=_networks()[cloud.type],
                protect=protect,
            ),
            pulumi.ResourceOptions(depends_on=[namespace]),
        )

    monitor = _run_program(program)
    return monitor, built["store"]


def _children(monitor):
    parent = monitor.named("features").urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == parent)


def _api(typ):
    """apiVersion and kind of a recorded Kubernetes resource type."""
    _, group_version, kind = typ.split(":")
    group, version = group_version.split("/")
    return {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind}


def _digest(record):
    return hashlib.sha1(f"{record.type}/{record.name}".encode()).hexdigest()[:12]


KUBERNETES_CHILDREN = [
    (SECRET, "features-online-store"),
    (CONFIG_MAP, "features-feature-store"),
    (DEPLOYMENT, "features-server"),
    (SERVICE, "features-service"),
    (PDB, "features-pdb"),
    (NETWORK_POLICY, "features-server"),
    (CONFIG_MAP, "features-feature-repo"),
    (JOB, "features-apply"),
    (CRON_JOB, "features-materialize"),
    (NETWORK_POLICY, "features-jobs"),
]
ENDPOINTS = {
    "aws": (ELASTICACHE_HOST, 6379),
    "gcp": (MEMORYSTORE_IP, 6378),
    "local": ("feast-redis.feast.svc.cluster.local", 6379),
}


def _password(monitor, cloud):
    if cloud.type == "gcp":
        return MEMORYSTORE_AUTH
    return f"mock-{_digest(named(monitor, PASSWORD, 'features-redis-password'))}"


# --- shared -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_component_type_parents_and_providers(cloud):
    monitor, _ = _run(cloud)
    component = monitor.named("features")
    assert component.type == "mlops:feast:FeatureStore"
    assert component.custom is False
    assert component.parent_type == "pulumi:pulumi:Stack"
    provider_urn = monitor.named("k8s").urn
    namespace_urn = monitor.named("feast-namespace").urn
    for record in monitor.recorded:
        if record.name in ("features", "feast-namespace", "k8s"):
            continue
        assert record.parent == component.urn, record.name
        if record.type.startswith("kubernetes:"):
            assert record.provider.startswith(provider_urn), record.name
            assert namespace_urn in record.depends_on, record.name
        # A ConfigMap's data keys are file names (feature_store.yaml), not property names.
        inputs = {
            k: v for k, v in record.inputs.items() if record.type != CONFIG_MAP or k != "data"
        }
        assert not untranslated_keys(inputs), (record.name, untranslated_keys(inputs))


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_outputs(cloud):
    monitor, store = _run(cloud)
    host, port = ENDPOINTS[cloud.type]
    uri = URIS[cloud.type]
    assert output_value(store.feature_server_url) == (
        "http://feast-feature-server.feast.svc.cluster.local:6566"
    )
    assert output_value(store.online_store_host) == host
    assert output_value(store.online_store_port) == port
    assert output_value(store.registry_path) == f"{uri}/feast/registry.db"
    assert output_value(store.offline_data_uri) == f"{uri}/feast/data"
    assert output_value(store.namespace) == "feast"
    assert output_value(store.config_map_name) == "feast-feature-store"
    assert output_value(store.secret_name) == "feast-online-store"
    assert output_value(store.online_store_password) == _password(monitor, cloud)
    assert _sync_await(store.online_store_password.is_secret()) is True
    text = output_value(store.feature_store_yaml)
    assert yaml.safe_load(text)["online_store"]["connection_string"].startswith(f"{host}:{port},")
    for plain in ("feature_server_url", "online_store_host", "registry_path", "feature_store_yaml"):
        assert _sync_await(getattr(store, plain).is_secret()) is False, plain


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_the_password_is_only_ever_secret(cloud):
    monitor, _ = _run(cloud)
    password = _password(monitor, cloud)
    if cloud.type != "gcp":
        generated = named(monitor, PASSWORD, "features-redis-password")
        assert generated.inputs == {"length": 32, "special": False}
    else:
        assert not monitor.of_type(PASSWORD)
    for record in monitor.recorded:
        # Wherever the password is an input, that input is secret: masked, it shows nowhere.
        assert password not in str(record.masked_inputs), record.name
    secret = named(monitor, SECRET, "features-online-store")
    assert secret.secret_inputs == {"stringData"}
    assert secret.inputs["metadata"] == model.secret_metadata(CONFIG)
    expected = {"redis-password": password}
    if cloud.type == "local":
        expected["redis.conf"] = model.redis_conf(password, "1Gi")
    assert secret.inputs["stringData"] == expected


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_kubernetes_objects_are_the_rendered_ones_with_the_real_endpoints(cloud):
    monitor, _ = _run(cloud)
    host, port = ENDPOINTS[cloud.type]
    rendered = model.render(
        CONFIG,
        cloud.type,
        URIS[cloud.type],
        host,
        port,
        "eu-west-1" if cloud.type == "aws" else None,
        MEMORYSTORE_CA if cloud.type == "gcp" else None,
    )
    config_map = named(monitor, CONFIG_MAP, "features-feature-store")
    assert config_map.inputs == rendered.config_map
    deployment = named(monitor, DEPLOYMENT, "features-server")
    assert deployment.inputs == rendered.deployment
    for typ, name, key in (
        (SERVICE, "features-service", "service"),
        (PDB, "features-pdb", "pod_disruption_budget"),
        (NETWORK_POLICY, "features-server", "network_policy"),
    ):
        assert named(monitor, typ, name).inputs == getattr(rendered, key)
    for record in monitor.recorded:
        if record.type in (CONFIG_MAP, DEPLOYMENT, SERVICE, PDB, NETWORK_POLICY, STATEFULSET):
            manifests.validate({**_api(record.type), **record.inputs})
    # The server starts once its config, password and online store exist.
    secret = named(monitor, SECRET, "features-online-store")
    assert secret.urn in deployment.depends_on
    assert config_map.urn in deployment.depends_on


@pytest.mark.parametrize("cloud", [AWS, GCP, LOCAL], ids=lambda c: c.type)
def test_feature_repo_objects_are_the_rendered_ones_after_the_store(cloud):
    monitor, store = _run(cloud)
    host, port = ENDPOINTS[cloud.type]
    region = "eu-west-1" if cloud.type == "aws" else None
    store_data = model.render(
        CONFIG,
        cloud.type,
        URIS[cloud.type],
        host,
        port,
        region,
        MEMORYSTORE_CA if cloud.type == "gcp" else None,
    ).config_map["data"]
    offline = f"{URIS[cloud.type]}/feast/data"
    config_map, job, cron_job, policy = repo.render(CONFIG, cloud.type, offline, store_data, region)
    repo_map = named(monitor, CONFIG_MAP, "features-feature-repo")
    assert repo_map.inputs == config_map
    assert repo_map.inputs["data"][repo.OFFLINE_URI_KEY] == offline
    apply = named(monitor, JOB, "features-apply")
    assert apply.inputs == job
    assert apply.inputs["metadata"]["name"].startswith("feast-apply-")
    assert named(monitor, CRON_JOB, "features-materialize").inputs == cron_job
    assert named(monitor, NETWORK_POLICY, "features-jobs").inputs == policy
    # Apply and materialization run once the store file, the definitions and Redis exist.
    for record in (apply, named(monitor, CRON_JOB, "features-materialize")):
        assert named(monitor, CONFIG_MAP, "features-feature-store").urn in record.depends_on
        assert repo_map.urn in record.depends_on
        assert named(monitor, SECRET, "features-online-store").urn in record.depends_on
    if cloud.type == "local":
        assert named(monitor, STATEFULSET, "features-redis").urn in apply.depends_on
    for record in (repo_map, apply, named(monitor, CRON_JOB, "features-materialize")):
        manifests.validate({**_api(record.type), **record.inputs})
    assert output_value(store.offline_data_uri) == offline


def test_an_unknown_bucket_fails_before_anything_is_registered():
    def program():
        FeatureStore(
            "features",
            FeatureStoreArgs(
                cloud=LOCAL,
                config=FeastConfig(registry={"bucket": "models"}),
                storage=_store("s3://x"),
                kubernetes=k8s.Provider("k8s", kubeconfig="{}"),
            ),
        )

    with pytest.raises(ValueError, match=r"feast\.registry\.bucket: unknown bucket 'models'"):
        _run_program(program)


@pytest.mark.parametrize(
    ("cloud", "message"),
    [
        (AWS, "FeatureStoreArgs.network: the cluster's network is required on aws"),
        (GCP, "FeatureStoreArgs.network: the cluster's network is required on gcp"),
    ],
    ids=["aws", "gcp"],
)
def test_cloud_network_is_required(cloud, message):
    def program():
        FeatureStore(
            "features",
            FeatureStoreArgs(
                cloud=cloud,
                config=CONFIG,
                storage=_store("s3://x"),
                kubernetes=k8s.Provider("k8s", kubeconfig="{}"),
            ),
        )

    with pytest.raises(ValueError, match=message):
        _run_program(program)


# --- AWS --------------------------------------------------------------------------------------


def test_aws_creates_exactly_these_resources():
    monitor, _ = _run(AWS)
    assert _children(monitor) == sorted(
        [
            *KUBERNETES_CHILDREN,
            (PASSWORD, "features-redis-password"),
            ("aws:ec2/securityGroup:SecurityGroup", "features-redis"),
            (
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                "features-redis-from-cluster",
            ),
            ("aws:elasticache/subnetGroup:SubnetGroup", "features-redis"),
            (REPLICATION_GROUP, "features-redis"),
        ]
    )


@pytest.mark.parametrize("protect", [False, True])
def test_aws_replication_group(protect):
    monitor, _ = _run(AWS, protect=protect)
    group = named(monitor, REPLICATION_GROUP, "features-redis")
    inputs = dict(group.inputs)
    token = inputs.pop("authToken")
    assert token == _password(monitor, AWS) and group.secret_inputs == {"authToken"}
    expected = {
        "replicationGroupId": "mlops-test-feast",
        "description": "Feast online store (mlops-test-feast)",
        "engine": "valkey",
        "engineVersion": "8.0",
        "autoMinorVersionUpgrade": True,
        "nodeType": "cache.t4g.small",
        "numCacheClusters": 2,
        "automaticFailoverEnabled": True,
        "multiAzEnabled": True,
        "port": 6379,
        "subnetGroupName": "mlops-test-feast",
        "securityGroupIds": ["features-redis-id"],
        "atRestEncryptionEnabled": True,
        "transitEncryptionEnabled": True,
        "transitEncryptionMode": "required",
        "snapshotRetentionLimit": 1,
        "tags": {"team": "ml"},
    }
    if protect:
        expected["finalSnapshotIdentifier"] = "mlops-test-feast-final"
    assert inputs == expected
    assert (group.protect, group.retain_on_delete) == (protect, protect)


def test_aws_single_node_has_no_failover():
    config = FeastConfig(
        online_store={"type": "elasticache", "replicas": 0, "node_type": "cache.r7g.large"}
    )
    monitor, _ = _run(AWS, config=config)
    inputs = named(monitor, REPLICATION_GROUP, "features-redis").inputs
    assert inputs["numCacheClusters"] == 1
    assert inputs["automaticFailoverEnabled"] is False
    assert inputs["multiAzEnabled"] is False
    assert inputs["nodeType"] == "cache.r7g.large"


def test_aws_network_admits_only_the_cluster():
    monitor, _ = _run(AWS)
    group = named(monitor, "aws:ec2/securityGroup:SecurityGroup", "features-redis")
    assert group.inputs["vpcId"] == "vpc-0abc"
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    rule = named(
        monitor,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "features-redis-from-cluster",
    )
    assert rule.inputs == {
        "securityGroupId": "features-redis-id",
        "referencedSecurityGroupId": "sg-cluster",
        "ipProtocol": "tcp",
        "fromPort": 6379,
        "toPort": 6379,
        "description": "Redis (TLS) from the EKS cluster",
        "tags": {"team": "ml"},
    }
    subnets = named(monitor, "aws:elasticache/subnetGroup:SubnetGroup", "features-redis")
    assert subnets.inputs["name"] == "mlops-test-feast"
    assert subnets.inputs["subnetIds"] == ["subnet-a", "subnet-b", "subnet-c"]


def test_aws_deployment_has_the_region():
    monitor, _ = _run(AWS)
    env = named(monitor, DEPLOYMENT, "features-server").inputs["spec"]["template"]["spec"][
        "containers"
    ][0]["env"]
    assert {"name": "AWS_REGION", "value": "eu-west-1"} in env


# --- GCP --------------------------------------------------------------------------------------


def test_gcp_creates_exactly_these_resources():
    monitor, _ = _run(GCP)
    assert _children(monitor) == sorted([*KUBERNETES_CHILDREN, (MEMORYSTORE, "features-redis")])


@pytest.mark.parametrize("protect", [False, True])
def test_gcp_memorystore_instance(protect):
    monitor, _ = _run(GCP, protect=protect)
    instance = named(monitor, MEMORYSTORE, "features-redis")
    assert instance.inputs == {
        "name": "mlops-test-feast",
        "project": "acme-ml",
        "region": "europe-west4",
        "displayName": "Feast online store (mlops-test-feast)",
        "tier": "STANDARD_HA",
        "memorySizeGb": 1,
        "redisVersion": "REDIS_7_2",
        "authorizedNetwork": "projects/acme-ml/global/networks/core",
        "connectMode": "DIRECT_PEERING",
        "authEnabled": True,
        "transitEncryptionMode": "SERVER_AUTHENTICATION",
        "persistenceConfig": {"persistenceMode": "RDB", "rdbSnapshotPeriod": "TWENTY_FOUR_HOURS"},
        "deletionProtection": protect,
        "labels": {"team": "ml"},
    }
    assert (instance.protect, instance.retain_on_delete) == (protect, protect)


def test_gcp_read_replicas_and_basic_tier():
    monitor, _ = _run(GCP, config=FeastConfig(online_store={"type": "memorystore", "replicas": 3}))
    inputs = named(monitor, MEMORYSTORE, "features-redis").inputs
    assert (inputs["tier"], inputs["readReplicasMode"], inputs["replicaCount"]) == (
        "STANDARD_HA",
        "READ_REPLICAS_ENABLED",
        3,
    )
    config = FeastConfig(online_store={"type": "memorystore", "replicas": 0, "persistence": False})
    monitor, _ = _run(GCP, config=config)
    inputs = named(monitor, MEMORYSTORE, "features-redis").inputs
    assert inputs["tier"] == "BASIC"
    assert "readReplicasMode" not in inputs and "replicaCount" not in inputs
    assert inputs["persistenceConfig"] == {"persistenceMode": "DISABLED"}


def test_gcp_config_map_carries_the_instance_ca():
    monitor, _ = _run(GCP)
    data = named(monitor, CONFIG_MAP, "features-feature-store").inputs["data"]
    assert data["redis-server-ca.pem"] == MEMORYSTORE_CA
    connection = yaml.safe_load(data["feature_store.yaml"])["online_store"]["connection_string"]
    assert "ssl_ca_certs=/etc/feast/redis-server-ca.pem" in connection


# --- Local ------------------------------------------------------------------------------------


def test_local_creates_exactly_these_resources():
    monitor, _ = _run(LOCAL)
    assert _children(monitor) == sorted(
        [
            *KUBERNETES_CHILDREN,
            (PASSWORD, "features-redis-password"),
            (STATEFULSET, "features-redis"),
            (SERVICE, "features-redis"),
            (NETWORK_POLICY, "features-redis"),
        ]
    )


@pytest.mark.parametrize("protect", [False, True])
def test_local_redis_is_the_rendered_statefulset_after_its_secret(protect):
    monitor, _ = _run(LOCAL, protect=protect)
    rendered = model.render(CONFIG, "local", "s3://f", "h", 6379)
    statefulset = named(monitor, STATEFULSET, "features-redis")
    assert statefulset.inputs == rendered.redis_statefulset
    assert (statefulset.protect, statefulset.retain_on_delete) == (protect, protect)
    assert named(monitor, SECRET, "features-online-store").urn in statefulset.depends_on
    assert named(monitor, SERVICE, "features-redis").inputs == rendered.redis_service
    assert named(monitor, NETWORK_POLICY, "features-redis").inputs == rendered.redis_network_policy
    deployment = named(monitor, DEPLOYMENT, "features-server")
    assert statefulset.urn in deployment.depends_on
