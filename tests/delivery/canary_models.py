"""A degraded canary for the analysis test: the churn model, slower and failing on demand.

Loaded by the model-server process (pickled by MLflow's pyfunc), so it lives in an importable
module of its own.
"""

from __future__ import annotations

import time
from typing import Any

import mlflow.pyfunc


class DegradedChurn(mlflow.pyfunc.PythonModel):
    """Wraps a fitted churn pipeline: sleeps `sleep` seconds per call and raises on every
    `fail_every`-th call of at least 10 rows (the server answers 500; the server's warm-up
    calls with the few rows of the input example pass), otherwise the same scores."""

    def __init__(self, model: Any, sleep: float, fail_every: int) -> None:
        self.model = model
        self.sleep = sleep
        self.fail_every = fail_every
        self._calls = 0

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        time.sleep(self.sleep)
        if len(model_input) < 10:
            return self.model.predict_proba(model_input)[:, 1]
        self._calls += 1
        if self.fail_every and self._calls % self.fail_every == 0:
            raise RuntimeError("degraded canary: injected failure")
        return self.model.predict_proba(model_input)[:, 1]
