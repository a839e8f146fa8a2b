"""The one container image every pipeline component runs in on a cluster.

Components are lightweight Python components whose bodies import this package
(`kfp_pipelines.lib.drift`, `kfp_pipelines.data.churn`, the component logic modules), so
they run in the platform image, which is built from this repository and has the package, kfp,
scikit-learn and MLflow installed at the versions locked in `uv.lock`. Because the image already
holds kfp, components are compiled with `install_kfp_package=False`: no `pip install` at run
time, so runs are reproducible and work on clusters without internet access.

The tag follows the package version; bump it together with `pyproject.toml` (one reviewed
change). The local runner (`mlops demo`) ignores the image and runs the same code in this venv.
"""

PLATFORM_IMAGE_REPOSITORY = "ghcr.io/mlops-platform/platform"
PLATFORM_IMAGE_TAG = "0.1.0"
BASE_IMAGE = f"{PLATFORM_IMAGE_REPOSITORY}:{PLATFORM_IMAGE_TAG}"
