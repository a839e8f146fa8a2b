"""Every setting of the retrain receiver, read through one typed registry of environment variables.

The same pattern as the model server's (`mlops_platform/model_server/settings.py`, whose `EnvVar`
this reuses): each entry names the variable, its type, default and doc; `ReceiverSettings.from_env`
is the only place that reads the environment; the README table is generated from `REGISTRY`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from mlops_platform.model_server.settings import EnvVar, SettingsError, markdown_table

Backend = Literal["kfp", "local"]
MODEL_PLACEHOLDER = "{model}"
# The Alertmanager webhook's token: at least this long, so a guessable one is refused at start.
MIN_TOKEN_LENGTH = 16
# What the drift alert's `model` label may hold: it becomes part of a run name and a data URI.
MODEL_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")

REGISTRY: tuple[EnvVar, ...] = (
    EnvVar("MLOPS_RECEIVER_HOST", "host", str, "127.0.0.1", "Address to bind."),
    EnvVar("MLOPS_RECEIVER_PORT", "port", int, 8080, "TCP port.", minimum=0),
    EnvVar(
        "MLOPS_RECEIVER_TOKEN",
        "token",
        str,
        "",
        f"Bearer token Alertmanager sends (required, at least {MIN_TOKEN_LENGTH} characters; "
        "a Secret key, best mounted as a file).",
        secret=True,
    ),
    EnvVar(
        "MLOPS_RECEIVER_BACKEND",
        "backend",
        str,
        "kfp",
        "Where runs start: the KFP API, or kfp's local runner in this process (tests, demos).",
        choices=("kfp", "local"),
    ),
    EnvVar(
        "MLOPS_RECEIVER_KFP_HOST",
        "kfp_host",
        str,
        "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
        "KFP API endpoint (backend `kfp`).",
    ),
    EnvVar(
        "MLOPS_RECEIVER_EXPERIMENT",
        "experiment",
        str,
        "drift-retrain",
        "KFP experiment the retrain runs go to; the rate limit and deduplication read its runs.",
    ),
    EnvVar(
        "MLOPS_RECEIVER_PIPELINE_ROOT",
        "pipeline_root",
        str,
        "",
        "Pipeline root of the runs; empty: KFP's default (backend `kfp`) or a temporary "
        "folder (backend `local`).",
    ),
    EnvVar(
        "MLOPS_RECEIVER_PIPELINE",
        "pipeline",
        str,
        "drift",
        "The pipeline a drift alert starts: `drift` (on the file `MLOPS_RECEIVER_DATA_URI`) or "
        "`windows_drift` (on the prediction log's windows under `MLOPS_RECEIVER_DATA_URI`, "
        "the bucket the loop's consumer writes, labels joined).",
        choices=("drift", "windows_drift"),
    ),
    EnvVar(
        "MLOPS_RECEIVER_DATA_URI",
        "data_uri",
        str,
        "",
        f"Recent labelled window the drift pipeline checks and retrains on (required); "
        f"`{MODEL_PLACEHOLDER}` is replaced by the alert's model.",
    ),
    EnvVar(
        "MLOPS_RECEIVER_REFERENCE_URI",
        "reference_uri",
        str,
        "",
        "Reference data of the drift check; empty (the default): the champion's training "
        f"data, found through its lineage in MLflow; `{MODEL_PLACEHOLDER}` as above.",
    ),
    EnvVar(
        "MLOPS_RECEIVER_TRACKING_URI",
        "tracking_uri",
        str,
        "",
        "MLflow tracking URI the pipeline registers the challenger in (required).",
    ),
    EnvVar(
        "MLOPS_RECEIVER_PIPELINE_ARGUMENTS",
        "pipeline_arguments",
        str,
        "{}",
        'JSON object of further drift_pipeline parameters (e.g. `{"psi_threshold": 0.25}`).',
    ),
    EnvVar(
        "MLOPS_RECEIVER_RETRAIN_INTERVAL_SECONDS",
        "retrain_interval_seconds",
        float,
        6 * 3600.0,
        "At most one retrain per model in this period.",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_RECEIVER_ALERTNAME",
        "alertname",
        str,
        "ModelFeatureDrift",
        "The alert that starts a retrain (mlops_platform/components/monitoring's drift alert).",
    ),
    EnvVar(
        "MLOPS_RECEIVER_MODELS",
        "models",
        str,
        "",
        "Comma-separated models that may be retrained; empty: any model the alert names.",
    ),
    EnvVar(
        "MLOPS_RECEIVER_RELEASES",
        "releases",
        str,
        "[]",
        "JSON list of the progressive serving deployments whose releases this service drives "
        '(`[{"model": "churn", "namespace": "serving", "name": "churn", "port": 8080}]`): '
        "it releases each new challenger into their release ConfigMap, gates Flagger's "
        "rollouts on the golden set and moves the aliases after them. Empty: none.",
    ),
    EnvVar(
        "MLOPS_RECEIVER_GATE_TOLERANCE",
        "gate_tolerance",
        float,
        0.01,
        "How much lower than the champion's the candidate's golden-set ROC AUC may be.",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_RECEIVER_RECONCILE_SECONDS",
        "reconcile_seconds",
        float,
        60.0,
        "How often the registry is checked for a new challenger to release (0: never).",
        minimum=0,
    ),
    EnvVar(
        "MLOPS_RECEIVER_MAX_BODY_BYTES",
        "max_body_bytes",
        int,
        1024 * 1024,
        "Largest accepted webhook body; larger ones get 413.",
        minimum=1,
    ),
)


@dataclass(frozen=True)
class ReceiverSettings:
    """Resolved settings; build with `ReceiverSettings.from_env`."""

    host: str
    port: int
    token: str = field(repr=False)
    backend: Backend
    kfp_host: str
    experiment: str
    pipeline_root: str
    pipeline: str
    data_uri: str
    reference_uri: str
    tracking_uri: str
    pipeline_arguments: str
    retrain_interval_seconds: float
    alertname: str
    models: str
    releases: str
    gate_tolerance: float
    reconcile_seconds: float
    max_body_bytes: int

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> ReceiverSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in REGISTRY:
            if var.field in overrides:
                value = overrides.pop(var.field)
                var.check(value)
                values[var.field] = value
            elif (text := var.raw(env)).strip():
                values[var.field] = var.parse(text)
            else:
                values[var.field] = var.default
        if overrides:
            raise SettingsError(f"unknown setting(s): {', '.join(sorted(overrides))}")
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        for name in ("data_uri", "tracking_uri"):
            if not getattr(self, name):
                raise SettingsError(f"{_var(name)} must be set")
        if len(self.token) < MIN_TOKEN_LENGTH:
            raise SettingsError(
                f"MLOPS_RECEIVER_TOKEN must be set to at least {MIN_TOKEN_LENGTH} characters"
            )
        self.extra_arguments()
        self.release_deployments()
        for model in self.allowed_models():
            if not MODEL_NAME.match(model):
                raise SettingsError(f"MLOPS_RECEIVER_MODELS: {model!r} is not a model name")

    def extra_arguments(self) -> dict[str, Any]:
        try:
            extra = json.loads(self.pipeline_arguments)
        except ValueError as exc:
            raise SettingsError(f"MLOPS_RECEIVER_PIPELINE_ARGUMENTS is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise SettingsError("MLOPS_RECEIVER_PIPELINE_ARGUMENTS must be a JSON object")
        fixed = set(self._fixed_arguments("model")) & set(extra)
        if fixed:
            raise SettingsError(
                f"MLOPS_RECEIVER_PIPELINE_ARGUMENTS: {', '.join(sorted(fixed))} come from "
                "their own settings"
            )
        return extra

    def release_deployments(self) -> list[dict[str, Any]]:
        """The `releases` entries, checked: model, namespace, name, port."""
        try:
            entries = json.loads(self.releases)
        except ValueError as exc:
            raise SettingsError(f"MLOPS_RECEIVER_RELEASES is not JSON: {exc}") from None
        if not isinstance(entries, list):
            raise SettingsError("MLOPS_RECEIVER_RELEASES must be a JSON list")
        for index, entry in enumerate(entries):
            where = f"MLOPS_RECEIVER_RELEASES[{index}]"
            if not isinstance(entry, dict) or set(entry) - {"model", "namespace", "name", "port"}:
                raise SettingsError(f"{where} must be an object of model, namespace, name, port")
            for key in ("model", "namespace", "name"):
                if not isinstance(entry.get(key), str) or not MODEL_NAME.match(entry[key]):
                    raise SettingsError(f"{where}.{key} must be a name")
            if not isinstance(entry.get("port", 8080), int):
                raise SettingsError(f"{where}.port must be a number")
        return entries

    def allowed_models(self) -> frozenset[str]:
        return frozenset(m.strip() for m in self.models.split(",") if m.strip())

    def _fixed_arguments(self, model: str) -> dict[str, Any]:
        common: dict[str, Any] = {"tracking_uri": self.tracking_uri}
        if self.reference_uri:
            common["reference_uri"] = self.reference_uri.replace(MODEL_PLACEHOLDER, model)
        if self.pipeline == "windows_drift":
            return {"bucket_uri": self.data_uri, "model_name": model, **common}
        return {
            "data_uri": self.data_uri.replace(MODEL_PLACEHOLDER, model),
            "model_name": model,
            **common,
        }

    def pipeline_arguments_for(self, model: str) -> dict[str, Any]:
        """The pipeline's parameters for one model."""
        return {**self._fixed_arguments(model), **self.extra_arguments()}


def _var(field_name: str) -> str:
    return next(v.name for v in REGISTRY if v.field == field_name)


def _check_registry_matches_dataclass() -> None:
    registry_fields = [v.field for v in REGISTRY]
    dataclass_fields = [f.name for f in fields(ReceiverSettings)]
    if registry_fields != dataclass_fields:
        raise RuntimeError(f"REGISTRY {registry_fields} != ReceiverSettings {dataclass_fields}")


_check_registry_matches_dataclass()


def settings_table() -> str:
    return markdown_table(REGISTRY)
