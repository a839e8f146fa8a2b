"""Kafka, pure layer: defaults, errors naming the field, rendered CRs against Strimzi's CRDs."""

import json

import pytest
from pydantic import ValidationError

from mlops_platform import manifests
from mlops_platform.components import versions
from mlops_platform.components.kafka import (
    KafkaConfig,
    ManagedKafkaConfig,
    MskConfig,
    StrimziConfig,
    model,
)
from mlops_platform.components.kafka.model import TopicConfig

# --- defaults ---------------------------------------------------------------------------------


def test_defaults_are_three_brokers_and_the_predictions_and_labels_topics():
    config = KafkaConfig()
    assert config.cluster_name == "mlops"
    assert config.brokers == 3
    assert config.storage_gb == 100
    assert list(config.topics) == ["predictions", "labels"]
    topic = config.topics["predictions"]
    assert (topic.partitions, topic.replication_factor, topic.retention_hours) == (6, 3, 168)
    assert topic.cleanup_policy == "delete"
    assert topic.effective_min_insync_replicas == 2
    assert config.msk == MskConfig(instance_type="kafka.m7g.large", kafka_version="4.1.x.kraft")
    assert config.msk.kms_key is None and config.msk.broker_logs is False
    assert (config.managed_kafka.vcpu_count, config.managed_kafka.memory_gib) == (3, 12)
    assert config.strimzi.kafka_version == "4.3.1"
    assert config.strimzi.plain_listener is False
    assert config.strimzi.users == []  # serving deployments get their own (KafkaClient)


def test_predictions_is_the_topic_the_model_server_writes_to():
    from mlops_platform.model_server.settings import REGISTRY

    (topic_var,) = [v for v in REGISTRY if v.name == "MLOPS_SERVE_KAFKA_TOPIC"]
    assert topic_var.default in KafkaConfig().topics


@pytest.mark.parametrize(("replication_factor", "expected"), [(1, 1), (2, 1), (3, 2), (5, 2)])
def test_min_insync_replicas_leaves_room_for_one_failed_replica(replication_factor, expected):
    topic = TopicConfig(replication_factor=replication_factor)
    assert topic.effective_min_insync_replicas == expected


def test_topic_configs_are_kafka_property_names():
    topic = TopicConfig(retention_hours=24, cleanup_policy="compact", min_insync_replicas=1)
    assert model.topic_configs(topic) == {
        "cleanup.policy": "compact",
        "retention.ms": 86_400_000,
        "min.insync.replicas": 1,
    }
    assert model.topic_configs_text(TopicConfig(retention_hours=None)) == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "min.insync.replicas": "2",
    }


# --- errors name the field --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"topics": {}}, "at least one topic is required"),
        ({"topics": {"Predictions": {}}}, "topic 'Predictions' must be lowercase"),
        ({"topics": {"a_b": {}}}, "topic 'a_b' must be lowercase"),
        (
            {"brokers": 2, "topics": {"predictions": {}}},
            "topics.predictions.replication_factor (3) must be <= brokers (2)",
        ),
        (
            {"topics": {"events": {"replication_factor": 2, "min_insync_replicas": 3}}},
            "min_insync_replicas (3) must be <= replication_factor (2)",
        ),
        ({"topics": {"events": {"partitions": 0}}}, "partitions"),
        ({"topics": {"events": {"cleanup_policy": "forever"}}}, "cleanup_policy"),
        ({"cluster_name": "1mlops"}, "cluster_name '1mlops' must be"),
        ({"cluster_name": "m" * 41}, "at most 40"),
        ({"storage_gb": 0}, "storage_gb"),
        ({"brokers": 0}, "brokers"),
        (
            {"backend": {"type": "msk", "instance_type": "m5.large"}},
            "instance_type 'm5.large' is not an MSK",
        ),
        (
            {"backend": {"type": "msk", "kafka_version": "latest"}},
            "kafka_version 'latest' is not an MSK",
        ),
        ({"backend": {"type": "msk", "kafka_version": "3.5.1"}}, "needs Kafka 3.6.0 or later"),
        (
            {"backend": {"type": "msk", "kms_key": "alias/kafka"}},
            "kms_key 'alias/kafka' must be a KMS key ARN",
        ),
        ({"backend": {"type": "msk", "enhanced_monitoring": "ALL"}}, "enhanced_monitoring"),
        ({"backend": {"type": "managed_kafka", "vcpu_count": 2}}, "vcpu_count"),
        (
            {"backend": {"type": "managed_kafka", "memory_gib": 30}},
            "memory_gib (30) must be between 1 and 8 GiB",
        ),
        (
            {"backend": {"type": "managed_kafka", "kms_key": "my-key"}},
            "kms_key 'my-key' must look like",
        ),
        (
            {"backend": {"type": "strimzi", "kafka_version": "4.1.1"}},
            "'4.1.1' is not run by Strimzi 1.2.0",
        ),
        (
            {"backend": {"type": "strimzi", "namespace": "Kafka"}},
            "namespace 'Kafka' must be a DNS label",
        ),
        (
            {"backend": {"type": "strimzi", "memory_limit": "2GB"}},
            "memory_limit '2GB' is not a Kubernetes quantity",
        ),
        ({"backend": {"type": "strimzi", "users": ["svc", "svc"]}}, "users must not repeat a name"),
        ({"backend": {"type": "strimzi", "users": ["Svc"]}}, "user 'Svc' must be a DNS label"),
        ({"partitions": 3}, "partitions"),  # unknown top-level field
    ],
)
def test_bad_config_is_rejected_naming_the_field(data, message):
    with pytest.raises(ValidationError) as error:
        KafkaConfig.model_validate(data)
    assert message in str(error.value)


