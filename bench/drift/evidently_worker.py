"""Evidently side of the drift benchmark; runs inside the throwaway Evidently venv.

Evidently 0.7.23 does not import with the project's pandas 3 (it imports a pandas-internal
helper removed in pandas 3), so `run.py` builds a separate venv with pandas 2 and hands this
script the very same windows as Parquet plus the reference rows of each window (.npz).
Usage (from run.py): <venv>/bin/python evidently_worker.py MANIFEST.json OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def _drifted(metric: dict) -> bool:
    """Evidently's per-column rule: p-value methods drift below, distances at/above threshold."""
    config = metric["config"]
    if "p_value" in config["method"]:
        return metric["value"] < config["threshold"]
    return metric["value"] >= config["threshold"]


def main(manifest_path: str, out_path: str) -> int:
    manifest = json.loads(Path(manifest_path).read_text())
    numeric, categorical = manifest["numeric"], manifest["categorical"]
    columns = numeric + categorical
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    results = []
    for scenario in manifest["scenarios"]:
        data = pd.read_parquet(scenario["data"], columns=columns)
        reference_rows = np.load(scenario["reference_rows"])
        for window in scenario["windows"]:
            current = data.iloc[window["current"][0] : window["current"][1]]
            reference = data.iloc[reference_rows[window["key"]]]
            started = time.perf_counter()
            report = Report([DataDriftPreset()])
            snapshot = report.run(
                current_data=Dataset.from_pandas(current, data_definition=definition),
                reference_data=Dataset.from_pandas(reference, data_definition=definition),
            )
            elapsed = time.perf_counter() - started
            metrics = snapshot.dict()["metrics"]
            counts = next(
                metric["value"]
                for metric in metrics
                if metric["metric_name"].startswith("DriftedColumnsCount")
            )
            results.append(
                {
                    "key": window["key"],
                    "drifted_columns": int(counts["count"]),
                    "share": float(counts["share"]),
                    "columns": [
                        metric["config"]["column"]
                        for metric in metrics
                        if metric["config"].get("type") == "evidently:metric_v2:ValueDrift"
                        and _drifted(metric)
                    ],
                    "seconds": elapsed,
                }
            )
        print(f"evidently: {scenario['name']} done", flush=True)
    Path(out_path).write_text(json.dumps({"windows": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
