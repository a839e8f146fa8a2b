"""Which load failures the server waits out, how long it waits, and what it may say about them."""

from __future__ import annotations

import itertools
from typing import Any

import botocore.exceptions
import pytest
import requests
from mlflow.exceptions import InvalidUrlException, MlflowException, RestException
from mlflow.protos.databricks_pb2 import (
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    PERMISSION_DENIED,
    REQUEST_LIMIT_EXCEEDED,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    UNAUTHENTICATED,
)

from mlops_platform.model_server.availability import (
    backoff_delays,
    classify,
    describe,
    redact,
)
from mlops_platform.model_server.settings import (
    Settings,
    SettingsError,
    apply_mlflow_client_defaults,
)

# -- classification ---------------------------------------------------------------------------


def wrapped(cause: BaseException) -> MlflowException:
    """What MLflow's REST client raises for a transport error: a new exception, raised while
    handling the original (`rest_utils.http_request`), so the cause is only in __context__."""
    try:
        raise cause
    except Exception as exc:
        try:
            raise MlflowException(f"API request to http://mlflow/api failed with exception {exc}")
        except MlflowException as outer:
            return outer


def rest(code: str, message: str = "m") -> RestException:
    return RestException({"error_code": code, "message": message})


def s3_error(code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "x"}}, "GetObject")


CLASSIFICATION = [
    # not there yet: registry answers
    ("no registered model / version", rest("RESOURCE_DOES_NOT_EXIST"), "not_found"),
    (
        "non-JSON 404 from a proxy",
        MlflowException("404", error_code=RESOURCE_DOES_NOT_EXIST),
        "not_found",
    ),
    ("artifact key missing in S3", s3_error("NoSuchKey"), "not_found"),
    ("artifact 404 from S3 HEAD", s3_error("404"), "not_found"),
    # the tracking server or the store is not up (yet)
    (
        "connection refused",
        wrapped(requests.exceptions.ConnectionError("[Errno 111] Connection refused")),
        "unavailable",
    ),
    (
        "5xx after MLflow's retries",
        wrapped(requests.exceptions.RetryError("too many 503 error responses")),
        "unavailable",
    ),
    ("timeout", wrapped(requests.exceptions.ReadTimeout("timed out")), "unavailable"),
    ("JSON 500 from the server", rest("INTERNAL_ERROR"), "unavailable"),
    ("503", MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE), "unavailable"),
    ("429", MlflowException("slow down", error_code=REQUEST_LIMIT_EXCEEDED), "unavailable"),
    ("socket refused", ConnectionRefusedError(111, "Connection refused"), "unavailable"),
    (
        "S3 endpoint down",
        botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3"),
        "unavailable",
    ),
    # credentials not provisioned yet, or wrong: waited for, with a warning
    ("401", MlflowException("who?", error_code=UNAUTHENTICATED), "unauthorized"),
    ("403", rest("PERMISSION_DENIED"), "unauthorized"),
    ("403 non-JSON", MlflowException("no", error_code=PERMISSION_DENIED), "unauthorized"),
    # permanent
    ("malformed request", rest("INVALID_PARAMETER_VALUE"), "failed"),
    (
        "invalid alias name",
        MlflowException("Invalid alias name", error_code=INVALID_PARAMETER_VALUE),
        "failed",
    ),
    ("client-side internal error", MlflowException("bug", error_code=INTERNAL_ERROR), "failed"),
    ("invalid URL", InvalidUrlException("Invalid url: htp:/x"), "failed"),
    (
        "invalid URL in requests",
        wrapped(requests.exceptions.InvalidURL("bad")),
        "failed",
    ),
    ("S3 access denied", s3_error("AccessDenied"), "failed"),
    ("local disk", PermissionError(13, "Permission denied", "/tmp/x"), "failed"),
    ("anything else", ValueError("boom"), "failed"),
]


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [(exc, outcome) for _, exc, outcome in CLASSIFICATION],
    ids=[case for case, _, _ in CLASSIFICATION],
)
def test_classify(exc: BaseException, outcome: str) -> None:
    assert classify(exc) == outcome


def test_the_cause_counts_even_behind_a_generic_wrapper() -> None:
    # A bare MlflowException is INTERNAL_ERROR, which alone means nothing; its context decides.
    assert classify(MlflowException("x")) == "failed"
    assert classify(wrapped(ConnectionResetError(104, "reset"))) == "unavailable"


