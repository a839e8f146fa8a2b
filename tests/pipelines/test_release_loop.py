"""The release loop for real: MLflow's registry (sqlite store), model servers serving the
registered versions, and the release ConfigMap behind an in-memory store (no API server here).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlops_platform.pipelines.components.evaluate_model.logic import evaluate
from mlops_platform.pipelines.components.register_model.logic import golden_sample, register
from mlops_platform.pipelines.components.train_model import logic as training
from mlops_platform.pipelines.data import churn
from mlops_platform.pipelines.loop import release
from mlops_platform.pipelines.loop.release import Deployment, ReleaseError
from tests.serving.serving_support import start_server, stop_server, wait_ready

pytestmark = pytest.mark.slow


class MemoryStore:
    """The release ConfigMaps, as the Kubernetes API would keep them."""

    def __init__(self, data: dict[tuple[str, str], str] | None = None) -> None:
        self.data = dict(data or {})
        self.writes: list[tuple[str, str, str]] = []

    def read(self, namespace: str, name: str) -> str | None:
        return self.data.get((namespace, name))

    def write(self, namespace: str, name: str, model_uri: str) -> None:
        self.data[(namespace, name)] = model_uri
        self.writes.append((namespace, name, model_uri))


def _train(frame: pd.DataFrame, target: Path) -> str:
    result = training.train(frame, search_iterations=1, search_rows=3000, max_iter=20)
    training.save(result, frame, str(target), seed=0)
    return str(target)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, churn_small):
    """Version 1 (champion) and 3 (the same model) are good, 2 was trained on shuffled labels;
    each run carries the golden set."""
    import mlflow
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("churn", artifact_location=str(folder / "artifacts"))
    mlflow.set_tracking_uri(uri)
    train, golden = churn_small.head(6000), churn_small.tail(2000)
    golden_path = folder / "golden.parquet"
    golden.to_parquet(golden_path, index=False)
    shuffled = train.assign(
        **{churn.LABEL: train[churn.LABEL].sample(frac=1, random_state=1).values}
    )
    good = _train(train, folder / "good")
    bad = _train(shuffled, folder / "bad")
    try:
        for model_dir in (good, bad):
            model, _ = training.load(model_dir)
            evaluation = {
                "candidate": evaluate(model, golden, ["membership_tier"]),
                "champion": None,
                "promote": True,
                "reason": "test",
            }
            register(
                tracking_uri=uri,
                model_dir=model_dir,
                evaluation=evaluation,
                dataset_sha256="ab" * 32,
                pipeline="training",
                golden_path=str(golden_path),
            )
        client = MlflowClient(uri)
        # Version 3: the first model again, as a retrain that came out the same (its run's
        # golden set too); logging a third model would only cost time.
        first = client.get_model_version("churn", "1")
        client.create_model_version("churn", first.source, run_id=first.run_id)
    finally:
        mlflow.set_tracking_uri(None)
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_registered_model_alias("churn", "challenger", "3")
    return uri, client


@pytest.fixture(scope="module")
def servers(registry, tmp_path_factory):
    uri, _ = registry
    folder = tmp_path_factory.mktemp("servers")
    started = {
        version: start_server(
            f"models:/churn/{version}", folder, env={"MLFLOW_TRACKING_URI": uri}, wait=False
        )
        for version in ("1", "2", "3")
    }
    try:
        for server in started.values():
            wait_ready(server)
        yield {version: server.url for version, server in started.items()}
    finally:
        for server in started.values():
            stop_server(server)


def _deployment(canary: str, primary: str, servers) -> Deployment:
    return Deployment(
        model="churn",
        namespace="serving",
        name="churn",
        urls={"canary": servers[canary], "primary": servers[primary]},
    )


def test_the_golden_set_is_logged_with_the_run_stratified(registry, churn_small):
    _, client = registry
    golden = release.golden_set(client, "churn", "3")
    assert list(golden.columns) == [*churn.FEATURE_NAMES, churn.LABEL]
    assert len(golden) == 2000 and set(golden[churn.LABEL]) == {0, 1}
    big = pd.concat([churn_small] * 2, ignore_index=True)
    sample = golden_sample(big, rows=1000)
    assert len(sample) == pytest.approx(1000, abs=2)
    rate = big[churn.LABEL].mean()
    assert sample[churn.LABEL].mean() == pytest.approx(rate, abs=0.01)


def test_reconcile_releases_a_new_challenger_once(registry):
    _, client = registry
    store = MemoryStore({("serving", "churn-model"): "models:/churn@champion"})
    deployment = Deployment(model="churn", namespace="serving", name="churn")
    assert release.reconcile(client, store, deployment) == "3"
    assert store.data[("serving", "churn-model")] == "models:/churn/3"
    assert client.get_model_version("churn", "3").tags["rollout"] == "released"
    assert release.reconcile(client, store, deployment) is None  # idempotent
    assert len(store.writes) == 1


def test_the_gate_passes_an_equal_candidate_and_stops_a_worse_one(registry, servers):
    _, client = registry
    good = release.gate(client, _deployment("3", "1", servers), tolerance=0.01)
    assert good.passed, good.describe()
    assert (good.canary_version, good.primary_version, good.rows) == ("3", "1", 2000)
    assert good.canary_auc == pytest.approx(good.primary_auc, abs=1e-9)
    assert good.primary_auc > 0.75
    bad = release.gate(client, _deployment("2", "1", servers), tolerance=0.01)
    assert not bad.passed
    assert bad.canary_auc < 0.6 < bad.primary_auc
    assert "version 2 fails the golden-set gate" in bad.describe()


def test_settle_moves_the_alias_after_promotion(registry, servers):
    _, client = registry
    # Flagger promoted: the primary now serves version 2.
    done = release.settle(client, MemoryStore(), _deployment("3", "3", servers), "Succeeded")
    assert done == "churn version 3 promoted: alias champion moved"
    aliases = client.get_registered_model("churn").aliases
    assert aliases.get("champion") == 3 and "challenger" not in aliases
    assert client.get_model_version("churn", "3").tags["rollout"] == "promoted"
    # Nothing left to release.
    store = MemoryStore({("serving", "churn-model"): "models:/churn/3"})
    assert release.reconcile(client, store, Deployment("churn", "serving", "churn")) is None


def test_a_rolled_back_version_is_rejected_and_never_released_again(registry, servers):
    _, client = registry
    client.set_registered_model_alias("churn", "challenger", "2")
    store = MemoryStore({("serving", "churn-model"): "models:/churn/2"})
    done = release.settle(client, store, _deployment("2", "3", servers), "Failed")
    assert done == "churn version 2 rolled back: tagged rollout=rejected"
    assert "challenger" not in client.get_registered_model("churn").aliases
    client.set_registered_model_alias("churn", "challenger", "2")  # e.g. set again by hand
    assert release.reconcile(client, MemoryStore(), Deployment("churn", "serving", "churn")) is None


def test_bad_input_is_refused_with_the_reason(registry, servers):
    _, client = registry
    with pytest.raises(ReleaseError, match="phase 'Progressing'"):
        release.settle(client, MemoryStore(), _deployment("3", "1", servers), "Progressing")
    with pytest.raises(ReleaseError, match="not a pinned model version"):
        release.settle(
            client,
            MemoryStore({("serving", "churn-model"): "models:/churn@champion"}),
            _deployment("3", "1", servers),
            "Failed",
        )
    assert release.pinned_version("models:/churn/12") == "12"
    assert release.pinned_version("models:/churn@challenger") is None
    payload = release.FlaggerPayload.model_validate(
        {"name": "churn", "namespace": "serving", "phase": "Succeeded", "extra": 1}
    )
    assert payload.metadata == {}


# --- through the loop service's HTTP endpoints (what Flagger calls) -----------------------------


def _service(client, servers, canary: str, primary: str, store=None):
    import httpx

    from mlops_platform.pipelines.loop import receiver as rcv
    from mlops_platform.pipelines.loop.receiver_settings import ReceiverSettings

    settings = ReceiverSettings.from_env(
        {
            "MLOPS_RECEIVER_TOKEN": "t" * 20,
            "MLOPS_RECEIVER_DATA_URI": "s3://d/{model}.parquet",
            "MLOPS_RECEIVER_REFERENCE_URI": "s3://d/{model}-ref.parquet",
            "MLOPS_RECEIVER_TRACKING_URI": "unused",
        }
    )
    controller = rcv.ReleaseController(
        [_deployment(canary, primary, servers)], tolerance=0.01, client=client, store=store
    )
    app = rcv.build(settings, runs=object(), releases=controller)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://loop")


def _payload(phase: str, name: str = "churn") -> dict:
    return {"name": name, "namespace": "serving", "phase": phase, "checksum": "abc"}


@pytest.mark.anyio
async def test_flagger_gate_endpoint_passes_a_good_release_and_holds_a_bad_one(registry, servers):
    _, client = registry
    async with _service(client, servers, canary="3", primary="1") as http:
        good = await http.post("/flagger/gate", json=_payload("Progressing"))
    assert good.status_code == 200, good.text
    assert good.json()["passed"] is True
    async with _service(client, servers, canary="2", primary="1") as http:
        bad = await http.post("/flagger/gate", json=_payload("Progressing"))
        unknown = await http.post("/flagger/gate", json=_payload("Progressing", name="other"))
        garbage = await http.post("/flagger/gate", content=b"{}")
        wrong_method = await http.get("/flagger/gate")
    assert bad.status_code == 412 and "version 2 fails the golden-set gate" in bad.json()["detail"]
    assert unknown.status_code == 422 and "serving/other is not a deployment" in unknown.text
    assert garbage.status_code == 422
    assert wrong_method.status_code == 405


@pytest.mark.anyio
async def test_flagger_settle_endpoint_rejects_a_rolled_back_release(registry, servers):
    _, client = registry
    client.set_registered_model_alias("churn", "challenger", "2")
    store = MemoryStore({("serving", "churn-model"): "models:/churn/2"})
    async with _service(client, servers, canary="2", primary="1", store=store) as http:
        failed = await http.post("/flagger/settle", json=_payload("Failed"))
        odd = await http.post("/flagger/settle", json=_payload("Progressing"))
    assert failed.status_code == 200
    assert failed.json()["detail"] == "churn version 2 rolled back: tagged rollout=rejected"
    assert client.get_model_version("churn", "2").tags["rollout"] == "rejected"
    assert odd.status_code == 503 and "post-rollout expects" in odd.json()["detail"]


def test_reconcile_all_logs_and_continues_past_a_failing_deployment(registry, caplog):
    from mlops_platform.pipelines.loop import receiver as rcv

    _, client = registry

    class Broken(MemoryStore):
        def read(self, namespace, name):
            raise ConnectionError("API server unreachable")

    controller = rcv.ReleaseController(
        [Deployment("churn", "serving", "churn")], tolerance=0.01, client=client, store=Broken()
    )
    # A challenger that reconcile would release (not the champion, not rejected).
    client.set_registered_model_alias("churn", "champion", "3")
    client.set_registered_model_alias("churn", "challenger", "1")
    client.delete_model_version_tag("churn", "1", "rollout")
    with caplog.at_level("WARNING"):
        assert controller.reconcile_all() == []
    assert '"event": "reconcile_failed"' in caplog.text
    assert "API server unreachable" in caplog.text


def test_the_loop_writes_the_config_map_the_serving_component_renders():
    from mlops_platform.components.serving.delivery import release_config_map_name

    # mlops_platform.pipelines cannot import the components (the platform image has no Pulumi SDKs).
    assert release.release_config_map("churn-eu") == release_config_map_name("churn-eu")
