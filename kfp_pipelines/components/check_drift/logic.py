"""Drift report rendering; the statistics (PSI, KS / chi², seasonal reference) live in
`kfp_pipelines.lib.drift` and the component only wraps them."""

from __future__ import annotations

from typing import Any


def report_markdown(summary: dict[str, Any], reference: str, current: str) -> str:
    """Per-feature drift table from `DriftReport.to_dict()`, drifted features first, then by PSI."""
    features = summary["features"]
    ordered = sorted(features.items(), key=lambda item: (not item[1]["drifted"], -item[1]["psi"]))
    drifted = [name for name, values in ordered if values["drifted"]]
    config = summary["config"]
    season = (
        f"same season only (±{config['season_days']} days of year)"
        if summary["seasonal_reference"]
        else "whole reference window"
    )
    lines = [
        f"# Drift {'FOUND' if summary['drifted'] else 'not found'}",
        "",
        f"- reference: `{reference}` ({summary['reference_rows']} rows, {season})",
        f"- current: `{current}` ({summary['current_rows']} rows)",
        f"- rule: PSI >= {config['psi_threshold']} and p-value < {config['pvalue_threshold']}; "
        f"window drifts with >= {config['min_drifted_features']} drifted feature(s)",
        f"- drifted features ({len(drifted)}): {', '.join(drifted) or 'none'}",
        "",
        "| feature | test | psi | statistic | p-value | drifted |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in ordered:
        lines.append(
            f"| {name} | {values['test']} | {values['psi']:.4f} | {values['statistic']:.4g} | "
            f"{values['pvalue']:.3g} | {'yes' if values['drifted'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"
