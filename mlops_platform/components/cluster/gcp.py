"""Private GKE in its own VPC: the thin resource layer over `model.py`."""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import GcpCloud
from mlops_platform.components.cluster.model import (
    GKE_OAUTH_SCOPES,
    ClusterConfig,
    GkeSystemPoolConfig,
    NodePoolSpec,
    gke_kubeconfig,
    gke_node_pool_inputs,
    system_pool_spec,
    workload_pool,
)
from mlops_platform.components.cluster.wiring import ClusterParts, GkeNodeAccess
from mlops_platform.components.network import Network

# Least privilege for nodes: the minimal role Google defines for node service accounts
# (logs, metrics, metadata) plus pulling images from Artifact Registry.
# A private GKE control plane reaches its nodes only on 443 and 10250 by default; admission
# webhooks served on other ports need a rule: istiod's sidecar injector and validation (15017).
WEBHOOK_PORTS = ("15017",)
NODE_ROLES = ("roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader")
PODS_RANGE = "pods"
SERVICES_RANGE = "services"


def node_service_account_id(cluster_name: str) -> str:
    """Service account ids are 6-30 characters."""
    return f"{cluster_name[:24].rstrip('-')}-nodes"


def build(name: str, cloud: GcpCloud, config: ClusterConfig, protect: bool, parent) -> ClusterParts:
    child = pulumi.ResourceOptions(parent=parent)
    network_config = config.network
    network = gcp.compute.Network(
        f"{name}-network",
        project=cloud.project,
        auto_create_subnetworks=False,
        routing_mode="REGIONAL",
        opts=child,
    )
    subnetwork = gcp.compute.Subnetwork(
        f"{name}-nodes",
        project=cloud.project,
        region=cloud.region,
        network=network.id,
        ip_cidr_range=network_config.vpc_cidr,
        private_ip_google_access=True,
        secondary_ip_ranges=[
            {"range_name": PODS_RANGE, "ip_cidr_range": network_config.pods_cidr},
            {"range_name": SERVICES_RANGE, "ip_cidr_range": network_config.services_cidr},
        ],
        log_config={
            "aggregation_interval": "INTERVAL_5_SEC",
            "flow_sampling": 0.5,
            "metadata": "INCLUDE_ALL_METADATA",
        },
        opts=child,
    )
    # Private nodes have no external IPs: Cloud NAT gives them egress (image pulls, APIs).
    router = gcp.compute.Router(
        f"{name}-router",
        project=cloud.project,
        region=cloud.region,
        network=network.id,
        opts=child,
    )
    nat = gcp.compute.RouterNat(
        f"{name}-nat",
        project=cloud.project,
        region=cloud.region,
        router=router.name,
        nat_ip_allocate_option="AUTO_ONLY",
        source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES",
        log_config={"enable": True, "filter": "ERRORS_ONLY"},
        opts=child,
    )

    node_account = gcp.serviceaccount.Account(
        f"{name}-nodes-sa",
        project=cloud.project,
        account_id=node_service_account_id(config.name),
        display_name=f"GKE nodes of {config.name}",
        opts=child,
    )
    node_roles = [
        gcp.projects.IAMMember(
            f"{name}-nodes-{role.rsplit('/', 1)[-1]}",
            project=cloud.project,
            role=role,
            member=node_account.email.apply(lambda email: f"serviceAccount:{email}"),
            opts=child,
        )
        for role in NODE_ROLES
    ]

    gcp.compute.Firewall(
        f"{name}-control-plane-webhooks",
        project=cloud.project,
        network=network.id,
        direction="INGRESS",
        description=f"GKE control plane of {config.name} to admission webhooks on its nodes",
        source_ranges=[network_config.control_plane_cidr],
        target_service_accounts=[node_account.email],
        allows=[{"protocol": "tcp", "ports": list(WEBHOOK_PORTS)}],
        opts=child,
    )

    private_endpoint = not config.api_allowed_cidrs
    pool = workload_pool(cloud.project)
    cluster = gcp.container.Cluster(
        f"{name}-gke",
        name=config.name,
        project=cloud.project,
        location=cloud.region,
        network=network.id,
        subnetwork=subnetwork.id,
        min_master_version=config.kubernetes_version,
        release_channel={"channel": config.release_channel},
        # node pools are separate resources, so they can change without touching the cluster
        remove_default_node_pool=True,
        initial_node_count=1,
        # the short-lived default pool still gets the hardened node settings
        node_config={
            "service_account": node_account.email,
            "oauth_scopes": GKE_OAUTH_SCOPES,
            "workload_metadata_config": {"mode": "GKE_METADATA"},
            "shielded_instance_config": {
                "enable_secure_boot": True,
                "enable_integrity_monitoring": True,
            },
        },
        networking_mode="VPC_NATIVE",
        ip_allocation_policy={
            "cluster_secondary_range_name": PODS_RANGE,
            "services_secondary_range_name": SERVICES_RANGE,
        },
        private_cluster_config={
            "enable_private_nodes": True,
            "enable_private_endpoint": private_endpoint,
            "master_ipv4_cidr_block": network_config.control_plane_cidr,
        },
        master_authorized_networks_config={
            "cidr_blocks": [
                {"cidr_block": cidr, "display_name": f"operators-{i}"}
                for i, cidr in enumerate(config.api_allowed_cidrs)
            ],
            # not every address Google Cloud owns: only the listed networks
            "gcp_public_cidrs_access_enabled": False,
        },
        workload_identity_config={"workload_pool": pool},
        enable_shielded_nodes=True,
        enable_legacy_abac=False,
        master_auth={"client_certificate_config": {"issue_client_certificate": False}},
        datapath_provider="ADVANCED_DATAPATH",
        binary_authorization={
            "evaluation_mode": "PROJECT_SINGLETON_POLICY_ENFORCE"
            if config.binary_authorization
            else "DISABLED"
        },
        resource_labels=dict(cloud.labels),
        deletion_protection=protect,
        opts=pulumi.ResourceOptions(
            parent=parent,
            protect=protect,
            depends_on=node_roles,
            # both describe the default pool, deleted right after creation; GKE then reports
            # another pool's settings, and a diff here would replace the whole cluster
            ignore_changes=["nodeConfig", "initialNodeCount"],
        ),
    )

    handoff = Network(
        cloud="gcp",
        network_id=network.id,
        cidr=config.network.vpc_cidr,
        private_subnet_ids=[subnetwork.id],
        project=cloud.project,
        region=cloud.region,
    )
    access = GkeNodeAccess(
        cluster_id=cluster.id,
        service_account_email=node_account.email,
        labels=dict(cloud.labels),
        # nodes pull images from outside Google through Cloud NAT
        ready=[*node_roles, nat],
    )
    system_pool = create_node_pool(
        f"{name}-system",
        system_pool_spec(config.system_pool_of(GkeSystemPoolConfig)),
        handoff,
        access,
        parent,
    )
    kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
        pulumi.Output.all(
            cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate
        ).apply(lambda values: json.dumps(gke_kubeconfig(*values)))
    )
    provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[system_pool]),
    )
    return ClusterParts(
        provider=provider,
        kubeconfig=kubeconfig,
        cluster_name=cluster.name,
        endpoint=cluster.endpoint,
        workload_pool=pulumi.Output.from_input(pool),
        node_access=access,
        network=handoff,
    )


def create_node_pool(
    name: str, spec: NodePoolSpec, network: Network, access: GkeNodeAccess, parent
) -> gcp.container.NodePool:
    """A node pool of the cluster, in the network's project and region."""
    network = network.require("gcp", f"node pool {spec.key}: the network")
    inputs = gke_node_pool_inputs(spec)
    node_config: gcp.container.NodePoolNodeConfigArgsDict = {
        **inputs.pop("node_config"),
        "service_account": access.service_account_email,
        "resource_labels": dict(access.labels),
    }
    return gcp.container.NodePool(
        name,
        # a prefix, not a fixed name: a replaced pool is created before the old one goes
        name_prefix=f"{spec.key}-",
        project=network.project,
        cluster=access.cluster_id,
        location=network.region,
        node_config=node_config,
        **inputs,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(access.ready)),
    )
