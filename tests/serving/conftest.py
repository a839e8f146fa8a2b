"""Fixtures for the model server: a small churn-like model following the training contract,
and `mlops serve` processes on 127.0.0.1 that each test module starts and stops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from serving_support import ServerProcess, build_churn_model, start_server, stop_server


@pytest.fixture(scope="session")
def churn_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_churn_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def server(
    churn_model: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("server")
    proc = start_server(churn_model["path"], tmp)
    yield proc
    stop_server(proc)
