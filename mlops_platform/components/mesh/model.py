"""Service mesh, pure layer: the Istio config model and the values of every chart it installs.

The mesh is Istio in sidecar mode from the official charts: `base` (CRDs and the default
revision's validating webhook), `cni` (the node agent that sets up traffic redirection, so
injected pods need no `NET_ADMIN` init container and pass Pod Security `restricted`), `istiod`
and, optionally, an ingress `gateway`. It installs the *default* revision on purpose: the
serving pods opt in with the `sidecar.istio.io/inject: "true"` label, and istiod's webhook only
honours that label without an `istio.io/rev` for the default revision.

Everything here is plain data in, plain data out; every key set in a chart's values exists in
that chart's `values.yaml` at the pinned version (see README.md), and the mesh-wide
PeerAuthentication validates against the Istio CRDs.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.cloud import AwsCloud, GcpCloud, LocalCloud
from mlops_platform.components.kube import DNS_1035_LABEL, ContainerResourcesConfig, check_namespace
from mlops_platform.components.monitoring.tracing import OTLP_GRPC_PORT, TracingWiring
from mlops_platform.components.namespaces.model import PodSecurityLevel, namespace_labels

# Helm release names. istiod's Service and webhooks are `istiod` whatever the release is called;
# the gateway's Service takes its release's name.
BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"
CNI_RELEASE = "istio-cni"
# The value of `istio.io/rev` on everything the default revision installs.
DEFAULT_REVISION = "default"
# The mesh-wide PeerAuthentication: named `default`, in the root namespace, no selector.
PEER_AUTHENTICATION_NAME = "default"
# With tracing on (`monitoring.tracing`): the meshConfig extension provider the sidecars send
# their spans to, and the mesh-wide Telemetry (root namespace, no selector) that turns it on.
TRACING_PROVIDER = "otel-tracing"
TELEMETRY_NAME = "mesh-default"
# Istio's `global.platform` profiles that change what the charts render, per cloud.
# GKE keeps CNI binaries in /home/kubernetes/bin (its /opt is read-only) and only admits
# `system-node-critical` pods outside kube-system under a ResourceQuota.
GKE_CNI_BIN_DIR = "/home/kubernetes/bin"
_LOCAL_PLATFORMS: dict[str, str | None] = {"kind": None, "k3d": "k3d", "minikube": "minikube"}
# The gateway binds 80/443 as a non-root user through this sysctl (safe since Kubernetes 1.22,
# admitted by every Pod Security level).
_UNPRIVILEGED_PORTS_SYSCTL = {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}

_LEVEL_ORDER: dict[PodSecurityLevel, int] = {"restricted": 0, "baseline": 1, "privileged": 2}

Cloud = AwsCloud | GcpCloud | LocalCloud


# --- config -----------------------------------------------------------------------------------


class ResourcesConfig(ContainerResourcesConfig):
    """Requests and a memory limit (no CPU limit: throttled proxies show up as tail latency)."""

    # Not checked here so far: a limit below the request is refused by the API server instead.
    check_memory_limit: ClassVar[bool] = False

    cpu_request: str = Field(description="CPU request, e.g. 250m.")
    memory_request: str = Field(description="Memory request, e.g. 512Mi.")
    memory_limit: str = Field(description="Memory limit, e.g. 2Gi.")


class IstiodResources(ResourcesConfig):
    # The chart asks for 500m / 2Gi; a platform-sized mesh (tens of services) uses a fraction.
    cpu_request: str = Field(
        default="250m",
        description="CPU request of each istiod pod (Kubernetes quantity, e.g. 250m = a quarter "
        "core).",
    )
    memory_request: str = Field(
        default="512Mi",
        description="Memory request of each istiod pod (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="2Gi",
        description="Memory limit of each istiod pod; the container is OOM-killed above it.",
    )


class GatewayResources(ResourcesConfig):
    cpu_request: str = Field(
        default="100m",
        description="CPU request of each ingress gateway pod (Kubernetes quantity, e.g. 250m = a "
        "quarter core).",
    )
    memory_request: str = Field(
        default="128Mi",
        description="Memory request of each ingress gateway pod (Kubernetes quantity, e.g. 512Mi).",
    )
    memory_limit: str = Field(
        default="1Gi",
        description="Memory limit of each ingress gateway pod; the container is OOM-killed above "
        "it.",
    )


class IstiodConfig(StrictModel):
    """The control plane: replicas (and optional autoscaling) and resources."""

    replicas: int = Field(
        default=2,
        ge=1,
        le=10,
        description="istiod pods; with more than one the chart adds a PodDisruptionBudget "
        "(minAvailable 1). With `max_replicas`, the autoscaler's minimum.",
    )
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=20,
        description="Autoscale istiod on CPU up to this many pods. null: fixed `replicas`.",
    )
    resources: IstiodResources = Field(
        default_factory=IstiodResources, description="Requests and memory limit of istiod."
    )

    @model_validator(mode="after")
    def _bounds(self) -> IstiodConfig:
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must be at least replicas ({self.replicas})"
            )
        return self


class CniConfig(StrictModel):
    """The Istio CNI node agent (a DaemonSet on every node)."""

    enabled: bool = Field(
        default=True,
        description="Redirect traffic with the CNI node agent instead of a `NET_ADMIN` init "
        "container in every pod. Required for workloads in Pod Security `restricted` "
        "namespaces (every platform namespace).",
    )
    namespace: str = Field(
        default="istio-cni",
        description="Namespace of the node agent. It needs host paths and NET_ADMIN/SYS_ADMIN, "
        "so this namespace enforces Pod Security `privileged`; keeping it apart lets the "
        "control plane's namespace stay `restricted`.",
    )

    @field_validator("namespace")
    @classmethod
    def _ns(cls, value: str) -> str:
        return check_namespace(value, "namespace")


class IngressGatewayConfig(StrictModel):
    """An Istio ingress gateway (Envoy Deployment + Service) from the `gateway` chart."""

    name: str = Field(
        default="istio-ingressgateway",
        description="Release, Deployment and Service name; pods are labelled "
        "`istio: <name without the istio- prefix>` (what an Istio Gateway selects).",
    )
    namespace: str = Field(default="istio-ingress", description="Namespace of the gateway.")
    replicas: int = Field(
        default=2, ge=1, le=50, description="Gateway pods; more than one adds a PDB."
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP",
        description="How the gateway is exposed. Default: inside the cluster only; a stack "
        "chooses `LoadBalancer` (with `load_balancer_source_ranges`) to publish it.",
    )
    service_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Service annotations, e.g. an internal AWS NLB "
        "(`service.beta.kubernetes.io/aws-load-balancer-scheme: internal`).",
    )
    load_balancer_source_ranges: list[str] = Field(
        default_factory=list,
        description="CIDRs allowed to reach a LoadBalancer gateway. Empty: anyone.",
    )
    resources: GatewayResources = Field(
        default_factory=GatewayResources,
        description="Requests and memory limit of each gateway pod.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if len(value) > 63 or not DNS_1035_LABEL.match(value):
            raise ValueError(
                f"name {value!r} must be a DNS-1035 label (it names the Service): at most 63 "
                "lowercase letters, digits or '-', starting with a letter"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _ns(cls, value: str) -> str:
        return check_namespace(value, "namespace")

    @field_validator("load_balancer_source_ranges")
    @classmethod
    def _cidrs(cls, ranges: list[str]) -> list[str]:
        for cidr in ranges:
            try:
                ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR block (e.g. 203.0.113.0/24)") from None
        return ranges

    @model_validator(mode="after")
    def _ranges_need_a_load_balancer(self) -> IngressGatewayConfig:
        if self.load_balancer_source_ranges and self.service_type != "LoadBalancer":
            raise ValueError(
                "load_balancer_source_ranges only apply to service_type LoadBalancer, "
                f"not {self.service_type}"
            )
        return self

    @property
    def selector(self) -> dict[str, str]:
        """The pod labels an Istio `Gateway` selects (the chart's selector labels)."""
        return {"istio": self.name.removeprefix("istio-")}


class MeshConfig(StrictModel):
    """Istio service mesh (root config key `mesh`)."""

    enabled: bool = Field(
        default=True,
        description="Install Istio. Serving deployments with `istio_sidecar` need it.",
    )
    namespace: str = Field(
        default="istio-system",
        description="Namespace of istiod and the mesh root namespace (mesh-wide policies).",
    )
    mtls_mode: Literal["STRICT", "PERMISSIVE"] = Field(
        default="STRICT",
        description="Mesh-wide PeerAuthentication: STRICT accepts only mutual TLS between "
        "workloads; PERMISSIVE also accepts plain text (a migration step).",
    )
    istiod: IstiodConfig = Field(
        default_factory=IstiodConfig,
        description="The control plane: replicas, optional CPU autoscaling, resources.",
    )
    cni: CniConfig = Field(
        default_factory=CniConfig,
        description="The Istio CNI node agent, so injected pods need no NET_ADMIN init "
        "container (Pod Security `restricted`).",
    )
    ingress_gateway: IngressGatewayConfig | None = Field(
        default=None, description="An ingress gateway. null: none (in-mesh traffic only)."
    )

    @field_validator("namespace")
    @classmethod
    def _ns(cls, value: str) -> str:
        return check_namespace(value, "namespace")


# --- per-cloud data ---------------------------------------------------------------------------


def platform(cloud: Cloud) -> str | None:
    """Istio's `global.platform` profile for the cluster, or None (EKS and kind need none)."""
    if isinstance(cloud, GcpCloud):
        return "gke"
    if isinstance(cloud, LocalCloud):
        return _LOCAL_PLATFORMS[cloud.distribution]
    return None


def _global(cloud: Cloud, **extra: Any) -> dict[str, Any]:
    values = dict(extra)
    profile = platform(cloud)
    if profile is not None:
        values["platform"] = profile
    return values


# --- chart values -----------------------------------------------------------------------------


def base_values(config: MeshConfig, cloud: Cloud) -> dict[str, Any]:
    """`base`: CRDs (as templates, so upgrades update them) and the default revision."""
    return {
        "global": _global(cloud, istioNamespace=config.namespace),
        "defaultRevision": DEFAULT_REVISION,
    }


def istiod_values(
    config: MeshConfig, cloud: Cloud, tracing: TracingWiring | None = None
) -> dict[str, Any]:
    """`tracing`: the platform's trace backend (monitoring.tracing), None when tracing is off."""
    istiod = config.istiod
    autoscale = istiod.max_replicas is not None
    values: dict[str, Any] = {
        "global": _global(cloud, istioNamespace=config.namespace),
        "autoscaleEnabled": autoscale,
        "replicaCount": istiod.replicas,
        "resources": istiod.resources.values(),
        # The only gap between istiod's pod and Pod Security `restricted`.
        "seccompProfile": {"type": "RuntimeDefault"},
        # The injector then adds no `istio-init` (NET_ADMIN) container, only a validation one.
        "cni": {"enabled": config.cni.enabled},
        "meshConfig": {
            "rootNamespace": config.namespace,
            # Serving's PodMonitor scrapes the merged Envoy + application metrics on 15020.
            "enablePrometheusMerge": True,
        },
    }
    if tracing is not None:
        values["meshConfig"]["extensionProviders"] = [tracing_provider(tracing)]
    if autoscale:
        values["autoscaleMin"] = istiod.replicas
        values["autoscaleMax"] = istiod.max_replicas
    return values


def cni_values(config: MeshConfig, cloud: Cloud) -> dict[str, Any]:
    values: dict[str, Any] = {}
    global_values = _global(cloud)
    if global_values:
        values["global"] = global_values
    if isinstance(cloud, GcpCloud):
        # The `gke` profile leaves the bin dir to detection from the API server's version
        # string; stating it keeps the rendering independent of that.
        values["cniBinDir"] = GKE_CNI_BIN_DIR
        values["resourceQuotas"] = {"enabled": True}
    return values


def gateway_values(gateway: IngressGatewayConfig, cloud: Cloud) -> dict[str, Any]:
    service: dict[str, Any] = {"type": gateway.service_type}
    if gateway.service_annotations:
        service["annotations"] = dict(gateway.service_annotations)
    if gateway.load_balancer_source_ranges:
        service["loadBalancerSourceRanges"] = list(gateway.load_balancer_source_ranges)
    values: dict[str, Any] = {
        "replicaCount": gateway.replicas,
        "autoscaling": {"enabled": False},
        "service": service,
        "resources": gateway.resources.values(),
        # The chart's default pod securityContext is only the sysctl; add the seccomp profile.
        "securityContext": {
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [dict(_UNPRIVILEGED_PORTS_SYSCTL)],
        },
        # The chart refuses a PDB for a single replica (it would block every drain).
        "podDisruptionBudget": (
            {"minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
            if gateway.replicas > 1
            else {}
        ),
    }
    global_values = _global(cloud)
    if global_values:
        values["global"] = global_values
    return values


# --- objects created directly -----------------------------------------------------------------


def peer_authentication(config: MeshConfig) -> dict[str, Any]:
    """The mesh-wide mTLS mode: no selector, in the root namespace."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "PeerAuthentication",
        "metadata": {
            "name": PEER_AUTHENTICATION_NAME,
            "namespace": config.namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "spec": {"mtls": {"mode": config.mtls_mode}},
    }


def tracing_provider(tracing: TracingWiring) -> dict[str, Any]:
    """The OpenTelemetry extension provider: Envoy exports its spans over OTLP/gRPC and
    propagates W3C `traceparent`, which the model server continues (so both share a trace).
    Istio merges it by name with its built-in providers (prometheus, envoy, ...)."""
    return {
        "name": TRACING_PROVIDER,
        "opentelemetry": {"service": tracing.host, "port": OTLP_GRPC_PORT},
    }


def telemetry(config: MeshConfig, tracing: TracingWiring) -> dict[str, Any]:
    """The mesh-wide Telemetry: every sidecar traces through TRACING_PROVIDER at the
    platform's sampling percentage (the decision the model servers then follow)."""
    return {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {
            "name": TELEMETRY_NAME,
            "namespace": config.namespace,
            "labels": {"app.kubernetes.io/managed-by": "mlops-platform"},
        },
        "spec": {
            "tracing": [
                {
                    "providers": [{"name": TRACING_PROVIDER}],
                    "randomSamplingPercentage": tracing.sampling_percent,
                }
            ]
        },
    }


def namespace_levels(config: MeshConfig) -> dict[str, PodSecurityLevel]:
    """Each namespace the mesh creates, with the Pod Security level it must enforce.

    istiod passes `restricted`; the CNI node agent needs `privileged` (host paths, root,
    NET_ADMIN/SYS_ADMIN); the gateway gets `baseline` because its pods are completed by the
    injector at admission, which this model cannot check. A namespace shared by several parts
    gets the most permissive level among them.
    """
    needs: list[tuple[str, PodSecurityLevel]] = [(config.namespace, "restricted")]
    if config.cni.enabled:
        needs.append((config.cni.namespace, "privileged"))
    if config.ingress_gateway is not None:
        needs.append((config.ingress_gateway.namespace, "baseline"))
    levels: dict[str, PodSecurityLevel] = {}
    for namespace, level in needs:
        current = levels.get(namespace)
        if current is None or _LEVEL_ORDER[level] > _LEVEL_ORDER[current]:
            levels[namespace] = level
    return dict(sorted(levels.items()))


def namespace_manifest(name: str, level: PodSecurityLevel) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": namespace_labels(level)},
    }
