"""Object storage, resource layer: S3, GCS or MinIO from the same `StorageConfig`.

Every value below comes from `mlops_platform.components.storage.model`; this module only wires it into
resources. The cloud selects the implementation through `_BACKENDS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlops_platform.components import naming
from mlops_platform.components.cloud import AwsCloud, Cloud, GcpCloud
from mlops_platform.components.identity.model import (
    WorkloadIdentityConfig,
    check_workload_identities,
)
from mlops_platform.components.storage import model
from mlops_platform.components.versions import MINIO


@dataclass(frozen=True)
class ObjectStoreArgs:
    """Inputs of `ObjectStore`.

    `identities` are the stack's `workload_identities`: every cloud checks their bucket names;
    locally the MinIO server itself holds their users and policies, so they are created here
    (with generated secret keys) and `WorkloadIdentity` only hands them to the workload.

    Attributes:
        cloud: The stack's cloud: S3 (AWS), GCS (GCP) or MinIO (local). AWS/GCP providers come
            through `opts`.
        config: The `storage` settings: the buckets and the backend block.
        protect: Protect and retain every bucket, the KMS key and locally the MinIO release (the
            root `protect_stateful`).
        kubernetes: The provider MinIO is installed with; required locally.
        identities: The root `workload_identities`: their bucket names are checked on every cloud;
            locally they become MinIO users.
    """

    cloud: Cloud
    config: model.StorageConfig
    protect: bool = False
    kubernetes: k8s.Provider | None = None
    identities: Mapping[str, WorkloadIdentityConfig] = field(default_factory=dict)


@dataclass
class _Built:
    names: dict[str, pulumi.Output[str]]
    uris: dict[str, pulumi.Output[str]]
    arns: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    endpoint: pulumi.Output[str] | None = None
    kms_key_arn: pulumi.Output[str] | None = None
    log_bucket_name: pulumi.Output[str] | None = None
    minio_secret_keys: dict[str, pulumi.Output[str]] = field(default_factory=dict)


class ObjectStore(pulumi.ComponentResource):
    """A map of private, versioned, encrypted buckets with lifecycle rules.

    Attributes:
        bucket_names: Bucket key to physical bucket name (`<bucket_prefix>-<key>`).
        bucket_uris: Bucket key to URI: `s3://...` (AWS and MinIO) or `gs://...`.
        bucket_arns: AWS: bucket key to bucket ARN (empty elsewhere).
        endpoint: Local: MinIO's S3 endpoint (`http://minio.<ns>.svc.cluster.local:9000`).
        kms_key_arn: AWS: the store's KMS key ARN (what workload grants name).
        log_bucket_name: AWS: the access-log bucket.
    """

    bucket_names: dict[str, pulumi.Output[str]]
    bucket_uris: dict[str, pulumi.Output[str]]
    bucket_arns: dict[str, pulumi.Output[str]]
    endpoint: pulumi.Output[str] | None
    kms_key_arn: pulumi.Output[str] | None
    log_bucket_name: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ObjectStoreArgs, opts: pulumi.ResourceOptions | None = None
    ):
        # Validate everything before registering anything: a bad config changes nothing.
        prefix = args.config.bucket_prefix or model.default_bucket_prefix(*naming.environment())
        physical = model.physical_bucket_names(prefix, args.config.buckets)
        if args.cloud.type == "aws":
            model.check_bucket_name(
                f"{prefix}-{model.LOG_BUCKET_KEY}", "storage.bucket_prefix (access-log bucket)"
            )
        model.check_kms_key(args.cloud.type, args.config.kms_key)
        check_workload_identities(args.identities, args.config.buckets)
        if args.cloud.type == "local" and args.kubernetes is None:
            raise ValueError(
                "ObjectStoreArgs.kubernetes: a Kubernetes provider is required locally"
            )

        super().__init__("mlops:storage:ObjectStore", name, None, opts)
        built = _BACKENDS[args.cloud.type](self, name, args, prefix, physical)

        self.bucket_names = built.names
        self.bucket_uris = built.uris
        self.bucket_arns = built.arns
        self.endpoint = built.endpoint
        self.kms_key_arn = built.kms_key_arn
        self.log_bucket_name = built.log_bucket_name
        self._minio_secret_keys = built.minio_secret_keys
        self.register_outputs(
            {
                "bucket_names": self.bucket_names,
                "bucket_uris": self.bucket_uris,
                "bucket_arns": self.bucket_arns,
                "endpoint": self.endpoint,
                "kms_key_arn": self.kms_key_arn,
                "log_bucket_name": self.log_bucket_name,
            }
        )

    def minio_secret_key(self, identity: str) -> pulumi.Output[str]:
        """Local only: the generated MinIO secret key of `identity`, as a secret Output."""
        if identity not in self._minio_secret_keys:
            raise ValueError(
                f"workload_identities.{identity}: no MinIO user: pass it in "
                "ObjectStoreArgs.identities (local stacks only)"
            )
        return self._minio_secret_keys[identity]


def _stateful(parent: pulumi.Resource, protect: bool, **extra) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect, **extra)


def _json(fn: Callable[..., dict], *inputs) -> pulumi.Output[str]:
    return pulumi.Output.all(*inputs).apply(lambda values: json.dumps(fn(*values)))


# --- AWS --------------------------------------------------------------------------------------


def _build_aws(
    store: ObjectStore, name: str, args: ObjectStoreArgs, prefix: str, physical: dict[str, str]
) -> _Built:
    cloud = args.cloud
    assert isinstance(cloud, AwsCloud)
    config = args.config
    tags = dict(cloud.tags)
    child = pulumi.ResourceOptions(parent=store)

    # One key per store, not per bucket: the buckets share one trust boundary (the platform),
    # IAM and bucket policies already separate who reads what, and one key keeps the
    # workload-identity grants to a single ARN (and costs one key, not N).
    if config.kms_key is None:
        kms_key = aws.kms.Key(
            f"{name}-key",
            description=f"Object store {prefix}: SSE-KMS for every bucket",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            tags=tags,
            opts=_stateful(store, args.protect),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{prefix}-storage",
            target_key_id=kms_key.key_id,
            opts=child,
        )
        kms_key_arn: pulumi.Output[str] = kms_key.arn
    else:
        kms_key_arn = pulumi.Output.from_input(config.kms_key)

    account_id = aws.get_caller_identity_output(
        opts=pulumi.InvokeOutputOptions(parent=store)
    ).account_id

    # The access-log bucket. S3 server access logging delivers only to buckets encrypted with
    # SSE-S3 (not SSE-KMS), so this one bucket uses AES256.
    log_name = f"{prefix}-{model.LOG_BUCKET_KEY}"
    log_bucket = aws.s3.Bucket(
        f"{name}-{model.LOG_BUCKET_KEY}",
        bucket=log_name,
        force_destroy=False,
        tags=tags,
        opts=_stateful(store, args.protect),
    )
    log_pab = _private(f"{name}-{model.LOG_BUCKET_KEY}", log_bucket, child)
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-{model.LOG_BUCKET_KEY}-encryption",
        bucket=log_bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=child,
    )
    aws.s3.BucketLifecycleConfiguration(
        f"{name}-{model.LOG_BUCKET_KEY}-lifecycle",
        bucket=log_bucket.id,
        # the pure model's plain dicts (BucketLifecycleConfigurationRuleArgsDict's shape)
        rules=model.log_bucket_lifecycle_rules(config.access_log_retention_days),  # type: ignore[arg-type]
        opts=child,
    )

    names: dict[str, pulumi.Output[str]] = {}
    uris: dict[str, pulumi.Output[str]] = {}
    arns: dict[str, pulumi.Output[str]] = {}
    for key, bucket_config in config.buckets.items():
        base = f"{name}-{key}"
        bucket = aws.s3.Bucket(
            base,
            bucket=physical[key],
            force_destroy=False,
            tags=tags,
            opts=_stateful(store, args.protect),
        )
        pab = _private(base, bucket, child)
        versioning = aws.s3.BucketVersioning(
            f"{base}-versioning",
            bucket=bucket.id,
            versioning_configuration={
                "status": "Enabled" if bucket_config.versioning else "Suspended"
            },
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{base}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": kms_key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{base}-policy",
            bucket=bucket.id,
            policy=_json(model.bucket_policy, bucket.arn),
            opts=pulumi.ResourceOptions(parent=store, depends_on=[pab]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{base}-lifecycle",
            bucket=bucket.id,
            # the pure model's plain dicts (BucketLifecycleConfigurationRuleArgsDict's shape)
            rules=model.s3_lifecycle_rules(bucket_config.lifecycle),  # type: ignore[arg-type]
            # Rules on noncurrent versions need versioning to be in place first.
            opts=pulumi.ResourceOptions(parent=store, depends_on=[versioning]),
        )
        names[key] = bucket.bucket
        uris[key] = bucket.bucket.apply(lambda n: model.bucket_uri("s3", n))
        arns[key] = bucket.arn

    log_policy = aws.s3.BucketPolicy(
        f"{name}-{model.LOG_BUCKET_KEY}-policy",
        bucket=log_bucket.id,
        policy=pulumi.Output.all(log_bucket.arn, account_id, *arns.values()).apply(
            lambda v: json.dumps(model.log_bucket_policy(v[0], v[2:], v[1]))
        ),
        opts=pulumi.ResourceOptions(parent=store, depends_on=[log_pab]),
    )
    for key in config.buckets:
        aws.s3.BucketLogging(
            f"{name}-{key}-logging",
            bucket=names[key],
            target_bucket=log_bucket.id,
            target_prefix=f"{physical[key]}/",
            opts=pulumi.ResourceOptions(parent=store, depends_on=[log_policy]),
        )

    return _Built(
        names=names,
        uris=uris,
        arns=arns,
        kms_key_arn=kms_key_arn,
        log_bucket_name=log_bucket.bucket,
    )


def _private(
    base: str, bucket: aws.s3.Bucket, child: pulumi.ResourceOptions
) -> aws.s3.BucketPublicAccessBlock:
    """All four public-access blocks on, and ACLs off (the bucket owner owns every object)."""
    aws.s3.BucketOwnershipControls(
        f"{base}-ownership",
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=child,
    )
    return aws.s3.BucketPublicAccessBlock(
        f"{base}-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )


# --- GCP --------------------------------------------------------------------------------------


def _build_gcp(
    store: ObjectStore, name: str, args: ObjectStoreArgs, prefix: str, physical: dict[str, str]
) -> _Built:
    cloud = args.cloud
    assert isinstance(cloud, GcpCloud)
    config = args.config
    names: dict[str, pulumi.Output[str]] = {}
    uris: dict[str, pulumi.Output[str]] = {}
    for key, bucket_config in config.buckets.items():
        bucket = gcp.storage.Bucket(  # type: ignore[call-overload]  # lifecycle_rules: plain dicts
            f"{name}-{key}",
            name=physical[key],
            project=cloud.project,
            # GCS reports locations upper-case; matching it avoids a perpetual diff.
            location=cloud.region.upper(),
            labels=dict(cloud.labels),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": bucket_config.versioning},
            lifecycle_rules=model.gcs_lifecycle_rules(bucket_config.lifecycle),
            encryption=(
                {"default_kms_key_name": config.kms_key} if config.kms_key is not None else None
            ),
            force_destroy=False,
            opts=_stateful(store, args.protect),
        )
        names[key] = bucket.name
        uris[key] = bucket.name.apply(lambda n: model.bucket_uri("gs", n))
    return _Built(names=names, uris=uris)


# --- Local (MinIO) ----------------------------------------------------------------------------


def _build_local(
    store: ObjectStore, name: str, args: ObjectStoreArgs, prefix: str, physical: dict[str, str]
) -> _Built:
    config = args.config
    namespace_name = config.minio.namespace
    k8s_child = pulumi.ResourceOptions(parent=store, provider=args.kubernetes)

    namespace = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata={
            "name": namespace_name,
            # MinIO runs as uid 1000 with an fsGroup; `baseline` admits it, `restricted` would
            # need chart changes the official chart does not expose for the post-install job.
            "labels": {"pod-security.kubernetes.io/enforce": "baseline"},
        },
        opts=k8s_child,
    )
    in_namespace = pulumi.ResourceOptions(
        parent=store, provider=args.kubernetes, depends_on=[namespace]
    )

    root_password = random.RandomPassword(
        f"{name}-root-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=store)
    )
    root_secret_name = f"{model.MINIO_FULLNAME}-root-credentials"
    root_secret = k8s.core.v1.Secret(
        f"{name}-root-credentials",
        metadata={"name": root_secret_name, "namespace": namespace_name},
        type="Opaque",
        string_data={
            "rootUser": model.MINIO_ROOT_USER,
            # pulumi's Input[U]: mypy solves U as Never for an Output argument
            "rootPassword": pulumi.Output.secret(root_password.result),  # type: ignore[arg-type]
        },
        opts=in_namespace,
    )

    secrets: list[pulumi.Resource] = [root_secret]
    secret_keys: dict[str, pulumi.Output[str]] = {}
    for identity in args.identities:
        password = random.RandomPassword(
            f"{name}-{identity}-secret-key",
            length=40,
            special=False,
            opts=pulumi.ResourceOptions(parent=store),
        )
        secret_keys[identity] = pulumi.Output.secret(password.result)
        secrets.append(
            k8s.core.v1.Secret(
                f"{name}-{identity}-user",
                metadata={
                    "name": model.minio_user_secret_name(identity),
                    "namespace": namespace_name,
                },
                type="Opaque",
                string_data={model.MINIO_USER_SECRET_KEY: secret_keys[identity]},
                opts=in_namespace,
            )
        )

    values = model.minio_values(config, physical, root_secret_name, args.identities)
    k8s.helm.v3.Release(
        f"{name}-minio",
        name=model.MINIO_FULLNAME,
        chart=MINIO.chart,
        version=MINIO.version,
        repository_opts={"repo": MINIO.repo},
        namespace=namespace_name,
        values=values,
        # The chart's PVC holds the data: uninstalling the release would delete it.
        opts=_stateful(
            store, args.protect, provider=args.kubernetes, depends_on=[namespace, *secrets]
        ),
    )
    endpoint = model.minio_endpoint(namespace_name)
    return _Built(
        names={key: pulumi.Output.from_input(n) for key, n in physical.items()},
        uris={
            key: pulumi.Output.from_input(model.bucket_uri("s3", n)) for key, n in physical.items()
        },
        endpoint=pulumi.Output.from_input(endpoint),
        minio_secret_keys=secret_keys,
    )


_BACKENDS: dict[str, Callable[..., _Built]] = {
    "aws": _build_aws,
    "gcp": _build_gcp,
    "local": _build_local,
}
