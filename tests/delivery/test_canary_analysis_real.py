"""Flagger's analysis, for real: the MetricTemplate queries the serving component renders, run
by a real Prometheus against real model servers, separate a healthy canary from degraded ones.

Each scenario is a namespace with a primary (the champion model) and a canary, scraped with the
`namespace` and `pod` labels the PodMonitor gives them in a cluster (`churn-primary-<rs>-<pod>`,
`churn-<rs>-<pod>`). Both sides get the same golden-set requests, as the load tester sends them.
Flagger reads a query's single value and compares it with the Canary's thresholdRange; no value
(or NaN) counts as a failed check.
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_platform.components.serving import analysis, delivery, model
from mlops_platform.pipelines.components.register_model.logic import (
    SKOPS_TRUSTED_TYPES as SKOPS_TRUSTED,
)
from tests.prometheus_support import prometheus
from tests.serving.serving_support import (
    PROFILE,
    ServerProcess,
    split_payload,
    start_server,
    stop_server,
    training_frame,
    wait_ready,
)

pytestmark = pytest.mark.slow

NAME = "churn"
PRIMARY_POD = "churn-primary-7f9c8d6b4-k2x4p"
CANARY_POD = "churn-6c5b7d9f8-q8w2r"
TRACKING = "http://mlflow.mlflow.svc.cluster.local:5000"
CONFIG = model.ModelDeploymentConfig.model_validate(
    {
        "stable": {"model_uri": "models:/churn@champion"},
        "mlflow_tracking_uri": TRACKING,
        # A like-for-like retrain: the scores may barely move (the default allows a drift
        # retrain's larger change, mlops_platform/components/serving/README.md).
        "progressive": {"thresholds": {"score_divergence_max": 0.1}},
    }
)
FLAGGER = delivery.FlaggerWiring(
    prometheus_url="http://monitoring-prometheus.monitoring.svc.cluster.local:9090",
    load_tester_url="http://flagger-loadtester.flagger-system/",
)


def _fit(frame, labels, seed: int):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["tenure", "orders", "spend"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    classifier = HistGradientBoostingClassifier(max_iter=30, random_state=seed)
    return Pipeline([("pre", pre), ("clf", classifier)]).fit(frame, labels)


def _save_sklearn(pipeline, frame, path: Path, profile: dict[str, Any]) -> str:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        signature=infer_signature(frame, pipeline.predict_proba(frame)[:, 1]),
        input_example=frame.head(3),
        metadata={"reference_profile": profile},
        skops_trusted_types=[*SKOPS_TRUSTED, "numpy.dtype"],
        pip_requirements=["scikit-learn"],
    )
    return str(path)


def _save_degraded(pipeline, frame, path: Path) -> str:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from tests.delivery.canary_models import DegradedChurn

    mlflow.pyfunc.save_model(
        str(path),
        python_model=DegradedChurn(pipeline, sleep=0.3, fail_every=3),
        signature=infer_signature(frame, pipeline.predict_proba(frame)[:, 1]),
        metadata={"reference_profile": PROFILE},
        pip_requirements=["scikit-learn"],
    )
    return str(path)


def _labels(frame):
    # A noisy rule, so two fits on resamples agree closely but not exactly.
    return ((frame["tenure"] < 30) ^ (frame["orders"] % 7 == 0)).astype(int)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """Model folders: the champion and one canary per scenario."""
    folder = tmp_path_factory.mktemp("canary-models")
    frame = training_frame(2000, seed=0)
    labels = _labels(frame)
    resample = frame.sample(frac=1.0, replace=True, random_state=1)
    champion = _fit(frame, labels, seed=0)
    # The reference profile of a model trained on data whose tenure was far higher than
    # today's traffic: its inputs look drifted against it.
    drifted_profile = copy.deepcopy(PROFILE)
    drifted_profile["features"]["tenure"]["edges"] = [125.0, 150.0, 175.0]
    return {
        "champion": _save_sklearn(champion, frame, folder / "champion", PROFILE),
        # A retrain on a resample of the same data: nearly the same scores.
        "healthy": _save_sklearn(
            _fit(resample, _labels(resample), seed=1), frame, folder / "healthy", PROFILE
        ),
        # Trained with the label inverted: the scores are mirrored.
        "shifted": _save_sklearn(
            _fit(frame, 1 - labels, seed=0), frame, folder / "shifted", PROFILE
        ),
        # The champion's answers, but 300 ms late and every third call fails.
        "degraded": _save_degraded(champion, frame, folder / "degraded"),
        "drifted": _save_sklearn(champion, frame, folder / "drifted", drifted_profile),
        "idle": _save_sklearn(champion, frame, folder / "idle", PROFILE),
    }


SCENARIOS = ("healthy", "shifted", "degraded", "drifted", "idle")


def _start_all(models: dict[str, str], tmp_path: Path) -> dict[str, ServerProcess]:
    env = {"MLOPS_SERVE_DRIFT_WINDOW_ROWS": "2000"}
    for key in models:
        (tmp_path / key).mkdir()
    servers = {
        key: start_server(path, tmp_path / key, env=env, wait=False) for key, path in models.items()
    }
    for server in servers.values():
        wait_ready(server)
    return servers


def _scrape_configs(servers: dict[str, ServerProcess]) -> list[dict[str, Any]]:
    """One target per pod as the PodMonitor sees it; the champion is the primary of every
    scenario's namespace."""
    static = []
    for scenario in SCENARIOS:
        for key, pod in (("champion", PRIMARY_POD), (scenario, CANARY_POD)):
            static.append(
                {
                    "targets": [servers[key].url.removeprefix("http://")],
                    "labels": {"namespace": scenario, "pod": pod},
                }
            )
    return [{"job_name": "model-server", "scrape_interval": "1s", "static_configs": static}]