def test_gcp_capacity_must_provide_the_brokers():
    assert ManagedKafkaConfig().brokers == 3
    assert ManagedKafkaConfig(vcpu_count=45, memory_gib=180).brokers == 3
    assert ManagedKafkaConfig(vcpu_count=60, memory_gib=240).brokers == 4
    config = KafkaConfig(brokers=4, topics={"predictions": {"replication_factor": 4}})
    assert model.cloud_problems(config, "gcp") == [
        ("kafka.brokers", "4 brokers, but managed_kafka capacity (3 vCPU, 12 GiB) provisions 3")
    ]
    assert model.cloud_problems(config, "aws") == []
    assert model.cloud_problems(config, "local") == []
    with pytest.raises(ValueError, match=r"^kafka\.brokers: 4 brokers"):
        model.check_cloud(config, "gcp")


def test_express_brokers_come_in_threes():
    config = KafkaConfig(
        brokers=2,
        topics={"predictions": {"replication_factor": 2}},
        backend={"type": "msk", "instance_type": "express.m7g.large"},
    )
    assert model.cloud_problems(config, "aws") == [
        ("kafka.brokers", "Express brokers come in threes (3 zones); got 2")
    ]


@pytest.mark.parametrize(
    ("subnets", "brokers", "used"), [(2, 2, 2), (2, 4, 2), (3, 3, 3), (3, 6, 3), (6, 3, 3)]
)
def test_msk_uses_two_or_three_zones_and_brokers_divide_evenly(subnets, brokers, used):
    assert model.msk_client_subnets(subnets, brokers) == used


@pytest.mark.parametrize(
    ("subnets", "brokers", "message"),
    [
        (1, 3, "kafka.brokers: MSK needs private subnets in at least 2 zones, got 1"),
        (3, 4, "kafka.brokers: 4 brokers must be a multiple of the 3 zones MSK uses"),
        (2, 3, "kafka.brokers: 3 brokers must be a multiple of the 2 zones MSK uses"),
    ],
)
def test_msk_subnet_errors_name_the_field(subnets, brokers, message):
    with pytest.raises(ValueError) as error:
        model.msk_client_subnets(subnets, brokers)
    assert str(error.value) == message


# --- AWS documents ----------------------------------------------------------------------------

CLUSTER_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/mlops/abcd-1234-5"


def test_msk_server_properties_turn_off_auto_created_topics():
    assert model.msk_server_properties(KafkaConfig()) == (
        "auto.create.topics.enable=false\n"
        "default.replication.factor=3\n"
        "min.insync.replicas=2\n"
        "offsets.topic.replication.factor=3\n"
        "transaction.state.log.replication.factor=3\n"
        "transaction.state.log.min.isr=2\n"
    )
    two = KafkaConfig(brokers=2, topics={"p": {"replication_factor": 2}})
    assert "default.replication.factor=2\nmin.insync.replicas=1\n" in (
        model.msk_server_properties(two)
    )


