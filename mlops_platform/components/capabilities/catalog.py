"""Who provides and who needs what: the declarations behind the capability check.

- What a cluster has before the platform installs anything (EKS, GKE, each local distribution).
- What each Helm chart the platform installs provides (its CRDs, an aggregated API) and relies on
  (through the values it is given: volume claims, an autoscaler), at the pinned version. The CRD
  lists and the chart defaults assumed here are checked against the packaged charts
  (`MLOPS_CHARTS_DIR`) by tests/components/test_capabilities.py.
- What the Kubeflow Pipelines kustomize builds provide and rely on.
- What EKS managed add-ons provide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlops_platform.components.capabilities.model import (
    METRICS_API,
    Capability,
    Need,
    StorageClassSpec,
    api,
    claim_need,
    crd,
    provisioner,
)
from mlops_platform.components.cloud import Cloud

# --- clusters as they come -----------------------------------------------------------------


@dataclass(frozen=True)
class ClusterBaseline:
    """What a cluster serves before the platform installs anything, and where that is stated."""

    storage_classes: tuple[StorageClassSpec, ...]
    capabilities: frozenset[Capability]
    source: str


EBS_CSI_DRIVER = "ebs.csi.aws.com"
GKE_PD_CSI_DRIVER = "pd.csi.storage.gke.io"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"


def eks_baseline(kubernetes_version: str) -> ClusterBaseline:
    """EKS creates the `gp2` class (in-tree `kubernetes.io/aws-ebs`, served only by the EBS CSI
    driver, which EKS does not install); clusters created at 1.30 or later no longer get it
    annotated as the default. No metrics-server, no CSI driver."""
    minor = int(kubernetes_version.split(".")[1])
    return ClusterBaseline(
        storage_classes=(StorageClassSpec("gp2", "kubernetes.io/aws-ebs", default=minor < 30),),
        capabilities=frozenset(),
        source="EKS: `gp2` in every cluster, the default only in clusters created before 1.30; "
        "no EBS CSI driver, no metrics-server",
    )


def gke_baseline(pd_csi_driver: bool = True) -> ClusterBaseline:
    """GKE Standard: the Compute Engine PD CSI driver (on by default since 1.18.10), its classes
    (`standard-rwo` is the default), and a GKE-managed metrics-server in kube-system serving
    `metrics.k8s.io`. The platform installs none of these on GKE."""
    return ClusterBaseline(
        storage_classes=(
            StorageClassSpec("standard-rwo", GKE_PD_CSI_DRIVER, default=True),
            StorageClassSpec("premium-rwo", GKE_PD_CSI_DRIVER),
            StorageClassSpec("standard", "kubernetes.io/gce-pd"),
        ),
        capabilities=frozenset(
            {api(METRICS_API), *([provisioner(GKE_PD_CSI_DRIVER)] if pd_csi_driver else [])}
        ),
        source="GKE Standard: PD CSI driver, classes standard-rwo (default), premium-rwo and "
        "standard, a managed metrics-server",
    )


LOCAL_BASELINES: dict[str, ClusterBaseline] = {
    # kind ships rancher's local-path-provisioner as the default class `standard`; no metrics
    # server (and its kubelets serve self-signed certificates).
    "kind": ClusterBaseline(
        storage_classes=(StorageClassSpec("standard", LOCAL_PATH_PROVISIONER, default=True),),
        capabilities=frozenset({provisioner(LOCAL_PATH_PROVISIONER)}),
        source="kind: default storage class `standard` (local-path-provisioner)",
    ),
    # k3s (k3d) packages local-path-provisioner (class `local-path`) and metrics-server.
    "k3d": ClusterBaseline(
        storage_classes=(StorageClassSpec("local-path", LOCAL_PATH_PROVISIONER, default=True),),
        capabilities=frozenset({provisioner(LOCAL_PATH_PROVISIONER), api(METRICS_API)}),
        source="k3s packaged components: local-storage, metrics-server",
    ),
    # minikube's storage-provisioner addon (on by default) serves the default class `standard`;
    # metrics-server is an addon that is off by default.
    "minikube": ClusterBaseline(
        storage_classes=(StorageClassSpec("standard", "k8s.io/minikube-hostpath", default=True),),
        capabilities=frozenset({provisioner("k8s.io/minikube-hostpath")}),
        source="minikube default addons: default-storageclass, storage-provisioner",
    ),
}


# --- EKS managed add-ons -------------------------------------------------------------------

EKS_ADDON_OFFERS: dict[str, frozenset[Capability]] = {
    "aws-ebs-csi-driver": frozenset({provisioner(EBS_CSI_DRIVER)}),
    "metrics-server": frozenset({api(METRICS_API)}),
}


# --- Helm charts ---------------------------------------------------------------------------


def _crds(api_version: str, *kinds: str) -> frozenset[Capability]:
    return frozenset(crd(api_version, kind) for kind in kinds)


def _get(values: Mapping[str, Any], path: str, default: Any = None) -> Any:
    node: Any = values
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


# Served CRD versions per chart at the pinned version (a test compares them with the packaged
# charts' CRD files).
PROMETHEUS_OPERATOR_CRDS = _crds(
    "monitoring.coreos.com/v1",
    "Alertmanager",
    "PodMonitor",
    "Probe",
    "Prometheus",
    "PrometheusRule",
    "ServiceMonitor",
    "ThanosRuler",
) | _crds("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig", "PrometheusAgent", "ScrapeConfig")
STRIMZI_CRDS = _crds(
    "kafka.strimzi.io/v1",
    "Kafka",
    "KafkaBridge",
    "KafkaConnect",
    "KafkaConnector",
    "KafkaMirrorMaker2",
    "KafkaNodePool",
    "KafkaRebalance",
    "KafkaTopic",
    "KafkaUser",
) | _crds("core.strimzi.io/v1", "StrimziPodSet")
_ISTIO_NETWORKING = (
    "DestinationRule",
    "Gateway",
    "ServiceEntry",
    "Sidecar",
    "VirtualService",
    "WorkloadEntry",
    "WorkloadGroup",
)
_ISTIO_SECURITY = ("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication")
ISTIO_CRDS = (
    _crds("networking.istio.io/v1", *_ISTIO_NETWORKING)
    | _crds("networking.istio.io/v1beta1", *_ISTIO_NETWORKING, "ProxyConfig")
    | _crds("networking.istio.io/v1alpha3", *_ISTIO_NETWORKING, "EnvoyFilter")
    | _crds("security.istio.io/v1", *_ISTIO_SECURITY)
    | _crds("security.istio.io/v1beta1", *_ISTIO_SECURITY)
    | _crds("telemetry.istio.io/v1", "Telemetry")
    | _crds("telemetry.istio.io/v1alpha1", "Telemetry")
    | _crds("extensions.istio.io/v1alpha1", "TrafficExtension", "WasmPlugin")
)
FLAGGER_CRDS = _crds("flagger.app/v1beta1", "AlertProvider", "Canary", "MetricTemplate")


@dataclass(frozen=True)
class ChartDeclaration:
    """What a chart provides and relies on, given the values a release passes (chart defaults
    for what it leaves out) and whether Helm skips the chart's `crds/` folder."""

    provides: Callable[[Mapping[str, Any], bool], frozenset[Capability]]
    needs: Callable[[Mapping[str, Any], str], Iterator[Need]]


