"""Monitoring, resource layer: the kube-prometheus-stack release (its alert rules are
`ModelAlerts`, mlops_platform/components/monitoring/alerts.py, planned in a later layer than the CRDs)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from mlops_platform.components.monitoring import model, tracing
from mlops_platform.components.namespaces.model import namespace_labels
from mlops_platform.components.versions import KUBE_PROMETHEUS_STACK

# Installing the chart creates its CRDs, runs the admission-webhook certificate jobs and waits
# for Prometheus, Alertmanager and Grafana to become ready: more than Helm's default 5 minutes
# on a cold cluster pulling every image.
RELEASE_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class RetrainWebhook:
    """The platform's retrain receiver (mlops_platform/components/loop): where drift alerts go, and the
    bearer token Alertmanager authenticates with (a secret Output)."""

    url: str
    token: pulumi.Input[str]


@dataclass(frozen=True)
class ObservabilityArgs:
    """Inputs of `Observability`.

    `protect` (the root config's `protect_stateful`) protects and retains the release, whose
    volumes hold Prometheus' and Alertmanager's data. `retrain`: drift alerts go there.

    Attributes:
        config: The `monitoring` settings.
        kubernetes: The provider every object is created with.
        protect: Protect and retain the release, whose volumes hold Prometheus' and Alertmanager's
            data (the root `protect_stateful`).
        retrain: Where drift alerts go (the retrain receiver's URL and token); None: no retrain
            route.
    """

    config: model.MonitoringConfig
    kubernetes: k8s.Provider
    protect: bool = False
    retrain: RetrainWebhook | None = None


class Observability(pulumi.ComponentResource):
    """Prometheus, Alertmanager and Grafana from kube-prometheus-stack (the model alerts are
    `ModelAlerts`: a custom resource of the chart's CRDs, planned in the next layer).

    Attributes:
        namespace: Namespace of the monitoring stack.
        grafana_service: Grafana's Service (port 80).
        prometheus_url: In-cluster Prometheus URL
            (`http://monitoring-prometheus.<ns>.svc.cluster.local:9090`).
        alertmanager_url: In-cluster Alertmanager URL (port 9093).
        grafana_admin_password: Grafana's admin password (generated, kept in a Secret).
        tracing_query_url: In-cluster URL of the trace backend's query UI and API (Jaeger, port
            16686); None when `monitoring.tracing` is off.
    """

    namespace: pulumi.Output[str]
    grafana_service: pulumi.Output[str]
    prometheus_url: pulumi.Output[str]
    alertmanager_url: pulumi.Output[str]
    grafana_admin_password: pulumi.Output[str]
    tracing_query_url: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        if args.kubernetes is None:
            raise ValueError("ObservabilityArgs.kubernetes: a Kubernetes provider is required")
        config = args.config
        retrain_url = args.retrain.url if args.retrain is not None else None
        # Rendered (and so checked) before anything is registered.
        values = model.helm_values(config, retrain_url)
        secret_keys = model.receiver_secret_keys(config.alerting, args.retrain is not None)
        dashboard = model.dashboard_configmap(config.namespace)
        trace_backend = tracing.objects(config.namespace, config.tracing, config.storage_class)

        super().__init__("mlops:monitoring:Observability", name, None, opts)
        k8s_child = pulumi.ResourceOptions(parent=self, provider=args.kubernetes)

        # node-exporter needs the host's network, PID namespace and filesystem: only the
        # `privileged` level admits it. Audit and warn stay `restricted` so it stays visible.
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": config.namespace, "labels": namespace_labels("privileged")},
            opts=k8s_child,
        )
        in_namespace = pulumi.ResourceOptions(
            parent=self, provider=args.kubernetes, depends_on=[namespace]
        )

        password = random.RandomPassword(
            f"{name}-grafana-admin-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        admin_password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        admin_secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": model.GRAFANA_ADMIN_SECRET, "namespace": config.namespace},
            type="Opaque",
            string_data={
                model.GRAFANA_USER_KEY: model.GRAFANA_ADMIN_USER,
                model.GRAFANA_PASSWORD_KEY: admin_password,
            },
            opts=in_namespace,
        )

        # Alertmanager mounts this Secret (alertmanagerSpec.secrets): it must exist before the
        # release, or the pod waits for the volume.
        credentials: list[pulumi.Resource] = []
        if secret_keys:
            values_by_key: dict[str, pulumi.Input[str]] = {
                key: secret.reveal()
                for key, secret in model.receiver_secrets(config.alerting).items()
            }
            if args.retrain is not None:
                values_by_key[model.RETRAIN_TOKEN_KEY] = args.retrain.token
            envelope = model.receiver_secret(config.namespace, secret_keys)
            credentials.append(
                k8s.core.v1.Secret(
                    f"{name}-receiver-credentials",
                    metadata=envelope["metadata"],
                    type=envelope["type"],
                    string_data=pulumi.Output.secret(
                        {key: values_by_key[key] for key in secret_keys}
                    ),
                    opts=in_namespace,
                )
            )

        k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name=model.RELEASE_NAME,
            chart=KUBE_PROMETHEUS_STACK.chart,
            version=KUBE_PROMETHEUS_STACK.version,
            repository_opts={"repo": KUBE_PROMETHEUS_STACK.repo},
            namespace=config.namespace,
            values=values,
            timeout=RELEASE_TIMEOUT_SECONDS,
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.kubernetes,
                depends_on=[namespace, admin_secret, *credentials],
                protect=args.protect,
                retain_on_delete=args.protect,
            ),
        )

        k8s.core.v1.ConfigMap(
            f"{name}-model-server-dashboard",
            metadata=dashboard["metadata"],
            data=dashboard["data"],
            opts=in_namespace,
        )

        self._trace_backend(name, trace_backend, in_namespace, args.protect)

        self.namespace = namespace.metadata.name
        self.tracing_query_url = self.namespace.apply(tracing.query_url) if trace_backend else None
        self.grafana_service = pulumi.Output.from_input(model.GRAFANA_FULLNAME)
        self.prometheus_url = self.namespace.apply(model.prometheus_url)
        self.alertmanager_url = self.namespace.apply(model.alertmanager_url)
        self.grafana_admin_password = admin_password
        self.register_outputs(
            {
                "namespace": self.namespace,
                "grafana_service": self.grafana_service,
                "prometheus_url": self.prometheus_url,
                "alertmanager_url": self.alertmanager_url,
                "grafana_admin_password": self.grafana_admin_password,
                "tracing_query_url": self.tracing_query_url,
            }
        )

    def _trace_backend(
        self,
        name: str,
        objects: dict[str, dict],
        opts: pulumi.ResourceOptions,
        protect: bool,
    ) -> None:
        """The Jaeger objects of `tracing.objects` (none when tracing is off)."""
        if not objects:
            return
        config = objects["config"]
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-jaeger-config", metadata=config["metadata"], data=config["data"], opts=opts
        )
        waits: list[pulumi.Resource] = [config_map]
        if "volume" in objects:
            claim = objects["volume"]
            waits.append(
                k8s.core.v1.PersistentVolumeClaim(
                    f"{name}-jaeger-badger",
                    metadata=claim["metadata"],
                    spec=claim["spec"],
                    opts=pulumi.ResourceOptions.merge(
                        opts, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
                    ),
                )
            )
        policy = objects["network-policy"]
        k8s.networking.v1.NetworkPolicy(
            f"{name}-jaeger-network-policy",
            metadata=policy["metadata"],
            spec=policy["spec"],
            opts=opts,
        )
        workload = objects["deployment"]
        k8s.apps.v1.Deployment(
            f"{name}-jaeger",
            metadata=workload["metadata"],
            spec=workload["spec"],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=waits)),
        )
        svc = objects["service"]
        k8s.core.v1.Service(
            f"{name}-jaeger-service", metadata=svc["metadata"], spec=svc["spec"], opts=opts
        )
