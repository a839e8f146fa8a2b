"""Workload identity, resource layer under recording mocks, per cloud."""

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pytest

from mlops_platform import manifests, mocks
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.identity import (
    CloudGrant,
    WorkloadIdentity,
    WorkloadIdentityArgs,
    WorkloadIdentityConfig,
)
from mlops_platform.components.identity import model as identity_model
from mlops_platform.components.storage import ObjectStore, ObjectStoreArgs, StorageConfig
from tests.components.component_support import output_value

AWS = AwsCloud(type="aws", region="us-east-1", tags={"team": "ml"})
GCP = GcpCloud(type="gcp", project="acme-ml", region="europe-west4")
LOCAL = LocalCloud(type="local")
STORAGE = StorageConfig(bucket_prefix="acme-dev", buckets={"artifacts": {}, "datasets": {}})
TRAINER = WorkloadIdentityConfig(
    namespace="ml",
    service_account="trainer",
    buckets={"artifacts": "read_write", "datasets": "read"},
)
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"


@dataclass
class FakeCluster:
    """The attributes WorkloadIdentity reads from the cluster component."""

    provider: k8s.Provider | None
    oidc_provider_arn: str | None = PROVIDER_ARN
    oidc_issuer: str | None = ISSUER
    workload_pool: str | None = "acme-ml.svc.id.goog"


def _run(cloud, config=TRAINER, name="trainer", cluster_overrides=None, grants=None):
    built = {}

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        store = ObjectStore(
            "storage",
            ObjectStoreArgs(
                cloud=cloud,
                config=STORAGE,
                kubernetes=provider,
                identities={name: config},
            ),
        )
        cluster = FakeCluster(provider=provider, **(cluster_overrides or {}))
        built["identity"] = WorkloadIdentity(
            name,
            WorkloadIdentityArgs(
                cloud=cloud, config=config, storage=store, cluster=cluster, grants=grants or {}
            ),
        )
        built["store"] = store

    monitor = mocks.run(program)
    return monitor, built["identity"], built["store"]


def _owned(monitor, name="trainer"):
    urn = monitor.named(name).urn
    return sorted((r.type, r.name) for r in monitor.recorded if r.parent == urn)


# --- AWS --------------------------------------------------------------------------------------


