"""Supply chain: registries, digests, the MLflow version, Kubernetes versions, Binary
Authorization (one field changed per case)."""

from __future__ import annotations

import pytest
from cases import Case, check
from crossguard import supply_chain
from crossguard.supply_chain import registry, repository
from harness import DELETE

IMAGE = "spec.template.spec.containers.0.image"
FIELD = "spec.template.spec.containers[0].image"
MLFLOW = "Deployment 'mlops-mlflow-server'"
DIGEST = "sha256:" + "ab" * 32

CASES = [
    # images-allowed-registries
    Case(
        supply_chain.images_allowed_registries,
        "prod",
        "mlops-mlflow-server",
        IMAGE,
        "registry.example.com/mlflow/mlflow:v3.17.0",
        [
            f'{MLFLOW}: {FIELD} "registry.example.com/mlflow/mlflow:v3.17.0" comes from '
            "registry.example.com, which is not in allowedRegistries"
        ],
        type="kubernetes:apps/v1:Deployment",
    ),
    Case(
        supply_chain.images_allowed_registries,
        "local",
        "mlops-feast-redis",
        IMAGE,
        "redis:8.10.2-trixie",
        [
            "StatefulSet 'mlops-feast-redis': spec.template.spec.containers[0].image "
            '"redis:8.10.2-trixie" comes from docker.io, which is not in allowedRegistries'
        ],
        type="kubernetes:apps/v1:StatefulSet",
        edits={IMAGE: "quay.io/opstree/redis:v8.0.0"},
    ),
    # images-pinned-by-digest
    Case(
        supply_chain.images_pinned_by_digest,
        "prod",
        "mlops-mlflow-server",
        IMAGE,
        "ghcr.io/mlflow/mlflow:v3.17.0-full",
        [
            f'{MLFLOW}: {FIELD} "ghcr.io/mlflow/mlflow:v3.17.0-full" must be pinned by digest '
            "(@sha256:...)"
        ],
        type="kubernetes:apps/v1:Deployment",
        config={"required": True},
        edits={IMAGE: f"ghcr.io/mlflow/mlflow:v3.17.0-full@{DIGEST}"},
    ),
    # mlflow-minimum-version
    Case(
        supply_chain.mlflow_minimum_version,
        "prod",
        "mlops-mlflow-server",
        IMAGE,
        "ghcr.io/mlflow/mlflow:v2.22.1",
        [
            f'{MLFLOW}: {FIELD} "ghcr.io/mlflow/mlflow:v2.22.1" must be MLflow 3.1.0 or later (a '
            'version tag), got "v2.22.1"'
        ],
        type="kubernetes:apps/v1:Deployment",
    ),
    Case(
        supply_chain.mlflow_minimum_version,
        "prod",
        "mlops-mlflow-provision-users",
        IMAGE,
        f"ghcr.io/mlflow/mlflow@{DIGEST}",
        [
            "Job 'mlops-mlflow-provision-users': spec.template.spec.containers[0].image "
            f'"ghcr.io/mlflow/mlflow@{DIGEST}" must be MLflow 3.1.0 or later (a version tag), got '
            "unset"
        ],
    ),
    # kubernetes-version-window
    Case(
        supply_chain.kubernetes_version_window,
        "prod",
        "mlops-eks",
        "version",
        "1.29",
        [
            "Cluster 'mlops-eks': version must be a Kubernetes version from 1.33 to 1.35, got "
            '"1.29"'
        ],
    ),
    Case(
        supply_chain.kubernetes_version_window,
        "prod",
        "mlops-eks",
        "version",
        DELETE,
        ["Cluster 'mlops-eks': version must be a Kubernetes version from 1.33 to 1.35, got unset"],
    ),
    Case(
        supply_chain.kubernetes_version_window,
        "prod",
        "mlops-eks",
        "upgradePolicy",
        DELETE,
        ["Cluster 'mlops-eks': upgradePolicy.supportType must be \"STANDARD\", got unset"],
    ),
    Case(
        supply_chain.kubernetes_version_window,
        "prod-gcp",
        "mlops-gke",
        "minMasterVersion",
        "1.36.1-gke.100",
        [
            "Cluster 'mlops-gke': minMasterVersion must be a Kubernetes version from 1.33 to "
            '1.35, got "1.36.1-gke.100"'
        ],
    ),
    Case(
        supply_chain.kubernetes_version_window,
        "prod-gcp",
        "mlops-gpu-l4",
        "version",
        "1.31.2",
        [
            "NodePool 'mlops-gpu-l4': version must be a Kubernetes version from 1.33 to 1.35, got "
            '"1.31.2"'
        ],
        type=supply_chain.GKE_NODE_POOL,
    ),
    # gke-binary-authorization
    Case(
        supply_chain.gke_binary_authorization,
        "prod-gcp",
        "mlops-gke",
        "binaryAuthorization.evaluationMode",
        "DISABLED",
        [
            "Cluster 'mlops-gke': binaryAuthorization.evaluationMode must be "
            "PROJECT_SINGLETON_POLICY_ENFORCE or "
            'POLICY_BINDINGS_AND_PROJECT_SINGLETON_POLICY_ENFORCE, got "DISABLED"'
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_supply_chain_policies(case):
    check(case)


def test_every_supply_chain_policy_has_a_case():
    assert {c.policy.name for c in CASES} == {p.name for p in supply_chain.POLICIES}


@pytest.mark.parametrize(
    ("image", "host", "repo"),
    [
        ("redis:8", "docker.io", "docker.io/redis"),
        ("bitnami/mlflow:3.1.0", "docker.io", "docker.io/bitnami/mlflow"),
        ("ghcr.io/mlflow/mlflow:v3.17.0-full", "ghcr.io", "ghcr.io/mlflow/mlflow"),
        ("localhost:5000/app@sha256:00", "localhost:5000", "localhost:5000/app"),
        (
            "123.dkr.ecr.us-east-1.amazonaws.com/m:1",
            "123.dkr.ecr.us-east-1.amazonaws.com",
            "123.dkr.ecr.us-east-1.amazonaws.com/m",
        ),
    ],
)
def test_image_references(image, host, repo):
    assert (registry(image), repository(image)) == (host, repo)
