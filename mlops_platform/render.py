"""Render every object a plan's Helm releases and kustomize trees would create, and check them.

Input is the recorded resources of one or more plans (anything with `type`, `name` and `inputs`,
e.g. `plan.PlannedResource` or `mocks.Recorded`), so it works for any number of stacks or layers:

- `kubernetes:helm.sh/v3:Release` (and `v4:Chart`): the chart archive at the exact pinned version
  from the `MLOPS_CHARTS_DIR` folder, rendered by `helm template` with the release's own name,
  namespace and values, its `crds/` included unless the release skips them, for
  `KUBERNETES_VERSION`. The values are first checked against the chart's `values.schema.json`.
- `kubernetes:kustomize/v2:Directory`: a remote GitHub target is the matching folder under
  `MLOPS_CHARTS_DIR/kustomize/<owner>-<repo>-<ref>/`; a local overlay is copied to a temporary
  folder with its remote bases rewritten to relative paths there (kustomize rejects absolute
  ones), then built by `kubectl kustomize`.

No `--api-versions` are passed: helm's default capabilities are Kubernetes' built-in APIs, and
none of these charts gates an object the platform enables on a CRD being present (their
`.Capabilities.APIVersions.Has` checks are for VPA, OpenShift and PodSecurityPolicy, all off).

Every object is then validated strictly by `mlops_platform.manifests` (Kubernetes built-in schemas, the
CRDs under `MLOPS_CRDS_DIR`, and the CRDs the rendered releases themselves install, which take
precedence because they are the ones the cluster will have).

Releases render in parallel threads (helm and kubectl are subprocesses); each distinct
(chart, release, namespace, values) is rendered once per process, and its objects are kept as
JSON in a cache folder (`.tools/render-cache/`, see `mlops_platform.binaries.cache_root`) keyed by the
digest of everything the output depends on (binaries, chart archive or kustomize files, release
name, namespace, values, Kubernetes version), so an unchanged release costs a JSON read next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from mlops_platform import manifests
from mlops_platform.binaries import binary, cache_root, layer_version
from mlops_platform.components.versions import KUBERNETES_VERSION

CHARTS_DIR_SETTING = "MLOPS_CHARTS_DIR"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
KUSTOMIZE_TYPES = ("kubernetes:kustomize/v2:Directory",)
PROGRAM = "(program)"  # the source name of objects the program creates directly
CACHE_FORMAT = 2  # bump when the cached form of rendered objects changes
CACHE_ENTRIES = 100  # rendered releases kept on disk (a few MB each at most)
_REMOTE = re.compile(
    r"^(?:https://)?github\.com/(?P<owner>[^/]+)/(?P<repo>[^/?]+?)(?:\.git)?/+(?P<path>[^?]*?)/*"
    r"\?ref=(?P<ref>[^&]+)$"
)


class RenderError(RuntimeError):
    """A release or kustomize tree cannot be rendered (missing chart, bad setting)."""


class RenderFailed(RenderError):
    """helm or kustomize refused the release: reported as a problem of that release."""


class Resource(Protocol):
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class Rendered:
    """The objects one source (a Helm release, a kustomize tree, the program) creates."""

    source: str  # the Pulumi resource name, or PROGRAM
    description: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Each object's YAML exactly as helm or kustomize printed it (None: dump the object).
    texts: list[str | None] = field(default_factory=list)


@dataclass
class Report:
    sources: list[Rendered]

    @property
    def total(self) -> int:
        return sum(len(s.objects) for s in self.sources)

    @property
    def problems(self) -> list[str]:
        return [problem for source in self.sources for problem in source.problems]

    def lines(self) -> list[str]:
        state = "all valid" if not self.problems else f"{len(self.problems)} INVALID"
        out = [
            f"Kubernetes objects: {self.total}, validated against Kubernetes "
            f"{KUBERNETES_VERSION} and the CRDs ({state})"
        ]
        width = max((len(s.source) for s in self.sources), default=0)
        for s in self.sources:
            flag = f"  [{len(s.problems)} invalid]" if s.problems else ""
            out.append(f"  {len(s.objects):>5}  {s.source:<{width}}  {s.description}{flag}")
        return out


def settings_dir(setting: str, sibling: str) -> Path:
    """A folder from its setting, else `../shared/<sibling>` beside this checkout (as the tests
    and `.ci/run` use); an error naming the setting when neither exists."""
    value = os.environ.get(setting)
    folder = Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / sibling
    if not folder.is_dir():
        raise RenderError(
            f"{setting}={value or '(unset)'}: {folder} is not a folder; point {setting} at the "
            f"upstream {sibling} (e.g. ../shared/{sibling})"
        )
    return folder


def charts_dir() -> Path:
    return settings_dir(CHARTS_DIR_SETTING, "charts")


# --------------------------------------------------------------------------------------- cache


@cache
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_digest(folder: Path) -> str:
    """Digest of every file under `folder` (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}\0".encode())
        digest.update(_file_digest(path, stat.st_size, stat.st_mtime_ns).encode())
    return digest.hexdigest()


