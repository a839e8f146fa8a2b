"""Kafka, pure layer: config models and the values each backend is built from.

One `KafkaConfig` describes the platform's event log (brokers, storage, topics keyed by name);
the cloud picks the service: Amazon MSK (provisioned, IAM auth), Google Cloud Managed Service
for Apache Kafka, or Strimzi on a local cluster. Everything here is plain data in, plain data
out (topic configs, MSK server properties, IAM documents, Strimzi custom resources, Helm values)
and table-tested without Pulumi.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from mlops_platform.components import versions
from mlops_platform.components.base import StrictModel
from mlops_platform.components.kube import check_dns_label, check_quantity, container_resources
from mlops_platform.components.namespaces.model import namespace_labels

# A topic key is its name everywhere: Kafka, MSK and GCP topic ids, and the KafkaTopic's
# metadata.name (a DNS-1123 name), so the common subset is enforced.
_KEY = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
# MSK cluster names, GCP cluster ids (RFC 1035) and Strimzi resource names (pods are named
# `<cluster>-<pool>-<id>`, so the name is kept short) all accept this.
_CLUSTER_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
CLUSTER_NAME_MAX = 40
_MSK_INSTANCE = re.compile(r"^(kafka|express)\.[a-z0-9]+\.[a-z0-9]+$")
_MSK_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.([0-9]+|x)(\.kraft)?$")
_GCP_KMS_KEY = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$")

MS_PER_HOUR = 3_600_000

# --- listeners and client settings, per backend -----------------------------------------------

# MSK: SASL/IAM over TLS from inside the VPC is served on 9098.
MSK_IAM_PORT = 9098
# Managed Kafka: SASL (OAUTHBEARER or PLAIN) over TLS on 9092 (mTLS, when set up, on 9192).
GCP_SASL_PORT = 9092
# Strimzi: the internal TLS listener with SCRAM-SHA-512, and the optional plaintext one.
STRIMZI_TLS_PORT = 9093
STRIMZI_PLAIN_PORT = 9092
STRIMZI_TLS_LISTENER = "tls"
STRIMZI_PLAIN_LISTENER = "plain"
STRIMZI_NODE_POOL = "dual-role"
STRIMZI_RELEASE_NAME = "strimzi"
STRIMZI_API_VERSION = "kafka.strimzi.io/v1"
# The Kafka versions Strimzi 1.2.0 runs (kafka-versions.yaml at tag 1.2.0).
STRIMZI_KAFKA_VERSIONS = versions.STRIMZI_KAFKA_VERSIONS
# A client's KafkaUser is Ready once the User Operator (which starts after the brokers) has
# created it; on a first install that includes pulling images and starting every broker.
STRIMZI_READY_TIMEOUT_SECONDS = 1200
# Key of a SCRAM password in the Secrets of this component (Strimzi's own user Secrets use it).
PASSWORD_KEY = "password"
# Key of the cluster CA certificate in Strimzi's `<cluster>-cluster-ca-cert` and in the copies.
CA_CERT_KEY = "ca.crt"

AuthMethod = Literal["aws-iam", "gcp-iam", "scram-sha-512"]


class ClientSettings(StrictModel):
    """What a Kafka client must set to connect (librdkafka / Java property names)."""

    security_protocol: Literal["SASL_SSL"]
    sasl_mechanism: Literal["OAUTHBEARER", "SCRAM-SHA-512"]
    auth_method: AuthMethod


CLIENT_SETTINGS: dict[str, ClientSettings] = {
    # MSK IAM: Java clients use `AWS_MSK_IAM`; librdkafka-based clients (confluent-kafka) use
    # OAUTHBEARER with a token from aws-msk-iam-sasl-signer, which is the portable choice.
    "aws": ClientSettings(
        security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", auth_method="aws-iam"
    ),
    "gcp": ClientSettings(
        security_protocol="SASL_SSL", sasl_mechanism="OAUTHBEARER", auth_method="gcp-iam"
    ),
    "local": ClientSettings(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", auth_method="scram-sha-512"
    ),
}


# --- config -----------------------------------------------------------------------------------


class TopicConfig(StrictModel):
    """One topic (the map key is its name)."""

    partitions: PositiveInt = Field(
        default=6, description="Partitions; can be raised later, never lowered."
    )
    replication_factor: PositiveInt = Field(
        default=3, description="Copies of each partition; at most `brokers`."
    )
    min_insync_replicas: PositiveInt | None = Field(
        default=None,
        description="Replicas that must acknowledge an `acks=all` write. Default: "
        "replication_factor - 1, between 1 and 2.",
    )
    retention_hours: PositiveInt | None = Field(
        default=168, description="Keep records this long; null keeps them forever."
    )
    cleanup_policy: Literal["delete", "compact"] = Field(
        default="delete", description="`delete` old segments, or `compact` to the last per key."
    )

    @model_validator(mode="after")
    def _isr_fits(self) -> TopicConfig:
        if (
            self.min_insync_replicas is not None
            and self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) must be <= "
                f"replication_factor ({self.replication_factor})"
            )
        return self

    @property
    def effective_min_insync_replicas(self) -> int:
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return max(1, min(2, self.replication_factor - 1))


class MskConfig(StrictModel):
    """AWS: an MSK provisioned cluster."""

    type: Literal["msk"] = Field(default="msk", description="Amazon MSK (AWS stacks).")
    instance_type: str = Field(
        default="kafka.m7g.large",
        description="Broker instance type (`kafka.*` Standard or `express.*` Express brokers).",
    )
    kafka_version: str = Field(
        default="4.1.x.kraft",
        description="MSK Kafka version; `.kraft` selects KRaft metadata (Kafka 4 has no other). "
        "The topic API needs 3.6.0 or later.",
    )
    kms_key: str | None = Field(
        default=None,
        description="KMS key ARN for encryption at rest; null uses the AWS-managed `aws/msk` key.",
    )
    broker_logs: bool = Field(
        default=False, description="Stream broker logs to a CloudWatch log group."
    )
    broker_log_retention_days: PositiveInt = Field(
        default=90, description="Retention of that log group."
    )
    enhanced_monitoring: Literal[
        "DEFAULT", "PER_BROKER", "PER_TOPIC_PER_BROKER", "PER_TOPIC_PER_PARTITION"
    ] = Field(default="DEFAULT", description="CloudWatch metric level (higher levels cost more).")

    @field_validator("instance_type")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not _MSK_INSTANCE.match(value):
            raise ValueError(
                f"instance_type {value!r} is not an MSK broker type (e.g. kafka.m7g.large, "
                "express.m7g.large)"
            )
        return value

    @field_validator("kafka_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _MSK_VERSION.match(value):
            raise ValueError(
                f"kafka_version {value!r} is not an MSK version (e.g. 4.1.x.kraft, 3.9.x)"
            )
        major, minor = (int(part) for part in value.split(".")[:2])
        if (major, minor) < (3, 6):
            raise ValueError(
                f"kafka_version {value!r}: topics are created through the MSK topic API, "
                "which needs Kafka 3.6.0 or later"
            )
        return value

    @field_validator("kms_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("arn:"):
            raise ValueError(f"kms_key {value!r} must be a KMS key ARN")
        return value

    @property
    def express(self) -> bool:
        return self.instance_type.startswith("express.")


class ManagedKafkaConfig(StrictModel):
    """GCP: a Managed Service for Apache Kafka cluster, sized by vCPU and memory."""

    type: Literal["managed_kafka"] = Field(
        default="managed_kafka", description="Managed Service for Apache Kafka (GCP stacks)."
    )
    vcpu_count: int = Field(default=3, ge=3, description="Total vCPUs (at least 3).")
    memory_gib: PositiveInt = Field(default=12, description="Total memory, 1 to 8 GiB per vCPU.")
    kafka_version: str = Field(
        default="3.7.x", description="Kafka version of the cluster (the service default)."
    )
    kms_key: str | None = Field(
        default=None,
        description="Cloud KMS key (`projects/.../cryptoKeys/...`, same region) for CMEK; "
        "null uses Google-managed encryption. Cannot be changed later.",
    )

    @model_validator(mode="after")
    def _ratio(self) -> ManagedKafkaConfig:
        if not self.vcpu_count <= self.memory_gib <= 8 * self.vcpu_count:
            raise ValueError(
                f"memory_gib ({self.memory_gib}) must be between 1 and 8 GiB per vCPU "
                f"({self.vcpu_count} to {8 * self.vcpu_count})"
            )
        return self

    @field_validator("kms_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not _GCP_KMS_KEY.match(value):
            raise ValueError(
                f"kms_key {value!r} must look like projects/P/locations/L/keyRings/R/cryptoKeys/K"
            )
        return value

    @property
    def brokers(self) -> int:
        """Brokers the service provisions: 1 per 15 vCPU or 120 GiB, whichever gives more,
        and at least 3 (a cluster spans three zones)."""
        return max(3, math.ceil(self.vcpu_count / 15), math.ceil(self.memory_gib / 120))


class StrimziConfig(StrictModel):
    """Local: Strimzi operator + one KRaft Kafka cluster in `namespace`."""

    type: Literal["strimzi"] = Field(
        default="strimzi", description="Strimzi in the cluster (local stacks)."
    )
    namespace: str = Field(default="kafka", description="Namespace of operator and cluster.")
    kafka_version: str = Field(
        default="4.3.1",
        description=f"Kafka version; Strimzi 1.2.0 runs {', '.join(STRIMZI_KAFKA_VERSIONS)}.",
    )
    storage_class: str | None = Field(
        default=None, description="StorageClass of the broker volumes; null = cluster default."
    )
    cpu_request: str = Field(default="250m", description="CPU request per broker.")
    memory_request: str = Field(default="1Gi", description="Memory request per broker.")
    memory_limit: str = Field(default="2Gi", description="Memory limit per broker.")
    users: list[str] = Field(
        default_factory=list,
        description="Extra KafkaUsers with generated SCRAM-SHA-512 passwords (Secret `<user>` in "
        "the namespace). Serving deployments that log to Kafka get their own user "
        "(`serving-<key>`, through `KafkaClient`).",
    )
    plain_listener: bool = Field(
        default=False,
        description="Also open an in-cluster plaintext, unauthenticated listener on 9092, for "
        "clients that cannot do SASL_SSL yet (the model server today). Off by default.",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_dns_label(value, "namespace", explain=False)

    @field_validator("kafka_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in STRIMZI_KAFKA_VERSIONS:
            raise ValueError(
                f"kafka_version {value!r} is not run by Strimzi 1.2.0 "
                f"({', '.join(STRIMZI_KAFKA_VERSIONS)})"
            )
        return value

    @field_validator("cpu_request", "memory_request", "memory_limit")
    @classmethod
    def _quantity(cls, value: str, info) -> str:
        return check_quantity(value, info.field_name, example="1Gi, 250m")

    @field_validator("users")
    @classmethod
    def _users(cls, users: list[str]) -> list[str]:
        for user in users:
            check_dns_label(user, "user", explain=False)
        if len(set(users)) != len(users):
            raise ValueError("users must not repeat a name")
        return users


# Only the chosen backend's fields are accepted: a setting of another cloud's is an error.
KafkaBackend = Annotated[
    MskConfig | ManagedKafkaConfig | StrimziConfig, Field(discriminator="type")
]


def _default_topics() -> dict[str, TopicConfig]:
    # `predictions`: what the model server produces to (MLOPS_SERVE_KAFKA_TOPIC's default);
    # `labels`: the ground truth that arrives later, joined to them by the loop's consumer.
    return {"predictions": TopicConfig(), "labels": TopicConfig()}


class KafkaConfig(StrictModel):
    """The platform's Kafka cluster: brokers, storage and topics keyed by name."""

    cluster_name: str = Field(
        default="mlops",
        description="Physical cluster name (MSK cluster, GCP cluster id, Strimzi Kafka); "
        "MSK names are unique per account and region, so set one per stack.",
    )
    brokers: PositiveInt = Field(
        default=3,
        description="Brokers (AWS: a multiple of the subnets used, 2 or 3; local: KRaft "
        "dual-role nodes). GCP derives brokers from managed_kafka capacity, which must provide "
        "at least this many.",
    )
    storage_gb: int = Field(
        default=100,
        ge=1,
        le=16384,
        description="Disk per broker in GiB (AWS EBS, local PVC). GCP manages storage itself.",
    )
    topics: dict[str, TopicConfig] = Field(
        default_factory=_default_topics, description="Topic name -> settings."
    )
    backend: KafkaBackend | None = Field(
        default=None,
        description="Where Kafka runs, a `type:` block with only that backend's settings: "
        "`msk` (AWS), `managed_kafka` (GCP) or `strimzi` (local). The type follows the stack's "
        "cloud: omit it (or the whole block) and the cloud's own is used.",
    )

    # The backend's settings, for the resource layer: the backend of that type, else its
    # defaults (the root config fills `backend` in from the cloud, so a stack always has one).
    @property
    def msk(self) -> MskConfig:
        return self.backend if isinstance(self.backend, MskConfig) else MskConfig()

    @property
    def managed_kafka(self) -> ManagedKafkaConfig:
        if isinstance(self.backend, ManagedKafkaConfig):
            return self.backend
        return ManagedKafkaConfig()

    @property
    def strimzi(self) -> StrimziConfig:
        return self.backend if isinstance(self.backend, StrimziConfig) else StrimziConfig()

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        if len(value) > CLUSTER_NAME_MAX or not _CLUSTER_NAME.match(value):
            raise ValueError(
                f"cluster_name {value!r} must be at most {CLUSTER_NAME_MAX} lowercase letters, "
                "digits or '-', starting with a letter"
            )
        return value

    @field_validator("topics")
    @classmethod
    def _topic_names(cls, topics: dict[str, TopicConfig]) -> dict[str, TopicConfig]:
        if not topics:
            raise ValueError("at least one topic is required")
        for key in topics:
            if len(key) > 63 or not _KEY.match(key):
                raise ValueError(
                    f"topic {key!r} must be lowercase letters, digits or '-' (at most 63), "
                    "starting and ending with a letter or digit"
                )
        return topics

    @model_validator(mode="after")
    def _replicas_fit(self) -> KafkaConfig:
        for key, topic in self.topics.items():
            if topic.replication_factor > self.brokers:
                raise ValueError(
                    f"topics.{key}.replication_factor ({topic.replication_factor}) must be <= "
                    f"brokers ({self.brokers})"
                )
        # GCP's broker count comes from managed_kafka capacity: see cloud_problems.
        return self

    @property
    def internal_replication_factor(self) -> int:
        """Replicas of Kafka's own topics (offsets, transactions): 3, or every broker if fewer."""
        return min(3, self.brokers)