def test_msk_client_policy_grants_connect_write_and_read_on_named_topics_only():
    policy = model.msk_client_policy(CLUSTER_ARN, ["predictions"], ["features"])
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Connect",
                "Effect": "Allow",
                "Action": ["kafka-cluster:Connect"],
                "Resource": [CLUSTER_ARN],
            },
            {
                "Sid": "WriteTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                "Resource": [
                    "arn:aws:kafka:us-east-1:123456789012:topic/mlops/abcd-1234-5/predictions"
                ],
            },
            {
                "Sid": "ReadTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                "Resource": [
                    "arn:aws:kafka:us-east-1:123456789012:topic/mlops/abcd-1234-5/features"
                ],
            },
            {
                "Sid": "ConsumerGroups",
                "Effect": "Allow",
                "Action": ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                "Resource": ["arn:aws:kafka:us-east-1:123456789012:group/mlops/abcd-1234-5/*"],
            },
        ],
    }
    json.dumps(policy)  # a plain document
    producer_only = model.msk_client_policy(CLUSTER_ARN, ["predictions"], [])
    assert [s["Sid"] for s in producer_only["Statement"]] == ["Connect", "WriteTopics"]


def test_msk_version_family():
    assert model.msk_version_family("4.1.x.kraft") == "4.1"
    assert model.msk_version_family("3.9.x") == "3.9"


# --- GCP --------------------------------------------------------------------------------------


def test_gcp_values():
    assert model.gcp_memory_bytes(12) == "12884901888"
    host = "bootstrap.mlops.europe-west4.managedkafka.acme-ml.cloud.goog"
    assert model.gcp_bootstrap(host) == f"{host}:9092"
    assert model.gcp_bootstrap(f"{host}:9092") == f"{host}:9092"


def test_client_settings_per_cloud():
    assert {k: v.model_dump() for k, v in model.CLIENT_SETTINGS.items()} == {
        "aws": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "OAUTHBEARER",
            "auth_method": "aws-iam",
        },
        "gcp": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "OAUTHBEARER",
            "auth_method": "gcp-iam",
        },
        "local": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "auth_method": "scram-sha-512",
        },
    }


# --- Strimzi ----------------------------------------------------------------------------------

LOCAL = KafkaConfig(
    brokers=1,
    storage_gb=10,
    topics={"predictions": {"replication_factor": 1, "partitions": 3}, "features": {
        "replication_factor": 1, "retention_hours": None, "cleanup_policy": "compact"}},
    backend={"type": "strimzi", "storage_class": "standard",
             "users": ["model-server", "drift-monitor"]},
)  # fmt: skip


def test_pinned_chart_is_the_operator_of_the_shared_crds(crds_dir):
    assert (
        versions.Chart(
            repo="oci://quay.io/strimzi-helm", chart="strimzi-kafka-operator", version="1.2.0"
        )
        == versions.STRIMZI_KAFKA_OPERATOR
    )
    assert (crds_dir / f"strimzi-{versions.STRIMZI_KAFKA_OPERATOR.version}").is_dir()
    assert model.STRIMZI_API_VERSION == "kafka.strimzi.io/v1"


def test_every_rendered_custom_resource_is_valid_against_the_strimzi_crds(crds_dir):
    for config in (KafkaConfig(), LOCAL, LOCAL.model_copy(update={"backend": StrimziConfig(
            plain_listener=True)})):  # fmt: skip
        resources = model.strimzi_resources(config)
        assert [r["kind"] for r in resources] == [
            "KafkaNodePool",
            "Kafka",
            *["KafkaTopic"] * len(config.topics),
            *["KafkaUser"] * len(config.strimzi.users),
        ]
        for resource in resources:
            manifests.validate(resource)
        manifests.validate(model.strimzi_namespace(config.strimzi))


def test_kafka_is_kraft_with_a_scram_tls_listener_and_no_auto_created_topics():
    kafka = model.strimzi_kafka(LOCAL)
    assert kafka["metadata"] == {"name": "mlops", "namespace": "kafka"}
    assert kafka["spec"] == {
        "kafka": {
            "version": "4.3.1",
            "image": "quay.io/strimzi/kafka:1.2.0-kafka-4.3.1",
            "listeners": [
                {
                    "name": "tls",
                    "port": 9093,
                    "type": "internal",
                    "tls": True,
                    "authentication": {"type": "scram-sha-512"},
                }
            ],
            "config": {
                "auto.create.topics.enable": False,
                "default.replication.factor": 1,
                "min.insync.replicas": 1,
                "offsets.topic.replication.factor": 1,
                "transaction.state.log.replication.factor": 1,
                "transaction.state.log.min.isr": 1,
            },
        },
        "entityOperator": {
            "topicOperator": {"image": "quay.io/strimzi/operator:1.2.0"},
            "userOperator": {"image": "quay.io/strimzi/operator:1.2.0"},
        },
    }


