"""check_drift component: wraps mlops_platform.pipelines.lib.drift and renders the per-feature report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kfp.dsl import Artifact, Dataset, Markdown, Metrics

from mlops_platform.pipelines.components.check_drift.component import check_drift
from mlops_platform.pipelines.components.check_drift.logic import report_markdown
from mlops_platform.pipelines.data import churn


def run(reference: Path, current: Path, tmp_path: Path, **params) -> tuple[bool, dict, str, dict]:
    report = Markdown(name="report", uri=str(tmp_path / "report.md"))
    scores = Metrics(name="scores", uri=str(tmp_path / "scores"))
    details = Artifact(name="details", uri=str(tmp_path / "details.json"))
    drifted = check_drift.python_func(
        reference=Dataset(name="r", uri=str(reference)),
        current=Dataset(name="c", uri=str(current)),
        report=report,
        drift_scores=scores,
        details=details,
        **params,
    )
    summary = json.loads((tmp_path / "details.json").read_text())
    return drifted, summary, (tmp_path / "report.md").read_text(), scores.metadata


@pytest.fixture(scope="module")
def windows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("windows")
    reference = churn.generate(20000, seed=1, start="2023-01-01", days=1095)
    calm = churn.generate(5000, seed=2, start="2026-01-01", days=90)
    drifted = churn.generate(
        5000,
        seed=2,
        start="2026-01-01",
        days=90,
        drift=churn.DriftScenario(kind="sudden", magnitude=1.0, start_day=0),
    )
    return {
        name: churn.write_parquet(frame, folder / f"{name}.parquet")
        for name, frame in {"reference": reference, "calm": calm, "drifted": drifted}.items()
    }


def test_drifted_window_is_flagged_on_the_injected_features(windows, tmp_path) -> None:
    drifted, summary, report, scores = run(windows["reference"], windows["drifted"], tmp_path)
    assert drifted is True
    assert sorted(summary["drifted_features"]) == sorted(churn.DEFAULT_DRIFT_FEATURES)
    assert summary["seasonal_reference"] is True
    assert report.startswith("# Drift FOUND\n")
    assert f"- drifted features (6): {', '.join(summary['drifted_features'])}" not in report
    assert summary["verdict"] == "drift"
    assert len(scores) == 4 * 47
    assert scores["psi_tenure_days"] == round(summary["features"]["tenure_days"]["psi"], 5)
    assert scores["drifted_tenure_days"] == 1.0
    assert scores["drifted_age"] == 0.0
    assert "| tenure_days | " in report and "ks@window" in report


def test_calm_window_of_another_season_is_not_drift(windows, tmp_path) -> None:
    drifted, summary, report, _ = run(windows["reference"], windows["calm"], tmp_path)
    assert drifted is False
    assert summary["drifted_features"] == []
    assert "- drifted features (0): none" in report


def test_thresholds_are_passed_through(windows, tmp_path) -> None:
    drifted, summary, _, _ = run(
        windows["reference"], windows["drifted"], tmp_path, psi_threshold=50.0, season_days=-1
    )
    assert drifted is False
    assert summary["config"]["psi_threshold"] == 50.0
    assert summary["config"]["season_days"] is None
    assert summary["seasonal_reference"] is False
    assert summary["season"]["status"] == "disabled"
    _, summary, _, _ = run(
        windows["reference"],
        windows["drifted"],
        tmp_path,
        correction="bh",
        min_ks=0.99,
        min_scale_ratio=3.0,
        min_tvd=0.5,
        min_missing_change=0.5,
        recent_share=0.0,
    )
    assert summary["config"]["correction"] == "bh"
    assert summary["config"]["min_ks"] == 0.99
    assert summary["recent_rows"] == 0
    assert summary["drifted_features"] == []


def test_the_platform_drift_config_replaces_the_separate_thresholds(windows, tmp_path) -> None:
    """`drift_config` is what the retrain receiver passes (`DriftSettings.pipeline_arguments`):
    the run decides with exactly the drift monitor's detector."""
    from mlops_platform.pipelines.lib.drift import DriftSettings

    settings = DriftSettings(detector={"min_ks": 0.99, "min_scale_ratio": 3.0, "season_days": 3})
    _, summary, _, _ = run(
        windows["reference"],
        windows["drifted"],
        tmp_path,
        min_ks=0.0,
        **{"drift_config": settings.pipeline_arguments()["drift_config"]},
    )
    assert summary["config"] == settings.detector.model_dump(mode="json")
    assert summary["config"]["season_days"] == 3
    baseline, _, _, _ = run(windows["reference"], windows["drifted"], tmp_path)
    assert baseline is True
    with pytest.raises(ValueError, match=r"(?s)drift_config: .*min_tvd"):
        run(windows["reference"], windows["drifted"], tmp_path, drift_config='{"min_tvd": 7}')


