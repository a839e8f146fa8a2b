"""Identity and least privilege: serving identities, the `default` ServiceAccount, Kubernetes
RBAC, IAM policy documents and grants, EKS access entries, MLflow client permissions.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
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

from crossguard.exceptions import EXCEPTIONS_SETTING, checked
from crossguard.props import Settings, as_list, as_mapping, get, known, show, subject

IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY_TYPES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
GSA_IAM_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
BUCKET_IAM = (
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding",
)
PROJECT_IAM = ("gcp:projects/iAMMember:IAMMember", "gcp:projects/iAMBinding:IAMBinding")
K8S_SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
RBAC_ROLES = (
    "kubernetes:rbac.authorization.k8s.io/v1:Role",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
)
RBAC_BINDINGS = (
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
)
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
EKS_ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
IDENTITY_ANNOTATIONS = ("eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account")

# Actions that change objects or buckets: an action pattern matching any of them writes.
S3_WRITE_ACTIONS = (
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectAcl",
    "s3:AbortMultipartUpload",
    "s3:RestoreObject",
    "s3:ReplicateObject",
    "s3:PutBucketPolicy",
    "s3:DeleteBucket",
    "s3:PutLifecycleConfiguration",
)
PROJECT_STORAGE_ROLE_PREFIXES = ("roles/storage.", "roles/owner", "roles/editor")
GCS_READ_ROLES = (
    "roles/storage.objectViewer",
    "roles/storage.legacyObjectReader",
    "roles/storage.legacyBucketReader",
    "roles/storage.bucketViewer",
)


def document(value: Any) -> Mapping[str, Any]:
    return as_mapping(value)


def statements(value: Any) -> list[Any]:
    return as_list(document(value).get("Statement"))


def _matches(pattern: Any, action: str) -> bool:
    return isinstance(pattern, str) and fnmatch.fnmatch(action.lower(), pattern.lower())


def writes_s3(statement: Any) -> list[str]:
    """The action patterns of an Allow statement that write to S3 (NotAction counts whole)."""
    if get(statement, "Effect") != "Allow":
        return []
    if get(statement, "NotAction") is not None:
        return [f"NotAction {show(get(statement, 'NotAction'))}"]
    return [
        p
        for p in as_list(get(statement, "Action"))
        if any(_matches(p, action) for action in S3_WRITE_ACTIONS)
    ]


def trusted_service_accounts(role_props: Any) -> list[str]:
    """`system:serviceaccount:<ns>:<name>` subjects an IRSA role's trust policy admits."""
    found = []
    for statement in statements(get(role_props, "assumeRolePolicy")):
        for operator in ("StringEquals", "StringLike"):
            conditions = get(statement, "Condition", operator) or {}
            for key in conditions:
                if key.endswith(":sub"):
                    found += [v for v in as_list(conditions[key]) if isinstance(v, str)]
    return found


def _targets(
    resource: PolicyResource, prop: str, candidates: list[PolicyResource]
) -> list[PolicyResource]:
    """Which of `candidates` `resource.<prop>` refers to (property dependency, else name/id)."""
    by_urn = {c.urn: c for c in candidates}
    found = [by_urn[d.urn] for d in resource.property_dependencies.get(prop, []) if d.urn in by_urn]
    if found:
        return found
    value = known(lambda: get(resource.props, prop))
    return [
        c
        for c in candidates
        if isinstance(value, str) and value == known(lambda c=c: get(c.props, "name"))
    ]


SERVING_SETTINGS = Settings(
    {
        "servingServiceAccounts": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["serving/model-server"],
            "description": "Kubernetes ServiceAccounts (<namespace>/<name>) of model servers.",
        }
    }
)


