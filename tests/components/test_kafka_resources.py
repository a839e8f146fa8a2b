"""Kafka, resource layer under recording mocks: exact types, names, inputs, parents, outputs."""

import base64
import hashlib
import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mlops_platform import manifests, mocks
from mlops_platform.components import versions
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.kafka import (
    KafkaClient,
    KafkaClientArgs,
    KafkaCluster,
    KafkaClusterArgs,
    KafkaConfig,
    StrimziOperator,
    StrimziOperatorArgs,
    model,
)
from mlops_platform.components.network import Network
from tests.components.component_support import (
    named,
    output_value,
    run_with_mocks,
    untranslated_keys,
)

AWS = AwsCloud(type="aws", region="us-east-1", tags={"team": "ml"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4", labels={"team": "ml"})
LOCAL = LocalCloud(type="local")
CONFIG = KafkaConfig(
    cluster_name="mlops-dev",
    topics={"predictions": {}, "features": {"retention_hours": None, "cleanup_policy": "compact"}},
)


def aws_network(subnets, groups=("sg-eks-cluster",)):
    return Network(
        cloud="aws",
        network_id="vpc-123",
        cidr="10.30.0.0/16",
        private_subnet_ids=list(subnets),
        client_security_group_ids=list(groups),
    )


NETWORK = aws_network(["subnet-a", "subnet-b", "subnet-c"])
SUBNETWORK = "projects/acme-ml/regions/europe-west4/subnetworks/mlops-nodes"
GCP_NETWORK = Network(
    cloud="gcp",
    network_id="projects/acme-ml/global/networks/mlops",
    cidr="10.40.0.0/20",
    private_subnet_ids=[SUBNETWORK],
    project="acme-ml",
    region="europe-west4",
)
MSK_BROKERS = (
    "b-1.mlopsdev.abc.c2.kafka.us-east-1.amazonaws.com:9098,"
    "b-2.mlopsdev.abc.c2.kafka.us-east-1.amazonaws.com:9098"
)
GCP_BOOTSTRAP = "bootstrap.mlops-dev.europe-west4.managedkafka.acme-ml.cloud.goog"


CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBmockCA\n-----END CERTIFICATE-----\n"


class KafkaMocks(mocks.RecordingMocks):
    """The provider-computed outputs this component reads (the shared mocks echo inputs), and
    the live objects it reads (`Secret.get`): Strimzi's cluster CA Secret."""

    def __init__(self):
        self.reads = []

    def new_resource(self, args):
        if args.resource_id:  # a read of an existing object
            self.reads.append((args.typ, args.name, args.resource_id))
            if args.typ == "kubernetes:core/v1:Secret":
                data = {"ca.crt": base64.b64encode(CA_PEM.encode()).decode()}
                return args.resource_id, {"data": data, "type": "Opaque"}
        resource_id, outputs = super().new_resource(args)
        if args.typ == "aws:msk/cluster:Cluster":
            outputs["bootstrapBrokersSaslIam"] = MSK_BROKERS
        if args.typ == "aws:msk/configuration:Configuration":
            outputs["latestRevision"] = 1
        if args.typ == "gcp:managedkafka/cluster:Cluster":
            outputs["bootstrapAddress"] = GCP_BOOTSTRAP
            outputs["name"] = f"projects/acme-ml/locations/europe-west4/clusters/{args.name}"
        return resource_id, outputs


def _operator(cloud, config, provider):
    """Locally, Strimzi's operator in the same program (the platform plans it a layer before)."""
    if cloud.type != "local":
        return None
    return StrimziOperator("strimzi", StrimziOperatorArgs(config=config, kubernetes=provider))


def _run(cloud, config=CONFIG, protect=False, network=NETWORK, gcp_network=GCP_NETWORK):
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}") if cloud.type == "local" else None
        built["kafka"] = KafkaCluster(
            "kafka",
            KafkaClusterArgs(
                cloud=cloud,
                config=config,
                protect=protect,
                kubernetes=provider,
                network={"aws": network, "gcp": gcp_network}.get(cloud.type),
                operator=_operator(cloud, config, provider),
            ),
        )

    monitor = run_with_mocks(program, KafkaMocks())
    return monitor, built["kafka"]


def _children(monitor):
    component = monitor.named("kafka")
    assert component.type == "mlops:kafka:KafkaCluster"
    assert component.parent_type == "pulumi:pulumi:Stack"
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == component.urn)


