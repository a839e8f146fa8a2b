"""Workload identity, resource layer: IRSA role, GKE Workload Identity or a MinIO user.

Each implementation ends with the workload's Kubernetes ServiceAccount; on the clouds it is
annotated with the cloud identity it may impersonate, locally its credentials Secret sits beside
it. The cloud selects the implementation through `_BACKENDS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import AwsCloud, Cloud, GcpCloud
from mlops_platform.components.identity import model
from mlops_platform.components.kube_resources import depends_on_of

IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
GKE_ANNOTATION = "iam.gke.io/gcp-service-account"


class ClusterIdentity(Protocol):
    """What a workload identity needs from the cluster component (None locally).

    Read-only members, so the ml layer's frozen `mlops_platform.handoff.ClusterHandoff` fits too."""

    @property
    def oidc_provider_arn(self) -> pulumi.Input[str] | None: ...  # AWS: the cluster's OIDC provider
    @property
    def oidc_issuer(self) -> pulumi.Input[str] | None: ...  # AWS: https://oidc.eks.../id/X
    @property
    def workload_pool(self) -> pulumi.Input[str] | None: ...  # GCP: <project>.svc.id.goog
    @property
    def provider(self) -> k8s.Provider | None: ...  # Kubernetes provider for the cluster


class BucketAccess(Protocol):
    """What a workload identity needs from the object store: `mlops_platform.components.storage.ObjectStore`
    and the ml layer's frozen `mlops_platform.handoff.StorageHandoff` fit (a protocol, not the class: the
    storage component imports this package's model)."""

    @property
    def bucket_names(self) -> Mapping[str, pulumi.Output[str]]: ...
    @property
    def bucket_arns(self) -> Mapping[str, pulumi.Output[str]]: ...
    @property
    def endpoint(self) -> pulumi.Output[str] | None: ...  # local: MinIO's in-cluster URL
    @property
    def kms_key_arn(self) -> pulumi.Output[str] | None: ...
    def minio_secret_key(self, identity: str) -> pulumi.Output[str]: ...


@dataclass(frozen=True)
class CloudGrant:
    """Access to another service than the object store, handed out by that service's component
    (e.g. `KafkaClient.grant`). AWS: an IAM policy document (JSON) attached inline to the IRSA
    role; GCP: predefined roles granted on the project to the Google service account. Locally
    there is no cloud identity: both are ignored (the service hands out credentials itself).
    """

    aws_policy_json: pulumi.Input[str] | None = None
    gcp_project_roles: Sequence[str] = ()


@dataclass(frozen=True)
class WorkloadIdentityArgs:
    """Inputs of `WorkloadIdentity`. The component's name must be the identity's map key.

    `kubernetes` wins over `cluster.provider` for the ServiceAccount and Secret. `grants`:
    extra access keyed by a logical name (the key names the children `<name>-<key>...`); the
    bucket grants never change with them.

    Attributes:
        cloud: The stack's cloud: IRSA role (AWS), Google service account (GCP) or a MinIO user's
            Secret (local).
        config: The identity's settings: namespace, service account and bucket grants.
        storage: The object store whose buckets are granted (ARNs, names, the KMS key; locally the
            MinIO users).
        cluster: What the cloud identity trusts: the cluster's OIDC provider (AWS) or workload pool
            (GCP); None locally.
        kubernetes: The provider of the ServiceAccount and Secret; wins over `cluster.provider`.
        grants: Extra cloud access keyed by a logical name (the key names the children
            `<name>-<key>...`), e.g. a Kafka client's `grant`.
    """

    cloud: Cloud
    config: model.WorkloadIdentityConfig
    storage: BucketAccess
    cluster: ClusterIdentity | None = None
    kubernetes: k8s.Provider | None = None
    grants: Mapping[str, CloudGrant] = field(default_factory=dict)


@dataclass
class _Built:
    annotations: dict[str, pulumi.Input[str]]
    role_arn: pulumi.Output[str] | None = None
    gcp_service_account_email: pulumi.Output[str] | None = None
    credentials_secret_name: str | None = None


