"""Table tests of the image model: references, the lock, the mirror, chart values, the KFP
overlay and the stack's image settings (mlops_platform/components/images)."""

from __future__ import annotations

import json
import textwrap

import pytest

from mlops_platform import config
from mlops_platform.components import versions
from mlops_platform.components.images import model
from mlops_platform.components.images.model import ChartImage, ImagePolicy, Reference

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
MIRROR = "registry.example.com/mirror"


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("postgres:17.11-trixie", "docker.io", "library/postgres", "17.11-trixie", None),
        ("chrislusf/seaweedfs:4.00", "docker.io", "chrislusf/seaweedfs", "4.00", None),
        ("docker.io/grafana/grafana:13.1.3", "docker.io", "grafana/grafana", "13.1.3", None),
        ("quay.io/prometheus/prometheus:v3", "quay.io", "prometheus/prometheus", "v3", None),
        ("localhost:5000/a/b:1", "localhost:5000", "a/b", "1", None),
        ("localhost/a:1", "localhost", "a", "1", None),  # not Docker Hub: no library/
        (f"ghcr.io/x/y:1.0@{D1}", "ghcr.io", "x/y", "1.0", D1),
        (f"ghcr.io/x/y@{D1}", "ghcr.io", "x/y", None, D1),
        ("reg:5000/x:1", "reg:5000", "x", "1", None),
    ],
)
def test_references_parse_as_the_distribution_grammar_does(text, registry, repository, tag, digest):
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("postgres", "no tag or digest"),
        ("ghcr.io/x/y:1@sha256:abc", "digest must be sha256:<64 lowercase hex>"),
        ("ghcr.io/X/y:1", "is not a valid repository path"),
        ("ghcr.io/x/y:-bad", "is not a valid tag"),
    ],
)
def test_bad_references_are_refused(text, message):
    with pytest.raises(model.ImageError, match=message):
        Reference.parse(text)


@pytest.mark.parametrize(
    ("digests", "mirror", "text", "resolved"),
    [
        ({}, None, "postgres:17", "postgres:17"),  # nothing to do: as written
        ({"docker.io/library/postgres:17": None}, None, "postgres:17", "postgres:17"),
        (
            {"docker.io/library/postgres:17": D1},
            None,
            "postgres:17",
            f"docker.io/library/postgres:17@{D1}",
        ),
        ({}, MIRROR, "postgres:17", f"{MIRROR}/docker.io/library/postgres:17"),
        (
            {"quay.io/a/b:1": D1},
            MIRROR,
            "quay.io/a/b:1",
            f"{MIRROR}/quay.io/a/b:1@{D1}",
        ),
        # a digest the reference already carries wins over the lock
        ({"quay.io/a/b:1": D2}, None, f"quay.io/a/b:1@{D1}", f"quay.io/a/b:1@{D1}"),
        ({"quay.io/a/b:1": D2}, MIRROR, f"quay.io/a/b:1@{D1}", f"{MIRROR}/quay.io/a/b:1@{D1}"),
    ],
)
def test_the_policy_pins_locked_digests_and_moves_to_the_mirror(digests, mirror, text, resolved):
    assert ImagePolicy(digests, mirror).resolve(text) == resolved


@pytest.mark.parametrize(
    "mirror",
    ["registry.example.com", "registry.example.com/mirror", "localhost:5000/m/n", "r.io:443/a-b"],
)
def test_valid_mirrors(mirror):
    assert model.check_mirror(mirror) == mirror


@pytest.mark.parametrize(
    "mirror",
    [
        "https://registry.example.com",
        "registry.example.com/",
        "registry.example.com/Mirror",
        "registry.example.com/mirror:1",
        "mirror",  # no dot, not localhost: would read as a Docker Hub path
        "",
    ],
)
def test_bad_mirrors_are_refused(mirror):
    with pytest.raises(ValueError, match="must be a registry host with an optional path"):
        model.check_mirror(mirror)


