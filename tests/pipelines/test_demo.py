"""`mlops demo` end to end (real MLflow, model servers, Prometheus, Alertmanager and retrain
receiver on loopback), and its errors."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_platform.pipelines.demo import free_port


def mlops(*args: str, timeout: float, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path} if path is not None else None
    return subprocess.run(
        [sys.executable, "-m", "mlops_platform.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.slow
def test_demo_shows_the_loop_from_drift_alert_to_promotion_and_rollback(tmp_path: Path) -> None:
    result = mlops(
        "demo",
        "--rows",
        "36000",
        "--drift-rows",
        "5000",
        "--requests",
        "10",
        "--workdir",
        str(tmp_path),
        # ~5 min when the machine is quiet; a shared runner under load needs more.
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    report = (tmp_path / "report.md").read_text()
    assert report in out
    # version 1 trained, 2 retrained by the run the alert started and promoted, 3 (shuffled
    # labels) rejected offline, released by hand and rolled back
    assert re.search(r"\| 1 \| - \| training \| 0\.\d{4} \| 0\.\d{4} \| 0\.\d{4} \|", report)
    assert re.search(
        r"\| 2 \| champion \| drift \| 0\.\d{4} \|.*\| challenger \| promoted \|", report
    )
    assert re.search(
        r"\| 3 \| - \| demo-shuffled-labels \| 0\.\d{4} \|.*\| rejected \| rejected \|", report
    )
    assert re.search(
        r"Drift FOUND: \d+ of 47 features drifted \(seasonal reference: True\)\.", report
    )
    # The alert came from the drift monitor's verdict on the logged traffic (the detector of
    # the drift pipeline, same-season reference of today's date), not from a PSI threshold.
    assert re.search(
        r"The drift monitor .*: drift on \d+ logged rows against \d+ same-season", report
    )
    for feature in ("tenure_days", "sessions_30d", "payment_method"):
        assert re.search(rf"\| {feature} \| \d+\.\d{{4}} \| \w+ \| [\d.e-]+ \| yes \|", report)
    assert "- normal: 10 requests / 500 rows, 0 errors" in report

    # the alert: fired in Prometheus, reached the receiver through Alertmanager, started the
    # drift pipeline run whose output is version 2
    alert = report.split("## The alert", 1)[1].split("\n## ", 1)[0]
    # the features firing at the first poll that sees the alert: each drifted feature's series
    # crosses on its own evaluation, so which of them are already firing is a race
    assert re.search(
        r"ModelFeatureDrift fired \d+\.\ds into the demo .* features "
        r".*(tenure_days|sessions_30d|payment_method)",
        alert,
    )
    [decision] = [json.loads(line) for line in alert.splitlines() if line.startswith("    {")]
    assert decision["event"] == "retrain_started"
    assert decision["alertname"] == "ModelFeatureDrift"
    assert (decision["model"], decision["versions"], decision["run_id"]) == (
        "churn",
        ["1"],
        "local-1",
    )
    # which drifted features already fire when the alert is sent is a race (see above)
    assert {"tenure_days", "sessions_30d", "payment_method"} & set(decision["features"])
    assert re.search(r"Run local-1 of the drift pipeline .* ended SUCCEEDED .* output '2'", alert)
    events = [
        json.loads(line)
        for line in (tmp_path / "logs" / "receiver.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert [e["run_id"] for e in events if e["event"] == "retrain_started"] == ["local-1"]
    for step in ("validate-data", "check-drift", "train-model", "register-model"):
        assert re.search(rf"    {step}\s+SUCCESS", out), step

    # the canaries: per interval the gate and the four checks; the good one passes every
    # interval, the bad one fails the gate (retried each interval) and its score divergence
    good = report.split("## Canary analysis: version 2", 1)[1].split("\n## ", 1)[0]
    bad = report.split("## Canary analysis: version 3", 1)[1].split("\n## ", 1)[0]
    assert "version 2 passes the golden-set gate" in good
    passing = (
        r"^\| (\d) \| (passes|passed before) \| 100 ok \| [\d.]+ ok \| [\d.e-]+ ok \| "
        r"[\d.e-]+ ok \| passed \|$"
    )
    assert [m[0] for m in re.findall(passing, good, re.M)] == ["1", "2", "3"], good
    assert "Result: promoted after 3 intervals with 0 failed" in good
    assert "settle Succeeded: churn version 2 promoted: alias champion moved" in good
    assert "version 3 fails the golden-set gate" in bad
    failing = r"^\| (\d) \| fails \| .* \| ([\d.]+) FAILED \| [\d.e-]+ \w+ \| failed \|$"
    found = re.findall(failing, bad, re.M)
    assert [m[0] for m in found] == ["1", "2"], bad
    assert all(float(m[1]) > 0.4 for m in found)  # score divergence beyond the default limit
    assert "Result: rolled back after 2 intervals with 2 failed" in bad
    assert "settle Failed: churn version 3 rolled back: tagged rollout=rejected" in bad
    final = report.split("## Final aliases", 1)[1].split("\n## ", 1)[0]
    assert "- `champion`: version 2" in final
    assert "challenger" not in final
    assert "- version 3: rollout=rejected" in final
    release = json.loads((tmp_path / "release-configmaps.json").read_text())
    assert release == {
        "serving/churn-model": "models:/churn/3",
        "serving/churn-model-primary": "models:/churn/2",
    }

    # the first model server's prediction log is this run's own, in the work directory
    logged = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert logged and all(line.startswith("{") for line in logged)
    # every process the demo started is gone
    started = re.findall(
        r"(MLflow|model server|retrain receiver|Alertmanager|Prometheus|canary|primary) "
        r"ready at (http://127\.0\.0\.1:\d+)",
        out,
    )
    assert sorted({name for name, _ in started}) == sorted(
        [
            "MLflow",
            "model server",
            "retrain receiver",
            "Alertmanager",
            "Prometheus",
            "canary",
            "primary",
        ]
    )
    assert len(started) == 8  # two canaries
    assert not [url for _, url in started if listening(url)]


def test_demo_without_prometheus_names_the_packages(tmp_path: Path) -> None:
    # an empty PATH: neither prometheus nor prometheus-alertmanager is found
    result = mlops("demo", "--workdir", str(tmp_path / "out"), timeout=60, path=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (
        "mlops demo: prometheus and prometheus-alertmanager not found on PATH: the demo's alert "
        "path and canary analysis need them "
        "(apt-get install prometheus prometheus-alertmanager)\n"
    )
    assert not (tmp_path / "out").exists()  # checked before anything is made


def test_demo_with_unreachable_mlflow_gives_one_line(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = mlops(
        "demo", "--rows", "36000", "--tracking-uri", uri, "--workdir", str(tmp_path), timeout=120
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(
        f"mlops demo: MLflow tracking server at {uri} is unreachable: "
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pipeline-root").exists()
    assert not (tmp_path / "data").exists()  # checked before generating anything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--rows", "35999"],
            "--rows must be at least 36000 (the drift check's same-season reference needs "
            "1,000 training rows within 7 days of today's date)",
        ),
        (["--drift-rows", "10"], "--drift-rows must be at least 5000"),
        (["--drift-magnitude", "11"], "--drift-magnitude must be between 0 and 10"),
    ],
)
def test_demo_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = mlops("demo", *args, timeout=60)
    assert (result.returncode, result.stderr) == (2, f"mlops demo: {message}\n")


def test_importing_the_demo_module_stays_light() -> None:
    probe = (
        "import sys, mlops_platform.pipelines.demo; "
        "print(sorted(m for m in ('kfp', 'mlflow', 'sklearn', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"