class WorkloadIdentity(pulumi.ComponentResource):
    """A Kubernetes ServiceAccount allowed to use named buckets without static keys.

    Attributes:
        namespace: Namespace of the service account.
        service_account_name: The Kubernetes ServiceAccount the workload runs as.
        role_arn: AWS: the IAM role the service account assumes (IRSA).
        gcp_service_account_email: GCP: the Google service account it impersonates (Workload
            Identity).
        credentials_secret_name: Local: the Secret with its MinIO access key and secret key.
    """

    namespace: str
    service_account_name: str
    role_arn: pulumi.Output[str] | None
    gcp_service_account_email: pulumi.Output[str] | None
    credentials_secret_name: str | None

    def __init__(
        self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        config = args.config
        model.check_identity_name(name)
        model.check_buckets(name, config, args.storage.bucket_names)
        for key, grant in args.grants.items():
            model.check_grant(name, key, grant.gcp_project_roles)
        kubernetes = args.kubernetes or (args.cluster.provider if args.cluster else None)
        if kubernetes is None:
            raise ValueError(
                f"workload_identities.{name}: a Kubernetes provider is required "
                "(WorkloadIdentityArgs.kubernetes or cluster.provider)"
            )
        if args.cloud.type == "aws" and (
            args.cluster is None
            or args.cluster.oidc_provider_arn is None
            or args.cluster.oidc_issuer is None
        ):
            raise ValueError(
                f"workload_identities.{name}: on AWS the cluster must provide "
                "oidc_provider_arn and oidc_issuer"
            )
        if args.cloud.type == "local":
            args.storage.minio_secret_key(name)  # the store must hold this identity's user
        if args.cloud.type == "gcp":
            model.gcp_account_id(name, config)  # fails early on an id GCP would reject
            if args.cluster is None or args.cluster.workload_pool is None:
                raise ValueError(
                    f"workload_identities.{name}: on GCP the cluster must provide workload_pool"
                )

        super().__init__("mlops:identity:WorkloadIdentity", name, None, opts)
        # Children do not inherit the component's depends_on; the Kubernetes objects need it
        # (typically the workload's Namespace, which the workload's own component creates).
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=kubernetes, depends_on=depends_on_of(opts)
        )
        built = _BACKENDS[args.cloud.type](self, name, args, k8s_opts)

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-service-account",
            metadata={
                "name": config.service_account,
                "namespace": config.namespace,
                "annotations": built.annotations,
            },
            opts=k8s_opts,
        )

        self.namespace = config.namespace
        self.service_account_name = config.service_account
        self.role_arn = built.role_arn
        self.gcp_service_account_email = built.gcp_service_account_email
        self.credentials_secret_name = built.credentials_secret_name
        self._service_account = service_account
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_account_name": self.service_account_name,
                "role_arn": self.role_arn,
                "gcp_service_account_email": self.gcp_service_account_email,
                "credentials_secret_name": self.credentials_secret_name,
            }
        )


def _build_aws(
    component: WorkloadIdentity,
    name: str,
    args: WorkloadIdentityArgs,
    k8s_opts: pulumi.ResourceOptions,
) -> _Built:
    config = args.config
    cluster = args.cluster
    assert cluster is not None
    assert isinstance(args.cloud, AwsCloud)
    storage = args.storage
    child = pulumi.ResourceOptions(parent=component)

    trust = pulumi.Output.all(cluster.oidc_provider_arn, cluster.oidc_issuer).apply(
        lambda v: json.dumps(
            model.irsa_trust_policy(v[0], v[1], config.namespace, config.service_account)
        )
    )
    role = aws.iam.Role(
        f"{name}-role",
        description=(
            f"IRSA role of system:serviceaccount:{config.namespace}:{config.service_account}"
        ),
        assume_role_policy=trust,
        tags=dict(args.cloud.tags),
        opts=child,
    )
    bucket_keys = sorted(config.buckets)
    arns = [storage.bucket_arns[b] for b in bucket_keys]
    policy = pulumi.Output.all(storage.kms_key_arn, *arns).apply(
        lambda v: json.dumps(
            model.s3_access_policy(dict(zip(bucket_keys, v[1:], strict=True)), config.buckets, v[0])
        )
    )
    aws.iam.RolePolicy(f"{name}-buckets", role=role.id, policy=policy, opts=child)
    for key in sorted(args.grants):
        grant = args.grants[key]
        if grant.aws_policy_json is not None:
            aws.iam.RolePolicy(
                f"{name}-{key}", role=role.id, policy=grant.aws_policy_json, opts=child
            )
    return _Built(annotations={IRSA_ANNOTATION: role.arn}, role_arn=role.arn)


