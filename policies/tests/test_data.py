"""Data services: databases, caches, Kafka clusters and topics (one field changed per case)."""

from __future__ import annotations

import pytest
from cases import Case, check
from crossguard import data
from harness import DELETE

RDS = "Instance 'mlops-mlflow-database'"
SQL = "DatabaseInstance 'mlops-mlflow-database'"
CACHE = "ReplicationGroup 'mlops-feast-redis'"
REDIS = "Instance 'mlops-feast-redis'"
MSK = "Cluster 'mlops-kafka-msk'"
STRIMZI = "Kafka 'mlops-kafka-kafka'"
PROD_CONFIG_OFF = {"required": False}

CASES = [
    # database-not-public
    Case(
        data.database_not_public,
        "prod",
        "mlops-mlflow-database",
        "publiclyAccessible",
        True,
        [f"{RDS}: publiclyAccessible must be false, got true"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_not_public,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.ipConfiguration.ipv4Enabled",
        True,
        [f"{SQL}: settings.ipConfiguration.ipv4Enabled must be false (private IP only), got true"],
        type=data.CLOUD_SQL,
    ),
    Case(
        data.database_not_public,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.ipConfiguration.ipv4Enabled",
        DELETE,
        [f"{SQL}: settings.ipConfiguration.ipv4Enabled must be false (private IP only), got unset"],
        type=data.CLOUD_SQL,
    ),
    # database-encryption
    Case(
        data.database_encryption,
        "prod",
        "mlops-mlflow-database",
        "storageEncrypted",
        False,
        [f"{RDS}: storageEncrypted must be true, got false"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_encryption,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.ipConfiguration.sslMode",
        "ALLOW_UNENCRYPTED_AND_ENCRYPTED",
        [
            f"{SQL}: settings.ipConfiguration.sslMode must be ENCRYPTED_ONLY or "
            'TRUSTED_CLIENT_CERTIFICATE_REQUIRED, got "ALLOW_UNENCRYPTED_AND_ENCRYPTED"'
        ],
        type=data.CLOUD_SQL,
    ),
    # database-backups
    Case(
        data.database_backups,
        "prod",
        "mlops-mlflow-database",
        "backupRetentionPeriod",
        1,
        [f"{RDS}: backupRetentionPeriod must be at least 7, got 1"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_backups,
        "prod",
        "mlops-mlflow-database",
        "backupRetentionPeriod",
        14,
        [f"{RDS}: backupRetentionPeriod must be at least 30, got 14"],
        type=data.RDS_INSTANCE,
        config={"minRetentionDays": 30},
    ),
    Case(
        data.database_backups,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.backupConfiguration.enabled",
        False,
        [f"{SQL}: settings.backupConfiguration.enabled must be true, got false"],
        type=data.CLOUD_SQL,
    ),
    Case(
        data.database_backups,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.backupConfiguration.backupRetentionSettings.retainedBackups",
        3,
        [
            f"{SQL}: settings.backupConfiguration.backupRetentionSettings.retainedBackups must be "
            "at least 7, got 3"
        ],
        type=data.CLOUD_SQL,
    ),
    # database-deletion-protection
    Case(
        data.database_deletion_protection,
        "prod",
        "mlops-mlflow-database",
        "deletionProtection",
        False,
        [f"{RDS}: deletionProtection must be true, got false"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_deletion_protection,
        "prod",
        "mlops-mlflow-database",
        "skipFinalSnapshot",
        True,
        [f"{RDS}: skipFinalSnapshot must be false, got true"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_deletion_protection,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.deletionProtectionEnabled",
        DELETE,
        [f"{SQL}: settings.deletionProtectionEnabled must be true, got unset"],
        type=data.CLOUD_SQL,
    ),
    Case(
        data.database_deletion_protection,
        "dev",
        "mlops-mlflow-database",
        "multiAz",
        False,
        [],
        type=data.RDS_INSTANCE,
        config=PROD_CONFIG_OFF,
    ),
    # database-high-availability
    Case(
        data.database_high_availability,
        "prod",
        "mlops-mlflow-database",
        "multiAz",
        False,
        [f"{RDS}: multiAz must be true, got false"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_high_availability,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.availabilityType",
        "ZONAL",
        [f'{SQL}: settings.availabilityType must be "REGIONAL", got "ZONAL"'],
        type=data.CLOUD_SQL,
    ),
    # database-engine-version
    Case(
        data.database_engine_version,
        "prod",
        "mlops-mlflow-database",
        "engineVersion",
        "13.4",
        [f'{RDS}: engineVersion "13.4" is below the supported postgres 14'],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_engine_version,
        "prod",
        "mlops-mlflow-database",
        "engineVersion",
        DELETE,
        [f"{RDS}: engineVersion must pin a postgres version (>= 14), got unset"],
        type=data.RDS_INSTANCE,
    ),
    Case(
        data.database_engine_version,
        "prod-gcp",
        "mlops-mlflow-database",
        "databaseVersion",
        "POSTGRES_12",
        [f'{SQL}: databaseVersion "12" is below the supported postgres 14'],
        type=data.CLOUD_SQL,
    ),
    # cache-encryption
    Case(
        data.cache_encryption,
        "prod",
        "mlops-feast-redis",
        "transitEncryptionEnabled",
        False,
        [f"{CACHE}: transitEncryptionEnabled must be true, got false"],
        type=data.ELASTICACHE,
    ),
    Case(
        data.cache_encryption,
        "prod",
        "mlops-feast-redis",
        "atRestEncryptionEnabled",
        DELETE,
        [f"{CACHE}: atRestEncryptionEnabled must be true, got unset"],
        type=data.ELASTICACHE,
    ),
    Case(
        data.cache_encryption,
        "prod",
        "mlops-feast-redis",
        "transitEncryptionMode",
        "preferred",
        [f'{CACHE}: transitEncryptionMode must be "required", got "preferred"'],
        type=data.ELASTICACHE,
    ),
    Case(
        data.cache_encryption,
        "prod-gcp",
        "mlops-feast-redis",
        "transitEncryptionMode",
        "DISABLED",
        [f'{REDIS}: transitEncryptionMode must be "SERVER_AUTHENTICATION", got "DISABLED"'],
        type=data.MEMORYSTORE,
    ),
    # cache-auth
    Case(
        data.cache_auth,
        "prod",
        "mlops-feast-redis",
        "authToken",
        DELETE,
        [f"{CACHE}: authToken or userGroupIds must be set (Redis AUTH / RBAC)"],
        type=data.ELASTICACHE,
    ),
    Case(
        data.cache_auth,
        "prod-gcp",
        "mlops-feast-redis",
        "authEnabled",
        False,
        [f"{REDIS}: authEnabled must be true, got false"],
        type=data.MEMORYSTORE,
    ),
    # cache-high-availability
    Case(
        data.cache_high_availability,
        "prod",
        "mlops-feast-redis",
        "automaticFailoverEnabled",
        False,
        [f"{CACHE}: automaticFailoverEnabled must be true, got false"],
        type=data.ELASTICACHE,
    ),
    Case(
        data.cache_high_availability,
        "prod",
        "mlops-feast-redis",
        "numCacheClusters",
        1,
        [f"{CACHE}: numCacheClusters must be at least 2 (a primary and a replica), got 1"],
        type=data.ELASTICACHE,
    ),
    Case(
        data.cache_high_availability,
        "prod-gcp",
        "mlops-feast-redis",
        "tier",
        "BASIC",
        [f'{REDIS}: tier must be "STANDARD_HA", got "BASIC"'],
        type=data.MEMORYSTORE,
    ),
    # kafka-encryption
    Case(
        data.kafka_encryption,
        "prod",
        "mlops-kafka-msk",
        "encryptionInfo.encryptionInTransit.clientBroker",
        "TLS_PLAINTEXT",
        [
            f'{MSK}: encryptionInfo.encryptionInTransit.clientBroker must be "TLS", got '
            '"TLS_PLAINTEXT"'
        ],
    ),
    Case(
        data.kafka_encryption,
        "prod",
        "mlops-kafka-msk",
        "encryptionInfo.encryptionInTransit.inCluster",
        False,
        [f"{MSK}: encryptionInfo.encryptionInTransit.inCluster must be true, got false"],
    ),
    Case(
        data.kafka_encryption,
        "prod",
        "mlops-kafka-msk",
        "encryptionInfo.encryptionAtRestKmsKeyArn",
        DELETE,
        [f"{MSK}: encryptionInfo.encryptionAtRestKmsKeyArn must name a KMS key"],
        config={"requireCustomerManagedKey": True},
        edits={"encryptionInfo.encryptionAtRestKmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"},
    ),
    Case(
        data.kafka_encryption,
        "local",
        "mlops-kafka-kafka",
        "spec.kafka.listeners.0.tls",
        False,
        [f'{STRIMZI}: spec.kafka.listeners[0] ("tls").tls must be true, got false'],
    ),
    # kafka-client-authentication
    Case(
        data.kafka_client_authentication,
        "prod",
        "mlops-kafka-msk",
        "clientAuthentication.unauthenticated",
        True,
        [f"{MSK}: clientAuthentication.unauthenticated must be false, got true"],
    ),
    Case(
        data.kafka_client_authentication,
        "prod",
        "mlops-kafka-msk",
        "clientAuthentication.sasl.iam",
        False,
        [
            f"{MSK}: clientAuthentication must enable sasl.iam, sasl.scram or tls, got "
            '{"sasl": {"iam": false}, "unauthenticated": false}'
        ],
    ),
    Case(
        data.kafka_client_authentication,
        "prod",
        "mlops-kafka-msk",
        "brokerNodeGroupInfo.connectivityInfo.publicAccess.type",
        "SERVICE_PROVIDED_EIPS",
        [
            f'{MSK}: brokerNodeGroupInfo.connectivityInfo.publicAccess.type must be "DISABLED", '
            'got "SERVICE_PROVIDED_EIPS"'
        ],
    ),
    Case(
        data.kafka_client_authentication,
        "local",
        "mlops-kafka-kafka",
        "spec.kafka.listeners.0.authentication",
        DELETE,
        [
            f'{STRIMZI}: spec.kafka.listeners[0] ("tls").authentication.type must be set (tls, '
            "scram-sha-512, oauth, custom)"
        ],
    ),
    # kafka-broker-logs
    Case(
        data.kafka_broker_logs,
        "prod",
        "mlops-kafka-msk",
        "loggingInfo.brokerLogs.cloudwatchLogs.enabled",
        False,
        [f"{MSK}: loggingInfo.brokerLogs must enable cloudwatchLogs, firehose or s3"],
    ),
    # kafka-topic-replication
    Case(
        data.kafka_topic_replication,
        "prod",
        "mlops-kafka-predictions",
        "replicationFactor",
        2,
        [
            "Topic 'mlops-kafka-predictions': replicationFactor must be at least 3, got 2",
            "Topic 'mlops-kafka-predictions': configs.min.insync.replicas (\"2\") must be below "
            "replicationFactor (2), or producers stop whenever one broker restarts",
        ],
        type=data.MSK_TOPIC,
    ),
    Case(
        data.kafka_topic_replication,
        "prod",
        "mlops-kafka-predictions",
        "configs",
        '{"retention.ms": "2592000000"}',
        [
            "Topic 'mlops-kafka-predictions': configs.min.insync.replicas must be at least 2, got "
            "unset"
        ],
        type=data.MSK_TOPIC,
    ),
    Case(
        data.kafka_topic_replication,
        "prod-gcp",
        "mlops-kafka-labels",
        "replicationFactor",
        1,
        ["Topic 'mlops-kafka-labels': replicationFactor must be at least 3, got 1"],
        type=data.MANAGED_KAFKA_TOPIC,
    ),
    Case(
        data.kafka_topic_replication,
        "local",
        "mlops-kafka-labels",
        "spec.replicas",
        0,
        ["KafkaTopic 'mlops-kafka-labels': spec.replicas must be at least 1, got 0"],
        type=data.STRIMZI_TOPIC[0],
        config={"minReplicationFactor": 1, "minInsyncReplicas": 1},
    ),
    Case(
        data.kafka_topic_replication,
        "prod",
        "mlops-kafka-labels",
        "configs",
        '{"min.insync.replicas": "3", "retention.ms": "7776000000"}',
        [
            "Topic 'mlops-kafka-labels': configs.min.insync.replicas (\"3\") must be below "
            "replicationFactor (3.0), or producers stop whenever one broker restarts"
        ],
        type=data.MSK_TOPIC,
    ),
    # kafka-topic-retention
    Case(
        data.kafka_topic_retention,
        "prod",
        "mlops-kafka-labels",
        "configs",
        '{"min.insync.replicas": "2", "retention.ms": "-1"}',
        [
            "Topic 'mlops-kafka-labels': configs.retention.ms must be a bounded, positive "
            'retention (at most 90 days), got "-1"'
        ],
        type=data.MSK_TOPIC,
    ),
    Case(
        data.kafka_topic_retention,
        "prod-gcp",
        "mlops-kafka-labels",
        "configs",
        {"retention.ms": "31536000000"},
        [
            "Topic 'mlops-kafka-labels': configs.retention.ms \"31536000000\" exceeds 90 days "
            "(7776000000 ms)"
        ],
        type=data.MANAGED_KAFKA_TOPIC,
    ),
    Case(
        data.kafka_topic_retention,
        "local",
        "mlops-kafka-predictions",
        "spec.config",
        {},
        [
            "KafkaTopic 'mlops-kafka-predictions': spec.config.retention.ms must be a bounded, "
            "positive retention (at most 90 days), got unset"
        ],
        type=data.STRIMZI_TOPIC[0],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_data_policies(case):
    check(case)


def test_every_data_policy_has_a_case():
    assert {c.policy.name for c in CASES} == {p.name for p in data.POLICIES}
