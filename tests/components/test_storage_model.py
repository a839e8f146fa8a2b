"""Object storage, pure layer: config validation, names, policy documents, lifecycle, values."""

import pytest
from pydantic import ValidationError

from mlops_platform.components.identity.model import WorkloadIdentityConfig
from mlops_platform.components.storage import model
from mlops_platform.components.storage.model import BucketConfig, LifecycleConfig, StorageConfig

ARN = "arn:aws:s3:::acme-prod-artifacts"


def _error(cls, data) -> str:
    with pytest.raises(ValidationError) as info:
        cls.model_validate(data)
    errors = info.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]) + ": " + errors[0]["msg"]


# --- config -----------------------------------------------------------------------------------


def test_defaults_are_three_versioned_buckets_with_secure_lifecycle():
    config = StorageConfig()
    assert list(config.buckets) == ["artifacts", "datasets", "features"]
    assert all(b.versioning for b in config.buckets.values())
    lifecycle = config.buckets["artifacts"].lifecycle
    assert lifecycle.noncurrent_version_expiration_days == 90
    assert lifecycle.abort_incomplete_multipart_upload_days == 7
    assert lifecycle.expiration_days is None
    assert config.bucket_prefix is None
    assert config.kms_key is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"buckets": {}},
            "buckets: Value error, at least one bucket is required",
        ),
        (
            {"buckets": {"Artifacts": {}}},
            "buckets: Value error, bucket key 'Artifacts' must be lowercase letters, digits or "
            "'-', starting and ending with a letter or digit",
        ),
        (
            {"buckets": {"access-logs": {}}},
            "buckets: Value error, bucket key 'access-logs' is reserved for the access-log bucket",
        ),
        (
            {"bucket_prefix": "Acme_Prod"},
            "bucket_prefix: Value error, bucket_prefix: bucket name 'Acme_Prod-access-logs' may "
            "only hold lowercase letters, digits and '-', and must start and end with a letter "
            "or digit",
        ),
        (
            {"bucket_prefix": "goog-acme"},
            "bucket_prefix: Value error, bucket_prefix: bucket name 'goog-acme-access-logs' uses "
            "a reserved prefix or the word 'google'",
        ),
        (
            {"buckets": {"artifacts": {"versioning": "sometimes"}}},
            "buckets.artifacts.versioning: Input should be a valid boolean, unable to interpret "
            "input",
        ),
        (
            {"buckets": {"artifacts": {"lifecycle": {"expire_days": 3}}}},
            "buckets.artifacts.lifecycle.expire_days: Extra inputs are not permitted",
        ),
        (
            {"backend": {"type": "minio", "storage_size": "ten gigs"}},
            "backend.minio.storage_size: Value error, storage_size 'ten gigs' is not a Kubernetes "
            "quantity (e.g. 10Gi, 250m)",
        ),
        (
            {"backend": {"type": "minio", "namespace": "MinIO"}},
            "backend.minio.namespace: Value error, namespace 'MinIO' must be a DNS label",
        ),
        (
            {"backend": {"type": "s3", "access_log_retention_days": 0}},
            "backend.s3.access_log_retention_days: Input should be greater than 0",
        ),
    ],
)
def test_storage_config_errors_name_the_field(data, message):
    assert _error(StorageConfig, data) == message


def test_prefix_too_long_for_one_bucket_names_that_bucket():
    # 46 + 1 + len("training-datasets") = 64 > 63; the access-log name (58) still fits.
    message = _error(
        StorageConfig, {"bucket_prefix": "a" * 46, "buckets": {"training-datasets": {}}}
    )
    assert message == (
        ": Value error, storage.buckets.training-datasets: bucket name '"
        + "a" * 46
        + "-training-datasets' is 64 characters; bucket names have 3 to 63"
    )


