"""Monitoring, pure layer: the optional trace backend (Jaeger v2) and where spans are sent.

Jaeger v2 is one binary built on the OpenTelemetry Collector: an OTLP receiver (gRPC 4317 for
Istio's Envoy, HTTP 4318 for the model server), a storage (memory or a Badger volume) and the
query service with its UI (16686). It is rendered here as plain Kubernetes objects rather than
a chart: no Jaeger or Tempo chart is among the platform's pinned charts (`../shared/charts`),
so objects rendered by this module are what can be validated offline like every other manifest,
and a single-replica all-in-one needs nothing a chart would add. The image is pinned in
`mlops_platform/components/versions.py` (`JAEGER_IMAGE`) and the digest lock.

Off by default (`monitoring.tracing.enabled`). When on, the wiring derives everything else from
this config: the mesh's OpenTelemetry extension provider and Telemetry (mlops_platform/components/mesh), the
model servers' OTEL_* variables (mlops_platform/components/serving) and Grafana's Jaeger data source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import Field, PositiveInt

from mlops_platform.components import kube
from mlops_platform.components.base import StrictModel
from mlops_platform.components.versions import JAEGER_IMAGE

NAME = "jaeger"
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
QUERY_PORT = 16686
HEALTH_PORT = 13133
# The image's own user (its Dockerfile's USER); the Badger volume is group-owned by it.
RUN_AS_USER = 10001
CONFIG_KEY = "config.yaml"
CONFIG_DIR = "/etc/jaeger"
BADGER_DIR = "/badger"
STORE = "primary"
GRAFANA_DATASOURCE_UID = "jaeger"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "all-in-one"}


class TracingResources(kube.ContainerResourcesConfig):
    """Requests and a memory limit of the backend (no CPU limit: throttling drops spans)."""

    check_memory_limit: ClassVar[bool] = True

    cpu_request: str = Field(default="100m", description="CPU request, e.g. 100m.")
    memory_request: str = Field(default="512Mi", description="Memory request, e.g. 512Mi.")
    memory_limit: str = Field(
        default="2Gi",
        description="Memory limit, e.g. 2Gi. With `memory` storage it bounds the traces kept: "
        "size it above `max_traces` times the spans per trace (~1 KiB each).",
    )


class MemoryTraceStorage(StrictModel):
    """Traces in the backend's memory: lost on restart, bounded by `max_traces`."""

    type: Literal["memory"] = Field(description="`memory`.")
    max_traces: PositiveInt = Field(
        default=50_000,
        description="Most traces kept; the oldest are evicted beyond it.",
    )


class BadgerTraceStorage(StrictModel):
    """Traces in an embedded Badger database on a persistent volume (one replica only)."""

    type: Literal["badger"] = Field(description="`badger`.")
    storage_gb: PositiveInt = Field(default=20, description="Size of the Badger volume.")
    retention_hours: PositiveInt = Field(
        default=72, description="Spans older than this are deleted (Badger's `ttl.spans`)."
    )


TraceStorage = Annotated[MemoryTraceStorage | BadgerTraceStorage, Field(discriminator="type")]


class TracingConfig(StrictModel):
    """Distributed tracing: a Jaeger v2 backend in the monitoring namespace, the mesh's spans
    and the model servers' spans sent to it over OTLP. Off by default."""

    enabled: bool = Field(
        default=False,
        description="Run the trace backend and send the mesh's and the model servers' spans "
        "to it. Off by default: spans cost CPU on every sampled request.",
    )
    sampling_percent: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="Percentage of requests traced: Istio's Telemetry `randomSamplingPercentage` "
        "(the sidecar decides, the model server follows the decision it receives) and the "
        "model server's own ratio for requests that arrive without one.",
    )
    storage: TraceStorage = Field(
        default_factory=lambda: MemoryTraceStorage(type="memory"),
        description="Where traces are kept: `{type: memory, max_traces}` or `{type: badger, "
        "storage_gb, retention_hours}` (a volume of the monitoring `storage_class`).",
    )
    resources: TracingResources = Field(
        default_factory=TracingResources,
        description="Requests and memory limit of the backend pod (no CPU limit: throttling "
        "drops spans).",
    )
    image: str = Field(
        default=JAEGER_IMAGE,
        description="The Jaeger v2 image (`jaeger`, not the v1 `all-in-one`).",
    )


@dataclass(frozen=True)
class TracingWiring:
    """Where spans go and how many, derived from `monitoring` (what the mesh and the serving
    deployments receive; nothing of it is restated in a stack file)."""

    namespace: str
    sampling_percent: float

    @property
    def host(self) -> str:
        return f"{NAME}.{self.namespace}.svc.cluster.local"

    @property
    def otlp_http_endpoint(self) -> str:
        """OTEL_EXPORTER_OTLP_ENDPOINT of an SDK exporting over HTTP (the model server)."""
        return f"http://{self.host}:{OTLP_HTTP_PORT}"

    @property
    def sampling_ratio(self) -> float:
        return self.sampling_percent / 100


def wiring(namespace: str, config: TracingConfig) -> TracingWiring | None:
    """The backend's address and sampling when tracing is on, else None."""
    if not config.enabled:
        return None
    return TracingWiring(namespace=namespace, sampling_percent=config.sampling_percent)


def query_url(namespace: str) -> str:
    return f"http://{NAME}.{namespace}.svc.cluster.local:{QUERY_PORT}"


# --- objects ----------------------------------------------------------------------------------


def _metadata(namespace: str, name: str = NAME) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {**LABELS, "app.kubernetes.io/managed-by": "mlops-platform"},
    }


def _listen(port: int) -> dict[str, str]:
    # The collector's receivers bind to localhost unless told otherwise.
    return {"endpoint": f"0.0.0.0:{port}"}


