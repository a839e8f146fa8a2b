"""The platform's main components as a multi-language Pulumi package (`PulumiPlugin.yaml`).

TypeScript, Go, C# or YAML programs use them after `pulumi package add <this folder>`. The
package's schema is inferred by the Python SDK's analyzer (`pulumi.provider.experimental`) from
the classes below, so they follow its type system: flat `TypedDict` args of strings, numbers,
booleans, lists, string-keyed maps and enums, no unions, no pydantic models, no callbacks. The
components' own constructors take pydantic configs, the `Cloud` union and Python objects (an
`ObjectStore`, a `k8s.Provider`), which the analyzer cannot express, so each class here is a
thin wrapper: it validates its flat inputs into the component's config (the model's defaults
hold for every input left out), then creates the real component as its only child.

The analyzer puts every resource in the package's `index` module, so the type tokens read
`mlops-platform:index:<Noun>` (not the house `mlops:<area>:<Noun>`: the engine constructs a
remote component under the token of the caller's SDK, and the provider host accepts `index` only).

Kubernetes: every component that creates Kubernetes objects takes the cluster either as the
`kubeconfig` input or as the `kubernetes` provider in the resource options' `providers` (the
usual way in TypeScript: `{ providers: { kubernetes: k8sProvider } }`). AWS and GCP resources use
the caller's `aws` / `gcp` provider the same way, else the default provider.

No `from __future__ import annotations` here: the analyzer reads the annotations as objects.
"""

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, TypeVar

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ValidationError

from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.identity import WorkloadIdentity as IdentityComponent
from mlops_platform.components.identity import WorkloadIdentityArgs as IdentityComponentArgs
from mlops_platform.components.identity import WorkloadIdentityConfig
from mlops_platform.components.mlflow import (
    AuthConfig,
    CloudSqlConfig,
    MlflowConfig,
    RdsConfig,
    TrackingServer,
    TrackingServerArgs,
)
from mlops_platform.components.namespaces import WorkloadNamespaces, WorkloadNamespacesArgs
from mlops_platform.components.network import Network
from mlops_platform.components.serving import (
    CanaryConfig,
    FlaggerWiring,
    ModelDeployment,
    ModelDeploymentArgs,
    ModelDeploymentConfig,
    ProgressiveConfig,
    TrackConfig,
)
from mlops_platform.components.storage import (
    BucketConfig,
    ObjectStore,
    ObjectStoreArgs,
    StorageConfig,
)

PACKAGE = "mlops-platform"
DISTRIBUTION = "mlops-platform"
ARTIFACTS = "artifacts"
Model = TypeVar("Model", bound=BaseModel)


def package_version() -> str:
    """The package's version is the distribution's (pyproject.toml)."""
    return importlib.metadata.version(DISTRIBUTION)


def token(noun: str) -> str:
    return f"{PACKAGE}:index:{noun}"


class CloudKind(StrEnum):
    """Where the component's cloud resources are created."""

    AWS = "aws"
    """Amazon Web Services (`region` required)."""
    GCP = "gcp"
    """Google Cloud (`gcpProject` and `region` required)."""
    LOCAL = "local"
    """An existing local cluster (kind, k3d, minikube): in-cluster backends only."""


# --- helpers ----------------------------------------------------------------------------------


def _given(**values: Any) -> dict[str, Any]:
    """The inputs that were set: left-out ones take the model's default."""
    return {key: value for key, value in values.items() if value is not None}


def _validated(model: type[Model], component: str, values: dict[str, Any]) -> Model:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ValueError(f"{component}: invalid inputs: {problems}") from None


def _problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    path = ".".join(str(p) for p in error["loc"])
    return f"{path}: {message}" if path else message


