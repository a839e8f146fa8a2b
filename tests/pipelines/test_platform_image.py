"""The platform image the pipeline components run in: pinned, non-root, no Pulumi SDKs needed."""

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


def test_pipeline_code_never_imports_the_pulumi_sdks_left_out_of_the_image():
    probe = (
        "import sys, importlib, pkgutil\n"
        "import mlops_platform.pipelines\n"
        "for m in pkgutil.walk_packages(mlops_platform.pipelines.__path__, 'mlops_platform.pipelines.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0].startswith('pulumi')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
