"""Releases on the cluster follow the model registry, and the registry follows the cluster.

Three steps of the loop, each small and idempotent (see mlops_platform/components/serving/README.md for the
release model: a release is a pinned model version in the ConfigMap `<deployment>-model`, which
Flagger analyses):

- `reconcile`: a new `challenger` in MLflow that is neither the champion, nor rejected, nor
  already released is written into the release ConfigMap (`models:/<name>/<version>`). That is
  the new revision Flagger sees.
- `gate` (Flagger `pre-rollout` webhook): the golden set logged with the candidate's training
  run is sent through the serving path to the canary and to the primary (the champion), and the
  candidate passes when its ROC AUC is at least the champion's less `tolerance`. A failing gate
  holds the rollout; after `threshold` failures Flagger rolls it back.
- `settle` (Flagger `post-rollout` webhook, after promotion or rollback): on `Succeeded` the
  alias `champion` moves to the version the primary now serves and `challenger` is dropped, so
  the registry and the cluster agree; on `Failed` the released version is tagged
  `rollout=rejected` and loses `challenger`, so `reconcile` does not release it again.

The Kubernetes side is behind `ReleaseStore` (the in-cluster implementation patches the
ConfigMap with the official client); the serving side is the model server's own v2 API.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlops_platform.pipelines.components.common import CHALLENGER_ALIAS, CHAMPION_ALIAS
from mlops_platform.pipelines.data import churn

log = logging.getLogger(__name__)

# Where the training pipeline logs the golden set with the candidate's run (register step).
GOLDEN_ARTIFACT = "golden/golden.parquet"
ROLLOUT_TAG = "rollout"
RELEASE_KEY = "model_uri"
_PINNED = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>[0-9]+)$")
# Rows per request to the model server (its default max batch is larger; keeps bodies small).
CHUNK_ROWS = 500


class ReleaseError(Exception):
    """The loop cannot decide (the message says why); nothing was changed."""


def release_config_map(deployment: str) -> str:
    """The serving component's release ConfigMap (mlops_platform/components/serving/delivery.py)."""
    return f"{deployment}-model"


def pinned_uri(model: str, version: str) -> str:
    return f"models:/{model}/{version}"


def pinned_version(uri: str | None) -> str | None:
    match = _PINNED.match(uri or "")
    return match["version"] if match else None


class ReleaseStore(Protocol):
    def read(self, namespace: str, name: str) -> str | None: ...

    def write(self, namespace: str, name: str, model_uri: str) -> None: ...


class KubernetesReleaseStore:
    """The release ConfigMaps, through the Kubernetes API with the pod's service account (a Role
    that may get and patch only those ConfigMaps)."""

    def __init__(self, api: Any | None = None) -> None:
        if api is None:
            from kubernetes import client, config

            config.load_incluster_config()
            api = client.CoreV1Api()
        self.api = api

    def read(self, namespace: str, name: str) -> str | None:
        return (self.api.read_namespaced_config_map(name, namespace).data or {}).get(RELEASE_KEY)

    def write(self, namespace: str, name: str, model_uri: str) -> None:
        self.api.patch_namespaced_config_map(name, namespace, {"data": {RELEASE_KEY: model_uri}})


@dataclass(frozen=True)
class Deployment:
    """One progressive serving deployment: its registered model and where it runs."""

    model: str
    namespace: str
    name: str
    port: int = 8080
    # Base URLs by side, where they are not Flagger's Services (tests, port-forwards).
    urls: dict[str, str] | None = None

    def url(self, side: Literal["canary", "primary"]) -> str:
        if self.urls is not None:
            return self.urls[side]
        return f"http://{self.name}-{side}.{self.namespace}:{self.port}"


# --- reconcile --------------------------------------------------------------------------------


