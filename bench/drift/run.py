"""Benchmark: drift detection on generated churn scenarios, against Evidently's DataDriftPreset.

For each scenario, three years of churn data are generated; the first year is the reference
(training data) and the next two years are cut into consecutive windows (14 days by default).
Drift, when there is any, starts on day 730 (start of year three), so every scenario also has a
year of clean windows. Each window is checked by `kfp_pipelines.lib.drift.detect_drift` (default
thresholds) and by Evidently 0.7.23 `DataDriftPreset` on the same rows: the same current window
and the same same-season reference rows our detector picks, so both face the same data.

Evidently does not import with pandas 3, so it runs from a throwaway venv (bench/.work/) that this
script creates with uv; windows are exchanged as Parquet. Figures: detection rate (windows fully
in drift flagged), false-alarm rate (clean windows flagged), detection delay (days from drift start
to the end of the first flagged window), seconds per window. It also times generating and writing
one million rows. Writes bench/results/drift.json and bench/results/drift.md.

Usage: uv run python bench/drift/run.py [--rows 500000] [--window-days 14] [--seeds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kfp_pipelines.data import churn  # noqa: E402
from kfp_pipelines.data.churn import DriftScenario  # noqa: E402
from kfp_pipelines.lib import drift  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / ".work" / "drift"
EVIDENTLY_VENV = ROOT / "bench" / ".work" / "evidently-venv"
# Evidently and the pandas it still imports; pandas 3 breaks evidently 0.7.23 at import time.
EVIDENTLY_REQUIREMENTS = ("evidently==0.7.23", "pandas==2.3.3", "pyarrow==25.0.1")
REFERENCE_DAYS = 365
DRIFT_START_DAY = 730
TARGET_DETECTION = 0.95
TARGET_FALSE_ALARMS = 0.05
GENERATOR_TARGET_SECONDS = 30.0

# name -> generator keyword arguments; magnitudes are in feature standard deviations.
SCENARIOS: dict[str, dict] = {
    "no_drift": {"seasonality": 0.0, "trend": 0.0},
    "seasonal_only": {},
    "sudden": {"drift": DriftScenario(kind="sudden", magnitude=0.5, start_day=DRIFT_START_DAY)},
    "gradual": {
        "drift": DriftScenario(
            kind="gradual", magnitude=0.5, start_day=DRIFT_START_DAY, ramp_days=120
        )
    },
    "sudden_small": {
        "drift": DriftScenario(kind="sudden", magnitude=0.25, start_day=DRIFT_START_DAY)
    },
    # Small shifts of near-normal features: PSI stays under 0.2, so our default thresholds are
    # expected to let most of it pass (the sensitivity limit, not part of the targets).
    "subtle": {
        "drift": DriftScenario(
            kind="sudden",
            magnitude=0.25,
            start_day=DRIFT_START_DAY,
            features=("age", "review_score_avg", "avg_session_minutes", "email_open_rate"),
        )
    },
    "seasonal_drift": {
        "drift": DriftScenario(kind="seasonal", magnitude=0.5, start_day=DRIFT_START_DAY)
    },
}
# Scenarios whose full-drift windows count for the >= 95% detection target ("real drift").
TARGET_DRIFT_SCENARIOS = ("sudden", "gradual")


def window_label(scenario: DriftScenario | None, first_day: int, last_day: int) -> str:
    """clean | partial | full: how much of the scenario's drift a window holds."""
    if scenario is None or scenario.kind == "none" or last_day < scenario.start_day:
        return "clean"
    days = np.arange(first_day, last_day + 1)
    dates = np.datetime64("2023-01-01") + days.astype("timedelta64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64).astype(np.float64)
    intensity = np.abs(scenario.intensity(days, doy))
    if scenario.kind == "seasonal":
        # the seasonal drift crosses zero twice a year: only the windows near its peaks count
        return "full" if intensity.mean() >= 0.5 * scenario.magnitude else "partial"
    return "full" if intensity.min() >= scenario.magnitude else "partial"


def ensure_evidently_venv() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    marker = EVIDENTLY_VENV / "requirements.txt"
    wanted = "\n".join(EVIDENTLY_REQUIREMENTS)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("uv is needed to build the Evidently venv (bench/.work/evidently-venv)")
    subprocess.run(
        [uv, "venv", "-q", "--clear", str(EVIDENTLY_VENV), "--python", "3.11"], check=True
    )
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(python), *EVIDENTLY_REQUIREMENTS],
        check=True,
    )
    marker.write_text(wanted)
    return python


