"""Network exposure: address ranges that open a service to the internet, the GKE control plane,
public load balancers, mesh mTLS, and a network or mesh policy in front of platform workloads.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from crossguard.cidrs import opens_internet, parse
from crossguard.props import Settings, as_list, get, known, show, subject
from crossguard.selectors import namespace, pod_labels, selects

SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
FIREWALL = "gcp:compute/firewall:Firewall"
CLOUD_SQL = "gcp:sql/databaseInstance:DatabaseInstance"
SERVICE = "kubernetes:core/v1:Service"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
PEER_AUTHENTICATION = (
    "kubernetes:security.istio.io/v1:PeerAuthentication",
    "kubernetes:security.istio.io/v1beta1:PeerAuthentication",
)
AUTHORIZATION_POLICY = (
    "kubernetes:security.istio.io/v1:AuthorizationPolicy",
    "kubernetes:security.istio.io/v1beta1:AuthorizationPolicy",
)
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def _values(items: Any, *path: str) -> list[Any]:
    return [v for item in as_list(items) for v in as_list(get(item, *path))]


def address_ranges(resource_type: str, props: Any) -> list[tuple[str, list[Any]]]:
    """(field, CIDRs) sets that each admit traffic to one resource; unknown values are skipped.

    The EKS public endpoint's ranges are checked by eks-api-endpoint-not-open.
    """
    if resource_type == SECURITY_GROUP:
        ingress = get(props, "ingress")
        return [
            ("ingress[].cidrBlocks", _values(ingress, "cidrBlocks")),
            ("ingress[].ipv6CidrBlocks", _values(ingress, "ipv6CidrBlocks")),
        ]
    if resource_type == SECURITY_GROUP_RULE and get(props, "type") == "ingress":
        return [
            ("cidrBlocks", as_list(get(props, "cidrBlocks"))),
            ("ipv6CidrBlocks", as_list(get(props, "ipv6CidrBlocks"))),
        ]
    if resource_type == INGRESS_RULE:
        return [
            ("cidrIpv4", as_list(get(props, "cidrIpv4"))),
            ("cidrIpv6", as_list(get(props, "cidrIpv6"))),
        ]
    if resource_type == GKE_CLUSTER:
        blocks = get(props, "masterAuthorizedNetworksConfig", "cidrBlocks")
        return [
            ("masterAuthorizedNetworksConfig.cidrBlocks[].cidrBlock", _values(blocks, "cidrBlock"))
        ]
    ingress_firewall = resource_type == FIREWALL and get(props, "direction") in (None, "INGRESS")
    if ingress_firewall and as_list(get(props, "allows")):
        return [("sourceRanges", as_list(get(props, "sourceRanges")))]
    if resource_type == CLOUD_SQL:
        networks = get(props, "settings", "ipConfiguration", "authorizedNetworks")
        return [("settings.ipConfiguration.authorizedNetworks[].value", _values(networks, "value"))]
    if resource_type == SERVICE:
        return [
            (
                "spec.loadBalancerSourceRanges",
                as_list(get(props, "spec", "loadBalancerSourceRanges")),
            )
        ]
    if resource_type == NETWORK_POLICY:
        peers = _values(get(props, "spec", "ingress"), "from")
        return [
            (
                "spec.ingress[].from[].ipBlock.cidr",
                [get(p, "ipBlock", "cidr") for p in peers if get(p, "ipBlock", "cidr")],
            )
        ]
    return []


def validate_no_open_cidrs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    who = subject(args.resource_type, args.name)
    for field, values in known(lambda: address_ranges(args.resource_type, args.props), []):
        _, invalid = parse(values)
        for value in invalid:
            report(f"{who}: {field} has {show(value)}, which is not an address range")
        if opens_internet(values):
            report(
                f"{who}: {field} {show(values)} together cover every public address (open to "
                "the internet)"
            )


network_no_open_cidrs = ResourceValidationPolicy(
    name="network-no-open-cidrs",
    description="No set of address ranges that admits traffic (security groups and rules, GKE "
    "authorized networks, firewalls, Cloud SQL authorized networks, "
    "load balancer source ranges, NetworkPolicy ipBlocks) together covers the public internet, "
    "whatever the literal CIDRs (0.0.0.0/1 + 128.0.0.0/1 is open).",
    validate=validate_no_open_cidrs,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_ingress_rule_sets(args: StackValidationArgs, report: ReportViolation) -> None:
    """Standalone ingress rules of one group and port range, taken together."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for resource in args.resources:
        if resource.resource_type != INGRESS_RULE:
            continue
        group = [d.urn for d in resource.property_dependencies.get("securityGroupId", [])]
        target = known(lambda r=resource: get(r.props, "securityGroupId"))
        key = (
            tuple(group) or target,
            known(lambda r=resource: get(r.props, "ipProtocol")),
            known(lambda r=resource: get(r.props, "fromPort")),
            known(lambda r=resource: get(r.props, "toPort")),
        )
        if key[0] is not None:
            groups.setdefault(key, []).append(resource)
    for rules in groups.values():
        cidrs = [
            c
            for r in rules
            for field in ("cidrIpv4", "cidrIpv6")
            if isinstance(c := known(lambda r=r, field=field: get(r.props, field)), str)
        ]
        if len(rules) > 1 and opens_internet(cidrs):
            names = ", ".join(sorted(r.name for r in rules))
            for rule in rules:
                report(
                    f"{subject(rule.resource_type, rule.name)}: with {names} the rules on one "
                    f"security group and port range cover every public address {show(cidrs)}",
                    rule.urn,
                )


