"""Images, pure layer: references, the digest lock, the mirror registry, and where every image
the platform deploys is set (its own objects, each chart's values, the KFP kustomize build).

- `Reference` parses an image reference the way the distribution spec's reference grammar
  does (`docker/distribution/reference`): the domain is the first path component when it has a
  `.` or `:` or is `localhost`, else Docker Hub (`docker.io`, `library/` for one-part names).
  Hand-written because no maintained Python package parses references without a registry
  client around it; it is twenty lines and table-tested.
- `ImagePolicy` is what a stack asks for: the lock's digests (`mlops_platform/components/image_lock.json`,
  reference -> `sha256:` digest, filled by `images/lock.py`) and an optional mirror registry.
  `resolve(ref)` gives `repo:tag@sha256:...` where the lock has a digest, under the mirror when
  one is set. The mirror keeps the source registry as the first path component
  (`<mirror>/quay.io/prometheus/prometheus:v3.13.2`), so images of different registries with
  the same path never collide, and a chart's `registry` key alone moves an image there.
- `CHART_IMAGES` says, per pinned chart, which values key sets each image it renders;
  `chart_values` derives the values that move those images to the mirror and pin their
  digests, in the form each chart supports (registry / repository / tag / digest / full
  reference). `KFP_IMAGES` does the same for the Kubeflow Pipelines build: a kustomize `images:`
  transformer for container images, and patches for the references KFP keeps in environment
  variables, arguments and its install ConfigMap.

Every entry's `ref` is the image the chart or build renders by default; a test renders them all
and checks each table against the rendered objects, so an upgrade that changes an image fails
until the table follows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlops_platform.components import versions

LOCK_FILE = Path(__file__).resolve().parents[1] / "image_lock.json"

DOCKER_HUB = "docker.io"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+)(?::[0-9]+)?$")
# A mirror: a registry host (a dotted name or localhost, optional port) and optional path.
MIRROR = re.compile(
    r"^(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+)"
    r"(?::[0-9]{1,5})?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)


class ImageError(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    """`registry/repository[:tag][@digest]`, registry and repository normalized."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        name, _, digest = text.partition("@")
        if digest and not DIGEST.match(digest):
            raise ImageError(f"{text!r}: digest must be sha256:<64 lowercase hex>")
        tag = None
        slash, colon = name.rfind("/"), name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG.match(tag):
                raise ImageError(f"{text!r}: {tag!r} is not a valid tag")
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, path = first, rest
            if not _DOMAIN.match(registry):
                raise ImageError(f"{text!r}: {registry!r} is not a registry host")
        else:
            registry, path = DOCKER_HUB, name
        if registry == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if not path or not all(_COMPONENT.match(part) for part in path.split("/")):
            raise ImageError(f"{text!r}: {path!r} is not a valid repository path")
        if tag is None and not digest:
            raise ImageError(f"{text!r}: no tag or digest")
        return cls(registry, path, tag, digest or None)

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def key(self) -> str:
        """The lock's key: the normalized name and tag, no digest."""
        return f"{self.name}:{self.tag}" if self.tag else self.name

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def under(self, mirror: str) -> Reference:
        """The same image in the mirror: the source registry becomes a path component."""
        return Reference(f"{mirror}/{self.registry}", self.repository, self.tag, self.digest)

    @property
    def host(self) -> str:
        return self.registry.split("/", 1)[0]

    @property
    def path(self) -> str:
        """Everything after the host: where the image lives on that registry."""
        _, _, tail = self.registry.partition("/")
        return f"{tail}/{self.repository}" if tail else self.repository


def check_mirror(value: str) -> str:
    if not MIRROR.match(value) or len(value) > 255:
        raise ValueError(
            f"{value!r} must be a registry host with an optional path, e.g. "
            "registry.example.com/mirror (no scheme, tag or trailing '/')"
        )
    return value


def read_lock(path: Path | None = None) -> dict[str, str | None]:
    """The lock: normalized reference -> digest, or None while not yet resolved."""
    path = path or LOCK_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImageError(f"{path}: cannot read the image lock: {exc}") from None
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, dict):
        raise ImageError(f"{path}: expected an object with an `images` map")
    for ref, digest in images.items():
        parsed = Reference.parse(ref)
        if parsed.digest or parsed.key != ref:
            raise ImageError(f"{path}: images.{ref}: write the key as {parsed.key!r}")
        if digest is not None and not (isinstance(digest, str) and DIGEST.match(digest)):
            raise ImageError(f"{path}: images.{ref}: {digest!r} is not sha256:<64 hex> or null")
    return dict(images)


