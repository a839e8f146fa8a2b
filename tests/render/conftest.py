"""Rendering tests: the helm/kubectl binaries unpack once per checkout (mlops_platform.binaries), and the
object counts of every stack are printed at the end of the run."""

from __future__ import annotations

import pytest

from mlops_platform import binaries

_COUNTS: dict[str, list[str]] = {}


@pytest.fixture(scope="session", autouse=True)
def kube_tools():
    """Fail once, clearly, when helm or kubectl cannot be provided."""
    try:
        return binaries.binary("helm"), binaries.binary("kubectl")
    except binaries.ToolMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def report_counts() -> dict[str, list[str]]:
    return _COUNTS


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS:
        return
    terminalreporter.section("Kubernetes objects per stack (rendered and validated)")
    for stack, lines in _COUNTS.items():
        terminalreporter.write_line(f"{stack}: {lines[0]}")
        for line in lines[1:]:
            terminalreporter.write_line(line)
