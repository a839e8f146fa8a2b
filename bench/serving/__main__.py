"""Serving benchmark: this model server vs. `mlflow models serve --env-manager local`.

    uv run python -m bench.serving [--duration 20] [--rows 20000]

Trains the churn model (the training pipeline's own `build_model` on `churn.generate` data),
registers it as `churn@champion` in a throw-away SQLite tracking store, starts both servers
on loopback against that registry, and drives both with the same wrk (Lua) load generator in
the same run: single-row requests at a fixed concurrency, 100-row batches, and single-row
requests at about 500/s from 25 clients with random think times (plus, for this server, the
same 25 clients in lockstep). Writes bench/results/serving.json and serving.md.
The benchmark is not a test; it runs on demand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
MODEL_NAME = "churn"
ALIAS = "champion"
TARGET_SPEEDUP = 3.0
TARGET_P99_MS = 10.0
TARGET_RATE = 500
RATE_CONNECTIONS = 25
RATE_THINK_MS = 46  # 25 clients / (46 ms + ~2 ms latency) = about 520 req/s
TARGET_THROUGHPUT = 2840  # seed document 004, Table 4, "Prediction Throughput"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train_and_register(workdir: Path, rows: int, seed: int) -> tuple[str, Any]:
    """Train the churn pipeline and register it as churn@champion; returns (tracking URI, X)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from kfp_pipelines.components.train_model.logic import build_model
    from kfp_pipelines.data import churn
    from kfp_pipelines.lib.drift import reference_profile

    df = churn.generate(rows, seed=seed)
    x = df[churn.FEATURE_NAMES]
    y = df[churn.LABEL]
    model = build_model({"learning_rate": 0.1, "max_leaf_nodes": 31}, seed).fit(x, y)
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("serving-bench")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(x, model.predict_proba(x.head(100))[:, 1]),
            input_example=x.head(5),
            metadata={"reference_profile": reference_profile(x)},
            registered_model_name=MODEL_NAME,
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn==1.9.1", "pandas==3.1.1"],
        )
    mlflow.MlflowClient().set_registered_model_alias(
        MODEL_NAME, ALIAS, str(info.registered_model_version)
    )
    return tracking_uri, x


def split_body(frame: Any) -> str:
    records = json.loads(frame.to_json(orient="split", index=False))
    return json.dumps({"dataframe_split": {"columns": records["columns"], "data": records["data"]}})


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def post(url: str, body: str) -> Any:
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


LUA = """
local bodies = {%(bodies)s}
local n = #bodies
local i = 0
local out = "%(out)s"
local pause = %(delay_ms)d
local exponential = %(exponential)s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% n + 1
  return wrk.format(nil, "/invocations", nil, bodies[i])
end
local next_thread = 1
setup = function(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end
init = function(args)
  math.randomseed(%(seed)d * 1000 + (thread_id or 0))
end
if pause > 0 and exponential then
  -- Think time drawn from an exponential distribution with mean `pause`: independent
  -- clients, so arrivals at the server are close to a Poisson process (wrk delays in ms).
  delay = function() return math.floor(-pause * math.log(1 - math.random()) + 0.5) end
elseif pause > 0 then
  delay = function() return pause end
end
done = function(summary, latency, requests)
  local e = summary.errors
  local f = io.open(out, "w")
  f:write(string.format(
    '{"requests":%%d,"duration_us":%%d,"non_2xx":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,' ..
    '"p95_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean))
  f:close()
end
"""


