"""Peer detectors of the drift benchmark; runs inside each peer's throwaway venv.

Usage (from run.py): <venv>/bin/python peer_worker.py PEER MANIFEST.json OUT.json, PEER one of
evidently | alibi | nannyml. Each gets the very same pairs as our detector (Parquet files) with
its library defaults; the column kinds come from the manifest (integers count as numeric).
Verdicts recorded per pair:
- evidently: `preset` = DataDriftPreset's dataset drift (share of drifted columns >= 0.5) and
  `any` = at least one drifted column (our verdict rule);
- alibi: TabularDrift (KS / chi², Bonferroni, p_val 0.05) `is_drift`; it rejects NaN, so
  missing numeric values become a -1e9 sentinel and missing categories their own category;
- nannyml: UnivariateDriftCalculator with its defaults (Jensen-Shannon, alert beyond 3 standard
  deviations of the reference chunks' values); reference and current each cut into 5 chunks
  (its thresholds need several reference chunks; one chunk alerts on everything), `any` alert of
  any column in any current chunk (NannyML has no dataset-level verdict for univariate drift).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd


def evidently_check(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list, categorical: list) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    metrics = snapshot.dict()["metrics"]
    counts = next(m["value"] for m in metrics if m["metric_name"].startswith("DriftedColumnsCount"))
    return {"preset": float(counts["share"]) >= 0.5, "any": int(counts["count"]) >= 1}


def alibi_check(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list, categorical: list) -> dict:
    from alibi_detect.cd import TabularDrift

    columns = numeric + categorical
    codes: dict[str, dict] = {}
    for name in categorical:
        values = pd.concat([ref[name], cur[name]]).astype("string").fillna("<NA>")
        codes[name] = {v: i for i, v in enumerate(sorted(values.unique()))}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(columns)), dtype=np.float64)
        for j, name in enumerate(columns):
            if name in codes:
                out[:, j] = frame[name].astype("string").fillna("<NA>").map(codes[name]).to_numpy()
            else:
                out[:, j] = frame[name].astype("float64").fillna(-1e9).to_numpy()
        return out

    categories = {len(numeric) + j: None for j in range(len(categorical))}
    detector = TabularDrift(encode(ref), p_val=0.05, categories_per_feature=categories)
    return {"any": bool(detector.predict(encode(cur))["data"]["is_drift"])}


def nannyml_check(ref: pd.DataFrame, cur: pd.DataFrame, numeric: list, categorical: list) -> dict:
    import nannyml as nml

    ref = ref[numeric + categorical].copy()
    cur = cur[numeric + categorical].copy()
    for name in categorical:
        ref[name] = ref[name].astype("string").astype(object)
        cur[name] = cur[name].astype("string").astype(object)
    calculator = nml.UnivariateDriftCalculator(
        column_names=numeric + categorical,
        treat_as_numerical=numeric,
        treat_as_categorical=categorical,
        chunk_number=5,
    )
    calculator.fit(ref)
    result = calculator.calculate(cur).filter(period="analysis").to_df()
    alerts = result.loc[:, [c for c in result.columns if c[-1] == "alert"]]
    return {"any": bool(alerts.to_numpy().astype(bool).any())}


CHECKS = {"evidently": evidently_check, "alibi": alibi_check, "nannyml": nannyml_check}


def main(peer: str, manifest_path: str, out_path: str) -> int:
    manifest = json.loads(Path(manifest_path).read_text())
    check = CHECKS[peer]
    results = {}
    for pair in manifest["pairs"]:
        ref = pd.read_parquet(pair["reference"])
        cur = pd.read_parquet(pair["current"])
        started = time.perf_counter()
        try:
            verdicts = check(ref, cur, pair["numeric"], pair["categorical"])
            error = None
        except Exception as exc:  # a peer failing on a pair is a result, recorded as such
            verdicts, error = {}, f"{type(exc).__name__}: {exc}"[:300]
            traceback.print_exc(limit=1)
        results[pair["id"]] = {
            "verdicts": verdicts,
            "seconds": time.perf_counter() - started,
            "error": error,
        }
    Path(out_path).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
