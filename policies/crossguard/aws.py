"""AWS policies: S3 buckets and their companion resources, EKS, node groups, IMDSv2, tags."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Mapping
from importlib import resources as package_files
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from crossguard.cidrs import opens_internet, parse
from crossguard.props import COMPUTED, Settings, as_list, as_mapping, get, known, show, subject

BUCKET = "aws:s3/bucket:Bucket"
# pulumi-aws 7 keeps the V2 tokens as deprecated aliases; a program may use either.
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)
LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"

PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
PUBLIC_CANNED_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEE_URIS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
EKS_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_EFFECTS = ("NO_SCHEDULE", "NO_EXECUTE")
# Instance families with NVIDIA GPUs (g4dn, g5, g6, g6e, p4d, p5, ...); Graviton families put the
# `g` after the generation (m7g), so they do not match.
GPU_INSTANCE_FAMILY = re.compile(r"^[gp]\d")

# Every pulumi-aws 7.51.1 resource type that has `tags`/`tagsAll`, generated from the installed
# provider SDK by policies/tools/aws_taggable_types.py (tests/config checks it is current).
TAGGABLE_TYPES = frozenset(
    package_files.files("crossguard").joinpath("aws_taggable_types.txt").read_text().split()
)


# --- S3: relationships between a bucket and its companion resources (stack policy) ---------

S3_SETTINGS = Settings(
    {
        "allowSseS3ForAccessLogTargets": {
            "type": "boolean",
            "default": True,
            "description": "A bucket that receives S3 server access logs may use SSE-S3 (AES256): "
            "S3 log delivery does not support SSE-KMS on the target bucket.",
        },
        "requireVersioningOnAccessLogTargets": {
            "type": "boolean",
            "default": False,
            "description": "Also require versioning on buckets that only receive access logs.",
        },
    }
)


def _bucket_names(bucket: PolicyResource) -> set[str]:
    """The values another resource's `bucket` input may carry for this bucket (name or id)."""
    names = {bucket.name}
    for key in ("bucket", "id"):
        value = known(lambda key=key: get(bucket.props, key))
        if isinstance(value, str) and value:
            names.add(value)
    return names


def _targets(resource: PolicyResource, prop: str, buckets: list[PolicyResource]) -> list[str]:
    """URNs of the buckets `resource.<prop>` refers to.

    The engine's property dependencies are authoritative and work in a preview where the bucket
    id is still unknown; the known value is the fallback for resources read from state.
    """
    by_urn = {b.urn for b in buckets}
    urns = [d.urn for d in resource.property_dependencies.get(prop, []) if d.urn in by_urn]
    if urns:
        return urns
    value = known(lambda: get(resource.props, prop))
    if not isinstance(value, str):
        return []
    return [b.urn for b in buckets if value in _bucket_names(b)]


def _companions(
    resources: list[PolicyResource],
    types: tuple[str, ...],
    prop: str,
    buckets: list[PolicyResource],
) -> dict[str, list[PolicyResource]]:
    found: dict[str, list[PolicyResource]] = {}
    for resource in resources:
        if resource.resource_type in types:
            for urn in _targets(resource, prop, buckets):
                found.setdefault(urn, []).append(resource)
    return found


def _sse_algorithms(encryption: PolicyResource) -> list[Any]:
    rules = as_list(get(encryption.props, "rules"))
    return [get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in rules]


def _versioning_enabled(bucket: PolicyResource, versionings: list[PolicyResource]) -> bool:
    if get(bucket.props, "versioning", "enabled") is True:  # the deprecated inline form
        return True
    return any(get(v.props, "versioningConfiguration", "status") == "Enabled" for v in versionings)


