"""Progressive delivery, pure layer: where Flagger and its load tester run, and their chart
values.

Flagger (Istio provider) watches every `Canary` in the cluster, queries the platform's
Prometheus for the checks of each analysis (`mlops_platform/components/serving/delivery.py` renders them per
model) and shifts traffic with the Istio routes it generates. The load tester runs the
golden-set requests and holds the manual promotion gate; it gets an Istio sidecar, because the
model services accept only mTLS (mesh-wide STRICT).

Every key set in a chart's values exists in that chart's `values.yaml` at the pinned version (a
test reads the charts), and both Deployments pass Pod Security `restricted`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveInt, field_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.kube import (
    ContainerResourcesConfig,
    check_namespace,
    restricted_container_security,
)
from mlops_platform.components.namespaces.model import namespace_labels

FLAGGER_RELEASE = "flagger"
# The chart's fullname is the release name when that contains the chart name.
LOADTESTER_RELEASE = "flagger-loadtester"
LOADTESTER_PORT = 80
# The images' users: Flagger's (its chart's default) and the load tester's (its chart's).
FLAGGER_USER = 10001
LOADTESTER_USER, LOADTESTER_GROUP = 100, 101


class FlaggerResources(ContainerResourcesConfig):
    cpu_request: str = Field(default="10m", description="CPU request.")
    memory_request: str = Field(default="64Mi", description="Memory request.")
    memory_limit: str = Field(default="512Mi", description="Memory limit (at least the request).")


class LoadTesterResources(ContainerResourcesConfig):
    cpu_request: str = Field(default="100m", description="CPU request.")
    memory_request: str = Field(default="64Mi", description="Memory request.")
    memory_limit: str = Field(default="256Mi", description="Memory limit (at least the request).")


class DeliveryConfig(StrictModel):
    """Flagger and its load tester, for the serving deployments with `progressive`."""

    enabled: bool = Field(
        default=False,
        description="Install Flagger (required by any serving deployment with `progressive`).",
    )
    namespace: str = Field(default="flagger-system", description="Namespace of both.")
    replicas: PositiveInt = Field(
        default=1, le=3, description="Flagger replicas (more than one elect a leader)."
    )
    resources: FlaggerResources = Field(
        default_factory=FlaggerResources,
        description="Requests and memory limit of the Flagger controller.",
    )
    load_tester_resources: LoadTesterResources = Field(
        default_factory=LoadTesterResources,
        description="Requests and memory limit of Flagger's load tester (sends the "
        "golden-set requests during an analysis).",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return check_namespace(value, "namespace")


def namespace_manifest(config: DeliveryConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": config.namespace, "labels": namespace_labels("restricted")},
    }


def load_tester_url(config: DeliveryConfig) -> str:
    return f"http://{LOADTESTER_RELEASE}.{config.namespace}/"


def flagger_values(config: DeliveryConfig, prometheus_url: str) -> dict[str, Any]:
    return {
        "meshProvider": "istio",
        "metricsServer": prometheus_url,
        # Flagger starts an analysis when a ConfigMap the target references changes: that is
        # how a new model version (the release ConfigMap) becomes a new revision.
        "configTracking": {"enabled": True},
        "leaderElection": {"enabled": config.replicas > 1, "replicaCount": config.replicas},
        "securityContext": {
            "enabled": True,
            "context": restricted_container_security(FLAGGER_USER),
        },
        "resources": config.resources.values(),
        # Its own metrics (canary status, weights, durations) for the platform's Prometheus.
        "podMonitor": {"enabled": True, "namespace": config.namespace},
    }


def load_tester_values(config: DeliveryConfig) -> dict[str, Any]:
    return {
        # The model services take mTLS only: the load tester's requests go through a sidecar.
        "podLabels": {"sidecar.istio.io/inject": "true"},
        "securityContext": {
            "enabled": True,
            "context": {
                **restricted_container_security(LOADTESTER_USER),
                "runAsGroup": LOADTESTER_GROUP,
            },
        },
        # The golden-set command downloads each model's example request into /tmp.
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": config.load_tester_resources.values(),
    }