@dataclass(frozen=True)
class ImagePolicy:
    """Digests from the lock and an optional mirror: what a stack deploys for each image."""

    digests: Mapping[str, str | None] = field(default_factory=dict)
    mirror: str | None = None

    @property
    def active(self) -> bool:
        """Whether any image changes at all (a digest to add or a mirror to move to)."""
        return self.mirror is not None or any(self.digests.values())

    def reference(self, text: str) -> Reference:
        ref = Reference.parse(text)
        digest = ref.digest or self.digests.get(ref.key)
        ref = Reference(ref.registry, ref.repository, ref.tag, digest)
        return ref.under(self.mirror) if self.mirror else ref

    def resolve(self, text: str) -> str:
        """`text` as deployed; unchanged (as written) when the policy changes nothing."""
        ref = Reference.parse(text)
        if not self.mirror and (ref.digest or not self.digests.get(ref.key)):
            return text
        return str(self.reference(text))


# ------------------------------------------------------------------------------- chart values


@dataclass(frozen=True)
class ChartImage:
    """One image a chart renders and the values block that sets it.

    `ref` is what the chart renders by default. Under `path` (dotted; "" for the top level):
    - `registry_key`: the chart joins registry and repository itself; only the registry moves.
    - else `repository_key`: the full repository (registry included) moves.
    - `full_key`: one value holds the whole reference.
    - `hub_key`: Istio's default hub (the registry and path its images share), mirror only.
    The digest goes to `digest_key` (`digest_form` "sha256:<hex>" or bare "hex"), else into the
    tag as `tag@sha256:...` when `tag_key` is known, else the chart cannot pin it (`pinnable`).
    """

    ref: str
    path: str
    registry_key: str | None = None
    repository_key: str | None = None
    tag_key: str | None = None
    digest_key: str | None = None
    digest_form: Literal["sha256", "hex"] = "sha256"
    full_key: str | None = None
    hub_key: str | None = None  # Istio's `hub`: registry and path up to the image's own name

    @property
    def pinnable(self) -> bool:
        return bool(self.full_key or self.digest_key or self.tag_key or self.hub_key)


def _block(registry: str = "registry", digest: str | None = "digest", form="sha256") -> dict:
    return {"registry_key": registry, "digest_key": digest, "digest_form": form}


def _kps(ref: str, path: str) -> ChartImage:
    """kube-prometheus-stack's own images: registry/repository/tag and a bare-hex `sha`."""
    return ChartImage(ref, path, **_block(digest="sha", form="hex"))


def _repo_tag(ref: str, path: str = "image") -> ChartImage:
    """`{{ repository }}:{{ tag }}` charts: no registry or digest key of their own."""
    return ChartImage(ref, path, repository_key="repository", tag_key="tag")


def _strimzi(ref: str, path: str, pinnable: bool = True) -> ChartImage:
    return ChartImage(ref, path, **_block(digest="digest" if pinnable else None))


_STRIMZI = "quay.io/strimzi"

