"""A Python tool for the inspector's browser tests, served by the host's worker pool.

Its schema comes from pydantic, which puts nested models in ``$defs`` and refers to them
with ``$ref``: the form the inspector generates must follow them.
"""

from __future__ import annotations

from typing import Literal

import pydantic

import toolbridge


class Parcel(pydantic.BaseModel):
    weight_kg: float = pydantic.Field(gt=0, description="Weight of the parcel")
    fragile: bool = False


@toolbridge.tool
def py_postage(parcels: list[Parcel], zone: Literal["domestic", "abroad"] = "domestic") -> float:
    """Postage for some parcels in EUR (a Python tool served by a worker)."""
    rate = 2.5 if zone == "domestic" else 6.0
    return sum(rate + parcel.weight_kg + (1.0 if parcel.fragile else 0.0) for parcel in parcels)
