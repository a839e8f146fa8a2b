"""`mlops demo` end to end (real MLflow server and model server on loopback), and its errors."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kfp_pipelines.demo import free_port


def mlops(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def listening(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


@pytest.mark.slow
def test_demo_trains_serves_detects_drift_and_retrains(tmp_path: Path) -> None:
    result = mlops(
        "demo",
        "--rows",
        "6000",
        "--drift-rows",
        "5000",
        "--requests",
        "5",
        "--workdir",
        str(tmp_path),
        timeout=480,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    report = (tmp_path / "report.md").read_text()
    assert report in out
    assert re.search(r"\| 1 \| champion \| training \| 0\.\d{4} \| 0\.\d{4} \| 0\.\d{4} \|", report)
    assert re.search(r"\| 2 \| challenger \| drift \| 0\.\d{4} \|", report)
    assert "Drift FOUND: 6 of 47 features drifted (seasonal reference: True)." in report
    for feature in ("tenure_days", "sessions_30d", "payment_method"):
        assert re.search(rf"\| {feature} \| \d+\.\d{{4}} \| \w+ \| [\d.e-]+ \| yes \|", report)
    assert "- normal: 5 requests / 250 rows, 0 errors" in report
    for step in ("validate-data", "check-drift", "train-model", "register-model"):
        assert re.search(rf"    {step}\s+SUCCESS", out), step
    # the model server's prediction log is this run's own, in the work directory
    logged = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert logged and all(line.startswith("{") for line in logged)
    # every process the demo started is gone
    servers = re.findall(r"(?:MLflow|model server) ready at (http://127\.0\.0\.1:\d+)", out)
    assert len(servers) == 2
    assert not [url for url in servers if listening(url)]


def test_demo_with_unreachable_mlflow_gives_one_line(tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    result = mlops(
        "demo", "--rows", "5000", "--tracking-uri", uri, "--workdir", str(tmp_path), timeout=120
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
        (["--rows", "100"], "--rows must be at least 5000"),
        (["--drift-rows", "10"], "--drift-rows must be at least 5000"),
        (["--drift-magnitude", "11"], "--drift-magnitude must be between 0 and 10"),
    ],
)
def test_demo_rejects_bad_arguments(args: list[str], message: str) -> None:
    result = mlops("demo", *args, timeout=60)
    assert (result.returncode, result.stderr) == (2, f"mlops demo: {message}\n")


def test_importing_the_demo_module_stays_light() -> None:
    probe = (
        "import sys, kfp_pipelines.demo; "
        "print(sorted(m for m in ('kfp', 'mlflow', 'sklearn', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"