CHART_IMAGES: dict[versions.Chart, tuple[ChartImage, ...]] = {
    versions.KUBE_PROMETHEUS_STACK: (
        _kps("quay.io/prometheus/prometheus:v3.13.2-distroless", "prometheus.prometheusSpec.image"),
        _kps("quay.io/prometheus/alertmanager:v0.33.1", "alertmanager.alertmanagerSpec.image"),
        _kps("quay.io/prometheus-operator/prometheus-operator:v0.93.0", "prometheusOperator.image"),
        _kps(
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.0",
            "prometheusOperator.prometheusConfigReloader.image",
        ),
        _kps("quay.io/thanos/thanos:v0.42.4", "prometheusOperator.thanosImage"),
        _kps(
            "ghcr.io/jkroepke/kube-webhook-certgen:1.8.5",
            "prometheusOperator.admissionWebhooks.patch.image",
        ),
        _kps("docker.io/grafana/grafana:13.1.3", "grafana.image"),
        _kps("quay.io/kiwigrid/k8s-sidecar:2.10.1", "grafana.sidecar.image"),
        _kps("docker.io/library/busybox:1.38.0", "grafana.initChownData.image"),
        # kube-state-metrics' `sha` is the whole digest (its template adds no `sha256:`)
        ChartImage(
            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.19.1",
            "kube-state-metrics.image",
            **_block(digest="sha"),
        ),
        # the node exporter chart refuses `sha` and takes `digest` (sha256:<hex>)
        ChartImage(
            "quay.io/prometheus/node-exporter:v1.12.1-distroless",
            "prometheus-node-exporter.image",
            **_block(),
        ),
    ),
    versions.STRIMZI_KAFKA_OPERATOR: (
        _strimzi(versions.STRIMZI_OPERATOR_IMAGE, "image"),
        _strimzi(versions.STRIMZI_OPERATOR_IMAGE, "topicOperator.image"),
        _strimzi(versions.STRIMZI_OPERATOR_IMAGE, "userOperator.image"),
        _strimzi(versions.STRIMZI_OPERATOR_IMAGE, "kafkaInit.image"),
        _strimzi(f"{_STRIMZI}/kafka-bridge:1.1.0", "kafkaBridge.image"),
        _strimzi(f"{_STRIMZI}/kaniko-executor:1.2.0", "kanikoExecutor.image"),
        _strimzi(f"{_STRIMZI}/buildah:1.2.0", "buildah.image"),
        _strimzi(f"{_STRIMZI}/maven-builder:1.2.0", "mavenBuilder.image"),
        # One tag prefix for every Kafka version the operator runs: a digest cannot be set per
        # version through the chart, so the Kafka resource names its images (KAFKA_CR_IMAGES).
        *(
            _strimzi(ref, path, pinnable=False)
            for ref in versions.STRIMZI_KAFKA_IMAGES.values()
            for path in (
                "kafka.image",
                "kafkaConnect.image",
                "kafkaExporter.image",
                "kafkaMirrorMaker2.image",
                "cruiseControl.image",
            )
        ),
    ),
    # Istio takes a full reference wherever `image` contains a "/"; the sidecar/gateway proxy is
    # injected from the istiod values (`global.proxy.image`), the CNI agent from its own chart.
    versions.ISTIOD: (
        ChartImage(
            f"registry.istio.io/release/pilot:{versions.ISTIO_VERSION}", "", full_key="image"
        ),
        ChartImage(
            f"registry.istio.io/release/proxyv2:{versions.ISTIO_VERSION}",
            "global.proxy",
            full_key="image",
        ),
        ChartImage(
            f"registry.istio.io/release/proxyv2:{versions.ISTIO_VERSION}",
            "global.proxy_init",
            full_key="image",
        ),
        # anything else Istio derives from the hub (e.g. a revision's ztunnel) follows it
        ChartImage(
            f"registry.istio.io/release/pilot:{versions.ISTIO_VERSION}", "global", hub_key="hub"
        ),
    ),
    versions.ISTIO_CNI: (
        ChartImage(
            f"registry.istio.io/release/install-cni:{versions.ISTIO_VERSION}", "", full_key="image"
        ),
    ),
    versions.ISTIO_BASE: (),
    versions.ISTIO_GATEWAY: (),  # `image: auto`: the proxy istiod injects
    versions.FLAGGER: (_repo_tag("ghcr.io/fluxcd/flagger:1.44.0"),),
    versions.FLAGGER_LOADTESTER: (_repo_tag("ghcr.io/fluxcd/flagger-loadtester:0.38.0"),),
    versions.METRICS_SERVER: (_repo_tag("registry.k8s.io/metrics-server/metrics-server:v0.8.1"),),
    versions.CLUSTER_AUTOSCALER: (
        _repo_tag("registry.k8s.io/autoscaling/cluster-autoscaler:v1.35.0"),
    ),
    versions.NVIDIA_DEVICE_PLUGIN: (_repo_tag("nvcr.io/nvidia/k8s-device-plugin:v0.20.0"),),
    versions.MINIO: (
        _repo_tag("quay.io/minio/minio:RELEASE.2024-12-18T13-15-44Z"),
        _repo_tag("quay.io/minio/mc:RELEASE.2024-11-21T17-21-54Z", "mcImage"),
    ),
}


