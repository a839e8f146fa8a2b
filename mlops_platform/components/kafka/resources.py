"""Kafka, resource layer: MSK, Managed Kafka or Strimzi, the same outputs everywhere."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlops_platform.components.cloud import AwsCloud, Cloud, GcpCloud
from mlops_platform.components.identity.resources import CloudGrant
from mlops_platform.components.kafka import model
from mlops_platform.components.kube_resources import depends_on_of
from mlops_platform.components.network import Network
from mlops_platform.components.versions import STRIMZI_KAFKA_OPERATOR

# The operator install creates the CRDs and waits for the operator Deployment; image pulls on a
# cold laptop cluster can take longer than Helm's default 5 minutes.
OPERATOR_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class KafkaClusterArgs:
    """Inputs of `KafkaCluster`.

    `network` (the cluster's, `mlops_platform.components.network.Network`) is required on the clouds: MSK's
    brokers go into its private subnets (the first 3) behind a group that admits only its
    client security groups; Managed Kafka's endpoints into its node subnetwork. `kubernetes` is
    required locally. `protect` (the root
    config's `protect_stateful`) protects and retains the cluster and its topics. `operator`:
    locally, the `StrimziOperator` when it is created in the same program (the platform creates
    it in an earlier layer, so leaves this out).

    Attributes:
        cloud: The stack's cloud: MSK (AWS), Managed Kafka (GCP) or Strimzi (local).
        config: The `kafka` settings: the backend block and the topics.
        protect: Protect and retain the cluster and its topics (the root `protect_stateful`).
        kubernetes: The provider of the Strimzi custom resources; required locally.
        network: The cluster's network: required on the clouds (MSK brokers go into its first three
            private subnets, Managed Kafka endpoints into its node subnetwork).
        operator: Locally, the `StrimziOperator` when it is created in the same program (the
            platform creates it in an earlier layer and leaves this out).
    """

    cloud: Cloud
    config: model.KafkaConfig
    protect: bool = False
    kubernetes: k8s.Provider | None = None
    network: Network | None = None
    operator: pulumi.Resource | None = None


@dataclass
class _Built:
    bootstrap_servers: pulumi.Output[str]
    topic_names: dict[str, pulumi.Output[str]]
    cluster_id: pulumi.Output[str]
    broker_security_group_id: pulumi.Output[str] | None = None
    ca_secret: pulumi.Output[str] | None = None
    plaintext_bootstrap_servers: pulumi.Output[str] | None = None
    user_secrets: dict[str, pulumi.Output[str]] = field(default_factory=dict)


class KafkaCluster(pulumi.ComponentResource):
    """A private, encrypted, authenticated Kafka cluster with the platform's topics.

    Attributes:
        bootstrap_servers: Bootstrap servers of the authenticated TLS listener (MSK IAM port 9098,
            Managed Kafka 9092, Strimzi 9093).
        topic_names: Topic key to topic name (GCP: topic id).
        security_protocol: What clients set as `security.protocol` (`SASL_SSL` everywhere).
        sasl_mechanism: What clients set as `sasl.mechanism`: `OAUTHBEARER` on the clouds,
            `SCRAM-SHA-512` locally.
        auth_method: How clients authenticate: `aws-iam`, `gcp-iam` or `scram-sha-512`.
        cluster_id: MSK cluster ARN, Managed Kafka cluster name, or `<ns>/<cluster>` locally.
        broker_security_group_id: AWS: the brokers' security group.
        ca_secret: Local: the Secret with the cluster CA certificate (the clouds use public CAs).
        plaintext_bootstrap_servers: Local with `plain_listener`: the unauthenticated in-cluster
            listener.
        user_secrets: Local: SCRAM user to the Secret holding its password.
    """

    bootstrap_servers: pulumi.Output[str]
    topic_names: dict[str, pulumi.Output[str]]
    security_protocol: pulumi.Output[str]
    sasl_mechanism: pulumi.Output[str]
    auth_method: pulumi.Output[str]
    cluster_id: pulumi.Output[str]
    broker_security_group_id: pulumi.Output[str] | None
    ca_secret: pulumi.Output[str] | None
    plaintext_bootstrap_servers: pulumi.Output[str] | None
    user_secrets: dict[str, pulumi.Output[str]]
    # What `KafkaClient` builds on (plain values, not stack outputs).
    cloud: Cloud
    config: model.KafkaConfig
    kubernetes: k8s.Provider | None

    def __init__(
        self, name: str, args: KafkaClusterArgs, opts: pulumi.ResourceOptions | None = None
    ):
        # Validate everything before registering anything: a bad config changes nothing.
        cloud_type = args.cloud.type
        model.check_cloud(args.config, cloud_type)
        if cloud_type in ("aws", "gcp"):
            if args.network is None:
                raise ValueError(
                    f"KafkaClusterArgs.network: the cluster's network is required on {cloud_type}"
                )
            args.network.require(cloud_type, "KafkaClusterArgs.network")
        if cloud_type == "aws":
            assert args.network is not None
            model.msk_client_subnets(len(args.network.private_subnet_ids), args.config.brokers)
        if cloud_type == "local" and args.kubernetes is None:
            raise ValueError(
                "KafkaClusterArgs.kubernetes: a Kubernetes provider is required locally"
            )
        if cloud_type == "local":
            model.strimzi_resources(args.config)  # rendered once up front

        super().__init__("mlops:kafka:KafkaCluster", name, None, opts)
        built = _BACKENDS[cloud_type](self, name, args)
        client = model.CLIENT_SETTINGS[cloud_type]
        self.cloud = args.cloud
        self.config = args.config
        self.kubernetes = args.kubernetes

        self.bootstrap_servers = built.bootstrap_servers
        self.topic_names = built.topic_names
        self.security_protocol = pulumi.Output.from_input(client.security_protocol)
        self.sasl_mechanism = pulumi.Output.from_input(client.sasl_mechanism)
        self.auth_method = pulumi.Output.from_input(client.auth_method)
        self.cluster_id = built.cluster_id
        self.broker_security_group_id = built.broker_security_group_id
        self.ca_secret = built.ca_secret
        self.plaintext_bootstrap_servers = built.plaintext_bootstrap_servers
        self.user_secrets = built.user_secrets
        self.register_outputs(
            {
                "bootstrap_servers": self.bootstrap_servers,
                "topic_names": self.topic_names,
                "security_protocol": self.security_protocol,
                "sasl_mechanism": self.sasl_mechanism,
                "auth_method": self.auth_method,
                "cluster_id": self.cluster_id,
                "broker_security_group_id": self.broker_security_group_id,
                "ca_secret": self.ca_secret,
                "plaintext_bootstrap_servers": self.plaintext_bootstrap_servers,
                "user_secrets": self.user_secrets,
            }
        )


def _stateful(parent: pulumi.Resource, protect: bool, **extra) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **extra)


# --- AWS --------------------------------------------------------------------------------------


def _build_aws(component: KafkaCluster, name: str, args: KafkaClusterArgs) -> _Built:
    cloud = args.cloud
    assert isinstance(cloud, AwsCloud)
    network = args.network
    assert network is not None
    config = args.config
    msk = config.msk
    tags = dict(cloud.tags)
    child = pulumi.ResourceOptions(parent=component)
    used = model.msk_client_subnets(len(network.private_subnet_ids), config.brokers)

    # The brokers' own group: no rule but SASL/IAM over TLS from the clients' groups.
    broker_sg = aws.ec2.SecurityGroup(
        f"{name}-brokers",
        description=f"MSK {config.cluster_name} brokers: IAM/TLS from the cluster's nodes only",
        vpc_id=network.vpc_id,
        revoke_rules_on_delete=True,
        tags=tags,
        opts=child,
    )
    ingress = [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-brokers-from-clients-{index}",
            security_group_id=broker_sg.id,
            referenced_security_group_id=client_sg,
            ip_protocol="tcp",
            from_port=model.MSK_IAM_PORT,
            to_port=model.MSK_IAM_PORT,
            description="Kafka SASL/IAM over TLS from platform clients",
            tags=tags,
            opts=child,
        )
        for index, client_sg in enumerate(network.client_security_group_ids)
    ]

    configuration = aws.msk.Configuration(
        f"{name}-configuration",
        description="Platform brokers: topics are created by the platform program only",
        kafka_versions=[msk.kafka_version],
        server_properties=model.msk_server_properties(config),
        opts=child,
    )

    depends: list[pulumi.Resource] = [*ingress]
    logging_info: aws.msk.ClusterLoggingInfoArgsDict | None = None
    if msk.broker_logs:
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-broker-logs",
            name=f"/aws/msk/{config.cluster_name}/brokers",
            retention_in_days=msk.broker_log_retention_days,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=component, retain_on_delete=args.protect),
        )
        depends.append(log_group)
        logging_info = {
            "broker_logs": {"cloudwatch_logs": {"enabled": True, "log_group": log_group.name}}
        }

    broker_info: aws.msk.ClusterBrokerNodeGroupInfoArgsDict = {
        "client_subnets": list(network.private_subnet_ids[:used]),
        "instance_type": msk.instance_type,
        "security_groups": [broker_sg.id],
        "connectivity_info": {"public_access": {"type": "DISABLED"}},
    }
    if not msk.express:  # Express brokers manage their own storage
        broker_info["storage_info"] = {"ebs_storage_info": {"volume_size": config.storage_gb}}

    encryption: aws.msk.ClusterEncryptionInfoArgsDict = {
        "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True}
    }
    if msk.kms_key is not None:
        encryption["encryption_at_rest_kms_key_arn"] = msk.kms_key

    cluster = aws.msk.Cluster(
        f"{name}-msk",
        cluster_name=config.cluster_name,
        kafka_version=msk.kafka_version,
        number_of_broker_nodes=config.brokers,
        broker_node_group_info=broker_info,
        client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
        encryption_info=encryption,
        configuration_info={"arn": configuration.arn, "revision": configuration.latest_revision},
        enhanced_monitoring=msk.enhanced_monitoring,
        logging_info=logging_info,
        tags=tags,
        opts=_stateful(
            component,
            args.protect,
            depends_on=depends,
        ),
    )

    # The MSK topic API (provisioned clusters, Kafka >= 3.6): no broker connectivity needed
    # from where `pulumi up` runs.
    names: dict[str, pulumi.Output[str]] = {}
    for key, topic in config.topics.items():
        resource = aws.msk.Topic(
            f"{name}-{key}",
            cluster_arn=cluster.arn,
            name=key,
            partition_count=topic.partitions,
            replication_factor=topic.replication_factor,
            configs=json.dumps(model.topic_configs_text(topic), sort_keys=True),
            opts=_stateful(component, args.protect),
        )
        names[key] = resource.name
    return _Built(
        bootstrap_servers=cluster.bootstrap_brokers_sasl_iam,
        topic_names=names,
        cluster_id=cluster.arn,
        broker_security_group_id=broker_sg.id,
    )


# --- GCP --------------------------------------------------------------------------------------


def _build_gcp(component: KafkaCluster, name: str, args: KafkaClusterArgs) -> _Built:
    cloud = args.cloud
    assert isinstance(cloud, GcpCloud)
    config = args.config
    managed = config.managed_kafka

    assert args.network is not None
    subnet = args.network.subnetwork_id
    gcp_config: gcp.managedkafka.ClusterGcpConfigArgsDict = {
        "access_config": {"network_configs": [{"subnet": subnet}]}
    }
    if managed.kms_key is not None:
        gcp_config["kms_key"] = managed.kms_key
    cluster = gcp.managedkafka.Cluster(
        f"{name}-cluster",
        cluster_id=config.cluster_name,
        project=cloud.project,
        location=cloud.region,
        kafka_version=managed.kafka_version,
        capacity_config={
            "vcpu_count": str(managed.vcpu_count),
            "memory_bytes": model.gcp_memory_bytes(managed.memory_gib),
        },
        gcp_config=gcp_config,
        rebalance_config={"mode": "AUTO_REBALANCE_ON_SCALE_UP"},
        labels=dict(cloud.labels),
        deletion_policy="PREVENT" if args.protect else "DELETE",
        opts=_stateful(component, args.protect),
    )
    names: dict[str, pulumi.Output[str]] = {}
    for key, topic in config.topics.items():
        resource = gcp.managedkafka.Topic(
            f"{name}-{key}",
            topic_id=key,
            cluster=cluster.cluster_id,
            project=cloud.project,
            location=cloud.region,
            partition_count=topic.partitions,
            replication_factor=topic.replication_factor,
            configs=model.topic_configs_text(topic),
            deletion_policy="PREVENT" if args.protect else "DELETE",
            opts=_stateful(component, args.protect),
        )
        names[key] = resource.topic_id
    return _Built(
        bootstrap_servers=cluster.bootstrap_address.apply(model.gcp_bootstrap),
        topic_names=names,
        cluster_id=cluster.name,
    )


# --- Local (Strimzi) --------------------------------------------------------------------------


def _build_local(component: KafkaCluster, name: str, args: KafkaClusterArgs) -> _Built:
    config = args.config
    local = config.strimzi
    # The operator and its CRDs are `StrimziOperator`, deployed by an earlier layer; in one
    # program (`args.operator`) every custom resource waits for it. The node pool and the Kafka
    # hold the data (PVCs), so they are the stateful ones.
    operator = [args.operator] if args.operator is not None else []
    after_operator = pulumi.ResourceOptions(
        parent=component, provider=args.kubernetes, depends_on=operator
    )
    stateful_after_operator = _stateful(
        component, args.protect, provider=args.kubernetes, depends_on=operator
    )

    def custom(resource_name: str, doc: dict, opts: pulumi.ResourceOptions):
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=doc["apiVersion"],
            kind=doc["kind"],
            metadata=doc["metadata"],
            spec=doc["spec"],
            opts=opts,
        )

    custom(f"{name}-node-pool", model.strimzi_node_pool(config), stateful_after_operator)
    kafka = custom(f"{name}-kafka", model.strimzi_kafka(config), stateful_after_operator)
    names: dict[str, pulumi.Output[str]] = {}
    for key in config.topics:
        custom(f"{name}-{key}", model.strimzi_topic(config, key), stateful_after_operator)
        names[key] = pulumi.Output.from_input(key)
    user_secrets: dict[str, pulumi.Output[str]] = {}
    for user in local.users:
        custom(f"{name}-user-{user}", model.strimzi_user(config, user), after_operator)
        user_secrets[user] = pulumi.Output.from_input(user)

    plain = (
        pulumi.Output.from_input(model.strimzi_bootstrap(config, model.STRIMZI_PLAIN_PORT))
        if local.plain_listener
        else None
    )
    return _Built(
        bootstrap_servers=pulumi.Output.from_input(model.strimzi_bootstrap(config)),
        topic_names=names,
        cluster_id=kafka.id,  # `<namespace>/<name>`
        ca_secret=pulumi.Output.from_input(model.strimzi_ca_secret(config)),
        plaintext_bootstrap_servers=plain,
        user_secrets=user_secrets,
    )


@dataclass(frozen=True)
class StrimziOperatorArgs:
    """Inputs of `StrimziOperator`: the `kafka` config (its `strimzi` block: the namespace of
    operator and cluster) and the Kubernetes provider.

    Attributes:
        config: The `kafka` settings (its `strimzi` backend block: the namespace of operator and
            cluster).
        kubernetes: The provider the operator's namespace and release are created with.
    """

    config: model.KafkaConfig
    kubernetes: k8s.Provider


class StrimziOperator(pulumi.ComponentResource):
    """The Strimzi operator (its namespace and Helm release), which brings the
    `kafka.strimzi.io` CRDs.

    It is planned in an earlier layer than the Kafka custom resources (`KafkaCluster` locally):
    a preview of a custom resource next to the release installing its CRD fails on a fresh
    cluster (pulumi-kubernetes #3027, #3176).

    Attributes:
        namespace: Namespace of the Strimzi operator (and of the local Kafka cluster).
    """

    namespace: pulumi.Output[str]

    def __init__(
        self, name: str, args: StrimziOperatorArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if args.kubernetes is None:
            raise ValueError("StrimziOperatorArgs.kubernetes: a Kubernetes provider is required")
        local = args.config.strimzi
        namespace_doc = model.strimzi_namespace(local)
        values = model.strimzi_operator_values()

        super().__init__("mlops:kafka:StrimziOperator", name, None, opts)
        # The children keep the names they had inside `KafkaCluster` (`<name>-namespace`,
        # `<name>-strimzi`). Moved here from the ml stack with `pulumi state move`, which
        # re-parents them to the stack, the alias adopts them (UPGRADING.md).
        moved = pulumi.ResourceOptions(
            parent=self,
            provider=args.kubernetes,
            aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)],
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=namespace_doc["metadata"], opts=moved
        )
        k8s.helm.v3.Release(
            f"{name}-strimzi",
            name=model.STRIMZI_RELEASE_NAME,
            chart=f"{STRIMZI_KAFKA_OPERATOR.repo}/{STRIMZI_KAFKA_OPERATOR.chart}",
            version=STRIMZI_KAFKA_OPERATOR.version,
            namespace=local.namespace,
            values=values,
            timeout=OPERATOR_TIMEOUT_SECONDS,
            opts=pulumi.ResourceOptions.merge(
                moved, pulumi.ResourceOptions(depends_on=[namespace])
            ),
        )
        self.namespace = namespace.metadata.name
        self.register_outputs({"namespace": self.namespace})


_BACKENDS: dict[str, Callable[[KafkaCluster, str, KafkaClusterArgs], _Built]] = {
    "aws": _build_aws,
    "gcp": _build_gcp,
    "local": _build_local,
}


# --- clients ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaClientArgs:
    """Inputs of `KafkaClient`: the cluster, the namespace of the client's pods and its topics.

    The namespace is not created here: pass its Namespace in `opts.depends_on` (it is applied
    to the Secret and ConfigMap copied there).

    Attributes:
        cluster: The platform's `KafkaCluster` the client connects to.
        namespace: Namespace of the client's pods; its Secret and the CA ConfigMap are copied there
            (locally).
        write_topics: Topic keys (of `kafka.topics`) the client produces to.
        read_topics: Topic keys the client consumes from.
    """

    cluster: KafkaCluster
    namespace: str
    write_topics: Sequence[str] = ()
    read_topics: Sequence[str] = ()


class KafkaClient(pulumi.ComponentResource):
    """One client of the platform's Kafka: its credentials and what its pods must set.

    `wiring` is what the client's pods need (bootstrap servers, protocol, mechanism; locally
    the SCRAM user, its password Secret and the cluster CA ConfigMap in the client's
    namespace). `grant` is what the client's workload identity must carry on the clouds
    (pass it in `WorkloadIdentityArgs.grants`): the MSK IAM policy for its topics on AWS,
    `roles/managedkafka.client` on GCP, nothing locally.

    Attributes:
        bootstrap_servers: Bootstrap servers the client's pods connect to.
        auth_method: How the client authenticates (`aws-iam`, `gcp-iam`, `scram-sha-512`).
        username: Local: the client's SCRAM user.
    """

    wiring: model.KafkaClientWiring
    grant: CloudGrant

    def __init__(
        self, name: str, args: KafkaClientArgs, opts: pulumi.ResourceOptions | None = None
    ):
        cluster = args.cluster
        config = cluster.config
        cloud_type = cluster.cloud.type
        write, read = tuple(sorted(args.write_topics)), tuple(sorted(args.read_topics))
        model.check_client(config, name, args.namespace, write, read)
        if cloud_type == "local" and cluster.kubernetes is None:
            raise ValueError(f"KafkaClient {name!r}: the cluster has no Kubernetes provider")

        super().__init__("mlops:kafka:KafkaClient", name, None, opts)
        settings = model.CLIENT_SETTINGS[cloud_type]
        common: dict[str, Any] = {
            "namespace": args.namespace,
            "security_protocol": settings.security_protocol,
            "sasl_mechanism": settings.sasl_mechanism,
            "auth_method": settings.auth_method,
            "write_topics": write,
            "read_topics": read,
        }
        if cloud_type == "aws":
            policy = cluster.cluster_id.apply(
                lambda arn: json.dumps(model.msk_client_policy(arn, list(write), list(read)))
            )
            self.grant = CloudGrant(aws_policy_json=policy)
            assert isinstance(cluster.cloud, AwsCloud)
            self.wiring = model.KafkaClientWiring(
                bootstrap_servers=cluster.bootstrap_servers,
                aws_region=cluster.cloud.region,
                **common,
            )
        elif cloud_type == "gcp":
            self.grant = CloudGrant(gcp_project_roles=(model.GCP_MANAGED_KAFKA_CLIENT_ROLE,))
            self.wiring = model.KafkaClientWiring(
                bootstrap_servers=cluster.bootstrap_servers, **common
            )
        else:
            self.grant = CloudGrant()
            self.wiring = _scram_client(self, name, args, opts, common)
        self.register_outputs(
            {
                "bootstrap_servers": self.wiring.bootstrap_servers,
                "auth_method": self.wiring.auth_method,
                "username": self.wiring.username,
            }
        )


def _scram_client(
    component: KafkaClient,
    name: str,
    args: KafkaClientArgs,
    opts: pulumi.ResourceOptions | None,
    common: dict,
) -> model.KafkaClientWiring:
    """Strimzi: a KafkaUser whose password we generate, its copy and the cluster CA's copy in
    the client's namespace (Secrets are namespaced: pods cannot mount the Kafka namespace's)."""
    cluster = args.cluster
    config = cluster.config
    kafka_namespace = config.strimzi.namespace
    provider = cluster.kubernetes
    # The user and its source Secret wait for the whole cluster (operator, CRDs, Kafka Ready);
    # the copies in the client's namespace also for that namespace (the caller's depends_on).
    after_cluster = pulumi.ResourceOptions(
        parent=component, provider=provider, depends_on=[cluster]
    )
    in_client_namespace = pulumi.ResourceOptions(
        parent=component, provider=provider, depends_on=[cluster, *depends_on_of(opts)]
    )

    generated = random.RandomPassword(
        f"{name}-password",
        length=32,
        special=False,
        opts=pulumi.ResourceOptions(parent=component),
    )
    password: pulumi.Output[str] = pulumi.Output.secret(generated.result)
    source_name = model.scram_source_secret(name)
    source = k8s.core.v1.Secret(  # type: ignore[call-overload]  # metadata: the model's plain dict
        f"{name}-password-source",
        metadata=model.client_object_metadata(config, name, source_name, kafka_namespace),
        type="Opaque",
        # pulumi's Input[U]: mypy solves U as Never for an Output argument
        string_data=pulumi.Output.secret(password.apply(lambda p: {model.PASSWORD_KEY: p})),  # type: ignore[arg-type]
        opts=after_cluster,
    )
    user_doc = model.strimzi_client_user(config, name)
    user = k8s.apiextensions.CustomResource(
        f"{name}-user",
        api_version=user_doc["apiVersion"],
        kind=user_doc["kind"],
        metadata=user_doc["metadata"],
        spec=user_doc["spec"],
        opts=pulumi.ResourceOptions.merge(
            after_cluster, pulumi.ResourceOptions(depends_on=[source])
        ),
    )
    password_name = model.client_password_secret(name)
    password_copy = k8s.core.v1.Secret(  # type: ignore[call-overload]  # metadata: the model's plain dict
        f"{name}-password-copy",
        metadata=model.client_object_metadata(config, name, password_name, args.namespace),
        type="Opaque",
        # pulumi's Input[U]: mypy solves U as Never for an Output argument
        string_data=pulumi.Output.secret(password.apply(lambda p: {model.PASSWORD_KEY: p})),  # type: ignore[arg-type]
        opts=in_client_namespace,
    )

    # Strimzi generates the cluster CA into `<cluster>-cluster-ca-cert`. It is read once the
    # user is Ready (see model.strimzi_client_user); the id comes from the user, so on a first
    # preview (nothing exists yet) it is unknown and the engine skips the read instead of
    # failing on a missing Secret.
    ca_secret = model.strimzi_ca_secret(config)
    cluster_ca = k8s.core.v1.Secret.get(
        f"{name}-cluster-ca",
        user.id.apply(lambda _: f"{kafka_namespace}/{ca_secret}"),
        opts=pulumi.ResourceOptions.merge(after_cluster, pulumi.ResourceOptions(depends_on=[user])),
    )
    # The CA certificate is public: unsecret it, a ConfigMap is the usual home of trust bundles.
    certificate = pulumi.Output.unsecret(
        cluster_ca.data.apply(lambda data: base64.b64decode(data[model.CA_CERT_KEY]).decode())
    )
    ca_name = model.client_ca_config_map(name)
    ca_copy = k8s.core.v1.ConfigMap(  # type: ignore[call-overload]  # metadata: the model's plain dict
        f"{name}-ca",
        metadata=model.client_object_metadata(config, name, ca_name, args.namespace),
        data=certificate.apply(lambda pem: {model.CA_CERT_KEY: pem}),
        opts=in_client_namespace,
    )
    # Pods that use the wiring depend on the copies through the bootstrap servers value.
    bootstrap = pulumi.Output.all(cluster.bootstrap_servers, password_copy.id, ca_copy.id).apply(
        lambda values: values[0]
    )
    return model.KafkaClientWiring(
        bootstrap_servers=bootstrap,
        username=name,
        password_secret=model.KeyRef(password_name, model.PASSWORD_KEY),
        ca_config_map=model.KeyRef(ca_name, model.CA_CERT_KEY),
        **common,
    )