@pytest.mark.parametrize("version", model.STRIMZI_KAFKA_VERSIONS)
def test_the_kafka_resource_names_the_image_the_operator_would_choose_for_its_version(version):
    """Strimzi maps `version` to `<kafka image tag prefix>-kafka-<version>`; naming it in the
    resource changes no pod, and lets the stack's image policy pin and mirror it."""
    config = KafkaConfig(backend={"type": "strimzi", "kafka_version": version})
    kafka = model.strimzi_kafka(config)["spec"]["kafka"]
    assert kafka["image"] == f"quay.io/strimzi/kafka:1.2.0-kafka-{version}"


def test_plain_listener_is_opt_in_and_unauthenticated():
    listeners = model.strimzi_listeners(StrimziConfig(plain_listener=True))
    assert listeners[1] == {"name": "plain", "port": 9092, "type": "internal", "tls": False}
    assert [l["name"] for l in model.strimzi_listeners(StrimziConfig())] == ["tls"]  # noqa: E741


def test_node_pool_is_dual_role_with_retained_volumes():
    pool = model.strimzi_node_pool(LOCAL)
    assert pool["metadata"] == {
        "name": "dual-role",
        "namespace": "kafka",
        "labels": {"strimzi.io/cluster": "mlops"},
    }
    assert pool["spec"] == {
        "replicas": 1,
        "roles": ["controller", "broker"],
        "storage": {
            "type": "jbod",
            "volumes": [
                {
                    "id": 0,
                    "type": "persistent-claim",
                    "size": "10Gi",
                    "deleteClaim": False,
                    "kraftMetadata": "shared",
                    "class": "standard",
                }
            ],
        },
        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
    }
    default_class = model.strimzi_node_pool(KafkaConfig())["spec"]["storage"]["volumes"][0]
    assert "class" not in default_class


def test_topics_and_users_belong_to_the_cluster():
    topic = model.strimzi_topic(LOCAL, "features")
    assert topic["metadata"]["labels"] == {"strimzi.io/cluster": "mlops"}
    assert topic["spec"] == {
        "partitions": 6,
        "replicas": 1,
        "config": {"cleanup.policy": "compact", "retention.ms": -1, "min.insync.replicas": 1},
    }
    user = model.strimzi_user(LOCAL, "drift-monitor")
    assert user["metadata"] == {
        "name": "drift-monitor",
        "namespace": "kafka",
        "labels": {"strimzi.io/cluster": "mlops"},
    }
    assert user["spec"] == {"authentication": {"type": "scram-sha-512"}}


def test_local_endpoints_and_namespace():
    assert model.strimzi_bootstrap(LOCAL) == "mlops-kafka-bootstrap.kafka.svc.cluster.local:9093"
    assert model.strimzi_bootstrap(LOCAL, model.STRIMZI_PLAIN_PORT).endswith(":9092")
    assert model.strimzi_ca_secret(LOCAL) == "mlops-cluster-ca-cert"
    namespace = model.strimzi_namespace(LOCAL.strimzi)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert model.strimzi_operator_values() == {
        "extraEnvs": [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}]
    }


def test_crd_validation_rejects_a_broken_topic(crds_dir):
    topic = model.strimzi_topic(LOCAL, "predictions")
    broken = {**topic, "spec": {**topic["spec"], "partitions": 0}}
    with pytest.raises(manifests.ManifestError, match="partitions"):
        manifests.validate(broken)
    typo = {**topic, "spec": {**topic["spec"], "replicationFactor": 1}}
    with pytest.raises(manifests.ManifestError, match="replicationFactor"):
        manifests.validate(typo)


# --- clients ----------------------------------------------------------------------------------