def validate_serving_read_only(args: StackValidationArgs, report: ReportViolation) -> None:
    serving = set(as_list(SERVING_SETTINGS.value(args.get_config(), "servingServiceAccounts")))
    subjects = {f"system:serviceaccount:{s.replace('/', ':')}" for s in serving}
    resources = list(args.resources)
    roles = [r for r in resources if r.resource_type == IAM_ROLE]
    serving_roles = {
        r.urn
        for r in roles
        if subjects & set(known(lambda r=r: trusted_service_accounts(r.props), []))
    }
    for policy in resources:
        if policy.resource_type != ROLE_POLICY:
            continue
        if not any(role.urn in serving_roles for role in _targets(policy, "role", roles)):
            continue
        for statement in known(lambda p=policy: statements(get(p.props, "policy")), []):
            for action in writes_s3(statement):
                report(
                    f"{subject(policy.resource_type, policy.name)}: a serving identity must be "
                    f"read-only on buckets, but policy allows {action} on "
                    f"{show(get(statement, 'Resource'))}",
                    policy.urn,
                )
    # GCP: the Google service accounts serving KSAs impersonate, and their bucket roles.
    members = {f"[{s}]" for s in serving}
    emails = set()
    for binding in resources:
        if binding.resource_type != GSA_IAM_MEMBER:
            continue
        member = known(lambda b=binding: get(b.props, "member"), "")
        if known(lambda b=binding: get(b.props, "role")) == WORKLOAD_IDENTITY_USER and any(
            isinstance(member, str) and member.endswith(m) for m in members
        ):
            account = known(lambda b=binding: get(b.props, "serviceAccountId"), "")
            if isinstance(account, str):
                emails.add("serviceAccount:" + account.rsplit("/", 1)[-1])
    for grant in resources:
        on_project = grant.resource_type in PROJECT_IAM
        if grant.resource_type not in BUCKET_IAM and not on_project:
            continue
        granted = set(as_list(known(lambda g=grant: get(g.props, "member")))) | set(
            as_list(known(lambda g=grant: get(g.props, "members")))
        )
        role = known(lambda g=grant: get(g.props, "role"))
        # Project-wide grants matter when they reach storage (every bucket of the project).
        reaches_storage = not on_project or (
            isinstance(role, str) and role.startswith(PROJECT_STORAGE_ROLE_PREFIXES)
        )
        if granted & emails and reaches_storage and role not in GCS_READ_ROLES:
            report(
                f"{subject(grant.resource_type, grant.name)}: a serving identity must be "
                f"read-only on buckets, got role {show(role)}",
                grant.urn,
            )


serving_identity_read_only = StackValidationPolicy(
    name="serving-identity-read-only",
    description="Identities of model servers (IRSA roles trusted by, or Google service accounts "
    "bound to, the serving ServiceAccounts) only read buckets: no S3 write action, only GCS "
    "viewer roles on buckets and no storage role on the project.",
    validate=validate_serving_read_only,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SERVING_SETTINGS.schema,
)


