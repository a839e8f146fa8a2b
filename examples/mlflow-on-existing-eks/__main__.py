"""MLflow on an EKS cluster the team already runs: an artifacts bucket, an IRSA role for the
tracking server and the server itself (RDS for PostgreSQL in the cluster's VPC).

The cluster, its VPC and its IAM OIDC provider are adopted by name: read with data sources,
never created or changed. What this program creates: the S3 bucket (with its KMS key and
access-log bucket), the IRSA role, the `mlflow` namespace, the RDS instance with its subnet
group and security group, and MLflow's Kubernetes objects.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_platform.components.cloud import AwsCloud
from mlops_platform.components.cluster import eks_kubeconfig
from mlops_platform.components.identity import (
    WorkloadIdentity,
    WorkloadIdentityArgs,
    WorkloadIdentityConfig,
)
from mlops_platform.components.mlflow import MlflowConfig, TrackingServer, TrackingServerArgs
from mlops_platform.components.namespaces import WorkloadNamespaces, WorkloadNamespacesArgs
from mlops_platform.components.network import Network
from mlops_platform.components.storage import (
    BucketConfig,
    ObjectStore,
    ObjectStoreArgs,
    StorageConfig,
)

NAME = "mlflow"
ARTIFACTS = "artifacts"


class Settings(BaseModel):
    """This stack's config (`pulumi config set <key> <value>`); defaults live here only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clusterName: str = Field(min_length=1, description="Name of the existing EKS cluster.")
    databaseSubnetIds: list[str] = Field(
        min_length=2,
        description="Private subnets of the cluster's VPC for the RDS instance (two zones).",
    )
    bucketPrefix: str = Field(
        description="Prefix of the bucket names (S3 names are global: use one you own)."
    )
    namespace: str = Field(default="mlflow", description="Namespace of MLflow (created).")
    protect: bool = Field(
        default=False, description="Protect and retain the bucket and the database."
    )


def _is_text(annotation: object) -> bool:
    """`str` or `str | None`: read as the string it is, not as JSON."""
    optional = typing.get_origin(annotation) is types.UnionType
    return annotation is str or (optional and str in typing.get_args(annotation))


def settings() -> Settings:
    config = pulumi.Config()
    # Strings as they are, other values (lists, booleans) as JSON; an absent key is left out,
    # so the model's default holds.
    values = {
        key: value
        for key, field in Settings.model_fields.items()
        if (value := config.get(key) if _is_text(field.annotation) else config.get_object(key))
        is not None
    }
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{config.name}:{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise pulumi.RunError(
            f"invalid config in Pulumi.{pulumi.get_stack()}.yaml: {problems}"
        ) from None


@dataclass(frozen=True)
class AdoptedEksCluster:
    """What `WorkloadIdentity` needs from a cluster (`mlops_platform.components.identity.ClusterIdentity`),
    read from the existing one."""

    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    provider: k8s.Provider
    workload_pool: None = None


def main() -> None:
    wanted = settings()
    cloud = AwsCloud(type="aws", region=pulumi.Config("aws").require("region"))

    # --- adopted: the cluster, its network and its OIDC provider (data sources only) -------
    # Plain (synchronous) lookups: the network hand-off needs the VPC's CIDR as a value.
    cluster = aws.eks.get_cluster(name=wanted.clusterName)
    vpc = aws.ec2.get_vpc(id=cluster.vpc_config.vpc_id)
    issuer = cluster.identities[0].oidcs[0].issuer
    oidc_provider = aws.iam.get_open_id_connect_provider(url=issuer)
    kubeconfig = pulumi.Output.secret(
        json.dumps(
            eks_kubeconfig(
                cluster.name,
                cluster.endpoint,
                cluster.certificate_authorities[0].data,
                region=cloud.region,
            )
        )
    )
    kubernetes = k8s.Provider(f"{NAME}-eks", kubeconfig=kubeconfig)

    # --- created ---------------------------------------------------------------------------
    store = ObjectStore(
        NAME,
        ObjectStoreArgs(
            cloud=cloud,
            config=StorageConfig(
                buckets={ARTIFACTS: BucketConfig()}, bucket_prefix=wanted.bucketPrefix
            ),
            protect=wanted.protect,
        ),
    )
    namespaces = WorkloadNamespaces(
        NAME, WorkloadNamespacesArgs(names=[wanted.namespace], kubernetes=kubernetes)
    )
    mlflow = MlflowConfig(namespace=wanted.namespace, artifact_bucket=ARTIFACTS)
    identity = WorkloadIdentity(
        f"{NAME}-server",
        WorkloadIdentityArgs(
            cloud=cloud,
            config=WorkloadIdentityConfig(
                namespace=mlflow.namespace,
                service_account=mlflow.service_account,
                buckets={ARTIFACTS: "read_write"},
            ),
            storage=store,
            cluster=AdoptedEksCluster(
                oidc_provider_arn=oidc_provider.arn, oidc_issuer=issuer, provider=kubernetes
            ),
        ),
        pulumi.ResourceOptions(depends_on=[namespaces]),
    )
    server = TrackingServer(
        NAME,
        TrackingServerArgs(
            cloud=cloud,
            config=mlflow,
            storage=store,
            kubernetes=kubernetes,
            protect=wanted.protect,
            network=Network(
                cloud="aws",
                network_id=cluster.vpc_config.vpc_id,
                cidr=vpc.cidr_block,
                private_subnet_ids=wanted.databaseSubnetIds,
                # Managed node groups without their own security groups carry this one.
                client_security_group_ids=[cluster.vpc_config.cluster_security_group_id],
            ),
        ),
        pulumi.ResourceOptions(depends_on=[namespaces, identity]),
    )

    pulumi.export("tracking_uri", server.tracking_uri)
    pulumi.export("artifacts_bucket", store.bucket_names[ARTIFACTS])
    pulumi.export("server_role_arn", identity.role_arn)
    pulumi.export("admin_username", server.admin_username)
    pulumi.export("admin_password", server.admin_password)  # a secret Output


main()