def _no_untranslated_inputs(monitor):
    for record in monitor.recorded:
        if record.type.startswith(("aws:", "gcp:")):
            assert untranslated_keys(record.inputs) == [], record.name


# --- AWS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_built():
    return _run(AWS)


def test_aws_creates_exactly_these_resources_under_the_component(aws_built):
    monitor, _ = aws_built
    assert _children(monitor) == [
        ("aws:ec2/securityGroup:SecurityGroup", "kafka-brokers"),
        ("aws:msk/cluster:Cluster", "kafka-msk"),
        ("aws:msk/configuration:Configuration", "kafka-configuration"),
        ("aws:msk/topic:Topic", "kafka-features"),
        ("aws:msk/topic:Topic", "kafka-predictions"),
        (
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "kafka-brokers-from-clients-0",
        ),
    ]
    assert len(monitor.recorded) == 7
    _no_untranslated_inputs(monitor)


def test_aws_cluster_is_private_tls_iam_only_and_encrypted(aws_built):
    monitor, _ = aws_built
    cluster = named(monitor, "aws:msk/cluster:Cluster", "kafka-msk")
    inputs = cluster.inputs
    assert inputs["clusterName"] == "mlops-dev"
    assert inputs["kafkaVersion"] == "4.1.x.kraft"
    assert inputs["numberOfBrokerNodes"] == 3
    assert inputs["brokerNodeGroupInfo"] == {
        "clientSubnets": ["subnet-a", "subnet-b", "subnet-c"],
        "instanceType": "kafka.m7g.large",
        "securityGroups": ["kafka-brokers-id"],
        "connectivityInfo": {"publicAccess": {"type": "DISABLED"}},
        "storageInfo": {"ebsStorageInfo": {"volumeSize": 100}},
    }
    assert inputs["clientAuthentication"] == {"sasl": {"iam": True}, "unauthenticated": False}
    assert inputs["encryptionInfo"] == {
        "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True}
    }
    assert inputs["configurationInfo"] == {
        "arn": "arn:aws:configuration:us-east-1:123456789012:kafka-configuration",
        "revision": 1,
    }
    assert inputs["enhancedMonitoring"] == "DEFAULT"
    assert "loggingInfo" not in inputs
    assert inputs["tags"] == {"team": "ml"}
    assert cluster.protect is False and cluster.retain_on_delete is False
    rule = named(
        monitor,
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "kafka-brokers-from-clients-0",
    )
    assert rule.urn in cluster.depends_on


def test_aws_only_the_clients_reach_the_iam_port(aws_built):
    monitor, _ = aws_built
    group = named(monitor, "aws:ec2/securityGroup:SecurityGroup", "kafka-brokers")
    assert group.inputs["vpcId"] == "vpc-123"
    assert group.inputs["revokeRulesOnDelete"] is True
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    rules = monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [r.inputs for r in rules] == [
        {
            "securityGroupId": "kafka-brokers-id",
            "referencedSecurityGroupId": "sg-eks-cluster",
            "ipProtocol": "tcp",
            "fromPort": 9098,
            "toPort": 9098,
            "description": "Kafka SASL/IAM over TLS from platform clients",
            "tags": {"team": "ml"},
        }
    ]


def test_aws_configuration_disables_auto_created_topics(aws_built):
    monitor, _ = aws_built
    configuration = named(monitor, "aws:msk/configuration:Configuration", "kafka-configuration")
    assert configuration.inputs["kafkaVersions"] == ["4.1.x.kraft"]
    assert configuration.inputs["serverProperties"] == model.msk_server_properties(CONFIG)


def test_aws_topics_use_the_msk_topic_api(aws_built):
    monitor, _ = aws_built
    topic = named(monitor, "aws:msk/topic:Topic", "kafka-features")
    assert topic.inputs == {
        "clusterArn": "arn:aws:cluster:us-east-1:123456789012:kafka-msk",
        "name": "features",
        "partitionCount": 6,
        "replicationFactor": 3,
        "configs": json.dumps(
            {"cleanup.policy": "compact", "min.insync.replicas": "2", "retention.ms": "-1"},
            sort_keys=True,
        ),
    }


