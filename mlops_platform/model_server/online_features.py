"""Online features by entity key: a v2 request that carries only the key gets its features from
the Feast feature server.

With `MLOPS_SERVE_FEAST_URL` set, an infer request whose only input tensor is the entity key
(`MLOPS_SERVE_FEAST_ENTITY_KEY`, default `customer_id`) is completed before validation: the
server POSTs the keys to Feast's `/get-online-features` (the feature service, or the
`view:feature` references, of `MLOPS_SERVE_FEAST_FEATURES`) and replaces the key tensor with one
tensor per feature, in Feast's order. Everything after that (the signature check, batching,
the prediction log, drift) sees an ordinary request. A request that already carries the
features is left alone.

Plain HTTP, so the server needs no Feast dependency (Feast pins pandas 2). The standard
library's client, run in a worker thread: one request to Feast per infer request, in the
cluster, and no new package in the image.

Errors, each naming the key:
- a key Feast has no feature row for (unknown, or not materialized within the views' TTL): 404;
- a null or non-scalar key: 400 (the request's fault);
- Feast unreachable or too slow: 503; Feast answering with an error (e.g. an unknown feature
  service): 502 with Feast's own message.
"""

from __future__ import annotations

import asyncio
import json
import reprlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from mlops_platform.model_server.schema import InputError

PATH = "/get-online-features"


@dataclass(frozen=True)
class OnlineFeatures:
    """Where and what to ask Feast for; `from_settings` gives None when it is not configured."""

    url: str
    features: str
    entity_key: str = "customer_id"
    timeout_seconds: float = 1.0

    @classmethod
    def from_settings(cls, settings: Any) -> OnlineFeatures | None:
        if not settings.feast_url:
            return None
        return cls(
            url=settings.feast_url.rstrip("/"),
            features=settings.feast_features,
            entity_key=settings.feast_entity_key,
            timeout_seconds=settings.feast_timeout_seconds,
        )

    def request_body(self, keys: list[Any]) -> dict[str, Any]:
        """A feature service by name, or a list of `view:feature` references."""
        body: dict[str, Any] = {"entities": {self.entity_key: keys}}
        refs = [ref.strip() for ref in self.features.split(",") if ref.strip()]
        if any(":" in ref for ref in refs):
            body["features"] = refs
        else:
            body["feature_service"] = self.features.strip()
        return body

    def keys_only(self, payload: Any) -> list[Any] | None:
        """The keys when the request's only input is the entity key tensor, else None."""
        if not isinstance(payload, dict):
            return None
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            return None
        tensor = inputs[0]
        if tensor.get("name") != self.entity_key:
            return None
        data = tensor.get("data")
        if not isinstance(data, list) or not data:
            raise InputError(f"input {self.entity_key!r}: data must be a non-empty list", 400)
        keys = [v for row in data for v in (row if isinstance(row, list) else [row])]
        for i, key in enumerate(keys):
            if key is None or isinstance(key, bool | dict | list):
                raise InputError(
                    f"input {self.entity_key!r}[{i}] is {reprlib.repr(key)}: each row needs "
                    "the entity key (a string or an integer)",
                    400,
                )
        return keys

    async def complete(self, payload: Any) -> Any:
        """`payload` with the key tensor replaced by the features, or unchanged."""
        keys = self.keys_only(payload)
        if keys is None:
            return payload
        answer = await asyncio.to_thread(self._fetch, keys)
        tensors = self.tensors(keys, answer)
        return {**payload, "inputs": tensors}

    def _fetch(self, keys: list[Any]) -> Any:
        request = urllib.request.Request(
            self.url + PATH,
            data=json.dumps(self.request_body(keys)).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read()[:500].decode("utf-8", "replace")
            raise InputError(
                f"the feature server answered {error.code} for {self.entity_key} "
                f"{reprlib.repr(keys)}: {detail}",
                502,
            ) from None
        except (OSError, ValueError) as error:  # refused, timed out, not JSON
            raise InputError(
                f"the feature server at {self.url} is unavailable: {error}", 503
            ) from None

    def tensors(self, keys: list[Any], answer: Any) -> list[dict[str, Any]]:
        """One v2 input tensor per feature, from Feast's column-wise answer."""
        try:
            names = answer["metadata"]["feature_names"]
            results = answer["results"]
        except (KeyError, TypeError):
            raise InputError(
                f"the feature server's answer has no metadata.feature_names/results: "
                f"{reprlib.repr(answer)}",
                502,
            ) from None
        columns = [
            (name, result.get("values", []), result.get("statuses", []))
            for name, result in zip(names, results, strict=False)
            if name != self.entity_key
        ]
        # A key with no value for any feature has no usable row (Feast says NOT_FOUND or
        # OUTSIDE_MAX_AGE per value, or NULL_VALUE when the row exists but holds nulls only).
        absent = [
            key
            for row, key in enumerate(keys)
            if columns and all(_value(values, row) is None for _, values, _ in columns)
        ]
        if absent:
            raise InputError(
                f"no online features for {self.entity_key} {', '.join(map(repr, absent))}: "
                "unknown, or not materialized within the feature views' TTL",
                404,
            )
        return [
            {"name": name, "shape": [len(keys)], "datatype": _datatype(values), "data": values}
            for name, values, _ in columns
        ]


def _value(values: list[Any], row: int) -> Any:
    return values[row] if row < len(values) else None


def _datatype(values: list[Any]) -> str:
    """The v2 datatype of a feature column from its JSON values (nulls are missing values)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, str) for v in present):
        return "BYTES"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    return "FP64"
