"""Is a failed model load worth retrying? And when to retry it.

On a fresh platform the server starts before any model is registered, and often before the
tracking server answers. Those failures resolve themselves as the platform converges, so the
server keeps waiting for them (`Outcome` other than `failed`). A model that exists but cannot
be served does not improve by waiting: that stops the process, so the operator sees it.

The classification looks only at the exceptions MLflow's client and its transports raise
(MlflowException's error code and HTTP status, requests/botocore network errors) and never at
message texts, which change between MLflow versions.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from typing import Literal

Outcome = Literal["loaded", "not_found", "unavailable", "unauthorized", "failed"]
# Every outcome is exported from the start, so a dashboard sees zeros instead of no series.
OUTCOMES: tuple[Outcome, ...] = ("loaded", "not_found", "unavailable", "unauthorized", "failed")

# MLflow error codes of a registry or artifact that is not there yet.
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})
# Credentials that are rejected: on a fresh platform the tracking server's users are provisioned
# after the serving pods start, so this converges like the rest (and is logged as a warning).
_UNAUTHORIZED_CODES = frozenset({"UNAUTHENTICATED", "CUSTOMER_UNAUTHORIZED", "PERMISSION_DENIED"})
_UNAVAILABLE_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
)
_S3_NOT_FOUND = frozenset({"404", "NoSuchKey", "NoSuchBucket"})


def classify(exc: BaseException) -> Outcome:
    """The outcome of a failed resolve or download: something to wait for, or `failed`."""
    for link in _chain(exc):
        outcome = _classify_one(link)
        if outcome is not None:
            return outcome
    return "failed"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    # MLflow wraps transport errors in a new MlflowException raised inside the `except` block,
    # so the original (requests' ConnectionError, RetryError) is only in `__context__`.
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _classify_one(exc: BaseException) -> Outcome | None:
    from mlflow.exceptions import MlflowException, RestException

    if isinstance(exc, MlflowException):
        code = exc.error_code
        if code in _NOT_FOUND_CODES:
            return "not_found"
        if code in _UNAUTHORIZED_CODES:
            return "unauthorized"
        if code in _UNAVAILABLE_CODES:
            return "unavailable"
        # A JSON error the tracking server itself answered with a 5xx (its database is not up
        # yet, say). A bare MlflowException defaults to INTERNAL_ERROR too, so only the
        # server's own answers count; the client's wrapping of a network error is in the chain.
        if isinstance(exc, RestException) and exc.get_http_status_code() >= 500:
            return "unavailable"
        return None
    if _is_network_error(exc):
        return "unavailable"
    if _s3_error_code(exc) in _S3_NOT_FOUND:
        return "not_found"
    return None


def _is_network_error(exc: BaseException) -> bool:
    import requests

    # requests' errors (MLflow's transport for the tracking server and `mlflow-artifacts:`)
    # include RetryError, which is how a 5xx surfaces once MLflow's own retries are spent.
    if isinstance(exc, requests.exceptions.RequestException):
        invalid = requests.exceptions.InvalidURL | requests.exceptions.InvalidSchema
        return not isinstance(exc, invalid)
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # boto3 is only needed for S3 artifact stores
        return False
    return isinstance(exc, BotoConnectionError)


def _s3_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error")
        if isinstance(error, dict):
            return str(error.get("Code"))
    return None


def backoff_delays(
    initial: float, maximum: float, jitter: float = 0.1, rand: Callable[[], float] = random.random
) -> Iterator[float]:
    """Seconds to wait after each failed attempt: doubling from `initial`, capped at `maximum`.

    Each delay is shortened by up to `jitter` (a fraction), so replicas that started together
    do not query the tracking server in lockstep; the cap is never exceeded.
    """
    delay = initial
    while True:
        yield delay * (1.0 - jitter * rand())
        delay = min(delay * 2.0, maximum)


# `scheme://user:password@host`: a tracking URI may carry credentials.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)[^/@\s]+@")
# Presigned artifact URLs carry their credentials in the query string.
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&][\w.-]*(?:signature|credential|token|secret|password|sig|key)[\w.-]*=)[^&\s'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` without credentials that URLs in error messages may carry."""
    text = _USERINFO.sub(r"\g<scheme><redacted>@", text)
    return _SECRET_QUERY.sub(r"\g<key><redacted>", text)


def describe(exc: BaseException, outcome: Outcome, tracking_uri: str) -> str:
    """A one-line reason for logs and the readiness answer (no stack, no credentials)."""
    from mlflow.exceptions import MlflowException

    if outcome == "unavailable":
        network = next((e for e in _chain(exc) if _is_network_error(e)), None)
        if network is not None:
            return (
                f"cannot reach the tracking server ({redact(tracking_uri)}) or the artifact "
                f"store: {_first_cause(network)}"
            )
    message = exc.message if isinstance(exc, MlflowException) else str(exc)
    return redact(" ".join(str(message).split()))


def _first_cause(exc: BaseException) -> str:
    # requests nests urllib3's errors several levels deep; the innermost says it plainly
    # ("[Errno 111] Connection refused", "too many 503 error responses").
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] [^'\")]+", r"too many \d+ error responses", r"timed out"):
        match = re.search(pattern, text)
        if match:
            return match.group(0).strip()
    return type(exc).__name__