def test_user_with_our_password_reads_it_from_a_secret_and_validates(crds_dir):
    user = model.strimzi_user(LOCAL, "churn", password_secret=model.scram_source_secret("churn"))
    assert user["spec"] == {
        "authentication": {
            "type": "scram-sha-512",
            "password": {
                "valueFrom": {"secretKeyRef": {"name": "churn-scram-password", "key": "password"}}
            },
        }
    }
    manifests.validate(user)
    # the operator's own Secret is `<user>`: ours must not take that name
    assert model.scram_source_secret("churn") != "churn"


def test_client_user_is_awaited_until_ready(crds_dir):
    user = model.strimzi_client_user(LOCAL, "churn")
    assert user["metadata"] == {
        "name": "churn",
        "namespace": "kafka",
        "labels": {"strimzi.io/cluster": "mlops"},
        "annotations": {
            "pulumi.com/waitFor": "condition=Ready",
            "pulumi.com/timeoutSeconds": "1200",
        },
    }
    assert user["spec"] == model.strimzi_user(LOCAL, "churn", "churn-scram-password")["spec"]
    manifests.validate(user)


def test_client_object_names():
    assert model.client_password_secret("churn") == "kafka-churn"
    assert model.client_ca_config_map("churn") == "kafka-churn-ca"
    assert model.client_object_metadata(LOCAL, "churn", "kafka-churn", "serving") == {
        "name": "kafka-churn",
        "namespace": "serving",
        "labels": {
            "app.kubernetes.io/name": "kafka-client",
            "app.kubernetes.io/instance": "churn",
            "app.kubernetes.io/managed-by": "mlops-platform",
        },
        "annotations": {"mlops.platform/kafka-cluster": "mlops"},
    }


def test_check_client_accepts_a_writer_of_a_known_topic():
    model.check_client(LOCAL, "churn", "serving", ["predictions"], [])
    model.check_client(LOCAL, "drift", "monitoring", [], ["predictions", "features"])


@pytest.mark.parametrize(
    ("name", "namespace", "write", "read", "message"),
    [
        ("Churn", "serving", ["predictions"], [], "KafkaClient 'Churn': the name"),
        ("x" * 41, "serving", ["predictions"], [], "must be at most 40"),
        ("churn", "Serving", ["predictions"], [], "KafkaClientArgs.namespace 'Serving'"),
        ("churn", "serving", [], [], "write_topics or read_topics must name at least one topic"),
        (
            "churn",
            "serving",
            ["prediction"],
            [],
            "KafkaClientArgs.write_topics: unknown topic(s) 'prediction'; kafka.topics has "
            "'features', 'predictions'",
        ),
        ("churn", "serving", [], ["nope"], "KafkaClientArgs.read_topics: unknown topic(s) 'nope'"),
        (
            "model-server",
            "serving",
            ["predictions"],
            [],
            "kafka.strimzi.users already has a KafkaUser 'model-server'",
        ),
    ],
)
def test_check_client_errors_name_the_field(name, namespace, write, read, message):
    config = LOCAL.model_copy(update={"backend": StrimziConfig(users=["model-server"])})
    with pytest.raises(ValueError) as info:
        model.check_client(config, name, namespace, write, read)
    assert message in str(info.value)


def test_wiring_is_consistent_per_auth_method():
    scram = dict(
        namespace="serving",
        bootstrap_servers="b:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        auth_method="scram-sha-512",
    )
    refs = dict(
        username="churn",
        password_secret=model.KeyRef("kafka-churn", "password"),
        ca_config_map=model.KeyRef("kafka-churn-ca", "ca.crt"),
    )
    assert model.KafkaClientWiring(**scram, **refs).username == "churn"
    with pytest.raises(ValueError, match="scram-sha-512 needs username, password_secret"):
        model.KafkaClientWiring(**scram, username="churn")
    iam = {**scram, "sasl_mechanism": "OAUTHBEARER", "auth_method": "aws-iam"}
    with pytest.raises(ValueError, match="aws-iam takes no username"):
        model.KafkaClientWiring(**iam, **refs, aws_region="us-east-1")
    with pytest.raises(ValueError, match="aws_region goes with aws-iam"):
        model.KafkaClientWiring(**iam)
    gcp = {**iam, "auth_method": "gcp-iam"}
    with pytest.raises(ValueError, match="aws_region goes with aws-iam"):
        model.KafkaClientWiring(**gcp, aws_region="us-east-1")
    assert model.KafkaClientWiring(**gcp).aws_region is None
