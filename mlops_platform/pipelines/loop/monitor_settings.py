"""Every setting of the drift monitor (`monitor.py`), one typed registry of environment variables
(the model server's `EnvVar` pattern; the README table is generated from `REGISTRY`).

The drift check itself is configured by one JSON document, `MLOPS_DRIFT_MONITOR_SETTINGS`: a
`mlops_platform.pipelines.lib.drift.DriftSettings` (window, interval, reference alias, the detector's
thresholds, floors and seasonal key). The platform renders it from the same config model whose
`pipeline_arguments()` it passes to the drift pipeline the alert starts, so both decide alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mlops_platform.model_server.settings import EnvVar, SettingsError
from mlops_platform.pipelines.lib.drift import DriftSettings
from mlops_platform.pipelines.loop.receiver_settings import MODEL_NAME

PREFIX = "MLOPS_DRIFT_MONITOR_"

REGISTRY: tuple[EnvVar, ...] = (
    EnvVar(
        "MLOPS_DRIFT_MONITOR_BUCKET_URI",
        "bucket_uri",
        str,
        "",
        "Where the prediction-log consumer writes its windows (the datasets bucket, "
        "`s3://...`, `gs://...` or a local folder): the same source the `windows_drift` "
        "pipeline reads. Required.",
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_TRACKING_URI",
        "tracking_uri",
        str,
        "",
        "MLflow tracking server: the reference is the training sample of "
        "`<model>@<reference_alias>`, found as `champion_reference` finds it. Required.",
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_REFERENCE_URI",
        "reference_uri",
        str,
        "",
        "Reference data (Parquet; `{model}` is replaced by the model name) instead of the "
        "champion's training sample, as the receiver's `MLOPS_RECEIVER_REFERENCE_URI` "
        "(loop.reference_path). Empty (the default): the champion's, from MLflow.",
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_MODELS",
        "models",
        str,
        "",
        "Comma-separated registered model names to check. Required.",
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_SETTINGS",
        "settings_json",
        str,
        "{}",
        "JSON of `DriftSettings` (mlops_platform/pipelines/lib/drift.py): `window_hours`, "
        "`interval_minutes`, `reference_alias`, `detector` (the `DriftConfig`).",
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_METRICS_HOST",
        "metrics_host",
        str,
        "127.0.0.1",
        "Address of the Prometheus `/metrics` listener (`0.0.0.0` in a pod, so it can be scraped).",
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_METRICS_PORT",
        "metrics_port",
        int,
        9401,
        "Port of the Prometheus `/metrics` listener.",
        minimum=1,
    ),
    EnvVar(
        "MLOPS_DRIFT_MONITOR_LOG_LEVEL",
        "log_level",
        str,
        "info",
        "Log level of the monitor.",
        choices=("debug", "info", "warning", "error"),
    ),
)


@dataclass(frozen=True)
class MonitorSettings:
    """Resolved settings; build with `MonitorSettings.from_env`."""

    bucket_uri: str
    tracking_uri: str
    reference_uri: str
    models: tuple[str, ...]
    drift: DriftSettings
    metrics_host: str
    metrics_port: int
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for var in REGISTRY:
            text = var.raw(env)
            raw[var.field] = var.parse(text) if text.strip() else var.default
        for name, field in (
            ("MLOPS_DRIFT_MONITOR_BUCKET_URI", "bucket_uri"),
            ("MLOPS_DRIFT_MONITOR_TRACKING_URI", "tracking_uri"),
            ("MLOPS_DRIFT_MONITOR_MODELS", "models"),
        ):
            if not raw[field]:
                raise SettingsError(f"{name} must be set")
        models = tuple(name.strip() for name in raw.pop("models").split(",") if name.strip())
        for model in models:
            if not MODEL_NAME.match(model):
                raise SettingsError(f"MLOPS_DRIFT_MONITOR_MODELS: {model!r} is not a model name")
        try:
            drift = DriftSettings.model_validate_json(raw.pop("settings_json"))
        except ValidationError as exc:
            raise SettingsError(f"MLOPS_DRIFT_MONITOR_SETTINGS: {exc}") from None
        return cls(models=models, drift=drift, **raw)
