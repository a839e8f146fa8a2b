"""Network exposure: address ranges, the GKE control plane, load balancers, mTLS, isolation."""

from __future__ import annotations

import pytest
from cases import Case, check
from crossguard import network
from crossguard.cidrs import opens_internet
from harness import DELETE

GKE = "Cluster 'mlops-gke'"
FIREWALL = "Firewall 'mlops-control-plane-webhooks'"
PA = "PeerAuthentication 'mlops-loop-peer-authentication'"
HALVES = ["0.0.0.0/1", "128.0.0.0/1"]
LB = {"spec.type": "LoadBalancer", "spec.loadBalancerSourceRanges": ["198.51.100.0/24"]}
LOOP_PORTS = {"permissivePorts": ["mlops-loop/retrain-receiver:8080"]}

CASES = [
    # network-no-open-cidrs: sets of ranges, not literals
    Case(
        network.network_no_open_cidrs,
        "prod-gcp",
        "mlops-gke",
        "masterAuthorizedNetworksConfig.cidrBlocks",
        [{"cidrBlock": c} for c in HALVES],
        [
            f"{GKE}: masterAuthorizedNetworksConfig.cidrBlocks[].cidrBlock "
            '["0.0.0.0/1", "128.0.0.0/1"] together cover every public address (open to the '
            "internet)"
        ],
    ),
    Case(
        network.network_no_open_cidrs,
        "prod-gcp",
        "mlops-control-plane-webhooks",
        "sourceRanges",
        ["172.16.0.0/28", "not-a-cidr"],
        [f'{FIREWALL}: sourceRanges has "not-a-cidr", which is not an address range'],
    ),
    Case(
        network.network_no_open_cidrs,
        "prod-gcp",
        "mlops-control-plane-webhooks",
        "sourceRanges",
        ["0.0.0.0/0"],
        [
            f'{FIREWALL}: sourceRanges ["0.0.0.0/0"] together cover every public address (open to '
            "the internet)"
        ],
    ),
    Case(
        network.network_no_open_cidrs,
        "prod-gcp",
        "mlops-gke",
        "masterAuthorizedNetworksConfig.cidrBlocks",
        [{"cidrBlock": "::/0"}],
        [
            f'{GKE}: masterAuthorizedNetworksConfig.cidrBlocks[].cidrBlock ["::/0"] together cover '
            "every public address (open to the internet)"
        ],
    ),
    Case(
        network.network_no_open_cidrs,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.ipConfiguration.authorizedNetworks",
        [{"value": "0.0.0.0/2"}, {"value": "64.0.0.0/2"}, {"value": "128.0.0.0/1"}],
        [
            "DatabaseInstance 'mlops-mlflow-database': settings.ipConfiguration.authorizedNetworks"
            '[].value ["0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1"] together cover every public '
            "address (open to the internet)"
        ],
        type=network.CLOUD_SQL,
    ),
    Case(
        network.network_no_open_cidrs,
        "prod",
        "mlops-feast-service",
        "spec.loadBalancerSourceRanges",
        HALVES,
        [
            "Service 'mlops-feast-service': spec.loadBalancerSourceRanges [\"0.0.0.0/1\", "
            '"128.0.0.0/1"] together cover every public address (open to the internet)'
        ],
    ),
    Case(
        network.network_no_open_cidrs,
        "prod",
        "mlops-feast-redis-from-cluster",
        "cidrIpv4",
        "0.0.0.0/0",
        [
            "SecurityGroupIngressRule 'mlops-feast-redis-from-cluster': cidrIpv4 [\"0.0.0.0/0\"] "
            "together cover every public address (open to the internet)"
        ],
        type=network.INGRESS_RULE,
    ),
    Case(
        network.network_no_open_cidrs,
        "prod",
        "mlops-feast-server",
        "spec.ingress.0.from",
        [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
        [
            "NetworkPolicy 'mlops-feast-server': spec.ingress[].from[].ipBlock.cidr "
            '["0.0.0.0/0"] together cover every public address (open to the internet)'
        ],
        type=network.NETWORK_POLICY,
    ),
    # gke-control-plane-access
    Case(
        network.gke_control_plane_access,
        "prod-gcp",
        "mlops-gke",
        "privateClusterConfig.enablePrivateEndpoint",
        False,
        [f"{GKE}: privateClusterConfig.enablePrivateEndpoint must be true, got false"],
    ),
    Case(
        network.gke_control_plane_access,
        "prod-gcp",
        "mlops-gke",
        "masterAuthorizedNetworksConfig",
        DELETE,
        [f"{GKE}: masterAuthorizedNetworksConfig must be set (authorized networks on), got unset"],
    ),
    Case(
        network.gke_control_plane_access,
        "prod-gcp",
        "mlops-gke",
        "masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled",
        True,
        [
            f"{GKE}: masterAuthorizedNetworksConfig.gcpPublicCidrsAccessEnabled must be false, got "
            "true (any Google Cloud IP could reach the API)"
        ],
    ),
    # k8s-load-balancer-source-ranges
    Case(
        network.k8s_load_balancer_source_ranges,
        "prod",
        "mlops-feast-service",
        "spec.loadBalancerSourceRanges",
        DELETE,
        [
            "Service 'mlops-feast-service': a public LoadBalancer Service needs "
            "spec.loadBalancerSourceRanges (or an internal load balancer annotation)"
        ],
        edits=LB,
    ),
    # mesh-mtls-strict
    Case(
        network.mesh_mtls_strict,
        "prod",
        "mlops-mesh-peer-authentication",
        "spec.mtls.mode",
        "PERMISSIVE",
        [
            "PeerAuthentication 'mlops-mesh-peer-authentication': spec.mtls.mode must be "
            '"STRICT", got "PERMISSIVE"'
        ],
    ),
    Case(
        network.mesh_mtls_strict,
        "prod",
        "mlops-loop-peer-authentication",
        "spec.portLevelMtls.9400",
        {"mode": "DISABLE"},
        [
            f'{PA}: spec.portLevelMtls.9400.mode must be "STRICT", got "DISABLE" '
            "(mlops-loop/retrain-receiver:9400 is not in permissivePorts)"
        ],
        config=LOOP_PORTS,
    ),
    # mesh-default-mtls-strict (stack)
    Case(
        network.mesh_default_mtls_strict,
        "prod",
        "mlops-mesh-peer-authentication",
        "spec.mtls.mode",
        "PERMISSIVE",
        [
            "Release 'mlops-mesh-istiod': the mesh has no PeerAuthentication in istio-system "
            "without a selector and spec.mtls.mode STRICT (mesh-wide mTLS) @ mlops-mesh-istiod"
        ],
    ),
    Case(
        network.mesh_default_mtls_strict,
        "prod",
        "mlops-mesh-peer-authentication",
        "spec.selector",
        {"matchLabels": {"app": "x"}},
        [
            "Release 'mlops-mesh-istiod': the mesh has no PeerAuthentication in istio-system "
            "without a selector and spec.mtls.mode STRICT (mesh-wide mTLS) @ mlops-mesh-istiod"
        ],
    ),
    # platform-workloads-isolated (stack): feast's server is covered by its NetworkPolicy
    Case(
        network.platform_workloads_isolated,
        "prod",
        "mlops-feast-server",
        "spec.ingress.0.from",
        [],
        [
            "Deployment 'mlops-feast-server': no NetworkPolicy or Istio AuthorizationPolicy in "
            "namespace feast selects its pods and restricts ingress @ mlops-feast-server"
        ],
        type=network.NETWORK_POLICY,
        config={"workloads": ["feast"]},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_network_policies(case):
    check(case)


def test_every_network_policy_has_a_case():
    tested_below = {network.security_group_rules_not_open.name}
    assert {c.policy.name for c in CASES} | tested_below == {p.name for p in network.POLICIES}


def test_internal_load_balancer_needs_no_source_ranges():
    from harness import edited, entry, load_plan, resource_args, violations

    plan = load_plan("prod")
    service = entry(plan, "mlops-feast-service")
    inputs = edited(service["inputs"], "spec.type", "LoadBalancer")
    inputs = edited(
        inputs,
        "metadata.annotations",
        {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
    )
    policy = network.k8s_load_balancer_source_ranges
    assert violations(policy, resource_args(plan, service, inputs)) == []


@pytest.mark.parametrize(
    ("cidrs", "open_"),
    [
        (["0.0.0.0/0"], True),
        (["0.0.0.0/1", "128.0.0.0/1"], True),
        ([f"{i}.0.0.0/8" for i in range(1, 224)], True),  # every public /8, reserved ones too
        (["::/0"], True),
        (["2000::/3"], True),
        (["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"], False),
        (["0.0.0.0/1"], False),
        (["203.0.113.0/24", "198.51.100.7/32"], False),
        ([], False),
    ],
)
def test_opens_internet_reasons_about_ranges(cidrs, open_):
    assert opens_internet(cidrs) is open_


def test_ingress_rules_that_together_open_a_port():
    from harness import load_plan, stack_args, violations

    plan = load_plan("prod")
    rule = next(r for r in plan["resources"] if r["name"] == "mlops-feast-redis-from-cluster")
    twin = {**rule, "name": "mlops-feast-redis-from-anywhere-b"}
    first = {**rule["inputs"], "cidrIpv4": "0.0.0.0/1"}
    first.pop("referencedSecurityGroupId")
    second = {**first, "cidrIpv4": "128.0.0.0/1"}
    plan = {**plan, "resources": [*plan["resources"], {**twin, "inputs": second}]}
    args = stack_args(plan, replace={"mlops-feast-redis-from-cluster": first})
    assert violations(network.security_group_rules_not_open, args) == [
        f"SecurityGroupIngressRule '{name}': with mlops-feast-redis-from-anywhere-b, "
        "mlops-feast-redis-from-cluster the rules on one security group and port range cover "
        f'every public address ["0.0.0.0/1", "128.0.0.0/1"] @ {name}'
        for name in ("mlops-feast-redis-from-cluster", "mlops-feast-redis-from-anywhere-b")
    ]
    assert violations(network.security_group_rules_not_open, stack_args(load_plan("prod"))) == []
