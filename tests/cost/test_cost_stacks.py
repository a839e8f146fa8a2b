"""The estimate of every shipped stack's real plan (the program under mocks, all layers)."""

from __future__ import annotations

import pytest

from mlops_platform import cost, plan

STACKS = ["local", "dev", "staging", "prod", "prod-gcp"]


@pytest.fixture(scope="module")
def estimates() -> dict[str, cost.Estimate]:
    return {
        stack: cost.estimate(plan.build_plan(stack, plan.stack_file_path(stack)).as_json())
        for stack in STACKS
    }


def test_local_stack_costs_no_cloud_spend_and_says_so(estimates):
    local = estimates["local"]
    assert (local.cloud, local.monthly_max, local.items, local.unpriced) == ("local", 0, [], [])
    assert "local cluster: no cloud spend" in cost.render_markdown(local)


def test_prod_costs_more_than_staging_more_than_dev(estimates):
    dev, staging, prod = (estimates[s] for s in ("dev", "staging", "prod"))
    assert prod.monthly_min > staging.monthly_min > dev.monthly_min > 0
    assert prod.monthly_max > staging.monthly_max
    assert prod.monthly_max > dev.monthly_max


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "prod-gcp"])
def test_every_cloud_resource_type_is_known_to_the_model(estimates, stack):
    # Unpriced lines are allowed only for prices the table says it does not have; a resource
    # type the model has never seen would be a gap in the model itself.
    unknown = [u for u in estimates[stack].unpriced if "not in the cost model" in u.reason]
    assert unknown == []
    for u in estimates[stack].unpriced:
        assert "not known:" in u.reason, u


def test_prod_prices_its_capacity_at_min_and_max(estimates):
    prod = estimates["prod"]
    by_key = {(i.name, i.price_key): i for i in prod.items}
    system = by_key[("mlops-system", "ec2.m6i.xlarge")]
    assert (system.quantity_min, system.quantity_max) == (3 * 730, 6 * 730)
    a100 = by_key[("mlops-gpu-a100", "ec2.p4d.24xlarge")]
    assert (a100.monthly_min, a100.monthly_max) == (0, 2 * 730 * a100.unit_usd)
    assert len([i for i in prod.items if i.price_key == "vpc.nat-gateway"]) == 3
    assert prod.by_layer()["platform"][0] > 0  # Prometheus' volume from its chart values


def test_gcp_stack_is_estimated_with_its_regions_table(estimates):
    gcp = estimates["prod-gcp"]
    assert (gcp.cloud, gcp.region, gcp.table) == (
        "gcp", "europe-west4", "mlops_platform/pricing/gcp-europe-west4.yaml"
    )  # fmt: skip
    assert [i.price_key for i in gcp.items if i.name == "mlops-gke"] == ["gke.cluster"]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "prod-gcp"])
def test_readme_quotes_each_stacks_estimate(estimates, stack):
    # README's table of estimates must follow the pricing tables: a refreshed price that moves a
    # total fails here until the row is updated.
    readme = (plan.project_root() / "README.md").read_text()
    result = estimates[stack]
    row = f"| {stack} | {cost.usd_range(result.monthly_min, result.monthly_max)} |"
    assert row in readme, f"README.md has no row starting {row!r}"
