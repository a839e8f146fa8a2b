"""Registration: an MLflow model version with signature, metrics, lineage tags and a model card."""

from __future__ import annotations

import json
from typing import Any

from mlops_platform.pipelines.components.common import (
    CHALLENGER_ALIAS,
    EXPERIMENT_NAME,
    REGISTERED_MODEL_NAME,
)

# MLflow saves sklearn models with skops (no arbitrary code on load) and refuses types it does
# not trust by default. These are the ones a HistGradientBoosting Pipeline needs, reviewed here
# rather than trusting whatever the file contains; an upgrade that needs more fails loudly.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def lineage_tags(
    dataset_sha256: str, code_version: str, params: dict[str, Any], pipeline: str
) -> dict[str, str]:
    """Tags set on the model version: enough to rebuild it from the same data and code."""
    return {
        "dataset_sha256": dataset_sha256,
        "code_version": code_version,
        "params": json.dumps(params, sort_keys=True, default=str),
        "pipeline": pipeline,
    }


def flat_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """MLflow run metrics: golden overall, champion overall and every segment metric."""
    out: dict[str, float] = {}
    candidate = evaluation["candidate"]
    for name in ("roc_auc", "pr_auc", "f1"):
        if candidate["overall"][name] is not None:
            out[f"golden_{name}"] = candidate["overall"][name]
        champion = evaluation.get("champion")
        if champion and champion["overall"][name] is not None:
            out[f"champion_golden_{name}"] = champion["overall"][name]
    for feature, values in candidate["segments"].items():
        for value, scores in values.items():
            for name in ("roc_auc", "pr_auc", "f1"):
                if scores[name] is not None:
                    out[f"segment/{feature}/{value}/{name}"] = scores[name]
    return out


GOLDEN_ROWS = 2000


def golden_sample(golden: Any, rows: int = GOLDEN_ROWS, seed: int = 0) -> Any:
    """At most `rows` rows of the golden set, stratified by label (both classes kept)."""
    from mlops_platform.pipelines.data import churn

    if len(golden) <= rows:
        return golden.reset_index(drop=True)
    fraction = rows / len(golden)
    return (
        golden.groupby(churn.LABEL, group_keys=False)
        .sample(frac=fraction, random_state=seed)
        .reset_index(drop=True)
    )


def _log_golden(golden_path: str) -> None:
    import tempfile
    from pathlib import Path

    import mlflow

    from mlops_platform.pipelines.components.common import read_dataset
    from mlops_platform.pipelines.data import churn

    sample = golden_sample(read_dataset(golden_path))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "golden.parquet"
        sample[[*churn.FEATURE_NAMES, churn.LABEL]].to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="golden")


def _log_reference(reference_path: str) -> None:
    import tempfile
    from pathlib import Path

    import mlflow

    from mlops_platform.pipelines.components.champion_reference.logic import (
        REFERENCE_ARTIFACT,
        reference_sample,
    )
    from mlops_platform.pipelines.components.common import read_dataset

    folder_name, file_name = REFERENCE_ARTIFACT.rsplit("/", 1)
    sample = reference_sample(read_dataset(reference_path))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / file_name
        sample.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), artifact_path=folder_name)


# Where the attributions go in the registering run's artifacts (the card links the plot).
EXPLANATION_JSON = "explanation/attributions.json"
EXPLANATION_PLOT = "explanation/attributions.png"


def attribution_metrics(explanation: dict[str, Any]) -> dict[str, float]:
    """One MLflow metric per input feature: `attribution/<feature>` (the global importance)."""
    return {f"attribution/{row['feature']}": row["importance"] for row in explanation["features"]}