def validate_default_service_account(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == IAM_ROLE:
        for sub in trusted_service_accounts(args.props):
            if sub.endswith(":default") or "*" in sub:
                report(
                    f"{who}: assumeRolePolicy trusts {show(sub)}; cloud identities go to a "
                    "dedicated ServiceAccount, never default or a wildcard"
                )
    elif args.resource_type == GSA_IAM_MEMBER and get(args.props, "role") == WORKLOAD_IDENTITY_USER:
        member = get(args.props, "member")
        if isinstance(member, str) and (member.endswith("/default]") or "*" in member):
            report(
                f"{who}: member {show(member)} binds a Google service account to a default or "
                "wildcard Kubernetes ServiceAccount"
            )
    elif (
        args.resource_type == K8S_SERVICE_ACCOUNT
        and get(args.props, "metadata", "name") == "default"
    ):
        annotations = get(args.props, "metadata", "annotations") or {}
        for key in IDENTITY_ANNOTATIONS:
            if key in annotations:
                report(f"{who}: the default ServiceAccount must not carry {key}")


no_default_service_account_identity = ResourceValidationPolicy(
    name="no-default-service-account-identity",
    description="No cloud identity (IRSA trust, GKE workload identity binding, identity "
    "annotation) is given to a namespace's default ServiceAccount or a wildcard, so pods that "
    "name no ServiceAccount get no bucket access.",
    validate=validate_default_service_account,
    enforcement_level=EnforcementLevel.MANDATORY,
)


RBAC_EXCEPTIONS = Settings(dict(EXCEPTIONS_SETTING))


def validate_rbac_wildcards(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in RBAC_ROLES:
        return
    who = subject(args.resource_type, args.name)
    check = checked(args.get_config(), args.name, report, tag=False)
    for index, rule in enumerate(as_list(get(args.props, "rules"))):
        for field in ("apiGroups", "resources", "verbs"):
            if "*" in as_list(get(rule, field)):
                check(field, f'{who}: rules[{index}].{field} must not contain "*"')


k8s_rbac_no_wildcards = ResourceValidationPolicy(
    name="k8s-rbac-no-wildcards",
    description='Roles and ClusterRoles name their API groups, resources and verbs (no "*"; '
    "checks apiGroups, resources, verbs).",
    validate=validate_rbac_wildcards,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=RBAC_EXCEPTIONS.schema,
)

PUBLIC_GROUPS = ("system:anonymous", "system:unauthenticated", "system:authenticated")


def validate_rbac_bindings(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in RBAC_BINDINGS:
        return
    who = subject(args.resource_type, args.name)
    check = checked(args.get_config(), args.name, report, tag=False)
    role = get(args.props, "roleRef", "name")
    if get(args.props, "roleRef", "kind") == "ClusterRole" and role in ("cluster-admin", "admin"):
        check(role, f"{who}: roleRef must not grant the {role} ClusterRole")
    for index, member in enumerate(as_list(get(args.props, "subjects"))):
        name = get(member, "name")
        if name in PUBLIC_GROUPS or name == "system:masters":
            check(name, f"{who}: subjects[{index}] must not be {show(name)}")


k8s_rbac_no_admin_grants = ResourceValidationPolicy(
    name="k8s-rbac-no-admin-grants",
    description="No RoleBinding or ClusterRoleBinding grants cluster-admin/admin, or anything "
    "to anonymous, unauthenticated, all authenticated users or system:masters (checks by the "
    "role's or the group's name).",
    validate=validate_rbac_bindings,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=RBAC_EXCEPTIONS.schema,
)

READ_PREFIXES = ("Describe", "List", "Get")


def _read_only(action: Any) -> bool:
    return (
        isinstance(action, str)
        and ":" in action
        and action.split(":", 1)[1].startswith(READ_PREFIXES)
    )


def validate_iam_documents(args: ResourceValidationArgs, report: ReportViolation) -> None:
    field = "assumeRolePolicy" if args.resource_type == IAM_ROLE else "policy"
    if args.resource_type not in (*IAM_POLICY_TYPES, IAM_ROLE):
        return
    who = subject(args.resource_type, args.name)
    for index, statement in enumerate(statements(get(args.props, field))):
        if get(statement, "Effect") != "Allow":
            continue
        where = f"{field} Statement[{index}]"
        if args.resource_type == IAM_ROLE:
            principal = get(statement, "Principal")
            if (principal == "*" or "*" in as_list(get(principal, "AWS"))) and not get(
                statement, "Condition"
            ):
                report(f"{who}: {where} lets any principal assume the role")
            continue
        if get(statement, "NotAction") is not None:
            report(f"{who}: {where} allows NotAction (everything but a list)")
        actions = as_list(get(statement, "Action"))
        for action in actions:
            if action == "*" or (isinstance(action, str) and action.endswith(":*")):
                report(f"{who}: {where} allows {show(action)} (every action of a service)")
        resources = as_list(get(statement, "Resource"))
        if "*" in resources and not get(statement, "Condition"):
            writes = [a for a in actions if not _read_only(a)]
            if writes:
                report(f'{who}: {where} allows {show(writes)} on Resource "*" without a Condition')


iam_policy_least_privilege = ResourceValidationPolicy(
    name="iam-policy-least-privilege",
    description='IAM policy documents allow no "*" or "service:*" action, no NotAction, no '
    'write on Resource "*" without a Condition; trust policies admit no unconditioned "*".',
    validate=validate_iam_documents,
    enforcement_level=EnforcementLevel.MANDATORY,
)

ADMIN_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/PowerUserAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
    "arn:aws:iam::aws:policy/AmazonS3FullAccess",
)
ADMIN_GCP_ROLES = (
    "roles/owner",
    "roles/editor",
    "roles/iam.securityAdmin",
    "roles/iam.serviceAccountAdmin",
    "roles/iam.serviceAccountTokenCreator",
    "roles/resourcemanager.projectIamAdmin",
    "roles/storage.admin",
)


def validate_admin_grants(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == ROLE_POLICY_ATTACHMENT:
        arn = get(args.props, "policyArn")
        if isinstance(arn, str) and any(
            arn.endswith(a.split("::", 1)[1]) for a in ADMIN_POLICY_ARNS
        ):
            report(f"{who}: policyArn must not attach {show(arn)}")
    elif args.resource_type in PROJECT_IAM:
        role = get(args.props, "role")
        if role in ADMIN_GCP_ROLES:
            report(f"{who}: role {show(role)} must not be granted project-wide")


cloud_iam_no_admin_grants = ResourceValidationPolicy(
    name="cloud-iam-no-admin-grants",
    description="No AWS managed admin policy (AdministratorAccess, PowerUserAccess, "
    "IAMFullAccess, AmazonS3FullAccess) is attached and no GCP primitive or IAM-admin role is "
    "granted on the project.",
    validate=validate_admin_grants,
    enforcement_level=EnforcementLevel.MANDATORY,
)

CLUSTER_ADMIN_POLICIES = (
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy",
)
ACCESS_SETTINGS = Settings(
    {
        "clusterAdminPrincipals": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["arn:aws:iam::*:role/platform-admins"],
            "description": "Principal ARNs (glob) that may hold a cluster-wide admin access "
            "policy.",
        }
    }
)


def validate_eks_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    if args.resource_type == EKS_ACCESS_ENTRY:
        if "system:masters" in as_list(get(args.props, "kubernetesGroups")):
            report(f"{who}: kubernetesGroups must not contain system:masters")
    elif args.resource_type == EKS_ACCESS_POLICY:
        policy = get(args.props, "policyArn")
        scope = get(args.props, "accessScope", "type")
        principal = get(args.props, "principalArn")
        allowed = as_list(ACCESS_SETTINGS.value(args.get_config(), "clusterAdminPrincipals"))
        if (
            policy in CLUSTER_ADMIN_POLICIES
            and scope == "cluster"
            and not any(
                isinstance(principal, str) and fnmatch.fnmatchcase(principal, p) for p in allowed
            )
        ):
            report(
                f"{who}: {show(policy)} cluster-wide for {show(principal)}, which is not in "
                "clusterAdminPrincipals"
            )
    elif args.resource_type == EKS_CLUSTER:
        mode = get(args.props, "accessConfig", "authenticationMode")
        if mode != "API":
            report(
                f'{who}: accessConfig.authenticationMode must be "API" (access entries, no '
                f"aws-auth ConfigMap), got {show(mode)}"
            )


eks_access_entries = ResourceValidationPolicy(
    name="eks-access-entries",
    description="EKS grants access through access entries only (authenticationMode API), none "
    "maps to system:masters, and cluster-wide admin policies go to listed principals only.",
    validate=validate_eks_access,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=ACCESS_SETTINGS.schema,
)

MLFLOW_SETTINGS = Settings(
    {
        "readOnlyUsers": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["svc-serving"],
            "description": "MLflow client users that may only READ (model servers).",
        },
        "usersFile": {
            "type": "string",
            "default": "users.json",
            "description": "ConfigMap key of the MLflow user provisioning spec.",
        },
    }
)
MLFLOW_CLIENT_PERMISSIONS = ("READ", "EDIT", "NO_PERMISSIONS")


def validate_mlflow_permissions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The provisioning spec names users, their permission and the env var of their password."""
    if args.resource_type != CONFIG_MAP:
        return
    config = args.get_config()
    raw = get(args.props, "data", MLFLOW_SETTINGS.value(config, "usersFile"))
    if not isinstance(raw, str):
        return
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError:
        return
    who = subject(args.resource_type, args.name)
    read_only = set(as_list(MLFLOW_SETTINGS.value(config, "readOnlyUsers")))
    for index, user in enumerate(as_list(get(spec, "users"))):
        name, permission = get(user, "username"), get(user, "permission")
        if "password" in (user or {}):
            report(f"{who}: users[{index}] ({name}) must not hold a password, only password_env")
        if permission not in MLFLOW_CLIENT_PERMISSIONS:
            report(f"{who}: users[{index}] ({name}).permission must not be {show(permission)}")
        elif name in read_only and permission != "READ" and permission != "NO_PERMISSIONS":
            report(
                f'{who}: users[{index}] ({name}).permission must be "READ", got {show(permission)}'
            )


mlflow_client_permissions = ResourceValidationPolicy(
    name="mlflow-client-permissions",
    description="MLflow client users provisioned by the platform hold READ or EDIT (never "
    "MANAGE), serving users READ only, and the spec carries password variable names, not "
    "passwords.",
    validate=validate_mlflow_permissions,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=MLFLOW_SETTINGS.schema,
)

POLICIES = [
    serving_identity_read_only,
    no_default_service_account_identity,
    k8s_rbac_no_wildcards,
    k8s_rbac_no_admin_grants,
    iam_policy_least_privilege,
    cloud_iam_no_admin_grants,
    eks_access_entries,
    mlflow_client_permissions,
]
