"""MLflow tracking server, resource layer: the backend database per cloud and the rendered
Kubernetes objects of `model.render` as typed resources.

The cloud selects how the PostgreSQL backend store is built (`_DATABASES`): RDS in the
cluster's private subnets, Cloud SQL on a private IP of the cluster's network, or the
StatefulSet of the pure layer locally. Every password is a `random.RandomPassword`; it reaches
the cluster only inside Secrets, and leaves the component only as `Output.secret`.

Client users (`config.clients`): a password each, a Secret in the client's namespace, and a Job
that creates or updates the users through MLflow's API as the admin once the server runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlops_platform.components import naming
from mlops_platform.components.cloud import AwsCloud, Cloud, GcpCloud
from mlops_platform.components.kube_resources import depends_on_of, in_cluster_store
from mlops_platform.components.mlflow import model
from mlops_platform.components.network import Network
from mlops_platform.components.storage.model import default_bucket_prefix
from mlops_platform.components.versions import POSTGRES_MAJOR_VERSION

# Cloud SQL keeps point-in-time-recovery logs at most 7 days (Enterprise edition).
GCP_MAX_LOG_RETENTION_DAYS = 7
SERVICE_NETWORKING = "servicenetworking.googleapis.com"


class ArtifactStore(Protocol):
    """What the server needs from the object store: `mlops_platform.components.storage.ObjectStore` fits."""

    @property  # read-only, so the ml layer's frozen `mlops_platform.handoff.StorageHandoff` fits too
    def bucket_uris(self) -> Mapping[str, pulumi.Output[str]]: ...


@dataclass(frozen=True)
class TrackingServerArgs:
    """Inputs of `TrackingServer`.

    `storage` is the object store holding `config.artifact_bucket`. The namespace and the
    service account (`config.service_account`, a workload identity's) are not created here:
    pass the Namespace and the `WorkloadIdentity` in `opts.depends_on`; it is applied to every
    Kubernetes object. `protect` (the root `protect_stateful`) protects and retains the
    database and, by default, turns on its deletion protection and final snapshot.

    Attributes:
        cloud: The stack's cloud: picks the database (RDS, Cloud SQL or in-cluster PostgreSQL).
        config: The `mlflow` settings.
        storage: The object store holding `config.artifact_bucket`.
        kubernetes: The provider every Kubernetes object is created with.
        protect: Protect and retain the database; by default also its deletion protection and final
            snapshot (the root `protect_stateful`).
        network: The cluster's network: required on AWS and GCP (the database's subnets or private
            IP); None locally.
        private_services_access: GCP: an existing private services connection of the network to wait
            for; None: one is created.
        private_services_prefix_length: GCP: prefix length of the range reserved for the private
            services connection when one is created.
    """

    cloud: Cloud
    config: model.MlflowConfig
    storage: ArtifactStore
    kubernetes: k8s.Provider
    protect: bool = False
    network: Network | None = None
    # GCP: Cloud SQL reaches the network through private services access, one peering per
    # network, created here unless an existing `gcp.servicenetworking.Connection` is given.
    private_services_access: pulumi.Resource | None = None
    private_services_prefix_length: int = 20


@dataclass
class _Database:
    host: pulumi.Output[str]
    ssl_mode: model.SslMode
    depends_on: list[pulumi.Resource]


class TrackingServer(pulumi.ComponentResource):
    """MLflow tracking server and model registry on PostgreSQL, artifacts in the object store.

    Attributes:
        tracking_uri: In-cluster tracking URI (`http://mlflow.<ns>.svc.cluster.local:5000`).
        namespace: Namespace of the tracking server.
        service_name: The tracking server's Service.
        database_endpoint: The PostgreSQL endpoint (`<host>:5432`).
        admin_username: The MLflow admin user.
        admin_password: The MLflow admin password (generated).
        credentials_secret_name: Secret with the admin credentials in the server's namespace.
        clients: Client key to `{namespace, secret_name, username}`, once the user-provisioning Job
            completed; `{}` without clients.
    """

    tracking_uri: pulumi.Output[str]
    namespace: pulumi.Output[str]
    service_name: pulumi.Output[str]
    database_endpoint: pulumi.Output[str]
    admin_username: pulumi.Output[str] | None
    admin_password: pulumi.Output[str] | None
    credentials_secret_name: pulumi.Output[str]
    clients: pulumi.Output[dict[str, dict[str, str]]]

    def __init__(
        self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        # Validate everything before registering anything: a bad config changes nothing.
        config = args.config
        cloud = args.cloud
        if args.kubernetes is None:
            raise ValueError("TrackingServerArgs.kubernetes: a Kubernetes provider is required")
        if config.artifact_bucket not in args.storage.bucket_uris:
            known = ", ".join(repr(k) for k in sorted(args.storage.bucket_uris)) or "none"
            raise ValueError(
                f"mlflow.artifact_bucket: unknown bucket {config.artifact_bucket!r}; the store "
                f"has {known}"
            )
        if cloud.type in ("aws", "gcp"):
            if args.network is None:
                raise ValueError(
                    "TrackingServerArgs.network: the cluster's network is required on "
                    f"{cloud.type} (RDS subnets and security group, Cloud SQL's private IP)"
                )
            args.network.require(cloud.type, "TrackingServerArgs.network")
        identifier = None
        if cloud.type != "local":
            managed = config.rds if cloud.type == "aws" else config.cloud_sql
            identifier = managed.identifier or model.default_identifier(
                default_bucket_prefix(*naming.environment())
            )
        aws_region = cloud.region if isinstance(cloud, AwsCloud) else None
        # Rendered (and so checked) before anything is registered. The bucket URI is an
        # Output, so the Deployment's spec is rendered again with it below; nothing else in
        # the objects depends on it.
        rendered = model.render(config, cloud.type, model.PLACEHOLDER_ARTIFACTS_URI, aws_region)

        super().__init__("mlops:mlflow:TrackingServer", name, None, opts)
        # Children do not inherit the component's depends_on (the Namespace, the identity).
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
        )

        database_password = random.RandomPassword(
            f"{name}-database-password",
            length=32,
            # URL- and ini-safe, and RDS refuses '/', '@', '"' and spaces.
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        db_password: pulumi.Output[str] = pulumi.Output.secret(database_password.result)
        database = _DATABASES[cloud.type](self, name, args, identifier, db_password)

        admin_password: pulumi.Output[str] | None = None
        flask_secret_key: pulumi.Output[str] | None = None
        if config.auth.enabled:
            generated = random.RandomPassword(
                f"{name}-admin-password",
                length=32,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            admin_password = pulumi.Output.secret(generated.result)
            key = random.RandomPassword(
                f"{name}-flask-secret-key",
                length=64,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            flask_secret_key = pulumi.Output.secret(key.result)

        string_data: pulumi.Output[dict[str, str]] = pulumi.Output.secret(
            pulumi.Output.all(database.host, db_password, admin_password, flask_secret_key).apply(
                lambda v: _credentials(
                    config, cloud.type, database.ssl_mode, v[0], v[1], v[2], v[3]
                )
            )
        )
        secret = k8s.core.v1.Secret(  # type: ignore[call-overload]  # metadata: the model's plain dict
            f"{name}-credentials",
            metadata=model.credentials_secret_metadata(config),
            type="Opaque",
            string_data=string_data,
            opts=in_namespace,
        )

        waits_for: list[pulumi.Resource] = [secret, *database.depends_on]
        if cloud.type == "local":
            postgres = _local_postgres(name, rendered, in_namespace, secret, args.protect)
            waits_for.append(postgres)

        artifacts = args.storage.bucket_uris[config.artifact_bucket].apply(
            lambda uri: model.artifacts_destination(uri, config.artifact_prefix)
        )
        spec = artifacts.apply(
            lambda uri: model.deployment(config, cloud.type, uri, aws_region)["spec"]
        )
        server = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=rendered.deployment["metadata"],
            spec=spec,
            opts=pulumi.ResourceOptions.merge(
                in_namespace, pulumi.ResourceOptions(depends_on=waits_for)
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
            f"{name}-ingress",
            metadata=rendered.network_policy["metadata"],
            spec=rendered.network_policy["spec"],
            opts=in_namespace,
        )

        clients = _client_users(name, config, rendered, in_namespace, [server, svc, secret])

        namespace = config.namespace
        self.namespace = pulumi.Output.from_input(namespace)
        self.service_name = svc.metadata.name
        self.tracking_uri = svc.metadata.name.apply(lambda _: model.tracking_uri(namespace))
        self.database_endpoint = database.host.apply(lambda host: f"{host}:{model.POSTGRES_PORT}")
        self.admin_username = (
            pulumi.Output.from_input(config.auth.admin_username) if config.auth.enabled else None
        )
        self.admin_password = admin_password
        self.credentials_secret_name = secret.metadata.name
        self.clients = clients
        self.register_outputs(
            {
                "tracking_uri": self.tracking_uri,
                "namespace": self.namespace,
                "service_name": self.service_name,
                "database_endpoint": self.database_endpoint,
                "admin_username": self.admin_username,
                "admin_password": self.admin_password,
                "credentials_secret_name": self.credentials_secret_name,
                "clients": self.clients,
            }
        )


def _credentials(
    config: model.MlflowConfig,
    cloud_type: str,
    ssl_mode: model.SslMode,
    host: str,
    db_password: str,
    admin_password: str | None,
    flask_secret_key: str | None,
) -> dict[str, str]:
    uri = model.backend_store_uri(host, db_password, ssl_mode)
    data = {model.BACKEND_STORE_URI_KEY: uri}
    if config.auth.enabled:
        assert admin_password is not None and flask_secret_key is not None
        data[model.AUTH_CONFIG_KEY] = model.auth_config_ini(config.auth, uri, admin_password)
        data[model.ADMIN_USERNAME_KEY] = config.auth.admin_username
        data[model.ADMIN_PASSWORD_KEY] = admin_password
        data[model.ADMIN_CREDENTIALS_KEY] = model.mlflow_credentials_file(
            config.auth.admin_username, admin_password
        )
        data[model.FLASK_SECRET_KEY_KEY] = flask_secret_key
    if cloud_type == "local":
        data[model.DATABASE_PASSWORD_KEY] = db_password
    return data


def _client_users(
    name: str,
    config: model.MlflowConfig,
    rendered: model.Rendered,
    in_namespace: pulumi.ResourceOptions,
    server: list[pulumi.Resource],
) -> pulumi.Output[dict[str, dict[str, str]]]:
    """Per client a password and its Secret; then the Job's Secret of all passwords, the
    program and the Job, which waits for the running server. Returns the `clients` output,
    known once the Job has completed."""
    if not config.clients:
        return pulumi.Output.from_input({})
    assert rendered.provisioner_config_map and rendered.provisioner_job
    assert rendered.provisioner_network_policy
    passwords: dict[str, pulumi.Output[str]] = {}
    secrets: list[k8s.core.v1.Secret] = []
    for key in sorted(config.clients):
        client = config.clients[key]
        generated = random.RandomPassword(
            f"{name}-client-{key}-password",
            length=32,
            special=False,
            # A new user name or password version generates a new password.
            keepers={
                "username": model.client_username(key),
                "version": str(client.password_version),
            },
            opts=pulumi.ResourceOptions(parent=in_namespace.parent),
        )
        password: pulumi.Output[str] = pulumi.Output.secret(generated.result)
        passwords[key] = password
        secrets.append(
            k8s.core.v1.Secret(  # type: ignore[call-overload]  # metadata: the model's plain dict
                f"{name}-client-{key}",
                metadata=model.client_secret_metadata(config, key),
                type="Opaque",
                # pulumi's Input[U]: mypy solves U as Never for an Output argument
                string_data=pulumi.Output.secret(
                    password.apply(lambda p, key=key: model.client_secret_data(config, key, p))  # type: ignore[arg-type, misc]
                ),
                opts=in_namespace,
            )
        )
    job_passwords = k8s.core.v1.Secret(  # type: ignore[call-overload]  # metadata: the model's plain dict
        f"{name}-client-passwords",
        metadata=model.client_passwords_secret_metadata(config),
        type="Opaque",
        # pulumi's Input[U]: mypy solves U as Never for an Output argument
        string_data=pulumi.Output.secret(pulumi.Output.all(**passwords)),  # type: ignore[arg-type]
        opts=in_namespace,
    )
    program = k8s.core.v1.ConfigMap(
        f"{name}-provisioner",
        metadata=rendered.provisioner_config_map["metadata"],
        immutable=True,
        data=rendered.provisioner_config_map["data"],
        opts=in_namespace,
    )
    # Before the Job: its pods start fenced in (egress to the server and DNS only).
    fence = k8s.networking.v1.NetworkPolicy(
        f"{name}-provisioner",
        metadata=rendered.provisioner_network_policy["metadata"],
        spec=rendered.provisioner_network_policy["spec"],
        opts=in_namespace,
    )
    job = k8s.batch.v1.Job(
        f"{name}-provision-users",
        metadata=rendered.provisioner_job["metadata"],
        spec=rendered.provisioner_job["spec"],
        opts=pulumi.ResourceOptions.merge(
            in_namespace,
            pulumi.ResourceOptions(depends_on=[*server, job_passwords, program, fence]),
        ),
    )
    described = {
        key: {
            "namespace": client.namespace,
            "secret_name": client.secret_name,
            "username": model.client_username(key),
        }
        for key, client in config.clients.items()
    }
    # Known only after the Job (and so the users) and every client Secret exist.
    return pulumi.Output.all(job.metadata.name, *(s.id for s in secrets)).apply(lambda _: described)


def _stateful(parent: pulumi.Resource, protect: bool, **extra: Any) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **extra)


def _deletion_protection(args: TrackingServerArgs) -> bool:
    config = args.config
    configured = (config.rds if args.cloud.type == "aws" else config.cloud_sql).deletion_protection
    return args.protect if configured is None else configured


# --- AWS: RDS for PostgreSQL ------------------------------------------------------------------


def _aws_database(
    component: TrackingServer,
    name: str,
    args: TrackingServerArgs,
    identifier: str | None,
    password: pulumi.Output[str],
) -> _Database:
    cloud = args.cloud
    assert isinstance(cloud, AwsCloud) and args.network is not None and identifier
    network = args.network
    database = args.config.rds
    tags = dict(cloud.tags)
    child = pulumi.ResourceOptions(parent=component)

    security_group = aws.ec2.SecurityGroup(
        f"{name}-database",
        vpc_id=network.vpc_id,
        description=f"MLflow backend store {identifier}: PostgreSQL from the cluster only",
        tags=tags,
        opts=child,
    )
    # No egress rule: RDS only answers. One ingress rule per client group, nothing by CIDR.
    for index, group_id in enumerate(network.client_security_group_ids):
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-database-from-cluster-{index}",
            security_group_id=security_group.id,
            referenced_security_group_id=group_id,
            ip_protocol="tcp",
            from_port=model.POSTGRES_PORT,
            to_port=model.POSTGRES_PORT,
            description="PostgreSQL from the EKS cluster",
            tags=tags,
            opts=child,
        )
    subnet_group = aws.rds.SubnetGroup(
        f"{name}-database",
        name=identifier,
        subnet_ids=list(network.private_subnet_ids),
        description=f"MLflow backend store {identifier}: the cluster's private subnets",
        tags=tags,
        opts=child,
    )
    protect = _deletion_protection(args)
    instance = aws.rds.Instance(
        f"{name}-database",
        identifier=identifier,
        engine="postgres",
        # A major version only: RDS picks the current minor and applies minor upgrades.
        engine_version=str(POSTGRES_MAJOR_VERSION),
        auto_minor_version_upgrade=True,
        instance_class=database.instance_class,
        allocated_storage=database.storage_gb,
        max_allocated_storage=database.max_storage_gb,
        storage_type="gp3",
        storage_encrypted=True,
        kms_key_id=database.kms_key_arn,
        db_name=model.DATABASE_NAME,
        username=model.DATABASE_USER,
        password=password,
        iam_database_authentication_enabled=database.iam_authentication,
        db_subnet_group_name=subnet_group.name,
        vpc_security_group_ids=[security_group.id],
        publicly_accessible=False,
        multi_az=database.high_availability,
        backup_retention_period=database.backup_retention_days,
        copy_tags_to_snapshot=True,
        delete_automated_backups=not protect,
        deletion_protection=protect,
        skip_final_snapshot=not protect,
        final_snapshot_identifier=f"{identifier}-final" if protect else None,
        enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
        tags=tags,
        opts=_stateful(component, args.protect),
    )
    # RDS for PostgreSQL 15+ sets rds.force_ssl=1 by default; the client requires TLS too.
    return _Database(host=instance.address, ssl_mode="require", depends_on=[instance])


# --- GCP: Cloud SQL for PostgreSQL ------------------------------------------------------------


def _gcp_database(
    component: TrackingServer,
    name: str,
    args: TrackingServerArgs,
    identifier: str | None,
    password: pulumi.Output[str],
) -> _Database:
    cloud = args.cloud
    assert isinstance(cloud, GcpCloud) and args.network is not None and identifier
    network = args.network
    database = args.config.cloud_sql
    child = pulumi.ResourceOptions(parent=component)

    peering = args.private_services_access
    if peering is None:
        reserved = gcp.compute.GlobalAddress(
            f"{name}-private-services",
            name=f"{identifier}-private-services",
            project=cloud.project,
            network=network.network_id,
            purpose="VPC_PEERING",
            address_type="INTERNAL",
            prefix_length=args.private_services_prefix_length,
            description="Private services access (Cloud SQL) for the cluster network",
            opts=child,
        )
        peering = gcp.servicenetworking.Connection(
            f"{name}-private-services",
            network=network.network_id,
            service=SERVICE_NETWORKING,
            reserved_peering_ranges=[reserved.name],
            opts=child,
        )

    protect = _deletion_protection(args)
    flags: list[gcp.sql.DatabaseInstanceSettingsDatabaseFlagArgsDict] = [
        {"name": "cloudsql.iam_authentication", "value": "on"}
    ]
    instance = gcp.sql.DatabaseInstance(
        f"{name}-database",
        name=identifier,
        project=cloud.project,
        region=cloud.region,
        database_version=f"POSTGRES_{POSTGRES_MAJOR_VERSION}",
        # Terraform-side guard; the API-side one is settings.deletion_protection_enabled.
        deletion_protection=protect,
        settings={
            # PostgreSQL 16+ defaults to Enterprise Plus, which refuses custom tiers.
            "edition": "ENTERPRISE",
            "tier": database.tier,
            "availability_type": "REGIONAL" if database.high_availability else "ZONAL",
            "disk_type": "PD_SSD",
            "disk_size": database.storage_gb,
            "disk_autoresize": True,
            "disk_autoresize_limit": database.max_storage_gb,
            "deletion_protection_enabled": protect,
            "backup_configuration": {
                "enabled": True,
                "point_in_time_recovery_enabled": True,
                "transaction_log_retention_days": min(
                    database.backup_retention_days, GCP_MAX_LOG_RETENTION_DAYS
                ),
                "backup_retention_settings": {
                    "retained_backups": database.backup_retention_days,
                    "retention_unit": "COUNT",
                },
            },
            "ip_configuration": {
                "ipv4_enabled": False,
                "private_network": network.network_id,
                "ssl_mode": "ENCRYPTED_ONLY",
            },
            "database_flags": flags if database.iam_authentication else None,
            "user_labels": dict(cloud.labels),
        },
        opts=_stateful(component, args.protect, depends_on=[peering]),
    )
    # ABANDON: PostgreSQL refuses to drop a database or a user that still owns objects; the
    # instance's own deletion removes both.
    db = gcp.sql.Database(
        f"{name}-database-mlflow",
        name=model.DATABASE_NAME,
        instance=instance.name,
        project=cloud.project,
        deletion_policy="ABANDON",
        opts=child,
    )
    user = gcp.sql.User(
        f"{name}-database-user",
        name=model.DATABASE_USER,
        instance=instance.name,
        project=cloud.project,
        password=password,
        deletion_policy="ABANDON",
        opts=child,
    )
    return _Database(
        host=instance.private_ip_address, ssl_mode="require", depends_on=[instance, db, user]
    )


# --- Local: PostgreSQL in the cluster ---------------------------------------------------------


def _local_database(
    component: TrackingServer,
    name: str,
    args: TrackingServerArgs,
    identifier: str | None,
    password: pulumi.Output[str],
) -> _Database:
    # The StatefulSet needs the credentials Secret first, so it is created after it
    # (`_local_postgres`); here only the address, which is a fixed Service name.
    host = pulumi.Output.from_input(model.postgres_host(args.config.namespace))
    # In-cluster traffic between two pods of one namespace, limited by a NetworkPolicy.
    return _Database(host=host, ssl_mode="disable", depends_on=[])


def _local_postgres(
    name: str,
    rendered: model.Rendered,
    in_namespace: pulumi.ResourceOptions,
    secret: k8s.core.v1.Secret,
    protect: bool,
) -> k8s.apps.v1.StatefulSet:
    assert rendered.postgres_statefulset and rendered.postgres_service
    assert rendered.postgres_network_policy
    return in_cluster_store(
        f"{name}-postgres",
        statefulset=rendered.postgres_statefulset,
        service=rendered.postgres_service,
        network_policy=rendered.postgres_network_policy,
        opts=in_namespace,
        credentials=secret,
        protect=protect,
    )


_DATABASES: dict[str, Callable[..., _Database]] = {
    "aws": _aws_database,
    "gcp": _gcp_database,
    "local": _local_database,
}