def _cloud(component: str, kind: CloudKind, args: Mapping[str, Any]) -> AwsCloud | GcpCloud:
    if kind is CloudKind.AWS:
        values = _given(type="aws", region=args.get("region"), tags=args.get("tags"))
        return _validated(AwsCloud, component, values)
    if kind is CloudKind.GCP:
        values = _given(
            type="gcp",
            project=args.get("gcp_project"),
            region=args.get("region"),
            labels=args.get("tags"),
        )
        return _validated(GcpCloud, component, values)
    raise ValueError(f"{component}: cloud {kind.value!r} is not supported here")


def _has_kubernetes(opts: pulumi.ResourceOptions | None) -> bool:
    """A `kubernetes` provider reaches the children through `opts` (or the parent's)."""
    if opts is None:
        return False
    providers = opts.providers or {}
    packages = set(providers) if isinstance(providers, Mapping) else {p.package for p in providers}
    if opts.provider is not None:
        packages.add(opts.provider.package)
    if "kubernetes" in packages:
        return True
    return opts.parent is not None and opts.parent.get_provider("kubernetes::") is not None


def _check_kubernetes(component: str, kubeconfig: Any, opts: pulumi.ResourceOptions | None):
    if kubeconfig is None and not _has_kubernetes(opts):
        raise ValueError(
            f"{component}: set the `kubeconfig` input or pass a `kubernetes` provider in the "
            "resource options' providers"
        )


def _kubernetes(
    component: pulumi.ComponentResource, name: str, kubeconfig: Any
) -> pulumi.ProviderResource:
    if kubeconfig is not None:
        return k8s.Provider(
            f"{name}-k8s",
            kubeconfig=pulumi.Output.secret(kubeconfig),
            opts=pulumi.ResourceOptions(parent=component),
        )
    provider = component.get_provider("kubernetes::")
    assert provider is not None  # checked by _check_kubernetes before anything was registered
    return provider


# --- storage ----------------------------------------------------------------------------------


class ArtifactStoreArgs(TypedDict):
    """Inputs of `ArtifactStore`."""

    cloud: CloudKind
    """`aws` (S3) or `gcp` (GCS)."""
    bucket_prefix: str
    """Prefix of every bucket name (`<prefix>-<bucket>`); S3 and GCS names are global."""
    region: NotRequired[str]
    """AWS region, or GCS location (a GCP region). Required."""
    gcp_project: NotRequired[str]
    """GCP project of the buckets (GCP only)."""
    buckets: NotRequired[list[str]]
    """Logical bucket names. Default: artifacts, datasets, features."""
    kms_key: NotRequired[str]
    """Existing key (AWS key ARN, GCP crypto key id). Default: AWS creates one rotating KMS key,
    GCP uses Google-managed encryption."""
    tags: NotRequired[dict[str, str]]
    """AWS tags / GCP labels on every bucket."""
    protect: NotRequired[bool]
    """Protect and retain the buckets (and the key). Default: false."""


class ArtifactStore(pulumi.ComponentResource):
    """Private, versioned, encrypted buckets with lifecycle rules and access logs (AWS) on S3
    or GCS: the platform's `ObjectStore`."""

    bucket_names: pulumi.Output[dict[str, str]]
    """Physical bucket name by logical name."""
    bucket_uris: pulumi.Output[dict[str, str]]
    """`s3://...` / `gs://...` by logical name."""
    bucket_arns: pulumi.Output[dict[str, str]]
    """Bucket ARN by logical name (AWS; empty on GCP)."""
    kms_key_arn: pulumi.Output[str | None]
    """The key every bucket is encrypted with (AWS)."""

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        component = "ArtifactStore"
        cloud = _cloud(component, CloudKind(args["cloud"]), args)
        buckets = args.get("buckets")
        config = _validated(
            StorageConfig,
            component,
            _given(
                bucket_prefix=args["bucket_prefix"],
                buckets={key: BucketConfig() for key in buckets} if buckets is not None else None,
                kms_key=args.get("kms_key"),
            ),
        )
        super().__init__(token(component), name, None, opts)
        store = ObjectStore(
            name,
            ObjectStoreArgs(cloud=cloud, config=config, protect=bool(args.get("protect"))),
            pulumi.ResourceOptions(parent=self),
        )
        self.bucket_names = pulumi.Output.from_input(store.bucket_names)
        self.bucket_uris = pulumi.Output.from_input(store.bucket_uris)
        self.bucket_arns = pulumi.Output.from_input(store.bucket_arns)
        self.kms_key_arn = pulumi.Output.from_input(store.kms_key_arn)
        self.register_outputs(
            {
                "bucket_names": self.bucket_names,
                "bucket_uris": self.bucket_uris,
                "bucket_arns": self.bucket_arns,
                "kms_key_arn": self.kms_key_arn,
            }
        )


