"""A stack with tracing on (`monitoring.tracing`), rendered like the shipped stacks: the Jaeger
objects, istiod's mesh config with the provider, the Telemetry and the model servers' env."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_platform import plan, render


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> plan.Plan:
    document = yaml.safe_load(plan.stack_file_path("local").read_text())
    monitoring = document["config"].setdefault("mlops:monitoring", {})
    monitoring["tracing"] = {
        "enabled": True,
        "sampling_percent": 10,
        "storage": {"type": "badger", "storage_gb": 2},
    }
    path = Path(tmp_path_factory.mktemp("stacks")) / "Pulumi.traced.yaml"
    path.write_text(yaml.safe_dump(document))
    return plan.build_plan("traced", path)


def test_a_stack_with_tracing_renders_and_validates(traced: plan.Plan) -> None:
    report = render.check(traced.resources, plan.kubernetes_objects(traced))
    assert report.problems == []
    rendered = [obj for source in report.sources for obj in source.objects]
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    assert {
        ("Deployment", "jaeger"),
        ("Service", "jaeger"),
        ("ConfigMap", "jaeger"),
        ("NetworkPolicy", "jaeger"),
        ("PersistentVolumeClaim", "jaeger-badger"),
        ("Telemetry", "mesh-default"),
    } <= kinds
    (mesh,) = [o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "istio"]
    providers = yaml.safe_load(mesh["data"]["mesh"])["extensionProviders"]
    assert {
        "name": "otel-tracing",
        "opentelemetry": {"service": "jaeger.monitoring.svc.cluster.local", "port": 4317},
    } in providers
