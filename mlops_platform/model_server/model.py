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

from mlops_platform.model_server.availability import Outcome, classify, describe
from mlops_platform.model_server.drift import FeatureReference, ProfileError, parse_profile
from mlops_platform.model_server.fastpath import Compiled, NeedsPipeline, Unsupported, compile_model
from mlops_platform.model_server.schema import Column, InputSchema, Rows, to_arrays

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
        # The fitted model behind the pyfunc wrapper, for the flavors the fast path compiles.
        native = estimator if estimator is not None else self._raw_model()
        self.classes = getattr(native, "classes_", None) if native is not None else None
        self.binary_scores = (
            native is not None
            and hasattr(native, "predict_proba")
            and self.classes is not None
            and len(self.classes) == 2
        )
        if self.schema is not None and estimator is not None:
            categories = encoder_categories(estimator)
            if categories:
                self.schema = self.schema.with_categories(categories)
        self._fast: Compiled | None = None
        self._direct: Any = None
        self.fast_path_reason = ""
        if self.schema is None:
            self.fast_path_reason = "the signature has no named columns"
        elif native is None:
            flavors = sorted(set(self.mlmodel.flavors) - {"python_function"})
            self.fast_path_reason = f"flavor {', '.join(flavors) or 'python_function'}"
        else:
            kinds = {c.name: c.kind for c in self.schema.columns}
            predict_fn = self.predict_fn if estimator is not None else "predict"
            try:
                self._fast = compile_model(native, kinds, predict_fn, self.inference_threads)
            except Unsupported as exc:
                self.fast_path_reason = str(exc)
        if self._fast is None and self._pyfunc is not None and self.schema is not None:
            self._direct = _direct_pyfunc(self._pyfunc, self.schema)

    def _raw_model(self) -> Any:
        if not {"xgboost", "lightgbm"} & set(self.mlmodel.flavors):
            return None
        try:
            return self._pyfunc.get_raw_model()
        except (AttributeError, NotImplementedError):
            return None

    def frame(self, arrays: dict[str, np.ndarray]) -> Any:
        import pandas as pd

        return pd.DataFrame(arrays, copy=False)

    @property
    def fast_path(self) -> bool:
        return self._fast is not None

    @property
    def fast_path_description(self) -> str:
        if self._fast is not None:
            return self._fast.description
        direct = "; pyfunc without per-call signature enforcement" if self._direct else ""
        return f"generic ({self.fast_path_reason or 'not compiled'}){direct}"

    def predict(self, arrays: dict[str, np.ndarray]) -> tuple[list[Any], np.ndarray | None]:
        """Predictions as pyfunc would return them, and the score (the positive-class
        probability of a binary classifier, a regressor's value) if any."""
        fast = self._fast
        if fast is not None:
            try:
                predictions, scores = fast.answer(fast.output(arrays))
                return predictions.tolist(), scores
            except NeedsPipeline:
                pass
        return self._generic(arrays)

    def _generic(self, arrays: dict[str, np.ndarray]) -> tuple[list[Any], np.ndarray | None]:
        if self._estimator is None:
            frame = self.frame(arrays)
            direct = self._direct
            output = direct(frame) if direct is not None else self._pyfunc.predict(frame)
            values = np.asarray(output)
            scores = (
                values.astype(np.float64)
                if values.ndim == 1 and values.dtype.kind in "fiub"
                else None
            )
            return values.tolist(), scores
        estimator = self._estimator
        if self.binary_scores:
            proba = estimator.predict_proba(self.frame(arrays))
            scores = np.ascontiguousarray(proba[:, 1])
            if self.predict_fn == "predict_proba":
                return proba.tolist(), scores
            # The label is the class with the highest probability, which is what sklearn
            # classifiers' own `predict` returns; one call instead of two halves the latency.
            assert self.classes is not None  # binary_scores: two classes
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
        if self._fast is not None or self._direct is not None:
            self._verify_fast_path(rows)
        log.info("model %s: prediction path: %s", self.name, self.fast_path_description)
        arrays = to_arrays(self.schema, rows)
        for _ in range(rounds):
            self.predict(arrays)

    def verification_cases(self, rows: list[Rows], n_random: int = 64) -> list[Rows]:
        """The input example, its edge cases (unseen categories; missing values where the
        signature allows them) and random rows around it (seeded)."""
        assert self.schema is not None
        example = rows[0]
        n = example.n_rows
        cases = [example]
        unseen = {
            c.name: ["__unseen__"] * n if c.kind == "str" else example.columns[c.name]
            for c in self.schema.columns
        }
        cases.append(Rows(unseen, n))
        missing = {
            c.name: [None] * n if not c.required else example.columns[c.name]
            for c in self.schema.columns
        }
        cases.append(Rows(missing, n))
        rng = np.random.default_rng(20261204)
        columns: dict[str, list[Any]] = {}
        for c in self.schema.columns:
            seen = [v for v in example.columns[c.name] if not _missing_value(v)]
            columns[c.name] = [_random_value(c, seen, rng) for _ in range(n_random)]
        cases.append(Rows(columns, n_random))
        return cases

    def _verify_fast_path(self, rows: list[Rows]) -> None:
        """Keep the compiled path only if it answers like the model (see fastpath.py), and the
        pyfunc shortcut only if it answers like `PyFuncModel.predict`."""
        for case in self.verification_cases(rows):
            arrays = to_arrays(self.schema, [case]) if self.schema is not None else {}
            if self._fast is not None:
                problem = self._compare_compiled(arrays)
                if problem:
                    log.warning("compiled fast path disabled: %s", problem)
                    self.fast_path_reason = f"load-time check failed: {problem}"
                    self._fast = None
                    if self._pyfunc is not None:
                        self._direct = _direct_pyfunc(self._pyfunc, self.schema)
            if self._fast is None and self._direct is not None:
                problem = self._compare_direct(arrays)
                if problem:
                    log.warning("pyfunc shortcut disabled: %s", problem)
                    self._direct = None
        if self._fast is not None:
            log.info("model %s: compiled fast path verified against the model", self.name)

    def _compare_compiled(self, arrays: dict[str, np.ndarray]) -> str:
        fast = self._fast
        assert fast is not None
        frame = self.frame(arrays)
        try:
            expected = np.asarray(fast.reference(frame))
            answer = np.asarray(self._model_answer(frame))
        except Exception:
            return ""  # the model rejects this case; nothing to compare
        try:
            got = fast.output(arrays)
            predictions, _ = fast.answer(got)
        except NeedsPipeline:
            return ""
        except Exception as exc:
            return f"it raised {exc!r}"
        if not _same(got, expected, fast.atol, fast.rtol):
            return f"its outputs differ from the model's {getattr(fast.reference, '__name__', '')}"
        if not _same(np.asarray(predictions), answer, fast.atol, fast.rtol):
            return "its predictions differ from the model's"
        return ""

    def _model_answer(self, frame: Any) -> Any:
        if self._estimator is not None:
            return getattr(self._estimator, self.predict_fn)(frame)
        return self._pyfunc.predict(frame)

    def _compare_direct(self, arrays: dict[str, np.ndarray]) -> str:
        frame = self.frame(arrays)
        try:
            expected = np.asarray(self._pyfunc.predict(frame))
        except Exception:
            return ""
        try:
            got = np.asarray(self._direct(self.frame(arrays)))
        except Exception as exc:
            return f"it raised {exc!r}"
        return "" if _same(got, expected, 0.0, 0.0) else "its answers differ"