def cloud_problems(config: KafkaConfig, cloud_type: str) -> list[tuple[str, str]]:
    """Checks that depend on the cloud, as (dotted path, message); empty when all is well."""
    problems: list[tuple[str, str]] = []
    if cloud_type == "gcp":
        provisioned = config.managed_kafka.brokers
        if config.brokers > provisioned:
            problems.append(
                (
                    "kafka.brokers",
                    f"{config.brokers} brokers, but managed_kafka capacity "
                    f"({config.managed_kafka.vcpu_count} vCPU, "
                    f"{config.managed_kafka.memory_gib} GiB) provisions {provisioned}",
                )
            )
    if cloud_type == "aws" and config.msk.express and config.brokers % 3 != 0:
        problems.append(
            ("kafka.brokers", f"Express brokers come in threes (3 zones); got {config.brokers}")
        )
    return problems


def check_cloud(config: KafkaConfig, cloud_type: str) -> None:
    """Raise a ValueError naming every cloud-specific problem."""
    problems = cloud_problems(config, cloud_type)
    if problems:
        raise ValueError("; ".join(f"{path}: {message}" for path, message in problems))


# --- topics -----------------------------------------------------------------------------------


def topic_configs(topic: TopicConfig) -> dict[str, int | str]:
    """Kafka topic-level configs (typed, as Strimzi takes them)."""
    retention_ms = -1 if topic.retention_hours is None else topic.retention_hours * MS_PER_HOUR
    return {
        "cleanup.policy": topic.cleanup_policy,
        "retention.ms": retention_ms,
        "min.insync.replicas": topic.effective_min_insync_replicas,
    }


