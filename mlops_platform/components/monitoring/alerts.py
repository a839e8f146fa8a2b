"""Monitoring, resource layer: the platform's model alerts, apart from the release.

The PrometheusRule's CRD comes with kube-prometheus-stack (`Observability`, platform layer).
A `pulumi preview` that plans a custom resource next to the release installing its CRD fails on
a fresh cluster (pulumi-kubernetes #3027, #3176), so the rule is its own component, planned in
the ml layer once the platform layer is up.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from mlops_platform.components.monitoring import model


@dataclass(frozen=True)
class ModelAlertsArgs:
    """Inputs of `ModelAlerts`: the `monitoring` config (its alerts and the namespace of the
    release, whose rule selector picks the rule up) and the Kubernetes provider.

    Attributes:
        config: The `monitoring` settings: the alerts' thresholds and the release's namespace (whose
            rule selector picks the rule up).
        kubernetes: The provider the PrometheusRule is created with.
    """

    config: model.MonitoringConfig
    kubernetes: k8s.Provider


class ModelAlerts(pulumi.ComponentResource):
    """The platform's PrometheusRule (model alerts), for kube-prometheus-stack's Prometheus.

    Attributes:
        rule_name: Name of the PrometheusRule holding the model alerts.
    """

    rule_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ModelAlertsArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if args.kubernetes is None:
            raise ValueError("ModelAlertsArgs.kubernetes: a Kubernetes provider is required")
        # Rendered (and so checked) before anything is registered.
        rule = model.prometheus_rule(args.config.alerts, args.config.namespace)

        super().__init__("mlops:monitoring:ModelAlerts", name, None, opts)
        # The child keeps the name it had inside `Observability` (`<name>-model-alerts`).
        created = k8s.apiextensions.CustomResource(
            f"{name}-model-alerts",
            api_version=rule["apiVersion"],
            kind=rule["kind"],
            metadata=rule["metadata"],
            spec=rule["spec"],
            opts=pulumi.ResourceOptions(parent=self, provider=args.kubernetes),
        )
        # CustomResource's outputs are set at run time, not declared
        self.rule_name = created.metadata.apply(lambda metadata: metadata["name"])  # type: ignore[attr-defined]
        self.register_outputs({"rule_name": self.rule_name})
