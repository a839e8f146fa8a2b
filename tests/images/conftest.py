"""Both images, built once per session from this checkout (images/build.py).

No Docker engine: the tests skip on a developer machine and fail in CI (MLOPS_REQUIRE_SERVICES=1,
where .ci/run installs and starts dockerd).
"""

from __future__ import annotations

from typing import Any

import pytest

from images.build import BuildError, build, engine_error
from tests.conftest import unavailable


@pytest.fixture(scope="session")
def built_images() -> dict[str, Any]:
    error = engine_error()
    if error:
        unavailable(f"no Docker engine: {error}")
    try:
        return build()
    except BuildError as exc:
        pytest.fail(f"building the images failed: {exc}")