def _disk_cached(key: list[Any], compute) -> tuple[Document, ...]:
    """`compute()` once per key across processes; the objects stored as JSON (a fraction of the
    cost of parsing helm's YAML again). An unreadable entry is recomputed."""
    name = hashlib.sha256(json.dumps([CACHE_FORMAT, *key]).encode()).hexdigest()
    folder = cache_root() / "render-cache"
    path = folder / f"{name}.json"
    try:
        objects = tuple((obj, text) for obj, text in json.loads(path.read_text()))
        os.utime(path)  # recently used: kept by the pruning below
        return objects
    except (OSError, ValueError):
        pass
    objects = compute()
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    partial.write_text(json.dumps(objects))
    os.replace(partial, path)
    # Least recently used entries go beyond CACHE_ENTRIES (a values change adds one).
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in entries[CACHE_ENTRIES:]:
        stale.unlink(missing_ok=True)
    return objects


# ---------------------------------------------------------------------------------------- helm


def _chart_name(chart: str) -> str:
    """`oci://quay.io/strimzi-helm/strimzi-kafka-operator` or `repo/flagger` -> the chart name."""
    return chart.rstrip("/").rsplit("/", 1)[-1]


def _archive_member(archive: Path, member: str) -> bytes | None:
    with tarfile.open(archive) as tar:
        try:
            file = tar.extractfile(member)
        except KeyError:
            return None
        return file.read() if file else None