def time_generator(rows: int) -> dict:
    started = time.perf_counter()
    frame = churn.generate(rows, seed=0)
    generated = time.perf_counter() - started
    target = WORK / "generator.parquet"
    started = time.perf_counter()
    churn.write_parquet(frame, target)
    written = time.perf_counter() - started
    result = {
        "rows": rows,
        "generate_seconds": round(generated, 2),
        "write_parquet_seconds": round(written, 2),
        "total_seconds": round(generated + written, 2),
        "parquet_mb": round(target.stat().st_size / 1e6, 1),
        "positive_rate": round(float(frame[churn.LABEL].mean()), 4),
        "target_seconds": GENERATOR_TARGET_SECONDS,
    }
    result["met"] = result["total_seconds"] < GENERATOR_TARGET_SECONDS
    target.unlink()
    return result


def summarise(windows: list[dict], flag: str, start_day: int | None) -> dict:
    clean = [w for w in windows if w["label"] == "clean"]
    full = [w for w in windows if w["label"] == "full"]
    partial = [w for w in windows if w["label"] == "partial"]

    def rate(group: list[dict]) -> float | None:
        return round(sum(w[flag] for w in group) / len(group), 4) if group else None

    delays = []
    if start_day is not None:
        for seed in sorted({w["seed"] for w in windows}):
            flagged = [
                w["last_day"] + 1 - start_day
                for w in windows
                if w["seed"] == seed and w[flag] and w["last_day"] >= start_day
            ]
            delays.append(min(flagged) if flagged else None)
    return {
        "clean_windows": len(clean),
        "false_alarm_rate": rate(clean),
        "full_drift_windows": len(full),
        "detection_rate": rate(full),
        "partial_drift_windows": len(partial),
        "partial_detection_rate": rate(partial),
        "detection_delay_days": delays or None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000, help="rows per scenario and seed")
    parser.add_argument("--window-days", type=int, default=14)
    parser.add_argument("--seeds", type=int, default=1, help="datasets per scenario")
    parser.add_argument("--generator-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--render", action="store_true", help="only rewrite drift.md from an existing drift.json"
    )
    args = parser.parse_args()
    if args.render:
        result = json.loads((args.out / "drift.json").read_text())
        detectors = list(result["targets"]["met"].keys() - {"faster_than_evidently", "speedup"})
        detectors.sort(key=["ours", "evidently_preset", "evidently_any_column"].index)
        (args.out / "drift.md").write_text(render_markdown(result, detectors))
        return 0

    WORK.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    print("timing the generator ...", flush=True)
    generator = time_generator(args.generator_rows)
    print(json.dumps(generator), flush=True)

    manifest = {
        "numeric": churn.NUMERIC_FEATURES,
        "categorical": churn.CATEGORICAL_FEATURES,
        "scenarios": [],
    }
    windows: list[dict] = []
    for name, kwargs in SCENARIOS.items():
        scenario: DriftScenario | None = kwargs.get("drift")
        for seed in range(args.seeds):
            frame = churn.generate(args.rows, seed=1000 + seed, **kwargs)
            day = (frame[churn.TIMESTAMP] - pd.Timestamp("2023-01-01")).dt.days.to_numpy()
            reference = frame.iloc[: int(np.searchsorted(day, REFERENCE_DAYS))]
            data_path = WORK / f"{name}-{seed}.parquet"
            frame[[churn.TIMESTAMP, *churn.FEATURE_NAMES]].to_parquet(data_path, index=False)
            reference_rows: dict[str, np.ndarray] = {}
            entries = []
            for first in range(REFERENCE_DAYS, int(day.max()) + 1, args.window_days):
                last = first + args.window_days - 1
                if last > day.max():
                    break
                lo, hi = np.searchsorted(day, [first, last + 1])
                current = frame.iloc[lo:hi]
                started = time.perf_counter()
                report = drift.detect_drift(reference, current)
                seconds = time.perf_counter() - started
                mask = drift.seasonal_reference_mask(reference, current)
                key = f"{name}-{seed}-{first}"
                reference_rows[key] = (
                    np.flatnonzero(mask) if mask is not None else np.arange(len(reference))
                )
                entries.append({"key": key, "current": [int(lo), int(hi)]})
                windows.append(
                    {
                        "key": key,
                        "scenario": name,
                        "seed": seed,
                        "first_day": first,
                        "last_day": last,
                        "label": window_label(scenario, first, last),
                        "rows": int(hi - lo),
                        "reference_rows": report.reference_rows,
                        "ours": report.drifted,
                        "ours_drifted_features": report.drifted_features,
                        "ours_seconds": seconds,
                    }
                )
            rows_path = WORK / f"{name}-{seed}-reference.npz"
            np.savez(rows_path, **reference_rows)
            manifest["scenarios"].append(
                {
                    "name": f"{name}-{seed}",
                    "data": str(data_path),
                    "reference_rows": str(rows_path),
                    "windows": entries,
                }
            )
            flagged = sum(w["ours"] for w in windows if w["scenario"] == name and w["seed"] == seed)
            print(f"ours: {name} seed {seed}: {flagged} flagged of {len(entries)}", flush=True)

    evidently_note = "skipped (--skip-evidently)"
    if not args.skip_evidently:
        python = ensure_evidently_venv()
        manifest_path = WORK / "manifest.json"
        manifest_path.write_text(json.dumps(manifest))
        out_path = WORK / "evidently.json"
        worker = Path(__file__).with_name("evidently_worker.py")
        subprocess.run([str(python), str(worker), str(manifest_path), str(out_path)], check=True)
        by_key = {w["key"]: w for w in json.loads(out_path.read_text())["windows"]}
        for window in windows:
            result = by_key[window["key"]]
            window["evidently_drifted_columns"] = result["drifted_columns"]
            window["evidently_preset"] = result["share"] >= 0.5
            window["evidently_any_column"] = result["drifted_columns"] >= 1
            window["evidently_seconds"] = result["seconds"]
            window["evidently_drifted_features"] = result["columns"]
        evidently_note = (
            "evidently 0.7.23 from a throwaway venv (bench/.work/evidently-venv, pandas 2.3.3): "
            "evidently 0.7.23 resolves with our lock but fails to import with pandas 3.1.1"
        )

    detectors = ["ours"] + (
        [] if args.skip_evidently else ["evidently_preset", "evidently_any_column"]
    )
    scenarios_out: dict[str, dict] = {}
    for name, kwargs in SCENARIOS.items():
        scenario = kwargs.get("drift")
        group = [w for w in windows if w["scenario"] == name]
        entry: dict = {
            "drift": scenario.model_dump() if scenario else None,
            "generator": {k: v for k, v in kwargs.items() if k != "drift"},
            "windows": len(group),
            "rows_per_window": int(np.mean([w["rows"] for w in group])),
            "reference_rows_per_window": int(np.mean([w["reference_rows"] for w in group])),
        }
        for detector in detectors:
            entry[detector] = summarise(group, detector, scenario.start_day if scenario else None)
        for source in ("ours", "evidently"):
            key = f"{source}_drifted_features"
            counts: dict[str, int] = {}
            for window in group:
                for feature in window.get(key, []):
                    counts[feature] = counts.get(feature, 0) + 1
            entry[f"{source}_flagged_feature_windows"] = dict(
                sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            )
        scenarios_out[name] = entry

    def seconds(key: str) -> dict:
        values = [w[key] for w in windows if key in w]
        return {
            "mean": round(float(np.mean(values)), 4),
            "p95": round(float(np.percentile(values, 95)), 4),
            "total": round(float(np.sum(values)), 2),
        }

    timing = {"ours": seconds("ours_seconds")}
    if not args.skip_evidently:
        timing["evidently"] = seconds("evidently_seconds")

    def pooled(detector: str, names: tuple[str, ...], label: str) -> float | None:
        group = [w for w in windows if w["scenario"] in names and w["label"] == label]
        return round(sum(w[detector] for w in group) / len(group), 4) if group else None

    targets = {}
    for detector in detectors:
        detection = pooled(detector, TARGET_DRIFT_SCENARIOS, "full")
        false_alarms = pooled(detector, ("seasonal_only",), "clean")
        targets[detector] = {
            "detection_rate_sudden_gradual": detection,
            "false_alarm_rate_seasonal_only": false_alarms,
            "detection_met": detection is not None and detection >= TARGET_DETECTION,
            "false_alarm_met": false_alarms is not None and false_alarms <= TARGET_FALSE_ALARMS,
        }
    if "evidently" in timing:
        targets["faster_than_evidently"] = timing["ours"]["mean"] < timing["evidently"]["mean"]
        targets["speedup"] = round(timing["evidently"]["mean"] / timing["ours"]["mean"], 1)

    command = "uv run python bench/drift/run.py " + " ".join(sys.argv[1:])
    result = {
        "benchmark": "drift",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command.strip(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "note": "shared machine: other engineers ran tests at the same time",
        },
        "settings": {
            "rows_per_dataset": args.rows,
            "seeds": args.seeds,
            "window_days": args.window_days,
            "reference": f"days 0-{REFERENCE_DAYS - 1} (first year)",
            "windows": f"days {REFERENCE_DAYS}-1094, drift from day {DRIFT_START_DAY}",
            "ours": drift.DriftConfig().model_dump(),
            "evidently": evidently_note,
            "evidently_verdicts": {
                "evidently_preset": "DataDriftPreset default: share of drifted columns >= 0.5",
                "evidently_any_column": "at least one drifted column (our verdict rule)",
            },
            "same_rows": "Evidently gets the same current window and the same same-season "
            "reference rows as our detector",
        },
        "generator": generator,
        "targets": {
            "detection_rate": TARGET_DETECTION,
            "false_alarm_rate": TARGET_FALSE_ALARMS,
            "met": targets,
        },
        "timing_seconds_per_window": timing,
        "scenarios": scenarios_out,
        "windows": windows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "drift.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "drift.md").write_text(render_markdown(result, detectors))
    print(json.dumps({"targets": result["targets"], "timing": timing}, indent=2))
    return 0


# Interpretation that holds for the scenario settings above (checked against the recorded run).
NOTES = [
    "- Evidently's preset verdict (dataset drift when at least half of the columns drift) never "
    "fires here: the scenarios drift 4 to 6 of 47 features (9-13%), which is how drift usually "
    "looks.",
    "- With our verdict rule (any drifted column), Evidently's per-column defaults (normed "
    "Wasserstein >= 0.1, i.e. about a 0.1 standard-deviation mean shift; Jensen-Shannon >= 0.1) "
    "catch every drift, but also flag `ad_impressions_30d` (and at times `avg_order_value`) "
    "from late year two of the seasonal-only data on: their slow built-in trends (+2% a year) "
    "are real but harmless shifts against a first-year reference. Our PSI >= 0.2 "
    "guard ignores it (PSI 0.2 is roughly a 0.45 standard-deviation shift of a normal feature); "
    "the price is a later alarm on the slow start of gradual drift (delay above). Lower "
    "`psi_threshold` (0.1 = moderate shift) for earlier, noisier alarms.",
    "- `subtle` (0.25 standard deviation on four near-normal features; their PSI is 0.02-0.18) "
    "is under our default effect-size threshold by design: ours flags none of it, Evidently's "
    "per-column rule flags all of it. A lower `psi_threshold` (0.05 flags three of the four "
    "features) catches it, at the price of alarms on slow trends (not measured here).",
    "- Both detectors get the same same-season reference rows, so Evidently's false alarms are "
    "not seasonality. Without that narrowing our detector alarms too: a Black Friday window "
    "against the whole first year flags `promo_emails_30d` (see "
    "tests/pipelines/test_drift_detection.py).",
    "- Times are wall-clock per window on a shared 2-CPU machine under load (load average "
    "above); Evidently's include building its Dataset objects, ours include the same-season "
    "narrowing.",
]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if value <= 1 else f"{value:.2f}"
    if isinstance(value, list):
        return ", ".join("none" if v is None else str(v) for v in value)
    return str(value)


def render_markdown(result: dict, detectors: list[str]) -> str:
    gen = result["generator"]
    lines = [
        "# Drift detection benchmark",
        "",
        f"- Date: {result['date']}",
        f"- Command: `{result['command']}`",
        f"- Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs, "
        f"load average {result['machine']['load_average_before']} before, "
        f"{result['machine']['load_average_after']} after ({result['machine']['note']})",
        f"- Data: {result['settings']['rows_per_dataset']:,} rows per scenario and seed "
        f"({result['settings']['seeds']} seed(s)), reference {result['settings']['reference']}, "
        f"{result['settings']['window_days']}-day windows over "
        f"{result['settings']['windows']}",
        f"- Evidently: {result['settings']['evidently']}; {result['settings']['same_rows']}",
        "",
        "## Generator",
        "",
        f"{gen['rows']:,} rows: generate {gen['generate_seconds']} s + write Parquet "
        f"{gen['write_parquet_seconds']} s = {gen['total_seconds']} s "
        f"(target < {gen['target_seconds']:.0f} s: {'met' if gen['met'] else 'NOT met'}), "
        f"{gen['parquet_mb']} MB, positive rate {gen['positive_rate']:.1%}.",
        "",
        "## Targets",
        "",
        "| detector | detection (sudden + gradual, full drift) | false alarms (seasonal only) "
        "| detection >= 95% | false alarms <= 5% |",
        "|---|---|---|---|---|",
    ]
    for detector in detectors:
        met = result["targets"]["met"][detector]
        lines.append(
            f"| {detector} | {_fmt(met['detection_rate_sudden_gradual'])} "
            f"| {_fmt(met['false_alarm_rate_seasonal_only'])} "
            f"| {'met' if met['detection_met'] else 'NOT met'} "
            f"| {'met' if met['false_alarm_met'] else 'NOT met'} |"
        )
    timing = result["timing_seconds_per_window"]
    lines += ["", "## Time per window (seconds)", "", "| detector | mean | p95 | total |"]
    lines.append("|---|---|---|---|")
    for key, value in timing.items():
        lines.append(f"| {key} | {value['mean']} | {value['p95']} | {value['total']} |")
    if "speedup" in result["targets"]["met"]:
        lines += ["", f"Ours is {result['targets']['met']['speedup']}x faster per window."]
    lines += [
        "",
        "## Per scenario",
        "",
        "| scenario | detector | windows (clean/partial/full) | false alarms | detection (full) "
        "| detection (partial) | delay (days, per seed) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, entry in result["scenarios"].items():
        for detector in detectors:
            s = entry[detector]
            lines.append(
                f"| {name} | {detector} | {s['clean_windows']}/{s['partial_drift_windows']}/"
                f"{s['full_drift_windows']} | {_fmt(s['false_alarm_rate'])} "
                f"| {_fmt(s['detection_rate'])} | {_fmt(s['partial_detection_rate'])} "
                f"| {_fmt(s['detection_delay_days'])} |"
            )
    lines += ["", "## Features flagged (number of windows), clean windows included", ""]
    for name, entry in result["scenarios"].items():
        for source in ("ours", "evidently"):
            flagged = entry.get(f"{source}_flagged_feature_windows") or {}
            if source == "evidently" and "evidently" not in result["timing_seconds_per_window"]:
                continue
            top = ", ".join(f"{k} {v}" for k, v in list(flagged.items())[:8]) or "none"
            lines.append(f"- {name}, {source}: {top}")
    if "evidently" in result["timing_seconds_per_window"]:
        lines += ["", "## Reading the figures", "", *NOTES]
    lines += [
        "",
        "Definitions: a window is clean before the drift starts (and everywhere in no_drift and "
        "seasonal_only), full when the whole window carries the full magnitude (seasonal_drift: "
        "mean |intensity| >= half the magnitude), partial otherwise (the window across the "
        "start, gradual ramp, seasonal zero crossings). Delay = days from the drift start to "
        "the end of the first flagged window. Scenario settings are in drift.json.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