def topic_configs_text(topic: TopicConfig) -> dict[str, str]:
    """The same configs as strings (MSK and GCP take string maps)."""
    return {key: str(value) for key, value in topic_configs(topic).items()}


# --- AWS --------------------------------------------------------------------------------------


def msk_client_subnets(subnet_count: int, brokers: int, field: str = "kafka.brokers") -> int:
    """How many of the cluster's private subnets MSK uses (2 or 3); brokers must divide evenly."""
    if subnet_count < 2:
        raise ValueError(
            f"{field}: MSK needs private subnets in at least 2 zones, got {subnet_count}"
        )
    used = min(3, subnet_count)
    if brokers % used != 0:
        raise ValueError(
            f"{field}: {brokers} brokers must be a multiple of the {used} zones MSK uses"
        )
    return used


def msk_server_properties(config: KafkaConfig) -> str:
    """`server.properties` of the MSK configuration: topics only come from this program."""
    lines = {
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(config.internal_replication_factor),
        "min.insync.replicas": str(max(1, config.internal_replication_factor - 1)),
        "offsets.topic.replication.factor": str(config.internal_replication_factor),
        "transaction.state.log.replication.factor": str(config.internal_replication_factor),
        "transaction.state.log.min.isr": str(max(1, config.internal_replication_factor - 1)),
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def msk_version_family(kafka_version: str) -> str:
    """`4.1.x.kraft` -> `4.1`: the version an MSK configuration is declared for."""
    return ".".join(kafka_version.split(".")[:2])


def msk_topic_arn(cluster_arn: str, topic: str) -> str:
    """arn:...:cluster/<name>/<uuid> -> arn:...:topic/<name>/<uuid>/<topic>."""
    return f"{cluster_arn.replace(':cluster/', ':topic/', 1)}/{topic}"


def msk_group_arn(cluster_arn: str, group: str = "*") -> str:
    return f"{cluster_arn.replace(':cluster/', ':group/', 1)}/{group}"


def msk_client_policy(
    cluster_arn: str, write_topics: list[str], read_topics: list[str]
) -> dict[str, Any]:
    """IAM policy a client's role needs for MSK IAM auth: connect, then write / read topics."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Connect",
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect"],
            "Resource": [cluster_arn],
        }
    ]
    if write_topics:
        statements.append(
            {
                "Sid": "WriteTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"],
                "Resource": [msk_topic_arn(cluster_arn, t) for t in sorted(write_topics)],
            }
        )
    if read_topics:
        statements += [
            {
                "Sid": "ReadTopics",
                "Effect": "Allow",
                "Action": ["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"],
                "Resource": [msk_topic_arn(cluster_arn, t) for t in sorted(read_topics)],
            },
            {
                "Sid": "ConsumerGroups",
                "Effect": "Allow",
                "Action": ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"],
                "Resource": [msk_group_arn(cluster_arn)],
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


# --- GCP --------------------------------------------------------------------------------------


def gcp_memory_bytes(memory_gib: int) -> str:
    return str(memory_gib * 1024**3)


def gcp_bootstrap(address: str) -> str:
    """The cluster's bootstrap address with the SASL port (the API may omit the port)."""
    _host, sep, port = address.rpartition(":")
    if sep and port.isdigit():
        return address
    return f"{address}:{GCP_SASL_PORT}"


# --- Local (Strimzi) --------------------------------------------------------------------------


def strimzi_operator_values() -> dict[str, Any]:
    """Chart values: operands get the `restricted` pod security profile, so the namespace can
    enforce Pod Security `restricted` (the operator itself already matches it in 1.2.0)."""
    return {
        "extraEnvs": [{"name": "STRIMZI_POD_SECURITY_PROVIDER_CLASS", "value": "restricted"}],
    }


def strimzi_namespace(config: StrimziConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": config.namespace, "labels": namespace_labels("restricted")},
    }


def _cr_metadata(name: str, cluster: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {"strimzi.io/cluster": cluster}}


def strimzi_listeners(config: StrimziConfig) -> list[dict[str, Any]]:
    listeners: list[dict[str, Any]] = [
        {
            "name": STRIMZI_TLS_LISTENER,
            "port": STRIMZI_TLS_PORT,
            "type": "internal",
            "tls": True,
            "authentication": {"type": "scram-sha-512"},
        }
    ]
    if config.plain_listener:
        listeners.append(
            {
                "name": STRIMZI_PLAIN_LISTENER,
                "port": STRIMZI_PLAIN_PORT,
                "type": "internal",
                "tls": False,
            }
        )
    return listeners


def strimzi_kafka(config: KafkaConfig) -> dict[str, Any]:
    """The KRaft `Kafka` resource: nodes come from the node pool, topics and users from CRs.

    Its images are named here, exactly as the operator would choose them for this version
    (mlops_platform/components/versions.py): the operator's own table of Kafka images holds
    tags only, while an image named in the resource is pinned by digest and moved to the
    mirror by the stack's image policy (mlops_platform/components/images) like any other."""
    local = config.strimzi
    operator_image = versions.STRIMZI_OPERATOR_IMAGE
    rf = config.internal_replication_factor
    min_isr = max(1, rf - 1)
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "Kafka",
        "metadata": {"name": config.cluster_name, "namespace": local.namespace},
        "spec": {
            "kafka": {
                "version": local.kafka_version,
                "image": versions.STRIMZI_KAFKA_IMAGES[local.kafka_version],
                "listeners": strimzi_listeners(local),
                "config": {
                    "auto.create.topics.enable": False,
                    "default.replication.factor": rf,
                    "min.insync.replicas": min_isr,
                    "offsets.topic.replication.factor": rf,
                    "transaction.state.log.replication.factor": rf,
                    "transaction.state.log.min.isr": min_isr,
                },
            },
            "entityOperator": {
                "topicOperator": {"image": operator_image},
                "userOperator": {"image": operator_image},
            },
        },
    }