def test_aws_irsa_role_trusts_exactly_the_service_account():
    monitor, identity, _ = _run(AWS)
    assert monitor.named("trainer").type == "mlops:identity:WorkloadIdentity"
    assert _owned(monitor) == [
        ("aws:iam/role:Role", "trainer-role"),
        ("aws:iam/rolePolicy:RolePolicy", "trainer-buckets"),
        ("kubernetes:core/v1:ServiceAccount", "trainer-service-account"),
    ]
    role = monitor.named("trainer-role")
    assert json.loads(role.inputs["assumeRolePolicy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": (
                            "system:serviceaccount:ml:trainer"
                        ),
                        "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }
    assert role.inputs["tags"] == {"team": "ml"}
    assert output_value(identity.role_arn) == "arn:aws:role:us-east-1:123456789012:trainer-role"


def test_aws_policy_grants_only_the_named_buckets_and_the_store_key():
    monitor, _, store = _run(AWS)
    policy = monitor.named("trainer-buckets")
    assert policy.inputs["role"] == "trainer-role-id"
    assert json.loads(policy.inputs["policy"]) == identity_model.s3_access_policy(
        {
            "artifacts": "arn:aws:s3:::acme-dev-artifacts",
            "datasets": "arn:aws:s3:::acme-dev-datasets",
        },
        {"artifacts": "read_write", "datasets": "read"},
        output_value(store.kms_key_arn),
    )


def test_aws_service_account_carries_the_role_annotation():
    monitor, _, _ = _run(AWS)
    account = monitor.named("trainer-service-account")
    assert account.inputs["metadata"] == {
        "name": "trainer",
        "namespace": "ml",
        "annotations": {
            "eks.amazonaws.com/role-arn": "arn:aws:role:us-east-1:123456789012:trainer-role"
        },
    }
    assert account.provider.endswith("::k8s::k8s-id")
    manifests.validate(account.inputs)


# --- GCP --------------------------------------------------------------------------------------


def test_gcp_google_service_account_with_bucket_roles_and_workload_identity_binding():
    monitor, identity, _ = _run(GCP)
    assert _owned(monitor) == [
        ("gcp:serviceaccount/account:Account", "trainer-gsa"),
        ("gcp:serviceaccount/iAMMember:IAMMember", "trainer-workload-identity-user"),
        ("gcp:storage/bucketIAMMember:BucketIAMMember", "trainer-artifacts"),
        ("gcp:storage/bucketIAMMember:BucketIAMMember", "trainer-datasets"),
        ("kubernetes:core/v1:ServiceAccount", "trainer-service-account"),
    ]
    email = "wi-trainer@project.iam.gserviceaccount.com"
    account = monitor.named("trainer-gsa")
    assert account.inputs["accountId"] == "wi-trainer"
    assert account.inputs["project"] == "acme-ml"
    assert monitor.named("trainer-artifacts").inputs == {
        "bucket": "acme-dev-artifacts",
        "role": "roles/storage.objectUser",
        "member": f"serviceAccount:{email}",
    }
    assert monitor.named("trainer-datasets").inputs == {
        "bucket": "acme-dev-datasets",
        "role": "roles/storage.objectViewer",
        "member": f"serviceAccount:{email}",
    }
    assert monitor.named("trainer-workload-identity-user").inputs == {
        "serviceAccountId": f"projects/project/serviceAccounts/{email}",
        "role": "roles/iam.workloadIdentityUser",
        "member": "serviceAccount:acme-ml.svc.id.goog[ml/trainer]",
    }
    ksa = monitor.named("trainer-service-account")
    assert ksa.inputs["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": email}
    manifests.validate(ksa.inputs)
    assert output_value(identity.gcp_service_account_email) == email
    assert identity.role_arn is None


# --- Local (MinIO) ----------------------------------------------------------------------------


def test_local_credentials_secret_beside_the_workload_and_no_plain_secret_anywhere():
    monitor, identity, store = _run(LOCAL)
    assert _owned(monitor) == [
        ("kubernetes:core/v1:Secret", "trainer-s3-credentials"),
        ("kubernetes:core/v1:ServiceAccount", "trainer-service-account"),
    ]
    secret = monitor.named("trainer-s3-credentials")
    secret_key = output_value(store.minio_secret_key("trainer"))
    assert secret.inputs["metadata"] == {"name": "trainer-s3-credentials", "namespace": "ml"}
    assert secret.inputs["stringData"] == {
        "AWS_ACCESS_KEY_ID": "trainer",
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_ENDPOINT_URL": "http://minio.minio.svc.cluster.local:9000",
        # The same as the AWS SDKs' files, which the platform's workloads mount.
        "credentials": "[default]\n"
        "aws_access_key_id = trainer\n"
        f"aws_secret_access_key = {secret_key}\n",
        "config": "[default]\nendpoint_url = http://minio.minio.svc.cluster.local:9000\n",
    }
    assert secret.secret_inputs == {"stringData"}
    manifests.validate(secret.inputs)
    holders = {r.name for r in monitor.recorded if secret_key in json.dumps(r.inputs, default=str)}
    assert holders == {"trainer-s3-credentials", "storage-trainer-user"}
    for name in holders:
        assert monitor.named(name).secret_inputs == {"stringData"}
    assert identity.credentials_secret_name == "trainer-s3-credentials"
    ksa = monitor.named("trainer-service-account")
    assert ksa.inputs["metadata"] == {"name": "trainer", "namespace": "ml", "annotations": {}}


def test_local_minio_chart_gets_the_identity_user_and_policy():
    monitor, _, _ = _run(LOCAL)
    values = monitor.named("storage-minio").inputs["values"]
    assert values["users"] == [
        {
            "accessKey": "trainer",
            "existingSecret": "minio-user-trainer",
            "existingSecretKey": "secretKey",
            "policy": "trainer-buckets",
        }
    ]
    assert [p["name"] for p in values["policies"]] == ["trainer-buckets"]
    assert values["policies"][0]["statements"][0] == {
        "resources": ["arn:aws:s3:::acme-dev-artifacts"],
        "actions": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
    }


# --- errors change nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "config", "cluster_overrides", "message"),
    [
        (
            AWS,
            TRAINER.model_copy(update={"buckets": {"models": "read"}}),
            {},
            "workload_identities.trainer.buckets: unknown bucket(s) 'models'; storage.buckets "
            "has 'artifacts', 'datasets'",
        ),
        (
            AWS,
            TRAINER,
            {"oidc_provider_arn": None},
            "workload_identities.trainer: on AWS the cluster must provide oidc_provider_arn "
            "and oidc_issuer",
        ),
        (
            GCP,
            TRAINER,
            {"workload_pool": None},
            "workload_identities.trainer: on GCP the cluster must provide workload_pool",
        ),
        (
            LOCAL,
            TRAINER,
            {},
            "workload_identities.trainer: no MinIO user: pass it in ObjectStoreArgs.identities "
            "(local stacks only)",
        ),
        (
            LOCAL,
            TRAINER,
            {"provider": None},
            "workload_identities.trainer: a Kubernetes provider is required "
            "(WorkloadIdentityArgs.kubernetes or cluster.provider)",
        ),
    ],
)
def test_invalid_identity_registers_nothing(cloud, config, cluster_overrides, message):
    errors = []

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        store = ObjectStore(
            "storage", ObjectStoreArgs(cloud=cloud, config=STORAGE, kubernetes=provider)
        )
        cluster = FakeCluster(provider=provider)
        for key, value in cluster_overrides.items():
            setattr(cluster, key, value)
        try:
            WorkloadIdentity(
                "trainer",
                WorkloadIdentityArgs(cloud=cloud, config=config, storage=store, cluster=cluster),
            )
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert errors == [message]
    assert [r.name for r in monitor.recorded if r.type.startswith("mlops:identity")] == []
    assert not any(r.name.startswith("trainer") for r in monitor.recorded)


def test_explicit_kubernetes_provider_wins_over_the_clusters():
    def program():
        cluster_provider = k8s.Provider("cluster-k8s", kubeconfig="{}")
        explicit = k8s.Provider("explicit-k8s", kubeconfig="{}")
        store = ObjectStore("storage", ObjectStoreArgs(cloud=AWS, config=STORAGE))
        WorkloadIdentity(
            "trainer",
            WorkloadIdentityArgs(
                cloud=AWS,
                config=TRAINER,
                storage=store,
                cluster=FakeCluster(provider=cluster_provider),
                kubernetes=explicit,
            ),
            opts=pulumi.ResourceOptions(),
        )

    monitor = mocks.run(program)
    assert monitor.named("trainer-service-account").provider.endswith(
        "::explicit-k8s::explicit-k8s-id"
    )


def test_kubernetes_objects_wait_for_what_the_caller_depends_on():
    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        namespace = k8s.core.v1.Namespace(
            "ml", metadata={"name": "ml"}, opts=pulumi.ResourceOptions(provider=provider)
        )
        store = ObjectStore(
            "storage",
            ObjectStoreArgs(
                cloud=LOCAL, config=STORAGE, kubernetes=provider, identities={"trainer": TRAINER}
            ),
        )
        WorkloadIdentity(
            "trainer",
            WorkloadIdentityArgs(cloud=LOCAL, config=TRAINER, storage=store, kubernetes=provider),
            opts=pulumi.ResourceOptions(depends_on=[namespace]),
        )

    monitor = mocks.run(program)
    namespace = monitor.named("ml").urn
    assert namespace in monitor.named("trainer-service-account").depends_on
    assert namespace in monitor.named("trainer-s3-credentials").depends_on


def test_wires_to_the_real_cluster_component_on_aws():
    from mlops_platform.components.cluster import KubernetesCluster, KubernetesClusterArgs
    from mlops_platform.components.cluster.model import ClusterConfig

    def program():
        cluster = KubernetesCluster(
            "cluster", KubernetesClusterArgs(cloud=AWS, config=ClusterConfig())
        )
        store = ObjectStore("storage", ObjectStoreArgs(cloud=AWS, config=STORAGE))
        WorkloadIdentity(
            "trainer",
            WorkloadIdentityArgs(cloud=AWS, config=TRAINER, storage=store, cluster=cluster),
        )

    monitor = mocks.run(program)
    trust = json.loads(monitor.named("trainer-role").inputs["assumeRolePolicy"])["Statement"][0]
    oidc = monitor.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert len(oidc) == 1
    # The mocks give every AWS resource the ARN arn:aws:<type>:us-east-1:123456789012:<name>.
    assert trust["Principal"] == {
        "Federated": f"arn:aws:openIdConnectProvider:us-east-1:123456789012:{oidc[0].name}"
    }
    condition = trust["Condition"]["StringEquals"]
    issuer_keys = sorted(condition)
    assert issuer_keys[0].startswith("oidc.eks.us-east-1.amazonaws.com/id/")
    assert issuer_keys[0].endswith(":aud") and issuer_keys[1].endswith(":sub")
    assert condition[issuer_keys[1]] == "system:serviceaccount:ml:trainer"
    ksa = monitor.named("trainer-service-account")
    assert ksa.provider.split("::")[-1] == "cluster-k8s-id"


# --- extra grants -----------------------------------------------------------------------------

KAFKA_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Connect",
            "Effect": "Allow",
            "Action": ["kafka-cluster:Connect"],
            "Resource": ["arn:aws:kafka:us-east-1:123456789012:cluster/mlops/abc"],
        }
    ],
}
GRANTS = {
    "kafka": CloudGrant(
        aws_policy_json=json.dumps(KAFKA_POLICY),
        gcp_project_roles=("roles/managedkafka.client",),
    )
}


