"""Latency of the v2 endpoint with and without per-request attributions.

    uv run python -m bench.explain [--requests 1000] [--rows 20000]

Two models, each saved as the training pipeline saves one (MLflow sklearn flavour, signature,
input example) and served by `mlops serve` on loopback with MLOPS_SERVE_EXPLAIN=true:
- churn: the training pipeline's own model (`build_model`: ordinal encoding + HistGradient-
  Boosting with categorical splits) on `churn.generate` data, 47 input columns;
- make_classification: a HistGradientBoostingClassifier (defaults, 100 iterations) on sklearn's
  make_classification (20 numeric columns), a model nothing in this project was tuned for.
One client sends single-row v2 requests over a kept-alive connection, alternating a plain
request and the same row with `"parameters": {"explain": true}`, so both see the same machine
load; client-side latency, p50/p99. Also the in-process cost of one row's attributions.
Writes bench/results/explain.json and explain.md. Not a test; runs on demand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def churn_model(rows: int, seed: int) -> tuple[Any, Any]:
    from mlops_platform.pipelines.components.train_model.logic import build_model
    from mlops_platform.pipelines.data import churn

    df = churn.generate(rows, seed=seed)
    x, y = df[churn.FEATURE_NAMES], df[churn.LABEL]
    model = build_model({"learning_rate": 0.1, "max_leaf_nodes": 31}, seed).fit(x, y)
    return model, x


def synthetic_model(rows: int, seed: int) -> tuple[Any, Any]:
    import pandas as pd
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = make_classification(rows, n_features=20, n_informative=8, random_state=seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    return HistGradientBoostingClassifier(random_state=seed).fit(frame, y), frame


def save(model: Any, x: Any, path: Path) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(x, model.predict_proba(x.head(100))[:, 1]),
        input_example=x.head(3),
        serialization_format="cloudpickle",
        pip_requirements=["scikit-learn==1.9.1"],
    )


def v2_body(row: Any, explain: bool) -> bytes:
    split = json.loads(row.to_json(orient="split", index=False, double_precision=15))
    inputs = []
    for i, name in enumerate(split["columns"]):
        value = split["data"][0][i]
        kind = row.dtypes.iloc[i].kind
        datatype = "FP64" if kind == "f" else "INT64" if kind in "iu" else "BYTES"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    body: dict[str, Any] = {"inputs": inputs}
    if explain:
        body["parameters"] = {"explain": True}
    return json.dumps(body).encode()


def serve(model_path: Path, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "MLOPS_SERVE_EXPLAIN": "true",
        "MLOPS_SERVE_PREDICTION_SINK": "none",
        "PYTHONPATH": str(ROOT),
    }
    log = open(workdir / f"server-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops_platform.cli",
            "serve",
            "--model-uri",
            str(model_path),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}; see {log.name}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v2/health/ready")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("server not ready after 300 s")


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def measure(name: str, model: Any, x: Any, requests: int, workdir: Path) -> dict[str, Any]:
    from mlops_platform.model_server.explain import TreeAttributor

    path = workdir / name
    save(model, x, path)
    # In process: what one row's attributions cost, split into building the frame +
    # preprocessing and TreeSHAP itself. Rows are built as the server builds them (a dict of
    # one-element arrays, strings as objects). shap (and numba) is imported first: its import is
    # a one-off cost of the first load, timed apart.
    import pandas as pd

    started = time.perf_counter()
    import shap  # noqa: F401

    import_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    attributor = TreeAttributor(model)
    build_ms = (time.perf_counter() - started) * 1000
    rows = [x.iloc[[i]] for i in range(min(len(x), 500))]
    arrays = [
        {
            c: np.asarray(
                row[c].to_numpy(), dtype=object if row[c].dtype.kind not in "fiub" else None
            )
            for c in row.columns
        }
        for row in rows
    ]
    preprocess_ms, treeshap_ms = [], []
    for i in range(min(requests, 500) + 20):
        started = time.perf_counter()
        model_input = attributor._model_input(pd.DataFrame(arrays[i % len(arrays)], copy=False))
        middle = time.perf_counter()
        attributor.explainer.shap_values(model_input, check_additivity=False)
        done = time.perf_counter()
        if i >= 20:  # the first calls warm caches
            preprocess_ms.append((middle - started) * 1000)
            treeshap_ms.append((done - middle) * 1000)

    proc, port = serve(path, workdir)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        plain_bodies = [v2_body(r, False) for r in rows]
        explain_bodies = [v2_body(r, True) for r in rows]
        url = f"/v2/models/{name}/infer"
        headers = {"Content-Type": "application/json"}

        def call(body: bytes) -> tuple[float, Any]:
            started = time.perf_counter()
            conn.request("POST", url, body, headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {payload[:300]!r}")
            return elapsed, payload

        for i in range(50):  # warm-up, both kinds
            call(plain_bodies[i % len(rows)])
            call(explain_bodies[i % len(rows)])
        _, sample = call(explain_bodies[0])
        outputs = [o["name"] for o in json.loads(sample)["outputs"]]
        assert outputs == ["predictions", "scores", "attributions"], outputs
        plain, explained = [], []
        for i in range(requests):
            plain.append(call(plain_bodies[i % len(rows)])[0])
            explained.append(call(explain_bodies[i % len(rows)])[0])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "model": name,
        "input_columns": x.shape[1],
        "trees": int(getattr(model[-1] if hasattr(model, "steps") else model, "n_iter_", 0)),
        "shap_import_ms": round(import_ms, 1),
        "explainer_build_ms": round(build_ms, 1),
        "in_process_frame_and_preprocessing": percentiles(preprocess_ms),
        "in_process_treeshap": percentiles(treeshap_ms),
        "without_attributions": percentiles(plain),
        "with_attributions": percentiles(explained),
        "requests_each": requests,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Per-request attributions: v2 endpoint latency",
        "",
        f"Measured {result['date']} on {result['machine']} with `{result['command']}`.",
        "",
        f"Load before: `{result['uptime_before']}`  ",
        f"Load after: `{result['uptime_after']}`",
        "",
        "The machine may be shared with other work (load above): absolute figures are then "
        "inflated and noisy; plain and explained requests alternate, so their difference is "
        "the fairer number. One client, single-row requests, kept-alive connection, "
        "client-side time. "
        "The plain churn requests take the server's compiled fast path; the explained ones also "
        "build a one-row DataFrame and run the sklearn preprocessing: the in-process columns "
        "split one row's attributions into that part and TreeSHAP itself.",
        "",
        "| model | columns | trees | plain p50 | plain p99 | explain p50 | explain p99 | "
        "added p50 | in process: frame + preprocessing p50 | in process: TreeSHAP p50 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        p, e = m["without_attributions"], m["with_attributions"]
        f, t = m["in_process_frame_and_preprocessing"], m["in_process_treeshap"]
        lines.append(
            f"| {m['model']} | {m['input_columns']} | {m['trees']} | {p['p50_ms']:.2f} ms | "
            f"{p['p99_ms']:.2f} ms | {e['p50_ms']:.2f} ms | {e['p99_ms']:.2f} ms | "
            f"+{e['p50_ms'] - p['p50_ms']:.2f} ms | {f['p50_ms']:.2f} ms | {t['p50_ms']:.2f} ms |"
        )
    lines += [
        "",
        "Explainer build time at model load: "
        + ", ".join(f"{m['model']} {m['explainer_build_ms']:.0f} ms" for m in result["models"])
        + f" (after importing shap: {result['models'][0]['shap_import_ms']:.0f} ms, once per "
        "process, only when MLOPS_SERVE_EXPLAIN is on).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests of each kind")
    parser.add_argument("--rows", type=int, default=20000, help="training rows")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    before = uptime()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        models = []
        for name, make in (("churn", churn_model), ("make_classification", synthetic_model)):
            model, x = make(args.rows, args.seed)
            models.append(measure(name, model, x, args.requests, workdir))
            print(json.dumps(models[-1]), flush=True)
    result = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "command": "uv run --locked python -m bench.explain "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "uptime_before": before,
        "uptime_after": uptime(),
        "models": models,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / "explain.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
