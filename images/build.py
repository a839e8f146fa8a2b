"""Build the model server, platform and Feast images on a machine that reaches no image registry.

    python -m images.build                 # every image (and the local base images, once)
    python -m images.build --only platform

Built for this machine's architecture (linux/amd64 here and in CI) with the plain `docker build`;
the release workflow builds linux/amd64 and linux/arm64 with buildx and QEMU.

The Dockerfiles default to the pinned official bases (`python:3.11.x-slim-bookworm@sha256:...`,
`ghcr.io/astral-sh/uv:<version>`), which is what the release workflow builds from. Where no
registry can be reached (this project's machines and CI), both bases are made here instead and
passed as build arguments:

- `BASE_IMAGE`: a minimal Debian of the same release (bookworm) with its python3 3.11 and CA
  certificates, made with `debootstrap --variant=minbase` from the Debian mirror apt uses, then
  `docker import`. Its tag carries a hash of what it is made of, so a change makes a new one.
- `UV_IMAGE`: an image holding only `/uv`, the binary of the uv release the Dockerfiles name,
  installed from PyPI (where the official uv image gets it from too).

Both are made only when missing (`docker image inspect`), so a second run only builds the two
images (layer cache). The builds run on the host network: `uv` inside them reaches PyPI as the
host does, and installs exactly what uv.lock pins.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DEBIAN_SUITE = "bookworm"  # the official base is `-slim-bookworm`: same Debian release
DEBIAN_MIRROR = os.environ.get("MLOPS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# python3 (3.11 on bookworm) for both stages; CA certificates for HTTPS to PyPI (build) and to
# MLflow / object stores (run). uv makes the virtual environments, so no python3-venv or pip.
DEBIAN_PACKAGES = ("python3", "ca-certificates")
# Left out of the imported base: documentation, manuals, translations and apt's downloaded lists.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/lib/apt/lists",
    "var/cache/apt",
    "var/cache/debconf/templates.dat-old",
    "var/log",
)
LOCAL_REPOSITORY = "mlops-local"
# Certificate authorities this machine adds to Debian's (a TLS-inspecting egress proxy, say): the
# local base trusts them too, so `uv` in a build reaches PyPI exactly as the host's `uv` does.
# The base is a local stand-in and never published; the release builds use the official base.
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")


@dataclass(frozen=True)
class Image:
    name: str
    dockerfile: Path
    target: str | None = None  # the Dockerfile stage, when it builds more than one image

    @property
    def tag(self) -> str:
        return f"{LOCAL_REPOSITORY}/{self.name}:{package_version()}"


_MODEL_SERVER = REPO / "mlops_platform" / "model_server" / "Dockerfile"
# Built in this order: the explain variant reuses the default model server's layers.
IMAGES = {
    "model-server": Image("model-server", _MODEL_SERVER, "model-server"),
    "model-server-explain": Image("model-server-explain", _MODEL_SERVER, "model-server-explain"),
    "platform": Image("platform", REPO / "mlops_platform" / "pipelines" / "Dockerfile"),
    "feast": Image("feast", REPO / "images" / "feast" / "Dockerfile"),
}


class BuildError(RuntimeError):
    pass


def package_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"$', text, re.M)
    if not match:
        raise BuildError(f'{REPO / "pyproject.toml"}: no `version = "..."` in [project]')
    return match.group(1)


def uv_version() -> str:
    """The uv release both Dockerfiles name in `ARG UV_IMAGE=ghcr.io/astral-sh/uv:<version>`."""
    versions = set()
    for image in {i.dockerfile: i for i in IMAGES.values()}.values():
        found = re.findall(
            r"^ARG UV_IMAGE=ghcr\.io/astral-sh/uv:(\d+\.\d+\.\d+)\S*$",
            image.dockerfile.read_text(),
            re.M,
        )
        if len(found) != 1:
            raise BuildError(f"{image.dockerfile}: expected one `ARG UV_IMAGE=...uv:<version>`")
        versions.add(found[0])
    if len(versions) != 1:
        raise BuildError(f"the Dockerfiles name different uv versions: {sorted(versions)}")
    return versions.pop()


def docker() -> list[str]:
    return [os.environ.get("DOCKER", "docker")]


def engine_error() -> str | None:
    """None when a Docker engine answers, else why not (for a skip or a failure message)."""
    if not shutil.which(docker()[0]):
        return f"no docker client ({docker()[0]}) on PATH"
    try:
        result = subprocess.run(
            [*docker(), "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "docker info timed out after 30 s"
    if result.returncode != 0 or not result.stdout.strip():
        return f"no Docker engine answers: {(result.stderr or result.stdout).strip()[-500:]}"
    return None


def image_exists(tag: str) -> bool:
    result = subprocess.run([*docker(), "image", "inspect", tag], capture_output=True)
    return result.returncode == 0


def image_size(tag: str) -> int:
    out = subprocess.run(
        [*docker(), "image", "inspect", "--format", "{{.Size}}", tag],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.strip())


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    result = subprocess.run(cmd, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` exited {result.returncode}")


def _host_cas() -> list[Path]:
    return sorted(HOST_EXTRA_CAS.rglob("*.crt")) if HOST_EXTRA_CAS.is_dir() else []


def base_tag() -> str:
    cas = [hashlib.sha256(ca.read_bytes()).hexdigest() for ca in _host_cas()]
    recipe = json.dumps([DEBIAN_SUITE, "minbase", DEBIAN_PACKAGES, TRIM, cas]).encode()
    digest = hashlib.sha256(recipe).hexdigest()[:12]
    return f"{LOCAL_REPOSITORY}/debian-python:{DEBIAN_SUITE}-{digest}"


def _import_folder(root: Path, tag: str, changes: list[str]) -> None:
    """`docker import` a folder as a one-layer image (numeric owners, as the files are)."""
    cmd = [*docker(), "import", *[f"--change={c}" for c in changes], "-", tag]
    print("+ tar -C", root, "-c . |", " ".join(cmd), file=sys.stderr, flush=True)
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE
    )
    imported = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, text=True)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise BuildError(f"docker import {tag} failed: {imported.stderr.strip()[-1000:]}")


def build_base() -> str:
    """The Debian python3 base image (made once; its tag names its recipe)."""
    tag = base_tag()
    if image_exists(tag):
        return tag
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root to make the local base image")
    if not shutil.which("debootstrap"):
        raise BuildError("debootstrap is not installed (apt-get install debootstrap)")
    work = Path(tempfile.mkdtemp(prefix="mlops-base-", dir="/var/tmp"))
    try:
        root = work / "root"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                DEBIAN_SUITE,
                str(root),
                DEBIAN_MIRROR,
            ],
            stdout=subprocess.DEVNULL,
        )
        cas = _host_cas()
        if cas:
            folder = root / "usr/local/share/ca-certificates"
            folder.mkdir(parents=True, exist_ok=True)
            for ca in cas:
                shutil.copy2(ca, folder / ca.name)
            _run(["chroot", str(root), "update-ca-certificates"], stdout=subprocess.DEVNULL)
        for rel in TRIM:
            target = root / rel
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        _import_folder(
            root,
            tag,
            [
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "ENV LANG=C.UTF-8",
                # uv, pip and requests read the system bundle through this variable.
                "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                'CMD ["python3"]',
            ],
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def _uv_binary() -> str:
    """A uv to install the pinned uv with: the one running us (`uv run` sets $UV) or on PATH."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(REPO / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise BuildError("no uv found ($UV, PATH or .tools/bin/uv): run `make venv` first")


