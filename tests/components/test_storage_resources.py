"""Object storage, resource layer under recording mocks: exact types, names, inputs, parents."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest
from pulumi.runtime.sync_await import _sync_await

from mlops_platform import manifests, mocks
from mlops_platform.components import versions
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.identity.model import WorkloadIdentityConfig
from mlops_platform.components.storage import ObjectStore, ObjectStoreArgs, StorageConfig, model
from mlops_platform.components.storage.model import GcsConfig, S3Config
from tests.components.component_support import output_value

AWS = AwsCloud(type="aws", region="us-east-1", tags={"team": "ml"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4", labels={"team": "ml"})
LOCAL = LocalCloud(type="local")
CONFIG = StorageConfig(bucket_prefix="acme-dev", buckets={"artifacts": {}, "datasets": {}})
IDENTITIES = {
    "trainer": WorkloadIdentityConfig(
        namespace="ml", service_account="trainer", buckets={"artifacts": "read_write"}
    )
}


def _run(cloud, config=CONFIG, protect=False, identities=None):
    """Build one ObjectStore; return the recording monitor and the component."""
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}") if cloud.type == "local" else None
        built["store"] = ObjectStore(
            "storage",
            ObjectStoreArgs(
                cloud=cloud,
                config=config,
                protect=protect,
                kubernetes=provider,
                identities=identities or {},
            ),
        )

    monitor = mocks.run(program)
    return monitor, built["store"]


def _children(monitor):
    store = monitor.named("storage").urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == store)


# --- AWS --------------------------------------------------------------------------------------


def test_aws_creates_exactly_these_resources_under_the_store():
    monitor, _ = _run(AWS)
    per_bucket = [
        ("aws:s3/bucket:Bucket", "{b}"),
        ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "{b}-lifecycle"),
        ("aws:s3/bucketLogging:BucketLogging", "{b}-logging"),
        ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "{b}-ownership"),
        ("aws:s3/bucketPolicy:BucketPolicy", "{b}-policy"),
        ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "{b}-public-access-block"),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "{b}-encryption",
        ),
        ("aws:s3/bucketVersioning:BucketVersioning", "{b}-versioning"),
    ]
    expected = [
        (t, n.format(b=f"storage-{key}"))
        for key in ("artifacts", "datasets")
        for t, n in per_bucket
    ]
    logs = [(t, n.format(b="storage-access-logs")) for t, n in per_bucket]
    expected += [x for x in logs if "Logging" not in x[0] and "Versioning" not in x[0]]
    expected += [("aws:kms/key:Key", "storage-key"), ("aws:kms/alias:Alias", "storage-key-alias")]
    assert _children(monitor) == sorted(expected)
    assert monitor.named("storage").type == "mlops:storage:ObjectStore"


def test_aws_buckets_are_named_tagged_and_never_force_destroyed():
    monitor, _ = _run(AWS)
    for key in ("artifacts", "datasets", "access-logs"):
        bucket = monitor.named(f"storage-{key}")
        assert bucket.inputs == {
            "bucket": f"acme-dev-{key}",
            "forceDestroy": False,
            "tags": {"team": "ml"},
        }


def test_aws_sse_kms_uses_the_store_key_with_bucket_keys():
    monitor, store = _run(AWS)
    key = monitor.named("storage-key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    key_arn = output_value(store.kms_key_arn)
    assert key_arn.startswith("arn:aws:kms:")
    assert monitor.named("storage-key-alias").inputs["name"] == "alias/acme-dev-storage"
    for bucket in ("artifacts", "datasets"):
        assert monitor.named(f"storage-{bucket}-encryption").inputs == {
            "bucket": f"storage-{bucket}-id",
            "rules": [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": key_arn,
                    },
                    "bucketKeyEnabled": True,
                }
            ],
        }


def test_aws_existing_key_is_used_and_none_created():
    existing = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab"
    config = CONFIG.model_copy(update={"backend": S3Config(kms_key=existing)})
    monitor, store = _run(AWS, config=config)
    assert monitor.of_type("aws:kms/key:Key") == []
    assert output_value(store.kms_key_arn) == existing
    rule = monitor.named("storage-artifacts-encryption").inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == existing


def test_aws_every_bucket_blocks_all_public_access_and_disables_acls():
    monitor, _ = _run(AWS)
    for key in ("artifacts", "datasets", "access-logs"):
        assert monitor.named(f"storage-{key}-public-access-block").inputs == {
            "bucket": f"storage-{key}-id",
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
        }
        assert monitor.named(f"storage-{key}-ownership").inputs["rule"] == {
            "objectOwnership": "BucketOwnerEnforced"
        }


def test_aws_bucket_policy_is_tls_only_and_waits_for_the_public_access_block():
    monitor, _ = _run(AWS)
    policy = monitor.named("storage-artifacts-policy")
    assert json.loads(policy.inputs["policy"]) == model.bucket_policy(
        "arn:aws:s3:::acme-dev-artifacts"
    )
    block = monitor.named("storage-artifacts-public-access-block").urn
    assert block in policy.depends_on


def test_aws_lifecycle_rules_follow_versioning():
    monitor, _ = _run(AWS)
    lifecycle = monitor.named("storage-datasets-lifecycle")
    assert lifecycle.inputs["rules"] == [
        {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {},
            "noncurrentVersionExpiration": {"noncurrentDays": 90},
        },
        {
            "id": "abort-incomplete-multipart-uploads",
            "status": "Enabled",
            "filter": {},
            "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
        },
    ]
    assert monitor.named("storage-datasets-versioning").urn in lifecycle.depends_on
    assert monitor.named("storage-datasets-versioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"
    }


def test_aws_versioning_off_is_suspended():
    config = StorageConfig(bucket_prefix="acme-dev", buckets={"scratch": {"versioning": False}})
    monitor, _ = _run(AWS, config=config)
    assert monitor.named("storage-scratch-versioning").inputs["versioningConfiguration"] == {
        "status": "Suspended"
    }


def test_aws_access_logs_go_to_a_private_sse_s3_bucket_the_logging_service_may_write():
    monitor, store = _run(AWS)
    for key in ("artifacts", "datasets"):
        logging = monitor.named(f"storage-{key}-logging")
        assert logging.inputs == {
            "bucket": f"acme-dev-{key}",
            "targetBucket": "storage-access-logs-id",
            "targetPrefix": f"acme-dev-{key}/",
        }
        assert monitor.named("storage-access-logs-policy").urn in logging.depends_on
    assert monitor.named("storage-access-logs-encryption").inputs["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]
    assert json.loads(monitor.named("storage-access-logs-policy").inputs["policy"]) == (
        model.log_bucket_policy(
            "arn:aws:s3:::acme-dev-access-logs",
            ["arn:aws:s3:::acme-dev-artifacts", "arn:aws:s3:::acme-dev-datasets"],
            "123456789012",
        )
    )
    assert monitor.named("storage-access-logs-lifecycle").inputs["rules"] == [
        {"id": "expire-access-logs", "status": "Enabled", "filter": {}, "expiration": {"days": 365}}
    ]
    assert output_value(store.log_bucket_name) == "acme-dev-access-logs"


def test_aws_outputs():
    _, store = _run(AWS)
    assert {k: output_value(v) for k, v in store.bucket_names.items()} == {
        "artifacts": "acme-dev-artifacts",
        "datasets": "acme-dev-datasets",
    }
    assert {k: output_value(v) for k, v in store.bucket_uris.items()} == {
        "artifacts": "s3://acme-dev-artifacts",
        "datasets": "s3://acme-dev-datasets",
    }
    assert output_value(store.bucket_arns["artifacts"]) == "arn:aws:s3:::acme-dev-artifacts"
    assert store.endpoint is None


@pytest.mark.parametrize("protect", [True, False])
def test_aws_stateful_resources_follow_protect(protect):
    monitor, _ = _run(AWS, protect=protect)
    stateful = {"storage-artifacts", "storage-datasets", "storage-access-logs", "storage-key"}
    for record in monitor.recorded:
        expected = protect and record.name in stateful
        assert (record.name, record.protect, record.retain_on_delete) == (
            record.name,
            expected,
            expected,
        )


def test_default_prefix_is_project_and_stack():
    monitor, _ = _run(AWS, config=StorageConfig(buckets={"artifacts": {}}))
    assert monitor.named("storage-artifacts").inputs["bucket"] == "mlops-test-artifacts"


# --- GCP --------------------------------------------------------------------------------------


def test_gcp_bucket_is_private_uniform_versioned_with_lifecycle():
    monitor, store = _run(GCP)
    assert _children(monitor) == [
        ("gcp:storage/bucket:Bucket", "storage-artifacts"),
        ("gcp:storage/bucket:Bucket", "storage-datasets"),
    ]
    assert monitor.named("storage-artifacts").inputs == {
        "name": "acme-dev-artifacts",
        "project": "acme-ml",
        "location": "EUROPE-WEST4",
        "labels": {"team": "ml"},
        "uniformBucketLevelAccess": True,
        "publicAccessPrevention": "enforced",
        "versioning": {"enabled": True},
        "forceDestroy": False,
        "lifecycleRules": [
            {
                "action": {"type": "Delete"},
                "condition": {"daysSinceNoncurrentTime": 90, "withState": "ARCHIVED"},
            },
            {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 7}},
        ],
    }
    assert output_value(store.bucket_uris["datasets"]) == "gs://acme-dev-datasets"
    assert store.kms_key_arn is None and store.endpoint is None and store.bucket_arns == {}


def test_gcp_cmek_when_a_key_is_given():
    key = "projects/acme-ml/locations/europe-west4/keyRings/ml/cryptoKeys/storage"
    monitor, _ = _run(GCP, config=CONFIG.model_copy(update={"backend": GcsConfig(kms_key=key)}))
    assert monitor.named("storage-datasets").inputs["encryption"] == {"defaultKmsKeyName": key}


@pytest.mark.parametrize("protect", [True, False])
def test_gcp_buckets_follow_protect(protect):
    monitor, _ = _run(GCP, protect=protect)
    for bucket in monitor.of_type("gcp:storage/bucket:Bucket"):
        assert (bucket.protect, bucket.retain_on_delete) == (protect, protect)


# --- Local (MinIO) ----------------------------------------------------------------------------


def test_local_minio_release_is_the_pinned_chart_with_values_from_the_model():
    monitor, store = _run(LOCAL, identities=IDENTITIES)
    release = monitor.named("storage-minio")
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert release.parent == monitor.named("storage").urn
    assert (versions.MINIO.repo, versions.MINIO.chart) == ("https://charts.min.io/", "minio")
    assert release.inputs["chart"] == "minio"
    assert release.inputs["version"] == "5.4.0"
    assert release.inputs["repositoryOpts"] == {"repo": "https://charts.min.io/"}
    assert release.inputs["name"] == "minio"
    assert release.inputs["namespace"] == "minio"
    assert release.inputs["values"] == model.minio_values(
        CONFIG,
        {"artifacts": "acme-dev-artifacts", "datasets": "acme-dev-datasets"},
        "minio-root-credentials",
        IDENTITIES,
    )
    assert release.secret_inputs == set()
    for dependency in ("storage-namespace", "storage-root-credentials", "storage-trainer-user"):
        assert monitor.named(dependency).urn in release.depends_on
    assert output_value(store.endpoint) == "http://minio.minio.svc.cluster.local:9000"
    assert output_value(store.bucket_uris["artifacts"]) == "s3://acme-dev-artifacts"


def test_local_credentials_are_generated_and_only_inside_secrets():
    monitor, store = _run(LOCAL, identities=IDENTITIES)
    root = monitor.named("storage-root-credentials")
    user = monitor.named("storage-trainer-user")
    root_password = monitor.named("storage-root-password")
    user_password = monitor.named("storage-trainer-secret-key")
    assert root_password.type == user_password.type == "random:index/randomPassword:RandomPassword"
    assert root.inputs["metadata"] == {"name": "minio-root-credentials", "namespace": "minio"}
    assert user.inputs["metadata"] == {"name": "minio-user-trainer", "namespace": "minio"}
    assert root.secret_inputs == {"stringData"}
    assert user.secret_inputs == {"stringData"}
    assert set(root.inputs["stringData"]) == {"rootUser", "rootPassword"}
    assert set(user.inputs["stringData"]) == {"secretKey"}
    # The generated values appear nowhere but in those two Secrets.
    generated = {
        output_value(store.minio_secret_key("trainer")),
        root.inputs["stringData"]["rootPassword"],
    }
    assert user.inputs["stringData"]["secretKey"] in generated
    for record in monitor.recorded:
        if record.name in {"storage-root-credentials", "storage-trainer-user"}:
            continue
        text = json.dumps(record.inputs)
        assert not any(secret in text for secret in generated), record.name
    assert _sync_await(store.minio_secret_key("trainer").is_secret()) is True


def test_local_kubernetes_objects_are_valid_for_the_pinned_version():
    monitor, _ = _run(LOCAL, identities=IDENTITIES)
    namespace = monitor.named("storage-namespace")
    assert namespace.inputs["metadata"]["labels"] == {
        "pod-security.kubernetes.io/enforce": "baseline"
    }
    for record in monitor.recorded:
        if record.type.startswith("kubernetes:core/v1:"):
            manifests.validate(record.inputs)
            assert record.provider is not None and record.provider.endswith("::k8s::k8s-id")


@pytest.mark.parametrize("protect", [True, False])
def test_local_release_holding_the_volume_follows_protect(protect):
    monitor, _ = _run(LOCAL, protect=protect)
    for record in monitor.recorded:
        expected = protect and record.name == "storage-minio"
        assert (record.name, record.protect, record.retain_on_delete) == (
            record.name,
            expected,
            expected,
        )


# --- errors change nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "config", "identities", "message"),
    [
        (
            AWS,
            CONFIG.model_copy(update={"backend": S3Config(kms_key="alias/storage")}),
            {},
            "storage.backend.kms_key: 'alias/storage' must be an AWS KMS key ARN "
            "(arn:aws:kms:<region>:<account>:key/<id>) on cloud 'aws'",
        ),
        (
            GCP,
            CONFIG,
            {
                "trainer": WorkloadIdentityConfig(
                    namespace="ml", service_account="t", buckets={"models": "read"}
                )
            },
            "workload_identities.trainer.buckets: unknown bucket(s) 'models'; storage.buckets "
            "has 'artifacts', 'datasets'",
        ),
        (
            LOCAL,
            CONFIG,
            {},
            "ObjectStoreArgs.kubernetes: a Kubernetes provider is required locally",
        ),
        (
            AWS,
            StorageConfig(buckets={"a" * 60: {}}),
            {},
            f"storage.buckets.{'a' * 60}: bucket name 'mlops-test-{'a' * 60}' is 71 characters; "
            "bucket names have 3 to 63",
        ),
    ],
)
def test_invalid_input_fails_before_anything_is_registered(cloud, config, identities, message):
    errors = []

    def program():
        try:
            ObjectStore(
                "storage", ObjectStoreArgs(cloud=cloud, config=config, identities=identities)
            )
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == [message]
    assert monitor.recorded == []


def test_minio_secret_key_of_an_unknown_identity_is_a_clear_error():
    _, store = _run(LOCAL, identities=IDENTITIES)
    with pytest.raises(ValueError) as info:
        store.minio_secret_key("scorer")
    assert str(info.value) == (
        "workload_identities.scorer: no MinIO user: pass it in ObjectStoreArgs.identities "
        "(local stacks only)"
    )
    assert isinstance(store, pulumi.ComponentResource)
