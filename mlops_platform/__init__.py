"""mlops-platform: Pulumi components and programs for a governed MLOps platform per environment.

The public API is what the subpackages export in their `__all__`:
- `mlops_platform.components.<area>`: the component resources and their config models
  (e.g. `from mlops_platform.components.mlflow import TrackingServer, MlflowConfig`);
- `mlops_platform.config`: the stack model (`PlatformConfig`) that `stacks/stack.schema.json`
  describes;
- the `mlops` command (`mlops_platform.cli`).
Everything else (`mlops_platform.pipelines`, `mlops_platform.model_server`, and modules or names
with a leading underscore) is the platform's own code, which may change in any release. Versions
follow semantic versioning over that API and the stack schema (CHANGELOG.md, UPGRADING.md).

This module imports nothing: the model server and platform images import their subpackages
without the Pulumi SDKs.
"""

__version__ = "0.1.0"