def _nothing(values: Mapping[str, Any], skip_crds: bool) -> frozenset[Capability]:
    return frozenset()


def _no_needs(values: Mapping[str, Any], by: str) -> Iterator[Need]:
    return iter(())


def _claim_template(values, path: str, by: str) -> Iterator[Need]:
    template = _get(values, path)
    if template is not None:
        need = claim_need(template.get("spec"), by, f"values.{path}")
        if need:
            yield need


def _kube_prometheus_stack_needs(values, by) -> Iterator[Need]:
    yield from _claim_template(
        values, "prometheus.prometheusSpec.storageSpec.volumeClaimTemplate", by
    )
    yield from _claim_template(
        values, "alertmanager.alertmanagerSpec.storage.volumeClaimTemplate", by
    )
    # grafana's chart default: persistence.enabled false
    if _get(values, "grafana.persistence.enabled", False):
        yield Need(
            Capability("storage-class", _get(values, "grafana.persistence.storageClassName") or ""),
            by,
            "values.grafana.persistence",
        )


def _minio_needs(values, by) -> Iterator[Need]:
    # chart default: persistence.enabled true, no class (the cluster default)
    if _get(values, "persistence.enabled", True) and not _get(values, "persistence.existingClaim"):
        yield Need(
            Capability("storage-class", _get(values, "persistence.storageClass") or ""),
            by,
            "values.persistence",
        )