def strimzi_node_pool(config: KafkaConfig) -> dict[str, Any]:
    """One pool of dual-role (controller + broker) nodes: KRaft without a separate quorum."""
    local = config.strimzi
    volume: dict[str, Any] = {
        "id": 0,
        "type": "persistent-claim",
        "size": f"{config.storage_gb}Gi",
        "deleteClaim": False,
        "kraftMetadata": "shared",
    }
    if local.storage_class is not None:
        volume["class"] = local.storage_class
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaNodePool",
        "metadata": _cr_metadata(STRIMZI_NODE_POOL, config.cluster_name, local.namespace),
        "spec": {
            "replicas": config.brokers,
            "roles": ["controller", "broker"],
            "storage": {"type": "jbod", "volumes": [volume]},
            "resources": container_resources(
                local.cpu_request, local.memory_request, local.memory_limit
            ),
        },
    }


def strimzi_topic(config: KafkaConfig, key: str) -> dict[str, Any]:
    topic = config.topics[key]
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaTopic",
        "metadata": _cr_metadata(key, config.cluster_name, config.strimzi.namespace),
        "spec": {
            "partitions": topic.partitions,
            "replicas": topic.replication_factor,
            "config": topic_configs(topic),
        },
    }


def strimzi_user(
    config: KafkaConfig, user: str, password_secret: str | None = None
) -> dict[str, Any]:
    """A SCRAM-SHA-512 user; the User Operator writes its password to Secret `<user>`.

    With `password_secret` (a Secret in the Kafka namespace, key `password`) the password is
    ours instead of generated: a client's copy of it can then be written by this program.
    """
    authentication: dict[str, Any] = {"type": "scram-sha-512"}
    if password_secret is not None:
        authentication["password"] = {
            "valueFrom": {"secretKeyRef": {"name": password_secret, "key": PASSWORD_KEY}}
        }
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaUser",
        "metadata": _cr_metadata(user, config.cluster_name, config.strimzi.namespace),
        "spec": {"authentication": authentication},
    }