def test_aws_outputs(aws_built):
    _, kafka = aws_built
    assert output_value(kafka.bootstrap_servers) == MSK_BROKERS
    assert {k: output_value(v) for k, v in kafka.topic_names.items()} == {
        "predictions": "predictions",
        "features": "features",
    }
    assert output_value(kafka.security_protocol) == "SASL_SSL"
    assert output_value(kafka.sasl_mechanism) == "OAUTHBEARER"
    assert output_value(kafka.auth_method) == "aws-iam"
    assert output_value(kafka.cluster_id) == "arn:aws:cluster:us-east-1:123456789012:kafka-msk"
    assert output_value(kafka.broker_security_group_id) == "kafka-brokers-id"
    assert kafka.ca_secret is None and kafka.plaintext_bootstrap_servers is None


def test_aws_protect_keeps_cluster_and_topics_and_options_flow_through():
    config = CONFIG.model_copy(
        update={
            "backend": CONFIG.msk.model_copy(
                update={
                    "broker_logs": True,
                    "kms_key": "arn:aws:kms:us-east-1:123456789012:key/abc",
                    "instance_type": "express.m7g.large",
                }
            )
        }
    )
    monitor, _ = _run(AWS, config=config, protect=True)
    stateful = monitor.of_type("aws:msk/cluster:Cluster") + monitor.of_type("aws:msk/topic:Topic")
    assert len(stateful) == 3
    for record in stateful:
        assert record.protect and record.retain_on_delete, record.name
    logs = named(monitor, "aws:cloudwatch/logGroup:LogGroup", "kafka-broker-logs")
    assert logs.inputs["name"] == "/aws/msk/mlops-dev/brokers"
    assert logs.inputs["retentionInDays"] == 90
    assert logs.retain_on_delete is True
    cluster = named(monitor, "aws:msk/cluster:Cluster", "kafka-msk").inputs
    cloudwatch = {"enabled": True, "logGroup": "/aws/msk/mlops-dev/brokers"}
    assert cluster["loggingInfo"] == {"brokerLogs": {"cloudwatchLogs": cloudwatch}}
    assert cluster["encryptionInfo"]["encryptionAtRestKmsKeyArn"] == (
        "arn:aws:kms:us-east-1:123456789012:key/abc"
    )
    assert "storageInfo" not in cluster["brokerNodeGroupInfo"]  # Express manages storage


