"""A scheduled drift check decides as the drift alert does: the platform hands every schedule of a
drift pipeline the detector settings of `loop.drift_monitor.settings` (`drift_config`)."""

import json
from pathlib import Path

import pytest
import yaml

from mlops_platform import plan
from mlops_platform.pipelines.lib.drift import DriftConfig

STACK = "prod"  # its nightly schedule runs windows_drift


def _recurring_runs(stack_file: Path) -> dict:
    built = plan.build_plan(STACK, stack_file, ["platform", "ml"])
    specs = [
        json.loads(r.inputs["data"]["spec.json"])
        for r in built.resources
        if r.type == "kubernetes:core/v1:ConfigMap" and "spec.json" in r.inputs.get("data", {})
    ]
    assert len(specs) == 1, "one KFP sync spec per stack"
    return specs[0]["recurring_runs"]


def _drift_config(runs: dict) -> DriftConfig:
    nightly = runs["nightly-drift-check"]
    return DriftConfig.model_validate_json(nightly["parameters"]["drift_config"])


def test_the_shipped_schedule_gets_the_monitors_default_detector():
    runs = _recurring_runs(plan.stack_file_path(STACK))
    assert _drift_config(runs) == DriftConfig()


@pytest.mark.parametrize("field, value", [("pvalue_threshold", 0.001), ("min_ks", 0.08)])
def test_a_custom_detector_setting_reaches_the_schedule(tmp_path, field, value):
    document = yaml.safe_load(plan.stack_file_path(STACK).read_text())
    loop = document["config"].setdefault("mlops:loop", {})
    loop.setdefault("drift_monitor", {}).setdefault("settings", {})["detector"] = {field: value}
    stack_file = tmp_path / f"Pulumi.{STACK}.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    assert getattr(_drift_config(_recurring_runs(stack_file)), field) == value
