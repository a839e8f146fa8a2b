"""Workload identity, pure layer: config validation, trust and access policies, names."""

import pytest
from pydantic import ValidationError

from mlops_platform.components.identity import model
from mlops_platform.components.identity.model import WorkloadIdentityConfig

PROVIDER = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"
KEY = "arn:aws:kms:us-east-1:123456789012:key/k-1"


def _config(**overrides) -> WorkloadIdentityConfig:
    data = {"namespace": "ml", "service_account": "trainer", "buckets": {"artifacts": "read"}}
    return WorkloadIdentityConfig.model_validate({**data, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"namespace": "ML"},
            "namespace: Value error, namespace 'ML' must be a DNS label: at most 63 lowercase "
            "letters, digits or '-', starting and ending with a letter or digit",
        ),
        (
            {"service_account": "trainer-"},
            "service_account: Value error, service_account 'trainer-' must be a DNS label: at "
            "most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        ),
        (
            {"buckets": {"artifacts": "write"}},
            "buckets.artifacts: Input should be 'read' or 'read_write'",
        ),
        (
            {"buckets": {}},
            "buckets: Dictionary should have at least 1 item after validation, not 0",
        ),
        (
            {"gcp_account_id": "sa"},
            "gcp_account_id: Value error, gcp_account_id 'sa' is not a valid Google service "
            "account id: 6-30 lowercase letters, digits or '-', starting with a letter and not "
            "ending with '-'",
        ),
        ({"role": "admin"}, "role: Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_field(overrides, message):
    with pytest.raises(ValidationError) as info:
        _config(**overrides)
    errors = info.value.errors()
    assert len(errors) == 1
    assert ".".join(map(str, errors[0]["loc"])) + ": " + errors[0]["msg"] == message


def test_unknown_bucket_is_named_with_the_known_ones():
    config = _config(buckets={"artifacts": "read", "models": "read_write", "zz": "read"})
    with pytest.raises(ValueError) as info:
        model.check_buckets("trainer", config, ["datasets", "artifacts"])
    assert str(info.value) == (
        "workload_identities.trainer.buckets: unknown bucket(s) 'models', 'zz'; "
        "storage.buckets has 'artifacts', 'datasets'"
    )
    model.check_buckets("trainer", _config(), ["artifacts"])  # known: no error


@pytest.mark.parametrize(
    ("name", "ok"),
    [("kfp", True), ("trainer-1", True), ("ab", False), ("Trainer", False), ("a" * 41, False)],
)
def test_identity_names(name, ok):
    if ok:
        assert model.check_identity_name(name) == name
        return
    with pytest.raises(ValueError) as info:
        model.check_identity_name(name)
    assert str(info.value) == (
        f"workload_identities.{name}: the identity name must be 3-40 lowercase letters, "
        "digits or '-', starting and ending with a letter or digit"
    )


@pytest.mark.parametrize(
    ("issuer", "expected_key"),
    [
        (ISSUER, "oidc.eks.us-east-1.amazonaws.com/id/ABC"),
        (ISSUER + "/", "oidc.eks.us-east-1.amazonaws.com/id/ABC"),
        ("oidc.eks.us-east-1.amazonaws.com/id/ABC", "oidc.eks.us-east-1.amazonaws.com/id/ABC"),
    ],
)
def test_irsa_trust_policy_is_exactly_one_service_account(issuer, expected_key):
    assert model.irsa_trust_policy(PROVIDER, issuer, "ml", "trainer") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{expected_key}:sub": "system:serviceaccount:ml:trainer",
                        f"{expected_key}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


ARNS = {"artifacts": "arn:aws:s3:::p-artifacts", "datasets": "arn:aws:s3:::p-datasets"}


def test_s3_access_policy_read_only():
    assert model.s3_access_policy(ARNS, {"datasets": "read"}, KEY) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DatasetsBucket",
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
                "Resource": "arn:aws:s3:::p-datasets",
            },
            {
                "Sid": "DatasetsObjects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": "arn:aws:s3:::p-datasets/*",
            },
            {"Sid": "StoreKey", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY},
        ],
    }


def test_s3_access_policy_read_write_grants_writes_and_data_keys():
    policy = model.s3_access_policy(ARNS, {"datasets": "read", "artifacts": "read_write"}, KEY)
    assert [s["Sid"] for s in policy["Statement"]] == [
        "ArtifactsBucket",
        "ArtifactsObjects",
        "DatasetsBucket",
        "DatasetsObjects",
        "StoreKey",
    ]
    assert policy["Statement"][0]["Action"] == [
        "s3:GetBucketLocation",
        "s3:ListBucket",
        "s3:ListBucketMultipartUploads",
    ]
    assert policy["Statement"][1] == {
        "Sid": "ArtifactsObjects",
        "Effect": "Allow",
        "Action": [
            "s3:AbortMultipartUpload",
            "s3:DeleteObject",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:ListMultipartUploadParts",
            "s3:PutObject",
        ],
        "Resource": "arn:aws:s3:::p-artifacts/*",
    }
    assert policy["Statement"][4]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    # Nothing anywhere grants a wildcard action or resource.
    for statement in policy["Statement"]:
        assert "*" not in statement["Action"] and statement["Resource"] != "*"


