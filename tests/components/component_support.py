"""Helpers shared by the component construction tests."""

# Inputs whose keys are the user's own (tags, labels, Helm values), not provider property names.
USER_KEYED = {"tags", "labels", "resourceLabels", "metadata", "values"}


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
