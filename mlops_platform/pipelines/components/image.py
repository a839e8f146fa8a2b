"""The one container image every pipeline component runs in on a cluster.

Components are lightweight Python components whose bodies import this package
(`mlops_platform.pipelines.lib.drift`, `mlops_platform.pipelines.data.churn`, the component logic modules), so
they run in the platform image, which is built from this repository and has the package, kfp,
scikit-learn and MLflow installed at the versions locked in `uv.lock`. Because the image already
holds kfp, components are compiled with `install_kfp_package=False`: no `pip install` at run
time, so runs are reproducible and work on clusters without internet access.

The reference lives in `mlops_platform/components/versions.py` with every other pin: the tag follows the
package version (bump it together with `pyproject.toml`), and the release workflow pins it by
digest there. The local runner (`mlops demo`) ignores the image and runs the same code in this venv.
"""

from mlops_platform.components.versions import PLATFORM_IMAGE

BASE_IMAGE = PLATFORM_IMAGE
# The tag without a digest the release may pin it with (`<repo>:<tag>[@sha256:...]`).
PLATFORM_IMAGE_TAG = PLATFORM_IMAGE.split("@", 1)[0].rsplit(":", 1)[1]
