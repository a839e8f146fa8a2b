"""Helpers shared by the component construction tests."""

import asyncio

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from mlops_platform import mocks

# Inputs whose keys are the user's own (tags, labels, Helm values, a StorageClass's driver
# `parameters` such as the EBS CSI driver's `tagSpecification_<n>`), not provider property names.
USER_KEYED = {"tags", "labels", "resourceLabels", "metadata", "values", "parameters"}


def untranslated_keys(value, path=""):
    """Input keys the SDK did not map to a provider property name (a typo in a dict input)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "_" in key:
                found.append(f"{path}.{key}")
            if key not in USER_KEYED:
                found += untranslated_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            found += untranslated_keys(item, f"{path}[]")
    return found


def named(monitor, typ, name):
    """The one resource of `typ` called `name`."""
    matches = [r for r in monitor.of_type(typ) if r.name == name]
    assert len(matches) == 1, (typ, name, matches)
    return matches[0]


def output_value(output):
    """What an Output resolves to under the mocks (None stays None: an absent optional output)."""
    return _sync_await(output.future()) if output is not None else None


def run_with_mocks(program, recording_mocks):
    """Run `program()` as `pulumi preview` would under `recording_mocks` (a `RecordingMocks`
    subclass that adds provider-computed outputs), and return the recording monitor."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    monitor = mocks.RecordingMonitor(recording_mocks)
    pulumi.runtime.set_mocks(
        monitor.mocks, project="mlops", stack="test", preview=True, monitor=monitor
    )
    pulumi.runtime.set_all_config({}, [])
    _sync_await(run_pulumi_func(program))
    return monitor