def test_unbuildable_same_season_reference_is_an_inconclusive_report(windows, tmp_path) -> None:
    drifted, summary, report, _ = run(
        windows["reference"], windows["drifted"], tmp_path, season_fallback="inconclusive"
    )
    assert summary["season"]["status"] == "same_season"
    short = tmp_path / "short.parquet"
    frame = churn.read_parquet(windows["reference"])
    # three years but only 20 rows a week: a 90-day window's season holds < 1000 rows
    churn.write_parquet(frame.iloc[::40], short)
    drifted, summary, report, _ = run(short, windows["drifted"], tmp_path)
    assert drifted is False
    assert summary["verdict"] == "inconclusive"
    assert report.startswith("# Drift INCONCLUSIVE\n")
    assert "fewer than min_reference_rows=1000" in report


def test_report_orders_drifted_features_first_then_by_psi() -> None:
    def feature(psi: float, pvalue: float, drifted: bool) -> dict:
        return {
            "kind": "numeric",
            "test": "ks",
            "slice": "window",
            "psi": psi,
            "effect": 0.1,
            "pvalue": pvalue,
            "missing_reference": 0.0,
            "missing_current": 0.01,
            "drifted": drifted,
            "drifted_tests": ["ks@window"] if drifted else [],
        }

    summary = {
        "drifted": True,
        "verdict": "drift",
        "message": "2 of 3 features drifted",
        "features": {
            "a": feature(0.9, 0.5, False),
            "b": feature(0.3, 0.001, True),
            "c": feature(0.5, 0.001, True),
        },
        "reference_rows": 10,
        "current_rows": 5,
        "recent_rows": 0,
        "n_tests": 9,
        "season": {"status": "no_timestamp", "message": "-"},
        "config": {
            "psi_threshold": 0.0,
            "pvalue_threshold": 0.01,
            "min_drifted_features": 1,
            "correction": "holm",
            "min_ks": 0.03,
            "min_scale_ratio": 1.1,
            "min_tvd": 0.03,
            "min_missing_change": 0.01,
        },
    }
    text = report_markdown(summary, "ref.parquet", "cur.parquet")
    rows = [
        line.split(" | ")[0]
        for line in text.splitlines()
        if line.startswith("| ") and "---" not in line
    ]
    assert rows == ["| feature", "| c", "| b", "| a"]
    assert "- drifted features (2): c, b" in text
    assert "- reference: `ref.parquet` (10 rows; season: no_timestamp)" in text
    assert "Holm (family-wise) over 9 tests" in text
    assert (
        "| b | numeric | ks | window | 0.1 | 0.001 | 0.3000 | 0.00% -> 1.00% | ks@window |" in text
    )


def test_component_and_pipeline_defaults_match_the_library_defaults():
    # Lightweight components re-run their signature in the container, so the defaults are
    # literals there; this keeps them equal to DriftConfig's, the one place they are decided.
    import inspect

    from mlops_platform.pipelines.components.check_drift.component import check_drift
    from mlops_platform.pipelines.lib.drift import DriftConfig
    from mlops_platform.pipelines.pipelines.drift import drift_pipeline

    library = DriftConfig()
    for fn in (check_drift.python_func, drift_pipeline.pipeline_func):
        params = inspect.signature(fn).parameters
        for name in ("psi_threshold", "pvalue_threshold", "min_drifted_features", "season_days"):
            assert params[name].default == getattr(library, name), (fn.__name__, name)
    params = inspect.signature(check_drift.python_func).parameters
    for name in (
        "correction",
        "min_ks",
        "min_scale_ratio",
        "min_tvd",
        "min_missing_change",
        "season_fallback",
        "recent_share",
    ):
        assert params[name].default == getattr(library, name), name