def build_uv_image() -> str:
    """An image with only `/uv` at the Dockerfiles' version (the official image's layout)."""
    version = uv_version()
    tag = f"{LOCAL_REPOSITORY}/uv:{version}"
    if image_exists(tag):
        return tag
    work = Path(tempfile.mkdtemp(prefix="mlops-uv-"))
    try:
        target = work / "site"
        _run([_uv_binary(), "pip", "install", "--quiet", "--target", str(target), f"uv=={version}"])
        root = work / "root"
        root.mkdir()
        shutil.copy2(target / "bin" / "uv", root / "uv")
        _import_folder(root, tag, [])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tag


def build_image(image: Image, base: str, uv: str) -> float:
    """`docker build` one image from the repository root; returns the seconds it took."""
    env = dict(os.environ)
    # BuildKit through buildx where the client has it, the classic builder otherwise (the
    # Dockerfiles use nothing BuildKit-only, so both give the same image).
    has_buildx = subprocess.run([*docker(), "buildx", "version"], capture_output=True)
    if has_buildx.returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"
    started = time.monotonic()
    _run(
        [
            *docker(),
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"UV_IMAGE={uv}",
            *(["--target", image.target] if image.target else []),
            "-f",
            str(image.dockerfile),
            "-t",
            image.tag,
            str(REPO),
        ],
        env=env,
        stdout=sys.stderr,
    )
    return time.monotonic() - started


def build(names: list[str] | None = None) -> dict[str, dict[str, object]]:
    """Make the local bases if missing, build the images; returns tag, seconds, size per image."""
    error = engine_error()
    if error:
        raise BuildError(error)
    started = time.monotonic()
    base = build_base()
    uv = build_uv_image()
    report: dict[str, dict[str, object]] = {
        "bases": {"base": base, "uv": uv, "seconds": round(time.monotonic() - started, 1)}
    }
    for name in names or list(IMAGES):
        image = IMAGES[name]
        seconds = build_image(image, base, uv)
        report[name] = {
            "tag": image.tag,
            "seconds": round(seconds, 1),
            "size_bytes": image_size(image.tag),
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m images.build", description=__doc__)
    parser.add_argument("--only", choices=sorted(IMAGES), action="append")
    args = parser.parse_args(argv)
    try:
        report = build(args.only)
    except BuildError as exc:
        print(f"images.build: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
