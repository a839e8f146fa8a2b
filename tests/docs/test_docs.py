"""Generated documentation: every stack setting described, and the READMEs' reference sections
(component inputs and outputs, stacks/REFERENCE.md) as the code says.

The provider README's reference is checked by tests/provider (its own interpreter)."""

import pytest

from mlops_platform import config, docs

FIX = f"run `{docs.COMMAND}` and commit the result"


@pytest.fixture(scope="module")
def outputs() -> dict[type, docs.ComponentOutputs]:
    """Every shipped stack's program under mocks (about 15 s): shared by the tests below."""
    return docs.collect_outputs()


# --- descriptions -----------------------------------------------------------------------------


def test_every_stack_setting_has_a_description():
    missing = docs.undescribed(config.json_schema())
    assert not missing, (
        "stack settings without a description (give each Field a `description=`): "
        + ", ".join(missing)
    )


def test_undescribed_names_every_field_without_a_description():
    schema = {
        "properties": {
            "config": {
                "properties": {
                    "mlops:a": {"description": "A."},
                    "mlops:b": {"type": "string"},
                    "mlops:c": {"type": "object", "properties": {"inner": {"description": " "}}},
                },
            },
            "secretsprovider": {"type": "string", "description": "S."},
        },
        "$defs": {
            "Thing": {"properties": {"ok": {"description": "yes"}, "bare": {"default": 1}}},
            "Variant": {"oneOf": [{"properties": {"type": {"const": "x"}}}]},
        },
    }
    assert docs.undescribed(schema) == [
        "<root>.config",
        "<root>.config.mlops:b",
        "<root>.config.mlops:c",
        "<root>.config.mlops:c.inner",
        "Thing.bare",
        "Variant.type",
    ]


def test_every_component_input_and_output_has_a_description(outputs):
    missing = []
    for area in docs.areas():
        for component in docs.component_classes(area):
            args = docs.args_class(component)
            assert args is not None, f"{component.__name__}: no Args dataclass"
            for row in docs.args_rows(args):
                if not row[3]:
                    missing.append(f"{args.__name__}.{row[0]} (Attributes: in its docstring)")
            described = docs._attributes(component)
            for name in outputs.get(component, docs.ComponentOutputs()).names:
                if name not in described:
                    missing.append(f"{component.__name__}.{name} (Attributes: in its docstring)")
    assert not missing, "undescribed: " + ", ".join(missing)


# --- the generated sections -------------------------------------------------------------------


def test_generated_sections_are_current(outputs):
    stale = docs.stale(outputs, include_provider=False)
    assert not stale, f"stale generated sections in {', '.join(stale)}: {FIX}"


def test_every_component_is_created_by_a_shipped_stack(outputs):
    # Its outputs are read from a run; a component no stack creates would have none listed.
    never = [
        f"{area}: {component.__name__}"
        for area in docs.areas()
        for component in docs.component_classes(area)
        if component not in outputs
    ]
    assert not never, f"not created by any stacks/Pulumi.*.yaml: {never}"


def test_outputs_are_read_from_the_program_per_cloud(outputs):
    from mlops_platform.components.mlflow.resources import TrackingServer
    from mlops_platform.components.storage.resources import ObjectStore

    store = outputs[ObjectStore]
    assert store.token == "mlops:storage:ObjectStore"
    assert list(store.names) == [
        "bucket_names",
        "bucket_uris",
        "bucket_arns",
        "endpoint",
        "kms_key_arn",
        "log_bucket_name",
    ]
    assert store.clouds["bucket_names"] == {"aws", "gcp", "local"}
    assert store.clouds["bucket_arns"] == {"aws"}  # an empty map elsewhere
    assert store.clouds["endpoint"] == {"local"}  # None on the clouds
    assert store.clouds["kms_key_arn"] == {"aws"}
    assert store.kinds["bucket_uris"] == {"map[string, string]"}
    assert store.secret == set()
    assert outputs[TrackingServer].secret == {"admin_password"}


def test_a_component_readme_section_lists_inputs_settings_and_outputs(outputs):
    schema = config.json_schema()
    inputs = docs.inputs_section("storage", schema, "../../stacks/REFERENCE.md")
    assert "### `ObjectStore(name, ObjectStoreArgs(...), opts=None)`" in inputs
    assert (
        "| `protect` | `bool` | `False` | Protect and retain every bucket, the KMS key and "
        "locally the MinIO release (the root `protect_stateful`). |" in inputs
    )
    assert "### Stack setting `mlops:storage`" in inputs
    assert "| `storage.backend.access_log_retention_days` (s3) | integer (> 0) | `365` |" in inputs
    assert "| `storage.buckets.<key>.versioning` | boolean | `true` |" in inputs
    section = docs.outputs_section("storage", outputs)
    assert "| `kms_key_arn` | `pulumi.Output[str] | None` | aws |" not in section  # escaped
    assert "| `kms_key_arn` | `pulumi.Output[str] \\| None` | aws |  | AWS: " in section


def test_stack_reference_has_every_top_level_setting():
    schema = config.json_schema()
    page = docs.stack_reference(schema)
    for field, info in config.PlatformConfig.model_fields.items():
        assert f"### `mlops:{field}`" in page
        assert docs.cell(info.description) in page
    assert "AwsCloud | GcpCloud | LocalCloud, required." in page


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "intro\n<!-- x: generated by `mlops docs`, do not edit -->\nold\n"
            "<!-- end of x -->\nend",
            "intro\n<!-- x: generated by `mlops docs`, do not edit -->\n\nnew\n\n"
            "<!-- end of x -->\nend",
        ),
        (
            "<!-- x: generated by `mlops docs`, do not edit --><!-- end of x -->",
            "<!-- x: generated by `mlops docs`, do not edit -->\n\nnew\n\n<!-- end of x -->",
        ),
    ],
)
def test_replace_section_keeps_what_is_outside_the_markers(text, expected):
    assert docs.replace_section(text, "x", "\nnew\n") == expected


@pytest.mark.parametrize(
    "text",
    [
        "no markers",
        "<!-- x: generated by `mlops docs`, do not edit -->",
        "<!-- end of x --><!-- x: generated by `mlops docs`, do not edit -->",
        "<!-- x: generated by `mlops docs`, do not edit -->" * 2 + "<!-- end of x -->",
    ],
)
def test_replace_section_refuses_missing_or_misplaced_markers(text):
    with pytest.raises(
        ValueError, match=r"^mlops_platform/components/a/README\.md: (expected one|`<!-- end)"
    ):
        docs.replace_section(text, "x", "new", "mlops_platform/components/a/README.md")


def test_check_names_the_stale_file_and_the_command(tmp_path, monkeypatch, capsys, outputs):
    readme = tmp_path / "README.md"
    readme.write_text(
        "# a\n<!-- inputs: generated by `mlops docs`, do not edit -->\n"
        "hand-kept table\n<!-- end of inputs -->\n"
    )
    fake = docs.Generated(readme, {"inputs": "| generated |"})
    monkeypatch.setattr(docs, "generated", lambda outputs=None: [fake])
    monkeypatch.setattr(docs, "_provider", lambda check: [])
    assert docs.main(docs.argparse.Namespace(check=True)) == 1
    out = capsys.readouterr().out
    assert f"stale: {readme}" in out
    assert FIX in out
    assert readme.read_text().count("hand-kept table") == 1  # --check writes nothing
    assert docs.main(docs.argparse.Namespace(check=False)) == 0
    assert readme.read_text() == (
        "# a\n<!-- inputs: generated by `mlops docs`, do not edit -->\n\n| generated |\n\n"
        "<!-- end of inputs -->\n"
    )