@pytest.mark.parametrize(
    ("lifecycle", "message"),
    [
        (
            {"transition_to_infrequent_access_days": 10},
            ": Value error, transition_to_infrequent_access_days must be at least 30 (S3 "
            "STANDARD_IA minimum), got 10",
        ),
        (
            {"transition_to_infrequent_access_days": 60, "transition_to_cold_days": 60},
            ": Value error, transition_to_cold_days (60) must be greater than "
            "transition_to_infrequent_access_days (60)",
        ),
        (
            {"transition_to_cold_days": 90, "expiration_days": 30},
            ": Value error, expiration_days (30) must be greater than the last transition "
            "(90 days)",
        ),
        (
            {"noncurrent_version_expiration_days": -1},
            "noncurrent_version_expiration_days: Input should be greater than 0",
        ),
    ],
)
def test_lifecycle_errors(lifecycle, message):
    assert _error(LifecycleConfig, lifecycle) == message


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("ab", "f: bucket name 'ab' is 2 characters; bucket names have 3 to 63"),
        ("a" * 64, f"f: bucket name '{'a' * 64}' is 64 characters; bucket names have 3 to 63"),
        (
            "my.bucket",
            "f: bucket name 'my.bucket' may only hold lowercase letters, digits and '-', and "
            "must start and end with a letter or digit",
        ),
        (
            "-abc",
            "f: bucket name '-abc' may only hold lowercase letters, digits and '-', and must "
            "start and end with a letter or digit",
        ),
        ("xn--abc", "f: bucket name 'xn--abc' uses a reserved prefix or the word 'google'"),
        (
            "my-google-data",
            "f: bucket name 'my-google-data' uses a reserved prefix or the word 'google'",
        ),
        ("data-s3alias", "f: bucket name 'data-s3alias' ends with a suffix S3 reserves"),
    ],
)
def test_bucket_name_rules(name, message):
    with pytest.raises(ValueError) as info:
        model.check_bucket_name(name, "f")
    assert str(info.value) == message


def test_valid_names_pass_through():
    assert model.check_bucket_name("acme-prod-artifacts", "f") == "acme-prod-artifacts"
    assert model.physical_bucket_names("acme-prod", {"artifacts": 1, "datasets": 2}) == {
        "artifacts": "acme-prod-artifacts",
        "datasets": "acme-prod-datasets",
    }


@pytest.mark.parametrize(
    ("project", "stack", "prefix"),
    [
        ("mlops", "prod", "mlops-prod"),
        ("MLOps", "Dev_EU", "mlops-dev-eu"),
        ("mlops", "org/team--x", "mlops-org-team-x"),
    ],
)
def test_default_prefix(project, stack, prefix):
    assert model.default_bucket_prefix(project, stack) == prefix


def test_uris():
    assert model.bucket_uri("s3", "acme-artifacts") == "s3://acme-artifacts"
    assert model.bucket_uri("gs", "acme-artifacts") == "gs://acme-artifacts"


# --- AWS documents ----------------------------------------------------------------------------


def test_bucket_policy_denies_everything_without_tls():
    assert model.bucket_policy(ARN) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [ARN, f"{ARN}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def test_log_bucket_policy_allows_only_the_logging_service_for_our_buckets():
    logs = "arn:aws:s3:::acme-prod-access-logs"
    sources = ["arn:aws:s3:::acme-prod-datasets", "arn:aws:s3:::acme-prod-artifacts"]
    policy = model.log_bucket_policy(logs, sources, "123456789012")
    assert policy["Statement"][0] == model.tls_only_statement(logs)
    assert policy["Statement"][1] == {
        "Sid": "AllowS3ServerAccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{logs}/*",
        "Condition": {
            "ArnLike": {
                "aws:SourceArn": [
                    "arn:aws:s3:::acme-prod-artifacts",
                    "arn:aws:s3:::acme-prod-datasets",
                ]
            },
            "StringEquals": {"aws:SourceAccount": "123456789012"},
        },
    }
    assert len(policy["Statement"]) == 2


@pytest.mark.parametrize(
    ("lifecycle", "rules"),
    [
        (
            {},
            [
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": 90},
                },
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                },
            ],
        ),
        (
            {
                "noncurrent_version_expiration_days": None,
                "abort_incomplete_multipart_upload_days": None,
            },
            [],
        ),
        (
            {
                "noncurrent_version_expiration_days": 30,
                "transition_to_infrequent_access_days": 30,
                "transition_to_cold_days": 90,
                "expiration_days": 365,
                "abort_incomplete_multipart_upload_days": 2,
            },
            [
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": 30},
                },
                {
                    "id": "transition-current-versions",
                    "status": "Enabled",
                    "filter": {},
                    "transitions": [
                        {"days": 30, "storage_class": "STANDARD_IA"},
                        {"days": 90, "storage_class": "GLACIER_IR"},
                    ],
                },
                {
                    "id": "expire-current-versions",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": 365},
                },
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 2},
                },
            ],
        ),
    ],
)
def test_s3_lifecycle_rules(lifecycle, rules):
    assert model.s3_lifecycle_rules(LifecycleConfig.model_validate(lifecycle)) == rules