def _alias_version(client: Any, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def reconcile(client: Any, store: ReleaseStore, deployment: Deployment) -> str | None:
    """Release the challenger when there is a new one; the version released, or None."""
    challenger = _alias_version(client, deployment.model, CHALLENGER_ALIAS)
    if challenger is None:
        return None
    if challenger == _alias_version(client, deployment.model, CHAMPION_ALIAS):
        return None
    tags = client.get_model_version(deployment.model, challenger).tags or {}
    if tags.get(ROLLOUT_TAG) == "rejected":
        return None
    config_map = release_config_map(deployment.name)
    uri = pinned_uri(deployment.model, challenger)
    if store.read(deployment.namespace, config_map) == uri:
        return None
    store.write(deployment.namespace, config_map, uri)
    client.set_model_version_tag(deployment.model, challenger, ROLLOUT_TAG, "released")
    log.info(
        "released %s version %s to %s/%s",
        deployment.model,
        challenger,
        deployment.namespace,
        config_map,
    )
    return challenger


# --- Flagger webhooks -------------------------------------------------------------------------


class FlaggerPayload(BaseModel):
    """What Flagger posts to a webhook (its `CanaryWebhookPayload`)."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=63)
    namespace: str = Field(min_length=1, max_length=63)
    phase: str
    checksum: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


Post = Callable[[str, dict[str, Any]], dict[str, Any]]
Get = Callable[[str], dict[str, Any]]


# The gate's golden-set requests are synthetic: the model server answers and scores them but
# keeps them out of its drift window and prediction log (mlops_platform/model_server/app.py).
SYNTHETIC_HEADERS = {"X-Mlops-Synthetic": "golden-set-gate"}


def _http_post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    import requests

    response = requests.post(url, json=body, headers=SYNTHETIC_HEADERS, timeout=30)
    response.raise_for_status()
    return response.json()


def _http_get(url: str) -> dict[str, Any]:
    import requests

    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return response.json()


def v2_request(frame: pd.DataFrame, datatypes: dict[str, str]) -> dict[str, Any]:
    """An Open Inference Protocol request of `frame`'s rows, missing values as null."""
    inputs = []
    for column in frame.columns:
        values = frame[column].astype(object).where(frame[column].notna(), None).tolist()
        inputs.append(
            {
                "name": column,
                "datatype": datatypes[column],
                "shape": [len(frame)],
                "data": values,
            }
        )
    return {"inputs": inputs}


def score_through_server(
    url: str, model: str, features: pd.DataFrame, post: Post = _http_post, get: Get = _http_get
) -> tuple[str, list[float]]:
    """(served version, scores) of `features` from a model server's v2 endpoint."""
    metadata = get(f"{url}/v2/models/{model}")
    datatypes = {spec["name"]: spec["datatype"] for spec in metadata["inputs"]}
    missing = sorted(set(datatypes) - set(features.columns))
    if missing:
        raise ReleaseError(f"the golden set lacks the model's inputs {missing}")
    version, scores = None, []
    for start in range(0, len(features), CHUNK_ROWS):
        chunk = features.iloc[start : start + CHUNK_ROWS][list(datatypes)]
        answer = post(f"{url}/v2/models/{model}/infer", v2_request(chunk, datatypes))
        version = str(answer["model_version"])
        outputs = {output["name"]: output for output in answer["outputs"]}
        if "scores" not in outputs:
            raise ReleaseError(f"{url} returns no scores: the gate needs a binary classifier")
        scores += [float(s) for s in outputs["scores"]["data"]]
    if version is None:
        raise ReleaseError("the golden set is empty")
    return version, scores


@dataclass(frozen=True)
class GateResult:
    passed: bool
    canary_version: str
    primary_version: str
    canary_auc: float
    primary_auc: float
    tolerance: float
    rows: int

    def describe(self) -> str:
        verdict = "passes" if self.passed else "fails"
        return (
            f"version {self.canary_version} {verdict} the golden-set gate: ROC AUC "
            f"{self.canary_auc:.4f} vs champion {self.primary_version} {self.primary_auc:.4f} "
            f"(tolerance {self.tolerance}) on {self.rows} rows"
        )


def golden_set(client: Any, model: str, version: str) -> pd.DataFrame:
    """The golden set logged with the version's training run."""
    import tempfile

    run_id = client.get_model_version(model, version).run_id
    if not run_id:
        raise ReleaseError(f"{model} version {version} has no training run with a golden set")
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, GOLDEN_ARTIFACT, folder)
        except Exception as exc:  # MLflow raises several kinds for a missing artifact
            raise ReleaseError(
                f"{model} version {version}: no {GOLDEN_ARTIFACT} in run {run_id} ({exc})"
            ) from None
        return pd.read_parquet(path)


