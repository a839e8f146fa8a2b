"""Load one MLflow model (registry alias/version, run, or local path) and predict with it.

What to run is decided from the model's own metadata (MLmodel), not from flags: the sklearn
flavor is loaded natively when present (one `predict_proba` call gives both the labels and the
churn score), any other flavor through pyfunc. The signature becomes the input schema and the
`reference_profile` metadata entry, when present, the drift reference.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from serving_images.model_server.availability import Outcome, classify, describe
from serving_images.model_server.drift import FeatureReference, ProfileError, parse_profile
from serving_images.model_server.fastpath import NeedsPipeline
from serving_images.model_server.schema import InputSchema, Rows, to_arrays

log = logging.getLogger(__name__)

_REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<ref>[^/]+))?/?$")


class ModelLoadError(RuntimeError):
    """The model cannot be resolved, downloaded or loaded; the message names the URI."""


class ModelNotAvailable(ModelLoadError):
    """The model is not there yet (or the tracking server is not): worth retrying.

    Raised only while resolving and downloading; once the files are here, anything that goes
    wrong (flavor, signature, loading, warm-up) is a `ModelLoadError` that waiting cannot fix.
    """

    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class ResolvedModel:
    uri: str
    local_path: str
    name: str
    version: str


def resolve(model_uri: str, served_name: str = "") -> ResolvedModel:
    """Resolve `model_uri` to a local directory plus the name/version used in labels."""
    match = _REGISTRY_URI.match(model_uri)
    if match:
        name = match["name"]
        version = _registry_version(name, match["alias"], match["ref"], model_uri)
        # Pin the download to the resolved version so a concurrent alias move cannot mix
        # the metadata of one version with the weights of another.
        local = _download(f"models:/{name}/{version}")
        return ResolvedModel(model_uri, local, served_name or name, version)
    if "://" in model_uri or model_uri.startswith(("runs:/", "models:/")):
        local = _download(model_uri)
        return ResolvedModel(model_uri, local, served_name or _basename(local), "1")
    path = model_uri[len("file:") :] if model_uri.startswith("file:") else model_uri
    if not os.path.isfile(os.path.join(path, "MLmodel")):
        raise ModelLoadError(f"model path {path!r} has no MLmodel file")
    return ResolvedModel(model_uri, path, served_name or _basename(path), "local")


def _basename(path: str) -> str:
    return os.path.basename(os.path.normpath(path)) or "model"


def _registry_version(name: str, alias: str | None, ref: str | None, uri: str) -> str:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        if alias:
            return _alias_version(client, name, alias, uri)
        if ref is None or ref.lower() == "latest":
            versions = client.search_model_versions(f"name='{name}'")
            if not versions:
                raise ModelNotAvailable(
                    f"{uri}: registered model {name!r} does not exist or has no versions yet",
                    "not_found",
                )
            return str(max(int(v.version) for v in versions))
        if ref.isdigit():
            return str(client.get_model_version(name, ref).version)
        versions = client.get_latest_versions(name, stages=[ref])  # legacy stage name
        if not versions:
            raise ModelNotAvailable(
                f"{uri}: no version of {name!r} in stage {ref!r} yet", "not_found"
            )
        return str(versions[0].version)
    except MlflowException as exc:
        raise _load_error(uri, exc) from None


def _alias_version(client: Any, name: str, alias: str, uri: str) -> str:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import (
        _validate_model_alias_name,
        _validate_model_alias_name_reserved,
    )

    # A malformed alias can never be set, so it must not be waited for.
    _validate_model_alias_name(alias)
    _validate_model_alias_name_reserved(alias)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code != "INVALID_PARAMETER_VALUE":
            raise
        # The tracking server answers an alias that is not set with INVALID_PARAMETER_VALUE,
        # the code of malformed requests too; the registered model's aliases tell them apart.
        # An alias set between the two calls is there now: its version is the answer.
        aliases = client.get_registered_model(name).aliases
        if alias in aliases:
            return str(aliases[alias])
        present = ", ".join(sorted(aliases)) or "none"
        raise ModelNotAvailable(
            f"{uri}: registered model {name!r} has no alias {alias!r} yet (aliases: {present})",
            "not_found",
        ) from None


def _load_error(uri: str, exc: BaseException) -> ModelLoadError:
    from mlflow import get_tracking_uri

    outcome = classify(exc)
    message = f"{uri}: {describe(exc, outcome, get_tracking_uri())}"
    if outcome == "failed":
        return ModelLoadError(message)
    return ModelNotAvailable(message, outcome)


def _download(uri: str) -> str:
    import mlflow

    # tempfile honours TMPDIR, which the image points at a writable volume.
    target = tempfile.mkdtemp(prefix="mlops-serve-model-")
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=target)
    except Exception as exc:
        # Artifact stores raise their own errors too (botocore's ClientError for a missing
        # S3 key); `classify` knows which of them mean "not there yet".
        shutil.rmtree(target, ignore_errors=True)
        raise _load_error(uri, exc) from None
    # MLflow answers an artifact directory that was not uploaded (yet) with an empty download.
    if not os.path.isfile(os.path.join(local, "MLmodel")):
        shutil.rmtree(target, ignore_errors=True)
        raise ModelNotAvailable(f"{uri}: its artifacts have no MLmodel file (yet)", "not_found")
    return local


class ServedModel:
    """A loaded model: validated rows in, (predictions, scores) out."""

    def __init__(self, resolved: ResolvedModel, inference_threads: int = 1) -> None:
        from mlflow.models import Model

        self.resolved = resolved
        self.inference_threads = inference_threads
        self.name = resolved.name
        self.version = resolved.version
        try:
            self.mlmodel = Model.load(resolved.local_path)
        except Exception as exc:
            raise ModelLoadError(f"{resolved.uri}: cannot read MLmodel: {exc}") from None
        self.schema = InputSchema.from_signature(self.mlmodel.signature)
        pyfunc_conf = self.mlmodel.flavors.get("python_function", {})
        self.predict_fn = pyfunc_conf.get("predict_fn", "predict")
        self.platform = "mlflow_sklearn" if "sklearn" in self.mlmodel.flavors else "mlflow_pyfunc"
        self.references = self._references()
        self._estimator: Any = None
        self._pyfunc: Any = None
        self._load()

    def _references(self) -> dict[str, FeatureReference]:
        profile = (self.mlmodel.metadata or {}).get("reference_profile")
        if profile is None:
            return {}
        try:
            references = parse_profile(profile)
        except ProfileError as exc:
            log.warning("model %s: drift metrics disabled: %s", self.name, exc)
            return {}
        if self.schema is not None:
            unknown = set(references) - set(self.schema.names)
            if unknown:
                log.warning("reference_profile features not in the signature: %s", sorted(unknown))
            references = {k: v for k, v in references.items() if k in self.schema.by_name}
        return references

    def _load(self) -> None:
        try:
            if "sklearn" in self.mlmodel.flavors:
                import mlflow.sklearn

                self._estimator = mlflow.sklearn.load_model(self.resolved.local_path)
            else:
                import mlflow.pyfunc

                self._pyfunc = mlflow.pyfunc.load_model(self.resolved.local_path)
        except Exception as exc:
            raise ModelLoadError(f"{self.resolved.uri}: cannot load model: {exc}") from exc
        estimator = self._estimator
        self.classes = getattr(estimator, "classes_", None) if estimator is not None else None
        self.binary_scores = (
            estimator is not None
            and hasattr(estimator, "predict_proba")
            and self.classes is not None
            and len(self.classes) == 2
        )
        if self.schema is not None and estimator is not None:
            categories = encoder_categories(estimator)
            if categories:
                self.schema = self.schema.with_categories(categories)
        self._fast: Any = None
        if self.binary_scores and self.schema is not None:
            from serving_images.model_server.fastpath import compile_predict_proba

            self._fast = compile_predict_proba(estimator, self.inference_threads)

    def frame(self, arrays: dict[str, np.ndarray]) -> Any:
        import pandas as pd

        return pd.DataFrame(arrays, copy=False)

    @property
    def fast_path(self) -> bool:
        return self._fast is not None

    def _predict_proba(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        if self._fast is not None:
            try:
                return self._fast(arrays)
            except NeedsPipeline:
                pass
        return self._estimator.predict_proba(self.frame(arrays))

    def predict(self, arrays: dict[str, np.ndarray]) -> tuple[list[Any], np.ndarray | None]:
        """Predictions as pyfunc would return them, and the positive-class score if any."""
        if self._estimator is None:
            output = self._pyfunc.predict(self.frame(arrays))
            values = np.asarray(output)
            scores = (
                values.astype(np.float64)
                if values.ndim == 1 and values.dtype.kind in "fiub"
                else None
            )
            return values.tolist(), scores
        estimator = self._estimator
        if self.binary_scores:
            proba = self._predict_proba(arrays)
            scores = np.ascontiguousarray(proba[:, 1])
            if self.predict_fn == "predict_proba":
                return proba.tolist(), scores
            # The label is the class with the highest probability, which is what sklearn
            # classifiers' own `predict` returns; one call instead of two halves the latency.
            labels = self.classes[(scores > proba[:, 0]).astype(np.intp)]
            return labels.tolist(), scores
        output = np.asarray(getattr(estimator, self.predict_fn)(self.frame(arrays)))
        scores = (
            output.astype(np.float64) if output.ndim == 1 and output.dtype.kind in "fiub" else None
        )
        return output.tolist(), scores

    def example_request(self) -> dict[str, Any] | None:
        """The model's saved MLflow input example as an `/invocations` body (`dataframe_split`),
        or None when it has none a client could send. Read once."""
        if not hasattr(self, "_example_request"):
            self._example_request = self._load_example_request()
        return self._example_request

    def _load_example_request(self) -> dict[str, Any] | None:
        example = None
        try:
            example = self.mlmodel.load_input_example(self.resolved.local_path)
        except Exception as exc:
            log.warning("cannot load the input example: %s", exc)
        if example is None or self.schema is None or not hasattr(example, "to_dict"):
            return None
        records = example.to_dict(orient="split")
        return {
            "dataframe_split": {
                "columns": list(records["columns"]),
                "data": _plain(records["data"]),
            }
        }

    def warmup_rows(self) -> list[Rows]:
        """Rows to warm the model with: its saved input example, else one synthetic row."""
        example = self.example_request()
        if example is not None:
            assert self.schema is not None
            return [self.schema.rows_from_invocations(example)]
        if self.schema is None:
            return []
        synthetic = {"float": 0.0, "int": 0, "str": "", "bool": False, "any": 0.0}
        row = {
            c.name: [min(c.categories, key=str) if c.categories else synthetic[c.kind]]
            for c in self.schema.columns
        }
        return [self.schema.validate(row, 1)]

    def warm_up(self, rounds: int = 3) -> None:
        rows = self.warmup_rows()
        if not rows or self.schema is None:
            return
        if self._fast is not None:
            self._verify_fast_path(rows)
        arrays = to_arrays(self.schema, rows)
        for _ in range(rounds):
            self.predict(arrays)

    def _verify_fast_path(self, rows: list[Rows]) -> None:
        """Keep the numpy fast path only if it answers like the pipeline (see fastpath.py)."""
        assert self.schema is not None
        cases = [rows[0]]
        # Edge cases: unseen categories, and missing values where the signature allows them.
        unseen = {
            c.name: ["__unseen__"] * rows[0].n_rows if c.kind == "str" else rows[0].columns[c.name]
            for c in self.schema.columns
        }
        cases.append(Rows(unseen, rows[0].n_rows))
        missing = {
            c.name: [None] * rows[0].n_rows if not c.required else rows[0].columns[c.name]
            for c in self.schema.columns
        }
        cases.append(Rows(missing, rows[0].n_rows))
        for case in cases:
            arrays = to_arrays(self.schema, [case])
            try:
                expected = self._estimator.predict_proba(self.frame(arrays))
            except Exception:
                continue  # the pipeline rejects this case; nothing to compare
            try:
                got = self._fast(arrays)
            except NeedsPipeline:
                continue
            except Exception as exc:
                log.warning("numpy fast path disabled: %r", exc)
                self._fast = None
                return
            if got.shape != expected.shape or not np.allclose(got, expected, rtol=0, atol=1e-9):
                log.warning("numpy fast path disabled: its answers differ from the pipeline's")
                self._fast = None
                return
        log.info("model %s: numpy fast path verified against the pipeline", self.name)


def encoder_categories(model: Any) -> dict[str, tuple[frozenset[Any], bool]]:
    """Input column -> (categories, missing allowed) of every fitted encoder that raises on an
    unknown value (`handle_unknown="error"`), when a pipeline's first step routes named input
    columns straight to it (alone, or after a `SimpleImputer`, which leaves known values as
    they are and fills missing ones). Checking these at validation rejects the one bad request
    instead of failing the whole micro-batch it would join. Anything else: no entry."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    from serving_images.model_server.fastpath import Unsupported, _resolve_columns

    if type(model) is not Pipeline or type(model.steps[0][1]) is not ColumnTransformer:
        return {}
    ct = model.steps[0][1]
    names = list(getattr(ct, "feature_names_in_", []))
    found: dict[str, tuple[frozenset[Any], bool]] = {}
    for _name, trans, columns in getattr(ct, "transformers_", []):
        imputed = False
        encoder = trans
        if type(trans) is Pipeline:
            steps = [step for _, step in trans.steps]
            imputed = len(steps) > 1 and type(steps[0]) is SimpleImputer
            encoder = steps[1] if imputed else steps[0]
        if type(encoder) not in (OneHotEncoder, OrdinalEncoder):
            continue
        if encoder.handle_unknown != "error" or not hasattr(encoder, "categories_"):
            continue
        try:
            selected = _resolve_columns(columns, names, ct.n_features_in_, named=True)
        except (Unsupported, IndexError, TypeError):
            continue
        if len(selected) != len(encoder.categories_):
            continue
        for column, categories in zip(selected, encoder.categories_, strict=True):
            values = categories.tolist()
            known = frozenset(v for v in values if not _missing_value(v))
            missing = imputed or len(known) < len(values)
            if column in found:  # a column used twice: only values both encoders know
                previous, previous_missing = found[column]
                known, missing = known & previous, missing and previous_missing
            found[column] = (known, missing)
    return found


def _missing_value(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(data: list[list[Any]]) -> list[list[Any]]:
    # DataFrame.to_dict yields numpy scalars and float NaN; the schema checks plain types.
    out = []
    for row in data:
        plain = []
        for value in row:
            if isinstance(value, np.generic):
                value = value.item()
            plain.append(value)
        out.append(plain)
    return out
