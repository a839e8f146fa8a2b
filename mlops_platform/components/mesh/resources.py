"""Service mesh, resource layer: namespaces and the Istio Helm releases (`IstioMesh`), and the
mesh-wide mTLS policy (`MeshMutualTls`), a custom resource of istio-base's CRDs that is planned in
a later layer than the release (pulumi-kubernetes #3027, #3176: a preview fails on a fresh cluster
when a custom resource is planned next to the release installing its CRD)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.cloud import Cloud
from mlops_platform.components.mesh import model
from mlops_platform.components.monitoring.tracing import TracingWiring
from mlops_platform.components.versions import (
    ISTIO_BASE,
    ISTIO_CNI,
    ISTIO_GATEWAY,
    ISTIO_VERSION,
    ISTIOD,
    Chart,
)

# istiod and the gateway wait for their rollouts, the CNI agent for a pod on every node; on a
# cold cluster pulling images that is more than Helm's default 5 minutes.
RELEASE_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class IstioMeshArgs:
    """Inputs of `IstioMesh`: the `mesh` config, the stack's cloud (per-platform chart values)
    and the Kubernetes provider every object is created with.

    Attributes:
        config: The `mesh` settings (with `enabled: false` do not create the component).
        cloud: The stack's cloud: selects the charts' platform values (GKE, k3d, minikube).
        kubernetes: The provider every object is created with.
        tracing: The platform's trace backend (derived from `monitoring.tracing`); istiod then
            gets the OpenTelemetry extension provider that `MeshTracing` turns on. None: off.
    """

    config: model.MeshConfig
    cloud: Cloud
    kubernetes: k8s.Provider
    # The platform's trace backend (mlops_platform.wiring.tracing), None when tracing is off: istiod
    # then gets the OpenTelemetry extension provider that `MeshTracing` turns on.
    tracing: TracingWiring | None = None


class IstioMesh(pulumi.ComponentResource):
    """Istio (default revision) from the official charts, with CNI; mesh-wide mTLS is
    `MeshMutualTls`, planned once this is up.

    Attributes:
        namespace: istiod's namespace, the mesh root namespace.
        revision: The Istio revision: always `default` (what the serving pods' inject label needs).
        version: Istio version of the charts (`mlops_platform/components/versions.py`).
        ingress_gateway_service: The ingress gateway's Service name, None without a gateway.
        ingress_gateway_namespace: The ingress gateway's namespace, None without a gateway.
    """

    namespace: pulumi.Output[str]
    revision: pulumi.Output[str]
    version: pulumi.Output[str]
    ingress_gateway_service: pulumi.Output[str] | None
    ingress_gateway_namespace: pulumi.Output[str] | None

    def __init__(self, name: str, args: IstioMeshArgs, opts: pulumi.ResourceOptions | None = None):
        config = args.config
        if not config.enabled:
            raise ValueError("mesh.enabled: IstioMesh is only created when the mesh is enabled")
        if args.kubernetes is None:
            raise ValueError("IstioMeshArgs.kubernetes: a Kubernetes provider is required")
        # Rendered (and so checked) before anything is registered.
        levels = model.namespace_levels(config)
        base_values = model.base_values(config, args.cloud)
        istiod_values = model.istiod_values(config, args.cloud, args.tracing)
        cni_values = model.cni_values(config, args.cloud) if config.cni.enabled else None
        gateway = config.ingress_gateway
        gateway_values = model.gateway_values(gateway, args.cloud) if gateway else None

        super().__init__("mlops:mesh:IstioMesh", name, None, opts)
        provider = args.kubernetes

        def after(*resources: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=list(resources)
            )

        namespaces = {
            namespace: k8s.core.v1.Namespace(
                f"{name}-{namespace}",
                metadata=model.namespace_manifest(namespace, level)["metadata"],
                opts=pulumi.ResourceOptions(parent=self, provider=provider),
            )
            for namespace, level in levels.items()
        }
        system = namespaces[config.namespace]

        def release(
            suffix: str, chart: Chart, release_name: str, namespace: str, values, *deps
        ) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{suffix}",
                name=release_name,
                chart=chart.chart,
                version=chart.version,
                repository_opts={"repo": chart.repo},
                namespace=namespace,
                values=values,
                timeout=RELEASE_TIMEOUT_SECONDS,
                opts=after(*deps),
            )

        # CRDs and the default revision's validating webhook first: istiod and every Istio
        # object need them.
        base = release(
            "base", ISTIO_BASE, model.BASE_RELEASE, config.namespace, base_values, system
        )
        istiod_deps: list[pulumi.Resource] = [system, base]
        if cni_values is not None:
            # The node agent must be ready before istiod injects pods that rely on it.
            cni = release(
                "cni",
                ISTIO_CNI,
                model.CNI_RELEASE,
                config.cni.namespace,
                cni_values,
                namespaces[config.cni.namespace],
            )
            istiod_deps.append(cni)
        istiod = release(
            "istiod", ISTIOD, model.ISTIOD_RELEASE, config.namespace, istiod_values, *istiod_deps
        )

        self.ingress_gateway_service = None
        self.ingress_gateway_namespace = None
        if gateway is not None and gateway_values is not None:
            # The gateway's proxy is filled in by istiod's injector (`image: auto`).
            release(
                "ingress-gateway",
                ISTIO_GATEWAY,
                gateway.name,
                gateway.namespace,
                gateway_values,
                namespaces[gateway.namespace],
                istiod,
            )
            self.ingress_gateway_service = pulumi.Output.from_input(gateway.name)
            self.ingress_gateway_namespace = namespaces[gateway.namespace].metadata.name

        self.namespace = system.metadata.name
        self.revision = pulumi.Output.from_input(model.DEFAULT_REVISION)
        self.version = pulumi.Output.from_input(ISTIO_VERSION)
        self._istiod = istiod
        self.register_outputs(
            {
                "namespace": self.namespace,
                "revision": self.revision,
                "version": self.version,
                "ingress_gateway_service": self.ingress_gateway_service,
                "ingress_gateway_namespace": self.ingress_gateway_namespace,
            }
        )

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What a workload with a sidecar should `depends_on`: istiod (its injector webhook)."""
        return [self._istiod]


@dataclass(frozen=True)
class MeshMutualTlsArgs:
    """Inputs of `MeshMutualTls`: the `mesh` config (root namespace and mTLS mode) and the
    Kubernetes provider.

    Attributes:
        config: The `mesh` settings: root namespace and `mtls_mode`.
        kubernetes: The provider the PeerAuthentication is created with.
    """

    config: model.MeshConfig
    kubernetes: k8s.Provider


class MeshMutualTls(pulumi.ComponentResource):
    """The mesh-wide PeerAuthentication (`default` in the root namespace, no selector).

    It is admitted through istiod's validating webhook, so it is created once `IstioMesh` is
    ready (pass it in `opts.depends_on` when both are in one program).

    Attributes:
        mode: The mesh-wide mTLS mode (`STRICT` or `PERMISSIVE`).
    """

    mode: pulumi.Output[str]

    def __init__(
        self, name: str, args: MeshMutualTlsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if not args.config.enabled:
            raise ValueError("mesh.enabled: MeshMutualTls is only created when the mesh is enabled")
        if args.kubernetes is None:
            raise ValueError("MeshMutualTlsArgs.kubernetes: a Kubernetes provider is required")
        policy = model.peer_authentication(args.config)

        super().__init__("mlops:mesh:MeshMutualTls", name, None, opts)
        # The child keeps the name it had inside `IstioMesh` (`<name>-peer-authentication`).
        k8s.apiextensions.CustomResource(
            f"{name}-peer-authentication",
            api_version=policy["apiVersion"],
            kind=policy["kind"],
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes),
        )
        self.mode = pulumi.Output.from_input(policy["spec"]["mtls"]["mode"])
        self.register_outputs({"mode": self.mode})


@dataclass(frozen=True)
class MeshTracingArgs:
    """Inputs of `MeshTracing`.

    Attributes:
        config: The `mesh` settings (the Telemetry goes to its root namespace).
        tracing: Where spans go and how many are sampled (derived from `monitoring.tracing`).
        kubernetes: The provider every object is created with.
    """

    config: model.MeshConfig
    tracing: TracingWiring
    kubernetes: k8s.Provider


class MeshTracing(pulumi.ComponentResource):
    """The mesh-wide Telemetry (`mesh-default` in the root namespace, no selector) that sends
    every sidecar's spans to the extension provider `IstioMesh` configured. Like
    `MeshMutualTls`, a custom resource of istio-base's CRDs, planned once the mesh is up.

    Attributes:
        sampling_percent: Percentage of requests the sidecars trace (the Telemetry's
            `randomSamplingPercentage`, from `monitoring.tracing.sampling_percent`).
    """

    sampling_percent: pulumi.Output[float]

    def __init__(
        self, name: str, args: MeshTracingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if not args.config.enabled:
            raise ValueError("mesh.enabled: MeshTracing is only created when the mesh is enabled")
        if args.kubernetes is None:
            raise ValueError("MeshTracingArgs.kubernetes: a Kubernetes provider is required")
        resource = model.telemetry(args.config, args.tracing)

        super().__init__("mlops:mesh:MeshTracing", name, None, opts)
        k8s.apiextensions.CustomResource(
            f"{name}-telemetry",
            api_version=resource["apiVersion"],
            kind=resource["kind"],
            metadata=resource["metadata"],
            spec=resource["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes),
        )
        self.sampling_percent = pulumi.Output.from_input(args.tracing.sampling_percent)
        self.register_outputs({"sampling_percent": self.sampling_percent})
