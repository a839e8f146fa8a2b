"""The churn feature repository: what `feast apply` registers (the platform's apply Job).

Self-contained on purpose: it runs inside the platform's Feast image, which has Feast
but not this package, so the feature list below is a literal (tests/components check it against
`mlops_platform.pipelines.data.churn.FEATURES`, so the two cannot drift apart).

One row of the offline table is one customer snapshot: `customer_id`, `snapshot_date` (the
event time) and the 47 churn features, in Parquet under the offline data URI of the features
bucket (`<bucket>/feast/data/churn/customer_features.parquet`, a file or a folder of files).
The label is not a feature: training joins these views onto (customer_id, label time, churned)
with `get_historical_features`, point in time.

Environment (set by the Job and the CronJob from the platform's ConfigMaps):
- `MLOPS_FEAST_OFFLINE_URI`: the offline data URI (`s3://…/feast/data`, `gs://…`);
- `FEAST_S3_ENDPOINT_URL`: an S3-compatible endpoint (MinIO locally), empty on AWS and GCP.
"""

import os
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

ENTITY = "customer"
JOIN_KEY = "customer_id"
TIMESTAMP = "snapshot_date"
TABLE = "churn/customer_features.parquet"
SERVICE = "churn_model"
# The features describe the last 30-90 days: a snapshot older than that says nothing current.
TTL = timedelta(days=90)

# group -> feature -> Feast type ("int", "float", "str"), in the data's column order.
FEATURE_GROUPS = {
    "demographics": {
        "age": "int",
        "gender": "str",
        "country": "str",
        "city_tier": "str",
        "income_band": "str",
        "household_size": "int",
        "tenure_days": "int",
        "membership_tier": "str",
        "preferred_device": "str",
        "acquisition_channel": "str",
    },
    "behaviour": {
        "orders_90d": "int",
        "avg_order_value": "float",
        "total_spend_90d": "float",
        "sessions_30d": "int",
        "avg_session_minutes": "float",
        "pages_per_session": "float",
        "cart_abandon_rate": "float",
        "return_rate": "float",
        "support_tickets_90d": "int",
        "complaints_90d": "int",
        "review_score_avg": "float",
        "wishlist_items": "int",
        "product_categories_bought": "int",
        "discount_share": "float",
        "app_installed": "str",
        "payment_method": "str",
        "failed_payments_90d": "int",
    },
    "temporal": {
        "days_since_last_order": "int",
        "days_since_last_login": "int",
        "avg_days_between_orders": "float",
        "order_trend_ratio": "float",
        "spend_trend_ratio": "float",
        "weekend_order_share": "float",
        "night_session_share": "float",
        "preferred_shop_hour": "int",
        "active_months_12m": "int",
        "last_order_weekday": "str",
    },
    "marketing": {
        "email_open_rate": "float",
        "email_click_rate": "float",
        "push_opt_in": "str",
        "promo_emails_30d": "int",
        "coupons_used_90d": "int",
        "loyalty_points": "int",
        "referral_count": "int",
        "last_campaign_type": "str",
        "ad_impressions_30d": "int",
        "newsletter_subscribed": "str",
    },
}
_TYPES = {"int": Int64, "float": Float64, "str": String}

customer = Entity(
    name=ENTITY,
    join_keys=[JOIN_KEY],
    value_type=ValueType.INT64,
    description="A customer of the shop (the churn model's unit of prediction).",
)

customer_snapshots = FileSource(
    name="customer_snapshots",
    path=f"{os.environ['MLOPS_FEAST_OFFLINE_URI'].rstrip('/')}/{TABLE}",
    timestamp_field=TIMESTAMP,
    s3_endpoint_override=os.environ.get("FEAST_S3_ENDPOINT_URL") or None,
    description="Churn snapshots: one row per customer and snapshot date.",
)

views = {
    group: FeatureView(
        name=f"customer_{group}",
        entities=[customer],
        ttl=TTL,
        schema=[Field(name=name, dtype=_TYPES[kind]) for name, kind in features.items()],
        source=customer_snapshots,
        online=True,
        tags={"group": group, "model": "churn"},
    )
    for group, features in FEATURE_GROUPS.items()
}
# Feast registers module-level objects only.
customer_demographics = views["demographics"]
customer_behaviour = views["behaviour"]
customer_temporal = views["temporal"]
customer_marketing = views["marketing"]

churn_model = FeatureService(
    name=SERVICE,
    features=list(views.values()),
    description="Every feature the churn model reads, for training and online serving.",
)
