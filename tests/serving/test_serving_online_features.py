"""Online features by entity key (online_features.py), without Feast: which requests are
completed, what is asked, how Feast's answer becomes v2 tensors, and every error's status.
The real round trip (feast serve + Redis) is tests/feast/test_feast_repo_real.py."""

from __future__ import annotations

import asyncio

import pytest
from serving_support import free_port

from mlops_platform.model_server.online_features import OnlineFeatures
from mlops_platform.model_server.schema import InputError
from mlops_platform.model_server.settings import Settings, SettingsError

SERVICE = OnlineFeatures(url="http://feast:6566", features="churn_model")
REFS = OnlineFeatures(
    url="http://feast:6566", features="customer_behaviour:sessions_30d, customer_behaviour:plan"
)


def _keys(*keys):
    return {
        "id": "r1",
        "inputs": [
            {"name": "customer_id", "shape": [len(keys)], "datatype": "INT64", "data": list(keys)}
        ],
    }


def _answer(keys, columns):
    """Feast's column-wise answer: the join key first, then each feature."""
    results = [{"values": list(keys), "statuses": ["PRESENT"] * len(keys)}]
    names = ["customer_id"]
    for name, values, statuses in columns:
        names.append(name)
        results.append({"values": values, "statuses": statuses})
    return {"metadata": {"feature_names": names}, "results": results}


def test_request_body_names_the_service_or_the_references():
    assert SERVICE.request_body([1, 2]) == {
        "entities": {"customer_id": [1, 2]},
        "feature_service": "churn_model",
    }
    assert REFS.request_body(["a"]) == {
        "entities": {"customer_id": ["a"]},
        "features": ["customer_behaviour:sessions_30d", "customer_behaviour:plan"],
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": [{"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
        {
            "inputs": [
                {"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [1]},
                {"name": "tenure", "shape": [1], "datatype": "FP64", "data": [1.0]},
            ]
        },
        [1, 2],
        {"inputs": "x"},
    ],
)
def test_requests_with_features_are_left_alone(payload):
    assert SERVICE.keys_only(payload) is None
    assert asyncio.run(SERVICE.complete(payload)) is payload


def test_keys_are_read_flat_or_as_a_column():
    assert SERVICE.keys_only(_keys(3, 1)) == [3, 1]
    column = {"inputs": [{"name": "customer_id", "shape": [2, 1], "data": [[3], [1]]}]}
    assert SERVICE.keys_only(column) == [3, 1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "input 'customer_id': data must be a non-empty list"),
        ([1, None], "input 'customer_id'[1] is None: each row needs the entity key"),
        ([True], "input 'customer_id'[0] is True"),
    ],
)
def test_a_missing_key_is_the_requests_fault(data, message):
    payload = {"inputs": [{"name": "customer_id", "shape": [len(data)], "data": data}]}
    with pytest.raises(InputError) as error:
        SERVICE.keys_only(payload)
    assert (error.value.status, error.value.message[: len(message)]) == (400, message)


def test_feast_answer_becomes_one_tensor_per_feature_in_its_order():
    answer = _answer(
        [1, 2],
        [
            ("sessions_30d", [5, 7], ["PRESENT", "PRESENT"]),
            ("spend", [20.5, None], ["PRESENT", "NULL_VALUE"]),
            ("plan", ["gold", "basic"], ["PRESENT", "PRESENT"]),
            ("app", [True, False], ["PRESENT", "PRESENT"]),
        ],
    )
    assert SERVICE.tensors([1, 2], answer) == [
        {"name": "sessions_30d", "shape": [2], "datatype": "INT64", "data": [5, 7]},
        {"name": "spend", "shape": [2], "datatype": "FP64", "data": [20.5, None]},
        {"name": "plan", "shape": [2], "datatype": "BYTES", "data": ["gold", "basic"]},
        {"name": "app", "shape": [2], "datatype": "BOOL", "data": [True, False]},
    ]


def test_a_key_without_any_feature_row_is_404_naming_it():
    answer = _answer(
        [1, 99, 4],
        [
            ("sessions_30d", [5, None, None], ["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"]),
            ("plan", ["gold", None, None], ["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"]),
        ],
    )
    with pytest.raises(InputError) as error:
        SERVICE.tensors([1, 99, 4], answer)
    assert error.value.status == 404
    assert error.value.message == (
        "no online features for customer_id 99, 4: unknown, or not materialized within the "
        "feature views' TTL"
    )


def test_a_malformed_answer_is_502():
    with pytest.raises(InputError) as error:
        SERVICE.tensors([1], {"detail": "boom"})
    assert error.value.status == 502


def test_an_unreachable_feature_server_is_503():
    down = OnlineFeatures(url=f"http://127.0.0.1:{free_port()}", features="churn_model")
    with pytest.raises(InputError) as error:
        asyncio.run(down.complete(_keys(1)))
    assert error.value.status == 503
    assert error.value.message.startswith(f"the feature server at {down.url} is unavailable")


def test_settings():
    assert OnlineFeatures.from_settings(Settings.from_env({})) is None
    online = OnlineFeatures.from_settings(
        Settings.from_env(
            {
                "MLOPS_SERVE_FEAST_URL": "http://feast-feature-server.feast.svc.cluster.local:6566/",
                "MLOPS_SERVE_FEAST_TIMEOUT_SECONDS": "0.5",
            }
        )
    )
    assert online == OnlineFeatures(
        url="http://feast-feature-server.feast.svc.cluster.local:6566",
        features="churn_model",
        entity_key="customer_id",
        timeout_seconds=0.5,
    )
    with pytest.raises(SettingsError, match="MLOPS_SERVE_FEAST_URL='feast:6566' must be an http"):
        Settings.from_env({"MLOPS_SERVE_FEAST_URL": "feast:6566"})