def chart_of(chart: str, version: str) -> versions.Chart | None:
    """The pinned chart a release installs (`chart` may be a repo/ or oci:// path)."""
    name = chart.rstrip("/").rsplit("/", 1)[-1]
    return next((c for c in CHART_IMAGES if c.chart == name and c.version == version), None)


def _set(values: dict[str, Any], path: str, key: str, value: Any) -> None:
    node = values
    for part in [p for p in path.split(".") if p]:
        node = node.setdefault(part, {})
    node[key] = value


def image_values(image: ChartImage, policy: ImagePolicy) -> dict[str, Any]:
    """The values that make the chart render `policy`'s form of `image.ref` ({} if none)."""
    source = Reference.parse(image.ref)
    target = policy.reference(image.ref)
    values: dict[str, Any] = {}
    if target == source:
        return values
    moved = target.registry != source.registry
    if image.full_key:
        _set(values, image.path, image.full_key, str(target))
        return values
    if image.hub_key:
        if moved:
            _set(values, image.path, image.hub_key, target.name.rsplit("/", 1)[0])
        return values
    if moved and image.registry_key:
        _set(values, image.path, image.registry_key, target.registry)
    elif moved and image.repository_key:
        _set(values, image.path, image.repository_key, target.name)
    if target.digest:
        if image.digest_key:
            digest = target.digest if image.digest_form == "sha256" else target.digest[7:]
            _set(values, image.path, image.digest_key, digest)
        elif image.tag_key:
            _set(values, image.path, image.tag_key, f"{target.tag}@{target.digest}")
    return values


def merge(base: Any, override: Any) -> Any:
    """`override` deep-merged over `base` (mappings merge, anything else replaces)."""
    if not isinstance(base, Mapping) or not isinstance(override, Mapping):
        return override
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base.get(key), value)
    return merged


def chart_values(chart: versions.Chart, policy: ImagePolicy) -> dict[str, Any]:
    """Values for `chart` that move its images to the mirror and pin their locked digests."""
    values: dict[str, Any] = {}
    for image in CHART_IMAGES[chart]:
        values = merge(values, image_values(image, policy))
    return values


# ------------------------------------------------------------------------ Kubeflow Pipelines


@dataclass(frozen=True)
class KfpReference:
    """An image KFP keeps outside a container's `image` field, and the patch that sets it."""

    ref: str
    kind: str
    name: str
    container: str | None = None  # a container's environment variable ...
    env: str | None = None
    argument: str | None = None  # ... the value after an argument ...
    data_key: str | None = None  # ... or a ConfigMap key


_KFP = f"ghcr.io/kubeflow/kfp-{{}}:{versions.KUBEFLOW_PIPELINES.ref}"
KFP_CONTAINER_IMAGES: tuple[str, ...] = (
    *(
        _KFP.format(name)
        for name in (
            "api-server",
            "cache-deployer",
            "cache-server",
            "frontend",
            "metadata-envoy",
            "metadata-writer",
            "persistence-agent",
            "scheduled-workflow-controller",
            "viewer-crd-controller",
            "visualization-server",
        )
    ),
    "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0",
    "quay.io/argoproj/workflow-controller:v3.7.3",
    "mysql:8.4",
    "chrislusf/seaweedfs:4.00",
)
KFP_REFERENCES: tuple[KfpReference, ...] = (
    KfpReference(
        _KFP.format("driver"),
        "Deployment",
        "ml-pipeline",
        "ml-pipeline-api-server",
        env="V2_DRIVER_IMAGE",
    ),
    KfpReference(
        _KFP.format("launcher"),
        "Deployment",
        "ml-pipeline",
        "ml-pipeline-api-server",
        env="V2_LAUNCHER_IMAGE",
    ),
    KfpReference(
        "quay.io/argoproj/argoexec:v3.7.3",
        "Deployment",
        "workflow-controller",
        "workflow-controller",
        argument="--executor-image",
    ),
    # No tag upstream (the cache server's copy step): the lock pins the name as `:latest` would
    # float, so it gets a digest or stays as upstream ships it.
    KfpReference(
        "ghcr.io/containerd/busybox:latest",
        "ConfigMap",
        "pipeline-install-config",
        data_key="cacheImage",
    ),
)


