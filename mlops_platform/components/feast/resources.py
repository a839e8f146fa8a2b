"""Feast feature store, resource layer: the Redis online store per cloud and the rendered
Kubernetes objects of `model.render` as typed resources.

The cloud selects how the online store is built (`_ONLINE_STORES`): an ElastiCache for Valkey
replication group in the cluster's private subnets (TLS, AUTH token, at-rest encryption), a
Memorystore for Redis instance on the cluster's network (TLS with server authentication, AUTH),
or the StatefulSet of the pure layer locally. The password reaches the cluster only inside the
online-store Secret and leaves the component only as `Output.secret`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlops_platform.components import naming
from mlops_platform.components.cloud import AwsCloud, Cloud, GcpCloud
from mlops_platform.components.feast import model, repo
from mlops_platform.components.kube_resources import depends_on_of, in_cluster_store
from mlops_platform.components.network import Network
from mlops_platform.components.storage.model import default_bucket_prefix
from mlops_platform.components.versions import ELASTICACHE_VALKEY_VERSION, MEMORYSTORE_REDIS_VERSION


class FeatureBuckets(Protocol):
    """What the store needs from the object store: `mlops_platform.components.storage.ObjectStore` fits."""

    @property  # read-only, so the ml layer's frozen `mlops_platform.handoff.StorageHandoff` fits too
    def bucket_uris(self) -> Mapping[str, pulumi.Output[str]]: ...


@dataclass(frozen=True)
class FeatureStoreArgs:
    """Inputs of `FeatureStore`.

    `network` is the cluster's (`KubernetesCluster.network`): required on AWS and GCP, where
    the online store lives in it, None locally. The namespace and the service account (a
    workload identity's) are not created here: pass the Namespace and the `WorkloadIdentity`
    in `opts.depends_on`; it is applied to every Kubernetes object. `protect` (the root
    `protect_stateful`) protects and retains the online store.

    Attributes:
        cloud: The stack's cloud: picks the online store (ElastiCache, Memorystore or in-cluster
            Redis).
        config: The `feast` settings.
        storage: The object store's buckets (`ObjectStore`): the registry and offline data go there.
        kubernetes: The provider every Kubernetes object is created with.
        network: The cluster's network (`KubernetesCluster.network`): required on AWS and GCP, where
            the online store lives in it; None locally.
        protect: Protect and retain the online store (the root `protect_stateful`).
    """

    cloud: Cloud
    config: model.FeastConfig
    storage: FeatureBuckets
    kubernetes: k8s.Provider
    network: Network | None = None
    protect: bool = False


@dataclass
class _OnlineStore:
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    password: pulumi.Output[str]
    ca_certificate: pulumi.Output[str] | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class FeatureStore(pulumi.ComponentResource):
    """Feast: registry and offline data in the object store, Redis online store, feature
    server in the cluster.

    Attributes:
        feature_server_url: In-cluster URL of the feature server
            (`http://feast-feature-server.<ns>.svc.cluster.local:6566`).
        online_store_host: Host of the Redis online store.
        online_store_port: Port of the Redis online store.
        online_store_password: Password of the online store (AUTH token).
        registry_path: URI of Feast's registry file in the object store.
        offline_data_uri: URI under which the offline Parquet data lives.
        feature_store_yaml: The rendered `feature_store.yaml` (the password is a `${...}` reference,
            never inline).
        namespace: Namespace of the feature server.
        config_map_name: ConfigMap holding `feature_store.yaml`.
        secret_name: Secret holding the online store's password.
    """

    feature_server_url: pulumi.Output[str]
    online_store_host: pulumi.Output[str]
    online_store_port: pulumi.Output[int]
    online_store_password: pulumi.Output[str]
    registry_path: pulumi.Output[str]
    offline_data_uri: pulumi.Output[str]
    feature_store_yaml: pulumi.Output[str]
    namespace: pulumi.Output[str]
    config_map_name: pulumi.Output[str]
    secret_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        # Validate everything before registering anything: a bad config changes nothing.
        config = args.config
        cloud = args.cloud
        if args.kubernetes is None:
            raise ValueError("FeatureStoreArgs.kubernetes: a Kubernetes provider is required")
        bucket = config.registry.bucket
        if bucket not in args.storage.bucket_uris:
            known = ", ".join(repr(k) for k in sorted(args.storage.bucket_uris)) or "none"
            raise ValueError(
                f"feast.registry.bucket: unknown bucket {bucket!r}; the store has {known}"
            )
        if cloud.type in ("aws", "gcp"):
            if args.network is None:
                raise ValueError(
                    "FeatureStoreArgs.network: the cluster's network is required on "
                    f"{cloud.type} (ElastiCache, Memorystore)"
                )
            args.network.require(cloud.type, "FeatureStoreArgs.network")
        identifier = None
        if cloud.type != "local":
            managed = config.elasticache if cloud.type == "aws" else config.memorystore
            identifier = managed.identifier or model.default_identifier(
                default_bucket_prefix(*naming.environment())
            )
        aws_region = cloud.region if isinstance(cloud, AwsCloud) else None
        # Rendered (and so checked) before anything is registered; rendered again below with
        # the bucket URI and the Redis address, which are provider Outputs.
        placeholder_ca = "placeholder" if cloud.type == "gcp" else None
        rendered = model.render(
            config,
            cloud.type,
            model.PLACEHOLDER_BUCKET_URI,
            model.PLACEHOLDER_REDIS_HOST,
            model.REDIS_PORT,
            aws_region,
            placeholder_ca,
        )

        super().__init__("mlops:feast:FeatureStore", name, None, opts)
        # Children do not inherit the component's depends_on (the Namespace, the identity).
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
        )

        online = _ONLINE_STORES[cloud.type](self, name, args, identifier)

        string_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            online.password.apply(lambda password: _secret_data(config, cloud.type, password))
        )
        secret = k8s.core.v1.Secret(  # type: ignore[call-overload]  # metadata: the model's plain dict
            f"{name}-online-store",
            metadata=model.secret_metadata(config),
            type="Opaque",
            string_data=string_data,
            opts=in_namespace,
        )

        waits_for: list[pulumi.Resource] = [secret, *online.depends_on]
        if cloud.type == "local":
            waits_for.append(_local_redis(name, rendered, in_namespace, secret, args.protect))

        bucket_uri = args.storage.bucket_uris[bucket]
        ca = online.ca_certificate if online.ca_certificate is not None else None
        data = pulumi.Output.all(bucket_uri, online.host, online.port, ca).apply(
            lambda v: model.render(
                config, cloud.type, v[0], v[1], int(v[2]), aws_region, v[3]
            ).config_map["data"]
        )
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-feature-store",
            metadata=rendered.config_map["metadata"],
            data=data,
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=online.depends_on)
            ),
        )
        # Only the checksum waits for the endpoints: the rest of the spec stays known at
        # preview, where policies and reviewers read it.
        spec = model.deployment(config, cloud.type, aws_region)["spec"]
        template_metadata = spec["template"]["metadata"]
        template_metadata["annotations"] = {
            **template_metadata.get("annotations", {}),
            model.CHECKSUM_ANNOTATION: data.apply(model.config_checksum),
        }
        k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=rendered.deployment["metadata"],
            spec=spec,
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=[config_map, *waits_for])
            ),
        )
        svc = k8s.core.v1.Service(
            f"{name}-service",
            metadata=rendered.service["metadata"],
            spec=rendered.service["spec"],
            opts=in_namespace,
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=rendered.pod_disruption_budget["metadata"],
            spec=rendered.pod_disruption_budget["spec"],
            opts=in_namespace,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-server",
            metadata=rendered.network_policy["metadata"],
            spec=rendered.network_policy["spec"],
            opts=in_namespace,
        )

        offline_data_uri = bucket_uri.apply(
            lambda uri: model.offline_data_uri(uri, config.offline_store.data_prefix)
        )
        _feature_repo(
            name,
            config,
            cloud.type,
            aws_region,
            offline_data_uri,
            data,
            in_namespace,
            [config_map, *waits_for],
        )

        namespace = config.namespace
        self.namespace = pulumi.Output.from_input(namespace)
        self.feature_server_url = svc.metadata.name.apply(
            lambda _: model.feature_server_url(namespace)
        )
        self.online_store_host = online.host
        self.online_store_port = online.port
        self.online_store_password = pulumi.Output.secret(online.password)
        self.registry_path = bucket_uri.apply(
            lambda uri: model.registry_uri(uri, config.registry.path)
        )
        self.offline_data_uri = offline_data_uri
        self.feature_store_yaml = config_map.data.apply(lambda d: d[model.FEATURE_STORE_YAML_KEY])
        self.config_map_name = config_map.metadata.name
        self.secret_name = secret.metadata.name
        self.register_outputs(
            {
                "feature_server_url": self.feature_server_url,
                "online_store_host": self.online_store_host,
                "online_store_port": self.online_store_port,
                "online_store_password": self.online_store_password,
                "registry_path": self.registry_path,
                "offline_data_uri": self.offline_data_uri,
                "feature_store_yaml": self.feature_store_yaml,
                "namespace": self.namespace,
                "config_map_name": self.config_map_name,
                "secret_name": self.secret_name,
            }
        )


def _secret_data(config: model.FeastConfig, cloud_type: str, password: str) -> dict[str, str]:
    data = {model.REDIS_PASSWORD_KEY: password}
    if cloud_type == "local":
        data[model.REDIS_CONF_KEY] = model.redis_conf(password, config.redis.memory_limit)
    return data


def _stateful(parent: pulumi.Resource, protect: bool, **extra) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **extra)


def _generated_password(component: FeatureStore, name: str) -> pulumi.Output[str]:
    generated = random.RandomPassword(
        f"{name}-redis-password",
        length=32,
        # ElastiCache AUTH tokens refuse '/', '"' and '@'; Feast splits its connection string
        # on ',' and '='; the local redis.conf is whitespace-separated.
        special=False,
        opts=pulumi.ResourceOptions(parent=component),
    )
    return pulumi.Output.secret(generated.result)


# --- AWS: ElastiCache for Valkey --------------------------------------------------------------


def _aws_online_store(
    component: FeatureStore, name: str, args: FeatureStoreArgs, identifier: str | None
) -> _OnlineStore:
    cloud = args.cloud
    network = args.network
    assert isinstance(cloud, AwsCloud) and network is not None and identifier
    online = args.config.elasticache
    tags = dict(cloud.tags)
    child = pulumi.ResourceOptions(parent=component)
    password = _generated_password(component, name)

    security_group = aws.ec2.SecurityGroup(
        f"{name}-redis",
        vpc_id=network.vpc_id,
        description=f"Feast online store {identifier}: Redis from the cluster only",
        tags=tags,
        opts=child,
    )
    # No egress rule: the cache only answers. One ingress rule, from the cluster's group.
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-redis-from-cluster",
        security_group_id=security_group.id,
        referenced_security_group_id=network.cluster_security_group_id,
        ip_protocol="tcp",
        from_port=model.REDIS_PORT,
        to_port=model.REDIS_PORT,
        description="Redis (TLS) from the EKS cluster",
        tags=tags,
        opts=child,
    )
    subnet_group = aws.elasticache.SubnetGroup(
        f"{name}-redis",
        name=identifier,
        subnet_ids=list(network.private_subnet_ids),
        description=f"Feast online store {identifier}: the cluster's private subnets",
        tags=tags,
        opts=child,
    )
    highly_available = online.replicas >= 1
    group = aws.elasticache.ReplicationGroup(
        f"{name}-redis",
        replication_group_id=identifier,
        description=f"Feast online store ({identifier})",
        engine="valkey",
        engine_version=ELASTICACHE_VALKEY_VERSION,
        auto_minor_version_upgrade=True,
        node_type=online.node_type,
        num_cache_clusters=1 + online.replicas,
        automatic_failover_enabled=highly_available,
        multi_az_enabled=highly_available,
        port=model.REDIS_PORT,
        subnet_group_name=subnet_group.name,
        security_group_ids=[security_group.id],
        at_rest_encryption_enabled=True,
        kms_key_id=online.kms_key_arn,
        transit_encryption_enabled=True,
        transit_encryption_mode="required",
        auth_token=password,
        snapshot_retention_limit=online.snapshot_retention_days,
        final_snapshot_identifier=f"{identifier}-final" if args.protect else None,
        tags=tags,
        opts=_stateful(component, args.protect),
    )
    return _OnlineStore(
        host=group.primary_endpoint_address,
        port=pulumi.Output.from_input(model.REDIS_PORT),
        password=password,
        depends_on=[group],
    )


# --- GCP: Memorystore for Redis ---------------------------------------------------------------


def _gcp_online_store(
    component: FeatureStore, name: str, args: FeatureStoreArgs, identifier: str | None
) -> _OnlineStore:
    cloud = args.cloud
    network = args.network
    assert isinstance(cloud, GcpCloud) and network is not None and identifier
    online = args.config.memorystore
    protect = args.protect if online.deletion_protection is None else online.deletion_protection
    replicas = online.replicas
    instance = gcp.redis.Instance(
        f"{name}-redis",
        name=identifier,
        project=network.project,
        region=network.region,
        display_name=f"Feast online store ({identifier})",
        tier="STANDARD_HA" if replicas >= 1 else "BASIC",
        memory_size_gb=online.memory_size_gb,
        # Read replicas beyond the one failover replica need the read-replicas mode.
        read_replicas_mode="READ_REPLICAS_ENABLED" if replicas > 1 else None,
        replica_count=replicas if replicas > 1 else None,
        redis_version=MEMORYSTORE_REDIS_VERSION,
        authorized_network=network.network_id,
        # Its own peering with an auto-allocated range: no dependency on (or conflict with)
        # the network's private services access that Cloud SQL uses.
        connect_mode="DIRECT_PEERING",
        auth_enabled=True,
        transit_encryption_mode="SERVER_AUTHENTICATION",
        persistence_config={"persistence_mode": "RDB", "rdb_snapshot_period": "TWENTY_FOUR_HOURS"}
        if online.persistence
        else {"persistence_mode": "DISABLED"},
        deletion_protection=protect,
        labels=dict(cloud.labels),
        opts=_stateful(component, args.protect),
    )
    return _OnlineStore(
        host=instance.host,
        # 6378 with in-transit encryption.
        port=instance.port,
        password=pulumi.Output.secret(instance.auth_string),
        # typed optional, but an instance with in-transit encryption always reports its CA
        ca_certificate=instance.server_ca_certs.apply(lambda certs: certs[0].cert),  # type: ignore[arg-type, return-value]
        depends_on=[instance],
    )


# --- Local: Redis in the cluster --------------------------------------------------------------


def _local_online_store(
    component: FeatureStore, name: str, args: FeatureStoreArgs, identifier: str | None
) -> _OnlineStore:
    # The StatefulSet needs the Secret first, so it is created after it (`_local_redis`);
    # here only the password and the address, a fixed Service name.
    return _OnlineStore(
        host=pulumi.Output.from_input(model.redis_host(args.config.namespace)),
        port=pulumi.Output.from_input(model.REDIS_PORT),
        password=_generated_password(component, name),
    )


def _local_redis(
    name: str,
    rendered: model.Rendered,
    in_namespace: pulumi.ResourceOptions,
    secret: k8s.core.v1.Secret,
    protect: bool,
) -> k8s.apps.v1.StatefulSet:
    assert rendered.redis_statefulset and rendered.redis_service
    assert rendered.redis_network_policy
    return in_cluster_store(
        f"{name}-redis",
        statefulset=rendered.redis_statefulset,
        service=rendered.redis_service,
        network_policy=rendered.redis_network_policy,
        opts=in_namespace,
        credentials=secret,
        protect=protect,
    )


_ONLINE_STORES: dict[str, Callable[..., _OnlineStore]] = {
    "aws": _aws_online_store,
    "gcp": _gcp_online_store,
    "local": _local_online_store,
}


# --- the churn feature repository -------------------------------------------------------------


def _feature_repo(
    name: str,
    config: model.FeastConfig,
    cloud_type: model.CloudType,
    aws_region: str | None,
    offline_data_uri: pulumi.Output[str],
    store_data: pulumi.Output[dict[str, str]],
    in_namespace: pulumi.ResourceOptions,
    waits_for: list[pulumi.Resource],
) -> None:
    """The definitions' ConfigMap, the `feast apply` Job (named by the digest of what it
    applies; `pulumi up` waits for it to complete, so a definition Feast refuses fails the
    update), the materialization CronJob and their NetworkPolicy."""
    config_map = repo.repo_config_map(config, "")
    repo_data = offline_data_uri.apply(lambda uri: repo.repo_config_map(config, uri)["data"])
    repo_map = k8s.core.v1.ConfigMap(
        f"{name}-feature-repo",
        metadata=config_map["metadata"],
        data=repo_data,
        opts=in_namespace,
    )
    after = pulumi.ResourceOptions.merge(
        in_namespace, pulumi.ResourceOptions(depends_on=[repo_map, *waits_for])
    )
    job = pulumi.Output.all(repo_data, store_data).apply(
        lambda v: repo.apply_job(config, cloud_type, repo.repo_digest(v[0], v[1]), aws_region)
    )
    k8s.batch.v1.Job(
        f"{name}-apply",
        metadata=job.apply(lambda j: j["metadata"]),
        spec=job.apply(lambda j: j["spec"]),
        # A new digest is a new name: Pulumi replaces the Job (its template is immutable).
        opts=after,
    )
    cron = repo.materialize_cron_job(config, cloud_type, aws_region)
    k8s.batch.v1.CronJob(
        f"{name}-materialize",
        metadata=cron["metadata"],
        spec=cron["spec"],
        opts=after,
    )
    policy = repo.jobs_network_policy(config)
    k8s.networking.v1.NetworkPolicy(
        f"{name}-jobs",
        metadata=policy["metadata"],
        spec=policy["spec"],
        opts=in_namespace,
    )
