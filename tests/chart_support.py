"""Read the packaged upstream charts (`MLOPS_CHARTS_DIR`) to check the values we set."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import yaml

from mlops_platform.components.versions import Chart


def chart_defaults(charts_dir: Path, chart: Chart) -> dict[str, Any]:
    """The chart's own `values.yaml` at the pinned version."""
    archive = charts_dir / f"{chart.chart}-{chart.version}.tgz"
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"{chart.chart}/values.yaml")
        assert member is not None, f"{archive} has no values.yaml"
        return yaml.safe_load(member.read())


def unknown_keys(
    values: Any, defaults: Any, verbatim: frozenset[str] = frozenset(), path: str = ""
) -> list[str]:
    """Keys of `values` the chart does not have. Below an empty map, a list or a scalar in the
    chart's defaults, and below a `verbatim` path (a map the chart renders with `toYaml`, e.g. a
    securityContext), the keys are Kubernetes' or the user's own, so nothing is checked."""
    if path.rstrip(".") in verbatim:
        return []
    if not isinstance(values, dict) or not isinstance(defaults, dict) or not defaults:
        return []
    found = []
    for key, value in values.items():
        if key not in defaults:
            found.append(f"{path}{key}")
        else:
            found += unknown_keys(value, defaults[key], verbatim, f"{path}{key}.")
    return found