def _autoscaler_need(path: str, default: bool):
    def needs(values, by) -> Iterator[Need]:
        if _get(values, path, default):
            yield Need(api(METRICS_API), by, f"values.{path} (a CPU HorizontalPodAutoscaler)")

    return needs


CHARTS: dict[str, ChartDeclaration] = {
    "kube-prometheus-stack": ChartDeclaration(
        provides=lambda values, skip: (
            PROMETHEUS_OPERATOR_CRDS if _get(values, "crds.enabled", True) else frozenset()
        ),
        needs=_kube_prometheus_stack_needs,
    ),
    # CRDs in the chart's `crds/` folder: Helm installs them unless told to skip
    "strimzi-kafka-operator": ChartDeclaration(
        provides=lambda values, skip: frozenset() if skip else STRIMZI_CRDS, needs=_no_needs
    ),
    "flagger": ChartDeclaration(
        provides=lambda values, skip: (
            frozenset() if skip and not _get(values, "crd.create", False) else FLAGGER_CRDS
        ),
        needs=_no_needs,
    ),
    # Istio's base chart renders its CRDs as templates (enableCRDTemplates, default true)
    "base": ChartDeclaration(
        provides=lambda values, skip: (
            ISTIO_CRDS if _get(values, "base.enableCRDTemplates", True) else frozenset()
        ),
        needs=_no_needs,
    ),
    "istiod": ChartDeclaration(provides=_nothing, needs=_autoscaler_need("autoscaleEnabled", True)),
    "gateway": ChartDeclaration(
        provides=_nothing, needs=_autoscaler_need("autoscaling.enabled", True)
    ),
    "cni": ChartDeclaration(provides=_nothing, needs=_no_needs),
    "minio": ChartDeclaration(provides=_nothing, needs=_minio_needs),
    "metrics-server": ChartDeclaration(
        provides=lambda values, skip: (
            frozenset({api(METRICS_API)})
            if _get(values, "apiService.create", True)
            else frozenset()
        ),
        needs=_no_needs,
    ),
    "cluster-autoscaler": ChartDeclaration(provides=_nothing, needs=_no_needs),
    "nvidia-device-plugin": ChartDeclaration(provides=_nothing, needs=_no_needs),
    "loadtester": ChartDeclaration(provides=_nothing, needs=_no_needs),
}

# Chart defaults the declarations above rely on when a release leaves a value out; a test reads
# each from the packaged chart's values.yaml.
ASSUMED_CHART_DEFAULTS: dict[tuple[str, str], Any] = {
    ("kube-prometheus-stack", "crds.enabled"): True,
    ("flagger", "crd.create"): False,
    ("istiod", "_internal_defaults_do_not_set.autoscaleEnabled"): True,
    ("gateway", "_internal_defaults_do_not_set.autoscaling.enabled"): True,
    ("base", "_internal_defaults_do_not_set.base.enableCRDTemplates"): True,
    ("minio", "persistence.enabled"): True,
    ("metrics-server", "apiService.create"): True,
}


