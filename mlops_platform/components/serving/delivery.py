"""Progressive model delivery with Flagger, pure layer: the analysis config, the Flagger
`MetricTemplate`s and the `Canary` of one model deployment.

The model of the world (one, not two):

- **A release is a model version pinned in the release ConfigMap** `<name>-model`
  (`model_uri: models:/churn/8`). The Deployment `<name>` reads `MLOPS_SERVE_MODEL_URI` from it
  with a `configMapKeyRef`. Flagger tracks the ConfigMaps a target references: writing a new
  version there is a new revision, and Flagger starts an analysis. On promotion Flagger copies
  the ConfigMap to `<name>-model-primary`, which the primary Deployment reads; on rollback the
  primary keeps its copy. So the primary is the `stable` track, the analysed target is the
  `canary` track, and the split between them is Flagger's (stepWeight up to maxWeight), never a
  number in the stack: a stack with `progressive` has no hand-set `canary`.
- Pulumi writes the first release (`stable.model_uri`) and never the later ones: releases come
  from the platform's loop (a new `challenger`) or from a person, and promotion moves the
  MLflow alias so the registry and the cluster agree.

The analysis uses the model server's own metrics (`mlops_platform/model_server/metrics.py`),
per pod, as the PodMonitor scrapes them (`namespace` and `pod` labels): canary pods are
`<name>-<rs-hash>-<pod-hash>`, primary pods `<name>-primary-<rs-hash>-<pod-hash>`.

No data is handled deliberately. Flagger fails a check whose query returns no value or NaN.
- request success rate and p99 latency return no value when the canary answered nothing in
  the interval: a canary nobody can reach must not be promoted, and the load tester's
  golden-set requests (a `rollout` webhook) make sure an idle service still has traffic, so no
  traffic neither stalls nor rolls back a release;
- the two model-output checks return 0 ("no evidence") until both sides have scored
  `min_scored_rows` rows in the interval, or the canary's drift window holds
  `min_window_rows` rows: a statistic over a handful of rows is noise, not evidence.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from mlops_platform.components.base import StrictModel

API_VERSION = "flagger.app/v1beta1"
PRIMARY_SUFFIX = "-primary"
CANARY_SUFFIX = "-canary"
# Endpoints whose requests are predictions (the server also counts health and metrics).
PREDICT_ENDPOINTS = "infer|invocations"
# Flagger's template variables (https://docs.flagger.app/usage/metrics#custom-metrics).
NAMESPACE_VAR = "{{ namespace }}"
TARGET_VAR = "{{ target }}"
INTERVAL_VAR = "{{ interval }}"
# Pods of the analysed Deployment `<target>-<rs-hash>-<pod-hash>` (two segments after the
# target, so `<target>-primary-...` never matches) and of the primary.
CANARY_PODS = f"{TARGET_VAR}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
PRIMARY_PODS = f"{TARGET_VAR}{PRIMARY_SUFFIX}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"
# The model server's example request (the MLflow input example of the model it serves), and
# the header that keeps the load tester's requests out of its drift window and prediction log.
EXAMPLE_PATH = "/v2/models/{model}/example"
SYNTHETIC_HEADER = "X-Mlops-Synthetic"
_DURATION = re.compile(r"^[1-9][0-9]*(s|m)$")

Check = Literal["success-rate", "latency-p99", "score-divergence", "feature-drift"]
CHECKS: tuple[Check, ...] = ("success-rate", "latency-p99", "score-divergence", "feature-drift")


class AnalysisThresholds(StrictModel):
    """Limits of the four checks; a check outside its limit counts towards `threshold`."""

    success_rate_min_percent: float = Field(
        default=99.0,
        ge=0,
        le=100,
        description="Lowest share of prediction requests without a 5xx, percent.",
    )
    latency_p99_max_ms: float = Field(
        default=250.0, gt=0, description="Highest p99 latency of prediction requests, ms."
    )
    score_divergence_max: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="Highest Kolmogorov-Smirnov distance between the canary's and the "
        "primary's prediction-score distributions over the interval (0 = same, 1 = disjoint), "
        "on the score histogram's buckets. A retrain on drifted data is meant to score "
        "differently (0.2-0.3 measured in `mlops demo`), a broken model far more (0.5-0.75): "
        "the default bounds the change; lower it (e.g. 0.1) for like-for-like retrains.",
    )
    feature_drift_max_psi: float = Field(
        default=0.25,
        gt=0,
        description="Highest PSI of any feature of the canary's inputs against the model's "
        "training reference profile.",
    )
    min_scored_rows: PositiveInt = Field(
        default=100,
        description="Rows each side must have scored in the interval before the score "
        "divergence counts (fewer: 0, no evidence).",
    )
    min_window_rows: PositiveInt = Field(
        default=500,
        description="Rows the canary's drift window must hold before its PSI counts.",
    )


class LoadTestConfig(StrictModel):
    """Golden-set requests Flagger's load tester sends during the analysis."""

    enabled: bool = Field(
        default=True,
        description="Send the model's example request (its MLflow input example, served by "
        "the model server) to the canary and the primary at `requests_per_second` each.",
    )
    requests_per_second: PositiveInt = Field(default=5, le=1000, description="Per side.")


