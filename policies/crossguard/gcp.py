"""GCP policies: GCS buckets, GKE clusters and GPU node pools."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from crossguard.props import COMPUTED, as_list, get, known, show, subject

GCS_BUCKET = "gcp:storage/bucket:Bucket"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_EFFECTS = ("NO_SCHEDULE", "NO_EXECUTE")


def validate_gcs_bucket(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != GCS_BUCKET:
        return
    who = subject(args.resource_type, args.name)
    uniform = get(args.props, "uniformBucketLevelAccess")
    if uniform is not True:
        report(f"{who}: uniformBucketLevelAccess must be true, got {show(uniform)}")
    prevention = get(args.props, "publicAccessPrevention")
    if prevention != "enforced":
        report(f'{who}: publicAccessPrevention must be "enforced", got {show(prevention)}')
    versioning = get(args.props, "versioning", "enabled")
    if versioning is not True:
        report(f"{who}: versioning.enabled must be true, got {show(versioning)}")


gcs_bucket_hardening = ResourceValidationPolicy(
    name="gcs-bucket-hardening",
    description="GCS buckets use uniform access, enforce public access prevention and version "
    "objects.",
    validate=validate_gcs_bucket,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_gke_cluster(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != GKE_CLUSTER:
        return
    who = subject(args.resource_type, args.name)
    props = args.props
    private_nodes = get(props, "privateClusterConfig", "enablePrivateNodes")
    if private_nodes is not True:
        report(
            f"{who}: privateClusterConfig.enablePrivateNodes must be true, got "
            f"{show(private_nodes)}"
        )
    pool = known(lambda: get(props, "workloadIdentityConfig", "workloadPool"), COMPUTED)
    if pool is not COMPUTED and (not isinstance(pool, str) or not pool):
        report(
            f"{who}: workloadIdentityConfig.workloadPool must be set (<project>.svc.id.goog), "
            f"got {show(pool)}"
        )
    # GKE turns shielded nodes on when the field is unset; only an explicit false is a violation.
    shielded = get(props, "enableShieldedNodes")
    if shielded is False:
        report(f"{who}: enableShieldedNodes must be true, got false")
    channel = get(props, "releaseChannel", "channel")
    if channel in (None, "", "UNSPECIFIED"):
        report(
            f"{who}: releaseChannel.channel must be RAPID, REGULAR, STABLE or EXTENDED, got "
            f"{show(channel)}"
        )
    if get(props, "enableLegacyAbac") is True:
        report(f"{who}: enableLegacyAbac must be false, got true")
    if get(props, "masterAuth", "clientCertificateConfig", "issueClientCertificate") is True:
        report(
            f"{who}: masterAuth.clientCertificateConfig.issueClientCertificate must be false, "
            "got true"
        )


gke_cluster_hardening = ResourceValidationPolicy(
    name="gke-cluster-hardening",
    description="GKE clusters have private nodes, workload identity, shielded nodes, a release "
    "channel, no legacy ABAC and no client certificate.",
    validate=validate_gke_cluster,
    enforcement_level=EnforcementLevel.MANDATORY,
)


def validate_gke_gpu_taint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != GKE_NODE_POOL:
        return
    accelerators = [
        a for a in as_list(get(args.props, "nodeConfig", "guestAccelerators")) if get(a, "count")
    ]
    if not accelerators:
        return
    tainted = any(
        get(taint, "key") == GPU_TAINT_KEY and get(taint, "effect") in GPU_TAINT_EFFECTS
        for taint in as_list(get(args.props, "nodeConfig", "taints"))
    )
    if not tainted:
        kinds = ", ".join(str(get(a, "type")) for a in accelerators)
        report(
            f"{subject(args.resource_type, args.name)}: a pool with guest accelerators ({kinds}) "
            f"needs a taint {GPU_TAINT_KEY} with effect NO_SCHEDULE in nodeConfig.taints"
        )


gke_gpu_node_pool_taint = ResourceValidationPolicy(
    name="gke-gpu-node-pool-taint",
    description="GKE node pools with guestAccelerators are tainted nvidia.com/gpu NO_SCHEDULE "
    "in nodeConfig.taints.",
    validate=validate_gke_gpu_taint,
    enforcement_level=EnforcementLevel.MANDATORY,
)

POLICIES = [gcs_bucket_hardening, gke_cluster_hardening, gke_gpu_node_pool_taint]
