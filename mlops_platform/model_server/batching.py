"""Dynamic micro-batching: concurrent requests are merged into one model call.

A sklearn pipeline costs about the same for 1 row as for 100 (DataFrame construction and
per-step overhead dominate), so merging is what turns one core into thousands of rows per
second. Requests that arrive while a predict call runs wait for the next call and are merged
into it; with `wait_ms` = 0 nothing waits on purpose, so a lone request is never delayed.
The model runs on one worker thread, keeping the event loop free to accept and parse requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_platform.model_server.prediction_log import LoggedBatch
from mlops_platform.model_server.schema import InputSchema, Rows, to_arrays

log = logging.getLogger(__name__)

# Request ids: a random per-process prefix plus a counter, unique without a uuid4 (and its
# urandom call) per request.
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count()

PredictFn = Callable[[dict[str, np.ndarray]], tuple[list[Any], np.ndarray | None]]


class ModelRejectedInput(ValueError):
    """The model itself raised on a request's rows (e.g. a category it cannot encode)."""


@dataclass
class Job:
    schema: InputSchema
    rows: Rows
    future: asyncio.Future[tuple[list[Any], np.ndarray | None]]
    synthetic: bool = False  # answered and scored, but kept out of the drift window and log
    trace: Any = None  # tracing.RequestTrace of a sampled request, else None
    request_id: str = field(default_factory=lambda: f"{_ID_PREFIX}{next(_ID_COUNTER):016x}")


@dataclass
class BatchResult:
    outputs: list[tuple[list[Any], np.ndarray | None] | BaseException]
    arrays: dict[str, np.ndarray] | None
    predictions: list[Any] | None
    scores: np.ndarray | None