def strimzi_bootstrap(config: KafkaConfig, port: int = STRIMZI_TLS_PORT) -> str:
    """Strimzi's bootstrap Service `<cluster>-kafka-bootstrap` in the cluster's namespace."""
    return (
        f"{config.cluster_name}-kafka-bootstrap.{config.strimzi.namespace}.svc.cluster.local:{port}"
    )


def strimzi_ca_secret(config: KafkaConfig) -> str:
    """Secret (key `ca.crt`) holding the cluster CA clients must trust on the TLS listener."""
    return f"{config.cluster_name}-cluster-ca-cert"


def strimzi_resources(config: KafkaConfig) -> list[dict[str, Any]]:
    """Every custom resource of the local cluster, in apply order."""
    return [
        strimzi_node_pool(config),
        strimzi_kafka(config),
        *(strimzi_topic(config, key) for key in config.topics),
        *(strimzi_user(config, user) for user in config.strimzi.users),
    ]


def topic_names(topics: Mapping[str, TopicConfig]) -> list[str]:
    return sorted(topics)


# --- clients ----------------------------------------------------------------------------------

# Connect, produce and consume on Managed Kafka clusters of the project (pulumi-gcp 10.2.0 has
# no cluster-level IAM resource for managedkafka, so the grant is project-wide).
GCP_MANAGED_KAFKA_CLIENT_ROLE = "roles/managedkafka.client"


