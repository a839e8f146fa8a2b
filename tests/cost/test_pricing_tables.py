"""The shipped pricing tables: valid, every price cited and dated, and a bad table is an error
naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_platform import cost

TABLES = sorted(cost.PRICING_DIR.glob("*.yaml"))


def test_a_table_per_cloud_region_the_stacks_use():
    assert [path.name for path in TABLES] == ["aws-us-east-1.yaml", "gcp-europe-west4.yaml"]


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.stem)
def test_table_is_valid_and_every_price_cited(path):
    table = cost.load_table(path)
    assert path.stem == f"{table.cloud}-{table.region}"
    for key, price in table.prices.items():
        assert price.source.startswith("https://"), key
        if price.usd is None:
            assert price.note, f"{key}: an unknown price must say why"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cloud: aws\nregion: r\nhours_per_month: 730\nprices:\n  k: {usd: null, unit: hour, "
         "source: 'https://x', retrieved: 2026-12-04}\n",
         "prices.k: Value error, a price that is not known (usd: null) needs a note saying why"),
        ("cloud: aws\nregion: r\nhours_per_month: 730\nprices:\n  k: {usd: 1, unit: hour, "
         "source: 'http://x', retrieved: 2026-12-04}\n",
         "prices.k.source: String should match pattern '^https://'"),
        ("cloud: aws\nregion: r\nhours_per_month: 730\nprices:\n  k: {usd: 1, unit: day, "
         "source: 'https://x', retrieved: 2026-12-04}\n",
         "prices.k.unit: Input should be 'hour', 'GB-month', 'GB-hour', 'month' or 'vCPU-hour'"),
        ("cloud: aws\nregion: r\nhours_per_month: 730\nprices: {}\nextra: 1\n",
         "extra: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_invalid_table_names_file_and_field(tmp_path: Path, text, message):
    path = tmp_path / "aws-r.yaml"
    path.write_text(text)
    with pytest.raises(cost.CostError) as error:
        cost.load_table(path)
    assert str(error.value) == f"invalid pricing table {path}: {message}"


def test_retrieved_is_the_stalest_price():
    table = cost.load_table(TABLES[0])
    assert table.retrieved == min(p.retrieved for p in table.prices.values())
