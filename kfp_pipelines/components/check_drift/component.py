"""`check_drift`: per-feature PSI and KS / chi² of a recent window against the reference window."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Output

from kfp_pipelines.components.image import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def check_drift(
    reference: Input[Dataset],
    current: Input[Dataset],
    report: Output[Markdown],
    drift_scores: Output[Metrics],
    details: Output[Artifact],
    psi_threshold: float = 0.2,
    pvalue_threshold: float = 0.01,
    min_drifted_features: int = 1,
    season_days: int = 7,
) -> bool:
    """Compare every feature of `current` with `reference` (the champion's training window).

    A feature drifts when its PSI reaches `psi_threshold` AND its KS (numeric) / chi²
    (categorical) test rejects at `pvalue_threshold`: the PSI is an effect size, so huge windows,
    where every p-value is tiny, do not alarm on trivial shifts. When the reference spans a year,
    it is narrowed to the same season (±`season_days` days of year; negative disables), so the
    yearly cycle is not read as drift. Returns whether at least `min_drifted_features` drifted.
    """
    import json

    from kfp_pipelines.components.check_drift.logic import report_markdown
    from kfp_pipelines.components.common import read_dataset
    from kfp_pipelines.lib.drift import detect_drift

    result = detect_drift(
        read_dataset(reference.path),
        read_dataset(current.path),
        psi_threshold=psi_threshold,
        pvalue_threshold=pvalue_threshold,
        min_drifted_features=min_drifted_features,
        season_days=season_days if season_days >= 0 else None,
    )
    summary = result.to_dict()
    with open(details.path, "w") as handle:
        json.dump(summary, handle, indent=1)
    with open(report.path, "w") as handle:
        handle.write(report_markdown(summary, reference.uri, current.uri))
    for name, feature in summary["features"].items():
        drift_scores.log_metric(f"psi_{name}", round(feature["psi"], 5))
    report.metadata.update({"drifted": result.drifted, "drifted_features": result.drifted_features})
    verdict = "FOUND" if result.drifted else "not found"
    print(f"drift {verdict}; drifted features: {result.drifted_features}", flush=True)
    return result.drifted