@dataclass(frozen=True)
class KeyRef:
    """One key of a Secret or ConfigMap in the client's namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class KafkaClientWiring:
    """Everything a client pod in `namespace` needs to produce to / consume from the cluster.

    `bootstrap_servers` is a string or a `pulumi.Output[str]` (the brokers are known only once
    the cluster exists). SCRAM (local): `username`, the password in Secret `password_secret`
    and the cluster CA in ConfigMap `ca_config_map`, both in `namespace`. MSK IAM: the pod's
    IRSA role signs tokens for `aws_region`. GCP: the pod's Google service account.
    """

    namespace: str
    bootstrap_servers: Any
    security_protocol: Literal["SASL_SSL"]
    sasl_mechanism: Literal["OAUTHBEARER", "SCRAM-SHA-512"]
    auth_method: AuthMethod
    write_topics: tuple[str, ...] = ()
    read_topics: tuple[str, ...] = ()
    username: str | None = None
    password_secret: KeyRef | None = None
    ca_config_map: KeyRef | None = None
    aws_region: str | None = None

    def __post_init__(self) -> None:
        scram = self.auth_method == "scram-sha-512"
        credentials = (self.username, self.password_secret, self.ca_config_map)
        if scram and any(value is None for value in credentials):
            raise ValueError(
                "KafkaClientWiring: scram-sha-512 needs username, password_secret and ca_config_map"
            )
        if not scram and any(value is not None for value in credentials):
            raise ValueError(
                f"KafkaClientWiring: {self.auth_method} takes no username, password_secret or "
                "ca_config_map (IAM authenticates the pod's identity; public CAs)"
            )
        if (self.auth_method == "aws-iam") != (self.aws_region is not None):
            raise ValueError("KafkaClientWiring: aws_region goes with aws-iam, and only with it")


def check_client(
    config: KafkaConfig,
    name: str,
    namespace: str,
    write_topics: Sequence[str],
    read_topics: Sequence[str],
) -> None:
    """A client's name, namespace and topics, checked before anything is registered."""
    if not 1 <= len(name) <= 40 or not _KEY.match(name):
        raise ValueError(
            f"KafkaClient {name!r}: the name (the Strimzi user) must be at most 40 lowercase "
            "letters, digits or '-', starting and ending with a letter or digit"
        )
    check_dns_label(namespace, "KafkaClientArgs.namespace")
    if not write_topics and not read_topics:
        raise ValueError(
            f"KafkaClient {name!r}: write_topics or read_topics must name at least one topic"
        )
    for field_name, topics in (("write_topics", write_topics), ("read_topics", read_topics)):
        unknown = sorted(set(topics) - set(config.topics))
        if unknown:
            raise ValueError(
                f"KafkaClientArgs.{field_name}: unknown topic(s) "
                f"{', '.join(repr(t) for t in unknown)}; kafka.topics has "
                f"{', '.join(repr(t) for t in sorted(config.topics))}"
            )
    if name in config.strimzi.users:
        raise ValueError(
            f"KafkaClient {name!r}: kafka.strimzi.users already has a KafkaUser {name!r} "
            "(with an operator-generated password); drop it there or name the client otherwise"
        )