def test_aws_uses_the_first_two_of_two_zones_and_checks_brokers():
    config = KafkaConfig(brokers=4)
    two = aws_network(["subnet-a", "subnet-b"], ["sg-1", "sg-2"])
    monitor, _ = _run(AWS, config=config, network=two)
    cluster = named(monitor, "aws:msk/cluster:Cluster", "kafka-msk")
    assert cluster.inputs["brokerNodeGroupInfo"]["clientSubnets"] == ["subnet-a", "subnet-b"]
    assert len(monitor.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")) == 2


@pytest.mark.parametrize(
    ("network", "message"),
    [
        (None, "KafkaClusterArgs.network: the cluster's network is required on aws"),
        (
            aws_network(["subnet-a", "subnet-b"], ["sg-1"]),
            "kafka.brokers: 3 brokers must be a multiple of the 2 zones MSK uses",
        ),
        (GCP_NETWORK, "KafkaClusterArgs.network: a aws network is required, got the gcp"),
    ],
)
def test_aws_bad_network_fails_before_anything_is_created(network, message):
    with pytest.raises(ValueError) as error:
        _run(AWS, network=network)
    assert message in str(error.value)


# --- GCP --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcp_built():
    return _run(GCP)


def test_gcp_creates_a_cluster_and_one_topic_per_key(gcp_built):
    monitor, _ = gcp_built
    assert _children(monitor) == [
        ("gcp:managedkafka/cluster:Cluster", "kafka-cluster"),
        ("gcp:managedkafka/topic:Topic", "kafka-features"),
        ("gcp:managedkafka/topic:Topic", "kafka-predictions"),
    ]
    assert len(monitor.recorded) == 4
    _no_untranslated_inputs(monitor)


def test_gcp_cluster_is_in_the_node_subnetwork(gcp_built):
    monitor, _ = gcp_built
    cluster = named(monitor, "gcp:managedkafka/cluster:Cluster", "kafka-cluster")
    assert cluster.inputs == {
        "clusterId": "mlops-dev",
        "project": "acme-ml",
        "location": "europe-west4",
        "kafkaVersion": "3.7.x",
        "capacityConfig": {"vcpuCount": "3", "memoryBytes": str(12 * 1024**3)},
        "gcpConfig": {"accessConfig": {"networkConfigs": [{"subnet": SUBNETWORK}]}},
        "rebalanceConfig": {"mode": "AUTO_REBALANCE_ON_SCALE_UP"},
        "labels": {"team": "ml"},
        "deletionPolicy": "DELETE",
    }
    topic = named(monitor, "gcp:managedkafka/topic:Topic", "kafka-predictions")
    assert topic.inputs == {
        "topicId": "predictions",
        "cluster": "mlops-dev",
        "project": "acme-ml",
        "location": "europe-west4",
        "partitionCount": 6,
        "replicationFactor": 3,
        "configs": {
            "cleanup.policy": "delete",
            "retention.ms": str(168 * 3_600_000),
            "min.insync.replicas": "2",
        },
        "deletionPolicy": "DELETE",
    }


def test_gcp_outputs(gcp_built):
    _, kafka = gcp_built
    assert output_value(kafka.bootstrap_servers) == f"{GCP_BOOTSTRAP}:9092"
    assert output_value(kafka.topic_names["predictions"]) == "predictions"
    assert output_value(kafka.sasl_mechanism) == "OAUTHBEARER"
    assert output_value(kafka.auth_method) == "gcp-iam"
    assert output_value(kafka.cluster_id) == (
        "projects/acme-ml/locations/europe-west4/clusters/kafka-cluster"
    )
    assert kafka.broker_security_group_id is None


def test_gcp_protect_and_cmek():
    key = "projects/acme-ml/locations/europe-west4/keyRings/ml/cryptoKeys/kafka"
    config = CONFIG.model_copy(
        update={"backend": CONFIG.managed_kafka.model_copy(update={"kms_key": key})}
    )
    monitor, _ = _run(GCP, config=config, protect=True)
    cluster = named(monitor, "gcp:managedkafka/cluster:Cluster", "kafka-cluster")
    assert cluster.inputs["gcpConfig"]["kmsKey"] == key
    assert cluster.inputs["deletionPolicy"] == "PREVENT"
    for record in [cluster, *monitor.of_type("gcp:managedkafka/topic:Topic")]:
        assert record.protect and record.retain_on_delete, record.name
        assert record.inputs["deletionPolicy"] == "PREVENT"


def test_gcp_errors_name_the_field():
    with pytest.raises(ValueError, match=r"KafkaClusterArgs\.network: the cluster's network"):
        _run(GCP, gcp_network=None)
    too_many = KafkaConfig(brokers=4, topics={"predictions": {"replication_factor": 4}})
    with pytest.raises(ValueError, match=r"kafka\.brokers: 4 brokers, but managed_kafka"):
        _run(GCP, config=too_many)


# --- Local (Strimzi) --------------------------------------------------------------------------

LOCAL_CONFIG = KafkaConfig(
    brokers=1,
    storage_gb=10,
    topics={"predictions": {"replication_factor": 1}},
    backend={"type": "strimzi", "plain_listener": True, "users": ["model-server"]},
)


@pytest.fixture(scope="module")
def local_built():
    return _run(LOCAL, config=LOCAL_CONFIG)


def test_local_creates_custom_resources_after_the_operator(local_built):
    monitor, _ = local_built
    # the operator (its CRDs) is `StrimziOperator`, planned a layer before the custom resources
    operator = monitor.named("strimzi")
    assert operator.type == "mlops:kafka:StrimziOperator"
    assert sorted((r.type, r.name) for r in monitor.recorded if r.parent == operator.urn) == [
        ("kubernetes:core/v1:Namespace", "strimzi-namespace"),
        ("kubernetes:helm.sh/v3:Release", "strimzi-strimzi"),
    ]
    assert _children(monitor) == [
        ("kubernetes:kafka.strimzi.io/v1:Kafka", "kafka-kafka"),
        ("kubernetes:kafka.strimzi.io/v1:KafkaNodePool", "kafka-node-pool"),
        ("kubernetes:kafka.strimzi.io/v1:KafkaTopic", "kafka-predictions"),
        ("kubernetes:kafka.strimzi.io/v1:KafkaUser", "kafka-user-model-server"),
    ]
    # plus the test's provider, the two components and the operator's two children
    assert len(monitor.recorded) == 4 + 5
    provider = monitor.named("k8s").urn
    release = named(monitor, "kubernetes:helm.sh/v3:Release", "strimzi-strimzi")
    # moved here from the ml stack by `pulumi state move` (re-parented to the stack): adopted
    assert release.aliases == [
        "urn:pulumi:test::mlops::kubernetes:helm.sh/v3:Release::strimzi-strimzi"
    ]
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:") and record.type != "pulumi:providers:kubernetes":
            assert record.provider.startswith(provider), record.name
        if record.type.startswith("kubernetes:kafka.strimzi.io/"):
            assert release.urn in record.depends_on, record.name


def test_local_operator_is_the_pinned_oci_chart(local_built):
    monitor, _ = local_built
    release = named(monitor, "kubernetes:helm.sh/v3:Release", "strimzi-strimzi")
    assert release.inputs["chart"] == "oci://quay.io/strimzi-helm/strimzi-kafka-operator"
    assert release.inputs["version"] == versions.STRIMZI_KAFKA_OPERATOR.version == "1.2.0"
    assert release.inputs["name"] == "strimzi"
    assert release.inputs["namespace"] == "kafka"
    assert release.inputs["values"] == model.strimzi_operator_values()
    assert "repositoryOpts" not in release.inputs
    namespace = named(monitor, "kubernetes:core/v1:Namespace", "strimzi-namespace")
    assert namespace.urn in release.depends_on
    assert namespace.inputs["metadata"] == model.strimzi_namespace(LOCAL_CONFIG.strimzi)["metadata"]


def test_local_custom_resources_are_the_rendered_ones_and_valid(local_built, crds_dir):
    monitor, _ = local_built
    expected = {
        "kafka-node-pool": model.strimzi_node_pool(LOCAL_CONFIG),
        "kafka-kafka": model.strimzi_kafka(LOCAL_CONFIG),
        "kafka-predictions": model.strimzi_topic(LOCAL_CONFIG, "predictions"),
        "kafka-user-model-server": model.strimzi_user(LOCAL_CONFIG, "model-server"),
    }
    for resource_name, doc in expected.items():
        record = monitor.named(resource_name)
        rendered = {
            "apiVersion": record.inputs["apiVersion"],
            "kind": record.inputs["kind"],
            "metadata": record.inputs["metadata"],
            "spec": record.inputs["spec"],
        }
        assert rendered == doc, resource_name
        manifests.validate(rendered)


def test_local_stateful_resources_follow_protect():
    monitor, _ = _run(LOCAL, config=LOCAL_CONFIG, protect=True)
    for resource_name in ("kafka-node-pool", "kafka-kafka", "kafka-predictions"):
        record = monitor.named(resource_name)
        assert record.protect and record.retain_on_delete, resource_name
    user = monitor.named("kafka-user-model-server")
    assert not user.protect


def test_local_outputs(local_built):
    _, kafka = local_built
    assert output_value(kafka.bootstrap_servers) == (
        "mlops-kafka-bootstrap.kafka.svc.cluster.local:9093"
    )
    assert output_value(kafka.plaintext_bootstrap_servers) == (
        "mlops-kafka-bootstrap.kafka.svc.cluster.local:9092"
    )
    assert output_value(kafka.security_protocol) == "SASL_SSL"
    assert output_value(kafka.sasl_mechanism) == "SCRAM-SHA-512"
    assert output_value(kafka.auth_method) == "scram-sha-512"
    assert output_value(kafka.ca_secret) == "mlops-cluster-ca-cert"
    assert {k: output_value(v) for k, v in kafka.user_secrets.items()} == {
        "model-server": "model-server"
    }
    assert output_value(kafka.topic_names["predictions"]) == "predictions"
    assert output_value(kafka.cluster_id) == "kafka-kafka-id"


def test_local_requires_a_kubernetes_provider():
    def program():
        KafkaCluster("kafka", KafkaClusterArgs(cloud=LOCAL, config=LOCAL_CONFIG))

    with pytest.raises(ValueError, match=r"KafkaClusterArgs\.kubernetes"):
        mocks.run(program)


# --- clients ----------------------------------------------------------------------------------

SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
KAFKA_USER = "kubernetes:kafka.strimzi.io/v1:KafkaUser"
PASSWORD = "random:index/randomPassword:RandomPassword"


def _run_client(cloud, config=CONFIG, write=("predictions",), read=()):
    built = {}
    recording = KafkaMocks()

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}") if cloud.type == "local" else None
        kafka = KafkaCluster(
            "kafka",
            KafkaClusterArgs(
                cloud=cloud,
                config=config,
                kubernetes=provider,
                network={"aws": NETWORK, "gcp": GCP_NETWORK}.get(cloud.type),
                operator=_operator(cloud, config, provider),
            ),
        )
        namespace = k8s.core.v1.Namespace(
            "serving-namespace",
            metadata={"name": "serving"},
            opts=pulumi.ResourceOptions(provider=provider),
        )
        built["client"] = KafkaClient(
            "churn",
            KafkaClientArgs(
                cluster=kafka, namespace="serving", write_topics=write, read_topics=read
            ),
            pulumi.ResourceOptions(depends_on=[namespace]),
        )

    monitor = run_with_mocks(program, recording)
    return monitor, built["client"], recording.reads