def _send_golden_set(servers: dict[str, ServerProcess], seconds: float) -> None:
    """What the load tester does: the same requests to the primary and each canary (the idle
    canary gets none), from a few concurrent clients per side."""
    frame = training_frame(4000, seed=7)
    batches = [split_payload(frame.iloc[i : i + 50]) for i in range(0, len(frame), 50)]
    targets = [servers["champion"]] + [servers[s] for s in SCENARIOS if s != "idle"]

    def client(server: ServerProcess) -> None:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline:
            server.post("/invocations", batches[i % len(batches)])
            i += 1

    with concurrent.futures.ThreadPoolExecutor(len(targets) * 2) as pool:
        for future in [pool.submit(client, t) for t in targets for _ in range(2)]:
            future.result()


def test_the_rendered_checks_separate_a_healthy_canary_from_degraded_ones(models, tmp_path):
    rendered = model.render(NAME, CONFIG, flagger=FLAGGER)
    # The checks Flagger runs are the MetricTemplates the component renders.
    assert {
        check: obj["spec"]["query"] for check, obj in rendered.metric_templates.items()
    } == delivery.queries(CONFIG.progressive.thresholds)
    servers = _start_all(models, tmp_path)
    try:
        with prometheus(tmp_path / "prometheus", _scrape_configs(servers)) as prom:
            prom.wait_for("count(up == 1)", lambda v: v == 2 * len(SCENARIOS), 30)
            _send_golden_set(servers, seconds=12)
            time.sleep(3)  # the last scrapes
            results = {
                scenario: analysis.run_checks(
                    prom.scalar, CONFIG.progressive, scenario, NAME, interval="1m"
                )
                for scenario in SCENARIOS
            }
    finally:
        for server in servers.values():
            stop_server(server)
    values = {
        scenario: {check: result.value for check, result in checks.items()}
        for scenario, checks in results.items()
    }
    verdicts = {
        scenario: {check: result.passed for check, result in checks.items()}
        for scenario, checks in results.items()
    }
    report = json.dumps(values, indent=1)
    every = dict.fromkeys(delivery.CHECKS, True)
    assert verdicts["healthy"] == every, report
    assert verdicts["shifted"] == {**every, "score-divergence": False}, report
    assert verdicts["degraded"] == {**every, "success-rate": False, "latency-p99": False}, report
    assert verdicts["drifted"] == {**every, "feature-drift": False}, report
    # No traffic at all: the request checks have no value (Flagger fails them: a canary nobody
    # reaches is not promoted), the output checks say "no evidence" (0) rather than NaN.
    idle = values["idle"]
    assert idle["success-rate"] is None and idle["latency-p99"] is None, report
    assert idle["score-divergence"] == 0 and idle["feature-drift"] == 0, report
    # The degraded canary fails about every third batch.
    assert values["degraded"]["success-rate"] < 90, report
    assert values["shifted"]["score-divergence"] > 2 * values["healthy"]["score-divergence"]
