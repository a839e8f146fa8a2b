"""Stateful resources are protected (`protect` resource option) where a stack requires it."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from crossguard.props import Settings, as_list, subject

STATEFUL_TYPES = [
    "aws:s3/bucket:Bucket",
    "aws:kms/key:Key",
    "aws:eks/cluster:Cluster",
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:efs/fileSystem:FileSystem",
    "aws:dynamodb/table:Table",
    "aws:msk/cluster:Cluster",
    "aws:msk/topic:Topic",
    "gcp:storage/bucket:Bucket",
    "gcp:container/cluster:Cluster",
    "gcp:kms/cryptoKey:CryptoKey",
    "gcp:sql/databaseInstance:DatabaseInstance",
    "gcp:managedkafka/cluster:Cluster",
    "gcp:managedkafka/topic:Topic",
]

PROTECT_SETTINGS = Settings(
    {
        "requireProtect": {
            "type": "boolean",
            "default": False,
            "description": "Require the protect option on stateful resources (set per stack, "
            "e.g. in policies/config/prod.json).",
        },
        "statefulTypes": {
            "type": "array",
            "items": {"type": "string"},
            "default": STATEFUL_TYPES,
            "description": "Resource types that hold state and must be protected.",
        },
    }
)


def validate_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    if not PROTECT_SETTINGS.value(config, "requireProtect"):
        return
    stateful = set(as_list(PROTECT_SETTINGS.value(config, "statefulTypes")))
    for resource in args.resources:
        if resource.resource_type in stateful and not resource.opts.protect:
            report(
                f"{subject(resource.resource_type, resource.name)}: resource option protect "
                "must be true on this stack (stateful resource)",
                resource.urn,
            )


stateful_resources_protected = StackValidationPolicy(
    name="stateful-resources-protected",
    description="Where requireProtect is on, stateful types (buckets, KMS keys, clusters, "
    "databases, Kafka clusters and topics) carry the protect resource option.",
    validate=validate_protected,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PROTECT_SETTINGS.schema,
)

POLICIES = [stateful_resources_protected]