def _client_children(monitor):
    component = monitor.named("churn")
    assert component.type == "mlops:kafka:KafkaClient"
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == component.urn)


def _mock_password(name="churn-password"):
    """What the shared mocks return as the RandomPassword's `result`."""
    return "mock-" + hashlib.sha1(f"{PASSWORD}/{name}".encode()).hexdigest()[:12]


@pytest.fixture(scope="module")
def local_client():
    return _run_client(LOCAL, config=LOCAL_CONFIG)


def test_local_client_creates_user_password_and_copies(local_client):
    monitor, _, reads = local_client
    assert _client_children(monitor) == [
        (CONFIG_MAP, "churn-ca"),
        (SECRET, "churn-password-copy"),
        (SECRET, "churn-password-source"),
        (KAFKA_USER, "churn-user"),
        (PASSWORD, "churn-password"),
    ]
    assert reads == [(SECRET, "churn-cluster-ca", "kafka/mlops-cluster-ca-cert")]
    password = monitor.named("churn-password")
    assert password.inputs == {"length": 32, "special": False}


def test_local_user_takes_its_password_from_our_secret_and_is_valid(local_client, crds_dir):
    monitor, _, _ = local_client
    user = monitor.named("churn-user")
    doc = {key: user.inputs[key] for key in ("apiVersion", "kind", "metadata", "spec")}
    assert doc == model.strimzi_client_user(LOCAL_CONFIG, "churn")
    assert doc["metadata"]["namespace"] == "kafka"
    manifests.validate(doc)
    source = monitor.named("churn-password-source")
    assert source.urn in user.depends_on
    # depending on the cluster component waits for its children: Kafka Ready (the operator and
    # its CRDs are a layer before)
    for record in (user, source):
        for dependency in ("kafka-kafka", "kafka-node-pool"):
            assert monitor.named(dependency).urn in record.depends_on, (record.name, dependency)
    # no ACLs: the Kafka CR turns no authorization on (see README)
    assert "authorization" not in model.strimzi_kafka(LOCAL_CONFIG)["spec"]["kafka"]


