"""Model serving, resource layer: the rendered objects of `model.render` as typed resources.

Every value comes from `mlops_platform.components.serving.model`; this module only wires the objects into
`pulumi_kubernetes` resources on the explicit Kubernetes provider, each a child of the
component and named from its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.kafka.model import KafkaClientWiring
from mlops_platform.components.kube_resources import depends_on_of
from mlops_platform.components.monitoring.tracing import TracingWiring
from mlops_platform.components.serving import model
from mlops_platform.components.serving.delivery import FlaggerWiring


@dataclass(frozen=True)
class ModelDeploymentArgs:
    """Inputs of `ModelDeployment`.

    The namespace (`config.namespace`) is not created here: several deployments share one.
    Pass its Namespace in `opts.depends_on`; it is applied to every Kubernetes object.
    `kafka`: the platform Kafka client of the prediction log (`KafkaClient.wiring`), for a
    config with `prediction_sink: kafka` and no `kafka_bootstrap_servers`.
    `flagger`: where Flagger's checks and hooks go, for a config with `progressive` (the
    platform's Prometheus and Flagger's load tester, `mlops_platform/components/delivery`).
    `prometheus_namespace`: where the platform's Prometheus runs (`mlops_platform/components/monitoring`),
    let through to the metrics port; None: nothing scrapes the pods.

    Attributes:
        config: The deployment's settings (one `serving` entry).
        kubernetes: The provider every object is created with.
        kafka: The platform Kafka client of the prediction log (`KafkaClient.wiring`), for
            `prediction_sink: kafka` without `kafka_bootstrap_servers`.
        flagger: Where Flagger's checks and hooks go (the platform's Prometheus and load tester),
            for a config with `progressive`.
        prometheus_namespace: Where the platform's Prometheus runs, let through to the metrics port;
            None: nothing scrapes the pods.
        tracing: The platform's trace backend (`monitoring.tracing`, derived by
            mlops_platform.wiring); None: the server's tracing stays off.
    """

    config: model.ModelDeploymentConfig
    kubernetes: k8s.Provider
    kafka: KafkaClientWiring | None = None
    flagger: FlaggerWiring | None = None
    prometheus_namespace: str | None = None
    tracing: TracingWiring | None = None


class ModelDeployment(pulumi.ComponentResource):
    """One model behind the model server: stable and canary tracks, split by Istio weights.

    Attributes:
        service_name: The Service in front of both tracks.
        namespace: The deployment's namespace.
        url: In-cluster URL (`http://<name>.<namespace>.svc.cluster.local:<port>`).
        canary_weight: Percent of traffic on the canary track (0 without one).
        model_name: The name the model is served under (`/v2/models/<name>`).
    """

    service_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    url: pulumi.Output[str]
    canary_weight: pulumi.Output[int]
    model_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelDeploymentArgs, opts: pulumi.ResourceOptions | None = None
    ):
        # Render (and so validate) everything before registering anything.
        if args.kubernetes is None:
            raise ValueError("ModelDeploymentArgs.kubernetes: a Kubernetes provider is required")
        config = args.config
        rendered = model.render(
            name, config, args.kafka, args.flagger, args.prometheus_namespace, args.tracing
        )

        super().__init__("mlops:serving:ModelDeployment", name, None, opts)
        # Children do not inherit the component's depends_on (typically the Namespace).
        child = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=depends_on_of(opts)
        )
        self._access(name, rendered, child)
        if rendered.canary is None:
            service_name = self._tracks(name, rendered, child)
        else:
            service_name = self._progressive(name, rendered, child)

        namespace = config.namespace
        self.service_name = service_name
        self.namespace = pulumi.Output.from_input(namespace)
        self.url = service_name.apply(lambda n: model.service_url(n, namespace, config.port))
        self.canary_weight = pulumi.Output.from_input(model.canary_weight(config))
        self.model_name = pulumi.Output.from_input(model.served_model_name(config))
        self.register_outputs(
            {
                "service_name": self.service_name,
                "namespace": self.namespace,
                "url": self.url,
                "canary_weight": self.canary_weight,
                "model_name": self.model_name,
            }
        )

    def _access(self, name: str, rendered: model.Rendered, child: pulumi.ResourceOptions) -> None:
        """Who may call the pods (NetworkPolicies, Istio authentication and authorization)."""
        for key, obj in rendered.network_policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{key}-network-policy",
                metadata=obj["metadata"],
                spec=obj["spec"],
                opts=child,
            )
        if rendered.request_authentication is not None:
            _custom(f"{name}-request-authentication", rendered.request_authentication, child)
        if rendered.authorization_policy is not None:
            _custom(f"{name}-authorization-policy", rendered.authorization_policy, child)

    def _tracks(
        self, name: str, rendered: model.Rendered, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """Stable and canary Deployments, the Service and the Istio routes with set weights."""
        assert rendered.service is not None
        assert rendered.destination_rule is not None and rendered.virtual_service is not None
        deployments = {
            track: k8s.apps.v1.Deployment(
                f"{name}-{track}", metadata=obj["metadata"], spec=obj["spec"], opts=child
            )
            for track, obj in rendered.deployments.items()
        }
        for track, obj in rendered.pod_disruption_budgets.items():
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{track}-pdb", metadata=obj["metadata"], spec=obj["spec"], opts=child
            )
        svc = k8s.core.v1.Service(
            f"{name}-service",
            metadata=rendered.service["metadata"],
            spec=rendered.service["spec"],
            opts=child,
        )
        destination_rule = _custom(f"{name}-destination-rule", rendered.destination_rule, child)
        # Weights move only once the subsets exist and every track's rollout is ready, so a
        # new canary gets traffic after its pods serve (the Deployment await waits for that).
        _custom(
            f"{name}-virtual-service",
            rendered.virtual_service,
            pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(depends_on=[destination_rule, *deployments.values()]),
            ),
        )
        _custom(f"{name}-pod-monitor", rendered.pod_monitor, child)
        if rendered.horizontal_pod_autoscaler is not None:
            hpa = rendered.horizontal_pod_autoscaler
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-stable-hpa",
                metadata=hpa["metadata"],
                spec=hpa["spec"],
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(depends_on=[deployments["stable"]])
                ),
            )
        return svc.metadata.name

    def _progressive(
        self, name: str, rendered: model.Rendered, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """Flagger's target Deployment, its release ConfigMap, autoscaler, the Canary and its
        checks; Flagger creates the Services (`<name>`, `-primary`, `-canary`) and routes."""
        assert rendered.canary is not None and rendered.release_config_map is not None
        assert rendered.horizontal_pod_autoscaler is not None
        release = rendered.release_config_map
        # Pulumi writes the first release only: later ones are the loop's (a new challenger)
        # or a person's, and a `pulumi up` must not roll them back.
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-release",
            metadata=release["metadata"],
            data=release["data"],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["data"])
            ),
        )
        target = rendered.deployments["release"]
        deployment = k8s.apps.v1.Deployment(
            f"{name}-release",
            metadata=target["metadata"],
            spec=target["spec"],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[config_map])
            ),
        )
        pdb = rendered.pod_disruption_budgets["release"]
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=pdb["metadata"], spec=pdb["spec"], opts=child
        )
        hpa = rendered.horizontal_pod_autoscaler
        autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=hpa["metadata"],
            spec=hpa["spec"],
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[deployment])
            ),
        )
        _custom(f"{name}-pod-monitor", rendered.pod_monitor, child)
        templates = [
            _custom(f"{obj['metadata']['name']}-metric", obj, child)
            for obj in (rendered.metric_templates or {}).values()
        ]
        # Flagger starts from a complete target: its Deployment, autoscaler and every check.
        canary = _custom(
            f"{name}-canary",
            rendered.canary,
            pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[deployment, autoscaler, *templates])
            ),
        )
        # CustomResource's outputs are set at run time, not declared
        return canary.metadata.apply(lambda metadata: metadata["name"])  # type: ignore[attr-defined]


def _custom(
    resource_name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        metadata=obj["metadata"],
        spec=obj["spec"],
        opts=opts,
    )