def test_s3_access_policy_without_key_has_no_kms_statement():
    policy = model.s3_access_policy(ARNS, {"datasets": "read"}, None)
    assert [s["Sid"] for s in policy["Statement"]] == ["DatasetsBucket", "DatasetsObjects"]


def test_gcp_roles_and_member():
    assert model.GCS_ROLES == {
        "read": "roles/storage.objectViewer",
        "read_write": "roles/storage.objectUser",
    }
    assert (
        model.workload_identity_member("acme-prod.svc.id.goog", "ml", "trainer")
        == "serviceAccount:acme-prod.svc.id.goog[ml/trainer]"
    )


@pytest.mark.parametrize(
    ("name", "overrides", "expected", "error"),
    [
        ("kfp", {}, "wi-kfp", None),
        ("trainer", {"gcp_account_id": "ml-trainer"}, "ml-trainer", None),
        (
            "a" * 28,
            {},
            None,
            f"workload_identities.{'a' * 28} (set gcp_account_id to choose another id) "
            f"'wi-{'a' * 28}' is not a valid Google service account id: 6-30 lowercase letters, "
            "digits or '-', starting with a letter and not ending with '-'",
        ),
    ],
)
def test_gcp_account_id(name, overrides, expected, error):
    config = _config(**overrides)
    if error is None:
        assert model.gcp_account_id(name, config) == expected
        return
    with pytest.raises(ValueError) as info:
        model.gcp_account_id(name, config)
    assert str(info.value) == error


def test_minio_policy_and_secret_names():
    assert model.minio_policy("kfp", {"p-datasets": "read"}) == {
        "name": "kfp-buckets",
        "statements": [
            {
                "resources": ["arn:aws:s3:::p-datasets"],
                "actions": ["s3:GetBucketLocation", "s3:ListBucket"],
            },
            {
                "resources": ["arn:aws:s3:::p-datasets/*"],
                "actions": ["s3:GetObject", "s3:GetObjectVersion"],
            },
        ],
    }
    assert model.credentials_secret_name("trainer") == "trainer-s3-credentials"


def test_check_workload_identities_for_the_root_config():
    good = {"trainer": _config(), "scorer": _config(buckets={"features": "read"})}
    model.check_workload_identities(good, ["artifacts", "features"])
    with pytest.raises(ValueError) as info:
        model.check_workload_identities({"x": _config()}, ["artifacts"])
    assert str(info.value) == (
        "workload_identities.x: the identity name must be 3-40 lowercase letters, digits or "
        "'-', starting and ending with a letter or digit"
    )
    with pytest.raises(ValueError) as info:
        model.check_workload_identities(good, ["artifacts"])
    assert str(info.value) == (
        "workload_identities.scorer.buckets: unknown bucket(s) 'features'; storage.buckets has "
        "'artifacts'"
    )


# --- extra grants -----------------------------------------------------------------------------


def test_grant_keys_and_roles():
    model.check_grant("serving", "kafka", ["roles/managedkafka.client"])
    assert model.role_slug("roles/managedkafka.client") == "managedkafka-client"
    assert model.role_slug("roles/pubsub.publisher") == "pubsub-publisher"


@pytest.mark.parametrize(
    ("key", "roles", "message"),
    [
        ("Kafka", [], "workload_identities.serving.grants.Kafka: the key must be 1-32"),
        ("k" * 33, [], "the key must be 1-32"),
        ("role", [], "workload_identities.serving.grants.role: the key names a child"),
        ("buckets", [], "grants.buckets: the key names a child the identity already has"),
        ("kafka", ["owner"], "grants.kafka: 'owner' is not a predefined role (roles/...)"),
    ],
)
def test_grant_errors_name_the_grant(key, roles, message):
    with pytest.raises(ValueError) as info:
        model.check_grant("serving", key, roles)
    assert message in str(info.value)


def test_local_credentials_are_the_aws_sdks_own_files(tmp_path, monkeypatch):
    """What a local workload mounts (`credential_files`) is what botocore reads: the keys from
    AWS_SHARED_CREDENTIALS_FILE, the MinIO endpoint from AWS_CONFIG_FILE."""
    import botocore.session

    identity = model
    files = identity.credential_files("trainer")
    assert files.volume == {
        "name": "object-store-credentials",
        "secret": {
            "secretName": "trainer-s3-credentials",
            "defaultMode": 0o440,
            "items": [
                {"key": "credentials", "path": "credentials"},
                {"key": "config", "path": "config"},
            ],
        },
    }
    assert files.mount == {
        "name": "object-store-credentials",
        "mountPath": "/var/run/secrets/mlops/object-store-credentials",
        "readOnly": True,
    }
    (tmp_path / "credentials").write_text(identity.aws_credentials_file("trainer", "s3cr3t-key"))
    (tmp_path / "config").write_text(identity.aws_config_file("http://minio.minio:9000"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for var in files.env:
        monkeypatch.setenv(
            var["name"], var["value"].replace(files.mount["mountPath"], str(tmp_path))
        )
    session = botocore.session.Session()
    credentials = session.get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("trainer", "s3cr3t-key")
    client = session.create_client("s3", region_name="us-east-1")
    assert client.meta.endpoint_url == "http://minio.minio:9000"