def test_local_password_secrets_hold_it_only_as_secret(local_client):
    monitor, _, _ = local_client
    password = _mock_password()
    for resource_name, name, namespace in (
        ("churn-password-source", "churn-scram-password", "kafka"),
        ("churn-password-copy", "kafka-churn", "serving"),
    ):
        secret = monitor.named(resource_name)
        assert secret.inputs["metadata"]["name"] == name
        assert secret.inputs["metadata"]["namespace"] == namespace
        assert secret.inputs["type"] == "Opaque"
        assert secret.inputs["stringData"] == {"password": password}
        assert "stringData" in secret.secret_inputs, resource_name
        manifests.validate({"apiVersion": "v1", "kind": "Secret", **secret.masked_inputs})
    copy = monitor.named("churn-password-copy")
    assert monitor.named("serving-namespace").urn in copy.depends_on


def test_local_ca_copy_is_the_cluster_ca_certificate(local_client):
    monitor, _, _ = local_client
    ca = monitor.named("churn-ca")
    assert ca.inputs["metadata"]["name"] == "kafka-churn-ca"
    assert ca.inputs["metadata"]["namespace"] == "serving"
    assert ca.inputs["data"] == {"ca.crt": CA_PEM}
    assert ca.secret_inputs == set()  # a CA certificate is public
    assert monitor.named("serving-namespace").urn in ca.depends_on
    manifests.validate({"apiVersion": "v1", "kind": "ConfigMap", **ca.inputs})


