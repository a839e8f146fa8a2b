"""`check_drift`: per-feature drift tests of a recent window against the reference window."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from mlops_platform.pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def check_drift(
    reference: Input[Dataset],
    current: Input[Dataset],
    report: Output[Markdown],
    drift_scores: Output[Metrics],
    details: Output[Artifact],
    psi_threshold: float = 0.0,
    pvalue_threshold: float = 0.01,
    min_drifted_features: int = 1,
    season_days: int = 7,
    correction: str = "holm",
    min_ks: float = 0.03,
    min_scale_ratio: float = 1.1,
    min_tvd: float = 0.03,
    min_missing_change: float = 0.01,
    season_fallback: str = "inconclusive",
    recent_share: float = 0.25,
    drift_config: str = "",
) -> bool:
    """Compare every feature of `current` with `reference` (the champion's training window).

    Per feature, by kind: KS and Brown-Forsythe (numeric, integer), chi² on the frequencies
    (categorical, low-cardinality integer) and a two-proportion test of the missing rate; all
    p-values are corrected together (`correction`: holm or bh) and a test counts when its
    adjusted p-value is under `pvalue_threshold` AND its effect reaches its floor (`min_ks`,
    `min_scale_ratio`, `min_tvd`, `min_missing_change`; `psi_threshold` > 0 adds a PSI floor).
    A reference spanning a year is narrowed to the same season (±`season_days` days of year;
    negative disables); when that leaves too few rows the verdict is inconclusive (False) unless
    `season_fallback` is "whole". The latest `recent_share` of the window is tested too
    (gradual drift). Returns whether at least `min_drifted_features` drifted.

    `drift_config`, when not empty, is the platform's whole detector config as JSON
    (`DriftSettings.pipeline_arguments()`, the same the drift monitor applies) and replaces the
    separate thresholds above.
    """
    import json

    from mlops_platform.pipelines.components.check_drift.logic import (
        feature_metrics,
        report_markdown,
    )
    from mlops_platform.pipelines.components.common import read_dataset
    from mlops_platform.pipelines.lib.drift import detect_drift, detect_drift_with, parse_config

    platform_config = parse_config(drift_config)
    if platform_config is not None:
        result = detect_drift_with(
            read_dataset(reference.path), read_dataset(current.path), platform_config
        )
    else:
        result = detect_drift(
            read_dataset(reference.path),
            read_dataset(current.path),
            psi_threshold=psi_threshold,
            pvalue_threshold=pvalue_threshold,
            min_drifted_features=min_drifted_features,
            season_days=season_days if season_days >= 0 else None,
            correction=correction,
            min_ks=min_ks,
            min_scale_ratio=min_scale_ratio,
            min_tvd=min_tvd,
            min_missing_change=min_missing_change,
            season_fallback=season_fallback,
            recent_share=recent_share,
        )
    summary = result.to_dict()
    with open(details.path, "w") as handle:
        json.dump(summary, handle, indent=1)
    with open(report.path, "w") as handle:
        handle.write(report_markdown(summary, reference.uri, current.uri))
    for name, value in feature_metrics(summary).items():
        drift_scores.log_metric(name, value)
    report.metadata.update(
        {
            "drifted": result.drifted,
            "verdict": result.verdict,
            "season": result.season.status,
            "drifted_features": result.drifted_features,
        }
    )
    print(f"drift {result.verdict}: {result.message}", flush=True)
    print(f"drifted features: {result.drifted_features}", flush=True)
    return result.drifted