# -- what is said about it -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "outcome", "reason"),
    [
        (
            wrapped(
                requests.exceptions.ConnectionError(
                    "HTTPConnectionPool(host='mlflow', port=5000): Max retries exceeded (Caused "
                    'by NewConnectionError("...: [Errno 111] Connection refused"))'
                )
            ),
            "unavailable",
            "cannot reach the tracking server (http://<redacted>@mlflow:5000) or the artifact "
            "store: [Errno 111] Connection refused",
        ),
        (
            wrapped(requests.exceptions.RetryError("Max retries (too many 502 error responses)")),
            "unavailable",
            "cannot reach the tracking server (http://<redacted>@mlflow:5000) or the artifact "
            "store: too many 502 error responses",
        ),
        (
            rest("RESOURCE_DOES_NOT_EXIST", "Registered Model with name=churn not found"),
            "not_found",
            "RESOURCE_DOES_NOT_EXIST: Registered Model with name=churn not found",
        ),
        (
            MlflowException("fetch https://b.s3/x?X-Amz-Signature=abc123&X-Amz-Date=1\n failed"),
            "failed",
            "fetch https://b.s3/x?X-Amz-Signature=<redacted>&X-Amz-Date=1 failed",
        ),
    ],
)
def test_describe_is_one_line_without_credentials(
    exc: BaseException, outcome: str, reason: str
) -> None:
    assert describe(exc, outcome, "http://serving:hunter2@mlflow:5000") == reason


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("http://u:p@host:5000/api", "http://<redacted>@host:5000/api"),
        ("https://token@host/x", "https://<redacted>@host/x"),
        ("s3://bucket/key?token=t0k&ok=1", "s3://bucket/key?token=<redacted>&ok=1"),
        ("https://h/x?a=1&sig=s1g", "https://h/x?a=1&sig=<redacted>"),
        ("models:/churn@champion", "models:/churn@champion"),  # an alias is not userinfo
        (
            "http://host:5000/api?name=churn&alias=champion",
            "http://host:5000/api?name=churn&alias=champion",
        ),
    ],
)
def test_redact(text: str, redacted: str) -> None:
    assert redact(text) == redacted


# -- when to retry -----------------------------------------------------------------------------


def schedule(initial: float, maximum: float, n: int, **kw: Any) -> list[float]:
    return list(itertools.islice(backoff_delays(initial, maximum, **kw), n))


@pytest.mark.parametrize(
    ("initial", "maximum", "expected"),
    [
        (1.0, 30.0, [1, 2, 4, 8, 16, 30, 30, 30]),
        (0.2, 0.5, [0.2, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]),
        (5.0, 5.0, [5.0] * 8),
        (0.01, 1000.0, [0.01 * 2**i for i in range(8)]),
    ],
)
def test_backoff_doubles_up_to_the_cap(
    initial: float, maximum: float, expected: list[float]
) -> None:
    assert schedule(initial, maximum, 8, rand=lambda: 0.0) == pytest.approx(expected)


def test_jitter_only_shortens_and_never_exceeds_the_cap() -> None:
    longest = schedule(1.0, 30.0, 8, jitter=0.1, rand=lambda: 0.0)
    shortest = schedule(1.0, 30.0, 8, jitter=0.1, rand=lambda: 1.0)
    assert shortest == pytest.approx([0.9 * d for d in longest])
    assert max(schedule(1.0, 30.0, 50)) <= 30.0


# -- settings ----------------------------------------------------------------------------------


def test_retry_settings_defaults_and_errors() -> None:
    s = Settings.from_env({})
    assert (s.load_retry_initial_seconds, s.load_retry_max_seconds) == (1.0, 30.0)
    s = Settings.from_env(
        {
            "MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS": "0.5",
            "MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS": "10",
        }
    )
    assert (s.load_retry_initial_seconds, s.load_retry_max_seconds) == (0.5, 10.0)
    with pytest.raises(SettingsError) as err:
        Settings.from_env(
            {
                "MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS": "60",
                "MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS": "30",
            }
        )
    assert str(err.value) == (
        "MLOPS_SERVE_LOAD_RETRY_MAX_SECONDS=30 must be >= MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS=60"
    )
    with pytest.raises(SettingsError, match=r"^MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS=0.0 must"):
        Settings.from_env({"MLOPS_SERVE_LOAD_RETRY_INITIAL_SECONDS": "0"})


def test_mlflow_client_retries_are_left_to_the_server_unless_the_operator_set_them() -> None:
    env: dict[str, str] = {}
    assert apply_mlflow_client_defaults(env) == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    assert env == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    operator = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}
    assert apply_mlflow_client_defaults(operator) == {}
    assert operator == {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"}


# -- an alias set while the server asks for it -------------------------------------------------


class AliasRegistry:
    """A registry whose alias appears between `get_model_version_by_alias` and the check."""

    def __init__(self, aliases_after: dict[str, str]) -> None:
        self.aliases_after = aliases_after

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        raise MlflowException(
            f"Registered model alias {alias} not found.", error_code=INVALID_PARAMETER_VALUE
        )

    def get_registered_model(self, name: str) -> Any:
        return type("RegisteredModel", (), {"aliases": self.aliases_after})()


@pytest.mark.parametrize(
    ("aliases_after", "expected"),
    [
        ({"champion": "3"}, "3"),  # set in between: its version, not a fatal error
        ({}, "not_found"),
        ({"challenger": "4"}, "not_found"),
    ],
)
def test_an_alias_set_between_two_registry_calls_is_served(
    aliases_after: dict[str, str], expected: str
) -> None:
    from mlops_platform.model_server.model import ModelNotAvailable, _alias_version

    registry = AliasRegistry(aliases_after)
    try:
        got = _alias_version(registry, "churn", "champion", "models:/churn@champion")
    except ModelNotAvailable as exc:
        got = exc.outcome
    assert got == expected
