"""Shared base for every typed argument and config model in the project."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown fields are errors; instances are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)