KPS_PROMETHEUS = ChartImage(
    "quay.io/prometheus/prometheus:v3", "p.image", "registry", digest_key="sha", digest_form="hex"
)
NODE_EXPORTER = ChartImage(
    "quay.io/prometheus/node-exporter:v1", "n.image", "registry", digest_key="digest"
)
FLAGGER = ChartImage(
    "ghcr.io/fluxcd/flagger:1.44.0", "image", repository_key="repository", tag_key="tag"
)
PILOT = ChartImage("registry.istio.io/release/pilot:1.30.3", "", full_key="image")
HUB = ChartImage("registry.istio.io/release/pilot:1.30.3", "global", hub_key="hub")
KAFKA = ChartImage("quay.io/strimzi/kafka:1.2.0-kafka-4.3.1", "kafka.image", "registry")


@pytest.mark.parametrize(
    ("image", "digests", "mirror", "values"),
    [
        (KPS_PROMETHEUS, {}, None, {}),
        (
            KPS_PROMETHEUS,
            {"quay.io/prometheus/prometheus:v3": D1},
            None,
            {"p": {"image": {"sha": "1" * 64}}},
        ),
        (KPS_PROMETHEUS, {}, MIRROR, {"p": {"image": {"registry": f"{MIRROR}/quay.io"}}}),
        (
            NODE_EXPORTER,
            {"quay.io/prometheus/node-exporter:v1": D1},
            MIRROR,
            {"n": {"image": {"registry": f"{MIRROR}/quay.io", "digest": D1}}},
        ),
        (
            FLAGGER,
            {"ghcr.io/fluxcd/flagger:1.44.0": D1},
            MIRROR,
            {"image": {"repository": f"{MIRROR}/ghcr.io/fluxcd/flagger", "tag": f"1.44.0@{D1}"}},
        ),
        (FLAGGER, {}, MIRROR, {"image": {"repository": f"{MIRROR}/ghcr.io/fluxcd/flagger"}}),
        (
            PILOT,
            {"registry.istio.io/release/pilot:1.30.3": D1},
            None,
            {"image": f"registry.istio.io/release/pilot:1.30.3@{D1}"},
        ),
        (HUB, {}, MIRROR, {"global": {"hub": f"{MIRROR}/registry.istio.io/release"}}),
        (HUB, {"registry.istio.io/release/pilot:1.30.3": D1}, None, {}),
        # no per-version digest through the chart: moved, never pinned
        (KAFKA, {"quay.io/strimzi/kafka:1.2.0-kafka-4.3.1": D1}, None, {}),
        (
            KAFKA,
            {"quay.io/strimzi/kafka:1.2.0-kafka-4.3.1": D1},
            MIRROR,
            {"kafka": {"image": {"registry": f"{MIRROR}/quay.io"}}},
        ),
    ],
)
def test_each_chart_layout_gets_the_values_it_supports(image, digests, mirror, values):
    assert model.image_values(image, ImagePolicy(digests, mirror)) == values


def test_chart_values_merge_every_image_of_the_chart():
    values = model.chart_values(versions.ISTIOD, ImagePolicy(mirror=MIRROR))
    proxy = f"{MIRROR}/registry.istio.io/release/proxyv2:{versions.ISTIO_VERSION}"
    assert values == {
        "image": f"{MIRROR}/registry.istio.io/release/pilot:{versions.ISTIO_VERSION}",
        "global": {
            "proxy": {"image": proxy},
            "proxy_init": {"image": proxy},
            "hub": f"{MIRROR}/registry.istio.io/release",
        },
    }
    assert model.chart_values(versions.ISTIOD, ImagePolicy()) == {}


def test_a_release_finds_its_pinned_chart_by_name_and_version():
    assert model.chart_of("oci://quay.io/strimzi-helm/strimzi-kafka-operator", "1.2.0") == (
        versions.STRIMZI_KAFKA_OPERATOR
    )
    assert model.chart_of("flagger", versions.FLAGGER.version) == versions.FLAGGER
    assert model.chart_of("flagger", "0.0.1") is None