def strimzi_client_user(config: KafkaConfig, user: str) -> dict[str, Any]:
    """A client's KafkaUser: the password from our Secret, and Pulumi waits for `Ready`
    (pulumi-kubernetes' `pulumi.com/waitFor`). The User Operator runs only once the brokers
    are up, after Strimzi has written the cluster CA Secret, so a Ready user means the CA can
    be read."""
    doc = strimzi_user(config, user, password_secret=scram_source_secret(user))
    doc["metadata"]["annotations"] = {
        "pulumi.com/waitFor": "condition=Ready",
        "pulumi.com/timeoutSeconds": str(STRIMZI_READY_TIMEOUT_SECONDS),
    }
    return doc


def scram_source_secret(user: str) -> str:
    """Secret in the Kafka namespace the `KafkaUser`'s password is read from (the operator
    writes its own Secret `<user>`, so this one is named differently)."""
    return f"{user}-scram-password"


def client_password_secret(user: str) -> str:
    """The copy of the password in the client's namespace."""
    return f"kafka-{user}"


def client_ca_config_map(user: str) -> str:
    """The copy of the cluster CA certificate in the client's namespace (public: a ConfigMap)."""
    return f"kafka-{user}-ca"


def client_object_metadata(
    config: KafkaConfig, user: str, name: str, namespace: str
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {
            "app.kubernetes.io/name": "kafka-client",
            "app.kubernetes.io/instance": user,
            "app.kubernetes.io/managed-by": "mlops-platform",
        },
        "annotations": {"mlops.platform/kafka-cluster": config.cluster_name},
    }
