"""The whole platform on GCP from scratch, from a small inline config: the same composition as
the project's own program (`mlops_platform.program`), in its three layers.

Each of `infra/`, `platform/` and `ml/` is a Pulumi project (`mlops-infra`, `mlops-platform`,
`mlops-ml`) whose program is this file: it validates `PLATFORM` once, exactly as a stack file
would be validated, and composes the project's layer. Only the GCP project and region come from
the stack (`gcp:project`, `gcp:region`, the provider's own keys); everything else the platform
derives from the few lines below, with the platform's defaults (private GKE nodes, Cloud SQL,
Managed Kafka, Memorystore, Istio with STRICT mTLS, monitoring and alerts).
"""

from __future__ import annotations

from typing import Any

import pulumi

from mlops_platform import config, handoff, program


def platform_config(project: str, region: str) -> dict[str, Any]:
    """What differs from the platform's defaults (the keys of a stack file, without `mlops:`)."""
    return {
        "cloud": {"type": "gcp", "project": project, "region": region},
        "cluster": {"name": "ml"},
        # Bucket names are global: the project id (globally unique) keeps them ours.
        "storage": {"bucket_prefix": f"{project}-ml"},
        # One GPU pool that costs nothing until a training pod asks for a GPU.
        "gpu_pools": {
            "l4": {
                "machine_type": "g2-standard-8",
                "accelerator": "nvidia-l4",
                "accelerator_count": 1,
                "min_size": 0,
                "max_size": 2,
            }
        },
        "delivery": {"enabled": True},
        # One model, released progressively by Flagger; MLflow is the platform's own.
        "serving": {
            "churn": {
                "stable": {"model_uri": "models:/churn@champion"},
                "service_account": "model-server",
                "prediction_sink": "kafka",
                "progressive": {},
            }
        },
    }


def main() -> None:
    layer = handoff.layer_of_project(pulumi.get_project())
    if layer not in program.COMPOSERS:
        raise pulumi.RunError(
            f"project {pulumi.get_project()!r} is not a layer: run pulumi in infra/, platform/ "
            "or ml/ (in that order)"
        )
    gcp = pulumi.Config("gcp")
    values = platform_config(gcp.require("project"), gcp.require("region"))
    try:
        platform = config.validate(
            {f"{config.NAMESPACE}:{key}": value for key, value in values.items()},
            f"{__file__} (platform_config)",
        )
    except config.ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None
    program.COMPOSERS[layer](platform)


main()
