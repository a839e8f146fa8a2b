"""Identity and least privilege (one field changed per case)."""

from __future__ import annotations

import json

import pytest
from cases import PLANS, Case, check
from crossguard import identity
from harness import entry


def policy_doc(stack: str, name: str, change) -> str:
    document = json.loads(entry(PLANS[stack], name)["inputs"]["policy"])
    change(document["Statement"])
    return json.dumps(document)


def trust_doc(stack: str, name: str, sub: str) -> str:
    document = json.loads(
        entry(PLANS[stack], name, identity.IAM_ROLE)["inputs"]["assumeRolePolicy"]
    )
    condition = document["Statement"][0]["Condition"]["StringEquals"]
    key = next(k for k in condition if k.endswith(":sub"))
    condition[key] = sub
    return json.dumps(document)


def _add_put(statements):
    statements[1]["Action"].append("s3:Put*")


def _star_action(statements):
    statements[0]["Action"] = "s3:*"


def _star_resource(statements):
    statements[1]["Resource"] = "*"


USERS = json.loads(
    entry(PLANS["prod"], "mlops-mlflow-provisioner", "kubernetes:core/v1:ConfigMap")["inputs"][
        "data"
    ]["users.json"]
)
SERVING_EDIT = {"users": [*USERS["users"][:2], {**USERS["users"][2], "permission": "EDIT"}]}
MANAGER = {"users": [{**USERS["users"][0], "permission": "MANAGE"}, *USERS["users"][1:]]}