def run_wrk(
    port: int,
    bodies: list[str],
    *,
    connections: int,
    duration: int,
    workdir: Path,
    tag: str,
    delay_ms: int = 0,
    exponential: bool = False,
    seed: int = 7,
) -> dict[str, Any]:
    out = workdir / f"wrk-{tag}.json"
    script = workdir / f"wrk-{tag}.lua"
    quoted = ",".join("[==[" + b + "]==]" for b in bodies)
    script.write_text(
        LUA
        % {
            "bodies": quoted,
            "out": out,
            "delay_ms": delay_ms,
            "exponential": "true" if exponential else "false",
            "seed": seed,
        }
    )
    threads = min(2, connections)
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}/invocations",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    raw = json.loads(out.read_text())
    seconds = raw["duration_us"] / 1e6
    errors = sum(
        raw[k] for k in ("non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return {
        "connections": connections,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "errors": errors,
        "throughput_rps": round(raw["requests"] / seconds, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "command": " ".join(command[:-3]) + " -s <script> <url>",
    }


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[
        0
    ]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
        "load_generator": wrk_version.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    parser.add_argument("--concurrency", type=int, default=32, help="single-row connections")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="100-row connections")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rate-repeats", type=int, default=3, help="runs of the ~500 req/s scenario"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    info = machine()
    print(f"training and registering {MODEL_NAME}@{ALIAS} in {workdir} ...", flush=True)
    tracking_uri, x = train_and_register(workdir, args.rows, args.seed)

    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        # mlflow models serve runs `uvicorn` from PATH.
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLOPS_SERVE_PREDICTION_FILE": str(workdir / "predictions.jsonl"),
    }
    ours_port, mlflow_port = free_port(), free_port()
    model_uri = f"models:/{MODEL_NAME}@{ALIAS}"
    servers = {
        "model_server": (
            [str(venv_bin / "mlops"), "serve", "--model-uri", model_uri, "--port", str(ours_port)],
            ours_port,
            f"http://127.0.0.1:{ours_port}/v2/health/ready",
        ),
        "mlflow": (
            [
                str(venv_bin / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager",
                "local", "-h", "127.0.0.1", "-p", str(mlflow_port),
            ],
            mlflow_port,
            f"http://127.0.0.1:{mlflow_port}/ping",
        ),
    }  # fmt: skip
    procs: dict[str, subprocess.Popen[bytes]] = {}
    results: dict[str, Any] = {"scenarios": {}}
    try:
        for name, (command, _port, _ready_url) in servers.items():
            log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the server
            procs[name] = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        for name, (_command, _port, ready_url) in servers.items():
            wait_ready(ready_url, procs[name])
            print(f"{name} ready", flush=True)

        pool = x.sample(n=2000, random_state=args.seed)
        single = [split_body(pool.iloc[i : i + 1]) for i in range(200)]
        batches = [split_body(pool.iloc[i : i + 100]) for i in range(0, 2000, 100)]
        # Same answers from both servers, or the comparison means nothing.
        same = {
            name: post(f"http://127.0.0.1:{port}/invocations", batches[0])["predictions"]
            for name, (_c, port, _r) in servers.items()
        }
        results["predictions_identical"] = same["model_server"] == same["mlflow"]

        # wrk has no rate option. The ~500 req/s scenario is 25 clients that each pause a
        # random, exponentially distributed think time (mean RATE_THINK_MS) after every
        # response: independent clients, so arrivals are close to a Poisson stream at about
        # 520/s. The lockstep variant pauses exactly 45 ms, so all 25 clients fire within the
        # same millisecond every cycle: bursts of 25 simultaneous requests, reported for this
        # server as a worst case but not the target's arrival model.
        rate = {"connections": RATE_CONNECTIONS, "delay_ms": RATE_THINK_MS, "exponential": True}
        scenarios: list[tuple[str, list[str], dict[str, Any], tuple[str, ...]]] = [
            ("single_row", single, {"connections": args.concurrency}, tuple(servers)),
            ("batch_100", batches, {"connections": args.batch_concurrency}, tuple(servers)),
            ("single_row_500rps", single, rate, tuple(servers)),
            (
                "single_row_lockstep_bursts",
                single,
                {"connections": RATE_CONNECTIONS, "delay_ms": 45},
                ("model_server",),
            ),
        ]
        for scenario, bodies, load, names in scenarios:
            for name in names:
                port = servers[name][1]
                run_wrk(
                    port, bodies, duration=3, workdir=workdir, tag=f"warm-{scenario}-{name}", **load
                )
                result = run_wrk(
                    port,
                    bodies,
                    duration=args.duration,
                    workdir=workdir,
                    tag=f"{scenario}-{name}",
                    seed=args.seed,
                    **load,
                )
                if scenario == "batch_100":
                    result["rows_per_s"] = round(result["throughput_rps"] * 100, 1)
                results["scenarios"].setdefault(scenario, {})[name] = result
                print(f"{scenario:26s} {name:13s} {json.dumps(result)}", flush=True)
        # The p99 target is the most sensitive to other work on this shared machine, so the
        # fixed-rate run is repeated and every repetition is recorded; the target is judged
        # on their median.
        port = servers["model_server"][1]
        repeats = [results["scenarios"]["single_row_500rps"]["model_server"]]
        for i in range(args.rate_repeats - 1):
            repeats.append(
                run_wrk(
                    port,
                    single,
                    duration=args.duration,
                    workdir=workdir,
                    tag=f"rate-repeat-{i}",
                    seed=args.seed + 1 + i,
                    **rate,
                )
            )
        results["rate_repeats"] = [
            {k: r[k] for k in ("throughput_rps", "p50_ms", "p95_ms", "p99_ms", "errors")}
            for r in repeats
        ]
        print("rate repeats", json.dumps(results["rate_repeats"]), flush=True)
    finally:
        for proc in procs.values():
            proc.terminate()
        for name, proc in procs.items():
            try:
                rc = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = None
            results.setdefault("exit_codes", {})[name] = rc

    single_row = results["scenarios"]["single_row"]
    p99s = sorted(r["p99_ms"] for r in results["rate_repeats"])
    rates = sorted(r["throughput_rps"] for r in results["rate_repeats"])
    rate = {"p99_ms": p99s[len(p99s) // 2], "throughput_rps": rates[len(rates) // 2]}
    speedup = single_row["model_server"]["throughput_rps"] / single_row["mlflow"]["throughput_rps"]
    results["targets"] = {
        "single_row_speedup_vs_mlflow": {
            "target": f">= {TARGET_SPEEDUP}x",
            "measured": round(speedup, 2),
            "met": speedup >= TARGET_SPEEDUP,
        },
        "p99_at_500_rps_ms": {
            "target": f"< {TARGET_P99_MS} ms at {TARGET_RATE} req/s (median of repeats)",
            "repeats_p99_ms": p99s,
            "measured": rate["p99_ms"],
            "achieved_rps": rate["throughput_rps"],
            "met": rate["p99_ms"] < TARGET_P99_MS and rate["throughput_rps"] >= TARGET_RATE,
        },
        "throughput_rps": {
            "target": f">= {TARGET_THROUGHPUT} req/s (seed 004, Table 4)",
            "measured": single_row["model_server"]["throughput_rps"],
            "met": single_row["model_server"]["throughput_rps"] >= TARGET_THROUGHPUT,
        },
    }
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["machine"] = info
    results["started_at"] = started_at
    results["command"] = "uv run python -m bench.serving " + " ".join(argv or sys.argv[1:])
    results["model"] = {
        "uri": model_uri,
        "training_rows": args.rows,
        "features": int(x.shape[1]),
        "data": "kfp_pipelines.data.churn.generate",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "serving.md").write_text(render_markdown(results))
    print((RESULTS / "serving.md").read_text())
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def render_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        "# Serving benchmark",
        "",
        f"- Date: {r['started_at']}",
        f"- Command: `{r['command'].strip()}`",
        f"- Machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, {m['platform']}; "
        f"load average at start {m['load_average_at_start']}, at end "
        f"{m['load_average_at_end']} (2 cores shared with other engineers' jobs).",
        f"- Load generator: {m['load_generator']}, on the same machine, loopback.",
        f"- Model: `{r['model']['uri']}`, scikit-learn churn pipeline, {r['model']['features']} "
        f"features, trained on {r['model']['training_rows']} rows of {r['model']['data']}.",
        "- Servers: this model server (`mlops serve`, one process) and "
        "`mlflow models serve --env-manager local` (its default, one worker).",
        f"- Both servers returned identical predictions for a 100-row batch: "
        f"{r['predictions_identical']}.",
        "",
        "| Scenario | Server | Connections | Requests/s | p50 ms | p95 ms | p99 ms | Errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, by_server in r["scenarios"].items():
        for server, s in by_server.items():
            lines.append(
                f"| {scenario} | {server} | {s['connections']} | {s['throughput_rps']:.0f} | "
                f"{s['p50_ms']:.2f} | {s['p95_ms']:.2f} | {s['p99_ms']:.2f} | {s['errors']} |"
            )
    lines += [
        "",
        "Repeats of `single_row_500rps` on this server (req/s, p50/p95/p99 ms): "
        + "; ".join(
            f"{x['throughput_rps']:.0f}, {x['p50_ms']:.2f}/{x['p95_ms']:.2f}/{x['p99_ms']:.2f}"
            for x in r["rate_repeats"]
        )
        + ".",
    ]
    lines += ["", "## Targets", "", "| Target | Measured | Met |", "| --- | --- | --- |"]
    for name, t in r["targets"].items():
        lines.append(f"| {name}: {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |")
    lines += [
        "",
        f"`single_row_500rps`: wrk has no rate limit, so each of {RATE_CONNECTIONS} connections "
        f"pauses an exponentially distributed think time (mean {RATE_THINK_MS} ms) after every "
        "response: independent clients, arrivals close to a Poisson stream. The target needs "
        f"the achieved rate (Requests/s) to be at least {TARGET_RATE}/s. "
        "`single_row_lockstep_bursts` pauses exactly 45 ms instead, so the 25 clients fire "
        "together every cycle (bursts of 25 simultaneous requests): a worst case, shown for "
        "this server only. The machine was shared with other running work (load average "
        "above), which shows mostly in the tails.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