def test_local_no_password_in_plain_text_anywhere(local_client):
    monitor, _, _ = local_client
    password = _mock_password()
    holders = [r.name for r in monitor.recorded if password in json.dumps(r.inputs)]
    assert sorted(holders) == ["churn-password-copy", "churn-password-source"]
    for record in monitor.recorded:
        assert password not in json.dumps(record.masked_inputs), record.name


def test_local_wiring(local_client):
    _, client, _ = local_client
    wiring = client.wiring
    assert output_value(wiring.bootstrap_servers) == (
        "mlops-kafka-bootstrap.kafka.svc.cluster.local:9093"
    )
    assert (wiring.namespace, wiring.security_protocol, wiring.sasl_mechanism) == (
        "serving",
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert wiring.auth_method == "scram-sha-512"
    assert wiring.username == "churn"
    assert wiring.password_secret == model.KeyRef("kafka-churn", "password")
    assert wiring.ca_config_map == model.KeyRef("kafka-churn-ca", "ca.crt")
    assert wiring.aws_region is None
    assert wiring.write_topics == ("predictions",) and wiring.read_topics == ()
    assert client.grant.aws_policy_json is None and tuple(client.grant.gcp_project_roles) == ()


def test_aws_client_grant_is_the_msk_policy_for_its_topics():
    monitor, client, reads = _run_client(AWS, write=("predictions",), read=("features",))
    assert _client_children(monitor) == [] and reads == []
    arn = "arn:aws:cluster:us-east-1:123456789012:kafka-msk"
    assert json.loads(output_value(client.grant.aws_policy_json)) == model.msk_client_policy(
        arn, ["predictions"], ["features"]
    )
    wiring = client.wiring
    assert output_value(wiring.bootstrap_servers) == MSK_BROKERS
    assert (wiring.sasl_mechanism, wiring.auth_method, wiring.aws_region) == (
        "OAUTHBEARER",
        "aws-iam",
        "us-east-1",
    )
    assert wiring.username is None and wiring.password_secret is None
    assert tuple(client.grant.gcp_project_roles) == ()


def test_gcp_client_grant_is_the_managed_kafka_client_role():
    monitor, client, reads = _run_client(GCP)
    assert _client_children(monitor) == [] and reads == []
    assert tuple(client.grant.gcp_project_roles) == ("roles/managedkafka.client",)
    assert client.grant.aws_policy_json is None
    wiring = client.wiring
    assert output_value(wiring.bootstrap_servers) == f"{GCP_BOOTSTRAP}:9092"
    assert (wiring.auth_method, wiring.aws_region, wiring.ca_config_map) == (
        "gcp-iam",
        None,
        None,
    )


def test_invalid_client_registers_nothing():
    errors = []

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        kafka = KafkaCluster(
            "kafka", KafkaClusterArgs(cloud=LOCAL, config=LOCAL_CONFIG, kubernetes=provider)
        )
        try:
            KafkaClient(
                "churn", KafkaClientArgs(cluster=kafka, namespace="serving", write_topics=["x"])
            )
        except ValueError as exc:
            errors.append(str(exc))

    monitor = run_with_mocks(program, KafkaMocks())
    assert errors == [
        "KafkaClientArgs.write_topics: unknown topic(s) 'x'; kafka.topics has 'predictions'"
    ]
    assert not any(r.name.startswith("churn") for r in monitor.recorded)
