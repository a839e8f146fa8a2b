"""Real Prometheus 2.42 and Alertmanager 0.25 (Debian's packages) on loopback, for the tests.

`.ci/run` installs both; on a developer machine without them the tests skip (fail in CI, see
`conftest.unavailable`). Each process gets its own port, data folder and config, and is stopped
when the `with` block ends.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# By package path: a bare `conftest` is whichever conftest.py pytest imported last (the serving
# and pipelines folders have their own), so it broke when those were collected first.
from tests.conftest import unavailable

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        unavailable(f"{binary} is not installed (apt-get install -y {binary})")
    assert path is not None
    return path


def _get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout} s:\n{log.read_text()}")


@contextmanager
def _process(argv: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(ready_url, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (raises with Prometheus' error on a bad query)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            body = _get(url)
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{promql}\n-> {exc.read().decode()}") from None
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        """The single value of an instant query; None when it returns no data (as Flagger's
        "no values found")."""
        result = self.query(promql)
        if not result:
            return None
        assert len(result) == 1, f"{promql} returned {len(result)} series: {result}"
        return float(result[0]["value"][1])

    def targets_up(self) -> dict[str, str]:
        active = _get(f"{self.url}/api/v1/targets")["data"]["activeTargets"]
        return {target["scrapeUrl"]: target["health"] for target in active}

    def alerts(self) -> list[dict[str, Any]]:
        return _get(f"{self.url}/api/v1/alerts")["data"]["alerts"]

    def wait_for(self, promql: str, predicate, timeout: float = 60.0) -> float | None:
        """Poll an instant query until `predicate(value)` holds; the last value."""
        deadline = time.monotonic() + timeout
        value = self.scalar(promql)
        while not predicate(value):
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql}: still {value} after {timeout} s")
            time.sleep(0.5)
            value = self.scalar(promql)
        return value


@contextmanager
def prometheus(
    workdir: Path,
    scrape_configs: list[dict[str, Any]],
    rule_groups: list[dict[str, Any]] | None = None,
    alertmanager_url: str | None = None,
    interval: str = "1s",
) -> Iterator[Prometheus]:
    """A Prometheus scraping `scrape_configs`, evaluating `rule_groups` (the `groups` of a
    PrometheusRule spec) every `interval` and sending alerts to `alertmanager_url`."""
    binary = require(PROMETHEUS)
    workdir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": scrape_configs,
    }
    if rule_groups:
        rules = workdir / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": rule_groups}, sort_keys=False))
        config["rule_files"] = [str(rules)]
    if alertmanager_url:
        target = urllib.parse.urlparse(alertmanager_url).netloc
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
    path = workdir / "prometheus.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        # Alertmanagers are discovered about 5 s after start; firing alerts are re-sent every
        # second (default 1 m) so none waits for the next minute.
        "--rules.alert.resend-delay=1s",
    ]
    log = workdir / "prometheus.log"
    with _process(argv, f"{url}/-/ready", log):
        yield Prometheus(url=url, log=log)


@dataclass(frozen=True)
class Alertmanager:
    url: str
    log: Path

    def alerts(self) -> list[dict[str, Any]]:
        return _get(f"{self.url}/api/v2/alerts")


@contextmanager
def alertmanager(workdir: Path, config: dict[str, Any]) -> Iterator[Alertmanager]:
    """An Alertmanager with `config` (its YAML as a dict), no clustering."""
    binary = require(ALERTMANAGER)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={path}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port
    ]
    log = workdir / "alertmanager.log"
    with _process(argv, f"{url}/-/ready", log):
        yield Alertmanager(url=url, log=log)