def _merge(base: Any, override: Any) -> Any:
    """Helm's coalescing of user values over chart defaults (null deletes a default)."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    merged = dict(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(base.get(key), value)
    return merged


@cache
def _chart_files(archive: Path, chart: str) -> tuple[Any, Any]:
    """(values.yaml defaults, values.schema.json or None) of a packaged chart."""
    defaults = yaml.load(_archive_member(archive, f"{chart}/values.yaml") or b"{}", _Loader)
    schema = _archive_member(archive, f"{chart}/values.schema.json")
    return defaults or {}, json.loads(schema) if schema else None


def values_problems(archive: Path, chart: str, values: dict[str, Any]) -> list[str]:
    """The values (over the chart's defaults) against the chart's `values.schema.json`."""
    import jsonschema

    defaults, schema = _chart_files(archive, chart)
    if schema is None:
        return []
    # Istio's schemas name `http://json-schema.org/schema#` (no draft): helm v4 reads those as
    # draft 2020-12, its default.
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema)
    merged = _merge(defaults, values)
    return [
        f"values.{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path))
    ]


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml when present (charts render megabytes of YAML); prometheus-operator's CRDs use the
    YAML `=` (value) key, which the safe loader rejects."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))


_SEPARATOR = re.compile(r"^---[^\n]*\n?", re.MULTILINE)

# One rendered object and its YAML text as printed (kept so `--render-manifests` writes the
# renderer's own output, `# Source:` comments included, instead of dumping it again).
Document = tuple[dict[str, Any], "str | None"]


def _documents(text: str) -> list[Document]:
    """The objects of a multi-document stream. Documents start with a `---` line at column 0
    (inside a block scalar it would be indented), so each is parsed with its own text."""
    documents: list[Document] = []
    for chunk in _SEPARATOR.split(text):
        document = yaml.load(chunk, _Loader)
        if not isinstance(document, dict):
            continue
        if document.get("kind", "").endswith("List") and "items" in document:
            documents += [(item, None) for item in document["items"] if isinstance(item, dict)]
        else:
            documents.append((document, chunk.strip() + "\n"))
    return documents


def _run(command: list[str], what: str, **kwargs: Any) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise RenderFailed(f"{what}: {' '.join(command[:3])} … failed:\n{done.stderr.strip()}")
    return done.stdout


@cache
def _helm_template(
    archive: Path, release: str, namespace: str, values_json: str, include_crds: bool
) -> tuple[Document, ...]:
    stat = archive.stat()
    key = [
        "helm",
        layer_version(),
        _file_digest(archive, stat.st_size, stat.st_mtime_ns),
        release,
        namespace,
        values_json,
        include_crds,
        KUBERNETES_VERSION,
    ]
    return _disk_cached(
        key, lambda: _helm_run(archive, release, namespace, values_json, include_crds)
    )


def _helm_run(
    archive: Path, release: str, namespace: str, values_json: str, include_crds: bool
) -> tuple[Document, ...]:
    command = [
        str(binary("helm")),
        "template",
        release,
        str(archive),
        "--namespace",
        namespace,
        "--kube-version",
        f"{KUBERNETES_VERSION}.0",
        # Test hooks run only on `helm test`, never on install.
        "--skip-tests",
        "--values",
        "-",
    ]
    if include_crds:
        command.append("--include-crds")
    # A private, empty helm home: no repositories or plugins of the user's leak in.
    with tempfile.TemporaryDirectory(prefix="mlops-helm-") as home:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
        }
        out = _run(command, f"helm release {release}", input=values_json, env=env)
    return tuple(_documents(out))


def _render_helm(resource: Resource, charts: Path) -> Rendered:
    inputs = resource.inputs
    chart = _chart_name(str(inputs.get("chart", "")))
    version = inputs.get("version")
    namespace = inputs.get("namespace") or "default"
    description = f"helm {chart} {version}, namespace {namespace}"
    if not chart or not version:
        raise RenderError(f"Helm release {resource.name}: no chart name and exact version pinned")
    archive = charts / f"{chart}-{version}.tgz"
    if not archive.is_file():
        raise RenderError(
            f"Helm release {resource.name}: chart {chart} {version} is not in "
            f"{CHARTS_DIR_SETTING}={charts} (no {archive.name})"
        )
    values = inputs.get("values") or {}
    rendered = Rendered(resource.name, description)
    rendered.problems = [
        f"{resource.name} (chart {chart} {version}) {p}"
        for p in values_problems(archive, chart, values)
    ]
    if rendered.problems:
        return rendered  # helm would refuse the same values; its message is less precise
    release = inputs.get("name") or resource.name
    include_crds = not inputs.get("skipCrds", False)
    values_json = json.dumps(values, sort_keys=True)
    try:
        objects = _helm_template(archive, release, namespace, values_json, include_crds)
    except RenderFailed as exc:
        rendered.problems.append(f"{resource.name}: {exc}")
        return rendered
    rendered.objects = [_copy(obj) for obj, _ in objects]
    rendered.texts = [text for _, text in objects]
    return rendered


# ----------------------------------------------------------------------------------- kustomize


def _upstream_folder(url: str, charts: Path, resource: str) -> Path | None:
    """The local copy of a remote kustomize target, None when `url` is not remote."""
    match = _REMOTE.match(url)
    if not match:
        if "://" in url or url.startswith("github.com/"):
            raise RenderError(f"kustomize {resource}: unsupported remote target {url}")
        return None
    base = charts / "kustomize" / f"{match['owner']}-{match['repo']}-{match['ref']}"
    folder = base / match["path"]
    if not folder.is_dir():
        raise RenderError(
            f"kustomize {resource}: {url} is not in {CHARTS_DIR_SETTING}={charts} "
            f"(no folder {folder})"
        )
    return folder


def _upstream_root(folder: Path, charts: Path) -> Path:
    """The whole upstream copy a folder belongs to (its bases may reach anywhere in it)."""
    relative = folder.relative_to(charts / "kustomize")
    return charts / "kustomize" / relative.parts[0]


@cache
def _kustomize_build(folder: Path, charts: Path) -> tuple[Document, ...]:
    key = ["kustomize", layer_version(), _tree_digest(_upstream_root(folder, charts)), str(folder)]

    def build() -> tuple[Document, ...]:
        out = _run([str(binary("kubectl")), "kustomize", str(folder)], f"kustomize {folder}")
        return tuple(_documents(out))

    return _disk_cached(key, build)


def _build_overlay(overlay: Path, charts: Path, resource: str) -> tuple[Document, ...]:
    """Build a local overlay offline: a temporary copy whose remote bases point at the local
    copies by relative path."""
    key = ["overlay", layer_version(), _tree_digest(overlay), _tree_digest(charts / "kustomize")]
    return _disk_cached(key, lambda: _build_overlay_run(overlay, charts, resource))


def _build_overlay_run(overlay: Path, charts: Path, resource: str) -> tuple[Document, ...]:
    with tempfile.TemporaryDirectory(prefix="mlops-kustomize-") as tmp:
        copy = Path(tmp) / overlay.name
        shutil.copytree(overlay, copy)
        kustomization = next(
            (
                copy / n
                for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")
                if (copy / n).is_file()
            ),
            None,
        )
        if kustomization is None:
            raise RenderError(f"kustomize {resource}: {overlay} has no kustomization.yaml")
        document = yaml.safe_load(kustomization.read_text())
        for key in ("resources", "bases", "components"):
            entries = document.get(key) or []
            for index, entry in enumerate(entries):
                local = _upstream_folder(str(entry), charts, resource)
                if local is not None:
                    entries[index] = os.path.relpath(local, copy)
        kustomization.write_text(yaml.safe_dump(document, sort_keys=False))
        out = _run([str(binary("kubectl")), "kustomize", str(copy)], f"kustomize {resource}")
    return tuple(_documents(out))


def _render_kustomize(resource: Resource, charts: Path, root: Path) -> Rendered:
    directory = str(resource.inputs.get("directory", ""))
    rendered = Rendered(resource.name, f"kustomize {directory}")
    upstream = _upstream_folder(directory, charts, resource.name)
    overlay = (root / directory).resolve()
    if upstream is None and not overlay.is_dir():
        raise RenderError(f"kustomize {resource.name}: no folder {overlay}")
    try:
        if upstream is not None:
            objects = _kustomize_build(upstream, charts)
        else:
            objects = _build_overlay(overlay, charts, resource.name)
    except RenderFailed as exc:
        rendered.problems.append(f"{resource.name}: {exc}")
        return rendered
    rendered.objects = [_copy(obj) for obj, _ in objects]
    rendered.texts = [text for _, text in objects]
    return rendered


# ------------------------------------------------------------------------------------- checks


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """A private deep copy (rendered objects are cached and shared between plans)."""
    return json.loads(json.dumps(obj))


def render(
    resources: Iterable[Resource],
    *,
    root: Path | None = None,
    charts: Path | None = None,
    workers: int = 8,
) -> list[Rendered]:
    """Every Helm release and kustomize tree among `resources`, rendered (not yet validated)."""
    from mlops_platform.plan import project_root

    sources = [r for r in resources if r.type in HELM_TYPES + KUSTOMIZE_TYPES]
    if not sources:
        return []
    charts = charts or charts_dir()
    root = root or project_root()

    def one(resource: Resource) -> Rendered:
        if resource.type in HELM_TYPES:
            return _render_helm(resource, charts)
        return _render_kustomize(resource, charts, root)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(sources)))) as pool:
        return list(pool.map(one, sources))


def validate(sources: Sequence[Rendered]) -> None:
    """Validate every object strictly; problems are added to their source, naming it."""
    crds = manifests.crd_schemas(obj for s in sources for obj in s.objects)
    for source in sources:
        for obj in source.objects:
            try:
                manifests.validate(obj, crds=crds)
            except manifests.ManifestError as exc:
                source.problems.append(f"{source.source}: {exc}")


def check(resources: Sequence[Resource], direct: list[dict[str, Any]], **kwargs: Any) -> Report:
    """Render and validate everything a plan creates: `direct` objects plus every release."""
    sources = [Rendered(PROGRAM, "created directly by the program", list(direct))]
    sources += render(resources, **kwargs)
    validate(sources)
    return Report(sources)