class ProgressiveConfig(StrictModel):
    """Progressive delivery by Flagger: every new release is analysed on live traffic and
    promoted or rolled back automatically. Worst case to roll back: interval x threshold."""

    interval: str = Field(
        default="1m", description="How often the checks run (and their query window)."
    )
    threshold: PositiveInt = Field(
        default=5, le=100, description="Failed checks before the release is rolled back."
    )
    step_weight: PositiveInt = Field(
        default=10, le=100, description="Percent of traffic added to the canary per interval."
    )
    max_weight: PositiveInt = Field(
        default=50, le=100, description="Canary share at which it is promoted."
    )
    mirror: bool = Field(
        default=False,
        description="Shadow: the canary gets a copy of live traffic (its answers are "
        "discarded) for `mirror_iterations` intervals, then is promoted at once. A first look "
        "at a model without serving its answers.",
    )
    mirror_iterations: PositiveInt = Field(
        default=10, le=1000, description="Intervals of mirrored analysis (with `mirror`)."
    )
    confirm_promotion: bool = Field(
        default=False,
        description="Manual approval before promotion: the analysis holds at max weight until "
        "someone opens the load tester's gate for this canary.",
    )
    thresholds: AnalysisThresholds = Field(
        default_factory=AnalysisThresholds,
        description="Limits of the analysis' checks (success rate, latency, score "
        "divergence, feature drift); each interval outside one counts towards `threshold`.",
    )
    load_test: LoadTestConfig = Field(
        default_factory=LoadTestConfig,
        description="Golden-set requests Flagger's load tester sends to the canary during "
        "the analysis, so a quiet service still gets judged.",
    )
    webhooks: dict[Literal["pre-rollout", "post-rollout", "rollback"], str] = Field(
        default_factory=dict,
        description="Extra Flagger webhooks by type (URL): e.g. a golden-set gate before the "
        "rollout, an alias move after promotion.",
    )

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError(f"interval {value!r} must be seconds or minutes, e.g. 1m")
        return value

    @model_validator(mode="after")
    def _weights(self) -> ProgressiveConfig:
        if not self.mirror and self.step_weight > self.max_weight:
            raise ValueError(
                f"step_weight ({self.step_weight}) must be <= max_weight ({self.max_weight})"
            )
        return self


def interval_seconds(config: ProgressiveConfig) -> int:
    value = int(config.interval[:-1])
    return value * 60 if config.interval.endswith("m") else value


def worst_case_rollback_seconds(config: ProgressiveConfig) -> int:
    """A release that fails every check is rolled back after `threshold` intervals."""
    return interval_seconds(config) * config.threshold


def release_config_map_name(name: str) -> str:
    return f"{name}-model"


# --- queries ----------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:g}"


def _series(metric: str, pods: str, extra: str = "") -> str:
    return f'{metric}{{namespace="{NAMESPACE_VAR}", pod=~"{pods}"{extra}}}'


def success_rate_query() -> str:
    """Percent of the canary's prediction requests that did not fail with a 5xx."""
    predict = f', endpoint=~"{PREDICT_ENDPOINTS}"'
    ok = _series("model_server_requests_total", CANARY_PODS, f'{predict}, code!~"5.."')
    every = _series("model_server_requests_total", CANARY_PODS, predict)
    return f"100 * sum(rate({ok}[{INTERVAL_VAR}]))\n/\nsum(rate({every}[{INTERVAL_VAR}]))"


def latency_p99_query() -> str:
    """p99 of the canary's prediction latency, in milliseconds."""
    buckets = _series(
        "model_server_request_duration_seconds_bucket",
        CANARY_PODS,
        f', endpoint=~"{PREDICT_ENDPOINTS}"',
    )
    return f"1000 * histogram_quantile(0.99, sum by (le) (rate({buckets}[{INTERVAL_VAR}])))"


