"""`MetricsServer`: the upstream metrics-server chart in kube-system, the thin resource layer."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.kube_resources import depends_on_of
from mlops_platform.components.metrics_server.model import NAMESPACE, RELEASE, Decision, helm_values
from mlops_platform.components.versions import METRICS_SERVER


@dataclass(frozen=True)
class MetricsServerArgs:
    """Inputs of `MetricsServer`.

    Attributes:
        decision: Whether and why metrics-server is installed here (`model.decide`: the cluster may
            already serve `metrics.k8s.io`).
        kubernetes: The provider every object is created with.
    """

    # from `model.decide(cloud, kubernetes_version, model.hpa_sources(serving, mesh))`; create
    # the component only when `decision.install`
    decision: Decision
    kubernetes: k8s.Provider


class MetricsServer(pulumi.ComponentResource):
    """Serves `metrics.k8s.io` (APIService `v1beta1.metrics.k8s.io`) for HorizontalPodAutoscalers.

    Attributes:
        api_service: Name of the APIService serving `metrics.k8s.io`.
        namespace: Namespace of metrics-server.
    """

    def __init__(
        self, name: str, args: MetricsServerArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__("mlops:metrics:MetricsServer", name, None, opts)
        if not args.decision.install:
            raise ValueError(
                f"MetricsServer {name}: nothing to install ({args.decision.reason}); create the "
                "component only when model.decide(...).install"
            )
        self.release = k8s.helm.v3.Release(
            name,
            name=RELEASE,
            namespace=NAMESPACE,
            chart=METRICS_SERVER.chart,
            version=METRICS_SERVER.version,
            repository_opts={"repo": METRICS_SERVER.repo},
            values=helm_values(args.decision),
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
            ),
        )
        self.api_service = pulumi.Output.from_input("v1beta1.metrics.k8s.io")
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        self.register_outputs({"api_service": self.api_service, "namespace": self.namespace})