CASES = [
    # serving-identity-read-only (stack)
    Case(
        identity.serving_identity_read_only,
        "prod",
        "serving-buckets",
        "policy",
        policy_doc("prod", "serving-buckets", _add_put),
        [
            "RolePolicy 'serving-buckets': a serving identity must be read-only on buckets, but "
            'policy allows s3:Put* on "arn:aws:s3:::acme-mlops-prod-artifacts/*" @ serving-buckets'
        ],
    ),
    Case(
        identity.serving_identity_read_only,
        "prod-gcp",
        "serving-artifacts",
        "role",
        "roles/storage.objectUser",
        [
            "BucketIAMMember 'serving-artifacts': a serving identity must be read-only on buckets, "
            'got role "roles/storage.objectUser" @ serving-artifacts'
        ],
    ),
    Case(
        identity.serving_identity_read_only,
        "prod-gcp",
        "serving-kafka-churn-managedkafka-client",
        "role",
        "roles/storage.objectAdmin",
        [
            "IAMMember 'serving-kafka-churn-managedkafka-client': a serving identity must be "
            'read-only on buckets, got role "roles/storage.objectAdmin" @ '
            "serving-kafka-churn-managedkafka-client"
        ],
    ),
    # no-default-service-account-identity
    Case(
        identity.no_default_service_account_identity,
        "prod",
        "serving-role",
        "assumeRolePolicy",
        trust_doc("prod", "serving-role", "system:serviceaccount:serving:default"),
        [
            "Role 'serving-role': assumeRolePolicy trusts "
            '"system:serviceaccount:serving:default"; '
            "cloud identities go to a dedicated ServiceAccount, never default or a wildcard"
        ],
        type=identity.IAM_ROLE,
    ),
    Case(
        identity.no_default_service_account_identity,
        "prod",
        "serving-role",
        "assumeRolePolicy",
        trust_doc("prod", "serving-role", "system:serviceaccount:serving:*"),
        [
            "Role 'serving-role': assumeRolePolicy trusts \"system:serviceaccount:serving:*\"; "
            "cloud identities go to a dedicated ServiceAccount, never default or a wildcard"
        ],
        type=identity.IAM_ROLE,
    ),
    Case(
        identity.no_default_service_account_identity,
        "prod-gcp",
        "serving-workload-identity-user",
        "member",
        "serviceAccount:acme-mlops-prod.svc.id.goog[serving/default]",
        [
            "IAMMember 'serving-workload-identity-user': member "
            '"serviceAccount:acme-mlops-prod.svc.id.goog[serving/default]" binds a Google service '
            "account to a default or wildcard Kubernetes ServiceAccount"
        ],
    ),
    Case(
        identity.no_default_service_account_identity,
        "prod",
        "serving-service-account",
        "metadata.name",
        "default",
        [
            "ServiceAccount 'serving-service-account': the default ServiceAccount must not carry "
            "eks.amazonaws.com/role-arn"
        ],
    ),
    # k8s-rbac-no-wildcards
    Case(
        identity.k8s_rbac_no_wildcards,
        "prod",
        "mlops-loop-releases-serving",
        "rules.0.verbs",
        ["*"],
        ["Role 'mlops-loop-releases-serving': rules[0].verbs must not contain \"*\""],
        type=identity.RBAC_ROLES[0],
    ),
    Case(
        identity.k8s_rbac_no_wildcards,
        "prod",
        "mlops-loop-releases-serving",
        "rules.0.resources",
        ["*"],
        ["Role 'mlops-loop-releases-serving': rules[0].resources must not contain \"*\""],
        type=identity.RBAC_ROLES[0],
    ),
    # k8s-rbac-no-admin-grants
    Case(
        identity.k8s_rbac_no_admin_grants,
        "prod",
        "mlops-loop-releases-serving",
        "roleRef",
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        [
            "RoleBinding 'mlops-loop-releases-serving': roleRef must not grant the cluster-admin "
            "ClusterRole"
        ],
        type=identity.RBAC_BINDINGS[0],
    ),
    Case(
        identity.k8s_rbac_no_admin_grants,
        "prod",
        "mlops-loop-releases-serving",
        "subjects",
        [{"kind": "Group", "name": "system:authenticated"}],
        [
            "RoleBinding 'mlops-loop-releases-serving': subjects[0] must not be "
            '"system:authenticated"'
        ],
        type=identity.RBAC_BINDINGS[0],
    ),
    # iam-policy-least-privilege
    Case(
        identity.iam_policy_least_privilege,
        "prod",
        "mlflow-buckets",
        "policy",
        policy_doc("prod", "mlflow-buckets", _star_action),
        [
            "RolePolicy 'mlflow-buckets': policy Statement[0] allows \"s3:*\" (every action of a "
            "service)"
        ],
    ),
    Case(
        identity.iam_policy_least_privilege,
        "prod",
        "mlflow-buckets",
        "policy",
        policy_doc("prod", "mlflow-buckets", _star_resource),
        [
            "RolePolicy 'mlflow-buckets': policy Statement[1] allows [\"s3:AbortMultipartUpload\", "
            '"s3:DeleteObject", "s3:PutObject"] on Resource "*" without a Condition'
        ],
    ),
    Case(
        identity.iam_policy_least_privilege,
        "prod",
        "mlops-node-role",
        "assumeRolePolicy",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        [
            "Role 'mlops-node-role': assumeRolePolicy Statement[0] lets any principal assume the "
            "role"
        ],
    ),
    # cloud-iam-no-admin-grants
    Case(
        identity.cloud_iam_no_admin_grants,
        "prod",
        "mlops-node-amazoneksworkernodepolicy",
        "policyArn",
        "arn:aws:iam::aws:policy/AdministratorAccess",
        [
            "RolePolicyAttachment 'mlops-node-amazoneksworkernodepolicy': policyArn must not "
            "attach "
            '"arn:aws:iam::aws:policy/AdministratorAccess"'
        ],
    ),
    Case(
        identity.cloud_iam_no_admin_grants,
        "prod-gcp",
        "mlops-nodes-artifactregistry.reader",
        "role",
        "roles/editor",
        [
            "IAMMember 'mlops-nodes-artifactregistry.reader': role \"roles/editor\" must not be "
            "granted project-wide"
        ],
    ),
    # eks-access-entries
    Case(
        identity.eks_access_entries,
        "prod",
        "mlops-admin-platform-admins",
        "principalArn",
        "arn:aws:iam::123456789012:role/ci-deployer",
        [
            "AccessPolicyAssociation 'mlops-admin-platform-admins': "
            '"arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy" cluster-wide for '
            '"arn:aws:iam::123456789012:role/ci-deployer", which is not in clusterAdminPrincipals'
        ],
        type=identity.EKS_ACCESS_POLICY,
    ),
    Case(
        identity.eks_access_entries,
        "prod",
        "mlops-admin-platform-admins",
        "kubernetesGroups",
        ["system:masters"],
        [
            "AccessEntry 'mlops-admin-platform-admins': kubernetesGroups must not contain "
            "system:masters"
        ],
        type=identity.EKS_ACCESS_ENTRY,
    ),
    Case(
        identity.eks_access_entries,
        "prod",
        "mlops-eks",
        "accessConfig.authenticationMode",
        "API_AND_CONFIG_MAP",
        [
            "Cluster 'mlops-eks': accessConfig.authenticationMode must be \"API\" (access entries, "
            'no aws-auth ConfigMap), got "API_AND_CONFIG_MAP"'
        ],
    ),
    # mlflow-client-permissions (users.json is a key with a dot: the cases set the data map)
    Case(
        identity.mlflow_client_permissions,
        "prod",
        "mlops-mlflow-provisioner",
        "data",
        {"users.json": json.dumps(SERVING_EDIT)},
        [
            "ConfigMap 'mlops-mlflow-provisioner': users[2] (svc-serving).permission must be "
            '"READ", got "EDIT"'
        ],
        type="kubernetes:core/v1:ConfigMap",
    ),
    Case(
        identity.mlflow_client_permissions,
        "prod",
        "mlops-mlflow-provisioner",
        "data",
        {"users.json": json.dumps(MANAGER)},
        [
            "ConfigMap 'mlops-mlflow-provisioner': users[0] (svc-loop).permission must not be "
            '"MANAGE"'
        ],
        type="kubernetes:core/v1:ConfigMap",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_identity_policies(case):
    check(case)


def test_every_identity_policy_has_a_case():
    assert {c.policy.name for c in CASES} == {p.name for p in identity.POLICIES}