def kfp_kustomization(
    base: Mapping[str, Any], policy: ImagePolicy, arguments: Mapping[str, list[str]]
) -> dict[str, Any]:
    """The KFP overlay (`base`, the project's kustomization) with `policy` applied: an
    `images:` transformer entry per container image and a patch per other reference.
    `arguments` are the upstream argument lists of the containers patched by `argument`
    (a strategic merge patch replaces a list whole)."""
    document = dict(base)
    images = []
    for text in KFP_CONTAINER_IMAGES:
        source, target = Reference.parse(text), policy.reference(text)
        if target == source:
            continue
        # kustomize matches `name` against the image as written in the manifests
        written = text.rsplit(":", 1)[0]
        entry: dict[str, Any] = {"name": written}
        if target.name != source.name:
            entry["newName"] = target.name
        if target.digest:  # both: `name:tag@digest`, the tag kept for people reading it
            entry["newTag"] = target.tag
            entry["digest"] = target.digest
        images.append(entry)
    patches = list(document.get("patches") or [])
    for reference in KFP_REFERENCES:
        source, target = Reference.parse(reference.ref), policy.reference(reference.ref)
        if target == source:
            continue
        patches.append(_kfp_patch(reference, str(target), arguments))
    if images:
        document["images"] = list(document.get("images") or []) + images
    document["patches"] = patches
    return document


def _kfp_patch(
    reference: KfpReference, value: str, arguments: Mapping[str, list[str]]
) -> dict[str, Any]:
    target = {"kind": reference.kind, "name": reference.name}
    if reference.data_key:
        body: dict[str, Any] = {"data": {reference.data_key: value}}
    else:
        container: dict[str, Any] = {"name": reference.container}
        if reference.env:
            container["env"] = [{"name": reference.env, "value": value}]
        else:
            args = list(arguments.get(reference.container or "", []))
            if reference.argument not in args:
                raise ImageError(
                    f"KFP {reference.kind}/{reference.name}: no {reference.argument} argument "
                    f"in {reference.container!r} to point at {value}"
                )
            index = args.index(reference.argument) + 1
            args[index] = value
            container["args"] = args
        body = {"spec": {"template": {"spec": {"containers": [container]}}}}
    api = "v1" if reference.kind == "ConfigMap" else "apps/v1"
    patch = {"apiVersion": api, "kind": reference.kind, "metadata": {"name": reference.name}}
    return {"target": target, "patch": json.dumps({**patch, **body}, sort_keys=True)}


# ---------------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class Entry:
    ref: str
    where: str  # who sets it: the program, a chart's values path, the KFP build
    pinnable: bool = True


# The project's own images (built and released here, pinned in mlops_platform/components/versions.py).
OWN_IMAGES = (
    versions.MODEL_SERVER_IMAGE,
    versions.MODEL_SERVER_EXPLAIN_IMAGE,
    versions.PLATFORM_IMAGE,
    versions.FEAST_IMAGE,
)


def program_images() -> tuple[str, ...]:
    """Images the platform sets in its own objects (defaults; a stack may set others)."""
    return (
        *OWN_IMAGES,
        versions.MLFLOW_IMAGE,
        versions.POSTGRES_IMAGE,
        versions.REDIS_IMAGE,
        versions.JAEGER_IMAGE,
    )


# The image fields of Strimzi's `Kafka` resource that mlops_platform/components/kafka sets (as the operator
# would choose them): the transformation pins and mirrors them like any other CR field, so the
# brokers and the entity operator run pinned images although the chart cannot pin Kafka's.
KAFKA_CR_IMAGES: tuple[tuple[str, str], ...] = (
    *((ref, "spec.kafka.image") for ref in versions.STRIMZI_KAFKA_IMAGES.values()),
    (versions.STRIMZI_OPERATOR_IMAGE, "spec.entityOperator.topicOperator.image"),
    (versions.STRIMZI_OPERATOR_IMAGE, "spec.entityOperator.userOperator.image"),
)