def _log_explanation(explanation: dict[str, Any]) -> None:
    import tempfile
    from pathlib import Path

    import mlflow

    from mlops_platform.pipelines.lib.explain import bar_plot

    mlflow.log_dict(explanation, EXPLANATION_JSON)
    mlflow.log_metrics(attribution_metrics(explanation))
    mlflow.set_tag("attribution_method", explanation["method"])
    folder_name, file_name = EXPLANATION_PLOT.rsplit("/", 1)
    with tempfile.TemporaryDirectory() as folder:
        path = bar_plot(explanation, str(Path(folder) / file_name))
        mlflow.log_artifact(path, artifact_path=folder_name)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def model_card(
    *,
    version: str | None,
    evaluation: dict[str, Any],
    training: dict[str, Any],
    tags: dict[str, str],
    alias: str | None,
    plot_link: str = EXPLANATION_PLOT,
) -> str:
    """The model card (Markdown): what the model is, how good, on what data, from which code,
    and which features drive it (when the evaluation carries attributions; `plot_link` is
    where the card's reader finds the bar plot)."""
    candidate = evaluation["candidate"]
    champion = evaluation.get("champion")
    lines = [
        f"# Model card: {REGISTERED_MODEL_NAME} version {version or '(unregistered)'}",
        "",
        "Predicts the probability that a customer churns within 90 days from 47 raw features "
        "(sklearn Pipeline: ordinal encoding + HistGradientBoostingClassifier, "
        "class_weight=balanced). Input: a DataFrame with the feature columns; "
        "output: churn probability.",
        "",
        f"- alias: {alias or 'none (not promoted)'}",
        f"- decision: {evaluation['reason']}",
        "",
        "## Golden-set metrics",
        "",
        "| metric | candidate | champion |",
        "|---|---|---|",
    ]
    for name in ("roc_auc", "pr_auc", "f1"):
        old = champion["overall"][name] if champion else None
        lines.append(f"| {name} | {_fmt(candidate['overall'][name])} | {_fmt(old)} |")
    lines += [
        "",
        f"Golden set: {candidate['overall']['rows']} rows, "
        f"positive rate {_fmt(candidate['overall']['positive_rate'])}.",
        "",
        "## Segments",
        "",
        "| segment | rows | positive rate | roc_auc | pr_auc | f1 |",
        "|---|---|---|---|---|---|",
    ]
    for feature, values in candidate["segments"].items():
        for value, s in values.items():
            lines.append(
                f"| {feature}={value} | {s['rows']} | {_fmt(s['positive_rate'])} | "
                f"{_fmt(s['roc_auc'])} | {_fmt(s['pr_auc'])} | {_fmt(s['f1'])} |"
            )
    lines += [
        "",
    ]
    if evaluation.get("explanation"):
        from mlops_platform.pipelines.lib.explain import card_section

        lines += card_section(evaluation["explanation"], plot_link)
    lines += [
        "## Training",
        "",
        f"- rows: {training['train_rows']} (search on {training['search_rows']})",
        f"- parameters: `{json.dumps(training['params'], sort_keys=True)}`",
        f"- boosting iterations: {training['n_iter']}",
        "",
        "## Lineage",
        "",
    ]
    lines += [f"- {key}: `{value}`" for key, value in tags.items() if key != "params"]
    return "\n".join(lines) + "\n"


def register(
    *,
    tracking_uri: str,
    model_dir: str,
    evaluation: dict[str, Any],
    dataset_sha256: str,
    pipeline: str,
    golden_path: str | None = None,
    reference_path: str | None = None,
) -> tuple[str, str]:
    """Log and register the model; alias `challenger` only when evaluation allowed promotion.

    With `golden_path`, a label-stratified sample of the golden set (`GOLDEN_ROWS` at most) is
    logged with the run as `golden/golden.parquet`: the release gate on the cluster scores it
    through the canary and the champion (mlops_platform/pipelines/loop/release.py).

    Returns (version, model card). A rejected candidate is still registered (tagged
    `promotion=rejected`), so the registry keeps the record of why it was not promoted.
    """
    import mlflow
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature

    from mlops_platform.pipelines.components.common import code_version, connect_mlflow
    from mlops_platform.pipelines.components.train_model.logic import SAMPLE_FILE, load

    client = connect_mlflow(tracking_uri)
    model, training = load(model_dir)
    sample = pd.read_parquet(f"{model_dir}/{SAMPLE_FILE}")
    proba = model.predict_proba(sample)[:, 1]
    tags = lineage_tags(dataset_sha256, code_version(), training["params"], pipeline)
    promote = bool(evaluation["promote"])
    alias = CHALLENGER_ALIAS if promote else None

    mlflow.set_experiment(EXPERIMENT_NAME)
    with mlflow.start_run(run_name=f"{pipeline}-{dataset_sha256[:12]}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params({k: str(v) for k, v in training["params"].items()})
        mlflow.log_metrics(flat_metrics(evaluation))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(sample, proba),
            input_example=sample.head(5),
            metadata={"reference_profile": training["reference_profile"]},
            registered_model_name=REGISTERED_MODEL_NAME,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
        version = str(info.registered_model_version)
        if evaluation.get("explanation"):
            _log_explanation(evaluation["explanation"])
        card = model_card(
            version=version,
            evaluation=evaluation,
            training=training,
            tags=tags,
            alias=alias,
            plot_link=f"{run.info.artifact_uri}/{EXPLANATION_PLOT}",
        )
        mlflow.log_text(card, "model_card.md")
        mlflow.log_dict(evaluation, "evaluation.json")
        if golden_path is not None:
            _log_golden(golden_path)
        if reference_path is not None:
            _log_reference(reference_path)
        run_id = run.info.run_id
    for key, value in {**tags, "training_run_id": run_id}.items():
        client.set_model_version_tag(REGISTERED_MODEL_NAME, version, key, value)
    client.set_model_version_tag(
        REGISTERED_MODEL_NAME, version, "promotion", "challenger" if promote else "rejected"
    )
    client.set_model_version_tag(
        REGISTERED_MODEL_NAME, version, "promotion_reason", evaluation["reason"]
    )
    if promote:
        client.set_registered_model_alias(REGISTERED_MODEL_NAME, CHALLENGER_ALIAS, version)
    return version, card