# --- workload identity ------------------------------------------------------------------------


class WorkloadIdentityArgs(TypedDict):
    """Inputs of `WorkloadIdentity`. The component's name names the identity (3-40 lowercase
    letters, digits or '-') and its children."""

    cloud: CloudKind
    """`aws` (an IRSA role) or `gcp` (a Google service account through Workload Identity)."""
    namespace: str
    """Namespace of the Kubernetes service account (existing)."""
    service_account: str
    """Name of the Kubernetes service account (created, annotated with the cloud identity)."""
    buckets: dict[str, str]
    """Logical bucket name -> `read` or `read_write`; the names are keys of `bucketArns` (AWS)
    or `bucketNames` (GCP)."""
    bucket_arns: NotRequired[pulumi.Input[dict[str, str]]]
    """AWS: bucket ARN by logical name, e.g. an `ArtifactStore`'s `bucketArns`."""
    kms_key_arn: NotRequired[pulumi.Input[str]]
    """AWS: the buckets' KMS key (decrypt, and encrypt when writing), e.g. `kmsKeyArn`."""
    oidc_provider_arn: NotRequired[pulumi.Input[str]]
    """AWS: the cluster's IAM OIDC provider."""
    oidc_issuer: NotRequired[pulumi.Input[str]]
    """AWS: the cluster's OIDC issuer URL (https://oidc.eks.<region>.amazonaws.com/id/...)."""
    bucket_names: NotRequired[pulumi.Input[dict[str, str]]]
    """GCP: bucket name by logical name, e.g. an `ArtifactStore`'s `bucketNames`."""
    workload_pool: NotRequired[pulumi.Input[str]]
    """GCP: the cluster's workload pool (`<project>.svc.id.goog`)."""
    gcp_account_id: NotRequired[str]
    """GCP: id of the Google service account. Default: `wi-<name>`."""
    region: NotRequired[str]
    """AWS or GCP region."""
    gcp_project: NotRequired[str]
    """GCP project of the Google service account."""
    tags: NotRequired[dict[str, str]]
    """AWS tags on the role."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """The cluster; else the `kubernetes` provider of the resource options."""


class WorkloadIdentity(pulumi.ComponentResource):
    """A Kubernetes service account allowed to use named buckets without static keys: an IRSA
    role (AWS) or a Google service account bound through Workload Identity (GCP): the
    platform's `WorkloadIdentity`."""

    namespace: pulumi.Output[str]
    """Namespace of the service account."""
    service_account_name: pulumi.Output[str]
    """The Kubernetes service account, e.g. for `Mlflow`'s `serviceAccount`."""
    role_arn: pulumi.Output[str | None]
    """AWS: the IRSA role."""
    gcp_service_account_email: pulumi.Output[str | None]
    """GCP: the Google service account."""

    def __init__(
        self, name: str, args: WorkloadIdentityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        component = "WorkloadIdentity"
        kind = CloudKind(args["cloud"])
        cloud = _cloud(component, kind, args)
        config = _validated(
            WorkloadIdentityConfig,
            component,
            _given(
                namespace=args["namespace"],
                service_account=args["service_account"],
                buckets=args["buckets"],
                gcp_account_id=args.get("gcp_account_id"),
            ),
        )
        needed = (
            ("bucket_arns", "oidc_provider_arn", "oidc_issuer")
            if kind is CloudKind.AWS
            else ("bucket_names", "workload_pool")
        )
        missing = [key for key in needed if args.get(key) is None]
        if missing:
            raise ValueError(f"{component}: on {kind.value} {', '.join(missing)} are required")
        store = _Buckets(
            component,
            keys=sorted(config.buckets),
            names=args.get("bucket_names"),
            arns=args.get("bucket_arns"),
            kms_key_arn=args.get("kms_key_arn"),
        )
        kubeconfig = args.get("kubeconfig")
        _check_kubernetes(component, kubeconfig, opts)

        super().__init__(token(component), name, None, opts)
        kubernetes = _kubernetes(self, name, kubeconfig)
        identity = IdentityComponent(
            name,
            IdentityComponentArgs(
                cloud=cloud,
                config=config,
                storage=store,
                cluster=_Cluster(
                    oidc_provider_arn=args.get("oidc_provider_arn"),
                    oidc_issuer=args.get("oidc_issuer"),
                    workload_pool=args.get("workload_pool"),
                    provider=kubernetes,
                ),
                kubernetes=kubernetes,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.namespace = pulumi.Output.from_input(identity.namespace)
        self.service_account_name = pulumi.Output.from_input(identity.service_account_name)
        self.role_arn = pulumi.Output.from_input(identity.role_arn)
        self.gcp_service_account_email = pulumi.Output.from_input(
            identity.gcp_service_account_email
        )
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_account_name": self.service_account_name,
                "role_arn": self.role_arn,
                "gcp_service_account_email": self.gcp_service_account_email,
            }
        )


def _each(component: str, field: str, mapping: Any, keys: list[str]) -> dict[str, Any]:
    """A map input (perhaps another resource's output) as one Output per known key; a plain
    map is checked now, an output's keys only once it is known."""
    if mapping is None:
        return {}
    if isinstance(mapping, Mapping):
        missing = [key for key in keys if key not in mapping]
        if missing:
            raise ValueError(f"{component}: {field} has no {', '.join(missing)} (see buckets)")
    whole = pulumi.Output.from_input(mapping)
    return {key: whole.apply(lambda values, key=key: values[key]) for key in keys}


class _Buckets:
    """What `WorkloadIdentity` reads from an object store, from flat inputs."""

    def __init__(self, component: str, keys: list[str], names: Any, arns: Any, kms_key_arn: Any):
        # Only GCP reads the names; AWS checks the keys against them (the ARNs are per key).
        self.bucket_names = _each(component, "bucket_names", names, keys) or dict.fromkeys(keys)
        self.bucket_arns = _each(component, "bucket_arns", arns, keys)
        self.kms_key_arn = kms_key_arn


@dataclass(frozen=True)
class _Cluster:
    """What `WorkloadIdentity` reads from a cluster (`mlops_platform.components.identity.ClusterIdentity`)."""

    oidc_provider_arn: Any
    oidc_issuer: Any
    workload_pool: Any
    provider: Any


# --- MLflow -----------------------------------------------------------------------------------


class MlflowArgs(TypedDict):
    """Inputs of `Mlflow`."""

    cloud: CloudKind
    """Where PostgreSQL runs: `aws` (RDS), `gcp` (Cloud SQL) or `local` (in the cluster; the
    artifacts then go to MinIO with the keys of the existing `<serviceAccount>-s3-credentials`
    Secret, as the platform's local workload identities create it)."""
    artifact_bucket_uri: pulumi.Input[str]
    """Bucket the artifacts are proxied to, e.g. an `ArtifactStore`'s `bucketUris.artifacts`."""
    region: NotRequired[str]
    """AWS or GCP region (clouds only)."""
    gcp_project: NotRequired[str]
    """GCP project of Cloud SQL (GCP only)."""
    tags: NotRequired[dict[str, str]]
    """AWS tags / GCP labels on the database."""
    namespace: NotRequired[str]
    """Namespace of every object. Default: mlflow."""
    create_namespace: NotRequired[bool]
    """Create the namespace (Pod Security `restricted`). Default: true."""
    service_account: NotRequired[str]
    """Existing service account of the server pods, allowed to read and write the bucket
    (IRSA, GKE Workload Identity). Default: mlflow."""
    artifact_prefix: NotRequired[str]
    """Path inside the bucket. Default: mlflow."""
    replicas: NotRequired[int]
    """Tracking-server pods. Default: 2."""
    auth: NotRequired[bool]
    """MLflow's basic-auth app with a generated admin password. Default: true."""
    database_identifier: NotRequired[str]
    """RDS identifier / Cloud SQL instance name. Default: `mlops-<stack>-mlflow`."""
    aws_instance_class: NotRequired[str]
    """RDS instance class. Default: db.t4g.medium."""
    gcp_tier: NotRequired[str]
    """Cloud SQL tier. Default: db-custom-1-3840."""
    vpc_id: NotRequired[pulumi.Input[str]]
    """AWS: the cluster's VPC."""
    database_subnet_ids: NotRequired[list[pulumi.Input[str]]]
    """AWS: private subnets of the VPC for RDS (two zones or more)."""
    client_security_group_ids: NotRequired[list[pulumi.Input[str]]]
    """AWS: security groups allowed to reach PostgreSQL (the EKS cluster security group)."""
    network_cidr: NotRequired[str]
    """AWS: the VPC's CIDR; GCP: the node subnetwork's primary range."""
    gcp_network: NotRequired[pulumi.Input[str]]
    """GCP: the cluster's VPC network (id or self link), for Cloud SQL's private IP."""
    gcp_subnetwork: NotRequired[pulumi.Input[str]]
    """GCP: the cluster's node subnetwork (id or self link)."""
    protect: NotRequired[bool]
    """Protect and retain the database; turns on its deletion protection. Default: false."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """The cluster; else the `kubernetes` provider of the resource options."""


def _database(component: str, kind: CloudKind, args: Mapping[str, Any]) -> Any:
    """The database block of the cloud's backend (`type:` rds, cloud_sql or postgres)."""
    if kind is CloudKind.AWS:
        values = _given(
            type="rds",
            identifier=args.get("database_identifier"),
            instance_class=args.get("aws_instance_class"),
        )
        return _validated(RdsConfig, component, values)
    if kind is CloudKind.GCP:
        values = _given(
            type="cloud_sql", identifier=args.get("database_identifier"), tier=args.get("gcp_tier")
        )
        return _validated(CloudSqlConfig, component, values)
    return None


def _network(
    component: str, kind: CloudKind, cloud: Any, args: Mapping[str, Any]
) -> Network | None:
    """The one network hand-off (mlops_platform/components/network.py) from the flat inputs."""
    if kind is CloudKind.LOCAL:
        return None
    needed = {
        CloudKind.AWS: (
            "vpc_id",
            "network_cidr",
            "database_subnet_ids",
            "client_security_group_ids",
        ),
        CloudKind.GCP: ("gcp_network", "network_cidr", "gcp_subnetwork"),
    }[kind]
    missing = [key for key in needed if not args.get(key)]
    if missing:
        raise ValueError(f"{component}: on {kind.value} {', '.join(missing)} are required")
    try:
        if kind is CloudKind.AWS:
            return Network(
                cloud="aws",
                network_id=args["vpc_id"],
                cidr=args["network_cidr"],
                private_subnet_ids=list(args["database_subnet_ids"]),
                client_security_group_ids=list(args["client_security_group_ids"]),
            )
        return Network(
            cloud="gcp",
            network_id=args["gcp_network"],
            cidr=args["network_cidr"],
            private_subnet_ids=[args["gcp_subnetwork"]],
            project=cloud.project,
            region=cloud.region,
        )
    except ValueError as exc:
        raise ValueError(f"{component}: {exc}") from None


class Mlflow(pulumi.ComponentResource):
    """MLflow tracking server and model registry on PostgreSQL, artifacts proxied to a bucket:
    the platform's `TrackingServer`."""

    tracking_uri: pulumi.Output[str]
    """In-cluster URL of the tracking server."""
    namespace: pulumi.Output[str]
    """Namespace of the server."""
    service_name: pulumi.Output[str]
    """Its Service."""
    database_endpoint: pulumi.Output[str]
    """`host:port` of PostgreSQL."""
    admin_username: pulumi.Output[str | None]
    """The basic-auth admin (when `auth`)."""
    admin_password: pulumi.Output[str | None]
    """The generated admin password (a secret; when `auth`)."""
    credentials_secret_name: pulumi.Output[str]
    """Secret holding the database URI and the auth configuration."""

    def __init__(self, name: str, args: MlflowArgs, opts: pulumi.ResourceOptions | None = None):
        component = "Mlflow"
        kind = CloudKind(args["cloud"])
        cloud = (
            LocalCloud(type="local") if kind is CloudKind.LOCAL else _cloud(component, kind, args)
        )
        config = _validated(
            MlflowConfig,
            component,
            _given(
                namespace=args.get("namespace"),
                service_account=args.get("service_account"),
                artifact_bucket=ARTIFACTS,
                artifact_prefix=args.get("artifact_prefix"),
                replicas=args.get("replicas"),
                auth=AuthConfig(enabled=args["auth"]) if "auth" in args else None,
                database=_database(component, kind, args),
            ),
        )
        network = _network(component, kind, cloud, args)
        kubeconfig = args.get("kubeconfig")
        _check_kubernetes(component, kubeconfig, opts)

        super().__init__(token(component), name, None, opts)
        kubernetes = _kubernetes(self, name, kubeconfig)
        waits: list[pulumi.Resource] = []
        if args.get("create_namespace", True):
            waits.append(
                WorkloadNamespaces(
                    name,
                    WorkloadNamespacesArgs(names=[config.namespace], kubernetes=kubernetes),
                    pulumi.ResourceOptions(parent=self),
                )
            )
        server = TrackingServer(
            name,
            TrackingServerArgs(
                cloud=cloud,
                config=config,
                storage=_Bucket({ARTIFACTS: pulumi.Output.from_input(args["artifact_bucket_uri"])}),
                kubernetes=kubernetes,
                protect=bool(args.get("protect")),
                network=network,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=waits),
        )
        self.tracking_uri = server.tracking_uri
        self.namespace = server.namespace
        self.service_name = server.service_name
        self.database_endpoint = server.database_endpoint
        self.admin_username = pulumi.Output.from_input(server.admin_username)
        self.admin_password = pulumi.Output.secret(server.admin_password)
        self.credentials_secret_name = server.credentials_secret_name
        self.register_outputs(
            {
                "tracking_uri": self.tracking_uri,
                "namespace": self.namespace,
                "service_name": self.service_name,
                "database_endpoint": self.database_endpoint,
                "admin_username": self.admin_username,
                "admin_password": self.admin_password,
                "credentials_secret_name": self.credentials_secret_name,
            }
        )


class _Bucket:
    """The one bucket MLflow needs, as `TrackingServer` reads a store (`bucket_uris`)."""

    def __init__(self, bucket_uris: dict[str, pulumi.Output[str]]):
        self.bucket_uris = bucket_uris


# --- serving ----------------------------------------------------------------------------------


class ModelServingArgs(TypedDict):
    """Inputs of `ModelServing`."""

    model_uri: str
    """The stable track's model (`models:/<name>@<alias>`, `models:/<name>/<version>`, ...);
    with `progressive`, the first release."""
    mlflow_tracking_uri: NotRequired[str]
    """MLflow the server loads models from (required for models:/ and runs:/ URIs)."""
    namespace: NotRequired[str]
    """Namespace of every object (existing). Default: serving."""
    model_name: NotRequired[str]
    """Name served under (`/v2/models/<name>`). Default: the registered model's name."""
    replicas: NotRequired[int]
    """Pods of the stable track. Default: 2."""
    image: NotRequired[str]
    """Model-server image, pinned by tag or digest. Default: the platform's pinned image."""
    service_account: NotRequired[str]
    """Existing service account of the pods. Default: the namespace's `default`."""
    credentials_secret: NotRequired[str]
    """Existing Secret whose keys become environment variables (e.g. MLflow credentials)."""
    canary_model_uri: NotRequired[str]
    """A second track with a set share of requests (not with `progressive`)."""
    canary_weight: NotRequired[int]
    """Percent of requests to the canary track."""
    progressive: NotRequired[bool]
    """Flagger analyses every new release on live traffic and promotes or rolls it back
    (needs Flagger, `prometheusUrl` and `loadTesterUrl`). Default: false."""
    prometheus_url: NotRequired[str]
    """Prometheus Flagger's checks query (with `progressive`)."""
    load_tester_url: NotRequired[str]
    """Flagger's load tester (with `progressive`)."""
    istio_sidecar: NotRequired[bool]
    """Inject the Istio sidecar. Default: true."""
    kubeconfig: NotRequired[pulumi.Input[str]]
    """The cluster; else the `kubernetes` provider of the resource options."""


class ModelServing(pulumi.ComponentResource):
    """One model behind the platform's model server: stable and canary tracks split by Istio,
    or progressive releases by Flagger: the platform's `ModelDeployment`."""

    url: pulumi.Output[str]
    """In-cluster URL of the model."""
    service_name: pulumi.Output[str]
    """Its Service."""
    namespace: pulumi.Output[str]
    """Its namespace."""
    model_name: pulumi.Output[str]
    """The name it is served under."""
    canary_weight: pulumi.Output[int]
    """Percent of requests to the canary track now (0 under Flagger: Flagger's to decide)."""

    def __init__(
        self, name: str, args: ModelServingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        component = "ModelServing"
        progressive = bool(args.get("progressive"))
        canary_uri = args.get("canary_model_uri")
        config = _validated(
            ModelDeploymentConfig,
            component,
            _given(
                namespace=args.get("namespace"),
                model_name=args.get("model_name"),
                stable=_validated(
                    TrackConfig,
                    component,
                    _given(model_uri=args["model_uri"], replicas=args.get("replicas")),
                ),
                canary=_validated(
                    CanaryConfig,
                    component,
                    _given(model_uri=canary_uri, weight=args.get("canary_weight")),
                )
                if canary_uri is not None
                else None,
                progressive=ProgressiveConfig() if progressive else None,
                image=args.get("image"),
                mlflow_tracking_uri=args.get("mlflow_tracking_uri"),
                service_account=args.get("service_account"),
                credentials_secret=args.get("credentials_secret"),
                istio_sidecar=args.get("istio_sidecar"),
            ),
        )
        flagger = None
        if progressive:
            missing = [k for k in ("prometheus_url", "load_tester_url") if not args.get(k)]
            if missing:
                raise ValueError(f"{component}: progressive needs {', '.join(missing)}")
            flagger = FlaggerWiring(
                prometheus_url=args["prometheus_url"], load_tester_url=args["load_tester_url"]
            )
        kubeconfig = args.get("kubeconfig")
        _check_kubernetes(component, kubeconfig, opts)

        super().__init__(token(component), name, None, opts)
        deployment = ModelDeployment(
            name,
            ModelDeploymentArgs(
                config=config, kubernetes=_kubernetes(self, name, kubeconfig), flagger=flagger
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.url = deployment.url
        self.service_name = deployment.service_name
        self.namespace = deployment.namespace
        self.model_name = deployment.model_name
        self.canary_weight = deployment.canary_weight
        self.register_outputs(
            {
                "url": self.url,
                "service_name": self.service_name,
                "namespace": self.namespace,
                "model_name": self.model_name,
                "canary_weight": self.canary_weight,
            }
        )


COMPONENTS: list[type[pulumi.ComponentResource]] = [
    ArtifactStore,
    WorkloadIdentity,
    Mlflow,
    ModelServing,
]
