"""The platform image the pipeline components run in: pinned, non-root, without the packages
only the operator's tools need (the Pulumi SDKs, google-cloud-compute)."""

import re
import subprocess
import sys
from pathlib import Path

from mlops_platform.pipelines.components.image import BASE_IMAGE, PLATFORM_IMAGE_TAG

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "mlops_platform" / "pipelines" / "Dockerfile").read_text()


def test_base_and_tools_are_pinned_and_the_user_is_not_root():
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base)
    assert re.search(r"^ARG UV_IMAGE=ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+$", DOCKERFILE, re.M)
    assert "latest" not in DOCKERFILE
    assert DOCKERFILE.rstrip().splitlines()[-1] == "USER 10001:10001"
    assert "uv sync --locked" in DOCKERFILE


def test_image_tag_follows_the_package_version():
    version = re.search(r'^version = "([^"]+)"$', (REPO / "pyproject.toml").read_text(), re.M)
    assert version.group(1) == PLATFORM_IMAGE_TAG
    assert f":{PLATFORM_IMAGE_TAG}" in BASE_IMAGE
    assert f"-t {BASE_IMAGE} ." in DOCKERFILE


def _left_out_modules() -> set[str]:
    """The modules of every distribution the Dockerfile leaves out of the image
    (`--no-install-package`), from their installed RECORDs."""
    from importlib import metadata

    left_out = re.findall(r"--no-install-package (\S+)", DOCKERFILE)
    assert {"pulumi-aws", "pulumi-kubernetes", "google-cloud-compute"} <= set(left_out)
    modules = set()
    for name in left_out:
        for file in metadata.files(name) or []:
            if file.suffix == ".py":
                parts = file.with_suffix("").parts
                modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def test_pipeline_code_never_imports_the_packages_left_out_of_the_image():
    probe = (
        "import sys, importlib, pkgutil\n"
        "import mlops_platform.pipelines\n"
        "for m in pkgutil.walk_packages(mlops_platform.pipelines.__path__, 'mlops_platform.pipelines.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    left_out = _left_out_modules()
    assert "pulumi_aws" in left_out and "google.cloud.compute_v1" in left_out
    assert sorted(set(result.stdout.split()) & left_out) == []
