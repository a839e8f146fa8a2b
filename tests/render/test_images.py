"""Every image the stacks deploy, over the rendered objects: the image catalogue
(mlops_platform/components/images/model.py) knows each one, and with `images.mirror` set and every lock entry
filled, no image reference leaves the mirror and every pinnable one carries its locked digest.

Rendered objects are searched in three ways: the image fields of every pod template (containers,
init containers, ephemeral containers) and of the CRs that carry one (Prometheus, Alertmanager,
...: any `spec.image`), every string anywhere that reads as a registry reference with a tag or
digest (environment variables, arguments, ConfigMaps such as Strimzi's Kafka images, the KFP
launcher and Argo executor, the compiled pipelines the sync Job publishes), and Istio's injector
values, from which every sidecar and gateway proxy is made.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_platform import plan, render
from mlops_platform.components import versions
from mlops_platform.components.images import model

STACKS = ["local", "dev", "staging", "prod", "prod-gcp"]
MIRROR = "mirror.example.com/platform"
# a registry host with a dot, a path, and a tag or a digest: what reads as an image anywhere
_REFERENCE = re.compile(
    r"(?<![\w./@-])((?:[a-z0-9-]+\.)+[a-z0-9-]+(?::[0-9]+)?/[a-z0-9._/-]+"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?(?:@sha256:[0-9a-f]{64})?)"
)
OWN = {model.Reference.parse(r).key for r in model.OWN_IMAGES}


def _pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if "containers" in spec:
        yield spec
    template = (spec.get("template") or {}).get("spec")
    if template:
        yield template
    job = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec")
    if job:
        yield job


def field_images(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, image) of the pod template's containers and a CR's own `spec.image`."""
    for pod in _pod_specs(obj):
        for kind in ("containers", "initContainers", "ephemeralContainers"):
            for container in pod.get(kind) or []:
                yield f"{kind}[{container['name']}]", container["image"]
    image = (obj.get("spec") or {}).get("image")
    if isinstance(image, str):
        yield "spec.image", image


