"""Tracing overhead: the model server with OpenTelemetry off, and on at sampling 1.0 and 0.1.

    uv run python -m bench.tracing [--duration 10] [--rows 20000] [--kinds a,b] [--quick]

The same model (a kind of bench/serving/models.py, registered in a throw-away SQLite registry;
by default the bare HistGradientBoosting, the fastest kind at ~10k single-row req/s) is served
by `mlops serve` four times in a row: tracing off; on with OTEL_TRACES_SAMPLER=
parentbased_traceidratio at 1.0 and at 0.1; off again (the difference between the two "off"
runs is the machine's own drift over the run). With tracing on, spans go over OTLP/HTTP to a
receiver on loopback in its own process (bench/tracing/receiver.py) that decodes every export
as a collector would and counts the spans, so the exporter does its real work. Requests carry no
trace context, so the server's root sampler decides (behind Istio the sidecar decides and the
server follows: the same per-request work). Each run is driven by the same wrk scripts as
bench/serving: single-row requests at fixed concurrency (throughput, p50/p99) and ~500 req/s
from 25 clients with random think times (p50/p99 at a production-like rate); each run also
records the server process's CPU time per request (all its threads, /proc), which other work on
the machine moves far less than req/s. Writes bench/results/tracing.json and tracing.md with
`uptime` at start and end. `--quick` is a smoke run, not a measurement. Not a test; runs on
demand. Where the time goes inside the server: bench/results/tracing-profile.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.serving import harness
from bench.serving.__main__ import RATE_CONNECTIONS, RATE_THINK_MS, run_wrk
from bench.serving.harness import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
DEFAULT_KINDS = "hist_gradient_boosting"
# (name, OTEL_TRACES_SAMPLER_ARG or None for tracing off)
MODES: tuple[tuple[str, float | None], ...] = (
    ("off", None),
    ("on_1.0", 1.0),
    ("on_0.1", 0.1),
    ("off_after", None),
)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 60) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"receiver exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"receiver not listening on {port} after {timeout}s")


def run_mode(
    kind: Any,
    mode: str,
    ratio: float | None,
    bodies: list[str],
    args: argparse.Namespace,
    env: dict[str, str],
    workdir: Path,
) -> dict[str, Any]:
    from bench.serving.models import ALIAS

    port = free_port()
    server_env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    receiver = None
    stats = workdir / f"{kind.name}-{mode}-receiver.json"
    if ratio is not None:
        receiver_port = free_port()
        receiver = subprocess.Popen(
            [sys.executable, "-m", "bench.tracing.receiver", str(receiver_port), str(stats)],
            cwd=ROOT,
        )
        _wait_listening(receiver_port, receiver)
        server_env.update(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_port}",
                "OTEL_SERVICE_NAME": f"bench-{kind.name}",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(ratio),
            }
        )
    log = workdir / f"{kind.name}-{mode}.log"
    command = [
        str(Path(sys.executable).parent / "mlops"), "serve",
        "--model-uri", f"models:/{kind.name}@{ALIAS}", "--port", str(port),
    ]  # fmt: skip
    result: dict[str, Any] = {"sampling_ratio": ratio, "scenarios": {}}
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=server_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", server)
        rate = {"connections": RATE_CONNECTIONS, "delay_ms": RATE_THINK_MS, "exponential": True}
        plan = [
            ("single_row", {"connections": args.concurrency}),
            ("single_row_500rps", rate),
        ]
        for scenario, load in plan:
            tag = f"{kind.name}-{mode}-{scenario}"
            if not args.quick:
                run_wrk(port, bodies, duration=3, workdir=workdir, tag=f"warm-{tag}", **load)
            cpu_before = cpu_seconds(server.pid)
            measured = run_wrk(
                port, bodies, duration=args.duration, workdir=workdir, tag=tag, seed=args.seed,
                **load,
            )  # fmt: skip
            # The server's own CPU (all its threads, the exporter's included) per request:
            # unlike req/s, hardly moved by other work competing for the machine's cores.
            cpu = cpu_seconds(server.pid) - cpu_before
            measured["server_cpu_us_per_request"] = round(
                cpu / max(1, measured["requests"]) * 1e6, 1
            )
            result["scenarios"][scenario] = measured
            print(f"{kind.name:22s} {mode:10s} {scenario:18s} {json.dumps(measured)}", flush=True)
    finally:
        result["server_exit_code"] = _stop(server)
        if receiver is not None:
            # After the server: its shutdown exports what is still queued.
            result["receiver_exit_code"] = _stop(receiver)
    if receiver is not None:
        result["received"] = json.loads(stats.read_text()) if stats.exists() else None
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(modes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each traced mode against the better of the two untraced runs."""
    out: dict[str, Any] = {}
    for scenario in ("single_row", "single_row_500rps"):
        base = max(
            (modes[m]["scenarios"][scenario] for m in ("off", "off_after") if m in modes),
            key=lambda s: s["throughput_rps"],
        )
        for mode in ("on_1.0", "on_0.1"):
            if mode not in modes:
                continue
            traced = modes[mode]["scenarios"][scenario]
            out.setdefault(scenario, {})[mode] = {
                "throughput_change_pct": round(
                    100 * (traced["throughput_rps"] / base["throughput_rps"] - 1), 1
                ),
                "p50_added_ms": round(traced["p50_ms"] - base["p50_ms"], 3),
                "p99_added_ms": round(traced["p99_ms"] - base["p99_ms"], 3),
            }
            cpus = [
                modes[m]["scenarios"][scenario].get("server_cpu_us_per_request")
                for m in ("off", "off_after")
                if m in modes
            ]
            cpu = traced.get("server_cpu_us_per_request")
            if cpu is not None and None not in cpus:
                # against the cheaper untraced run (its CPU a request, like req/s, drifts)
                out[scenario][mode]["cpu_added_us_per_request"] = round(cpu - min(cpus), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = harness.arguments(
        "python -m bench.tracing", __doc__.splitlines()[0], DEFAULT_KINDS, RESULTS, "tracing"
    )
    args = harness.parse(parser, argv)
    if isinstance(args, int):
        return args

    run = harness.start("bench-tracing-", "tracing-bench")
    results: dict[str, Any] = {"kinds": {}}
    for kind in args.kind_list:
        print(f"training and registering {kind.name} ...", flush=True)
        x = kind.register(args.rows, args.seed)
        bodies = harness.single_row_bodies(harness.request_pool(x, args.seed))
        modes = {
            mode: run_mode(kind, mode, ratio, bodies, args, run.env, run.workdir)
            for mode, ratio in MODES
        }
        results["kinds"][kind.name] = {
            "description": kind.description,
            "modes": modes,
            "overhead": overhead(modes),
        }
    harness.finish(run, results, "uv run python -m bench.tracing " + " ".join(argv or sys.argv[1:]))
    results["quick"] = args.quick
    harness.write(run, args.results, "tracing", results, render_markdown)
    return 0


def render_markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        *harness.markdown_head(r, "Tracing overhead"),
        f"- Load generator: {m['load_generator']}, on the same machine, loopback. The OTLP "
        "receiver (bench/tracing/receiver.py) runs on the same machine in its own process.",
        "- Modes, in this order: tracing off, on at sampling 1.0, on at 0.1, off again.",
        "",
        "| Kind | Mode | Scenario | Connections | Requests/s | p50 ms | p99 ms | Errors "
        "| Spans received | Server CPU µs/request |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, kind in r["kinds"].items():
        for mode, run in kind["modes"].items():
            received = run.get("received")
            spans = "" if run["sampling_ratio"] is None else (received or {}).get("spans", "?")
            for scenario, s in run["scenarios"].items():
                lines.append(
                    f"| {name} | {mode} | {scenario} | {s['connections']} | "
                    f"{s['throughput_rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                    f"{s['errors']} | {spans} | {s.get('server_cpu_us_per_request', '')} |"
                )
                spans = ""  # the receiver's count covers the whole mode
    lines += [
        "",
        "Overhead against the better of the two untraced runs:",
        "",
        "| Kind | Scenario | Mode | Requests/s change | p50 added ms | p99 added ms "
        "| Server CPU added µs/request |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, kind in r["kinds"].items():
        for scenario, by_mode in kind["overhead"].items():
            for mode, o in by_mode.items():
                lines.append(
                    f"| {name} | {scenario} | {mode} | {o['throughput_change_pct']:+.1f} % | "
                    f"{o['p50_added_ms']:+.3f} | {o['p99_added_ms']:+.3f} | "
                    + (
                        f"{o['cpu_added_us_per_request']:+.1f} |"
                        if "cpu_added_us_per_request" in o
                        else " |"
                    )
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
