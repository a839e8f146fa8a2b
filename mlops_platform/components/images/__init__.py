"""Images: the digest lock, the mirror registry, and where every deployed image is set."""

from pydantic import Field, field_validator

from mlops_platform.components.base import StrictModel
from mlops_platform.components.images.model import (
    CHART_IMAGES,
    ImageError,
    ImagePolicy,
    Reference,
    catalogue,
    check_mirror,
    configured_images,
    floating_problems,
    image_lock_advisory,
    read_lock,
)
from mlops_platform.components.images.resources import policy_for, register


class ImagesConfig(StrictModel):
    """Where the platform pulls its images from."""

    mirror: str | None = Field(
        default=None,
        description="A registry (host and optional path) mirroring every image the platform "
        "deploys, for air-gapped and regulated installs: `<mirror>/<source registry>/<path>`, "
        "e.g. registry.example.com/mirror/quay.io/prometheus/prometheus:<tag>. It moves the "
        "platform's own images, those it sets in Helm values, those inside the charts and the "
        "Kubeflow Pipelines manifests. `python -m images.lock mirror` lists the copies to make.",
    )

    @field_validator("mirror")
    @classmethod
    def _mirror(cls, value: str | None) -> str | None:
        return None if value is None else check_mirror(value)


__all__ = [
    "CHART_IMAGES",
    "ImageError",
    "ImagePolicy",
    "ImagesConfig",
    "Reference",
    "catalogue",
    "check_mirror",
    "configured_images",
    "floating_problems",
    "image_lock_advisory",
    "policy_for",
    "read_lock",
    "register",
]