def collector_config(storage: MemoryTraceStorage | BadgerTraceStorage) -> dict[str, Any]:
    """Jaeger v2's configuration (an OpenTelemetry Collector config with Jaeger's extensions)."""
    if isinstance(storage, MemoryTraceStorage):
        backend: dict[str, Any] = {"memory": {"max_traces": storage.max_traces}}
    else:
        backend = {
            "badger": {
                "ephemeral": False,
                "directories": {"keys": f"{BADGER_DIR}/keys", "values": f"{BADGER_DIR}/values"},
                "ttl": {"spans": f"{storage.retention_hours}h"},
            }
        }
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["jaeger_storage_exporter"],
                }
            },
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": _listen(HEALTH_PORT)},
            "jaeger_storage": {"backends": {STORE: backend}},
            "jaeger_query": {"storage": {"traces": STORE}, "http": _listen(QUERY_PORT)},
        },
        "receivers": {
            "otlp": {
                "protocols": {"grpc": _listen(OTLP_GRPC_PORT), "http": _listen(OTLP_HTTP_PORT)}
            }
        },
        "processors": {"batch": {}},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": STORE}},
    }


def config_map(namespace: str, config: TracingConfig) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(namespace),
        "data": {CONFIG_KEY: yaml.safe_dump(collector_config(config.storage), sort_keys=False)},
    }


def volume_claim(namespace: str, config: TracingConfig, storage_class: str | None) -> Any:
    """The Badger volume, or None with memory storage."""
    storage = config.storage
    if not isinstance(storage, BadgerTraceStorage):
        return None
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": f"{storage.storage_gb}Gi"}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(namespace, f"{NAME}-badger"),
        "spec": spec,
    }


def deployment(namespace: str, config: TracingConfig) -> dict[str, Any]:
    badger = isinstance(config.storage, BadgerTraceStorage)
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": NAME}},
        # The collector writes nothing else; /tmp covers what a library may still want.
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if badger:
        volumes.append({"name": "badger", "persistentVolumeClaim": {"claimName": f"{NAME}-badger"}})
        mounts.append({"name": "badger", "mountPath": BADGER_DIR})
    health = {"httpGet": {"path": "/status", "port": "health"}}
    container = {
        "name": NAME,
        "image": config.image,
        "imagePullPolicy": "IfNotPresent",
        "args": [f"--config={CONFIG_DIR}/{CONFIG_KEY}"],
        "ports": [
            {"name": "grpc-otlp", "containerPort": OTLP_GRPC_PORT, "protocol": "TCP"},
            {"name": "http-otlp", "containerPort": OTLP_HTTP_PORT, "protocol": "TCP"},
            {"name": "http-query", "containerPort": QUERY_PORT, "protocol": "TCP"},
            {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
        ],
        "resources": config.resources.values(),
        "readinessProbe": kube.probe(health, 5, 3),
        "livenessProbe": kube.probe(health, 15, 4),
        "securityContext": kube.restricted_container_security(RUN_AS_USER),
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(namespace),
        "spec": {
            "replicas": 1,
            # Badger's files are opened by one process at a time: the old pod goes first.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {
                    # Outside the mesh (the label is what istiod's injector reads): the sidecars
                    # send to it, and Envoy's spans of this pod's traffic would be traces of
                    # traces.
                    "labels": {**LABELS, "sidecar.istio.io/inject": "false"},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": kube.restricted_pod_security(RUN_AS_USER),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(namespace: str) -> dict[str, Any]:
    """Port names carry the protocol, for Istio's protocol selection on the clients' side."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(namespace),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(LABELS),
            "ports": [
                {
                    "name": "grpc-otlp",
                    "port": OTLP_GRPC_PORT,
                    "targetPort": "grpc-otlp",
                    "appProtocol": "grpc",
                },
                {
                    "name": "http-otlp",
                    "port": OTLP_HTTP_PORT,
                    "targetPort": "http-otlp",
                    "appProtocol": "http",
                },
                {
                    "name": "http-query",
                    "port": QUERY_PORT,
                    "targetPort": "http-query",
                    "appProtocol": "http",
                },
            ],
        },
    }


def network_policy(namespace: str) -> dict[str, Any]:
    """Spans in from any pod of the cluster (every sidecar sends them); the query API and UI
    only from the monitoring namespace (Grafana's data source; people use `kubectl
    port-forward`). Kubelet probes come from the node, which NetworkPolicy implementations
    allow."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(namespace),
        "spec": {
            "podSelector": {"matchLabels": dict(LABELS)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {}}],
                    "ports": [
                        {"protocol": "TCP", "port": OTLP_GRPC_PORT},
                        {"protocol": "TCP", "port": OTLP_HTTP_PORT},
                    ],
                },
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": namespace}
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": QUERY_PORT}],
                },
            ],
        },
    }


def grafana_datasource(namespace: str) -> dict[str, Any]:
    """Grafana's data source for the backend (the chart's `grafana.additionalDataSources`)."""
    return {
        "name": "Jaeger",
        "uid": GRAFANA_DATASOURCE_UID,
        "type": "jaeger",
        "access": "proxy",
        "url": query_url(namespace),
        "editable": False,
    }


def objects(
    namespace: str, config: TracingConfig, storage_class: str | None = None
) -> dict[str, dict[str, Any]]:
    """Every object of the backend, keyed by role; empty when tracing is off."""
    if not config.enabled:
        return {}
    found = {
        "config": config_map(namespace, config),
        "deployment": deployment(namespace, config),
        "service": service(namespace),
        "network-policy": network_policy(namespace),
    }
    claim = volume_claim(namespace, config, storage_class)
    if claim is not None:
        found["volume"] = claim
    return found
