"""Shared test settings."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Upstream CRDs for custom-resource validation: a setting (CI points it at ../shared/crds);
# a checkout with shared/ beside it works without setting anything.
os.environ.setdefault("MLOPS_CRDS_DIR", str(REPO.parent / "shared" / "crds"))
# The upstream charts the platform installs, packaged at the pinned versions (a setting too).
os.environ.setdefault("MLOPS_CHARTS_DIR", str(REPO.parent / "shared" / "charts"))


def unavailable(reason: str) -> None:
    """A real service a test needs is missing: skip on a developer machine, fail in CI.

    `.ci/run` sets MLOPS_REQUIRE_SERVICES=1 after installing everything, so a test that could
    not run there is a failure, never a silent skip.
    """
    if os.environ.get("MLOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def crds_dir() -> Path:
    folder = Path(os.environ["MLOPS_CRDS_DIR"])
    if not folder.is_dir():
        pytest.fail(f"MLOPS_CRDS_DIR={folder} is not a folder of upstream CRDs")
    return folder


@pytest.fixture
def charts_dir() -> Path:
    folder = Path(os.environ["MLOPS_CHARTS_DIR"])
    if not folder.is_dir():
        pytest.fail(f"MLOPS_CHARTS_DIR={folder} is not a folder of packaged upstream charts")
    return folder