def test_gcs_lifecycle_rules_mirror_the_s3_intent():
    lifecycle = LifecycleConfig(
        noncurrent_version_expiration_days=30,
        transition_to_infrequent_access_days=30,
        transition_to_cold_days=90,
        expiration_days=365,
        abort_incomplete_multipart_upload_days=2,
    )
    assert model.gcs_lifecycle_rules(lifecycle) == [
        {
            "action": {"type": "Delete"},
            "condition": {"days_since_noncurrent_time": 30, "with_state": "ARCHIVED"},
        },
        {
            "action": {"type": "SetStorageClass", "storage_class": "NEARLINE"},
            "condition": {"age": 30, "with_state": "LIVE"},
        },
        {
            "action": {"type": "SetStorageClass", "storage_class": "COLDLINE"},
            "condition": {"age": 90, "with_state": "LIVE"},
        },
        {"action": {"type": "Delete"}, "condition": {"age": 365, "with_state": "LIVE"}},
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 2}},
    ]
    assert model.gcs_lifecycle_rules(LifecycleConfig(noncurrent_version_expiration_days=None)) == [
        {"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 7}}
    ]


@pytest.mark.parametrize(
    ("cloud", "key", "message"),
    [
        ("aws", None, None),
        (
            "aws",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
        ),
        (
            "aws",
            "arn:aws:kms:us-east-1:123456789012:alias/storage",
            "storage.backend.kms_key: 'arn:aws:kms:us-east-1:123456789012:alias/storage' must be "
            "an AWS KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) on cloud 'aws'",
        ),
        ("gcp", "projects/p/locations/europe-west4/keyRings/r/cryptoKeys/k", None),
        (
            "gcp",
            "arn:aws:kms:us-east-1:123456789012:key/abc",
            "storage.backend.kms_key: 'arn:aws:kms:us-east-1:123456789012:key/abc' must be "
            "projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> on cloud 'gcp'",
        ),
        (
            "local",
            "projects/p/locations/l/keyRings/r/cryptoKeys/k",
            "storage.backend.kms_key: 'projects/p/locations/l/keyRings/r/cryptoKeys/k' must be "
            "unset: local MinIO does not use a KMS key on cloud 'local'",
        ),
    ],
)
def test_kms_key_must_match_the_cloud(cloud, key, message):
    if message is None:
        model.check_kms_key(cloud, key)
        return
    with pytest.raises(ValueError) as info:
        model.check_kms_key(cloud, key)
    assert str(info.value) == message


# --- MinIO values -----------------------------------------------------------------------------


def test_minio_values_reference_secrets_by_name_and_override_the_default_console_user():
    config = StorageConfig(
        buckets={"artifacts": BucketConfig(), "scratch": BucketConfig(versioning=False)},
        backend={"type": "minio", "storage_size": "5Gi", "storage_class": "standard"},
    )
    names = {"artifacts": "dev-artifacts", "scratch": "dev-scratch"}
    identities = {
        "trainer": WorkloadIdentityConfig(
            namespace="ml", service_account="trainer", buckets={"artifacts": "read"}
        )
    }
    values = model.minio_values(config, names, "minio-root-credentials", identities)
    assert values == {
        "fullnameOverride": "minio",
        "mode": "standalone",
        "replicas": 1,
        "existingSecret": "minio-root-credentials",
        "persistence": {"enabled": True, "size": "5Gi", "storageClass": "standard"},
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        },
        "buckets": [
            {"name": "dev-artifacts", "policy": "none", "purge": False, "versioning": True},
            {"name": "dev-scratch", "policy": "none", "purge": False, "versioning": False},
        ],
        "policies": [
            {
                "name": "trainer-buckets",
                "statements": [
                    {
                        "resources": ["arn:aws:s3:::dev-artifacts"],
                        "actions": ["s3:GetBucketLocation", "s3:ListBucket"],
                    },
                    {
                        "resources": ["arn:aws:s3:::dev-artifacts/*"],
                        "actions": ["s3:GetObject", "s3:GetObjectVersion"],
                    },
                ],
            }
        ],
        "users": [
            {
                "accessKey": "trainer",
                "existingSecret": "minio-user-trainer",
                "existingSecretKey": "secretKey",
                "policy": "trainer-buckets",
            }
        ],
    }


def test_minio_values_without_identities_still_replace_the_chart_default_users():
    values = model.minio_values(
        StorageConfig(),
        {"artifacts": "a-artifacts", "datasets": "a-d", "features": "a-f"},
        "root",
        {},
    )
    assert values["users"] == []
    assert values["policies"] == []
    assert "storageClass" not in values["persistence"]


def test_minio_endpoint():
    assert model.minio_endpoint("minio") == "http://minio.minio.svc.cluster.local:9000"