def test_the_kfp_overlay_adds_an_images_transformer_and_patches():
    base = {"resources": ["upstream"], "patches": [{"patch": "p"}]}
    assert model.kfp_kustomization(base, ImagePolicy(), {}) == {**base}
    api = f"ghcr.io/kubeflow/kfp-api-server:{versions.KUBEFLOW_PIPELINES.ref}"
    args = {"workflow-controller": ["--configmap", "c", "--executor-image", "x"]}
    document = model.kfp_kustomization(
        base, ImagePolicy({Reference.parse(api).key: D1}, MIRROR), args
    )
    assert document["resources"] == ["upstream"]
    entries = {e["name"]: e for e in document["images"]}
    assert entries["ghcr.io/kubeflow/kfp-api-server"] == {
        "name": "ghcr.io/kubeflow/kfp-api-server",
        "newName": f"{MIRROR}/ghcr.io/kubeflow/kfp-api-server",
        "newTag": versions.KUBEFLOW_PIPELINES.ref,
        "digest": D1,
    }
    assert entries["mysql"] == {"name": "mysql", "newName": f"{MIRROR}/docker.io/library/mysql"}
    assert len(entries) == len(model.KFP_CONTAINER_IMAGES)
    assert document["patches"][0] == {"patch": "p"}
    patched = [json.loads(p["patch"]) for p in document["patches"][1:]]
    assert len(patched) == len(model.KFP_REFERENCES)
    controller = next(p for p in patched if p["metadata"]["name"] == "workflow-controller")
    assert controller["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "workflow-controller",
            "args": [
                "--configmap",
                "c",
                "--executor-image",
                f"{MIRROR}/quay.io/argoproj/argoexec:v3.7.3",
            ],
        }
    ]
    install = next(p for p in patched if p["kind"] == "ConfigMap")
    assert install["data"] == {"cacheImage": f"{MIRROR}/ghcr.io/containerd/busybox:latest"}


def test_a_kfp_argument_that_moved_upstream_is_an_error():
    with pytest.raises(model.ImageError, match="no --executor-image argument"):
        model.kfp_kustomization({}, ImagePolicy(mirror=MIRROR), {"workflow-controller": []})


def test_the_shipped_lock_matches_the_catalogue_and_holds_only_verifiable_entries():
    from images import lock

    shipped = model.read_lock()
    assert lock.synced(shipped) == shipped, "run python -m images.lock sync"
    own = {
        Reference.parse(versions.MODEL_SERVER_IMAGE).key,
        Reference.parse(versions.MODEL_SERVER_EXPLAIN_IMAGE).key,
        Reference.parse(versions.PLATFORM_IMAGE).key,
    }
    assert not own & set(shipped)  # the project's images are pinned in versions.py
    assert Reference.parse(versions.POSTGRES_IMAGE).key in shipped


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"images": {"postgres:17": None}}, "write the key as 'docker.io/library/postgres:17'"),
        (
            {"images": {"docker.io/library/postgres:17": "sha256:1"}},
            "is not sha256:<64 hex> or null",
        ),
        ({"nope": {}}, "expected an object with an `images` map"),
    ],
)
def test_a_bad_lock_is_an_error_naming_the_file_and_entry(tmp_path, document, message):
    path = tmp_path / "image_lock.json"
    path.write_text(json.dumps(document))
    with pytest.raises(model.ImageError, match=message) as caught:
        model.read_lock(path)
    assert str(path) in str(caught.value)