# --- kustomize builds ----------------------------------------------------------------------

ARGO_CRDS = _crds(
    "argoproj.io/v1alpha1",
    "ClusterWorkflowTemplate",
    "CronWorkflow",
    "Workflow",
    "WorkflowArtifactGCTask",
    "WorkflowEventBinding",
    "WorkflowTaskResult",
    "WorkflowTaskSet",
    "WorkflowTemplate",
)
KFP_CLUSTER_SCOPED_CRDS = (
    ARGO_CRDS
    | _crds("kubeflow.org/v1beta1", "ScheduledWorkflow", "Viewer")
    | _crds("app.k8s.io/v1beta1", "Application")
)


@dataclass(frozen=True)
class KustomizeDeclaration:
    provides: frozenset[Capability]
    # (capability, where) pairs; the objects are not in the plan until the build is rendered
    needs: tuple[tuple[Capability, str], ...]


# Keyed by how the planned directory ends. The project's overlay on `env/platform-agnostic`
# claims two volumes with no class (MySQL `mysql-pv-claim`, SeaweedFS `seaweedfs-pvc`: a test
# reads them from the upstream tree) and runs the Argo workflow controller and the
# ScheduledWorkflow controller, which need their CRDs from the cluster-scoped build.
KUSTOMIZE: dict[str, KustomizeDeclaration] = {
    "manifests/kustomize/cluster-scoped-resources": KustomizeDeclaration(
        provides=KFP_CLUSTER_SCOPED_CRDS, needs=()
    ),
    "mlops_platform/components/pipelines/kustomize": KustomizeDeclaration(
        provides=frozenset(),
        needs=(
            (Capability("storage-class", ""), "PersistentVolumeClaim mysql-pv-claim"),
            (Capability("storage-class", ""), "PersistentVolumeClaim seaweedfs-pvc"),
            (crd("argoproj.io/v1alpha1", "Workflow"), "Deployment workflow-controller"),
            (
                crd("kubeflow.org/v1beta1", "ScheduledWorkflow"),
                "Deployment ml-pipeline-scheduledworkflow",
            ),
        ),
    ),
}


def kustomize_declaration(directory: str) -> KustomizeDeclaration | None:
    path = directory.split("?", 1)[0].rstrip("/")
    for suffix, declaration in KUSTOMIZE.items():
        if path.endswith(suffix):
            return declaration
    return None


def cluster_baseline(cloud: Cloud, kubernetes_version: str) -> ClusterBaseline:
    """What the stack's cluster has before the platform installs anything."""
    if cloud.type == "aws":
        return eks_baseline(kubernetes_version)
    if cloud.type == "gcp":
        return gke_baseline()
    return LOCAL_BASELINES[cloud.distribution]


def existing_cluster(cloud: Cloud, kubernetes_version: str) -> ClusterBaseline | None:
    """The cluster a stack deploys to without creating it (local), for `plan.unmet`; None when
    the plan creates the cluster, whose resource then offers the baseline itself."""
    return cluster_baseline(cloud, kubernetes_version) if cloud.type == "local" else None


def render_baselines(kubernetes_version: str) -> str:
    """The README table of what each cluster provides before the platform installs anything."""
    rows = {
        f"EKS {kubernetes_version}": eks_baseline(kubernetes_version),
        "GKE Standard": gke_baseline(),
        **{f"local `{name}`": baseline for name, baseline in LOCAL_BASELINES.items()},
    }
    lines = [
        "| cluster | StorageClasses (provisioner) | other capabilities | source |",
        "|---|---|---|---|",
    ]
    for label, baseline in rows.items():
        classes = ", ".join(
            f"`{spec.name}` ({spec.provisioner}{', default' if spec.default else ''})"
            for spec in baseline.storage_classes
        )
        others = ", ".join(f"{cap}" for cap in sorted(baseline.capabilities)) or "none"
        lines.append(f"| {label} | {classes} | {others} | {baseline.source} |")
    return "\n".join(lines)