def test_aws_grant_is_its_own_inline_policy_on_the_role_and_buckets_stay_the_same():
    plain, _, _ = _run(AWS)
    monitor, _, _ = _run(AWS, grants=GRANTS)
    assert _owned(monitor) == [
        ("aws:iam/role:Role", "trainer-role"),
        ("aws:iam/rolePolicy:RolePolicy", "trainer-buckets"),
        ("aws:iam/rolePolicy:RolePolicy", "trainer-kafka"),
        ("kubernetes:core/v1:ServiceAccount", "trainer-service-account"),
    ]
    grant = monitor.named("trainer-kafka")
    assert grant.inputs == {"role": "trainer-role-id", "policy": json.dumps(KAFKA_POLICY)}
    assert grant.parent == monitor.named("trainer").urn
    # the bucket policy is exactly what it is without the grant
    assert monitor.named("trainer-buckets").inputs == plain.named("trainer-buckets").inputs
    # GCP roles of a grant mean nothing on AWS
    assert not [r for r in monitor.recorded if r.type.startswith("gcp:")]


def test_gcp_grant_roles_go_to_the_google_service_account_on_the_project():
    plain, _, _ = _run(GCP)
    monitor, _, _ = _run(GCP, grants=GRANTS)
    added = sorted(set(_owned(monitor)) - set(_owned(plain)))
    assert added == [("gcp:projects/iAMMember:IAMMember", "trainer-kafka-managedkafka-client")]
    member = monitor.named("trainer-kafka-managedkafka-client")
    assert member.inputs == {
        "project": "acme-ml",
        "role": "roles/managedkafka.client",
        "member": "serviceAccount:wi-trainer@project.iam.gserviceaccount.com",
    }
    assert member.parent == monitor.named("trainer").urn
    assert not monitor.of_type("aws:iam/rolePolicy:RolePolicy")


