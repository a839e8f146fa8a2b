"""Progressive delivery, resource layer: the namespace and the two Helm releases."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.delivery import model
from mlops_platform.components.kube_resources import depends_on_of
from mlops_platform.components.versions import FLAGGER, FLAGGER_LOADTESTER, Chart

RELEASE_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class ProgressiveDeliveryArgs:
    """`config`: the `delivery` config; `prometheus_url`: the Prometheus Flagger queries (the
    monitoring component's); `kubernetes`: the provider every object is created with. Pass the
    mesh (sidecar injection) and monitoring (the PodMonitor CRD) in `opts.depends_on`.

    Attributes:
        config: The `delivery` settings: Flagger's and its load tester's resources.
        prometheus_url: The Prometheus Flagger queries for its checks (the monitoring component's
            `prometheus_url`).
        kubernetes: The provider every object is created with.
    """

    config: model.DeliveryConfig
    prometheus_url: pulumi.Input[str]
    kubernetes: k8s.Provider


class ProgressiveDelivery(pulumi.ComponentResource):
    """Flagger (Istio provider, CRDs from its chart) and Flagger's load tester.

    Attributes:
        namespace: Namespace of Flagger and its load tester.
        load_tester_url: In-cluster URL of Flagger's load tester (a canary analysis' webhooks call
            it).
    """

    namespace: pulumi.Output[str]
    load_tester_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: ProgressiveDeliveryArgs, opts: pulumi.ResourceOptions | None = None
    ):
        config = args.config
        if not config.enabled:
            raise ValueError("delivery.enabled: ProgressiveDelivery is only created when enabled")
        if args.kubernetes is None:
            raise ValueError(
                "ProgressiveDeliveryArgs.kubernetes: a Kubernetes provider is required"
            )
        namespace_obj = model.namespace_manifest(config)
        load_tester_values = model.load_tester_values(config)
        super().__init__("mlops:delivery:ProgressiveDelivery", name, None, opts)
        depends_on = depends_on_of(opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=namespace_obj["metadata"],
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.kubernetes, depends_on=depends_on
            ),
        )

        def release(suffix: str, chart: Chart, release_name: str, values) -> k8s.helm.v3.Release:
            return k8s.helm.v3.Release(
                f"{name}-{suffix}",
                name=release_name,
                chart=chart.chart,
                version=chart.version,
                repository_opts={"repo": chart.repo},
                namespace=config.namespace,
                values=values,
                timeout=RELEASE_TIMEOUT_SECONDS,
                opts=pulumi.ResourceOptions(
                    parent=self, provider=args.kubernetes, depends_on=[namespace, *depends_on]
                ),
            )

        release(
            "flagger",
            FLAGGER,
            model.FLAGGER_RELEASE,
            pulumi.Output.from_input(args.prometheus_url).apply(
                lambda url: model.flagger_values(config, url)
            ),
        )
        release("load-tester", FLAGGER_LOADTESTER, model.LOADTESTER_RELEASE, load_tester_values)

        self.namespace = namespace.metadata.name
        self.load_tester_url = pulumi.Output.from_input(model.load_tester_url(config))
        self.register_outputs(
            {"namespace": self.namespace, "load_tester_url": self.load_tester_url}
        )
