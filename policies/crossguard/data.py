"""Data services: databases (RDS, Cloud SQL), caches (ElastiCache, Memorystore), Kafka (MSK,
Managed Kafka, Strimzi) and Kafka topics.

Thresholds and the production-only requirements (deletion protection, high availability, broker
logs) are settings, so `policies/config/<stack>.json` makes prod stricter than dev.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from crossguard.props import Settings, as_list, as_mapping, get, show, subject

RDS_INSTANCE = "aws:rds/instance:Instance"
CLOUD_SQL = "gcp:sql/databaseInstance:DatabaseInstance"
ELASTICACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
MEMORYSTORE = "gcp:redis/instance:Instance"
MSK_CLUSTER = "aws:msk/cluster:Cluster"
MSK_TOPIC = "aws:msk/topic:Topic"
MANAGED_KAFKA_TOPIC = "gcp:managedkafka/topic:Topic"
STRIMZI_KAFKA = (
    "kubernetes:kafka.strimzi.io/v1:Kafka",
    "kubernetes:kafka.strimzi.io/v1beta2:Kafka",
)
STRIMZI_TOPIC = (
    "kubernetes:kafka.strimzi.io/v1:KafkaTopic",
    "kubernetes:kafka.strimzi.io/v1beta2:KafkaTopic",
)
DAY_MS = 24 * 60 * 60 * 1000


def _required_setting(description: str) -> Settings:
    return Settings({"required": {"type": "boolean", "default": True, "description": description}})


# --- databases --------------------------------------------------------------------------------


def validate_database_not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == RDS_INSTANCE:
        if get(args.props, "publiclyAccessible") is True:
            report(f"{who}: publiclyAccessible must be false, got true")
    elif args.resource_type == CLOUD_SQL:
        # Cloud SQL gives an instance a public IPv4 address unless ipv4Enabled is false.
        ipv4 = get(args.props, "settings", "ipConfiguration", "ipv4Enabled")
        if ipv4 is not False:
            report(
                f"{who}: settings.ipConfiguration.ipv4Enabled must be false (private IP only), "
                f"got {show(ipv4)}"
            )


database_not_public = ResourceValidationPolicy(
    name="database-not-public",
    description="RDS instances are not publicly accessible; Cloud SQL instances have no public "
    "IPv4 address (ipv4Enabled false; unset means public).",
    validate=validate_database_not_public,
    enforcement_level=EnforcementLevel.MANDATORY,
)

ENCRYPTED_SSL_MODES = ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED")


def validate_database_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == RDS_INSTANCE:
        encrypted = get(args.props, "storageEncrypted")
        if encrypted is not True:
            report(f"{who}: storageEncrypted must be true, got {show(encrypted)}")
    elif args.resource_type == CLOUD_SQL:
        mode = get(args.props, "settings", "ipConfiguration", "sslMode")
        if mode not in ENCRYPTED_SSL_MODES:
            report(
                f"{who}: settings.ipConfiguration.sslMode must be "
                f"{' or '.join(ENCRYPTED_SSL_MODES)}, got {show(mode)}"
            )


database_encryption = ResourceValidationPolicy(
    name="database-encryption",
    description="RDS storage is encrypted; Cloud SQL (always encrypted at rest) accepts only "
    "encrypted connections (sslMode).",
    validate=validate_database_encryption,
    enforcement_level=EnforcementLevel.MANDATORY,
)

BACKUP_SETTINGS = Settings(
    {
        "minRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "default": 7,
            "description": "Minimum automated backup retention (RDS days, Cloud SQL daily "
            "backups kept).",
        }
    }
)


def validate_database_backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    minimum = BACKUP_SETTINGS.value(args.get_config(), "minRetentionDays")
    if args.resource_type == RDS_INSTANCE:
        days = get(args.props, "backupRetentionPeriod")
        if not isinstance(days, int | float) or days < minimum:
            report(f"{who}: backupRetentionPeriod must be at least {minimum}, got {show(days)}")
    elif args.resource_type == CLOUD_SQL:
        backup = get(args.props, "settings", "backupConfiguration")
        if get(backup, "enabled") is not True:
            report(
                f"{who}: settings.backupConfiguration.enabled must be true, got "
                f"{show(get(backup, 'enabled'))}"
            )
            return
        retention = get(backup, "backupRetentionSettings")
        unit = get(retention, "retentionUnit") or "COUNT"
        kept = get(retention, "retainedBackups")
        kept = 7 if kept is None else kept  # Cloud SQL keeps 7 daily backups by default
        if unit == "COUNT" and kept < minimum:
            report(
                f"{who}: settings.backupConfiguration.backupRetentionSettings.retainedBackups "
                f"must be at least {minimum}, got {show(kept)}"
            )


database_backups = ResourceValidationPolicy(
    name="database-backups",
    description="Databases keep automated backups for at least minRetentionDays.",
    validate=validate_database_backups,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=BACKUP_SETTINGS.schema,
)

DELETION_SETTINGS = _required_setting("Require deletion protection (off for dev stacks).")


def validate_database_deletion(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not DELETION_SETTINGS.value(args.get_config(), "required"):
        return
    who = subject(args.resource_type, args.name)
    if args.resource_type == RDS_INSTANCE:
        protected = get(args.props, "deletionProtection")
        if protected is not True:
            report(f"{who}: deletionProtection must be true, got {show(protected)}")
        if get(args.props, "skipFinalSnapshot") is True:
            report(f"{who}: skipFinalSnapshot must be false, got true")
    elif args.resource_type == CLOUD_SQL:
        # `deletionProtection` is Pulumi's guard (default true), `deletionProtectionEnabled`
        # the Cloud SQL API's own, which also stops deletion from the console.
        if get(args.props, "deletionProtection") is False:
            report(f"{who}: deletionProtection must be true, got false")
        enabled = get(args.props, "settings", "deletionProtectionEnabled")
        if enabled is not True:
            report(f"{who}: settings.deletionProtectionEnabled must be true, got {show(enabled)}")


database_deletion_protection = ResourceValidationPolicy(
    name="database-deletion-protection",
    description="Where required, databases have deletion protection and keep a final snapshot.",
    validate=validate_database_deletion,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=DELETION_SETTINGS.schema,
)

HA_SETTINGS = _required_setting("Require a standby in another zone (prod).")


def validate_database_ha(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not HA_SETTINGS.value(args.get_config(), "required"):
        return
    who = subject(args.resource_type, args.name)
    if args.resource_type == RDS_INSTANCE:
        multi_az = get(args.props, "multiAz")
        if multi_az is not True:
            report(f"{who}: multiAz must be true, got {show(multi_az)}")
    elif args.resource_type == CLOUD_SQL:
        availability = get(args.props, "settings", "availabilityType")
        if availability != "REGIONAL":
            report(f'{who}: settings.availabilityType must be "REGIONAL", got {show(availability)}')


database_high_availability = ResourceValidationPolicy(
    name="database-high-availability",
    description="Where required, databases run with a standby in another zone (RDS Multi-AZ, "
    "Cloud SQL REGIONAL).",
    validate=validate_database_ha,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=HA_SETTINGS.schema,
)

ENGINE_SETTINGS = Settings(
    {
        "minimumVersions": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            # PostgreSQL 13 left community support in November 2025, MySQL 5.7 in October 2023.
            "default": {"postgres": "14", "mysql": "8.0"},
            "description": "Lowest supported engine version per engine (RDS `engine` names).",
        }
    }
)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text))


def _engine_version(args: ResourceValidationArgs) -> tuple[str | None, str | None, str]:
    """(engine, version, field) of a database instance."""
    if args.resource_type == RDS_INSTANCE:
        engine = get(args.props, "engine")
        engine = "postgres" if engine == "aurora-postgresql" else engine
        engine = "mysql" if engine == "aurora-mysql" else engine
        return engine, get(args.props, "engineVersion"), "engineVersion"
    value = get(args.props, "databaseVersion")
    match = re.match(r"^(POSTGRES|MYSQL)_(\d+(?:_\d+)?)$", value or "")
    if not match:
        return None, value, "databaseVersion"
    return match.group(1).lower(), match.group(2).replace("_", "."), "databaseVersion"


def validate_database_engine(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (RDS_INSTANCE, CLOUD_SQL):
        return
    engine, version, field = _engine_version(args)
    minimum = as_mapping(ENGINE_SETTINGS.value(args.get_config(), "minimumVersions")).get(engine)
    if minimum is None:
        return
    who = subject(args.resource_type, args.name)
    if not isinstance(version, str) or not _version_tuple(version):
        report(f"{who}: {field} must pin a {engine} version (>= {minimum}), got {show(version)}")
    elif _version_tuple(version) < _version_tuple(minimum):
        report(f"{who}: {field} {show(version)} is below the supported {engine} {minimum}")


database_engine_version = ResourceValidationPolicy(
    name="database-engine-version",
    description="Database engines are pinned to a supported major version (minimumVersions).",
    validate=validate_database_engine,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=ENGINE_SETTINGS.schema,
)


# --- caches -----------------------------------------------------------------------------------


def validate_cache_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == ELASTICACHE:
        for field in ("transitEncryptionEnabled", "atRestEncryptionEnabled"):
            value = get(args.props, field)
            if value is not True:
                report(f"{who}: {field} must be true, got {show(value)}")
        mode = get(args.props, "transitEncryptionMode")
        if mode is not None and mode != "required":
            report(f'{who}: transitEncryptionMode must be "required", got {show(mode)}')
    elif args.resource_type == MEMORYSTORE:
        mode = get(args.props, "transitEncryptionMode")
        if mode != "SERVER_AUTHENTICATION":
            report(
                f'{who}: transitEncryptionMode must be "SERVER_AUTHENTICATION", got {show(mode)}'
            )


cache_encryption = ResourceValidationPolicy(
    name="cache-encryption",
    description="Redis/Valkey caches encrypt traffic (TLS required) and, on ElastiCache, data at "
    "rest (Memorystore always encrypts at rest).",
    validate=validate_cache_encryption,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_cache_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == ELASTICACHE:
        if not get(args.props, "authToken") and not as_list(get(args.props, "userGroupIds")):
            report(f"{who}: authToken or userGroupIds must be set (Redis AUTH / RBAC)")
    elif args.resource_type == MEMORYSTORE:
        enabled = get(args.props, "authEnabled")
        if enabled is not True:
            report(f"{who}: authEnabled must be true, got {show(enabled)}")


cache_auth = ResourceValidationPolicy(
    name="cache-auth",
    description="Redis/Valkey caches require clients to authenticate (AUTH token or RBAC user "
    "groups; Memorystore authEnabled).",
    validate=validate_cache_auth,
    enforcement_level=EnforcementLevel.MANDATORY,
)

CACHE_HA_SETTINGS = _required_setting("Require replicas and automatic failover (prod).")


def validate_cache_ha(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not CACHE_HA_SETTINGS.value(args.get_config(), "required"):
        return
    who = subject(args.resource_type, args.name)
    if args.resource_type == ELASTICACHE:
        for field in ("automaticFailoverEnabled", "multiAzEnabled"):
            value = get(args.props, field)
            if value is not True:
                report(f"{who}: {field} must be true, got {show(value)}")
        nodes = get(args.props, "numCacheClusters")
        replicas = get(args.props, "replicasPerNodeGroup")
        if not (isinstance(nodes, int | float) and nodes >= 2) and not (
            isinstance(replicas, int | float) and replicas >= 1
        ):
            report(
                f"{who}: numCacheClusters must be at least 2 (a primary and a replica), got "
                f"{show(nodes)}"
            )
    elif args.resource_type == MEMORYSTORE:
        tier = get(args.props, "tier")
        if tier != "STANDARD_HA":
            report(f'{who}: tier must be "STANDARD_HA", got {show(tier)}')


cache_high_availability = ResourceValidationPolicy(
    name="cache-high-availability",
    description="Where required, caches have a replica in another zone and fail over "
    "automatically.",
    validate=validate_cache_ha,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=CACHE_HA_SETTINGS.schema,
)


# --- Kafka clusters ---------------------------------------------------------------------------

KAFKA_ENCRYPTION_SETTINGS = Settings(
    {
        "requireCustomerManagedKey": {
            "type": "boolean",
            "default": False,
            "description": "Require MSK to encrypt at rest with a customer-managed KMS key (MSK "
            "always encrypts at rest, by default with an AWS-managed key).",
        }
    }
)


def _listeners(props: Any) -> list[Any]:
    return as_list(get(props, "spec", "kafka", "listeners"))


def validate_kafka_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == MSK_CLUSTER:
        transit = get(args.props, "encryptionInfo", "encryptionInTransit")
        client_broker = get(transit, "clientBroker")
        # MSK defaults clientBroker to TLS; only a plaintext setting is a violation.
        if client_broker is not None and client_broker != "TLS":
            report(
                f'{who}: encryptionInfo.encryptionInTransit.clientBroker must be "TLS", got '
                f"{show(client_broker)}"
            )
        if get(transit, "inCluster") is False:
            report(f"{who}: encryptionInfo.encryptionInTransit.inCluster must be true, got false")
        cmk = KAFKA_ENCRYPTION_SETTINGS.value(args.get_config(), "requireCustomerManagedKey")
        if cmk and not get(args.props, "encryptionInfo", "encryptionAtRestKmsKeyArn"):
            report(f"{who}: encryptionInfo.encryptionAtRestKmsKeyArn must name a KMS key")
    elif args.resource_type in STRIMZI_KAFKA:
        for index, listener in enumerate(_listeners(args.props)):
            if get(listener, "tls") is not True:
                report(
                    f"{who}: spec.kafka.listeners[{index}] ({show(get(listener, 'name'))}).tls "
                    f"must be true, got {show(get(listener, 'tls'))}"
                )


kafka_encryption = ResourceValidationPolicy(
    name="kafka-encryption",
    description="Kafka encrypts client and inter-broker traffic (MSK TLS, every Strimzi listener "
    "TLS); MSK at rest with a customer key where configured. Managed Kafka for Apache Kafka is "
    "TLS-only and encrypted at rest by design.",
    validate=validate_kafka_encryption,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=KAFKA_ENCRYPTION_SETTINGS.schema,
)


def validate_kafka_authentication(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == MSK_CLUSTER:
        auth = get(args.props, "clientAuthentication")
        if get(auth, "unauthenticated") is True:
            report(f"{who}: clientAuthentication.unauthenticated must be false, got true")
        sasl = get(auth, "sasl")
        if not (get(sasl, "iam") is True or get(sasl, "scram") is True or get(auth, "tls")):
            report(
                f"{who}: clientAuthentication must enable sasl.iam, sasl.scram or tls, got "
                f"{show(auth)}"
            )
        public = get(args.props, "brokerNodeGroupInfo", "connectivityInfo", "publicAccess", "type")
        if public not in (None, "DISABLED"):
            report(
                f"{who}: brokerNodeGroupInfo.connectivityInfo.publicAccess.type must be "
                f'"DISABLED", got {show(public)}'
            )
    elif args.resource_type in STRIMZI_KAFKA:
        for index, listener in enumerate(_listeners(args.props)):
            if not get(listener, "authentication", "type"):
                report(
                    f"{who}: spec.kafka.listeners[{index}] ({show(get(listener, 'name'))})"
                    ".authentication.type must be set (tls, scram-sha-512, oauth, custom)"
                )


kafka_client_authentication = ResourceValidationPolicy(
    name="kafka-client-authentication",
    description="Kafka accepts authenticated clients only (MSK IAM/SCRAM/mTLS, no "
    "unauthenticated or public access; every Strimzi listener has authentication). Managed "
    "Kafka authenticates every client with IAM.",
    validate=validate_kafka_authentication,
    enforcement_level=EnforcementLevel.MANDATORY,
)

BROKER_LOG_SETTINGS = _required_setting("Require MSK broker logs to be delivered somewhere.")
BROKER_LOG_SINKS = ("cloudwatchLogs", "firehose", "s3")


def validate_kafka_broker_logs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != MSK_CLUSTER:
        return
    if not BROKER_LOG_SETTINGS.value(args.get_config(), "required"):
        return
    logs = get(args.props, "loggingInfo", "brokerLogs")
    if not any(get(logs, sink, "enabled") is True for sink in BROKER_LOG_SINKS):
        report(
            f"{subject(args.resource_type, args.name)}: loggingInfo.brokerLogs must enable "
            "cloudwatchLogs, firehose or s3"
        )


kafka_broker_logs = ResourceValidationPolicy(
    name="kafka-broker-logs",
    description="Where required, MSK delivers broker logs (CloudWatch Logs, Firehose or S3).",
    validate=validate_kafka_broker_logs,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=BROKER_LOG_SETTINGS.schema,
)


# --- Kafka topics -----------------------------------------------------------------------------


def topic_settings(args: ResourceValidationArgs) -> tuple[Any, Mapping[str, Any], str, str]:
    """(replication factor, topic configs, replication field, configs field) of any topic type."""
    if args.resource_type in STRIMZI_TOPIC:
        return (
            get(args.props, "spec", "replicas"),
            as_mapping(get(args.props, "spec", "config")),
            "spec.replicas",
            "spec.config",
        )
    # MSK passes configs as a JSON string, Managed Kafka as a map.
    return (
        get(args.props, "replicationFactor"),
        as_mapping(get(args.props, "configs")),
        "replicationFactor",
        "configs",
    )


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


TOPIC_REPLICATION_SETTINGS = Settings(
    {
        "minReplicationFactor": {
            "type": "integer",
            "minimum": 1,
            "default": 3,
            "description": "Lowest replication factor of a topic.",
        },
        "minInsyncReplicas": {
            "type": "integer",
            "minimum": 1,
            "default": 2,
            "description": "Lowest min.insync.replicas of a topic.",
        },
    }
)
TOPIC_TYPES = (MSK_TOPIC, MANAGED_KAFKA_TOPIC, *STRIMZI_TOPIC)


def validate_topic_replication(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in TOPIC_TYPES:
        return
    who = subject(args.resource_type, args.name)
    config = args.get_config()
    replication, configs, rf_field, configs_field = topic_settings(args)
    min_rf = TOPIC_REPLICATION_SETTINGS.value(config, "minReplicationFactor")
    min_isr = TOPIC_REPLICATION_SETTINGS.value(config, "minInsyncReplicas")
    rf = _number(replication)
    if rf is None or rf < min_rf:
        report(f"{who}: {rf_field} must be at least {min_rf}, got {show(replication)}")
    raw_isr = configs.get("min.insync.replicas")
    isr = _number(raw_isr)
    if isr is None or isr < min_isr:
        report(
            f"{who}: {configs_field}.min.insync.replicas must be at least {min_isr}, got "
            f"{show(raw_isr)}"
        )
    elif rf is not None and rf > 1 and isr >= rf:
        report(
            f"{who}: {configs_field}.min.insync.replicas ({show(raw_isr)}) must be below "
            f"{rf_field} ({show(replication)}), or producers stop whenever one broker restarts"
        )


kafka_topic_replication = ResourceValidationPolicy(
    name="kafka-topic-replication",
    description="Kafka topics (MSK, Managed Kafka, Strimzi) are replicated at least "
    "minReplicationFactor times with min.insync.replicas at least minInsyncReplicas and below "
    "the replication factor.",
    validate=validate_topic_replication,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=TOPIC_REPLICATION_SETTINGS.schema,
)

RETENTION_SETTINGS = Settings(
    {
        "maxRetentionDays": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 90,
            "description": "Longest time a topic keeps messages (prediction logs hold personal "
            "data: retention is bounded).",
        }
    }
)


def validate_topic_retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in TOPIC_TYPES:
        return
    who = subject(args.resource_type, args.name)
    _, configs, _, configs_field = topic_settings(args)
    max_days = RETENTION_SETTINGS.value(args.get_config(), "maxRetentionDays")
    raw = configs.get("retention.ms")
    retention = _number(raw)
    if retention is None or retention <= 0:
        report(
            f"{who}: {configs_field}.retention.ms must be a bounded, positive retention "
            f"(at most {max_days} days), got {show(raw)}"
        )
    elif retention > max_days * DAY_MS:
        report(
            f"{who}: {configs_field}.retention.ms {show(raw)} exceeds {max_days} days "
            f"({int(max_days * DAY_MS)} ms)"
        )


kafka_topic_retention = ResourceValidationPolicy(
    name="kafka-topic-retention",
    description="Kafka topics set a positive retention.ms of at most maxRetentionDays (no "
    "unbounded -1 and no broker default).",
    validate=validate_topic_retention,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=RETENTION_SETTINGS.schema,
)

POLICIES = [
    database_not_public,
    database_encryption,
    database_backups,
    database_deletion_protection,
    database_high_availability,
    database_engine_version,
    cache_encryption,
    cache_auth,
    cache_high_availability,
    kafka_encryption,
    kafka_client_authentication,
    kafka_broker_logs,
    kafka_topic_replication,
    kafka_topic_retention,
]
