"""Runs inside the throwaway feast venv (tests/feast/test_feast_real.py builds it).

argv: <repo dir holding the rendered feature_store.yaml> <parquet file>. Loads the file with
Feast's own config loader, applies one entity and one feature view over the Parquet file,
materializes into Redis and prints the online features it reads back as JSON.
"""

import json
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd

from feast import Entity, FeatureStore, FeatureView, Field, FileSource
from feast.repo_config import load_repo_config
from feast.types import Float64, Int64
from feast.value_type import ValueType


def main(repo: Path, parquet: Path) -> None:
    config = load_repo_config(repo, repo / "feature_store.yaml")
    store = FeatureStore(repo_path=str(repo))
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(path=str(parquet), timestamp_field="event_timestamp")
    view = FeatureView(
        name="customer_activity",
        entities=[customer],
        ttl=timedelta(days=30),
        schema=[Field(name="sessions", dtype=Int64), Field(name="spend", dtype=Float64)],
        source=source,
        online=True,
    )
    store.apply([customer, view])
    frame = pd.read_parquet(parquet)
    end = frame["event_timestamp"].max() + timedelta(seconds=1)
    store.materialize(start_date=end - timedelta(days=29), end_date=end)
    online = store.get_online_features(
        features=["customer_activity:sessions", "customer_activity:spend"],
        entity_rows=[{"customer_id": 1}, {"customer_id": 2}, {"customer_id": 99}],
    ).to_dict()
    print(
        json.dumps(
            {
                "online_store": type(config.online_store).__name__,
                "offline_store": type(config.offline_store).__name__,
                "registry_path": config.registry.path,
                # Feast expanded ${FEAST_REDIS_PASSWORD}; the value itself is never printed.
                "password_expanded": "${" not in config.online_store.connection_string,
                "views": [v.name for v in store.list_feature_views()],
                "online": online,
            }
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