def string_references(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_references(value, f"{path}[{index}]")
    elif isinstance(node, str):
        for match in _REFERENCE.findall(node):
            rest = match.split("/", 1)[1]
            if ":" in rest or "@" in rest:
                yield path, match


def istio_proxy_images(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The proxy images istiod injects, from the injector's values (as its templates do)."""
    if obj["kind"] != "ConfigMap" or not obj["metadata"]["name"].startswith(
        "istio-sidecar-injector"
    ):
        return
    values = json.loads(obj["data"]["values"])["global"]
    for key in ("proxy", "proxy_init"):
        image = values[key]["image"]
        full = image if "/" in image else f"{values['hub']}/{image}:{values['tag']}"
        yield f"global.{key}.image", full


def kfp_references(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The values at the places `model.KFP_REFERENCES` names (the untagged cache image reads as
    no reference otherwise); a place that is gone is an error."""
    for reference in model.KFP_REFERENCES:
        if (obj["kind"], obj["metadata"]["name"]) != (reference.kind, reference.name):
            continue
        if reference.data_key:
            yield f"data.{reference.data_key}", obj["data"][reference.data_key]
            continue
        (pod,) = _pod_specs(obj)
        (container,) = [c for c in pod["containers"] if c["name"] == reference.container]
        if reference.env:
            (value,) = [e["value"] for e in container["env"] if e["name"] == reference.env]
        else:
            args = container["args"]
            value = args[args.index(reference.argument) + 1]
        yield f"{reference.container} {reference.env or reference.argument}", value


def every_image(report: render.Report) -> Iterator[tuple[str, str]]:
    for source in report.sources:
        for obj in source.objects:
            if obj["kind"] == "CustomResourceDefinition":
                continue
            where = f"{source.source} {obj['kind']}/{obj['metadata'].get('name')}"
            for path, image in field_images(obj):
                yield f"{where} {path}", image
            for path, image in string_references(obj):
                yield f"{where} {path}", image
            for path, image in istio_proxy_images(obj):
                yield f"{where} {path}", image
            for path, image in kfp_references(obj):
                yield f"{where} {path}", image


def _key(image: str) -> str:
    ref = model.Reference.parse(
        image if ":" in image.rsplit("/", 1)[-1] or "@" in image else f"{image}:latest"
    )
    return model.Reference(ref.registry, ref.repository, ref.tag).key


@pytest.fixture(scope="module")
def default_reports() -> dict[str, render.Report]:
    reports = {}
    for stack in STACKS:
        stack_plan = plan.build_plan(stack, plan.stack_file_path(stack))
        reports[stack] = render.check(stack_plan.resources, plan.kubernetes_objects(stack_plan))
    return reports


def test_every_rendered_image_is_in_the_catalogue(default_reports):
    catalogue = {_key(entry.ref) for entry in model.catalogue()}
    found: dict[str, str] = {}
    for report in default_reports.values():
        for where, image in every_image(report):
            found.setdefault(_key(image), where)
    unknown = {key: where for key, where in found.items() if key not in catalogue}
    assert unknown == {}, (
        "add these to mlops_platform/components/images/model.py (CHART_IMAGES / KFP_*)"
    )
    # and the catalogue holds nothing the stacks never deploy (but the model server's -explain
    # variant, which a deployment selects by turning attributions on: tested below)
    never = catalogue - set(found) - {_key(versions.MODEL_SERVER_EXPLAIN_IMAGE)}
    assert never == set(), f"catalogue entries no stack renders: {sorted(never)}"


def _stack_with_mirror(stack: str, tmp_path: Path) -> Path:
    document = yaml.safe_load(plan.stack_file_path(stack).read_text())
    document["config"]["mlops:images"] = {"mirror": MIRROR}
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _fake_digest(key: str) -> str:
    """Test data only: a digest per key, so each image's own can be recognized."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize("stack", STACKS)
def test_with_the_mirror_set_no_image_leaves_it_and_locked_digests_are_pinned(
    stack, tmp_path, monkeypatch
):
    lock = {key: _fake_digest(key) for key in model.lock_keys(model.catalogue())}
    lock_file = tmp_path / "image_lock.json"
    lock_file.write_text(json.dumps({"images": lock}))
    monkeypatch.setattr(model, "LOCK_FILE", lock_file)
    path = _stack_with_mirror(stack, tmp_path)
    stack_plan = plan.build_plan(stack, path)
    report = render.check(stack_plan.resources, plan.kubernetes_objects(stack_plan))
    assert report.problems == []
    images = list(every_image(report))
    assert len(images) > 10
    leaving = sorted(
        {f"{where}: {image}" for where, image in images if not image.startswith(f"{MIRROR}/")}
    )
    assert leaving == []
    # Strimzi's operator keeps a tag-only table of Kafka images in its environment (the chart
    # cannot pin them); the Kafka resource names the image its brokers run instead, and that one
    # must carry the digest like every other image that runs.
    table_only = {_key(e.ref) for e in model.catalogue() if not e.pinnable}
    by_digest = {digest: key for key, digest in lock.items()}
    unpinned = []
    kafka_resource_images = [(w, i) for w, i in images if " Kafka/" in w]
    if any(obj["kind"] == "Kafka" for s in report.sources for obj in s.objects):
        assert {w.rsplit(" ", 1)[-1] for w, _ in kafka_resource_images} >= {
            ".spec.kafka.image",
            ".spec.entityOperator.topicOperator.image",
            ".spec.entityOperator.userOperator.image",
        }
    for where, image in kafka_resource_images:
        if "@sha256:" not in image:
            unpinned.append(f"{where}: {image} (the Kafka resource's images are pinned)")
    for where, image in images:
        ref = model.Reference.parse(image.removeprefix(f"{MIRROR}/"))
        if ref.digest:
            # the digest locked for this very image (Strimzi's chart writes it instead of the
            # tag: `operator@sha256:...`; every other chart keeps `tag@sha256:...`)
            locked = by_digest.get(ref.digest, "")
            if not locked.startswith(f"{ref.name}:") or (ref.tag and locked != ref.key):
                unpinned.append(f"{where}: {image} (not the digest locked for it)")
        elif ref.key not in OWN | table_only:
            unpinned.append(f"{where}: {image}")
    assert sorted(set(unpinned)) == []


def test_a_deployment_with_attributions_runs_the_explain_image_from_the_mirror(tmp_path):
    path = _stack_with_mirror("dev", tmp_path)
    document = yaml.safe_load(path.read_text())
    document["config"]["mlops:serving"]["churn"]["server_settings"] = {"explain": True}
    path.write_text(yaml.safe_dump(document))
    stack_plan = plan.build_plan("dev", path)
    images = {
        image
        for obj in plan.kubernetes_objects(stack_plan)
        if obj["kind"] == "Deployment" and obj["metadata"]["name"].startswith("churn")
        for _, image in field_images(obj)
    }
    assert f"{MIRROR}/{versions.MODEL_SERVER_EXPLAIN_IMAGE}" in images
    assert not any("/model-server:" in image for image in images), images


def test_the_kfp_argument_lists_patched_whole_are_upstreams(default_reports):
    """A strategic merge patch replaces `args` whole: the copy in resources.KFP_ARGUMENTS must
    be exactly what the pinned release renders, or a mirror would drop an argument."""
    from mlops_platform.components.images.resources import KFP_ARGUMENTS

    (source,) = [
        s for s in default_reports["prod"].sources if s.source.endswith("platform-agnostic")
    ]
    rendered = {
        container["name"]: container.get("args", [])
        for obj in source.objects
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    }
    assert {name: rendered[name] for name in KFP_ARGUMENTS} == KFP_ARGUMENTS


def test_a_plan_after_a_mirrored_one_in_the_same_process_is_not_mirrored(tmp_path):
    """`mlops plan` runs layers (and tests run stacks) in one process: the image transformation
    of one program must not reach the next one's resources."""

    def kfp_directory_and_images(stack_plan: plan.Plan) -> tuple[str, set[str]]:
        (kfp,) = [r for r in stack_plan.resources if r.name.endswith("platform-agnostic")]
        images = {
            image for obj in plan.kubernetes_objects(stack_plan) for _, image in field_images(obj)
        }
        return kfp.inputs["directory"], images

    mirrored = kfp_directory_and_images(
        plan.build_plan("local", _stack_with_mirror("local", tmp_path))
    )
    default = kfp_directory_and_images(plan.build_plan("local", plan.stack_file_path("local")))
    assert ".mlops" in mirrored[0] and all(i.startswith(f"{MIRROR}/") for i in mirrored[1])
    assert default[0] == "mlops_platform/components/pipelines/kustomize"
    assert versions.POSTGRES_IMAGE in default[1]
    assert not any(i.startswith(MIRROR) for i in default[1])
