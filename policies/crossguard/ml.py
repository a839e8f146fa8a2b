"""ML workloads and cost: serving availability (replicas or autoscaling, a PDB), prediction
logging, automated canary analysis, drift thresholds, GPU pool limits and capacity, and cost
labels on GCP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from crossguard.aws import is_gpu_node_group
from crossguard.props import Settings, as_list, as_mapping, get, known, show, subject
from crossguard.selectors import name, namespace, pod_labels, selects

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
HPA = ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler",)
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
CANARY = "kubernetes:flagger.app/v1beta1:Canary"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
NAME_LABEL = "app.kubernetes.io/name"

SERVING = {
    "servingWorkloads": {
        "type": "array",
        "items": {"type": "string"},
        "default": ["model-server"],
        "description": "app.kubernetes.io/name of model-serving workloads.",
    }
}


def serving_deployments(
    args: StackValidationArgs, config: Mapping[str, Any]
) -> list[PolicyResource]:
    names = set(as_list(config.get("servingWorkloads", SERVING["servingWorkloads"]["default"])))
    return [
        r
        for r in args.resources
        if r.resource_type == DEPLOYMENT
        and pod_labels(r.resource_type, r.props).get(NAME_LABEL) in names
    ]


def _same_namespace(
    resources: Any, types: tuple[str, ...], workload: PolicyResource
) -> list[PolicyResource]:
    ns = namespace(workload.props)
    return [r for r in resources if r.resource_type in types and namespace(r.props) == ns]


def _targets(resource: PolicyResource, ref: Any, workload: PolicyResource) -> bool:
    return get(ref, "kind") == "Deployment" and get(ref, "name") == name(workload.props)


REPLICA_SETTINGS = Settings(
    {
        **SERVING,
        "minReplicas": {
            "type": "integer",
            "minimum": 1,
            "default": 3,
            "description": "Replicas of a serving Deployment without autoscaling.",
        },
        "minAutoscalingReplicas": {
            "type": "integer",
            "minimum": 1,
            "default": 2,
            "description": "minReplicas of the HorizontalPodAutoscaler of a serving Deployment.",
        },
    }
)


def validate_serving_replicas(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    min_replicas = REPLICA_SETTINGS.value(config, "minReplicas")
    min_hpa = REPLICA_SETTINGS.value(config, "minAutoscalingReplicas")
    for workload in serving_deployments(args, config):
        who = subject(workload.resource_type, workload.name)
        scalers = [
            h
            for h in _same_namespace(args.resources, HPA, workload)
            if _targets(h, get(h.props, "spec", "scaleTargetRef"), workload)
        ]
        if scalers:
            for scaler in scalers:
                low = get(scaler.props, "spec", "minReplicas")
                low = 1 if low is None else low  # the API's default
                if low < min_hpa:
                    report(
                        f"{subject(scaler.resource_type, scaler.name)}: spec.minReplicas must be "
                        f"at least {min_hpa} for serving Deployment {name(workload.props)}, got "
                        f"{show(low)}",
                        scaler.urn,
                    )
            continue
        replicas = get(workload.props, "spec", "replicas")
        replicas = 1 if replicas is None else replicas
        if replicas < min_replicas:
            report(
                f"{who}: spec.replicas must be at least {min_replicas} (or a "
                f"HorizontalPodAutoscaler with minReplicas >= {min_hpa}), got {show(replicas)}",
                workload.urn,
            )


serving_replicas = StackValidationPolicy(
    name="serving-replicas",
    description="Serving Deployments run at least minReplicas replicas, or are autoscaled with "
    "minReplicas of at least minAutoscalingReplicas.",
    validate=validate_serving_replicas,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=REPLICA_SETTINGS.schema,
)

PDB_SETTINGS = Settings(dict(SERVING))


def validate_serving_pdb(args: StackValidationArgs, report: ReportViolation) -> None:
    for workload in serving_deployments(args, args.get_config()):
        labels = pod_labels(workload.resource_type, workload.props)
        budgets = [
            p
            for p in _same_namespace(args.resources, (PDB,), workload)
            if selects(get(p.props, "spec", "selector"), labels)
            and (
                get(p.props, "spec", "minAvailable") is not None
                or get(p.props, "spec", "maxUnavailable") is not None
            )
        ]
        if not budgets:
            report(
                f"{subject(workload.resource_type, workload.name)}: no PodDisruptionBudget in "
                f"namespace {namespace(workload.props)} selects its pods (with minAvailable or "
                "maxUnavailable)",
                workload.urn,
            )


serving_pod_disruption_budget = StackValidationPolicy(
    name="serving-pod-disruption-budget",
    description="Every serving Deployment has a PodDisruptionBudget selecting its pods.",
    validate=validate_serving_pdb,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PDB_SETTINGS.schema,
)

LOGGING_SETTINGS = Settings(
    {
        **SERVING,
        "sinkVariable": {
            "type": "string",
            "default": "MLOPS_SERVE_PREDICTION_SINK",
            "description": "Environment variable that selects the model server's prediction log.",
        },
        "disabledValues": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["", "none", "off", "disabled"],
            "description": "Values of sinkVariable that turn prediction logging off.",
        },
    }
)


def validate_prediction_logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DEPLOYMENT:
        return
    config = args.get_config()
    names = set(as_list(LOGGING_SETTINGS.value(config, "servingWorkloads")))
    if pod_labels(args.resource_type, args.props).get(NAME_LABEL) not in names:
        return
    variable = LOGGING_SETTINGS.value(config, "sinkVariable")
    disabled = {v.lower() for v in as_list(LOGGING_SETTINGS.value(config, "disabledValues"))}
    spec = get(args.props, "spec", "template", "spec")
    for index, container in enumerate(as_list(get(spec, "containers"))):
        env = {get(e, "name"): e for e in as_list(get(container, "env"))}
        entry = env.get(variable)
        value = get(entry, "value")
        from_ref = get(entry, "valueFrom") is not None
        if entry is None or (not from_ref and str(value or "").lower() in disabled):
            report(
                f"{subject(args.resource_type, args.name)}: spec.template.spec.containers"
                f"[{index}].env {variable} must name a prediction sink, got {show(value)}"
            )


serving_prediction_logging = ResourceValidationPolicy(
    name="serving-prediction-logging",
    description="Model servers log predictions (the sink variable is set and not off), which "
    "drift detection and retraining read.",
    validate=validate_prediction_logging,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=LOGGING_SETTINGS.schema,
)

CANARY_SETTINGS = Settings(
    {
        **SERVING,
        "required": {
            "type": "boolean",
            "default": True,
            "description": "Require automated canary analysis (Flagger) for serving.",
        },
    }
)


def validate_canary(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    if not CANARY_SETTINGS.value(config, "required"):
        return
    for workload in serving_deployments(args, config):
        canaries = [
            c
            for c in _same_namespace(args.resources, (CANARY,), workload)
            if _targets(c, get(c.props, "spec", "targetRef"), workload)
        ]
        who = subject(workload.resource_type, workload.name)
        if not canaries:
            report(f"{who}: no Flagger Canary targets it (automated canary analysis)", workload.urn)
        for canary in canaries:
            spec = get(canary.props, "spec")
            cwho = subject(canary.resource_type, canary.name)
            if get(spec, "skipAnalysis") is True:
                report(f"{cwho}: spec.skipAnalysis must not be true", canary.urn)
            if not as_list(get(spec, "analysis", "metrics")):
                report(f"{cwho}: spec.analysis.metrics must list the analysis metrics", canary.urn)
            threshold = get(spec, "analysis", "threshold")
            if not isinstance(threshold, int | float) or threshold < 1:
                report(
                    f"{cwho}: spec.analysis.threshold must be at least 1, got {show(threshold)}",
                    canary.urn,
                )


serving_canary_analysis = StackValidationPolicy(
    name="serving-canary-analysis",
    description="Where required, every serving Deployment is the target of a Flagger Canary "
    "with analysis metrics and a failure threshold (analysis not skipped).",
    validate=validate_canary,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=CANARY_SETTINGS.schema,
)

BOUND = {
    "type": "object",
    "properties": {"min": {"type": "number"}, "max": {"type": "number"}},
    "required": ["min", "max"],
}
DRIFT_SETTINGS = Settings(
    {
        "canaryMetrics": {
            "type": "object",
            "additionalProperties": BOUND,
            # PSI: below 0.1 is noise, above 0.5 a population that has changed completely.
            "default": {
                "feature-drift": {"min": 0.05, "max": 0.5},
                "score-divergence": {"min": 0.05, "max": 0.6},
            },
            "description": "Bounds of thresholdRange.max of Flagger analysis metrics by name.",
        },
        "pipelineParameters": {
            "type": "object",
            "additionalProperties": BOUND,
            "default": {
                "psi_threshold": {"min": 0.05, "max": 0.5},
                "pvalue_threshold": {"min": 0.0001, "max": 0.1},
            },
            "description": "Bounds of drift parameters of scheduled pipeline runs.",
        },
    }
)


def _outside(value: Any, bound: Any) -> bool:
    return not isinstance(value, int | float) or not (
        get(bound, "min") <= value <= get(bound, "max")
    )


def validate_drift_thresholds(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    who = subject(args.resource_type, args.name)
    if args.resource_type == CANARY:
        bounds = as_mapping(DRIFT_SETTINGS.value(config, "canaryMetrics"))
        for index, metric in enumerate(as_list(get(args.props, "spec", "analysis", "metrics"))):
            bound = bounds.get(get(metric, "name"))
            value = get(metric, "thresholdRange", "max")
            if bound is not None and _outside(value, bound):
                report(
                    f"{who}: spec.analysis.metrics[{index}] ({get(metric, 'name')})"
                    f".thresholdRange.max must be within {get(bound, 'min')}..{get(bound, 'max')}, "
                    f"got {show(value)}"
                )
    elif args.resource_type == CONFIG_MAP:
        bounds = as_mapping(DRIFT_SETTINGS.value(config, "pipelineParameters"))
        data = get(args.props, "data") or {}
        for key in data:
            text = data[key]
            if not (isinstance(text, str) and '"recurring_runs"' in text):
                continue
            try:
                runs = json.loads(text).get("recurring_runs") or {}
            except (json.JSONDecodeError, AttributeError):
                continue
            for run_name, run in runs.items():
                parameters = (run or {}).get("parameters") or {}
                for parameter, bound in bounds.items():
                    if parameter in parameters and _outside(parameters[parameter], bound):
                        report(
                            f"{who}: data.{key} recurring run {run_name} parameter {parameter} "
                            f"must be within {get(bound, 'min')}..{get(bound, 'max')}, got "
                            f"{show(parameters[parameter])}"
                        )


drift_thresholds_bounded = ResourceValidationPolicy(
    name="drift-thresholds-bounded",
    description="Drift thresholds stay within sane bounds: Flagger drift metrics "
    "(canaryMetrics) and the drift parameters of scheduled pipeline runs (pipelineParameters).",
    validate=validate_drift_thresholds,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=DRIFT_SETTINGS.schema,
)


def _gke_gpu(props: Any) -> bool:
    return any(get(a, "count") for a in as_list(get(props, "nodeConfig", "guestAccelerators")))


GPU_CAP_SETTINGS = Settings(
    {
        "maxNodesPerPool": {
            "type": "integer",
            "minimum": 0,
            "default": 8,
            "description": "Most nodes one GPU pool may scale to.",
        }
    }
)


def validate_gpu_cap(args: ResourceValidationArgs, report: ReportViolation) -> None:
    cap = GPU_CAP_SETTINGS.value(args.get_config(), "maxNodesPerPool")
    who = subject(args.resource_type, args.name)
    if args.resource_type == EKS_NODE_GROUP and is_gpu_node_group(args.props):
        fields = [("scalingConfig.maxSize", get(args.props, "scalingConfig", "maxSize"))]
    elif args.resource_type == GKE_NODE_POOL and _gke_gpu(args.props):
        autoscaling = get(args.props, "autoscaling")
        fields = [
            (f"autoscaling.{key}", get(autoscaling, key))
            for key in ("totalMaxNodeCount", "maxNodeCount")
            if get(autoscaling, key) is not None
        ] or [("autoscaling.totalMaxNodeCount", None)]
    else:
        return
    for field, value in fields:
        if not isinstance(value, int | float) or value > cap:
            report(
                f"{who}: {field} must be set and at most {cap} for a GPU pool, got {show(value)}"
            )


gpu_pool_max_within_cap = ResourceValidationPolicy(
    name="gpu-pool-max-within-cap",
    description="GPU node pools (EKS and GKE) have an explicit maximum size within the "
    "environment's maxNodesPerPool.",
    validate=validate_gpu_cap,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=GPU_CAP_SETTINGS.schema,
)

SPOT_SETTINGS = Settings(
    {
        "forbidSpot": {
            "type": "boolean",
            "default": True,
            "description": "Serving-capable GPU pools must be on-demand (prod).",
        },
        "trainingOnlyLabels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "default": {"mlops.dev/gpu-class": "training"},
            "description": "Node labels that mark a GPU pool as training-only (spot allowed).",
        },
    }
)


def validate_gpu_spot(args: ResourceValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    if not SPOT_SETTINGS.value(config, "forbidSpot"):
        return
    training = as_mapping(SPOT_SETTINGS.value(config, "trainingOnlyLabels"))
    who = subject(args.resource_type, args.name)
    if args.resource_type == EKS_NODE_GROUP and is_gpu_node_group(args.props):
        labels, spot = get(args.props, "labels") or {}, []
        if get(args.props, "capacityType") == "SPOT":
            spot.append('capacityType "SPOT"')
    elif args.resource_type == GKE_NODE_POOL and _gke_gpu(args.props):
        labels, spot = get(args.props, "nodeConfig", "labels") or {}, []
        for field in ("spot", "preemptible"):
            if get(args.props, "nodeConfig", field) is True:
                spot.append(f"nodeConfig.{field} true")
    else:
        return
    if training and all(get(labels, k) == v for k, v in training.items()):
        return
    for what in spot:
        report(
            f"{who}: a GPU pool serving may use must be on-demand, got {what} (label it "
            f"{show(dict(training))} if it only trains)"
        )


gpu_no_spot_for_serving = ResourceValidationPolicy(
    name="gpu-no-spot-for-serving",
    description="Where forbidden, GPU pools that serving can use are not spot/preemptible "
    "(training-only pools, by label, may be).",
    validate=validate_gpu_spot,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SPOT_SETTINGS.schema,
)

# Where each labelled GCP type keeps its labels, and whether the provider's defaultLabels reach
# that field: they do for a resource's own top-level labels (the provider computes
# terraformLabels/effectiveLabels from both), not for nested ones (a node pool's
# nodeConfig.resourceLabels, Cloud SQL's settings.userLabels), which must be set explicitly.
GCP_LABEL_FIELDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "gcp:storage/bucket:Bucket": (("labels",), True),
    "gcp:container/cluster:Cluster": (("resourceLabels",), True),
    "gcp:container/nodePool:NodePool": (("nodeConfig", "resourceLabels"), False),
    "gcp:sql/databaseInstance:DatabaseInstance": (("settings", "userLabels"), False),
    "gcp:redis/instance:Instance": (("labels",), True),
    "gcp:managedkafka/cluster:Cluster": (("labels",), True),
    "gcp:compute/instance:Instance": (("labels",), True),
    "gcp:kms/cryptoKey:CryptoKey": (("labels",), True),
}
LABEL_SETTINGS = Settings(
    {
        "requiredLabels": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["environment", "cost-center"],
            "description": "Label keys every labelled GCP resource carries (own or provider "
            "defaultLabels).",
        }
    }
)


def validate_gcp_labels(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in GCP_LABEL_FIELDS:
        return
    path, defaults_apply = GCP_LABEL_FIELDS[args.resource_type]
    merged: dict[str, Any] = {}
    if defaults_apply and args.provider is not None:
        merged.update(as_mapping(known(lambda: get(args.provider.props, "defaultLabels"), {})))
    own = get(args.props, *path)
    if isinstance(own, Mapping):
        merged.update({k: own[k] for k in own})
    missing = [
        k
        for k in as_list(LABEL_SETTINGS.value(args.get_config(), "requiredLabels"))
        if not merged.get(k)
    ]
    if missing:
        source = " (with the provider's defaultLabels)" if defaults_apply else ""
        report(
            f"{subject(args.resource_type, args.name)}: {'.'.join(path)}{source} must include "
            f"{', '.join(missing)}"
        )


gcp_required_labels = ResourceValidationPolicy(
    name="gcp-required-labels",
    description="Labelled GCP resources carry the cost-allocation labels (requiredLabels).",
    validate=validate_gcp_labels,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=LABEL_SETTINGS.schema,
)

POLICIES = [
    serving_replicas,
    serving_pod_disruption_budget,
    serving_prediction_logging,
    serving_canary_analysis,
    drift_thresholds_bounded,
    gpu_pool_max_within_cap,
    gpu_no_spot_for_serving,
    gcp_required_labels,
]
