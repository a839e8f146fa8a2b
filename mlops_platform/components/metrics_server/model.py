"""metrics-server: whether a stack needs it installed, and its Helm values (no Pulumi here).

The `metrics.k8s.io` API is what every HorizontalPodAutoscaler on CPU or memory reads; without it
the HPA reports `FailedGetResourceMetric` and never scales. GKE and k3s (k3d) serve it already;
EKS, kind and minikube do not. The platform installs the upstream chart only where an HPA exists
and the cluster does not serve the API itself, so nothing is installed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_platform.components.capabilities.catalog import cluster_baseline
from mlops_platform.components.capabilities.model import METRICS_API, api
from mlops_platform.components.cloud import Cloud
from mlops_platform.components.cluster.model import POOL_LABEL
from mlops_platform.components.mesh.model import MeshConfig
from mlops_platform.components.serving.model import ModelDeploymentConfig

NAMESPACE = "kube-system"
RELEASE = "metrics-server"
# The chart's selector labels for release RELEASE (spread constraints select the pods by them).
SELECTOR_LABELS = {
    "app.kubernetes.io/name": "metrics-server",
    "app.kubernetes.io/instance": RELEASE,
}


def hpa_sources(serving: Mapping[str, ModelDeploymentConfig], mesh: MeshConfig) -> list[str]:
    """The config fields that make the stack create a HorizontalPodAutoscaler.

    A serving deployment gets one with `autoscaling`, and with `progressive` always (Flagger
    copies its HPA to the primary; without `autoscaling` it pins min = max); istiod gets one
    from its chart with `mesh.istiod.max_replicas`. Ingress gateways are rendered with the
    chart's autoscaling off."""
    found = [
        f"serving.{key}.{'autoscaling' if deployment.autoscaling is not None else 'progressive'}"
        for key, deployment in sorted(serving.items())
        if deployment.autoscaling is not None or deployment.progressive is not None
    ]
    if mesh.enabled and mesh.istiod.max_replicas is not None:
        found.append("mesh.istiod.max_replicas")
    return found


@dataclass(frozen=True)
class Decision:
    install: bool
    reason: str
    replicas: int = 0
    # kind and minikube kubelets serve self-signed certificates that metrics-server cannot
    # verify; on a laptop cluster that is accepted, nowhere else
    kubelet_insecure_tls: bool = False
    system_pool: bool = False  # pin to the platform's system node pool (clouds only)


def decide(cloud: Cloud, kubernetes_version: str, hpas: list[str]) -> Decision:
    """Install metrics-server when the stack has an HPA and the cluster serves no metrics API."""
    if not hpas:
        return Decision(False, "no HorizontalPodAutoscaler in the stack")
    baseline = cluster_baseline(cloud, kubernetes_version)
    if api(METRICS_API) in baseline.capabilities:
        return Decision(False, f"the cluster serves {METRICS_API} already ({baseline.source})")
    local = cloud.type == "local"
    return Decision(
        True,
        f"HorizontalPodAutoscalers from {', '.join(hpas)} need {METRICS_API}",
        # two replicas on separate nodes keep HPAs (and `kubectl top`) working through a node
        # drain, as upstream's high-availability manifests do; one on a laptop cluster
        replicas=1 if local else 2,
        kubelet_insecure_tls=local,
        system_pool=not local,
    )


def helm_values(decision: Decision) -> dict[str, Any]:
    """Values for the upstream chart (keys checked against the packaged chart), compatible with
    Pod Security `restricted`: non-root, no privilege escalation, all capabilities dropped,
    RuntimeDefault seccomp, read-only root filesystem (its certificates go to an emptyDir).

    The APIService keeps the chart's `insecureSkipTLSVerify: true` with the serving certificate
    metrics-server generates at start: verifying it needs a CA whose rotation something owns
    (cert-manager, which the platform does not install); the chart's `tls.type: helm` issues a
    certificate once and, with lookup, keeps reusing it past its expiry."""
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"]},
    }
    values: dict[str, Any] = {
        "replicas": decision.replicas,
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": restricted,
        # upstream's sizing for up to 100 nodes: 100m and 200Mi; memory is limited, CPU is not
        "resources": {
            "requests": {"cpu": "100m", "memory": "200Mi"},
            "limits": {"memory": "400Mi"},
        },
        "args": ["--kubelet-insecure-tls"] if decision.kubelet_insecure_tls else [],
    }
    if decision.system_pool:
        values["nodeSelector"] = {POOL_LABEL: "system"}
    if decision.replicas > 1:
        values["podDisruptionBudget"] = {"enabled": True, "minAvailable": 1}
        values["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": topology,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": dict(SELECTOR_LABELS)},
            }
            for topology in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")
        ]
    return values
