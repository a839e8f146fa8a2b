"""The training frame from Feast's offline store, point in time: runs in the Feast image.

Self-contained on purpose (Feast pins pandas 2, the platform image has pandas 3): it imports
only feast, pandas and pyarrow, and the `feature_store_frame` container component runs this file
with the Feast image's Python (`python -c <this file> ...`).

The entity frame (Parquet) holds one row per label: the join key (`customer_id`), the label's
time (`snapshot_date`, the first datetime column Feast finds) and the label (`churned`). For
each row Feast's `get_historical_features` takes, per feature view, the latest feature row of
that customer at or before the label's time and within the view's TTL: a value written after the
label time is never used. Rows for which no view had a value are dropped (counted in the
report). The output is the churn dataset's layout: join key, time, the service's features in
its order, then every other entity column (the label).

    python historical.py --entities e.parquet --output frame.parquet --registry s3://b/r.db \
        --project mlops --feature-service churn_model [--offline-store file]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def build_frame(
    entities_path: str,
    registry: str,
    project: str,
    feature_service: str,
    offline_store: str = "file",
):
    """(frame, report): the point-in-time training frame and what happened."""
    import pandas as pd
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    entities = pd.read_parquet(entities_path)
    if entities.empty:
        raise ValueError(f"the entity frame {entities_path} has no rows")
    with tempfile.TemporaryDirectory() as tmp:
        # The registry names every source and view; the online store is never touched here,
        # but RepoConfig wants one: a throwaway sqlite file.
        config = RepoConfig(
            project=project,
            provider="local",
            registry={"registry_type": "file", "path": registry, "cache_ttl_seconds": 0},
            offline_store={"type": offline_store},
            online_store={"type": "sqlite", "path": str(Path(tmp) / "online.db")},
            entity_key_serialization_version=3,
            repo_path=tmp,
        )
        store = FeatureStore(config=config)
        try:
            service = store.get_feature_service(feature_service)
        except Exception as error:  # Feast raises its own FeatureServiceNotFoundException
            known = sorted(s.name for s in store.list_feature_services())
            raise ValueError(
                f"feature service {feature_service!r} is not in project {project!r} "
                f"(registry {registry}); it has {known or 'none'}"
            ) from error
        features = [
            feature.name
            for projection in service.feature_view_projections
            for feature in projection.features
        ]
        joined = store.get_historical_features(entity_df=entities, features=service).to_df()
    times = [c for c in entities.columns if pd.api.types.is_datetime64_any_dtype(entities[c])]
    if not times:
        raise ValueError(f"the entity frame {entities_path} has no datetime column (label time)")
    # The entity columns up to the label time, the features, then the rest (the label).
    cut = list(entities.columns).index(times[0]) + 1
    columns = [c for c in entities.columns if c not in features]
    ordered = [*columns[:cut], *features, *columns[cut:]]
    present = joined[features].notna().any(axis=1)
    frame = joined.loc[present, ordered].reset_index(drop=True)
    report = {
        "entity_rows": len(entities),
        "rows": len(frame),
        # Feast's Dask store leaves out some unmatched rows itself: count against the input.
        "dropped_without_features": int(len(entities) - len(frame)),
        "features": len(features),
        "feature_service": feature_service,
    }
    return frame, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", required=True, help="Parquet: join key, label time, label")
    parser.add_argument("--output", required=True, help="where the frame (Parquet) is written")
    parser.add_argument("--registry", required=True, help="Feast registry path (s3://, gs://)")
    parser.add_argument("--project", required=True, help="Feast project")
    parser.add_argument("--feature-service", required=True, help="the features to join")
    parser.add_argument("--offline-store", default="file", choices=["file", "duckdb"])
    parser.add_argument("--report", default="", help="where the JSON report is written")
    args = parser.parse_args(argv)
    try:
        frame, report = build_frame(
            args.entities, args.registry, args.project, args.feature_service, args.offline_store
        )
    except ValueError as error:
        print(f"feature_store_frame: {error}", file=sys.stderr)
        return 1
    if frame.empty:
        print(
            "feature_store_frame: no entity row has features at or before its time "
            f"({report['entity_rows']} rows asked)",
            file=sys.stderr,
        )
        return 1
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.output, index=False)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
