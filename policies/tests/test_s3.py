"""S3: the stack policy over bucket companions and the single-resource S3 policies (prod plan)."""

from __future__ import annotations

import json

import pytest
from crossguard import aws
from harness import (
    DELETE,
    PLAN_UNKNOWN,
    edited,
    engine_props,
    entry,
    load_plan,
    resource_args,
    stack_args,
    violations,
)

PLAN = load_plan("prod")
TLS = (
    "Bucket 'mlops-artifacts': no bucket policy denies s3:* to every principal when "
    "aws:SecureTransport is false on the bucket and its objects @ mlops-artifacts"
)


def companions(**kwargs) -> list[str]:
    return violations(aws.s3_bucket_companions, stack_args(PLAN, **kwargs))


def inputs(name: str) -> dict:
    return entry(PLAN, name)["inputs"]


def policy_statements(name: str) -> list[dict]:
    return json.loads(inputs(name)["policy"])["Statement"]


def with_statement(name: str, **changes) -> dict:
    statement = {**policy_statements(name)[0], **changes}
    return {**inputs(name), "policy": json.dumps({"Statement": [statement]})}


def test_prod_buckets_pass():
    assert companions() == []


def test_missing_encryption_configuration():
    assert companions(drop=("mlops-artifacts-encryption",)) == [
        "Bucket 'mlops-artifacts': no BucketServerSideEncryptionConfiguration targets it "
        "@ mlops-artifacts"
    ]


def test_sse_s3_is_not_enough_for_a_data_bucket():
    aes = edited(
        inputs("mlops-artifacts-encryption"),
        "rules.0.applyServerSideEncryptionByDefault",
        {"sseAlgorithm": "AES256"},
    )
    assert companions(replace={"mlops-artifacts-encryption": aes}) == [
        "Bucket 'mlops-artifacts': BucketServerSideEncryptionConfiguration "
        "'mlops-artifacts-encryption' rules[].applyServerSideEncryptionByDefault.sseAlgorithm "
        'must be aws:kms or aws:kms:dsse, got "AES256" @ mlops-artifacts'
    ]


def test_access_log_target_may_use_sse_s3_unless_configured_otherwise():
    # The plan's log bucket uses AES256 (S3 log delivery cannot write to SSE-KMS buckets).
    assert inputs("mlops-access-logs-encryption")["rules"][0][
        "applyServerSideEncryptionByDefault"
    ] == {"sseAlgorithm": "AES256"}
    assert companions(config={"allowSseS3ForAccessLogTargets": False}) == [
        "Bucket 'mlops-access-logs': BucketServerSideEncryptionConfiguration "
        "'mlops-access-logs-encryption' rules[].applyServerSideEncryptionByDefault.sseAlgorithm "
        'must be aws:kms or aws:kms:dsse, got "AES256" @ mlops-access-logs'
    ]


def test_sse_s3_on_a_bucket_that_stops_receiving_logs_is_reported():
    dropped = ("mlops-artifacts-logging", "mlops-datasets-logging", "mlops-features-logging")
    assert companions(drop=dropped) == [
        "Bucket 'mlops-access-logs': BucketServerSideEncryptionConfiguration "
        "'mlops-access-logs-encryption' rules[].applyServerSideEncryptionByDefault.sseAlgorithm "
        'must be aws:kms or aws:kms:dsse, got "AES256" @ mlops-access-logs',
        "Bucket 'mlops-access-logs': versioning is not enabled (no BucketVersioning with "
        "versioningConfiguration.status Enabled targets it) @ mlops-access-logs",
    ]


def test_missing_public_access_block():
    assert companions(drop=("mlops-datasets-public-access-block",)) == [
        "Bucket 'mlops-datasets': no BucketPublicAccessBlock targets it @ mlops-datasets"
    ]


