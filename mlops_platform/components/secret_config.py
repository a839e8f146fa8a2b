"""Config values that must come from Pulumi secret config, never as plain text in a stack file.

Pulumi encrypts a value set with `pulumi config set --secret` (nested ones with `--path`) and
writes it to the stack file as `{secure: <ciphertext>}`. Two readers see such a value:

- the stack file read offline (`mlops plan`, the tests, CI): a nested value is still the
  `{secure: ...}` mapping, so a plain string where a secret belongs is refused exactly;
- the engine (`pulumi up`): it decrypts and marks only the *top-level* key secret. The root
  config wraps every string under such a key as `EngineSecret` (`mlops_platform/config.py`), and a secret
  field accepts a plain string only in that form.

A validated secret is a `ConfigSecret`: its `repr`, `str` and JSON form are `[secret]`, so it
never reaches a log line, an error message or the plan; `reveal()` is called only where the
value becomes a `pulumi.Output.secret`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

SECRET_PLACEHOLDER = "[secret]"


class EngineSecret(str):
    """A string the Pulumi engine decrypted from secret config."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"EngineSecret({SECRET_PLACEHOLDER})"


class ConfigSecret:
    """A value from Pulumi secret config; only `reveal()` shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"ConfigSecret({SECRET_PLACEHOLDER})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConfigSecret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _validate(value: Any) -> ConfigSecret:
    if isinstance(value, ConfigSecret):
        return value
    if isinstance(value, EngineSecret):
        if not value:
            raise ValueError("the secret is empty")
        return ConfigSecret(str(value))
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        # Offline the ciphertext cannot be decrypted: the plan shows the placeholder.
        return ConfigSecret(SECRET_PLACEHOLDER)
    if isinstance(value, str):
        raise ValueError(
            "must be a Pulumi secret, not plain text in the stack file: set it with "
            "`pulumi config set --secret --path '<key>.<field>' <value>`"
        )
    raise ValueError("must be a Pulumi secret ({secure: ...})")


_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "secure": {
            "type": "string",
            "description": "The ciphertext the Pulumi CLI wrote (never the plain value).",
        }
    },
    "required": ["secure"],
    "additionalProperties": False,
    "description": "A Pulumi secret (`pulumi config set --secret --path ...`).",
}

# A string field that only Pulumi secret config may set.
SecretValue = Annotated[
    ConfigSecret,
    PlainValidator(_validate),
    PlainSerializer(lambda _value: SECRET_PLACEHOLDER, return_type=str),
    WithJsonSchema(_SCHEMA),
]


def mark_engine_secrets(value: Any) -> Any:
    """Every string inside a value the engine marked secret, as `EngineSecret`."""
    if isinstance(value, str):
        return EngineSecret(value)
    if isinstance(value, dict):
        return {key: mark_engine_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [mark_engine_secrets(item) for item in value]
    return value
