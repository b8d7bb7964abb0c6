"""The built-in catalog of OPC products (`data/catalog.yaml`), read once and validated."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from dcomc.front.load import load_data


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    progid: str | None
    clsid: str | None
    appid: str | None
    executable: str | None
    service: str | None
    bitness: Literal[32, 64]
    verified: bool
    source: str


OPCENUM = "opcenum"


@cache
def products() -> dict[str, Product]:
    """Catalog entries by key, in file order."""
    text = resources.files("dcomc").joinpath("data/catalog.yaml").read_text(encoding="utf-8")
    raw = load_data(text)
    return {key: Product.model_validate(value) for key, value in raw.items()}


def product(key: str) -> Product | None:
    return products().get(key)