def test_missing_versioning():
    assert companions(drop=("mlops-features-versioning",)) == [
        "Bucket 'mlops-features': versioning is not enabled (no BucketVersioning with "
        "versioningConfiguration.status Enabled targets it) @ mlops-features"
    ]


def test_suspended_versioning_does_not_count():
    suspended = edited(
        inputs("mlops-features-versioning"), "versioningConfiguration.status", "Suspended"
    )
    assert companions(replace={"mlops-features-versioning": suspended}) == [
        "Bucket 'mlops-features': versioning is not enabled (no BucketVersioning with "
        "versioningConfiguration.status Enabled targets it) @ mlops-features"
    ]


def test_inline_versioning_on_the_bucket_counts():
    inline = edited(inputs("mlops-features"), "versioning", {"enabled": True})
    assert companions(drop=("mlops-features-versioning",), replace={"mlops-features": inline}) == []


def test_access_log_target_versioning_on_request():
    assert companions(config={"requireVersioningOnAccessLogTargets": True}) == [
        "Bucket 'mlops-access-logs': versioning is not enabled (no BucketVersioning with "
        "versioningConfiguration.status Enabled targets it) @ mlops-access-logs"
    ]


def test_missing_bucket_policy_is_not_covered_by_another_buckets_policy():
    # mlops-access-logs-policy depends on every bucket (its document names them) but targets
    # only the log bucket: the match goes by the `bucket` input, not by dependencies.
    assert "mlops-artifacts" in entry(PLAN, "mlops-access-logs-policy")["dependsOn"]
    assert companions(drop=("mlops-artifacts-policy",)) == [TLS]