def test_local_ignores_cloud_grants():
    plain, _, _ = _run(LOCAL)
    monitor, _, _ = _run(LOCAL, grants=GRANTS)
    assert _owned(monitor) == _owned(plain)


@pytest.mark.parametrize(
    ("grants", "message"),
    [
        ({"Kafka": CloudGrant()}, "workload_identities.trainer.grants.Kafka: the key must be"),
        ({"buckets": CloudGrant()}, "grants.buckets: the key names a child"),
        (
            {"kafka": CloudGrant(gcp_project_roles=("managedkafka.client",))},
            "grants.kafka: 'managedkafka.client' is not a predefined role (roles/...)",
        ),
    ],
)
def test_invalid_grant_registers_nothing(grants, message):
    errors = []

    def program():
        provider = k8s.Provider("k8s", kubeconfig="{}")
        store = ObjectStore("storage", ObjectStoreArgs(cloud=GCP, config=STORAGE))
        try:
            WorkloadIdentity(
                "trainer",
                WorkloadIdentityArgs(
                    cloud=GCP,
                    config=TRAINER,
                    storage=store,
                    cluster=FakeCluster(provider=provider),
                    grants=grants,
                ),
            )
        except ValueError as exc:
            errors.append(str(exc))

    monitor = mocks.run(program)
    assert len(errors) == 1 and message in errors[0]
    assert not any(r.name.startswith("trainer") for r in monitor.recorded)