def catalogue() -> list[Entry]:
    """Every image the platform can deploy, once per place that sets it."""
    entries = [Entry(ref, "program") for ref in program_images()]
    entries += [Entry(ref, f"program: Strimzi Kafka {path}") for ref, path in KAFKA_CR_IMAGES]
    for chart, images in CHART_IMAGES.items():
        for image in images:
            where = f"chart {chart.chart} {chart.version}: {image.path or '(top)'}"
            entries.append(Entry(image.ref, where, image.pinnable))
    kfp = f"kustomize kubeflow-pipelines {versions.KUBEFLOW_PIPELINES.ref}"
    entries += [Entry(ref, f"{kfp}: images") for ref in KFP_CONTAINER_IMAGES]
    entries += [
        Entry(r.ref, f"{kfp}: {r.kind}/{r.name} {r.env or r.argument or r.data_key}")
        for r in KFP_REFERENCES
    ]
    return entries


def lock_keys(entries: Iterable[Entry]) -> list[str]:
    """The lock's keys for `entries`: third-party images only (the project's own are pinned in
    mlops_platform/components/versions.py by the release workflow), sorted."""
    own = {Reference.parse(ref).key for ref in OWN_IMAGES}
    return sorted({Reference.parse(e.ref).key for e in entries} - own)


def unpinnable_images(entries: Iterable[Entry]) -> list[str]:
    """References no place that sets them can pin by digest."""
    entries = list(entries)
    return sorted(
        {e.ref for e in entries if not e.pinnable} - {e.ref for e in entries if e.pinnable}
    )


def unpinned(lock: Mapping[str, str | None], entries: Iterable[Entry]) -> list[str]:
    """Lock keys without a digest yet, and images missing from the lock."""
    return [key for key in lock_keys(entries) if not lock.get(key)]


# ------------------------------------------------------------------------------ stack config


def configured_images(config: Any, path: str = "") -> list[tuple[str, str, bool]]:
    """Every image field of a config model tree: (dotted path, value, set in the stack file).

    An image field is a string field named `image` or ending in `_image`."""
    from pydantic import BaseModel

    found: list[tuple[str, str, bool]] = []
    if isinstance(config, BaseModel):
        for name in type(config).model_fields:
            value = getattr(config, name)
            dotted = f"{path}.{name}" if path else name
            if isinstance(value, str) and (name == "image" or name.endswith("_image")):
                found.append((dotted, value, name in config.model_fields_set))
            else:
                found += configured_images(value, dotted)
    elif isinstance(config, Mapping):
        for key, value in config.items():
            found += configured_images(value, f"{path}.{key}" if path else str(key))
    elif isinstance(config, list | tuple):
        for index, value in enumerate(config):
            found += configured_images(value, f"{path}[{index}]")
    return found


def floating_problems(config: Any) -> list[tuple[str, str]]:
    """Images set in the stack file without a digest: (dotted path, message).

    Only images the stack itself sets: the platform's defaults come from the lock, whose
    unresolved entries `mlops plan` reports as advisory until the lock is filled."""
    return [
        (
            path,
            f"{value!r} is a floating tag: a protected (production) stack pins every image it "
            "sets by digest (repo:tag@sha256:<digest>)",
        )
        for path, value, set_here in configured_images(config)
        if set_here and "@sha256:" not in value
    ]


def image_lock_advisory(lock: Mapping[str, str | None] | None = None) -> str:
    """`mlops plan`'s line on the lock (advisory: nothing fails while entries are open)."""
    lock = read_lock() if lock is None else lock
    entries = catalogue()
    keys = lock_keys(entries)
    open_keys = unpinned(lock, entries)
    stale = sorted(set(keys) ^ set(lock))
    line = (
        f"Images: {len(keys) - len(open_keys)} of {len(keys)} third-party images pinned by "
        f"digest in {LOCK_FILE.parent.name}/{LOCK_FILE.name}"
    )
    if open_keys:
        line += (
            f" (advisory: {len(open_keys)} unpinned until the image-lock workflow resolves them;"
            " `python -m images.lock check` lists them)"
        )
    if stale:
        line += (
            f"; the lock is out of date with the catalogue ({len(stale)} keys): "
            "run `python -m images.lock sync`"
        )
    # an image some place cannot pin is still pinned when another place that runs it can (the
    # Kafka resource names the broker image the operator's tag-only table would choose)
    unpinnable = unpinnable_images(entries)
    if unpinnable:
        line += f"; {len(unpinnable)} cannot be pinned where they are set"
    return line
