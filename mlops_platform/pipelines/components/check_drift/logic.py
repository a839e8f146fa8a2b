"""Drift report rendering; the statistics (per-kind tests, Holm/BH correction, effect floors,
seasonal reference) live in `mlops_platform.pipelines.lib.drift` and the component only wraps them."""

from __future__ import annotations

from typing import Any

CORRECTIONS = {"holm": "Holm (family-wise)", "bh": "Benjamini-Hochberg (false discovery rate)"}


def feature_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Per-feature scores for the KFP Metrics artifact: PSI, effect, adjusted p-value, verdict."""
    metrics: dict[str, float] = {}
    for name, feature in summary["features"].items():
        metrics[f"psi_{name}"] = round(feature["psi"], 5)
        metrics[f"effect_{name}"] = round(feature["effect"], 5)
        metrics[f"pvalue_{name}"] = float(f"{feature['pvalue']:.4g}")
        metrics[f"drifted_{name}"] = 1.0 if feature["drifted"] else 0.0
    return metrics


def report_markdown(summary: dict[str, Any], reference: str, current: str) -> str:
    """Per-feature drift table from `DriftReport.to_dict()`, drifted features first, then by
    adjusted p-value and PSI."""
    features = summary["features"]
    ordered = sorted(
        features.items(),
        key=lambda item: (not item[1]["drifted"], item[1]["pvalue"], -item[1]["psi"]),
    )
    drifted = [name for name, values in ordered if values["drifted"]]
    config = summary["config"]
    season = summary["season"]
    title = {"drift": "FOUND", "no_drift": "not found", "inconclusive": "INCONCLUSIVE"}
    floors = (
        f"KS D >= {config['min_ks']}, spread ratio >= {config['min_scale_ratio']}, "
        f"category shares moved >= {config['min_tvd']}, missing rate change >= "
        f"{config['min_missing_change']}"
    )
    if config["psi_threshold"] > 0:
        floors += f", PSI >= {config['psi_threshold']}"
    lines = [
        f"# Drift {title[summary['verdict']]}",
        "",
        f"- verdict: {summary['verdict']}: {summary['message']}",
        f"- reference: `{reference}` ({summary['reference_rows']} rows; season: "
        f"{season['status']})",
        f"- current: `{current}` ({summary['current_rows']} rows; recent slice: "
        f"{summary['recent_rows']} rows)",
        f"- rule: adjusted p-value < {config['pvalue_threshold']} "
        f"({CORRECTIONS[config['correction']]} over {summary['n_tests']} tests) and effect "
        f"above its floor ({floors}); window drifts with >= "
        f"{config['min_drifted_features']} drifted feature(s)",
        f"- drifted features ({len(drifted)}): {', '.join(drifted) or 'none'}",
        "",
        "| feature | kind | test | slice | effect | adj. p-value | psi | missing ref -> cur "
        "| drifted |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, values in ordered:
        lines.append(
            f"| {name} | {values['kind']} | {values['test']} | {values['slice']} "
            f"| {values['effect']:.4g} | {values['pvalue']:.3g} | {values['psi']:.4f} "
            f"| {values['missing_reference']:.2%} -> {values['missing_current']:.2%} "
            f"| {', '.join(values['drifted_tests']) if values['drifted'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"
