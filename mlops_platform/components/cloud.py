"""Where a stack runs. The cloud choice selects each component's implementation."""

from typing import Annotated, Literal

from pydantic import Field

from mlops_platform.components.base import StrictModel


class AwsCloud(StrictModel):
    """Amazon Web Services: one region, resources tagged with `tags`."""

    type: Literal["aws"] = Field(description="`aws`: the platform runs on EKS in one region.")
    region: str = Field(description="AWS region, e.g. us-east-1.")
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every resource.")


class GcpCloud(StrictModel):
    """Google Cloud: one project and region, resources labelled with `labels`."""

    type: Literal["gcp"] = Field(
        description="`gcp`: the platform runs on GKE in one project and region."
    )
    project: str = Field(description="GCP project id.")
    region: str = Field(description="GCP region, e.g. europe-west4.")
    labels: dict[str, str] = Field(default_factory=dict, description="Labels on every resource.")


class LocalCloud(StrictModel):
    """An existing local Kubernetes cluster (kind, k3d or minikube); nothing is created."""

    type: Literal["local"] = Field(
        description="`local`: an existing cluster on this machine; no cloud resources are "
        "created (MinIO, Strimzi and in-cluster PostgreSQL and Redis stand in)."
    )
    kube_context: str = Field(
        default="kind-mlops", description="kubeconfig context of the existing cluster."
    )
    distribution: Literal["kind", "k3d", "minikube"] = Field(
        default="kind",
        description="Which local Kubernetes runs the cluster; selects Istio's platform "
        "profile (k3d, minikube) and what the cluster is known to provide as it comes "
        "(mlops_platform/components/capabilities: storage class, metrics API).",
    )


Cloud = Annotated[AwsCloud | GcpCloud | LocalCloud, Field(discriminator="type")]
