"""`feature_store_frame`: the training frame from Feast's offline store, point in time.

A container component, not a Python one: it runs `historical.py` with the Python of the
platform's Feast image (Feast and pandas 2), which has neither kfp nor this package. The script's
text is embedded at compile time, so the image needs nothing but Feast.
"""

from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from mlops_platform.components.versions import FEAST_IMAGE

SCRIPT = Path(__file__).with_name("historical.py").read_text()


@dsl.container_component
def feature_store_frame(
    entities: Input[Dataset],
    frame: Output[Dataset],
    registry_path: str,
    project: str = "mlops",
    feature_service: str = "churn_model",
    offline_store: str = "file",
):
    """Join the features of `feature_service` onto `entities` (Parquet: `customer_id`, the
    label time `snapshot_date`, the label `churned`) with Feast's `get_historical_features`:
    each row gets the latest feature values at or before its own time, never later ones.
    `registry_path` is the platform's Feast registry (`s3://…/feast/registry.db`); bucket
    access comes from the pod's identity."""
    return dsl.ContainerSpec(
        image=FEAST_IMAGE,
        command=["python", "-c", SCRIPT],
        args=[
            "--entities",
            entities.path,
            "--output",
            frame.path,
            "--registry",
            registry_path,
            "--project",
            project,
            "--feature-service",
            feature_service,
            "--offline-store",
            offline_store,
        ],
    )