def _same(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> bool:
    if got.shape != expected.shape:
        return False
    if got.dtype.kind in "fc" or expected.dtype.kind in "fc":
        try:
            return bool(np.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True))
        except TypeError:
            return False
    return bool(np.array_equal(got, expected))


def _random_value(column: Column, seen: list[Any], rng: np.random.Generator) -> Any:
    if not column.required and rng.random() < 0.1:
        return None
    if column.kind in ("float", "int"):
        base = float(rng.choice(seen)) if seen else 0.0
        value = base * rng.uniform(0.5, 1.5) + rng.normal(0.0, 1.0 + abs(base) * 0.1)
        return round(value) if column.kind == "int" else value
    if column.kind == "bool":
        return bool(rng.random() < 0.5)
    if column.kind == "str":
        pool = sorted(column.categories, key=str) if column.categories else seen
        return pool[int(rng.integers(len(pool)))] if pool else ""
    return seen[int(rng.integers(len(seen)))] if seen else None


def _direct_pyfunc(pyfunc: Any, schema: InputSchema | None) -> Any:
    """The pyfunc flavor's own predict function, or None. `PyFuncModel.predict` converts and
    checks every column against the signature on every call, which the server's schema has
    already done for every row (same types, same order); calling the flavor's function is
    then the same prediction without that cost. Checked against `predict` at load time.
    Not for datetime or binary columns: MLflow converts those, the server keeps strings."""
    import inspect

    if schema is None or any(c.mlflow_type in ("datetime", "binary") for c in schema.columns):
        return None
    try:
        meta = pyfunc.metadata
        if meta._is_signature_from_type_hint() or meta._is_type_hint_from_example():
            return None
        fn = pyfunc._predict_fn
        params = inspect.signature(fn).parameters
    except (AttributeError, TypeError, ValueError):
        return None
    required = [
        p
        for p in list(params.values())[1:]
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]
    return None if required else fn


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

    from mlops_platform.model_server.fastpath import _resolve_columns

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