@pytest.mark.parametrize(
    "changes",
    [
        {"Effect": "Allow"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
        {"Action": "s3:GetObject"},
        {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Condition": {}},
        {"Resource": "arn:aws:s3:::acme-mlops-prod-artifacts"},
        {
            "Resource": [
                "arn:aws:s3:::acme-mlops-prod-datasets",
                "arn:aws:s3:::acme-mlops-prod-datasets/*",
            ]
        },
    ],
    ids=[
        "allow",
        "one-principal",
        "one-action",
        "tls-true",
        "no-condition",
        "bucket-only",
        "other-bucket",
    ],
)
def test_bucket_policy_must_deny_insecure_transport(changes):
    policy = with_statement("mlops-artifacts-policy", **changes)
    assert companions(replace={"mlops-artifacts-policy": policy}) == [TLS]


@pytest.mark.parametrize(
    "changes",
    [
        {"Principal": {"AWS": "*"}},
        {"Action": ["s3:*"]},
        {"Condition": {"BoolIfExists": {"aws:SecureTransport": False}}},
        {"Resource": "arn:aws:s3:::acme-mlops-prod-*"},
        {
            "Resource": [
                "arn:aws-cn:s3:::acme-mlops-prod-artifacts",
                "arn:aws-cn:s3:::acme-mlops-prod-artifacts/*",
            ]
        },
    ],
    ids=["aws-star", "action-list", "bool-if-exists", "wildcard", "partition"],
)
def test_equivalent_tls_statements_pass(changes):
    policy = with_statement("mlops-artifacts-policy", **changes)
    assert companions(replace={"mlops-artifacts-policy": policy}) == []


def test_policy_document_unknown_in_preview_is_left_for_the_update():
    unknown = {**inputs("mlops-artifacts-policy"), "policy": PLAN_UNKNOWN}
    assert companions(replace={"mlops-artifacts-policy": unknown}) == []


def test_companion_with_unknown_bucket_id_matches_through_property_dependencies():
    args = stack_args(PLAN)
    encryption = next(r for r in args.resources if r.name == "mlops-artifacts-encryption")
    assert [d.name for d in encryption.property_dependencies["bucket"]] == ["mlops-artifacts"]
    encryption.props = engine_props(
        {**inputs("mlops-artifacts-encryption"), "bucket": PLAN_UNKNOWN}
    )
    assert violations(aws.s3_bucket_companions, args) == []
    encryption.property_dependencies = {}
    assert violations(aws.s3_bucket_companions, args) == [
        "Bucket 'mlops-artifacts': no BucketServerSideEncryptionConfiguration targets it "
        "@ mlops-artifacts"
    ]


PAB = entry(PLAN, "mlops-artifacts-public-access-block")


def test_public_access_block_passes():
    assert violations(aws.s3_public_access_block, resource_args(PLAN, PAB)) == []


@pytest.mark.parametrize("flag", aws.PUBLIC_ACCESS_FLAGS)
@pytest.mark.parametrize(("value", "shown"), [(False, "false"), (DELETE, "unset")])
def test_public_access_block_flag(flag, value, shown):
    args = resource_args(PLAN, PAB, edited(PAB["inputs"], flag, value))
    assert violations(aws.s3_public_access_block, args) == [
        f"BucketPublicAccessBlock 'mlops-artifacts-public-access-block': {flag} must be true, "
        f"got {shown}"
    ]


BUCKET = entry(PLAN, "mlops-artifacts")


@pytest.mark.parametrize("acl", aws.PUBLIC_CANNED_ACLS)
def test_public_canned_acl(acl):
    args = resource_args(PLAN, BUCKET, edited(BUCKET["inputs"], "acl", acl))
    assert violations(aws.s3_no_public_acl, args) == [
        f"Bucket 'mlops-artifacts': acl must not be \"{acl}\""
    ]


def test_private_acl_and_planned_bucket_pass():
    assert violations(aws.s3_no_public_acl, resource_args(PLAN, BUCKET)) == []
    private = resource_args(PLAN, BUCKET, edited(BUCKET["inputs"], "acl", "private"))
    assert violations(aws.s3_no_public_acl, private) == []


def test_bucket_acl_grant_to_all_users():
    acl = {
        "type": "aws:s3/bucketAclV2:BucketAclV2",
        "name": "mlops-artifacts-acl",
        "parent": "mlops",
        "protect": False,
        "dependsOn": ["mlops-artifacts"],
        "inputs": {
            "bucket": "mlops-artifacts-id",
            "accessControlPolicy": {
                "owner": {"id": "owner"},
                "grants": [
                    {
                        "permission": "READ",
                        "grantee": {
                            "type": "Group",
                            "uri": "http://acs.amazonaws.com/groups/global/AllUsers",
                        },
                    }
                ],
            },
        },
    }
    assert violations(aws.s3_no_public_acl, resource_args(PLAN, acl)) == [
        "BucketAclV2 'mlops-artifacts-acl': accessControlPolicy.grants[] must not grant to "
        "http://acs.amazonaws.com/groups/global/AllUsers"
    ]


VERSIONING = entry(PLAN, "mlops-artifacts-versioning")


@pytest.mark.parametrize(("status", "shown"), [("Suspended", '"Suspended"'), (DELETE, "unset")])
def test_versioning_status(status, shown):
    args = resource_args(
        PLAN, VERSIONING, edited(VERSIONING["inputs"], "versioningConfiguration.status", status)
    )
    assert violations(aws.s3_versioning_enabled, args) == [
        "BucketVersioning 'mlops-artifacts-versioning': versioningConfiguration.status must be "
        f"Enabled, got {shown}"
    ]
    assert violations(aws.s3_versioning_enabled, resource_args(PLAN, VERSIONING)) == []


def test_encryption_configuration_without_rules():
    empty = {**inputs("mlops-datasets-encryption"), "rules": []}
    assert companions(replace={"mlops-datasets-encryption": empty}) == [
        "Bucket 'mlops-datasets': BucketServerSideEncryptionConfiguration "
        "'mlops-datasets-encryption' rules[].applyServerSideEncryptionByDefault.sseAlgorithm "
        "must be aws:kms or aws:kms:dsse, got unset @ mlops-datasets"
    ]
