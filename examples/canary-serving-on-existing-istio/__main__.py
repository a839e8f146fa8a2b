"""One MLflow model served by the platform's model server with Flagger canary releases, on a
cluster that already runs Istio (and a Prometheus).

Flagger is installed here unless the cluster already has it (`installFlagger: false`). No mesh
is installed: the model's pods join the existing one through sidecar injection. Every later
release is a new model version written to the `<deployment>-model` ConfigMap; Flagger analyses
it on live traffic against the model server's own metrics and promotes or rolls it back.
"""

from __future__ import annotations

import types
import typing

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mlops_platform.components.delivery import (
    DeliveryConfig,
    ProgressiveDelivery,
    ProgressiveDeliveryArgs,
    load_tester_url,
)
from mlops_platform.components.namespaces import WorkloadNamespaces, WorkloadNamespacesArgs
from mlops_platform.components.serving import (
    FlaggerWiring,
    ModelDeployment,
    ModelDeploymentArgs,
    ModelDeploymentConfig,
    ProgressiveConfig,
    TrackConfig,
    release_config_map_name,
)


class Settings(BaseModel):
    """This stack's config (`pulumi config set <key> <value>`); defaults live here only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modelUri: str = Field(description="First release, e.g. models:/churn@champion.")
    mlflowTrackingUri: str = Field(description="MLflow the model server loads models from.")
    prometheusUrl: str = Field(
        description="Prometheus that scrapes the cluster (Flagger's checks query it)."
    )
    deployment: str = Field(
        description="Name of the deployment; names its objects, e.g. churn.", min_length=1
    )
    namespace: str = Field(default="serving", description="Namespace of the model (created).")
    mlflowCredentialsSecret: str | None = Field(
        default=None,
        description="Secret in `namespace` with key `credentials` (MLflow's credentials file), "
        "mounted read-only, when MLflow has basic auth.",
    )
    installFlagger: bool = Field(
        default=True, description="Install Flagger and its load tester (flagger-system)."
    )
    loadTesterUrl: str | None = Field(
        default=None,
        description="The existing Flagger load tester, e.g. http://flagger-loadtester.test/ "
        "(required with installFlagger: false).",
    )
    kubeContext: str | None = Field(
        default=None, description="kubeconfig context of the cluster. Default: the current one."
    )
    monitorLabels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels the Prometheus' podMonitorSelector wants, e.g. "
        "{release: kube-prometheus-stack}.",
    )

    @model_validator(mode="after")
    def _load_tester(self) -> Settings:
        if not self.installFlagger and self.loadTesterUrl is None:
            raise ValueError(
                "loadTesterUrl: required when installFlagger is false (the existing Flagger "
                "load tester's URL)"
            )
        if self.installFlagger and self.loadTesterUrl is not None:
            raise ValueError("loadTesterUrl: only with installFlagger: false (the one installed)")
        return self


def _is_text(annotation: object) -> bool:
    """`str` or `str | None`: read as the string it is, not as JSON."""
    optional = typing.get_origin(annotation) is types.UnionType
    return annotation is str or (optional and str in typing.get_args(annotation))


def settings() -> Settings:
    config = pulumi.Config()
    # Strings as they are, other values (booleans, maps) as JSON; an absent key is left out,
    # so the model's default holds.
    values = {
        key: value
        for key, field in Settings.model_fields.items()
        if (value := config.get(key) if _is_text(field.annotation) else config.get_object(key))
        is not None
    }
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{config.name}:{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}"
            for err in exc.errors()
        )
        raise pulumi.RunError(
            f"invalid config in Pulumi.{pulumi.get_stack()}.yaml: {problems}"
        ) from None


def main() -> None:
    wanted = settings()
    # The cluster as kubectl sees it (kubeconfig); nothing of it is created or changed.
    kubernetes = k8s.Provider("cluster", context=wanted.kubeContext)
    namespaces = WorkloadNamespaces(
        wanted.deployment,
        WorkloadNamespacesArgs(names=[wanted.namespace], kubernetes=kubernetes),
    )
    waits: list[pulumi.Resource] = [namespaces]
    if wanted.installFlagger:
        delivery_config = DeliveryConfig(enabled=True)
        waits.append(
            ProgressiveDelivery(
                "flagger",
                ProgressiveDeliveryArgs(
                    config=delivery_config,
                    prometheus_url=wanted.prometheusUrl,
                    kubernetes=kubernetes,
                ),
            )
        )
        tester = load_tester_url(delivery_config)
    else:
        assert wanted.loadTesterUrl is not None  # checked by Settings
        tester = wanted.loadTesterUrl

    model = ModelDeployment(
        wanted.deployment,
        ModelDeploymentArgs(
            config=ModelDeploymentConfig(
                namespace=wanted.namespace,
                stable=TrackConfig(model_uri=wanted.modelUri),
                progressive=ProgressiveConfig(),
                mlflow_tracking_uri=wanted.mlflowTrackingUri,
                credentials_secret=wanted.mlflowCredentialsSecret,
                monitor_labels=wanted.monitorLabels,
            ),
            kubernetes=kubernetes,
            flagger=FlaggerWiring(prometheus_url=wanted.prometheusUrl, load_tester_url=tester),
        ),
        pulumi.ResourceOptions(depends_on=waits),
    )

    pulumi.export("url", model.url)
    pulumi.export("model_name", model.model_name)
    pulumi.export("release_config_map", release_config_map_name(wanted.deployment))


main()
