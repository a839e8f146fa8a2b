"""ML workloads and cost: serving availability, prediction logging, canary analysis, drift
thresholds, GPU pools, GCP cost labels (one field changed per case)."""

from __future__ import annotations

import json

import pytest
from cases import PLANS, Case, check
from crossguard import ml
from harness import DELETE, entry

SERVING = "Deployment 'churn-release'"
CANARY = "Canary 'churn-canary'"
SPEC = json.loads(entry(PLANS["prod"], "mlops-pipelines-sync-spec")["inputs"]["data"]["spec.json"])
DATA = entry(PLANS["prod"], "mlops-pipelines-sync-spec")["inputs"]["data"]


def with_parameter(name: str, value: float) -> dict:
    spec = json.loads(json.dumps(SPEC))
    spec["recurring_runs"]["nightly-drift-check"]["parameters"][name] = value
    return {**DATA, "spec.json": json.dumps(spec)}


SINK = "spec.template.spec.containers.0.env.5"

CASES = [
    # serving-replicas (stack)
    Case(
        ml.serving_replicas,
        "prod",
        "churn-hpa",
        "spec.minReplicas",
        1,
        [
            "HorizontalPodAutoscaler 'churn-hpa': spec.minReplicas must be at least 2 for serving "
            "Deployment churn, got 1 @ churn-hpa"
        ],
    ),
    Case(
        ml.serving_replicas,
        "prod",
        "churn-hpa",
        "spec.scaleTargetRef.name",
        "other",
        [
            f"{SERVING}: spec.replicas must be at least 3 (or a HorizontalPodAutoscaler with "
            "minReplicas >= 2), got 1 @ churn-release"
        ],
    ),
    Case(
        ml.serving_replicas,
        "dev",
        "churn-stable",
        "spec.replicas",
        2,
        [
            "Deployment 'churn-stable': spec.replicas must be at least 3 (or a "
            "HorizontalPodAutoscaler with minReplicas >= 2), got 2 @ churn-stable"
        ],
        type=ml.DEPLOYMENT,
        edits={"spec.replicas": 3},
    ),
    # serving-pod-disruption-budget (stack)
    Case(
        ml.serving_pod_disruption_budget,
        "prod",
        "churn-pdb",
        "spec.selector.matchLabels",
        {"app.kubernetes.io/name": "other"},
        [
            f"{SERVING}: no PodDisruptionBudget in namespace serving selects its pods (with "
            "minAvailable or maxUnavailable) @ churn-release"
        ],
    ),
    Case(
        ml.serving_pod_disruption_budget,
        "prod",
        "churn-pdb",
        "spec.maxUnavailable",
        DELETE,
        [
            f"{SERVING}: no PodDisruptionBudget in namespace serving selects its pods (with "
            "minAvailable or maxUnavailable) @ churn-release"
        ],
    ),
    # serving-prediction-logging
    Case(
        ml.serving_prediction_logging,
        "prod",
        "churn-release",
        f"{SINK}.value",
        "none",
        [
            f"{SERVING}: spec.template.spec.containers[0].env MLOPS_SERVE_PREDICTION_SINK must "
            'name a prediction sink, got "none"'
        ],
        type=ml.DEPLOYMENT,
    ),
    Case(
        ml.serving_prediction_logging,
        "prod",
        "churn-release",
        f"{SINK}.name",
        "OTHER",
        [
            f"{SERVING}: spec.template.spec.containers[0].env MLOPS_SERVE_PREDICTION_SINK must "
            "name a prediction sink, got unset"
        ],
        type=ml.DEPLOYMENT,
    ),
    # serving-canary-analysis (stack)
    Case(
        ml.serving_canary_analysis,
        "prod",
        "churn-canary",
        "spec.targetRef.name",
        "other",
        [f"{SERVING}: no Flagger Canary targets it (automated canary analysis) @ churn-release"],
    ),
    Case(
        ml.serving_canary_analysis,
        "prod",
        "churn-canary",
        "spec.skipAnalysis",
        True,
        [f"{CANARY}: spec.skipAnalysis must not be true @ churn-canary"],
    ),
    Case(
        ml.serving_canary_analysis,
        "prod",
        "churn-canary",
        "spec.analysis.metrics",
        [],
        [f"{CANARY}: spec.analysis.metrics must list the analysis metrics @ churn-canary"],
    ),
    Case(
        ml.serving_canary_analysis,
        "prod",
        "churn-canary",
        "spec.analysis.threshold",
        0,
        [f"{CANARY}: spec.analysis.threshold must be at least 1, got 0 @ churn-canary"],
    ),
    # drift-thresholds-bounded
    Case(
        ml.drift_thresholds_bounded,
        "prod",
        "churn-canary",
        "spec.analysis.metrics.3.thresholdRange.max",
        2.0,
        [
            f"{CANARY}: spec.analysis.metrics[3] (feature-drift).thresholdRange.max must be within "
            "0.05..0.5, got 2.0"
        ],
    ),
    Case(
        ml.drift_thresholds_bounded,
        "prod",
        "churn-canary",
        "spec.analysis.metrics.2.thresholdRange",
        {"min": 0.1},
        [
            f"{CANARY}: spec.analysis.metrics[2] (score-divergence).thresholdRange.max must be "
            "within 0.05..0.6, got unset"
        ],
    ),
    Case(
        ml.drift_thresholds_bounded,
        "prod",
        "mlops-pipelines-sync-spec",
        "data",
        with_parameter("psi_threshold", 0.9),
        [
            "ConfigMap 'mlops-pipelines-sync-spec': data.spec.json recurring run "
            "nightly-drift-check parameter psi_threshold must be within 0.05..0.5, got 0.9"
        ],
        edits={"data": with_parameter("psi_threshold", 0.2)},
    ),
    # gpu-pool-max-within-cap
    Case(
        ml.gpu_pool_max_within_cap,
        "prod",
        "mlops-gpu-l4",
        "scalingConfig.maxSize",
        16,
        [
            "NodeGroup 'mlops-gpu-l4': scalingConfig.maxSize must be set and at most 8 for a GPU "
            "pool, got 16"
        ],
        type=ml.EKS_NODE_GROUP,
    ),
    Case(
        ml.gpu_pool_max_within_cap,
        "prod-gcp",
        "mlops-gpu-l4",
        "autoscaling",
        DELETE,
        [
            "NodePool 'mlops-gpu-l4': autoscaling.totalMaxNodeCount must be set and at most 8 for "
            "a GPU pool, got unset"
        ],
        type=ml.GKE_NODE_POOL,
    ),
    Case(
        ml.gpu_pool_max_within_cap,
        "prod-gcp",
        "mlops-gpu-l4",
        "autoscaling.totalMaxNodeCount",
        5,
        [
            "NodePool 'mlops-gpu-l4': autoscaling.totalMaxNodeCount must be set and at most 4 "
            "for a GPU pool, got 5"
        ],
        type=ml.GKE_NODE_POOL,
        config={"maxNodesPerPool": 4},
    ),
    # gpu-no-spot-for-serving
    Case(
        ml.gpu_no_spot_for_serving,
        "prod",
        "mlops-gpu-l4",
        "capacityType",
        "SPOT",
        [
            "NodeGroup 'mlops-gpu-l4': a GPU pool serving may use must be on-demand, got "
            'capacityType "SPOT" (label it {"mlops.dev/gpu-class": "training"} if it only trains)'
        ],
        type=ml.EKS_NODE_GROUP,
    ),
    Case(
        ml.gpu_no_spot_for_serving,
        "prod",
        "mlops-gpu-a100",
        "labels",
        {},
        [
            "NodeGroup 'mlops-gpu-a100': a GPU pool serving may use must be on-demand, got "
            'capacityType "SPOT" (label it {"mlops.dev/gpu-class": "training"} if it only trains)'
        ],
        edits={"capacityType": "SPOT"},
    ),
    Case(
        ml.gpu_no_spot_for_serving,
        "prod-gcp",
        "mlops-gpu-l4",
        "nodeConfig.spot",
        True,
        [
            "NodePool 'mlops-gpu-l4': a GPU pool serving may use must be on-demand, got "
            'nodeConfig.spot true (label it {"mlops.dev/gpu-class": "training"} if it only trains)'
        ],
        type=ml.GKE_NODE_POOL,
    ),
    # gcp-required-labels
    Case(
        ml.gcp_required_labels,
        "prod-gcp",
        "mlops-gke",
        "resourceLabels",
        {"environment": "prod"},
        [
            "Cluster 'mlops-gke': resourceLabels (with the provider's defaultLabels) must include "
            "team"
        ],
        config={"requiredLabels": ["environment", "team"]},
        edits={"resourceLabels": {"team": "ml"}},
    ),
    Case(
        ml.gcp_required_labels,
        "prod-gcp",
        "mlops-mlflow-database",
        "settings.userLabels",
        DELETE,
        [
            "DatabaseInstance 'mlops-mlflow-database': settings.userLabels must include "
            "environment, cost-center"
        ],
        type="gcp:sql/databaseInstance:DatabaseInstance",
    ),
    Case(
        ml.gcp_required_labels,
        "prod-gcp",
        "mlops-gpu-l4",
        "nodeConfig.resourceLabels",
        {"environment": "prod"},
        ["NodePool 'mlops-gpu-l4': nodeConfig.resourceLabels must include cost-center"],
        type=ml.GKE_NODE_POOL,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=Case.id)
def test_ml_policies(case):
    check(case)


def test_every_ml_policy_has_a_case():
    assert {c.policy.name for c in CASES} == {p.name for p in ml.POLICIES}