security_group_rules_not_open = StackValidationPolicy(
    name="security-group-rules-not-open",
    description="Standalone security group ingress rules for the same group and ports do not "
    "together open the port to the internet.",
    validate=validate_ingress_rule_sets,
    enforcement_level=EnforcementLevel.MANDATORY,
)

GKE_ACCESS_SETTINGS = Settings(
    {
        "requirePrivateEndpoint": {
            "type": "boolean",
            "default": True,
            "description": "The control plane is reachable on its private endpoint only.",
        }
    }
)


def validate_gke_control_plane(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != GKE_CLUSTER:
        return
    who = subject(args.resource_type, args.name)
    authorized = get(args.props, "masterAuthorizedNetworksConfig")
    if authorized is None:
        report(
            f"{who}: masterAuthorizedNetworksConfig must be set (authorized networks on), got unset"
        )
    elif get(authorized, "gcpPublicCidrsAccessEnabled") is True:
        report(
            f"{who}: masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled must be false, "
            "got true (any Google Cloud IP could reach the API)"
        )
    if GKE_ACCESS_SETTINGS.value(args.get_config(), "requirePrivateEndpoint"):
        private = get(args.props, "privateClusterConfig", "enablePrivateEndpoint")
        if private is not True:
            report(
                f"{who}: privateClusterConfig.enablePrivateEndpoint must be true, got "
                f"{show(private)}"
            )


gke_control_plane_access = ResourceValidationPolicy(
    name="gke-control-plane-access",
    description="GKE control planes use authorized networks (no blanket Google Cloud access) "
    "and, where required, only a private endpoint.",
    validate=validate_gke_control_plane,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=GKE_ACCESS_SETTINGS.schema,
)

# Annotations that make a LoadBalancer Service internal on EKS (AWS LB controller and in-tree)
# and GKE.
INTERNAL_LB_ANNOTATIONS = {
    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internal",
    "service.beta.kubernetes.io/aws-load-balancer-internal": "true",
    "networking.gke.io/load-balancer-type": "Internal",
}


def validate_load_balancer(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != SERVICE or get(args.props, "spec", "type") != "LoadBalancer":
        return
    annotations = get(args.props, "metadata", "annotations")
    if any(get(annotations, key) == value for key, value in INTERNAL_LB_ANNOTATIONS.items()):
        return
    if not as_list(get(args.props, "spec", "loadBalancerSourceRanges")):
        report(
            f"{subject(args.resource_type, args.name)}: a public LoadBalancer Service needs "
            "spec.loadBalancerSourceRanges (or an internal load balancer annotation)"
        )


k8s_load_balancer_source_ranges = ResourceValidationPolicy(
    name="k8s-load-balancer-source-ranges",
    description="A Service of type LoadBalancer is internal or lists loadBalancerSourceRanges.",
    validate=validate_load_balancer,
    enforcement_level=EnforcementLevel.MANDATORY,
)

MTLS_SETTINGS = Settings(
    {
        "permissivePorts": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Reviewed port-level exceptions, as <namespace>/<name>:<port> (a "
            "port receiving from outside the mesh, e.g. Alertmanager webhooks).",
        }
    }
)
MTLS_OK = ("STRICT", "UNSET")


def validate_peer_authentication(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in PEER_AUTHENTICATION:
        return
    who = subject(args.resource_type, args.name)
    mode = get(args.props, "spec", "mtls", "mode")
    if mode is not None and mode not in MTLS_OK:
        report(f'{who}: spec.mtls.mode must be "STRICT", got {show(mode)}')
    allowed = set(as_list(MTLS_SETTINGS.value(args.get_config(), "permissivePorts")))
    ident = f"{namespace(args.props)}/{get(args.props, 'metadata', 'name')}"
    ports = get(args.props, "spec", "portLevelMtls")
    for port in ports or {}:
        port_mode = get(ports, port, "mode")
        if port_mode not in MTLS_OK and f"{ident}:{port}" not in allowed:
            report(
                f'{who}: spec.portLevelMtls.{port}.mode must be "STRICT", got '
                f"{show(port_mode)} ({ident}:{port} is not in permissivePorts)"
            )


mesh_mtls_strict = ResourceValidationPolicy(
    name="mesh-mtls-strict",
    description="Istio PeerAuthentications require mutual TLS (STRICT); port-level exceptions "
    "only where listed in permissivePorts.",
    validate=validate_peer_authentication,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=MTLS_SETTINGS.schema,
)

MESH_ROOT_SETTINGS = Settings(
    {
        "rootNamespace": {
            "type": "string",
            "default": "istio-system",
            "description": "Istio's root namespace, where the mesh-wide PeerAuthentication lives.",
        }
    }
)


def validate_mesh_default(args: StackValidationArgs, report: ReportViolation) -> None:
    releases = [
        r
        for r in args.resources
        if r.resource_type == HELM_RELEASE and known(lambda r=r: get(r.props, "chart")) == "istiod"
    ]
    if not releases:
        return
    root = MESH_ROOT_SETTINGS.value(args.get_config(), "rootNamespace")
    mesh_wide = [
        r
        for r in args.resources
        if r.resource_type in PEER_AUTHENTICATION
        and namespace(r.props) == root
        and get(r.props, "spec", "selector") is None
    ]
    if not any(get(r.props, "spec", "mtls", "mode") == "STRICT" for r in mesh_wide):
        release = releases[0]
        report(
            f"{subject(release.resource_type, release.name)}: the mesh has no PeerAuthentication "
            f"in {root} without a selector and spec.mtls.mode STRICT (mesh-wide mTLS)",
            release.urn,
        )


mesh_default_mtls_strict = StackValidationPolicy(
    name="mesh-default-mtls-strict",
    description="Where Istio is installed, a mesh-wide PeerAuthentication in the root namespace "
    "makes mutual TLS STRICT by default.",
    validate=validate_mesh_default,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=MESH_ROOT_SETTINGS.schema,
)

ISOLATION_SETTINGS = Settings(
    {
        "workloads": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["mlflow", "model-server", "feast"],
            "description": "app.kubernetes.io/name of the platform workloads (MLflow and its "
            "Postgres, the model server, Feast and its Redis) that need a policy in front.",
        },
        "meshRootNamespace": {
            "type": "string",
            "default": "istio-system",
            "description": "An AuthorizationPolicy here applies to every namespace.",
        },
    }
)


def _isolates_network(policy: Any, labels: dict[str, Any]) -> bool:
    """A NetworkPolicy selecting the pods that restricts ingress (no rule open to everyone)."""
    spec = get(policy.props, "spec")
    if not selects(get(spec, "podSelector"), labels):
        return False
    types = as_list(get(spec, "policyTypes")) or ["Ingress"]
    if "Ingress" not in types:
        return False
    return all(as_list(get(rule, "from")) for rule in as_list(get(spec, "ingress")))


def _isolates_mesh(policy: Any, labels: dict[str, Any]) -> bool:
    """An AuthorizationPolicy over the pods that does not allow every request."""
    spec = get(policy.props, "spec")
    if not selects(get(spec, "selector"), labels):
        return False
    action = get(spec, "action") or "ALLOW"
    rules = as_list(get(spec, "rules"))
    if action == "ALLOW":
        return not any(
            not get(rule, "from") and not get(rule, "when") and not get(rule, "to")
            for rule in rules
        )
    return action == "DENY" and bool(rules)


def validate_workload_isolation(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    names = set(as_list(ISOLATION_SETTINGS.value(config, "workloads")))
    root = ISOLATION_SETTINGS.value(config, "meshRootNamespace")
    network_policies = [r for r in args.resources if r.resource_type == NETWORK_POLICY]
    mesh_policies = [r for r in args.resources if r.resource_type in AUTHORIZATION_POLICY]
    for workload in args.resources:
        labels = pod_labels(workload.resource_type, workload.props)
        if labels.get("app.kubernetes.io/name") not in names:
            continue
        ns = namespace(workload.props)
        covered = any(
            namespace(p.props) == ns and _isolates_network(p, labels) for p in network_policies
        ) or any(
            namespace(p.props) in (ns, root) and _isolates_mesh(p, labels) for p in mesh_policies
        )
        if not covered:
            report(
                f"{subject(workload.resource_type, workload.name)}: no NetworkPolicy or Istio "
                f"AuthorizationPolicy in namespace {ns} selects its pods and restricts ingress",
                workload.urn,
            )


platform_workloads_isolated = StackValidationPolicy(
    name="platform-workloads-isolated",
    description="Every platform workload (MLflow, the model server, Feast, their Postgres and "
    "Redis) is selected by a NetworkPolicy or Istio AuthorizationPolicy that restricts ingress.",
    validate=validate_workload_isolation,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=ISOLATION_SETTINGS.schema,
)

POLICIES = [
    network_no_open_cidrs,
    security_group_rules_not_open,
    gke_control_plane_access,
    k8s_load_balancer_source_ranges,
    mesh_mtls_strict,
    mesh_default_mtls_strict,
    platform_workloads_isolated,
]