def _policy_document(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    return value if isinstance(value, Mapping) else {}


def _without_partition(arn: str) -> str:
    return re.sub(r"^arn:aws[a-z-]*:", "arn:aws:", arn)


def _covers(patterns: list[Any], arn: str) -> bool:
    return any(
        isinstance(p, str) and fnmatch.fnmatchcase(arn, _without_partition(p)) for p in patterns
    )


def denies_insecure_transport(statement: Any, bucket_name: str | None) -> bool:
    """True for a statement denying every S3 action to everyone when TLS is not used."""
    if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and "*" not in as_list(get(principal, "AWS")):
        return False
    actions = as_list(statement.get("Action"))
    if "s3:*" not in actions and "*" not in actions:
        return False
    conditions = statement.get("Condition") or {}
    insecure = [
        get(conditions, operator, "aws:SecureTransport") for operator in ("Bool", "BoolIfExists")
    ]
    if not any(value in ("false", False) for value in insecure):
        return False
    if bucket_name is None:  # the name is not known yet; the rest of the statement is checked
        return True
    patterns = as_list(statement.get("Resource"))
    bucket_arn = f"arn:aws:s3:::{bucket_name}"
    return _covers(patterns, bucket_arn) and _covers(patterns, f"{bucket_arn}/*")


def _tls_only(bucket: PolicyResource, policies: list[PolicyResource]) -> bool | None:
    """Whether some policy of the bucket denies insecure transport; None when not yet known."""
    name = known(lambda: get(bucket.props, "bucket"))
    name = name if isinstance(name, str) and name else None
    documents = []
    for holder in [bucket, *policies]:
        try:
            documents.append(_policy_document(get(holder.props, "policy")))
        except UnknownValueError:
            return None
    return any(
        denies_insecure_transport(statement, name)
        for document in documents
        for statement in as_list(document.get("Statement"))
    )


def validate_s3_bucket_companions(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    resources = list(args.resources)
    buckets = [r for r in resources if r.resource_type == BUCKET]
    encryption = _companions(resources, ENCRYPTION, "bucket", buckets)
    versioning = _companions(resources, VERSIONING, "bucket", buckets)
    blocks = _companions(resources, (PUBLIC_ACCESS_BLOCK,), "bucket", buckets)
    policies = _companions(resources, (BUCKET_POLICY,), "bucket", buckets)
    log_targets = set(_companions(resources, LOGGING, "targetBucket", buckets))
    allow_sse_s3 = S3_SETTINGS.value(config, "allowSseS3ForAccessLogTargets")
    version_log_targets = S3_SETTINGS.value(config, "requireVersioningOnAccessLogTargets")

    for bucket in buckets:
        who = subject(bucket.resource_type, bucket.name)
        is_log_target = bucket.urn in log_targets
        allowed = KMS_ALGORITHMS + (("AES256",) if is_log_target and allow_sse_s3 else ())

        if bucket.urn not in encryption:
            report(f"{who}: no BucketServerSideEncryptionConfiguration targets it", bucket.urn)
        for config_resource in encryption.get(bucket.urn, []):
            # no rule at all is reported like a rule without an algorithm
            algorithms = known(lambda r=config_resource: _sse_algorithms(r) or [None], [])
            for algorithm in algorithms:
                if algorithm not in allowed:
                    report(
                        f"{who}: {subject(config_resource.resource_type, config_resource.name)} "
                        f"rules[].applyServerSideEncryptionByDefault.sseAlgorithm must be "
                        f"{' or '.join(allowed)}, got {show(algorithm)}",
                        bucket.urn,
                    )

        if bucket.urn not in blocks:
            report(f"{who}: no BucketPublicAccessBlock targets it", bucket.urn)

        needs_versioning = not is_log_target or version_log_targets
        enabled = known(lambda b=bucket: _versioning_enabled(b, versioning.get(b.urn, [])), True)
        if needs_versioning and not enabled:
            report(
                f"{who}: versioning is not enabled (no BucketVersioning with "
                "versioningConfiguration.status Enabled targets it)",
                bucket.urn,
            )

        if _tls_only(bucket, policies.get(bucket.urn, [])) is False:
            report(
                f"{who}: no bucket policy denies s3:* to every principal when "
                "aws:SecureTransport is false on the bucket and its objects",
                bucket.urn,
            )


s3_bucket_companions = StackValidationPolicy(
    name="s3-bucket-companions",
    description="Every S3 bucket has SSE-KMS encryption, a public access block, versioning "
    "and a TLS-only bucket policy.",
    validate=validate_s3_bucket_companions,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=S3_SETTINGS.schema,
)


# --- S3: single-resource properties ---------------------------------------------------------


def validate_public_access_block(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != PUBLIC_ACCESS_BLOCK:
        return
    who = subject(args.resource_type, args.name)
    for flag in PUBLIC_ACCESS_FLAGS:
        value = get(args.props, flag)
        if value is not True:
            report(f"{who}: {flag} must be true, got {show(value)}")


s3_public_access_block = ResourceValidationPolicy(
    name="s3-public-access-block-all-true",
    description="S3 public access blocks set blockPublicAcls, blockPublicPolicy, "
    "ignorePublicAcls and restrictPublicBuckets all to true.",
    validate=validate_public_access_block,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_no_public_acl(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != BUCKET and args.resource_type not in BUCKET_ACLS:
        return
    who = subject(args.resource_type, args.name)
    acl = get(args.props, "acl")
    if acl in PUBLIC_CANNED_ACLS:
        report(f"{who}: acl must not be {show(acl)}")
    for grant in as_list(get(args.props, "accessControlPolicy", "grants")):
        uri = get(grant, "grantee", "uri")
        if uri in PUBLIC_GRANTEE_URIS:
            report(f"{who}: accessControlPolicy.grants[] must not grant to {uri}")


s3_no_public_acl = ResourceValidationPolicy(
    name="s3-no-public-acl",
    description="S3 buckets are never made public through an ACL: no public-read, "
    "public-read-write or authenticated-read canned ACL, no grant to AllUsers or "
    "AuthenticatedUsers.",
    validate=validate_no_public_acl,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_versioning_status(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in VERSIONING:
        return
    status = get(args.props, "versioningConfiguration", "status")
    if status != "Enabled":
        report(
            f"{subject(args.resource_type, args.name)}: versioningConfiguration.status must be "
            f"Enabled, got {show(status)}"
        )


s3_versioning_enabled = ResourceValidationPolicy(
    name="s3-versioning-enabled",
    description="S3 bucket versioning resources enable versioning (never Suspended).",
    validate=validate_versioning_status,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- EKS --------------------------------------------------------------------------------------


def validate_eks_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    who = subject(args.resource_type, args.name)
    # EKS defaults endpointPublicAccess to true: unset is public.
    if get(args.props, "vpcConfig", "endpointPublicAccess") is False:
        return
    cidrs = as_list(get(args.props, "vpcConfig", "publicAccessCidrs"))
    if not cidrs:
        report(
            f"{who}: vpcConfig.endpointPublicAccess must be false, or "
            "vpcConfig.publicAccessCidrs must list the allowed networks (unset means 0.0.0.0/0)"
        )
    for value in parse(cidrs)[1]:
        report(f"{who}: vpcConfig.publicAccessCidrs has {show(value)}, which is not a CIDR")
    # Ranges, not literals: 0.0.0.0/1 + 128.0.0.0/1 is as open as 0.0.0.0/0.
    if opens_internet(cidrs):
        report(
            f"{who}: vpcConfig.publicAccessCidrs {show(cidrs)} together cover every public "
            "address (open to the internet)"
        )


eks_private_endpoint = ResourceValidationPolicy(
    name="eks-api-endpoint-not-open",
    description="EKS API endpoints are private (endpointPublicAccess false) or list "
    "publicAccessCidrs that together do not cover the internet (unset means public, EKS's "
    "default).",
    validate=validate_eks_endpoint,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_eks_secrets_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    who = subject(args.resource_type, args.name)
    encryption = get(args.props, "encryptionConfig")
    if "secrets" not in as_list(get(encryption, "resources")):
        report(f'{who}: encryptionConfig.resources must contain "secrets"')
    key = known(lambda: get(encryption, "provider", "keyArn"), COMPUTED)
    if key is not COMPUTED and (not isinstance(key, str) or not key):
        report(f"{who}: encryptionConfig.provider.keyArn must name a KMS key, got {show(key)}")


eks_secrets_encryption = ResourceValidationPolicy(
    name="eks-secrets-encryption",
    description="EKS clusters envelope-encrypt Kubernetes secrets with a KMS key "
    "(encryptionConfig.resources has secrets, provider.keyArn names a key).",
    validate=validate_eks_secrets_encryption,
    enforcement_level=EnforcementLevel.MANDATORY,
)

EKS_LOG_SETTINGS = Settings(
    {
        "requiredLogTypes": {
            "type": "array",
            "items": {"type": "string", "enum": EKS_LOG_TYPES},
            "default": EKS_LOG_TYPES,
            "description": "Control-plane log types every EKS cluster must enable.",
        }
    }
)


def validate_eks_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    enabled = set(as_list(get(args.props, "enabledClusterLogTypes")))
    required = as_list(EKS_LOG_SETTINGS.value(args.get_config(), "requiredLogTypes"))
    missing = [log_type for log_type in required if log_type not in enabled]
    if missing:
        report(
            f"{subject(args.resource_type, args.name)}: enabledClusterLogTypes must include "
            f"{', '.join(missing)}"
        )


eks_control_plane_logs = ResourceValidationPolicy(
    name="eks-control-plane-logs",
    description="EKS clusters enable the required control-plane log types "
    "(enabledClusterLogTypes; all five by default).",
    validate=validate_eks_logs,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=EKS_LOG_SETTINGS.schema,
)


# --- Node groups and instances ----------------------------------------------------------------


def is_gpu_node_group(props: Mapping[str, Any]) -> bool:
    ami_type = get(props, "amiType")
    if isinstance(ami_type, str) and ("NVIDIA" in ami_type or ami_type.endswith("_GPU")):
        return True
    return any(
        isinstance(t, str) and GPU_INSTANCE_FAMILY.match(t)
        for t in as_list(get(props, "instanceTypes"))
    )


def validate_eks_gpu_taint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EKS_NODE_GROUP or not is_gpu_node_group(args.props):
        return
    tainted = any(
        get(taint, "key") == GPU_TAINT_KEY and get(taint, "effect") in GPU_TAINT_EFFECTS
        for taint in as_list(get(args.props, "taints"))
    )
    if not tainted:
        report(
            f"{subject(args.resource_type, args.name)}: a GPU node group (amiType "
            f"{show(get(args.props, 'amiType'))}) needs a taint {GPU_TAINT_KEY} with effect "
            "NO_SCHEDULE in taints, so only GPU workloads land on it"
        )


eks_gpu_node_group_taint = ResourceValidationPolicy(
    name="eks-gpu-node-group-taint",
    description="EKS node groups with an NVIDIA/GPU amiType or a g*/p* GPU instance family are "
    "tainted nvidia.com/gpu with effect NO_SCHEDULE (or NO_EXECUTE).",
    validate=validate_eks_gpu_taint,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_imdsv2(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (LAUNCH_TEMPLATE, EC2_INSTANCE):
        return
    tokens = get(args.props, "metadataOptions", "httpTokens")
    if tokens != "required":
        report(
            f"{subject(args.resource_type, args.name)}: metadataOptions.httpTokens must be "
            f'"required" (IMDSv2 only), got {show(tokens)}'
        )


imdsv2_required = ResourceValidationPolicy(
    name="ec2-imdsv2-required",
    description="Launch templates and instances require IMDSv2 session tokens "
    "(metadataOptions.httpTokens required).",
    validate=validate_imdsv2,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- Tags -------------------------------------------------------------------------------------

TAG_SETTINGS = Settings(
    {
        "requiredTags": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["environment", "cost-center"],
            "description": "Tag keys every taggable AWS resource carries (own or provider tags).",
        }
    }
)


def effective_tags(args: ResourceValidationArgs) -> dict[str, Any]:
    """The tags AWS will apply: the provider's default tags overlaid with the resource's own.

    `tagsAll` is a provider-computed output and not among the inputs a resource policy sees, so
    the merge is done here from the provider's `defaultTags` (JSON-encoded, as the engine hands
    provider inputs over) and the resource's `tags`.
    """
    merged: dict[str, Any] = {}
    if args.provider is not None:
        defaults = as_mapping(get(args.provider.props, "defaultTags"))
        merged.update(as_mapping(get(defaults, "tags")))
    own = get(args.props, "tags")
    if isinstance(own, Mapping):
        merged.update({key: own[key] for key in own})
    return merged


def validate_required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in TAGGABLE_TYPES:
        return
    tags = effective_tags(args)
    required = as_list(TAG_SETTINGS.value(args.get_config(), "requiredTags"))
    missing = [key for key in required if not tags.get(key)]
    if missing:
        report(
            f"{subject(args.resource_type, args.name)}: tags (with the provider's defaultTags) "
            f"must include {', '.join(missing)}"
        )


aws_required_tags = ResourceValidationPolicy(
    name="aws-required-tags",
    description="Taggable AWS resources carry the cost-allocation tags (requiredTags), their own "
    "or the provider's defaultTags.",
    validate=validate_required_tags,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=TAG_SETTINGS.schema,
)

POLICIES = [
    s3_bucket_companions,
    s3_public_access_block,
    s3_no_public_acl,
    s3_versioning_enabled,
    eks_private_endpoint,
    eks_secrets_encryption,
    eks_control_plane_logs,
    eks_gpu_node_group_taint,
    imdsv2_required,
    aws_required_tags,
]

__all__ = ["POLICIES", "denies_insecure_transport", "effective_tags", "is_gpu_node_group"]