def gate(
    client: Any,
    deployment: Deployment,
    tolerance: float,
    post: Post = _http_post,
    get: Get = _http_get,
) -> GateResult:
    """Evaluate the canary against the champion on the canary version's golden set, through the
    serving path of both."""
    from sklearn.metrics import roc_auc_score

    canary_version = _served_version(deployment, "canary", get)
    golden = golden_set(client, deployment.model, canary_version)
    if churn.LABEL not in golden.columns:
        raise ReleaseError(f"the golden set has no label column {churn.LABEL!r}")
    labels = golden[churn.LABEL].to_numpy()
    if len(set(labels.tolist())) < 2:
        raise ReleaseError("the golden set has one class only: ROC AUC is undefined")
    features = golden.drop(columns=[churn.LABEL])
    canary_version, canary_scores = score_through_server(
        deployment.url("canary"), deployment.model, features, post, get
    )
    primary_version, primary_scores = score_through_server(
        deployment.url("primary"), deployment.model, features, post, get
    )
    canary_auc = float(roc_auc_score(labels, canary_scores))
    primary_auc = float(roc_auc_score(labels, primary_scores))
    if math.isnan(canary_auc) or math.isnan(primary_auc):
        raise ReleaseError("ROC AUC is undefined on the golden set")
    return GateResult(
        passed=canary_auc >= primary_auc - tolerance,
        canary_version=canary_version,
        primary_version=primary_version,
        canary_auc=canary_auc,
        primary_auc=primary_auc,
        tolerance=tolerance,
        rows=len(golden),
    )


def _served_version(deployment: Deployment, side: Literal["canary", "primary"], get: Get) -> str:
    metadata = get(f"{deployment.url(side)}/v2/models/{deployment.model}")
    versions = metadata.get("versions") or []
    if len(versions) != 1:
        raise ReleaseError(f"{deployment.url(side)} serves versions {versions}, expected one")
    return str(versions[0])


def settle(
    client: Any,
    store: ReleaseStore,
    deployment: Deployment,
    phase: str,
    get: Get = _http_get,
) -> str:
    """After Flagger promoted (`Succeeded`) or rolled back (`Failed`): make the registry say so.
    Returns what was done."""
    if phase == "Succeeded":
        version = _served_version(deployment, "primary", get)
        client.set_registered_model_alias(deployment.model, CHAMPION_ALIAS, version)
        if _alias_version(client, deployment.model, CHALLENGER_ALIAS) == version:
            client.delete_registered_model_alias(deployment.model, CHALLENGER_ALIAS)
        client.set_model_version_tag(deployment.model, version, ROLLOUT_TAG, "promoted")
        return f"{deployment.model} version {version} promoted: alias {CHAMPION_ALIAS} moved"
    if phase == "Failed":
        released = store.read(deployment.namespace, release_config_map(deployment.name))
        rejected = pinned_version(released)
        if rejected is None:
            raise ReleaseError(f"the release {released!r} is not a pinned model version")
        client.set_model_version_tag(deployment.model, rejected, ROLLOUT_TAG, "rejected")
        if _alias_version(client, deployment.model, CHALLENGER_ALIAS) == rejected:
            client.delete_registered_model_alias(deployment.model, CHALLENGER_ALIAS)
        return f"{deployment.model} version {rejected} rolled back: tagged {ROLLOUT_TAG}=rejected"
    raise ReleaseError(f"phase {phase!r}: post-rollout expects Succeeded or Failed")