def _score_cdf(pods: str) -> str:
    buckets = _series("model_server_prediction_score_bucket", pods)
    count = _series("model_server_prediction_score_count", pods)
    return (
        f"sum by (le) (increase({buckets}[{INTERVAL_VAR}]))\n"
        f"  / ignoring (le) group_left\n"
        f"  sum(increase({count}[{INTERVAL_VAR}]))"
    )


def _scored_rows(pods: str) -> str:
    count = _series("model_server_prediction_score_count", pods)
    return f"sum(increase({count}[{INTERVAL_VAR}]))"


def score_divergence_query(thresholds: AnalysisThresholds) -> str:
    """Kolmogorov-Smirnov distance between the canary's and the primary's score distributions
    in the interval: the largest gap between their cumulative bucket fractions. 0 until both
    sides scored `min_scored_rows` rows."""
    rows = _fmt(thresholds.min_scored_rows)
    return (
        "max(abs(\n"
        f"  {_score_cdf(CANARY_PODS)}\n"
        "  -\n"
        f"  {_score_cdf(PRIMARY_PODS)}\n"
        "))\n"
        f"and on () {_scored_rows(CANARY_PODS)} >= {rows}\n"
        f"and on () {_scored_rows(PRIMARY_PODS)} >= {rows}\n"
        "or on () vector(0)"
    )


def feature_drift_query(thresholds: AnalysisThresholds) -> str:
    """Largest PSI of the canary's inputs against the training reference, counted only while
    a pod's drift window holds `min_window_rows` rows; 0 before."""
    psi = _series("model_server_feature_psi", CANARY_PODS)
    rows = _series("model_server_drift_window_rows", CANARY_PODS)
    return (
        f"max(\n  {psi}\n  and ignoring (feature)\n"
        f"  {rows} >= {_fmt(thresholds.min_window_rows)}\n)\n"
        "or on () vector(0)"
    )


def queries(thresholds: AnalysisThresholds) -> dict[Check, str]:
    return {
        "success-rate": success_rate_query(),
        "latency-p99": latency_p99_query(),
        "score-divergence": score_divergence_query(thresholds),
        "feature-drift": feature_drift_query(thresholds),
    }


def threshold_ranges(thresholds: AnalysisThresholds) -> dict[Check, dict[str, float]]:
    return {
        "success-rate": {"min": thresholds.success_rate_min_percent},
        "latency-p99": {"max": thresholds.latency_p99_max_ms},
        "score-divergence": {"max": thresholds.score_divergence_max},
        "feature-drift": {"max": thresholds.feature_drift_max_psi},
    }


def render_query(query: str, namespace: str, target: str, interval: str) -> str:
    """A template query as Flagger sends it to Prometheus (for tests and `mlops plan`)."""
    return (
        query.replace(NAMESPACE_VAR, namespace)
        .replace(TARGET_VAR, target)
        .replace(INTERVAL_VAR, interval)
    )


# --- objects ----------------------------------------------------------------------------------


def metric_template_name(name: str, check: Check) -> str:
    return f"{name}-{check}"


def metric_templates(
    name: str,
    namespace: str,
    config: ProgressiveConfig,
    prometheus_url: str,
    labels: dict[str, str],
) -> dict[Check, dict[str, Any]]:
    return {
        check: {
            "apiVersion": API_VERSION,
            "kind": "MetricTemplate",
            "metadata": {
                "name": metric_template_name(name, check),
                "namespace": namespace,
                "labels": labels,
            },
            "spec": {
                "provider": {"type": "prometheus", "address": prometheus_url},
                "query": query,
            },
        }
        for check, query in queries(config.thresholds).items()
    }


def service_url(name: str, namespace: str, port: int, suffix: str) -> str:
    return f"http://{name}{suffix}.{namespace}:{port}"