def _build_gcp(
    component: WorkloadIdentity,
    name: str,
    args: WorkloadIdentityArgs,
    k8s_opts: pulumi.ResourceOptions,
) -> _Built:
    config = args.config
    cloud = args.cloud
    assert isinstance(cloud, GcpCloud)
    cluster = args.cluster
    assert cluster is not None and cluster.workload_pool is not None  # checked in __init__
    child = pulumi.ResourceOptions(parent=component)

    account = gcp.serviceaccount.Account(
        f"{name}-gsa",
        account_id=model.gcp_account_id(name, config),
        display_name=f"Workload identity {name} ({config.namespace}/{config.service_account})",
        project=cloud.project,
        opts=child,
    )
    member = account.email.apply(lambda email: f"serviceAccount:{email}")
    for bucket in sorted(config.buckets):
        gcp.storage.BucketIAMMember(
            f"{name}-{bucket}",
            bucket=args.storage.bucket_names[bucket],
            role=model.GCS_ROLES[config.buckets[bucket]],
            member=member,
            opts=child,
        )
    for key in sorted(args.grants):
        for role in args.grants[key].gcp_project_roles:
            gcp.projects.IAMMember(
                f"{name}-{key}-{model.role_slug(role)}",
                project=cloud.project,
                role=role,
                member=member,
                opts=child,
            )
    gcp.serviceaccount.IAMMember(
        f"{name}-workload-identity-user",
        service_account_id=account.name,
        role="roles/iam.workloadIdentityUser",
        member=pulumi.Output.from_input(cluster.workload_pool).apply(
            lambda pool: model.workload_identity_member(
                pool, config.namespace, config.service_account
            )
        ),
        opts=child,
    )
    return _Built(
        annotations={GKE_ANNOTATION: account.email}, gcp_service_account_email=account.email
    )


def _build_local(
    component: WorkloadIdentity,
    name: str,
    args: WorkloadIdentityArgs,
    k8s_opts: pulumi.ResourceOptions,
) -> _Built:
    config = args.config
    storage = args.storage
    assert storage.endpoint is not None  # MinIO's, which every local store has
    secret_name = model.credentials_secret_name(config.service_account)
    # The MinIO user and its policy live in MinIO's chart values (see ObjectStore); here the
    # generated secret key is handed to the workload, only ever inside a Secret.
    k8s.core.v1.Secret(
        f"{name}-s3-credentials",
        metadata={"name": secret_name, "namespace": config.namespace},
        type="Opaque",
        string_data={
            "AWS_ACCESS_KEY_ID": name,
            "AWS_SECRET_ACCESS_KEY": storage.minio_secret_key(name),
            "AWS_ENDPOINT_URL": storage.endpoint,
            # The platform's workloads mount these two instead (no secret in their env).
            model.CREDENTIALS_FILE_KEY: pulumi.Output.from_input(
                storage.minio_secret_key(name)
            ).apply(lambda key: model.aws_credentials_file(name, key)),
            model.CONFIG_FILE_KEY: pulumi.Output.from_input(storage.endpoint).apply(
                model.aws_config_file
            ),
        },
        opts=k8s_opts,
    )
    return _Built(annotations={}, credentials_secret_name=secret_name)


_BACKENDS: dict[str, Callable[..., _Built]] = {
    "aws": _build_aws,
    "gcp": _build_gcp,
    "local": _build_local,
}