class MicroBatcher:
    def __init__(
        self,
        predict: PredictFn,
        max_rows: int,
        wait_ms: float,
        on_batch: Callable[[int], None],
        on_scores: Callable[[np.ndarray], None],
        on_logged: Callable[[LoggedBatch], None],
        thread_init: Callable[[], None] | None = None,
        inline: bool = False,
        on_split: Callable[[], None] = lambda: None,
        on_traced: Callable[..., None] | None = None,
    ) -> None:
        self._on_split = on_split
        # Tracing.batch_done (tracing.py) when tracing is on: the spans of a batch's requests.
        self._on_traced = on_traced
        self.inline = inline
        self._predict = predict
        self.max_rows = max_rows
        self.wait_s = wait_ms / 1000.0
        self._on_batch = on_batch
        self._on_scores = on_scores
        self._on_logged = on_logged
        self._pending: deque[Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread_init = thread_init
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="predict", initializer=thread_init
        )

    def start(self) -> None:
        if self.inline and self._thread_init is not None:
            self._thread_init()
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in self._pending:
            if not job.future.done():
                job.future.set_exception(RuntimeError("server is shutting down"))
        self._executor.shutdown(wait=True)

    async def predict(
        self, schema: InputSchema, rows: Rows, synthetic: bool = False, trace: Any = None
    ) -> tuple[list[Any], np.ndarray | None]:
        assert self._wakeup is not None, "MicroBatcher.start() was not called"
        job = Job(schema, rows, asyncio.get_running_loop().create_future(), synthetic, trace)
        self._pending.append(job)
        self._wakeup.set()
        future = job.future
        try:
            return await future
        finally:
            # A failed future's exception holds a traceback through this frame, and this frame
            # holds the job, whose future holds the exception: a reference cycle that keeps the
            # request's rows alive until a full GC pass, which may not come for a long time.
            # (A stream of large rejected requests grew the heap by gigabytes that way.)
            job = future = None  # type: ignore[assignment]

    def _take(self) -> list[Job]:
        first = self._pending.popleft()
        jobs, rows = [first], first.rows.n_rows
        while self._pending:
            nxt = self._pending[0]
            if nxt.schema is not first.schema or rows + nxt.rows.n_rows > self.max_rows:
                break
            jobs.append(self._pending.popleft())
            rows += nxt.rows.n_rows
        return jobs

    async def _worker(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.wait_s > 0:
                await asyncio.sleep(self.wait_s)
            jobs = [j for j in self._take() if not j.future.cancelled()]
            if not jobs:
                continue
            traced = self._on_traced is not None and any(j.trace is not None for j in jobs)
            started_ns = time.time_ns() if traced else 0
            try:
                if self.inline:
                    result = self._run(jobs)
                    await asyncio.sleep(0)  # let the loop read what arrived meanwhile
                else:
                    result = await loop.run_in_executor(self._executor, self._run, jobs)
            except Exception as exc:  # _run reports per job; this is a bug in _run itself
                log.exception("micro-batch failed")
                result = BatchResult([exc] * len(jobs), None, None, None)
            if traced:
                self._traced(jobs, result, started_ns)
            for job, output in zip(jobs, result.outputs, strict=True):
                if job.future.done():
                    continue
                if isinstance(output, BaseException):
                    job.future.set_exception(output)
                else:
                    job.future.set_result(output)
            if result.arrays is not None and result.predictions is not None:
                logged = _logged(jobs, result, traced)
                if logged is not None:
                    self._on_logged(logged)

    def _traced(self, jobs: list[Job], result: BatchResult, started_ns: int) -> None:
        assert self._on_traced is not None
        try:
            self._on_traced(
                [
                    (job.trace, output if isinstance(output, BaseException) else None)
                    for job, output in zip(jobs, result.outputs, strict=True)
                    if job.trace is not None
                ],
                started_ns,
                time.time_ns(),
                sum(job.rows.n_rows for job in jobs),
                len(jobs),
            )
        except Exception:  # tracing must never fail a prediction
            log.exception("tracing: cannot record the spans of a batch")

    def _run(self, jobs: list[Job]) -> BatchResult:
        """Runs on the predict thread: one model call for all jobs, split back per job."""
        arrays = to_arrays(jobs[0].schema, [j.rows for j in jobs])
        try:
            predictions, scores = self._predict(arrays)
        except Exception as exc:
            if len(jobs) == 1:
                return BatchResult([_rejected(exc)], None, None, None)
            # Validation rejects what it can know is bad (types, ranges, unknown categories of
            # sklearn encoders), so this is the last resort for what only the model knows (any
            # pyfunc): one bad request must not fail its neighbours, so each runs on its own,
            # counted so that a client forcing it shows.
            self._on_split()
            return BatchResult([self._run_one(j) for j in jobs], None, None, None)
        self._on_batch(len(predictions))
        if scores is not None:
            self._on_scores(scores)
        outputs: list[Any] = []
        start = 0
        for job in jobs:
            end = start + job.rows.n_rows
            outputs.append((predictions[start:end], None if scores is None else scores[start:end]))
            start = end
        return BatchResult(outputs, arrays, predictions, scores)

    def _run_one(self, job: Job) -> tuple[list[Any], np.ndarray | None] | BaseException:
        try:
            predictions, scores = self._predict(to_arrays(job.schema, [job.rows]))
        except Exception as exc:
            return _rejected(exc)
        self._on_batch(len(predictions))
        if scores is not None:
            self._on_scores(scores)
        return predictions, scores


def _logged(jobs: list[Job], result: BatchResult, traced: bool = False) -> LoggedBatch | None:
    """What the prediction log and the drift window get of a batch: the rows of every job but
    the synthetic ones (None when all were synthetic)."""
    assert result.arrays is not None and result.predictions is not None
    real = [not j.synthetic for j in jobs]
    if not any(real):
        return None
    columns, predictions, scores = result.arrays, result.predictions, result.scores
    if not all(real):
        keep = np.repeat(np.asarray(real), [j.rows.n_rows for j in jobs])
        columns = {name: values[keep] for name, values in columns.items()}
        predictions = [p for p, k in zip(predictions, keep, strict=True) if k]
        scores = None if scores is None else scores[keep]
    kept = [j for j in jobs if not j.synthetic]
    return LoggedBatch(
        timestamp=time.time(),
        request_ids=[j.request_id for j in kept],
        row_counts=[j.rows.n_rows for j in kept],
        columns=columns,
        predictions=predictions,
        scores=scores,
        traces=[j.trace for j in kept if j.trace is not None] if traced else (),
    )


def _rejected(exc: Exception) -> BaseException:
    # The rows passed the signature checks, so a ValueError/TypeError from the model is about
    # their values (sklearn raises ValueError for e.g. an unknown category with
    # handle_unknown="error"); anything else is a server fault and stays a 500.
    #
    # The model's exception is not chained: its traceback holds the predict frames (the merged
    # batch, the jobs and their futures), a cycle that would keep the batch alive after the
    # answer. Its message may quote a huge client value: only the start of it is kept.
    if isinstance(exc, ValueError | TypeError):
        message = str(exc)
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + f"... ({len(message) - MAX_MESSAGE} more characters)"
        log.debug("the model rejected a request: %s", message)
        return ModelRejectedInput(f"the model rejected the input: {message}")
    log.error("the model failed on a batch", exc_info=exc)
    exc.__traceback__ = None
    return exc


MAX_MESSAGE = 500