def load_command(
    name: str, namespace: str, port: int, model_name: str, config: ProgressiveConfig
) -> str:
    """The load tester's shell command (it runs `sh -c`): fetch the model's example request
    from each side, then send it at `requests_per_second` for one interval, to both sides so
    the score distributions compare on the same inputs even without live traffic. The requests
    are marked synthetic: they count for the request and score checks, but stay out of the drift
    window (the feature-drift check sees live traffic only) and out of the prediction log."""
    example = EXAMPLE_PATH.format(model=model_name)
    rate = config.load_test.requests_per_second
    parts = []
    for suffix in (CANARY_SUFFIX, PRIMARY_SUFFIX):
        base = service_url(name, namespace, port, suffix)
        body = f"/tmp/{namespace}-{name}{suffix}.json"
        parts.append(
            f"curl -sf -o {body} {shlex.quote(base + example)} && "
            f"hey -z {config.interval} -q {rate} -c 1 -m POST -T application/json "
            f"-H {shlex.quote(SYNTHETIC_HEADER + ': golden-set')} "
            f"-D {body} {shlex.quote(base + '/invocations')}"
        )
    return " & ".join(f"({part})" for part in parts) + " & wait"


def _gate_url(load_tester: str, path: str) -> str:
    return load_tester.rstrip("/") + path


@dataclass(frozen=True)
class FlaggerWiring:
    """Where Flagger's checks and hooks go: the platform's Prometheus (the monitoring
    component) and Flagger's load tester (the delivery component)."""

    prometheus_url: str
    load_tester_url: str
    # The platform's loop service (mlops_platform/components/loop): the golden-set gate before a rollout and
    # the registry update after it. None: no such hooks.
    loop_url: str | None = None


def webhooks(
    name: str,
    namespace: str,
    port: int,
    model_name: str,
    config: ProgressiveConfig,
    load_tester_url: str,
    loop_url: str | None = None,
) -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = []
    if loop_url is not None:
        base = loop_url.rstrip("/")
        hooks += [
            # The candidate against the champion on its golden set, through both services;
            # a failing gate holds the rollout until `threshold` failures roll it back.
            {
                "name": "golden-set-gate",
                "type": "pre-rollout",
                "url": f"{base}/flagger/gate",
                "timeout": "120s",
            },
            # After promotion or rollback: the MLflow aliases follow the cluster.
            {
                "name": "registry",
                "type": "post-rollout",
                "url": f"{base}/flagger/settle",
                "timeout": "60s",
            },
        ]
    for kind, url in sorted(config.webhooks.items()):
        hooks.append({"name": kind, "type": kind, "url": url, "timeout": "60s"})
    if config.load_test.enabled:
        hooks.append(
            {
                "name": "golden-set-load",
                "type": "rollout",
                "url": load_tester_url,
                "timeout": "15s",
                "metadata": {
                    "type": "cmd",
                    "cmd": load_command(name, namespace, port, model_name, config),
                },
            }
        )
    if config.confirm_promotion:
        hooks.append(
            {
                "name": "approve-promotion",
                "type": "confirm-promotion",
                # Closed until someone opens it: POST {"name": ..., "namespace": ...} to the
                # load tester's /gate/open.
                "url": _gate_url(load_tester_url, "/gate/check"),
            }
        )
    return hooks


def analysis(
    name: str,
    namespace: str,
    port: int,
    model_name: str,
    config: ProgressiveConfig,
    load_tester_url: str,
    loop_url: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"interval": config.interval, "threshold": config.threshold}
    if config.mirror:
        spec |= {"iterations": config.mirror_iterations, "mirror": True}
    else:
        spec |= {"stepWeight": config.step_weight, "maxWeight": config.max_weight}
    ranges = threshold_ranges(config.thresholds)
    spec["metrics"] = [
        {
            "name": check,
            "templateRef": {"name": metric_template_name(name, check), "namespace": namespace},
            "thresholdRange": ranges[check],
            "interval": config.interval,
        }
        for check in CHECKS
    ]
    spec["webhooks"] = webhooks(
        name, namespace, port, model_name, config, load_tester_url, loop_url
    )
    return spec


def canary(
    name: str,
    namespace: str,
    labels: dict[str, str],
    *,
    port: int,
    model_name: str,
    config: ProgressiveConfig,
    load_tester_url: str,
    service: dict[str, Any],
    autoscaler: str,
    loop_url: str | None = None,
    progress_deadline_seconds: int,
) -> dict[str, Any]:
    """The Flagger `Canary` for Deployment `name`; `service` is the Istio part of
    `spec.service` (hosts, gateways, timeout, retries, trafficPolicy)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "provider": "istio",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "autoscalerRef": {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "name": autoscaler,
            },
            "progressDeadlineSeconds": progress_deadline_seconds,
            "service": {
                "port": port,
                "targetPort": "http",
                "portName": "http",
                "appProtocol": "http",
                **service,
            },
            "analysis": analysis(
                name, namespace, port, model_name, config, load_tester_url, loop_url
            ),
        },
    }