def test_the_plan_advisory_counts_open_and_unpinnable_entries():
    keys = model.lock_keys(model.catalogue())
    full = {key: D1 for key in keys}
    assert model.image_lock_advisory(full).startswith(
        f"Images: {len(keys)} of {len(keys)} third-party images pinned by digest"
    )
    assert "advisory" not in model.image_lock_advisory(full)
    half = {**full, keys[0]: None}
    assert "advisory: 1 unpinned" in model.image_lock_advisory(half)
    assert "out of date" in model.image_lock_advisory({**full, "docker.io/library/x:1": None})
    # Strimzi's chart cannot pin its Kafka images, but the Kafka resource names them: every
    # image the platform runs can be pinned
    assert model.unpinnable_images(model.catalogue()) == []
    assert "cannot be pinned" not in model.image_lock_advisory(full)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([model.Entry("quay.io/a/b:1", "chart", pinnable=False)], ["quay.io/a/b:1"]),
        (
            [
                model.Entry("quay.io/a/b:1", "chart", pinnable=False),
                model.Entry("quay.io/a/b:1", "program: a CR field"),
            ],
            [],
        ),
        ([model.Entry("quay.io/a/b:1", "program")], []),
    ],
)
def test_an_image_is_unpinnable_only_where_no_place_that_sets_it_can_pin_it(entries, expected):
    assert model.unpinnable_images(entries) == expected


def test_the_kafka_resource_names_each_supported_versions_image_in_the_catalogue():
    from mlops_platform.components import versions

    kafka = {e.ref for e in model.catalogue() if e.where.endswith("spec.kafka.image")}
    assert kafka == set(versions.STRIMZI_KAFKA_IMAGES.values())
    assert all(e.pinnable for e in model.catalogue() if e.where.startswith("program"))


# --- the stack setting ------------------------------------------------------------------------

LOCAL = {"mlops:cloud": {"type": "local"}}


def _write(tmp_path, body: str):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_the_mirror_setting_is_validated_naming_field_and_file(tmp_path):
    path = _write(
        tmp_path,
        """
        config:
          mlops:cloud: {type: local}
          mlops:images: {mirror: "https://registry.example.com/mirror"}
        """,
    )
    with pytest.raises(config.ConfigError) as caught:
        config.load_stack_file(path)
    assert caught.value.problems == [
        (
            "mlops:images.mirror",
            "'https://registry.example.com/mirror' must be a registry host with an optional "
            "path, e.g. registry.example.com/mirror (no scheme, tag or trailing '/')",
        )
    ]
    assert str(path) in str(caught.value)
    ok = config.validate({**LOCAL, "mlops:images": {"mirror": MIRROR}}, "f")
    assert ok.images.mirror == MIRROR
    assert config.validate(LOCAL, "f").images.mirror is None


def test_a_protected_stack_refuses_a_floating_tag_it_sets(tmp_path):
    path = _write(
        tmp_path,
        """
        config:
          mlops:cloud: {type: local}
          mlops:protect_stateful: true
          mlops:mlflow: {image: "ghcr.io/mlflow/mlflow:v3.17.0-full"}
        """,
    )
    with pytest.raises(config.ConfigError) as caught:
        config.load_stack_file(path)
    assert caught.value.problems == [
        (
            "mlops:mlflow.image",
            "'ghcr.io/mlflow/mlflow:v3.17.0-full' is a floating tag: a protected (production) "
            "stack pins every image it sets by digest (repo:tag@sha256:<digest>)",
        )
    ]
    assert str(caught.value).startswith(f"invalid stack config in {path}:")


@pytest.mark.parametrize(
    "values",
    [
        # the same tag, pinned
        {
            **LOCAL,
            "mlops:protect_stateful": True,
            "mlops:mlflow": {"image": f"ghcr.io/mlflow/mlflow:v3.17.0-full@{D1}"},
        },
        # not protected: a tag is allowed (dev and staging iterate on tags)
        {**LOCAL, "mlops:mlflow": {"image": "ghcr.io/mlflow/mlflow:v3.17.0-full"}},
        # defaults come from the lock, reported by `mlops plan` as advisory, not refused here
        {**LOCAL, "mlops:protect_stateful": True},
    ],
)
def test_pinned_unprotected_or_default_images_pass(values):
    config.validate(values, "f")


def test_the_readme_inputs_table_lists_every_setting():
    from pathlib import Path

    from mlops_platform.components.images import ImagesConfig

    readme = (Path(model.__file__).parent / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `images.")]
    assert [row.split("`")[1] for row in rows] == [
        f"images.{name}" for name in ImagesConfig.model_fields
    ]
